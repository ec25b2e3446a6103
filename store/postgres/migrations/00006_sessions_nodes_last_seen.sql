-- Sessions exist only while their connection is open: a closed session was
-- kept as a row for ever (one per connection ever made); now it is deleted,
-- and what presence needs afterwards is one last-seen time per user.
-- Each session names the node (server process) that serves it, and every
-- node keeps a heartbeat in nodes, so that any live node can delete the
-- sessions of a node that died without closing them (store.NodeStore).

-- +goose Up
ALTER TABLE users ADD COLUMN last_seen timestamptz;
UPDATE users u SET last_seen = s.seen
FROM (SELECT user_id, max(coalesce(closed_at, last_seen)) AS seen FROM sessions GROUP BY user_id) s
WHERE s.user_id = u.id;
DELETE FROM sessions WHERE closed_at IS NOT NULL;
ALTER TABLE sessions DROP COLUMN closed_at;
ALTER TABLE sessions ADD COLUMN node_id text NOT NULL DEFAULT '' CHECK (char_length(node_id) <= 128);
CREATE INDEX sessions_node_idx ON sessions (node_id);

CREATE TABLE nodes (
    id        text PRIMARY KEY CHECK (id <> '' AND char_length(id) <= 128),
    last_seen timestamptz NOT NULL
);

-- +goose Down
DROP TABLE nodes;
DROP INDEX sessions_node_idx;
ALTER TABLE sessions DROP COLUMN node_id;
ALTER TABLE sessions ADD COLUMN closed_at timestamptz;
ALTER TABLE users DROP COLUMN last_seen;
