package chat

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/store"
)

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

// roomMiddleware is RequireRoomMember and RequireRoomAdmin: source names
// where the room id is, a data field or, in braces, a pattern parameter.
func (s *Service) roomMiddleware(source string, allow func(store.Membership, int64) bool, denied string) chatmux.Middleware {
	param, isParam := strings.CutPrefix(source, "{")
	if isParam {
		var closed bool
		if param, closed = strings.CutSuffix(param, "}"); !closed || param == "" {
			panic("chat: invalid pattern parameter " + source + ": want {name}")
		}
	} else if source == "" {
		panic("chat: the room id needs a data field or a {parameter}")
	}
	return func(next chatmux.Handler) chatmux.Handler {
		return func(c *chatmux.Context) error {
			u := c.User()
			if u == nil {
				return chatmux.PermissionDenied(denied)
			}
			var id uuid.UUID
			var m store.Membership
			var err error
			if isParam {
				id, m, err = s.paramRoomAccess(c, param)
			} else {
				var f fields
				if f, err = decodeFields(c, false); err == nil {
					id, m, err = s.roomAccess(c, f, source)
				}
			}
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

// paramRoomAccess reads the pattern parameter name as a room id and loads
// the user's membership: 4003 when it is not a UUID, 4004 for an unknown
// room, 4006 when the pattern has no such parameter (a registration
// mistake).
func (s *Service) paramRoomAccess(c *chatmux.Context, name string) (uuid.UUID, store.Membership, error) {
	v := c.Param(name)
	if v == "" {
		return uuid.Nil, store.Membership{}, chatmux.Internal(fmt.Errorf("chat: pattern %q has no parameter {%s}", c.Pattern(), name))
	}
	id, err := uuid.Parse(v)
	if err != nil {
		return uuid.Nil, store.Membership{}, chatmux.Validation(msgNotUUID(v))
	}
	m, err := s.membership(c.Context(), id, c.User().ID)
	return id, m, err
}

// RequireRoomMember returns middleware for custom events: it reads the
// room id from source and answers 4002 "User is not authorized access this
// room" unless the user is a member. source is a data field ("room_id":
// the rules of ParseRoomID, 4004 for an unknown room) or, in braces, a
// parameter of the event's pattern ("{id}" for "room.{id}.pins": a UUID,
// else 4003). The handler gets the room with RoomFrom. It panics when
// source is empty or an unclosed brace.
func (s *Service) RequireRoomMember(source string) chatmux.Middleware {
	return s.roomMiddleware(source, func(m store.Membership, _ int64) bool { return m.IsMember }, msgDeniedRoom)
}

// RequireRoomAdmin returns middleware for custom events (message.pin,
// message.flag, ...): it reads the room id from source, as
// RequireRoomMember does, and answers 4002 "User is not an admin of this
// room" unless the user is a member and the creator or an admin (group),
// the creator or a moderator (channel), or a participant (one-to-one
// chat): the rule of IsRoomAdmin. The handler gets the room with RoomFrom.
func (s *Service) RequireRoomAdmin(source string) chatmux.Middleware {
	return s.roomMiddleware(source, IsRoomAdmin, msgDeniedAdmin)
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
