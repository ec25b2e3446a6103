-- System messages and users deleted for good (docs/protocol.md#system-messages,
-- docs/protocol.md#deleted-users).
--
-- A message sent by the system (the host's backend, not a user) has no
-- sender: sender_id NULL. Its client_msg_id must still be unique per room
-- among the system's messages, so the unique key treats NULL senders as
-- equal (NULLS NOT DISTINCT, PostgreSQL 15). The key becomes a unique index
-- over the messages that have a client_msg_id: NULLS NOT DISTINCT would
-- otherwise make every message of a sender without one collide. The index
-- keeps the constraint's name, which the store reads from the violation.
--
-- A deleted user keeps its row, so that its messages in groups and
-- channels keep their sender, but nothing personal: the username becomes
-- 'deleted user <id>', the email and names are emptied, last_seen is
-- cleared, and deleted_at says when. The check keeps it that way.

-- +goose Up
ALTER TABLE messages ALTER COLUMN sender_id DROP NOT NULL;
ALTER TABLE messages DROP CONSTRAINT messages_client_msg_id_key;
CREATE UNIQUE INDEX messages_client_msg_id_key ON messages (room_id, sender_id, client_msg_id) NULLS NOT DISTINCT
    WHERE client_msg_id IS NOT NULL;

ALTER TABLE users ADD COLUMN deleted_at timestamptz;
ALTER TABLE users ADD CONSTRAINT users_deleted_anonymous CHECK (
    deleted_at IS NULL OR (username = 'deleted user ' || id AND email = '' AND first_name = '' AND last_name = ''
                           AND last_seen IS NULL));

-- +goose Down
ALTER TABLE users DROP CONSTRAINT users_deleted_anonymous;
ALTER TABLE users DROP COLUMN deleted_at;

UPDATE rooms r SET last_message_id = (
    SELECT m.id FROM messages m
    WHERE m.room_id = r.id AND NOT m.is_deleted AND m.sender_id IS NOT NULL ORDER BY m.seq DESC LIMIT 1)
WHERE r.last_message_id IN (SELECT id FROM messages WHERE sender_id IS NULL);
DELETE FROM messages WHERE sender_id IS NULL;
DROP INDEX messages_client_msg_id_key;
ALTER TABLE messages ADD CONSTRAINT messages_client_msg_id_key UNIQUE (room_id, sender_id, client_msg_id);
ALTER TABLE messages ALTER COLUMN sender_id SET NOT NULL;
