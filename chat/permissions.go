package chat

import (
	"context"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/store"
)

// The permission rules of docs/protocol.md#room-types and
// docs/protocol.md#permissions. Every privilege,
// the creator's included, requires current membership.

// CanSend reports whether userID may send (and type) in the room:
// one-to-one: a participant; group: a participant, and when the group is
// locked also its creator or an admin; channel: a subscriber who is its
// creator, a moderator or holds can_send_messages.
func CanSend(m store.Membership, userID int64) bool { return m.CanSend(userID) }

// IsRoomAdmin reports whether userID may change the room (room.modify other
// than delete): a group participant who is its creator or an admin, a
// channel subscriber who is its creator or a moderator, or either
// participant of a one-to-one chat.
func IsRoomAdmin(m store.Membership, userID int64) bool {
	if !m.IsMember {
		return false
	}
	if m.RoomType == store.OneToOne {
		return true
	}
	return m.IsCreator(userID) || m.IsAdmin
}

// CanDeleteRoom reports whether userID may delete the room: the creator of a
// group or channel (while a member), either participant of a one-to-one
// chat.
func CanDeleteRoom(m store.Membership, userID int64) bool {
	if !m.IsMember {
		return false
	}
	return m.RoomType == store.OneToOne || m.IsCreator(userID)
}

// CanAddMembers reports whether userID may add members to a group or channel:
// a member who is its creator, an admin or moderator, or holds
// can_add_new_participants / can_add_new_subscribers.
func CanAddMembers(m store.Membership, userID int64) bool {
	return canManage(m, userID, store.PermAddParticipants, store.PermAddSubscribers)
}

// CanRemoveMembers is CanAddMembers for removing members
// (can_remove_participants / can_remove_subscribers).
func CanRemoveMembers(m store.Membership, userID int64) bool {
	return canManage(m, userID, store.PermRemoveParticipants, store.PermRemoveSubscribers)
}

func canManage(m store.Membership, userID int64, group, channel store.Permission) bool {
	if !m.IsMember {
		return false
	}
	switch m.RoomType {
	case store.Group:
		return m.IsCreator(userID) || m.Has(group)
	case store.Channel:
		return m.IsCreator(userID) || m.Has(channel)
	}
	return false
}

// membership returns the membership of the user in a room; a missing room
// is 4004.
func (s *Service) membership(ctx context.Context, roomID uuid.UUID, userID int64) (store.Membership, error) {
	m, err := s.st.Membership(ctx, roomID, userID)
	if err != nil {
		return m, StoreError(err)
	}
	return m, nil
}

// accessMessages loads messages for an event on message ids: each must
// exist and not be soft-deleted (4004), and the user must be a member of
// each one's room (4002 "User is not authorized to access this message"),
// checked in the order of ids. It returns the messages in that order.
func (s *Service) accessMessages(ctx context.Context, userID int64, ids []uuid.UUID) ([]store.Message, error) {
	got, err := s.st.Messages(ctx, ids)
	if err != nil {
		return nil, StoreError(err)
	}
	byID := make(map[uuid.UUID]store.Message, len(got))
	rooms := make([]uuid.UUID, 0, len(got))
	for _, m := range got {
		byID[m.ID] = m
		rooms = append(rooms, m.RoomID)
	}
	ms, err := s.st.Memberships(ctx, store.UniqueUUIDs(rooms), userID)
	if err != nil {
		return nil, StoreError(err)
	}
	out := make([]store.Message, 0, len(ids))
	for _, id := range ids {
		m, ok := byID[id]
		if !ok || m.IsDeleted {
			return nil, chatmux.NotFound()
		}
		if !ms[m.RoomID].IsMember {
			return nil, chatmux.PermissionDenied(msgDeniedMessage)
		}
		out = append(out, m)
	}
	return out, nil
}

// liveMessages loads messages in the order of ids; a missing or soft-deleted
// one is 4004.
func (s *Service) liveMessages(ctx context.Context, ids []uuid.UUID) ([]store.Message, error) {
	got, err := s.st.Messages(ctx, ids)
	if err != nil {
		return nil, StoreError(err)
	}
	byID := make(map[uuid.UUID]store.Message, len(got))
	for _, m := range got {
		byID[m.ID] = m
	}
	out := make([]store.Message, 0, len(ids))
	for _, id := range ids {
		m, ok := byID[id]
		if !ok || m.IsDeleted {
			return nil, chatmux.NotFound()
		}
		out = append(out, m)
	}
	return out, nil
}

// The access checks of the operations, shared by the WebSocket handlers
// and the Go API. Each loads the actor's membership of the room (a
// missing room is 4004, for the system too); the system skips the
// membership and permission checks (docs/protocol.md#server-api).

// sendAccess: the send permission (CanSend), else 4002.
func (s *Service) sendAccess(ctx context.Context, a actor, roomID uuid.UUID) (store.Membership, error) {
	m, err := s.membership(ctx, roomID, a.id)
	if err == nil && !a.system() && !CanSend(m, a.id) {
		err = chatmux.PermissionDenied(msgDeniedSend)
	}
	return m, err
}

// memberAccess: membership, else 4002 "User is not authorized access this
// room".
func (s *Service) memberAccess(ctx context.Context, a actor, roomID uuid.UUID) (store.Membership, error) {
	m, err := s.membership(ctx, roomID, a.id)
	if err == nil && !a.system() && !m.IsMember {
		err = chatmux.PermissionDenied(msgDeniedRoom)
	}
	return m, err
}

// adminAccess: IsRoomAdmin, else 4002 "User is not an admin of this room".
func (s *Service) adminAccess(ctx context.Context, a actor, roomID uuid.UUID) (store.Membership, error) {
	m, err := s.membership(ctx, roomID, a.id)
	if err == nil && !a.system() && !IsRoomAdmin(m, a.id) {
		err = chatmux.PermissionDenied(msgDeniedAdmin)
	}
	return m, err
}

// membersAccess is the check of room.add_members and room.remove_members:
// a one-to-one chat is 4003, then allow, else 4002 denied.
func (s *Service) membersAccess(ctx context.Context, a actor, roomID uuid.UUID, allow func(store.Membership, int64) bool, denied string) (store.Membership, error) {
	m, err := s.membership(ctx, roomID, a.id)
	if err != nil {
		return m, err
	}
	if m.RoomType == store.OneToOne {
		return m, chatmux.Validation(store.MsgMembersGroupChannel)
	}
	if !a.system() && !allow(m, a.id) {
		return m, chatmux.PermissionDenied(denied)
	}
	return m, nil
}

// modifyAccess is the check of message.modify, in the order of its
// errors: every message exists and is not deleted (4004), the actor sent
// each (4002), they are in one room (4003), the actor is a member of it
// (4002). It returns the room.
func (s *Service) modifyAccess(ctx context.Context, a actor, ids []uuid.UUID) (uuid.UUID, error) {
	msgs, err := s.liveMessages(ctx, ids)
	if err != nil {
		return uuid.Nil, err
	}
	if !a.system() {
		for _, m := range msgs {
			if m.SenderID != a.id {
				return uuid.Nil, chatmux.PermissionDenied(msgDeniedModify)
			}
		}
	}
	roomID := msgs[0].RoomID
	for _, m := range msgs[1:] {
		if m.RoomID != roomID {
			return uuid.Nil, chatmux.Validation(msgSameRoom)
		}
	}
	if a.system() {
		return roomID, nil
	}
	mem, err := s.membership(ctx, roomID, a.id)
	if err != nil {
		return uuid.Nil, err
	}
	if !mem.IsMember {
		return uuid.Nil, chatmux.PermissionDenied(msgDeniedMessage)
	}
	return roomID, nil
}
