package postgres

import (
	"context"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/chatmux/chatmux/store"
)

// Group commit of delivery acknowledgements. Every recipient acknowledges
// every message it receives, so concurrent Acknowledge calls, of any users,
// go through a batcher (see batch.go) like sends: the writer takes what is
// queued, checks and writes all of it in one statement (ackBatchSQL, its
// own transaction) and answers each caller what Acknowledge alone would:
// ErrNotFound when one of its messages is missing or deleted (and nothing
// of it is written), else its messages in the order it gave them, without
// repeats and without the ones it sent itself. When the statement fails
// for a reason of its own (a message deleted or a user removed in a race),
// the calls are written again one by one; a caller whose context ends
// while its batch is in flight gets the context's error and the batch
// goes on.

// ackBatchSQL acknowledges, for user $1[i], message $2[i] of call $3[i]
// (one row per pair; $4 is the time). It answers the live messages among
// them, with their senders (0: the system).
//
// m: the messages, read once for the batch. bad: the calls naming a
// message that is missing or deleted; they write nothing. ok: the
// (message, user) pairs to mark delivered: the good calls' messages that
// their user did not send. lk: the notifications of those messages,
// locked in id order (as Acknowledge alone does, so concurrent writers
// cannot deadlock on them); locking returns their latest version, from
// which nw takes out every user of the batch who acknowledged the
// notification's message. A notification left with recipients is
// updated, one left without is deleted.
const ackBatchSQL = `
WITH x AS MATERIALIZED (
	SELECT u.uid, u.mid, u.req FROM unnest($1::bigint[], $2::uuid[], $3::integer[]) AS u(uid, mid, req)
), m AS MATERIALIZED (
	SELECT id, coalesce(sender_id, 0) AS sid, is_deleted FROM messages WHERE id = ANY ($2::uuid[])
), bad AS MATERIALIZED (
	SELECT DISTINCT x.req FROM x LEFT JOIN m ON m.id = x.mid WHERE m.id IS NULL OR m.is_deleted
), ok AS MATERIALIZED (
	SELECT DISTINCT x.mid, x.uid FROM x JOIN m ON m.id = x.mid
	WHERE m.sid <> x.uid AND x.req NOT IN (SELECT req FROM bad)
), lk AS MATERIALIZED (
	SELECT n.id, n.message_id, n.recipients FROM notifications n
	WHERE n.message_id = ANY (ARRAY(SELECT DISTINCT mid FROM ok)) ORDER BY n.id FOR UPDATE
), nw AS MATERIALIZED (
	SELECT lk.id, ARRAY(SELECT t.r FROM unnest(lk.recipients) WITH ORDINALITY AS t(r, i)
		WHERE t.r <> ALL (a.uids) ORDER BY t.i) AS recipients
	FROM lk CROSS JOIN LATERAL (SELECT array_agg(ok.uid) AS uids FROM ok WHERE ok.mid = lk.message_id) a
	WHERE lk.recipients && a.uids
), ins AS (
	INSERT INTO deliveries (message_id, user_id, delivered_at)
	SELECT mid, uid, $4 FROM ok ORDER BY mid, uid ON CONFLICT DO NOTHING
), upd AS (
	UPDATE notifications n SET recipients = nw.recipients FROM nw WHERE n.id = nw.id AND cardinality(nw.recipients) > 0
), del AS (
	DELETE FROM notifications n WHERE n.id IN (SELECT id FROM nw WHERE cardinality(recipients) = 0)
)
SELECT id, sid FROM m WHERE NOT is_deleted`

// pendingAck is one Acknowledge call: its user and its messages, without
// repeats.
type pendingAck struct {
	user int64
	ids  []uuid.UUID
}

// ackOutcome is the answer to one Acknowledge call.
type ackOutcome struct {
	acked []uuid.UUID
	err   error
}

// ackBatcher is the writer of batched acknowledgements.
type ackBatcher = batcher[*pendingAck, ackOutcome]

func newAckBatcher(s *Store, o Options) *ackBatcher {
	return newBatcher[*pendingAck, ackOutcome](ackKind{s}, o)
}

// ackKind is the batchKind of acknowledgements.
type ackKind struct{ s *Store }

func (ackKind) size(a *pendingAck) int { return 64 + 48*len(a.ids) }

func (ackKind) key(*pendingAck) any { return nil }

func (ackKind) fail(err error) ackOutcome { return ackOutcome{err: err} }

// write acknowledges a batch in one transaction. When that fails short of
// the database being unreachable, each call is written again alone.
func (k ackKind) write(ctx context.Context, as []*pendingAck) ([]ackOutcome, bool) {
	outs, err := k.s.writeAcks(ctx, as)
	if err == nil {
		return outs, false
	}
	outs = make([]ackOutcome, len(as))
	if err := batchFailure(ctx, "acknowledgements", err); err != nil {
		for i := range outs {
			outs[i] = ackOutcome{err: err}
		}
		return outs, false
	}
	for i, a := range as {
		acked, err := k.s.acknowledgeOne(ctx, a.user, a.ids)
		outs[i] = ackOutcome{acked: acked, err: err}
	}
	return outs, true
}

// writeAcks runs ackBatchSQL for as. An error means that nothing was
// written.
func (s *Store) writeAcks(ctx context.Context, as []*pendingAck) ([]ackOutcome, error) {
	var users pq.Int64Array
	var mids pq.StringArray
	var reqs pq.Int64Array
	for i, a := range as {
		for _, id := range a.ids {
			users, mids, reqs = append(users, a.user), append(mids, id.String()), append(reqs, int64(i))
		}
	}
	args := []any{nonNilInt(users), nonNil(mids), nonNilInt(reqs), store.Now()}
	var rows *sqlx.Rows
	var err error
	if st := s.stmt(ctx, ackBatchSQL); st != nil {
		rows, err = st.QueryxContext(ctx, args...)
	} else {
		rows, err = s.db.QueryxContext(ctx, ackBatchSQL, args...)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	senders := map[uuid.UUID]int64{} // the live messages
	for rows.Next() {
		var id uuid.UUID
		var sender int64
		if err := rows.Scan(&id, &sender); err != nil {
			return nil, err
		}
		senders[id] = sender
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	outs := make([]ackOutcome, len(as))
	for i, a := range as {
		acked := []uuid.UUID{}
		for _, id := range a.ids {
			sender, live := senders[id]
			if !live {
				acked, outs[i].err = nil, store.ErrNotFound
				break
			}
			if sender != a.user {
				acked = append(acked, id)
			}
		}
		outs[i].acked = acked
	}
	return outs, nil
}
