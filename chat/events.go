package chat

import (
	"maps"
	"sort"

	"github.com/chatmux/chatmux"
)

// The 16 events of the protocol's default event map (PROTOCOL.md B3).
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

// The 16 dispatches (server to client event types) of PROTOCOL.md B3.3.
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

// Events returns the default event map, the Go form of the package's
// EVENT_MAPPER: the 16 events and chatmux.EventConnect /
// chatmux.EventDisconnect, each mapped to its handler. The map is a fresh
// copy: delete, replace or add entries, then register it with
// RegisterEvents. Every handler checks its own permissions, so it can be
// wrapped by more middleware but never needs any.
func (s *Service) Events() map[string]chatmux.Handler {
	return map[string]chatmux.Handler{
		chatmux.EventConnect:     s.Connect,
		chatmux.EventDisconnect:  s.Disconnect,
		EventMessageSend:         s.SendMessage,
		EventMessageAcknowledged: s.AcknowledgeMessages,
		EventMessageRead:         s.ReadMessages,
		EventMessageReact:        s.ReactToMessage,
		EventMessageTyping:       s.Typing,
		EventMessageModify:       s.ModifyMessages,
		EventRoomCreate:          s.CreateRoom,
		EventRoomList:            s.ListRooms,
		EventRoomInfo:            s.RoomInfo,
		EventRoomAddMembers:      s.AddMembers,
		EventRoomRemoveMembers:   s.RemoveMembers,
		EventRoomMessages:        s.RoomMessages,
		EventRoomJoin:            s.JoinRoom,
		EventRoomLeave:           s.LeaveRoom,
		EventRoomModify:          s.ModifyRoom,
		EventSessionHeartbeat:    s.Heartbeat,
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
