package chat

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestBoundedStuckCalls: calls that outlive their deadline are counted
// while they run on; past maxStuckCalls, bounded fails at once without
// starting another; once they return, calls run again.
func TestBoundedStuckCalls(t *testing.T) {
	release := make(chan struct{})
	hang := func(context.Context) (int, error) { <-release; return 1, nil }
	for i := range maxStuckCalls {
		if _, err := bounded(context.Background(), time.Microsecond, hang); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("call %d: %v, want a deadline error", i, err)
		}
	}
	if n := stuckCalls.Load(); n != maxStuckCalls {
		t.Fatalf("%d stuck calls, want %d", n, maxStuckCalls)
	}
	ran := false
	if _, err := bounded(context.Background(), time.Hour, func(context.Context) (int, error) { ran = true; return 0, nil }); !errors.Is(err, context.DeadlineExceeded) || ran {
		t.Fatalf("past the bound: err %v, ran %v; want a deadline error without running", err, ran)
	}
	close(release)
	deadline := time.Now().Add(30 * time.Second)
	for stuckCalls.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d stuck calls left after they returned", stuckCalls.Load())
		}
		time.Sleep(time.Millisecond)
	}
	if v, err := bounded(context.Background(), time.Hour, func(context.Context) (int, error) { return 7, nil }); err != nil || v != 7 {
		t.Fatalf("after: %d, %v", v, err)
	}
}

// BenchmarkBounded is the cost of running a store call under its deadline
// (a goroutine, a timer and a channel per call) against calling it as is.
func BenchmarkBounded(b *testing.B) {
	f := func(context.Context) (int, error) { return 1, nil }
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = bounded(context.Background(), 0, f)
		}
	})
	b.Run("bounded", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = bounded(context.Background(), time.Second, f)
		}
	})
}
