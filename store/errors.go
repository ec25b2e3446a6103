package store

import (
	"errors"
	"fmt"
)

// Sentinel errors. Test with errors.Is; a *ValidationError wraps the
// domain sentinels so both errors.Is and errors.As work.
var (
	// ErrNotFound: the room, message, user or session does not exist
	// (4004 "Resource not found.").
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: a uniqueness, check or foreign-key constraint was
	// violated (4005 "Database constraint violated."), e.g. the same
	// reaction twice, or a reply that is also a forward.
	ErrConflict = errors.New("store: constraint violated")
	// ErrInvalid is wrapped by every *ValidationError that has no more
	// specific sentinel (bad input: 4003).
	ErrInvalid = errors.New("store: invalid input")
	// ErrCapExceeded: adding members would exceed the room's cap (4003 with
	// the cap message).
	ErrCapExceeded = errors.New("store: member cap exceeded")
	// ErrDuplicateOneToOne: the two users already share a one-to-one chat
	// (4003 "Chat already exists").
	ErrDuplicateOneToOne = errors.New("store: one-to-one chat already exists")
	// ErrOneToOneParticipants: a one-to-one chat would not have exactly two
	// participants (4003 "A one to one chat can only have 2 participants").
	ErrOneToOneParticipants = errors.New("store: one-to-one chat needs exactly two participants")
	// ErrWrongRoomType: the operation does not apply to the room's type
	// (e.g. adding members to a one-to-one chat, admins on a channel).
	ErrWrongRoomType = errors.New("store: operation not valid for this room type")
	// ErrUnknownUser: an input field names a user id that does not exist
	// (4003 with a field detail naming the id; see UnknownUserError).
	ErrUnknownUser = errors.New("store: unknown user")
	// ErrUnavailable: the store could not be reached or gave up on the
	// call (a refused or broken connection, a server shutting down, a
	// cancelled statement). The call may or may not have taken effect;
	// retrying later is the answer (4013 "Service temporarily unavailable,
	// try again."). A call whose context ends returns the context's error
	// instead (context.DeadlineExceeded or context.Canceled).
	ErrUnavailable = errors.New("store: unavailable")
	// ErrUserDeleted: the user was deleted for good (UserStore.DeleteUser)
	// and cannot come back: UpsertUser and CreateUserByUsername of its id
	// or name, CreateSession of it, and adding it to a room (see
	// DeletedUserError) are refused (docs/protocol.md#deleted-users).
	ErrUserDeleted = errors.New("store: user deleted")
)

// Exact detail strings of the protocol (docs/protocol.md#errors) carried by
// validation errors.
const (
	MsgChatExists          = "Chat already exists"
	MsgOneToOneTwo         = "A one to one chat can only have 2 participants"
	MsgGroupCap            = "Maximum number of group participants exceeded"
	MsgChannelCap          = "Maximum number of channel subscribers exceeded"
	MsgMembersGroupChannel = "Invalid room, Can only add or remove members from Groups/Channels"
	MsgAdminsGroupOnly     = "Room should be a group chat to modify the admins"
	MsgModeratorsChannel   = "Room should be a channel to modify the moderators"
	MsgRequired            = "This field is required."
	MsgBlank               = "This field may not be blank."
)

// ValidationError is bad input or a violated domain invariant. Field names
// the input field ("" when the error is about the request as a whole),
// Message is the detail for the client (the protocol's exact string where
// there is one), Err is the sentinel it wraps (ErrInvalid when nothing more
// specific applies).
type ValidationError struct {
	Field   string
	Message string
	Err     error
}

// Error implements error.
func (e *ValidationError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// Unwrap returns the wrapped sentinel.
func (e *ValidationError) Unwrap() error {
	if e.Err == nil {
		return ErrInvalid
	}
	return e.Err
}

// Invalid returns a *ValidationError wrapping ErrInvalid.
func Invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...), Err: ErrInvalid}
}

// Invariant returns a *ValidationError wrapping the sentinel err.
func Invariant(err error, field, msg string) error {
	return &ValidationError{Field: field, Message: msg, Err: err}
}

// CapError is the ErrCapExceeded validation error for a room type.
func CapError(t RoomType) error {
	if t == Channel {
		return Invariant(ErrCapExceeded, "subscribers", MsgChannelCap)
	}
	return Invariant(ErrCapExceeded, "participants", MsgGroupCap)
}

// DeletedUserError is the ErrUserDeleted validation error for a deleted
// user named in an input field (AddMembers: "members"; CreateRoom:
// "participants"): {field: ["User <id> has been deleted."]} on the wire.
func DeletedUserError(field string, id int64) error {
	return Invariant(ErrUserDeleted, field, fmt.Sprintf("User %d has been deleted.", id))
}

// UnknownUserError is the ErrUnknownUser validation error for the user id
// id given in field: {field: ["Invalid pk \"<id>\" - object does not
// exist."]} on the wire, the detail Django REST framework gives for an
// unknown primary key.
func UnknownUserError(field string, id int64) error {
	return Invariant(ErrUnknownUser, field, fmt.Sprintf("Invalid pk \"%d\" - object does not exist.", id))
}
