package middleware_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/middleware"
)

// benchEvent routes one event through mws on a reused test context: the
// cost measured is the middleware's, not the context's. (The five-middleware
// chain with Prometheus metrics is in package middleware/metrics.)
func benchEvent(b *testing.B, mws ...chatmux.Middleware) {
	b.Helper()
	r := chatmux.NewRouter()
	r.Use(mws...)
	r.HandleFunc("message.send", ok)
	c := chatmux.NewTestContext(context.Background(), "message.send", json.RawMessage(`{}`), &chatmux.User{ID: 1})
	b.ReportAllocs()
	for b.Loop() {
		if err := r.ServeEvent(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMiddleware(b *testing.B) {
	jsonLog := slog.New(slog.NewJSONHandler(io.Discard, nil))
	high := middleware.RateLimit(1e9, time.Second)
	b.Run("none", func(b *testing.B) { benchEvent(b) })
	b.Run("Recoverer", func(b *testing.B) { benchEvent(b, middleware.Recoverer) })
	b.Run("Logger/discard", func(b *testing.B) { benchEvent(b, middleware.Logger(discard)) })
	b.Run("Logger/json", func(b *testing.B) { benchEvent(b, middleware.Logger(jsonLog)) })
	b.Run("RequestID", func(b *testing.B) { benchEvent(b, middleware.RequestID) })
	b.Run("RateLimit", func(b *testing.B) { benchEvent(b, high) })
	b.Run("RequireAuth", func(b *testing.B) { benchEvent(b, middleware.RequireAuth) })
	b.Run("Timeout", func(b *testing.B) { benchEvent(b, middleware.Timeout(time.Second)) })
	b.Run("Chain4", func(b *testing.B) {
		benchEvent(b, middleware.Recoverer, middleware.Logger(discard), middleware.RateLimit(1e9, time.Second), middleware.RequireAuth)
	})
}

// BenchmarkRateLimitParallel: many users on all cores, the shards' locks
// under contention.
func BenchmarkRateLimitParallel(b *testing.B) {
	r := chatmux.NewRouter()
	r.Use(middleware.RateLimit(1e9, time.Second))
	r.HandleFunc("message.send", ok)
	b.ReportAllocs()
	var worker atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		base := worker.Add(1) * 1000
		users := make([]*chatmux.Context, 64)
		for i := range users {
			users[i] = chatmux.NewTestContext(context.Background(), "message.send", nil, &chatmux.User{ID: base + int64(i)})
		}
		i := 0
		for pb.Next() {
			_ = r.ServeEvent(users[i%len(users)])
			i++
		}
	})
}
