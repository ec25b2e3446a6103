package store

import (
	"context"
	"time"
)

// UserStore keeps the users, as authentication names them.
type UserStore interface {
	// UpsertUser inserts u or, when a user with u.ID exists, updates its
	// username, email and names. A username held by another user is
	// ErrConflict. u.ID must be positive.
	UpsertUser(ctx context.Context, u User) (User, error)
	// CreateUserByUsername returns the user with that username, creating it
	// with a store-assigned id when none exists (development mode without an
	// identity provider).
	CreateUserByUsername(ctx context.Context, username string) (User, error)
	// Users returns the users with the given ids that exist, ordered by id,
	// duplicates removed.
	Users(ctx context.Context, ids []int64) ([]User, error)
	// SearchUsers returns at most limit users other than exceptID whose
	// username, last name, or first name followed by a space and the last
	// name starts with prefix, compared case-insensitively, ordered by
	// username (byte order). An empty prefix or a limit below 1 finds no
	// one (docs/protocol.md#user-search).
	SearchUsers(ctx context.Context, prefix string, exceptID int64, limit int) ([]User, error)
}

// SessionStore keeps one session per connection (connect, heartbeat,
// disconnect).
type SessionStore interface {
	// CreateSession records a new connection of userID with the given
	// connection id; LastSeen is now. An unknown user is ErrConflict.
	CreateSession(ctx context.Context, userID int64, connID string) (Session, error)
	// TouchSession sets LastSeen of an open session to now and returns it
	// (session.heartbeat). A missing or closed session is ErrNotFound.
	TouchSession(ctx context.Context, sessionID int64) (time.Time, error)
	// CloseSession marks the session closed (disconnect). Closing twice is
	// not an error; a missing session is ErrNotFound.
	CloseSession(ctx context.Context, sessionID int64) error
}

// User is a chat user. The id comes from authentication (or, in development
// mode, from CreateUserByUsername).
type User struct {
	ID        int64  `db:"id" json:"id"`
	Username  string `db:"username" json:"username"`
	Email     string `db:"email" json:"email"`
	FirstName string `db:"first_name" json:"first_name"`
	LastName  string `db:"last_name" json:"last_name"`
}

// Session is one connection of a user.
type Session struct {
	ID       int64      `db:"id"`
	UserID   int64      `db:"user_id"`
	ConnID   string     `db:"conn_id"`
	LastSeen time.Time  `db:"last_seen"`
	Created  time.Time  `db:"created_at"`
	ClosedAt *time.Time `db:"closed_at"`
}
