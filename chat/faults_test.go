package chat_test

import (
	"context"
	"errors"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/chat"
	"github.com/chatmux/chatmux/groups"
	"github.com/chatmux/chatmux/internal/testenv"
	"github.com/chatmux/chatmux/store"
	"github.com/chatmux/chatmux/store/postgres"
	"github.com/chatmux/chatmux/store/storetest"
)

const unavailableDetail = `"Service temporarily unavailable, try again."`

// blockingStore is a real store whose chosen methods hang, ignoring their
// context, until released: a store behind a frozen connection.
type blockingStore struct {
	store.Store
	mu      sync.Mutex
	blocked map[string]bool
	release chan struct{}
	waiting atomic.Int64
}

func newBlockingStore(t *testing.T, st store.Store) *blockingStore {
	b := &blockingStore{Store: st, blocked: map[string]bool{}, release: make(chan struct{})}
	t.Cleanup(b.unblockAll)
	return b
}

// block makes the named methods hang from now on.
func (b *blockingStore) block(names ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, n := range names {
		b.blocked[n] = true
	}
}

// unblockAll lets every hanging call return and makes no call hang.
func (b *blockingStore) unblockAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	clear(b.blocked)
	select {
	case <-b.release:
	default:
		close(b.release)
	}
	b.release = make(chan struct{})
}

func (b *blockingStore) wait(name string) {
	b.mu.Lock()
	blocked, release := b.blocked[name], b.release
	b.mu.Unlock()
	if blocked {
		b.waiting.Add(1)
		defer b.waiting.Add(-1)
		<-release
	}
}

func (b *blockingStore) Membership(ctx context.Context, roomID uuid.UUID, userID int64) (store.Membership, error) {
	b.wait("Membership")
	return b.Store.Membership(context.WithoutCancel(ctx), roomID, userID)
}

func (b *blockingStore) SendMessage(ctx context.Context, m store.NewMessage) (store.SendResult, error) {
	b.wait("SendMessage")
	return b.Store.SendMessage(context.WithoutCancel(ctx), m)
}

func (b *blockingStore) TouchSession(ctx context.Context, id int64) (time.Time, error) {
	b.wait("TouchSession")
	return b.Store.TouchSession(context.WithoutCancel(ctx), id)
}

func (b *blockingStore) UpsertUser(ctx context.Context, u store.User) (store.User, error) {
	b.wait("UpsertUser")
	return b.Store.UpsertUser(context.WithoutCancel(ctx), u)
}

func (b *blockingStore) UserRoomIDs(ctx context.Context, userID int64) ([]uuid.UUID, error) {
	b.wait("UserRoomIDs")
	return b.Store.UserRoomIDs(context.WithoutCancel(ctx), userID)
}

// expectClose waits for the server to close c and returns the close code.
func (c *client) expectClose() int {
	c.t.Helper()
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				return websocketCode(c.closed)
			}
			c.t.Fatalf("%s: want the connection closed, got %s", c.name, f.Raw)
		case <-time.After(waitTimeout):
			c.t.Fatalf("%s: connection not closed", c.name)
		}
	}
}

// hangingStoreTimeout is the StoreTimeout of the tests that make store
// calls hang. Every other store call of those tests runs under it too
// (connecting, the sends that succeed), so it is far above what those
// take on a busy machine under the race detector (100ms was not); each
// hanging call costs that long.
const hangingStoreTimeout = 500 * time.Millisecond

// TestStoreTimeout: a store call that does not return within
// Config.StoreTimeout is answered 4013 (never 4006 or 4001), the
// connection stays open, and a send retried with its client_msg_id once
// the store is back is answered with the one message stored.
func TestStoreTimeout(t *testing.T) {
	var bs *blockingStore
	e := newEnv(t, func(t *testing.T) store.Store { bs = newBlockingStore(t, memoryStore(t)); return bs },
		func(c *chat.Config) { c.StoreTimeout = hangingStoreTimeout })
	e.users(2)
	group := e.room(store.Group, 1, 2)
	c1, c2 := e.dial(1), e.dial(2)
	send := map[string]any{"room_id": group.String(), "content": "hello", "client_msg_id": "m-1"}

	// A read hangs (room.messages' membership check; a member's send
	// makes none: the store checks its right with the insert).
	bs.block("Membership")
	c1.send(chat.EventRoomMessages, map[string]any{"room_id": group.String()})
	c1.expectError(4013, unavailableDetail)
	c1.quiet() // the connection is open and serves what still works
	bs.unblockAll()
	if n := countMessages(t, e, group); n != 0 {
		t.Fatalf("%d messages stored after a refused send", n)
	}

	// The insert hangs: the answer is 4013, and the insert may still
	// happen; the retry with the same client_msg_id is safe.
	bs.block("SendMessage")
	c1.send(chat.EventMessageSend, send)
	c1.expectError(4013, unavailableDetail)
	bs.unblockAll()
	deadline := time.Now().Add(waitTimeout)
	for bs.waiting.Load() != 0 || countMessages(t, e, group) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the abandoned send did not complete: %d messages", countMessages(t, e, group))
		}
		time.Sleep(5 * time.Millisecond)
	}
	c1.send(chat.EventMessageSend, send)
	m := c1.expect(chat.DispatchMessage).obj(t)
	eq(t, []any{m["seq"], m["client_msg_id"], m["content"]}, []any{1, "m-1", "hello"}, "the retry's answer")
	if n := countMessages(t, e, group); n != 1 {
		t.Fatalf("%d messages after the retry, want 1", n)
	}
	// Other members were not told (the timed-out send published nothing):
	// they see the gap in seq at the next message and catch up.
	c2.quiet()

	// A heartbeat whose store call hangs.
	bs.block("TouchSession")
	c2.send(chat.EventSessionHeartbeat, nil)
	c2.expectError(4013, unavailableDetail)
	bs.unblockAll()
	c2.quiet()

	// $connect whose store call hangs: the connection is refused as
	// unavailable: the server closes with 1013, never 4001.
	bs.block("UpsertUser")
	c3 := e.dialRaw(2, "user2")
	if code := c3.expectClose(); code != int(websocket.StatusTryAgainLater) {
		t.Fatalf("connect with the store hanging closed with %d, want 1013", code)
	}
	bs.unblockAll()
	e.dial(2).quiet()
}

// TestStoreFrozenPostgres: the same with PostgreSQL behind a TCP proxy that
// freezes (a hung network path, which no context reaches in the driver):
// the answer is 4013 within the deadline, and everything works again once
// the path is back.
func TestStoreFrozenPostgres(t *testing.T) {
	var proxy *storetest.Proxy
	e := newEnv(t, func(t *testing.T) store.Store {
		u, err := url.Parse(testenv.DatabaseSchema(t, "chat_"))
		if err != nil {
			t.Fatal(err)
		}
		proxy = storetest.NewProxy(t, u.Host)
		u.Host = proxy.Addr()
		st, err := postgres.OpenOptions(bg, u.String(), postgres.Options{MaxOpenConns: 4})
		if err != nil {
			t.Fatalf("postgres.Open: %v", err)
		}
		t.Cleanup(func() { st.Close() })
		if err := st.Migrate(bg); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		return st
	}, func(c *chat.Config) { c.StoreTimeout = hangingStoreTimeout })
	e.users(2)
	group := e.room(store.Group, 1, 2)
	c1, c2 := e.dial(1), e.dial(2)

	proxy.Freeze()
	// More requests than the pool has connections: those that wait for
	// a connection are bounded as well.
	for range 6 {
		c1.send(chat.EventMessageSend, map[string]any{"room_id": group.String(), "content": "frozen", "client_msg_id": "f-1"})
	}
	for range 6 {
		c1.expectError(4013, unavailableDetail)
	}
	c2.send(chat.EventSessionHeartbeat, nil)
	c2.expectError(4013, unavailableDetail)
	// The connections frozen mid-call are cut, as a network that gives up
	// would; the pool opens new ones.
	proxy.Cut()
	proxy.Thaw()
	deadline := time.Now().Add(waitTimeout)
	for {
		c1.send(chat.EventMessageSend, map[string]any{"room_id": group.String(), "content": "frozen", "client_msg_id": "f-1"})
		f := c1.next()
		if f.EventType == chat.DispatchMessage {
			eq(t, path(t, f.obj(t), "client_msg_id"), "f-1", "the retry's answer")
			break
		}
		if len(f.Error) == 0 || time.Now().After(deadline) {
			t.Fatalf("no answer after the store came back: %s", f.Raw)
		}
	}
	if n := countMessages(t, e, group); n != 1 {
		t.Fatalf("%d messages stored, want 1", n)
	}
	// c2 got the message live if the send that stored it published it
	// (not if a frozen send stored it after its 4013), and nothing else.
	c2.send(chat.EventSessionHeartbeat, nil)
	if f := c2.next(); f.EventType == chat.DispatchMessage {
		eq(t, path(t, f.obj(t), "client_msg_id"), "f-1", "the message")
		c2.expectStatus()
	} else if f.Raw != `{"status":"success"}` {
		t.Fatalf("user2: unexpected %s", f.Raw)
	}
}

// droppingBroker is the in-process broker while down is set, as a node
// sees Redis while it is away: every publish fails; control messages
// (join, leave) still reach the members on this node, data messages reach
// no one (the node's connections are stale and drop them).
type droppingBroker struct {
	*groups.Memory
	down atomic.Bool
}

func (b *droppingBroker) Publish(ctx context.Context, group string, m *groups.Message) error {
	if !b.down.Load() {
		return b.Memory.Publish(ctx, group, m)
	}
	if m.Kind != groups.KindData {
		_ = b.Memory.Publish(ctx, group, m)
	}
	return errors.New("broker unavailable")
}

// resyncEvent is the event these tests route to Service.Resync from the
// wire, standing in for the server, which routes $resync itself when its
// broker is back.
const resyncEvent = "test.resync"

func resyncEnv(t *testing.T, newStore factory, broker groups.Broker, opts ...func(*chat.Config)) *env {
	return newEnvBroker(t, newStore, func(svc *chat.Service, r chatmux.Router) {
		svc.Register(r)
		r.HandleFunc(resyncEvent, svc.Events()[chatmux.EventResync])
	}, broker, opts...)
}

type resyncData struct {
	Rooms []struct {
		RoomID string `json:"room_id"`
		Seq    int64  `json:"seq"`
	} `json:"rooms"`
	Reason string `json:"reason"`
}

func (c *client) resync() resyncData {
	c.t.Helper()
	c.send(resyncEvent, nil)
	f := c.expect(chat.DispatchResync)
	var d resyncData
	if err := jsonUnmarshal(f.Data, &d); err != nil || d.Reason != "broker" || d.Rooms == nil {
		c.t.Fatalf("%s: bad chat.resync %s (%v)", c.name, f.Raw, err)
	}
	return d
}

// TestBrokerOutage: while the broker is down, a send is stored and
// answered to its sender once, with no error after it; membership changes
// are committed and answered as successes. When the broker is back,
// $resync fixes every connection's groups from the store (including
// changes made on other nodes, whose moves never arrived) and tells it its
// rooms and their latest seq: a removed member no longer receives the
// room, an added one does (docs/protocol.md#resync).
func TestBrokerOutage(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		broker := &droppingBroker{Memory: groups.NewMemory()}
		e := resyncEnv(t, newStore, broker)
		e.users(4)
		group := e.room(store.Group, 1, 2, 3)
		other := e.room(store.Group, 4, 2)
		owner, remoteRemoved, removed, remoteAdded := e.dial(1), e.dial(2), e.dial(3), e.dial(4)

		broker.down.Store(true)
		owner.send(chat.EventMessageSend, map[string]any{"room_id": group.String(), "content": "during", "client_msg_id": "d-1"})
		eq(t, path(t, owner.expect(chat.DispatchMessage).obj(t), "seq"), 1, "the sender's one answer")
		owner.quiet() // and no error after it
		owner.send(chat.EventRoomRemoveMembers, map[string]any{"room_id": group.String(), "members": []int{3}})
		owner.expect(chat.DispatchRoomRemoveMembers)
		owner.quiet()
		// Changes made on another node: their moves never reach this one.
		if _, err := e.st.RemoveMembers(bg, store.RemoveMembers{RoomID: group, ActorID: 1, UserIDs: []int64{2}}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.st.AddMembers(bg, group, []int64{4}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []*client{remoteRemoved, removed, remoteAdded} {
			c.quiet() // nothing reached them
		}
		if n := e.svc.PublishFailures(); n < 4 {
			t.Fatalf("PublishFailures = %d, want at least 4", n)
		}

		broker.down.Store(false)
		for _, tc := range []struct {
			c     *client
			rooms map[string]int64
		}{
			{owner, map[string]int64{group.String(): 1}},
			{remoteRemoved, map[string]int64{other.String(): 0}},
			{removed, map[string]int64{}},
			{remoteAdded, map[string]int64{group.String(): 1, other.String(): 0}},
		} {
			d := tc.c.resync()
			got := map[string]int64{}
			for _, r := range d.Rooms {
				got[r.RoomID] = r.Seq
			}
			eq(t, got, tc.rooms, tc.c.name+"'s rooms after resync")
		}

		owner.send(chat.EventMessageSend, map[string]any{"room_id": group.String(), "content": "after"})
		owner.expect(chat.DispatchMessage)
		eq(t, path(t, remoteAdded.expect(chat.DispatchMessage).obj(t), "seq"), 2, "the added member's first live message")
		for _, c := range []*client{remoteRemoved, removed, remoteAdded, owner} {
			c.quiet()
		}
	})
}

// TestResyncStoreDown: a resync that cannot read the memberships closes
// the connection with 1013 rather than resume it with groups that may be
// stale.
func TestResyncStoreDown(t *testing.T) {
	var bs *blockingStore
	e := resyncEnv(t, func(t *testing.T) store.Store { bs = newBlockingStore(t, memoryStore(t)); return bs }, nil,
		func(c *chat.Config) { c.StoreTimeout = hangingStoreTimeout })
	e.users(1)
	c := e.dial(1)
	bs.block("UserRoomIDs")
	c.send(resyncEvent, nil)
	if code := c.expectClose(); code != int(websocket.StatusTryAgainLater) {
		t.Fatalf("close code %d, want 1013", code)
	}
}

// TestNodeKeeper: the sessions of a node that stopped beating (a crash)
// are expired by a live node's keeper within Expiry + Interval; the live
// node's own sessions stay; Leave removes them when the node stops, and a
// heartbeat opens the session of a connection again.
func TestNodeKeeper(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		e := newEnv(t, newStore, func(c *chat.Config) { c.NodeID = "node-b" })
		e.users(2)
		// A crashed node "node-a" left a session of user 1.
		if err := e.st.TouchNode(bg, "node-a"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.st.CreateSession(bg, store.NewSession{UserID: 1, ConnID: "c-a", NodeID: "node-a"}); err != nil {
			t.Fatal(err)
		}
		c := e.dial(2) // on node-b
		keeper := chat.NewNodeKeeper(e.svc.Store(), e.svc.NodeID(),
			chat.NodeKeeperOptions{Interval: 50 * time.Millisecond, Expiry: time.Second})
		if o := keeper.Options(); o.Interval != 50*time.Millisecond || o.Expiry != time.Second {
			t.Fatalf("options = %+v", o)
		}
		ctx, cancel := context.WithCancel(bg)
		done := make(chan struct{})
		go func() { keeper.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()

		sessions := func(uid int64) []store.Session {
			t.Helper()
			s, err := e.st.UserSessions(bg, uid)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		deadline := time.Now().Add(waitTimeout)
		for len(sessions(1)) != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the dead node's session is still open: %+v", sessions(1))
			}
			time.Sleep(20 * time.Millisecond)
		}
		if s := sessions(2); len(s) != 1 || s[0].NodeID != "node-b" {
			t.Fatalf("the live node's sessions = %+v", s)
		}
		if seen, err := e.st.LastSeen(bg, []int64{1}); err != nil || seen[1].IsZero() {
			t.Fatalf("no last seen time for the dead node's user: %v %v", seen, err)
		}

		// The node stops: its keeper removes what is left.
		cancel()
		<-done
		if n, err := keeper.Leave(bg); err != nil || n != 1 {
			t.Fatalf("Leave = %d %v, want 1", n, err)
		}
		if s := sessions(2); len(s) != 0 {
			t.Fatalf("sessions after Leave = %+v", s)
		}
		// A connection whose session went away gets it back at its next
		// heartbeat.
		c.quiet()
		if s := sessions(2); len(s) != 1 || s[0].NodeID != "node-b" {
			t.Fatalf("sessions after a heartbeat = %+v", s)
		}
	})
}

// racingStore runs hook once, right after the first UserRoomIDs it
// answers: a membership change that commits, and whose move reaches the
// connection, between the resync's read and its fix of the groups.
type racingStore struct {
	store.Store
	once sync.Once
	hook func()
}

func (r *racingStore) UserRoomIDs(ctx context.Context, userID int64) ([]uuid.UUID, error) {
	ids, err := r.Store.UserRoomIDs(ctx, userID)
	if r.hook != nil {
		r.once.Do(r.hook)
	}
	return ids, err
}

// TestResyncRace: a removal that lands between the resync's read of the
// rooms and its fix of the groups is not undone: the fix is checked by a
// second read, and the removed member ends outside the room.
func TestResyncRace(t *testing.T) {
	rs := &racingStore{}
	e := resyncEnv(t, func(t *testing.T) store.Store { rs.Store = memoryStore(t); return rs }, nil)
	e.users(2)
	group := e.room(store.Group, 1, 2)
	owner, member := e.dial(1), e.dial(2)
	rs.hook = func() {
		if _, err := e.st.RemoveMembers(bg, store.RemoveMembers{RoomID: group, ActorID: 1, UserIDs: []int64{2}}); err != nil {
			t.Error(err)
		}
		if err := e.srv.LeaveUser(bg, 2, chat.RoomGroup(group)); err != nil {
			t.Error(err)
		}
	}
	if d := member.resync(); len(d.Rooms) != 0 {
		t.Fatalf("rooms after a removal during resync: %+v", d.Rooms)
	}
	owner.send(chat.EventMessageSend, map[string]any{"room_id": group.String(), "content": "after"})
	owner.expect(chat.DispatchMessage)
	member.quiet()
}
