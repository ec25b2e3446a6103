package chat

import (
	"maps"
	"sort"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/store"
)

// The 16 events of the protocol's default event map (docs/protocol.md#events).
const (
	EventMessageSend         = "message.send"
	EventMessageAcknowledged = "message.acknowledged"
	EventMessageRead         = "message.read"
	EventMessageReact        = "message.react"
	EventMessageTyping       = "message.typing"
	EventMessageModify       = "message.modify"
	EventRoomCreate          = "room.create"
	EventRoomList            = "room.list"
	EventRoomInfo            = "room.info"
	EventRoomAddMembers      = "room.add_members"
	EventRoomRemoveMembers   = "room.remove_members"
	EventRoomMessages        = "room.messages"
	EventRoomJoin            = "room.join"
	EventRoomLeave           = "room.leave"
	EventRoomModify          = "room.modify"
	EventSessionHeartbeat    = "session.heartbeat"
)

// The 16 dispatches (server to client event types,
// docs/protocol.md#dispatches).
const (
	DispatchNotifications       = "chat.notifications"
	DispatchMessage             = "message.dispatch"
	DispatchMessageDelivered    = "messagedelivered.dispatch"
	DispatchReadReceipt         = "readreceipt.dispatch"
	DispatchReaction            = "reaction.dispatch"
	DispatchTyping              = "messagetyping.dispatch"
	DispatchMessageModification = "messagemodification.dispatch"
	DispatchRoomCreate          = "roomcreate.dispatch"
	DispatchRoomList            = "roomlist.dispatch"
	DispatchRoomInfo            = "roominfo.dispatch"
	DispatchRoomMessages        = "roommessages.dispatch"
	DispatchRoomAddMembers      = "roomaddmembers.dispatch"
	DispatchRoomRemoveMembers   = "roomremovemembers.dispatch"
	DispatchRoomExit            = "roomexit.dispatch"
	DispatchRoomDelete          = "roomdelete.dispatch"
	DispatchRoomUpdate          = "roomupdate.dispatch"
)

// A chatmux addition to the default event map, beyond the package's 16
// events: finding users by name (docs/protocol.md#user-search).
const (
	// EventUserSearch finds users by a prefix of their name.
	EventUserSearch = "user.search"
	// DispatchUserSearch answers EventUserSearch, to the asking socket.
	DispatchUserSearch = "usersearch.dispatch"
)

// Events returns the default event map, the Go form of the package's
// EVENT_MAPPER: the 16 events, the reserved events $connect, $disconnect
// and $resync (chatmux.EventConnect, chatmux.EventDisconnect and the
// server's resync event) and the chatmux additions EventUserSearch and
// EventPresenceQuery, each mapped to its handler; every event but the
// reserved ones and session.heartbeat (which touches its session at once)
// counts as activity of its connection's session (Activity,
// docs/protocol.md#presence). The map is a fresh
// copy: delete, replace or add entries, then register it with
// RegisterEvents. Every handler checks its own permissions, so it can be
// wrapped by more middleware but never needs any.
func (s *Service) Events() map[string]chatmux.Handler {
	return map[string]chatmux.Handler{
		chatmux.EventConnect:     s.handleConnect,
		chatmux.EventDisconnect:  s.handleDisconnect,
		chatmux.EventResync:      s.handleResync,
		EventMessageSend:         s.Activity(s.handleSendMessage),
		EventMessageAcknowledged: s.Activity(s.handleAcknowledge),
		EventMessageRead:         s.Activity(s.handleRead),
		EventMessageReact:        s.Activity(s.handleReact),
		EventMessageTyping:       s.Activity(s.handleTyping),
		EventMessageModify:       s.Activity(s.handleModifyMessages),
		EventRoomCreate:          s.Activity(s.handleCreateRoom),
		EventRoomList:            s.Activity(s.handleListRooms),
		EventRoomInfo:            s.Activity(s.handleRoomInfo),
		EventRoomAddMembers:      s.Activity(s.handleAddMembers),
		EventRoomRemoveMembers:   s.Activity(s.handleRemoveMembers),
		EventRoomMessages:        s.Activity(s.handleRoomMessages),
		EventRoomJoin:            s.Activity(s.handleJoinRoom),
		EventRoomLeave:           s.Activity(s.handleLeaveRoom),
		EventRoomModify:          s.Activity(s.handleModifyRoom),
		EventSessionHeartbeat:    s.handleHeartbeat,
		EventUserSearch:          s.Activity(s.handleSearchUsers),
		EventPresenceQuery:       s.Activity(s.handlePresenceQuery),
	}
}

// Register registers the default event map (Events) on r.
func (s *Service) Register(r chatmux.Router) { RegisterEvents(r, s.Events()) }

// RegisterEvents registers every entry of an event map on r, in sorted
// order (registration panics on a duplicate pattern, as Router.Handle
// does).
func RegisterEvents(r chatmux.Router, events map[string]chatmux.Handler) {
	names := make([]string, 0, len(events))
	for name := range maps.Keys(events) {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		r.Handle(name, events[name])
	}
}

// ---- what every event starts with ----

// user returns the authenticated user, or an error that closes nothing but
// refuses the event.
func user(c *chatmux.Context) (*chatmux.User, error) {
	u := c.User()
	if u == nil {
		return nil, errNoUser
	}
	return u, nil
}

var errNoUser = &chatmux.Error{Code: chatmux.CodeUnauthenticated, Detail: "authentication required"}

// readEvent reads what every event with data starts with, in the order of
// its errors: the authenticated user, then the data object (4003 when it is
// missing or not an object).
func readEvent(c *chatmux.Context) (*chatmux.User, fields, error) {
	u, err := user(c)
	if err != nil {
		return nil, nil, err
	}
	f, err := decodeFields(c, false)
	if err != nil {
		return nil, nil, err
	}
	return u, f, nil
}

// roomEvent reads what a room's event starts with: readEvent, then
// data.room_id with the user's membership of that room (4003/4004 on a bad
// or unknown id).
func (s *Service) roomEvent(c *chatmux.Context) (*chatmux.User, fields, uuid.UUID, store.Membership, error) {
	u, f, err := readEvent(c)
	if err != nil {
		return nil, nil, uuid.Nil, store.Membership{}, err
	}
	roomID, m, err := s.roomAccess(c, f, "room_id")
	return u, f, roomID, m, err
}

// memberEvent is roomEvent for the events only members may send: a
// non-member is 4002 "User is not authorized access this room".
func (s *Service) memberEvent(c *chatmux.Context) (*chatmux.User, fields, uuid.UUID, store.Membership, error) {
	u, f, roomID, m, err := s.roomEvent(c)
	if err == nil && !m.IsMember {
		err = chatmux.PermissionDenied(msgDeniedRoom)
	}
	return u, f, roomID, m, err
}

// roomIDField parses data.room_id (4003/4004 on a missing, bad or unknown
// id).
func roomIDField(f fields) (uuid.UUID, error) {
	v, ok := f["room_id"]
	if !ok || isNull(v) {
		return uuid.Nil, chatmux.Validation(msgInvalidRoomIDType)
	}
	return ParseRoomID(v)
}

// roomAccess parses data[field] as a room id and loads the user's
// membership: 4003/4004 on a bad or unknown id.
func (s *Service) roomAccess(c *chatmux.Context, f fields, field string) (uuid.UUID, store.Membership, error) {
	v, ok := f[field]
	if !ok || isNull(v) {
		if field == "room_id" {
			return uuid.Nil, store.Membership{}, chatmux.Validation(msgInvalidRoomIDType)
		}
		return uuid.Nil, store.Membership{}, chatmux.FieldError(field, msgRequired)
	}
	id, err := ParseRoomID(v)
	if err != nil {
		return uuid.Nil, store.Membership{}, err
	}
	m, err := s.membership(c.Context(), id, c.User().ID)
	return id, m, err
}
