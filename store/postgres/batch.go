package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/chatmux/chatmux/store"
)

// Group commit of sends. Concurrent SendMessage calls hand their message
// to a writer goroutine, which writes them together: one statement
// (sendBatchSQL, prepared), one round trip, one commit for the whole
// batch. While a batch is being written the next one collects in the
// queue; the writer takes whatever is queued when it becomes free, so a
// lone send goes at once (no fixed delay) and batches grow with the load
// by themselves, bounded by Options.MaxBatch sends and
// Options.MaxBatchBytes bytes. There are Options.BatchWriters writers,
// each with the rooms whose id hashes to it: a room's sends are written in
// the order they arrive, and two batches in flight never wait for each
// other's room locks.
//
// What a batch keeps true:
//   - seq: the statement locks the batch's rooms in id order, then gives
//     each room's messages last_seq+1, +2, ... in arrival order, so seq
//     has no gap and follows commit order, as with single sends.
//   - idempotency: a client_msg_id already stored (by an earlier batch, a
//     single send or another node) is answered as a duplicate; a retry
//     within the batch being collected waits for the next batch, which
//     then finds the first one stored.
//   - failures are per send: the statement checks the room, the sender's
//     right (NewMessage.CheckSender), the sender and the parent and
//     forwarded messages per row and stores only the rows that pass. If
//     the statement fails anyway (a constraint violated by a row in a race
//     with another transaction), nothing of it is stored and the writer
//     sends the batch's rows again one by one, so only the bad row fails.
//   - nothing is acknowledged before the commit: a caller gets its result
//     only when the statement (its own transaction) has committed; a
//     connection lost at commit fails the whole batch with
//     store.ErrUnavailable ("may or may not have taken effect").
//   - a caller whose context ends while its batch is in flight gets the
//     context's error; the batch goes on unaffected (under its own
//     timeout, Options.BatchTimeout), so a retry with the same
//     client_msg_id then finds the stored message.

// Defaults of the batch bounds in Options.
const (
	DefaultBatchWriters  = 1
	DefaultMaxBatch      = 128
	DefaultMaxBatchBytes = 1 << 20
	DefaultBatchTimeout  = 30 * time.Second
)

// errClosed is the error of a send to a closed store.
var errClosed = fmt.Errorf("store/postgres: the store is closed: %w", store.ErrUnavailable)

// sendBatchSQL writes a batch of sends. $1-$12 are the messages, one array
// element each (a sender 0 is the system: NULL; "" parent, forward or
// client_msg_id: none); $13-$21 the attachments of all of them, each with
// its message's id. It answers one row per message, in no particular
// order: its ordinality, its status (ok, or the reason it was not
// stored), and for a stored one its seq, time and notification recipients.
//
// x: the input rows. lk: their rooms, locked in id order (concurrent
// batches and multi-room lockers cannot deadlock). c: each row's status;
// its lookups are scalar or LIMIT subqueries so that each stays a probe
// of a primary key or unique index whatever the generic plan estimates.
// k: the rows to store, numbered within their room in arrival order. r:
// every room's last_seq moves past its rows, and its last message to the
// latest; the time is read after the lock, so within a room created_at
// never decreases as seq grows. Then the messages, attachments and
// notifications (to every member but the sender) go in; the room's
// last_message_id foreign key is deferred to the commit.
const sendBatchSQL = `
WITH x AS MATERIALIZED (
	SELECT u.ord, u.id, u.room, nullif(u.sid, 0) AS sid, u.content, nullif(u.parent, '')::uuid AS parent,
		nullif(u.fwd, '')::uuid AS fwd, nullif(u.cmid, '') AS cmid, u.extra::jsonb AS extra, u.nid, u.ntype, u.notify, u.chk
	FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
		$9::uuid[], $10::text[], $11::boolean[], $12::boolean[])
		WITH ORDINALITY AS u(id, room, sid, content, parent, fwd, cmid, extra, nid, ntype, notify, chk, ord)
), lk AS MATERIALIZED (
	SELECT r.id, r.type, r.creator_id, r.group_locked FROM rooms r
	WHERE r.id = ANY ($2::uuid[]) ORDER BY r.id FOR UPDATE
), c AS MATERIALIZED (
	SELECT x.*, CASE
		WHEN lk.id IS NULL THEN 'not_found'
		WHEN x.chk AND mb.is_admin IS NULL THEN 'not_member'
		WHEN x.chk AND NOT (lk.type = 'OneToOneChat'
			OR (lk.type = 'GroupChat' AND (NOT lk.group_locked OR lk.creator_id IS NOT DISTINCT FROM x.sid OR mb.is_admin))
			OR (lk.type = 'Channel' AND (lk.creator_id IS NOT DISTINCT FROM x.sid OR mb.is_admin
				OR 'can_send_messages' = ANY (mb.permissions)))) THEN 'cannot_send'
		WHEN x.cmid IS NOT NULL AND EXISTS (
			SELECT 1 FROM messages d WHERE d.room_id = x.room AND d.sender_id = x.sid AND d.client_msg_id = x.cmid
			UNION ALL
			SELECT 1 FROM messages d WHERE x.sid IS NULL AND d.room_id = x.room AND d.sender_id IS NULL AND d.client_msg_id = x.cmid
		) THEN 'duplicate'
		WHEN x.sid IS NOT NULL AND (SELECT 1 FROM users WHERE id = x.sid) IS NULL THEN 'no_user'
		WHEN x.parent IS NOT NULL AND (SELECT 1 FROM messages WHERE id = x.parent) IS NULL THEN 'bad_parent'
		WHEN x.fwd IS NOT NULL AND (SELECT 1 FROM messages WHERE id = x.fwd) IS NULL THEN 'bad_forward'
		ELSE 'ok' END AS st
	FROM x LEFT JOIN lk ON lk.id = x.room
	LEFT JOIN LATERAL (
		SELECT mb.is_admin, mb.permissions FROM memberships mb
		WHERE x.chk AND mb.room_id = x.room AND mb.user_id = x.sid LIMIT 1
	) mb ON true
), k AS MATERIALIZED (
	SELECT c.*, row_number() OVER (PARTITION BY c.room ORDER BY c.ord) AS rn FROM c WHERE c.st = 'ok'
), cnt AS (
	SELECT room, count(*) AS n, (array_agg(id ORDER BY ord DESC))[1] AS last_id FROM k GROUP BY room
), r AS (
	UPDATE rooms r SET last_seq = r.last_seq + cnt.n, last_message_id = cnt.last_id FROM cnt WHERE r.id = cnt.room
	RETURNING r.id, r.last_seq - cnt.n AS base, date_trunc('microseconds', clock_timestamp()) AS ts
), m AS (
	INSERT INTO messages (id, room_id, seq, sender_id, content, parent_id, forwarded_from_id, is_forwarded,
		client_msg_id, extra, created_at, updated_at)
	SELECT k.id, k.room, r.base + k.rn, k.sid, k.content, k.parent, k.fwd, k.fwd IS NOT NULL, k.cmid, k.extra, r.ts, r.ts
	FROM k JOIN r ON r.id = k.room
	RETURNING id, seq, created_at
), a AS (
	INSERT INTO attachments (id, message_id, position, media_url, media_type, file_size, mime_type, caption, metadata)
	SELECT y.id, y.mid, y.pos, y.url, y.mtype, y.size, y.mime, y.caption, y.meta::jsonb
	FROM unnest($13::uuid[], $14::uuid[], $15::integer[], $16::text[], $17::text[], $18::bigint[], $19::text[],
		$20::text[], $21::text[]) AS y(id, mid, pos, url, mtype, size, mime, caption, meta)
	WHERE y.mid IN (SELECT id FROM m)
), n AS (
	INSERT INTO notifications (id, type, message_id, room_id, created_at, recipients)
	SELECT k.nid, k.ntype, k.id, k.room, r.ts, rec.ids
	FROM k JOIN r ON r.id = k.room
	CROSS JOIN LATERAL (SELECT array_agg(mb.user_id ORDER BY mb.user_id) AS ids FROM memberships mb
		WHERE mb.room_id = k.room AND mb.user_id IS DISTINCT FROM k.sid) rec
	WHERE k.notify AND rec.ids IS NOT NULL
	RETURNING message_id, recipients
)
SELECT c.ord, c.st, coalesce(m.seq, 0), coalesce(m.created_at, 'epoch'), coalesce(n.recipients, '{}')
FROM c LEFT JOIN m ON m.id = c.id LEFT JOIN n ON n.message_id = c.id`

// sendBatchOfflineSQL is sendBatchSQL for a batch with a send of offline
// webhooks (NewMessage.Offline; docs/protocol.md#offline-webhooks): $22 and
// $23 are each message's Offline and OutboxLease in microseconds (0: none),
// and each row also answers its offline recipients (ids and usernames),
// its outbox row, and its room's name and type. ofl: the members other
// than the sender, not deleted, with no session seen within the threshold
// of the message's time; o: their event's outbox row, leased to the
// caller. A batch without such a send runs sendBatchSQL as it is, and
// pays nothing for webhooks.
var sendBatchOfflineSQL = derive(sendBatchSQL,
	`u.notify, u.chk
	FROM`, `u.notify, u.chk, u.offl, u.lease
	FROM`,
	`$11::boolean[], $12::boolean[])
		WITH ORDINALITY AS u(id, room, sid, content, parent, fwd, cmid, extra, nid, ntype, notify, chk, ord)`,
	`$11::boolean[], $12::boolean[], $22::bigint[], $23::bigint[])
		WITH ORDINALITY AS u(id, room, sid, content, parent, fwd, cmid, extra, nid, ntype, notify, chk, offl, lease, ord)`,
	`SELECT r.id, r.type, r.creator_id,`, `SELECT r.id, r.type, r.name, r.creator_id,`,
	`ELSE 'ok' END AS st
`, `ELSE 'ok' END AS st, lk.name AS rname, lk.type AS rtype
`,
	`	RETURNING message_id, recipients
)
SELECT c.ord, c.st, coalesce(m.seq, 0), coalesce(m.created_at, 'epoch'), coalesce(n.recipients, '{}')
FROM c LEFT JOIN m ON m.id = c.id LEFT JOIN n ON n.message_id = c.id`,
	`	RETURNING message_id, recipients
), ofl AS (
	SELECT k.id, k.room, k.rname, k.rtype, r.ts, k.lease, array_agg(u.id ORDER BY u.id) AS ids,
		array_agg(u.username ORDER BY u.id) AS names
	FROM k JOIN r ON r.id = k.room
	JOIN memberships mb ON mb.room_id = k.room AND mb.user_id IS DISTINCT FROM k.sid
	JOIN users u ON u.id = mb.user_id AND u.deleted_at IS NULL
	WHERE k.offl > 0 AND NOT EXISTS (
		SELECT 1 FROM sessions s WHERE s.user_id = mb.user_id AND s.last_seen >= r.ts - k.offl * interval '1 microsecond')
	GROUP BY k.id, k.room, k.rname, k.rtype, r.ts, k.lease
), o AS (
	INSERT INTO webhook_outbox (message_id, room_id, recipients, created_at, locked_until)
	SELECT ofl.id, ofl.room, ofl.ids, ofl.ts, ofl.ts + ofl.lease * interval '1 microsecond' FROM ofl WHERE ofl.lease > 0
	RETURNING id, message_id
)
SELECT c.ord, c.st, coalesce(m.seq, 0), coalesce(m.created_at, 'epoch'), coalesce(n.recipients, '{}'),
	coalesce(ofl.ids, '{}'), coalesce(ofl.names, '{}'), coalesce(o.id, 0), coalesce(ofl.rname, ''), coalesce(ofl.rtype, '')
FROM c LEFT JOIN m ON m.id = c.id LEFT JOIN n ON n.message_id = c.id LEFT JOIN ofl ON ofl.id = c.id
	LEFT JOIN o ON o.message_id = c.id`)

// derive returns base with each pair of pairs (old, new) replaced; each
// old must occur exactly once (a statement derived from another must not
// drift from it silently).
func derive(base string, pairs ...string) string {
	for i := 0; i+1 < len(pairs); i += 2 {
		if n := strings.Count(base, pairs[i]); n != 1 {
			panic(fmt.Sprintf("store/postgres: a derived statement's fragment occurs %d times: %q", n, pairs[i]))
		}
		base = strings.Replace(base, pairs[i], pairs[i+1], 1)
	}
	return base
}

// pendingSend is one validated send, ready to be written alone or in a
// batch.
type pendingSend struct {
	in     store.NewMessage
	msg    store.Message
	atts   []store.Attachment
	metas  []string // the attachments' metadata, encoded
	extra  string   // in.Extra, encoded
	noteID uuid.UUID
	typ    store.NotificationType
	size   int // bytes it adds to a batch
}

// newPendingSend builds the message of a validated in, with fresh ids.
func newPendingSend(in store.NewMessage) (*pendingSend, error) {
	p := &pendingSend{
		in: in,
		msg: store.Message{
			ID: uuid.New(), RoomID: in.RoomID, SenderID: in.SenderID, Content: in.Content,
			ParentID: in.ParentID, ForwardedFromID: in.ForwardedFromID, IsForwarded: in.ForwardedFromID != nil,
			ClientMsgID: in.ClientMsgID, Extra: in.Extra,
		},
		atts:   make([]store.Attachment, len(in.Attachments)),
		metas:  make([]string, len(in.Attachments)),
		noteID: uuid.New(),
		typ:    store.NotifyNewMessage,
	}
	if in.ParentID != nil {
		p.typ = store.NotifyReply
	}
	var err error
	if p.extra, err = encodeObject(in.Extra); err != nil {
		return nil, store.Invalid("extra_fields", "Value must be valid JSON.")
	}
	p.size = 256 + len(in.Content) + len(p.extra) + len(in.ClientMsgID)
	for i, a := range in.Attachments {
		p.atts[i] = store.Attachment{ID: uuid.New(), MessageID: p.msg.ID, MediaURL: a.MediaURL, MediaType: a.MediaType,
			FileSize: a.FileSize, MimeType: a.MimeType, Caption: a.Caption, Metadata: a.Metadata}
		if p.metas[i], err = encodeObject(a.Metadata); err != nil {
			return nil, store.Invalid("metadata", "Value must be valid JSON.")
		}
		p.size += 128 + len(a.MediaURL) + len(a.Caption) + len(a.MimeType) + len(p.metas[i])
	}
	return p, nil
}

// encodeObject encodes a JSON object as text; the empty object (most
// messages' extra fields) without the encoder.
func encodeObject(j store.JSON) (string, error) {
	if len(j) == 0 {
		return "{}", nil
	}
	v, err := j.Value()
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

// result is the outcome of a stored send.
func (p *pendingSend) result(seq int64, at time.Time, recipients []int64, off offline) store.SendResult {
	msg := p.msg
	msg.Seq = seq
	msg.CreatedAt = utc(at)
	msg.UpdatedAt = msg.CreatedAt
	res := store.SendResult{Message: msg, Attachments: p.atts}
	if len(recipients) > 0 {
		res.Notification = &store.Notification{ID: p.noteID, Type: p.typ, MessageID: msg.ID, RoomID: msg.RoomID,
			Recipients: recipients, CreatedAt: msg.CreatedAt}
	}
	for i, id := range off.ids {
		res.Offline = append(res.Offline, store.Recipient{ID: id, Username: off.names[i]})
	}
	res.OutboxID = off.outbox
	if len(res.Offline) > 0 {
		res.RoomName, res.RoomType = off.room, store.RoomType(off.typ)
	}
	return res
}

// offline is what a send answers of its offline webhook: the offline
// recipients (ids and usernames, in the same order) and the outbox row.
type offline struct {
	ids       pq.Int64Array
	names     pq.StringArray
	outbox    int64
	room, typ string
}

// micros is d in microseconds, 0 when d is not positive.
func micros(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return max(d.Microseconds(), 1)
}

// idemKey identifies a send for idempotency; the zero key (no
// client_msg_id) identifies nothing.
type idemKey struct {
	room   uuid.UUID
	sender int64
	cmid   string
}

func (p *pendingSend) key() idemKey {
	if p.in.ClientMsgID == "" {
		return idemKey{}
	}
	return idemKey{p.in.RoomID, p.in.SenderID, p.in.ClientMsgID}
}

// sendOutcome is what the writer answers a caller: a result, an error, or
// dup (the client_msg_id is stored already: the caller loads it).
type sendOutcome struct {
	res store.SendResult
	dup bool
	err error
}

// batchReq is a request waiting in a writer's queue: what the writer
// writes (a send, an acknowledgement) and where it answers.
type batchReq[In, Out any] struct {
	ctx  context.Context
	in   In
	done chan Out // buffered: the writer never waits for the caller
}

// batchKind is what a batcher needs to know of the requests it writes.
type batchKind[In, Out any] interface {
	// size is the bytes a request adds to a batch (see MaxBatchBytes).
	size(in In) int
	// key identifies a request that may not share a batch with another of
	// the same key (a retry of a send); nil: any batch.
	key(in In) any
	// fail is the answer of a request that failed with err.
	fail(err error) Out
	// write stores a batch and returns the answers in the order of ins,
	// and whether it had to write them again one by one.
	write(ctx context.Context, ins []In) (outs []Out, retried bool)
}

// sendReq is a send waiting in the writer's queue.
type sendReq = batchReq[*pendingSend, sendOutcome]

// sendBatcher is a writer of batched sends.
type sendBatcher = batcher[*pendingSend, sendOutcome]

// writers are the batch writers of sends of a store, each with its share
// of the rooms.
type writers []*sendBatcher

func newWriters(s *Store, o Options) writers {
	n := o.BatchWriters
	if n <= 0 {
		n = DefaultBatchWriters
	}
	w := make(writers, n)
	for i := range w {
		w[i] = newBatcher[*pendingSend, sendOutcome](sendKind{s}, o)
	}
	return w
}

// of returns the writer of a room.
func (w writers) of(room uuid.UUID) *sendBatcher {
	return w[binary.BigEndian.Uint64(room[8:])%uint64(len(w))]
}

func (w writers) send(ctx context.Context, p *pendingSend) (store.SendResult, error) {
	b := w.of(p.in.RoomID)
	out, err := b.submit(ctx, p)
	if err != nil {
		return store.SendResult{}, err
	}
	if out.dup {
		return b.kind.(sendKind).s.duplicate(ctx, p.in)
	}
	return out.res, out.err
}

func (w writers) close() {
	for _, b := range w {
		b.close()
	}
}

// batcher is one writer of batched requests of one kind (see the comment
// at the top).
type batcher[In, Out any] struct {
	kind     batchKind[In, Out]
	maxCount int
	maxBytes int
	timeout  time.Duration
	reqs     chan *batchReq[In, Out]

	// onBatch, when set (tests), is called with each batch's size before
	// it is written.
	onBatch                 func(n int)
	batches, sends, retried atomic.Int64

	mu      sync.Mutex
	started bool
	closed  bool
	quit    chan struct{} // closed by close
	done    chan struct{} // closed when the writer has stopped
	// base is the context of every batch; close cancels it, so that a
	// batch stuck on a frozen connection does not hold up Close.
	base       context.Context
	cancelBase context.CancelFunc
}

func newBatcher[In, Out any](kind batchKind[In, Out], o Options) *batcher[In, Out] {
	b := &batcher[In, Out]{kind: kind, maxCount: o.MaxBatch, maxBytes: o.MaxBatchBytes, timeout: o.BatchTimeout,
		quit: make(chan struct{}), done: make(chan struct{})}
	if b.maxCount <= 0 {
		b.maxCount = DefaultMaxBatch
	}
	if b.maxBytes <= 0 {
		b.maxBytes = DefaultMaxBatchBytes
	}
	if b.timeout <= 0 {
		b.timeout = DefaultBatchTimeout
	}
	b.reqs = make(chan *batchReq[In, Out], 4*b.maxCount)
	b.base, b.cancelBase = context.WithCancel(context.Background())
	return b
}

// submit queues in for the writer (started on first use) and waits for
// its answer or for ctx. The error is errClosed or ctx's.
func (b *batcher[In, Out]) submit(ctx context.Context, in In) (Out, error) {
	var zero Out
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return zero, errClosed
	}
	if !b.started {
		b.started = true
		go b.run()
	}
	b.mu.Unlock()
	r := &batchReq[In, Out]{ctx: ctx, in: in, done: make(chan Out, 1)}
	select {
	case b.reqs <- r:
	case <-b.quit:
		return zero, errClosed
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	select {
	case out := <-r.done:
		return out, nil
	case <-ctx.Done():
		// The batch, if r is in one, goes on: what it stores stays stored.
		return zero, ctx.Err()
	case <-b.done:
		select {
		case out := <-r.done:
			return out, nil
		default:
			return zero, errClosed
		}
	}
}

// close stops the writer: the batch in flight is cancelled (its callers
// get store.ErrUnavailable: it may or may not have been stored) and the
// requests still queued fail with errClosed.
func (b *batcher[In, Out]) close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	started := b.started
	close(b.quit)
	b.cancelBase()
	b.mu.Unlock()
	if started {
		<-b.done
	} else {
		close(b.done)
	}
}

// run is the writer: it takes the first queued request (waiting for one),
// adds whatever else is queued, within the bounds, writes the batch and
// starts again.
func (b *batcher[In, Out]) run() {
	defer close(b.done)
	var carry []*batchReq[In, Out] // taken from the queue but left for the next batch
	for {
		if len(carry) == 0 {
			select {
			case r := <-b.reqs:
				carry = append(carry, r)
			case <-b.quit:
				b.failQueued(nil)
				return
			}
		}
		var batch []*batchReq[In, Out]
		batch, carry = b.collect(carry)
		if len(batch) > 0 {
			if b.onBatch != nil {
				b.onBatch(len(batch))
			}
			b.batches.Add(1)
			b.sends.Add(int64(len(batch)))
			b.write(batch)
		}
		select {
		case <-b.quit:
			b.failQueued(carry)
			return
		default:
		}
	}
}

// failQueued answers the carried and queued requests with errClosed.
func (b *batcher[In, Out]) failQueued(carry []*batchReq[In, Out]) {
	for _, r := range carry {
		r.done <- b.kind.fail(errClosed)
	}
	for {
		select {
		case r := <-b.reqs:
			r.done <- b.kind.fail(errClosed)
		default:
			return
		}
	}
}

// collect makes a batch of the carried requests and those queued now, in
// arrival order, without waiting. A request whose caller has gone is
// answered and dropped; a second request with a key already in the batch
// (a retry of a send) and what does not fit go back to the carry, first in
// the next batch.
func (b *batcher[In, Out]) collect(carry []*batchReq[In, Out]) (batch, rest []*batchReq[In, Out]) {
	keys := map[any]bool{}
	size := 0
	full := false
	add := func(r *batchReq[In, Out]) {
		if err := r.ctx.Err(); err != nil {
			r.done <- b.kind.fail(err)
			return
		}
		k := b.kind.key(r.in)
		n := b.kind.size(r.in)
		switch {
		case full, len(batch) > 0 && (len(batch) >= b.maxCount || size+n > b.maxBytes):
			full = true
			rest = append(rest, r)
			return
		case k != nil && keys[k]:
			rest = append(rest, r)
			return
		}
		if k != nil {
			keys[k] = true
		}
		size += n
		batch = append(batch, r)
	}
	for _, r := range carry {
		add(r)
	}
	for !full {
		select {
		case r := <-b.reqs:
			add(r)
		default:
			return batch, rest
		}
	}
	return batch, rest
}

// write stores a batch, under the writer's own timeout, and answers its
// callers.
func (b *batcher[In, Out]) write(batch []*batchReq[In, Out]) {
	ctx, cancel := context.WithTimeout(b.base, b.timeout)
	defer cancel()
	ins := make([]In, len(batch))
	for i, r := range batch {
		ins[i] = r.in
	}
	outs, retried := b.kind.write(ctx, ins)
	if retried {
		b.retried.Add(1)
	}
	for i, r := range batch {
		r.done <- outs[i]
	}
}

// batchFailure is the error of a whole batch that failed short of its
// statement: the database is unreachable or the batch's context ended.
// It is nil when the statement failed on its own (a row that broke a
// constraint): the rows are then written again one by one.
func batchFailure(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("store/postgres: a batch of %s was cut short: %w: %w", what, store.ErrUnavailable, ctx.Err())
	}
	if isUnavailable(err) {
		return mapErr(err)
	}
	return nil
}

// sendKind is the batchKind of sends.
type sendKind struct{ s *Store }

func (sendKind) size(p *pendingSend) int { return p.size }

func (sendKind) key(p *pendingSend) any {
	if k := p.key(); k != (idemKey{}) {
		return k
	}
	return nil
}

func (sendKind) fail(err error) sendOutcome { return sendOutcome{err: err} }

// write stores a batch of sends. When the statement fails short of the
// database being unreachable (a row that broke a constraint in a race the
// statement's checks could not see), the rows are written again one by
// one, so that only the failing one fails.
func (k sendKind) write(ctx context.Context, ps []*pendingSend) ([]sendOutcome, bool) {
	outs, err := k.s.writeBatch(ctx, ps)
	if err == nil {
		return outs, false
	}
	outs = make([]sendOutcome, len(ps))
	if err := batchFailure(ctx, "sends", err); err != nil {
		for i := range outs {
			outs[i] = sendOutcome{err: err}
		}
		return outs, false
	}
	for i, p := range ps {
		one, err := k.s.writeBatch(ctx, []*pendingSend{p})
		switch {
		case err == nil:
			outs[i] = one[0]
		case p.in.ClientMsgID != "" && isConstraint(err, "messages_client_msg_id_key"):
			outs[i] = sendOutcome{dup: true}
		default:
			outs[i] = sendOutcome{err: mapErr(err)}
		}
	}
	return outs, true
}

// batchArgs are the arguments of sendBatchSQL for ps, and with offline
// those of sendBatchOfflineSQL.
func batchArgs(ps []*pendingSend, offline bool) []any {
	n := len(ps)
	ids, rooms, contents, parents, fwds, cmids, extras, nids, ntypes :=
		make(pq.StringArray, n), make(pq.StringArray, n), make(pq.StringArray, n), make(pq.StringArray, n),
		make(pq.StringArray, n), make(pq.StringArray, n), make(pq.StringArray, n), make(pq.StringArray, n),
		make(pq.StringArray, n)
	senders := make(pq.Int64Array, n)
	notify, check := make(pq.BoolArray, n), make(pq.BoolArray, n)
	offl, lease := make(pq.Int64Array, n), make(pq.Int64Array, n)
	var aIDs, aMIDs, urls, types, mimes, captions, metas pq.StringArray
	var pos, sizes pq.Int64Array
	for i, p := range ps {
		ids[i], rooms[i], senders[i], contents[i] = p.msg.ID.String(), p.in.RoomID.String(), p.in.SenderID, p.in.Content
		if p.in.ParentID != nil {
			parents[i] = p.in.ParentID.String()
		}
		if p.in.ForwardedFromID != nil {
			fwds[i] = p.in.ForwardedFromID.String()
		}
		cmids[i], extras[i], nids[i], ntypes[i] = p.in.ClientMsgID, p.extra, p.noteID.String(), string(p.typ)
		notify[i], check[i] = p.in.Notify, p.in.CheckSender
		if offl[i] = micros(p.in.Offline); offl[i] > 0 {
			lease[i] = micros(p.in.OutboxLease)
		}
		for j, a := range p.atts {
			aIDs, aMIDs, pos = append(aIDs, a.ID.String()), append(aMIDs, p.msg.ID.String()), append(pos, int64(j+1))
			urls, types, sizes = append(urls, a.MediaURL), append(types, string(a.MediaType)), append(sizes, a.FileSize)
			mimes, captions, metas = append(mimes, a.MimeType), append(captions, a.Caption), append(metas, p.metas[j])
		}
	}
	args := []any{ids, rooms, senders, contents, parents, fwds, cmids, extras, nids, ntypes, notify, check,
		nonNil(aIDs), nonNil(aMIDs), nonNilInt(pos), nonNil(urls), nonNil(types), nonNilInt(sizes), nonNil(mimes),
		nonNil(captions), nonNil(metas)}
	if offline {
		args = append(args, offl, lease)
	}
	return args
}

// writeBatch runs sendBatchSQL for ps and returns their outcomes in the
// order of ps. An error means that nothing was stored.
func (s *Store) writeBatch(ctx context.Context, ps []*pendingSend) ([]sendOutcome, error) {
	n := len(ps)
	hooks := false
	for _, p := range ps {
		hooks = hooks || p.in.Offline > 0
	}
	args := batchArgs(ps, hooks)
	query := sendBatchSQL
	if hooks {
		query = sendBatchOfflineSQL
	}
	var rows *sqlx.Rows
	var err error
	if st := s.batchQuery(ctx, hooks); st != nil {
		rows, err = st.QueryxContext(ctx, args...)
	} else {
		rows, err = s.db.QueryxContext(ctx, query, args...)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	outs := make([]sendOutcome, n)
	seen := 0
	for rows.Next() {
		var ord, seq int64
		var st string
		var at time.Time
		var recipients pq.Int64Array
		var off offline
		dest := []any{&ord, &st, &seq, &at, &recipients}
		if hooks {
			dest = append(dest, &off.ids, &off.names, &off.outbox, &off.room, &off.typ)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		if ord < 1 || ord > int64(n) {
			return nil, fmt.Errorf("store/postgres: batch answered for row %d of %d", ord, n)
		}
		p := ps[ord-1]
		outs[ord-1] = outcome(p, st, seq, at, recipients, off)
		seen++
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if seen != n {
		return nil, fmt.Errorf("store/postgres: batch of %d answered %d rows", n, seen)
	}
	return outs, nil
}

// batchQuery returns the prepared sendBatchSQL (with offline,
// sendBatchOfflineSQL), or nil (see stmt). They are kept apart from the
// other statements: their map hashes the query text on each lookup, and
// these are long.
func (s *Store) batchQuery(ctx context.Context, offline bool) *sqlx.Stmt {
	cache, query := &s.batchStmt, sendBatchSQL
	if offline {
		cache, query = &s.batchOfflineStmt, sendBatchOfflineSQL
	}
	if st := cache.Load(); st != nil {
		return st
	}
	st := s.stmt(ctx, query)
	if st != nil {
		cache.Store(st)
	}
	return st
}

// outcome turns the status of one row of sendBatchSQL into its answer.
func outcome(p *pendingSend, st string, seq int64, at time.Time, recipients []int64, off offline) sendOutcome {
	switch st {
	case "ok":
		return sendOutcome{res: p.result(seq, at, recipients, off)}
	case "duplicate":
		return sendOutcome{dup: true}
	case "not_found":
		return sendOutcome{err: store.ErrNotFound}
	case "not_member":
		return sendOutcome{err: store.ErrNotMember}
	case "cannot_send":
		return sendOutcome{err: store.ErrCannotSend}
	case "no_user":
		return sendOutcome{err: fmt.Errorf("sender %d is not a user: %w", p.in.SenderID, store.ErrConflict)}
	case "bad_parent":
		return sendOutcome{err: store.Invalid("parent_message_id", "Invalid pk - object does not exist.")}
	case "bad_forward":
		return sendOutcome{err: store.Invalid("forwarded_from_id", "Invalid pk - object does not exist.")}
	}
	return sendOutcome{err: errors.New("store/postgres: unknown batch status " + st)}
}

// nonNil makes a nil array an empty one ('{}', not NULL).
func nonNil(a pq.StringArray) pq.StringArray {
	if a == nil {
		return pq.StringArray{}
	}
	return a
}

func nonNilInt(a pq.Int64Array) pq.Int64Array {
	if a == nil {
		return pq.Int64Array{}
	}
	return a
}

// SendStats counts the batched writing of sends since the store opened.
type SendStats struct {
	// Batches is the number of batches written, Sends the sends in them
	// (Sends/Batches is the mean batch size).
	Batches, Sends int64
	// Retried counts the batches whose statement failed and whose sends
	// were written again one by one.
	Retried int64
}

// SendStats returns the counts of batched sends (zero with
// Options.UnbatchedSends).
func (s *Store) SendStats() SendStats {
	var out SendStats
	for _, b := range s.batch {
		out.Batches += b.batches.Load()
		out.Sends += b.sends.Load()
		out.Retried += b.retried.Load()
	}
	return out
}
