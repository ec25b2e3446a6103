-- The outbox of offline webhooks (docs/protocol.md#offline-webhooks): one
-- row per message stored while some of its recipients had no live session,
-- written in the transaction of the message. The row is leased
-- (locked_until) to the node that stored it, which tries it at once; when
-- the lease ends (the node crashed, or the delivery failed and was
-- rescheduled) a relay on any node claims it with FOR UPDATE SKIP LOCKED.
-- A delivered row is deleted; a deleted message takes its row with it.

-- +goose Up
CREATE TABLE webhook_outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id   uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    room_id      uuid NOT NULL,
    recipients   bigint[] NOT NULL,
    created_at   timestamptz NOT NULL,
    locked_until timestamptz NOT NULL,
    attempts     integer NOT NULL DEFAULT 0
);
CREATE INDEX webhook_outbox_due_idx ON webhook_outbox (locked_until);
CREATE INDEX webhook_outbox_message_idx ON webhook_outbox (message_id);

-- +goose Down
DROP TABLE webhook_outbox;
