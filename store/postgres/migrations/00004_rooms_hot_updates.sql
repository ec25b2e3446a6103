-- Every send updates its room's row (last_seq, last_message_id). With an
-- index on last_message_id that update can never be a heap-only (HOT)
-- update: each send inserted a new entry into every index of rooms and
-- left a dead row version behind for the next send of the room to step
-- over. Without the index, and with free space on each page for the new
-- version (fillfactor), the update stays on its page and touches no index.
-- Hard deletes do not need the index: DeleteMessages recomputes
-- last_message_id of the rooms concerned before it deletes, so the foreign
-- key's ON DELETE SET NULL finds nothing left to change.

-- +goose Up
DROP INDEX rooms_last_message_idx;
ALTER TABLE rooms SET (fillfactor = 50);

-- +goose Down
ALTER TABLE rooms RESET (fillfactor);
CREATE INDEX rooms_last_message_idx ON rooms (last_message_id) WHERE last_message_id IS NOT NULL;
