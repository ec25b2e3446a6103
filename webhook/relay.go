package webhook

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux/store"
)

// DefaultLease is the default of Config.Lease.
const DefaultLease = 30 * time.Second

// DefaultRelayInterval is the default of RelayConfig.Interval.
const DefaultRelayInterval = time.Second

// Builder makes the events of claimed outbox rows, in the order of rows.
// An event with a zero ID stands for a row with nothing left to send (its
// message or its recipients are gone): the row is deleted.
type Builder func(ctx context.Context, rows []store.OutboxEvent) ([]Event, error)

// RelayConfig configures a Relay. Zero values take their defaults.
type RelayConfig struct {
	// Interval is the time between two claims while the outbox has no
	// due row (default 1 s).
	Interval time.Duration
	// Logger receives the failures (default slog.Default()).
	Logger *slog.Logger
}

// Relay moves the due rows of the outbox (their lease ended: their node
// crashed, their delivery failed and its backoff is over, or they did not
// fit a queue) into a Dispatcher. Every node runs one; a row is claimed by
// one of them at a time (store.WebhookOutbox).
type Relay struct {
	d     *Dispatcher
	ob    store.WebhookOutbox
	build Builder
	cfg   RelayConfig
}

// NewRelay returns a relay of ob's rows into d, whose events build makes.
func NewRelay(d *Dispatcher, ob store.WebhookOutbox, build Builder, cfg RelayConfig) *Relay {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultRelayInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Relay{d: d, ob: ob, build: build, cfg: cfg}
}

// Run claims due rows every Interval (at once again while they fill a
// batch) until ctx ends. Failures are logged and retried at the next
// tick.
func (r *Relay) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		n, err := r.Poll(ctx)
		if err != nil && ctx.Err() == nil {
			r.cfg.Logger.Warn("webhook: relay: claiming the outbox failed", "err", err)
		}
		if n < r.d.cfg.MaxBatch || err != nil {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		} else if ctx.Err() != nil {
			return
		}
	}
}

// Poll claims up to one batch of due rows (no more than the dispatcher's
// queue has room for), builds their events and queues them; it returns
// the number of rows claimed.
func (r *Relay) Poll(ctx context.Context) (int, error) {
	limit := min(r.d.Free(), r.d.cfg.MaxBatch)
	if limit <= 0 {
		return 0, nil
	}
	lease := r.d.cfg.Lease
	rows, err := r.ob.ClaimWebhookEvents(ctx, lease, limit)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	until := time.Now().Add(lease)
	evs, err := r.build(ctx, rows)
	if err == nil && len(evs) != len(rows) {
		err = fmt.Errorf("webhook: relay: %d events built for %d rows", len(evs), len(rows))
	}
	if err != nil {
		// The rows are claimed again when their lease ends.
		return len(rows), err
	}
	var gone []int64
	for i, row := range rows {
		if evs[i].ID == uuid.Nil {
			gone = append(gone, row.ID)
			continue
		}
		r.d.Enqueue(Pending{Event: evs[i], OutboxID: row.ID, LeaseUntil: until, Attempts: row.Attempts})
	}
	if len(gone) > 0 {
		if err := r.ob.DeleteWebhookEvents(ctx, gone); err != nil {
			return len(rows), err
		}
	}
	return len(rows), nil
}
