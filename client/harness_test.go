package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
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

var bg = context.Background()

// waitTimeout bounds each wait for something a test expects: generous,
// since a passing test never waits for it.
const waitTimeout = 30 * time.Second

// fastBackoff makes reconnects quick in tests.
var fastBackoff = client.Backoff{Base: 20 * time.Millisecond, Cap: 200 * time.Millisecond}

// trackListener records the connections it accepts, so that a test can cut
// them all without a close frame (a server killed).
type trackListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *trackListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *trackListener) cutAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		_ = c.Close()
	}
	l.conns = nil
}

// node is the chat service (package chat, development sign-in) on a
// store, served on a loopback address.
type node struct {
	t    testing.TB
	st   store.Store
	srv  *chatmux.Server
	hs   *httptest.Server
	ln   *trackListener
	addr string
	once sync.Once
}

// startNode serves the chat service on st at addr ("" for any port).
func startNode(t testing.TB, st store.Store, addr string) *node {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	raw, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	cfg := chat.DefaultConfig()
	cfg.Store = st
	svc := chat.New(cfg)
	events := chatmux.NewRouter()
	svc.Register(events)
	srv := chatmux.NewServer(events, chatmux.ServerOptions{Authenticate: devauth.Authenticator(svc.Store())})
	mux := http.NewServeMux()
	mux.Handle("/messaging/", srv)
	ln := &trackListener{Listener: raw}
	hs := httptest.NewUnstartedServer(mux)
	_ = hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	n := &node{t: t, st: st, srv: srv, hs: hs, ln: ln, addr: raw.Addr().String()}
	t.Cleanup(n.stop)
	return n
}

// url is the WebSocket endpoint.
func (n *node) url() string { return "ws://" + n.addr + "/messaging/" }

// kill stops the node the way a crash does: the listener closes and every
// connection is cut without a close frame.
func (n *node) kill() {
	_ = n.ln.Listener.Close()
	n.ln.cutAll()
	n.stop()
}

func (n *node) stop() {
	n.once.Do(func() {
		ctx, cancel := context.WithTimeout(bg, 5*time.Second)
		defer cancel()
		_ = n.srv.Shutdown(ctx)
		n.hs.Close()
	})
}

// user creates (or finds) a user by name and returns its id.
func user(t *testing.T, st store.Store, name string) int64 {
	t.Helper()
	u, err := st.CreateUserByUsername(bg, name)
	if err != nil {
		t.Fatalf("create user %s: %v", name, err)
	}
	return u.ID
}

// recorder keeps what a client's handlers received.
type recorder struct {
	mu       sync.Mutex
	changed  chan struct{}
	messages []*client.Message
	byType   map[string]int
	states   []client.StateChange
	sent     map[string]int
	failed   map[string]error
	added    []client.MembersDispatch
}

func newRecorder() *recorder {
	return &recorder{changed: make(chan struct{}), byType: map[string]int{}, sent: map[string]int{}, failed: map[string]error{}}
}

func (r *recorder) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// handlers returns handlers that record into r.
func (r *recorder) handlers() client.Handlers {
	rec := func(f func()) {
		r.mu.Lock()
		defer r.mu.Unlock()
		f()
		r.notifyLocked()
	}
	return client.Handlers{
		Message:        func(m *client.Message) { rec(func() { r.messages = append(r.messages, m) }) },
		Dispatch:       func(d client.Dispatch) { rec(func() { r.byType[d.EventType]++ }) },
		State:          func(s client.StateChange) { rec(func() { r.states = append(r.states, s) }) },
		Sent:           func(id string, _ *client.Message) { rec(func() { r.sent[id]++ }) },
		SendFailed:     func(id, _ string, err error) { rec(func() { r.failed[id] = err }) },
		RoomAddMembers: func(m client.MembersDispatch) { rec(func() { r.added = append(r.added, m) }) },
	}
}

// wait waits until cond (called with r locked) holds.
func (r *recorder) wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ok, ch := cond(), r.changed
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("%s: not within %v", what, waitTimeout)
		}
	}
}

// roomMessages returns the messages r received of a room, in order.
func (r *recorder) roomMessages(roomID string) []*client.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*client.Message
	for _, m := range r.messages {
		if m.Room.ID == roomID {
			out = append(out, m)
		}
	}
	return out
}

func (r *recorder) countLocked(roomID string) int {
	n := 0
	for _, m := range r.messages {
		if m.Room.ID == roomID {
			n++
		}
	}
	return n
}

// dialUser connects a client as the development user name, recording into
// a new recorder; the client is closed when the test ends.
func dialUser(t *testing.T, url, name string, tweak ...func(*client.Options)) (*client.Client, *recorder) {
	t.Helper()
	rec := newRecorder()
	opts := client.Options{URL: url, User: name, Backoff: fastBackoff, Handlers: rec.handlers()}
	for _, f := range tweak {
		f(&opts)
	}
	ctx, cancel := context.WithTimeout(bg, waitTimeout)
	defer cancel()
	c, err := client.Dial(ctx, opts)
	if err != nil {
		t.Fatalf("%s: dial: %v", name, err)
	}
	t.Cleanup(func() { closeClient(t, c) })
	return c, rec
}

// closeClient closes c and waits for its handlers to end.
func closeClient(t *testing.T, c *client.Client) {
	t.Helper()
	_ = c.Close()
	select {
	case <-c.Done():
	case <-time.After(waitTimeout):
		t.Errorf("the client's handlers did not end")
	}
}

func memoryStore() store.Store { return memory.New() }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(bg, waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

func isServerCode(err error, code int) bool {
	var se *client.ServerError
	return errors.As(err, &se) && se.Code == code
}
