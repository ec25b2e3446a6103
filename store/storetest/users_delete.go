package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux/store"
)

// System messages and users deleted for good (docs/protocol.md#system-messages,
// docs/protocol.md#deleted-users).

// sortedUUIDs returns ids sorted by their bytes (the order of
// store.UserDeletion's lists).
func sortedUUIDs(ids ...uuid.UUID) []uuid.UUID {
	out := slices.Clone(ids)
	slices.SortFunc(out, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	return out
}

func testSystemMessages(t *testing.T, st store.Store) {
	users(t, st, 3)
	g := group(t, st, 1, 2, 3)
	first := send(t, st, g.ID, 1, "hello")
	res, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, Content: "user3 joined", ClientMsgID: "sys-1", Notify: true})
	ok(t, err)
	m := res.Message
	if m.SenderID != 0 || m.Seq != 2 || res.Duplicate {
		t.Fatalf("system message = %+v (duplicate %v), want sender 0, seq 2", m, res.Duplicate)
	}
	if res.Notification == nil || !slices.Equal(res.Notification.Recipients, []int64{1, 2, 3}) {
		t.Fatalf("notification = %+v, want every member as a recipient", res.Notification)
	}
	v := oneView(t, st, m.ID)
	if v.SenderID != 0 || v.Sender != (store.User{}) || v.Content != "user3 joined" || v.ClientMsgID != "sys-1" {
		t.Fatalf("view = %+v, sender %+v: want no sender", v.Message, v.Sender)
	}
	ms, err := st.Messages(ctx, []uuid.UUID{m.ID})
	ok(t, err)
	if len(ms) != 1 || ms[0].SenderID != 0 {
		t.Fatalf("Messages = %+v", ms)
	}
	after, err := st.MessagesAfter(ctx, g.ID, first.Seq, 10)
	ok(t, err)
	if len(after) != 1 || after[0].ID != m.ID || after[0].Sender != (store.User{}) {
		t.Fatalf("MessagesAfter = %v", viewIDs(after))
	}
	page, err := st.MessagesPage(ctx, g.ID, 1, 10)
	ok(t, err)
	if len(page.Messages) != 2 || page.Messages[0].ID != m.ID {
		t.Fatalf("MessagesPage = %v", viewIDs(page.Messages))
	}
	for u := int64(1); u <= 3; u++ {
		if n := pending(t, st, u)[g.ID]; len(n) == 0 || n[0].Message.ID != m.ID || n[0].Type != store.NotifyNewMessage {
			t.Fatalf("user %d: pending = %+v, want the system message first", u, n)
		}
	}

	// Idempotent per room for the system too, and apart from the users'
	// keys.
	again, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, Content: "changed", ClientMsgID: "sys-1", Notify: true})
	ok(t, err)
	if !again.Duplicate || again.Message.ID != m.ID || again.Message.SenderID != 0 || again.Message.Content != "user3 joined" {
		t.Fatalf("system retry = %+v (duplicate %v), want the original", again.Message, again.Duplicate)
	}
	mine, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: 2, Content: "mine", ClientMsgID: "sys-1"})
	ok(t, err)
	if mine.Duplicate || mine.Message.SenderID != 2 {
		t.Fatalf("a user's send with the system's key = %+v (duplicate %v), want a new message", mine.Message, mine.Duplicate)
	}
	// System messages without a key never collide.
	for range 2 {
		r, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, Content: "tick"})
		ok(t, err)
		if r.Duplicate {
			t.Fatal("a system message without client_msg_id was taken for a duplicate")
		}
	}

	// Everyone counts it unread, and can acknowledge and read it.
	list, err := st.ListRooms(ctx, 3)
	ok(t, err)
	if len(list) != 1 || list[0].UnreadCount != 5 {
		t.Fatalf("user 3 ListRooms unread = %+v, want 5 (system messages count)", list)
	}
	acked, err := st.Acknowledge(ctx, 1, []uuid.UUID{m.ID})
	ok(t, err)
	if len(acked) != 1 {
		t.Fatalf("Acknowledge of a system message = %v", acked)
	}
	rr, err := st.MarkRead(ctx, 1, []uuid.UUID{m.ID})
	ok(t, err)
	if len(rr) != 1 {
		t.Fatalf("MarkRead of a system message = %v", rr)
	}
	// A reply to it shows it as a parent without a sender.
	reply, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: 2, Content: "re", ParentID: &m.ID})
	ok(t, err)
	if rv := oneView(t, st, reply.Message.ID); rv.Parent == nil || rv.Parent.ID != m.ID || rv.Parent.Sender != (store.User{}) {
		t.Fatalf("reply's parent = %+v", rv.Parent)
	}
	// A negative sender is still invalid.
	_, err = st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: -1, Content: "x"})
	wantErr(t, err, store.ErrInvalid)
}

// deletionFixture is what testDeleteUser builds around user 1.
type deletionFixture struct {
	pair, group, channel, alone, quiet store.Room
	pairMsg, groupMsg, otherMsg        store.Message
	forward, lonely                    store.Message
}

func buildDeletion(t *testing.T, st store.Store) deletionFixture {
	t.Helper()
	users(t, st, 4)
	var f deletionFixture
	var err error
	f.pair, err = st.CreateRoom(ctx, store.NewRoom{Type: store.OneToOne, CreatorID: 1, Members: []int64{2}})
	ok(t, err)
	f.group = group(t, st, 1, 2, 3)  // created by 1: stays with 2 and 3
	f.channel = channel(t, st, 2, 1) // 1 subscribes: left
	f.alone = group(t, st, 1)        // only 1: deleted with them
	f.quiet = group(t, st, 3, 1)     // 1 is the only other member
	f.pairMsg = send(t, st, f.pair.ID, 2, "private")
	f.groupMsg = send(t, st, f.group.ID, 1, "said by one")
	f.otherMsg = send(t, st, f.group.ID, 2, "said by two")
	send(t, st, f.alone.ID, 1, "note to self")
	f.lonely = send(t, st, f.quiet.ID, 3, "only one gets this") // notification for 1 only
	res, err := st.SendMessage(ctx, store.NewMessage{RoomID: f.group.ID, SenderID: 2, Content: "fwd", ForwardedFromID: &f.pairMsg.ID})
	ok(t, err)
	f.forward = res.Message
	_, err = st.AddReaction(ctx, store.NewReaction{MessageID: f.otherMsg.ID, UserID: 1, Content: "+1", Notify: true})
	ok(t, err)
	_, err = st.AddReaction(ctx, store.NewReaction{MessageID: f.otherMsg.ID, UserID: 3, Content: "ok", Notify: true})
	ok(t, err)
	_, err = st.MarkRead(ctx, 1, []uuid.UUID{f.otherMsg.ID})
	ok(t, err)
	_, err = st.Acknowledge(ctx, 1, []uuid.UUID{f.otherMsg.ID})
	ok(t, err)
	_, err = st.CreateSession(ctx, store.NewSession{UserID: 1, ConnID: "c1"})
	ok(t, err)
	_, err = st.SetPermissions(ctx, f.channel.ID, []int64{1}, []store.Permission{store.PermSendMessages}, true)
	ok(t, err)
	_, err = st.SetRole(ctx, f.channel.ID, []int64{1}, true)
	ok(t, err)
	return f
}

func testDeleteUser(t *testing.T, st store.Store) {
	f := buildDeletion(t, st)
	res, err := st.DeleteUser(ctx, 1)
	ok(t, err)
	if want := sortedUUIDs(f.pair.ID, f.alone.ID); !slices.Equal(res.RoomsDeleted, want) {
		t.Fatalf("RoomsDeleted = %v, want %v", res.RoomsDeleted, want)
	}
	if want := sortedUUIDs(f.group.ID, f.channel.ID, f.quiet.ID); !slices.Equal(res.RoomsLeft, want) {
		t.Fatalf("RoomsLeft = %v, want %v", res.RoomsLeft, want)
	}

	// The row stays, anonymous.
	us, err := st.Users(ctx, []int64{1, 2})
	ok(t, err)
	want := store.User{ID: 1, Username: "deleted user 1", Deleted: true}
	if len(us) != 2 || us[0] != want || us[1].Deleted || us[1].Username != "user2" {
		t.Fatalf("Users = %+v, want %+v first", us, want)
	}
	if store.DeletedUsername(1) != want.Username || !store.IsDeletedUsername(want.Username) {
		t.Fatal("DeletedUsername and IsDeletedUsername disagree")
	}

	// Rooms: the pair and the room of one are gone with their messages.
	for _, r := range []store.Room{f.pair, f.alone} {
		_, err := st.Room(ctx, r.ID)
		wantErr(t, err, store.ErrNotFound)
	}
	if ms, err := st.Messages(ctx, []uuid.UUID{f.pairMsg.ID}); err != nil || len(ms) != 0 {
		t.Fatalf("the one-to-one message survived: %v, %v", ms, err)
	}
	if fw := oneView(t, st, f.forward.ID); fw.ForwardedFromID != nil || fw.ForwardedFrom != nil {
		t.Fatalf("forward still points at the deleted chat's message: %+v", fw.Message)
	}
	rooms, err := st.UserRoomIDs(ctx, 1)
	ok(t, err)
	if len(rooms) != 0 {
		t.Fatalf("UserRoomIDs(1) = %v, want none", rooms)
	}
	for r, members := range map[uuid.UUID][]int64{f.group.ID: {2, 3}, f.channel.ID: {2}, f.quiet.ID: {3}} {
		got, err := st.RoomMemberIDs(ctx, r)
		ok(t, err)
		if !slices.Equal(got, members) {
			t.Fatalf("members of %s = %v, want %v", r, got, members)
		}
		ms, err := st.Membership(ctx, r, 1)
		ok(t, err)
		if ms.IsMember || ms.IsAdmin || len(ms.Permissions) != 0 {
			t.Fatalf("membership of 1 in %s = %+v", r, ms)
		}
	}

	// Their messages in groups stay, with the anonymous sender; their
	// traces on other messages are gone.
	v := oneView(t, st, f.groupMsg.ID)
	if v.SenderID != 1 || v.Sender != want || v.Content != "said by one" {
		t.Fatalf("their group message = %+v by %+v", v.Message, v.Sender)
	}
	o := oneView(t, st, f.otherMsg.ID)
	if len(o.DeliveredTo) != 0 || len(o.ReadReceipts) != 0 || len(o.Reactions) != 1 || o.Reactions[0].UserID != 3 {
		t.Fatalf("other message keeps traces: delivered %v, receipts %+v, reactions %+v", o.DeliveredTo, o.ReadReceipts, o.Reactions)
	}
	if n := pending(t, st, 1); len(n) != 0 {
		t.Fatalf("pending notifications of the deleted user: %v", n)
	}
	// User 2 had the REACTION notification of user 1's reaction and the
	// NEW_MESSAGE of 1's message: only the latter stays.
	reactions := 0
	for _, n := range pending(t, st, 2)[f.group.ID] {
		if n.Type == store.NotifyReaction {
			reactions++
		}
	}
	if reactions != 1 {
		t.Fatalf("user 2 has %d REACTION notifications, want 1 (user 3's)", reactions)
	}
	sess, err := st.UserSessions(ctx, 1)
	ok(t, err)
	seen, err := st.LastSeen(ctx, []int64{1})
	ok(t, err)
	if len(sess) != 0 || len(seen) != 0 {
		t.Fatalf("sessions %v, last seen %v of the deleted user", sess, seen)
	}
	for _, prefix := range []string{"deleted", "user", "Last1", "First"} {
		found, err := st.SearchUsers(ctx, prefix, 0, 10)
		ok(t, err)
		if slices.Contains(ids(found), 1) {
			t.Fatalf("SearchUsers(%q) finds the deleted user", prefix)
		}
	}
	// A room they created lists them, anonymous.
	list, err := st.ListRooms(ctx, 2)
	ok(t, err)
	for _, it := range list {
		if it.ID == f.group.ID && (it.Creator == nil || *it.Creator != want) {
			t.Fatalf("creator of the group = %+v", it.Creator)
		}
	}
	d, err := st.RoomDetail(ctx, f.group.ID)
	ok(t, err)
	if d.Creator == nil || *d.Creator != want || slices.Contains(ids(d.Members), 1) || slices.Contains(ids(d.Admins), 1) {
		t.Fatalf("detail = creator %+v, members %v, admins %v", d.Creator, ids(d.Members), ids(d.Admins))
	}
	// The rooms that stay work: a system message reaches the others.
	sys, err := st.SendMessage(ctx, store.NewMessage{RoomID: f.group.ID, Content: "user1 left", Notify: true})
	ok(t, err)
	if sys.Notification == nil || !slices.Equal(sys.Notification.Recipients, []int64{2, 3}) {
		t.Fatalf("notification after the deletion = %+v", sys.Notification)
	}
}

func testDeletedUserRefused(t *testing.T, st store.Store) {
	f := buildDeletion(t, st)
	_, err := st.DeleteUser(ctx, 1)
	ok(t, err)

	// Deleting again changes nothing; an unknown id is not found.
	again, err := st.DeleteUser(ctx, 1)
	ok(t, err)
	if again.RoomsDeleted == nil || again.RoomsLeft == nil || len(again.RoomsDeleted)+len(again.RoomsLeft) != 0 {
		t.Fatalf("second DeleteUser = %+v, want empty lists", again)
	}
	_, err = st.DeleteUser(ctx, 404)
	wantErr(t, err, store.ErrNotFound)

	// No way back in.
	_, err = st.UpsertUser(ctx, store.User{ID: 1, Username: "user1", Email: "back@example.com"})
	wantErr(t, err, store.ErrUserDeleted)
	_, err = st.UpsertUser(ctx, store.User{ID: 9, Username: "deleted user 1"})
	wantErr(t, err, store.ErrUserDeleted)
	_, err = st.UpsertUser(ctx, store.User{ID: 9, Username: "deleted user 9"})
	wantErr(t, err, store.ErrUserDeleted)
	_, err = st.CreateUserByUsername(ctx, "deleted user 1")
	wantErr(t, err, store.ErrUserDeleted)
	us, err := st.Users(ctx, []int64{1, 9})
	ok(t, err)
	if len(us) != 1 || us[0] != (store.User{ID: 1, Username: "deleted user 1", Deleted: true}) {
		t.Fatalf("Users after the refused upserts = %+v", us)
	}
	_, err = st.CreateSession(ctx, store.NewSession{UserID: 1, ConnID: "c2"})
	wantErr(t, err, store.ErrUserDeleted)

	// The old username is free again, for a new user with a new id.
	nu, err := st.CreateUserByUsername(ctx, "user1")
	ok(t, err)
	if nu.ID == 1 || nu.Deleted {
		t.Fatalf("new user1 = %+v", nu)
	}
	// Names that merely look alike are fine.
	for _, name := range []string{"deleted user", "deleted user 01", "deleted user -1", "deleted user x", "deleted_user_1"} {
		if store.IsDeletedUsername(name) {
			t.Fatalf("IsDeletedUsername(%q) = true", name)
		}
	}

	// Rooms refuse them: AddMembers with a deleted id adds nobody (an
	// unknown id is still ErrNotFound, checked first).
	_, err = st.AddMembers(ctx, f.group.ID, []int64{4, 1})
	wantErr(t, err, store.ErrUserDeleted)
	wantValidation(t, err, "members", "User 1 has been deleted.")
	_, err = st.AddMembers(ctx, f.group.ID, []int64{1, 404})
	wantErr(t, err, store.ErrNotFound)
	members, err := st.RoomMemberIDs(ctx, f.group.ID)
	ok(t, err)
	if !slices.Equal(members, []int64{2, 3}) {
		t.Fatalf("members after the refused additions = %v", members)
	}
	_, err = st.CreateRoom(ctx, store.NewRoom{Type: store.OneToOne, CreatorID: 2, Members: []int64{1}})
	wantErr(t, err, store.ErrUserDeleted)
	wantValidation(t, err, "participants", "User 1 has been deleted.")
	_, err = st.CreateRoom(ctx, store.NewRoom{Type: store.Group, CreatorID: 1, Name: "back"})
	wantErr(t, err, store.ErrUserDeleted)
	// A group drops them, as it drops unknown ids.
	g, err := st.CreateRoom(ctx, store.NewRoom{Type: store.Group, CreatorID: 2, Name: "g2", Members: []int64{1, 3, 404}})
	ok(t, err)
	members, err = st.RoomMemberIDs(ctx, g.ID)
	ok(t, err)
	if !slices.Equal(members, []int64{2, 3}) {
		t.Fatalf("group members = %v, want [2 3]", members)
	}
}

// testConcurrentDeleteUser races DeleteUser with AddMembers of the same
// user: whatever the order, the deleted user ends up in no room.
func testConcurrentDeleteUser(t *testing.T, st store.Store) {
	users(t, st, 2)
	const rounds = 10
	for i := range rounds {
		id := int64(100 + i)
		_, err := st.UpsertUser(ctx, store.User{ID: id, Username: fmt.Sprintf("victim%d", i)})
		ok(t, err)
		g := group(t, st, 1, 2)
		var wg sync.WaitGroup
		var addErr, delErr error
		wg.Add(2)
		go func() { defer wg.Done(); _, addErr = st.AddMembers(ctx, g.ID, []int64{id}) }()
		go func() { defer wg.Done(); _, delErr = st.DeleteUser(ctx, id) }()
		wg.Wait()
		ok(t, delErr)
		if addErr != nil && !errors.Is(addErr, store.ErrUserDeleted) {
			t.Fatalf("AddMembers racing DeleteUser: %v", addErr)
		}
		rooms, err := st.UserRoomIDs(ctx, id)
		ok(t, err)
		members, err := st.RoomMemberIDs(ctx, g.ID)
		ok(t, err)
		if len(rooms) != 0 || slices.Contains(members, id) {
			t.Fatalf("round %d: the deleted user is in %v (members %v)", i, rooms, members)
		}
	}
}
