package store

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// RoomStore keeps the rooms: creation, details, updates, deletion and
// the lists a user and a room need.
type RoomStore interface {
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
	// UserRoomIDs returns the ids of every room userID belongs to, ordered
	// by room id (connect, resync).
	UserRoomIDs(ctx context.Context, userID int64) ([]uuid.UUID, error)
	// UserRoomSeqs returns every room userID belongs to with the seq of
	// the room's latest message (deleted ones included; 0 when none),
	// ordered by room id, in one query (resync, docs/protocol.md#resync).
	UserRoomSeqs(ctx context.Context, userID int64) ([]RoomSeq, error)
	// RoomMemberIDs returns the user ids of the room's members, ascending.
	// A missing room is ErrNotFound.
	RoomMemberIDs(ctx context.Context, roomID uuid.UUID) ([]int64, error)
}

// MemberStore keeps who belongs to a room, with which role and explicit
// permissions, and answers the permission checks.
type MemberStore interface {
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
}

// RoomSeq is a room id with the seq of the room's latest message.
type RoomSeq struct {
	RoomID uuid.UUID `db:"room_id"`
	Seq    int64     `db:"seq"`
}

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
	// The creator is added anyway; duplicates are dropped, and so are
	// unknown users of a group or channel (in a one-to-one chat an unknown
	// user is ErrUnknownUser).
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

// CanSend reports whether userID may send (and type) in the room
// (docs/protocol.md#permissions): one-to-one: a participant; group: a
// participant, and when the group is locked also its creator or an admin;
// channel: a subscriber who is its creator, a moderator or holds
// can_send_messages. Non-members can send nothing.
func (m Membership) CanSend(userID int64) bool {
	if !m.IsMember {
		return false
	}
	switch m.RoomType {
	case Group:
		return !m.GroupLocked || m.IsCreator(userID) || m.IsAdmin
	case Channel:
		return m.IsCreator(userID) || m.Has(PermSendMessages)
	}
	return true
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
