package store

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// UserStore keeps the users, as authentication names them.
type UserStore interface {
	// UpsertUser inserts u or, when a user with u.ID exists, updates its
	// username, email and names. A username held by another user is
	// ErrConflict. u.ID must be positive. A deleted user (see DeleteUser)
	// is ErrUserDeleted and stays as it is; so is a username of the form
	// DeletedUsername reserves, whatever the id.
	UpsertUser(ctx context.Context, u User) (User, error)
	// CreateUserByUsername returns the user with that username, creating it
	// with a store-assigned id when none exists (development mode without an
	// identity provider). The name of a deleted user (DeletedUsername) is
	// ErrUserDeleted.
	CreateUserByUsername(ctx context.Context, username string) (User, error)
	// Users returns the users with the given ids that exist, ordered by id,
	// duplicates removed. Deleted users are included, with Deleted set and
	// no personal data.
	Users(ctx context.Context, ids []int64) ([]User, error)
	// DeleteUser deletes a user for good, in one transaction
	// (docs/protocol.md#deleted-users): the user's memberships (with their
	// roles and permissions), sessions, last seen time, reactions, read
	// receipts and deliveries go, as do the notifications of their
	// reactions and their place among the recipients of every other
	// notification; their one-to-one chats are deleted with every message
	// in them; a group or channel that they were the last member of is
	// deleted (as when the last member leaves). Their messages in groups and
	// channels stay: the users row stays, so that those messages keep their
	// sender, with no personal data (username DeletedUsername(id), email and
	// names empty, Deleted set). The result lists the rooms deleted and the
	// groups and channels the user left that still exist, each ascending.
	// An unknown id is ErrNotFound; an already deleted user is not an
	// error: nothing changes and the result is empty.
	DeleteUser(ctx context.Context, userID int64) (UserDeletion, error)
	// SearchUsers returns at most limit users other than exceptID whose
	// username, last name, or first name followed by a space and the last
	// name starts with prefix, compared case-insensitively, ordered by
	// username (byte order). An empty prefix or a limit below 1 finds no
	// one (docs/protocol.md#user-search).
	SearchUsers(ctx context.Context, prefix string, exceptID int64, limit int) ([]User, error)
}

// SessionStore keeps one session per open connection (connect,
// heartbeat, disconnect) and, per user, when the user was last seen. A
// session exists only while its connection is open: closing it deletes it,
// so the store holds as many sessions as there are open connections, and
// one last-seen time per user (docs/protocol.md#sessions).
type SessionStore interface {
	// CreateSession records a new connection: ns.ConnID of user ns.UserID,
	// served by node ns.NodeID. The session's LastSeen and the user's last
	// seen time are now. An unknown user is ErrConflict.
	CreateSession(ctx context.Context, ns NewSession) (Session, error)
	// TouchSession sets LastSeen of a session, and the last seen time of
	// its user, to now and returns that time (session.heartbeat). A
	// missing session (closed, or expired with its node) is ErrNotFound.
	TouchSession(ctx context.Context, sessionID int64) (time.Time, error)
	// CloseSession deletes the session (disconnect) and sets the last seen
	// time of its user to now. A missing session (closed already, or
	// expired with its node) is not an error.
	CloseSession(ctx context.Context, sessionID int64) error
	// UserSessions returns the open sessions of a user, oldest first.
	UserSessions(ctx context.Context, userID int64) ([]Session, error)
	// LastSeen returns when each of the given users was last seen: the
	// latest connect, heartbeat or disconnect of any of their sessions.
	// Users never seen, and ids that are not users, are absent.
	LastSeen(ctx context.Context, userIDs []int64) (map[int64]time.Time, error)
}

// NodeStore keeps a heartbeat per node (a server process that holds
// connections), so that the sessions of a node that stopped without
// closing them (a crash, a SIGKILL) are expired by any node that is still
// running. Times are the store's own clock (PostgreSQL: the database's), so
// the nodes' clocks need not agree.
type NodeStore interface {
	// TouchNode records that nodeID is alive now.
	TouchNode(ctx context.Context, nodeID string) error
	// ExpireNodes deletes the heartbeat of every node not seen for longer
	// than maxAge, with all the sessions of those nodes, and the sessions
	// of no known node (NodeID empty, or a node without a heartbeat) whose
	// own LastSeen is older than maxAge. Each affected user's last seen
	// time becomes the latest LastSeen of their expired sessions, unless it
	// is later already. It returns the number of sessions deleted.
	ExpireNodes(ctx context.Context, maxAge time.Duration) (int, error)
	// RemoveNode deletes the sessions of nodeID and its heartbeat (a node
	// that stops cleanly), setting each affected user's last seen time to
	// now. It returns the number of sessions deleted.
	RemoveNode(ctx context.Context, nodeID string) (int, error)
}

// MaxNodeIDLen is the longest node id (Session.NodeID, TouchNode).
const MaxNodeIDLen = 128

// User is a chat user. The id comes from authentication (or, in development
// mode, from CreateUserByUsername).
type User struct {
	ID        int64  `db:"id" json:"id"`
	Username  string `db:"username" json:"username"`
	Email     string `db:"email" json:"email"`
	FirstName string `db:"first_name" json:"first_name"`
	LastName  string `db:"last_name" json:"last_name"`
	// Deleted is true for a user deleted by DeleteUser: the username is
	// DeletedUsername(ID) and the other fields are empty.
	Deleted bool `db:"deleted" json:"is_deleted,omitempty"`
}

// UserDeletion is the outcome of UserStore.DeleteUser.
type UserDeletion struct {
	// RoomsDeleted are the rooms deleted with the user: their one-to-one
	// chats, and the groups and channels they were the last member of.
	RoomsDeleted []uuid.UUID
	// RoomsLeft are the groups and channels the user was a member of that
	// still exist.
	RoomsLeft []uuid.UUID
}

// deletedUserPrefix starts the username of every deleted user.
const deletedUserPrefix = "deleted user "

// DeletedUsername returns the username a deleted user keeps: "deleted user
// <id>". It has a space, so no sign-in name of the example servers can
// clash with it, and the stores refuse it for anyone else (IsDeletedUsername).
func DeletedUsername(id int64) string { return deletedUserPrefix + strconv.FormatInt(id, 10) }

// IsDeletedUsername reports whether name has the form DeletedUsername
// gives: "deleted user " followed by a positive decimal id.
func IsDeletedUsername(name string) bool {
	rest, ok := strings.CutPrefix(name, deletedUserPrefix)
	if !ok {
		return false
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	return err == nil && id > 0 && strconv.FormatInt(id, 10) == rest
}

// NewSession is the input of CreateSession.
type NewSession struct {
	UserID int64
	// ConnID identifies the connection (chatmux.Conn.ID).
	ConnID string
	// NodeID identifies the node that serves the connection (see
	// NodeStore); at most MaxNodeIDLen characters, may be empty when no
	// node keeps a heartbeat.
	NodeID string
	// MarkOnline also sets the user's announced presence to online, in
	// the same transaction, when it was not (docs/protocol.md#presence);
	// Session.WentOnline reports whether this call flipped it (of
	// concurrent calls for one user, one at most).
	MarkOnline bool
}

// Session is one open connection of a user.
type Session struct {
	ID       int64     `db:"id"`
	UserID   int64     `db:"user_id"`
	ConnID   string    `db:"conn_id"`
	NodeID   string    `db:"node_id"`
	LastSeen time.Time `db:"last_seen"`
	Created  time.Time `db:"created_at"`
	// WentOnline is set by CreateSession with NewSession.MarkOnline when
	// it flipped the user's announced presence to online.
	WentOnline bool `db:"-"`
}
