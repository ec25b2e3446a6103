package postgres

import (
	"context"
	"database/sql"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/chatmux/chatmux/store"
)

// Presence (docs/protocol.md#presence) keeps the announced state per user
// in the presence table. Every flip is a conditional write (INSERT ... ON
// CONFLICT DO UPDATE ... WHERE NOT online, UPDATE ... WHERE online) on rows
// locked with SKIP LOCKED, so that when several nodes sweep at once each
// flip is returned to one of them only, and no sweep waits for another.
// Times are the database's clock, as for the sessions.

// presenceRow is a row of the presence queries; last_seen may be NULL.
type presenceRow struct {
	UserID   int64        `db:"user_id"`
	Online   bool         `db:"online"`
	LastSeen sql.NullTime `db:"last_seen"`
	Changed  bool         `db:"changed"`
}

func (r presenceRow) presence() store.Presence {
	p := store.Presence{UserID: r.UserID, Online: r.Online}
	if r.LastSeen.Valid {
		p.LastSeen = utc(r.LastSeen.Time)
	}
	return p
}

// TouchSessions implements store.Store.
func (s *Store) TouchSessions(ctx context.Context, sessionIDs []int64) error {
	if len(sessionIDs) == 0 {
		return nil
	}
	_, err := s.db.ExecContext(ctx, `
		WITH s AS (UPDATE sessions SET last_seen = clock_timestamp() WHERE id = ANY($1) RETURNING user_id, last_seen)
		UPDATE users SET last_seen = greatest(users.last_seen, g.seen)
		FROM (SELECT user_id, max(last_seen) AS seen FROM s GROUP BY user_id) g
		WHERE users.id = g.user_id AND users.deleted_at IS NULL`, pq.Int64Array(sessionIDs))
	return mapErr(err)
}

// SweepPresence implements store.Store in one statement: the users to
// announce online are those with a live session (a scan of the sessions,
// one row per open connection) not announced online; the users to announce
// offline are found through the partial index of the users announced
// online. Within the statement's snapshot the two sets are disjoint.
func (s *Store) SweepPresence(ctx context.Context, threshold, grace time.Duration) ([]store.Presence, error) {
	rows := []presenceRow{}
	err := sqlx.SelectContext(ctx, s.db, &rows, `
		WITH t AS (SELECT clock_timestamp() AS now),
		tl AS (SELECT now - make_interval(secs => $1) AS live_since, now - make_interval(secs => $2) AS grace_since FROM t),
		up AS (
			SELECT u.id FROM users u
			WHERE u.deleted_at IS NULL
			  AND u.id IN (SELECT user_id FROM sessions WHERE last_seen >= (SELECT live_since FROM tl))
			  AND NOT EXISTS (SELECT 1 FROM presence p WHERE p.user_id = u.id AND p.online)
			ORDER BY u.id FOR KEY SHARE OF u SKIP LOCKED),
		went_on AS (
			INSERT INTO presence (user_id, online, changed_at)
			SELECT id, true, (SELECT now FROM t) FROM up ORDER BY id
			ON CONFLICT (user_id) DO UPDATE SET online = true, changed_at = EXCLUDED.changed_at
			WHERE NOT presence.online
			RETURNING user_id),
		down AS (
			SELECT p.user_id FROM presence p
			WHERE p.online
			  AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = p.user_id AND s.last_seen >= (SELECT live_since FROM tl))
			  AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = p.user_id AND u.last_seen >= (SELECT grace_since FROM tl))
			ORDER BY p.user_id FOR UPDATE OF p SKIP LOCKED),
		went_off AS (
			UPDATE presence p SET online = false, changed_at = (SELECT now FROM t)
			FROM down WHERE p.user_id = down.user_id AND p.online
			RETURNING p.user_id)
		SELECT c.user_id, c.online, u.last_seen FROM (
			SELECT user_id, true AS online FROM went_on
			UNION ALL SELECT user_id, false FROM went_off) c
		JOIN users u ON u.id = c.user_id
		ORDER BY c.user_id`, threshold.Seconds(), grace.Seconds())
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]store.Presence, len(rows))
	for i, r := range rows {
		out[i] = r.presence()
	}
	return out, nil
}

// Presence implements store.Store.
func (s *Store) Presence(ctx context.Context, userIDs []int64) ([]store.Presence, error) {
	out := []store.Presence{}
	if len(userIDs) == 0 {
		return out, nil
	}
	rows := []presenceRow{}
	if err := sqlx.SelectContext(ctx, s.db, &rows, `
		SELECT u.id AS user_id, coalesce(p.online, false) AS online, u.last_seen
		FROM users u LEFT JOIN presence p ON p.user_id = u.id
		WHERE u.id = ANY($1) ORDER BY u.id`, pq.Int64Array(userIDs)); err != nil {
		return nil, mapErr(err)
	}
	for _, r := range rows {
		out = append(out, r.presence())
	}
	return out, nil
}

// PresenceRooms implements store.Store: one scan of the users'
// memberships (memberships_user_idx).
func (s *Store) PresenceRooms(ctx context.Context, userIDs []int64) (map[int64][]uuid.UUID, error) {
	out := map[int64][]uuid.UUID{}
	if len(userIDs) == 0 {
		return out, nil
	}
	var rows []struct {
		UserID int64     `db:"user_id"`
		RoomID uuid.UUID `db:"room_id"`
	}
	if err := sqlx.SelectContext(ctx, s.db, &rows, `
		SELECT m.user_id, m.room_id FROM memberships m JOIN rooms r ON r.id = m.room_id
		WHERE m.user_id = ANY($1) AND (r.type <> 'Channel' OR r.creator_id = m.user_id OR m.is_admin)
		ORDER BY m.user_id, m.room_id`, pq.Int64Array(userIDs)); err != nil {
		return nil, mapErr(err)
	}
	for _, r := range rows {
		out[r.UserID] = append(out[r.UserID], r.RoomID)
	}
	return out, nil
}
