package chat_test

import (
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux/chat"
	"github.com/chatmux/chatmux/store"
)

// badMessageIDs are message_id values every message-id event refuses.
func badMessageIDs(other uuid.UUID) []struct {
	data   string
	code   int
	detail string
} {
	return []struct {
		data   string
		code   int
		detail string
	}{
		{`{}`, 4003, `{"message_id":["This field is required."]}`},
		{`{"message_id":true}`, 4003, `["Invalid message_id type"]`},
		{`{"message_id":{"a":1}}`, 4003, `["Invalid message_id type"]`},
		{`{"message_id":[true]}`, 4003, `["Invalid message_id type"]`},
		{`{"message_id":"zz"}`, 4003, `["“zz” is not a valid UUID."]`},
		{`{"message_id":42}`, 4004, `"Resource not found."`},
		{`{"message_id":"` + uuid.NewString() + `"}`, 4004, `"Resource not found."`},
		{`{"message_id":"` + other.String() + `"}`, 4002, `"User is not authorized to access this message"`},
	}
}

func TestAcknowledge(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		e := newEnv(t, newStore)
		e.users(4)
		group := e.room(store.Group, 1, 2, 3)
		other := e.room(store.OneToOne, 3, 4)
		m1 := e.message(group, 1, "from 1")
		m2 := e.message(group, 1, "again from 1")
		m3 := e.message(group, 3, "from 3")
		own := e.message(group, 2, "own")
		foreign := e.message(other, 4, "x")
		c1a, c1b, c2, c3 := e.dial(1), e.dial(1), e.dial(2), e.dial(3)

		c2.send(chat.EventMessageAcknowledged, map[string]any{"message_id": []string{m1.String(), m3.String(), m2.String(), m1.String(), own.String()}})
		for _, c := range []*client{c1a, c1b} {
			f := c.expect(chat.DispatchMessageDelivered)
			l := f.list(t)
			if len(l) != 2 || l[0]["id"] != m1.String() || l[1]["id"] != m2.String() {
				t.Fatalf("delivered to sender 1: %s", f.Raw)
			}
			eq(t, l[0]["delivered_to"], []string{"user2"}, "delivered_to")
		}
		f := c3.expect(chat.DispatchMessageDelivered)
		eq(t, len(f.list(t)), 1, "sender 3 gets its message")
		c2.quiet() // the acknowledging user gets nothing
		// Notifications of user 2 for those messages are gone.
		n, _ := e.st.PendingNotifications(bg, 2)
		for _, r := range n {
			for _, x := range r.Notifications {
				if x.Message.ID == m1 || x.Message.ID == m2 || x.Message.ID == m3 {
					t.Fatalf("notification left after acknowledge: %+v", x)
				}
			}
		}
		// Own message alone: nothing at all
		// (docs/protocol.md#diff-idempotent-receipts).
		c2.send(chat.EventMessageAcknowledged, map[string]any{"message_id": own.String()})
		c2.quiet()
		c2.send(chat.EventMessageAcknowledged, `{"message_id":[]}`)
		c2.expectError(4003, `{"message_id":["This list may not be empty."]}`)
		for _, b := range badMessageIDs(foreign) {
			c2.send(chat.EventMessageAcknowledged, b.data)
			c2.expectError(b.code, b.detail)
		}
		// A list with one inaccessible id changes nothing.
		c2.send(chat.EventMessageAcknowledged, map[string]any{"message_id": []string{m3.String(), foreign.String()}})
		c2.expectError(4002, "")
		for _, c := range []*client{c1a, c1b, c3} {
			c.quiet()
		}
	})
}

func TestRead(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		e := newEnv(t, newStore)
		e.users(4)
		dm := e.room(store.OneToOne, 1, 2)
		group := e.room(store.Group, 1, 2, 3)
		other := e.room(store.OneToOne, 3, 4)
		d1 := e.message(dm, 1, "d1")
		g1 := e.message(group, 1, "g1")
		g2 := e.message(group, 3, "g2")
		own := e.message(group, 2, "own")
		foreign := e.message(other, 4, "x")
		c1, c2a, c2b, c3 := e.dial(1), e.dial(2), e.dial(2), e.dial(3)

		// Single id: the Message object, to the room.
		c2a.send(chat.EventMessageRead, map[string]any{"message_id": d1.String()})
		for _, c := range []*client{c1, c2a, c2b} {
			f := c.expect(chat.DispatchReadReceipt)
			m := f.obj(t)
			eq(t, m["id"], d1.String(), "read message")
			rr := m["read_receipts"].([]any)
			if len(rr) != 1 || path(t, rr[0], "reader.username") != "user2" || !tsRE.MatchString(path(t, rr[0], "read_at").(string)) {
				t.Fatalf("read receipts: %s", f.Raw)
			}
		}
		// Again: idempotent, nothing sent
		// (docs/protocol.md#diff-idempotent-receipts).
		c2a.send(chat.EventMessageRead, map[string]any{"message_id": d1.String()})
		c2a.quiet()
		// A list across rooms: one array per room; own messages skipped.
		c2b.send(chat.EventMessageRead, map[string]any{"message_id": []string{g1.String(), d1.String(), own.String(), g2.String()}})
		for _, c := range []*client{c1, c2a, c2b, c3} {
			f := c.expect(chat.DispatchReadReceipt)
			l := f.list(t)
			if len(l) != 2 || l[0]["id"] != g1.String() || l[1]["id"] != g2.String() {
				t.Fatalf("group receipts: %s", f.Raw)
			}
		}
		// Own message alone: nothing.
		c2b.send(chat.EventMessageRead, map[string]any{"message_id": own.String()})
		c2b.quiet()
		for _, b := range badMessageIDs(foreign) {
			c2a.send(chat.EventMessageRead, b.data)
			c2a.expectError(b.code, b.detail)
		}
		// Soft-deleted messages are 4004.
		if _, err := e.st.DeleteMessages(bg, []uuid.UUID{g2}, false); err != nil {
			t.Fatal(err)
		}
		c2a.send(chat.EventMessageRead, map[string]any{"message_id": g2.String()})
		c2a.expectError(4004, `"Resource not found."`)
		for _, c := range []*client{c1, c2b, c3} {
			c.quiet()
		}
	})
}

func TestReact(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		e := newEnv(t, newStore)
		e.users(4)
		channel := e.room(store.Channel, 1, 2, 3)
		other := e.room(store.OneToOne, 3, 4)
		msg := e.message(channel, 1, "post")
		foreign := e.message(other, 4, "x")
		c1, c2, c3 := e.dial(1), e.dial(2), e.dial(3)
		all := []*client{c1, c2, c3}
		react := func(c *client, typ, content string) {
			t.Helper()
			c.send(chat.EventMessageReact, map[string]any{"type": typ, "message_id": msg.String(), "reaction_content": content})
		}
		// A subscriber without send rights may react.
		react(c2, "add", "👍")
		for _, c := range all {
			f := c.expect(chat.DispatchReaction)
			m := f.obj(t)
			eq(t, m["status"], "successful", "status")
			eq(t, m["type"], "add", "type")
			rs := path(t, m, "message.reactions").([]any)
			if len(rs) != 1 || path(t, rs[0], "reaction_content") != "👍" || path(t, rs[0], "user.id") != 2.0 {
				t.Fatalf("reactions: %s", f.Raw)
			}
		}
		// REACTION notification for every other member.
		for _, uid := range []int64{1, 3} {
			n, _ := e.st.PendingNotifications(bg, uid)
			found := false
			for _, r := range n {
				for _, x := range r.Notifications {
					found = found || x.Type == store.NotifyReaction
				}
			}
			if !found {
				t.Fatalf("user %d has no REACTION notification", uid)
			}
		}
		react(c2, "add", "👍")
		c2.expectError(4005, `"Database constraint violated."`)
		react(c2, "add", "🎉")
		for _, c := range all {
			rs := path(t, c.expect(chat.DispatchReaction).obj(t), "message.reactions").([]any)
			if len(rs) != 1 || path(t, rs[0], "reaction_content") != "🎉" {
				t.Fatalf("replaced reaction: %v", rs)
			}
		}
		react(c2, "remove", "")
		for _, c := range all {
			m := c.expect(chat.DispatchReaction).obj(t)
			eq(t, keysOf(m), []string{"action", "message", "status"}, "remove keys")
			eq(t, m["action"], "remove", "action")
			eq(t, m["status"], "successful", "status")
			eq(t, path(t, m, "message.reactions"), []any{}, "no reactions")
		}
		// The REACTION notification went with the reaction
		// (docs/protocol.md#diff-reaction-notifications).
		n, _ := e.st.PendingNotifications(bg, 1)
		for _, r := range n {
			for _, x := range r.Notifications {
				if x.Type == store.NotifyReaction {
					t.Fatalf("REACTION notification left: %+v", x)
				}
			}
		}
		react(c2, "remove", "")
		for _, c := range all {
			eq(t, c.expect(chat.DispatchReaction).obj(t)["status"], "failed", "second remove")
		}
		for _, b := range []struct {
			data   string
			code   int
			detail string
		}{
			{fmt.Sprintf(`{"type":"like","message_id":"%s"}`, msg), 4003, `["invalid reaction type"]`},
			{fmt.Sprintf(`{"message_id":"%s","reaction_content":"x"}`, msg), 4003, `["invalid reaction type"]`},
			{fmt.Sprintf(`{"type":"add","message_id":"%s"}`, msg), 4003, `{"reaction_content":["This field is required."]}`},
			{fmt.Sprintf(`{"type":"add","message_id":"%s","reaction_content":""}`, msg), 4003, `{"reaction_content":["This field may not be blank."]}`},
			{fmt.Sprintf(`{"type":"add","message_id":"%s","reaction_content":"%0129d"}`, msg, 0), 4003, `{"reaction_content":["Ensure this field has no more than 128 characters."]}`},
			{fmt.Sprintf(`{"type":"add","message_id":["%s"],"reaction_content":"x"}`, msg), 4003, `["Invalid message_id type"]`},
			{fmt.Sprintf(`{"type":"add","message_id":"%s","reaction_content":"x"}`, foreign), 4002, `"User is not authorized to access this message"`},
			{`{"type":"add","message_id":"zz","reaction_content":"x"}`, 4003, `["“zz” is not a valid UUID."]`},
			{`{"type":"add","message_id":3,"reaction_content":"x"}`, 4004, ""},
			{`{"type":"add","reaction_content":"x"}`, 4003, `{"message_id":["This field is required."]}`},
		} {
			c2.send(chat.EventMessageReact, b.data)
			c2.expectError(b.code, b.detail)
		}
		c1.quiet()
		c3.quiet()
	})
}

func TestModifyMessages(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		for _, soft := range []bool{false, true} {
			t.Run(fmt.Sprintf("soft=%v", soft), func(t *testing.T) {
				testModifyMessages(t, newStore, soft)
			})
		}
	})
}

func testModifyMessages(t *testing.T, newStore factory, soft bool) {
	e := newEnv(t, newStore, func(c *chat.Config) { c.SoftDelete = soft; c.MaxMessageLength = 10 })
	e.users(3)
	group := e.room(store.Group, 1, 2, 3)
	dm := e.room(store.OneToOne, 1, 2)
	m1 := e.message(group, 1, "one")
	m2 := e.message(group, 1, "two")
	m3 := e.message(group, 1, "three")
	theirs := e.message(group, 2, "theirs")
	d1 := e.message(dm, 1, "dm")
	c1, c2, c3 := e.dial(1), e.dial(2), e.dial(3)
	all := []*client{c1, c2, c3}

	c1.send(chat.EventMessageModify, map[string]any{"action": "update", "message_id": m1.String(),
		"extra_fields": map[string]any{"content": "<i>new</i>", "sender_id": 3, "room_id": dm.String(), "is_deleted": true,
			"sender": 3, "room": dm.String(), "created_at": "2000-01-01T00:00:00Z", "parent_message_id": m2.String()}})
	for _, c := range all {
		f := c.expect(chat.DispatchMessageModification)
		m := f.obj(t)
		eq(t, m["status"], "successful", "status")
		eq(t, m["action"], "update", "action")
		eq(t, path(t, m, "message.content"), "<i>new</i>", "content")
		eq(t, path(t, m, "message.is_edited"), true, "is_edited")
		eq(t, path(t, m, "message.is_deleted"), false, "is_deleted ignored")
		eq(t, path(t, m, "message.sender.id"), 1, "sender ignored")
		eq(t, path(t, m, "message.room.id"), group.String(), "room ignored")
		eq(t, path(t, m, "message.parent_message"), nil, "parent ignored")
	}
	// Error cases, in the package's order of checks.
	for _, b := range []struct {
		c      *client
		data   any
		code   int
		detail string
	}{
		{c1, map[string]any{"action": "update", "message_id": []string{m1.String(), m2.String()}, "extra_fields": map[string]any{"content": "x"}}, 4003, `["You can only update one message at a time"]`},
		{c1, map[string]any{"action": "update", "message_id": m1.String()}, 4003, `["'extra_fields' field should be provided for update action"]`},
		{c1, map[string]any{"action": "update", "message_id": m1.String(), "extra_fields": "x"}, 4003, `["'extra_fields' field should be provided for update action"]`},
		{c1, map[string]any{"action": "update", "message_id": m1.String(), "extra_fields": nil}, 4003, `["'extra_fields' field should be provided for update action"]`},
		{c1, map[string]any{"action": "update", "message_id": m1.String(), "extra_fields": map[string]any{}}, 4003, `["'extra_fields' field should be provided for update action"]`},
		{c1, map[string]any{"action": "update", "message_id": m1.String(), "extra_fields": map[string]any{"priority": 1}}, 4003, `["Content should be provided for update action"]`},
		{c1, map[string]any{"action": "update", "message_id": m1.String(), "extra_fields": map[string]any{"content": " "}}, 4003, `["Content should be provided for update action"]`},
		{c1, map[string]any{"action": "update", "message_id": m1.String(), "extra_fields": map[string]any{"content": "01234567890"}}, 4003, `{"content":["Ensure this field has no more than 10 characters."]}`},
		{c1, map[string]any{"action": "archive", "message_id": m1.String()}, 4003, `["Invalid action type"]`},
		{c1, map[string]any{"message_id": m1.String()}, 4003, `["Action must be provided"]`},
		{c1, map[string]any{"action": "delete", "message_id": []string{}}, 4003, `["Atleast one message_id is required for modification"]`},
		{c1, map[string]any{"action": "delete", "message_id": []string{m1.String(), d1.String()}}, 4003, `["All messages marked for modification must come from the same room"]`},
		{c1, map[string]any{"action": "delete", "message_id": []string{m1.String(), theirs.String()}}, 4002, `"User is not authorized to modify this message"`},
		{c2, map[string]any{"action": "delete", "message_id": m1.String()}, 4002, `"User is not authorized to modify this message"`},
		{c1, map[string]any{"action": "delete", "message_id": uuid.NewString()}, 4004, `"Resource not found."`},
		{c1, map[string]any{"action": "delete", "message_id": 5}, 4004, `"Resource not found."`},
		{c1, map[string]any{"action": "delete", "message_id": "zz"}, 4003, `["“zz” is not a valid UUID."]`},
		{c1, map[string]any{"action": "delete", "message_id": true}, 4003, `["Invalid message_id type"]`},
		{c1, map[string]any{"action": "delete"}, 4003, `{"message_id":["This field is required."]}`},
	} {
		b.c.send(chat.EventMessageModify, b.data)
		b.c.expectError(b.code, b.detail)
	}
	// Delete two, echo message_ids as sent; notifications go with them.
	c1.send(chat.EventMessageModify, `{"action":"delete","message_id":["`+m2.String()+`","`+m3.String()+`"]}`)
	for _, c := range all {
		m := c.expect(chat.DispatchMessageModification).obj(t)
		eq(t, m, map[string]any{"status": "successful", "action": "delete", "message_ids": []string{m2.String(), m3.String()}}, "delete")
	}
	c1.send(chat.EventMessageModify, map[string]any{"action": "delete", "message_id": m1.String()})
	for _, c := range all {
		eq(t, c.expect(chat.DispatchMessageModification).obj(t)["message_ids"], []string{m1.String()}, "single id wrapped")
	}
	n, _ := e.st.PendingNotifications(bg, 3)
	for _, r := range n {
		for _, x := range r.Notifications {
			if x.Message.ID == m1 || x.Message.ID == m2 || x.Message.ID == m3 {
				t.Fatalf("notification of a deleted message: %+v", x)
			}
		}
	}
	got, _ := e.st.Messages(bg, []uuid.UUID{m1, m2, m3})
	if soft && (len(got) != 3 || !got[0].IsDeleted) {
		t.Fatalf("soft delete: %+v", got)
	}
	if !soft && len(got) != 0 {
		t.Fatalf("hard delete left %d messages", len(got))
	}
	// Deleted messages are 4004 for every message-id event.
	for _, ev := range []string{chat.EventMessageModify, chat.EventMessageRead, chat.EventMessageAcknowledged, chat.EventMessageReact} {
		c1.send(ev, map[string]any{"action": "delete", "type": "add", "reaction_content": "x", "message_id": m1.String()})
		c1.expectError(4004, "")
	}
	// A member who left cannot modify their messages.
	if _, err := e.st.RemoveMembers(bg, store.RemoveMembers{RoomID: group, ActorID: 2, UserIDs: []int64{2}}); err != nil {
		t.Fatal(err)
	}
	c2.send(chat.EventMessageModify, map[string]any{"action": "delete", "message_id": theirs.String()})
	c2.expectError(4002, `"User is not authorized to access this message"`)
	for _, c := range all {
		c.quiet()
	}
}
