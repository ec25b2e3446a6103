package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/store"
)

// handleModifyRoom handles room.modify: data {room_id, action, data}
// (docs/protocol.md#room-modify). delete needs the creator of a group or
// channel, or either participant of a one-to-one chat (else 4002 "User is
// not the creator of this room") and runs deleteRoom. Every other action
// needs IsRoomAdmin (else 4002 "User is not an admin of this room"), reads
// its data and runs the operation the Go API runs, each ending with
// roomupdate.dispatch (RoomDetail) to the room:
//
//   - update (updateRoom): name, description, avatar (validated as at
//     creation), group_locked and join_approval_required (group),
//     is_public (channel), property: {preferences} (replaced); a
//     one-to-one chat takes only property;
//   - add_admin / remove_admin (groups), add_moderator / remove_moderator
//     (channels) (setRole): data {users: [ids]};
//   - add_permission / remove_permission (groups, channels)
//     (setPermissions): data {users, permission: [names]}.
//
// The creator's roles and permissions cannot be changed and ids of
// non-members are dropped; ids compare as ids whatever their JSON type.
func (s *Service) handleModifyRoom(c *chatmux.Context) error {
	u, f, err := readEvent(c)
	if err != nil {
		return err
	}
	roomID, err := roomIDField(f)
	if err != nil {
		return err
	}
	ctx, a := c.Context(), eventActor(u)
	m, err := s.membership(ctx, roomID, a.id)
	if err != nil {
		return err
	}
	actionRaw := f.get("action")
	var action string
	if jsonKind(actionRaw) == 's' {
		_ = json.Unmarshal(actionRaw, &action)
	}
	if action == "delete" {
		if !CanDeleteRoom(m, u.ID) {
			return chatmux.PermissionDenied(msgDeniedCreator)
		}
		_, err := s.deleteRoom(ctx, ev(c), roomID)
		return err
	}
	if !IsRoomAdmin(m, u.ID) {
		return chatmux.PermissionDenied(msgDeniedAdmin)
	}
	if actionRaw == nil {
		return chatmux.Validation(msgActionRequired)
	}
	switch action {
	case "update", "add_admin", "remove_admin", "add_moderator", "remove_moderator", "add_permission", "remove_permission":
	default:
		return chatmux.Validation(msgInvalidAction)
	}
	data, ok, err := f.object("data")
	if err != nil || !ok || len(data) == 0 {
		return chatmux.Validation(msgDataRequired)
	}
	on := strings.HasPrefix(action, "add_")
	switch action {
	case "update":
		up, err := readRoomUpdate(m.RoomType, data)
		if err != nil {
			return err
		}
		_, err = s.updateRoom(ctx, ev(c), roomID, m, up)
		return err
	case "add_admin", "remove_admin", "add_moderator", "remove_moderator":
		role := RoleAdmin
		if strings.HasSuffix(action, "_moderator") {
			role = RoleModerator
		}
		// The room type is checked before the users are read.
		if err := checkRoleRoom(m.RoomType, role); err != nil {
			return err
		}
		ids, err := roleUsers(data)
		if err != nil {
			return err
		}
		_, err = s.setRole(ctx, ev(c), roomID, m, role, ids, on)
		return err
	default: // add_permission, remove_permission
		if m.RoomType == store.OneToOne {
			return chatmux.Validation(msgPermissionsGroupChan)
		}
		ids, err := roleUsers(data)
		if err != nil {
			return err
		}
		perms, err := permissionNames(data)
		if err != nil {
			return err
		}
		_, err = s.setPermissions(ctx, ev(c), roomID, m, ids, perms, on)
		return err
	}
}

// updateRoom is room.modify update after its access check (adminAccess,
// which returned m): empty strings and nil fields are left as they are;
// a one-to-one chat takes only the preferences.
func (s *Service) updateRoom(ctx context.Context, o origin, roomID uuid.UUID, m store.Membership, in RoomUpdate) (json.RawMessage, error) {
	var up store.RoomUpdate
	var err error
	if up.Preferences, err = preferences(in.Preferences); err != nil {
		return nil, err
	}
	if m.RoomType != store.OneToOne {
		if in.Name != nil {
			if up.Name, err = checkRoomName(*in.Name, false); err != nil {
				return nil, err
			}
		}
		if in.Description != nil && *in.Description != "" {
			up.Description = in.Description
		}
		if in.Avatar != nil && *in.Avatar != "" {
			if err := checkAvatar(*in.Avatar); err != nil {
				return nil, err
			}
			up.Avatar = in.Avatar
		}
		if m.RoomType == store.Group {
			up.GroupLocked, up.JoinApprovalRequired = in.GroupLocked, in.JoinApprovalRequired
		} else {
			up.IsPublic = in.IsPublic
		}
	}
	if _, err := s.st.UpdateRoom(ctx, roomID, up); err != nil {
		return nil, StoreError(err)
	}
	return s.roomUpdated(ctx, o, roomID)
}

// checkRoleRoom: admins are a group's, moderators a channel's (4003).
func checkRoleRoom(t store.RoomType, role Role) error {
	if role == RoleModerator {
		if t != store.Channel {
			return chatmux.Validation(store.MsgModeratorsChannel)
		}
		return nil
	}
	if t != store.Group {
		return chatmux.Validation(store.MsgAdminsGroupOnly)
	}
	return nil
}

// setRole is room.modify add_/remove_admin and add_/remove_moderator
// after its access check (adminAccess, which returned m).
func (s *Service) setRole(ctx context.Context, o origin, roomID uuid.UUID, m store.Membership, role Role, ids []int64, on bool) (json.RawMessage, error) {
	if err := checkRoleRoom(m.RoomType, role); err != nil {
		return nil, err
	}
	if ids = store.UniqueInt64(ids); len(ids) == 0 {
		return nil, chatmux.Validation(msgUsersRequired)
	}
	if _, err := s.st.SetRole(ctx, roomID, ids, on); err != nil {
		return nil, StoreError(err)
	}
	return s.roomUpdated(ctx, o, roomID)
}

// setPermissions is room.modify add_/remove_permission after its access
// check (adminAccess, which returned m): groups and channels only, users
// and permissions not empty, each permission valid for the room type.
func (s *Service) setPermissions(ctx context.Context, o origin, roomID uuid.UUID, m store.Membership, ids []int64, names []string, on bool) (json.RawMessage, error) {
	if m.RoomType == store.OneToOne {
		return nil, chatmux.Validation(msgPermissionsGroupChan)
	}
	if ids = store.UniqueInt64(ids); len(ids) == 0 {
		return nil, chatmux.Validation(msgUsersRequired)
	}
	if len(names) == 0 {
		return nil, chatmux.Validation(msgPermissionRequired)
	}
	kind := "group chat"
	if m.RoomType == store.Channel {
		kind = "channel"
	}
	perms := make([]store.Permission, 0, len(names))
	for _, p := range names {
		if !store.Permission(p).ValidFor(m.RoomType) {
			return nil, chatmux.Validation(fmt.Sprintf("Permission '%s' is not a valid %s permission", p, kind))
		}
		perms = append(perms, store.Permission(p))
	}
	if _, err := s.st.SetPermissions(ctx, roomID, ids, perms, on); err != nil {
		return nil, StoreError(err)
	}
	return s.roomUpdated(ctx, o, roomID)
}

// roomUpdated sends roomupdate.dispatch (RoomDetail) to the room.
func (s *Service) roomUpdated(ctx context.Context, o origin, roomID uuid.UUID) (json.RawMessage, error) {
	detail, _, err := s.roomDetail(ctx, roomID)
	if err != nil {
		return nil, err
	}
	return s.broadcast(ctx, o, RoomGroup(roomID), DispatchRoomUpdate, detail)
}

// deleteRoom deletes a room, tells its group (roomdelete.dispatch
// {room_id}), then moves every former member's connections out of the
// group.
func (s *Service) deleteRoom(ctx context.Context, o origin, roomID uuid.UUID) (json.RawMessage, error) {
	members, err := s.st.RoomMemberIDs(ctx, roomID)
	if err != nil {
		return nil, StoreError(err)
	}
	if err := s.st.DeleteRoom(ctx, roomID); err != nil {
		return nil, StoreError(err)
	}
	group := RoomGroup(roomID)
	b, err := s.broadcast(ctx, o, group, DispatchRoomDelete, deletePayload{RoomID: roomID.String()})
	if err != nil {
		return nil, err
	}
	for _, id := range members {
		s.leaveUser(ctx, o, id, group)
	}
	return b, nil
}

// readRoomUpdate reads the data of room.modify update: wrong types are
// 4003; the values are checked by updateRoom.
func readRoomUpdate(t store.RoomType, data fields) (RoomUpdate, error) {
	var up RoomUpdate
	var err error
	if up.Preferences, err = property(data); err != nil {
		return up, err
	}
	if t == store.OneToOne {
		return up, nil
	}
	for _, sf := range []struct {
		key string
		dst **string
	}{{"name", &up.Name}, {"description", &up.Description}, {"avatar", &up.Avatar}} {
		v, ok, err := data.str(sf.key)
		if err != nil {
			return up, err
		}
		if ok {
			*sf.dst = &v
		}
	}
	if t == store.Group {
		if up.GroupLocked, err = data.boolean("group_locked"); err != nil {
			return up, err
		}
		if up.JoinApprovalRequired, err = data.boolean("join_approval_required"); err != nil {
			return up, err
		}
	} else {
		if up.IsPublic, err = data.boolean("is_public"); err != nil {
			return up, err
		}
	}
	return up, nil
}

// roleUsers reads data.users of the role and permission actions.
func roleUsers(data fields) ([]int64, error) {
	v := data.get("users")
	if v == nil {
		return nil, chatmux.Validation(msgUsersRequired)
	}
	if jsonKind(v) != 'a' {
		return nil, chatmux.Validation(msgUsersList)
	}
	ids, ok := ParseUserIDs(v)
	if !ok {
		return nil, chatmux.FieldError("users", msgNotInt)
	}
	if len(ids) == 0 {
		return nil, chatmux.Validation(msgUsersRequired)
	}
	return ids, nil
}

// permissionNames reads data.permission (singular, as the package reads
// it): a list; an item that is not a string is named by its JSON text
// (and is then no valid permission).
func permissionNames(data fields) ([]string, error) {
	v := data.get("permission")
	if v == nil {
		return nil, chatmux.Validation(msgPermissionRequired)
	}
	if jsonKind(v) != 'a' {
		return nil, chatmux.Validation(msgPermissionList)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(v, &items); err != nil {
		return nil, chatmux.Validation(msgPermissionList)
	}
	names := make([]string, 0, len(items))
	for _, it := range items {
		var p string
		if jsonKind(it) != 's' || json.Unmarshal(it, &p) != nil {
			p = strings.TrimSpace(string(it))
		}
		names = append(names, p)
	}
	return names, nil
}
