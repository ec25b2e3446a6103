-- chatmux schema: the data model of docs/protocol.md#objects with chatmux's
-- additions (per-room seq, client_msg_id, Extra objects, sessions that
-- close). Constraints live here; store/postgres maps their violations to
-- store.ErrConflict (or a typed validation error where the protocol has one).

-- +goose Up
CREATE TABLE users (
    id         bigint PRIMARY KEY CHECK (id > 0),
    username   text   NOT NULL CONSTRAINT users_username_key UNIQUE CHECK (username <> ''),
    email      text   NOT NULL DEFAULT '',
    first_name text   NOT NULL DEFAULT '',
    last_name  text   NOT NULL DEFAULT ''
);

CREATE TABLE sessions (
    id         bigserial PRIMARY KEY,
    user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    conn_id    text        NOT NULL,
    last_seen  timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    closed_at  timestamptz
);
CREATE INDEX sessions_user_idx ON sessions (user_id, last_seen);

CREATE TABLE rooms (
    id                     uuid PRIMARY KEY,
    type                   text        NOT NULL CHECK (type IN ('OneToOneChat', 'GroupChat', 'Channel')),
    name                   text        NOT NULL DEFAULT '' CHECK (char_length(name) <= 64),
    description            text        NOT NULL DEFAULT '',
    avatar                 text        NOT NULL DEFAULT '',
    creator_id             bigint      REFERENCES users (id) ON DELETE CASCADE,
    max_members            integer     NOT NULL DEFAULT 0 CHECK (max_members >= 0),
    join_approval_required boolean     NOT NULL DEFAULT false,
    group_locked           boolean     NOT NULL DEFAULT false,
    is_public              boolean     NOT NULL DEFAULT false,
    preferences            jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(preferences) = 'object'),
    extra                  jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(extra) = 'object'),
    -- the latest visible message (maintained by the store); FK added below
    last_message_id        uuid,
    -- the seq of the latest message ever sent: the next send takes last_seq + 1
    last_seq               bigint      NOT NULL DEFAULT 0,
    -- the two participants of a one-to-one chat
    pair_a                 bigint      REFERENCES users (id) ON DELETE CASCADE,
    pair_b                 bigint      REFERENCES users (id) ON DELETE CASCADE,
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL,
    CONSTRAINT rooms_creator_check CHECK ((type = 'OneToOneChat') = (creator_id IS NULL)),
    CONSTRAINT rooms_pair_check CHECK (
        (type = 'OneToOneChat') = (pair_a IS NOT NULL AND pair_b IS NOT NULL) AND
        (pair_a IS NULL OR pair_a <> pair_b))
);
-- One one-to-one chat per unordered pair of users.
CREATE UNIQUE INDEX rooms_one_to_one_pair_key ON rooms (least(pair_a, pair_b), greatest(pair_a, pair_b))
    WHERE type = 'OneToOneChat';

CREATE TABLE memberships (
    room_id     uuid        NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id     bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- group admin or channel moderator
    is_admin    boolean     NOT NULL DEFAULT false,
    -- explicitly granted permissions, sorted; they go with the membership row
    permissions text[]      NOT NULL DEFAULT '{}' CHECK (permissions <@ ARRAY[
        'can_add_new_participants', 'can_remove_participants',
        'can_add_new_subscribers', 'can_remove_subscribers', 'can_send_messages']::text[]),
    joined_at   timestamptz NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX memberships_user_idx ON memberships (user_id, room_id);

CREATE TABLE messages (
    id                uuid PRIMARY KEY,
    room_id           uuid        NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq               bigint      NOT NULL CHECK (seq > 0),
    sender_id         bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    content           text        NOT NULL DEFAULT '',
    parent_id         uuid        CONSTRAINT messages_parent_id_fkey REFERENCES messages (id) ON DELETE SET NULL,
    forwarded_from_id uuid        CONSTRAINT messages_forwarded_from_id_fkey REFERENCES messages (id) ON DELETE SET NULL,
    is_forwarded      boolean     NOT NULL DEFAULT false,
    is_edited         boolean     NOT NULL DEFAULT false,
    is_deleted        boolean     NOT NULL DEFAULT false,
    client_msg_id     text        CHECK (char_length(client_msg_id) BETWEEN 1 AND 64),
    extra             jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(extra) = 'object'),
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    CONSTRAINT messages_room_seq_key UNIQUE (room_id, seq),
    CONSTRAINT messages_client_msg_id_key UNIQUE (room_id, sender_id, client_msg_id),
    CONSTRAINT forwarded_messages_cant_be_replies CHECK (NOT (is_forwarded AND parent_id IS NOT NULL))
);
-- A room's visible messages by seq (pages, catch-up, last message, unread).
CREATE INDEX messages_room_visible_idx ON messages (room_id, seq DESC) WHERE NOT is_deleted;
CREATE INDEX messages_parent_idx ON messages (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX messages_forwarded_idx ON messages (forwarded_from_id) WHERE forwarded_from_id IS NOT NULL;
CREATE INDEX messages_sender_idx ON messages (sender_id);

ALTER TABLE rooms ADD CONSTRAINT rooms_last_message_fkey
    FOREIGN KEY (last_message_id) REFERENCES messages (id) ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED;

CREATE TABLE attachments (
    id         uuid PRIMARY KEY,
    message_id uuid    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    position   integer NOT NULL,
    media_url  text    NOT NULL CHECK (media_url <> ''),
    media_type text    NOT NULL CHECK (media_type IN ('image', 'video', 'audio', 'file')),
    file_size  bigint  NOT NULL DEFAULT 0 CHECK (file_size >= 0),
    mime_type  text    NOT NULL DEFAULT 'image/jpeg',
    caption    text    NOT NULL DEFAULT '',
    metadata   jsonb   NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    CONSTRAINT valid_mime_type CHECK (mime_type IN (
        'image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/bmp', 'image/heic',
        'audio/mpeg', 'audio/mp4', 'audio/aac', 'audio/ogg', 'audio/wav', 'audio/opus',
        'video/mp4', 'video/quicktime', 'video/webm', 'video/ogg', 'video/x-msvideo', 'video/x-matroska',
        'application/pdf', 'application/msword',
        'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
        'application/vnd.ms-excel',
        'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
        'application/vnd.ms-powerpoint',
        'application/vnd.openxmlformats-officedocument.presentationml.presentation',
        'text/plain', 'text/csv'))
);
CREATE INDEX attachments_message_idx ON attachments (message_id, position);

CREATE TABLE deliveries (
    message_id   uuid        NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id      bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    delivered_at timestamptz NOT NULL,
    PRIMARY KEY (message_id, user_id)
);

CREATE TABLE read_receipts (
    id         uuid PRIMARY KEY,
    message_id uuid        NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    reader_id  bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    read_at    timestamptz NOT NULL,
    CONSTRAINT unique_read_receipts UNIQUE (message_id, reader_id)
);

CREATE TABLE reactions (
    id         uuid PRIMARY KEY,
    message_id uuid        NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    content    text        NOT NULL CHECK (char_length(content) BETWEEN 1 AND 128),
    created_at timestamptz NOT NULL,
    CONSTRAINT unique_reaction UNIQUE (message_id, user_id)
);

CREATE TABLE notifications (
    id          uuid PRIMARY KEY,
    type        text        NOT NULL CHECK (type IN ('NEW_MESSAGE', 'REPLY', 'REACTION')),
    message_id  uuid        NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    room_id     uuid        NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    -- the reaction of a REACTION notification: removing it removes this
    reaction_id uuid        REFERENCES reactions (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL
);
CREATE INDEX notifications_message_idx ON notifications (message_id);
CREATE INDEX notifications_reaction_idx ON notifications (reaction_id) WHERE reaction_id IS NOT NULL;
CREATE INDEX notifications_room_idx ON notifications (room_id);

CREATE TABLE notification_recipients (
    notification_id uuid   NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    user_id         bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (notification_id, user_id)
);
CREATE INDEX notification_recipients_user_idx ON notification_recipients (user_id);

-- +goose Down
DROP TABLE notification_recipients;
DROP TABLE notifications;
DROP TABLE reactions;
DROP TABLE read_receipts;
DROP TABLE deliveries;
DROP TABLE attachments;
ALTER TABLE rooms DROP CONSTRAINT rooms_last_message_fkey;
DROP TABLE messages;
DROP TABLE memberships;
DROP TABLE rooms;
DROP TABLE sessions;
DROP TABLE users;
