package storetest

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux/store"
)

// Bench runs the shared benchmarks against stores made by newStore:
//
//   - Send: one message (with its NEW_MESSAGE notification) into a group
//     of 10 members.
//   - SendParallelOneRoom / SendParallelManyRooms: the same from 4×GOMAXPROCS
//     goroutines, into one room or into a room each.
//   - SendParallel64Rooms: 64×GOMAXPROCS goroutines, a room (of two
//     members) each.
//   - AcknowledgeParallel: 16×GOMAXPROCS recipients in one group each
//     acknowledge the group's messages one by one, all at once, as clients
//     acknowledge a fan-out; one op is one Acknowledge of one message.
//   - ListRooms200: room.list for a user in 200 rooms, each with a few
//     messages, a read receipt and a reaction.
//   - Page50: one page of 50 messages (with receipts, reactions and a
//     delivery each) of a room with 500 messages.
func Bench(b *testing.B, newStore Factory) {
	b.Run("Send", func(b *testing.B) {
		st := newStore(b)
		users(b, st, 10)
		g := group(b, st, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			if _, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: int64(i%10 + 1), Content: "hello, world", Notify: true}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("SendParallelOneRoom", func(b *testing.B) {
		// Concurrent senders in one room: sends serialise on the room
		// (its row lock in PostgreSQL, the store's mutex in memory).
		st := newStore(b)
		users(b, st, 10)
		g := group(b, st, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
		b.ReportAllocs()
		b.SetParallelism(4)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				if _, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: int64(i%10 + 1), Content: "hello", Notify: true}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("SendParallelManyRooms", func(b *testing.B) {
		// Concurrent senders, each in a room of its own.
		st := newStore(b)
		users(b, st, 10)
		rooms := make(chan uuid.UUID, 64)
		for range 64 {
			rooms <- group(b, st, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10).ID
		}
		b.ReportAllocs()
		b.SetParallelism(4)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			room := <-rooms
			for i := 0; pb.Next(); i++ {
				if _, err := st.SendMessage(ctx, store.NewMessage{RoomID: room, SenderID: int64(i%10 + 1), Content: "hello", Notify: true}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("SendParallel64Rooms", func(b *testing.B) {
		// 64 concurrent senders, each in a room of its own with its
		// NEW_MESSAGE notification: where a store that writes concurrent
		// sends together (group commit) gains.
		st := newStore(b)
		users(b, st, 10)
		rooms := make(chan uuid.UUID, 64*runtime.GOMAXPROCS(0))
		for range cap(rooms) {
			rooms <- group(b, st, 1, 2).ID
		}
		b.ReportAllocs()
		b.SetParallelism(64)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			room := <-rooms
			for pb.Next() {
				if _, err := st.SendMessage(ctx, store.NewMessage{RoomID: room, SenderID: 1, Content: "hello", Notify: true}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("AcknowledgeParallel", func(b *testing.B) {
		// Every recipient acknowledges every message it receives: the
		// hottest write after sends, and concurrent on each message's
		// notification. Each goroutine is a recipient going through the
		// messages in order (around again if it gets more than its share).
		st := newStore(b)
		const par = 16
		n := par*runtime.GOMAXPROCS(0) + 1
		members := make([]int64, n-1)
		for i := range members {
			members[i] = int64(i + 2)
		}
		users(b, st, n)
		g := group(b, st, 1, members...)
		msgs := make([]uuid.UUID, 2*b.N/(n-1)+8)
		for i := range msgs {
			msgs[i] = send(b, st, g.ID, 1, fmt.Sprintf("message %d", i)).ID
		}
		var next atomic.Int64
		b.ReportAllocs()
		b.SetParallelism(par)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			user := next.Add(1) + 1
			for i := 0; pb.Next(); i++ {
				got, err := st.Acknowledge(ctx, user, msgs[i%len(msgs):i%len(msgs)+1])
				if err != nil || len(got) != 1 {
					b.Errorf("Acknowledge = %v, %v", got, err)
					return
				}
			}
		})
	})
	b.Run("ListRooms200", func(b *testing.B) {
		st := newStore(b)
		users(b, st, 4)
		for i := range 200 {
			var r store.Room
			if i%4 == 0 {
				// A few one-to-one chats need distinct peers.
				u, err := st.UpsertUser(ctx, store.User{ID: int64(1000 + i), Username: fmt.Sprintf("peer%d", i)})
				ok(b, err)
				r, err = st.CreateRoom(ctx, store.NewRoom{Type: store.OneToOne, CreatorID: 1, Members: []int64{u.ID}})
				ok(b, err)
			} else {
				r = group(b, st, 1, 2, 3)
			}
			var last uuid.UUID
			for j := range 3 {
				sender := int64(2)
				if j == 1 {
					sender = 1
				}
				if r.Type == store.OneToOne && sender == 2 {
					sender = int64(1000 + i)
				}
				last = send(b, st, r.ID, sender, fmt.Sprintf("message %d", j)).ID
			}
			_, err := st.AddReaction(ctx, store.NewReaction{MessageID: last, UserID: 1, Content: "👍"})
			ok(b, err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			list, err := st.ListRooms(ctx, 1)
			if err != nil || len(list) != 200 {
				b.Fatalf("ListRooms = %d rooms, %v", len(list), err)
			}
		}
	})
	b.Run("Page50", func(b *testing.B) {
		st := newStore(b)
		users(b, st, 3)
		g := group(b, st, 1, 2, 3)
		for i := range 500 {
			m := send(b, st, g.ID, int64(i%2+1), fmt.Sprintf("message %d", i))
			other := int64(3)
			_, err := st.MarkRead(ctx, other, []uuid.UUID{m.ID})
			ok(b, err)
			_, err = st.Acknowledge(ctx, other, []uuid.UUID{m.ID})
			ok(b, err)
			_, err = st.AddReaction(ctx, store.NewReaction{MessageID: m.ID, UserID: other, Content: "👍"})
			ok(b, err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			p, err := st.MessagesPage(ctx, g.ID, 3, 50)
			if err != nil || len(p.Messages) != 50 {
				b.Fatalf("MessagesPage = %d messages, %v", len(p.Messages), err)
			}
		}
	})
}
