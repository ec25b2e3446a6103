package postgres

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/chatmux/chatmux/store"
)

// userCols are the columns of store.User, read from users.
const userCols = `id, username, email, first_name, last_name, deleted_at IS NOT NULL AS deleted`

// UpsertUser implements store.Store. The row of a deleted user is not
// updated (the statement returns nothing): ErrUserDeleted.
func (s *Store) UpsertUser(ctx context.Context, u store.User) (store.User, error) {
	if err := store.ValidateUser(u); err != nil {
		return store.User{}, err
	}
	var out store.User
	err := sqlx.GetContext(ctx, s.db, &out, `
		INSERT INTO users (id, username, email, first_name, last_name) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id) DO UPDATE SET username = EXCLUDED.username, email = EXCLUDED.email,
			first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name
		WHERE users.deleted_at IS NULL
		RETURNING `+userCols, u.ID, u.Username, u.Email, u.FirstName, u.LastName)
	if errors.Is(err, sql.ErrNoRows) {
		return store.User{}, fmt.Errorf("user %d: %w", u.ID, store.ErrUserDeleted)
	}
	return out, mapErr(err)
}

// CreateUserByUsername implements store.Store.
func (s *Store) CreateUserByUsername(ctx context.Context, username string) (store.User, error) {
	if err := store.ValidateUser(store.User{ID: 1, Username: username}); err != nil {
		return store.User{}, err
	}
	for attempt := 0; ; attempt++ {
		var out store.User
		err := sqlx.GetContext(ctx, s.db, &out, `
			WITH ins AS (
				INSERT INTO users (id, username) VALUES (nextval('users_assigned_id_seq'), $1)
				ON CONFLICT (username) DO NOTHING
				RETURNING `+userCols+`)
			SELECT * FROM ins
			UNION ALL
			SELECT `+userCols+` FROM users WHERE username = $1
			LIMIT 1`, username)
		if err == nil {
			if out.Deleted {
				// Not reachable through ValidateUser, which refuses the
				// names of deleted users; kept so that no path hands one out.
				return store.User{}, fmt.Errorf("user %d: %w", out.ID, store.ErrUserDeleted)
			}
			return out, nil
		}
		if attempt >= 10 {
			return store.User{}, mapErr(err)
		}
		switch {
		case isConstraint(err, "users_pkey"):
			// The sequence handed out an id that authentication had
			// already set: move it past every id in use.
			if _, serr := s.db.ExecContext(ctx,
				`SELECT setval('users_assigned_id_seq', greatest(nextval('users_assigned_id_seq'), (SELECT max(id) FROM users)))`); serr != nil {
				return store.User{}, mapErr(serr)
			}
		case errors.Is(err, sql.ErrNoRows):
			// Another creation of the same username won, and its row is
			// not in this statement's snapshot: read it again.
		default:
			return store.User{}, mapErr(err)
		}
	}
}

// Users implements store.Store.
func (s *Store) Users(ctx context.Context, ids []int64) ([]store.User, error) {
	out := []store.User{}
	if len(ids) == 0 {
		return out, nil
	}
	err := sqlx.SelectContext(ctx, s.db, &out, `SELECT `+userCols+` FROM users WHERE id = ANY($1) ORDER BY id`, pq.Int64Array(ids))
	return out, mapErr(err)
}

// userState is an id with whether that user is deleted.
type userState struct {
	ID      int64 `db:"id"`
	Deleted bool  `db:"deleted"`
}

// lockUsers returns the users among ids that exist, ascending, with a key
// share lock on their rows until the transaction ends: a concurrent
// DeleteUser (which locks the row for update) either commits first, and
// the rows read here show the deletion, or waits until this transaction
// ends, and then sees what it did (a membership to take away).
func lockUsers(ctx context.Context, tx *sqlx.Tx, ids []int64) ([]userState, error) {
	var out []userState
	err := sqlx.SelectContext(ctx, tx, &out, `
		SELECT id, deleted_at IS NOT NULL AS deleted FROM users WHERE id = ANY($1) ORDER BY id FOR KEY SHARE`,
		pq.Int64Array(ids))
	return out, mapErr(err)
}

// roomRef is a room's id and type.
type roomRef struct {
	ID   uuid.UUID      `db:"id"`
	Type store.RoomType `db:"type"`
}

// DeleteUser implements store.Store in one transaction: the user's row is
// locked first (AddMembers and CreateRoom take a key share lock on the rows
// of the users they add, so they cannot slip a membership in), then the
// user's rooms in id order, as the other multi-room writers do.
func (s *Store) DeleteUser(ctx context.Context, userID int64) (store.UserDeletion, error) {
	var res store.UserDeletion
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		res = store.UserDeletion{RoomsDeleted: []uuid.UUID{}, RoomsLeft: []uuid.UUID{}}
		var deleted bool
		if err := sqlx.GetContext(ctx, tx, &deleted,
			`SELECT deleted_at IS NOT NULL FROM users WHERE id = $1 FOR UPDATE`, userID); err != nil {
			return mapErr(err)
		}
		if deleted {
			return nil
		}
		var rooms []roomRef
		if err := sqlx.SelectContext(ctx, tx, &rooms, `
			SELECT id, type FROM rooms
			WHERE id IN (SELECT room_id FROM memberships WHERE user_id = $1) OR pair_a = $1 OR pair_b = $1
			ORDER BY id FOR UPDATE`, userID); err != nil {
			return mapErr(err)
		}
		var pairs, shared []uuid.UUID
		for _, r := range rooms {
			if r.Type == store.OneToOne {
				pairs = append(pairs, r.ID)
			} else {
				shared = append(shared, r.ID)
			}
		}
		// One-to-one chats go with everything in them (ON DELETE CASCADE;
		// references from other rooms' messages are set to NULL).
		if len(pairs) > 0 {
			if _, err := tx.ExecContext(ctx, `DELETE FROM rooms WHERE id = ANY($1::uuid[])`, uuids(pairs)); err != nil {
				return mapErr(err)
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM memberships WHERE user_id = $1`, userID); err != nil {
			return mapErr(err)
		}
		var emptied []uuid.UUID
		if err := sqlx.SelectContext(ctx, tx, &emptied, `
			DELETE FROM rooms r WHERE r.id = ANY($1::uuid[])
				AND NOT EXISTS (SELECT 1 FROM memberships x WHERE x.room_id = r.id)
			RETURNING r.id`, uuids(shared)); err != nil {
			return mapErr(err)
		}
		// The user's traces on other people's messages. A REACTION
		// notification goes with its reaction (ON DELETE CASCADE); a
		// notification of which the user was the only recipient left goes,
		// as when its last recipient acknowledges it. So does their place
		// among the recipients of pending offline webhooks
		// (docs/protocol.md#offline-webhooks), and an event left with no
		// recipient.
		if _, err := tx.ExecContext(ctx, `
			WITH se AS (DELETE FROM sessions WHERE user_id = $1),
			pr AS (DELETE FROM presence WHERE user_id = $1),
			re AS (DELETE FROM reactions WHERE user_id = $1),
			rr AS (DELETE FROM read_receipts WHERE reader_id = $1),
			de AS (DELETE FROM deliveries WHERE user_id = $1),
			nu AS (
				UPDATE notifications SET recipients = array_remove(recipients, $1::bigint)
				WHERE recipients @> ARRAY[$1::bigint] AND NOT recipients <@ ARRAY[$1::bigint]),
			nd AS (
				DELETE FROM notifications WHERE recipients @> ARRAY[$1::bigint] AND recipients <@ ARRAY[$1::bigint]),
			wu AS (
				UPDATE webhook_outbox SET recipients = array_remove(recipients, $1::bigint)
				WHERE recipients @> ARRAY[$1::bigint] AND NOT recipients <@ ARRAY[$1::bigint])
			DELETE FROM webhook_outbox WHERE recipients @> ARRAY[$1::bigint] AND recipients <@ ARRAY[$1::bigint]`,
			userID); err != nil {
			return mapErr(err)
		}
		if _, err := tx.ExecContext(ctx, `
			UPDATE users SET username = 'deleted user ' || id, email = '', first_name = '', last_name = '',
				last_seen = NULL, deleted_at = clock_timestamp()
			WHERE id = $1`, userID); err != nil {
			return mapErr(err)
		}
		for _, id := range shared {
			if slices.Contains(emptied, id) {
				res.RoomsDeleted = append(res.RoomsDeleted, id)
			} else {
				res.RoomsLeft = append(res.RoomsLeft, id)
			}
		}
		res.RoomsDeleted = append(res.RoomsDeleted, pairs...)
		slices.SortFunc(res.RoomsDeleted, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
		return nil
	})
	if err != nil {
		return store.UserDeletion{}, err
	}
	return res, nil
}
