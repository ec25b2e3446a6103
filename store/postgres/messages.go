package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/chatmux/chatmux/store"
)

const msgCols = `m.id, m.room_id, m.seq, coalesce(m.sender_id, 0) AS sender_id, m.content, m.parent_id, m.forwarded_from_id, m.is_forwarded,
	m.is_edited, m.is_deleted, coalesce(m.client_msg_id, '') AS client_msg_id, m.extra, m.created_at, m.updated_at`

func fixMessage(m *store.Message) {
	m.CreatedAt, m.UpdatedAt = utc(m.CreatedAt), utc(m.UpdatedAt)
	if m.Extra == nil {
		m.Extra = store.JSON{}
	}
}

// sendSQL stores a message in one statement: bump the room's last_seq
// (taking its row lock, which serialises sends per room), insert the
// message with that seq, its attachments, and its notification with the
// other members as recipients (only when there are any). The room's
// last_message_id foreign key is deferred to commit, when the message
// exists. The time is read after the row lock is taken, so within a room
// created_at never decreases as seq grows. Sender 0 is the system: stored
// as NULL, and every member is a recipient.
const sendSQL = `
WITH r AS (
	UPDATE rooms SET last_seq = last_seq + 1, last_message_id = $1 WHERE id = $2
	RETURNING last_seq, date_trunc('microseconds', clock_timestamp()) AS ts
), m AS (
	INSERT INTO messages (id, room_id, seq, sender_id, content, parent_id, forwarded_from_id, is_forwarded,
		client_msg_id, extra, created_at, updated_at)
	SELECT $1, $2, r.last_seq, nullif($3::bigint, 0), $4, $5, $6, $6::uuid IS NOT NULL, nullif($7, ''), $8, r.ts, r.ts FROM r
	RETURNING id, seq, created_at
), a AS (
	INSERT INTO attachments (id, message_id, position, media_url, media_type, file_size, mime_type, caption, metadata)
	SELECT x.id, m.id, x.pos, x.url, x.mtype, x.size, x.mime, x.caption, x.meta::jsonb
	FROM m, unnest($11::uuid[], $12::text[], $13::text[], $14::bigint[], $15::text[], $16::text[], $17::text[])
		WITH ORDINALITY AS x(id, url, mtype, size, mime, caption, meta, pos)
), rec AS (
	SELECT array_agg(user_id ORDER BY user_id) AS ids
	FROM memberships WHERE room_id = $2 AND user_id <> $3 AND $18::boolean
), n AS (
	INSERT INTO notifications (id, type, message_id, room_id, created_at, recipients)
	SELECT $9, $10, m.id, $2, m.created_at, rec.ids FROM m, rec WHERE rec.ids IS NOT NULL
	RETURNING recipients
)
SELECT m.seq, m.created_at, coalesce((SELECT recipients FROM n), '{}') FROM m`

// sendOfflineSQL is sendSQL for a send of offline webhooks
// (docs/protocol.md#offline-webhooks): with $19 (NewMessage.Offline in
// microseconds) it also answers the offline recipients (ofl: the members
// other than the sender, not deleted, with no session seen within the
// threshold of the message's time) and the room's name and type, and with
// $20 (the outbox lease) it writes their event's outbox row (o).
var sendOfflineSQL = derive(sendSQL,
	`RETURNING last_seq, date_trunc('microseconds', clock_timestamp()) AS ts
`, `RETURNING last_seq, date_trunc('microseconds', clock_timestamp()) AS ts, name, type
`,
	`	RETURNING recipients
)
SELECT m.seq, m.created_at, coalesce((SELECT recipients FROM n), '{}') FROM m`,
	`	RETURNING recipients
), ofl AS (
	SELECT array_agg(u.id ORDER BY u.id) AS ids, array_agg(u.username ORDER BY u.id) AS names
	FROM m, memberships mb JOIN users u ON u.id = mb.user_id AND u.deleted_at IS NULL
	WHERE mb.room_id = $2 AND mb.user_id <> $3 AND NOT EXISTS (
		SELECT 1 FROM sessions s WHERE s.user_id = mb.user_id AND s.last_seen >= m.created_at - $19::bigint * interval '1 microsecond')
), o AS (
	INSERT INTO webhook_outbox (message_id, room_id, recipients, created_at, locked_until)
	SELECT m.id, $2, ofl.ids, m.created_at, m.created_at + $20::bigint * interval '1 microsecond'
	FROM m, ofl WHERE ofl.ids IS NOT NULL AND $20::bigint > 0
	RETURNING id
)
SELECT m.seq, m.created_at, coalesce((SELECT recipients FROM n), '{}'),
	coalesce((SELECT ids FROM ofl), '{}'), coalesce((SELECT names FROM ofl), '{}'), coalesce((SELECT id FROM o), 0),
	(SELECT name FROM r), (SELECT type FROM r) FROM m`)

// SendMessage implements store.Store. Concurrent sends are written in
// batches (see batch.go), one statement and one commit per batch; with
// Options.UnbatchedSends each send is its own statement (sendSQL) on a
// connection of its own. A client_msg_id that turns out to be a retry
// costs one more lookup.
func (s *Store) SendMessage(ctx context.Context, in store.NewMessage) (store.SendResult, error) {
	in, err := store.ValidateNewMessage(in)
	if err != nil {
		return store.SendResult{}, err
	}
	p, err := newPendingSend(in)
	if err != nil {
		return store.SendResult{}, err
	}
	if s.batch != nil {
		return s.batch.send(ctx, p)
	}
	return s.sendOne(ctx, p)
}

// sendOne stores one message with sendSQL, after a membership read when
// the sender is to be checked.
func (s *Store) sendOne(ctx context.Context, p *pendingSend) (store.SendResult, error) {
	in := p.in
	if in.CheckSender {
		m, err := s.Membership(ctx, in.RoomID, in.SenderID)
		switch {
		case err != nil:
			return store.SendResult{}, err
		case !m.IsMember:
			return store.SendResult{}, store.ErrNotMember
		case !m.CanSend(in.SenderID):
			return store.SendResult{}, store.ErrCannotSend
		}
	}
	n := len(p.atts)
	aIDs, urls, types, mimes, captions, metas := make([]uuid.UUID, n), make(pq.StringArray, n), make(pq.StringArray, n),
		make(pq.StringArray, n), make(pq.StringArray, n), make(pq.StringArray, n)
	sizes := make(pq.Int64Array, n)
	for i, a := range p.atts {
		aIDs[i], urls[i], types[i], sizes[i], mimes[i], captions[i], metas[i] =
			a.ID, a.MediaURL, string(a.MediaType), a.FileSize, a.MimeType, a.Caption, p.metas[i]
	}
	msg := p.msg
	var recipients pq.Int64Array
	args := []any{msg.ID, msg.RoomID, msg.SenderID, msg.Content, msg.ParentID, msg.ForwardedFromID, msg.ClientMsgID, msg.Extra,
		p.noteID, string(p.typ), uuids(aIDs), urls, types, sizes, mimes, captions, metas, in.Notify}
	var at time.Time
	var off offline
	dest := []any{&msg.Seq, &at, &recipients}
	var row *sqlx.Row
	switch stmt := s.sendQuery(ctx); {
	case in.Offline > 0:
		args = append(args, micros(in.Offline), micros(in.OutboxLease))
		dest = append(dest, &off.ids, &off.names, &off.outbox, &off.room, &off.typ)
		if stmt := s.stmt(ctx, sendOfflineSQL); stmt != nil {
			row = stmt.QueryRowxContext(ctx, args...)
		} else {
			row = s.db.QueryRowxContext(ctx, sendOfflineSQL, args...)
		}
	case stmt != nil:
		row = stmt.QueryRowxContext(ctx, args...)
	default:
		row = s.db.QueryRowxContext(ctx, sendSQL, args...)
	}
	if err := row.Scan(dest...); err != nil {
		if in.ClientMsgID != "" && isConstraint(err, "messages_client_msg_id_key") {
			return s.duplicate(ctx, in)
		}
		return store.SendResult{}, mapErr(err)
	}
	return p.result(msg.Seq, at, recipients, off), nil
}

// duplicate loads the original message of a retried client_msg_id.
func (s *Store) duplicate(ctx context.Context, in store.NewMessage) (store.SendResult, error) {
	var m store.Message
	err := sqlx.GetContext(ctx, s.db, &m, `SELECT `+msgCols+` FROM messages m
		WHERE m.room_id = $1 AND coalesce(m.sender_id, 0) = $2 AND m.client_msg_id = $3`, in.RoomID, in.SenderID, in.ClientMsgID)
	if err != nil {
		return store.SendResult{}, mapErr(err)
	}
	fixMessage(&m)
	atts, err := loadAttachments(ctx, s.db, []uuid.UUID{m.ID})
	if err != nil {
		return store.SendResult{}, err
	}
	out := atts[m.ID]
	if out == nil {
		out = []store.Attachment{}
	}
	return store.SendResult{Message: m, Attachments: out, Duplicate: true}, nil
}

// Messages implements store.Store.
func (s *Store) Messages(ctx context.Context, ids []uuid.UUID) ([]store.Message, error) {
	ids = store.UniqueUUIDs(ids)
	out := []store.Message{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []store.Message
	if err := sqlx.SelectContext(ctx, s.db, &rows, `SELECT `+msgCols+` FROM messages m WHERE m.id = ANY($1::uuid[])`, uuids(ids)); err != nil {
		return nil, mapErr(err)
	}
	byID := make(map[uuid.UUID]store.Message, len(rows))
	for _, m := range rows {
		fixMessage(&m)
		byID[m.ID] = m
	}
	for _, id := range ids {
		if m, ok := byID[id]; ok {
			out = append(out, m)
		}
	}
	return out, nil
}

// MessageViews implements store.Store.
func (s *Store) MessageViews(ctx context.Context, ids []uuid.UUID) ([]store.MessageView, error) {
	return s.orderedViews(ctx, store.UniqueUUIDs(ids))
}

func (s *Store) orderedViews(ctx context.Context, ids []uuid.UUID) ([]store.MessageView, error) {
	views, err := s.loadViews(ctx, s.db, ids)
	if err != nil {
		return nil, err
	}
	out := make([]store.MessageView, 0, len(ids))
	for _, id := range ids {
		if v, ok := views[id]; ok {
			out = append(out, *v)
		}
	}
	return out, nil
}

type viewRow struct {
	store.Message
	SUsername   string `db:"s_username"`
	SEmail      string `db:"s_email"`
	SFirstName  string `db:"s_first_name"`
	SLastName   string `db:"s_last_name"`
	SDeleted    bool   `db:"s_deleted"`
	Delivered   []byte `db:"delivered"`
	Receipts    []byte `db:"receipts"`
	Reactions   []byte `db:"reactions"`
	Attachments []byte `db:"attachments"`
}

type jsonReceipt struct {
	ID     uuid.UUID  `json:"id"`
	ReadAt time.Time  `json:"read_at"`
	User   store.User `json:"user"`
}

type jsonReaction struct {
	ID        uuid.UUID  `json:"id"`
	Content   string     `json:"content"`
	CreatedAt time.Time  `json:"created_at"`
	User      store.User `json:"user"`
}

type jsonAttachment struct {
	ID        uuid.UUID       `json:"id"`
	MediaURL  string          `json:"media_url"`
	MediaType store.MediaType `json:"media_type"`
	FileSize  int64           `json:"file_size"`
	MimeType  string          `json:"mime_type"`
	Caption   string          `json:"caption"`
	Metadata  store.JSON      `json:"metadata"`
}

// viewsSQL loads the messages $1, each with its sender and, aggregated as
// JSON arrays, its deliveries, read receipts, reactions and attachments.
//
// It deliberately starts from unnest($1) rather than from a recursive CTE:
// the planner estimates a recursive CTE at thousands of rows, and the
// resulting cost estimate switched JIT compilation on (half a second per
// call). Referenced messages are resolved separately (closureSQL). A system
// message has no sender (sender_id NULL): its sender columns are empty.
const viewsSQL = `
SELECT ` + msgCols + `,
	coalesce(s.username, '') AS s_username, coalesce(s.email, '') AS s_email,
	coalesce(s.first_name, '') AS s_first_name, coalesce(s.last_name, '') AS s_last_name,
	s.deleted_at IS NOT NULL AS s_deleted,
	coalesce((SELECT json_agg(u.username ORDER BY d.user_id)
		FROM deliveries d JOIN users u ON u.id = d.user_id WHERE d.message_id = m.id), '[]') AS delivered,
	coalesce((SELECT json_agg(json_build_object('id', rr.id, 'read_at', rr.read_at, 'user', row_to_json(u)) ORDER BY rr.read_at, rr.id)
		FROM read_receipts rr JOIN users u ON u.id = rr.reader_id WHERE rr.message_id = m.id), '[]') AS receipts,
	coalesce((SELECT json_agg(json_build_object('id', re.id, 'content', re.content, 'created_at', re.created_at, 'user', row_to_json(u))
			ORDER BY re.created_at, re.id)
		FROM reactions re JOIN users u ON u.id = re.user_id WHERE re.message_id = m.id), '[]') AS reactions,
	coalesce((SELECT json_agg(json_build_object('id', a.id, 'media_url', a.media_url, 'media_type', a.media_type,
			'file_size', a.file_size, 'mime_type', a.mime_type, 'caption', a.caption, 'metadata', a.metadata) ORDER BY a.position)
		FROM attachments a WHERE a.message_id = m.id), '[]') AS attachments
FROM unnest($1::uuid[]) AS t(id) JOIN messages m ON m.id = t.id LEFT JOIN users s ON s.id = m.sender_id`

// closureSQL returns the ids $1 and every message they reference (parents
// and forwarded messages, recursively).
const closureSQL = `
WITH RECURSIVE t(id) AS (
	SELECT unnest($1::uuid[])
	UNION
	SELECT x.ref FROM t JOIN messages m ON m.id = t.id
		CROSS JOIN LATERAL (VALUES (m.parent_id), (m.forwarded_from_id)) AS x(ref)
	WHERE x.ref IS NOT NULL
)
SELECT id FROM t`

// viewsBatch bounds the ids of one viewsSQL statement (and so its cost
// estimate).
const viewsBatch = 200

// loadViews batch-loads the views of ids and of every message they
// reference: one statement when the messages reference nothing outside
// the batch (the common case), at most three otherwise (the batch, the
// closure of the missing references, their views), whatever the number of
// messages up to viewsBatch.
func (s *Store) loadViews(ctx context.Context, q sqlx.ExtContext, ids []uuid.UUID) (map[uuid.UUID]*store.MessageView, error) {
	views := make(map[uuid.UUID]*store.MessageView, len(ids))
	if err := s.addViews(ctx, q, views, ids); err != nil {
		return nil, err
	}
	var missing []uuid.UUID
	for _, v := range views {
		for _, ref := range []*uuid.UUID{v.ParentID, v.ForwardedFromID} {
			if ref != nil && views[*ref] == nil {
				missing = append(missing, *ref)
			}
		}
	}
	if len(missing) > 0 {
		var closure []uuid.UUID
		if err := s.selectHot(ctx, q, &closure, closureSQL, uuids(store.UniqueUUIDs(missing))); err != nil {
			return nil, mapErr(err)
		}
		closure = slices.DeleteFunc(closure, func(id uuid.UUID) bool { return views[id] != nil })
		if err := s.addViews(ctx, q, views, closure); err != nil {
			return nil, err
		}
	}
	for _, v := range views {
		if v.ParentID != nil {
			v.Parent = views[*v.ParentID]
		}
		if v.ForwardedFromID != nil {
			v.ForwardedFrom = views[*v.ForwardedFromID]
		}
	}
	return views, nil
}

// addViews loads the views of ids (without their references) into views.
func (s *Store) addViews(ctx context.Context, q sqlx.ExtContext, views map[uuid.UUID]*store.MessageView, ids []uuid.UUID) error {
	for len(ids) > 0 {
		batch := ids[:min(len(ids), viewsBatch)]
		ids = ids[len(batch):]
		var rows []viewRow
		if err := s.selectHot(ctx, q, &rows, viewsSQL, uuids(batch)); err != nil {
			return mapErr(err)
		}
		for _, r := range rows {
			v, err := r.view()
			if err != nil {
				return err
			}
			views[r.ID] = v
		}
	}
	return nil
}

func (r *viewRow) view() (*store.MessageView, error) {
	fixMessage(&r.Message)
	v := &store.MessageView{
		Message: r.Message,
		Sender: store.User{ID: r.SenderID, Username: r.SUsername, Email: r.SEmail, FirstName: r.SFirstName,
			LastName: r.SLastName, Deleted: r.SDeleted},
		DeliveredTo:  []string{},
		ReadReceipts: []store.ReadReceiptView{},
		Reactions:    []store.ReactionView{},
		Attachments:  []store.Attachment{},
	}
	var receipts []jsonReceipt
	var reactions []jsonReaction
	var atts []jsonAttachment
	if err := errors.Join(
		json.Unmarshal(r.Delivered, &v.DeliveredTo),
		json.Unmarshal(r.Receipts, &receipts),
		json.Unmarshal(r.Reactions, &reactions),
		json.Unmarshal(r.Attachments, &atts),
	); err != nil {
		return nil, fmt.Errorf("store/postgres: failed to decode message view: %w", err)
	}
	for _, x := range receipts {
		v.ReadReceipts = append(v.ReadReceipts, store.ReadReceiptView{
			ReadReceipt: store.ReadReceipt{ID: x.ID, MessageID: r.ID, ReaderID: x.User.ID, ReadAt: utc(x.ReadAt)},
			Reader:      x.User,
		})
	}
	for _, x := range reactions {
		v.Reactions = append(v.Reactions, store.ReactionView{
			Reaction: store.Reaction{ID: x.ID, MessageID: r.ID, UserID: x.User.ID, Content: x.Content, CreatedAt: utc(x.CreatedAt)},
			User:     x.User,
		})
	}
	for _, x := range atts {
		if x.Metadata == nil {
			x.Metadata = store.JSON{}
		}
		v.Attachments = append(v.Attachments, store.Attachment{
			ID: x.ID, MessageID: r.ID, MediaURL: x.MediaURL, MediaType: x.MediaType, FileSize: x.FileSize,
			MimeType: x.MimeType, Caption: x.Caption, Metadata: x.Metadata,
		})
	}
	return v, nil
}

func loadAttachments(ctx context.Context, q sqlx.ExtContext, ids []uuid.UUID) (map[uuid.UUID][]store.Attachment, error) {
	var rows []store.Attachment
	if err := sqlx.SelectContext(ctx, q, &rows, `
		SELECT id, message_id, media_url, media_type, file_size, mime_type, caption, metadata
		FROM attachments WHERE message_id = ANY($1::uuid[]) ORDER BY message_id, position`, uuids(ids)); err != nil {
		return nil, mapErr(err)
	}
	out := map[uuid.UUID][]store.Attachment{}
	for _, a := range rows {
		if a.Metadata == nil {
			a.Metadata = store.JSON{}
		}
		out[a.MessageID] = append(out[a.MessageID], a)
	}
	return out, nil
}

// roomExists reports ErrNotFound for a missing room.
func roomExists(ctx context.Context, q sqlx.ExtContext, roomID uuid.UUID) error {
	var ok bool
	if err := sqlx.GetContext(ctx, q, &ok, `SELECT EXISTS (SELECT 1 FROM rooms WHERE id = $1)`, roomID); err != nil {
		return mapErr(err)
	}
	if !ok {
		return store.ErrNotFound
	}
	return nil
}

// MessagesPage implements store.Store.
func (s *Store) MessagesPage(ctx context.Context, roomID uuid.UUID, page, size int) (store.MessagePage, error) {
	if size < 0 {
		return store.MessagePage{}, store.Invalid("size", "Ensure this value is greater than or equal to 1.")
	}
	var total int
	if err := sqlx.GetContext(ctx, s.db, &total, `
		SELECT (SELECT count(*) FROM messages m WHERE m.room_id = r.id AND NOT m.is_deleted) FROM rooms r WHERE r.id = $1`,
		roomID); err != nil {
		return store.MessagePage{}, mapErr(err)
	}
	p := store.Paginate(total, page, size)
	lo, hi := p.Bounds()
	p.Messages = []store.MessageView{}
	if hi <= lo {
		return p, nil
	}
	var ids []uuid.UUID
	if err := sqlx.SelectContext(ctx, s.db, &ids, `
		SELECT id FROM messages WHERE room_id = $1 AND NOT is_deleted ORDER BY seq DESC LIMIT $2 OFFSET $3`,
		roomID, hi-lo, lo); err != nil {
		return store.MessagePage{}, mapErr(err)
	}
	views, err := s.orderedViews(ctx, ids)
	if err != nil {
		return store.MessagePage{}, err
	}
	p.Messages = views
	return p, nil
}

func (s *Store) seqQuery(ctx context.Context, roomID uuid.UUID, query string, seq int64, limit int) ([]store.MessageView, error) {
	if limit < 1 {
		return nil, store.Invalid("limit", "Ensure this value is greater than or equal to 1.")
	}
	var ids []uuid.UUID
	if err := sqlx.SelectContext(ctx, s.db, &ids, query, roomID, seq, limit); err != nil {
		return nil, mapErr(err)
	}
	if len(ids) == 0 {
		if err := roomExists(ctx, s.db, roomID); err != nil {
			return nil, err
		}
		return []store.MessageView{}, nil
	}
	return s.orderedViews(ctx, ids)
}

// MessagesAfter implements store.Store.
func (s *Store) MessagesAfter(ctx context.Context, roomID uuid.UUID, afterSeq int64, limit int) ([]store.MessageView, error) {
	return s.seqQuery(ctx, roomID, `SELECT id FROM messages WHERE room_id = $1 AND NOT is_deleted AND seq > $2 ORDER BY seq LIMIT $3`, afterSeq, limit)
}

// MessagesBefore implements store.Store.
func (s *Store) MessagesBefore(ctx context.Context, roomID uuid.UUID, beforeSeq int64, limit int) ([]store.MessageView, error) {
	return s.seqQuery(ctx, roomID, `SELECT id FROM messages WHERE room_id = $1 AND NOT is_deleted AND seq < $2 ORDER BY seq DESC LIMIT $3`, beforeSeq, limit)
}

// EditMessage implements store.Store.
func (s *Store) EditMessage(ctx context.Context, messageID uuid.UUID, content string, extra store.JSON) (store.Message, error) {
	if err := store.ValidateText("content", content); err != nil {
		return store.Message{}, err
	}
	var x any
	if extra != nil {
		c, err := extra.Clone("extra_fields")
		if err != nil {
			return store.Message{}, err
		}
		x = c
	}
	var m store.Message
	err := sqlx.GetContext(ctx, s.db, &m, `
		UPDATE messages m SET content = $2, is_edited = true, extra = extra || coalesce($3::jsonb, '{}'), updated_at = $4
		WHERE id = $1 AND NOT is_deleted RETURNING `+msgCols, messageID, content, x, store.Now())
	if err != nil {
		return store.Message{}, mapErr(err)
	}
	fixMessage(&m)
	return m, nil
}

// lockRoomsOf locks the rooms of the given messages (in id order, so
// concurrent lockers cannot deadlock) and returns them.
func lockRoomsOf(ctx context.Context, tx *sqlx.Tx, ids pq.StringArray) error {
	_, err := tx.ExecContext(ctx, `
		SELECT id FROM rooms WHERE id IN (SELECT room_id FROM messages WHERE id = ANY($1::uuid[]))
		ORDER BY id FOR UPDATE`, ids)
	return mapErr(err)
}

// DeleteMessages implements store.Store.
func (s *Store) DeleteMessages(ctx context.Context, ids []uuid.UUID, hard bool) ([]uuid.UUID, error) {
	ids = store.UniqueUUIDs(ids)
	if len(ids) == 0 {
		return []uuid.UUID{}, nil
	}
	arr := uuids(ids)
	var deleted []uuid.UUID
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		deleted = nil
		// Lock the rooms first: a concurrent send cannot then slip a newer
		// message past the last-message recomputation below.
		if err := lockRoomsOf(ctx, tx, arr); err != nil {
			return err
		}
		if !hard {
			return mapErr(sqlx.SelectContext(ctx, tx, &deleted, `
				WITH d AS (
					UPDATE messages SET is_deleted = true, updated_at = $2
					WHERE id = ANY($1::uuid[]) AND NOT is_deleted RETURNING id, room_id
				), n AS (
					DELETE FROM notifications WHERE message_id IN (SELECT id FROM d)
				), r AS (
					UPDATE rooms r SET last_message_id = (
						SELECT m.id FROM messages m
						WHERE m.room_id = r.id AND NOT m.is_deleted AND m.id NOT IN (SELECT id FROM d)
						ORDER BY m.seq DESC LIMIT 1)
					WHERE r.id IN (SELECT room_id FROM d)
				)
				SELECT id FROM d`, arr, store.Now()))
		}
		if _, err := tx.ExecContext(ctx, `
			UPDATE rooms r SET last_message_id = (
				SELECT m.id FROM messages m
				WHERE m.room_id = r.id AND NOT m.is_deleted AND m.id <> ALL($1::uuid[])
				ORDER BY m.seq DESC LIMIT 1)
			WHERE r.id IN (SELECT room_id FROM messages WHERE id = ANY($1::uuid[]))`, arr); err != nil {
			return mapErr(err)
		}
		return mapErr(sqlx.SelectContext(ctx, tx, &deleted, `DELETE FROM messages WHERE id = ANY($1::uuid[]) RETURNING id`, arr))
	})
	if err != nil {
		return nil, err
	}
	set := make(map[uuid.UUID]bool, len(deleted))
	for _, id := range deleted {
		set[id] = true
	}
	out := []uuid.UUID{}
	for _, id := range ids {
		if set[id] {
			out = append(out, id)
		}
	}
	return out, nil
}

type liveRow struct {
	ID        uuid.UUID `db:"id"`
	RoomID    uuid.UUID `db:"room_id"`
	SenderID  int64     `db:"sender_id"`
	IsDeleted bool      `db:"is_deleted"`
}

// liveMessages resolves ids to not-deleted messages in input order, or
// ErrNotFound when any is missing or soft-deleted.
func liveMessages(ctx context.Context, q sqlx.ExtContext, ids []uuid.UUID) ([]liveRow, error) {
	var rows []liveRow
	if err := sqlx.SelectContext(ctx, q, &rows, `SELECT id, room_id, coalesce(sender_id, 0) AS sender_id, is_deleted FROM messages WHERE id = ANY($1::uuid[])`, uuids(ids)); err != nil {
		return nil, mapErr(err)
	}
	byID := make(map[uuid.UUID]liveRow, len(rows))
	for _, r := range rows {
		byID[r.ID] = r
	}
	out := make([]liveRow, 0, len(ids))
	for _, id := range ids {
		r, ok := byID[id]
		if !ok || r.IsDeleted {
			return nil, store.ErrNotFound
		}
		out = append(out, r)
	}
	return out, nil
}

// Acknowledge implements store.Store. Concurrent calls are written in
// batches (see acks.go), one transaction per batch; with
// Options.UnbatchedAcks each call is a transaction of its own.
func (s *Store) Acknowledge(ctx context.Context, userID int64, messageIDs []uuid.UUID) ([]uuid.UUID, error) {
	ids := store.UniqueUUIDs(messageIDs)
	if s.acks != nil {
		out, err := s.acks.submit(ctx, &pendingAck{user: userID, ids: ids})
		if err != nil {
			return nil, err
		}
		return out.acked, out.err
	}
	return s.acknowledgeOne(ctx, userID, ids)
}

// acknowledgeOne acknowledges ids (without repeats) for userID in a
// transaction of its own.
func (s *Store) acknowledgeOne(ctx context.Context, userID int64, ids []uuid.UUID) ([]uuid.UUID, error) {
	acked := []uuid.UUID{}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		acked = acked[:0]
		rows, err := liveMessages(ctx, tx, ids)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if r.SenderID != userID {
				acked = append(acked, r.ID)
			}
		}
		if len(acked) == 0 {
			return nil
		}
		arr := uuids(acked)
		// Lock the notifications so that two users acknowledging the same
		// message cannot both leave a recipient-less notification behind.
		if _, err := tx.ExecContext(ctx, `SELECT id FROM notifications WHERE message_id = ANY($1::uuid[]) ORDER BY id FOR UPDATE`, arr); err != nil {
			return mapErr(err)
		}
		_, err = tx.ExecContext(ctx, `
			WITH ins AS (
				INSERT INTO deliveries (message_id, user_id, delivered_at)
				SELECT unnest($1::uuid[]), $2, $3 ON CONFLICT DO NOTHING
			), upd AS (
				UPDATE notifications SET recipients = array_remove(recipients, $2::bigint)
				WHERE message_id = ANY($1::uuid[]) AND recipients @> ARRAY[$2::bigint]
					AND NOT recipients <@ ARRAY[$2::bigint]
			)
			DELETE FROM notifications WHERE message_id = ANY($1::uuid[]) AND recipients <@ ARRAY[$2::bigint]`,
			arr, userID, store.Now())
		return mapErr(err)
	})
	if err != nil {
		return nil, err
	}
	return acked, nil
}

// MarkRead implements store.Store.
func (s *Store) MarkRead(ctx context.Context, readerID int64, messageIDs []uuid.UUID) ([]store.ReadReceipt, error) {
	ids := store.UniqueUUIDs(messageIDs)
	rows, err := liveMessages(ctx, s.db, ids)
	if err != nil {
		return nil, err
	}
	var want []uuid.UUID
	var rids []uuid.UUID
	for _, r := range rows {
		if r.SenderID != readerID {
			want = append(want, r.ID)
			rids = append(rids, uuid.New())
		}
	}
	out := []store.ReadReceipt{}
	if len(want) == 0 {
		return out, nil
	}
	now := store.Now()
	var got []uuid.UUID
	if err := sqlx.SelectContext(ctx, s.db, &got, `
		INSERT INTO read_receipts (id, message_id, reader_id, read_at)
		SELECT x.id, x.mid, $3, $4 FROM unnest($1::uuid[], $2::uuid[]) AS x(id, mid)
		ON CONFLICT (message_id, reader_id) DO NOTHING
		RETURNING message_id`, uuids(rids), uuids(want), readerID, now); err != nil {
		return nil, mapErr(err)
	}
	fresh := make(map[uuid.UUID]bool, len(got))
	for _, id := range got {
		fresh[id] = true
	}
	for i, id := range want {
		if fresh[id] {
			out = append(out, store.ReadReceipt{ID: rids[i], MessageID: id, ReaderID: readerID, ReadAt: now})
		}
	}
	return out, nil
}

// AddReaction implements store.Store.
func (s *Store) AddReaction(ctx context.Context, in store.NewReaction) (store.Reaction, error) {
	if err := store.ValidateReaction(in.Content); err != nil {
		return store.Reaction{}, err
	}
	now := store.Now()
	re := store.Reaction{ID: uuid.New(), MessageID: in.MessageID, UserID: in.UserID, Content: in.Content, CreatedAt: now}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		rows, err := liveMessages(ctx, tx, []uuid.UUID{in.MessageID})
		if err != nil {
			return err
		}
		var old struct {
			ID      uuid.UUID `db:"id"`
			Content string    `db:"content"`
		}
		err = sqlx.GetContext(ctx, tx, &old, `SELECT id, content FROM reactions WHERE message_id = $1 AND user_id = $2 FOR UPDATE`, in.MessageID, in.UserID)
		switch {
		case err == nil && old.Content == in.Content:
			return store.ErrConflict
		case err == nil:
			// The old reaction's notification goes with it (ON DELETE CASCADE).
			if _, err := tx.ExecContext(ctx, `DELETE FROM reactions WHERE id = $1`, old.ID); err != nil {
				return mapErr(err)
			}
		case !errors.Is(mapErr(err), store.ErrNotFound):
			return mapErr(err)
		}
		_, err = tx.ExecContext(ctx, `
			WITH re AS (
				INSERT INTO reactions (id, message_id, user_id, content, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id
			), rec AS (
				SELECT array_agg(user_id ORDER BY user_id) AS ids
				FROM memberships WHERE room_id = $6 AND user_id <> $3 AND $7::boolean
			)
			INSERT INTO notifications (id, type, message_id, room_id, reaction_id, created_at, recipients)
			SELECT $8, 'REACTION', $2, $6, re.id, $5, rec.ids FROM re, rec WHERE rec.ids IS NOT NULL`,
			re.ID, re.MessageID, re.UserID, re.Content, now, rows[0].RoomID, in.Notify, uuid.New())
		return mapErr(err)
	})
	if err != nil {
		return store.Reaction{}, err
	}
	return re, nil
}

// RemoveReaction implements store.Store.
func (s *Store) RemoveReaction(ctx context.Context, messageID uuid.UUID, userID int64) (bool, error) {
	if _, err := liveMessages(ctx, s.db, []uuid.UUID{messageID}); err != nil {
		return false, err
	}
	// The REACTION notification goes with the reaction (ON DELETE CASCADE).
	res, err := s.db.ExecContext(ctx, `DELETE FROM reactions WHERE message_id = $1 AND user_id = $2`, messageID, userID)
	if err != nil {
		return false, mapErr(err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// PendingNotifications implements store.Store.
func (s *Store) PendingNotifications(ctx context.Context, userID int64) ([]store.RoomNotifications, error) {
	var rows []struct {
		ID        uuid.UUID              `db:"id"`
		Type      store.NotificationType `db:"type"`
		RoomID    uuid.UUID              `db:"room_id"`
		MessageID uuid.UUID              `db:"message_id"`
	}
	if err := sqlx.SelectContext(ctx, s.db, &rows, `
		SELECT n.id, n.type, n.room_id, n.message_id
		FROM notifications n
		JOIN messages m ON m.id = n.message_id
		WHERE n.recipients @> ARRAY[$1::bigint]
		ORDER BY m.created_at DESC, m.seq DESC, n.created_at DESC, n.id DESC`, userID); err != nil {
		return nil, mapErr(err)
	}
	out := []store.RoomNotifications{}
	if len(rows) == 0 {
		return out, nil
	}
	ids := make([]uuid.UUID, len(rows))
	for i, r := range rows {
		ids[i] = r.MessageID
	}
	views, err := s.loadViews(ctx, s.db, ids)
	if err != nil {
		return nil, err
	}
	index := map[uuid.UUID]int{}
	for _, r := range rows {
		v, ok := views[r.MessageID]
		if !ok {
			continue // deleted in between
		}
		i, ok := index[r.RoomID]
		if !ok {
			i = len(out)
			index[r.RoomID] = i
			out = append(out, store.RoomNotifications{RoomID: r.RoomID})
		}
		out[i].Notifications = append(out[i].Notifications, store.NotificationView{ID: r.ID, Type: r.Type, Message: *v})
	}
	return out, nil
}
