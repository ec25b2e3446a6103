// Package store is chatmux's persistence layer: the Store interface, the
// models it reads and writes, and the typed errors it returns.
//
// Store embeds one interface per concern, each in the file of its models:
// UserStore, SessionStore and NodeStore (users.go), RoomStore and MemberStore
// (rooms.go), MessageStore and ReactionStore (messages.go), ReceiptStore
// and NotificationStore (receipts.go); paging is in page.go, the errors in
// errors.go, and the input checks both implementations share in
// validate.go.
//
// The chat domain (package chat) keeps every policy decision (who may do
// what, which dispatch goes where, which 4002/4003/4004 detail a client
// sees); a Store keeps the data and its invariants: per-room message
// sequence numbers, idempotent sends, one-to-one pair uniqueness, member
// caps, one reaction per (message, user), one read receipt per (message,
// reader), the MIME allow-list, and atomic multi-table operations.
//
// Two implementations behave the same way and pass the same conformance
// suite (package storetest):
//
//   - store/memory: in-process maps behind a mutex; the embedded default,
//     for development, tests and single-node deployments without a database.
//   - store/postgres: PostgreSQL through sqlx and lib/pq, with the schema as
//     embedded goose migrations.
//
// A minimal program:
//
//	st := memory.New()
//	u1, _ := st.UpsertUser(ctx, store.User{ID: 1, Username: "ann"})
//	u2, _ := st.UpsertUser(ctx, store.User{ID: 2, Username: "bob"})
//	room, _ := st.CreateRoom(ctx, store.NewRoom{Type: store.OneToOne, CreatorID: u1.ID, Members: []int64{u2.ID}})
//	res, _ := st.SendMessage(ctx, store.NewMessage{RoomID: room.ID, SenderID: u1.ID, Content: "hi", Notify: true})
//	views, _ := st.MessageViews(ctx, []uuid.UUID{res.Message.ID})
//
// Errors: a missing entity is ErrNotFound; a violated uniqueness, check or
// foreign-key constraint is ErrConflict; bad input and domain invariants are
// a *ValidationError whose Message is the exact detail string of the
// protocol where one exists, and which wraps a sentinel (ErrCapExceeded,
// ErrDuplicateOneToOne, ErrOneToOneParticipants, ErrWrongRoomType, ...) for
// errors.Is; a database that cannot be reached or gives up is ErrUnavailable,
// and a call whose context ended may return the context's error. No error
// carries raw SQL text meant for a client.
//
// What grows is bounded: a session lives only while its connection is open
// (closing deletes it; a user keeps one last-seen time), and the sessions
// of a node that died are expired by the other nodes through the node
// heartbeats of NodeStore.
//
// Times are UTC with microsecond precision in both implementations.
package store
