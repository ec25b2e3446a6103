package middleware

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/chatmux/chatmux"
)

type fakeClock struct{ t time.Time }

func (f *fakeClock) now() time.Time { return f.t }

func userEvent(id int64) *chatmux.Context {
	return chatmux.NewTestContext(context.Background(), "x", json.RawMessage(`{}`), &chatmux.User{ID: id})
}

// TestLimiterRefill: a bucket refills one event every per/events.
func TestLimiterRefill(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := newLimiter(RateLimitOptions{Events: 3, Per: 3 * time.Second}, clk.now)
	c := userEvent(1)
	steps := []struct {
		advance time.Duration
		want    bool
	}{
		{0, true}, {0, true}, {0, true}, {0, false},
		{500 * time.Millisecond, false},
		{500 * time.Millisecond, true}, // 1s: one token back
		{0, false},
		{10 * time.Second, true}, {0, true}, {0, true}, {0, false}, // full, capped at the burst
	}
	for i, s := range steps {
		clk.t = clk.t.Add(s.advance)
		if got := l.allow(c); got != s.want {
			t.Fatalf("step %d: allow = %v, want %v", i, got, s.want)
		}
	}
}

// TestLimiterEviction: buckets that have refilled are forgotten while the
// limiter is in use, and only those.
func TestLimiterEviction(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := newLimiter(RateLimitOptions{Events: 10, Per: time.Minute}, clk.now)
	const users = 1000
	for id := range int64(users) {
		l.allow(userEvent(id))
	}
	if got := l.len(); got != users {
		t.Fatalf("len = %d, want %d", got, users)
	}
	// Half a refill period later, nothing is full again.
	clk.t = clk.t.Add(30 * time.Second)
	for id := range int64(users) {
		l.allow(userEvent(id))
	}
	if got := l.len(); got != users {
		t.Fatalf("len after 30s = %d, want %d (nothing refilled yet)", got, users)
	}
	// Users 0..9 stay busy; the others go idle for two refill periods.
	for range 2 * 60 {
		clk.t = clk.t.Add(time.Second)
		for id := range int64(10) {
			l.allow(userEvent(id))
		}
	}
	if got := l.len(); got != 10 {
		t.Fatalf("len after the idle users refilled = %d, want 10", got)
	}
	// Every busy user's bucket is still there (they are never full).
	for id := range int64(10) {
		k := bucketKey{pattern: "", user: id}
		s := &l.shards[(uint64(id)*0x9E3779B97F4A7C15>>32)%limiterShards]
		s.mu.Lock()
		_, found := s.buckets[k]
		s.mu.Unlock()
		if !found {
			t.Errorf("busy user %d's bucket was evicted", id)
		}
	}
}
