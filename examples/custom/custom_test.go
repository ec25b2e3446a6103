package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/go-chi/chi/v5"
	"go.uber.org/goleak"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/chat"
	"github.com/chatmux/chatmux/internal/devauth"
	"github.com/chatmux/chatmux/store"
	"github.com/chatmux/chatmux/store/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type env struct {
	t         *testing.T
	st        store.Store
	url       string
	logs      *syncBuffer
	analytics *Analytics
	ids       map[string]int64
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	st := memory.New()
	cfg := chat.DefaultConfig()
	cfg.Store = st
	cfg.Logger = logger
	svc := chat.New(cfg)
	analytics := NewAnalytics()
	opts.Logger = logger
	srv := chatmux.NewServer(Events(svc, analytics, &Pins{}, opts), chatmux.ServerOptions{Authenticate: devauth.Authenticator(st), Logger: logger})
	r := chi.NewRouter()
	r.Handle("/messaging/", srv)
	ts := httptest.NewServer(r)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		ts.Close()
	})
	e := &env{t: t, st: st, url: "ws" + strings.TrimPrefix(ts.URL, "http") + "/messaging/", logs: logs, analytics: analytics, ids: map[string]int64{}}
	for _, name := range []string{"alice", "bob", "carol"} {
		u, err := st.CreateUserByUsername(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		e.ids[name] = u.ID
	}
	return e
}

type client struct {
	t  *testing.T
	ws *websocket.Conn
}

func (e *env) dial(name string) *client {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, e.url+"?user="+name, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	ws.SetReadLimit(1 << 20)
	e.t.Cleanup(func() { _ = ws.CloseNow() })
	c := &client{t: e.t, ws: ws}
	c.expect("chat.notifications")
	return c
}

func (c *client) send(event string, data any) {
	c.t.Helper()
	b, _ := json.Marshal(map[string]any{"event_type": event, "data": data})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) next() map[string]any {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, b, err := c.ws.Read(ctx)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("bad JSON %s", b)
	}
	return m
}

// expect reads until a frame of eventType arrives and returns its data.
func (c *client) expect(eventType string) map[string]any {
	c.t.Helper()
	for i := 0; i < 20; i++ {
		m := c.next()
		if m["eventType"] == eventType {
			d, _ := m["data"].(map[string]any)
			return d
		}
		if _, isErr := m["error"]; isErr {
			c.t.Fatalf("waiting for %s, got error %v", eventType, m)
		}
	}
	c.t.Fatalf("no %s", eventType)
	return nil
}

func (c *client) expectError(code int) map[string]any {
	c.t.Helper()
	m := c.next()
	e, ok := m["error"].(map[string]any)
	if !ok || e["code"] != float64(code) {
		c.t.Fatalf("got %v, want error %d", m, code)
	}
	return e
}

// settled asserts that nothing is waiting for this socket: it sends
// session.heartbeat, and the next frame must be its answer. The server
// answers a socket's events in order, and the in-process broker has
// delivered a dispatch when Publish returns, so any frame that an event
// answered before caused on this socket comes before that answer.
func (c *client) settled() {
	c.t.Helper()
	c.send("session.heartbeat", nil)
	if m := c.next(); m["status"] != "success" {
		c.t.Fatalf("unexpected frame %v before the heartbeat's answer", m)
	}
}

// group makes alice create a group with bob and carol and returns its id
// and a message by bob in it. Every client has consumed the dispatches.
func (e *env) group(alice, bob, carol *client) (string, string) {
	alice.send("room.create", map[string]any{"type": "GroupChat", "name": "team",
		"participants": []int64{e.ids["bob"], e.ids["carol"]}})
	var room string
	for _, c := range []*client{alice, bob, carol} {
		room = c.expect("roomcreate.dispatch")["id"].(string)
	}
	bob.send("message.send", map[string]any{"room_id": room, "content": "spam?"})
	var msg string
	for _, c := range []*client{alice, bob, carol} {
		msg = c.expect("message.dispatch")["id"].(string)
	}
	return room, msg
}

func TestPinAdminsOnly(t *testing.T) {
	e := newEnv(t, Options{})
	alice, bob, carol := e.dial("alice"), e.dial("bob"), e.dial("carol")
	room, msg := e.group(alice, bob, carol)

	bob.send("message.pin", map[string]any{"room_id": room, "message_id": msg})
	bob.expectError(chatmux.CodePermissionDenied)

	alice.send("message.pin", map[string]any{"room_id": room, "message_id": msg})
	for _, c := range []*client{alice, bob, carol} {
		d := c.expect("message.pinned")
		if d["pinned_by"] != "alice" || d["message"].(map[string]any)["id"] != msg {
			t.Fatalf("pinned %v", d)
		}
	}
	alice.send("message.pin", map[string]any{"room_id": room, "message_id": msg})
	alice.expectError(chatmux.CodeValidation)
	alice.send("message.pin", map[string]any{"room_id": room, "message_id": "6f1c0e55-8a55-4c43-9d55-0e1c9a1f2b10"})
	alice.expectError(chatmux.CodeNotFound)
	alice.send("message.pin", map[string]any{"room_id": room})
	alice.expectError(chatmux.CodeValidation)
}

func TestFlagAlertsAdminsOnEveryDevice(t *testing.T) {
	e := newEnv(t, Options{})
	alice, bob, carol := e.dial("alice"), e.dial("bob"), e.dial("carol")
	room, msg := e.group(alice, bob, carol)
	alicePhone := e.dial("alice")

	carol.send("message.flag", map[string]any{"room_id": room, "message_id": msg, "reason": "<b>spam</b><script>x</script>"})
	for _, c := range []*client{alice, alicePhone, bob, carol} {
		d := c.expect("message.flagged")
		if d["flagged_by"] != "carol" || d["message_id"] != msg {
			t.Fatalf("flagged %v", d)
		}
		if strings.Contains(d["reason"].(string), "<script>") {
			t.Fatalf("reason not sanitised: %v", d["reason"])
		}
	}
	for _, c := range []*client{alice, alicePhone} {
		d := c.expect("moderation.alert")
		if d["flagged_by"] != "carol" || d["message"].(map[string]any)["content"] != "spam?" {
			t.Fatalf("alert %v", d)
		}
	}
	// bob and carol are not admins: no alert. carol's answer first: her
	// flag has been handled, alerts and all, when it comes.
	carol.settled()
	bob.settled()
	alice.settled()
	alicePhone.settled()

	// Outsiders cannot flag.
	e.ids["dave"] = 0
	dave := e.dial("dave")
	dave.send("message.flag", map[string]any{"room_id": room, "message_id": msg})
	dave.expectError(chatmux.CodePermissionDenied)
}

func TestSendRateLimitPerUser(t *testing.T) {
	e := newEnv(t, Options{SendLimit: 2, SendPer: time.Hour})
	alice, bob, carol := e.dial("alice"), e.dial("bob"), e.dial("carol")
	room, _ := e.group(alice, bob, carol) // bob has sent one message
	bob.send("message.send", map[string]any{"room_id": room, "content": "two"})
	bob.expect("message.dispatch")
	bob.send("message.send", map[string]any{"room_id": room, "content": "three"})
	er := bob.expectError(chatmux.CodeRateLimited)
	if !strings.Contains(fmt.Sprint(er["detail"]), "2 events per 1h0m0s") {
		t.Fatalf("detail %v", er["detail"])
	}
	// The same user on another device shares the budget; other users do not.
	bobLaptop := e.dial("bob")
	bobLaptop.send("message.send", map[string]any{"room_id": room, "content": "four"})
	bobLaptop.expectError(chatmux.CodeRateLimited)
	carol.send("message.send", map[string]any{"room_id": room, "content": "fine"})
	carol.expect("message.dispatch")
}

func TestTypingRemoved(t *testing.T) {
	e := newEnv(t, Options{})
	alice, bob, carol := e.dial("alice"), e.dial("bob"), e.dial("carol")
	room, _ := e.group(alice, bob, carol)
	alice.send("message.typing", map[string]any{"room_id": room})
	if m := alice.next(); m["error"] != "invalid event type" {
		t.Fatalf("got %v", m)
	}
	bob.settled()
}

func TestAnalyticsCounts(t *testing.T) {
	e := newEnv(t, Options{})
	alice, bob, carol := e.dial("alice"), e.dial("bob"), e.dial("carol")
	e.group(alice, bob, carol)
	alice.send("message.typing", map[string]any{})
	alice.next()
	alice.send("message.analytics", map[string]any{})
	d := alice.expect("message.analytics")
	got := map[string]map[string]any{}
	for _, row := range d["events"].([]any) {
		r := row.(map[string]any)
		got[r["pattern"].(string)] = r["outcomes"].(map[string]any)
	}
	if got["message.send"]["ok"] != float64(1) || got["room.create"]["ok"] != float64(1) ||
		got["unmatched"]["ok"] != float64(1) || got["$connect"]["ok"] != float64(3) {
		t.Fatalf("analytics %v", got)
	}
	if snap := e.analytics.Snapshot(); snap["message.send"]["ok"] != 1 {
		t.Fatalf("snapshot %v", snap)
	}
}

func TestConnectDisconnectLogging(t *testing.T) {
	e := newEnv(t, Options{})
	alice := e.dial("alice")
	_ = alice.ws.Close(websocket.StatusNormalClosure, "bye")
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(e.logs.String(), "msg=disconnected") {
		if time.Now().After(deadline) {
			t.Fatalf("no disconnect log in:\n%s", e.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "msg=connected user=alice") || !strings.Contains(logs, "duration=") {
		t.Fatalf("logs:\n%s", logs)
	}
}
