package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/middleware"
)

func TestTimeout(t *testing.T) {
	t.Parallel()
	// waits blocks until the event's context ends, as a database call would.
	waits := func(wrap func(error) error) chatmux.Handler {
		return func(c *chatmux.Context) error {
			<-c.Context().Done()
			return wrap(c.Context().Err())
		}
	}
	tests := []struct {
		name       string
		d          time.Duration
		h          chatmux.Handler
		wantCode   int
		wantDetail any
	}{
		{name: "in time", d: time.Second, h: ok},
		{name: "error in time", d: time.Second, h: func(*chatmux.Context) error { return chatmux.Validation("x") }, wantCode: chatmux.CodeValidation},
		{name: "deadline exceeded", d: 10 * time.Millisecond, h: waits(func(err error) error { return err }), wantCode: chatmux.CodeInternal, wantDetail: middleware.DetailTimeout},
		{name: "wrapped", d: 10 * time.Millisecond, h: waits(func(err error) error { return fmt.Errorf("failed to query: %w", err) }), wantCode: chatmux.CodeInternal, wantDetail: middleware.DetailTimeout},
		{name: "driver error after deadline", d: 10 * time.Millisecond, h: waits(func(error) error { return errors.New("pq: canceling statement") }), wantCode: chatmux.CodeInternal, wantDetail: middleware.DetailTimeout},
		{name: "*Error after deadline kept", d: 10 * time.Millisecond, h: waits(func(error) error { return chatmux.NotFound() }), wantCode: chatmux.CodeNotFound},
		{name: "nil after deadline kept", d: 10 * time.Millisecond, h: waits(func(error) error { return nil })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := router("x", tc.h, middleware.Timeout(tc.d))
			c := chatmux.NewTestContext(context.Background(), "x", nil, nil)
			orig := c.Context()
			err := r.ServeEvent(c)
			if got := errCode(err); got != tc.wantCode && !(tc.wantCode == 0 && err == nil) {
				t.Fatalf("code = %d (%v), want %d", got, err, tc.wantCode)
			}
			if tc.wantDetail != nil {
				if errDetail(err) != tc.wantDetail {
					t.Errorf("detail = %v, want %v", errDetail(err), tc.wantDetail)
				}
				if errors.Unwrap(err) == nil {
					t.Errorf("the handler's error is not kept as the cause")
				}
			}
			if c.Context() != orig {
				t.Errorf("context not restored")
			}
		})
	}
}

func TestTimeoutSetsDeadline(t *testing.T) {
	t.Parallel()
	var deadline time.Time
	var has bool
	r := router("x", func(c *chatmux.Context) error {
		deadline, has = c.Context().Deadline()
		return nil
	}, middleware.Timeout(time.Minute))
	before := time.Now()
	if err := serve(r, "x", nil); err != nil {
		t.Fatal(err)
	}
	if !has || deadline.Before(before.Add(time.Minute)) || deadline.After(time.Now().Add(time.Minute)) {
		t.Fatalf("deadline = %v (set %v), want about a minute from now", deadline, has)
	}
}

// TestTimeoutParentCancelled: an end that is not Timeout's own (the
// connection closed) is not reported as a timeout.
func TestTimeoutParentCancelled(t *testing.T) {
	t.Parallel()
	parent, cancel := context.WithCancel(context.Background())
	cancel()
	r := router("x", func(c *chatmux.Context) error { return c.Context().Err() }, middleware.Timeout(time.Hour))
	err := r.ServeEvent(chatmux.NewTestContext(parent, "x", nil, nil))
	if !errors.Is(err, context.Canceled) || errCode(err) != -1 {
		t.Fatalf("err = %v, want context.Canceled as is", err)
	}
}

// TestTimeoutRestoresAfterPanic: the context is put back even when the
// handler panics (and Recoverer, outside, recovers).
func TestTimeoutRestoresAfterPanic(t *testing.T) {
	t.Parallel()
	r := router("x", func(*chatmux.Context) error { panic("x") },
		middleware.RecovererWith(slog.New(slog.NewTextHandler(io.Discard, nil))), middleware.Timeout(time.Hour))
	c := chatmux.NewTestContext(context.Background(), "x", nil, nil)
	orig := c.Context()
	if err := r.ServeEvent(c); errCode(err) != chatmux.CodeInternal {
		t.Fatalf("err = %v", err)
	}
	if c.Context() != orig {
		t.Fatal("context not restored after a panic")
	}
}

func TestTimeoutPanics(t *testing.T) {
	t.Parallel()
	for _, d := range []time.Duration{0, -time.Second} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Timeout(%v) did not panic", d)
				}
			}()
			middleware.Timeout(d)
		}()
	}
}
