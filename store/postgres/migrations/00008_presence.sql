-- Presence (docs/protocol.md#presence): the state last announced for each
-- user, online or offline. A node announces a change only when its
-- conditional write flipped the row, so each change is announced once
-- however many nodes sweep. The partial index keeps the offline sweep to
-- the users announced online. A deleted user's row goes with the deletion
-- (its users row stays, so the cascade is for a hard delete only).

-- +goose Up
CREATE TABLE presence (
    user_id    bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    online     boolean NOT NULL,
    changed_at timestamptz NOT NULL
);
CREATE INDEX presence_online_idx ON presence (user_id) WHERE online;

-- +goose Down
DROP TABLE presence;
