package client

import (
	"math/rand/v2"
	"regexp"
	"strconv"
	"time"
)

// Backoff sets the reconnect delays: exponential backoff with full jitter,
// capped (docs/protocol.md#close-codes). A zero field takes its default.
type Backoff struct {
	// Base is the first retry's upper bound (default 1 s).
	Base time.Duration
	// Cap is the largest upper bound (default 30 s).
	Cap time.Duration
	// SlowConsumer is the fixed part of the delay after a 4008 "slow
	// consumer" close (default 5 s).
	SlowConsumer time.Duration
	// Random returns uniform numbers in [0, 1) (default math/rand/v2);
	// tests pass their own.
	Random func() float64
}

// The defaults of Backoff.
const (
	DefaultBackoffBase         = time.Second
	DefaultBackoffCap          = 30 * time.Second
	DefaultBackoffSlowConsumer = 5 * time.Second
)

func orDefault(v, def time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return def
}

// Ceiling returns the upper bound of the delay before retry number attempt
// (0 for the first retry): min(Cap, Base * 2^attempt).
func (b Backoff) Ceiling(attempt int) time.Duration {
	base, limit := orDefault(b.Base, DefaultBackoffBase), orDefault(b.Cap, DefaultBackoffCap)
	if attempt < 0 {
		attempt = 0
	}
	d := base
	for i := 0; i < attempt; i++ {
		d *= 2
		if d >= limit || d <= 0 {
			return limit
		}
	}
	return min(d, limit)
}

// Delay returns the delay before retry number attempt: "full jitter", a
// uniform random delay in [0, Ceiling(attempt)). After a 4008 close
// (slowConsumer) the delay is SlowConsumer plus that, so a client that could
// not keep up waits at least SlowConsumer.
func (b Backoff) Delay(attempt int, slowConsumer bool) time.Duration {
	random := b.Random
	if random == nil {
		random = rand.Float64
	}
	d := time.Duration(random() * float64(b.Ceiling(attempt)))
	if slowConsumer {
		d += orDefault(b.SlowConsumer, DefaultBackoffSlowConsumer)
	}
	return d
}

var rateHint = regexp.MustCompile(`(\d+) events? per ([0-9.a-zµμ]+?)\.?(?:\s|$| for)`)

// rateLimitInterval reads the limit a 4029 detail states ("Rate limit
// exceeded: 100 events per 20s for message.send.",
// docs/protocol.md#rate-limits) and returns the interval at which it lets
// one event through (20s / 100), or 0 when it states none.
func rateLimitInterval(detail string) time.Duration {
	m := rateHint.FindStringSubmatch(detail)
	if m == nil {
		return 0
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n <= 0 {
		return 0
	}
	per, err := time.ParseDuration(m[2])
	if err != nil || per <= 0 {
		return 0
	}
	return per / time.Duration(n)
}
