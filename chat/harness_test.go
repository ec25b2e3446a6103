package chat_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/chat"
	"github.com/chatmux/chatmux/groups"
	"github.com/chatmux/chatmux/store"
	"github.com/chatmux/chatmux/store/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var bg = context.Background()

// waitTimeout bounds each wait for something the test expects (a frame, a
// close): generous, since a passing test never waits for it.
const waitTimeout = 30 * time.Second

// factory returns a fresh store for one test.
type factory func(t *testing.T) store.Store

func memoryStore(*testing.T) store.Store { return memory.New() }

// stores are the stores every end-to-end test runs against (postgres is
// added by pg_test.go).
var stores = map[string]factory{"memory": memoryStore}

// forEachStore runs fn as a parallel subtest per store.
func forEachStore(t *testing.T, fn func(t *testing.T, newStore factory)) {
	t.Helper()
	for name, f := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, f)
		})
	}
}

// testAuth authenticates ?user=<id>&name=<username>.
func testAuth(r *http.Request) (*chatmux.User, error) {
	id, err := strconv.ParseInt(r.URL.Query().Get("user"), 10, 64)
	if err != nil || id <= 0 {
		return nil, errors.New("no user")
	}
	name := r.URL.Query().Get("name")
	if name == "" {
		name = fmt.Sprintf("user%d", id)
	}
	return &chatmux.User{ID: id, Username: name, Email: name + "@example.com", FirstName: "F" + name, LastName: "L" + name}, nil
}

// env is one chat server over a fresh store.
type env struct {
	t   *testing.T
	st  store.Store
	svc *chat.Service
	srv *chatmux.Server
	hs  *httptest.Server
	cfg chat.Config
	// presence keeps the presence.dispatch frames about other users of
	// the clients dialled after it is set; other tests never see them (clients ignore what
	// they do not expect, docs/protocol.md#presence).
	presence bool
}

func newEnv(t *testing.T, newStore factory, opts ...func(*chat.Config)) *env {
	t.Helper()
	return newEnvWith(t, newStore, func(svc *chat.Service, r chatmux.Router) { svc.Register(r) }, opts...)
}

// newEnvWith is newEnv with its own event registration.
func newEnvWith(t *testing.T, newStore factory, register func(*chat.Service, chatmux.Router), opts ...func(*chat.Config)) *env {
	t.Helper()
	return newEnvBroker(t, newStore, register, nil, opts...)
}

// wsPath is where the tests mount the server: the package's path.
const wsPath = "/messaging/"

// newEnvBroker is newEnvWith over a broker of its own (nil: the server's
// default, in-process).
func newEnvBroker(t *testing.T, newStore factory, register func(*chat.Service, chatmux.Router), broker groups.Broker, opts ...func(*chat.Config)) *env {
	t.Helper()
	cfg := chat.DefaultConfig()
	cfg.Store = newStore(t)
	for _, o := range opts {
		o(&cfg)
	}
	svc := chat.New(cfg)
	events := chatmux.NewRouter()
	register(svc, events)
	srv := chatmux.NewServer(events, chatmux.ServerOptions{Authenticate: testAuth, Broker: broker})
	svc.Attach(srv) // the Go API publishes through it
	r := chi.NewRouter()
	r.Handle(wsPath, srv)
	hs := httptest.NewServer(r)
	e := &env{t: t, st: cfg.Store, svc: svc, srv: srv, hs: hs, cfg: svc.Config()}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(bg, 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		hs.Close()
	})
	return e
}

// twoNodes returns two nodes of one deployment: one store of newStore and
// one in-process broker, each node with the default event map.
func twoNodes(t *testing.T, newStore factory) (*env, *env) {
	t.Helper()
	st := newStore(t)
	shared := func(*testing.T) store.Store { return st }
	broker := groups.NewMemory()
	register := func(svc *chat.Service, r chatmux.Router) { svc.Register(r) }
	return newEnvBroker(t, shared, register, broker), newEnvBroker(t, shared, register, broker)
}

// users creates users 1..n (user1, user2, ...) in the store.
func (e *env) users(n int) {
	e.t.Helper()
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("user%d", i)
		if _, err := e.st.UpsertUser(bg, store.User{ID: int64(i), Username: name, Email: name + "@example.com",
			FirstName: "F" + name, LastName: "L" + name}); err != nil {
			e.t.Fatalf("UpsertUser: %v", err)
		}
	}
}

// room creates a room in the store directly (fixtures).
func (e *env) room(typ store.RoomType, creator int64, members ...int64) uuid.UUID {
	e.t.Helper()
	nr := store.NewRoom{Type: typ, CreatorID: creator, Members: members}
	if typ != store.OneToOne {
		nr.Name = "room-" + string(typ)
	}
	r, err := e.st.CreateRoom(bg, nr)
	if err != nil {
		e.t.Fatalf("CreateRoom: %v", err)
	}
	return r.ID
}

// roomWith creates a room from a NewRoom.
func (e *env) roomWith(nr store.NewRoom) uuid.UUID {
	e.t.Helper()
	r, err := e.st.CreateRoom(bg, nr)
	if err != nil {
		e.t.Fatalf("CreateRoom: %v", err)
	}
	return r.ID
}

// message stores a message directly (fixtures).
func (e *env) message(room uuid.UUID, sender int64, content string) uuid.UUID {
	e.t.Helper()
	res, err := e.st.SendMessage(bg, store.NewMessage{RoomID: room, SenderID: sender, Content: content, Notify: e.cfg.Notifications})
	if err != nil {
		e.t.Fatalf("SendMessage: %v", err)
	}
	return res.Message.ID
}

// frame is one frame a client received.
type frame struct {
	Raw       string
	EventType string          `json:"eventType"`
	Data      json.RawMessage `json:"data"`
	Error     json.RawMessage `json:"error"`
	Status    string          `json:"status"`
	Type      *string         `json:"type"`
}

func (f frame) String() string { return f.Raw }

// obj decodes the frame's data as an object.
func (f frame) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(f.Data, &m); err != nil {
		t.Fatalf("data of %s is not an object: %v", f.Raw, err)
	}
	return m
}

// list decodes the frame's data as an array of objects.
func (f frame) list(t *testing.T) []map[string]any {
	t.Helper()
	var m []map[string]any
	if err := json.Unmarshal(f.Data, &m); err != nil {
		t.Fatalf("data of %s is not a list: %v", f.Raw, err)
	}
	return m
}

// client is one WebSocket connection of a test user.
type client struct {
	t      *testing.T
	name   string
	id     int64
	ws     *websocket.Conn
	frames chan frame
	done   chan struct{}
	closed error
	// presence: keep the presence.dispatch frames of other users
	// (env.presence).
	presence bool
}

// dial connects user id (named user<id>) and consumes the connect frame
// (chat.notifications, or a heartbeat answer when notifications are off).
func (e *env) dial(id int64) *client {
	e.t.Helper()
	c := e.dialRaw(id, fmt.Sprintf("user%d", id))
	if e.cfg.Notifications {
		c.expect(chat.DispatchNotifications)
	} else {
		c.send(chat.EventSessionHeartbeat, nil)
		c.expectStatus()
	}
	return c
}

// dialRaw connects without consuming anything.
func (e *env) dialRaw(id int64, name string) *client {
	e.t.Helper()
	u := strings.Replace(e.hs.URL, "http", "ws", 1) + wsPath + fmt.Sprintf("?user=%d&name=%s", id, name)
	ctx, cancel := context.WithTimeout(bg, waitTimeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	ws.SetReadLimit(1 << 24)
	c := &client{t: e.t, name: name, id: id, ws: ws, frames: make(chan frame, 256), done: make(chan struct{}), presence: e.presence}
	go c.readLoop()
	e.t.Cleanup(c.close)
	return c
}

func (c *client) readLoop() {
	defer close(c.done)
	defer close(c.frames)
	for {
		_, b, err := c.ws.Read(bg)
		if err != nil {
			c.closed = err
			return
		}
		f := frame{Raw: string(b)}
		if err := json.Unmarshal(b, &f); err != nil {
			f.EventType = "!invalid"
		}
		if f.EventType == chat.DispatchPresence && (!c.presence || ownPresence(f, c.id)) {
			continue
		}
		c.frames <- f
	}
}

// ownPresence reports whether f is the presence of user id.
func ownPresence(f frame, id int64) bool {
	var p struct {
		UserID int64 `json:"user_id"`
	}
	return json.Unmarshal(f.Data, &p) == nil && p.UserID == id
}

var closeOnce sync.Map

func (c *client) close() {
	if _, dup := closeOnce.LoadOrStore(c, true); dup {
		return
	}
	_ = c.ws.Close(websocket.StatusNormalClosure, "")
	select {
	case <-c.done:
	case <-time.After(waitTimeout):
		_ = c.ws.CloseNow()
		<-c.done
	}
	closeOnce.Delete(c)
}

// send sends an event; data is marshalled, or used as is when it is a
// string (raw JSON) or json.RawMessage. nil sends no data key.
func (c *client) send(event string, data any) {
	c.t.Helper()
	var b []byte
	switch d := data.(type) {
	case nil:
		b, _ = json.Marshal(map[string]any{"event_type": event})
	case string:
		b = []byte(fmt.Sprintf(`{"event_type":%q,"data":%s}`, event, d))
	case json.RawMessage:
		b = []byte(fmt.Sprintf(`{"event_type":%q,"data":%s}`, event, d))
	default:
		b, _ = json.Marshal(map[string]any{"event_type": event, "data": data})
	}
	ctx, cancel := context.WithTimeout(bg, waitTimeout)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("%s: write: %v", c.name, err)
	}
}

// next returns the next frame.
func (c *client) next() frame {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			c.t.Fatalf("%s: connection closed: %v", c.name, c.closed)
		}
		return f
	case <-time.After(waitTimeout):
		c.t.Fatalf("%s: no frame within %v", c.name, waitTimeout)
	}
	return frame{}
}

// expect returns the next frame, which must be a dispatch of eventType.
func (c *client) expect(eventType string) frame {
	c.t.Helper()
	f := c.next()
	if f.EventType != eventType {
		c.t.Fatalf("%s: want %s, got %s", c.name, eventType, f.Raw)
	}
	if f.Type != nil {
		c.t.Fatalf("%s: dispatch carries a type key: %s", c.name, f.Raw)
	}
	return f
}

// expectError returns the next frame, which must be an error with code; a
// non-empty detail must equal the JSON of the detail.
func (c *client) expectError(code int, detail string) {
	c.t.Helper()
	f := c.next()
	var e struct {
		Code   int             `json:"code"`
		Detail json.RawMessage `json:"detail"`
	}
	if len(f.Error) == 0 || json.Unmarshal(f.Error, &e) != nil {
		c.t.Fatalf("%s: want error %d, got %s", c.name, code, f.Raw)
	}
	if e.Code != code {
		c.t.Fatalf("%s: want error %d %s, got %s", c.name, code, detail, f.Raw)
	}
	if detail != "" && !jsonEqual(string(e.Detail), detail) {
		c.t.Fatalf("%s: want error %d detail %s, got %s", c.name, code, detail, f.Raw)
	}
}

// expectStatus expects {"status":"success"}.
func (c *client) expectStatus() {
	c.t.Helper()
	f := c.next()
	if f.Raw != `{"status":"success"}` {
		c.t.Fatalf("%s: want heartbeat answer, got %s", c.name, f.Raw)
	}
}

// quiet checks that nothing arrives: it sends a heartbeat and expects its
// answer as the next frame.
func (c *client) quiet() {
	c.t.Helper()
	c.send(chat.EventSessionHeartbeat, nil)
	c.expectStatus()
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}

// path reads a value from decoded JSON by keys and indexes ("a.0.b").
func path(t *testing.T, v any, p string) any {
	t.Helper()
	for _, k := range strings.Split(p, ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[k]; !ok {
				t.Fatalf("no key %q in %v", k, x)
			}
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i >= len(x) {
				t.Fatalf("bad index %q in %v", k, x)
			}
			v = x[i]
		default:
			t.Fatalf("cannot index %T with %q", v, k)
		}
	}
	return v
}

func eq(t *testing.T, got, want any, what string) {
	t.Helper()
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if !jsonEqual(string(gb), string(wb)) {
		t.Fatalf("%s: got %s, want %s", what, gb, wb)
	}
}

func usernames(t *testing.T, users any) []string {
	t.Helper()
	var out []string
	for _, u := range users.([]any) {
		out = append(out, u.(map[string]any)["username"].(string))
	}
	return out
}

func websocketCode(err error) int { return int(websocket.CloseStatus(err)) }

func e0() store.Store { return memory.New() }

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
