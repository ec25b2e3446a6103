package metrics_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/middleware"
	"github.com/chatmux/chatmux/middleware/metrics"
)

// BenchmarkChain5 routes an event through the five-middleware chain of a
// typical server (Recoverer, Logger, RateLimit with a limit never reached,
// RequireAuth, Metrics) on a reused test context.
func BenchmarkChain5(b *testing.B) {
	run := func(b *testing.B, logger *slog.Logger) {
		m := metrics.New(prometheus.NewRegistry())
		r := chatmux.NewRouter()
		r.Use(
			middleware.Recoverer,
			middleware.Logger(logger),
			middleware.RateLimit(1e9, time.Second),
			middleware.RequireAuth,
			m.Middleware,
		)
		r.HandleFunc("message.send", func(*chatmux.Context) error { return nil })
		c := chatmux.NewTestContext(context.Background(), "message.send", json.RawMessage(`{}`), &chatmux.User{ID: 1})
		b.ReportAllocs()
		for b.Loop() {
			if err := r.ServeEvent(c); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("discard-log", func(b *testing.B) { run(b, slog.New(slog.DiscardHandler)) })
	b.Run("json-log", func(b *testing.B) { run(b, slog.New(slog.NewJSONHandler(io.Discard, nil))) })
}

func BenchmarkMetrics(b *testing.B) {
	m := metrics.New(prometheus.NewRegistry())
	r := chatmux.NewRouter()
	r.Use(m.Middleware)
	r.HandleFunc("message.send", func(*chatmux.Context) error { return nil })
	r.HandleFunc("message.fail", func(*chatmux.Context) error { return chatmux.Validation("x") })
	for _, event := range []string{"message.send", "message.fail"} {
		b.Run(event, func(b *testing.B) {
			c := chatmux.NewTestContext(context.Background(), event, nil, nil)
			b.ReportAllocs()
			for b.Loop() {
				_ = r.ServeEvent(c)
			}
		})
	}
	b.Run("Delivered", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m.Delivered("group-1", 100)
		}
	})
}
