package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/chatmux/chatmux/store"
)

// Sessions and node heartbeats take their times from the database's clock
// (clock_timestamp()), so that ExpireNodes compares times of one clock
// whatever the nodes' clocks say. The last seen time of a deleted user is
// never set again (the users_deleted_anonymous check keeps it NULL): every
// update of it skips deleted users, so that a session left over from a
// connection that raced the deletion closes and expires like any other.

// CreateSession implements store.Store.
func (s *Store) CreateSession(ctx context.Context, ns store.NewSession) (store.Session, error) {
	if err := store.ValidateNewSession(ns); err != nil {
		return store.Session{}, err
	}
	out := store.Session{UserID: ns.UserID, ConnID: ns.ConnID, NodeID: ns.NodeID}
	// The user's row is read with a key share lock: a DeleteUser in
	// progress (which holds it for update) is waited for, and the row is
	// then read again, deleted.
	// With MarkOnline the presence row is flipped in the same statement
	// (a conditional write: of concurrent connects one flips it), so that
	// a connect costs no second commit.
	err := s.db.QueryRowxContext(ctx, `
		WITH t AS (SELECT clock_timestamp() AS now),
		live AS (SELECT id FROM users WHERE id = $1 AND deleted_at IS NULL FOR KEY SHARE),
		s AS (INSERT INTO sessions (user_id, conn_id, node_id, last_seen, created_at)
		      SELECT $1, $2, $3, t.now, t.now FROM t, live
		      RETURNING id, last_seen),
		u AS (UPDATE users SET last_seen = greatest(users.last_seen, (SELECT now FROM t)) WHERE id = $1 AND deleted_at IS NULL),
		p AS (INSERT INTO presence (user_id, online, changed_at)
		      SELECT live.id, true, t.now FROM t, live WHERE $4
		      ON CONFLICT (user_id) DO UPDATE SET online = true, changed_at = EXCLUDED.changed_at
		      WHERE NOT presence.online
		      RETURNING user_id)
		SELECT id, last_seen, EXISTS (SELECT 1 FROM p) FROM s`, ns.UserID, ns.ConnID, ns.NodeID, ns.MarkOnline).Scan(&out.ID, &out.LastSeen, &out.WentOnline)
	if errors.Is(err, sql.ErrNoRows) {
		// Nothing inserted: the user is deleted, or not a user at all.
		var exists bool
		if err := s.db.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)`, ns.UserID); err != nil {
			return store.Session{}, mapErr(err)
		}
		if !exists {
			return store.Session{}, fmt.Errorf("user %d: %w", ns.UserID, store.ErrConflict)
		}
		return store.Session{}, fmt.Errorf("user %d: %w", ns.UserID, store.ErrUserDeleted)
	}
	if err != nil {
		return store.Session{}, mapErr(err)
	}
	out.LastSeen = utc(out.LastSeen)
	out.Created = out.LastSeen
	return out, nil
}

// TouchSession implements store.Store.
func (s *Store) TouchSession(ctx context.Context, sessionID int64) (time.Time, error) {
	var seen time.Time
	err := s.db.QueryRowxContext(ctx, `
		WITH s AS (UPDATE sessions SET last_seen = clock_timestamp() WHERE id = $1 RETURNING user_id, last_seen),
		u AS (UPDATE users SET last_seen = greatest(users.last_seen, s.last_seen) FROM s
		      WHERE users.id = s.user_id AND users.deleted_at IS NULL)
		SELECT last_seen FROM s`, sessionID).Scan(&seen)
	if err != nil {
		return time.Time{}, mapErr(err)
	}
	return utc(seen), nil
}

// CloseSession implements store.Store.
func (s *Store) CloseSession(ctx context.Context, sessionID int64) error {
	_, err := s.db.ExecContext(ctx, `
		WITH s AS (DELETE FROM sessions WHERE id = $1 RETURNING user_id)
		UPDATE users SET last_seen = greatest(users.last_seen, clock_timestamp()) FROM s
		WHERE users.id = s.user_id AND users.deleted_at IS NULL`,
		sessionID)
	return mapErr(err)
}

// UserSessions implements store.Store.
func (s *Store) UserSessions(ctx context.Context, userID int64) ([]store.Session, error) {
	out := []store.Session{}
	if err := sqlx.SelectContext(ctx, s.db, &out, `
		SELECT id, user_id, conn_id, node_id, last_seen, created_at FROM sessions WHERE user_id = $1 ORDER BY id`,
		userID); err != nil {
		return nil, mapErr(err)
	}
	for i := range out {
		out[i].LastSeen, out[i].Created = utc(out[i].LastSeen), utc(out[i].Created)
	}
	return out, nil
}

// LastSeen implements store.Store.
func (s *Store) LastSeen(ctx context.Context, userIDs []int64) (map[int64]time.Time, error) {
	out := make(map[int64]time.Time, len(userIDs))
	if len(userIDs) == 0 {
		return out, nil
	}
	var rows []struct {
		ID       int64     `db:"id"`
		LastSeen time.Time `db:"last_seen"`
	}
	if err := sqlx.SelectContext(ctx, s.db, &rows, `
		SELECT id, last_seen FROM users WHERE id = ANY($1) AND last_seen IS NOT NULL`, pq.Int64Array(userIDs)); err != nil {
		return nil, mapErr(err)
	}
	for _, r := range rows {
		out[r.ID] = utc(r.LastSeen)
	}
	return out, nil
}

// TouchNode implements store.Store.
func (s *Store) TouchNode(ctx context.Context, nodeID string) error {
	if err := store.ValidateNodeID(nodeID); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO nodes (id, last_seen) VALUES ($1, clock_timestamp())
		ON CONFLICT (id) DO UPDATE SET last_seen = EXCLUDED.last_seen`, nodeID)
	return mapErr(err)
}

// ExpireNodes implements store.Store. The sessions of no known node are
// found by a scan of the sessions table, which holds one row per open
// connection.
func (s *Store) ExpireNodes(ctx context.Context, maxAge time.Duration) (int, error) {
	var n int
	err := s.db.QueryRowxContext(ctx, `
		WITH t AS (SELECT clock_timestamp() - make_interval(secs => $1) AS limit_),
		dead AS (DELETE FROM nodes WHERE last_seen < (SELECT limit_ FROM t) RETURNING id),
		gone AS (
			DELETE FROM sessions s
			WHERE s.node_id IN (SELECT id FROM dead)
			   OR (s.last_seen < (SELECT limit_ FROM t) AND NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = s.node_id))
			RETURNING s.user_id, s.last_seen),
		u AS (
			UPDATE users SET last_seen = greatest(users.last_seen, g.seen)
			FROM (SELECT user_id, max(last_seen) AS seen FROM gone GROUP BY user_id) g
			WHERE users.id = g.user_id AND users.deleted_at IS NULL)
		SELECT count(*) FROM gone`, maxAge.Seconds()).Scan(&n)
	return n, mapErr(err)
}

// RemoveNode implements store.Store.
func (s *Store) RemoveNode(ctx context.Context, nodeID string) (int, error) {
	var n int
	err := s.db.QueryRowxContext(ctx, `
		WITH n AS (DELETE FROM nodes WHERE id = $1),
		gone AS (DELETE FROM sessions WHERE node_id = $1 RETURNING user_id),
		u AS (UPDATE users SET last_seen = greatest(users.last_seen, clock_timestamp())
		      WHERE id IN (SELECT user_id FROM gone) AND deleted_at IS NULL)
		SELECT count(*) FROM gone`, nodeID).Scan(&n)
	return n, mapErr(err)
}
