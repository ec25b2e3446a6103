package store

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// PresenceStore keeps the announced presence of each user: whether the
// last presence dispatch about them said online or offline
// (docs/protocol.md#presence). A user is live while at least one of their
// sessions has a LastSeen within the inactivity threshold (the store's
// clock); the announced state follows the live state, and each change of
// it is returned to exactly one caller, however many nodes sweep at once,
// so that exactly one node announces it.
type PresenceStore interface {
	// TouchSessions sets LastSeen of the given sessions, and the last seen
	// time of their users, to now: the activity of a connection's events,
	// flushed in one call. Missing sessions (closed, or expired with their
	// node) are skipped.
	TouchSessions(ctx context.Context, sessionIDs []int64) error
	// SweepPresence flips, in one step, the users whose announced state
	// no longer holds, and returns each flip once (ordered by user id):
	// announced offline (or never announced) with a session seen within
	// threshold → online; announced online with no session seen within
	// threshold and a last seen time older than grace (or none) → offline.
	// Concurrent sweeps never return the same flip twice.
	SweepPresence(ctx context.Context, threshold, grace time.Duration) ([]Presence, error)
	// Presence returns the announced state and last seen time of the given
	// users that exist, ordered by id, duplicates removed: a user never
	// announced is offline; a deleted user is offline, never seen.
	Presence(ctx context.Context, userIDs []int64) ([]Presence, error)
	// PresenceRooms returns, for each of the given users, the rooms they
	// are a member of where their presence is shown
	// (docs/protocol.md#presence): every one-to-one chat and group, and
	// the channels they created or moderate; each list ordered by room id
	// (byte order). Users in no such room are absent.
	PresenceRooms(ctx context.Context, userIDs []int64) (map[int64][]uuid.UUID, error)
}

// Presence is a user's announced presence.
type Presence struct {
	UserID int64 `db:"user_id"`
	// Online is the announced state.
	Online bool `db:"online"`
	// LastSeen is the user's last seen time (SessionStore.LastSeen); zero
	// when never seen.
	LastSeen time.Time `db:"last_seen"`
}
