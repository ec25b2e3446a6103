package middleware_test

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/middleware"
)

// step is one event of a rate-limit scenario.
type step struct {
	event string
	user  *chatmux.User
	want  int // code: 0 or 4029
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	alice, bob := &chatmux.User{ID: 1}, &chatmux.User{ID: 2}
	tests := []struct {
		name  string
		mw    chatmux.Middleware
		steps []step
	}{
		{
			name: "burst then refused",
			mw:   middleware.RateLimit(2, time.Hour),
			steps: []step{
				{"message.send", alice, 0},
				{"message.send", alice, 0},
				{"message.send", alice, chatmux.CodeRateLimited},
				{"message.send", alice, chatmux.CodeRateLimited},
			},
		},
		{
			name: "users apart",
			mw:   middleware.RateLimit(1, time.Hour),
			steps: []step{
				{"message.send", alice, 0},
				{"message.send", bob, 0},
				{"message.send", alice, chatmux.CodeRateLimited},
				{"message.send", bob, chatmux.CodeRateLimited},
			},
		},
		{
			name: "patterns apart",
			mw:   middleware.RateLimit(1, time.Hour),
			steps: []step{
				{"message.send", alice, 0},
				{"room.7.typing", alice, 0},
				{"room.8.typing", alice, chatmux.CodeRateLimited}, // same pattern room.{id}.typing
				{"message.send", alice, chatmux.CodeRateLimited},
			},
		},
		{
			name: "unknown events share a bucket",
			mw:   middleware.RateLimit(1, time.Hour),
			steps: []step{
				{"nope.a", alice, 0},
				{"nope.b", alice, chatmux.CodeRateLimited},
				{"message.send", alice, 0},
			},
		},
		{
			name: "lifecycle events never limited",
			mw:   middleware.RateLimit(1, time.Hour),
			steps: []step{
				{chatmux.EventConnect, alice, 0},
				{chatmux.EventConnect, alice, 0},
				{chatmux.EventDisconnect, alice, 0},
				{chatmux.EventDisconnect, alice, 0},
			},
		},
		{
			name: "burst option",
			mw:   middleware.RateLimitWithOpts(middleware.RateLimitOptions{Events: 10, Per: time.Hour, Burst: 1}),
			steps: []step{
				{"message.send", alice, 0},
				{"message.send", alice, chatmux.CodeRateLimited},
			},
		},
		{
			// Each test context is a connection of its own: a
			// per-connection budget is not shared between them.
			name: "by connection",
			mw:   middleware.RateLimitWithOpts(middleware.RateLimitOptions{Events: 1, Per: time.Hour, By: middleware.ByConnection}),
			steps: []step{
				{"message.send", alice, 0},
				{"message.send", alice, 0},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := chatmux.NewRouter()
			r.Use(tc.mw)
			r.NotFound(ok)
			r.Handle("message.send", ok)
			r.Handle("room.{id}.typing", ok)
			r.Handle(chatmux.EventConnect, ok)
			r.Handle(chatmux.EventDisconnect, ok)
			for i, s := range tc.steps {
				if got := errCode(serve(r, s.event, s.user)); got != s.want {
					t.Fatalf("step %d (%s): code %d, want %d", i, s.event, got, s.want)
				}
			}
		})
	}
}

func TestRateLimitDetail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		events int
		per    time.Duration
		event  string
		want   string
	}{
		{30, time.Minute, "message.send", "Rate limit exceeded: 30 events per 1m0s for message.send."},
		{1, time.Second, "room.5.typing", "Rate limit exceeded: 1 events per 1s for room.{id}.typing."},
		{1, time.Hour, "no.route", "Rate limit exceeded: 1 events per 1h0m0s for unknown events."},
	}
	for _, tc := range tests {
		r := chatmux.NewRouter()
		r.Use(middleware.RateLimit(tc.events, tc.per))
		r.NotFound(ok)
		r.Handle("message.send", ok)
		r.Handle("room.{id}.typing", ok)
		// Serve until refused: events+1 calls are, unless the bucket
		// refilled meanwhile (a busy machine may take a second), which
		// only puts the refusal off.
		var err error
		for range tc.events + 100 {
			if err = serve(r, tc.event, &chatmux.User{ID: 1}); err != nil {
				break
			}
		}
		if errCode(err) != chatmux.CodeRateLimited || errDetail(err) != tc.want {
			t.Errorf("%s: got %v, want 4029 %q", tc.event, err, tc.want)
		}
	}
}

func TestRateLimitPanics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts middleware.RateLimitOptions
	}{
		{"zero events", middleware.RateLimitOptions{Per: time.Second}},
		{"negative events", middleware.RateLimitOptions{Events: -1, Per: time.Second}},
		{"zero period", middleware.RateLimitOptions{Events: 1}},
		{"negative burst", middleware.RateLimitOptions{Events: 1, Per: time.Second, Burst: -1}},
		{"unknown by", middleware.RateLimitOptions{Events: 1, Per: time.Second, By: 9}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("RateLimitWithOpts(%+v) did not panic", tc.opts)
				}
			}()
			middleware.RateLimitWithOpts(tc.opts)
		})
	}
}

// TestRateLimitConcurrent: under concurrent use one user gets exactly the
// burst, and other users are not affected.
func TestRateLimitConcurrent(t *testing.T) {
	t.Parallel()
	r := router("x", ok, middleware.RateLimit(50, time.Hour))
	var allowed [4]atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := &chatmux.User{ID: int64(g % 4)}
			for range 40 {
				if serve(r, "x", u) == nil {
					allowed[g%4].Add(1)
				}
			}
		}()
	}
	wg.Wait()
	for u := range allowed {
		if got := allowed[u].Load(); got != 50 {
			t.Errorf("user %d: %d events allowed, want 50", u, got)
		}
	}
}

func TestRateLimitByConnectionSameConnection(t *testing.T) {
	r := chatmux.NewRouter()
	r.Use(middleware.RateLimitWithOpts(middleware.RateLimitOptions{Events: 1, Per: time.Hour, By: middleware.ByConnection}))
	r.Handle("message.send", func(*chatmux.Context) error { return nil })
	c := chatmux.NewTestContext(context.Background(), "message.send", json.RawMessage(`{}`), &chatmux.User{ID: 1, Username: "a"})
	if err := r.ServeEvent(c); err != nil {
		t.Fatalf("first event: %v", err)
	}
	if got := errCode(r.ServeEvent(c)); got != chatmux.CodeRateLimited {
		t.Fatalf("second event on the same connection: code %d, want 4029", got)
	}
}
