package client_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux/client"
	"github.com/chatmux/chatmux/store"
)

// TestConversation runs every typed method against the chat service on the
// memory store.
func TestConversation(t *testing.T) {
	st := memoryStore()
	n := startNode(t, st, "")
	bobID := user(t, st, "bob")
	alice, arec := dialUser(t, n.url(), "alice")
	bob, brec := dialUser(t, n.url(), "bob")
	ctx := ctxT(t)

	room, err := alice.CreateRoom(ctx, client.CreateRoom{Type: client.RoomGroup, Name: "trip", Members: []int64{bobID}})
	if err != nil {
		t.Fatalf("CreateRoom: %v", err)
	}
	if room.Type != client.RoomGroup || room.Name != "trip" || len(room.Participants) != 2 {
		t.Fatalf("CreateRoom = %+v", room)
	}
	m, err := alice.SendMessage(ctx, client.OutgoingMessage{RoomID: room.ID, Content: "hi bob", ClientMsgID: "c-1"})
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	if m.Seq != 1 || m.ClientMsgID != "c-1" || m.Content != "hi bob" || m.Sender == nil || m.Sender.Username != "alice" {
		t.Fatalf("SendMessage = %+v", m)
	}
	brec.wait(t, "bob gets the message", func() bool { return brec.countLocked(room.ID) == 1 })
	if got := brec.roomMessages(room.ID)[0]; got.ID != m.ID {
		t.Fatalf("bob got %+v, want %s", got, m.ID)
	}

	// The same client_msg_id again is the same message, delivered once.
	again, err := alice.SendMessage(ctx, client.OutgoingMessage{RoomID: room.ID, Content: "other", ClientMsgID: "c-1"})
	if err != nil || again.ID != m.ID || again.Content != "hi bob" {
		t.Fatalf("SendMessage retry = %+v, %v; want the original", again, err)
	}
	// The retry's answer (or the catch-up page that stored it first) is a
	// duplicate of seq 1.
	arec.wait(t, "alice drops the retry's answer", func() bool {
		s := alice.Stats()
		return s.DuplicatesDropped >= 1 && s.Delivered == 1 && arec.sent["c-1"] == 2 && len(arec.messages) == 1
	})

	r, err := bob.React(ctx, m.ID, "👍")
	if err != nil || r.Type != "add" || len(r.Message.Reactions) != 1 {
		t.Fatalf("React = %+v, %v", r, err)
	}
	if r, err := bob.RemoveReaction(ctx, m.ID); err != nil || r.Action != "remove" || r.Status != "successful" {
		t.Fatalf("RemoveReaction = %+v, %v", r, err)
	}
	if err := bob.Acknowledge(ctx, m.ID); err != nil {
		t.Fatalf("Acknowledge: %v", err)
	}
	if err := bob.Read(ctx, m.ID); err != nil {
		t.Fatalf("Read: %v", err)
	}
	if err := bob.Typing(ctx, room.ID); err != nil {
		t.Fatalf("Typing: %v", err)
	}
	arec.wait(t, "alice sees the receipts and the typing", func() bool {
		return arec.byType[client.DispatchDelivered] == 1 && arec.byType[client.DispatchReadReceipt] == 1 &&
			arec.byType[client.DispatchTyping] == 1
	})
	ed, err := alice.EditMessage(ctx, m.ID, "hi Bob")
	if err != nil || !ed.IsEdited || ed.Content != "hi Bob" {
		t.Fatalf("EditMessage = %+v, %v", ed, err)
	}
	after := int64(0)
	page, err := bob.RoomMessages(ctx, room.ID, client.HistoryQuery{AfterSeq: &after})
	if err != nil || len(page.Data.Messages) != 1 || page.Data.Messages[0].Content != "hi Bob" {
		t.Fatalf("RoomMessages after_seq 0 = %+v, %v", page, err)
	}
	page, err = bob.RoomMessages(ctx, room.ID, client.HistoryQuery{Page: 1, Size: 10})
	if err != nil || page.Page != 1 || len(page.Data.Messages) != 1 {
		t.Fatalf("RoomMessages page 1 = %+v, %v", page, err)
	}
	rooms, err := bob.ListRooms(ctx)
	if err != nil || len(rooms) != 1 || rooms[0].ID != room.ID || rooms[0].LastMessage == nil {
		t.Fatalf("ListRooms = %+v, %v", rooms, err)
	}
	info, err := bob.RoomInfo(ctx, room.ID)
	if err != nil || info.ID != room.ID || len(info.Admins) != 1 {
		t.Fatalf("RoomInfo = %+v, %v", info, err)
	}
	name := "trip (Sat)"
	up, err := alice.UpdateRoom(ctx, room.ID, client.RoomUpdate{Name: &name})
	if err != nil || up.Name != name {
		t.Fatalf("UpdateRoom = %+v, %v", up, err)
	}
	users, err := alice.SearchUsers(ctx, "bo", 0)
	if err != nil || len(users) != 1 || users[0].ID != bobID {
		t.Fatalf("SearchUsers = %+v, %v", users, err)
	}
	if err := alice.DeleteMessages(ctx, m.ID); err != nil {
		t.Fatalf("DeleteMessages: %v", err)
	}

	// Errors are the server's, each on its own request.
	if _, err := alice.SendMessage(ctx, client.OutgoingMessage{RoomID: uuid.NewString(), Content: "x"}); !isServerCode(err, client.CodeNotFound) {
		t.Fatalf("SendMessage to no room: %v, want 4004", err)
	}
	if err := bob.DeleteRoom(ctx, room.ID); !isServerCode(err, client.CodePermissionDenied) {
		t.Fatalf("DeleteRoom by a non-creator: %v, want 4002", err)
	}
	if len(alice.PendingMessages()) != 0 {
		t.Fatalf("outbox not empty: %+v", alice.PendingMessages())
	}

	// Membership: bob leaves; the room is no longer tracked.
	if err := bob.LeaveRoom(ctx, room.ID); err != nil {
		t.Fatalf("LeaveRoom: %v", err)
	}
	if _, tracked := bob.LastSeq(room.ID); tracked {
		t.Fatalf("bob still tracks the room he left")
	}
	if err := alice.AddMembers(ctx, room.ID, bobID); err != nil {
		t.Fatalf("AddMembers: %v", err)
	}
	brec.wait(t, "bob is added back", func() bool { return len(brec.added) == 1 })
	if err := alice.RemoveMembers(ctx, room.ID, bobID); err != nil {
		t.Fatalf("RemoveMembers: %v", err)
	}
	if err := alice.DeleteRoom(ctx, room.ID); err != nil {
		t.Fatalf("DeleteRoom: %v", err)
	}
}

// TestRequestsGetTheirOwnAnswers sends many requests at once, half of them
// refused: each call returns its own answer (docs/protocol.md#request-id).
func TestRequestsGetTheirOwnAnswers(t *testing.T) {
	st := memoryStore()
	n := startNode(t, st, "")
	bobID := user(t, st, "bob")
	alice, _ := dialUser(t, n.url(), "alice")
	ctx := ctxT(t)
	room, err := alice.CreateRoom(ctx, client.CreateRoom{Type: client.RoomGroup, Name: "g", Members: []int64{bobID}})
	if err != nil {
		t.Fatal(err)
	}
	const k = 40
	errs := make([]error, k)
	var wg sync.WaitGroup
	for i := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := room.ID
			if i%2 == 1 {
				id = uuid.NewString()
			}
			errs[i] = alice.Typing(ctx, id)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if i%2 == 0 && err != nil {
			t.Errorf("request %d (a member's room): %v", i, err)
		}
		if i%2 == 1 && !isServerCode(err, client.CodeNotFound) {
			t.Errorf("request %d (no room): %v, want 4004", i, err)
		}
	}
}

// TestGapFill: a message the client never received live (stored without a
// dispatch) is fetched when the next one shows the gap, and both are
// delivered in order, once.
func TestGapFill(t *testing.T) {
	st := memoryStore()
	n := startNode(t, st, "")
	aliceID, bobID := user(t, st, "alice"), user(t, st, "bob")
	alice, _ := dialUser(t, n.url(), "alice")
	bob, brec := dialUser(t, n.url(), "bob")
	ctx := ctxT(t)
	room, err := alice.CreateRoom(ctx, client.CreateRoom{Type: client.RoomGroup, Name: "g", Members: []int64{bobID}})
	if err != nil {
		t.Fatal(err)
	}
	// A first message, live: bob is not catching up any more once he has it.
	if _, err := alice.SendMessage(ctx, client.OutgoingMessage{RoomID: room.ID, Content: "first"}); err != nil {
		t.Fatal(err)
	}
	brec.wait(t, "bob gets the first", func() bool { return brec.countLocked(room.ID) == 1 })
	if _, err := st.SendMessage(ctx, store.NewMessage{RoomID: uuid.MustParse(room.ID), SenderID: aliceID, Content: "unseen"}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendMessage(ctx, client.OutgoingMessage{RoomID: room.ID, Content: "seen"}); err != nil {
		t.Fatal(err)
	}
	brec.wait(t, "bob gets all three", func() bool { return brec.countLocked(room.ID) == 3 })
	got := brec.roomMessages(room.ID)
	if got[1].Seq != 2 || got[1].Content != "unseen" || got[2].Seq != 3 || got[2].Content != "seen" {
		t.Fatalf("bob got %d:%q, %d:%q; want 2:unseen, 3:seen", got[1].Seq, got[1].Content, got[2].Seq, got[2].Content)
	}
	if s := bob.Stats(); s.GapsDetected != 1 || s.Delivered != 3 {
		t.Fatalf("bob stats: %+v, want 1 gap and 3 delivered", s)
	}
}

// TestTrackRoomHistory: tracking a room from seq 0 delivers its history in
// order.
func TestTrackRoomHistory(t *testing.T) {
	st := memoryStore()
	n := startNode(t, st, "")
	aliceID := user(t, st, "alice")
	r, err := st.CreateRoom(bg, store.NewRoom{Type: store.Group, Name: "g", CreatorID: aliceID})
	if err != nil {
		t.Fatal(err)
	}
	const k = 250 // more than a catch-up page
	for i := range k {
		if _, err := st.SendMessage(bg, store.NewMessage{RoomID: r.ID, SenderID: aliceID, Content: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	alice, arec := dialUser(t, n.url(), "alice", func(o *client.Options) { o.NoAutoTrack = true })
	alice.TrackRoom(r.ID.String(), 0)
	arec.wait(t, "the history", func() bool { return arec.countLocked(r.ID.String()) == k })
	for i, m := range arec.roomMessages(r.ID.String()) {
		if m.Seq != int64(i+1) {
			t.Fatalf("message %d has seq %d", i, m.Seq)
		}
	}
	if s := alice.Stats(); s.CatchUpRequests < 3 {
		t.Fatalf("catch-up requests: %d, want at least 3 pages", s.CatchUpRequests)
	}
}
