package main

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// churnStats counts what the churning connections did.
type churnStats struct {
	cycles      atomic.Int64
	connectErrs atomic.Int64
	lastErr     atomic.Pointer[string]
	connectLat  hist
	mu          sync.Mutex
}

// churn keeps closing and reopening the connection of one churning member
// of rm until ctx ends: open (and, on the bare server, join the room's
// group), stay a random time around o.churnHold, close (every other time
// abruptly, without the close handshake).
func (w *world) churn(ctx context.Context, rm *room, first *benchConn, st *churnStats) {
	c := first
	name := first.name
	for cycle := 0; ; cycle++ {
		hold := time.Duration(rand.Float64() * 2 * float64(w.o.churnHold))
		select {
		case <-time.After(hold):
		case <-ctx.Done():
		}
		if c != nil {
			c.close(cycle%2 == 1)
			c = nil
		}
		if ctx.Err() != nil {
			return
		}
		t0 := time.Now()
		nc, err := w.connect(ctx, name)
		if err == nil && w.t.bare {
			_, err = nc.request(ctx, "bench.join", map[string]string{"group": rm.id}, "bench.joined", nil)
			if err != nil {
				nc.close(true)
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			st.connectErrs.Add(1)
			msg := err.Error()
			st.lastErr.Store(&msg)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		st.mu.Lock()
		st.connectLat.record(int64(time.Since(t0)))
		st.mu.Unlock()
		st.cycles.Add(1)
		c = nc
	}
}

// runChurn runs fanout while churning members' connections open and close,
// and checks that the members that stay get every message.
func runChurn(ctx context.Context, o *options) (*report, error) {
	t, err := startTarget(ctx, o)
	if err != nil {
		return nil, err
	}
	defer t.stop()
	w, err := buildRooms(ctx, o, t)
	if err != nil {
		return nil, err
	}
	var st churnStats
	m := w.measure(ctx, func(ctx context.Context) {
		var wg sync.WaitGroup
		for _, rm := range w.rooms {
			for _, c := range rm.churners {
				wg.Add(1)
				go func() { defer wg.Done(); w.churn(ctx, rm, c, &st) }()
			}
		}
		wg.Wait()
	})
	w.churnConns = nil // closed by their churn loops
	rep := &report{scenario: o.scenario}
	w.describe(rep, t)
	rep.add("churners", o.churners, "")
	rep.add("churn_hold_mean_ms", o.churnHold.Milliseconds(), "ms")
	w.addMeasurement(rep, m)
	secs := m.sendEnd.Sub(m.start).Seconds()
	rep.add("churn_cycles", st.cycles.Load(), "")
	rep.add("churn_connects_per_s", round(float64(st.cycles.Load())/secs, 1), "/s")
	rep.add("churn_connect_errors", st.connectErrs.Load(), "")
	rep.add("churn_connect_latency_ms", st.connectLat.summary(), "ms")
	if p := st.lastErr.Load(); p != nil {
		rep.note("last churn error: %s", *p)
	}
	w.close()
	return rep, ctx.Err()
}
