package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/chatmux/chatmux/store"
)

// ---- rooms ----

const roomCols = `r.id, r.type, r.name, r.description, r.avatar, coalesce(r.creator_id, 0) AS creator_id,
	r.max_members, r.join_approval_required, r.group_locked, r.is_public, r.preferences, r.extra,
	r.last_message_id, r.last_seq, r.created_at, r.updated_at`

func fixRoom(r *store.Room) {
	r.CreatedAt, r.UpdatedAt = utc(r.CreatedAt), utc(r.UpdatedAt)
	if r.Preferences == nil {
		r.Preferences = store.JSON{}
	}
	if r.Extra == nil {
		r.Extra = store.JSON{}
	}
}

func getRoom(ctx context.Context, q sqlx.ExtContext, id uuid.UUID, forUpdate bool) (store.Room, error) {
	var r store.Room
	query := `SELECT ` + roomCols + ` FROM rooms r WHERE r.id = $1`
	if forUpdate {
		query += ` FOR UPDATE`
	}
	if err := sqlx.GetContext(ctx, q, &r, query, id); err != nil {
		return store.Room{}, mapErr(err)
	}
	fixRoom(&r)
	return r, nil
}

// CreateRoom implements store.Store.
func (s *Store) CreateRoom(ctx context.Context, in store.NewRoom) (store.Room, error) {
	in, err := store.ValidateNewRoom(in)
	if err != nil {
		return store.Room{}, err
	}
	now := store.Now()
	r := store.Room{
		ID: uuid.New(), Type: in.Type, Name: in.Name, Description: in.Description, Avatar: in.Avatar,
		MaxMembers: in.MaxMembers, JoinApprovalRequired: in.JoinApprovalRequired, GroupLocked: in.GroupLocked,
		IsPublic: in.IsPublic, Preferences: in.Preferences, Extra: in.Extra, CreatedAt: now, UpdatedAt: now,
	}
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		found, err := lockUsers(ctx, tx, append([]int64{in.CreatorID}, in.Members...))
		if err != nil {
			return err
		}
		state := make(map[int64]bool, len(found)) // id -> deleted
		var members []int64                       // the live users, ascending
		for _, u := range found {
			state[u.ID] = u.Deleted
			if !u.Deleted {
				members = append(members, u.ID)
			}
		}
		switch deleted, ok := state[in.CreatorID]; {
		case !ok:
			return store.ErrNotFound
		case deleted:
			return fmt.Errorf("user %d: %w", in.CreatorID, store.ErrUserDeleted)
		}
		var creator, pairA, pairB *int64
		switch in.Type {
		case store.OneToOne:
			for _, id := range in.Members {
				deleted, ok := state[id]
				if !ok {
					return store.UnknownUserError("participants", id)
				}
				if deleted {
					return store.DeletedUserError("participants", id)
				}
			}
			if len(members) != 2 {
				return store.Invariant(store.ErrOneToOneParticipants, "participants", store.MsgOneToOneTwo)
			}
			pairA, pairB = &members[0], &members[1]
		default:
			if len(members) > in.MaxMembers {
				return store.CapError(in.Type)
			}
			creator = &in.CreatorID
			r.CreatorID = in.CreatorID
		}
		_, err = tx.ExecContext(ctx, `
			WITH r AS (
				INSERT INTO rooms (id, type, name, description, avatar, creator_id, max_members, join_approval_required,
					group_locked, is_public, preferences, extra, pair_a, pair_b, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15)
				RETURNING id)
			INSERT INTO memberships (room_id, user_id, is_admin, joined_at)
			SELECT r.id, u, $16 AND u = $6, $15 FROM r, unnest($17::bigint[]) AS u`,
			r.ID, r.Type, r.Name, r.Description, r.Avatar, creator, r.MaxMembers, r.JoinApprovalRequired,
			r.GroupLocked, r.IsPublic, r.Preferences, r.Extra, pairA, pairB, now, in.Type != store.OneToOne,
			pq.Int64Array(members))
		return mapErr(err)
	})
	if err != nil {
		return store.Room{}, err
	}
	return r, nil
}

// Room implements store.Store.
func (s *Store) Room(ctx context.Context, roomID uuid.UUID) (store.Room, error) {
	return getRoom(ctx, s.db, roomID, false)
}

type memberRow struct {
	store.User
	IsAdmin bool `db:"is_admin"`
}

// RoomDetail implements store.Store.
func (s *Store) RoomDetail(ctx context.Context, roomID uuid.UUID) (store.RoomDetail, error) {
	r, err := getRoom(ctx, s.db, roomID, false)
	if err != nil {
		return store.RoomDetail{}, err
	}
	var rows []memberRow
	if err := sqlx.SelectContext(ctx, s.db, &rows, `
		SELECT u.id, u.username, u.email, u.first_name, u.last_name, u.deleted_at IS NOT NULL AS deleted, m.is_admin
		FROM memberships m JOIN users u ON u.id = m.user_id
		WHERE m.room_id = $1 ORDER BY u.id`, roomID); err != nil {
		return store.RoomDetail{}, mapErr(err)
	}
	d := store.RoomDetail{Room: r, Members: []store.User{}, Admins: []store.User{}}
	for _, row := range rows {
		d.Members = append(d.Members, row.User)
		if row.IsAdmin {
			d.Admins = append(d.Admins, row.User)
		}
	}
	if r.CreatorID != 0 {
		var c store.User
		err := sqlx.GetContext(ctx, s.db, &c, `SELECT `+userCols+` FROM users WHERE id = $1`, r.CreatorID)
		if err == nil {
			d.Creator = &c
		} else if mapped := mapErr(err); !errors.Is(mapped, store.ErrNotFound) {
			return store.RoomDetail{}, mapped
		}
	}
	return d, nil
}

// UpdateRoom implements store.Store.
func (s *Store) UpdateRoom(ctx context.Context, roomID uuid.UUID, up store.RoomUpdate) (store.Room, error) {
	var out store.Room
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		r, err := getRoom(ctx, tx, roomID, true)
		if err != nil {
			return err
		}
		if up, err = store.ValidateRoomUpdate(r.Type, up); err != nil {
			return err
		}
		var prefs, extra any
		if up.Preferences != nil {
			prefs = up.Preferences
		}
		if up.Extra != nil {
			extra = up.Extra
		}
		err = sqlx.GetContext(ctx, tx, &out, `
			UPDATE rooms r SET
				name = coalesce($2, name), description = coalesce($3, description), avatar = coalesce($4, avatar),
				group_locked = coalesce($5, group_locked), join_approval_required = coalesce($6, join_approval_required),
				is_public = coalesce($7, is_public), preferences = coalesce($8::jsonb, preferences),
				extra = extra || coalesce($9::jsonb, '{}'), updated_at = $10
			WHERE id = $1 RETURNING `+roomCols,
			roomID, up.Name, up.Description, up.Avatar, up.GroupLocked, up.JoinApprovalRequired, up.IsPublic,
			prefs, extra, store.Now())
		return mapErr(err)
	})
	if err != nil {
		return store.Room{}, err
	}
	fixRoom(&out)
	return out, nil
}

// DeleteRoom implements store.Store.
func (s *Store) DeleteRoom(ctx context.Context, roomID uuid.UUID) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM rooms WHERE id = $1`, roomID)
	if err != nil {
		return mapErr(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.ErrNotFound
	}
	return nil
}

type listRow struct {
	store.Room
	UnreadCount int        `db:"unread_count"`
	CID         *int64     `db:"c_id"`
	CUsername   *string    `db:"c_username"`
	CEmail      *string    `db:"c_email"`
	CFirst      *string    `db:"c_first_name"`
	CLast       *string    `db:"c_last_name"`
	CDeleted    *bool      `db:"c_deleted"`
	PID         *int64     `db:"p_id"`
	PUsername   *string    `db:"p_username"`
	PEmail      *string    `db:"p_email"`
	PFirst      *string    `db:"p_first_name"`
	PLast       *string    `db:"p_last_name"`
	PDeleted    *bool      `db:"p_deleted"`
	LastAt      *time.Time `db:"last_at"`
}

func optUser(id *int64, username, email, first, last *string, deleted *bool) *store.User {
	if id == nil {
		return nil
	}
	return &store.User{ID: *id, Username: *username, Email: *email, FirstName: *first, LastName: *last, Deleted: *deleted}
}

// ListRooms implements store.Store. One query for the rooms, creators,
// peers and unread counts, plus the batched message-view loader for the
// last messages.
func (s *Store) ListRooms(ctx context.Context, userID int64) ([]store.RoomListItem, error) {
	var rows []listRow
	err := sqlx.SelectContext(ctx, s.db, &rows, `
		SELECT `+roomCols+`,
			(SELECT count(*) FROM messages m
			  WHERE m.room_id = r.id AND NOT m.is_deleted AND m.sender_id IS DISTINCT FROM $1
			    AND NOT EXISTS (SELECT 1 FROM read_receipts rr WHERE rr.message_id = m.id AND rr.reader_id = $1)
			) AS unread_count,
			c.id AS c_id, c.username AS c_username, c.email AS c_email, c.first_name AS c_first_name, c.last_name AS c_last_name,
			c.deleted_at IS NOT NULL AS c_deleted,
			p.id AS p_id, p.username AS p_username, p.email AS p_email, p.first_name AS p_first_name, p.last_name AS p_last_name,
			p.deleted_at IS NOT NULL AS p_deleted,
			lm.created_at AS last_at
		FROM memberships mb
		JOIN rooms r ON r.id = mb.room_id
		LEFT JOIN messages lm ON lm.id = r.last_message_id
		LEFT JOIN users c ON c.id = r.creator_id
		LEFT JOIN LATERAL (
			SELECT u.* FROM memberships pm JOIN users u ON u.id = pm.user_id
			WHERE r.type = 'OneToOneChat' AND pm.room_id = r.id AND pm.user_id <> $1 LIMIT 1
		) p ON true
		WHERE mb.user_id = $1
		ORDER BY coalesce(lm.created_at, r.created_at) DESC, r.id DESC`, userID)
	if err != nil {
		return nil, mapErr(err)
	}
	var lastIDs []uuid.UUID
	for _, row := range rows {
		if row.LastMessageID != nil {
			lastIDs = append(lastIDs, *row.LastMessageID)
		}
	}
	views, err := s.loadViews(ctx, s.db, lastIDs)
	if err != nil {
		return nil, err
	}
	out := make([]store.RoomListItem, len(rows))
	for i, row := range rows {
		fixRoom(&row.Room)
		it := store.RoomListItem{
			Room:        row.Room,
			UnreadCount: row.UnreadCount,
			Creator:     optUser(row.CID, row.CUsername, row.CEmail, row.CFirst, row.CLast, row.CDeleted),
			Peer:        optUser(row.PID, row.PUsername, row.PEmail, row.PFirst, row.PLast, row.PDeleted),
		}
		if row.LastMessageID != nil {
			it.LastMessage = views[*row.LastMessageID]
		}
		out[i] = it
	}
	return out, nil
}

// UserRoomSeqs implements store.Store.
func (s *Store) UserRoomSeqs(ctx context.Context, userID int64) ([]store.RoomSeq, error) {
	out := []store.RoomSeq{}
	err := sqlx.SelectContext(ctx, s.db, &out, `
		SELECT m.room_id, r.last_seq AS seq FROM memberships m JOIN rooms r ON r.id = m.room_id
		WHERE m.user_id = $1 ORDER BY m.room_id`, userID)
	return out, mapErr(err)
}

// UserRoomIDs implements store.Store.
func (s *Store) UserRoomIDs(ctx context.Context, userID int64) ([]uuid.UUID, error) {
	out := []uuid.UUID{}
	err := sqlx.SelectContext(ctx, s.db, &out, `SELECT room_id FROM memberships WHERE user_id = $1 ORDER BY room_id`, userID)
	return out, mapErr(err)
}

// RoomMemberIDs implements store.Store.
func (s *Store) RoomMemberIDs(ctx context.Context, roomID uuid.UUID) ([]int64, error) {
	var ids pq.Int64Array
	err := s.db.QueryRowxContext(ctx, `
		SELECT coalesce((SELECT array_agg(user_id ORDER BY user_id) FROM memberships WHERE room_id = r.id), '{}')
		FROM rooms r WHERE r.id = $1`, roomID).Scan(&ids)
	if err != nil {
		return nil, mapErr(err)
	}
	return []int64(ids), nil
}

// ---- membership ----

type membershipRow struct {
	RoomID      uuid.UUID      `db:"room_id"`
	RoomType    store.RoomType `db:"type"`
	CreatorID   int64          `db:"creator_id"`
	IsPublic    bool           `db:"is_public"`
	GroupLocked bool           `db:"group_locked"`
	IsMember    bool           `db:"is_member"`
	IsAdmin     bool           `db:"is_admin"`
	Permissions pq.StringArray `db:"permissions"`
}

func (m membershipRow) model() store.Membership {
	out := store.Membership{
		RoomID: m.RoomID, RoomType: m.RoomType, CreatorID: m.CreatorID, IsPublic: m.IsPublic,
		GroupLocked: m.GroupLocked, IsMember: m.IsMember, IsAdmin: m.IsAdmin,
		Permissions: make([]store.Permission, len(m.Permissions)),
	}
	for i, p := range m.Permissions {
		out.Permissions[i] = store.Permission(p)
	}
	return out
}

const membershipQuery = `
	SELECT r.id AS room_id, r.type, coalesce(r.creator_id, 0) AS creator_id, r.is_public, r.group_locked,
		m.user_id IS NOT NULL AS is_member, coalesce(m.is_admin, false) AS is_admin,
		coalesce(m.permissions, '{}') AS permissions
	FROM rooms r LEFT JOIN memberships m ON m.room_id = r.id AND m.user_id = $2
	WHERE r.id = ANY($1::uuid[])`

// Membership implements store.Store: one query.
func (s *Store) Membership(ctx context.Context, roomID uuid.UUID, userID int64) (store.Membership, error) {
	var rows []membershipRow
	if err := s.selectHot(ctx, s.db, &rows, membershipQuery, uuids([]uuid.UUID{roomID}), userID); err != nil {
		return store.Membership{}, mapErr(err)
	}
	if len(rows) == 0 {
		return store.Membership{}, store.ErrNotFound
	}
	return rows[0].model(), nil
}

// Memberships implements store.Store: one query.
func (s *Store) Memberships(ctx context.Context, roomIDs []uuid.UUID, userID int64) (map[uuid.UUID]store.Membership, error) {
	out := make(map[uuid.UUID]store.Membership, len(roomIDs))
	if len(roomIDs) == 0 {
		return out, nil
	}
	var rows []membershipRow
	if err := s.selectHot(ctx, s.db, &rows, membershipQuery, uuids(roomIDs), userID); err != nil {
		return nil, mapErr(err)
	}
	for _, row := range rows {
		out[row.RoomID] = row.model()
	}
	return out, nil
}

// checkUsers returns ErrNotFound unless every id is an existing user.
func checkUsers(ctx context.Context, q sqlx.ExtContext, ids []int64) error {
	var n int
	if err := sqlx.GetContext(ctx, q, &n, `SELECT count(*) FROM users WHERE id = ANY($1)`, pq.Int64Array(ids)); err != nil {
		return mapErr(err)
	}
	if n != len(ids) {
		return store.ErrNotFound
	}
	return nil
}

// AddMembers implements store.Store. The room row is locked so that
// concurrent additions cannot overshoot the cap.
func (s *Store) AddMembers(ctx context.Context, roomID uuid.UUID, userIDs []int64) ([]int64, error) {
	ids := store.SortedInt64(store.UniqueInt64(userIDs))
	added := []int64{}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		r, err := getRoom(ctx, tx, roomID, true)
		if err != nil {
			return err
		}
		if r.Type == store.OneToOne {
			return store.Invariant(store.ErrWrongRoomType, "", store.MsgMembersGroupChannel)
		}
		found, err := lockUsers(ctx, tx, ids)
		if err != nil {
			return err
		}
		if len(found) != len(ids) {
			return store.ErrNotFound
		}
		for _, u := range found {
			if u.Deleted {
				return store.DeletedUserError("members", u.ID)
			}
		}
		var count int
		var fresh pq.Int64Array
		if err := tx.QueryRowxContext(ctx, `
			SELECT (SELECT count(*) FROM memberships WHERE room_id = $1),
				coalesce(array(SELECT u FROM unnest($2::bigint[]) u
					WHERE NOT EXISTS (SELECT 1 FROM memberships WHERE room_id = $1 AND user_id = u) ORDER BY u), '{}')`,
			roomID, pq.Int64Array(ids)).Scan(&count, &fresh); err != nil {
			return mapErr(err)
		}
		if count+len(fresh) > r.MaxMembers {
			return store.CapError(r.Type)
		}
		if len(fresh) == 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO memberships (room_id, user_id, joined_at) SELECT $1, u, $3 FROM unnest($2::bigint[]) u`,
			roomID, fresh, store.Now()); err != nil {
			return mapErr(err)
		}
		added = []int64(fresh)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return added, nil
}

// RemoveMembers implements store.Store.
func (s *Store) RemoveMembers(ctx context.Context, rm store.RemoveMembers) (store.RemoveResult, error) {
	ids := store.SortedInt64(store.UniqueInt64(rm.UserIDs))
	res := store.RemoveResult{Removed: []int64{}}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		r, err := getRoom(ctx, tx, rm.RoomID, true)
		if err != nil {
			return err
		}
		if r.Type == store.OneToOne {
			return store.Invariant(store.ErrWrongRoomType, "", store.MsgMembersGroupChannel)
		}
		if err := checkUsers(ctx, tx, ids); err != nil {
			return err
		}
		var removed pq.Int64Array
		var left int
		if err := tx.QueryRowxContext(ctx, `
			WITH d AS (
				DELETE FROM memberships WHERE room_id = $1 AND user_id = ANY($2)
					AND (user_id <> $3 OR $3 = $4)
				RETURNING user_id)
			SELECT coalesce((SELECT array_agg(user_id ORDER BY user_id) FROM d), '{}'),
				(SELECT count(*) FROM memberships WHERE room_id = $1) - (SELECT count(*) FROM d)`,
			rm.RoomID, pq.Int64Array(ids), r.CreatorID, rm.ActorID).Scan(&removed, &left); err != nil {
			return mapErr(err)
		}
		res.Removed = []int64(removed)
		if left == 0 {
			if _, err := tx.ExecContext(ctx, `DELETE FROM rooms WHERE id = $1`, rm.RoomID); err != nil {
				return mapErr(err)
			}
			res.RoomDeleted = true
		}
		return nil
	})
	if err != nil {
		return store.RemoveResult{}, err
	}
	return res, nil
}

func roleError() error {
	return store.Invariant(store.ErrWrongRoomType, "", "Roles and permissions only exist in groups and channels")
}

// SetRole implements store.Store.
func (s *Store) SetRole(ctx context.Context, roomID uuid.UUID, userIDs []int64, on bool) ([]int64, error) {
	r, err := getRoom(ctx, s.db, roomID, false)
	if err != nil {
		return nil, err
	}
	if r.Type == store.OneToOne {
		return nil, roleError()
	}
	var changed pq.Int64Array
	err = s.db.QueryRowxContext(ctx, `
		WITH u AS (
			UPDATE memberships SET is_admin = $3
			WHERE room_id = $1 AND user_id = ANY($2) AND user_id <> $4 AND is_admin <> $3
			RETURNING user_id)
		SELECT coalesce(array_agg(user_id ORDER BY user_id), '{}') FROM u`,
		roomID, pq.Int64Array(store.UniqueInt64(userIDs)), on, r.CreatorID).Scan(&changed)
	if err != nil {
		return nil, mapErr(err)
	}
	return []int64(changed), nil
}

// SetPermissions implements store.Store.
func (s *Store) SetPermissions(ctx context.Context, roomID uuid.UUID, userIDs []int64, perms []store.Permission, on bool) ([]int64, error) {
	r, err := getRoom(ctx, s.db, roomID, false)
	if err != nil {
		return nil, err
	}
	if r.Type == store.OneToOne {
		return nil, roleError()
	}
	if err := store.ValidatePermissions(r.Type, perms); err != nil {
		return nil, err
	}
	ps := make(pq.StringArray, len(perms))
	for i, p := range perms {
		ps[i] = string(p)
	}
	query := `
		WITH u AS (
			UPDATE memberships SET permissions = array(
				SELECT DISTINCT p COLLATE "C" FROM unnest(permissions || $3::text[]) p ORDER BY 1)
			WHERE room_id = $1 AND user_id = ANY($2) AND user_id <> $4 AND NOT permissions @> $3::text[]
			RETURNING user_id)
		SELECT coalesce(array_agg(user_id ORDER BY user_id), '{}') FROM u`
	if !on {
		query = `
		WITH u AS (
			UPDATE memberships SET permissions = array(
				SELECT p FROM unnest(permissions) p WHERE p <> ALL($3::text[]) ORDER BY p COLLATE "C")
			WHERE room_id = $1 AND user_id = ANY($2) AND user_id <> $4 AND permissions && $3::text[]
			RETURNING user_id)
		SELECT coalesce(array_agg(user_id ORDER BY user_id), '{}') FROM u`
	}
	var changed pq.Int64Array
	if err := s.db.QueryRowxContext(ctx, query, roomID, pq.Int64Array(store.UniqueInt64(userIDs)), ps, r.CreatorID).Scan(&changed); err != nil {
		return nil, mapErr(err)
	}
	return []int64(changed), nil
}
