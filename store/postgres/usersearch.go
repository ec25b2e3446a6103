package postgres

import (
	"context"

	"github.com/jmoiron/sqlx"

	"github.com/chatmux/chatmux/store"
)

// SearchUsers implements store.Store. starts_with, not LIKE, so that % and
// _ in a prefix are plain characters; usernames are ordered with the "C"
// collation, byte order, whatever the database's collation.
func (s *Store) SearchUsers(ctx context.Context, prefix string, exceptID int64, limit int) ([]store.User, error) {
	out := []store.User{}
	if prefix == "" || limit < 1 {
		return out, nil
	}
	err := sqlx.SelectContext(ctx, s.db, &out, `
		SELECT `+userCols+` FROM users
		WHERE id <> $2 AND deleted_at IS NULL AND (starts_with(lower(username), lower($1))
			OR starts_with(lower(last_name), lower($1))
			OR starts_with(lower(first_name || ' ' || last_name), lower($1)))
		ORDER BY username COLLATE "C"
		LIMIT $3`, prefix, exceptID, limit)
	return out, mapErr(err)
}
