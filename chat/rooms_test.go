package chat_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux/chat"
	"github.com/chatmux/chatmux/store"
)

func TestCreateRoom(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		e := newEnv(t, newStore, func(c *chat.Config) { c.MaxGroupParticipants = 5; c.MaxChannelSubscribers = 7 })
		e.users(6)
		c1, c2a, c2b, c3, c6 := e.dial(1), e.dial(2), e.dial(2), e.dial(3), e.dial(6)

		// One-to-one: only the other user's id (as a string: ids are ids).
		c1.send(chat.EventRoomCreate, map[string]any{"type": "OneToOneChat", "participants": []any{"2"}})
		var dm string
		for _, c := range []*client{c1, c2a, c2b} {
			f := c.expect(chat.DispatchRoomCreate)
			m := f.obj(t)
			eq(t, keysOf(m), []string{"created_at", "id", "participants", "property", "type", "updated_at"}, "1:1 detail keys")
			eq(t, m["type"], "OneToOneChat", "type")
			eq(t, usernames(t, m["participants"]), []string{"user1", "user2"}, "participants")
			eq(t, m["property"], map[string]any{"preferences": map[string]any{}}, "property")
			dm = m["id"].(string)
		}
		// Both devices of user 2 joined the room's group at once.
		c2a.send(chat.EventMessageSend, map[string]any{"room_id": dm, "content": "hi"})
		c1.expect(chat.DispatchMessage)
		c2a.expect(chat.DispatchMessage)
		c2b.expect(chat.DispatchMessage)
		c3.quiet()

		for _, b := range []struct {
			data   string
			detail string
		}{
			{`{"type":"OneToOneChat","participants":[2]}`, `["Chat already exists"]`},
			{`{"type":"OneToOneChat","participants":[1]}`, `["A one to one chat can only have 2 participants"]`},
			{`{"type":"OneToOneChat","participants":[]}`, `["A one to one chat can only have 2 participants"]`},
			{`{"type":"OneToOneChat","participants":[3,4]}`, `["A one to one chat can only have 2 participants"]`},
			{`{"type":"OneToOneChat","participants":[99]}`, `{"participants":["Invalid pk \"99\" - object does not exist."]}`},
			{`{"type":"OneToOneChat","participants":["98"]}`, `{"participants":["Invalid pk \"98\" - object does not exist."]}`},
			{`{"type":"OneToOneChat","participants":[3,99,4]}`, `{"participants":["Invalid pk \"99\" - object does not exist."]}`},
			{`{"type":"OneToOneChat","extra_fields":{"participants":[97]}}`, `{"participants":["Invalid pk \"97\" - object does not exist."]}`},
			{`{"type":"OneToOneChat","participants":"3"}`, `{"participants":["Expected a list of items but got type \"str\"."]}`},
			{`{"type":"OneToOneChat","participants":["x"]}`, `{"participants":["A valid integer is required."]}`},
			{`{"type":"Room"}`, `["Invalid resource type"]`},
			{`{}`, `["Invalid resource type"]`},
			{`{"type":"GroupChat"}`, `{"name":["This field is required."]}`},
			{`{"type":"GroupChat","name":""}`, `{"name":["This field may not be blank."]}`},
			{`{"type":"GroupChat","name":7}`, `{"name":["Not a valid string."]}`},
			{`{"type":"Channel","name":"` + strings.Repeat("n", 65) + `"}`, `{"name":["Ensure this field has no more than 64 characters."]}`},
			{`{"type":"GroupChat","name":"g","extra_fields":{"avatar":"not a url"}}`, `{"avatar":["Enter a valid URL."]}`},
			{`{"type":"GroupChat","name":"g","extra_fields":{"max_participants":6}}`, `{"max_participants":["Ensure this value is less than or equal to 5."]}`},
			{`{"type":"GroupChat","name":"g","extra_fields":{"max_participants":0}}`, `{"max_participants":["Ensure this value is greater than or equal to 1."]}`},
			{`{"type":"Channel","name":"c","extra_fields":{"max_subscribers":8}}`, `{"max_subscribers":["Ensure this value is less than or equal to 7."]}`},
			{`{"type":"GroupChat","name":"g","extra_fields":{"max_participants":2},"participants":[2,3]}`, `["Maximum number of group participants exceeded"]`},
			{`{"type":"GroupChat","name":"g","extra_fields":{"group_locked":"yes"}}`, `{"group_locked":["Must be a valid boolean."]}`},
			{`{"type":"GroupChat","name":"g","extra_fields":{"property":[]}}`, `["property must be an object"]`},
			{`{"type":"GroupChat","name":"g","extra_fields":{"property":{"preferences":3}}}`, `["preferences must be an object"]`},
			{`{"type":"GroupChat","name":"g","extra_fields":5}`, `{"extra_fields":["Must be an object."]}`},
		} {
			c1.send(chat.EventRoomCreate, b.data)
			c1.expectError(4003, b.detail)
		}
		if rooms, _ := e.st.UserRoomIDs(bg, 1); len(rooms) != 1 {
			t.Fatalf("bad input created rooms: %v", rooms)
		}

		// Group: creator added as participant and admin, unknown ids dropped,
		// writable fields at the top level or in extra_fields (which wins).
		c1.send(chat.EventRoomCreate, map[string]any{"type": "GroupChat", "name": "top", "description": "d",
			"participants": []any{2, "3", 99, 2}, "group_locked": false,
			"extra_fields": map[string]any{"name": "Team", "max_participants": 4, "join_approval_required": true,
				"group_locked": true, "avatar": "https://x/a.png", "property": map[string]any{"preferences": map[string]any{"theme": "dark"}}}})
		for _, c := range []*client{c1, c2a, c2b, c3} {
			m := c.expect(chat.DispatchRoomCreate).obj(t)
			eq(t, keysOf(m), []string{"admins", "avatar", "created_at", "creator", "description", "group_locked", "id",
				"join_approval_required", "max_participants", "name", "participants", "property", "type", "updated_at"}, "group keys")
			eq(t, m["name"], "Team", "name from extra_fields")
			eq(t, m["description"], "d", "description")
			eq(t, usernames(t, m["participants"]), []string{"user1", "user2", "user3"}, "participants")
			eq(t, usernames(t, m["admins"]), []string{"user1"}, "admins")
			eq(t, path(t, m, "creator.id"), 1, "creator")
			eq(t, m["max_participants"], 4, "cap")
			eq(t, m["join_approval_required"], true, "join approval")
			eq(t, m["group_locked"], true, "locked")
			eq(t, m["avatar"], "https://x/a.png", "avatar")
			eq(t, m["property"], map[string]any{"preferences": map[string]any{"theme": "dark"}}, "preferences")
		}
		// Channel: subscribers, creator moderator, is_public, default cap 300.
		c1.send(chat.EventRoomCreate, map[string]any{"type": "Channel", "name": "news", "subscribers": []int{3}, "participants": []int{2},
			"is_public": true})
		for _, c := range []*client{c1, c3} {
			m := c.expect(chat.DispatchRoomCreate).obj(t)
			eq(t, keysOf(m), []string{"avatar", "created_at", "creator", "description", "id", "is_public", "max_subscribers",
				"moderators", "name", "property", "subscribers", "type", "updated_at"}, "channel keys")
			eq(t, usernames(t, m["subscribers"]), []string{"user1", "user3"}, "subscribers")
			eq(t, usernames(t, m["moderators"]), []string{"user1"}, "moderators")
			eq(t, m["is_public"], true, "public")
			eq(t, m["max_subscribers"], 300, "default cap")
			eq(t, m["description"], nil, "no description")
			eq(t, m["avatar"], nil, "no avatar")
		}
		for _, c := range []*client{c2a, c2b, c6} {
			c.quiet()
		}
	})
}

func TestListInfoMessages(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		e := newEnv(t, newStore, func(c *chat.Config) { c.MaxPageSize = 20 })
		e.users(4)
		empty := e.room(store.Channel, 2, 1)
		time.Sleep(2 * time.Millisecond)
		dm := e.room(store.OneToOne, 1, 2)
		group := e.room(store.Group, 1, 2)
		var ids []uuid.UUID
		for i := 0; i < 25; i++ {
			ids = append(ids, e.message(group, 2, fmt.Sprintf("m%d", i)))
		}
		e.message(dm, 1, "dm")
		last := e.message(dm, 2, "dm2")
		gone := e.message(dm, 2, "deleted")
		if _, err := e.st.DeleteMessages(bg, []uuid.UUID{gone}, false); err != nil {
			t.Fatal(err)
		}
		c1a, c1b, c3 := e.dial(1), e.dial(1), e.dial(3)

		c1a.send(chat.EventRoomList, nil)
		for _, c := range []*client{c1a, c1b} {
			l := c.expect(chat.DispatchRoomList).list(t)
			if len(l) != 3 {
				t.Fatalf("room list: %v", l)
			}
			eq(t, l[0]["id"], dm.String(), "latest activity first")
			eq(t, keysOf(l[0]), []string{"created_at", "id", "last_message", "peer", "type", "unread_count", "updated_at"}, "1:1 list keys")
			eq(t, path(t, l[0], "peer.username"), "user2", "peer")
			eq(t, path(t, l[0], "last_message.id"), last.String(), "last visible message")
			eq(t, l[0]["unread_count"], 1, "unread in dm")
			eq(t, l[1]["id"], group.String(), "group second")
			eq(t, keysOf(l[1]), []string{"avatar", "created_at", "creator", "description", "group_locked", "id", "join_approval_required",
				"last_message", "max_participants", "name", "type", "unread_count", "updated_at"}, "group list keys")
			eq(t, l[1]["unread_count"], 25, "unread in group")
			eq(t, l[2]["id"], empty.String(), "room without messages last")
			eq(t, l[2]["last_message"], nil, "null last message")
			eq(t, keysOf(l[2]), []string{"avatar", "created_at", "creator", "description", "id", "is_public", "last_message",
				"max_subscribers", "name", "type", "unread_count", "updated_at"}, "channel list keys")
		}
		c3.send(chat.EventRoomList, `{}`)
		if f := c3.expect(chat.DispatchRoomList); string(f.Data) != "[]" {
			t.Fatalf("empty list: %s", f.Raw)
		}

		c1a.send(chat.EventRoomInfo, map[string]any{"room_id": group.String()})
		for _, c := range []*client{c1a, c1b} {
			m := c.expect(chat.DispatchRoomInfo).obj(t)
			eq(t, m["id"], group.String(), "info")
			if _, ok := m["last_message"]; ok {
				t.Fatal("detail has last_message")
			}
		}
		c3.send(chat.EventRoomInfo, map[string]any{"room_id": group.String()})
		c3.expectError(4002, `"User is not authorized access this room"`)
		c3.send(chat.EventRoomMessages, map[string]any{"room_id": group.String()})
		c3.expectError(4002, `"User is not authorized access this room"`)
		for _, ev := range []string{chat.EventRoomInfo, chat.EventRoomMessages} {
			c3.send(ev, `{"room_id":3}`)
			c3.expectError(4004, "")
			c3.send(ev, `{"room_id":"x"}`)
			c3.expectError(4003, `["“x” is not a valid UUID."]`)
			c3.send(ev, `{"room_id":{}}`)
			c3.expectError(4003, `["Invalid room_id type"]`)
			c3.send(ev, nil)
			c3.expectError(4003, "")
		}

		// Everything, newest first, soft-deleted hidden.
		c1a.send(chat.EventRoomMessages, map[string]any{"room_id": dm.String()})
		c1b.expect(chat.DispatchRoomMessages)
		m := c1a.expect(chat.DispatchRoomMessages).obj(t)
		eq(t, keysOf(m), []string{"data"}, "unpaginated keys")
		eq(t, path(t, m, "data.room_id"), dm.String(), "room_id")
		msgs := path(t, m, "data.messages").([]any)
		if len(msgs) != 2 || path(t, msgs[0], "id") != last.String() {
			t.Fatalf("messages: %v", msgs)
		}
		page := func(p fmt.Stringer, paginate string) map[string]any {
			t.Helper()
			c1a.send(chat.EventRoomMessages, fmt.Sprintf(`{"room_id":"%s","paginate":%s}`, p, paginate))
			c1b.expect(chat.DispatchRoomMessages)
			return c1a.expect(chat.DispatchRoomMessages).obj(t)
		}
		m = page(group, `{"page":1,"size":10}`)
		eq(t, keysOf(m), []string{"data", "has_next", "has_previous", "next_page_number", "page", "prev_page_number", "size"}, "page keys")
		eq(t, []any{m["has_next"], m["has_previous"], m["next_page_number"], m["prev_page_number"], m["page"], m["size"]},
			[]any{true, false, 2, nil, 1, 10}, "page 1")
		eq(t, path(t, m, "data.messages.0.id"), ids[24].String(), "newest first")
		m = page(group, `{"page":"3","size":"10"}`)
		eq(t, []any{m["has_next"], m["has_previous"], m["next_page_number"], m["prev_page_number"], m["page"]},
			[]any{false, true, nil, 2, 3}, "page 3")
		eq(t, len(path(t, m, "data.messages").([]any)), 5, "last page size")
		m = page(group, `{"page":9,"size":10}`)
		eq(t, m["page"], 3, "overflow: the effective page is echoed")
		m = page(group, `{"page":-1,"size":10}`)
		eq(t, m["page"], 3, "negative page: last page")
		m = page(group, `{"page":1,"size":500}`)
		eq(t, m["size"], 20, "size capped")
		eq(t, len(path(t, m, "data.messages").([]any)), 20, "capped page")
		m = page(group, `{}`)
		eq(t, len(path(t, m, "data.messages").([]any)), 25, "empty paginate: everything")
		m = page(group, `"x"`)
		eq(t, len(path(t, m, "data.messages").([]any)), 25, "non-object paginate: everything")
		for _, b := range []struct{ paginate, detail string }{
			{`{"page":1}`, `["page and size required"]`},
			{`{"size":1}`, `["page and size required"]`},
			{`{"page":0,"size":5}`, `["page and size required"]`},
			{`{"page":"a","size":5}`, `["Invalid types"]`},
			{`{"page":1,"size":[1]}`, `["Invalid types"]`},
			{`{"page":1,"size":-5}`, `{"size":["Ensure this value is greater than or equal to 1."]}`},
		} {
			c1a.send(chat.EventRoomMessages, fmt.Sprintf(`{"room_id":"%s","paginate":%s}`, group, b.paginate))
			c1a.expectError(4003, b.detail)
		}

		// Catch-up by seq (docs/protocol.md#catch-up).
		c1a.send(chat.EventRoomMessages, map[string]any{"room_id": group.String(), "after_seq": 20, "limit": 3})
		c1b.expect(chat.DispatchRoomMessages)
		m = c1a.expect(chat.DispatchRoomMessages).obj(t)
		got := path(t, m, "data.messages").([]any)
		eq(t, []any{path(t, got[0], "seq"), path(t, got[1], "seq"), path(t, got[2], "seq"), m["has_more"]}, []any{21, 22, 23, true}, "after_seq")
		// The limit is capped at MaxPageSize, and is MaxPageSize when absent.
		for _, limit := range []any{500, nil} {
			c1a.send(chat.EventRoomMessages, map[string]any{"room_id": group.String(), "after_seq": 0, "limit": limit})
			c1b.expect(chat.DispatchRoomMessages)
			m = c1a.expect(chat.DispatchRoomMessages).obj(t)
			got = path(t, m, "data.messages").([]any)
			eq(t, []any{len(got), m["limit"], m["has_more"]}, []any{20, 20, true}, fmt.Sprintf("after_seq 0, limit %v", limit))
		}
		c1a.send(chat.EventRoomMessages, map[string]any{"room_id": group.String(), "before_seq": 3})
		c1b.expect(chat.DispatchRoomMessages)
		m = c1a.expect(chat.DispatchRoomMessages).obj(t)
		got = path(t, m, "data.messages").([]any)
		eq(t, []any{len(got), path(t, got[0], "seq"), m["has_more"]}, []any{2, 2, false}, "before_seq")
		for _, b := range []string{`"after_seq":"x"`, `"after_seq":-1`, `"after_seq":1,"before_seq":2`, `"after_seq":1,"limit":0`} {
			c1a.send(chat.EventRoomMessages, fmt.Sprintf(`{"room_id":"%s",%s}`, group, b))
			c1a.expectError(4003, "")
		}
		c1b.quiet()
	})
}

func TestJoinLeave(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		e := newEnv(t, newStore)
		e.users(4)
		public := e.roomWith(store.NewRoom{Type: store.Channel, CreatorID: 1, Name: "pub", IsPublic: true})
		private := e.room(store.Channel, 1)
		group := e.room(store.Group, 1, 2)
		dm := e.room(store.OneToOne, 1, 2)
		small := e.roomWith(store.NewRoom{Type: store.Channel, CreatorID: 1, Name: "small", IsPublic: true, MaxMembers: 1})
		c1, c2, c3a, c3b := e.dial(1), e.dial(2), e.dial(3), e.dial(3)

		c3a.send(chat.EventRoomJoin, map[string]any{"room_id": public.String()})
		for _, c := range []*client{c1, c3a, c3b} {
			m := c.expect(chat.DispatchRoomAddMembers).obj(t)
			eq(t, m["new_members"], []string{"user3"}, "new members")
			eq(t, m["added_by"], "self", "added_by")
			eq(t, usernames(t, path(t, m, "room.subscribers")), []string{"user1", "user3"}, "subscribers")
		}
		// Joining again: nothing changes, nothing is sent
		// (docs/protocol.md#diff-empty-room).
		c3b.send(chat.EventRoomJoin, map[string]any{"room_id": public.String()})
		c3b.quiet()
		c1.quiet()
		for _, b := range []struct {
			room   uuid.UUID
			detail string
		}{
			{private, `["Channel is private, ask a moderator to add you to the channel"]`},
			{group, `["Ask an admin to add you to the group"]`},
			{dm, `["You can only join a channel/group chat"]`},
			{small, `["Maximum number of channel subscribers exceeded"]`},
		} {
			c3a.send(chat.EventRoomJoin, map[string]any{"room_id": b.room.String()})
			c3a.expectError(4003, b.detail)
		}
		c3a.send(chat.EventRoomJoin, map[string]any{"room_id": uuid.NewString()})
		c3a.expectError(4004, "")

		// Leave: roomexit to the leaver's devices, roomremovemembers to the rest.
		c3a.send(chat.EventRoomLeave, map[string]any{"room_id": public.String()})
		for _, c := range []*client{c3a, c3b} {
			m := c.expect(chat.DispatchRoomExit).obj(t)
			eq(t, m["message"], "You left pub", "exit message")
			eq(t, usernames(t, path(t, m, "room.subscribers")), []string{"user1"}, "remaining")
		}
		m := c1.expect(chat.DispatchRoomRemoveMembers).obj(t)
		eq(t, m["removed_members"], []string{"user3"}, "removed")
		eq(t, m["removed_by"], "self", "removed_by")
		// The leaver's devices are out of the room's group.
		c1.send(chat.EventMessageSend, map[string]any{"room_id": public.String(), "content": "bye"})
		c1.expect(chat.DispatchMessage)
		c3a.quiet()
		c3b.quiet()

		c2.send(chat.EventRoomLeave, map[string]any{"room_id": dm.String()})
		c2.expectError(4003, `["You can only leave a channel/group chat"]`)
		c3a.send(chat.EventRoomLeave, map[string]any{"room_id": group.String()})
		c3a.expectError(4002, `"User is not authorized access this room"`)

		// The last member leaving deletes the room: roomdelete to the leaver only.
		c1.send(chat.EventRoomLeave, map[string]any{"room_id": private.String()})
		m = c1.expect(chat.DispatchRoomDelete).obj(t)
		eq(t, m, map[string]any{"room_id": private.String()}, "roomdelete")
		if _, err := e.st.Room(bg, private); err == nil {
			t.Fatal("empty room not deleted")
		}
		// The creator may leave a group; a member with explicit permissions
		// loses them.
		c1.send(chat.EventRoomLeave, map[string]any{"room_id": group.String()})
		c1.expect(chat.DispatchRoomExit)
		eq(t, c2.expect(chat.DispatchRoomRemoveMembers).obj(t)["removed_members"], []string{"user1"}, "creator left")
		c1.send(chat.EventMessageSend, map[string]any{"room_id": group.String(), "content": "x"})
		c1.expectError(4002, "")
		c2.quiet()
	})
}

// TestRoomTextFields: text a room field cannot hold (a NUL) is reported
// under the field that holds it, at creation and on update, and nothing
// changes.
func TestRoomTextFields(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		e := newEnv(t, newStore)
		e.users(1)
		c := e.dial(1)
		const bad = `["Invalid text: must be UTF-8 without NUL characters."]`
		for _, field := range []string{"name", "description"} {
			data := map[string]any{"type": "GroupChat", "name": "ok", "description": "ok"}
			data[field] = "a\u0000b"
			c.send(chat.EventRoomCreate, data)
			c.expectError(4003, `{"`+field+`":`+bad+`}`)
		}
		c.send(chat.EventRoomCreate, map[string]any{"type": "Channel", "name": "ok",
			"extra_fields": map[string]any{"description": "\u0000"}})
		c.expectError(4003, `{"description":`+bad+`}`)
		c.send(chat.EventRoomList, nil)
		if f := c.expect(chat.DispatchRoomList); f.Raw != `{"eventType":"roomlist.dispatch","data":[]}` {
			t.Fatalf("rooms created from bad input: %s", f.Raw)
		}

		room := e.room(store.Group, 1)
		for _, field := range []string{"name", "description"} {
			c.send(chat.EventRoomModify, map[string]any{"room_id": room.String(), "action": "update",
				"data": map[string]any{field: "x\u0000"}})
			c.expectError(4003, `{"`+field+`":`+bad+`}`)
		}
		if r, err := e.st.Room(bg, room); err != nil || r.Description != "" || r.Name != "room-GroupChat" {
			t.Fatalf("room changed by bad input: %+v %v", r, err)
		}
	})
}
