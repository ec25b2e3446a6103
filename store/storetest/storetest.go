// Package storetest is the conformance suite every store.Store
// implementation passes: the same behaviour, invariants, errors and
// orderings, checked against a fresh store per test.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(tb testing.TB) store.Store { return memory.New() })
//	}
//
// Bench runs the shared benchmarks (a send, a room list for a user in 200
// rooms, one page of 50 messages) against a factory.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux/store"
)

// Factory returns a fresh, empty store for one test or benchmark; it
// registers its own cleanup on tb.
type Factory func(tb testing.TB) store.Store

// Run runs the conformance suite against stores made by newStore.
func Run(t *testing.T, newStore Factory) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"Users", testUsers},
		{"SearchUsers", testSearchUsers},
		{"Sessions", testSessions},
		{"SessionsBounded", testSessionsBounded},
		{"Nodes", testNodes},
		{"Presence", testPresence},
		{"PresenceConcurrent", testPresenceConcurrent},
		{"PresenceOnConnect", testPresenceOnConnect},
		{"PresenceRooms", testPresenceRooms},
		{"PresenceDeletedUser", testPresenceDeletedUser},
		{"UserRoomSeqs", testUserRoomSeqs},
		{"CreateOneToOne", testCreateOneToOne},
		{"CreateGroupChannel", testCreateGroupChannel},
		{"CreateValidation", testCreateValidation},
		{"Membership", testMembership},
		{"AddRemoveMembers", testAddRemoveMembers},
		{"RolesPermissions", testRolesPermissions},
		{"UpdateDeleteRoom", testUpdateDeleteRoom},
		{"Send", testSend},
		{"SendValidation", testSendValidation},
		{"SendIdempotent", testSendIdempotent},
		{"MessageViews", testMessageViews},
		{"Pagination", testPagination},
		{"Seq", testSeqQueries},
		{"ListRooms", testListRooms},
		{"Acknowledge", testAcknowledge},
		{"MarkRead", testMarkRead},
		{"Reactions", testReactions},
		{"EditDelete", testEditDelete},
		{"Notifications", testNotifications},
		{"BadText", testBadText},
		{"ConcurrentSend", testConcurrentSend},
		{"ConcurrentIdempotent", testConcurrentIdempotent},
		{"ConcurrentOneToOne", testConcurrentOneToOne},
		{"ConcurrentCap", testConcurrentCap},
		{"ConcurrentAcknowledge", testConcurrentAcknowledge},
		{"ConcurrentDevUsers", testConcurrentDevUsers},
		{"ConcurrentReaction", testConcurrentReaction},
		{"SystemMessages", testSystemMessages},
		{"DeleteUser", testDeleteUser},
		{"DeletedUserRefused", testDeletedUserRefused},
		{"ConcurrentDeleteUser", testConcurrentDeleteUser},
		{"BatchConcurrentRetries", testBatchConcurrentRetries},
		{"BatchFailingRow", testBatchFailingRow},
		{"BatchCancel", testBatchCancel},
		{"BatchAckOverlap", testBatchAckOverlap},
		{"BatchAckCancel", testBatchAckCancel},
		{"CheckSender", testCheckSender},
		{"Offline", testOffline},
		{"WebhookOutbox", testWebhookOutbox},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

// ---- helpers ----

var ctx = context.Background()

func users(t testing.TB, st store.Store, n int) []store.User {
	t.Helper()
	out := make([]store.User, n)
	for i := range out {
		u, err := st.UpsertUser(ctx, store.User{
			ID: int64(i + 1), Username: fmt.Sprintf("user%d", i+1), Email: fmt.Sprintf("u%d@example.com", i+1),
			FirstName: "First", LastName: fmt.Sprintf("Last%d", i+1),
		})
		if err != nil {
			t.Fatalf("UpsertUser: %v", err)
		}
		out[i] = u
	}
	return out
}

func group(t testing.TB, st store.Store, creator int64, members ...int64) store.Room {
	t.Helper()
	r, err := st.CreateRoom(ctx, store.NewRoom{Type: store.Group, CreatorID: creator, Name: "g", Members: members})
	if err != nil {
		t.Fatalf("CreateRoom(group): %v", err)
	}
	return r
}

func channel(t testing.TB, st store.Store, creator int64, members ...int64) store.Room {
	t.Helper()
	r, err := st.CreateRoom(ctx, store.NewRoom{Type: store.Channel, CreatorID: creator, Name: "c", Members: members})
	if err != nil {
		t.Fatalf("CreateRoom(channel): %v", err)
	}
	return r
}

func send(t testing.TB, st store.Store, room uuid.UUID, sender int64, content string) store.Message {
	t.Helper()
	res, err := st.SendMessage(ctx, store.NewMessage{RoomID: room, SenderID: sender, Content: content, Notify: true})
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	return res.Message
}

func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

func wantValidation(t testing.TB, err error, field, msg string) {
	t.Helper()
	var ve *store.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error = %v (%T), want *store.ValidationError", err, err)
	}
	if ve.Field != field || (msg != "" && ve.Message != msg) {
		t.Fatalf("validation error = {%q, %q}, want {%q, %q}", ve.Field, ve.Message, field, msg)
	}
}

func ok(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

func ids(us []store.User) []int64 {
	out := make([]int64, len(us))
	for i, u := range us {
		out[i] = u.ID
	}
	return out
}

func viewIDs(vs []store.MessageView) []uuid.UUID {
	out := make([]uuid.UUID, len(vs))
	for i, v := range vs {
		out[i] = v.ID
	}
	return out
}

func msgIDs(ms []store.Message) []uuid.UUID {
	out := make([]uuid.UUID, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func seqs(vs []store.MessageView) []int64 {
	out := make([]int64, len(vs))
	for i, v := range vs {
		out[i] = v.Seq
	}
	return out
}

func oneView(t testing.TB, st store.Store, id uuid.UUID) store.MessageView {
	t.Helper()
	vs, err := st.MessageViews(ctx, []uuid.UUID{id})
	ok(t, err)
	if len(vs) != 1 {
		t.Fatalf("MessageViews(%s) returned %d views", id, len(vs))
	}
	return vs[0]
}

func pending(t testing.TB, st store.Store, user int64) map[uuid.UUID][]store.NotificationView {
	t.Helper()
	rns, err := st.PendingNotifications(ctx, user)
	ok(t, err)
	out := map[uuid.UUID][]store.NotificationView{}
	for _, rn := range rns {
		out[rn.RoomID] = rn.Notifications
	}
	return out
}

func checkTime(t testing.TB, what string, tm time.Time) {
	t.Helper()
	if tm.IsZero() || tm.Location() != time.UTC || tm.Nanosecond()%1000 != 0 {
		t.Fatalf("%s = %v: want non-zero UTC with microsecond precision", what, tm)
	}
	if d := time.Since(tm); d < -time.Minute || d > time.Minute {
		t.Fatalf("%s = %v: not close to now", what, tm)
	}
}

func ptr[T any](v T) *T { return &v }

// ---- users and sessions ----

func testUsers(t *testing.T, st store.Store) {
	u, err := st.UpsertUser(ctx, store.User{ID: 7, Username: "ann", Email: "a@x", FirstName: "Ann", LastName: "Lee"})
	ok(t, err)
	if u.ID != 7 || u.Username != "ann" {
		t.Fatalf("UpsertUser = %+v", u)
	}
	_, err = st.UpsertUser(ctx, store.User{ID: 7, Username: "annie", Email: "b@x"})
	ok(t, err)
	got, err := st.Users(ctx, []int64{7, 99, 7})
	ok(t, err)
	if len(got) != 1 || got[0].Username != "annie" || got[0].Email != "b@x" || got[0].FirstName != "" {
		t.Fatalf("Users after update = %+v", got)
	}
	_, err = st.UpsertUser(ctx, store.User{ID: 8, Username: "annie"})
	wantErr(t, err, store.ErrConflict)
	_, err = st.UpsertUser(ctx, store.User{ID: 0, Username: "zero"})
	wantErr(t, err, store.ErrInvalid)
	_, err = st.UpsertUser(ctx, store.User{ID: 9})
	wantErr(t, err, store.ErrInvalid)

	// The old username is free again after the rename.
	_, err = st.UpsertUser(ctx, store.User{ID: 8, Username: "ann"})
	ok(t, err)

	d1, err := st.CreateUserByUsername(ctx, "dev")
	ok(t, err)
	if d1.ID <= 0 || d1.ID == 8 || d1.Username != "dev" {
		t.Fatalf("CreateUserByUsername = %+v, want a fresh positive id", d1)
	}
	if got, err := st.Users(ctx, []int64{d1.ID}); err != nil || len(got) != 1 || got[0].Username != "dev" {
		t.Fatalf("Users(%d) = %+v, %v: the assigned id must belong to dev alone", d1.ID, got, err)
	}
	d2, err := st.CreateUserByUsername(ctx, "dev")
	ok(t, err)
	if d2 != d1 {
		t.Fatalf("CreateUserByUsername again = %+v, want %+v", d2, d1)
	}
	d3, err := st.CreateUserByUsername(ctx, "ann")
	ok(t, err)
	if d3.ID != 8 {
		t.Fatalf("CreateUserByUsername(existing ann) id = %d, want 8", d3.ID)
	}
	all, err := st.Users(ctx, []int64{d1.ID, 8, 7})
	ok(t, err)
	want := []int64{7, 8, d1.ID}
	slices.Sort(want)
	if !slices.Equal(ids(all), want) {
		t.Fatalf("Users order = %v", ids(all))
	}
}

func testSessions(t *testing.T, st store.Store) {
	us := users(t, st, 2)
	u := us[0]
	if seen, err := st.LastSeen(ctx, []int64{u.ID, 2, 99}); err != nil || len(seen) != 0 {
		t.Fatalf("LastSeen before any session = %v %v, want empty", seen, err)
	}
	s1, err := st.CreateSession(ctx, store.NewSession{UserID: u.ID, ConnID: "conn-1", NodeID: "node-a"})
	ok(t, err)
	s2, err := st.CreateSession(ctx, store.NewSession{UserID: u.ID, ConnID: "conn-2"})
	ok(t, err)
	if s1.ID == s2.ID || s1.ConnID != "conn-1" || s1.UserID != u.ID || s1.NodeID != "node-a" || s2.NodeID != "" {
		t.Fatalf("sessions = %+v %+v", s1, s2)
	}
	checkTime(t, "LastSeen", s1.LastSeen)
	checkTime(t, "Created", s1.Created)
	open, err := st.UserSessions(ctx, u.ID)
	ok(t, err)
	if len(open) != 2 || open[0].ID != s1.ID || open[1].ID != s2.ID || open[0].NodeID != "node-a" || open[0].ConnID != "conn-1" {
		t.Fatalf("UserSessions = %+v", open)
	}
	seen, err := st.LastSeen(ctx, []int64{u.ID, 2})
	ok(t, err)
	if len(seen) != 1 || seen[u.ID].Before(s1.LastSeen) {
		t.Fatalf("LastSeen after connect = %v, want user 1 at or after %v", seen, s1.LastSeen)
	}
	time.Sleep(2 * time.Millisecond)
	touched, err := st.TouchSession(ctx, s1.ID)
	ok(t, err)
	if !touched.After(s1.LastSeen) {
		t.Fatalf("TouchSession = %v, not after %v", touched, s1.LastSeen)
	}
	checkTime(t, "TouchSession", touched)
	if seen, _ := st.LastSeen(ctx, []int64{u.ID}); seen[u.ID].Before(touched) {
		t.Fatalf("LastSeen after heartbeat = %v, want at or after %v", seen[u.ID], touched)
	}

	// Closing deletes: the session is gone, closing again is not an
	// error, and the user's last seen time moves on.
	time.Sleep(2 * time.Millisecond)
	ok(t, st.CloseSession(ctx, s1.ID))
	ok(t, st.CloseSession(ctx, s1.ID))
	ok(t, st.CloseSession(ctx, 1<<40))
	_, err = st.TouchSession(ctx, s1.ID)
	wantErr(t, err, store.ErrNotFound)
	_, err = st.TouchSession(ctx, 1<<40)
	wantErr(t, err, store.ErrNotFound)
	if seen, _ := st.LastSeen(ctx, []int64{u.ID}); !seen[u.ID].After(touched) {
		t.Fatalf("LastSeen after close = %v, want after %v", seen[u.ID], touched)
	}
	open, err = st.UserSessions(ctx, u.ID)
	ok(t, err)
	if len(open) != 1 || open[0].ID != s2.ID {
		t.Fatalf("UserSessions after close = %+v", open)
	}
	_, err = st.TouchSession(ctx, s2.ID)
	ok(t, err)
	_, err = st.CreateSession(ctx, store.NewSession{UserID: 99, ConnID: "c"})
	wantErr(t, err, store.ErrConflict)
	_, err = st.CreateSession(ctx, store.NewSession{UserID: u.ID, ConnID: "c", NodeID: strings.Repeat("n", store.MaxNodeIDLen+1)})
	wantValidation(t, err, "node_id", "")
	if open, _ := st.UserSessions(ctx, 2); len(open) != 0 {
		t.Fatalf("UserSessions of a user without sessions = %+v", open)
	}
}

// testSessionsBounded: sessions do not accumulate. Connecting and
// disconnecting many times leaves no session behind, only the users'
// last seen times.
func testSessionsBounded(t *testing.T, st store.Store) {
	users(t, st, 3)
	for i := range 300 {
		uid := int64(i%3 + 1)
		s, err := st.CreateSession(ctx, store.NewSession{UserID: uid, ConnID: fmt.Sprint("c", i), NodeID: "n"})
		ok(t, err)
		ok(t, st.CloseSession(ctx, s.ID))
	}
	for uid := int64(1); uid <= 3; uid++ {
		if open, err := st.UserSessions(ctx, uid); err != nil || len(open) != 0 {
			t.Fatalf("user %d keeps sessions: %+v %v", uid, open, err)
		}
	}
	if n, err := st.RemoveNode(ctx, "n"); err != nil || n != 0 {
		t.Fatalf("RemoveNode of a node without sessions = %d %v", n, err)
	}
	if seen, err := st.LastSeen(ctx, []int64{1, 2, 3}); err != nil || len(seen) != 3 {
		t.Fatalf("LastSeen = %v %v, want 3 users", seen, err)
	}
}

// nodeAge is how long testNodes lets a heartbeat age; nodeMaxAge the bound
// it expires with. The margin between them is what a stalled test process
// could eat before a live heartbeat looked old.
const (
	nodeAge    = 600 * time.Millisecond
	nodeMaxAge = 300 * time.Millisecond
)

// testNodes: the sessions of a node whose heartbeat is older than the bound
// are expired by any node; a live node's sessions stay; a node that stops
// removes its own.
func testNodes(t *testing.T, st store.Store) {
	users(t, st, 3)
	wantValidation(t, st.TouchNode(ctx, ""), "node_id", store.MsgRequired)
	ok(t, st.TouchNode(ctx, "dead"))
	ok(t, st.TouchNode(ctx, "live"))
	ok(t, st.TouchNode(ctx, "stopping"))
	sess := func(uid int64, node string) store.Session {
		t.Helper()
		s, err := st.CreateSession(ctx, store.NewSession{UserID: uid, ConnID: fmt.Sprint("c-", uid, node), NodeID: node})
		ok(t, err)
		return s
	}
	dead1, dead2 := sess(1, "dead"), sess(2, "dead")
	live := sess(1, "live")
	orphan := sess(3, "") // no node: expires with its own LastSeen
	stopping := sess(3, "stopping")

	// Nothing is older than an hour.
	if n, err := st.ExpireNodes(ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("ExpireNodes(1h) = %d %v, want 0", n, err)
	}
	// "dead" stops beating; "live" and "stopping" go on, and so does the
	// orphan's connection (a heartbeat of its own).
	time.Sleep(nodeAge)
	ok(t, st.TouchNode(ctx, "live"))
	ok(t, st.TouchNode(ctx, "stopping"))
	_, err := st.TouchSession(ctx, orphan.ID)
	ok(t, err)
	n, err := st.ExpireNodes(ctx, nodeMaxAge)
	ok(t, err)
	if n != 2 {
		t.Fatalf("ExpireNodes = %d, want the 2 sessions of the dead node", n)
	}
	for _, s := range []store.Session{dead1, dead2} {
		_, err := st.TouchSession(ctx, s.ID)
		wantErr(t, err, store.ErrNotFound)
	}
	for _, s := range []store.Session{live, orphan, stopping} {
		if _, err := st.TouchSession(ctx, s.ID); err != nil {
			t.Fatalf("session %+v expired: %v", s, err)
		}
	}
	if seen, _ := st.LastSeen(ctx, []int64{2}); seen[2].Before(dead2.LastSeen) {
		t.Fatalf("LastSeen of an expired session's user = %v, want at or after %v", seen[2], dead2.LastSeen)
	}
	// The orphan is not touched again: it expires on its own LastSeen.
	time.Sleep(nodeAge)
	ok(t, st.TouchNode(ctx, "live"))
	ok(t, st.TouchNode(ctx, "stopping"))
	_, err = st.TouchSession(ctx, live.ID)
	ok(t, err)
	n, err = st.ExpireNodes(ctx, nodeMaxAge)
	ok(t, err)
	if n != 1 {
		t.Fatalf("second ExpireNodes = %d, want the orphan session", n)
	}
	if _, err := st.TouchSession(ctx, orphan.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("orphan session not expired: %v", err)
	}
	// A node that stops removes its sessions; the dead node's name can
	// come back (a restart) and starts empty.
	n, err = st.RemoveNode(ctx, "stopping")
	ok(t, err)
	if n != 1 {
		t.Fatalf("RemoveNode = %d, want 1", n)
	}
	if _, err := st.TouchSession(ctx, stopping.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session of a removed node: %v", err)
	}
	ok(t, st.TouchNode(ctx, "dead"))
	if open, _ := st.UserSessions(ctx, 1); len(open) != 1 || open[0].ID != live.ID {
		t.Fatalf("user 1's sessions = %+v, want only the live one", open)
	}
}

// ---- rooms ----

func testCreateOneToOne(t *testing.T, st store.Store) {
	us := users(t, st, 3)
	r, err := st.CreateRoom(ctx, store.NewRoom{Type: store.OneToOne, CreatorID: 1, Members: []int64{2}, Name: "ignored"})
	ok(t, err)
	if r.Type != store.OneToOne || r.Name != "" || r.CreatorID != 0 || r.MaxMembers != 0 || r.LastMessageID != nil || r.LastSeq != 0 {
		t.Fatalf("one-to-one room = %+v", r)
	}
	if r.Preferences == nil || len(r.Preferences) != 0 || r.Extra == nil {
		t.Fatalf("Preferences/Extra = %v %v, want empty objects", r.Preferences, r.Extra)
	}
	checkTime(t, "CreatedAt", r.CreatedAt)
	mem, err := st.RoomMemberIDs(ctx, r.ID)
	ok(t, err)
	if !slices.Equal(mem, []int64{1, 2}) {
		t.Fatalf("members = %v", mem)
	}
	for _, tc := range []struct {
		name    string
		creator int64
		members []int64
		want    error
		field   string
		message string
	}{
		{"same pair", 1, []int64{2}, store.ErrDuplicateOneToOne, "", store.MsgChatExists},
		{"reversed pair", 2, []int64{1}, store.ErrDuplicateOneToOne, "", store.MsgChatExists},
		{"self only", 1, []int64{1}, store.ErrOneToOneParticipants, "participants", store.MsgOneToOneTwo},
		{"nobody", 1, nil, store.ErrOneToOneParticipants, "participants", store.MsgOneToOneTwo},
		{"two others", 1, []int64{2, 3}, store.ErrOneToOneParticipants, "participants", store.MsgOneToOneTwo},
		{"unknown user", 1, []int64{42}, store.ErrUnknownUser, "participants", `Invalid pk "42" - object does not exist.`},
		{"unknown before too many", 1, []int64{2, 43, 42}, store.ErrUnknownUser, "participants", `Invalid pk "43" - object does not exist.`},
	} {
		_, err := st.CreateRoom(ctx, store.NewRoom{Type: store.OneToOne, CreatorID: tc.creator, Members: tc.members})
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: error = %v, want %v", tc.name, err, tc.want)
		}
		var ve *store.ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("%s: error %T is not a *ValidationError", tc.name, err)
			continue
		}
		if ve.Field != tc.field || ve.Message != tc.message {
			t.Errorf("%s: field, message = %q, %q, want %q, %q", tc.name, ve.Field, ve.Message, tc.field, tc.message)
		}
	}
	// A different pair is fine, and 2 is member of two chats.
	_, err = st.CreateRoom(ctx, store.NewRoom{Type: store.OneToOne, CreatorID: 3, Members: []int64{2, 3}})
	ok(t, err)
	rooms, err := st.UserRoomIDs(ctx, us[1].ID)
	ok(t, err)
	if len(rooms) != 2 {
		t.Fatalf("UserRoomIDs(2) = %v, want 2 rooms", rooms)
	}
	d, err := st.RoomDetail(ctx, r.ID)
	ok(t, err)
	if d.Creator != nil || len(d.Admins) != 0 || !slices.Equal(ids(d.Members), []int64{1, 2}) || d.Members[0].Username != "user1" {
		t.Fatalf("detail = %+v", d)
	}
}

func testCreateGroupChannel(t *testing.T, st store.Store) {
	users(t, st, 5)
	g, err := st.CreateRoom(ctx, store.NewRoom{
		Type: store.Group, CreatorID: 2, Name: "Friends", Description: "d", Avatar: "https://x/a.png",
		GroupLocked: true, JoinApprovalRequired: true, IsPublic: true,
		Members:     []int64{3, 4, 3, 2, 999},
		Preferences: store.JSON{"theme": "dark", "n": 1, "nested": map[string]any{"a": []any{1, "b"}}},
		Extra:       store.JSON{"priority": "high"},
	})
	ok(t, err)
	if g.Type != store.Group || g.Name != "Friends" || g.CreatorID != 2 || g.MaxMembers != store.DefaultMaxParticipants ||
		!g.GroupLocked || !g.JoinApprovalRequired || g.IsPublic || g.Description != "d" || g.Avatar != "https://x/a.png" {
		t.Fatalf("group = %+v", g)
	}
	if g.Preferences["theme"] != "dark" || g.Preferences["n"] != float64(1) || g.Extra["priority"] != "high" {
		t.Fatalf("preferences/extra = %v %v", g.Preferences, g.Extra)
	}
	d, err := st.RoomDetail(ctx, g.ID)
	ok(t, err)
	if !slices.Equal(ids(d.Members), []int64{2, 3, 4}) || !slices.Equal(ids(d.Admins), []int64{2}) || d.Creator == nil || d.Creator.ID != 2 {
		t.Fatalf("group detail members=%v admins=%v creator=%v", ids(d.Members), ids(d.Admins), d.Creator)
	}
	nested, _ := d.Preferences["nested"].(map[string]any)
	if arr, _ := nested["a"].([]any); len(arr) != 2 || arr[0] != float64(1) || arr[1] != "b" {
		t.Fatalf("nested preferences = %#v", d.Preferences["nested"])
	}
	// Returned objects are copies.
	d.Preferences["theme"] = "light"
	again, err := st.Room(ctx, g.ID)
	ok(t, err)
	if again.Preferences["theme"] != "dark" {
		t.Fatalf("store shares its preferences map with callers")
	}

	c, err := st.CreateRoom(ctx, store.NewRoom{Type: store.Channel, CreatorID: 1, Name: "News", IsPublic: true, GroupLocked: true, Members: []int64{5}})
	ok(t, err)
	if c.MaxMembers != store.DefaultMaxSubscribers || !c.IsPublic || c.GroupLocked || c.CreatorID != 1 {
		t.Fatalf("channel = %+v", c)
	}
	m, err := st.Membership(ctx, c.ID, 1)
	ok(t, err)
	if !m.IsMember || !m.IsAdmin || !m.Has(store.PermSendMessages) || !m.IsCreator(1) {
		t.Fatalf("channel creator membership = %+v", m)
	}

	// Caps: creator counts; only genuinely new ids count.
	_, err = st.CreateRoom(ctx, store.NewRoom{Type: store.Group, CreatorID: 1, Name: "small", MaxMembers: 3, Members: []int64{2, 3, 4}})
	wantErr(t, err, store.ErrCapExceeded)
	wantValidation(t, err, "participants", store.MsgGroupCap)
	_, err = st.CreateRoom(ctx, store.NewRoom{Type: store.Channel, CreatorID: 1, Name: "small", MaxMembers: 2, Members: []int64{2, 3}})
	wantErr(t, err, store.ErrCapExceeded)
	wantValidation(t, err, "subscribers", store.MsgChannelCap)
	small, err := st.CreateRoom(ctx, store.NewRoom{Type: store.Group, CreatorID: 1, Name: "small", MaxMembers: 3, Members: []int64{1, 2, 3, 2}})
	ok(t, err)
	if mem, _ := st.RoomMemberIDs(ctx, small.ID); !slices.Equal(mem, []int64{1, 2, 3}) {
		t.Fatalf("small members = %v", mem)
	}
	// A failed creation leaves nothing behind.
	rooms, err := st.UserRoomIDs(ctx, 4)
	ok(t, err)
	if len(rooms) != 1 || rooms[0] != g.ID {
		t.Fatalf("UserRoomIDs(4) = %v, want only the group", rooms)
	}
}

func testCreateValidation(t *testing.T, st store.Store) {
	users(t, st, 2)
	long := strings.Repeat("é", store.MaxRoomNameLen)
	for _, tc := range []struct {
		name  string
		in    store.NewRoom
		field string
		msg   string
	}{
		{"bad type", store.NewRoom{Type: "Forum", CreatorID: 1, Name: "x"}, "type", "Invalid resource type"},
		{"empty type", store.NewRoom{CreatorID: 1, Name: "x"}, "type", "Invalid resource type"},
		{"group without name", store.NewRoom{Type: store.Group, CreatorID: 1}, "name", store.MsgRequired},
		{"channel without name", store.NewRoom{Type: store.Channel, CreatorID: 1}, "name", store.MsgRequired},
		{"name too long", store.NewRoom{Type: store.Group, CreatorID: 1, Name: long + "x"}, "name", "Ensure this field has no more than 64 characters."},
		{"negative cap", store.NewRoom{Type: store.Group, CreatorID: 1, Name: "x", MaxMembers: -1}, "max_members", ""},
		{"no creator", store.NewRoom{Type: store.Group, Name: "x"}, "creator", ""},
		{"bad preferences", store.NewRoom{Type: store.Group, CreatorID: 1, Name: "x", Preferences: store.JSON{"f": func() {}}}, "preferences", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := st.CreateRoom(ctx, tc.in)
			wantErr(t, err, store.ErrInvalid)
			wantValidation(t, err, tc.field, tc.msg)
		})
	}
	r, err := st.CreateRoom(ctx, store.NewRoom{Type: store.Group, CreatorID: 1, Name: long})
	ok(t, err)
	if r.Name != long {
		t.Fatalf("64-character name not kept")
	}
	_, err = st.CreateRoom(ctx, store.NewRoom{Type: store.Group, CreatorID: 77, Name: "x"})
	if err == nil {
		t.Fatalf("CreateRoom with an unknown creator succeeded")
	}
	_, err = st.Room(ctx, uuid.New())
	wantErr(t, err, store.ErrNotFound)
	_, err = st.RoomDetail(ctx, uuid.New())
	wantErr(t, err, store.ErrNotFound)
	_, err = st.RoomMemberIDs(ctx, uuid.New())
	wantErr(t, err, store.ErrNotFound)
}

func testMembership(t *testing.T, st store.Store) {
	users(t, st, 4)
	g, err := st.CreateRoom(ctx, store.NewRoom{Type: store.Group, CreatorID: 1, Name: "g", GroupLocked: true, Members: []int64{2, 3}})
	ok(t, err)
	_, err = st.SetPermissions(ctx, g.ID, []int64{3}, []store.Permission{store.PermAddParticipants}, true)
	ok(t, err)
	for _, tc := range []struct {
		user           int64
		member, admin  bool
		add, remove    bool
		explicit       []store.Permission
		creator        bool
		sendInChannels bool
	}{
		{user: 1, member: true, admin: true, add: true, remove: true, explicit: []store.Permission{}, creator: true},
		{user: 2, member: true, explicit: []store.Permission{}},
		{user: 3, member: true, add: true, explicit: []store.Permission{store.PermAddParticipants}},
		{user: 4, explicit: []store.Permission{}},
	} {
		m, err := st.Membership(ctx, g.ID, tc.user)
		ok(t, err)
		if m.RoomID != g.ID || m.RoomType != store.Group || m.CreatorID != 1 || !m.GroupLocked || m.IsPublic ||
			m.IsMember != tc.member || m.IsAdmin != tc.admin || m.IsCreator(tc.user) != tc.creator ||
			m.Has(store.PermAddParticipants) != tc.add || m.Has(store.PermRemoveParticipants) != tc.remove ||
			m.Has(store.PermSendMessages) || !slices.Equal(m.Permissions, tc.explicit) {
			t.Errorf("Membership(user %d) = %+v", tc.user, m)
		}
	}
	_, err = st.Membership(ctx, uuid.New(), 1)
	wantErr(t, err, store.ErrNotFound)

	c := channel(t, st, 2, 1)
	missing := uuid.New()
	ms, err := st.Memberships(ctx, []uuid.UUID{g.ID, c.ID, missing}, 1)
	ok(t, err)
	if len(ms) != 2 || !ms[g.ID].IsAdmin || ms[c.ID].IsAdmin || !ms[c.ID].IsMember || ms[c.ID].RoomType != store.Channel {
		t.Fatalf("Memberships = %+v", ms)
	}
	if _, found := ms[missing]; found {
		t.Fatalf("Memberships reports a missing room")
	}
}

func testAddRemoveMembers(t *testing.T, st store.Store) {
	users(t, st, 6)
	g, err := st.CreateRoom(ctx, store.NewRoom{Type: store.Group, CreatorID: 1, Name: "g", MaxMembers: 4, Members: []int64{2}})
	ok(t, err)
	added, err := st.AddMembers(ctx, g.ID, []int64{3, 2, 3})
	ok(t, err)
	if !slices.Equal(added, []int64{3}) {
		t.Fatalf("added = %v, want [3]", added)
	}
	_, err = st.AddMembers(ctx, g.ID, []int64{4, 99})
	wantErr(t, err, store.ErrNotFound)
	_, err = st.AddMembers(ctx, g.ID, []int64{4, 5})
	wantErr(t, err, store.ErrCapExceeded)
	wantValidation(t, err, "participants", store.MsgGroupCap)
	if mem, _ := st.RoomMemberIDs(ctx, g.ID); !slices.Equal(mem, []int64{1, 2, 3}) {
		t.Fatalf("members after failed adds = %v", mem)
	}
	added, err = st.AddMembers(ctx, g.ID, []int64{4})
	ok(t, err)
	if !slices.Equal(added, []int64{4}) {
		t.Fatalf("added = %v", added)
	}
	// Joining again changes nothing.
	added, err = st.AddMembers(ctx, g.ID, []int64{4})
	ok(t, err)
	if len(added) != 0 {
		t.Fatalf("re-adding added %v", added)
	}

	// Removal strips role and explicit permissions.
	_, err = st.SetRole(ctx, g.ID, []int64{2}, true)
	ok(t, err)
	_, err = st.SetPermissions(ctx, g.ID, []int64{3}, []store.Permission{store.PermRemoveParticipants}, true)
	ok(t, err)
	res, err := st.RemoveMembers(ctx, store.RemoveMembers{RoomID: g.ID, ActorID: 2, UserIDs: []int64{1, 2, 3, 6}})
	ok(t, err)
	if !slices.Equal(res.Removed, []int64{2, 3}) || res.RoomDeleted {
		t.Fatalf("remove = %+v, want [2 3] (creator protected, non-member skipped)", res)
	}
	_, err = st.RemoveMembers(ctx, store.RemoveMembers{RoomID: g.ID, ActorID: 1, UserIDs: []int64{4, 100}})
	wantErr(t, err, store.ErrNotFound)
	if mem, _ := st.RoomMemberIDs(ctx, g.ID); !slices.Equal(mem, []int64{1, 4}) {
		t.Fatalf("members = %v, want [1 4]", mem)
	}
	_, err = st.AddMembers(ctx, g.ID, []int64{2, 3})
	ok(t, err)
	for _, u := range []int64{2, 3} {
		m, err := st.Membership(ctx, g.ID, u)
		ok(t, err)
		if m.IsAdmin || len(m.Permissions) != 0 || m.Has(store.PermRemoveParticipants) {
			t.Fatalf("re-added user %d kept role or permissions: %+v", u, m)
		}
	}
	if rooms, _ := st.UserRoomIDs(ctx, 3); len(rooms) != 1 {
		t.Fatalf("UserRoomIDs(3) = %v", rooms)
	}

	// The creator may leave; the last one out deletes the room.
	res, err = st.RemoveMembers(ctx, store.RemoveMembers{RoomID: g.ID, ActorID: 1, UserIDs: []int64{1}})
	ok(t, err)
	if !slices.Equal(res.Removed, []int64{1}) || res.RoomDeleted {
		t.Fatalf("creator leave = %+v", res)
	}
	send(t, st, g.ID, 2, "bye")
	res, err = st.RemoveMembers(ctx, store.RemoveMembers{RoomID: g.ID, ActorID: 2, UserIDs: []int64{2, 3, 4}})
	ok(t, err)
	if !res.RoomDeleted || len(res.Removed) != 3 {
		t.Fatalf("emptying remove = %+v", res)
	}
	_, err = st.Room(ctx, g.ID)
	wantErr(t, err, store.ErrNotFound)
	if rooms, _ := st.UserRoomIDs(ctx, 2); len(rooms) != 0 {
		t.Fatalf("UserRoomIDs(2) after delete = %v", rooms)
	}
	_, err = st.AddMembers(ctx, g.ID, []int64{2})
	wantErr(t, err, store.ErrNotFound)

	o, err := st.CreateRoom(ctx, store.NewRoom{Type: store.OneToOne, CreatorID: 5, Members: []int64{6}})
	ok(t, err)
	_, err = st.AddMembers(ctx, o.ID, []int64{1})
	wantErr(t, err, store.ErrWrongRoomType)
	_, err = st.RemoveMembers(ctx, store.RemoveMembers{RoomID: o.ID, ActorID: 5, UserIDs: []int64{5}})
	wantErr(t, err, store.ErrWrongRoomType)
	wantValidation(t, err, "", store.MsgMembersGroupChannel)

	c, err := st.CreateRoom(ctx, store.NewRoom{Type: store.Channel, CreatorID: 1, Name: "c", MaxMembers: 2})
	ok(t, err)
	_, err = st.AddMembers(ctx, c.ID, []int64{2, 3})
	wantValidation(t, err, "subscribers", store.MsgChannelCap)
}

func testRolesPermissions(t *testing.T, st store.Store) {
	users(t, st, 5)
	g := group(t, st, 1, 2, 3)
	changed, err := st.SetRole(ctx, g.ID, []int64{1, 2, 2, 4, 99}, true)
	ok(t, err)
	if !slices.Equal(changed, []int64{2}) {
		t.Fatalf("SetRole on = %v, want [2]", changed)
	}
	changed, err = st.SetRole(ctx, g.ID, []int64{2}, true)
	ok(t, err)
	if len(changed) != 0 {
		t.Fatalf("SetRole again changed %v", changed)
	}
	d, _ := st.RoomDetail(ctx, g.ID)
	if !slices.Equal(ids(d.Admins), []int64{1, 2}) {
		t.Fatalf("admins = %v", ids(d.Admins))
	}
	// The creator's role cannot be taken away.
	changed, err = st.SetRole(ctx, g.ID, []int64{1, 2}, false)
	ok(t, err)
	if !slices.Equal(changed, []int64{2}) {
		t.Fatalf("SetRole off = %v", changed)
	}
	if m, _ := st.Membership(ctx, g.ID, 1); !m.IsAdmin {
		t.Fatalf("creator lost admin")
	}

	// Explicit grants survive taking the role away.
	_, err = st.SetPermissions(ctx, g.ID, []int64{3}, []store.Permission{store.PermAddParticipants}, true)
	ok(t, err)
	_, err = st.SetRole(ctx, g.ID, []int64{3}, true)
	ok(t, err)
	_, err = st.SetRole(ctx, g.ID, []int64{3}, false)
	ok(t, err)
	m, _ := st.Membership(ctx, g.ID, 3)
	if !m.Has(store.PermAddParticipants) || m.Has(store.PermRemoveParticipants) {
		t.Fatalf("after role off: %+v", m)
	}
	changed, err = st.SetPermissions(ctx, g.ID, []int64{3, 4, 1}, []store.Permission{store.PermAddParticipants}, false)
	ok(t, err)
	if !slices.Equal(changed, []int64{3}) {
		t.Fatalf("revoke changed %v", changed)
	}
	if m, _ := st.Membership(ctx, g.ID, 3); m.Has(store.PermAddParticipants) {
		t.Fatalf("revoked permission still held")
	}

	_, err = st.SetPermissions(ctx, g.ID, []int64{2}, []store.Permission{store.PermSendMessages}, true)
	wantValidation(t, err, "permission", "Permission 'can_send_messages' is not a valid group chat permission")
	c := channel(t, st, 1, 2)
	_, err = st.SetPermissions(ctx, c.ID, []int64{2}, []store.Permission{store.PermSendMessages, store.PermAddParticipants}, true)
	wantValidation(t, err, "permission", "Permission 'can_add_new_participants' is not a valid channel permission")
	if m, _ := st.Membership(ctx, c.ID, 2); m.Has(store.PermSendMessages) {
		t.Fatalf("a failed grant granted something")
	}
	_, err = st.SetPermissions(ctx, c.ID, []int64{2}, []store.Permission{store.PermSendMessages}, true)
	ok(t, err)
	if m, _ := st.Membership(ctx, c.ID, 2); !m.Has(store.PermSendMessages) || m.Has(store.PermAddSubscribers) || !slices.Equal(m.Permissions, []store.Permission{store.PermSendMessages}) {
		t.Fatalf("channel grant: %+v", m)
	}
	_, err = st.SetRole(ctx, c.ID, []int64{2}, true)
	ok(t, err)
	d, _ = st.RoomDetail(ctx, c.ID)
	if !slices.Equal(ids(d.Admins), []int64{1, 2}) {
		t.Fatalf("moderators = %v", ids(d.Admins))
	}

	o, err := st.CreateRoom(ctx, store.NewRoom{Type: store.OneToOne, CreatorID: 4, Members: []int64{5}})
	ok(t, err)
	_, err = st.SetRole(ctx, o.ID, []int64{5}, true)
	wantErr(t, err, store.ErrWrongRoomType)
	_, err = st.SetPermissions(ctx, o.ID, []int64{5}, []store.Permission{store.PermSendMessages}, true)
	wantErr(t, err, store.ErrWrongRoomType)
	_, err = st.SetRole(ctx, uuid.New(), []int64{5}, true)
	wantErr(t, err, store.ErrNotFound)
}

func testUpdateDeleteRoom(t *testing.T, st store.Store) {
	users(t, st, 3)
	g, err := st.CreateRoom(ctx, store.NewRoom{Type: store.Group, CreatorID: 1, Name: "g", Description: "old",
		Preferences: store.JSON{"a": 1, "b": 2}, Extra: store.JSON{"x": 1, "y": 2}, Members: []int64{2}})
	ok(t, err)
	time.Sleep(time.Millisecond)
	u, err := st.UpdateRoom(ctx, g.ID, store.RoomUpdate{Name: ptr("new"), GroupLocked: ptr(true), IsPublic: ptr(true),
		Preferences: store.JSON{"c": 3}, Extra: store.JSON{"y": 20, "z": 30}})
	ok(t, err)
	if u.Name != "new" || u.Description != "old" || !u.GroupLocked || u.IsPublic || !u.UpdatedAt.After(g.UpdatedAt) {
		t.Fatalf("updated = %+v", u)
	}
	if len(u.Preferences) != 1 || u.Preferences["c"] != float64(3) {
		t.Fatalf("preferences not replaced: %v", u.Preferences)
	}
	if len(u.Extra) != 3 || u.Extra["x"] != float64(1) || u.Extra["y"] != float64(20) || u.Extra["z"] != float64(30) {
		t.Fatalf("extra not merged: %v", u.Extra)
	}
	got, _ := st.Room(ctx, g.ID)
	if got.Name != "new" || got.Preferences["c"] != float64(3) {
		t.Fatalf("update not persisted: %+v", got)
	}
	_, err = st.UpdateRoom(ctx, g.ID, store.RoomUpdate{Name: ptr(strings.Repeat("x", 65))})
	wantValidation(t, err, "name", "")
	_, err = st.UpdateRoom(ctx, g.ID, store.RoomUpdate{Name: ptr("")})
	wantValidation(t, err, "name", store.MsgRequired)
	_, err = st.UpdateRoom(ctx, uuid.New(), store.RoomUpdate{Name: ptr("x")})
	wantErr(t, err, store.ErrNotFound)

	o, err := st.CreateRoom(ctx, store.NewRoom{Type: store.OneToOne, CreatorID: 1, Members: []int64{2}})
	ok(t, err)
	ou, err := st.UpdateRoom(ctx, o.ID, store.RoomUpdate{Name: ptr("nope"), Preferences: store.JSON{"pinned": true}})
	ok(t, err)
	if ou.Name != "" || ou.Preferences["pinned"] != true {
		t.Fatalf("one-to-one update = %+v", ou)
	}

	// Delete: messages go, the one-to-one pair is free again.
	m := send(t, st, o.ID, 1, "hello")
	other := group(t, st, 3, 1)
	reply, err := st.SendMessage(ctx, store.NewMessage{RoomID: other.ID, SenderID: 1, Content: "re", ParentID: &m.ID})
	ok(t, err)
	ok(t, st.DeleteRoom(ctx, o.ID))
	wantErr(t, st.DeleteRoom(ctx, o.ID), store.ErrNotFound)
	if ms, _ := st.Messages(ctx, []uuid.UUID{m.ID}); len(ms) != 0 {
		t.Fatalf("message survived its room")
	}
	if v := oneView(t, st, reply.Message.ID); v.ParentID != nil || v.Parent != nil {
		t.Fatalf("reply still points at a deleted message")
	}
	if n := pending(t, st, 2); len(n) != 0 {
		t.Fatalf("notifications survived their room: %v", n)
	}
	_, err = st.CreateRoom(ctx, store.NewRoom{Type: store.OneToOne, CreatorID: 2, Members: []int64{1}})
	ok(t, err)
}

// ---- messages ----

func testSend(t *testing.T, st store.Store) {
	users(t, st, 3)
	g := group(t, st, 1, 2, 3)
	res, err := st.SendMessage(ctx, store.NewMessage{
		RoomID: g.ID, SenderID: 1, Content: "<p>hi</p>", Notify: true, Extra: store.JSON{"is_pinned": true},
		Attachments: []store.NewAttachment{
			{MediaURL: "https://x/1.png", MediaType: store.MediaImage, FileSize: 10, Caption: "one", Metadata: store.JSON{"w": 640}},
			{MediaURL: "https://x/2.pdf", MediaType: store.MediaFile, MimeType: "application/pdf"},
		},
	})
	ok(t, err)
	m := res.Message
	if res.Duplicate || m.Seq != 1 || m.RoomID != g.ID || m.SenderID != 1 || m.Content != "<p>hi</p>" ||
		m.IsEdited || m.IsDeleted || m.IsForwarded || m.Extra["is_pinned"] != true || m.ID.Version() != 4 {
		t.Fatalf("sent = %+v", m)
	}
	checkTime(t, "CreatedAt", m.CreatedAt)
	if len(res.Attachments) != 2 || res.Attachments[0].MimeType != store.DefaultMIMEType || res.Attachments[0].Caption != "one" ||
		res.Attachments[0].Metadata["w"] != float64(640) || res.Attachments[1].MimeType != "application/pdf" ||
		res.Attachments[1].Metadata == nil || res.Attachments[0].MessageID != m.ID {
		t.Fatalf("attachments = %+v", res.Attachments)
	}
	n := res.Notification
	if n == nil || n.Type != store.NotifyNewMessage || n.MessageID != m.ID || n.RoomID != g.ID || !slices.Equal(n.Recipients, []int64{2, 3}) {
		t.Fatalf("notification = %+v", n)
	}
	r, _ := st.Room(ctx, g.ID)
	if r.LastMessageID == nil || *r.LastMessageID != m.ID || r.LastSeq != 1 {
		t.Fatalf("room after send = %+v", r)
	}

	reply, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: 2, Content: "re", ParentID: &m.ID, Notify: true})
	ok(t, err)
	if reply.Message.Seq != 2 || reply.Notification == nil || reply.Notification.Type != store.NotifyReply ||
		!slices.Equal(reply.Notification.Recipients, []int64{1, 3}) || *reply.Message.ParentID != m.ID {
		t.Fatalf("reply = %+v / %+v", reply.Message, reply.Notification)
	}
	fwd, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: 3, Content: "fw", ForwardedFromID: &m.ID})
	ok(t, err)
	if !fwd.Message.IsForwarded || fwd.Notification != nil || fwd.Message.Seq != 3 {
		t.Fatalf("forward = %+v notification %v", fwd.Message, fwd.Notification)
	}

	// Alone in a room: no notification with no recipients.
	solo := group(t, st, 1)
	res, err = st.SendMessage(ctx, store.NewMessage{RoomID: solo.ID, SenderID: 1, Content: "x", Notify: true})
	ok(t, err)
	if res.Notification != nil || res.Message.Seq != 1 {
		t.Fatalf("solo send = %+v, notification %v", res.Message, res.Notification)
	}
	if n := pending(t, st, 1); len(n[solo.ID]) != 0 {
		t.Fatalf("solo notification stored")
	}
	_, err = st.SendMessage(ctx, store.NewMessage{RoomID: uuid.New(), SenderID: 1, Content: "x"})
	wantErr(t, err, store.ErrNotFound)
}

func testSendValidation(t *testing.T, st store.Store) {
	users(t, st, 2)
	g := group(t, st, 1, 2)
	base := send(t, st, g.ID, 1, "base")
	missing := uuid.New()
	for _, tc := range []struct {
		name  string
		mod   func(*store.NewMessage)
		want  error
		field string
	}{
		{"reply and forward", func(m *store.NewMessage) { m.ParentID, m.ForwardedFromID = &base.ID, &base.ID }, store.ErrConflict, ""},
		{"unknown parent", func(m *store.NewMessage) { m.ParentID = &missing }, store.ErrInvalid, "parent_message_id"},
		{"unknown forward", func(m *store.NewMessage) { m.ForwardedFromID = &missing }, store.ErrInvalid, "forwarded_from_id"},
		{"client id too long", func(m *store.NewMessage) { m.ClientMsgID = strings.Repeat("k", 65) }, store.ErrInvalid, "client_msg_id"},
		{"no room", func(m *store.NewMessage) { m.RoomID = uuid.Nil }, store.ErrInvalid, "room_id"},
		{"negative size", func(m *store.NewMessage) {
			m.Attachments = []store.NewAttachment{{MediaURL: "u", MediaType: store.MediaImage, FileSize: -1}}
		}, store.ErrInvalid, "file_size"},
		{"bad media type", func(m *store.NewMessage) {
			m.Attachments = []store.NewAttachment{{MediaURL: "u", MediaType: "sticker"}}
		}, store.ErrInvalid, "media_type"},
		{"bad mime", func(m *store.NewMessage) {
			m.Attachments = []store.NewAttachment{{MediaURL: "u", MediaType: store.MediaFile, MimeType: "application/x-sh"}}
		}, store.ErrInvalid, "mime_type"},
		{"no url", func(m *store.NewMessage) {
			m.Attachments = []store.NewAttachment{{MediaType: store.MediaFile}}
		}, store.ErrInvalid, "media_url"},
		{"second attachment bad", func(m *store.NewMessage) {
			m.Attachments = []store.NewAttachment{{MediaURL: "u", MediaType: store.MediaImage}, {MediaURL: "v", MediaType: store.MediaAudio, MimeType: "audio/flac"}}
		}, store.ErrInvalid, "mime_type"},
		{"bad extra", func(m *store.NewMessage) { m.Extra = store.JSON{"c": make(chan int)} }, store.ErrInvalid, "extra_fields"},
		{"unknown sender", func(m *store.NewMessage) { m.SenderID = 404 }, store.ErrConflict, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := store.NewMessage{RoomID: g.ID, SenderID: 1, Content: "x", Notify: true}
			tc.mod(&in)
			_, err := st.SendMessage(ctx, in)
			wantErr(t, err, tc.want)
			if tc.field != "" {
				wantValidation(t, err, tc.field, "")
			}
		})
	}
	// Nothing of the failed sends was stored.
	r, _ := st.Room(ctx, g.ID)
	if r.LastSeq != 1 || *r.LastMessageID != base.ID {
		t.Fatalf("failed sends changed the room: %+v", r)
	}
	if n := pending(t, st, 2); len(n[g.ID]) != 1 {
		t.Fatalf("failed sends left notifications: %d", len(n[g.ID]))
	}
	// Every MIME type of the allow-list is accepted, 64-character client ids too.
	var atts []store.NewAttachment
	for _, mt := range store.MIMETypes() {
		atts = append(atts, store.NewAttachment{MediaURL: "u", MediaType: store.MediaFile, MimeType: mt})
	}
	if len(atts) != 27 {
		t.Fatalf("allow-list has %d entries, want 27", len(atts))
	}
	res, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: 1, Attachments: atts, ClientMsgID: strings.Repeat("k", 64)})
	ok(t, err)
	if len(oneView(t, st, res.Message.ID).Attachments) != 27 {
		t.Fatalf("attachments not all stored")
	}
}

func testSendIdempotent(t *testing.T, st store.Store) {
	users(t, st, 2)
	g := group(t, st, 1, 2)
	first, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: 1, Content: "one", ClientMsgID: "c-1", Notify: true,
		Attachments: []store.NewAttachment{{MediaURL: "u", MediaType: store.MediaImage}}})
	ok(t, err)
	if first.Duplicate || first.Message.ClientMsgID != "c-1" {
		t.Fatalf("first = %+v", first)
	}
	again, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: 1, Content: "changed", ClientMsgID: "c-1", Notify: true})
	ok(t, err)
	if !again.Duplicate || again.Message.ID != first.Message.ID || again.Message.Content != "one" || again.Message.Seq != 1 ||
		len(again.Attachments) != 1 || again.Notification != nil {
		t.Fatalf("retry = %+v", again)
	}
	other, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: 2, Content: "two", ClientMsgID: "c-1"})
	ok(t, err)
	if other.Duplicate || other.Message.Seq != 2 {
		t.Fatalf("same key by another sender = %+v", other)
	}
	g2 := group(t, st, 1)
	elsewhere, err := st.SendMessage(ctx, store.NewMessage{RoomID: g2.ID, SenderID: 1, Content: "x", ClientMsgID: "c-1"})
	ok(t, err)
	if elsewhere.Duplicate {
		t.Fatalf("same key in another room treated as duplicate")
	}
	r, _ := st.Room(ctx, g.ID)
	if r.LastSeq != 2 {
		t.Fatalf("LastSeq = %d, want 2", r.LastSeq)
	}
	if n := pending(t, st, 2); len(n[g.ID]) != 1 {
		t.Fatalf("retry created a notification: %d", len(n[g.ID]))
	}
}

func testMessageViews(t *testing.T, st store.Store) {
	users(t, st, 3)
	g := group(t, st, 1, 2, 3)
	root := send(t, st, g.ID, 1, "root")
	res, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: 2, Content: "reply", ParentID: &root.ID,
		Attachments: []store.NewAttachment{{MediaURL: "a", MediaType: store.MediaVideo, MimeType: "video/mp4", FileSize: 5}}})
	ok(t, err)
	reply := res.Message
	res, err = st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: 3, Content: "reply2", ParentID: &reply.ID})
	ok(t, err)
	reply2 := res.Message
	res, err = st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: 3, Content: "fwd", ForwardedFromID: &reply2.ID})
	ok(t, err)
	fwd := res.Message

	_, err = st.Acknowledge(ctx, 3, []uuid.UUID{reply.ID})
	ok(t, err)
	_, err = st.Acknowledge(ctx, 1, []uuid.UUID{reply.ID})
	ok(t, err)
	_, err = st.MarkRead(ctx, 3, []uuid.UUID{reply.ID})
	ok(t, err)
	time.Sleep(time.Millisecond)
	_, err = st.MarkRead(ctx, 1, []uuid.UUID{reply.ID})
	ok(t, err)
	_, err = st.AddReaction(ctx, store.NewReaction{MessageID: reply.ID, UserID: 1, Content: "👍"})
	ok(t, err)
	time.Sleep(time.Millisecond)
	_, err = st.AddReaction(ctx, store.NewReaction{MessageID: reply.ID, UserID: 3, Content: "🎉"})
	ok(t, err)

	missing := uuid.New()
	vs, err := st.MessageViews(ctx, []uuid.UUID{fwd.ID, missing, reply.ID, root.ID, reply.ID})
	ok(t, err)
	if !slices.Equal(viewIDs(vs), []uuid.UUID{fwd.ID, reply.ID, root.ID}) {
		t.Fatalf("view order = %v", viewIDs(vs))
	}
	f, r, o := vs[0], vs[1], vs[2]
	if f.ForwardedFrom == nil || f.ForwardedFrom.ID != reply2.ID || f.ForwardedFrom.Parent == nil ||
		f.ForwardedFrom.Parent.ID != reply.ID || f.ForwardedFrom.Parent.Parent == nil || f.ForwardedFrom.Parent.Parent.ID != root.ID ||
		f.ForwardedFrom.Parent.Parent.Parent != nil || f.Parent != nil || !f.IsForwarded {
		t.Fatalf("forward chain not loaded recursively: %+v", f)
	}
	if r.Sender.Username != "user2" || r.Sender.LastName != "Last2" || r.Parent == nil || r.Parent.Content != "root" || r.Parent.Sender.ID != 1 {
		t.Fatalf("reply view = %+v", r)
	}
	if !slices.Equal(r.DeliveredTo, []string{"user1", "user3"}) {
		t.Fatalf("DeliveredTo = %v", r.DeliveredTo)
	}
	if len(r.ReadReceipts) != 2 || r.ReadReceipts[0].Reader.Username != "user3" || r.ReadReceipts[1].Reader.ID != 1 || r.ReadReceipts[0].MessageID != reply.ID {
		t.Fatalf("ReadReceipts = %+v", r.ReadReceipts)
	}
	checkTime(t, "ReadAt", r.ReadReceipts[0].ReadAt)
	if len(r.Reactions) != 2 || r.Reactions[0].Content != "👍" || r.Reactions[0].User.Username != "user1" || r.Reactions[1].User.ID != 3 {
		t.Fatalf("Reactions = %+v", r.Reactions)
	}
	if len(r.Attachments) != 1 || r.Attachments[0].MediaType != store.MediaVideo || r.Attachments[0].FileSize != 5 {
		t.Fatalf("Attachments = %+v", r.Attachments)
	}
	if o.DeliveredTo == nil || o.ReadReceipts == nil || o.Reactions == nil || o.Attachments == nil {
		t.Fatalf("empty lists must be empty, not nil: %+v", o)
	}
	// Soft-deleted messages are still loadable (nested parents show them).
	_, err = st.DeleteMessages(ctx, []uuid.UUID{root.ID}, false)
	ok(t, err)
	if v := oneView(t, st, reply.ID); v.Parent == nil || !v.Parent.IsDeleted {
		t.Fatalf("soft-deleted parent not loaded: %+v", v.Parent)
	}
	ms, err := st.Messages(ctx, []uuid.UUID{reply.ID, root.ID, missing})
	ok(t, err)
	if !slices.Equal(msgIDs(ms), []uuid.UUID{reply.ID, root.ID}) || !ms[1].IsDeleted || ms[0].RoomID != g.ID {
		t.Fatalf("Messages = %+v", ms)
	}
}

func testPagination(t *testing.T, st store.Store) {
	users(t, st, 2)
	g := group(t, st, 1, 2)
	empty, err := st.MessagesPage(ctx, g.ID, 1, 10)
	ok(t, err)
	if empty.Page != 1 || empty.Pages != 1 || empty.HasNext || empty.HasPrevious || len(empty.Messages) != 0 || empty.Messages == nil {
		t.Fatalf("empty page = %+v", empty)
	}
	var all []store.Message
	for i := range 12 {
		all = append(all, send(t, st, g.ID, int64(i%2+1), fmt.Sprint(i)))
	}
	// Deleted messages are not counted: 10 visible (seq 1..12 minus 4 and 12).
	_, err = st.DeleteMessages(ctx, []uuid.UUID{all[3].ID}, false)
	ok(t, err)
	_, err = st.DeleteMessages(ctx, []uuid.UUID{all[11].ID}, true)
	ok(t, err)
	for _, tc := range []struct {
		page, size     int
		wantPage       int
		wantSeqs       []int64
		next, previous bool
	}{
		{1, 5, 1, []int64{11, 10, 9, 8, 7}, true, false},
		{2, 5, 2, []int64{6, 5, 3, 2, 1}, false, true},
		{3, 5, 2, []int64{6, 5, 3, 2, 1}, false, true}, // past the end: last page, effective page echoed
		{-1, 5, 2, []int64{6, 5, 3, 2, 1}, false, true},
		{0, 5, 2, []int64{6, 5, 3, 2, 1}, false, true},
		{4, 3, 4, []int64{1}, false, true},
		{2, 3, 2, []int64{8, 7, 6}, true, true},
		{1, 100, 1, []int64{11, 10, 9, 8, 7, 6, 5, 3, 2, 1}, false, false},
		{7, 0, 1, []int64{11, 10, 9, 8, 7, 6, 5, 3, 2, 1}, false, false}, // size 0: everything
	} {
		p, err := st.MessagesPage(ctx, g.ID, tc.page, tc.size)
		ok(t, err)
		if p.Page != tc.wantPage || !slices.Equal(seqs(p.Messages), tc.wantSeqs) || p.HasNext != tc.next ||
			p.HasPrevious != tc.previous || p.Total != 10 {
			t.Errorf("page %d size %d = page %d seqs %v next %v prev %v total %d", tc.page, tc.size, p.Page, seqs(p.Messages), p.HasNext, p.HasPrevious, p.Total)
		}
	}
	p, _ := st.MessagesPage(ctx, g.ID, 1, 5)
	if p.Messages[0].Sender.Username != "user1" || p.Messages[0].Content != "10" || p.NextPage() != 2 || p.PreviousPage() != 0 || p.Pages != 2 {
		t.Fatalf("page content = %+v", p)
	}
	_, err = st.MessagesPage(ctx, g.ID, 1, -1)
	wantErr(t, err, store.ErrInvalid)
	_, err = st.MessagesPage(ctx, uuid.New(), 1, 5)
	wantErr(t, err, store.ErrNotFound)
}

// testUserRoomSeqs: a user's rooms with their latest seq, deleted messages
// included, 0 for a room without messages, ordered by room id.
func testUserRoomSeqs(t *testing.T, st store.Store) {
	users(t, st, 3)
	a, b, c := group(t, st, 1, 2), channel(t, st, 1), group(t, st, 2, 3)
	for range 3 {
		send(t, st, a.ID, 1, "x")
	}
	last := send(t, st, a.ID, 2, "y")
	_, err := st.DeleteMessages(ctx, []uuid.UUID{last.ID}, true)
	ok(t, err)
	send(t, st, c.ID, 2, "z")
	got, err := st.UserRoomSeqs(ctx, 1)
	ok(t, err)
	want := []store.RoomSeq{{RoomID: a.ID, Seq: 4}, {RoomID: b.ID, Seq: 0}}
	slices.SortFunc(want, func(x, y store.RoomSeq) int { return strings.Compare(string(x.RoomID[:]), string(y.RoomID[:])) })
	if !slices.Equal(got, want) {
		t.Fatalf("UserRoomSeqs(1) = %+v, want %+v", got, want)
	}
	if got, err := st.UserRoomSeqs(ctx, 99); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("UserRoomSeqs(unknown) = %#v %v, want empty", got, err)
	}
	ids, err := st.UserRoomIDs(ctx, 2)
	ok(t, err)
	seqs, err := st.UserRoomSeqs(ctx, 2)
	ok(t, err)
	if len(seqs) != len(ids) {
		t.Fatalf("UserRoomSeqs(2) = %+v, UserRoomIDs(2) = %v", seqs, ids)
	}
	for i := range ids {
		if seqs[i].RoomID != ids[i] {
			t.Fatalf("UserRoomSeqs(2) = %+v, not in the order of UserRoomIDs %v", seqs, ids)
		}
	}
}

func testSeqQueries(t *testing.T, st store.Store) {
	users(t, st, 1)
	g := group(t, st, 1)
	var ms []store.Message
	for i := range 8 {
		ms = append(ms, send(t, st, g.ID, 1, fmt.Sprint(i)))
	}
	_, err := st.DeleteMessages(ctx, []uuid.UUID{ms[4].ID}, false)
	ok(t, err)
	for _, tc := range []struct {
		after, before int64
		limit         int
		want          []int64
	}{
		{after: 0, limit: 3, want: []int64{1, 2, 3}},
		{after: 3, limit: 3, want: []int64{4, 6, 7}},
		{after: 6, limit: 10, want: []int64{7, 8}},
		{after: 8, limit: 10, want: []int64{}},
		{before: 9, limit: 3, want: []int64{8, 7, 6}},
		{before: 6, limit: 2, want: []int64{4, 3}},
		{before: 2, limit: 5, want: []int64{1}},
		{before: 1, limit: 5, want: []int64{}},
	} {
		var vs []store.MessageView
		if tc.before == 0 {
			vs, err = st.MessagesAfter(ctx, g.ID, tc.after, tc.limit)
		} else {
			vs, err = st.MessagesBefore(ctx, g.ID, tc.before, tc.limit)
		}
		ok(t, err)
		if !slices.Equal(seqs(vs), tc.want) {
			t.Errorf("after %d before %d limit %d = %v, want %v", tc.after, tc.before, tc.limit, seqs(vs), tc.want)
		}
	}
	_, err = st.MessagesAfter(ctx, g.ID, 0, 0)
	wantErr(t, err, store.ErrInvalid)
	_, err = st.MessagesBefore(ctx, uuid.New(), 5, 5)
	wantErr(t, err, store.ErrNotFound)
}

func testListRooms(t *testing.T, st store.Store) {
	users(t, st, 3)
	o, err := st.CreateRoom(ctx, store.NewRoom{Type: store.OneToOne, CreatorID: 1, Members: []int64{2}})
	ok(t, err)
	time.Sleep(2 * time.Millisecond)
	g := group(t, st, 1, 2)
	time.Sleep(2 * time.Millisecond)
	emptyRoom := channel(t, st, 3, 1)
	time.Sleep(2 * time.Millisecond)
	_ = group(t, st, 3) // not a member
	m1 := send(t, st, o.ID, 2, "o1")
	time.Sleep(2 * time.Millisecond)
	g1 := send(t, st, g.ID, 2, "g1")
	time.Sleep(2 * time.Millisecond)
	g2 := send(t, st, g.ID, 1, "g2") // own message: not unread
	time.Sleep(2 * time.Millisecond)
	m2 := send(t, st, o.ID, 2, "o2")

	list, err := st.ListRooms(ctx, 1)
	ok(t, err)
	order := func(l []store.RoomListItem) []uuid.UUID {
		var out []uuid.UUID
		for _, it := range l {
			out = append(out, it.ID)
		}
		return out
	}
	// o (o2) newest, then g (g2), then the empty channel (by creation time, after the messages).
	if !slices.Equal(order(list), []uuid.UUID{o.ID, g.ID, emptyRoom.ID}) {
		t.Fatalf("order = %v, want o, g, empty", order(list))
	}
	if list[0].Peer == nil || list[0].Peer.ID != 2 || list[0].Creator != nil || list[0].LastMessage == nil ||
		list[0].LastMessage.ID != m2.ID || list[0].LastMessage.Sender.Username != "user2" || list[0].UnreadCount != 2 {
		t.Fatalf("one-to-one item = %+v", list[0])
	}
	if list[1].Peer != nil || list[1].Creator == nil || list[1].Creator.ID != 1 || list[1].LastMessage.ID != g2.ID || list[1].UnreadCount != 1 || list[1].Name != "g" {
		t.Fatalf("group item = %+v", list[1])
	}
	if list[2].LastMessage != nil || list[2].UnreadCount != 0 || list[2].Creator.ID != 3 {
		t.Fatalf("empty channel item = %+v", list[2])
	}

	// Reading and deleting lower the unread counts; last_message falls back.
	_, err = st.MarkRead(ctx, 1, []uuid.UUID{m1.ID})
	ok(t, err)
	_, err = st.DeleteMessages(ctx, []uuid.UUID{m2.ID}, false)
	ok(t, err)
	_, err = st.DeleteMessages(ctx, []uuid.UUID{g2.ID}, true)
	ok(t, err)
	list, err = st.ListRooms(ctx, 1)
	ok(t, err)
	// g's last is now g1 (older than o1? no: o1 < g1), o's last is o1.
	if !slices.Equal(order(list), []uuid.UUID{g.ID, o.ID, emptyRoom.ID}) {
		t.Fatalf("order after deletes = %v", order(list))
	}
	if list[0].LastMessage == nil || list[0].LastMessage.ID != g1.ID || list[0].UnreadCount != 1 {
		t.Fatalf("group after hard delete = %+v", list[0])
	}
	if list[1].LastMessage == nil || list[1].LastMessage.ID != m1.ID || list[1].UnreadCount != 0 {
		t.Fatalf("one-to-one after soft delete = last %v unread %d", list[1].LastMessage, list[1].UnreadCount)
	}
	if r, _ := st.Room(ctx, o.ID); r.LastMessageID == nil || *r.LastMessageID != m1.ID {
		t.Fatalf("room LastMessageID not moved back")
	}
	_, err = st.DeleteMessages(ctx, []uuid.UUID{m1.ID}, false)
	ok(t, err)
	list, _ = st.ListRooms(ctx, 1)
	for _, it := range list {
		if it.ID == o.ID && (it.LastMessage != nil || it.LastMessageID != nil) {
			t.Fatalf("room with only deleted messages has last message %v", it.LastMessage)
		}
	}
	list2, err := st.ListRooms(ctx, 2)
	ok(t, err)
	if len(list2) != 2 {
		t.Fatalf("user 2 rooms = %d", len(list2))
	}
	for _, it := range list2 {
		if it.ID == o.ID && (it.Peer == nil || it.Peer.ID != 1) {
			t.Fatalf("peer for user 2 = %v", it.Peer)
		}
	}
	none, err := st.ListRooms(ctx, 99)
	ok(t, err)
	if len(none) != 0 {
		t.Fatalf("ListRooms(99) = %v", none)
	}
}

func testAcknowledge(t *testing.T, st store.Store) {
	users(t, st, 3)
	g := group(t, st, 1, 2, 3)
	a := send(t, st, g.ID, 1, "a")
	b := send(t, st, g.ID, 2, "b")
	deleted := send(t, st, g.ID, 1, "d")
	_, err := st.DeleteMessages(ctx, []uuid.UUID{deleted.ID}, false)
	ok(t, err)

	_, err = st.Acknowledge(ctx, 2, []uuid.UUID{a.ID, deleted.ID})
	wantErr(t, err, store.ErrNotFound)
	_, err = st.Acknowledge(ctx, 2, []uuid.UUID{a.ID, uuid.New()})
	wantErr(t, err, store.ErrNotFound)
	if v := oneView(t, st, a.ID); len(v.DeliveredTo) != 0 {
		t.Fatalf("failed ack changed delivered_to: %v", v.DeliveredTo)
	}
	acked, err := st.Acknowledge(ctx, 2, []uuid.UUID{b.ID, a.ID, a.ID})
	ok(t, err)
	if !slices.Equal(acked, []uuid.UUID{a.ID}) {
		t.Fatalf("acked = %v, want only a (own message skipped)", acked)
	}
	if v := oneView(t, st, a.ID); !slices.Equal(v.DeliveredTo, []string{"user2"}) {
		t.Fatalf("delivered_to = %v", v.DeliveredTo)
	}
	if v := oneView(t, st, b.ID); len(v.DeliveredTo) != 0 {
		t.Fatalf("own message delivered_to = %v", v.DeliveredTo)
	}
	if n := pending(t, st, 2); len(n[g.ID]) != 0 {
		t.Fatalf("user 2 still has %d notifications", len(n[g.ID]))
	}
	if n := pending(t, st, 3); len(n[g.ID]) != 2 {
		t.Fatalf("user 3 has %d notifications, want 2", len(n[g.ID]))
	}
	// Once the last recipient acknowledges, the notification row is gone:
	// user 1's notification of b is untouched, a's is deleted.
	_, err = st.Acknowledge(ctx, 3, []uuid.UUID{a.ID})
	ok(t, err)
	if n := pending(t, st, 3); len(n[g.ID]) != 1 || n[g.ID][0].Message.ID != b.ID {
		t.Fatalf("user 3 pending = %+v", n[g.ID])
	}
	if n := pending(t, st, 1); len(n[g.ID]) != 1 || n[g.ID][0].Message.ID != b.ID {
		t.Fatalf("user 1 pending = %+v", n[g.ID])
	}
	// Acknowledging twice is harmless.
	_, err = st.Acknowledge(ctx, 3, []uuid.UUID{a.ID})
	ok(t, err)
	if v := oneView(t, st, a.ID); !slices.Equal(v.DeliveredTo, []string{"user2", "user3"}) {
		t.Fatalf("delivered_to = %v", v.DeliveredTo)
	}
}

func testMarkRead(t *testing.T, st store.Store) {
	users(t, st, 2)
	g := group(t, st, 1, 2)
	a := send(t, st, g.ID, 1, "a")
	b := send(t, st, g.ID, 1, "b")
	own := send(t, st, g.ID, 2, "own")
	got, err := st.MarkRead(ctx, 2, []uuid.UUID{a.ID})
	ok(t, err)
	if len(got) != 1 || got[0].MessageID != a.ID || got[0].ReaderID != 2 || got[0].ID.Version() != 4 {
		t.Fatalf("MarkRead = %+v", got)
	}
	checkTime(t, "ReadAt", got[0].ReadAt)
	got, err = st.MarkRead(ctx, 2, []uuid.UUID{b.ID, a.ID, own.ID, b.ID})
	ok(t, err)
	if len(got) != 1 || got[0].MessageID != b.ID {
		t.Fatalf("second MarkRead = %+v, want only b", got)
	}
	got, err = st.MarkRead(ctx, 2, []uuid.UUID{a.ID, b.ID})
	ok(t, err)
	if len(got) != 0 {
		t.Fatalf("repeat MarkRead = %+v", got)
	}
	if v := oneView(t, st, a.ID); len(v.ReadReceipts) != 1 {
		t.Fatalf("receipts = %+v", v.ReadReceipts)
	}
	c := send(t, st, g.ID, 1, "c")
	_, err = st.DeleteMessages(ctx, []uuid.UUID{b.ID}, false)
	ok(t, err)
	_, err = st.MarkRead(ctx, 2, []uuid.UUID{c.ID, b.ID})
	wantErr(t, err, store.ErrNotFound)
	if v := oneView(t, st, c.ID); len(v.ReadReceipts) != 0 {
		t.Fatalf("failed MarkRead stored a receipt")
	}
	// Reading does not clear notifications (only acknowledging does).
	if n := pending(t, st, 2); len(n[g.ID]) != 2 {
		t.Fatalf("pending after read = %d, want 2 (a and c; b's went with b)", len(n[g.ID]))
	}
}

func testReactions(t *testing.T, st store.Store) {
	users(t, st, 3)
	g := group(t, st, 1, 2, 3)
	m := send(t, st, g.ID, 1, "m")
	_, err := st.Acknowledge(ctx, 2, []uuid.UUID{m.ID})
	ok(t, err)
	_, err = st.Acknowledge(ctx, 3, []uuid.UUID{m.ID})
	ok(t, err)

	r1, err := st.AddReaction(ctx, store.NewReaction{MessageID: m.ID, UserID: 2, Content: "👍", Notify: true})
	ok(t, err)
	if r1.UserID != 2 || r1.Content != "👍" || r1.MessageID != m.ID {
		t.Fatalf("reaction = %+v", r1)
	}
	checkTime(t, "reaction CreatedAt", r1.CreatedAt)
	n1 := pending(t, st, 1)[g.ID]
	if len(n1) != 1 || n1[0].Type != store.NotifyReaction {
		t.Fatalf("REACTION notification for 1 = %+v", n1)
	}
	if n := pending(t, st, 3)[g.ID]; len(n) != 1 {
		t.Fatalf("REACTION notification for 3 = %+v", n)
	}
	if n := pending(t, st, 2)[g.ID]; len(n) != 0 {
		t.Fatalf("the reactor is notified: %+v", n)
	}
	_, err = st.AddReaction(ctx, store.NewReaction{MessageID: m.ID, UserID: 2, Content: "👍", Notify: true})
	wantErr(t, err, store.ErrConflict)

	r2, err := st.AddReaction(ctx, store.NewReaction{MessageID: m.ID, UserID: 2, Content: "🎉", Notify: true})
	ok(t, err)
	if r2.ID == r1.ID {
		t.Fatalf("replacement kept the old id")
	}
	v := oneView(t, st, m.ID)
	if len(v.Reactions) != 1 || v.Reactions[0].Content != "🎉" {
		t.Fatalf("reactions after replace = %+v", v.Reactions)
	}
	if n := pending(t, st, 1)[g.ID]; len(n) != 1 {
		t.Fatalf("replacing left the old notification: %d", len(n))
	}
	_, err = st.AddReaction(ctx, store.NewReaction{MessageID: m.ID, UserID: 3, Content: "👍"})
	ok(t, err)

	removed, err := st.RemoveReaction(ctx, m.ID, 2)
	ok(t, err)
	if !removed {
		t.Fatalf("RemoveReaction = false")
	}
	if n := pending(t, st, 1)[g.ID]; len(n) != 0 {
		t.Fatalf("removing left the REACTION notification: %+v", n)
	}
	removed, err = st.RemoveReaction(ctx, m.ID, 2)
	ok(t, err)
	if removed {
		t.Fatalf("second RemoveReaction = true")
	}
	if v := oneView(t, st, m.ID); len(v.Reactions) != 1 || v.Reactions[0].UserID != 3 {
		t.Fatalf("reactions after remove = %+v", v.Reactions)
	}

	for _, tc := range []struct {
		name, content, msg string
	}{
		{"empty", "", store.MsgBlank},
		{"too long", strings.Repeat("a", 129), "Ensure this field has no more than 128 characters."},
	} {
		_, err := st.AddReaction(ctx, store.NewReaction{MessageID: m.ID, UserID: 1, Content: tc.content})
		wantValidation(t, err, "reaction_content", tc.msg)
	}
	_, err = st.AddReaction(ctx, store.NewReaction{MessageID: m.ID, UserID: 1, Content: strings.Repeat("é", 128)})
	ok(t, err)
	_, err = st.AddReaction(ctx, store.NewReaction{MessageID: uuid.New(), UserID: 1, Content: "x"})
	wantErr(t, err, store.ErrNotFound)
	_, err = st.DeleteMessages(ctx, []uuid.UUID{m.ID}, false)
	ok(t, err)
	_, err = st.AddReaction(ctx, store.NewReaction{MessageID: m.ID, UserID: 2, Content: "x"})
	wantErr(t, err, store.ErrNotFound)
	_, err = st.RemoveReaction(ctx, m.ID, 3)
	wantErr(t, err, store.ErrNotFound)
}

func testEditDelete(t *testing.T, st store.Store) {
	users(t, st, 2)
	g := group(t, st, 1, 2)
	res, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: 1, Content: "old", Extra: store.JSON{"a": 1, "b": 2}})
	ok(t, err)
	m := res.Message
	time.Sleep(time.Millisecond)
	e, err := st.EditMessage(ctx, m.ID, "new", store.JSON{"b": 3})
	ok(t, err)
	if e.Content != "new" || !e.IsEdited || e.Extra["a"] != float64(1) || e.Extra["b"] != float64(3) ||
		!e.UpdatedAt.After(m.UpdatedAt) || !e.CreatedAt.Equal(m.CreatedAt) || e.Seq != m.Seq {
		t.Fatalf("edited = %+v", e)
	}
	if v := oneView(t, st, m.ID); v.Content != "new" || !v.IsEdited {
		t.Fatalf("edit not persisted: %+v", v.Message)
	}
	_, err = st.EditMessage(ctx, uuid.New(), "x", nil)
	wantErr(t, err, store.ErrNotFound)

	a := send(t, st, g.ID, 1, "a")
	b := send(t, st, g.ID, 1, "b")
	reply, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: 2, Content: "r", ParentID: &b.ID, Notify: true})
	ok(t, err)
	_, err = st.AddReaction(ctx, store.NewReaction{MessageID: b.ID, UserID: 2, Content: "x", Notify: true})
	ok(t, err)

	// Soft delete: flag set, notifications gone, still loadable.
	del, err := st.DeleteMessages(ctx, []uuid.UUID{a.ID, uuid.New(), a.ID}, false)
	ok(t, err)
	if !slices.Equal(del, []uuid.UUID{a.ID}) {
		t.Fatalf("soft deleted = %v", del)
	}
	del, err = st.DeleteMessages(ctx, []uuid.UUID{a.ID}, false)
	ok(t, err)
	if len(del) != 0 {
		t.Fatalf("soft-deleting again = %v", del)
	}
	if ms, _ := st.Messages(ctx, []uuid.UUID{a.ID}); len(ms) != 1 || !ms[0].IsDeleted {
		t.Fatalf("soft-deleted message = %+v", ms)
	}
	_, err = st.EditMessage(ctx, a.ID, "x", nil)
	wantErr(t, err, store.ErrNotFound)
	for _, n := range pending(t, st, 2)[g.ID] {
		if n.Message.ID == a.ID {
			t.Fatalf("notification of a soft-deleted message kept")
		}
	}

	// Hard delete: row gone, references nulled, notifications gone.
	del, err = st.DeleteMessages(ctx, []uuid.UUID{b.ID}, true)
	ok(t, err)
	if !slices.Equal(del, []uuid.UUID{b.ID}) {
		t.Fatalf("hard deleted = %v", del)
	}
	if ms, _ := st.Messages(ctx, []uuid.UUID{b.ID}); len(ms) != 0 {
		t.Fatalf("hard-deleted message still there")
	}
	if v := oneView(t, st, reply.Message.ID); v.ParentID != nil || v.Parent != nil {
		t.Fatalf("reply keeps a dangling parent")
	}
	if n := pending(t, st, 1)[g.ID]; len(n) != 1 || n[0].Message.ID != reply.Message.ID {
		t.Fatalf("user 1 pending after hard delete = %+v", n)
	}
	r, _ := st.Room(ctx, g.ID)
	if *r.LastMessageID != reply.Message.ID || r.LastSeq != 4 {
		t.Fatalf("room after deletes = %+v", r)
	}
	_, err = st.DeleteMessages(ctx, []uuid.UUID{reply.Message.ID}, true)
	ok(t, err)
	r, _ = st.Room(ctx, g.ID)
	if r.LastMessageID == nil || *r.LastMessageID != m.ID {
		t.Fatalf("last message after deleting the newest = %v, want the edited first one", r.LastMessageID)
	}
	// seq keeps counting after deletes.
	if next := send(t, st, g.ID, 1, "next"); next.Seq != 5 {
		t.Fatalf("seq after deletes = %d, want 5", next.Seq)
	}
}

func testNotifications(t *testing.T, st store.Store) {
	users(t, st, 3)
	old := group(t, st, 1, 2)
	time.Sleep(time.Millisecond)
	newer := group(t, st, 3, 2)
	var sent []store.Message
	for i, r := range []uuid.UUID{newer.ID, old.ID, newer.ID, old.ID, old.ID} {
		sender := int64(1)
		if r == newer.ID {
			sender = 3
		}
		sent = append(sent, send(t, st, r, sender, fmt.Sprint(i)))
		time.Sleep(time.Millisecond)
	}
	rns, err := st.PendingNotifications(ctx, 2)
	ok(t, err)
	if len(rns) != 2 || rns[0].RoomID != old.ID || rns[1].RoomID != newer.ID {
		t.Fatalf("room order = %+v, want old (newest message) first", rns)
	}
	var got []uuid.UUID
	for _, n := range rns[0].Notifications {
		got = append(got, n.Message.ID)
		if n.Type != store.NotifyNewMessage || n.ID == uuid.Nil {
			t.Fatalf("notification = %+v", n)
		}
	}
	if !slices.Equal(got, []uuid.UUID{sent[4].ID, sent[3].ID, sent[1].ID}) {
		t.Fatalf("old room notifications not newest first")
	}
	if len(rns[1].Notifications) != 2 || rns[1].Notifications[0].Message.ID != sent[2].ID || rns[1].Notifications[0].Message.Sender.ID != 3 {
		t.Fatalf("newer room notifications = %+v", rns[1].Notifications)
	}
	if rns, _ := st.PendingNotifications(ctx, 3); len(rns) != 0 {
		t.Fatalf("sender has notifications: %+v", rns)
	}
	if rns, _ := st.PendingNotifications(ctx, 99); rns == nil || len(rns) != 0 {
		t.Fatalf("unknown user: %v", rns)
	}
}

// ---- concurrency ----

func parallel(n int, fn func(i int)) {
	done := make(chan struct{})
	start := make(chan struct{})
	for i := range n {
		go func() {
			defer func() { done <- struct{}{} }()
			<-start
			fn(i)
		}()
	}
	close(start)
	for range n {
		<-done
	}
}

func testConcurrentSend(t *testing.T, st store.Store) {
	users(t, st, 5)
	g := group(t, st, 1, 2, 3, 4, 5)
	const n = 50
	errs := make([]error, n)
	parallel(n, func(i int) {
		_, errs[i] = st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: int64(i%5 + 1), Content: fmt.Sprint(i), Notify: true})
	})
	for _, err := range errs {
		ok(t, err)
	}
	p, err := st.MessagesPage(ctx, g.ID, 1, 0)
	ok(t, err)
	got := seqs(p.Messages)
	slices.Sort(got)
	for i, s := range got {
		if s != int64(i+1) {
			t.Fatalf("seqs = %v: want 1..%d without gap or duplicate", got, n)
		}
	}
	if len(got) != n {
		t.Fatalf("%d messages stored, want %d", len(got), n)
	}
	// Newest first by seq, and created_at never goes backwards as seq grows.
	for i := 1; i < len(p.Messages); i++ {
		if p.Messages[i].CreatedAt.After(p.Messages[i-1].CreatedAt) {
			t.Fatalf("seq %d created at %v, after seq %d at %v", p.Messages[i].Seq, p.Messages[i].CreatedAt,
				p.Messages[i-1].Seq, p.Messages[i-1].CreatedAt)
		}
	}
	r, _ := st.Room(ctx, g.ID)
	if r.LastSeq != n || *r.LastMessageID != p.Messages[0].ID || p.Messages[0].Seq != n {
		t.Fatalf("room after concurrent sends: last seq %d, last message %v", r.LastSeq, r.LastMessageID)
	}
}

func testConcurrentIdempotent(t *testing.T, st store.Store) {
	users(t, st, 2)
	g := group(t, st, 1, 2)
	const n = 20
	res := make([]store.SendResult, n)
	errs := make([]error, n)
	parallel(n, func(i int) {
		res[i], errs[i] = st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: 1, Content: "once", ClientMsgID: "same", Notify: true})
	})
	dups := 0
	for i := range n {
		ok(t, errs[i])
		if res[i].Message.ID != res[0].Message.ID {
			t.Fatalf("different messages for one client_msg_id")
		}
		if res[i].Duplicate {
			dups++
		}
	}
	if dups != n-1 {
		t.Fatalf("%d duplicates, want %d", dups, n-1)
	}
	p, _ := st.MessagesPage(ctx, g.ID, 1, 0)
	if p.Total != 1 || p.Messages[0].Seq != 1 {
		t.Fatalf("stored %d messages", p.Total)
	}
	if n := pending(t, st, 2)[g.ID]; len(n) != 1 {
		t.Fatalf("%d notifications, want 1", len(n))
	}
}

func testConcurrentOneToOne(t *testing.T, st store.Store) {
	users(t, st, 2)
	const n = 10
	errs := make([]error, n)
	parallel(n, func(i int) {
		a, b := int64(1), int64(2)
		if i%2 == 1 {
			a, b = b, a
		}
		_, errs[i] = st.CreateRoom(ctx, store.NewRoom{Type: store.OneToOne, CreatorID: a, Members: []int64{b}})
	})
	created := 0
	for _, err := range errs {
		switch {
		case err == nil:
			created++
		case errors.Is(err, store.ErrDuplicateOneToOne):
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	rooms, _ := st.UserRoomIDs(ctx, 1)
	if created != 1 || len(rooms) != 1 {
		t.Fatalf("created %d one-to-one chats (%d rooms), want 1", created, len(rooms))
	}
}

func testConcurrentCap(t *testing.T, st store.Store) {
	users(t, st, 12)
	g, err := st.CreateRoom(ctx, store.NewRoom{Type: store.Group, CreatorID: 1, Name: "g", MaxMembers: 6})
	ok(t, err)
	errs := make([]error, 11)
	parallel(11, func(i int) {
		_, errs[i] = st.AddMembers(ctx, g.ID, []int64{int64(i + 2)})
	})
	added := 0
	for _, err := range errs {
		switch {
		case err == nil:
			added++
		case errors.Is(err, store.ErrCapExceeded):
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	mem, _ := st.RoomMemberIDs(ctx, g.ID)
	if added != 5 || len(mem) != 6 {
		t.Fatalf("added %d, members %v: want 5 added, 6 members", added, mem)
	}
}

func testBadText(t *testing.T, st store.Store) {
	users(t, st, 2)
	g := group(t, st, 1, 2)
	m := send(t, st, g.ID, 1, "ok")
	nul, bad := "a\x00b", "a\xffb"
	for _, tc := range []struct {
		name string
		fn   func() error
	}{
		{"username NUL", func() error { _, err := st.UpsertUser(ctx, store.User{ID: 9, Username: nul}); return err }},
		{"username invalid UTF-8", func() error { _, err := st.UpsertUser(ctx, store.User{ID: 9, Username: bad}); return err }},
		{"email NUL", func() error { _, err := st.UpsertUser(ctx, store.User{ID: 9, Username: "x", Email: nul}); return err }},
		{"dev username", func() error { _, err := st.CreateUserByUsername(ctx, nul); return err }},
		{"conn id", func() error { _, err := st.CreateSession(ctx, store.NewSession{UserID: 1, ConnID: nul}); return err }},
		{"room name", func() error {
			_, err := st.CreateRoom(ctx, store.NewRoom{Type: store.Group, CreatorID: 1, Name: nul})
			return err
		}},
		{"room description update", func() error { _, err := st.UpdateRoom(ctx, g.ID, store.RoomUpdate{Description: ptr(bad)}); return err }},
		{"preferences NUL", func() error {
			_, err := st.UpdateRoom(ctx, g.ID, store.RoomUpdate{Preferences: store.JSON{"k": nul}})
			return err
		}},
		{"content", func() error {
			_, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: 1, Content: nul})
			return err
		}},
		{"caption", func() error {
			_, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: 1,
				Attachments: []store.NewAttachment{{MediaURL: "u", MediaType: store.MediaImage, Caption: bad}}})
			return err
		}},
		{"extra NUL", func() error {
			_, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: 1, Extra: store.JSON{"x": []any{nul}}})
			return err
		}},
		{"edit", func() error { _, err := st.EditMessage(ctx, m.ID, nul, nil); return err }},
		{"reaction", func() error {
			_, err := st.AddReaction(ctx, store.NewReaction{MessageID: m.ID, UserID: 2, Content: bad})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, tc.fn(), store.ErrInvalid)
		})
	}
	if r, _ := st.Room(ctx, g.ID); r.LastSeq != 1 || r.Description != "" {
		t.Fatalf("bad input changed the room: %+v", r)
	}
	// Each text field is reported under its own name.
	for _, tc := range []struct {
		field string
		fn    func() error
	}{
		{"name", func() error {
			_, err := st.CreateRoom(ctx, store.NewRoom{Type: store.Group, CreatorID: 1, Name: nul})
			return err
		}},
		{"description", func() error {
			_, err := st.CreateRoom(ctx, store.NewRoom{Type: store.Group, CreatorID: 1, Name: "n", Description: nul})
			return err
		}},
		{"avatar", func() error {
			_, err := st.CreateRoom(ctx, store.NewRoom{Type: store.Channel, CreatorID: 1, Name: "n", Avatar: nul})
			return err
		}},
		{"description", func() error { _, err := st.UpdateRoom(ctx, g.ID, store.RoomUpdate{Description: ptr(nul)}); return err }},
		{"name", func() error { _, err := st.UpdateRoom(ctx, g.ID, store.RoomUpdate{Name: ptr(bad)}); return err }},
		{"avatar", func() error { _, err := st.UpdateRoom(ctx, g.ID, store.RoomUpdate{Avatar: ptr(nul)}); return err }},
		{"email", func() error { _, err := st.UpsertUser(ctx, store.User{ID: 9, Username: "x", Email: nul}); return err }},
		{"media_url", func() error {
			_, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: 1,
				Attachments: []store.NewAttachment{{MediaURL: nul, MediaType: store.MediaImage}}})
			return err
		}},
		{"caption", func() error {
			_, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: 1,
				Attachments: []store.NewAttachment{{MediaURL: "u", MediaType: store.MediaImage, Caption: nul}}})
			return err
		}},
	} {
		wantValidation(t, tc.fn(), tc.field, "")
	}
}

func testConcurrentAcknowledge(t *testing.T, st store.Store) {
	users(t, st, 10)
	g := group(t, st, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	a := send(t, st, g.ID, 1, "a")
	b := send(t, st, g.ID, 2, "b")
	errs := make([]error, 10)
	parallel(10, func(i int) {
		_, errs[i] = st.Acknowledge(ctx, int64(i+1), []uuid.UUID{b.ID, a.ID})
	})
	for _, err := range errs {
		ok(t, err)
	}
	if v := oneView(t, st, a.ID); len(v.DeliveredTo) != 9 {
		t.Fatalf("delivered_to of a = %v, want 9 users", v.DeliveredTo)
	}
	for u := int64(1); u <= 10; u++ {
		if n := pending(t, st, u); len(n) != 0 {
			t.Fatalf("user %d still has notifications: %+v", u, n)
		}
	}
}

func testConcurrentReaction(t *testing.T, st store.Store) {
	users(t, st, 6)
	g := group(t, st, 1, 2, 3, 4, 5, 6)
	m := send(t, st, g.ID, 1, "m")
	// The same user, the same emoji, from several devices: one reaction.
	errs := make([]error, 8)
	parallel(8, func(i int) {
		_, errs[i] = st.AddReaction(ctx, store.NewReaction{MessageID: m.ID, UserID: 2, Content: "👍", Notify: true})
	})
	okCount := 0
	for _, err := range errs {
		switch {
		case err == nil:
			okCount++
		case errors.Is(err, store.ErrConflict):
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if okCount != 1 {
		t.Fatalf("%d reactions succeeded, want 1", okCount)
	}
	// Five users at once: five reactions.
	parallel(5, func(i int) {
		errs[i] = nil
		if i+2 != 2 {
			_, errs[i] = st.AddReaction(ctx, store.NewReaction{MessageID: m.ID, UserID: int64(i + 2), Content: "🎉"})
		}
	})
	for _, err := range errs[:5] {
		ok(t, err)
	}
	if v := oneView(t, st, m.ID); len(v.Reactions) != 5 {
		t.Fatalf("%d reactions, want 5", len(v.Reactions))
	}
	if n := pending(t, st, 1)[g.ID]; len(n) != 1 || n[0].Type != store.NotifyReaction {
		t.Fatalf("user 1 (the author) has %+v, want one REACTION notification", n)
	}
}

func testConcurrentDevUsers(t *testing.T, st store.Store) {
	const n = 12
	got := make([]store.User, n)
	errs := make([]error, n)
	parallel(n, func(i int) {
		// Half ask for the same name, half for names of their own.
		name := "same"
		if i%2 == 1 {
			name = fmt.Sprintf("dev%d", i)
		}
		got[i], errs[i] = st.CreateUserByUsername(ctx, name)
	})
	ids := map[int64]string{}
	for i := range n {
		ok(t, errs[i])
		if prev, seen := ids[got[i].ID]; seen && prev != got[i].Username {
			t.Fatalf("id %d given to %q and %q", got[i].ID, prev, got[i].Username)
		}
		ids[got[i].ID] = got[i].Username
	}
	if len(ids) != n/2+1 {
		t.Fatalf("%d distinct users, want %d", len(ids), n/2+1)
	}
}
