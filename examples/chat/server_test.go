package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	chatclient "github.com/chatmux/chatmux/client"
	"github.com/chatmux/chatmux/internal/testenv"
)

// newTestServer starts the example server in process, in development mode,
// on the in-memory store and broker.
func newTestServer(t *testing.T) *httptest.Server {
	t.Helper()
	return newTestServerWith(t, config{Addr: "127.0.0.1:0"})
}

// newTestServerWith starts the example server in process with cfg.
func newTestServerWith(t *testing.T, cfg config) *httptest.Server {
	t.Helper()
	_, ts := serveApp(t, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return ts
}

// serveApp assembles the example server with cfg and serves it on a
// loopback port; the test's cleanup closes both.
func serveApp(t *testing.T, cfg config, logger *slog.Logger) (*app, *httptest.Server) {
	t.Helper()
	a, err := newApp(context.Background(), cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(a.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := a.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		ts.Close()
	})
	return a, ts
}

// client is one WebSocket user of the test server.
type client struct {
	t    *testing.T
	name string
	ws   *websocket.Conn
}

func dial(t *testing.T, ts *httptest.Server, query string) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/messaging/"+query, nil)
	return ws, err
}

func connect(t *testing.T, ts *httptest.Server, name string) *client {
	t.Helper()
	ws, err := dial(t, ts, "?user="+name)
	if err != nil {
		t.Fatalf("%s: dial: %v", name, err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	c := &client{t: t, name: name, ws: ws}
	// Notifications are on: the first frame is chat.notifications.
	c.expect("chat.notifications")
	return c
}

func (c *client) send(event string, data any) {
	c.t.Helper()
	b, err := json.Marshal(map[string]any{"event_type": event, "data": data})
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("%s: write %s: %v", c.name, event, err)
	}
}

// frame is one server frame, decoded loosely.
type frame struct {
	EventType string          `json:"eventType"`
	Data      json.RawMessage `json:"data"`
	Error     json.RawMessage `json:"error"`
	Status    string          `json:"status"`
}

func (c *client) read() frame {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := c.ws.Read(ctx)
	if err != nil {
		c.t.Fatalf("%s: read: %v", c.name, err)
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		c.t.Fatalf("%s: bad frame %s: %v", c.name, b, err)
	}
	return f
}

// expect reads frames until one with eventType arrives, failing on an
// error envelope; it decodes the data into out when out is not nil.
func (c *client) expect(eventType string, out ...any) frame {
	c.t.Helper()
	for i := 0; i < 20; i++ {
		f := c.read()
		if f.Error != nil {
			c.t.Fatalf("%s: waiting for %s, got error %s", c.name, eventType, f.Error)
		}
		if f.EventType != eventType {
			continue
		}
		for _, o := range out {
			if err := json.Unmarshal(f.Data, o); err != nil {
				c.t.Fatalf("%s: %s data %s: %v", c.name, eventType, f.Data, err)
			}
		}
		return f
	}
	c.t.Fatalf("%s: no %s in 20 frames", c.name, eventType)
	return frame{}
}

type wireUser struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
}

type wireMessage struct {
	ID           string              `json:"id"`
	Room         struct{ ID string } `json:"room"`
	Sender       wireUser            `json:"sender"`
	Content      string              `json:"content"`
	Seq          int64               `json:"seq"`
	ClientMsgID  string              `json:"client_msg_id"`
	DeliveredTo  []string            `json:"delivered_to"`
	ReadReceipts []struct {
		Reader wireUser `json:"reader"`
	} `json:"read_receipts"`
	Reactions []struct {
		User            wireUser `json:"user"`
		ReactionContent string   `json:"reaction_content"`
	} `json:"reactions"`
}

// TestConversation drives a short conversation between two users over real
// WebSockets: a one-to-one chat, a message (sent twice with the same
// client_msg_id), delivery and read receipts, a reaction, typing, unread
// counts and the heartbeat.
func TestConversation(t *testing.T) {
	ts := newTestServer(t)
	conversation(t, ts, ts, "alice", "bob")
}

// TestConversationPostgresRedis runs the same conversation on PostgreSQL
// (a schema of its own, migrated at start) and Redis, with each user on a
// node of their own.
func TestConversationPostgresRedis(t *testing.T) {
	// The schema's cleanup is registered before the servers', so it runs
	// after they close.
	dbURL := testenv.DatabaseSchema(t, "example_chat_")
	redisURL := testenv.RedisURL(t)
	// A Redis prefix of its own: Redis is shared with other tests.
	suffix := testenv.UniqueName("")
	cfg := config{Addr: "127.0.0.1:0", DatabaseURL: dbURL, RedisURL: redisURL, RedisPrefix: "example_chat_" + suffix + ":"}
	nodeA := newTestServerWith(t, cfg)
	nodeB := newTestServerWith(t, cfg)
	// Redis is connected in the background: each node becomes healthy
	// once its broker is up.
	for _, ts := range []*httptest.Server{nodeA, nodeB} {
		var code int
		var body []byte
		for deadline := time.Now().Add(30 * time.Second); ; {
			res, err := http.Get(ts.URL + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(res.Body)
			res.Body.Close()
			code = res.StatusCode
			if code == http.StatusOK && string(body) == `{"broker":"ok","store":"ok"}`+"\n" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("healthz = %d %s", code, body)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	conversation(t, nodeA, nodeB, "alice"+suffix, "bob"+suffix)
}

// conversation is the conversation of TestConversation between alice on
// server a and bob on server b.
func conversation(t *testing.T, a, b *httptest.Server, aliceName, bobName string) {
	alice := connect(t, a, aliceName)
	bob := connect(t, b, bobName)
	bobID := whoami(t, b, bobName).ID

	alice.send("room.create", map[string]any{"type": "OneToOneChat", "participants": []int64{bobID}})
	var room struct {
		ID           string     `json:"id"`
		Type         string     `json:"type"`
		Participants []wireUser `json:"participants"`
	}
	alice.expect("roomcreate.dispatch", &room)
	if room.Type != "OneToOneChat" || len(room.Participants) != 2 {
		t.Fatalf("room = %+v", room)
	}
	bob.expect("roomcreate.dispatch")

	send := map[string]any{"room_id": room.ID, "content": "Hello &lt;Bob&gt;", "client_msg_id": "c-1"}
	alice.send("message.send", send)
	var sent, got wireMessage
	alice.expect("message.dispatch", &sent)
	bob.expect("message.dispatch", &got)
	if got.ID != sent.ID || got.Content != "Hello &lt;Bob&gt;" || got.Sender.Username != aliceName || got.ClientMsgID != "c-1" || got.Seq != 1 {
		t.Fatalf("bob got %+v, alice sent %+v", got, sent)
	}
	// A retry with the same client_msg_id stores nothing new.
	alice.send("message.send", send)
	var again wireMessage
	alice.expect("message.dispatch", &again)
	if again.ID != sent.ID {
		t.Errorf("retry stored a new message %s (first %s)", again.ID, sent.ID)
	}

	// Bob's room list counts the message as unread.
	bob.send("room.list", nil)
	var list []struct {
		ID          string       `json:"id"`
		UnreadCount int          `json:"unread_count"`
		Peer        *wireUser    `json:"peer"`
		LastMessage *wireMessage `json:"last_message"`
	}
	bob.expect("roomlist.dispatch", &list)
	if len(list) != 1 || list[0].UnreadCount != 1 || list[0].Peer == nil || list[0].Peer.Username != aliceName ||
		list[0].LastMessage == nil || list[0].LastMessage.ID != sent.ID {
		t.Fatalf("bob's room list = %+v", list)
	}

	// Delivered, then read.
	bob.send("message.acknowledged", map[string]any{"message_id": []string{sent.ID}})
	var delivered []wireMessage
	alice.expect("messagedelivered.dispatch", &delivered)
	if len(delivered) != 1 || len(delivered[0].DeliveredTo) != 1 || delivered[0].DeliveredTo[0] != bobName {
		t.Fatalf("delivered = %+v", delivered)
	}
	bob.send("message.read", map[string]any{"message_id": []string{sent.ID}})
	var read []wireMessage
	alice.expect("readreceipt.dispatch", &read)
	if len(read) != 1 || len(read[0].ReadReceipts) != 1 || read[0].ReadReceipts[0].Reader.Username != bobName {
		t.Fatalf("read = %+v", read)
	}
	bob.expect("readreceipt.dispatch")
	bob.send("room.list", nil)
	bob.expect("roomlist.dispatch", &list)
	if list[0].UnreadCount != 0 {
		t.Errorf("unread after read = %d", list[0].UnreadCount)
	}

	// A reaction reaches both.
	bob.send("message.react", map[string]any{"type": "add", "message_id": sent.ID, "reaction_content": "👍"})
	var reaction struct {
		Status  string      `json:"status"`
		Type    string      `json:"type"`
		Message wireMessage `json:"message"`
	}
	alice.expect("reaction.dispatch", &reaction)
	if reaction.Status != "successful" || reaction.Type != "add" || len(reaction.Message.Reactions) != 1 ||
		reaction.Message.Reactions[0].ReactionContent != "👍" || reaction.Message.Reactions[0].User.Username != bobName {
		t.Fatalf("reaction = %+v", reaction)
	}
	bob.expect("reaction.dispatch")

	// Typing says where and who.
	bob.send("message.typing", map[string]any{"room_id": room.ID})
	var typing struct {
		Username string `json:"username"`
		RoomID   string `json:"room_id"`
		UserID   int64  `json:"user_id"`
	}
	alice.expect("messagetyping.dispatch", &typing)
	if typing.Username != bobName || typing.RoomID != room.ID || typing.UserID != bobID {
		t.Fatalf("typing = %+v", typing)
	}
	bob.expect("messagetyping.dispatch")

	// Catch-up by seq, and the heartbeat.
	alice.send("message.send", map[string]any{"room_id": room.ID, "content": "second"})
	bob.expect("message.dispatch")
	bob.send("room.messages", map[string]any{"room_id": room.ID, "after_seq": 1})
	var page struct {
		HasMore bool `json:"has_more"`
		Data    struct {
			RoomID   string        `json:"room_id"`
			Messages []wireMessage `json:"messages"`
		} `json:"data"`
	}
	bob.expect("roommessages.dispatch", &page)
	if page.Data.RoomID != room.ID || len(page.Data.Messages) != 1 || page.Data.Messages[0].Content != "second" || page.HasMore {
		t.Fatalf("after_seq page = %+v", page)
	}
	bob.send("session.heartbeat", nil)
	if f := bob.read(); f.Status != "success" {
		t.Fatalf("heartbeat answer = %+v", f)
	}

	// Errors come back as envelopes; the connection stays open.
	bob.send("message.send", map[string]any{"room_id": room.ID, "content": "   "})
	if f := bob.read(); !strings.Contains(string(f.Error), "4003") {
		t.Fatalf("blank content answer = %+v", f)
	}
	bob.send("no.such.event", map[string]any{})
	if f := bob.read(); string(f.Error) != `"invalid event type"` {
		t.Fatalf("unknown event answer = %+v", f)
	}
	bob.send("session.heartbeat", nil)
	if f := bob.read(); f.Status != "success" {
		t.Fatalf("heartbeat after errors = %+v", f)
	}
}

// TestUnauthenticated checks that a connection without credentials is
// accepted, then closed with 4001.
func TestUnauthenticated(t *testing.T) {
	ts := newTestServer(t)
	for _, q := range []string{"", "?user=", "?user=no%20spaces"} {
		ws, err := dial(t, ts, q)
		if err != nil {
			t.Fatalf("%q: dial: %v", q, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _, err = ws.Read(ctx)
		cancel()
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4001 {
			t.Errorf("%q: read error %v, want close 4001", q, err)
		}
		_ = ws.CloseNow()
	}
}

type meJSON struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
}

func whoami(t *testing.T, ts *httptest.Server, name string) meJSON {
	t.Helper()
	res, err := http.Get(ts.URL + "/me?user=" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/me?user=%s: %s", name, res.Status)
	}
	var me meJSON
	if err := json.NewDecoder(res.Body).Decode(&me); err != nil {
		t.Fatal(err)
	}
	return me
}

// TestHTTPRoutes checks the routes around the WebSocket: the page, its
// config, /me, /healthz and /metrics.
func TestHTTPRoutes(t *testing.T) {
	ts := newTestServer(t)
	get := func(path string) (int, string, string) {
		t.Helper()
		res, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header.Get("Content-Type"), string(b)
	}
	tests := []struct {
		path     string
		code     int
		ctype    string
		contains string
	}{
		{"/", 200, "text/html", `<script src="app.js">`},
		{"/app.js", 200, "javascript", "chatmux-client/index.js"},
		{"/chatmux-client/index.js", 200, "javascript", "ChatClient"},
		{"/app.css", 200, "text/css", ".bubble"},
		{"/config.json", 200, "application/json", `"auth":"dev"`},
		{"/healthz", 200, "application/json", `"store":"ok"`},
		{"/me?user=carol", 200, "application/json", `"username":"carol"`},
		{"/me", 401, "", "authentication failed"},
		{"/nope.js", 404, "", ""},
	}
	for _, tt := range tests {
		code, ctype, body := get(tt.path)
		if code != tt.code || !strings.Contains(ctype, tt.ctype) || !strings.Contains(body, tt.contains) {
			t.Errorf("GET %s = %d %q %.80q; want %d %q containing %q", tt.path, code, ctype, body, tt.code, tt.ctype, tt.contains)
		}
	}

	// One connection and one event show in the metrics. The metrics
	// middleware counts an event after its handler returns, which is after
	// the reply was queued: the client may read the reply first, so the
	// count is awaited, not expected at once.
	c := connect(t, ts, "dave")
	c.send("session.heartbeat", nil)
	if f := c.read(); f.Status != "success" {
		t.Fatalf("heartbeat answer = %+v", f)
	}
	waitMetrics(t, ts, "chatmux_connections_open 1",
		`chatmux_events_total{outcome="ok",pattern="session.heartbeat"} 1`)
}

// waitMetrics reads /metrics until it has every line of want, and fails
// the test when it still lacks one after 10 seconds.
func waitMetrics(t *testing.T, ts *httptest.Server, want ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		body, err := fetchMetrics(ts.URL + "/metrics")
		missing := ""
		for _, w := range want {
			if !strings.Contains(body, "\n"+w+"\n") {
				missing = w
				break
			}
		}
		if err == nil && missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics (err %v) still has no %q after 10s:\n%s", err, missing, grepLines(body, "chatmux_"))
		}
		<-tick.C
	}
}

// fetchMetrics returns the body of a 200 answer to GET url.
func fetchMetrics(url string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err == nil && res.StatusCode != http.StatusOK {
		err = errors.New(res.Status)
	}
	return string(b), err
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestHealthzUnavailable checks the 503 answer when the broker is closed.
func TestHealthzUnavailable(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := newApp(context.Background(), config{Addr: "127.0.0.1:0"}, logger)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(a.Handler())
	defer ts.Close()
	if err := a.broker.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := http.Get(ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), `"broker":"unavailable"`) ||
		!strings.Contains(string(b), `"store":"ok"`) {
		t.Errorf("healthz = %d %s", res.StatusCode, b)
	}
	_ = a.Close(context.Background())
}

func TestParseConfig(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		addr      string
		sendLimit string // "" means the default, 100/20s
		wantErr   bool
	}{
		{name: "defaults", addr: "127.0.0.1:8080"},
		{name: "send limit flag", args: []string{"-send-limit", "5/s"}, addr: "127.0.0.1:8080", sendLimit: "5/1s"},
		{name: "send limit env", env: map[string]string{"CHATMUX_SEND_LIMIT": "30/1m"}, addr: "127.0.0.1:8080", sendLimit: "30/1m0s"},
		{name: "send limit flag wins", args: []string{"-send-limit", "off"}, env: map[string]string{"CHATMUX_SEND_LIMIT": "30/1m"}, addr: "127.0.0.1:8080", sendLimit: "off"},
		{name: "send limit 0", args: []string{"-send-limit", "0"}, addr: "127.0.0.1:8080", sendLimit: "off"},
		{name: "send limit without period", args: []string{"-send-limit", "5"}, wantErr: true},
		{name: "send limit negative", args: []string{"-send-limit", "-5/s"}, wantErr: true},
		{name: "send limit zero period", args: []string{"-send-limit", "5/0s"}, wantErr: true},
		{name: "send limit bad env", env: map[string]string{"CHATMUX_SEND_LIMIT": "lots"}, wantErr: true},
		{name: "env addr", env: map[string]string{"CHATMUX_ADDR": "127.0.0.1:9000"}, addr: "127.0.0.1:9000"},
		{name: "flag wins", args: []string{"-addr", "localhost:7000"}, env: map[string]string{"CHATMUX_ADDR": "127.0.0.1:9000"}, addr: "localhost:7000"},
		{name: "ipv6 loopback", args: []string{"-addr", "[::1]:8080"}, addr: "[::1]:8080"},
		{name: "dev mode on all interfaces refused", args: []string{"-addr", ":8080"}, wantErr: true},
		{name: "dev mode on a public address refused", args: []string{"-addr", "0.0.0.0:8080"}, wantErr: true},
		{name: "dev mode forced", args: []string{"-addr", ":8080", "-insecure-dev-auth"}, addr: ":8080"},
		{name: "jwt on all interfaces", args: []string{"-addr", ":8080"}, env: map[string]string{"CHATMUX_JWT_SECRET": "s3cret"}, addr: ":8080"},
		{name: "unknown flag", args: []string{"-nope"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig(tt.args, env(tt.env), io.Discard)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("accepted: %+v", cfg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Addr != tt.addr {
				t.Errorf("Addr = %q, want %q", cfg.Addr, tt.addr)
			}
			want := tt.sendLimit
			if want == "" {
				want = "100/20s"
			}
			if got := cfg.SendLimit.String(); got != want {
				t.Errorf("SendLimit = %s, want %s", got, want)
			}
		})
	}
}

// TestRunAddressInUse: when the port is taken, run fails at once with an
// error that says so and names -addr and CHATMUX_ADDR.
func TestRunAddressInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	err = run(context.Background(), config{Addr: taken.Addr().String(), ShutdownTimeout: time.Second}, logger, nil)
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("run = %v, want EADDRINUSE", err)
	}
	for _, want := range []string{taken.Addr().String(), "already in use", "-addr", "CHATMUX_ADDR"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// TestSendLimit: past the per-user limit a message.send is answered 4029,
// on every connection of that user, while other users and other events go
// on. The limit comes from CHATMUX_SEND_LIMIT, as a deployment sets it.
// The users are Go clients (package client): a first send refused with
// 4029 fails, it is not retried.
func TestSendLimit(t *testing.T) {
	cfg, err := parseConfig(nil, func(k string) string {
		return map[string]string{"CHATMUX_ADDR": "127.0.0.1:0", "CHATMUX_SEND_LIMIT": "2/1h"}[k]
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServerWith(t, cfg)
	ctx := testCtx(t)
	alice := goClient(t, ts, chatclient.Options{User: "alice"})
	bobGot := make(chan *chatclient.Message, 10)
	bob := goClient(t, ts, chatclient.Options{User: "bob", Handlers: chatclient.Handlers{
		Message: func(m *chatclient.Message) { bobGot <- m },
	}})
	room, err := alice.CreateRoom(ctx, chatclient.CreateRoom{Type: chatclient.RoomOneToOne, Members: []int64{whoami(t, ts, "bob").ID}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		m, err := alice.SendMessage(ctx, chatclient.OutgoingMessage{RoomID: room.ID, Content: fmt.Sprint("hello ", i)})
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		select {
		case got := <-bobGot:
			if got.ID != m.ID {
				t.Fatalf("bob got %s, want %s", got.ID, m.ID)
			}
		case <-ctx.Done():
			t.Fatal("bob got nothing")
		}
	}
	alicePhone := goClient(t, ts, chatclient.Options{User: "alice"})
	for name, c := range map[string]*chatclient.Client{"alice": alice, "alice's phone": alicePhone} {
		_, err := c.SendMessage(ctx, chatclient.OutgoingMessage{RoomID: room.ID, Content: "one too many"})
		var se *chatclient.ServerError
		if !errors.As(err, &se) || se.Code != 4029 || !strings.Contains(se.DetailText(), "message.send") {
			t.Fatalf("%s: %v, want error 4029 for message.send", name, err)
		}
	}
	// Other events of alice, and bob's sends, are not limited.
	if err := alice.Heartbeat(ctx); err != nil {
		t.Fatalf("heartbeat after the limit: %v", err)
	}
	if _, err := bob.SendMessage(ctx, chatclient.OutgoingMessage{RoomID: room.ID, Content: "hi"}); err != nil {
		t.Fatalf("bob: %v", err)
	}
}

// TestRunShutdown starts the real listener, then cancels: run must return
// nil after closing open WebSockets with 1001.
func TestRunShutdown(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, config{Addr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second}, logger, ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer dcancel()
	ws, _, err := websocket.Dial(dctx, "ws://"+addr+"/messaging/?user=erin", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if _, _, err := ws.Read(dctx); err != nil { // chat.notifications
		t.Fatal(err)
	}
	cancel()
	_, _, err = ws.Read(dctx)
	if websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("read after shutdown: %v, want close 1001", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return")
	}
}

// TestJWTConnections checks JWT mode over real WebSockets, through the Go
// client: a token in the query or in an Authorization header signs in as
// its sub; a bad one is closed with 4001, which signs the client out.
func TestJWTConnections(t *testing.T) {
	ts := newTestServerWith(t, config{Addr: "127.0.0.1:0", JWTSecret: testSecret})
	ctx := testCtx(t)

	alice := hs256(t, testSecret, jwt.MapClaims{"sub": 101, "username": "alice", "exp": time.Now().Add(time.Hour).Unix()})
	bob := hs256(t, testSecret, jwt.MapClaims{"sub": "202", "username": "bob"})

	ca := goClient(t, ts, chatclient.Options{Token: alice})
	bobRooms := make(chan chatclient.RoomDetail, 1)
	goClient(t, ts, chatclient.Options{Header: http.Header{"Authorization": {"Bearer " + bob}}, Handlers: chatclient.Handlers{
		RoomCreate: func(r chatclient.RoomDetail) { bobRooms <- r },
	}})

	// Alice reaches bob by the id in his token.
	if _, err := ca.CreateRoom(ctx, chatclient.CreateRoom{Type: chatclient.RoomOneToOne, Members: []int64{202}}); err != nil {
		t.Fatal(err)
	}
	var room chatclient.RoomDetail
	select {
	case room = <-bobRooms:
	case <-ctx.Done():
		t.Fatal("bob did not get the room")
	}
	if len(room.Participants) != 2 || room.Participants[0].ID != 101 || room.Participants[1].ID != 202 ||
		room.Participants[1].Username != "bob" {
		t.Fatalf("room = %+v", room)
	}

	// /config.json tells the page to ask for a token; /me checks it.
	res, err := http.Get(ts.URL + "/config.json")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(b), `"auth":"jwt"`) {
		t.Errorf("config.json = %s", b)
	}
	res, err = http.Get(ts.URL + "/me?token=" + alice)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(b), `"id":101`) {
		t.Errorf("/me = %d %s", res.StatusCode, b)
	}

	// Development sign-in is off; a forged token is refused (4001).
	forged := hs256(t, []byte("not-the-server-secret-not-the-secret"), jwt.MapClaims{"sub": 101, "username": "alice"})
	for _, opts := range []chatclient.Options{{User: "alice"}, {Token: forged}} {
		opts.URL = wsURL(ts)
		if c, err := chatclient.Dial(ctx, opts); !errors.Is(err, chatclient.ErrSignedOut) {
			if c != nil {
				_ = c.Close()
			}
			t.Errorf("%+v: %v, want signed out by 4001", opts, err)
		}
	}
}

// TestSearchLimit: user.search is limited per user (searchLimit), so
// that no client walks the user directory at full speed.
func TestSearchLimit(t *testing.T) {
	ts := newTestServer(t)
	ctx := testCtx(t)
	alice := goClient(t, ts, chatclient.Options{User: "alice"})
	for i := range searchLimit.Events {
		if _, err := alice.SearchUsers(ctx, "b", 0); err != nil {
			t.Fatalf("search %d: %v", i, err)
		}
	}
	_, err := alice.SearchUsers(ctx, "b", 0)
	var se *chatclient.ServerError
	if !errors.As(err, &se) || se.Code != 4029 || !strings.Contains(se.DetailText(), "user.search") {
		t.Fatalf("%v, want error 4029 for user.search", err)
	}
}

// wsURL is the test server's WebSocket endpoint.
func wsURL(ts *httptest.Server) string {
	return "ws" + strings.TrimPrefix(ts.URL, "http") + wsPath
}

// testCtx bounds a test's requests.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// goClient connects a Go client (package client) to the test server with
// opts (URL set here) and closes it when the test ends.
func goClient(t *testing.T, ts *httptest.Server, opts chatclient.Options) *chatclient.Client {
	t.Helper()
	opts.URL = wsURL(ts)
	c, err := chatclient.Dial(testCtx(t), opts)
	if err != nil {
		t.Fatalf("connect %s: %v", opts.User, err)
	}
	t.Cleanup(func() {
		_ = c.Close()
		<-c.Done()
	})
	return c
}
