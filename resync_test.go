package chatmux

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/chatmux/chatmux/groups"
)

// flakyBroker is the in-process broker with an availability the test
// switches, as the Redis broker reports its connection.
type flakyBroker struct {
	*groups.Memory
	mu sync.Mutex
	f  func(available bool)
}

func newFlakyBroker() *flakyBroker { return &flakyBroker{Memory: groups.NewMemory()} }

func (b *flakyBroker) OnAvailability(f func(available bool)) {
	b.mu.Lock()
	b.f = f
	b.mu.Unlock()
}

// set reports the broker as available or not. Calls are serialised by
// the test, as a broker serialises them.
func (b *flakyBroker) set(available bool) {
	b.mu.Lock()
	f := b.f
	b.mu.Unlock()
	f(available)
}

// staleCounter is an Observer (and StaleObserver) that counts the frames
// dropped by stale connections.
type staleCounter struct{ dropped atomic.Int64 }

func (o *staleCounter) ConnOpened(*Conn)    {}
func (o *staleCounter) ConnClosed(*Conn)    {}
func (o *staleCounter) QueueOverflow(*Conn) {}
func (o *staleCounter) StaleDropped(*Conn)  { o.dropped.Add(1) }

// resyncRouter is echoRouter with "shout" (a broadcast to a group, then a
// reply) and "invite" (JoinUser), and resync as the $resync handler when
// not nil.
func resyncRouter(resync func(c *Context) error) *Mux {
	r := echoRouter()
	r.HandleFunc("shout", func(c *Context) error {
		var in struct {
			Group string `json:"group"`
			Text  string `json:"text"`
		}
		if err := c.Bind(&in); err != nil {
			return err
		}
		if err := c.Broadcast(in.Group, "shouted", in.Text); err != nil {
			return err
		}
		return c.Reply(map[string]string{"status": "shouted"})
	})
	r.HandleFunc("invite", func(c *Context) error {
		var in struct {
			User  int64  `json:"user"`
			Group string `json:"group"`
		}
		if err := c.Bind(&in); err != nil {
			return err
		}
		return c.JoinUser(in.User, in.Group)
	})
	if resync != nil {
		r.HandleFunc(EventResync, resync)
	}
	return r
}

// serverConns returns the server side of h's connections, by user id.
func (h *harness) serverConns(n int) map[int64]*Conn {
	h.t.Helper()
	out := map[int64]*Conn{}
	waitFor(h.t, strconv.Itoa(n)+" connections", func() bool {
		h.srv.mu.Lock()
		defer h.srv.mu.Unlock()
		clear(out)
		for c := range h.srv.conns {
			out[c.User().ID] = c
		}
		return len(out) == n
	})
	return out
}

func expectFrames(t *testing.T, who string, c *websocket.Conn, want ...string) {
	t.Helper()
	for i, w := range want {
		if got := readRaw(t, c); got != w {
			t.Fatalf("%s: frame %d = %s, want %s", who, i, got, w)
		}
	}
}

// TestStaleConnectionsDropGroupFrames: while the broker is away, group
// frames are dropped (and counted), replies to the socket still go out,
// control messages still apply; when it is back, $resync is routed to each
// connection once and group frames flow again.
func TestStaleConnectionsDropGroupFrames(t *testing.T) {
	var mu sync.Mutex
	resyncs := map[string]int{}
	r := resyncRouter(func(c *Context) error {
		mu.Lock()
		resyncs[c.Conn().ID()]++
		mu.Unlock()
		return c.Send("resynced", nil)
	})
	b, obs := newFlakyBroker(), &staleCounter{}
	h := newHarness(t, r, ServerOptions{Broker: b, Observer: obs})
	a, bob := h.dial(1), h.dial(2)
	for _, c := range []*websocket.Conn{a, bob} {
		send(t, c, `{"event_type":"join","data":{"group":"g"}}`)
		readJSON(t, c)
	}
	conns := h.serverConns(2)

	b.set(false)
	if h.srv.BrokerAvailable() || !conns[1].Stale() || !conns[2].Stale() {
		t.Fatalf("after the loss: available %v, stale %v %v", h.srv.BrokerAvailable(), conns[1].Stale(), conns[2].Stale())
	}
	send(t, a, `{"event_type":"shout","data":{"group":"g","text":"lost"},"request_id":"r1"}`)
	// The sender's own answers still arrive; the group copy does not.
	expectFrames(t, "sender", a, `{"status":"shouted","request_id":"r1"}`, `{"request_id":"r1","ok":true}`)
	if n := obs.dropped.Load(); n != 2 {
		t.Fatalf("%d frames counted as dropped, want 2", n)
	}
	// Control messages still move connections between groups.
	send(t, a, `{"event_type":"invite","data":{"user":2,"group":"h"},"request_id":"r2"}`)
	expectFrames(t, "sender", a, `{"request_id":"r2","ok":true}`)
	if !strings.Contains(strings.Join(conns[2].Groups(), ","), "h") {
		t.Fatalf("a stale connection did not apply a join: groups %v", conns[2].Groups())
	}
	if !conns[2].InGroup("h") || conns[2].InGroup("not-joined") {
		t.Fatalf("InGroup(h) = %v, InGroup(not-joined) = %v; groups %v", conns[2].InGroup("h"), conns[2].InGroup("not-joined"), conns[2].Groups())
	}

	b.set(true)
	if !h.srv.BrokerAvailable() {
		t.Fatal("broker not available after true")
	}
	expectFrames(t, "sender", a, `{"eventType":"resynced","data":null}`)
	expectFrames(t, "member", bob, `{"eventType":"resynced","data":null}`)
	waitFor(t, "the marks to clear", func() bool { return !conns[1].Stale() && !conns[2].Stale() })
	send(t, a, `{"event_type":"shout","data":{"group":"h","text":"back"}}`)
	expectFrames(t, "member", bob, `{"eventType":"shouted","data":"back"}`)
	mu.Lock()
	defer mu.Unlock()
	if len(resyncs) != 2 || resyncs[conns[1].ID()] != 1 || resyncs[conns[2].ID()] != 1 {
		t.Fatalf("$resync routed %v, want once to each of the 2 connections", resyncs)
	}
}

// TestResyncResume: a group frame published before the handler calls
// Resume is dropped, one published after it is delivered, before what the
// handler sends next.
func TestResyncResume(t *testing.T) {
	r := resyncRouter(func(c *Context) error {
		if err := c.Broadcast("g", "before", nil); err != nil {
			return err
		}
		c.Conn().Resume()
		if c.Conn().Stale() {
			return Internal(nil)
		}
		if err := c.Broadcast("g", "after", nil); err != nil {
			return err
		}
		return c.Send("resynced", nil)
	})
	b := newFlakyBroker()
	h := newHarness(t, r, ServerOptions{Broker: b})
	a := h.dial(1)
	send(t, a, `{"event_type":"join","data":{"group":"g"}}`)
	readJSON(t, a)
	b.set(false)
	b.set(true)
	expectFrames(t, "client", a, `{"eventType":"after","data":null}`, `{"eventType":"resynced","data":null}`)
}

// TestResyncClearsMark: without a $resync route, or with a handler that
// does not call Resume, the mark is cleared after the handler.
func TestResyncClearsMark(t *testing.T) {
	tests := []struct {
		name   string
		resync func(c *Context) error
	}{
		{"no route", nil},
		{"no Resume", func(c *Context) error { return nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newFlakyBroker()
			h := newHarness(t, resyncRouter(tt.resync), ServerOptions{Broker: b})
			a := h.dial(1)
			send(t, a, `{"event_type":"join","data":{"group":"g"}}`)
			readJSON(t, a)
			c := h.onlyConn()
			b.set(false)
			b.set(true)
			waitFor(t, "the mark to clear", func() bool { return !c.Stale() })
			send(t, a, `{"event_type":"shout","data":{"group":"g","text":"x"}}`)
			expectFrames(t, "client", a, `{"eventType":"shouted","data":"x"}`, `{"status":"shouted"}`)
		})
	}
}

// waitForGoroutine waits until some goroutine's stack holds every one of
// frames.
func waitForGoroutine(t *testing.T, frames ...string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	waitFor(t, "a goroutine in "+strings.Join(frames, ", "), func() bool {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			all := true
			for _, f := range frames {
				all = all && strings.Contains(g, f)
			}
			if all {
				return true
			}
		}
		return false
	})
}

// TestResyncLostAgain: a loss during a $resync leaves the connection stale
// (even once the handler returns) and the next recovery resyncs it again.
// $resync and the connection's events never run at the same time.
func TestResyncLostAgain(t *testing.T) {
	var calls atomic.Int64
	entered, release := make(chan struct{}), make(chan struct{})
	var order []string
	var mu sync.Mutex
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	r := resyncRouter(func(c *Context) error {
		if calls.Add(1) == 1 {
			note("resync 1 begins")
			close(entered)
			waitOrEnd(c, release)
			c.Conn().Resume() // the broker is down again: no effect
			note("resync 1 ends")
			return nil
		}
		note("resync 2")
		return c.Send("resynced", nil)
	})
	r.HandleFunc("note", func(c *Context) error { note("event"); return c.Reply(map[string]string{"status": "noted"}) })
	b, obs := newFlakyBroker(), &staleCounter{}
	h := newHarness(t, r, ServerOptions{Broker: b, Observer: obs})
	a := h.dial(1)
	send(t, a, `{"event_type":"join","data":{"group":"g"}}`)
	readJSON(t, a)
	c := h.onlyConn()
	b.set(false)
	b.set(true)
	waitSignal(t, entered)
	// An event that arrives now waits for $resync.
	send(t, a, `{"event_type":"note","data":{}}`)
	waitForGoroutine(t, "chatmux.(*Conn).readLoop", "sync.(*Mutex).Lock")
	b.set(false)
	close(release)
	expectFrames(t, "client", a, `{"status":"noted"}`)
	if !c.Stale() {
		t.Fatal("the connection is not stale after a loss during its $resync")
	}
	ctx := context.Background()
	if err := h.srv.Broadcast(ctx, "g", "lost", nil); err != nil {
		t.Fatal(err)
	}
	if n := obs.dropped.Load(); n != 1 {
		t.Fatalf("%d frames dropped, want 1", n)
	}
	b.set(true)
	expectFrames(t, "client", a, `{"eventType":"resynced","data":null}`)
	waitFor(t, "the mark to clear", func() bool { return !c.Stale() })
	if err := h.srv.Broadcast(ctx, "g", "back", nil); err != nil {
		t.Fatal(err)
	}
	expectFrames(t, "client", a, `{"eventType":"back","data":null}`)
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(order, ", "); got != "resync 1 begins, resync 1 ends, event, resync 2" {
		t.Fatalf("order: %s", got)
	}
}

// TestResyncConcurrency: at most resyncConcurrency $resync handlers run at
// once, each connection gets one, and the resync's goroutines end.
func TestResyncConcurrency(t *testing.T) {
	const n = 20
	var active, peak atomic.Int64
	release := make(chan struct{})
	var mu sync.Mutex
	seen := map[string]int{}
	r := resyncRouter(func(c *Context) error {
		now := active.Add(1)
		for {
			p := peak.Load()
			if now <= p || peak.CompareAndSwap(p, now) {
				break
			}
		}
		mu.Lock()
		seen[c.Conn().ID()]++
		mu.Unlock()
		waitOrEnd(c, release)
		active.Add(-1)
		return nil
	})
	b := newFlakyBroker()
	h := newHarness(t, r, ServerOptions{Broker: b})
	for i := 1; i <= n; i++ {
		h.dial(int64(i))
	}
	conns := h.serverConns(n)
	b.set(false)
	b.set(true)
	waitFor(t, "the workers to be busy", func() bool { return active.Load() == resyncConcurrency })
	close(release)
	waitFor(t, "every connection to be resynced", func() bool {
		for _, c := range conns {
			if c.Stale() {
				return false
			}
		}
		return true
	})
	if p := peak.Load(); p != resyncConcurrency {
		t.Fatalf("%d $resync handlers at once, want %d", p, resyncConcurrency)
	}
	mu.Lock()
	if len(seen) != n {
		t.Fatalf("$resync reached %d connections, want %d", len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Fatalf("connection %s got %d $resync", id, k)
		}
	}
	mu.Unlock()
	// The resync's goroutines end with it.
	buf := make([]byte, 1<<20)
	waitFor(t, "the resync goroutines to end", func() bool {
		return !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "chatmux.(*Server).resync")
	})
}

// TestConnectionsOpenedWhileDown: a connection opened while the broker is
// away starts stale and is resynced; one opened after is not stale.
func TestConnectionsOpenedWhileDown(t *testing.T) {
	var resyncs atomic.Int64
	r := resyncRouter(func(c *Context) error { resyncs.Add(1); return c.Send("resynced", nil) })
	b, obs := newFlakyBroker(), &staleCounter{}
	h := newHarness(t, r, ServerOptions{Broker: b, Observer: obs})
	b.set(false)
	a := h.dial(1)
	c := h.onlyConn()
	if !c.Stale() {
		t.Fatal("a connection opened while the broker is down is not stale")
	}
	if err := h.srv.SendUser(context.Background(), 1, "lost", nil); err != nil {
		t.Fatal(err)
	}
	if obs.dropped.Load() != 1 {
		t.Fatalf("%d dropped, want 1", obs.dropped.Load())
	}
	b.set(true)
	expectFrames(t, "client", a, `{"eventType":"resynced","data":null}`)
	later := h.dial(2)
	_ = later
	conns := h.serverConns(2)
	if conns[2].Stale() {
		t.Fatal("a connection opened with the broker up is stale")
	}
	if n := resyncs.Load(); n != 1 {
		t.Fatalf("%d $resync, want 1", n)
	}
}

// TestResyncErrorCloses: a $resync handler that fails, whatever its error,
// closes the connection with 1013, so that the client reconnects and
// catches up.
func TestResyncErrorCloses(t *testing.T) {
	for _, err := range []error{Unavailable(context.DeadlineExceeded), errors.New("boom"), Validation("no")} {
		r := resyncRouter(func(c *Context) error { return err })
		b := newFlakyBroker()
		h := newHarness(t, r, ServerOptions{Broker: b})
		a := h.dial(1)
		h.onlyConn()
		b.set(false)
		b.set(true)
		ce := readClose(t, a)
		if ce.Code != websocket.StatusTryAgainLater || ce.Reason != "try again later" {
			t.Fatalf("%v: close %d %q, want 1013 %q", err, ce.Code, ce.Reason, "try again later")
		}
	}
}

// TestResyncLostAndBackDuringResync: the broker is lost and comes back
// while a $resync runs. That resync's Resume must not clear the mark of the
// second loss: the connection gets a second $resync.
func TestResyncLostAndBackDuringResync(t *testing.T) {
	var calls atomic.Int64
	entered, release := make(chan struct{}), make(chan struct{})
	r := resyncRouter(func(c *Context) error {
		if calls.Add(1) == 1 {
			close(entered)
			waitOrEnd(c, release)
			c.Conn().Resume() // for the first loss only
			return nil
		}
		return c.Send("resynced", nil)
	})
	b := newFlakyBroker()
	h := newHarness(t, r, ServerOptions{Broker: b})
	a := h.dial(1)
	c := h.onlyConn()
	b.set(false)
	b.set(true)
	waitSignal(t, entered)
	b.set(false)
	b.set(true)
	close(release)
	expectFrames(t, "client", a, `{"eventType":"resynced","data":null}`)
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d $resync, want 2", n)
	}
	waitFor(t, "the mark to clear", func() bool { return !c.Stale() })
}

// TestShutdownDuringResync: Shutdown stops a resync: the $resync in flight
// finishes, the others do not start, every connection closes with 1001.
func TestShutdownDuringResync(t *testing.T) {
	const n = 12
	var calls atomic.Int64
	release := make(chan struct{})
	r := resyncRouter(func(c *Context) error {
		calls.Add(1)
		waitOrEnd(c, release)
		return c.Send("resynced", nil)
	})
	b := newFlakyBroker()
	h := newHarness(t, r, ServerOptions{Broker: b})
	clients := make([]*websocket.Conn, n)
	for i := range clients {
		clients[i] = h.dial(int64(i + 1))
	}
	h.serverConns(n)
	b.set(false)
	b.set(true)
	waitFor(t, "the workers to be busy", func() bool { return calls.Load() == resyncConcurrency })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.srv.Shutdown(ctx) }()
	waitFor(t, "Shutdown to begin", func() bool {
		h.srv.mu.Lock()
		defer h.srv.mu.Unlock()
		return h.srv.stopping
	})
	close(release)
	resynced := 0
	for _, c := range clients {
		frames, err := readFrames(t, c)
		if code := CloseStatus(err); code != int(websocket.StatusGoingAway) {
			t.Fatalf("close %d (%v), want 1001", code, err)
		}
		for _, f := range frames {
			var m map[string]any
			if json.Unmarshal([]byte(f), &m) == nil && m["eventType"] == "resynced" {
				resynced++
			}
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got := calls.Load(); got != resyncConcurrency || resynced != resyncConcurrency {
		t.Fatalf("%d $resync ran, %d answered, want %d: the rest must not start after Shutdown", got, resynced, resyncConcurrency)
	}
}
