package client

import (
	"encoding/json"
	"time"
)

// User is a user as the server shows it (docs/protocol.md#user). A deleted
// user has IsDeleted set and no personal data.
type User struct {
	ID        int64  `json:"id"`
	Username  string `json:"username"`
	Email     string `json:"email"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	IsDeleted bool   `json:"is_deleted,omitempty"`
}

// RoomRef is the room a message belongs to.
type RoomRef struct {
	ID string `json:"id"`
}

// ReadReceipt is who read a message and when.
type ReadReceipt struct {
	Reader User      `json:"reader"`
	ReadAt time.Time `json:"read_at"`
}

// Reaction is one user's reaction to a message.
type Reaction struct {
	ID              string    `json:"id"`
	User            User      `json:"user"`
	ReactionContent string    `json:"reaction_content"`
	CreatedAt       time.Time `json:"created_at"`
}

// Attachment is a stored attachment (docs/protocol.md#attachment).
type Attachment struct {
	ID        string          `json:"id"`
	MediaURL  string          `json:"media_url"`
	MediaType string          `json:"media_type"`
	FileSize  int64           `json:"file_size"`
	MimeType  string          `json:"mime_type"`
	Caption   *string         `json:"caption"`
	Metadata  json.RawMessage `json:"metadata,omitempty"`
}

// NewAttachment is an attachment to send with a message (the input fields of
// docs/protocol.md#attachment): MediaURL and MediaType are required.
type NewAttachment struct {
	MediaURL  string          `json:"media_url"`
	MediaType string          `json:"media_type"`
	FileSize  int64           `json:"file_size,omitempty"`
	MimeType  string          `json:"mime_type,omitempty"`
	Caption   string          `json:"caption,omitempty"`
	Metadata  json.RawMessage `json:"metadata,omitempty"`
}

// Message is a stored message (docs/protocol.md#message). Sender is nil for
// a system message (IsSystem). Fields a host registered
// (chat.Config.ExtraMessageFields) are not decoded here: read them from the
// raw dispatch (Handlers.Dispatch).
type Message struct {
	ID            string        `json:"id"`
	Room          RoomRef       `json:"room"`
	Sender        *User         `json:"sender"`
	Content       string        `json:"content"`
	IsDeleted     bool          `json:"is_deleted"`
	IsEdited      bool          `json:"is_edited"`
	IsForwarded   bool          `json:"is_forwarded"`
	IsSystem      bool          `json:"is_system,omitempty"`
	ParentMessage *Message      `json:"parent_message"`
	ForwardedFrom *Message      `json:"forwarded_from"`
	DeliveredTo   []string      `json:"delivered_to"`
	ReadReceipts  []ReadReceipt `json:"read_receipts"`
	Reactions     []Reaction    `json:"reactions"`
	Attachments   []Attachment  `json:"attachments"`
	CreatedAt     time.Time     `json:"created_at"`
	UpdatedAt     time.Time     `json:"updated_at"`
	Seq           int64         `json:"seq"`
	ClientMsgID   string        `json:"client_msg_id,omitempty"`
}

// RoomProperty holds a room's preferences.
type RoomProperty struct {
	Preferences json.RawMessage `json:"preferences"`
}

// RoomDetail is a room with its members (docs/protocol.md#room-detail).
// Type is "OneToOneChat", "GroupChat" or "Channel"; the fields of the other
// types are zero.
type RoomDetail struct {
	Type                 string        `json:"type"`
	ID                   string        `json:"id"`
	CreatedAt            time.Time     `json:"created_at"`
	UpdatedAt            time.Time     `json:"updated_at"`
	Property             *RoomProperty `json:"property,omitempty"`
	Name                 string        `json:"name,omitempty"`
	Description          *string       `json:"description,omitempty"`
	Avatar               *string       `json:"avatar,omitempty"`
	Creator              *User         `json:"creator,omitempty"`
	Participants         []User        `json:"participants,omitempty"`
	Admins               []User        `json:"admins,omitempty"`
	Subscribers          []User        `json:"subscribers,omitempty"`
	Moderators           []User        `json:"moderators,omitempty"`
	MaxParticipants      int           `json:"max_participants,omitempty"`
	MaxSubscribers       int           `json:"max_subscribers,omitempty"`
	JoinApprovalRequired bool          `json:"join_approval_required,omitempty"`
	GroupLocked          bool          `json:"group_locked,omitempty"`
	IsPublic             bool          `json:"is_public,omitempty"`
}

// Members returns the room's members: its participants, or for a channel
// its subscribers.
func (r *RoomDetail) Members() []User {
	if r.Type == RoomChannel {
		return r.Subscribers
	}
	return r.Participants
}

// The room types of docs/protocol.md#room-types.
const (
	RoomOneToOne = "OneToOneChat"
	RoomGroup    = "GroupChat"
	RoomChannel  = "Channel"
)

// RoomListItem is one room of room.list (docs/protocol.md#room-list-item).
type RoomListItem struct {
	Type            string    `json:"type"`
	ID              string    `json:"id"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
	Name            string    `json:"name,omitempty"`
	Description     *string   `json:"description,omitempty"`
	Avatar          *string   `json:"avatar,omitempty"`
	Creator         *User     `json:"creator,omitempty"`
	Peer            *User     `json:"peer,omitempty"`
	LastMessage     *Message  `json:"last_message"`
	UnreadCount     int       `json:"unread_count"`
	MaxParticipants int       `json:"max_participants,omitempty"`
	MaxSubscribers  int       `json:"max_subscribers,omitempty"`
	IsPublic        bool      `json:"is_public,omitempty"`
	GroupLocked     bool      `json:"group_locked,omitempty"`
}

// RoomMessages is the data of a page of messages.
type RoomMessages struct {
	RoomID   string    `json:"room_id"`
	Messages []Message `json:"messages"`
}

// RoomMessagesPage is the data of roommessages.dispatch
// (docs/protocol.md#pagination): the page fields are set for a paginated
// query, AfterSeq or BeforeSeq, HasMore and Limit for a query by seq.
type RoomMessagesPage struct {
	Data           RoomMessages `json:"data"`
	HasNext        bool         `json:"has_next,omitempty"`
	HasPrevious    bool         `json:"has_previous,omitempty"`
	NextPageNumber *int         `json:"next_page_number,omitempty"`
	PrevPageNumber *int         `json:"prev_page_number,omitempty"`
	Page           int          `json:"page,omitempty"`
	Size           int          `json:"size,omitempty"`
	AfterSeq       *int64       `json:"after_seq,omitempty"`
	BeforeSeq      *int64       `json:"before_seq,omitempty"`
	HasMore        bool         `json:"has_more,omitempty"`
	Limit          int          `json:"limit,omitempty"`
}

// Notification is a pending notification (docs/protocol.md#notification).
type Notification struct {
	ID               string  `json:"id"`
	NotificationType string  `json:"notification_type"`
	Message          Message `json:"message"`
}

// ReactionDispatch is the data of reaction.dispatch: Type is "add" for an
// added reaction, Action "remove" for a removed one; Status "failed" means
// there was nothing to remove.
type ReactionDispatch struct {
	Status  string  `json:"status"`
	Type    string  `json:"type,omitempty"`
	Action  string  `json:"action,omitempty"`
	Message Message `json:"message"`
}

// TypingDispatch is the data of messagetyping.dispatch.
type TypingDispatch struct {
	Username string `json:"username"`
	RoomID   string `json:"room_id"`
	UserID   int64  `json:"user_id"`
}

// ModificationDispatch is the data of messagemodification.dispatch: Action
// "update" with the edited Message, or "delete" with MessageIDs.
type ModificationDispatch struct {
	Status     string   `json:"status"`
	Action     string   `json:"action"`
	Message    *Message `json:"message,omitempty"`
	MessageIDs []string `json:"message_ids,omitempty"`
}

// MembersDispatch is the data of roomaddmembers.dispatch (NewMembers,
// AddedBy) and roomremovemembers.dispatch (RemovedMembers, RemovedBy). By is
// "self" for a join or a leave.
type MembersDispatch struct {
	Room           RoomDetail `json:"room"`
	NewMembers     []string   `json:"new_members,omitempty"`
	AddedBy        string     `json:"added_by,omitempty"`
	RemovedMembers []string   `json:"removed_members,omitempty"`
	RemovedBy      string     `json:"removed_by,omitempty"`
}

// RoomExitDispatch is the data of roomexit.dispatch: the user left or was
// removed.
type RoomExitDispatch struct {
	Room    RoomDetail `json:"room"`
	Message string     `json:"message"`
}

// RoomDeleteDispatch is the data of roomdelete.dispatch.
type RoomDeleteDispatch struct {
	RoomID string `json:"room_id"`
}

// ResyncRoom is one room of chat.resync.
type ResyncRoom struct {
	RoomID string `json:"room_id"`
	Seq    int64  `json:"seq"`
}

// ResyncDispatch is the data of chat.resync (docs/protocol.md#resync).
type ResyncDispatch struct {
	Rooms  []ResyncRoom `json:"rooms"`
	Reason string       `json:"reason"`
}

// UserSearchDispatch is the data of usersearch.dispatch.
type UserSearchDispatch struct {
	Query string `json:"query"`
	Users []User `json:"users"`
}

// Presence is a user's announced presence (docs/protocol.md#presence):
// one user of presencequery.dispatch, or, with RoomID, the data of
// presence.dispatch. LastSeen is an RFC 3339 time, "" when the user was
// never seen.
type Presence struct {
	RoomID   string `json:"room_id,omitempty"`
	UserID   int64  `json:"user_id"`
	Username string `json:"username"`
	Online   bool   `json:"online"`
	LastSeen string `json:"last_seen"`
}

// PresenceQueryDispatch is the data of presencequery.dispatch: RoomID is
// set for the room form of presence.query.
type PresenceQueryDispatch struct {
	RoomID string     `json:"room_id"`
	Users  []Presence `json:"users"`
}

// Dispatch is one frame from the server with an eventType
// (docs/protocol.md#dispatch-envelope), its data undecoded. RequestID is set
// on the frames sent to this socket in answer to one of its requests.
type Dispatch struct {
	EventType string
	Data      json.RawMessage
	RequestID string
}

// The dispatch types of docs/protocol.md#dispatches.
const (
	DispatchNotifications     = "chat.notifications"
	DispatchResync            = "chat.resync"
	DispatchMessage           = "message.dispatch"
	DispatchDelivered         = "messagedelivered.dispatch"
	DispatchReadReceipt       = "readreceipt.dispatch"
	DispatchReaction          = "reaction.dispatch"
	DispatchTyping            = "messagetyping.dispatch"
	DispatchModification      = "messagemodification.dispatch"
	DispatchRoomCreate        = "roomcreate.dispatch"
	DispatchRoomList          = "roomlist.dispatch"
	DispatchRoomInfo          = "roominfo.dispatch"
	DispatchRoomMessages      = "roommessages.dispatch"
	DispatchRoomAddMembers    = "roomaddmembers.dispatch"
	DispatchRoomRemoveMembers = "roomremovemembers.dispatch"
	DispatchRoomExit          = "roomexit.dispatch"
	DispatchRoomDelete        = "roomdelete.dispatch"
	DispatchRoomUpdate        = "roomupdate.dispatch"
	DispatchUserSearch        = "usersearch.dispatch"
	DispatchPresence          = "presence.dispatch"
	DispatchPresenceQuery     = "presencequery.dispatch"
)
