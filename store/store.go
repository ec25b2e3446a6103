package store

import "time"

// Store is everything the chat domain persists and queries: one interface
// per concern, embedded. Implementations are safe for concurrent use. Every
// method that changes several tables does so in one transaction: all of it
// happens, or none of it.
//
// Lookups by a list of ids return what exists and skip what does not, unless
// the method says otherwise; callers compare lengths when a missing id must
// be an error (4004).
type Store interface {
	UserStore
	SessionStore
	NodeStore
	PresenceStore
	RoomStore
	MemberStore
	MessageStore
	ReceiptStore
	ReactionStore
	NotificationStore
}

// Limits enforced by both stores.
const (
	// MaxRoomNameLen is the maximum length of a room name, in characters.
	MaxRoomNameLen = 64
	// MaxReactionLen is the maximum length of reaction content, in characters.
	MaxReactionLen = 128
	// MaxClientMsgIDLen is the maximum length of a client_msg_id.
	MaxClientMsgIDLen = 64
	// MaxMediaTypeLen is the maximum length of a media type.
	MaxMediaTypeLen = 64
	// DefaultMaxParticipants is a group's cap when NewRoom.MaxMembers is 0.
	DefaultMaxParticipants = 100
	// DefaultMaxSubscribers is a channel's cap when NewRoom.MaxMembers is 0.
	DefaultMaxSubscribers = 300
	// DefaultMIMEType is an attachment's MIME type when none is given.
	DefaultMIMEType = "image/jpeg"
)

// Now returns the current time as both stores keep it: UTC, truncated to
// microseconds (PostgreSQL's precision).
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
