package chat

import (
	"errors"
	"slices"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/store"
)

// JoinRoom handles room.join: data {room_id}. Only public channels can be
// joined; a member joining again changes and sends nothing
// (docs/protocol.md#diff-empty-room). The
// joiner's connections join the room's group, then roomaddmembers.dispatch
// {room, new_members: [username], added_by: "self"} goes to the room.
func (s *Service) JoinRoom(c *chatmux.Context) error {
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
	added, err := s.st.AddMembers(c.Context(), roomID, []int64{u.ID})
	if err != nil {
		return StoreError(err)
	}
	if len(added) == 0 {
		return nil
	}
	group := RoomGroup(roomID)
	s.joinUser(c, u.ID, group)
	detail, _, err := s.roomDetail(c.Context(), roomID)
	if err != nil {
		return s.committed(c, err)
	}
	return s.broadcast(c, group, DispatchRoomAddMembers, addMembersPayload{detail, []string{u.Username}, "self"})
}

// LeaveRoom handles room.leave: data {room_id}. A member of a group or
// channel leaves it (losing role and permissions). The leaver's
// connections leave the room's group; the leaver's devices get
// roomexit.dispatch {room, message: "You left <name>"} and the room gets
// roomremovemembers.dispatch {room, removed_members, removed_by: "self"}.
// When the room becomes empty it is deleted and the leaver's devices get
// only roomdelete.dispatch {room_id}.
func (s *Service) LeaveRoom(c *chatmux.Context) error {
	u, _, roomID, m, err := s.memberEvent(c)
	if err != nil {
		return err
	}
	if m.RoomType == store.OneToOne {
		return chatmux.Validation(msgLeaveOneToOne)
	}
	// The leaver's connections leave the room's group before the removal
	// commits, so that no message stored after it reaches them
	// (docs/protocol.md#faults); they join again if it does not commit.
	group := RoomGroup(roomID)
	s.leaveUser(c, u.ID, group)
	res, err := s.st.RemoveMembers(c.Context(), store.RemoveMembers{RoomID: roomID, ActorID: u.ID, UserIDs: []int64{u.ID}})
	if err != nil {
		s.rejoinMembers(c, roomID, []int64{u.ID}, nil)
		return StoreError(err)
	}
	if res.RoomDeleted {
		return s.sendUser(c, u.ID, DispatchRoomDelete, deletePayload{roomID.String()})
	}
	detail, d, err := s.roomDetail(c.Context(), roomID)
	if err != nil {
		return s.committed(c, err)
	}
	if err := s.sendUser(c, u.ID, DispatchRoomExit, exitPayload{detail, "You left " + d.Name}); err != nil {
		return err
	}
	return s.broadcast(c, group, DispatchRoomRemoveMembers, removeMembersPayload{detail, []string{u.Username}, "self"})
}

// AddMembers handles room.add_members: data {room_id, members: [user ids]}.
// Groups and channels only (4003); the user must be a member allowed to
// add (CanAddMembers, else 4002). An unknown user id is 4004 and nothing is
// added; existing members are skipped; the cap is 4003. The new members'
// connections join the room's group, then roomaddmembers.dispatch {room,
// new_members, added_by: <username>} goes to the room.
func (s *Service) AddMembers(c *chatmux.Context) error {
	u, roomID, ids, err := s.membersEvent(c, CanAddMembers, msgDeniedAdd)
	if err != nil {
		return err
	}
	added, err := s.st.AddMembers(c.Context(), roomID, ids)
	if err != nil {
		return StoreError(err)
	}
	group := RoomGroup(roomID)
	for _, id := range added {
		s.joinUser(c, id, group)
	}
	names, err := s.usernames(c, added)
	if err != nil {
		return s.committed(c, err)
	}
	detail, _, err := s.roomDetail(c.Context(), roomID)
	if err != nil {
		return s.committed(c, err)
	}
	return s.broadcast(c, group, DispatchRoomAddMembers, addMembersPayload{detail, names, u.Username})
}

// RemoveMembers handles room.remove_members: data {room_id, members: [user
// ids]}. Groups and channels only (4003); the user must be a member allowed
// to remove (CanRemoveMembers, else 4002). An unknown user id is 4004 and
// nothing changes; the creator is skipped unless the creator removes
// themself; non-members are skipped. Removed users leave the room's group
// and get roomexit.dispatch {room, message: "You have been removed by
// <username>"} on their devices; the room gets roomremovemembers.dispatch
// {room, removed_members, removed_by: <username>}. A room left empty is
// deleted and every removed user gets roomdelete.dispatch {room_id}
// (docs/protocol.md#diff-empty-room).
func (s *Service) RemoveMembers(c *chatmux.Context) error {
	u, roomID, ids, err := s.membersEvent(c, CanRemoveMembers, msgDeniedRemove)
	if err != nil {
		return err
	}
	// As in LeaveRoom: out of the group before the removal commits; those
	// not removed after all (the creator, an error) and still members join
	// again.
	group := RoomGroup(roomID)
	for _, id := range ids {
		s.leaveUser(c, id, group)
	}
	res, err := s.st.RemoveMembers(c.Context(), store.RemoveMembers{RoomID: roomID, ActorID: u.ID, UserIDs: ids})
	if err != nil {
		s.rejoinMembers(c, roomID, ids, nil)
		return StoreError(err)
	}
	s.rejoinMembers(c, roomID, ids, res.Removed)
	if res.RoomDeleted {
		for _, id := range res.Removed {
			if err := s.sendUser(c, id, DispatchRoomDelete, deletePayload{roomID.String()}); err != nil {
				return err
			}
		}
		return nil
	}
	names, err := s.usernames(c, res.Removed)
	if err != nil {
		return s.committed(c, err)
	}
	detail, _, err := s.roomDetail(c.Context(), roomID)
	if err != nil {
		return s.committed(c, err)
	}
	exit := exitPayload{detail, "You have been removed by " + u.Username}
	for _, id := range res.Removed {
		if err := s.sendUser(c, id, DispatchRoomExit, exit); err != nil {
			return err
		}
	}
	return s.broadcast(c, group, DispatchRoomRemoveMembers, removeMembersPayload{detail, names, u.Username})
}

// membersEvent reads what room.add_members and room.remove_members start
// with, in the order of their errors: roomEvent; a one-to-one chat (4003);
// the user's right to change the members (allow, else 4002 denied); and
// data.members (4003 when missing, not a list of ids, or empty).
func (s *Service) membersEvent(c *chatmux.Context, allow func(store.Membership, int64) bool, denied string) (*chatmux.User, uuid.UUID, []int64, error) {
	u, f, roomID, m, err := s.roomEvent(c)
	if err != nil {
		return nil, uuid.Nil, nil, err
	}
	if m.RoomType == store.OneToOne {
		return nil, uuid.Nil, nil, chatmux.Validation(store.MsgMembersGroupChannel)
	}
	if !allow(m, u.ID) {
		return nil, uuid.Nil, nil, chatmux.PermissionDenied(denied)
	}
	v := f.get("members")
	if v == nil {
		return nil, uuid.Nil, nil, chatmux.FieldError("members", msgRequired)
	}
	ids, err := userIDList("members", v)
	if err != nil {
		return nil, uuid.Nil, nil, err
	}
	if len(ids) == 0 {
		return nil, uuid.Nil, nil, chatmux.FieldError("members", msgEmptyList)
	}
	return u, roomID, ids, nil
}

// usernames returns the usernames of ids, ordered by id.
func (s *Service) usernames(c *chatmux.Context, ids []int64) ([]string, error) {
	out := []string{}
	if len(ids) == 0 {
		return out, nil
	}
	us, err := s.st.Users(c.Context(), ids)
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
func (s *Service) rejoinMembers(c *chatmux.Context, roomID uuid.UUID, ids, removed []int64) {
	for _, id := range ids {
		if slices.Contains(removed, id) {
			continue
		}
		m, err := s.st.Membership(c.Context(), roomID, id)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				s.log.WarnContext(c.Context(), "chat: failed to check a membership after a removal; the user's connections catch up on reconnect",
					"room_id", roomID, "user_id", id, "err", err)
			}
			continue
		}
		if m.IsMember {
			s.joinUser(c, id, RoomGroup(roomID))
		}
	}
}

// committed answers an event whose change was stored but whose dispatch
// could not be built (a read after the commit failed): the change stands,
// so the requester gets no error (docs/protocol.md#one-answer-per-send);
// the failure is logged, and clients see the change on their next read.
func (s *Service) committed(c *chatmux.Context, err error) error {
	s.log.WarnContext(c.Context(), "chat: a change was stored but its dispatch could not be built", "event", c.Event(), "err", err)
	return nil
}
