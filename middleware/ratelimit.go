package middleware

import (
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/chatmux/chatmux"
)

// RateLimitBy says whose events share a token bucket.
type RateLimitBy uint8

const (
	// ByUser gives each user one bucket per pattern, shared by all the
	// user's connections; anonymous connections get one bucket each, as
	// with ByConnection. It is the default.
	ByUser RateLimitBy = iota
	// ByConnection gives each connection one bucket per pattern.
	ByConnection
)

// RateLimitOptions configures RateLimitWithOpts. Events and Per are
// required; the zero value of the other fields means their default.
type RateLimitOptions struct {
	// Events is how many events a bucket allows per Per.
	Events int
	// Per is the period over which Events refill.
	Per time.Duration
	// Burst is how many events may come at once, from a full bucket
	// (default Events: a sender idle for Per may send Events at once).
	Burst int
	// By chooses whose events share a bucket (default ByUser).
	By RateLimitBy
}

// RateLimit returns a middleware that allows each user (or, for anonymous
// connections, each connection) events events per period per, for every
// pattern separately, and answers the others with a 4029 error such as
// "Rate limit exceeded: 30 events per 1m0s for message.send.". It is
// RateLimitWithOpts with Events and Per set; it panics when either is not
// positive.
//
//	events.With(middleware.RateLimit(30, time.Minute)).Handle("message.pin", pin)
//
// Buckets are token buckets (golang.org/x/time/rate) that start full and
// refill evenly: one event every per/events. A bucket that has refilled
// completely is forgotten, lazily, by the first event of each refill
// period: the memory held is bounded by the senders of the last two refill
// periods, with no goroutine or timer.
//
// The lifecycle events $connect and $disconnect are never limited. Events
// that match no pattern share one bucket per sender, "unknown events".
//
// One RateLimit value keeps its own buckets: a middleware used on two
// routes with Use limits each pattern separately, and two RateLimit values
// on one route both apply.
//
// RateLimit reads c.Pattern() before the handler runs. Put it on the
// router that holds the routes (Use, With, Group, Route), not on a router
// that only Mounts them: there the pattern is not known yet, and every
// event of the mounted router shares the "unknown events" bucket.
func RateLimit(events int, per time.Duration) chatmux.Middleware {
	return RateLimitWithOpts(RateLimitOptions{Events: events, Per: per})
}

// RateLimitWithOpts is RateLimit with all its options. It panics when
// Events or Per is not positive, when Burst is negative or By is unknown.
func RateLimitWithOpts(opts RateLimitOptions) chatmux.Middleware {
	l := newLimiter(opts, time.Now)
	return l.middleware
}

// limiterShards splits the buckets so that events of different senders
// seldom wait on one lock.
const limiterShards = 16

type limiter struct {
	limit  rate.Limit
	burst  int
	by     RateLimitBy
	events int
	per    time.Duration
	// refill is how long an empty bucket takes to fill up; sweepEvery is
	// how often full buckets are forgotten (refill, at least a second).
	refill     time.Duration
	sweepEvery time.Duration
	now        func() time.Time
	seed       maphash.Seed
	// start is when the limiter was made; lastSweep is when buckets were
	// last swept, in nanoseconds since start (monotonic).
	start     time.Time
	lastSweep atomic.Int64
	shards    [limiterShards]limiterShard
}

type limiterShard struct {
	mu      sync.Mutex
	buckets map[bucketKey]*rate.Limiter
}

// bucketKey names a bucket: a pattern and a sender, the user's id or, for
// anonymous senders and ByConnection, the connection's id.
type bucketKey struct {
	pattern string
	user    int64
	conn    string
}

func newLimiter(opts RateLimitOptions, now func() time.Time) *limiter {
	if opts.Events <= 0 || opts.Per <= 0 {
		panic(fmt.Sprintf("middleware: RateLimit needs Events > 0 and Per > 0, got %d per %v", opts.Events, opts.Per))
	}
	if opts.Burst < 0 {
		panic(fmt.Sprintf("middleware: RateLimit Burst must not be negative, got %d", opts.Burst))
	}
	if opts.By != ByUser && opts.By != ByConnection {
		panic(fmt.Sprintf("middleware: unknown RateLimitBy %d", opts.By))
	}
	burst := opts.Burst
	if burst == 0 {
		burst = opts.Events
	}
	l := &limiter{
		limit:  rate.Limit(float64(opts.Events) / opts.Per.Seconds()),
		burst:  burst,
		by:     opts.By,
		events: opts.Events,
		per:    opts.Per,
		refill: time.Duration(float64(opts.Per) * float64(burst) / float64(opts.Events)),
		now:    now,
		seed:   maphash.MakeSeed(),
	}
	l.sweepEvery = max(l.refill, time.Second)
	l.start = now()
	for i := range l.shards {
		l.shards[i].buckets = map[bucketKey]*rate.Limiter{}
	}
	return l
}

func (l *limiter) middleware(next chatmux.Handler) chatmux.Handler {
	return func(c *chatmux.Context) error {
		if isLifecycle(c) || l.allow(c) {
			return next(c)
		}
		return chatmux.RateLimited(l.detail(c.Pattern()))
	}
}

// detail states the limit that refused an event of pattern.
func (l *limiter) detail(pattern string) string {
	what := pattern
	if what == "" {
		what = "unknown events"
	}
	return fmt.Sprintf("Rate limit exceeded: %d events per %v for %s.", l.events, l.per, what)
}

// allow takes a token from the event's bucket, if there is one left.
func (l *limiter) allow(c *chatmux.Context) bool {
	k := bucketKey{pattern: c.Pattern()}
	var h uint64
	if u := c.User(); u != nil && l.by == ByUser {
		k.user = u.ID
		h = uint64(u.ID) * 0x9E3779B97F4A7C15
	} else {
		k.conn = connID(c)
		h = maphash.String(l.seed, k.conn)
	}
	now := l.now()
	since := int64(now.Sub(l.start))
	if last := l.lastSweep.Load(); since-last >= int64(l.sweepEvery) && l.lastSweep.CompareAndSwap(last, since) {
		l.sweep(now)
	}
	s := &l.shards[(h>>32)%limiterShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[k]
	if b == nil {
		b = rate.NewLimiter(l.limit, l.burst)
		s.buckets[k] = b
	}
	return b.AllowN(now, 1)
}

// sweep forgets the buckets that are full again: a new bucket would be the
// same. The event that finds the last sweep one refill period old runs it,
// shard by shard, so a bucket is kept at most two refill periods after its
// last event, as long as events come; while none come, nothing grows.
func (l *limiter) sweep(now time.Time) {
	full := float64(l.burst)
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for k, b := range s.buckets {
			if b.TokensAt(now) >= full {
				delete(s.buckets, k)
			}
		}
		s.mu.Unlock()
	}
}

// len returns the number of buckets held (for tests).
func (l *limiter) len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.buckets)
		s.mu.Unlock()
	}
	return n
}
