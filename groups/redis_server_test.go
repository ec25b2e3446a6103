package groups_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/groups"
	"github.com/chatmux/chatmux/internal/testenv"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// auth authenticates ?user=<id>.
func auth(r *http.Request) (*chatmux.User, error) {
	id, err := strconv.ParseInt(r.URL.Query().Get("user"), 10, 64)
	if err != nil {
		return nil, errors.New("bad user")
	}
	return &chatmux.User{ID: id}, nil
}

// clusterRouter is a tiny chat: join a room, say something in it, add a
// user to a room (then announce the room to it), ping a user's devices.
// Every event is answered with {"ok": event} once handled.
func clusterRouter() *chatmux.Mux {
	r := chatmux.NewRouter()
	type in struct {
		Room string `json:"room"`
		Text string `json:"text"`
		User int64  `json:"user"`
	}
	ok := func(c *chatmux.Context) error { return c.Reply(map[string]string{"ok": c.Event()}) }
	r.HandleFunc("room.join", func(c *chatmux.Context) error {
		var v in
		if err := c.Bind(&v); err != nil {
			return err
		}
		if err := c.Join(groups.Room(v.Room)); err != nil {
			return err
		}
		return ok(c)
	})
	r.HandleFunc("room.say", func(c *chatmux.Context) error {
		var v in
		if err := c.Bind(&v); err != nil {
			return err
		}
		if err := c.Broadcast(groups.Room(v.Room), "room.said", map[string]any{"text": v.Text, "from": c.User().ID}); err != nil {
			return err
		}
		return ok(c)
	})
	r.HandleFunc("room.add", func(c *chatmux.Context) error {
		var v in
		if err := c.Bind(&v); err != nil {
			return err
		}
		if err := c.JoinUser(v.User, groups.Room(v.Room)); err != nil {
			return err
		}
		// Broadcast at once: the user's devices on every node must be in.
		if err := c.Broadcast(groups.Room(v.Room), "room.created", map[string]any{"room": v.Room}); err != nil {
			return err
		}
		return ok(c)
	})
	r.HandleFunc("user.ping", func(c *chatmux.Context) error {
		var v in
		if err := c.Bind(&v); err != nil {
			return err
		}
		if err := c.SendUser(v.User, "user.pinged", map[string]any{"text": v.Text}); err != nil {
			return err
		}
		return ok(c)
	})
	return r
}

type node struct {
	name   string
	broker *groups.Redis
	srv    *chatmux.Server
	url    string
}

// startNodes starts n chatmux servers, each with a Redis broker of its own
// client, behind httptest servers on different ports.
func startNodes(t *testing.T, n int, opts groups.RedisOptions) (prefix string, nodes []*node) {
	t.Helper()
	ro, err := redis.ParseURL(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	prefix = testenv.UniqueName("t") + ":"
	opts.Prefix = prefix
	opts.Logger = quiet
	router := clusterRouter()
	for i := range n {
		o := *ro
		o.ClientName = prefix + "node" + strconv.Itoa(i)
		client := redis.NewClient(&o)
		b, err := groups.NewRedis(client, opts)
		if err != nil {
			_ = client.Close()
			t.Fatal(err)
		}
		srv := chatmux.NewServer(router, chatmux.ServerOptions{Broker: b, Authenticate: auth, Logger: quiet})
		ts := httptest.NewServer(srv)
		t.Cleanup(func() {
			_ = srv.Close()
			ts.Close()
			_ = b.Close()
			_ = client.Close()
		})
		nodes = append(nodes, &node{name: o.ClientName, broker: b, srv: srv, url: "ws" + strings.TrimPrefix(ts.URL, "http")})
	}
	return prefix, nodes
}

type client struct {
	t      *testing.T
	ws     *websocket.Conn
	frames chan []byte // read by a goroutine: an expired Read would close the socket
	// readErr is the error that ended the reading goroutine; set before
	// frames is closed.
	readErr error
}

func (n *node) dial(t *testing.T, user int64) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, n.url+"?user="+strconv.FormatInt(user, 10), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c := &client{t: t, ws: ws, frames: make(chan []byte, 4096)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(c.frames)
		for {
			_, b, err := ws.Read(context.Background())
			if err != nil {
				c.readErr = err
				return
			}
			c.frames <- b
		}
	}()
	t.Cleanup(func() { _ = ws.CloseNow(); <-done })
	return c
}

// frame is a server frame: a dispatch or a reply.
type frame struct {
	EventType string         `json:"eventType"`
	Data      map[string]any `json:"data"`
	OK        string         `json:"ok"`
	Error     any            `json:"error"`
}

var errNoFrame = errors.New("no frame in time")

func (c *client) read(d time.Duration) (frame, error) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	var b []byte
	select {
	case b = <-c.frames:
		if b == nil {
			return frame{}, errors.New("connection closed")
		}
	case <-timer.C:
		return frame{}, errNoFrame
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		return frame{}, err
	}
	if f.Error != nil {
		c.t.Fatalf("error frame: %s", b)
	}
	return f, nil
}

// call sends an event and reads up to its reply; dispatches read on the
// way are returned.
func (c *client) call(event string, data any) []frame {
	c.t.Helper()
	b, _ := json.Marshal(map[string]any{"event_type": event, "data": data})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
	var got []frame
	for {
		f, err := c.read(30 * time.Second)
		if err != nil {
			c.t.Fatalf("waiting for the reply to %s: %v", event, err)
		}
		if f.OK == event {
			return got
		}
		got = append(got, f)
	}
}

// expect reads n dispatches (after those already read) of an event type.
func (c *client) expect(pending []frame, eventType string, n int) []frame {
	c.t.Helper()
	var out []frame
	for _, f := range pending {
		if f.EventType == eventType {
			out = append(out, f)
		}
	}
	for len(out) < n {
		f, err := c.read(30 * time.Second)
		if err != nil {
			c.t.Fatalf("got %d of %d %s: %v", len(out), n, eventType, err)
		}
		if f.EventType == eventType {
			out = append(out, f)
		}
	}
	return out
}

// Three nodes behave as one server: rooms span nodes, a user's devices on
// two nodes get the user's dispatches, and JoinUser followed at once by a
// broadcast reaches the user's devices on every node.
func TestRedisServersActAsOne(t *testing.T) {
	_, nodes := startNodes(t, 3, groups.RedisOptions{})
	alice := nodes[0].dial(t, 1)
	bob := nodes[1].dial(t, 2)
	carol := nodes[2].dial(t, 3)
	for _, c := range []*client{alice, bob, carol} {
		c.call("room.join", map[string]any{"room": "lobby"})
	}
	const n = 30
	var aliceGot []frame
	for i := range n {
		aliceGot = append(aliceGot, alice.call("room.say", map[string]any{"room": "lobby", "text": strconv.Itoa(i)})...)
	}
	for who, c := range map[string]*client{"alice": alice, "bob": bob, "carol": carol} {
		pending := []frame(nil)
		if who == "alice" {
			pending = aliceGot
		}
		got := c.expect(pending, "room.said", n)
		for i, f := range got {
			if f.Data["text"] != strconv.Itoa(i) {
				t.Fatalf("%s: message %d = %v, want %d (publish order)", who, i, f.Data["text"], i)
			}
		}
	}

	// A user with devices on two nodes.
	phone := nodes[0].dial(t, 9)
	laptop := nodes[2].dial(t, 9)
	bob.call("user.ping", map[string]any{"user": 9, "text": "hi"})
	for _, d := range []*client{phone, laptop} {
		if f := d.expect(nil, "user.pinged", 1); f[0].Data["text"] != "hi" {
			t.Fatalf("user.pinged = %v", f[0].Data)
		}
	}

	// JoinUser then an immediate broadcast, from the node without a
	// device of the user (bob's) and from one with (alice's).
	const rooms = 10
	for i := range rooms {
		from := bob
		if i%2 == 1 {
			from = alice
		}
		from.call("room.add", map[string]any{"user": 9, "room": "r" + strconv.Itoa(i)})
	}
	for name, d := range map[string]*client{"phone": phone, "laptop": laptop} {
		got := d.expect(nil, "room.created", rooms)
		for i, f := range got {
			if f.Data["room"] != "r"+strconv.Itoa(i) {
				t.Fatalf("%s: room.created %d = %v", name, i, f.Data)
			}
		}
	}
	// The devices are members on both nodes: they talk in the new room.
	phone.call("room.say", map[string]any{"room": "r3", "text": "from phone"})
	if f := laptop.expect(nil, "room.said", 1); f[0].Data["text"] != "from phone" {
		t.Fatalf("laptop got %v", f[0].Data)
	}
}

// After a node's pub/sub connection is killed, delivery to its connections
// resumes by itself, and nothing published after that is lost.
func TestRedisServerRecoversAfterKill(t *testing.T) {
	prefix, nodes := startNodes(t, 2, groups.RedisOptions{HealthCheckInterval: 100 * time.Millisecond, HealthCheckTimeout: 2 * time.Second})
	admin := redis.NewClient(must(redis.ParseURL(testenv.RedisURL(t))))
	defer admin.Close()
	_ = prefix
	alice := nodes[0].dial(t, 1)
	bob := nodes[1].dial(t, 2)
	alice.call("room.join", map[string]any{"room": "lobby"})
	bob.call("room.join", map[string]any{"room": "lobby"})

	if killed := killClient(t, admin, nodes[1].name); killed != 1 {
		t.Fatalf("killed %d pub/sub connections, want 1", killed)
	}
	start := time.Now()
	for i := 0; ; i++ {
		text := "probe" + strconv.Itoa(i)
		alice.call("room.say", map[string]any{"room": "lobby", "text": text})
		if f, err := bob.read(100 * time.Millisecond); err == nil && f.EventType == "room.said" {
			// Drain the probes still on their way: they come before
			// what alice says next (her messages keep their order).
			t.Logf("delivery resumed %v after the kill", time.Since(start).Round(time.Millisecond))
			break
		} else if err != nil && !errors.Is(err, errNoFrame) {
			t.Fatalf("bob: %v", err)
		}
		if time.Since(start) > time.Minute {
			t.Fatal("delivery did not resume within a minute")
		}
	}
	const n = 20
	for i := range n {
		alice.call("room.say", map[string]any{"room": "lobby", "text": "after" + strconv.Itoa(i)})
	}
	next := 0
	for next < n {
		f, err := bob.read(30 * time.Second)
		if err != nil {
			t.Fatalf("bob got %d of %d messages after recovery: %v", next, n, err)
		}
		text, _ := f.Data["text"].(string)
		if strings.HasPrefix(text, "probe") {
			continue
		}
		if text != "after"+strconv.Itoa(next) {
			t.Fatalf("bob got %q, want after%d", text, next)
		}
		next++
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// killClient kills the pub/sub connection of the named client only.
func killClient(t *testing.T, admin *redis.Client, name string) int {
	t.Helper()
	list, err := admin.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(list, "\n") {
		if !strings.Contains(line, " name="+name+" ") || strings.Contains(line, " sub=0 ") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if id, ok := strings.CutPrefix(f, "id="); ok {
				if admin.Do(context.Background(), "CLIENT", "KILL", "ID", id).Err() == nil {
					n++
				}
			}
		}
	}
	return n
}
