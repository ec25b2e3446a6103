package postgres

import (
	"context"
	"time"

	"github.com/lib/pq"

	"github.com/chatmux/chatmux/store"
)

// The webhook outbox (docs/protocol.md#offline-webhooks): SendMessage
// writes a message's event to webhook_outbox in the send's statement,
// leased to the caller (NewMessage.OutboxLease); the methods below are the
// relay's. The lease times are the database's clock, so nodes whose
// clocks differ agree on when a lease has ended.

var _ store.WebhookOutbox = (*Store)(nil)

// claimSQL leases the due rows: those whose lease has ended, oldest lease
// first, skipping the rows that a concurrent claim (or a send still in
// its transaction) holds, and counts an attempt on each.
const claimSQL = `
UPDATE webhook_outbox w SET locked_until = clock_timestamp() + $1::bigint * interval '1 microsecond', attempts = w.attempts + 1
FROM (SELECT id FROM webhook_outbox WHERE locked_until <= clock_timestamp() ORDER BY locked_until LIMIT $2
	FOR UPDATE SKIP LOCKED) d
WHERE w.id = d.id
RETURNING w.id, w.message_id, w.room_id, w.recipients, w.created_at, w.attempts`

// ClaimWebhookEvents implements store.WebhookOutbox.
func (s *Store) ClaimWebhookEvents(ctx context.Context, lease time.Duration, limit int) ([]store.OutboxEvent, error) {
	if limit < 1 || lease <= 0 {
		return nil, store.Invalid("limit", "The limit and the lease must be positive.")
	}
	rows, err := s.db.QueryContext(ctx, claimSQL, micros(lease), limit)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	out := []store.OutboxEvent{}
	for rows.Next() {
		var e store.OutboxEvent
		var rec pq.Int64Array
		if err := rows.Scan(&e.ID, &e.MessageID, &e.RoomID, &rec, &e.CreatedAt, &e.Attempts); err != nil {
			return nil, mapErr(err)
		}
		e.Recipients, e.CreatedAt = rec, utc(e.CreatedAt)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(err)
	}
	return out, nil
}

// DeleteWebhookEvents implements store.WebhookOutbox.
func (s *Store) DeleteWebhookEvents(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.db.ExecContext(ctx, `DELETE FROM webhook_outbox WHERE id = ANY ($1::bigint[])`, pq.Int64Array(ids))
	return mapErr(err)
}

// RetryWebhookEvents implements store.WebhookOutbox.
func (s *Store) RetryWebhookEvents(ctx context.Context, ids []int64, after time.Duration) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.db.ExecContext(ctx, `UPDATE webhook_outbox SET locked_until = clock_timestamp() + $2::bigint * interval '1 microsecond'
		WHERE id = ANY ($1::bigint[])`, pq.Int64Array(ids), max(after.Microseconds(), 0))
	return mapErr(err)
}
