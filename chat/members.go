package chat

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/store"
)

// handleJoinRoom handles room.join: data {room_id}. Only public channels
// can be joined; a member joining again changes and sends nothing
// (docs/protocol.md#diff-empty-room). The joiner's connections join the
// room's group, then roomaddmembers.dispatch {room, new_members:
// [username], added_by: "self"} goes to the room.
func (s *Service) handleJoinRoom(c *chatmux.Context) error {
	u, _, roomID, m, err := s.roomEvent(c)
	if err != nil {
		return err
	}
	switch {
	case m.RoomType == store.OneToOne:
		return chatmux.Validation(msgJoinOneToOne)
	case m.RoomType == store.Group:
		return chatmux.Validation(msgAskAdmin)
	case !m.IsPublic:
		return chatmux.Validation(msgPrivateChannel)
	case m.IsMember:
		return nil
	}
	ctx, o := c.Context(), ev(c)
	added, err := s.st.AddMembers(ctx, roomID, []int64{u.ID})
	if err != nil {
		return StoreError(err)
	}
	if len(added) == 0 {
		return nil
	}
	group := RoomGroup(roomID)
	s.joinUser(ctx, o, u.ID, group)
	detail, _, err := s.roomDetail(ctx, roomID)
	if err != nil {
		return s.committed(ctx, o, err)
	}
	_, err = s.broadcast(ctx, o, group, DispatchRoomAddMembers, addMembersPayload{detail, []string{u.Username}, "self"})
	return err
}

// handleLeaveRoom handles room.leave: data {room_id}. A member of a group
// or channel leaves it (losing role and permissions). The leaver's
// connections leave the room's group; the leaver's devices get
// roomexit.dispatch {room, message: "You left <name>"} and the room gets
// roomremovemembers.dispatch {room, removed_members, removed_by: "self"}.
// When the room becomes empty it is deleted and the leaver's devices get
// only roomdelete.dispatch {room_id}.
func (s *Service) handleLeaveRoom(c *chatmux.Context) error {
	u, _, roomID, m, err := s.memberEvent(c)
	if err != nil {
		return err
	}
	if m.RoomType == store.OneToOne {
		return chatmux.Validation(msgLeaveOneToOne)
	}
	ctx, o := c.Context(), ev(c)
	// The leaver's connections leave the room's group before the removal
	// commits, so that no message stored after it reaches them
	// (docs/protocol.md#faults); they join again if it does not commit.
	group := RoomGroup(roomID)
	s.leaveUser(ctx, o, u.ID, group)
	res, err := s.st.RemoveMembers(ctx, store.RemoveMembers{RoomID: roomID, ActorID: u.ID, UserIDs: []int64{u.ID}})
	if err != nil {
		s.rejoinMembers(ctx, o, roomID, []int64{u.ID}, nil)
		return StoreError(err)
	}
	_, err = s.left(ctx, o, roomID, u.ID, u.Username, res.RoomDeleted)
	return err
}

// left publishes what room.leave publishes once userID has left the room
// (roomDeleted: the room was left empty and deleted): roomdelete.dispatch
// to the leaver's devices, or roomexit.dispatch to them and
// roomremovemembers.dispatch to the room. It returns the room's dispatch
// data (the leaver's when the room was deleted).
func (s *Service) left(ctx context.Context, o origin, roomID uuid.UUID, userID int64, username string, roomDeleted bool) (json.RawMessage, error) {
	if roomDeleted {
		return s.sendUser(ctx, o, userID, DispatchRoomDelete, deletePayload{roomID.String()})
	}
	detail, d, err := s.roomDetail(ctx, roomID)
	if err != nil {
		return nil, s.committed(ctx, o, err)
	}
	if _, err := s.sendUser(ctx, o, userID, DispatchRoomExit, exitPayload{detail, "You left " + d.Name}); err != nil {
		return nil, err
	}
	return s.broadcast(ctx, o, RoomGroup(roomID), DispatchRoomRemoveMembers, removeMembersPayload{detail, []string{username}, "self"})
}

// handleAddMembers handles room.add_members: data {room_id, members: [user
// ids]}. Groups and channels only (4003); the user must be a member
// allowed to add (CanAddMembers, else 4002); then addMembers, as the Go
// API's AddMembers.
func (s *Service) handleAddMembers(c *chatmux.Context) error {
	a, roomID, ids, err := s.membersEvent(c, CanAddMembers, msgDeniedAdd)
	if err != nil {
		return err
	}
	_, err = s.addMembers(c.Context(), ev(c), a, roomID, ids)
	return err
}

// addMembers is room.add_members after its access check (membersAccess):
// the list must not be empty (4003); an unknown user id is 4004 and nothing
// is added; existing members are skipped; the cap is 4003. The new
// members' connections join the room's group, then roomaddmembers.dispatch
// {room, new_members, added_by: <username>} goes to the room.
func (s *Service) addMembers(ctx context.Context, o origin, a actor, roomID uuid.UUID, ids []int64) (json.RawMessage, error) {
	if ids = store.UniqueInt64(ids); len(ids) == 0 {
		return nil, chatmux.FieldError("members", msgEmptyList)
	}
	added, err := s.st.AddMembers(ctx, roomID, ids)
	if err != nil {
		return nil, StoreError(err)
	}
	group := RoomGroup(roomID)
	for _, id := range added {
		s.joinUser(ctx, o, id, group)
	}
	names, err := s.usernames(ctx, added)
	if err != nil {
		return nil, s.committed(ctx, o, err)
	}
	detail, _, err := s.roomDetail(ctx, roomID)
	if err != nil {
		return nil, s.committed(ctx, o, err)
	}
	return s.broadcast(ctx, o, group, DispatchRoomAddMembers, addMembersPayload{detail, names, a.username()})
}

// handleRemoveMembers handles room.remove_members: data {room_id, members:
// [user ids]}. Groups and channels only (4003); the user must be a member
// allowed to remove (CanRemoveMembers, else 4002); then removeMembers, as
// the Go API's RemoveMembers.
func (s *Service) handleRemoveMembers(c *chatmux.Context) error {
	a, roomID, ids, err := s.membersEvent(c, CanRemoveMembers, msgDeniedRemove)
	if err != nil {
		return err
	}
	_, err = s.removeMembers(c.Context(), ev(c), a, roomID, ids)
	return err
}

// removeMembers is room.remove_members after its access check
// (membersAccess): the list must not be empty (4003); an unknown user id
// is 4004 and nothing changes; the creator is skipped unless the creator
// removes themself; non-members are skipped. Removed users leave the
// room's group and get roomexit.dispatch {room, message: "You have been
// removed by <username>"} on their devices; the room gets
// roomremovemembers.dispatch {room, removed_members, removed_by:
// <username>}. A room left empty is deleted and every removed user gets
// roomdelete.dispatch {room_id} (docs/protocol.md#diff-empty-room).
func (s *Service) removeMembers(ctx context.Context, o origin, a actor, roomID uuid.UUID, ids []int64) (json.RawMessage, error) {
	if ids = store.UniqueInt64(ids); len(ids) == 0 {
		return nil, chatmux.FieldError("members", msgEmptyList)
	}
	// As in room.leave: out of the group before the removal commits;
	// those not removed after all (the creator, an error) and still
	// members join again.
	group := RoomGroup(roomID)
	for _, id := range ids {
		s.leaveUser(ctx, o, id, group)
	}
	res, err := s.st.RemoveMembers(ctx, store.RemoveMembers{RoomID: roomID, ActorID: a.id, UserIDs: ids})
	if err != nil {
		s.rejoinMembers(ctx, o, roomID, ids, nil)
		return nil, StoreError(err)
	}
	s.rejoinMembers(ctx, o, roomID, ids, res.Removed)
	if res.RoomDeleted {
		var out json.RawMessage
		for _, id := range res.Removed {
			b, err := s.sendUser(ctx, o, id, DispatchRoomDelete, deletePayload{roomID.String()})
			if err != nil {
				return nil, err
			}
			out = b
		}
		return out, nil
	}
	names, err := s.usernames(ctx, res.Removed)
	if err != nil {
		return nil, s.committed(ctx, o, err)
	}
	detail, _, err := s.roomDetail(ctx, roomID)
	if err != nil {
		return nil, s.committed(ctx, o, err)
	}
	exit := exitPayload{detail, "You have been removed by " + a.username()}
	for _, id := range res.Removed {
		if _, err := s.sendUser(ctx, o, id, DispatchRoomExit, exit); err != nil {
			return nil, err
		}
	}
	return s.broadcast(ctx, o, group, DispatchRoomRemoveMembers, removeMembersPayload{detail, names, a.username()})
}

// membersEvent reads what room.add_members and room.remove_members start
// with, in the order of their errors: readEvent and data.room_id; the
// access check (membersAccess: a one-to-one chat is 4003, then allow, else
// 4002 denied); and data.members (4003 when missing or not a list of ids).
func (s *Service) membersEvent(c *chatmux.Context, allow func(store.Membership, int64) bool, denied string) (actor, uuid.UUID, []int64, error) {
	u, f, err := readEvent(c)
	if err != nil {
		return actor{}, uuid.Nil, nil, err
	}
	roomID, err := roomIDField(f)
	if err != nil {
		return actor{}, uuid.Nil, nil, err
	}
	a := eventActor(u)
	if _, err := s.membersAccess(c.Context(), a, roomID, allow, denied); err != nil {
		return actor{}, uuid.Nil, nil, err
	}
	v := f.get("members")
	if v == nil {
		return actor{}, uuid.Nil, nil, chatmux.FieldError("members", msgRequired)
	}
	ids, err := userIDList("members", v)
	if err != nil {
		return actor{}, uuid.Nil, nil, err
	}
	return a, roomID, ids, nil
}

// usernames returns the usernames of ids, ordered by id.
func (s *Service) usernames(ctx context.Context, ids []int64) ([]string, error) {
	out := []string{}
	if len(ids) == 0 {
		return out, nil
	}
	us, err := s.st.Users(ctx, ids)
	if err != nil {
		return nil, StoreError(err)
	}
	for _, u := range us {
		out = append(out, u.Username)
	}
	return out, nil
}

type addMembersPayload struct {
	Room       any      `json:"room"`
	NewMembers []string `json:"new_members"`
	AddedBy    string   `json:"added_by"`
}

type removeMembersPayload struct {
	Room           any      `json:"room"`
	RemovedMembers []string `json:"removed_members"`
	RemovedBy      string   `json:"removed_by"`
}

type exitPayload struct {
	Room    any    `json:"room"`
	Message string `json:"message"`
}

type deletePayload struct {
	RoomID string `json:"room_id"`
}

// rejoinMembers puts back into the room's group the users of ids that are
// not in removed and are still members: a removal that left them there
// took their connections out of the group before it committed.
func (s *Service) rejoinMembers(ctx context.Context, o origin, roomID uuid.UUID, ids, removed []int64) {
	for _, id := range ids {
		if slices.Contains(removed, id) {
			continue
		}
		m, err := s.st.Membership(ctx, roomID, id)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				s.log.WarnContext(ctx, "chat: failed to check a membership after a removal; the user's connections catch up on reconnect",
					"room_id", roomID, "user_id", id, "err", err)
			}
			continue
		}
		if m.IsMember {
			s.joinUser(ctx, o, id, RoomGroup(roomID))
		}
	}
}

// committed answers an operation whose change was stored but whose
// dispatch could not be built (a read after the commit failed): the change
// stands, so the requester gets no error
// (docs/protocol.md#one-answer-per-send); the failure is logged, and
// clients see the change on their next read.
func (s *Service) committed(ctx context.Context, o origin, err error) error {
	s.log.WarnContext(ctx, "chat: a change was stored but its dispatch could not be built", "event", o.name, "err", err)
	return nil
}
