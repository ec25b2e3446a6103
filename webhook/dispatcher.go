package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatmux/chatmux/store"
)

// Defaults of Config (docs/protocol.md#offline-webhooks).
const (
	DefaultTimeout    = 10 * time.Second
	DefaultQueueSize  = 10000
	DefaultMaxBatch   = 100
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = 5 * time.Minute
	DefaultMaxAge     = 24 * time.Hour
)

// Config configures a Dispatcher. Zero values take their defaults.
type Config struct {
	// URL receives the POSTs: an absolute http or https URL. Required.
	URL string
	// Secret signs every request (Sign). Required.
	Secret []byte
	// Timeout bounds each request (default 10 s): a request without an
	// answer by then has failed.
	Timeout time.Duration
	// Client sends the requests (default: a client of its own).
	Client *http.Client
	// QueueSize bounds the events waiting in memory (default 10,000). An
	// event that does not fit is not waited for: it is counted (Dropped,
	// or Deferred when the outbox keeps it) and logged.
	QueueSize int
	// MaxBatch bounds the events of one request (default 100).
	MaxBatch int
	// MinBackoff and MaxBackoff bound the wait before a failed batch is
	// tried again: a random time (full jitter) up to MinBackoff doubled
	// at each consecutive failure, at most MaxBackoff (defaults 1 s and
	// 5 min).
	MinBackoff, MaxBackoff time.Duration
	// MaxAge drops an event older than this (by its CreatedAt) instead of
	// sending it (default 24 h): counted as Expired.
	MaxAge time.Duration
	// Lease is how long an outbox row is the node's once written by a
	// send or claimed by a Relay (default 30 s): no other node claims it
	// before. It must exceed Timeout; it is the delay after which the rows
	// of a node that crashed are claimed by the others.
	Lease time.Duration
	// Outbox, when set, keeps the events that have an outbox row
	// (Pending.OutboxID): a delivered event's row is deleted, a failed
	// one's is leased again until its backoff ends (a Relay takes it
	// then), instead of being retried from memory.
	Outbox store.WebhookOutbox
	// Logger receives the overflows and failures (default slog.Default()).
	Logger *slog.Logger
}

// Pending is an event waiting to be sent.
type Pending struct {
	Event Event
	// OutboxID is the event's outbox row, 0 when it has none.
	OutboxID int64
	// LeaseUntil is the end of this node's lease on the outbox row. An
	// event whose lease ends within Config.Timeout is not sent from the
	// queue: it is left to the relays, so that two nodes do not both send
	// it (counted as Deferred).
	LeaseUntil time.Time
	// Attempts counts the earlier attempts (the outbox row's claims).
	Attempts int
}

// Stats are the counts of a Dispatcher since New.
type Stats struct {
	// Delivered counts the events of requests answered 2xx.
	Delivered uint64
	// Retried counts the events of failed requests (each is tried again:
	// from memory, or from the outbox after its backoff).
	Retried uint64
	// Dropped counts the events lost: those that did not fit the queue
	// and have no outbox row, and those still in memory when Shutdown
	// gave up.
	Dropped uint64
	// Deferred counts the events left to the outbox and its relays: they
	// did not fit the queue, their lease was about to end, or Shutdown
	// gave up on them. They are sent later, by any node.
	Deferred uint64
	// Expired counts the events older than MaxAge, dropped unsent.
	Expired uint64
	// Requests counts the requests by status class: "2xx", "3xx", "4xx",
	// "5xx", or "error" (no answer: a network error or the timeout).
	Requests map[string]uint64
	// Queued is the number of events waiting in memory now.
	Queued int
}

// requestClasses are the keys of Stats.Requests.
var requestClasses = []string{"2xx", "3xx", "4xx", "5xx", "error"}

// Dispatcher sends webhook events in batches (see the package comment).
// Create it with New, Start it, and Shutdown it; Enqueue never blocks.
type Dispatcher struct {
	cfg    Config
	target *url.URL
	q      chan Pending

	delivered, retried, dropped, deferred, expired atomic.Uint64
	requests                                       [5]atomic.Uint64 // by requestClasses
	lastLog                                        atomic.Int64     // unix nanoseconds of the last overflow log

	startOnce sync.Once
	closing   atomic.Bool
	quit      chan struct{} // closed by Shutdown: stop waiting, drain
	hard      context.Context
	cancel    context.CancelFunc // cancels hard: Shutdown gave up
	done      chan struct{}      // closed when the sender has stopped
	started   atomic.Bool
}

// New checks cfg and returns a Dispatcher, not yet started.
func New(cfg Config) (*Dispatcher, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("webhook: the URL %q is not an absolute http or https URL", cfg.URL)
	}
	if len(cfg.Secret) == 0 {
		return nil, errors.New("webhook: a secret is required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Lease <= cfg.Timeout {
		return nil, fmt.Errorf("webhook: the lease (%v) must exceed the timeout (%v)", cfg.Lease, cfg.Timeout)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	d := &Dispatcher{cfg: cfg, target: u, q: make(chan Pending, cfg.QueueSize), quit: make(chan struct{}), done: make(chan struct{})}
	d.hard, d.cancel = context.WithCancel(context.Background())
	return d, nil
}

// Config returns the dispatcher's configuration, defaults applied.
func (d *Dispatcher) Config() Config { return d.cfg }

// Outbox returns Config.Outbox: the events of a send are written to it
// when it is set.
func (d *Dispatcher) Outbox() store.WebhookOutbox { return d.cfg.Outbox }

// Start starts the sender. Calling it again does nothing.
func (d *Dispatcher) Start() {
	d.startOnce.Do(func() {
		d.started.Store(true)
		go d.run()
	})
}

// Enqueue queues p for sending without waiting: it reports false when the
// queue is full or the dispatcher is shutting down; p is then counted as
// Deferred (it has an outbox row, which a relay will claim) or Dropped,
// and logged.
func (d *Dispatcher) Enqueue(p Pending) bool {
	if !d.closing.Load() {
		select {
		case d.q <- p:
			return true
		default:
		}
	}
	d.overflow(p)
	return false
}

// overflow counts and logs an event that is not queued (at most one log
// line a second).
func (d *Dispatcher) overflow(p Pending) {
	what := "dropped"
	if p.OutboxID != 0 {
		d.deferred.Add(1)
		what = "left to the outbox"
	} else {
		d.dropped.Add(1)
	}
	now := time.Now().UnixNano()
	if last := d.lastLog.Load(); now-last >= int64(time.Second) && d.lastLog.CompareAndSwap(last, now) {
		d.cfg.Logger.Warn("webhook: the queue is full or closed: event "+what, "event_id", p.Event.ID,
			"queue", cap(d.q), "dropped_total", d.dropped.Load(), "deferred_total", d.deferred.Load())
	}
}

// Len returns the number of events waiting in memory.
func (d *Dispatcher) Len() int { return len(d.q) }

// Free returns the room left in the queue.
func (d *Dispatcher) Free() int { return cap(d.q) - len(d.q) }

// Stats returns the counts since New.
func (d *Dispatcher) Stats() Stats {
	s := Stats{Delivered: d.delivered.Load(), Retried: d.retried.Load(), Dropped: d.dropped.Load(),
		Deferred: d.deferred.Load(), Expired: d.expired.Load(), Requests: map[string]uint64{}, Queued: d.Len()}
	for i, c := range requestClasses {
		s.Requests[c] = d.requests[i].Load()
	}
	return s
}

// Shutdown stops taking events and sends those queued, retrying as usual,
// until the queue is empty or ctx ends. Then it cuts the request in
// flight, and what is left is counted: Deferred when it has an outbox row
// (a relay of any node sends it after its lease), else Dropped. It
// returns ctx's error when it gave up.
func (d *Dispatcher) Shutdown(ctx context.Context) error {
	if !d.closing.CompareAndSwap(false, true) {
		<-d.done
		return nil
	}
	close(d.quit)
	if !d.started.Load() {
		d.Start()
	}
	var err error
	select {
	case <-d.done:
	case <-ctx.Done():
		err = ctx.Err()
		d.cancel()
		<-d.done
	}
	d.cancel()
	d.abandon(nil) // what an Enqueue racing the shutdown still queued
	return err
}

// Backoff returns the wait before attempt n (n >= 1) of a failed batch:
// a uniformly random duration up to min·2^(n-1), at most max ("full
// jitter").
func Backoff(n int, minWait, maxWait time.Duration) time.Duration {
	c := minWait
	for i := 1; i < n && c < maxWait; i++ {
		c *= 2
	}
	c = min(c, maxWait)
	if c <= 0 {
		return 0
	}
	return rand.N(c) + 1
}

// run is the sender: it takes up to MaxBatch events (waiting for the
// first), sends them in one request, and starts again; after a failure it
// waits the backoff first.
func (d *Dispatcher) run() {
	defer close(d.done)
	var carry []Pending
	failures := 0
	for {
		if d.hard.Err() != nil {
			d.abandon(carry)
			return
		}
		batch := carry
		carry = nil
		if len(batch) == 0 {
			select {
			case p := <-d.q:
				batch = append(batch, p)
			case <-d.quit:
				select {
				case p := <-d.q:
					batch = append(batch, p)
				default:
					return
				}
			}
		}
	fill:
		for len(batch) < d.cfg.MaxBatch {
			select {
			case p := <-d.q:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		batch = d.prune(batch)
		if len(batch) == 0 {
			continue
		}
		err := d.post(batch)
		if err == nil {
			failures = 0
			d.delivered.Add(uint64(len(batch)))
			d.outboxDone(batch)
			continue
		}
		if d.hard.Err() != nil {
			d.abandon(batch)
			return
		}
		failures++
		d.retried.Add(uint64(len(batch)))
		d.cfg.Logger.Warn("webhook: delivery failed; retrying after a backoff", "events", len(batch), "failures", failures, "err", err)
		carry = d.reschedule(batch)
		select {
		case <-time.After(Backoff(failures, d.cfg.MinBackoff, d.cfg.MaxBackoff)):
		case <-d.hard.Done():
		}
	}
}

// prune drops the events older than MaxAge (their rows deleted) and leaves
// to the relays those whose lease is about to end.
func (d *Dispatcher) prune(batch []Pending) []Pending {
	now := time.Now()
	out := batch[:0]
	var old []int64
	for _, p := range batch {
		switch {
		case now.Sub(p.Event.CreatedAt) > d.cfg.MaxAge:
			d.expired.Add(1)
			if p.OutboxID != 0 {
				old = append(old, p.OutboxID)
			}
		case p.OutboxID != 0 && !p.LeaseUntil.IsZero() && p.LeaseUntil.Sub(now) < d.cfg.Timeout:
			d.deferred.Add(1)
		default:
			out = append(out, p)
		}
	}
	if len(old) > 0 {
		d.cfg.Logger.Warn("webhook: events older than the maximum age dropped", "events", len(old), "max_age", d.cfg.MaxAge)
		d.outboxCall(func(ctx context.Context, ob store.WebhookOutbox) error { return ob.DeleteWebhookEvents(ctx, old) })
	}
	return out
}

// outboxDone deletes the outbox rows of delivered events.
func (d *Dispatcher) outboxDone(batch []Pending) {
	ids := outboxIDs(batch)
	if len(ids) > 0 {
		d.outboxCall(func(ctx context.Context, ob store.WebhookOutbox) error { return ob.DeleteWebhookEvents(ctx, ids) })
	}
}

// reschedule leases the outbox rows of a failed batch again until their
// backoff ends, and returns the events without a row, to be retried from
// memory. A row that cannot be rescheduled is retried when its lease ends
// anyway.
func (d *Dispatcher) reschedule(batch []Pending) []Pending {
	var mem []Pending
	var ids []int64
	attempts := 0
	for _, p := range batch {
		p.Attempts++
		if p.OutboxID != 0 && d.cfg.Outbox != nil {
			ids = append(ids, p.OutboxID)
			attempts = max(attempts, p.Attempts)
			continue
		}
		mem = append(mem, p)
	}
	if len(ids) > 0 {
		after := Backoff(attempts, d.cfg.MinBackoff, d.cfg.MaxBackoff)
		d.outboxCall(func(ctx context.Context, ob store.WebhookOutbox) error { return ob.RetryWebhookEvents(ctx, ids, after) })
	}
	return mem
}

// abandon counts what is left when Shutdown gave up.
func (d *Dispatcher) abandon(carry []Pending) {
	for {
		for _, p := range carry {
			if p.OutboxID != 0 {
				d.deferred.Add(1)
			} else {
				d.dropped.Add(1)
			}
		}
		if len(carry) > 0 {
			d.cfg.Logger.Warn("webhook: shutting down with events not delivered", "events", len(carry))
		}
		carry = carry[:0]
		for len(carry) < d.cfg.MaxBatch {
			select {
			case p := <-d.q:
				carry = append(carry, p)
				continue
			default:
			}
			break
		}
		if len(carry) == 0 {
			return
		}
	}
}

// outboxCall runs a call of the outbox, bounded by Timeout (also after
// Shutdown gave up: a delivered event's row should go), and logs its
// failure.
func (d *Dispatcher) outboxCall(f func(ctx context.Context, ob store.WebhookOutbox) error) {
	if d.cfg.Outbox == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.Timeout)
	defer cancel()
	if err := f(ctx, d.cfg.Outbox); err != nil {
		d.cfg.Logger.Warn("webhook: outbox update failed (the rows are retried when their lease ends)", "err", err)
	}
}

func outboxIDs(batch []Pending) []int64 {
	var ids []int64
	for _, p := range batch {
		if p.OutboxID != 0 {
			ids = append(ids, p.OutboxID)
		}
	}
	return ids
}

// post sends one batch: 2xx is success, anything else an error.
func (d *Dispatcher) post(batch []Pending) error {
	evs := make([]Event, len(batch))
	for i, p := range batch {
		evs[i] = p.Event
	}
	body, err := json.Marshal(Body{Events: evs})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(d.hard, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.target.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "chatmux-webhook/1")
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(d.cfg.Secret, ts, body))
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		d.requests[4].Add(1)
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch c := resp.StatusCode / 100; {
	case c >= 2 && c <= 5:
		d.requests[c-2].Add(1)
	default:
		d.requests[4].Add(1)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook: the receiver answered %s", resp.Status)
	}
	return nil
}
