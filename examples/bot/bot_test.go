package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/chat"
	"github.com/chatmux/chatmux/client"
	"github.com/chatmux/chatmux/internal/devauth"
	"github.com/chatmux/chatmux/store"
	"github.com/chatmux/chatmux/store/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const waitTimeout = 30 * time.Second

// chatNode is the chat service with the development sign-in on a store, on
// a loopback address; kill cuts every connection as a crash would.
type chatNode struct {
	srv   *chatmux.Server
	hs    *httptest.Server
	mu    sync.Mutex
	conns []net.Conn
	once  sync.Once
}

type trackingListener struct {
	net.Listener
	n *chatNode
}

func (l trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.mu.Lock()
		l.n.conns = append(l.n.conns, c)
		l.n.mu.Unlock()
	}
	return c, err
}

func startChat(t *testing.T, st store.Store, addr string) *chatNode {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg := chat.DefaultConfig()
	cfg.Store = st
	svc := chat.New(cfg)
	events := chatmux.NewRouter()
	svc.Register(events)
	n := &chatNode{srv: chatmux.NewServer(events, chatmux.ServerOptions{Authenticate: devauth.Authenticator(svc.Store())})}
	mux := http.NewServeMux()
	mux.Handle("/messaging/", n.srv)
	n.hs = httptest.NewUnstartedServer(mux)
	_ = n.hs.Listener.Close()
	n.hs.Listener = trackingListener{Listener: ln, n: n}
	n.hs.Start()
	t.Cleanup(n.stop)
	return n
}

func (n *chatNode) url() string  { return "ws://" + n.hs.Listener.Addr().String() + "/messaging/" }
func (n *chatNode) addr() string { return n.hs.Listener.Addr().String() }

func (n *chatNode) kill() {
	_ = n.hs.Listener.Close()
	n.mu.Lock()
	for _, c := range n.conns {
		_ = c.Close()
	}
	n.mu.Unlock()
	n.stop()
}

func (n *chatNode) stop() {
	n.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.srv.Shutdown(ctx)
		n.hs.Close()
	})
}

// inbox collects the messages a client receives.
type inbox struct {
	mu      sync.Mutex
	changed chan struct{}
	msgs    []*client.Message
}

func (b *inbox) add(m *client.Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.msgs = append(b.msgs, m)
	close(b.changed)
	b.changed = make(chan struct{})
}

// waitFor returns the first message that cond accepts, waiting for it.
func (b *inbox) waitFor(t *testing.T, what string, cond func(*client.Message) bool) *client.Message {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		for _, m := range b.msgs {
			if cond(m) {
				b.mu.Unlock()
				return m
			}
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("%s: not within %v", what, waitTimeout)
		}
	}
}

func (b *inbox) from(name string) []*client.Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*client.Message
	for _, m := range b.msgs {
		if m.Sender != nil && m.Sender.Username == name {
			out = append(out, m)
		}
	}
	return out
}

// TestBot: a user adds the bot to a group and talks to it, across a server
// restart.
func TestBot(t *testing.T) {
	st := memory.New()
	first := startChat(t, st, "127.0.0.1:0")
	botU, err := st.CreateUserByUsername(context.Background(), "helper")
	if err != nil {
		t.Fatal(err)
	}
	fast := client.Backoff{Base: 20 * time.Millisecond, Cap: 200 * time.Millisecond}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ctx, cancel := context.WithCancel(context.Background())
	botDone := make(chan error, 1)
	go func() {
		botDone <- Run(ctx, Config{URL: first.url(), User: "helper", Backoff: fast, Now: func() time.Time { return now }})
	}()
	defer func() {
		cancel()
		if err := <-botDone; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	in := &inbox{changed: make(chan struct{})}
	alice, err := client.Dial(context.Background(), client.Options{URL: first.url(), User: "alice", Backoff: fast,
		Handlers: client.Handlers{Message: in.add}})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	tctx, tcancel := context.WithTimeout(context.Background(), waitTimeout)
	defer tcancel()
	room, err := alice.CreateRoom(tctx, client.CreateRoom{Type: client.RoomGroup, Name: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	// History before the bot joins is not answered.
	if _, err := alice.SendMessage(tctx, client.OutgoingMessage{RoomID: room.ID, Content: "/echo old"}); err != nil {
		t.Fatal(err)
	}
	if err := alice.AddMembers(tctx, room.ID, botU.ID); err != nil {
		t.Fatal(err)
	}
	in.waitFor(t, "the bot's greeting", func(m *client.Message) bool {
		return m.Sender.Username == "helper" && strings.Contains(m.Content, "/help")
	})

	ask := func(content string) *client.Message {
		t.Helper()
		q, err := alice.SendMessage(tctx, client.OutgoingMessage{RoomID: room.ID, Content: content})
		if err != nil {
			t.Fatal(err)
		}
		return in.waitFor(t, "the answer to "+content, func(m *client.Message) bool {
			return m.Sender.Username == "helper" && m.ParentMessage != nil && m.ParentMessage.ID == q.ID
		})
	}
	if a := ask("/echo hi"); a.Content != "hi" {
		t.Fatalf("/echo hi answered %q", a.Content)
	}
	if _, err := alice.SendMessage(tctx, client.OutgoingMessage{RoomID: room.ID, Content: "just talking"}); err != nil {
		t.Fatal(err)
	}
	// The bot's own "/help" is not a command to it.
	if a := ask("/echo /help"); a.Content != "/help" {
		t.Fatalf("/echo /help answered %q", a.Content)
	}
	if a := ask("/time"); a.Content != "2026-01-02T03:04:05Z" {
		t.Fatalf("/time answered %q", a.Content)
	}
	if a := ask("/help"); !strings.Contains(a.Content, "/echo") {
		t.Fatalf("/help answered %q", a.Content)
	}
	if a := ask("/dance"); !strings.Contains(a.Content, "Unknown command /dance") {
		t.Fatalf("/dance answered %q", a.Content)
	}
	// Greeting plus five answers: nothing for "/echo old", "just talking"
	// or its own messages.
	if got := in.from("helper"); len(got) != 6 {
		for _, m := range got {
			t.Logf("bot said %q", m.Content)
		}
		t.Fatalf("the bot said %d messages, want 6", len(got))
	}

	// The server dies and comes back: the bot reconnects and answers.
	first.kill()
	startChat(t, st, first.addr())
	if a := ask("/echo again"); a.Content != "again" {
		t.Fatalf("/echo again answered %q", a.Content)
	}
}

// TestParseFlags checks flags, the environment and their errors.
func TestParseFlags(t *testing.T) {
	env := map[string]string{"CHATMUX_URL": "ws://x/messaging/", "CHATMUX_TOKEN": "tok"}
	cfg, err := parseFlags(nil, func(k string) string { return env[k] })
	if err != nil || cfg.URL != "ws://x/messaging/" || cfg.Token != "tok" || cfg.User != "" {
		t.Fatalf("from the environment: %+v, %v", cfg, err)
	}
	cfg, err = parseFlags([]string{"-url", "ws://y/", "-token", ""}, func(k string) string { return env[k] })
	if err != nil || cfg.URL != "ws://y/" || cfg.User != "bot" {
		t.Fatalf("flags over the environment: %+v, %v", cfg, err)
	}
	if _, err := parseFlags([]string{"-token", "t", "-user", "u"}, func(string) string { return "" }); err == nil {
		t.Fatal("a token and a user: no error")
	}
	if _, err := parseFlags([]string{"extra"}, func(string) string { return "" }); err == nil {
		t.Fatal("an extra argument: no error")
	}
	// A token's username claim names the bot.
	b, err := newBot(Config{URL: "ws://x/", Token: "e30.eyJ1c2VybmFtZSI6InJvYm8ifQ.sig"})
	if err != nil || b.name != "robo" {
		t.Fatalf("name from the token: %v, %v", b, err)
	}
	_ = b.c.Close()
	if _, err := newBot(Config{URL: "ws://x/", Token: "opaque"}); err == nil {
		t.Fatal("an opaque token without a name: no error")
	}
}
