package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/chatmux/chatmux/client"
)

// fakeServer is a WebSocket server that plays the protocol's frames a test
// needs: each connection (numbered from 1) runs conn.
type fakeServer struct {
	t       *testing.T
	hs      *httptest.Server
	accepts atomic.Int32
	wg      sync.WaitGroup
}

func newFakeServer(t *testing.T, conn func(n int, r *http.Request, ws *websocket.Conn)) *fakeServer {
	f := &fakeServer{t: t}
	f.hs = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		f.wg.Add(1)
		defer f.wg.Done()
		defer ws.CloseNow()
		conn(int(f.accepts.Add(1)), r, ws)
	}))
	t.Cleanup(func() {
		f.hs.CloseClientConnections()
		f.hs.Close()
		f.wg.Wait()
	})
	return f
}

func (f *fakeServer) url() string { return "ws" + strings.TrimPrefix(f.hs.URL, "http") + "/messaging/" }

// readFrame reads one client envelope.
func readFrame(ws *websocket.Conn) (event, rid string, size int, err error) {
	_, b, err := ws.Read(context.Background())
	if err != nil {
		return "", "", 0, err
	}
	var env struct {
		EventType string `json:"event_type"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return "", "", len(b), err
	}
	return env.EventType, env.RequestID, len(b), nil
}

func write(ws *websocket.Conn, s string) {
	_ = ws.Write(context.Background(), websocket.MessageText, []byte(s))
}

// answerOK answers a request the way a chatmux server ends one.
func answerOK(ws *websocket.Conn, event, rid string) {
	if event == "session.heartbeat" {
		write(ws, `{"status":"success","request_id":"`+rid+`"}`)
	}
	write(ws, `{"request_id":"`+rid+`","ok":true}`)
}

// hello answers the client's first request.
func hello(ws *websocket.Conn) bool {
	ev, rid, _, err := readFrame(ws)
	if err != nil {
		return false
	}
	answerOK(ws, ev, rid)
	return true
}

// serveAll answers every request until the connection ends.
func serveAll(ws *websocket.Conn) {
	for {
		ev, rid, _, err := readFrame(ws)
		if err != nil {
			return
		}
		answerOK(ws, ev, rid)
	}
}

func newClient(t *testing.T, opts client.Options) (*client.Client, *recorder) {
	t.Helper()
	rec := newRecorder()
	opts.Handlers = rec.handlers()
	c, err := client.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeClient(t, c) })
	return c, rec
}

// TestAuthRefreshedOnce: a 4001 close asks TokenFunc for a fresh token and
// reconnects at once.
func TestAuthRefreshedOnce(t *testing.T) {
	f := newFakeServer(t, func(_ int, r *http.Request, ws *websocket.Conn) {
		if r.URL.Query().Get("token") != "good" {
			_ = ws.Close(client.CloseAuthFailed, "authentication failed")
			return
		}
		serveAll(ws)
	})
	var calls atomic.Int32
	c, rec := newClient(t, client.Options{URL: f.url(), Backoff: client.Backoff{Base: time.Hour}, TokenFunc: func(context.Context) (string, error) {
		if calls.Add(1) == 1 {
			return "expired", nil
		}
		return "good", nil
	}})
	c.Start()
	if err := c.WaitConnected(ctxT(t)); err != nil {
		t.Fatalf("WaitConnected: %v", err)
	}
	if calls.Load() != 2 || f.accepts.Load() != 2 {
		t.Fatalf("token calls %d, connections %d; want 2 and 2", calls.Load(), f.accepts.Load())
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, s := range rec.states {
		if s.Code == client.CloseAuthFailed && (s.Delay != 0 || !s.WillReconnect) {
			t.Fatalf("after 4001: %+v; want an immediate reconnect", s)
		}
	}
}

// TestAuthFailsTwice: a second 4001 in a row signs out; without a TokenFunc
// the first one does.
func TestAuthFailsTwice(t *testing.T) {
	for _, withFunc := range []bool{true, false} {
		f := newFakeServer(t, func(_ int, _ *http.Request, ws *websocket.Conn) {
			_ = ws.Close(client.CloseAuthFailed, "authentication failed")
		})
		opts := client.Options{URL: f.url(), Token: "t", Backoff: fastBackoff}
		if withFunc {
			opts.TokenFunc = func(context.Context) (string, error) { return "t", nil }
		}
		_, err := client.Dial(ctxT(t), opts)
		if !errors.Is(err, client.ErrSignedOut) {
			t.Fatalf("TokenFunc %v: Dial: %v, want ErrSignedOut", withFunc, err)
		}
		want := int32(1)
		if withFunc {
			want = 2
		}
		if got := f.accepts.Load(); got != want {
			t.Fatalf("TokenFunc %v: %d connections, want %d", withFunc, got, want)
		}
	}
}

// TestNoTokenSignsOut: a TokenFunc that returns ErrNoToken signs out
// without connecting.
func TestNoTokenSignsOut(t *testing.T) {
	f := newFakeServer(t, func(_ int, _ *http.Request, ws *websocket.Conn) { serveAll(ws) })
	_, err := client.Dial(ctxT(t), client.Options{URL: f.url(), TokenFunc: func(context.Context) (string, error) {
		return "", client.ErrNoToken
	}})
	if !errors.Is(err, client.ErrSignedOut) || f.accepts.Load() != 0 {
		t.Fatalf("Dial: %v with %d connections; want ErrSignedOut and none", err, f.accepts.Load())
	}
}

// TestTerminalCloses: 1000 and 4011 stop the client; nothing reconnects
// and requests fail with the reason.
func TestTerminalCloses(t *testing.T) {
	for code, want := range map[websocket.StatusCode]error{
		client.CloseNormal:      client.ErrSessionEnded,
		client.CloseUserDeleted: client.ErrUserDeleted,
	} {
		release := make(chan struct{})
		f := newFakeServer(t, func(_ int, _ *http.Request, ws *websocket.Conn) {
			if hello(ws) {
				<-release
				_ = ws.Close(code, "bye")
			}
		})
		var once sync.Once
		free := func() { once.Do(func() { close(release) }) }
		t.Cleanup(free) // before the server's cleanup, which waits for its handlers
		c, rec := newClient(t, client.Options{URL: f.url(), Backoff: fastBackoff})
		c.Start()
		if err := c.WaitConnected(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Enqueue(client.OutgoingMessage{RoomID: "r", Content: "kept"}); err != nil {
			t.Fatal(err)
		}
		free()
		rec.wait(t, "the client stops", func() bool {
			n := len(rec.states)
			return n > 0 && !rec.states[n-1].WillReconnect
		})
		if err := c.Err(); !errors.Is(err, want) {
			t.Fatalf("close %d: Err() = %v, want %v", code, err, want)
		}
		if err := c.Heartbeat(ctxT(t)); !errors.Is(err, want) {
			t.Fatalf("close %d: a request after the stop: %v, want %v", code, err, want)
		}
		if p := c.PendingMessages(); len(p) != 1 || p[0].Content != "kept" {
			t.Fatalf("close %d: outbox %+v, want the unsent message", code, p)
		}
		if f.accepts.Load() != 1 {
			t.Fatalf("close %d: %d connections, want 1", code, f.accepts.Load())
		}
	}
}

// TestBackoffAfterCloses: a 4008 close waits SlowConsumer more than a 1011
// close; an unknown 4xxx is retried like 1011.
func TestBackoffAfterCloses(t *testing.T) {
	codes := []websocket.StatusCode{client.CloseSlowConsumer, websocket.StatusInternalError, 4999}
	f := newFakeServer(t, func(n int, _ *http.Request, ws *websocket.Conn) {
		if !hello(ws) {
			return
		}
		if n <= len(codes) {
			_ = ws.Close(codes[n-1], "")
			return
		}
		serveAll(ws)
	})
	slow := 60 * time.Millisecond
	c, rec := newClient(t, client.Options{URL: f.url(),
		Backoff: client.Backoff{Base: 10 * time.Millisecond, SlowConsumer: slow, Random: func() float64 { return 0.5 }}})
	c.Start()
	rec.wait(t, "the fourth connection", func() bool { return c.Stats().Connections == 4 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var delays []time.Duration
	for _, s := range rec.states {
		if s.State == client.StateDisconnected {
			delays = append(delays, s.Delay)
		}
	}
	// Each successful connection resets the attempt count: every delay
	// is the first retry's, half of Base, plus SlowConsumer after 4008.
	want := []time.Duration{slow + 5*time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond}
	if len(delays) != 3 || delays[0] != want[0] || delays[1] != want[1] || delays[2] != want[2] {
		t.Fatalf("delays %v, want %v", delays, want)
	}
}

// TestHeartbeatTimeout: a connection that stops answering is dropped and
// replaced.
func TestHeartbeatTimeout(t *testing.T) {
	f := newFakeServer(t, func(n int, _ *http.Request, ws *websocket.Conn) {
		if !hello(ws) {
			return
		}
		if n == 1 {
			for { // reads, never answers
				if _, _, _, err := readFrame(ws); err != nil {
					return
				}
			}
		}
		serveAll(ws)
	})
	c, rec := newClient(t, client.Options{URL: f.url(), Backoff: fastBackoff,
		HeartbeatInterval: 20 * time.Millisecond, HeartbeatTimeout: 50 * time.Millisecond})
	c.Start()
	rec.wait(t, "a second connection", func() bool { return c.Stats().Connections == 2 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	found := false
	for _, s := range rec.states {
		found = found || (s.State == client.StateDisconnected && s.Reason == "heartbeat timeout")
	}
	if !found {
		t.Fatalf("no disconnect for a heartbeat timeout in %+v", rec.states)
	}
}

// TestFrameTooBig: a message whose frame made the server close with 1009
// is refused and never sent again; the limit the close stated applies to
// the next one before it is sent.
func TestFrameTooBig(t *testing.T) {
	var big atomic.Int32
	f := newFakeServer(t, func(_ int, _ *http.Request, ws *websocket.Conn) {
		for {
			ev, rid, size, err := readFrame(ws)
			if err != nil {
				return
			}
			if size > 200 {
				big.Add(1)
				_ = ws.Close(websocket.StatusMessageTooBig, "message over 200 bytes")
				return
			}
			answerOK(ws, ev, rid)
		}
	})
	c, rec := newClient(t, client.Options{URL: f.url(), Backoff: fastBackoff, MaxFrameBytes: -1})
	c.Start()
	ctx := ctxT(t)
	if err := c.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := c.SendMessage(ctx, client.OutgoingMessage{RoomID: "r", Content: strings.Repeat("x", 300)})
	var fr *client.FrameRejectedError
	if !errors.As(err, &fr) || fr.Code != client.CloseTooBig {
		t.Fatalf("SendMessage: %v, want a 1009 FrameRejectedError", err)
	}
	if err := c.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = c.SendMessage(ctx, client.OutgoingMessage{RoomID: "r", Content: strings.Repeat("y", 300)})
	if !errors.As(err, &fr) || fr.Limit != 200 {
		t.Fatalf("second SendMessage: %v, want refused before sending (limit 200)", err)
	}
	if big.Load() != 1 || len(c.PendingMessages()) != 0 {
		t.Fatalf("the server read %d big frames, outbox %d; want 1 and empty", big.Load(), len(c.PendingMessages()))
	}
	rec.wait(t, "SendFailed for the first message", func() bool { return len(rec.failed) == 1 })
}

// TestOutboxBoundedAndRestored: the outbox refuses a message over its
// bound; a later client sends the messages it held, each stored once.
func TestOutboxBoundedAndRestored(t *testing.T) {
	st := memoryStore()
	n := startNode(t, st, "")
	c, _ := newClient(t, client.Options{URL: "ws://127.0.0.1:1/messaging/", User: "alice", OutboxMax: 2, Backoff: fastBackoff})
	c.Start()
	alice, _ := dialUser(t, n.url(), "alice")
	ctx := ctxT(t)
	room, err := alice.CreateRoom(ctx, client.CreateRoom{Type: client.RoomGroup, Name: "g"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := c.Enqueue(client.OutgoingMessage{RoomID: room.ID, Content: "m", ClientMsgID: "c-" + string(rune('a'+i))}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Enqueue(client.OutgoingMessage{RoomID: room.ID, Content: "m"}); !errors.Is(err, client.ErrOutboxFull) {
		t.Fatalf("third message: %v, want ErrOutboxFull", err)
	}
	pending := c.PendingMessages()
	closeClient(t, c)

	// The same messages twice: once from a restored outbox, once sent
	// by hand before it; each is stored once.
	if _, err := alice.SendMessage(ctx, client.OutgoingMessage{RoomID: room.ID, Content: "m", ClientMsgID: "c-a"}); err != nil {
		t.Fatal(err)
	}
	again, rec := newClient(t, client.Options{URL: n.url(), User: "alice", RestoreOutbox: pending, Backoff: fastBackoff})
	again.Start()
	rec.wait(t, "both restored messages are sent", func() bool { return rec.sent["c-a"] == 1 && rec.sent["c-b"] == 1 })
	page, err := alice.RoomMessages(ctx, room.ID, client.HistoryQuery{})
	if err != nil || len(page.Data.Messages) != 2 {
		t.Fatalf("stored: %+v, %v; want 2 messages", page, err)
	}
}

// TestBackoff checks the delays: exponential, capped, full jitter, and the
// floor after 4008.
func TestBackoff(t *testing.T) {
	b := client.Backoff{Base: 100 * time.Millisecond, Cap: time.Second, SlowConsumer: 5 * time.Second}
	for attempt, want := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		if got := b.Ceiling(attempt); got != want*time.Millisecond && !(want == 1000 && got == time.Second) {
			t.Fatalf("Ceiling(%d) = %v, want %vms", attempt, got, want)
		}
	}
	if got := b.Ceiling(200); got != time.Second {
		t.Fatalf("Ceiling(200) = %v, want the cap", got)
	}
	b.Random = func() float64 { return 0.999 }
	if d := b.Delay(2, false); d >= 400*time.Millisecond || d < 399*time.Millisecond {
		t.Fatalf("Delay(2) = %v, want just under 400ms", d)
	}
	b.Random = func() float64 { return 0 }
	if d := b.Delay(3, true); d != 5*time.Second {
		t.Fatalf("Delay after 4008 = %v, want the 5s floor", d)
	}
	if d := (client.Backoff{}).Ceiling(0); d != client.DefaultBackoffBase {
		t.Fatalf("default Ceiling(0) = %v", d)
	}
}
