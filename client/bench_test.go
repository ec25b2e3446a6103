package client_test

import (
	"sync/atomic"
	"testing"

	"github.com/chatmux/chatmux/client"
)

// BenchmarkSendReceive measures one message through the client: sent with
// SendMessage (returns once stored), handed to another client's
// Handlers.Message, on the chat service over the memory store.
func BenchmarkSendReceive(b *testing.B) {
	st := memoryStore()
	n := startNode(b, st, "").url()
	bobID, err := st.CreateUserByUsername(bg, "bob")
	if err != nil {
		b.Fatal(err)
	}
	var got atomic.Int64
	done := make(chan struct{}, 1)
	var want atomic.Int64
	alice, err := client.Dial(bg, client.Options{URL: n, User: "alice"})
	if err != nil {
		b.Fatal(err)
	}
	defer alice.Close()
	bob, err := client.Dial(bg, client.Options{URL: n, User: "bob", Handlers: client.Handlers{Message: func(*client.Message) {
		if got.Add(1) == want.Load() {
			done <- struct{}{}
		}
	}}})
	if err != nil {
		b.Fatal(err)
	}
	defer bob.Close()
	room, err := alice.CreateRoom(bg, client.CreateRoom{Type: client.RoomGroup, Name: "bench", Members: []int64{bobID.ID}})
	if err != nil {
		b.Fatal(err)
	}
	want.Store(int64(b.N))
	b.ResetTimer()
	for range b.N {
		if _, err := alice.SendMessage(bg, client.OutgoingMessage{RoomID: room.ID, Content: "x"}); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	b.StopTimer()
	if s := bob.Stats(); s.Delivered != b.N {
		b.Fatalf("bob got %d, want %d", s.Delivered, b.N)
	}
}
