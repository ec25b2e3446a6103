package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/chat"
	"github.com/chatmux/chatmux/groups"
	"github.com/chatmux/chatmux/store"
)

// presenceBrokers are the brokers the two-node presence tests run on: the
// in-process one (a broker shared by both nodes), and Redis (added by
// pg_test.go, one broker per node).
var presenceBrokers = map[string]func(t *testing.T) (groups.Broker, groups.Broker){
	"memory": func(*testing.T) (groups.Broker, groups.Broker) { b := groups.NewMemory(); return b, b },
}

// presenceNodes returns two nodes sharing one store of newStore and a
// broker, with the presence settings given, and whose clients keep their
// presence.dispatch frames. The tests drive the nodes' presence by
// PresenceTick (tick); RunPresence runs in the process tests of
// examples/chat.
func presenceNodes(t *testing.T, newStore factory, brokers func(t *testing.T) (groups.Broker, groups.Broker), grace time.Duration) (*env, *env) {
	t.Helper()
	st := newStore(t)
	shared := func(*testing.T) store.Store { return st }
	ba, bb := brokers(t)
	register := func(svc *chat.Service, r chatmux.Router) { svc.Register(r) }
	opts := func(c *chat.Config) {
		c.InactivityThreshold = time.Minute
		c.PresenceGrace = grace
		c.Notifications = false
	}
	a := newEnvBroker(t, shared, register, ba, opts)
	b := newEnvBroker(t, shared, register, bb, opts)
	a.presence, b.presence = true, true
	a.users(6)
	return a, b
}

// forEachPresence runs fn per store and broker (PostgreSQL with Redis,
// memory with the in-process broker).
func forEachPresence(t *testing.T, fn func(t *testing.T, newStore factory, brokers func(*testing.T) (groups.Broker, groups.Broker))) {
	t.Helper()
	for name, f := range stores {
		broker := "memory"
		if name == "postgres" {
			broker = "redis"
		}
		t.Run(name+"+"+broker, func(t *testing.T) {
			t.Parallel()
			fn(t, f, presenceBrokers[broker])
		})
	}
}

// tick runs one presence step on each node at once and returns what they
// announced, as "id:on"/"id:off".
func tick(nodes ...*env) []string {
	var mu sync.Mutex
	var out []string
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, p := range n.svc.PresenceTick(bg) {
				mu.Lock()
				out = append(out, fmt.Sprintf("%d:%v", p.UserID, map[bool]string{true: "on", false: "off"}[p.Online]))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

// presenceFrame is the data of presence.dispatch.
type presenceFrame struct {
	RoomID   string  `json:"room_id"`
	UserID   int64   `json:"user_id"`
	Username string  `json:"username"`
	Online   bool    `json:"online"`
	LastSeen *string `json:"last_seen"`
}

// awaitPresence ticks the nodes until c receives a presence.dispatch,
// polling every 20 ms up to waitTimeout, and returns it; any other frame
// fails the test.
func awaitPresence(t *testing.T, c *client, nodes ...*env) presenceFrame {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		tick(nodes...)
		select {
		case f, ok := <-c.frames:
			if !ok {
				t.Fatalf("%s: closed: %v", c.name, c.closed)
			}
			if f.EventType != chat.DispatchPresence {
				t.Fatalf("%s: want %s, got %s", c.name, chat.DispatchPresence, f.Raw)
			}
			var p presenceFrame
			if err := json.Unmarshal(f.Data, &p); err != nil {
				t.Fatal(err)
			}
			return p
		case <-time.After(20 * time.Millisecond): // polling interval
		}
	}
	t.Fatalf("%s: no presence.dispatch within %v", c.name, waitTimeout)
	return presenceFrame{}
}

func wantPresence(t *testing.T, got presenceFrame, room uuid.UUID, user int64, online bool) {
	t.Helper()
	if got.RoomID != room.String() || got.UserID != user || got.Online != online || got.Username != fmt.Sprintf("user%d", user) ||
		got.LastSeen == nil || mustTime(*got.LastSeen).IsZero() {
		t.Fatalf("presence.dispatch = %+v, want room %s user %d online %v with a last_seen", got, room, user, online)
	}
}

// TestPresenceDispatchOnce: two nodes on one store and broker; a user who
// connects on one node is announced online once to a member on the other,
// and once offline after closing, however many sweeps both nodes run.
func TestPresenceDispatchOnce(t *testing.T) {
	forEachPresence(t, func(t *testing.T, newStore factory, brokers func(*testing.T) (groups.Broker, groups.Broker)) {
		a, b := presenceNodes(t, newStore, brokers, 300*time.Millisecond)
		group := a.room(store.Group, 1, 1, 2)
		watcher := a.dial(1)

		start := time.Now()
		bob := b.dial(2)
		wantPresence(t, awaitPresence(t, watcher, a, b), group, 2, true)
		t.Logf("online across nodes after %v", time.Since(start))
		for range 3 {
			if got := tick(a, b); len(got) != 0 {
				t.Fatalf("sweeps after the online flip announced %v", got)
			}
		}
		watcher.quiet()

		start = time.Now()
		bob.close()
		off := awaitPresence(t, watcher, a, b)
		wantPresence(t, off, group, 2, false)
		t.Logf("offline after a clean close after %v (grace 300ms)", time.Since(start))
		for range 3 {
			if got := tick(a, b); len(got) != 0 {
				t.Fatalf("sweeps after the offline flip announced %v", got)
			}
		}
		watcher.quiet()

		// The query agrees with the dispatches.
		watcher.send(chat.EventPresenceQuery, map[string]any{"room_id": group})
		q := watcher.expect(chat.DispatchPresenceQuery).obj(t)
		eq(t, path(t, q, "users.0.online"), true, "user 1 online")
		eq(t, path(t, q, "users.1.online"), false, "user 2 offline")
		eq(t, path(t, q, "users.1.last_seen"), *off.LastSeen, "user 2 last seen")
	})
}

// TestPresenceReload: a page reload (close, then connect again within the
// grace) announces nothing; the sweeps between the two would announce
// offline if they ignored the grace.
func TestPresenceReload(t *testing.T) {
	forEachPresence(t, func(t *testing.T, newStore factory, brokers func(*testing.T) (groups.Broker, groups.Broker)) {
		a, b := presenceNodes(t, newStore, brokers, time.Minute)
		group := a.room(store.Group, 1, 1, 2)
		watcher := a.dial(1)
		bob := b.dial(2)
		wantPresence(t, awaitPresence(t, watcher, a, b), group, 2, true)

		bob.close()
		deadline := time.Now().Add(waitTimeout)
		for {
			open, err := a.st.UserSessions(bg, 2)
			if err != nil {
				t.Fatal(err)
			}
			if len(open) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the closed session is still open")
			}
			time.Sleep(10 * time.Millisecond) // polling interval
		}
		if got := tick(a, b); len(got) != 0 {
			t.Fatalf("sweeps within the grace announced %v", got)
		}
		b.dial(2)
		if got := tick(a, b); len(got) != 0 {
			t.Fatalf("sweeps after the reload announced %v", got)
		}
		watcher.quiet()
	})
}

// TestPresenceChannel: in a channel only the creator and moderators are
// announced; a subscriber coming and going is not.
func TestPresenceChannel(t *testing.T) {
	forEachPresence(t, func(t *testing.T, newStore factory, brokers func(*testing.T) (groups.Broker, groups.Broker)) {
		a, b := presenceNodes(t, newStore, brokers, time.Minute)
		ch := a.room(store.Channel, 1, 1, 2, 3)
		if _, err := a.st.SetRole(bg, ch, []int64{3}, true); err != nil {
			t.Fatal(err)
		}
		creator := b.dial(1)
		sub := a.dial(2)
		tick(a, b)
		creator.quiet() // nothing about the subscriber
		b.dial(3)
		wantPresence(t, awaitPresence(t, sub, a, b), ch, 3, true) // a moderator
		wantPresence(t, awaitPresence(t, creator, a, b), ch, 3, true)
		sub.close()
		a.dial(4) // no room: nothing
		tick(a, b)
		creator.quiet()
	})
}

// TestPresenceQuery: the room and user_ids forms, the channel rule, and
// the errors; nobody learns the presence of a user they share no room with.
func TestPresenceQuery(t *testing.T) {
	forEachPresence(t, func(t *testing.T, newStore factory, brokers func(*testing.T) (groups.Broker, groups.Broker)) {
		a, b := presenceNodes(t, newStore, brokers, time.Minute)
		group := a.room(store.Group, 1, 1, 2, 3)
		ch := a.room(store.Channel, 4, 4, 2, 5)
		other := a.room(store.Group, 6, 6)
		a.dial(3)
		b.dial(5)
		me := a.dial(2)
		users := func(q map[string]any) []string {
			var out []string
			for _, u := range q["users"].([]any) {
				m := u.(map[string]any)
				out = append(out, fmt.Sprintf("%v:%v:%v", m["user_id"], m["username"], m["online"]))
			}
			return out
		}

		me.send(chat.EventPresenceQuery, map[string]any{"room_id": group})
		q := me.expect(chat.DispatchPresenceQuery).obj(t)
		eq(t, q["room_id"], group.String(), "room_id")
		eq(t, users(q), []string{"1:user1:false", "2:user2:true", "3:user3:true"}, "group")
		if path(t, q, "users.0.last_seen") != nil || path(t, q, "users.1.last_seen") == nil {
			t.Fatalf("last_seen: %v", q)
		}

		me.send(chat.EventPresenceQuery, map[string]any{"room_id": ch})
		eq(t, users(me.expect(chat.DispatchPresenceQuery).obj(t)), []string{"2:user2:true", "4:user4:false"}, "channel: the creator and the asker")

		me.send(chat.EventPresenceQuery, map[string]any{"user_ids": []any{5, "4", 3, 1, 6, 999, 2, 3}})
		q = me.expect(chat.DispatchPresenceQuery).obj(t)
		if _, ok := q["room_id"]; ok {
			t.Fatalf("room_id in a user_ids answer: %v", q)
		}
		eq(t, users(q), []string{"1:user1:false", "2:user2:true", "3:user3:true", "4:user4:false"},
			"user_ids: a subscriber (5), a stranger (6) and no user (999) omitted")

		me.send(chat.EventPresenceQuery, map[string]any{"user_ids": []any{6}})
		eq(t, me.expect(chat.DispatchPresenceQuery).obj(t)["users"], []any{}, "a stranger")

		many := make([]int64, 101)
		for i := range many {
			many[i] = int64(i + 1)
		}
		for _, bad := range []string{`{}`, `{"room_id":"` + group.String() + `","user_ids":[1]}`, `{"user_ids":[]}`,
			`{"user_ids":"1"}`, `{"user_ids":[true]}`, `{"room_id":"nope"}`, string(mustJSON(t, map[string]any{"user_ids": many}))} {
			me.send(chat.EventPresenceQuery, bad)
			me.expectError(chatmux.CodeValidation, "")
		}
		me.send(chat.EventPresenceQuery, map[string]any{"room_id": other})
		me.expectError(chatmux.CodePermissionDenied, `"User is not authorized access this room"`)
		me.send(chat.EventPresenceQuery, map[string]any{"room_id": uuid.New()})
		me.expectError(chatmux.CodeNotFound, "")
	})
}

// TestPresenceDeletedUser: a deleted user's presence goes: no dispatch
// about them afterwards, and the queries omit them.
func TestPresenceDeletedUser(t *testing.T) {
	forEachPresence(t, func(t *testing.T, newStore factory, brokers func(*testing.T) (groups.Broker, groups.Broker)) {
		a, b := presenceNodes(t, newStore, brokers, 100*time.Millisecond)
		group := a.room(store.Group, 1, 1, 2, 3)
		watcher := a.dial(1)
		b.dial(3)
		wantPresence(t, awaitPresence(t, watcher, a, b), group, 3, true)
		if _, err := a.svc.DeleteUser(bg, 3); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			for _, got := range tick(a, b) {
				if got == "3:off" || got == "3:on" {
					t.Fatalf("a deleted user was announced: %v", got)
				}
			}
		}
		// What the deletion dispatched, up to the heartbeat's answer: no
		// presence of user 3.
		watcher.send(chat.EventSessionHeartbeat, nil)
		for {
			f := watcher.next()
			if f.Raw == `{"status":"success"}` {
				break
			}
			if f.EventType == chat.DispatchPresence && f.obj(t)["user_id"] == float64(3) {
				t.Fatalf("presence of a deleted user: %s", f.Raw)
			}
		}
		watcher.send(chat.EventPresenceQuery, map[string]any{"user_ids": []int64{3}})
		eq(t, watcher.expect(chat.DispatchPresenceQuery).obj(t)["users"], []any{}, "deleted user")
		watcher.send(chat.EventPresenceQuery, map[string]any{"room_id": group})
		eq(t, len(watcher.expect(chat.DispatchPresenceQuery).obj(t)["users"].([]any)), 2, "group members")
	})
}

// idleBob sets up the activity tests: with a short threshold, watcher
// (user 1) sees bob (user 2) of their group go online, then offline while
// his connection stays open (idle). register is the node's event map.
func idleBob(t *testing.T, newStore factory, register func(*chat.Service, chatmux.Router)) (e *env, group uuid.UUID, watcher, bob *client) {
	t.Helper()
	e = newEnvWith(t, newStore, register, func(c *chat.Config) {
		c.InactivityThreshold = 200 * time.Millisecond
		c.PresenceGrace = 100 * time.Millisecond
		c.Notifications = false
	})
	e.presence = true
	e.users(2)
	group = e.room(store.Group, 1, 1, 2)
	watcher = e.dial(1)
	bob = e.dial(2)
	wantPresence(t, awaitPresence(t, watcher, e), group, 2, true)
	wantPresence(t, awaitPresence(t, watcher, e), group, 2, false)
	return e, group, watcher, bob
}

// answer sends event from c and reads up to its answer, skipping the
// presence dispatches (user 1's: idle too).
func answer(t *testing.T, c *client, event string) frame {
	t.Helper()
	c.send(event, nil)
	f := c.next()
	for f.EventType == chat.DispatchPresence {
		f = c.next()
	}
	return f
}

// TestPresenceActivity: an idle session goes offline though its connection
// is open, and any event (flushed by the next tick) brings it back.
func TestPresenceActivity(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		e, group, watcher, bob := idleBob(t, newStore, func(svc *chat.Service, r chatmux.Router) { svc.Register(r) })
		if f := answer(t, bob, chat.EventRoomList); f.EventType != chat.DispatchRoomList {
			t.Fatalf("want roomlist.dispatch, got %s", f.Raw)
		}
		wantPresence(t, awaitPresence(t, watcher, e), group, 2, true)
	})
}

// TestPresenceActivityCustomEvent: a host's own event wrapped with
// Activity counts as activity as the default events do; unwrapped, it
// does not.
func TestPresenceActivityCustomEvent(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		e, group, watcher, bob := idleBob(t, newStore, func(svc *chat.Service, r chatmux.Router) {
			svc.Register(r)
			ok := func(c *chatmux.Context) error { return c.ReplyRaw([]byte(`{"ok":true}`)) }
			r.Handle("custom.plain", ok)
			r.With(svc.Activity).Handle("custom.active", ok)
		})
		// An event that is not activity: bob stays offline through two
		// ticks of the sweep.
		answer(t, bob, "custom.plain")
		for range 2 {
			for _, p := range e.svc.PresenceTick(context.Background()) {
				if p.UserID == 2 {
					t.Fatalf("an event without Activity changed bob's presence: %+v", p)
				}
			}
		}
		answer(t, bob, "custom.active")
		wantPresence(t, awaitPresence(t, watcher, e), group, 2, true)
	})
}
