package chat

import (
	"context"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/store"
)

// The permission rules of PROTOCOL.md B4 and B6. Every privilege,
// the creator's included, requires current membership.

// CanSend reports whether userID may send (and type) in the room:
// one-to-one: a participant; group: a participant, and when the group is
// locked also its creator or an admin; channel: a subscriber who is its
// creator, a moderator or holds can_send_messages.
func CanSend(m store.Membership, userID int64) bool {
	if !m.IsMember {
		return false
	}
	switch m.RoomType {
	case store.Group:
		return !m.GroupLocked || m.IsCreator(userID) || m.IsAdmin
	case store.Channel:
		return m.IsCreator(userID) || m.Has(store.PermSendMessages)
	}
	return true
}

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

// roomEvent reads what a room's event starts with, in the order of its
// errors: the user, the data object, and data.room_id with the user's
// membership of that room.
func (s *Service) roomEvent(c *chatmux.Context) (*chatmux.User, fields, uuid.UUID, store.Membership, error) {
	u, err := user(c)
	if err != nil {
		return nil, nil, uuid.Nil, store.Membership{}, err
	}
	f, err := decodeFields(c, false)
	if err != nil {
		return nil, nil, uuid.Nil, store.Membership{}, err
	}
	roomID, m, err := s.roomAccess(c, f, "room_id")
	return u, f, roomID, m, err
}

// requireMember returns the room and membership when the user is a member,
// else 4002 "User is not authorized access this room".
func (s *Service) requireMember(c *chatmux.Context, f fields) (uuid.UUID, store.Membership, error) {
	id, m, err := s.roomAccess(c, f, "room_id")
	if err != nil {
		return id, m, err
	}
	if !m.IsMember {
		return id, m, chatmux.PermissionDenied(msgDeniedRoom)
	}
	return id, m, nil
}

// Context keys set by RequireRoomMember and RequireRoomAdmin.
const (
	ctxRoomID     = "chat.room_id"
	ctxMembership = "chat.membership"
)

// RoomFrom returns the room id and membership that RequireRoomMember or
// RequireRoomAdmin stored in the event's context.
func RoomFrom(c *chatmux.Context) (uuid.UUID, store.Membership, bool) {
	id, ok1 := c.Get(ctxRoomID)
	m, ok2 := c.Get(ctxMembership)
	if !ok1 || !ok2 {
		return uuid.Nil, store.Membership{}, false
	}
	return id.(uuid.UUID), m.(store.Membership), true
}

var errNoUser = &chatmux.Error{Code: chatmux.CodeUnauthenticated, Detail: "authentication required"}

func (s *Service) roomMiddleware(field string, allow func(store.Membership, int64) bool, denied string) chatmux.Middleware {
	return func(next chatmux.Handler) chatmux.Handler {
		return func(c *chatmux.Context) error {
			u := c.User()
			if u == nil {
				return chatmux.PermissionDenied(denied)
			}
			f, err := decodeFields(c, false)
			if err != nil {
				return err
			}
			id, m, err := s.roomAccess(c, f, field)
			if err != nil {
				return err
			}
			if !allow(m, u.ID) {
				return chatmux.PermissionDenied(denied)
			}
			c.Set(ctxRoomID, id)
			c.Set(ctxMembership, m)
			return next(c)
		}
	}
}

// RequireRoomMember returns middleware for custom events: it reads
// data[field] as a room id (the rules of ParseRoomID; 4004 for an unknown
// room) and answers 4002 "User is not authorized access this room" unless
// the user is a member. The handler gets the room with RoomFrom.
func (s *Service) RequireRoomMember(field string) chatmux.Middleware {
	return s.roomMiddleware(field, func(m store.Membership, _ int64) bool { return m.IsMember }, msgDeniedRoom)
}

// RequireRoomAdmin returns middleware for custom events (message.pin,
// message.flag, ...): it reads data[field] as a room id and answers 4002
// "User is not an admin of this room" unless the user is a member and the
// creator or an admin (group), the creator or a moderator (channel), or a
// participant (one-to-one chat): the rule of IsRoomAdmin. The handler gets
// the room with RoomFrom.
func (s *Service) RequireRoomAdmin(field string) chatmux.Middleware {
	return s.roomMiddleware(field, IsRoomAdmin, msgDeniedAdmin)
}

// RoomAdmins returns the ids of the users who administer a room, ascending:
// its creator and admins (group) or moderators (channel) who are members,
// or both participants of a one-to-one chat. Custom events use it to alert
// moderators (SendUser to each).
func (s *Service) RoomAdmins(ctx context.Context, roomID uuid.UUID) ([]int64, error) {
	d, err := s.st.RoomDetail(ctx, roomID)
	if err != nil {
		return nil, StoreError(err)
	}
	members := map[int64]bool{}
	for _, u := range d.Members {
		members[u.ID] = true
	}
	if d.Type == store.OneToOne {
		return store.SortedInt64(keys(members)), nil
	}
	var out []int64
	if d.CreatorID != 0 && members[d.CreatorID] {
		out = append(out, d.CreatorID)
	}
	for _, u := range d.Admins {
		if members[u.ID] {
			out = append(out, u.ID)
		}
	}
	return store.SortedInt64(store.UniqueInt64(out)), nil
}

func keys(m map[int64]bool) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
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

// user returns the authenticated user, or an error that closes nothing but
// refuses the event.
func user(c *chatmux.Context) (*chatmux.User, error) {
	u := c.User()
	if u == nil {
		return nil, errNoUser
	}
	return u, nil
}
