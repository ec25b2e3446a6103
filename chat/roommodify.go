package chat

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/store"
)

// ModifyRoom handles room.modify: data {room_id, action, data}
// (docs/protocol.md#room-modify). delete needs the creator of a group or channel, or
// either participant of a one-to-one chat (else 4002 "User is not the
// creator of this room"); roomdelete.dispatch {room_id} goes to the room,
// then every member's connections leave its group. Every other action
// needs IsRoomAdmin (else 4002 "User is not an admin of this room") and
// ends with roomupdate.dispatch (RoomDetail) to the room:
//
//   - update: name, description, avatar (validated as at creation),
//     group_locked and join_approval_required (group), is_public (channel),
//     property: {preferences} (replaced); a one-to-one chat takes only
//     property;
//   - add_admin / remove_admin (groups), add_moderator / remove_moderator
//     (channels): data {users: [ids]};
//   - add_permission / remove_permission (groups, channels): data {users,
//     permission: [names]}.
//
// The creator's roles and permissions cannot be changed and ids of
// non-members are dropped; ids compare as ids whatever their JSON type.
func (s *Service) ModifyRoom(c *chatmux.Context) error {
	u, f, roomID, m, err := s.roomEvent(c)
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
		return s.deleteRoom(c, roomID)
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
	ctx := c.Context()
	switch action {
	case "update":
		up, err := roomUpdate(m.RoomType, data)
		if err != nil {
			return err
		}
		if _, err := s.st.UpdateRoom(ctx, roomID, up); err != nil {
			return StoreError(err)
		}
	case "add_admin", "remove_admin", "add_moderator", "remove_moderator":
		want, msg := store.Group, store.MsgAdminsGroupOnly
		if strings.HasSuffix(action, "_moderator") {
			want, msg = store.Channel, store.MsgModeratorsChannel
		}
		if m.RoomType != want {
			return chatmux.Validation(msg)
		}
		ids, err := roleUsers(data)
		if err != nil {
			return err
		}
		if _, err := s.st.SetRole(ctx, roomID, ids, strings.HasPrefix(action, "add_")); err != nil {
			return StoreError(err)
		}
	case "add_permission", "remove_permission":
		if m.RoomType == store.OneToOne {
			return chatmux.Validation(msgPermissionsGroupChan)
		}
		ids, err := roleUsers(data)
		if err != nil {
			return err
		}
		perms, err := permissionList(m.RoomType, data)
		if err != nil {
			return err
		}
		if _, err := s.st.SetPermissions(ctx, roomID, ids, perms, action == "add_permission"); err != nil {
			return StoreError(err)
		}
	}
	detail, _, err := s.roomDetail(ctx, roomID)
	if err != nil {
		return err
	}
	return s.broadcast(c, RoomGroup(roomID), DispatchRoomUpdate, detail)
}

// deleteRoom deletes a room, tells its group, then moves every former
// member's connections out of the group.
func (s *Service) deleteRoom(c *chatmux.Context, roomID uuid.UUID) error {
	ctx := c.Context()
	members, err := s.st.RoomMemberIDs(ctx, roomID)
	if err != nil {
		return StoreError(err)
	}
	if err := s.st.DeleteRoom(ctx, roomID); err != nil {
		return StoreError(err)
	}
	group := RoomGroup(roomID)
	if err := s.broadcast(c, group, DispatchRoomDelete, deletePayload{RoomID: roomID.String()}); err != nil {
		return err
	}
	for _, id := range members {
		s.leaveUser(c, id, group)
	}
	return nil
}

// roomUpdate reads the data of room.modify update. Empty strings leave a
// field as it is (as the package does); wrong types are 4003.
func roomUpdate(t store.RoomType, data fields) (store.RoomUpdate, error) {
	var up store.RoomUpdate
	prefs, err := property(data)
	if err != nil {
		return up, err
	}
	up.Preferences = prefs
	if t == store.OneToOne {
		return up, nil
	}
	if up.Name, err = roomName(data, false); err != nil {
		return up, err
	}
	if d, ok, err := data.str("description"); err != nil {
		return up, err
	} else if ok && d != "" {
		up.Description = &d
	}
	a, err := avatar(data)
	if err != nil {
		return up, err
	}
	if a != "" {
		up.Avatar = &a
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

// permissionList reads data.permission (singular, as the package reads it).
func permissionList(t store.RoomType, data fields) ([]store.Permission, error) {
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
	if len(items) == 0 {
		return nil, chatmux.Validation(msgPermissionRequired)
	}
	kind := "group chat"
	if t == store.Channel {
		kind = "channel"
	}
	perms := make([]store.Permission, 0, len(items))
	for _, it := range items {
		var p string
		if jsonKind(it) != 's' || json.Unmarshal(it, &p) != nil {
			p = strings.TrimSpace(string(it))
		}
		if !store.Permission(p).ValidFor(t) {
			return nil, chatmux.Validation(fmt.Sprintf("Permission '%s' is not a valid %s permission", p, kind))
		}
		perms = append(perms, store.Permission(p))
	}
	return perms, nil
}
