-- Indexes behind foreign keys whose referencing side is checked on
-- deletes: every hard-deleted message looks up rooms.last_message_id
-- (ON DELETE SET NULL), and deleting a user looks up the rooms it created
-- or shares as a one-to-one pair.

-- +goose Up
CREATE INDEX rooms_last_message_idx ON rooms (last_message_id) WHERE last_message_id IS NOT NULL;
CREATE INDEX rooms_creator_idx ON rooms (creator_id) WHERE creator_id IS NOT NULL;
CREATE INDEX rooms_pair_a_idx ON rooms (pair_a) WHERE pair_a IS NOT NULL;
CREATE INDEX rooms_pair_b_idx ON rooms (pair_b) WHERE pair_b IS NOT NULL;

-- +goose Down
DROP INDEX rooms_pair_b_idx;
DROP INDEX rooms_pair_a_idx;
DROP INDEX rooms_creator_idx;
DROP INDEX rooms_last_message_idx;
