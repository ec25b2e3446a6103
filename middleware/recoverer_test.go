package middleware_test

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/middleware"
)

var errBoom = errors.New("boom")

// nilMapWrite is a handler with a bug: it panics with a runtime error.
func nilMapWrite(*chatmux.Context) error {
	var m map[string]int
	//lint:ignore SA5000 the runtime panic is the point
	m["x"] = 1
	return nil
}

func TestRecoverer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		h         chatmux.Handler
		wantCode  int
		wantIs    error  // errors.Is target, when set
		wantLog   string // in the log, when set
		wantNoLog bool
	}{
		{name: "no panic", h: ok, wantCode: 0, wantNoLog: true},
		{name: "error passes", h: func(*chatmux.Context) error { return chatmux.Validation("bad") }, wantCode: chatmux.CodeValidation, wantNoLog: true},
		{name: "panic string", h: func(*chatmux.Context) error { panic("kaput") }, wantCode: chatmux.CodeInternal, wantLog: "kaput"},
		{name: "panic error", h: func(*chatmux.Context) error { panic(errBoom) }, wantCode: chatmux.CodeInternal, wantIs: errBoom, wantLog: "boom"},
		{name: "runtime error", h: nilMapWrite, wantCode: chatmux.CodeInternal, wantLog: "assignment to entry in nil map"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&buf, nil))
			r := router("room.{id}.x", tc.h, middleware.RecovererWith(logger))
			err := serve(r, "room.7.x", &chatmux.User{ID: 3})
			if got := errCode(err); got != tc.wantCode {
				t.Fatalf("code = %d (%v), want %d", got, err, tc.wantCode)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.wantIs)
			}
			if tc.wantCode == chatmux.CodeInternal && errDetail(err) != chatmux.DetailInternal {
				t.Errorf("detail = %v, want %q", errDetail(err), chatmux.DetailInternal)
			}
			log := buf.String()
			if tc.wantNoLog {
				if log != "" {
					t.Errorf("unexpected log: %s", log)
				}
				return
			}
			for _, want := range []string{"level=ERROR", "panic in handler", tc.wantLog, "event=room.7.x", "pattern=room.{id}.x", "user=3", "stack=", "recoverer_test.go"} {
				if !strings.Contains(log, want) {
					t.Errorf("log lacks %q:\n%s", want, log)
				}
			}
		})
	}
}

func TestRecovererDefaultLogger(t *testing.T) {
	// Not parallel: it swaps slog's default logger.
	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })

	for _, mw := range []chatmux.Middleware{middleware.Recoverer, middleware.RecovererWith(nil)} {
		buf.Reset()
		r := router("x", func(*chatmux.Context) error { panic("default") }, mw)
		if err := serve(r, "x", nil); errCode(err) != chatmux.CodeInternal {
			t.Fatalf("err = %v, want 4006", err)
		}
		if !strings.Contains(buf.String(), "panic=default") || !strings.Contains(buf.String(), "user=<nil>") {
			t.Errorf("default logger got:\n%s", buf.String())
		}
	}
}

// TestRecovererCoversLaterMiddleware: a panic in middleware after the
// recoverer is recovered too.
func TestRecovererCoversLaterMiddleware(t *testing.T) {
	t.Parallel()
	panicky := func(chatmux.Handler) chatmux.Handler {
		return func(*chatmux.Context) error { panic("in middleware") }
	}
	r := router("x", ok, middleware.RecovererWith(slog.New(slog.NewTextHandler(io.Discard, nil))), panicky)
	if err := serve(r, "x", nil); errCode(err) != chatmux.CodeInternal {
		t.Fatalf("err = %v, want 4006", err)
	}
}
