package middleware_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/middleware"
)

var discard = slog.New(slog.DiscardHandler)

// startServer serves router over a real WebSocket server. Clients dial
// with ?user=ID to be that user.
func startServer(t *testing.T, router chatmux.Router) string {
	t.Helper()
	srv := chatmux.NewServer(router, chatmux.ServerOptions{Logger: discard, Authenticate: func(r *http.Request) (*chatmux.User, error) {
		id := r.URL.Query().Get("user")
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			return nil, err
		}
		return &chatmux.User{ID: n}, nil
	}})
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		ts.Close()
	})
	return "ws" + strings.TrimPrefix(ts.URL, "http")
}

type client struct {
	t  *testing.T
	ws *websocket.Conn
}

func dial(t *testing.T, url string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	return &client{t: t, ws: ws}
}

// call sends an event and returns the one frame that answers it.
func (c *client) call(event string) map[string]any {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msg := `{"event_type":` + strconv.Quote(event) + `,"data":{}}`
	if err := c.ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
	_, b, err := c.ws.Read(ctx)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		c.t.Fatalf("answer %s: %v", b, err)
	}
	return out
}

// answerCode returns the error code of an answer, 0 for a dispatch.
func answerCode(t *testing.T, answer map[string]any) (int, any) {
	t.Helper()
	e, isErr := answer["error"].(map[string]any)
	if !isErr {
		if answer["eventType"] != "ok" {
			t.Fatalf("unexpected answer %v", answer)
		}
		return 0, nil
	}
	code, _ := e["code"].(float64)
	return int(code), e["detail"]
}

func pong(c *chatmux.Context) error { return c.Send("ok", map[string]string{"pattern": c.Pattern()}) }

// TestEndToEndRateLimit: over real sockets, a user's connections share a
// bucket (4029 once it is empty), other users have their own, and
// ByConnection separates the connections of one user.
func TestEndToEndRateLimit(t *testing.T) {
	t.Parallel()
	r := chatmux.NewRouter()
	r.Use(middleware.Recoverer)
	r.With(middleware.RateLimit(2, time.Hour)).HandleFunc("message.send", pong)
	r.With(middleware.RateLimitWithOpts(middleware.RateLimitOptions{Events: 1, Per: time.Hour, By: middleware.ByConnection})).HandleFunc("room.typing", pong)
	url := startServer(t, r)

	a1, a2, b := dial(t, url+"?user=1"), dial(t, url+"?user=1"), dial(t, url+"?user=2")
	steps := []struct {
		c     *client
		event string
		want  int
	}{
		{a1, "message.send", 0},
		{a2, "message.send", 0},
		{a1, "message.send", chatmux.CodeRateLimited}, // user 1's two connections share the bucket
		{a2, "message.send", chatmux.CodeRateLimited},
		{b, "message.send", 0}, // user 2 has its own
		{a1, "room.typing", 0}, // ByConnection: one bucket per connection
		{a2, "room.typing", 0},
		{a1, "room.typing", chatmux.CodeRateLimited},
		{a1, "message.send", chatmux.CodeRateLimited}, // the connection stays usable
	}
	for i, s := range steps {
		code, detail := answerCode(t, s.c.call(s.event))
		if code != s.want {
			t.Fatalf("step %d (%s): code %d (%v), want %d", i, s.event, code, detail, s.want)
		}
		if code == chatmux.CodeRateLimited && s.event == "message.send" {
			if want := "Rate limit exceeded: 2 events per 1h0m0s for message.send."; detail != want {
				t.Errorf("detail = %q, want %q", detail, want)
			}
		}
	}
}

// TestEndToEndRecoverer: a panicking handler is answered 4006 and the
// socket keeps answering.
func TestEndToEndRecoverer(t *testing.T) {
	t.Parallel()
	r := chatmux.NewRouter()
	r.Use(middleware.RecovererWith(discard))
	r.HandleFunc("boom", func(*chatmux.Context) error { panic(errors.New("boom")) })
	r.HandleFunc("nil.map", nilMapWrite)
	r.HandleFunc("ping", pong)
	c := dial(t, startServer(t, r)+"?user=5")
	for i, event := range []string{"ping", "boom", "ping", "nil.map", "boom", "ping"} {
		code, detail := answerCode(t, c.call(event))
		want := 0
		if event != "ping" {
			want = chatmux.CodeInternal
		}
		if code != want {
			t.Fatalf("event %d (%s): code %d (%v), want %d", i, event, code, detail, want)
		}
		if want != 0 && detail != chatmux.DetailInternal {
			t.Errorf("detail = %v, want %q (nothing of the panic leaks)", detail, chatmux.DetailInternal)
		}
	}
}

// TestEndToEndAnonymous: anonymous connections are limited one by one,
// and RequireAuth refuses them.
func TestEndToEndAnonymous(t *testing.T) {
	t.Parallel()
	r := chatmux.NewRouter()
	r.Use(middleware.RateLimit(1, time.Hour))
	r.HandleFunc("ping", pong)
	r.With(middleware.RequireAuth).HandleFunc("secret", pong)
	srv := chatmux.NewServer(r, chatmux.ServerOptions{Logger: discard})
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		ts.Close()
	})
	url := "ws" + strings.TrimPrefix(ts.URL, "http")
	c1, c2 := dial(t, url), dial(t, url)
	for i, s := range []struct {
		c     *client
		event string
		want  int
	}{
		{c1, "ping", 0},
		{c1, "ping", chatmux.CodeRateLimited},
		{c2, "ping", 0}, // another anonymous connection, another bucket
		{c1, "secret", chatmux.CodePermissionDenied},
	} {
		if code, detail := answerCode(t, s.c.call(s.event)); code != s.want {
			t.Fatalf("step %d (%s): code %d (%v), want %d", i, s.event, code, detail, s.want)
		}
	}
}

// TestLoggerClientRequestID: the request_id a client sends is logged as
// client_request_id, beside the server's own request_id.
func TestLoggerClientRequestID(t *testing.T) {
	var buf lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	r := chatmux.NewRouter()
	r.Use(middleware.RequestID, middleware.Logger(logger))
	r.HandleFunc("x", func(c *chatmux.Context) error { return nil })
	c := dial(t, startServer(t, r)+"?user=1")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, []byte(`{"event_type":"x","data":{},"request_id":"r-7"}`)); err != nil {
		t.Fatal(err)
	}
	// The final ok frame: the event has been handled, and logged.
	if _, b, err := c.ws.Read(ctx); err != nil || string(b) != `{"request_id":"r-7","ok":true}` {
		t.Fatalf("answer %s, %v", b, err)
	}
	var line map[string]any
	if err := json.Unmarshal(buf.bytes(), &line); err != nil {
		t.Fatalf("log %q: %v", buf.bytes(), err)
	}
	if line["client_request_id"] != "r-7" || line["request_id"] == nil || line["request_id"] == "r-7" {
		t.Fatalf("log line %v, want client_request_id r-7 and a server request_id", line)
	}
}

// lockedBuffer is a bytes.Buffer safe for a logger and a test to share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}
