package chat_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux/chat"
	"github.com/chatmux/chatmux/store"
)

var tsRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)

func countMessages(t *testing.T, e *env, room uuid.UUID) int {
	t.Helper()
	p, err := e.st.MessagesPage(bg, room, 1, 0)
	if err != nil {
		t.Fatalf("MessagesPage: %v", err)
	}
	return p.Total
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestSendMessage(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		e := newEnv(t, newStore, func(c *chat.Config) {
			c.MaxMessageLength = 30
			c.ExtraMessageFields = []string{"priority"}
		})
		e.users(4)
		dm := e.room(store.OneToOne, 1, 2)
		c1, c2a, c2b, c3 := e.dial(1), e.dial(2), e.dial(2), e.dial(3)

		c1.send(chat.EventMessageSend, map[string]any{"room_id": dm.String(), "content": " <b>hi</b><script>x</script> ",
			"client_msg_id": "abc", "extra_fields": map[string]any{"priority": 3}})
		f := c1.expect(chat.DispatchMessage)
		for _, c := range []*client{c2a, c2b} {
			if g := c.expect(chat.DispatchMessage); g.Raw != f.Raw {
				t.Fatalf("devices got different bytes:\n%s\n%s", f.Raw, g.Raw)
			}
		}
		m := f.obj(t)
		eq(t, keysOf(m), []string{"attachments", "client_msg_id", "content", "created_at", "delivered_to", "forwarded_from",
			"id", "is_deleted", "is_edited", "is_forwarded", "parent_message", "priority", "reactions", "read_receipts",
			"room", "sender", "seq", "updated_at"}, "message keys")
		eq(t, m["content"], "<b>hi</b>x", "sanitised content")
		if !strings.Contains(f.Raw, `"content":"<b>hi</b>x"`) {
			t.Fatalf("content HTML-escaped on the wire: %s", f.Raw)
		}
		eq(t, m["room"], map[string]any{"id": dm.String()}, "room")
		eq(t, m["sender"], map[string]any{"id": 1, "username": "user1", "email": "user1@example.com",
			"first_name": "Fuser1", "last_name": "Luser1"}, "sender")
		eq(t, m["seq"], 1, "seq")
		eq(t, m["client_msg_id"], "abc", "client_msg_id echo")
		eq(t, m["priority"], 3, "host extra field")
		eq(t, m["delivered_to"], []any{}, "delivered_to")
		eq(t, m["parent_message"], nil, "parent")
		if !tsRE.MatchString(m["created_at"].(string)) || !tsRE.MatchString(m["updated_at"].(string)) {
			t.Fatalf("timestamps: %s", f.Raw)
		}

		// Idempotent retry: nothing stored, the original to this socket only.
		c1.send(chat.EventMessageSend, map[string]any{"room_id": dm.String(), "content": "other", "client_msg_id": "abc"})
		g := c1.expect(chat.DispatchMessage)
		eq(t, g.obj(t)["id"], m["id"], "retry answers the original")
		c2a.quiet()
		if n := countMessages(t, e, dm); n != 1 {
			t.Fatalf("retry stored a message: %d", n)
		}
		// seq goes on.
		c2b.send(chat.EventMessageSend, map[string]any{"room_id": dm.String(), "content": "yo"})
		eq(t, c2b.expect(chat.DispatchMessage).obj(t)["seq"], 2, "seq")
		c1.expect(chat.DispatchMessage)
		c2a.expect(chat.DispatchMessage)

		// An edit may change the host's fields too.
		c1.send(chat.EventMessageModify, map[string]any{"action": "update", "message_id": m["id"],
			"extra_fields": map[string]any{"content": "edited", "priority": 5, "other": 1}})
		for _, c := range []*client{c1, c2a, c2b} {
			mm := c.expect(chat.DispatchMessageModification).obj(t)
			eq(t, []any{path(t, mm, "message.content"), path(t, mm, "message.priority"), path(t, mm, "message.client_msg_id")},
				[]any{"edited", 5, "abc"}, "edited host field")
		}

		// Notifications: NEW_MESSAGE for the other member only.
		n, err := e.st.PendingNotifications(bg, 2)
		if err != nil || len(n) != 1 || len(n[0].Notifications) != 1 || n[0].Notifications[0].Type != store.NotifyNewMessage {
			t.Fatalf("notifications of user 2: %+v %v", n, err)
		}

		bad := []struct {
			data   string
			code   int
			detail string
		}{
			{`{"room_id":"` + dm.String() + `"}`, 4003, `{"content":["This field is required."]}`},
			{`{"room_id":"` + dm.String() + `","content":"   "}`, 4003, `{"content":["This field may not be blank."]}`},
			{`{"room_id":"` + dm.String() + `","content":5}`, 4003, `{"content":["Not a valid string."]}`},
			{`{"room_id":"` + dm.String() + `","content":"` + strings.Repeat("é", 31) + `"}`, 4003, `{"content":["Ensure this field has no more than 30 characters."]}`},
			{`{"room_id":"` + dm.String() + `","content":"x","extra_fields":{"sender_id":3}}`, 4003, `{"extra_fields":["Unknown field 'sender_id'."]}`},
			{`{"room_id":"` + dm.String() + `","content":"x","extra_fields":{"room_id":"` + uuid.NewString() + `"}}`, 4003, ""},
			{`{"room_id":"` + dm.String() + `","content":"x","extra_fields":{"is_deleted":true}}`, 4003, ""},
			{`{"room_id":"` + dm.String() + `","content":"x","extra_fields":[1]}`, 4003, `{"extra_fields":["Must be an object."]}`},
			{`{"room_id":"` + dm.String() + `","content":"x","client_msg_id":"` + strings.Repeat("a", 65) + `"}`, 4003, `{"client_msg_id":["Ensure this field has no more than 64 characters."]}`},
			{`{"room_id":"` + dm.String() + `","content":"x","client_msg_id":7}`, 4003, `{"client_msg_id":["Not a valid string."]}`},
			{`{"content":"x"}`, 4003, `["Invalid room_id type"]`},
			{`{"room_id":null,"content":"x"}`, 4003, `["Invalid room_id type"]`},
			{`{"room_id":[1],"content":"x"}`, 4003, `["Invalid room_id type"]`},
			{`{"room_id":true,"content":"x"}`, 4003, `["Invalid room_id type"]`},
			{`{"room_id":1.5,"content":"x"}`, 4003, `["Invalid room_id type"]`},
			{`{"room_id":"abc","content":"x"}`, 4003, `["“abc” is not a valid UUID."]`},
			{`{"room_id":12,"content":"x"}`, 4004, `"Resource not found."`},
			{`{"room_id":"` + uuid.NewString() + `","content":"x"}`, 4004, `"Resource not found."`},
		}
		for _, b := range bad {
			c1.send(chat.EventMessageSend, b.data)
			c1.expectError(b.code, b.detail)
		}
		c1.send(chat.EventMessageSend, nil)
		c1.expectError(4003, `{"data":["This field is required."]}`)
		// A non-member: 4002 before any content check.
		c3.send(chat.EventMessageSend, `{"room_id":"`+dm.String()+`"}`)
		c3.expectError(4002, `"User is not authorized to send message to this room"`)
		if n := countMessages(t, e, dm); n != 2 {
			t.Fatalf("bad input stored messages: %d", n)
		}
		c2a.quiet()
		c2b.quiet()
	})
}

func TestSendPermissions(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		e := newEnv(t, newStore)
		e.users(4)
		group := e.room(store.Group, 1, 2, 3)
		locked := e.roomWith(store.NewRoom{Type: store.Group, CreatorID: 1, Name: "locked", GroupLocked: true, Members: []int64{2, 3}})
		if _, err := e.st.SetRole(bg, locked, []int64{2}, true); err != nil {
			t.Fatal(err)
		}
		channel := e.room(store.Channel, 1, 2, 3)
		c1, c2, c3, c4 := e.dial(1), e.dial(2), e.dial(3), e.dial(4)
		all := []*client{c1, c2, c3}

		send := func(c *client, room uuid.UUID) {
			t.Helper()
			c.send(chat.EventMessageSend, map[string]any{"room_id": room.String(), "content": "hello"})
		}
		deny := func(c *client, room uuid.UUID) {
			t.Helper()
			send(c, room)
			c.expectError(4002, `"User is not authorized to send message to this room"`)
			c.send(chat.EventMessageTyping, map[string]any{"room_id": room.String()})
			c.expectError(4002, `"User is not authorized to send message to this room"`)
		}
		allow := func(c *client, room uuid.UUID) {
			t.Helper()
			send(c, room)
			for _, o := range all {
				o.expect(chat.DispatchMessage)
			}
		}
		// Group: members send, non-members do not.
		allow(c3, group)
		deny(c4, group)
		// Locked group: creator and admins only.
		allow(c1, locked)
		allow(c2, locked)
		deny(c3, locked)
		// Channel: creator, moderators, can_send_messages.
		allow(c1, channel)
		deny(c2, channel)
		deny(c4, channel)
		if _, err := e.st.SetPermissions(bg, channel, []int64{2}, []store.Permission{store.PermSendMessages}, true); err != nil {
			t.Fatal(err)
		}
		allow(c2, channel)
		if _, err := e.st.SetRole(bg, channel, []int64{3}, true); err != nil {
			t.Fatal(err)
		}
		allow(c3, channel)
		// Typing carries room_id and user_id, goes to the typer too.
		c3.send(chat.EventMessageTyping, map[string]any{"room_id": group.String()})
		for _, c := range all {
			f := c.expect(chat.DispatchTyping)
			eq(t, f.obj(t), map[string]any{"username": "user3", "room_id": group.String(), "user_id": 3}, "typing")
		}
		c3.send(chat.EventMessageTyping, `{"room_id":"nope"}`)
		c3.expectError(4003, `["“nope” is not a valid UUID."]`)
		c3.send(chat.EventMessageTyping, `{"room_id":7}`)
		c3.expectError(4004, "")
		c3.send(chat.EventMessageTyping, `{}`)
		c3.expectError(4003, `["Invalid room_id type"]`)
		for _, c := range append(all, c4) {
			c.quiet()
		}
	})
}

func TestReplyForwardMedia(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		e := newEnv(t, newStore)
		e.users(3)
		dm := e.room(store.OneToOne, 1, 2)
		other := e.room(store.OneToOne, 2, 3)
		orig := e.message(dm, 2, "original")
		foreign := e.message(other, 3, "secret")
		c1, c2 := e.dial(1), e.dial(2)
		both := func() frame {
			t.Helper()
			f := c1.expect(chat.DispatchMessage)
			c2.expect(chat.DispatchMessage)
			return f
		}
		send := func(extra string) {
			t.Helper()
			c1.send(chat.EventMessageSend, fmt.Sprintf(`{"room_id":"%s","content":"re","extra_fields":%s}`, dm, extra))
		}
		send(fmt.Sprintf(`{"parent_message_id":"%s"}`, orig))
		m := both().obj(t)
		eq(t, path(t, m, "parent_message.content"), "original", "nested parent")
		eq(t, path(t, m, "parent_message.parent_message"), nil, "parent's parent")
		n, _ := e.st.PendingNotifications(bg, 2)
		var types []string
		for _, r := range n {
			for _, x := range r.Notifications {
				types = append(types, string(x.Type))
			}
		}
		eq(t, types, []string{"REPLY", "NEW_MESSAGE"}, "notification types of user 2")

		send(fmt.Sprintf(`{"forwarded_from_id":"%s"}`, orig))
		m = both().obj(t)
		eq(t, m["is_forwarded"], true, "is_forwarded")
		eq(t, path(t, m, "forwarded_from.id"), orig.String(), "nested forward")

		before := countMessages(t, e, dm)
		send(fmt.Sprintf(`{"forwarded_from_id":"%s"}`, foreign))
		c1.expectError(4002, `"User is not authorized to access this message"`)
		send(fmt.Sprintf(`{"parent_message_id":"%s"}`, foreign))
		c1.expectError(4002, `"User is not authorized to access this message"`)
		missing := uuid.NewString()
		send(fmt.Sprintf(`{"parent_message_id":"%s"}`, missing))
		c1.expectError(4003, fmt.Sprintf(`{"parent_message_id":["Invalid pk \"%s\" - object does not exist."]}`, missing))
		send(`{"forwarded_from_id":"zz"}`)
		c1.expectError(4003, `{"forwarded_from_id":["“zz” is not a valid UUID."]}`)
		send(`{"forwarded_from_id":5}`)
		c1.expectError(4003, `{"forwarded_from_id":["Incorrect type. Expected pk value, received int."]}`)
		send(fmt.Sprintf(`{"parent_message_id":"%s","forwarded_from_id":"%s"}`, orig, orig))
		c1.expectError(4005, `"Database constraint violated."`)

		// Media: atomic, validated, the text kept.
		send(`{"media":[{"media_url":"https://x/a.png","media_type":"image","mime_type":"image/png","file_size":10,"caption":"cap","metadata":{"w":1}},{"media_url":"https://x/b","media_type":"file"}]}`)
		m = both().obj(t)
		eq(t, m["content"], "re", "content kept with media")
		atts := m["attachments"].([]any)
		if len(atts) != 2 {
			t.Fatalf("attachments: %v", atts)
		}
		a0 := atts[0].(map[string]any)
		eq(t, keysOf(a0), []string{"caption", "file_size", "id", "media_type", "media_url", "metadata", "mime_type"}, "attachment keys")
		eq(t, a0["caption"], "cap", "caption")
		eq(t, a0["metadata"], map[string]any{"w": 1}, "metadata")
		a1 := atts[1].(map[string]any)
		eq(t, a1["mime_type"], "image/jpeg", "default mime")
		eq(t, a1["caption"], nil, "no caption")
		c1.send(chat.EventMessageSend, fmt.Sprintf(`{"room_id":"%s","extra_fields":{"media":[{"media_url":"HTTP://x/u","media_type":"audio"}]}}`, dm))
		eq(t, both().obj(t)["content"], "", "media without text")
		after := countMessages(t, e, dm)

		for _, tc := range []struct{ media, detail string }{
			{`{"media":[{"media_url":"https://x/u","media_type":"hologram"}]}`, `{"media_type":["\"hologram\" is not a valid choice."]}`},
			{`{"media":[{"media_url":"https://x/u","media_type":"image","mime_type":"image/tiff"}]}`, ""},
			{`{"media":[{"media_type":"image"}]}`, `{"media_url":["This field is required."]}`},
			{`{"media":[{"media_url":"https://x/u","media_type":"image","file_size":-1}]}`, ""},
			{`{"media":[{"media_url":"https://x/u","media_type":"image","file_size":"big"}]}`, ""},
			{`{"media":[{"media_url":"https://x/u","media_type":"image","metadata":[1]}]}`, ""},
			{`{"media":{"media_url":"https://x/u"}}`, ""},
			{`{"media":["x"]}`, ""},
			{`{"media":[{"media_url":"https://x/ok","media_type":"image"},{"media_url":"https://x/u","media_type":"bad"}]}`, ""},
			// media_url: an absolute http(s) URL with a host, nothing else.
			{`{"media":[{"media_url":"javascript:alert(1)","media_type":"image"}]}`, `{"media_url":["Enter a valid URL."]}`},
			{`{"media":[{"media_url":"JavaScript://x/%0aalert(1)","media_type":"image"}]}`, `{"media_url":["Enter a valid URL."]}`},
			{`{"media":[{"media_url":"data:image/png;base64,AAAA","media_type":"image"}]}`, `{"media_url":["Enter a valid URL."]}`},
			{`{"media":[{"media_url":"/files/a.png","media_type":"image"}]}`, `{"media_url":["Enter a valid URL."]}`},
			{`{"media":[{"media_url":"//cdn.example.com/a.png","media_type":"image"}]}`, `{"media_url":["Enter a valid URL."]}`},
			{`{"media":[{"media_url":"ftp://cdn.example.com/a.png","media_type":"image"}]}`, `{"media_url":["Enter a valid URL."]}`},
			{`{"media":[{"media_url":"https://","media_type":"image"}]}`, `{"media_url":["Enter a valid URL."]}`},
			{`{"media":[{"media_url":"https:cdn.example.com","media_type":"image"}]}`, `{"media_url":["Enter a valid URL."]}`},
			{`{"media":[{"media_url":"https://cdn.exa mple.com/a.png","media_type":"image"}]}`, `{"media_url":["Enter a valid URL."]}`},
			{`{"media":[{"media_url":"https://x/a\u0000","media_type":"image"}]}`, `{"media_url":["Enter a valid URL."]}`},
			{`{"media":[{"media_url":"u","media_type":"image"}]}`, `{"media_url":["Enter a valid URL."]}`},
		} {
			send(tc.media)
			c1.expectError(4003, tc.detail)
		}
		if got := countMessages(t, e, dm); got != after || after != before+2 {
			t.Fatalf("invalid media stored messages: %d -> %d -> %d", before, after, got)
		}
		c2.quiet()
	})
}

var _ = json.Marshal

// TestSendDispatchMatchesStore checks that the Message object broadcast
// for a new message (encoded without reading it back) is the one the store
// gives for it, with media, host extra fields and client_msg_id.
func TestSendDispatchMatchesStore(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		e := newEnv(t, newStore, func(c *chat.Config) { c.ExtraMessageFields = []string{"priority"} })
		e.users(2)
		g := e.room(store.Group, 1, 2)
		c1 := e.dial(1)
		for i, data := range []map[string]any{
			{"room_id": g.String(), "content": "plain"},
			{"room_id": g.String(), "content": "with <i>all</i>", "client_msg_id": "m-1",
				"extra_fields": map[string]any{"priority": 2, "media": []any{
					map[string]any{"media_url": "https://x/a.png", "media_type": "image", "mime_type": "image/png",
						"file_size": 12, "caption": "a", "metadata": map[string]any{"w": 3}},
					map[string]any{"media_url": "https://x/b.pdf", "media_type": "file", "mime_type": "application/pdf"},
				}}},
		} {
			c1.send(chat.EventMessageSend, data)
			f := c1.expect(chat.DispatchMessage)
			id := uuid.MustParse(f.obj(t)["id"].(string))
			stored, err := e.svc.MessageJSON(bg, id)
			if err != nil || len(stored) != 1 {
				t.Fatalf("MessageJSON: %v", err)
			}
			if !jsonEqual(string(stored[0]), f.Raw[strings.Index(f.Raw, `"data":`)+7:len(f.Raw)-1]) {
				t.Fatalf("send %d: dispatched\n%s\nstore gives\n%s", i, mustJSON(t, f.obj(t)), stored[0])
			}
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
