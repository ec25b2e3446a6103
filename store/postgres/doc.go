// Package postgres is the PostgreSQL implementation of store.Store, built
// on sqlx and lib/pq.
//
// The schema ships inside the binary as goose SQL migrations (embed.FS) and
// is applied by Migrate under a session advisory lock, so several nodes may
// start at once. Constraints live in the database (one-to-one pair
// uniqueness on (least, greatest), one reaction per (message, user), one
// receipt per (message, reader), seq unique per room, client_msg_id unique
// per (room, sender), reply xor forward, the MIME allow-list); their
// violations come back as store.ErrConflict or the protocol's typed
// validation errors, never as raw SQL errors.
//
//	st, err := postgres.Open(ctx, "postgres://user@host/db?sslmode=disable")
//	if err != nil { ... }
//	if err := st.Migrate(ctx); err != nil { ... }
//	defer st.Close()
//
// Sends are written in batches (group commit): concurrent SendMessage
// calls reach the database together, as one SQL statement (a chain of
// data-modifying CTEs over arrays: lock the batch's rooms, check each row,
// bump each room's last_seq, insert the messages, their attachments and
// notifications, point the rooms at their latest message), prepared once
// per connection, so a whole batch costs one Bind/Execute exchange and one
// commit. A lone send goes at once; under load the batches grow by
// themselves, up to Options.MaxBatch sends and Options.MaxBatchBytes. A
// send that fails (a missing room, parent or sender, a sender without the
// right when NewMessage.CheckSender is set) fails alone; seq stays gapless
// and in commit order per room; a caller gets its result only after the
// commit. Options.UnbatchedSends writes each send as a statement of its
// own instead. Sends to one room serialise on that room's row lock; sends
// to different rooms do not wait for each other. Delivery
// acknowledgements (Acknowledge, of any users) are batched the same way,
// one statement per batch; Options.UnbatchedAcks writes each call in a
// transaction of its own. Message views (the wire Message with sender, receipts,
// reactions, deliveries, attachments and nested parents) load in one
// statement, or three when a message references one outside the batch.
//
// Open turns JIT compilation off for its connections (see Open); pass
// jit=off in the DSN of a handle given to New for the same predictable
// latency. Named prepared statements need session pooling (not a
// transaction-mode pgbouncer).
package postgres
