package store

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Store is everything the chat domain persists and queries. Implementations
// are safe for concurrent use. Every method that changes several tables does
// so in one transaction: all of it happens, or none of it.
//
// Lookups by a list of ids return what exists and skip what does not, unless
// the method says otherwise; callers compare lengths when a missing id must
// be an error (4004).
type Store interface {
	// ---- users ----

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

	// ---- sessions (one per connection) ----

	// CreateSession records a new connection of userID with the given
	// connection id; LastSeen is now. An unknown user is ErrConflict.
	CreateSession(ctx context.Context, userID int64, connID string) (Session, error)
	// TouchSession sets LastSeen of an open session to now and returns it
	// (session.heartbeat). A missing or closed session is ErrNotFound.
	TouchSession(ctx context.Context, sessionID int64) (time.Time, error)
	// CloseSession marks the session closed (disconnect). Closing twice is
	// not an error; a missing session is ErrNotFound.
	CloseSession(ctx context.Context, sessionID int64) error

	// ---- rooms ----

	// CreateRoom creates a room with its property, the creator's membership
	// and role (Group: admin, Channel: moderator; one-to-one: participant)
	// and the initial members, atomically. Member ids of a group or channel
	// that are not existing users are dropped silently. Errors: a member id
	// of a one-to-one chat that is not a user is ErrUnknownUser on
	// "participants" (UnknownUserError, the first such id in input order);
	// a one-to-one chat that does not end
	// with exactly two distinct users is ErrOneToOneParticipants; an existing
	// one-to-one chat of the same pair is ErrDuplicateOneToOne; more members
	// than the cap is ErrCapExceeded; a missing or too long name of a group
	// or channel is a *ValidationError on field "name"; an unknown type is a
	// *ValidationError on "type" ("Invalid resource type"); a creator who is
	// not a user is ErrNotFound.
	CreateRoom(ctx context.Context, r NewRoom) (Room, error)
	// Room returns one room (ErrNotFound when missing).
	Room(ctx context.Context, roomID uuid.UUID) (Room, error)
	// RoomDetail returns the room with its members, admins or moderators and
	// creator (room.create/info/modify and member dispatches).
	RoomDetail(ctx context.Context, roomID uuid.UUID) (RoomDetail, error)
	// UpdateRoom applies the non-nil fields of up (room.modify update).
	// Fields that do not apply to the room's type are ignored (a one-to-one
	// chat only takes Preferences and Extra). Preferences, when non-nil,
	// replace the old ones; Extra keys are merged into the old Extra. A name
	// is validated as at creation. UpdatedAt is set to now.
	UpdateRoom(ctx context.Context, roomID uuid.UUID, up RoomUpdate) (Room, error)
	// DeleteRoom deletes the room and everything in it (messages,
	// memberships, notifications). A missing room is ErrNotFound.
	DeleteRoom(ctx context.Context, roomID uuid.UUID) error
	// ListRooms returns every room userID belongs to with its last visible
	// message and the user's unread count (room.list). Order: by last
	// activity, newest first, where a room's activity is its last visible
	// message's time, or its creation time when it has none.
	ListRooms(ctx context.Context, userID int64) ([]RoomListItem, error)
	// UserRoomIDs returns the ids of every room userID belongs to (connect).
	UserRoomIDs(ctx context.Context, userID int64) ([]uuid.UUID, error)
	// RoomMemberIDs returns the user ids of the room's members, ascending.
	// A missing room is ErrNotFound.
	RoomMemberIDs(ctx context.Context, roomID uuid.UUID) ([]int64, error)

	// ---- membership and permissions ----

	// Membership returns, in one round trip, what permission checks need
	// about userID in roomID. A missing room is ErrNotFound; a non-member
	// gets IsMember false.
	Membership(ctx context.Context, roomID uuid.UUID, userID int64) (Membership, error)
	// Memberships is Membership for several rooms at once; rooms that do not
	// exist are absent from the map.
	Memberships(ctx context.Context, roomIDs []uuid.UUID, userID int64) (map[uuid.UUID]Membership, error)
	// AddMembers adds users to a group or channel (room.add_members,
	// room.join). Users already members are skipped; the result lists the
	// ids actually added, ascending. Any id that is not an existing user is
	// ErrNotFound and nothing is added. Going over the cap is ErrCapExceeded
	// (nothing added); a one-to-one chat is ErrWrongRoomType.
	AddMembers(ctx context.Context, roomID uuid.UUID, userIDs []int64) ([]int64, error)
	// RemoveMembers removes users from a group or channel (room.remove_members,
	// room.leave), stripping their role and explicit permissions. The creator
	// is skipped unless ActorID is the creator; non-members are skipped. Any
	// id that is not an existing user is ErrNotFound and nothing changes. When
	// the room has no member left it is deleted and RoomDeleted is true. A
	// one-to-one chat is ErrWrongRoomType.
	RemoveMembers(ctx context.Context, rm RemoveMembers) (RemoveResult, error)
	// SetRole makes members admins (GroupChat) or moderators (Channel) when
	// on is true, or takes the role away when false (room.modify
	// add_admin/remove_admin/add_moderator/remove_moderator). Non-members and
	// the creator are skipped; the result lists the ids whose role changed.
	// A one-to-one chat is ErrWrongRoomType.
	SetRole(ctx context.Context, roomID uuid.UUID, userIDs []int64, on bool) ([]int64, error)
	// SetPermissions grants (on) or revokes explicit permissions of members
	// (room.modify add_permission/remove_permission). Non-members and the
	// creator are skipped. A permission that does not belong to the room's
	// type is a *ValidationError with the protocol's detail ("Permission
	// '<p>' is not a valid group chat permission"); a one-to-one chat is
	// ErrWrongRoomType. Role-implied permissions are not stored and cannot be
	// revoked this way.
	SetPermissions(ctx context.Context, roomID uuid.UUID, userIDs []int64, perms []Permission, on bool) ([]int64, error)

	// ---- messages ----

	// SendMessage stores a message with the room's next seq, its
	// attachments, the room's new last message and (when m.Notify) a
	// NEW_MESSAGE or REPLY notification for every other member, in one
	// transaction. With a ClientMsgID already used by the same sender in the
	// same room it stores nothing and returns the original message with
	// Duplicate true. A reply that is also a forward is ErrConflict; a parent
	// or forwarded message that does not exist is a *ValidationError on
	// "parent_message_id" / "forwarded_from_id"; a missing room ErrNotFound;
	// a sender who is not a user ErrConflict. Membership is not checked
	// (that is policy). Content is stored as given (sanitising is chat's job).
	SendMessage(ctx context.Context, m NewMessage) (SendResult, error)
	// Messages returns the messages with the given ids that exist (soft
	// deleted ones included: check IsDeleted), in the order of ids.
	Messages(ctx context.Context, ids []uuid.UUID) ([]Message, error)
	// MessageViews loads everything the wire Message object needs for the
	// given ids (soft-deleted included), in the order of ids, batch-loaded.
	MessageViews(ctx context.Context, ids []uuid.UUID) ([]MessageView, error)
	// MessagesPage returns one page of a room's visible messages, newest
	// first (room.messages with paginate). page < 1 or past the last page
	// gives the last page, and the result carries the effective page. size 0
	// means no pagination: every visible message in one page. A negative
	// size is a *ValidationError.
	MessagesPage(ctx context.Context, roomID uuid.UUID, page, size int) (MessagePage, error)
	// MessagesAfter returns up to limit visible messages with seq > afterSeq,
	// oldest first (catch-up after a reconnect). limit < 1 is a
	// *ValidationError; a missing room ErrNotFound.
	MessagesAfter(ctx context.Context, roomID uuid.UUID, afterSeq int64, limit int) ([]MessageView, error)
	// MessagesBefore returns up to limit visible messages with seq <
	// beforeSeq, newest first (scroll back). Errors as MessagesAfter.
	MessagesBefore(ctx context.Context, roomID uuid.UUID, beforeSeq int64, limit int) ([]MessageView, error)
	// EditMessage replaces the content (and merges extra keys into Extra) of
	// a message and sets IsEdited (message.modify update). A missing or soft
	// deleted message is ErrNotFound.
	EditMessage(ctx context.Context, messageID uuid.UUID, content string, extra JSON) (Message, error)
	// DeleteMessages deletes messages, soft (IsDeleted) or hard, together
	// with all their notifications, and moves each affected room's last
	// message to its latest visible message (message.modify delete).
	// Missing ids (and, for a soft delete, already soft-deleted ones) are
	// skipped; the result lists the ids deleted, in input order. A hard
	// delete sets the parent/forward links of other messages to it to nil.
	DeleteMessages(ctx context.Context, ids []uuid.UUID, hard bool) ([]uuid.UUID, error)
	// Acknowledge adds userID to delivered_to of the messages and removes
	// userID from the recipients of their notifications, deleting
	// notifications left without recipients (message.acknowledged). The
	// user's own messages are skipped. Any missing or soft-deleted id is
	// ErrNotFound and nothing changes. The result lists the acknowledged ids
	// (own messages excluded), in input order. An unknown userID is
	// ErrConflict.
	Acknowledge(ctx context.Context, userID int64, messageIDs []uuid.UUID) ([]uuid.UUID, error)
	// MarkRead inserts read receipts of readerID, skipping own messages and
	// messages already read; it returns the receipts newly created, in input
	// order (message.read). Any missing or soft-deleted id is ErrNotFound and
	// nothing changes.
	MarkRead(ctx context.Context, readerID int64, messageIDs []uuid.UUID) ([]ReadReceipt, error)

	// ---- reactions ----

	// AddReaction sets the user's reaction on a message, replacing (and
	// deleting the notification of) a reaction with different content; the
	// same content again is ErrConflict. With r.Notify a REACTION
	// notification for every other member of the room is created in the
	// same transaction. A missing or soft-deleted message is ErrNotFound.
	AddReaction(ctx context.Context, r NewReaction) (Reaction, error)
	// RemoveReaction deletes the user's reaction on the message, whatever its
	// content, and its REACTION notification; it reports whether there was
	// one. A missing or soft-deleted message is ErrNotFound.
	RemoveReaction(ctx context.Context, messageID uuid.UUID, userID int64) (bool, error)

	// ---- notifications ----

	// PendingNotifications returns the notifications that still list userID
	// as a recipient, grouped by room; rooms ordered by their newest
	// notification's message time, newest first, and notifications in a
	// room newest message first (chat.notifications).
	PendingNotifications(ctx context.Context, userID int64) ([]RoomNotifications, error)
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

// RoomType is the kind of a room, spelled as on the wire.
type RoomType string

// The three room types.
const (
	OneToOne RoomType = "OneToOneChat"
	Group    RoomType = "GroupChat"
	Channel  RoomType = "Channel"
)

// Valid reports whether t is one of the three room types.
func (t RoomType) Valid() bool { return t == OneToOne || t == Group || t == Channel }

// Permission is an explicit per-(room, user) permission, named as on the wire.
type Permission string

// The five permissions: two for groups, three for channels.
const (
	PermAddParticipants    Permission = "can_add_new_participants"
	PermRemoveParticipants Permission = "can_remove_participants"
	PermAddSubscribers     Permission = "can_add_new_subscribers"
	PermRemoveSubscribers  Permission = "can_remove_subscribers"
	PermSendMessages       Permission = "can_send_messages"
)

// PermissionsFor returns the permissions that exist for a room type (nil for
// one-to-one chats). They are also the permissions the role of that type
// (group admin, channel moderator) implies.
func PermissionsFor(t RoomType) []Permission {
	switch t {
	case Group:
		return []Permission{PermAddParticipants, PermRemoveParticipants}
	case Channel:
		return []Permission{PermAddSubscribers, PermRemoveSubscribers, PermSendMessages}
	}
	return nil
}

// ValidFor reports whether p is a permission of room type t.
func (p Permission) ValidFor(t RoomType) bool {
	for _, q := range PermissionsFor(t) {
		if p == q {
			return true
		}
	}
	return false
}

// NotificationType is the kind of a notification.
type NotificationType string

// The three notification types.
const (
	NotifyNewMessage NotificationType = "NEW_MESSAGE"
	NotifyReply      NotificationType = "REPLY"
	NotifyReaction   NotificationType = "REACTION"
)

// MediaType is the kind of an attachment.
type MediaType string

// The four media types.
const (
	MediaImage MediaType = "image"
	MediaVideo MediaType = "video"
	MediaAudio MediaType = "audio"
	MediaFile  MediaType = "file"
)

// Valid reports whether m is one of the four media types.
func (m MediaType) Valid() bool {
	return m == MediaImage || m == MediaVideo || m == MediaAudio || m == MediaFile
}

// mimeTypes is the allow-list of PROTOCOL.md B5.8 (27 entries).
var mimeTypes = []string{
	"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/heic",
	"audio/mpeg", "audio/mp4", "audio/aac", "audio/ogg", "audio/wav", "audio/opus",
	"video/mp4", "video/quicktime", "video/webm", "video/ogg", "video/x-msvideo", "video/x-matroska",
	"application/pdf", "application/msword",
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	"application/vnd.ms-excel",
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	"application/vnd.ms-powerpoint",
	"application/vnd.openxmlformats-officedocument.presentationml.presentation",
	"text/plain", "text/csv",
}

// MIMETypes returns a copy of the MIME allow-list for attachments.
func MIMETypes() []string { return append([]string(nil), mimeTypes...) }

// ValidMIMEType reports whether s is on the MIME allow-list.
func ValidMIMEType(s string) bool {
	for _, m := range mimeTypes {
		if s == m {
			return true
		}
	}
	return false
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

// Room is a room of any type. Fields that do not apply to a type are zero:
// a one-to-one chat has no name, creator, caps, avatar or flags.
type Room struct {
	ID   uuid.UUID `db:"id"`
	Type RoomType  `db:"type"`
	// Name is required for groups and channels, at most MaxRoomNameLen.
	Name string `db:"name"`
	// Description and Avatar are "" when unset (null on the wire).
	Description string `db:"description"`
	Avatar      string `db:"avatar"`
	// CreatorID is the creating user of a group or channel, 0 for one-to-one.
	CreatorID int64 `db:"creator_id"`
	// MaxMembers is max_participants of a group or max_subscribers of a
	// channel; 0 for one-to-one.
	MaxMembers           int  `db:"max_members"`
	JoinApprovalRequired bool `db:"join_approval_required"`
	GroupLocked          bool `db:"group_locked"`
	IsPublic             bool `db:"is_public"`
	// Preferences is the room property's preferences object (never nil).
	Preferences JSON `db:"preferences"`
	// Extra holds fields a host application registers (never nil).
	Extra JSON `db:"extra"`
	// LastMessageID is the latest visible message, nil when none.
	LastMessageID *uuid.UUID `db:"last_message_id"`
	// LastSeq is the seq of the latest message ever sent (deleted or not).
	LastSeq   int64     `db:"last_seq"`
	CreatedAt time.Time `db:"created_at"`
	UpdatedAt time.Time `db:"updated_at"`
}

// NewRoom is the input of CreateRoom.
type NewRoom struct {
	Type RoomType
	// CreatorID is the creating user: creator of a group or channel, one of
	// the two participants of a one-to-one chat.
	CreatorID   int64
	Name        string
	Description string
	Avatar      string
	// MaxMembers is the cap; 0 means the default of the type. Ignored for
	// one-to-one chats.
	MaxMembers           int
	JoinApprovalRequired bool
	GroupLocked          bool
	IsPublic             bool
	Preferences          JSON
	Extra                JSON
	// Members are the other initial members (participants or subscribers).
	// The creator is added anyway; duplicates and unknown users are dropped.
	Members []int64
}

// RoomUpdate is the input of UpdateRoom: nil fields stay as they are.
type RoomUpdate struct {
	Name                 *string
	Description          *string
	Avatar               *string
	GroupLocked          *bool
	JoinApprovalRequired *bool
	IsPublic             *bool
	// Preferences replace the old preferences when non-nil.
	Preferences JSON
	// Extra keys are merged into the room's Extra when non-nil.
	Extra JSON
}

// RoomDetail is a room with the users the RoomDetail wire object shows.
type RoomDetail struct {
	Room
	// Creator is nil for one-to-one chats (or a creator row that is gone).
	Creator *User
	// Members are participants or subscribers, ordered by user id.
	Members []User
	// Admins are group admins or channel moderators, ordered by user id.
	Admins []User
}

// RoomListItem is one entry of ListRooms.
type RoomListItem struct {
	Room
	// Creator is nil for one-to-one chats.
	Creator *User
	// Peer is the other participant of a one-to-one chat, nil otherwise.
	Peer *User
	// LastMessage is the latest visible message, nil when the room has none.
	LastMessage *MessageView
	// UnreadCount counts visible messages from others without a read
	// receipt by the listing user.
	UnreadCount int
}

// Membership is what permission checks need about one user in one room.
type Membership struct {
	RoomID      uuid.UUID
	RoomType    RoomType
	CreatorID   int64
	IsPublic    bool
	GroupLocked bool
	// IsMember: participant (one-to-one, group) or subscriber (channel).
	IsMember bool
	// IsAdmin: group admin or channel moderator.
	IsAdmin bool
	// Permissions are the explicitly granted permissions (not those the role
	// implies); see Has.
	Permissions []Permission
}

// IsCreator reports whether userID created the room (groups and channels),
// whether or not they are still a member: every privilege also needs
// IsMember.
func (m Membership) IsCreator(userID int64) bool { return m.CreatorID != 0 && m.CreatorID == userID }

// Has reports whether the member holds p, explicitly or through the role.
// Non-members hold nothing.
func (m Membership) Has(p Permission) bool {
	if !m.IsMember || !p.ValidFor(m.RoomType) {
		return false
	}
	if m.IsAdmin {
		return true
	}
	for _, q := range m.Permissions {
		if q == p {
			return true
		}
	}
	return false
}

// RemoveMembers is the input of Store.RemoveMembers.
type RemoveMembers struct {
	RoomID uuid.UUID
	// ActorID is the user removing (the leaver for room.leave); the creator
	// can only be removed by the creator.
	ActorID int64
	UserIDs []int64
}

// RemoveResult is the outcome of Store.RemoveMembers.
type RemoveResult struct {
	// Removed lists the ids actually removed, ascending.
	Removed []int64
	// RoomDeleted is true when the room became empty and was deleted.
	RoomDeleted bool
}

// Message is a stored message.
type Message struct {
	ID     uuid.UUID `db:"id"`
	RoomID uuid.UUID `db:"room_id"`
	// Seq is the message's number in its room: 1, 2, 3, ...
	Seq             int64      `db:"seq"`
	SenderID        int64      `db:"sender_id"`
	Content         string     `db:"content"`
	ParentID        *uuid.UUID `db:"parent_id"`
	ForwardedFromID *uuid.UUID `db:"forwarded_from_id"`
	IsForwarded     bool       `db:"is_forwarded"`
	IsEdited        bool       `db:"is_edited"`
	IsDeleted       bool       `db:"is_deleted"`
	// ClientMsgID is the sender's idempotency key, "" when none.
	ClientMsgID string `db:"client_msg_id"`
	// Extra holds fields a host application registers (never nil).
	Extra     JSON      `db:"extra"`
	CreatedAt time.Time `db:"created_at"`
	UpdatedAt time.Time `db:"updated_at"`
}

// NewMessage is the input of SendMessage.
type NewMessage struct {
	RoomID   uuid.UUID
	SenderID int64
	Content  string
	// ParentID makes the message a reply (notification type REPLY).
	ParentID *uuid.UUID
	// ForwardedFromID makes the message a forward (IsForwarded true).
	ForwardedFromID *uuid.UUID
	// ClientMsgID (at most MaxClientMsgIDLen) makes the send idempotent per
	// (room, sender).
	ClientMsgID string
	Extra       JSON
	Attachments []NewAttachment
	// Notify creates the NEW_MESSAGE/REPLY notification for the other
	// members (none is created when there are no other members).
	Notify bool
}

// SendResult is the outcome of SendMessage.
type SendResult struct {
	Message     Message
	Attachments []Attachment
	// Notification is the created notification, nil when none.
	Notification *Notification
	// Duplicate is true when ClientMsgID matched an earlier send: Message is
	// that original message and nothing new was stored.
	Duplicate bool
}

// Attachment is a media asset of a message (a URL; files are not stored).
type Attachment struct {
	ID        uuid.UUID `db:"id"`
	MessageID uuid.UUID `db:"message_id"`
	MediaURL  string    `db:"media_url"`
	MediaType MediaType `db:"media_type"`
	FileSize  int64     `db:"file_size"`
	MimeType  string    `db:"mime_type"`
	// Caption is "" when unset (null on the wire).
	Caption string `db:"caption"`
	// Metadata is a free-form object (never nil).
	Metadata JSON `db:"metadata"`
}

// NewAttachment is one attachment of NewMessage. MediaURL is required,
// MediaType must be valid, FileSize >= 0, MimeType on the allow-list ("" means
// DefaultMIMEType).
type NewAttachment struct {
	MediaURL  string
	MediaType MediaType
	FileSize  int64
	MimeType  string
	Caption   string
	Metadata  JSON
}

// Reaction is one user's reaction on a message.
type Reaction struct {
	ID        uuid.UUID `db:"id"`
	MessageID uuid.UUID `db:"message_id"`
	UserID    int64     `db:"user_id"`
	Content   string    `db:"content"`
	CreatedAt time.Time `db:"created_at"`
}

// NewReaction is the input of AddReaction.
type NewReaction struct {
	MessageID uuid.UUID
	UserID    int64
	// Content is non-empty, at most MaxReactionLen characters.
	Content string
	// Notify creates a REACTION notification for the other members.
	Notify bool
}

// ReadReceipt records that a reader read a message.
type ReadReceipt struct {
	ID        uuid.UUID `db:"id"`
	MessageID uuid.UUID `db:"message_id"`
	ReaderID  int64     `db:"reader_id"`
	ReadAt    time.Time `db:"read_at"`
}

// Notification is a pending notification about a message.
type Notification struct {
	ID        uuid.UUID        `db:"id"`
	Type      NotificationType `db:"type"`
	MessageID uuid.UUID        `db:"message_id"`
	RoomID    uuid.UUID        `db:"room_id"`
	// ReactionID links a REACTION notification to its reaction.
	ReactionID *uuid.UUID `db:"reaction_id"`
	// Recipients are the users still to be notified, ascending (never empty).
	Recipients []int64
	CreatedAt  time.Time `db:"created_at"`
}

// MessageView is everything the wire Message object shows.
type MessageView struct {
	Message
	Sender User
	// Parent and ForwardedFrom are loaded recursively; nil when absent.
	Parent        *MessageView
	ForwardedFrom *MessageView
	// DeliveredTo are the usernames of users who acknowledged, ordered by
	// user id.
	DeliveredTo  []string
	ReadReceipts []ReadReceiptView
	Reactions    []ReactionView
	Attachments  []Attachment
}

// ReadReceiptView is a read receipt with its reader, ordered by read time.
type ReadReceiptView struct {
	ReadReceipt
	Reader User
}

// ReactionView is a reaction with its user, ordered by creation time.
type ReactionView struct {
	Reaction
	User User
}

// MessagePage is one page of MessagesPage.
type MessagePage struct {
	// Messages, newest first.
	Messages []MessageView
	// Page is the effective page (1-based), Size the page size (0: all).
	Page int
	Size int
	// Total is the number of visible messages, Pages the number of pages
	// (at least 1).
	Total       int
	Pages       int
	HasNext     bool
	HasPrevious bool
}

// NotificationView is a notification with its message.
type NotificationView struct {
	ID      uuid.UUID
	Type    NotificationType
	Message MessageView
}

// RoomNotifications are one room's pending notifications of a user.
type RoomNotifications struct {
	RoomID        uuid.UUID
	Notifications []NotificationView
}

// Now returns the current time as both stores keep it: UTC, truncated to
// microseconds (PostgreSQL's precision).
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
