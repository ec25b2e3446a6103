package chat_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/chat"
	"github.com/chatmux/chatmux/store"
	"github.com/chatmux/chatmux/store/memory"
)

func TestConnect(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		e := newEnv(t, newStore)
		e.users(2)
		room := e.room(store.OneToOne, 1, 2)
		// Two undelivered messages to user 2, newest first.
		m1 := e.message(room, 1, "first")
		time.Sleep(2 * time.Millisecond)
		m2 := e.message(room, 1, "second")

		c := e.dialRaw(2, "user2")
		f := c.expect(chat.DispatchNotifications)
		if strings.Contains(f.Raw, `"type":"broadcast_group"`) {
			t.Fatalf("internal artefact on the wire: %s", f.Raw)
		}
		got := f.obj(t)
		list := got[room.String()].([]any)
		if len(list) != 2 {
			t.Fatalf("want 2 notifications, got %s", f.Raw)
		}
		eq(t, path(t, list[0], "message.id"), m2.String(), "newest first")
		eq(t, path(t, list[1], "message.id"), m1.String(), "then older")
		eq(t, path(t, list[0], "notification_type"), "NEW_MESSAGE", "type")

		// The identity from authentication is upserted: a new user with
		// its names.
		c3 := e.dialRaw(3, "carol")
		f = c3.expect(chat.DispatchNotifications)
		if f.Raw != `{"eventType":"chat.notifications","data":{}}` {
			t.Fatalf("want empty notifications, got %s", f.Raw)
		}
		us, err := e.st.Users(bg, []int64{3})
		if err != nil || len(us) != 1 || us[0].Username != "carol" || us[0].Email != "carol@example.com" || us[0].FirstName != "Fcarol" {
			t.Fatalf("user not upserted: %v %v", us, err)
		}

		// Subscriptions come from the store: the connection is in the room.
		c1 := e.dial(1)
		c1.send(chat.EventMessageTyping, map[string]any{"room_id": room.String()})
		c1.expect(chat.DispatchTyping)
		c.expect(chat.DispatchTyping)
	})
}

func TestConnectNotificationsDisabled(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		e := newEnv(t, newStore, func(c *chat.Config) { c.Notifications = false })
		e.users(2)
		room := e.room(store.OneToOne, 1, 2)
		e.message(room, 1, "hi")
		c := e.dialRaw(2, "user2")
		// No chat.notifications: the first frame is the heartbeat answer.
		c.send(chat.EventSessionHeartbeat, nil)
		c.expectStatus()
		// Neither message.send nor message.react creates a notification.
		c.send(chat.EventMessageSend, map[string]any{"room_id": room.String(), "content": "hello"})
		id := c.expect(chat.DispatchMessage).obj(t)["id"]
		c1 := e.dial(1)
		c1.send(chat.EventMessageReact, map[string]any{"type": "add", "message_id": id, "reaction_content": "+1"})
		c1.expect(chat.DispatchReaction)
		c.expect(chat.DispatchReaction)
		for _, user := range []int64{1, 2} {
			if pending, err := e.st.PendingNotifications(bg, user); err != nil || len(pending) != 0 {
				t.Fatalf("user %d has notifications: %+v %v", user, pending, err)
			}
		}
	})
}

func TestUnauthenticated(t *testing.T) {
	e := newEnv(t, memoryStore)
	c := e.dialRaw(0, "nobody")
	select {
	case _, ok := <-c.frames:
		if ok {
			t.Fatal("unauthenticated connection got a frame")
		}
	case <-time.After(waitTimeout):
		t.Fatal("unauthenticated connection not closed")
	}
	<-c.done
	if code := websocketCode(c.closed); code != 4001 {
		t.Fatalf("want close 4001, got %v", c.closed)
	}
}

func TestHeartbeatAndDisconnect(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		e := newEnv(t, newStore)
		e.users(1)
		c := e.dial(1)
		c.send(chat.EventSessionHeartbeat, nil)
		c.expectStatus()
		c.send(chat.EventSessionHeartbeat, `{}`)
		c.expectStatus()
		// Unknown events and malformed frames keep the socket open.
		c.send("room.delete", `{}`)
		if f := c.next(); f.Raw != `{"error":"invalid event type"}` {
			t.Fatalf("unknown event: %s", f.Raw)
		}
		c.send(chat.EventRoomInfo, `[1]`)
		c.expectError(4003, "")
		for _, raw := range []string{`{`, `[]`, `"x"`, `{"event_type":5}`} {
			if err := c.ws.Write(bg, websocket.MessageText, []byte(raw)); err != nil {
				t.Fatal(err)
			}
			c.expectError(4003, "")
		}
		if err := c.ws.Write(bg, websocket.MessageBinary, []byte(`{"event_type":"room.list"}`)); err != nil {
			t.Fatal(err)
		}
		c.expectError(4003, "")
		c.quiet()
		c.close()
		// The session is closed: the server took the connection out.
		deadline := time.Now().Add(waitTimeout)
		for e.srv.Len() != 0 {
			if time.Now().After(deadline) {
				t.Fatal("connection still open on the server")
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// sessionStore records session calls.
type sessionStore struct {
	store.Store
	mu      sync.Mutex
	created map[int64]string
	touched map[int64]int
	closed  map[int64]bool
}

func (s *sessionStore) CreateSession(ctx context.Context, ns store.NewSession) (store.Session, error) {
	sess, err := s.Store.CreateSession(ctx, ns)
	s.mu.Lock()
	s.created[sess.ID] = ns.ConnID
	s.mu.Unlock()
	return sess, err
}

func (s *sessionStore) TouchSession(ctx context.Context, id int64) (time.Time, error) {
	s.mu.Lock()
	s.touched[id]++
	s.mu.Unlock()
	return s.Store.TouchSession(ctx, id)
}

func (s *sessionStore) CloseSession(ctx context.Context, id int64) error {
	s.mu.Lock()
	s.closed[id] = true
	s.mu.Unlock()
	return s.Store.CloseSession(ctx, id)
}

func TestSessions(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		ss := &sessionStore{created: map[int64]string{}, touched: map[int64]int{}, closed: map[int64]bool{}}
		e := newEnv(t, func(t *testing.T) store.Store { ss.Store = newStore(t); return ss })
		e.users(1)
		a, b := e.dial(1), e.dial(1)
		a.send(chat.EventSessionHeartbeat, nil)
		a.expectStatus()
		b.quiet()
		a.close()
		deadline := time.Now().Add(waitTimeout)
		for {
			ss.mu.Lock()
			n, closed, touched := len(ss.created), len(ss.closed), len(ss.touched)
			ss.mu.Unlock()
			if n == 2 && closed == 1 && touched == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("sessions: %d created, %d closed, %d touched", n, closed, touched)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// TestSessionsDeletedOnClose: a connection's session exists while it is
// open and is gone once it has closed; the user keeps a last-seen time.
func TestSessionsDeletedOnClose(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		e := newEnv(t, newStore, func(c *chat.Config) { c.NodeID = "node-1" })
		e.users(3)
		var open []*client
		for i := range 9 {
			open = append(open, e.dial(int64(i%3+1)))
		}
		for uid := int64(1); uid <= 3; uid++ {
			s, err := e.st.UserSessions(bg, uid)
			if err != nil || len(s) != 3 || s[0].NodeID != "node-1" {
				t.Fatalf("user %d's sessions while connected = %+v %v", uid, s, err)
			}
		}
		for _, c := range open {
			c.close()
		}
		deadline := time.Now().Add(waitTimeout)
		for uid := int64(1); uid <= 3; uid++ {
			for {
				s, err := e.st.UserSessions(bg, uid)
				if err != nil {
					t.Fatal(err)
				}
				if len(s) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("user %d keeps sessions after closing: %+v", uid, s)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		if seen, err := e.st.LastSeen(bg, []int64{1, 2, 3}); err != nil || len(seen) != 3 {
			t.Fatalf("LastSeen = %v %v", seen, err)
		}
	})
}

// BenchmarkConnectCycle connects and disconnects one socket per iteration
// through the server, over the memory store, and reports the sessions left
// and the heap once every connection has closed: both stay flat however
// many cycles ran (e.g. -benchtime=80000x).
func BenchmarkConnectCycle(b *testing.B) {
	st := memory.New()
	svc := chat.New(chat.Config{Store: st, Notifications: true})
	events := chatmux.NewRouter()
	svc.Register(events)
	srv := chatmux.NewServer(events, chatmux.ServerOptions{Authenticate: testAuth})
	mux := http.NewServeMux()
	mux.Handle(wsPath, srv)
	hs := httptest.NewServer(mux)
	defer hs.Close()
	defer srv.Close()
	const users = 100
	for i := int64(1); i <= users; i++ {
		if _, err := st.UpsertUser(bg, store.User{ID: i, Username: "user" + strconv.FormatInt(i, 10)}); err != nil {
			b.Fatal(err)
		}
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	base := strings.Replace(hs.URL, "http", "ws", 1) + wsPath
	before := heap()
	i := 0
	for b.Loop() {
		uid := int64(i%users + 1)
		i++
		ctx, cancel := context.WithTimeout(bg, waitTimeout)
		ws, _, err := websocket.Dial(ctx, base+"?user="+strconv.FormatInt(uid, 10)+"&name=user"+strconv.FormatInt(uid, 10), nil)
		if err != nil {
			cancel()
			b.Fatal(err)
		}
		if _, _, err := ws.Read(ctx); err != nil { // chat.notifications: $connect has run
			cancel()
			b.Fatal(err)
		}
		_ = ws.Close(websocket.StatusNormalClosure, "")
		cancel()
	}
	b.StopTimer()
	deadline := time.Now().Add(30 * time.Second)
	for srv.Len() != 0 {
		if time.Now().After(deadline) {
			b.Fatalf("%d connections still open", srv.Len())
		}
		time.Sleep(5 * time.Millisecond)
	}
	left := 0
	for uid := int64(1); uid <= users; uid++ {
		s, err := st.UserSessions(bg, uid)
		if err != nil {
			b.Fatal(err)
		}
		left += len(s)
	}
	after := heap()
	b.ReportMetric(float64(left), "sessions-left")
	b.ReportMetric(float64(int64(after)-int64(before))/1024, "heap-growth-KiB")
}
