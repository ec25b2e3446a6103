-- Ids that the store assigns (CreateUserByUsername, for development sign-in)
-- come from a sequence: concurrent creations never pick the same id. An id
-- set by authentication (UpsertUser) may collide with the sequence; the
-- store then moves the sequence past max(id) and tries again.

-- +goose Up
CREATE SEQUENCE users_assigned_id_seq;
SELECT setval('users_assigned_id_seq', greatest(1, (SELECT coalesce(max(id), 0) FROM users)),
              (SELECT count(*) > 0 FROM users));

-- +goose Down
DROP SEQUENCE users_assigned_id_seq;
