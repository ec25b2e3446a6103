package memory_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/chatmux/chatmux/store"
	"github.com/chatmux/chatmux/store/memory"
)

func Example() {
	ctx := context.Background()
	st := memory.New()
	ann, _ := st.UpsertUser(ctx, store.User{ID: 1, Username: "ann"})
	bob, _ := st.UpsertUser(ctx, store.User{ID: 2, Username: "bob"})
	room, _ := st.CreateRoom(ctx, store.NewRoom{Type: store.OneToOne, CreatorID: ann.ID, Members: []int64{bob.ID}})

	// A send with a client_msg_id is idempotent: the retry stores nothing.
	msg := store.NewMessage{RoomID: room.ID, SenderID: ann.ID, Content: "hi", ClientMsgID: "c-1", Notify: true}
	res, _ := st.SendMessage(ctx, msg)
	retry, _ := st.SendMessage(ctx, msg)
	fmt.Println(res.Message.Seq, res.Notification.Recipients, retry.Duplicate, retry.Message.ID == res.Message.ID)

	list, _ := st.ListRooms(ctx, bob.ID)
	fmt.Println(list[0].Peer.Username, list[0].LastMessage.Content, list[0].UnreadCount)

	// Invariants come back as typed errors carrying the protocol's detail.
	_, err := st.CreateRoom(ctx, store.NewRoom{Type: store.OneToOne, CreatorID: bob.ID, Members: []int64{ann.ID}})
	fmt.Println(errors.Is(err, store.ErrDuplicateOneToOne), err)
	// Output:
	// 1 [2] true true
	// ann hi 1
	// true Chat already exists
}
