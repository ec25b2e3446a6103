package postgres_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/chatmux/chatmux/store"
	"github.com/chatmux/chatmux/store/postgres"
)

// traces counts, in every table of the store's schema (read from
// information_schema, so that a table added later is covered too), the
// rows whose text form contains one of needles, case-insensitively. It
// returns the count per table that has any, and the tables it searched.
func traces(t *testing.T, st *postgres.Store, needles []string) (found map[string]int, tables []string) {
	t.Helper()
	if err := st.DB().SelectContext(ctx, &tables, `
		SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`); err != nil {
		t.Fatal(err)
	}
	patterns := make(pq.StringArray, len(needles))
	for i, n := range needles {
		patterns[i] = "%" + n + "%"
	}
	found = map[string]int{}
	for _, table := range tables {
		var n int
		q := fmt.Sprintf(`SELECT count(*) FROM %s AS t WHERE t::text ILIKE ANY($1)`, pq.QuoteIdentifier(table))
		if err := st.DB().GetContext(ctx, &n, q, patterns); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		if n > 0 {
			found[table] = n
		}
	}
	return found, tables
}

// TestDeleteUserLeavesNoPersonalData gives a user distinctive personal
// data, lets them do everything a user does, deletes them, and then
// searches every table of the schema for that data.
func TestDeleteUserLeavesNoPersonalData(t *testing.T) {
	st := newPGStore(t)
	target := store.User{ID: 7, Username: "zebulon_qx", Email: "zebulon.private@mail.example", FirstName: "Xanthippe", LastName: "Vondrakova"}
	needles := []string{target.Username, target.Email, target.FirstName, target.LastName}
	mustDo := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := st.UpsertUser(ctx, target)
	mustDo(err)
	for _, u := range []store.User{{ID: 8, Username: "peer"}, {ID: 9, Username: "third"}} {
		_, err := st.UpsertUser(ctx, u)
		mustDo(err)
	}
	pair, err := st.CreateRoom(ctx, store.NewRoom{Type: store.OneToOne, CreatorID: 7, Members: []int64{8}})
	mustDo(err)
	g, err := st.CreateRoom(ctx, store.NewRoom{Type: store.Group, CreatorID: 7, Name: "g", Members: []int64{8, 9}})
	mustDo(err)
	ch, err := st.CreateRoom(ctx, store.NewRoom{Type: store.Channel, CreatorID: 8, Name: "c", Members: []int64{7}})
	mustDo(err)
	var theirs, others []uuid.UUID
	for _, r := range []uuid.UUID{pair.ID, g.ID} {
		res, err := st.SendMessage(ctx, store.NewMessage{RoomID: r, SenderID: 7, Content: "mine", ClientMsgID: "k-" + r.String(), Notify: true,
			Attachments: []store.NewAttachment{{MediaURL: "https://cdn.example/a.png", MediaType: store.MediaImage, Caption: "a photo"}}})
		mustDo(err)
		theirs = append(theirs, res.Message.ID)
		res, err = st.SendMessage(ctx, store.NewMessage{RoomID: r, SenderID: 8, Content: "yours", Notify: true})
		mustDo(err)
		others = append(others, res.Message.ID)
	}
	for _, id := range others {
		_, err = st.AddReaction(ctx, store.NewReaction{MessageID: id, UserID: 7, Content: "+1", Notify: true})
		mustDo(err)
	}
	_, err = st.MarkRead(ctx, 7, others)
	mustDo(err)
	_, err = st.Acknowledge(ctx, 7, others[1:])
	mustDo(err)
	_, err = st.SetPermissions(ctx, ch.ID, []int64{7}, []store.Permission{store.PermSendMessages}, true)
	mustDo(err)
	_, err = st.SetRole(ctx, ch.ID, []int64{7}, true)
	mustDo(err)
	_, err = st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, Content: "system line", Notify: true})
	mustDo(err)
	// Offline webhook events waiting in the outbox: one for 7 and 9 (the
	// group), one for 7 alone (the channel).
	for _, r := range []uuid.UUID{g.ID, ch.ID} {
		res, err := st.SendMessage(ctx, store.NewMessage{RoomID: r, SenderID: 8, Content: "while away", Offline: time.Hour, OutboxLease: time.Minute})
		mustDo(err)
		if res.OutboxID == 0 {
			t.Fatalf("no outbox row for the send to %s", r)
		}
	}
	mustDo(st.TouchNode(ctx, "node-1"))
	_, err = st.CreateSession(ctx, store.NewSession{UserID: 7, ConnID: "conn-1", NodeID: "node-1", MarkOnline: true})
	mustDo(err)

	// The search finds the data while the user exists (it can fail).
	before, tables := traces(t, st, needles)
	for _, want := range []string{"users", "messages", "memberships", "notifications", "sessions", "reactions", "read_receipts", "deliveries", "rooms", "attachments", "nodes"} {
		if !slices.Contains(tables, want) {
			t.Fatalf("table %s not searched (tables %v)", want, tables)
		}
	}
	if before["users"] != 1 {
		t.Fatalf("before the deletion: traces %v, want the users row", before)
	}

	res, err := st.DeleteUser(ctx, 7)
	mustDo(err)
	if !slices.Equal(res.RoomsDeleted, []uuid.UUID{pair.ID}) || !slices.Equal(res.RoomsLeft, sortedIDs(g.ID, ch.ID)) {
		t.Fatalf("DeleteUser = %+v", res)
	}
	after, _ := traces(t, st, needles)
	if len(after) != 0 {
		t.Fatalf("personal data of the deleted user left in %v", after)
	}
	// Nor their id where it meant them: in no recipient list, no row
	// that references the user but the messages they sent in the group
	// and the group they created.
	var refs int
	mustDo(st.DB().GetContext(ctx, &refs, `
		SELECT (SELECT count(*) FROM notifications WHERE recipients @> ARRAY[7::bigint])
		     + (SELECT count(*) FROM memberships WHERE user_id = 7)
		     + (SELECT count(*) FROM sessions WHERE user_id = 7)
		     + (SELECT count(*) FROM presence WHERE user_id = 7)
		     + (SELECT count(*) FROM reactions WHERE user_id = 7)
		     + (SELECT count(*) FROM read_receipts WHERE reader_id = 7)
		     + (SELECT count(*) FROM deliveries WHERE user_id = 7)
		     + (SELECT count(*) FROM rooms WHERE pair_a = 7 OR pair_b = 7)
		     + (SELECT count(*) FROM users WHERE id = 7 AND last_seen IS NOT NULL)
		     + (SELECT count(*) FROM webhook_outbox WHERE recipients @> ARRAY[7::bigint])`))
	if refs != 0 {
		t.Fatalf("%d rows still reference the deleted user", refs)
	}
	var waiting []string
	mustDo(st.DB().SelectContext(ctx, &waiting, `SELECT recipients::text FROM webhook_outbox ORDER BY id`))
	if !slices.Equal(waiting, []string{"{9}"}) {
		t.Fatalf("webhook outbox after the deletion: %v, want the group's event for 9 alone", waiting)
	}
	var kept int
	mustDo(st.DB().GetContext(ctx, &kept, `SELECT count(*) FROM messages WHERE sender_id = 7`))
	if kept != 1 {
		t.Fatalf("%d messages of the deleted user kept, want 1 (the group's)", kept)
	}
	// The database refuses to give a deleted user personal data back.
	_, err = st.DB().ExecContext(ctx, `UPDATE users SET email = 'x@y' WHERE id = 7`)
	if err == nil {
		t.Fatal("the check constraint let a deleted user's email be set")
	}
}

// TestSystemMessageStoredWithoutSender checks the row behind a system
// message: sender_id is NULL, and its client_msg_id is unique among the
// system's messages of the room only.
func TestSystemMessageStoredWithoutSender(t *testing.T) {
	st := newPGStore(t)
	if _, err := st.UpsertUser(ctx, store.User{ID: 1, Username: "a"}); err != nil {
		t.Fatal(err)
	}
	g, err := st.CreateRoom(ctx, store.NewRoom{Type: store.Group, CreatorID: 1, Name: "g"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, Content: "sys", ClientMsgID: "k"})
	if err != nil {
		t.Fatal(err)
	}
	var sender *int64
	if err := st.DB().GetContext(ctx, &sender, `SELECT sender_id FROM messages WHERE id = $1`, res.Message.ID); err != nil || sender != nil {
		t.Fatalf("sender_id = %v (%v), want NULL", sender, err)
	}
	_, err = st.DB().ExecContext(ctx, `
		INSERT INTO messages (id, room_id, seq, sender_id, client_msg_id, created_at, updated_at)
		VALUES ($1, $2, 99, NULL, 'k', now(), now())`, uuid.New(), g.ID)
	if err == nil {
		t.Fatal("a second system message with the same client_msg_id was stored")
	}
}

// sortedIDs returns ids in PostgreSQL's uuid order (by bytes).
func sortedIDs(ids ...uuid.UUID) []uuid.UUID {
	out := slices.Clone(ids)
	slices.SortFunc(out, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// TestLeftoverSessionOfDeletedUser: a session that a connection opened
// while its user was being deleted (the row below is what such a race
// leaves) is touched, closed and expired like any other, and the deleted
// user's last seen time stays unset.
func TestLeftoverSessionOfDeletedUser(t *testing.T) {
	st := newPGStore(t)
	for _, u := range []store.User{{ID: 1, Username: "gone"}, {ID: 2, Username: "here"}} {
		if _, err := st.UpsertUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.DeleteUser(ctx, 1); err != nil {
		t.Fatal(err)
	}
	insert := func(conn, node string) int64 {
		t.Helper()
		var id int64
		if err := st.DB().GetContext(ctx, &id, `
			INSERT INTO sessions (user_id, conn_id, node_id, last_seen, created_at)
			VALUES (1, $1, $2, now() - interval '1 hour', now() - interval '1 hour') RETURNING id`, conn, node); err != nil {
			t.Fatal(err)
		}
		return id
	}
	a := insert("a", "n1")
	if _, err := st.TouchSession(ctx, a); err != nil {
		t.Fatalf("TouchSession: %v", err)
	}
	if err := st.CloseSession(ctx, a); err != nil {
		t.Fatalf("CloseSession: %v", err)
	}
	insert("b", "n1")
	if n, err := st.RemoveNode(ctx, "n1"); err != nil || n != 1 {
		t.Fatalf("RemoveNode = %d, %v", n, err)
	}
	insert("c", "dead-node")
	if _, err := st.CreateSession(ctx, store.NewSession{UserID: 2, ConnID: "d", NodeID: "dead-node"}); err != nil {
		t.Fatal(err)
	}
	if n, err := st.ExpireNodes(ctx, time.Minute); err != nil || n != 1 {
		t.Fatalf("ExpireNodes = %d, %v: want the deleted user's old session expired", n, err)
	}
	seen, err := st.LastSeen(ctx, []int64{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := seen[1]; ok || seen[2].IsZero() {
		t.Fatalf("LastSeen = %v: want user 2 only", seen)
	}
	// A new session of the deleted user is refused; of an unknown one, a conflict.
	if _, err := st.CreateSession(ctx, store.NewSession{UserID: 1, ConnID: "e"}); !errors.Is(err, store.ErrUserDeleted) {
		t.Fatalf("CreateSession(deleted) = %v", err)
	}
	if _, err := st.CreateSession(ctx, store.NewSession{UserID: 404, ConnID: "f"}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("CreateSession(unknown) = %v", err)
	}
}
