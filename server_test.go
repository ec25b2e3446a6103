package chatmux

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/go-chi/chi/v5"

	"github.com/chatmux/chatmux/groups"
)

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// testAuth authenticates ?user=<id>; anything else fails.
func testAuth(r *http.Request) (*User, error) {
	id, err := strconv.ParseInt(r.URL.Query().Get("user"), 10, 64)
	if err != nil {
		return nil, errors.New("bad user")
	}
	return &User{ID: id, Username: "u" + strconv.FormatInt(id, 10)}, nil
}

type harness struct {
	t   *testing.T
	srv *Server
	url string
}

func newHarness(t *testing.T, r Router, opts ServerOptions) *harness {
	t.Helper()
	if opts.Authenticate == nil {
		opts.Authenticate = testAuth
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger
	}
	srv := NewServer(r, opts)
	mux := chi.NewRouter()
	mux.Handle("/messaging/", srv)
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		ts.Close()
	})
	return &harness{t: t, srv: srv, url: "ws" + strings.TrimPrefix(ts.URL, "http") + "/messaging/"}
}

func (h *harness) dial(user int64) *websocket.Conn {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, h.url+"?user="+strconv.FormatInt(user, 10), nil)
	if err != nil {
		h.t.Fatalf("dial: %v", err)
	}
	c.SetReadLimit(1 << 20)
	h.t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

func send(t *testing.T, c *websocket.Conn, frame string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(frame)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func readJSON(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not JSON: %s", b)
	}
	return m
}

// errCode returns the code of an error envelope, 0 when m is not one.
func errCode(m map[string]any) int {
	e, ok := m["error"].(map[string]any)
	if !ok {
		return 0
	}
	code, _ := e["code"].(float64)
	return int(code)
}

func echoRouter() *Mux {
	r := NewRouter()
	r.HandleFunc("echo", func(c *Context) error {
		var in struct {
			Text string `json:"text"`
		}
		if err := c.Bind(&in); err != nil {
			return err
		}
		return c.Send("echo.dispatch", map[string]any{"text": in.Text, "user": c.User().ID})
	})
	r.HandleFunc("boom", func(c *Context) error { panic("boom") })
	r.HandleFunc("fail", func(c *Context) error { return errors.New("secret database detail") })
	r.HandleFunc("limited", func(c *Context) error { return RateLimited("Rate limit exceeded: 1 per 1m0s.") })
	r.HandleFunc("join", func(c *Context) error {
		var in struct {
			Group string `json:"group"`
		}
		if err := c.Bind(&in); err != nil {
			return err
		}
		if err := c.Join(in.Group); err != nil {
			return err
		}
		return c.Reply(map[string]string{"status": "joined"})
	})
	r.HandleFunc("say", func(c *Context) error {
		var in struct {
			Group string `json:"group"`
			Text  string `json:"text"`
		}
		if err := c.Bind(&in); err != nil {
			return err
		}
		return c.Broadcast(in.Group, "said", in)
	})
	return r
}

func TestServerEcho(t *testing.T) {
	h := newHarness(t, echoRouter(), ServerOptions{})
	c := h.dial(7)
	send(t, c, `{"event_type":"echo","data":{"text":"hi"}}`)
	m := readJSON(t, c)
	if m["eventType"] != "echo.dispatch" {
		t.Fatalf("got %v", m)
	}
	d := m["data"].(map[string]any)
	if d["text"] != "hi" || d["user"] != float64(7) {
		t.Fatalf("data %v", d)
	}
}

func TestServerAuthFailureCloses4001(t *testing.T) {
	h := newHarness(t, echoRouter(), ServerOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, h.url+"?user=nobody", nil)
	if err != nil {
		t.Fatalf("the upgrade must complete before the close: %v", err)
	}
	defer c.CloseNow()
	_, _, err = c.Read(ctx)
	if got := CloseStatus(err); got != CodeUnauthenticated {
		t.Fatalf("close status %d (%v), want 4001", got, err)
	}
}

func TestServerMalformedInputKeepsSocketOpen(t *testing.T) {
	h := newHarness(t, echoRouter(), ServerOptions{})
	c := h.dial(1)
	tests := []struct {
		name  string
		frame string
		want  any // error code, or the bare string error
	}{
		{"unknown event", `{"event_type":"nope","data":{}}`, "invalid event type"},
		{"missing event", `{"data":{}}`, "invalid event type"},
		{"invalid JSON", `{"event_type":`, CodeValidation},
		{"non-object", `[1,2,3]`, CodeValidation},
		{"string", `"hello"`, CodeValidation},
		{"non-object data", `{"event_type":"echo","data":[1]}`, CodeValidation},
		{"missing data", `{"event_type":"echo"}`, CodeValidation},
		{"wrong field type", `{"event_type":"echo","data":{"text":5}}`, CodeValidation},
		{"panic", `{"event_type":"boom","data":{}}`, CodeInternal},
		{"plain error", `{"event_type":"fail","data":{}}`, CodeInternal},
		{"rate limited", `{"event_type":"limited","data":{}}`, CodeRateLimited},
	}
	for _, tt := range tests {
		send(t, c, tt.frame)
		m := readJSON(t, c)
		switch want := tt.want.(type) {
		case string:
			if m["error"] != want {
				t.Errorf("%s: got %v", tt.name, m)
			}
		case int:
			if errCode(m) != want {
				t.Errorf("%s: got %v, want code %d", tt.name, m, want)
			}
			if want == CodeInternal && m["error"].(map[string]any)["detail"] != DetailInternal {
				t.Errorf("%s: internal detail leaked: %v", tt.name, m)
			}
		}
	}
	// A binary frame: 4003, and the socket still works.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageBinary, []byte(`{"event_type":"echo","data":{}}`)); err != nil {
		t.Fatal(err)
	}
	if m := readJSON(t, c); errCode(m) != CodeValidation {
		t.Fatalf("binary frame: %v", m)
	}
	send(t, c, `{"event_type":"echo","data":{"text":"still here"}}`)
	if m := readJSON(t, c); m["eventType"] != "echo.dispatch" {
		t.Fatalf("socket did not survive: %v", m)
	}
}

func TestServerOversizeFrameCloses1009(t *testing.T) {
	h := newHarness(t, echoRouter(), ServerOptions{ReadLimit: 1024})
	c := h.dial(1)
	big := `{"event_type":"echo","data":{"text":"` + strings.Repeat("x", 2048) + `"}}`
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = c.Write(ctx, websocket.MessageText, []byte(big))
	_, _, err := c.Read(ctx)
	if got := CloseStatus(err); got != int(websocket.StatusMessageTooBig) {
		t.Fatalf("close status %d (%v), want 1009", got, err)
	}
}

func TestServerLifecycleEvents(t *testing.T) {
	r := echoRouter()
	var mu sync.Mutex
	var events []string
	r.HandleFunc(EventConnect, func(c *Context) error {
		mu.Lock()
		events = append(events, "connect:"+strconv.FormatInt(c.User().ID, 10))
		mu.Unlock()
		return c.Send("welcome", nil)
	})
	disconnected := make(chan struct{})
	r.HandleFunc(EventDisconnect, func(c *Context) error {
		if c.Context().Err() != nil {
			t.Error("$disconnect context already cancelled")
		}
		mu.Lock()
		events = append(events, "disconnect:"+strconv.FormatInt(c.User().ID, 10))
		mu.Unlock()
		close(disconnected)
		return nil
	})
	h := newHarness(t, r, ServerOptions{})
	c := h.dial(3)
	if m := readJSON(t, c); m["eventType"] != "welcome" {
		t.Fatalf("got %v", m)
	}
	_ = c.Close(websocket.StatusNormalClosure, "bye")
	select {
	case <-disconnected:
	case <-time.After(5 * time.Second):
		t.Fatal("no $disconnect")
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(events, ",") != "connect:3,disconnect:3" {
		t.Fatalf("events %v", events)
	}
}

func TestServerConnectErrorClosesConnection(t *testing.T) {
	r := NewRouter()
	r.HandleFunc(EventConnect, func(c *Context) error { return PermissionDenied("banned") })
	h := newHarness(t, r, ServerOptions{})
	c := h.dial(1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _, err := c.Read(ctx)
	if got := CloseStatus(err); got != CodePermissionDenied {
		t.Fatalf("close %d (%v)", got, err)
	}
}

func TestServerUserGroupAndJoinUser(t *testing.T) {
	r := echoRouter()
	r.HandleFunc("invite", func(c *Context) error {
		var in struct {
			User  int64  `json:"user"`
			Group string `json:"group"`
		}
		if err := c.Bind(&in); err != nil {
			return err
		}
		if err := c.JoinUser(in.User, in.Group); err != nil {
			return err
		}
		return c.SendUser(in.User, "invited", in)
	})
	r.HandleFunc("kick", func(c *Context) error {
		var in struct {
			User  int64  `json:"user"`
			Group string `json:"group"`
		}
		if err := c.Bind(&in); err != nil {
			return err
		}
		return c.LeaveUser(in.User, in.Group)
	})
	h := newHarness(t, r, ServerOptions{})
	alice := h.dial(1)
	bobPhone, bobLaptop := h.dial(2), h.dial(2)
	send(t, alice, `{"event_type":"join","data":{"group":"room-x"}}`)
	readJSON(t, alice)
	send(t, alice, `{"event_type":"invite","data":{"user":2,"group":"room-x"}}`)
	for _, c := range []*websocket.Conn{bobPhone, bobLaptop} {
		if m := readJSON(t, c); m["eventType"] != "invited" {
			t.Fatalf("device got %v", m)
		}
	}
	send(t, alice, `{"event_type":"say","data":{"group":"room-x","text":"hello"}}`)
	for _, c := range []*websocket.Conn{alice, bobPhone, bobLaptop} {
		if m := readJSON(t, c); m["eventType"] != "said" {
			t.Fatalf("got %v", m)
		}
	}
	send(t, alice, `{"event_type":"kick","data":{"user":2,"group":"room-x"}}`)
	send(t, alice, `{"event_type":"say","data":{"group":"room-x","text":"after"}}`)
	if m := readJSON(t, alice); m["eventType"] != "said" {
		t.Fatalf("got %v", m)
	}
	// Bob's devices left the group: the next thing they get is a direct echo.
	for _, c := range []*websocket.Conn{bobPhone, bobLaptop} {
		send(t, c, `{"event_type":"echo","data":{"text":"mine"}}`)
		if m := readJSON(t, c); m["eventType"] != "echo.dispatch" {
			t.Fatalf("kicked device still got %v", m)
		}
	}
}

func TestServerBroadcastTo1000(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	h := newHarness(t, echoRouter(), ServerOptions{})
	const n = 1000
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conns[i] = h.dial(int64(i + 1))
		send(t, conns[i], `{"event_type":"join","data":{"group":"big"}}`)
	}
	for _, c := range conns {
		if m := readJSON(t, c); m["status"] != "joined" {
			t.Fatalf("got %v", m)
		}
	}
	const msgs = 5
	for i := 0; i < msgs; i++ {
		send(t, conns[0], fmt.Sprintf(`{"event_type":"say","data":{"group":"big","text":"m%d"}}`, i))
	}
	var wg sync.WaitGroup
	var bad atomic.Int64
	for _, c := range conns {
		wg.Add(1)
		go func(c *websocket.Conn) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for i := 0; i < msgs; i++ {
				_, b, err := c.Read(ctx)
				if err != nil || !strings.Contains(string(b), fmt.Sprintf(`"text":"m%d"`, i)) {
					bad.Add(1)
					return
				}
			}
		}(c)
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d of %d connections missed or reordered messages", bad.Load(), n)
	}
}

// overflowSignal is an Observer that reports the first queue overflow.
type overflowSignal struct {
	once sync.Once
	ch   chan struct{}
}

func (o *overflowSignal) ConnOpened(*Conn)    {}
func (o *overflowSignal) ConnClosed(*Conn)    {}
func (o *overflowSignal) QueueOverflow(*Conn) { o.once.Do(func() { close(o.ch) }) }

func TestServerSlowConsumerClosed4008(t *testing.T) {
	overflow := &overflowSignal{ch: make(chan struct{})}
	h := newHarness(t, echoRouter(), ServerOptions{MaxQueueBytes: 256 << 10, WriteTimeout: 2 * time.Minute, Observer: overflow})
	sender := h.dial(1)
	fast := h.dial(2)
	slow := h.dial(3)
	for _, c := range []*websocket.Conn{sender, fast, slow} {
		send(t, c, `{"event_type":"join","data":{"group":"g"}}`)
		readJSON(t, c)
	}
	// 16 MB in all: more than the socket buffers of a client that does
	// not read can absorb.
	const msgs = 2000
	text := strings.Repeat("y", 8<<10)
	// The slow consumer reads nothing until its queue overflows, then
	// reads what the server still sends: some frames, then the close.
	type result struct {
		frames int
		err    error
	}
	slowDone := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		select {
		case <-overflow.ch:
		case <-ctx.Done():
			slowDone <- result{0, ctx.Err()}
			return
		}
		var err error
		n := 0
		for err == nil {
			_, _, err = slow.Read(ctx)
			n++
		}
		slowDone <- result{n - 1, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := 0; i < msgs; i++ {
		send(t, sender, `{"event_type":"say","data":{"group":"g","text":"`+text+`"}}`)
		// One message in flight: the sender and the fast consumer
		// read their copies before the next one goes out, so neither
		// can fall behind, however busy the machine.
		if _, _, err := sender.Read(ctx); err != nil {
			t.Fatalf("sender lost its connection after %d messages: %v", i, err)
		}
		if _, _, err := fast.Read(ctx); err != nil {
			t.Fatalf("fast consumer lost its connection after %d messages: %v", i, err)
		}
	}
	r := <-slowDone
	if code := CloseStatus(r.err); code != CodeSlowConsumer {
		t.Fatalf("slow consumer: close %d after %d frames (%v), want 4008", code, r.frames, r.err)
	}
	if r.frames >= msgs {
		t.Fatalf("slow consumer read all %d frames", r.frames)
	}
}

func TestServerShutdown(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	var finished atomic.Bool
	r := NewRouter()
	r.HandleFunc("work", func(c *Context) error {
		close(started)
		<-release
		finished.Store(true)
		return nil
	})
	srv := NewServer(r, ServerOptions{Authenticate: testAuth, Logger: quietLogger})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/?user=1"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	idle, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.CloseNow()
	busy, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.CloseNow()
	send(t, busy, `{"event_type":"work","data":{}}`)
	<-started

	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	_, _, err = idle.Read(ctx)
	if got := CloseStatus(err); got != int(websocket.StatusGoingAway) {
		t.Fatalf("idle connection closed with %d (%v), want 1001", got, err)
	}
	// New connections are refused while shutting down.
	if _, _, err := websocket.Dial(ctx, url, nil); err == nil {
		t.Fatal("dial succeeded during shutdown")
	}
	// The handler is still running: Shutdown has not returned. (Not
	// waited for: a Shutdown that did not wait for the handler would also
	// be caught below, finished being false when it returns.)
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) while a handler was running", err)
	default:
	}
	close(release)
	// The busy connection is closed with 1001 once its event is done.
	if _, err := readFrames(t, busy); CloseStatus(err) != int(websocket.StatusGoingAway) {
		t.Fatalf("busy connection closed with %v, want 1001", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if !finished.Load() {
		t.Fatal("Shutdown did not wait for the handler")
	}
	if srv.Len() != 0 {
		t.Fatalf("%d connections left", srv.Len())
	}
}

func TestServerClosesDeadPeers(t *testing.T) {
	h := newHarness(t, echoRouter(), ServerOptions{PingInterval: 100 * time.Millisecond, PingTimeout: 100 * time.Millisecond})
	c := h.dial(1) // never reads: cannot answer pings
	_ = c
	deadline := time.Now().Add(10 * time.Second)
	for h.srv.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("silent peer was not closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServerKeepsLivePeers(t *testing.T) {
	// PingTimeout is generous: a busy machine may delay a pong, and this
	// test is about a peer that answers.
	h := newHarness(t, echoRouter(), ServerOptions{PingInterval: 50 * time.Millisecond, PingTimeout: time.Minute})
	c := h.dial(1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.CloseRead(ctx) // answers pings
	var sc *Conn
	waitFor(t, "the server to register the connection", func() bool {
		h.srv.mu.Lock()
		defer h.srv.mu.Unlock()
		for c := range h.srv.conns {
			sc = c
		}
		return sc != nil
	})
	// The peer sends nothing: each new lastRead is a pong. After three
	// answered pings the connection is still open.
	const pongs = 3
	last := sc.lastRead.Load()
	for n := 0; n < pongs; {
		waitFor(t, "a pong", func() bool {
			return sc.lastRead.Load() != last || h.srv.Len() == 0
		})
		if h.srv.Len() == 0 {
			t.Fatalf("a live peer was closed after %d answered pings", n)
		}
		last = sc.lastRead.Load()
		n++
	}
	if h.srv.Len() != 1 {
		t.Fatal("a live peer was closed")
	}
}

func TestServerOriginPolicy(t *testing.T) {
	h := newHarness(t, echoRouter(), ServerOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hdr := http.Header{"Origin": {"https://evil.example"}}
	_, resp, err := websocket.Dial(ctx, h.url+"?user=1", &websocket.DialOptions{HTTPHeader: hdr})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin dial: err %v", err)
	}
	h2 := newHarness(t, echoRouter(), ServerOptions{OriginPatterns: []string{"*.example"}})
	c, _, err := websocket.Dial(ctx, h2.url+"?user=1", &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatalf("allowed origin refused: %v", err)
	}
	c.CloseNow()
}

// countingMember counts deliveries.
type countingMember struct{ n atomic.Int64 }

func (m *countingMember) Deliver(*groups.Message) { m.n.Add(1) }

func TestConnectSendsComeBeforeGroupFrames(t *testing.T) {
	r := NewRouter()
	r.HandleFunc(EventConnect, func(c *Context) error {
		// A group dispatch that reaches this connection while $connect
		// runs must wait until what $connect sends directly.
		if err := c.SendUser(c.User().ID, "early", nil); err != nil {
			return err
		}
		return c.Send("welcome", nil)
	})
	h := newHarness(t, r, ServerOptions{})
	c := h.dial(9)
	if m := readJSON(t, c); m["eventType"] != "welcome" {
		t.Fatalf("first frame %v, want welcome", m)
	}
	if m := readJSON(t, c); m["eventType"] != "early" {
		t.Fatalf("second frame %v, want the held group frame", m)
	}
}

func TestServerBatchSubprotocol(t *testing.T) {
	h := newHarness(t, echoRouter(), ServerOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	batched, _, err := websocket.Dial(ctx, h.url+"?user=1", &websocket.DialOptions{Subprotocols: []string{SubprotocolBatch}})
	if err != nil {
		t.Fatal(err)
	}
	defer batched.CloseNow()
	if batched.Subprotocol() != SubprotocolBatch {
		t.Fatalf("subprotocol %q", batched.Subprotocol())
	}
	plain := h.dial(2)
	for _, c := range []*websocket.Conn{batched, plain} {
		send(t, c, `{"event_type":"join","data":{"group":"b"}}`)
		readJSON(t, c)
	}
	// Publish many frames at once, from the server side, so that they
	// queue up together.
	const n = 200
	for i := 0; i < n; i++ {
		if err := h.srv.Broadcast(ctx, "b", "said", map[string]int{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
	// The batched client gets every frame, in order, in fewer messages;
	// each message is one object or an array of objects.
	next, messages := 0, 0
	for next < n {
		_, b, err := batched.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		messages++
		var items []map[string]any
		if b[0] == '[' {
			if err := json.Unmarshal(b, &items); err != nil {
				t.Fatalf("bad batch %s", b)
			}
		} else {
			var one map[string]any
			if err := json.Unmarshal(b, &one); err != nil {
				t.Fatalf("bad frame %s", b)
			}
			items = append(items, one)
		}
		for _, it := range items {
			if it["eventType"] != "said" || it["data"].(map[string]any)["i"] != float64(next) {
				t.Fatalf("item %v, want i=%d", it, next)
			}
			next++
		}
	}
	if messages >= n {
		t.Errorf("batched client got %d messages for %d frames", messages, n)
	}
	// The plain client gets one object per message.
	for i := 0; i < n; i++ {
		m := readJSON(t, plain)
		if m["data"].(map[string]any)["i"] != float64(i) {
			t.Fatalf("plain client frame %d: %v", i, m)
		}
	}
}

func TestServerFrameLengths(t *testing.T) {
	r := NewRouter()
	r.HandleFunc("raw", func(c *Context) error {
		var in struct {
			N int `json:"n"`
		}
		if err := c.Bind(&in); err != nil {
			return err
		}
		// {"p":"xxx"} of exactly N bytes.
		return c.ReplyRaw([]byte(`{"p":"` + strings.Repeat("x", in.N-8) + `"}`))
	})
	h := newHarness(t, r, ServerOptions{})
	c := h.dial(1)
	c.SetReadLimit(1 << 20)
	// Every length form of the frame header: 7-bit, 16-bit, 64-bit.
	for _, n := range []int{8, 125, 126, 127, 65535, 65536, 70000} {
		send(t, c, fmt.Sprintf(`{"event_type":"raw","data":{"n":%d}}`, n))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, b, err := c.Read(ctx)
		cancel()
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if len(b) != n || !json.Valid(b) {
			t.Fatalf("n=%d: got %d bytes", n, len(b))
		}
	}
}

// TestServerShutdownDuringHandshake: a request that is past the shutdown
// check but still authenticating when Shutdown starts must not keep
// Shutdown waiting: its connection is closed with 1001 once accepted.
func TestServerShutdownDuringHandshake(t *testing.T) {
	inAuth := make(chan struct{})
	release := make(chan struct{})
	srv := NewServer(NewRouter(), ServerOptions{Logger: quietLogger, Authenticate: func(r *http.Request) (*User, error) {
		close(inAuth)
		<-release
		return &User{ID: 1, Username: "u1"}, nil
	}})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type dialed struct {
		c   *websocket.Conn
		err error
	}
	dc := make(chan dialed, 1)
	go func() {
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http"), nil)
		dc <- dialed{c, err}
	}()
	<-inAuth
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	// Let Shutdown take its snapshot of connections before the handshake
	// completes.
	waitFor(t, "Shutdown to begin", func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return srv.stopping
	})
	close(release)
	d := <-dc
	if d.err != nil {
		t.Fatalf("dial: %v", d.err)
	}
	defer d.c.CloseNow()
	_, _, err := d.c.Read(ctx)
	if got := CloseStatus(err); got != int(websocket.StatusGoingAway) {
		t.Fatalf("close %d (%v), want 1001", got, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestServerReservedEventsFromTheWire: $connect, $disconnect and any other
// name starting with "$" sent by a client are answered as unknown events;
// no handler runs and the connection keeps working.
func TestServerReservedEventsFromTheWire(t *testing.T) {
	r := echoRouter()
	var connects, disconnects, custom atomic.Int64
	r.HandleFunc(EventConnect, func(c *Context) error { connects.Add(1); return nil })
	r.HandleFunc(EventDisconnect, func(c *Context) error { disconnects.Add(1); return nil })
	r.HandleFunc("$custom", func(c *Context) error { custom.Add(1); return c.Reply(map[string]bool{"routed": true}) })
	r.HandleFunc("*", func(c *Context) error { return c.Reply(map[string]string{"wildcard": c.Event()}) })
	h := newHarness(t, r, ServerOptions{})
	c := h.dial(1)
	for _, ev := range []string{"$connect", "$disconnect", "$custom", "$", "$connect.x"} {
		send(t, c, `{"event_type":"`+ev+`","data":{}}`)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, b, err := c.Read(ctx)
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", ev, err)
		}
		if string(b) != `{"error":"invalid event type"}` {
			t.Errorf("%s: got %s", ev, b)
		}
	}
	send(t, c, `{"event_type":"echo","data":{"text":"still here"}}`)
	if m := readJSON(t, c); m["eventType"] != "echo.dispatch" {
		t.Fatalf("the connection did not keep working: %v", m)
	}
	if n := connects.Load(); n != 1 {
		t.Errorf("$connect ran %d times, want once (when the connection opened)", n)
	}
	if n := disconnects.Load(); n != 0 {
		t.Errorf("$disconnect ran %d times while connected", n)
	}
	if n := custom.Load(); n != 0 {
		t.Errorf("$custom was routed %d times", n)
	}
}
