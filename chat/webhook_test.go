package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux/chat"
	"github.com/chatmux/chatmux/store"
	"github.com/chatmux/chatmux/webhook"
	"github.com/chatmux/chatmux/webhook/webhooktest"
)

// Offline webhooks end to end (docs/protocol.md#offline-webhooks): a real
// HTTP receiver on loopback, the sends over WebSocket and the Go API.

var hookSecret = []byte("a secret of the tests, 16+")

// hookNode is a dispatcher (and, with an outbox store, a relay) for one
// node; started unless stopped.
func hookNode(t *testing.T, st store.Store, url string, start bool, mod func(*webhook.Config)) *webhook.Dispatcher {
	t.Helper()
	cfg := webhook.Config{URL: url, Secret: hookSecret, MinBackoff: time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		Timeout: 2 * time.Second, Lease: 3 * time.Second, MaxBatch: 8}
	if ob, ok := st.(store.WebhookOutbox); ok {
		cfg.Outbox = ob
	}
	if mod != nil {
		mod(&cfg)
	}
	d, err := webhook.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if start {
		d.Start()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(bg)
		if start {
			ctx, cancel = context.WithTimeout(bg, 5*time.Second)
		}
		defer cancel()
		_ = d.Shutdown(ctx)
	})
	return d
}

// runRelay runs the relay of svc until the test ends.
func runRelay(t *testing.T, svc *chat.Service) {
	r := svc.WebhookRelay(webhook.RelayConfig{Interval: 20 * time.Millisecond})
	if r == nil {
		return
	}
	ctx, cancel := context.WithCancel(bg)
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestWebhookOfflineExactlyOnce: every message with offline members is
// delivered, signed, with exactly the offline members as recipients, once
// after de-duplication by id, also when the receiver fails the first
// requests (503) and recovers; an online member, the sender and a
// duplicate send make no event; the Go API's sends make one too.
func TestWebhookOfflineExactlyOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		st := newStore(t)
		rcv := webhooktest.NewReceiver(t, hookSecret, webhooktest.Options{Tolerance: time.Minute, FailFirst: 4})
		d := hookNode(t, st, rcv.URL(), true, nil)
		e := newEnv(t, func(*testing.T) store.Store { return st }, func(c *chat.Config) { c.Webhooks = d })
		runRelay(t, e.svc)
		e.users(5)
		room := e.room(store.Group, 1, 2, 3, 4)
		quiet := e.room(store.Group, 1, 2) // only online members: no event
		alice, bob := e.dial(1), e.dial(2)
		defer alice.close()
		defer bob.close()

		const n = 40
		var want []uuid.UUID
		for i := range n {
			alice.send("message.send", map[string]any{"room_id": room, "content": fmt.Sprintf("m%d", i), "client_msg_id": fmt.Sprint(i)})
			var m struct {
				ID uuid.UUID `json:"id"`
			}
			if err := json.Unmarshal(alice.expect(chat.DispatchMessage).Data, &m); err != nil {
				t.Fatal(err)
			}
			want = append(want, m.ID)
			bob.expect(chat.DispatchMessage)
		}
		alice.send("message.send", map[string]any{"room_id": room, "content": "m0", "client_msg_id": "0"}) // a retry
		alice.expect(chat.DispatchMessage)
		alice.send("message.send", map[string]any{"room_id": quiet, "content": "nobody offline"})
		alice.expect(chat.DispatchMessage)
		bob.expect(chat.DispatchMessage)
		raw, err := e.svc.SendMessage(bg, chat.System, chat.SendMessage{RoomID: room, Content: "from the system"})
		if err != nil {
			t.Fatal(err)
		}
		var sys struct {
			ID uuid.UUID `json:"id"`
		}
		_ = json.Unmarshal(raw, &sys)
		want = append(want, sys.ID)

		waitUntil(t, "every event", func() bool { return rcv.Stats().Unique == len(want) && d.Stats().Delivered >= uint64(len(want)) })
		got, counts := rcv.Events(), rcv.Stats()
		if counts.Bad != 0 {
			t.Fatalf("%d requests with a bad signature", counts.Bad)
		}
		for _, id := range want {
			ev, ok := got[id]
			if !ok {
				t.Fatalf("no event for %s", id)
			}
			if got := []int64{ev.Recipients[0].ID, ev.Recipients[len(ev.Recipients)-1].ID}; len(ev.Recipients) != 2 ||
				!slices.Equal(got, []int64{3, 4}) || ev.Recipients[0].Username != "user3" {
				t.Fatalf("recipients of %s: %+v, want users 3 and 4", id, ev.Recipients)
			}
			var m struct {
				ID   uuid.UUID `json:"id"`
				Room struct {
					ID uuid.UUID `json:"id"`
				} `json:"room"`
				Content string `json:"content"`
			}
			if err := json.Unmarshal(ev.Message, &m); err != nil || m.ID != id || m.Room.ID != room || m.Content == "" {
				t.Fatalf("message of %s: %s (%v)", id, ev.Message, err)
			}
			if ev.Type != webhook.TypeMessageOffline || ev.Room.ID != room || ev.Room.Name != "room-GroupChat" || ev.Room.Type != "GroupChat" {
				t.Fatalf("event %+v", ev)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%d distinct events, want %d", len(got), len(want))
		}
		s := d.Stats()
		if counts.Failed == 0 || s.Retried == 0 || s.Dropped != 0 || s.Expired != 0 {
			t.Fatalf("failed %d, stats %+v", counts.Failed, s)
		}
		t.Logf("events %d, delivered %d (duplicates before de-dup %d, after 0), retried %d, requests %v",
			len(want), counts.Events, counts.Events-len(got), s.Retried, s.Requests)
	})
}

// TestWebhookSendNeverWaits: with the receiver hanging on its first
// request, every send is still answered; what does not fit the queue is
// counted (dropped, or deferred to the outbox on PostgreSQL).
func TestWebhookSendNeverWaits(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		st := newStore(t)
		hang := make(chan struct{})
		rcv := webhooktest.NewReceiver(t, hookSecret, webhooktest.Options{Tolerance: time.Minute, Hold: hang})
		d := hookNode(t, st, rcv.URL(), true, func(c *webhook.Config) {
			c.QueueSize, c.MaxBatch, c.Timeout, c.Lease = 2, 1, time.Hour, 2*time.Hour
		})
		t.Cleanup(func() { close(hang) }) // before the dispatcher's shutdown: the drain at the end goes fast
		e := newEnv(t, func(*testing.T) store.Store { return st }, func(c *chat.Config) { c.Webhooks = d })
		e.users(2)
		room := e.room(store.Group, 1, 2)
		alice := e.dial(1)
		defer alice.close()
		alice.send("message.send", map[string]any{"room_id": room, "content": "first"})
		alice.expect(chat.DispatchMessage)
		<-rcv.Arrived() // the dispatcher is stuck in its first request
		const n = 10
		for i := range n {
			alice.send("message.send", map[string]any{"room_id": room, "content": fmt.Sprint(i)})
			alice.expect(chat.DispatchMessage)
		}
		if _, err := e.svc.SendMessage(bg, chat.AsUser(1), chat.SendMessage{RoomID: room, Content: "api"}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-hang:
			t.Fatal("the receiver was released")
		default:
		}
		s := d.Stats()
		lost := s.Dropped + s.Deferred
		if s.Queued != 2 || lost != n+1-2 {
			t.Fatalf("stats %+v: want 2 queued and %d counted as dropped or deferred", s, n+1-2)
		}
		if _, outbox := st.(store.WebhookOutbox); outbox != (s.Deferred == lost) {
			t.Fatalf("outbox %v, stats %+v", outbox, s)
		}
		t.Logf("sends answered with the receiver hanging: %d; overflow: dropped %d, deferred %d", n+1, s.Dropped, s.Deferred)
	})
}

// TestWebhookCrashedNodeDelivers (PostgreSQL): node A commits messages
// whose outbox rows are leased to it, and never calls the receiver (its
// dispatcher never runs: as if it had crashed right after the commit);
// node B's relay claims the rows once A's lease has ended and delivers
// every event, once.
func TestWebhookCrashedNodeDelivers(t *testing.T) {
	newStore, ok := stores["postgres"]
	if !ok {
		t.Skip("PostgreSQL only")
	}
	st := newStore(t)
	if _, ok := st.(store.WebhookOutbox); !ok {
		t.Fatal("the PostgreSQL store keeps no outbox")
	}
	rcv := webhooktest.NewReceiver(t, hookSecret, webhooktest.Options{Tolerance: time.Minute})
	lease := func(c *webhook.Config) { c.Timeout, c.Lease = 500*time.Millisecond, time.Second }
	dA := hookNode(t, st, rcv.URL(), false, lease) // never started
	dB := hookNode(t, st, rcv.URL(), true, lease)
	shared := func(*testing.T) store.Store { return st }
	a := newEnv(t, shared, func(c *chat.Config) { c.Webhooks = dA })
	b := newEnv(t, shared, func(c *chat.Config) { c.Webhooks = dB })
	runRelay(t, b.svc)
	a.users(3)
	room := a.room(store.Group, 1, 2, 3)
	const n = 25
	want := map[uuid.UUID]bool{}
	for i := range n {
		raw, err := a.svc.SendMessage(bg, chat.AsUser(1), chat.SendMessage{RoomID: room, Content: fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			ID uuid.UUID `json:"id"`
		}
		_ = json.Unmarshal(raw, &m)
		want[m.ID] = true
	}
	if dA.Len() != n {
		t.Fatalf("node A queued %d events, want %d", dA.Len(), n)
	}
	waitUntil(t, "node B to deliver node A's events", func() bool { return rcv.Stats().Unique == n && dB.Stats().Delivered >= n })
	got, events := rcv.Events(), rcv.Stats().Events
	for id := range want {
		if ev, ok := got[id]; !ok || len(ev.Recipients) != 2 {
			t.Fatalf("event %s: %+v", id, ev)
		}
	}
	if events != n || dA.Stats().Delivered != 0 {
		t.Fatalf("received %d events for %d messages; node A delivered %d", events, n, dA.Stats().Delivered)
	}
	t.Logf("node A committed %d events and never called; node B's relay delivered %d (duplicates 0)", n, events)
}

// TestWebhookEventsOfRows: the relay's events are built from the store as
// it is: a deleted message or a row whose recipients are all deleted
// users makes no event (a zero ID: the row is deleted), a deleted
// recipient is left out.
func TestWebhookEventsOfRows(t *testing.T) {
	e := newEnv(t, memoryStore, func(c *chat.Config) { c.SoftDelete = true })
	e.users(4)
	room := e.room(store.Group, 1, 2, 3, 4)
	kept := e.message(room, 1, "kept")
	gone := e.message(room, 1, "gone")
	if _, err := e.st.DeleteMessages(bg, []uuid.UUID{gone}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.DeleteUser(bg, 4); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC()
	evs, err := e.svc.WebhookEvents(bg, []store.OutboxEvent{
		{ID: 1, MessageID: kept, RoomID: room, Recipients: []int64{2, 3, 4}, CreatedAt: at},
		{ID: 2, MessageID: gone, RoomID: room, Recipients: []int64{2}, CreatedAt: at},
		{ID: 3, MessageID: kept, RoomID: room, Recipients: []int64{4}, CreatedAt: at},
		{ID: 4, MessageID: uuid.New(), RoomID: room, Recipients: []int64{2}, CreatedAt: at},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 4 || evs[1].ID != uuid.Nil || evs[2].ID != uuid.Nil || evs[3].ID != uuid.Nil {
		t.Fatalf("events %+v", evs)
	}
	ev := evs[0]
	if ev.ID != kept || ev.Type != webhook.TypeMessageOffline || !ev.CreatedAt.Equal(at) || ev.Room.Name != "room-GroupChat" ||
		len(ev.Recipients) != 2 || ev.Recipients[0] != (webhook.Recipient{ID: 2, Username: "user2"}) || ev.Recipients[1].ID != 3 {
		t.Fatalf("event %+v", ev)
	}
	var m struct {
		ID      uuid.UUID `json:"id"`
		Content string    `json:"content"`
	}
	if err := json.Unmarshal(ev.Message, &m); err != nil || m.ID != kept || m.Content != "kept" {
		t.Fatalf("message %s", ev.Message)
	}
}
