package chat

import (
	"context"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/store"
)

// DeleteUser deletes a user for good (docs/protocol.md#deleted-users): the
// store removes their memberships and personal data in one transaction
// (store.UserStore.DeleteUser), then every room sees what room.leave or a
// room's deletion would show: for each group or channel they left,
// roomexit.dispatch to their devices and roomremovemembers.dispatch
// (removed_by "self") to the room; for each of their one-to-one chats,
// roomdelete.dispatch to the room and its members' connections out of its
// group; for each group or channel they were the last member of,
// roomdelete.dispatch to their devices. Their connections leave every
// room's group before the deletion commits (and join again if it fails);
// at the end every one of them, on every node, is closed with 4011
// (chatmux.CloseUserDeleted; when that fails, ConnectionsClosed is false
// and the failure is logged and counted as PublishFailures). An
// unknown id is 4004; deleting a deleted user again changes nothing and
// closes any connection left.
func (s *Service) DeleteUser(ctx context.Context, userID int64) (DeletedUser, error) {
	out := DeletedUser{UserID: userID}
	if userID <= 0 {
		return out, chatmux.NotFound()
	}
	o, a, err := s.api(ctx, "DeleteUser", AsUser(userID))
	if err != nil {
		return out, err
	}
	// What the dispatches need once the rooms and the name are gone.
	roomIDs, err := s.st.UserRoomIDs(ctx, userID)
	if err != nil {
		return out, StoreError(err)
	}
	type before struct {
		oneToOne bool
		members  []int64
	}
	rooms := make(map[uuid.UUID]before, len(roomIDs))
	for _, id := range roomIDs {
		m, err := s.st.Membership(ctx, id, userID)
		if err != nil {
			return out, StoreError(err)
		}
		b := before{oneToOne: m.RoomType == store.OneToOne}
		if b.oneToOne {
			if b.members, err = s.st.RoomMemberIDs(ctx, id); err != nil {
				return out, StoreError(err)
			}
		}
		rooms[id] = b
	}
	// Out of every group before the deletion commits, as a removal does
	// (docs/protocol.md#faults).
	for _, id := range roomIDs {
		s.leaveUser(ctx, o, userID, RoomGroup(id))
	}
	res, err := s.st.DeleteUser(ctx, userID)
	if err != nil {
		for _, id := range roomIDs {
			s.rejoinMembers(ctx, o, id, []int64{userID}, nil)
		}
		return out, StoreError(err)
	}
	out.RoomsDeleted, out.RoomsLeft = res.RoomsDeleted, res.RoomsLeft
	for _, id := range res.RoomsLeft {
		if _, err := s.left(ctx, o, id, userID, a.user.Username, false); err != nil {
			return out, err
		}
	}
	for _, id := range res.RoomsDeleted {
		b, known := rooms[id]
		if known && !b.oneToOne {
			// A group or channel left empty: what room.leave sends.
			if _, err := s.left(ctx, o, id, userID, a.user.Username, true); err != nil {
				return out, err
			}
			continue
		}
		// A one-to-one chat: what its deletion sends.
		group := RoomGroup(id)
		if _, err := s.broadcast(ctx, o, group, DispatchRoomDelete, deletePayload{RoomID: id.String()}); err != nil {
			return out, err
		}
		for _, m := range b.members {
			if m != userID {
				s.leaveUser(ctx, o, m, group)
			}
		}
	}
	if err := o.srv.CloseUser(ctx, userID, chatmux.CloseUserDeleted, chatmux.ReasonUserDeleted); err != nil {
		s.publishFailures.Add(1)
		s.log.WarnContext(ctx, "chat: failed to close a deleted user's connections", "user_id", userID, "err", err)
		return out, nil
	}
	out.ConnectionsClosed = true
	return out, nil
}
