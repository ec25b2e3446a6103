package middleware_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/middleware"
)

// logLines decodes the JSON log lines in buf.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	dec := json.NewDecoder(buf)
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("bad log line: %v", err)
		}
		out = append(out, m)
	}
	return out
}

func TestLogger(t *testing.T) {
	t.Parallel()
	user := &chatmux.User{ID: 42}
	tests := []struct {
		name        string
		event       string
		user        *chatmux.User
		err         error
		wantPattern string
		wantLevel   string
		wantOutcome string
		wantErr     bool
	}{
		{name: "ok", event: "message.send", user: user, wantPattern: "message.send", wantLevel: "INFO", wantOutcome: "ok"},
		{name: "anonymous", event: "message.send", wantPattern: "message.send", wantLevel: "INFO", wantOutcome: "ok"},
		{name: "validation", event: "message.send", user: user, err: chatmux.Validation("bad"), wantPattern: "message.send", wantLevel: "INFO", wantOutcome: "4003"},
		{name: "permission", event: "message.send", user: user, err: chatmux.PermissionDenied("no"), wantPattern: "message.send", wantLevel: "INFO", wantOutcome: "4002"},
		{name: "rate limited", event: "message.send", user: user, err: chatmux.RateLimited("slow down"), wantPattern: "message.send", wantLevel: "INFO", wantOutcome: "4029"},
		{name: "internal", event: "message.send", user: user, err: chatmux.Internal(errBoom), wantPattern: "message.send", wantLevel: "ERROR", wantOutcome: "4006", wantErr: true},
		{name: "plain error", event: "message.send", user: user, err: errBoom, wantPattern: "message.send", wantLevel: "ERROR", wantOutcome: "4006", wantErr: true},
		{name: "odd code", event: "message.send", user: user, err: chatmux.NewError(1011, "x"), wantPattern: "message.send", wantLevel: "ERROR", wantOutcome: "1011", wantErr: true},
		{name: "unknown event", event: "no.such.event", user: user, wantPattern: "", wantLevel: "INFO", wantOutcome: "ok"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&buf, nil))
			r := router("message.send", func(*chatmux.Context) error { return tc.err }, middleware.Logger(logger))
			err := serve(r, tc.event, tc.user)
			if !errors.Is(err, tc.err) {
				t.Fatalf("Logger changed the error: got %v, want %v", err, tc.err)
			}
			lines := logLines(t, &buf)
			if len(lines) != 1 {
				t.Fatalf("got %d log lines, want 1: %v", len(lines), lines)
			}
			l := lines[0]
			want := map[string]any{
				"level":   tc.wantLevel,
				"msg":     "chatmux: event",
				"event":   tc.event,
				"pattern": tc.wantPattern,
				"outcome": tc.wantOutcome,
			}
			for k, v := range want {
				if l[k] != v {
					t.Errorf("%s = %v, want %v", k, l[k], v)
				}
			}
			if id, _ := l["conn"].(string); !strings.HasPrefix(id, "test-") {
				t.Errorf("conn = %v, want the test connection's id", l["conn"])
			}
			wantUser := any(nil)
			if tc.user != nil {
				wantUser = float64(tc.user.ID)
			}
			if u, present := l["user"]; !present || u != wantUser {
				t.Errorf("user = %v (present %v), want %v", u, present, wantUser)
			}
			if _, ok := l["duration"].(float64); !ok {
				t.Errorf("duration = %v, want a number", l["duration"])
			}
			if e, has := l["err"]; has != tc.wantErr || (has && e != err.Error()) {
				t.Errorf("err attribute = %v (present %v), want present %v", e, has, tc.wantErr)
			}
			if _, has := l["request_id"]; has {
				t.Errorf("request_id logged without RequestID")
			}
		})
	}
}

func TestLoggerRequestID(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	var seen string
	r := router("x", func(c *chatmux.Context) error {
		seen = middleware.GetRequestID(c)
		return nil
	}, middleware.RequestID, middleware.Logger(logger))
	if err := serve(r, "x", nil); err != nil {
		t.Fatal(err)
	}
	lines := logLines(t, &buf)
	if len(lines) != 1 || seen == "" || lines[0]["request_id"] != seen {
		t.Fatalf("request_id = %v, handler saw %q", lines, seen)
	}
}

// TestLoggerLevel: below the logger's level nothing is written, and the
// 4006 line still is.
func TestLoggerLevel(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var fail error
	r := router("x", func(*chatmux.Context) error { return fail }, middleware.Logger(logger))
	if err := serve(r, "x", nil); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Fatalf("info line written at level warn: %s", buf.String())
	}
	fail = errBoom
	_ = serve(r, "x", nil)
	if lines := logLines(t, &buf); len(lines) != 1 || lines[0]["level"] != "ERROR" {
		t.Fatalf("got %v, want one ERROR line", lines)
	}
}

func TestOutcome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want string
	}{
		{nil, "ok"},
		{chatmux.PermissionDenied("x"), "4002"},
		{chatmux.Validation("x"), "4003"},
		{chatmux.NotFound(), "4004"},
		{chatmux.Constraint(errBoom), "4005"},
		{chatmux.Internal(errBoom), "4006"},
		{errBoom, "4006"},
		{fmt.Errorf("wrapped: %w", chatmux.RateLimited("x")), "4029"},
		{chatmux.NewError(4100, "x"), "4100"},
	}
	for _, tc := range tests {
		if got := middleware.Outcome(tc.err); got != tc.want {
			t.Errorf("Outcome(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	var ids []string
	r := router("x", func(c *chatmux.Context) error {
		ids = append(ids, middleware.GetRequestID(c))
		return nil
	}, middleware.RequestID)
	for range 3 {
		if err := serve(r, "x", nil); err != nil {
			t.Fatal(err)
		}
	}
	re := regexp.MustCompile(`^[A-Z2-7]{10}-\d{6,}$`)
	seen := map[string]bool{}
	for _, id := range ids {
		if !re.MatchString(id) {
			t.Errorf("id %q does not look like PREFIX-000001", id)
		}
		if seen[id] {
			t.Errorf("id %q repeated", id)
		}
		seen[id] = true
	}
	if got := middleware.GetRequestID(chatmux.NewTestContext(t.Context(), "x", nil, nil)); got != "" {
		t.Errorf("GetRequestID without RequestID = %q, want empty", got)
	}
}

// TestRequestIDContext: the id is a value of the event's context, seen
// through contexts derived from it (a Timeout's), out of reach of a string
// key, and gone once the chain returns.
func TestRequestIDContext(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mws  []chatmux.Middleware
		want bool
	}{
		{"RequestID", []chatmux.Middleware{middleware.RequestID}, true},
		{"RequestID then Timeout", []chatmux.Middleware{middleware.RequestID, middleware.Timeout(time.Minute)}, true},
		{"Timeout then RequestID", []chatmux.Middleware{middleware.Timeout(time.Minute), middleware.RequestID}, true},
		{"a string key is not the id", []chatmux.Middleware{func(next chatmux.Handler) chatmux.Handler {
			return func(c *chatmux.Context) error {
				c.Set("request_id", "forged")
				return next(c)
			}
		}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fromCtx, fromC string
			r := router("x", func(c *chatmux.Context) error {
				fromC = middleware.GetRequestID(c)
				fromCtx = middleware.RequestIDFromContext(c.Context())
				return nil
			}, tt.mws...)
			c := chatmux.NewTestContext(t.Context(), "x", json.RawMessage(`{}`), nil)
			if err := r.ServeEvent(c); err != nil {
				t.Fatal(err)
			}
			if (fromC != "") != tt.want || fromCtx != fromC {
				t.Errorf("GetRequestID = %q, RequestIDFromContext = %q; want an id: %v", fromC, fromCtx, tt.want)
			}
			if got := middleware.GetRequestID(c); got != "" {
				t.Errorf("after the chain returned, GetRequestID = %q, want empty", got)
			}
		})
	}
	if got := middleware.RequestIDFromContext(nil); got != "" {
		t.Errorf("RequestIDFromContext(nil) = %q", got)
	}
}
