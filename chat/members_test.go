package chat_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux/chat"
	"github.com/chatmux/chatmux/store"
)

func TestAddRemoveMembers(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		e := newEnv(t, newStore)
		e.users(6)
		group := e.roomWith(store.NewRoom{Type: store.Group, CreatorID: 1, Name: "g", MaxMembers: 4, Members: []int64{2, 3}})
		channel := e.room(store.Channel, 1, 2)
		dm := e.room(store.OneToOne, 1, 2)
		c1, c2, c3, c4a, c4b, c5 := e.dial(1), e.dial(2), e.dial(3), e.dial(4), e.dial(4), e.dial(5)

		// Creator adds user 4 (id as a string) and an existing member.
		c1.send(chat.EventRoomAddMembers, map[string]any{"room_id": group.String(), "members": []any{"4", 2}})
		for _, c := range []*client{c1, c2, c3, c4a, c4b} {
			m := c.expect(chat.DispatchRoomAddMembers).obj(t)
			eq(t, m["new_members"], []string{"user4"}, "new members")
			eq(t, m["added_by"], "user1", "added_by")
			eq(t, usernames(t, path(t, m, "room.participants")), []string{"user1", "user2", "user3", "user4"}, "participants")
		}
		// Both devices of user 4 are in the room's group now.
		c3.send(chat.EventMessageTyping, map[string]any{"room_id": group.String()})
		for _, c := range []*client{c1, c2, c3, c4a, c4b} {
			c.expect(chat.DispatchTyping)
		}
		for _, b := range []struct {
			c      *client
			data   any
			code   int
			detail string
		}{
			{c1, map[string]any{"room_id": group.String(), "members": []int{5}}, 4003, `["Maximum number of group participants exceeded"]`},
			{c1, map[string]any{"room_id": group.String(), "members": []int{99}}, 4004, `"Resource not found."`},
			{c1, map[string]any{"room_id": group.String()}, 4003, `{"members":["This field is required."]}`},
			{c1, map[string]any{"room_id": group.String(), "members": []int{}}, 4003, `{"members":["This list may not be empty."]}`},
			{c1, map[string]any{"room_id": group.String(), "members": 5}, 4003, `{"members":["Expected a list of items but got type \"int\"."]}`},
			{c1, map[string]any{"room_id": group.String(), "members": []any{"x"}}, 4003, `{"members":["A valid integer is required."]}`},
			{c1, map[string]any{"room_id": dm.String(), "members": []int{3}}, 4003, `["Invalid room, Can only add or remove members from Groups/Channels"]`},
			{c2, map[string]any{"room_id": group.String(), "members": []int{5}}, 4002, `"User is not authorized to add new members to this room"`},
			{c5, map[string]any{"room_id": group.String(), "members": []int{5}}, 4002, `"User is not authorized to add new members to this room"`},
			{c2, map[string]any{"room_id": channel.String(), "members": []int{5}}, 4002, `"User is not authorized to add new members to this room"`},
			{c1, map[string]any{"room_id": 5, "members": []int{5}}, 4004, ""},
		} {
			b.c.send(chat.EventRoomAddMembers, b.data)
			b.c.expectError(b.code, b.detail)
		}
		for _, b := range []struct {
			c      *client
			data   any
			code   int
			detail string
		}{
			{c2, map[string]any{"room_id": group.String(), "members": []int{3}}, 4002, `"User is not authorized to remove members from this room"`},
			{c1, map[string]any{"room_id": group.String(), "members": []int{99}}, 4004, ""},
			{c1, map[string]any{"room_id": dm.String(), "members": []int{2}}, 4003, `["Invalid room, Can only add or remove members from Groups/Channels"]`},
			{c1, map[string]any{"room_id": group.String(), "members": "2"}, 4003, ""},
		} {
			b.c.send(chat.EventRoomRemoveMembers, b.data)
			b.c.expectError(b.code, b.detail)
		}
		// An explicit permission holder may add; a channel moderator too.
		if _, err := e.st.SetPermissions(bg, group, []int64{2}, []store.Permission{store.PermRemoveParticipants}, true); err != nil {
			t.Fatal(err)
		}
		// User 2 removes the creator (skipped) and user 4.
		c2.send(chat.EventRoomRemoveMembers, map[string]any{"room_id": group.String(), "members": []int{1, 4}})
		for _, c := range []*client{c4a, c4b} {
			m := c.expect(chat.DispatchRoomExit).obj(t)
			eq(t, m["message"], "You have been removed by user2", "exit message")
		}
		for _, c := range []*client{c1, c2, c3} {
			m := c.expect(chat.DispatchRoomRemoveMembers).obj(t)
			eq(t, m["removed_members"], []string{"user4"}, "creator skipped")
			eq(t, m["removed_by"], "user2", "removed_by")
		}
		c3.send(chat.EventMessageTyping, map[string]any{"room_id": group.String()})
		for _, c := range []*client{c1, c2, c3} {
			c.expect(chat.DispatchTyping)
		}
		c4a.quiet()
		c4b.quiet()

		// Channel: the moderator adds; removing everyone deletes it
		// (docs/protocol.md#diff-empty-room).
		c1.send(chat.EventRoomAddMembers, map[string]any{"room_id": channel.String(), "members": []int{3}})
		for _, c := range []*client{c1, c2, c3} {
			eq(t, c.expect(chat.DispatchRoomAddMembers).obj(t)["new_members"], []string{"user3"}, "channel add")
		}
		c1.send(chat.EventRoomRemoveMembers, map[string]any{"room_id": channel.String(), "members": []int{1, 2, 3}})
		for _, c := range []*client{c1, c2, c3} {
			eq(t, c.expect(chat.DispatchRoomDelete).obj(t), map[string]any{"room_id": channel.String()}, "roomdelete")
		}
		if _, err := e.st.Room(bg, channel); err == nil {
			t.Fatal("empty channel not deleted")
		}
		for _, c := range []*client{c1, c2, c3, c5} {
			c.quiet()
		}
	})
}

func TestModifyRoom(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		e := newEnv(t, newStore)
		e.users(5)
		group := e.room(store.Group, 1, 2, 3)
		channel := e.room(store.Channel, 1, 2, 3)
		dm := e.room(store.OneToOne, 1, 2)
		c1, c2, c3, c4 := e.dial(1), e.dial(2), e.dial(3), e.dial(4)
		members := []*client{c1, c2, c3}
		modify := func(c *client, room uuid.UUID, action string, data any) {
			t.Helper()
			m := map[string]any{"room_id": room.String(), "action": action}
			if data != nil {
				m["data"] = data
			}
			c.send(chat.EventRoomModify, m)
		}
		update := func(who []*client) map[string]any {
			t.Helper()
			var m map[string]any
			for _, c := range who {
				m = c.expect(chat.DispatchRoomUpdate).obj(t)
			}
			return m
		}

		modify(c1, group, "update", map[string]any{"name": "New", "description": "desc", "avatar": "https://a/b.png",
			"group_locked": true, "join_approval_required": true, "is_public": true, "property": map[string]any{"preferences": map[string]any{"a": 1}}})
		m := update(members)
		eq(t, []any{m["name"], m["description"], m["avatar"], m["group_locked"], m["join_approval_required"], m["property"]},
			[]any{"New", "desc", "https://a/b.png", true, true, map[string]any{"preferences": map[string]any{"a": 1}}}, "group update")
		if _, ok := m["is_public"]; ok {
			t.Fatal("group has is_public")
		}
		// Empty strings leave fields as they are.
		modify(c1, group, "update", map[string]any{"name": "", "description": ""})
		m = update(members)
		eq(t, []any{m["name"], m["description"]}, []any{"New", "desc"}, "empty strings ignored")
		modify(c1, channel, "update", map[string]any{"is_public": true, "group_locked": true})
		m = update(members)
		eq(t, m["is_public"], true, "channel is_public")
		// One-to-one: property only, by either participant.
		modify(c2, dm, "update", map[string]any{"name": "x", "property": map[string]any{"preferences": map[string]any{"mute": true}}})
		m = update([]*client{c1, c2})
		if _, ok := m["name"]; ok {
			t.Fatal("1:1 has a name")
		}
		eq(t, m["property"], map[string]any{"preferences": map[string]any{"mute": true}}, "1:1 property")

		// Admins.
		modify(c1, group, "add_admin", map[string]any{"users": []any{"2", 4, 99}})
		eq(t, usernames(t, update(members)["admins"]), []string{"user1", "user2"}, "admin added, non-members dropped")
		// The new admin may update, but cannot demote the creator, even with
		// the creator's id as a string (docs/protocol.md#diff-ids).
		modify(c2, group, "remove_admin", map[string]any{"users": []any{"1"}})
		eq(t, usernames(t, update(members)["admins"]), []string{"user1", "user2"}, "creator protected")
		modify(c1, group, "remove_admin", map[string]any{"users": []int{2}})
		eq(t, usernames(t, update(members)["admins"]), []string{"user1"}, "admin removed")
		// Moderators.
		modify(c1, channel, "add_moderator", map[string]any{"users": []int{3}})
		eq(t, usernames(t, update(members)["moderators"]), []string{"user1", "user3"}, "moderator added")
		c3.send(chat.EventMessageSend, map[string]any{"room_id": channel.String(), "content": "mod post"})
		for _, c := range members {
			c.expect(chat.DispatchMessage)
		}
		modify(c3, channel, "remove_moderator", map[string]any{"users": []int{3}})
		eq(t, usernames(t, update(members)["moderators"]), []string{"user1"}, "moderator removed")
		// Permissions (key "permission", singular).
		modify(c1, channel, "add_permission", map[string]any{"users": []int{2}, "permission": []string{"can_send_messages"}})
		update(members)
		c2.send(chat.EventMessageSend, map[string]any{"room_id": channel.String(), "content": "granted"})
		for _, c := range members {
			c.expect(chat.DispatchMessage)
		}
		modify(c1, channel, "remove_permission", map[string]any{"users": []int{2}, "permission": []string{"can_send_messages"}})
		update(members)
		c2.send(chat.EventMessageSend, map[string]any{"room_id": channel.String(), "content": "revoked"})
		c2.expectError(4002, "")
		modify(c1, group, "add_permission", map[string]any{"users": []int{3}, "permission": []string{"can_add_new_participants"}})
		update(members)
		c3.send(chat.EventRoomAddMembers, map[string]any{"room_id": group.String(), "members": []int{5}})
		for _, c := range members {
			c.expect(chat.DispatchRoomAddMembers)
		}

		for _, b := range []struct {
			c      *client
			room   uuid.UUID
			action any
			data   any
			code   int
			detail string
		}{
			{c2, group, "update", map[string]any{"name": "x"}, 4002, `"User is not an admin of this room"`},
			{c3, channel, "add_moderator", map[string]any{"users": []int{3}}, 4002, `"User is not an admin of this room"`},
			{c4, group, "update", map[string]any{"name": "x"}, 4002, `"User is not an admin of this room"`},
			{c2, group, "delete", nil, 4002, `"User is not the creator of this room"`},
			{c4, dm, "delete", nil, 4002, `"User is not the creator of this room"`},
			{c1, group, nil, nil, 4003, `["Action must be provided"]`},
			{c1, group, "rename", nil, 4003, `["Invalid action type"]`},
			{c1, group, 5, nil, 4003, `["Invalid action type"]`},
			{c1, group, "update", nil, 4003, `["data must be provided"]`},
			{c1, group, "update", map[string]any{}, 4003, `["data must be provided"]`},
			{c1, group, "update", []int{1}, 4003, `["data must be provided"]`},
			{c1, group, "update", map[string]any{"name": string(make([]byte, 65))}, 4003, ""},
			{c1, group, "update", map[string]any{"avatar": "nope"}, 4003, `{"avatar":["Enter a valid URL."]}`},
			{c1, group, "update", map[string]any{"group_locked": "yes"}, 4003, `{"group_locked":["Must be a valid boolean."]}`},
			{c1, group, "update", map[string]any{"property": map[string]any{"preferences": []int{}}}, 4003, `["preferences must be an object"]`},
			{c1, channel, "add_admin", map[string]any{"users": []int{2}}, 4003, `["Room should be a group chat to modify the admins"]`},
			{c1, dm, "add_admin", map[string]any{"users": []int{2}}, 4003, `["Room should be a group chat to modify the admins"]`},
			{c1, group, "add_moderator", map[string]any{"users": []int{2}}, 4003, `["Room should be a channel to modify the moderators"]`},
			{c1, dm, "add_permission", map[string]any{"users": []int{2}, "permission": []string{"can_send_messages"}}, 4003, ""},
			{c1, group, "add_admin", map[string]any{"users": []int{}}, 4003, `["User ids must be provided"]`},
			{c1, group, "add_admin", map[string]any{"x": 1}, 4003, `["User ids must be provided"]`},
			{c1, group, "add_admin", map[string]any{"users": 2}, 4003, `["User ids must be a list/array"]`},
			{c1, group, "add_permission", map[string]any{"users": []int{2}}, 4003, `["Permission to add or remove should be passed"]`},
			{c1, group, "add_permission", map[string]any{"users": []int{2}, "permission": []string{}}, 4003, `["Permission to add or remove should be passed"]`},
			{c1, group, "add_permission", map[string]any{"users": []int{2}, "permission": "can_remove_participants"}, 4003, `["Permission must be a list"]`},
			{c1, group, "add_permission", map[string]any{"users": []int{2}, "permission": []string{"can_send_messages"}}, 4003, `["Permission 'can_send_messages' is not a valid group chat permission"]`},
			{c1, channel, "add_permission", map[string]any{"users": []int{2}, "permission": []string{"can_remove_participants"}}, 4003, `["Permission 'can_remove_participants' is not a valid channel permission"]`},
		} {
			m := map[string]any{"room_id": b.room.String()}
			if b.action != nil {
				m["action"] = b.action
			}
			if b.data != nil {
				m["data"] = b.data
			}
			b.c.send(chat.EventRoomModify, m)
			b.c.expectError(b.code, b.detail)
		}
		c1.send(chat.EventRoomModify, `{"room_id":"bad","action":"delete"}`)
		c1.expectError(4003, `["“bad” is not a valid UUID."]`)

		// Delete: roomdelete to the room, then everyone leaves its group.
		modify(c2, dm, "delete", nil)
		for _, c := range []*client{c1, c2} {
			eq(t, c.expect(chat.DispatchRoomDelete).obj(t), map[string]any{"room_id": dm.String()}, "1:1 deleted")
		}
		modify(c1, group, "delete", nil)
		for _, c := range members {
			c.expect(chat.DispatchRoomDelete)
		}
		if ids, _ := e.st.UserRoomIDs(bg, 2); len(ids) != 1 || ids[0] != channel {
			t.Fatalf("rooms left: %v", ids)
		}
		for _, c := range append(members, c4) {
			c.quiet()
		}
	})
}

// TestPermissionsRevokedOnLeave: explicit permissions and roles go when a
// member leaves or is removed, and do not come back on re-adding
// (docs/protocol.md#diff-ids).
func TestPermissionsRevokedOnLeave(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		e := newEnv(t, newStore)
		e.users(3)
		channel := e.roomWith(store.NewRoom{Type: store.Channel, CreatorID: 1, Name: "c", IsPublic: true, Members: []int64{2, 3}})
		c1, c2, c3 := e.dial(1), e.dial(2), e.dial(3)
		all := []*client{c1, c2, c3}
		c1.send(chat.EventRoomModify, map[string]any{"room_id": channel.String(), "action": "add_permission",
			"data": map[string]any{"users": []int{2}, "permission": []string{"can_send_messages", "can_add_new_subscribers"}}})
		for _, c := range all {
			c.expect(chat.DispatchRoomUpdate)
		}
		c1.send(chat.EventRoomModify, map[string]any{"room_id": channel.String(), "action": "add_moderator", "data": map[string]any{"users": []int{3}}})
		for _, c := range all {
			c.expect(chat.DispatchRoomUpdate)
		}
		c2.send(chat.EventRoomLeave, map[string]any{"room_id": channel.String()})
		c2.expect(chat.DispatchRoomExit)
		c1.expect(chat.DispatchRoomRemoveMembers)
		c3.expect(chat.DispatchRoomRemoveMembers)
		c1.send(chat.EventRoomRemoveMembers, map[string]any{"room_id": channel.String(), "members": []int{3}})
		c3.expect(chat.DispatchRoomExit)
		c1.expect(chat.DispatchRoomRemoveMembers)
		c2.send(chat.EventRoomJoin, map[string]any{"room_id": channel.String()})
		c1.expect(chat.DispatchRoomAddMembers)
		c2.expect(chat.DispatchRoomAddMembers)
		c3.send(chat.EventRoomJoin, map[string]any{"room_id": channel.String()})
		for _, c := range all {
			m := c.expect(chat.DispatchRoomAddMembers).obj(t)
			eq(t, usernames(t, path(t, m, "room.moderators")), []string{"user1"}, "role gone")
		}
		for _, c := range []*client{c2, c3} {
			c.send(chat.EventMessageSend, map[string]any{"room_id": channel.String(), "content": "x"})
			c.expectError(4002, `"User is not authorized to send message to this room"`)
			c.send(chat.EventRoomAddMembers, map[string]any{"room_id": channel.String(), "members": []int{1}})
			c.expectError(4002, `"User is not authorized to add new members to this room"`)
		}
		c1.quiet()
	})
}
