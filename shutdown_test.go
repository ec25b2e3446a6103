package chatmux

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// onlyConn returns the server side of the only connection of h.
func (h *harness) onlyConn() *Conn {
	h.t.Helper()
	var c *Conn
	waitFor(h.t, "the connection to be registered", func() bool {
		h.srv.mu.Lock()
		defer h.srv.mu.Unlock()
		for k := range h.srv.conns {
			c = k
		}
		return len(h.srv.conns) == 1
	})
	return c
}

// waitOrEnd waits, in a handler, until release is closed or the event's
// context ends (so that a failed test does not leave the handler blocked).
func waitOrEnd(c *Context, release chan struct{}) {
	select {
	case <-release:
	case <-c.Context().Done():
	}
}

// waitSignal waits for ch to be closed, at most 10 s.
func waitSignal(t *testing.T, ch chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for a handler")
	}
}

// readFrames reads text frames until the connection closes and returns
// them with the close error.
func readFrames(t *testing.T, c *websocket.Conn) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var frames []string
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return frames, err
		}
		frames = append(frames, string(b))
	}
}

// TestShutdownDrainsEventInFlight: a handler blocked when Shutdown begins
// finishes; its reply, its broadcast and its final request_id frame reach
// the socket before the 1001; an event read after Shutdown began is not
// handled; $disconnect runs.
func TestShutdownDrainsEventInFlight(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var handled, disconnects atomic.Int64
	r := echoRouter()
	r.HandleFunc("work", func(c *Context) error {
		handled.Add(1)
		close(started)
		waitOrEnd(c, release)
		if err := c.Reply(map[string]string{"status": "worked"}); err != nil {
			return err
		}
		return c.SendUser(c.User().ID, "worked.dispatch", nil)
	})
	r.HandleFunc("late", func(c *Context) error {
		handled.Add(1)
		return c.Reply(map[string]string{"status": "late"})
	})
	r.HandleFunc(EventDisconnect, func(c *Context) error { disconnects.Add(1); return nil })
	h := newHarness(t, r, ServerOptions{})
	c := h.dial(1)
	conn := h.onlyConn()
	send(t, c, `{"event_type":"work","data":{},"request_id":"r1"}`)
	waitSignal(t, started)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.srv.Shutdown(ctx) }()
	waitFor(t, "Shutdown to reach the connection", conn.draining.Load)
	// Read by the server after Shutdown began: never handled.
	send(t, c, `{"event_type":"late","data":{},"request_id":"r2"}`)
	close(release)

	frames, err := readFrames(t, c)
	want := []string{
		`{"status":"worked","request_id":"r1"}`,
		`{"eventType":"worked.dispatch","data":null}`,
		`{"request_id":"r1","ok":true}`,
	}
	if strings.Join(frames, "\n") != strings.Join(want, "\n") {
		t.Fatalf("frames before the close:\n%s\nwant:\n%s", strings.Join(frames, "\n"), strings.Join(want, "\n"))
	}
	if code := CloseStatus(err); code != int(websocket.StatusGoingAway) {
		t.Fatalf("close %d (%v), want 1001", code, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := handled.Load(); n != 1 {
		t.Fatalf("%d events handled, want 1 (the one in flight)", n)
	}
	if n := disconnects.Load(); n != 1 {
		t.Fatalf("$disconnect ran %d times, want 1", n)
	}
	if h.srv.Len() != 0 {
		t.Fatalf("%d connections left", h.srv.Len())
	}
}

// TestShutdownFlushesQueue: frames queued for a client that is not reading
// when Shutdown begins are all written before the 1001.
func TestShutdownFlushesQueue(t *testing.T) {
	h := newHarness(t, echoRouter(), ServerOptions{MaxQueueBytes: 64 << 20})
	c := h.dial(1)
	c.SetReadLimit(1 << 20)
	send(t, c, `{"event_type":"join","data":{"group":"g"}}`)
	readJSON(t, c)
	// 32 MiB: more than the socket buffers hold, so most of it is still
	// queued when Shutdown begins.
	const n = 512
	text := strings.Repeat("z", 64<<10)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < n; i++ {
		if err := h.srv.Broadcast(ctx, "g", "bulk", map[string]any{"i": i, "text": text}); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- h.srv.Shutdown(ctx) }()
	frames, err := readFrames(t, c)
	if len(frames) != n {
		t.Fatalf("%d of %d queued frames before the close (%v)", len(frames), n, err)
	}
	for i, f := range frames {
		if !strings.HasPrefix(f, `{"eventType":"bulk","data":{"i":`+strconv.Itoa(i)+`,`) {
			t.Fatalf("frame %d: %.60s", i, f)
		}
	}
	if code := CloseStatus(err); code != int(websocket.StatusGoingAway) {
		t.Fatalf("close %d (%v), want 1001", code, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestShutdownDeadline: when the deadline passes first, the sockets are
// closed at once (no close frame), the handlers' contexts are cancelled,
// and Shutdown returns the context's error once they have returned.
func TestShutdownDeadline(t *testing.T) {
	started := make(chan struct{})
	var cancelled, disconnects atomic.Int64
	r := NewRouter()
	r.HandleFunc("stuck", func(c *Context) error {
		close(started)
		<-c.Context().Done()
		cancelled.Add(1)
		return nil
	})
	r.HandleFunc(EventDisconnect, func(c *Context) error { disconnects.Add(1); return nil })
	h := newHarness(t, r, ServerOptions{})
	c := h.dial(1)
	send(t, c, `{"event_type":"stuck","data":{}}`)
	waitSignal(t, started)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.srv.Shutdown(ctx) }()
	waitFor(t, "Shutdown to reach the connection", h.onlyConn().draining.Load)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown: %v, want context.Canceled", err)
	}
	_, err := readFrames(t, c)
	if code := CloseStatus(err); code != -1 {
		t.Fatalf("close %d (%v), want the socket closed without a close frame", code, err)
	}
	if cancelled.Load() != 1 || disconnects.Load() != 1 {
		t.Fatalf("handler cancelled %d times, $disconnect ran %d times; want 1 and 1", cancelled.Load(), disconnects.Load())
	}
	if h.srv.Len() != 0 {
		t.Fatalf("%d connections left", h.srv.Len())
	}
}
