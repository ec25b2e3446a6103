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
// A send is one SQL statement (a chain of data-modifying CTEs: bump the
// room's last_seq under its row lock, insert the message, its attachments,
// its notification and recipients, point the room at it), so it is atomic
// without an explicit transaction.
package postgres
