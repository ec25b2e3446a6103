package storetest

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux/store"
)

// Offline webhooks (docs/protocol.md#offline-webhooks): the offline
// recipients of a send, and the outbox of the stores that keep one.

func recipientIDs(rs []store.Recipient) []int64 {
	out := []int64{}
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

// testOffline: NewMessage.Offline lists the members other than the sender
// (every member for the system) with no live session, by id, with their
// usernames; nobody without Offline, and nothing for a duplicate.
func testOffline(t *testing.T, st store.Store) {
	users(t, st, 5)
	r := group(t, st, 1, 2, 3, 4)
	_, err := st.CreateSession(ctx, store.NewSession{UserID: 2, ConnID: "c2"})
	ok(t, err)
	s3, err := st.CreateSession(ctx, store.NewSession{UserID: 3, ConnID: "c3"})
	ok(t, err)
	ok(t, st.CloseSession(ctx, s3.ID))                                        // closed: offline again
	_, err = st.CreateSession(ctx, store.NewSession{UserID: 5, ConnID: "c5"}) // live, not a member
	ok(t, err)

	res, err := st.SendMessage(ctx, store.NewMessage{RoomID: r.ID, SenderID: 1, Content: "hi", ClientMsgID: "k", Offline: time.Hour})
	ok(t, err)
	if got := recipientIDs(res.Offline); !slices.Equal(got, []int64{3, 4}) {
		t.Fatalf("offline = %v, want [3 4]", got)
	}
	if res.Offline[0].Username != "user3" || res.Offline[1].Username != "user4" {
		t.Fatalf("offline usernames = %+v", res.Offline)
	}
	if res.RoomName != r.Name || res.RoomType != store.Group {
		t.Fatalf("room %q %q, want %q %q", res.RoomName, res.RoomType, r.Name, store.Group)
	}
	dup, err := st.SendMessage(ctx, store.NewMessage{RoomID: r.ID, SenderID: 1, Content: "hi", ClientMsgID: "k", Offline: time.Hour,
		OutboxLease: time.Hour})
	ok(t, err)
	if !dup.Duplicate || len(dup.Offline) != 0 || dup.OutboxID != 0 {
		t.Fatalf("duplicate: %+v", dup)
	}
	res, err = st.SendMessage(ctx, store.NewMessage{RoomID: r.ID, SenderID: 1, Content: "off"})
	ok(t, err)
	if len(res.Offline) != 0 || res.OutboxID != 0 {
		t.Fatalf("without Offline: %+v", res)
	}
	// The system: every member without a live session, the "sender" 1 too.
	res, err = st.SendMessage(ctx, store.NewMessage{RoomID: r.ID, Content: "system", Offline: time.Hour})
	ok(t, err)
	if got := recipientIDs(res.Offline); !slices.Equal(got, []int64{1, 3, 4}) {
		t.Fatalf("system offline = %v, want [1 3 4]", got)
	}
	// A deleted user is never a recipient.
	_, err = st.DeleteUser(ctx, 4)
	ok(t, err)
	res, err = st.SendMessage(ctx, store.NewMessage{RoomID: r.ID, SenderID: 2, Content: "after", Offline: time.Hour})
	ok(t, err)
	if got := recipientIDs(res.Offline); !slices.Equal(got, []int64{1, 3}) {
		t.Fatalf("offline after the deletion = %v, want [1 3]", got)
	}
	// Everybody online: none.
	for _, u := range []int64{1, 3} {
		_, err = st.CreateSession(ctx, store.NewSession{UserID: u, ConnID: "x"})
		ok(t, err)
	}
	res, err = st.SendMessage(ctx, store.NewMessage{RoomID: r.ID, SenderID: 2, Content: "all here", Offline: time.Hour,
		OutboxLease: time.Hour})
	ok(t, err)
	if len(res.Offline) != 0 || res.OutboxID != 0 {
		t.Fatalf("all online: %+v", res)
	}
}

// claimAll claims the due rows of ob until none is left (at most n
// rounds), with a lease of an hour.
func claimAll(t *testing.T, ob store.WebhookOutbox) []store.OutboxEvent {
	t.Helper()
	out, err := ob.ClaimWebhookEvents(ctx, time.Hour, 1000)
	ok(t, err)
	return out
}

// testWebhookOutbox: a store that keeps a webhook outbox writes the row
// with the send, leased to the caller; a claim takes only rows whose lease
// has ended, leases them and counts the attempt; two claims never take
// the same row; Retry makes a row due again; Delete and a deleted message
// remove it.
func testWebhookOutbox(t *testing.T, st store.Store) {
	ob, isOutbox := st.(store.WebhookOutbox)
	if !isOutbox {
		t.Skip("the store keeps no webhook outbox")
	}
	users(t, st, 3)
	r := group(t, st, 1, 2, 3)
	// Leased to the sender for an hour: nobody claims it.
	held, err := st.SendMessage(ctx, store.NewMessage{RoomID: r.ID, SenderID: 1, Content: "held", Offline: time.Hour,
		OutboxLease: time.Hour})
	ok(t, err)
	if held.OutboxID == 0 || !slices.Equal(recipientIDs(held.Offline), []int64{2, 3}) {
		t.Fatalf("held: %+v", held)
	}
	if got := claimAll(t, ob); len(got) != 0 {
		t.Fatalf("claimed a leased row: %+v", got)
	}
	// Offline without a lease: no row.
	res, err := st.SendMessage(ctx, store.NewMessage{RoomID: r.ID, SenderID: 1, Content: "no row", Offline: time.Hour})
	ok(t, err)
	if res.OutboxID != 0 {
		t.Fatalf("a row without OutboxLease: %+v", res)
	}
	// A lease of a microsecond has ended by the claim.
	due, err := st.SendMessage(ctx, store.NewMessage{RoomID: r.ID, Content: "due", Offline: time.Hour, OutboxLease: time.Microsecond})
	ok(t, err)
	got := claimAll(t, ob)
	if len(got) != 1 {
		t.Fatalf("claimed %d rows, want 1", len(got))
	}
	e := got[0]
	if e.ID != due.OutboxID || e.MessageID != due.Message.ID || e.RoomID != r.ID || e.Attempts != 1 ||
		!slices.Equal(e.Recipients, []int64{1, 2, 3}) || !e.CreatedAt.Equal(due.Message.CreatedAt) {
		t.Fatalf("claimed %+v, want the row of %+v", e, due)
	}
	if got := claimAll(t, ob); len(got) != 0 {
		t.Fatalf("claimed a row twice: %+v", got)
	}
	// Retried with no backoff: due again, a second attempt.
	ok(t, ob.RetryWebhookEvents(ctx, []int64{e.ID, 999999}, 0))
	got = claimAll(t, ob)
	if len(got) != 1 || got[0].ID != e.ID || got[0].Attempts != 2 {
		t.Fatalf("after retry: %+v", got)
	}
	ok(t, ob.DeleteWebhookEvents(ctx, []int64{e.ID, 999999}))
	ok(t, ob.RetryWebhookEvents(ctx, []int64{e.ID}, 0))
	if got := claimAll(t, ob); len(got) != 0 {
		t.Fatalf("a deleted row claimed: %+v", got)
	}
	// A hard-deleted message takes its row with it.
	ok(t, ob.RetryWebhookEvents(ctx, []int64{held.OutboxID}, 0))
	_, err = st.DeleteMessages(ctx, []uuid.UUID{held.Message.ID}, true)
	ok(t, err)
	if got := claimAll(t, ob); len(got) != 0 {
		t.Fatalf("the row of a deleted message claimed: %+v", got)
	}
	if _, err := ob.ClaimWebhookEvents(ctx, time.Hour, 0); err == nil {
		t.Fatal("a claim of 0 rows did not fail")
	}

	// Concurrent claims: every row is claimed exactly once.
	const n = 40
	want := map[int64]bool{}
	for i := range n {
		res, err := st.SendMessage(ctx, store.NewMessage{RoomID: r.ID, SenderID: 1, Content: "m", Offline: time.Hour,
			OutboxLease: time.Microsecond, ClientMsgID: uuid.NewString()})
		ok(t, err)
		if res.OutboxID == 0 {
			t.Fatalf("send %d wrote no row", i)
		}
		want[res.OutboxID] = true
	}
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				got, err := ob.ClaimWebhookEvents(context.Background(), time.Hour, 3)
				if err != nil {
					t.Errorf("claim: %v", err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, e := range got {
					seen[e.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("claimed %d rows, want %d", len(seen), n)
	}
	for id, c := range seen {
		if !want[id] || c != 1 {
			t.Fatalf("row %d claimed %d times (sent: %v)", id, c, want[id])
		}
	}
}

// BenchWebhooks measures what offline webhooks add to a send
// (docs/protocol.md#offline-webhooks): 16×GOMAXPROCS goroutines send, each
// into a group of its own of three members with no session (two offline
// recipients per message), with webhooks off, with the offline recipients
// computed, and (on a store with an outbox) with the outbox row written.
func BenchWebhooks(b *testing.B, newStore Factory) {
	for _, v := range []struct {
		name           string
		offline, lease time.Duration
	}{{"Off", 0, 0}, {"Offline", time.Minute, 0}, {"Outbox", time.Minute, 30 * time.Second}} {
		b.Run(v.name, func(b *testing.B) {
			st := newStore(b)
			if _, ok := st.(store.WebhookOutbox); v.lease > 0 && !ok {
				b.Skip("the store keeps no webhook outbox")
			}
			users(b, st, 3)
			rooms := make(chan uuid.UUID, 64)
			for range cap(rooms) {
				rooms <- group(b, st, 1, 2, 3).ID
			}
			b.ReportAllocs()
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				room := <-rooms
				for pb.Next() {
					res, err := st.SendMessage(ctx, store.NewMessage{RoomID: room, SenderID: 1, Content: "hello", Notify: true,
						Offline: v.offline, OutboxLease: v.lease})
					if err != nil {
						b.Error(err)
						return
					}
					if v.offline > 0 && len(res.Offline) != 2 {
						b.Errorf("offline recipients %v, want 2", res.Offline)
						return
					}
				}
			})
		})
	}
}
