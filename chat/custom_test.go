package chat_test

import (
	"encoding/json"
	"testing"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/chat"
	"github.com/chatmux/chatmux/store"
)

// TestCustomEvents is the custom-consumer story: a trimmed and extended
// event map, custom events behind the reusable permission middleware, and
// the helpers they need.
func TestCustomEvents(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		e := newEnvWith(t, newStore, func(svc *chat.Service, r chatmux.Router) {
			events := svc.Events()
			if len(events) != 21 {
				t.Errorf("default map has %d entries, want 16 events + user.search + presence.query + 3 reserved", len(events))
			}
			delete(events, chat.EventRoomJoin) // trimmed
			chat.RegisterEvents(r, events)
			r.With(svc.RequireRoomAdmin("room_id")).HandleFunc("message.pin", func(c *chatmux.Context) error {
				var in struct {
					MessageID uuid.UUID `json:"message_id"`
				}
				if err := c.Bind(&in); err != nil {
					return err
				}
				roomID, m, ok := chat.RoomFrom(c)
				if !ok || !m.IsMember {
					return chatmux.Internal(nil)
				}
				msgs, err := svc.MessageJSON(c.Context(), in.MessageID)
				if err != nil {
					return err
				}
				if len(msgs) != 1 {
					return chatmux.NotFound()
				}
				return c.Broadcast(chat.RoomGroup(roomID), "message.pinned", map[string]any{"message": msgs[0]})
			})
			r.With(svc.RequireRoomMember("room")).HandleFunc("message.flag", func(c *chatmux.Context) error {
				roomID, _, _ := chat.RoomFrom(c)
				admins, err := svc.RoomAdmins(c.Context(), roomID)
				if err != nil {
					return err
				}
				detail, err := svc.RoomDetailJSON(c.Context(), roomID)
				if err != nil {
					return err
				}
				for _, id := range admins {
					if err := c.SendUser(id, "moderation.alert", map[string]any{"room": detail}); err != nil {
						return err
					}
				}
				return c.Reply(map[string]string{"status": "flagged"})
			})
		})
		e.users(3)
		group := e.room(store.Group, 1, 2, 3)
		if _, err := e.st.SetRole(bg, group, []int64{2}, true); err != nil {
			t.Fatal(err)
		}
		msg := e.message(group, 3, "pin me")
		c1, c2, c3 := e.dial(1), e.dial(2), e.dial(3)

		c2.send("message.pin", map[string]any{"room_id": group.String(), "message_id": msg.String()})
		for _, c := range []*client{c1, c2, c3} {
			f := c.expect("message.pinned")
			eq(t, path(t, f.obj(t), "message.id"), msg.String(), "pinned message")
		}
		c3.send("message.pin", map[string]any{"room_id": group.String(), "message_id": msg.String()})
		c3.expectError(4002, `"User is not an admin of this room"`)
		c3.send("message.pin", map[string]any{"room_id": "x"})
		c3.expectError(4003, `["“x” is not a valid UUID."]`)
		c3.send("message.pin", map[string]any{"room_id": uuid.NewString()})
		c3.expectError(4004, "")

		c3.send("message.flag", map[string]any{"room": group.String()})
		for _, c := range []*client{c1, c2} {
			f := c.expect("moderation.alert")
			eq(t, path(t, f.obj(t), "room.id"), group.String(), "alert")
		}
		if f := c3.next(); f.Raw != `{"status":"flagged"}` {
			t.Fatalf("flag reply: %s", f.Raw)
		}
		// The trimmed event is unknown now.
		c3.send(chat.EventRoomJoin, map[string]any{"room_id": group.String()})
		if f := c3.next(); f.Raw != `{"error":"invalid event type"}` {
			t.Fatalf("trimmed event: %s", f.Raw)
		}
		var admins []int64
		admins, err := e.svc.RoomAdmins(bg, group)
		if err != nil || len(admins) != 2 || admins[0] != 1 || admins[1] != 2 {
			t.Fatalf("RoomAdmins: %v %v", admins, err)
		}
		c1.quiet()
		c2.quiet()
	})
}

func TestParseIDs(t *testing.T) {
	for _, v := range []struct {
		in   string
		id   int64
		ok   bool
		list []int64
	}{
		{`5`, 5, true, nil}, {`"5"`, 5, true, nil}, {`" 7 "`, 7, true, nil}, {`5.0`, 5, true, nil},
		{`5.5`, 0, false, nil}, {`"x"`, 0, false, nil}, {`true`, 0, false, nil}, {`null`, 0, false, nil}, {`[1]`, 0, false, nil},
	} {
		id, ok := chat.ParseUserID(json.RawMessage(v.in))
		if id != v.id || ok != v.ok {
			t.Errorf("ParseUserID(%s) = %d, %v", v.in, id, ok)
		}
	}
	ids, ok := chat.ParseUserIDs(json.RawMessage(`[1,"2",1,"1"]`))
	if !ok || len(ids) != 2 {
		t.Errorf("ParseUserIDs dedup: %v %v", ids, ok)
	}
	if _, ok := chat.ParseUserIDs(json.RawMessage(`[1,{}]`)); ok {
		t.Error("ParseUserIDs accepted an object")
	}
	u := uuid.New()
	for _, v := range []struct {
		in   string
		code int
	}{
		{`"` + u.String() + `"`, 0}, {`"` + u.String()[:8] + `"`, 4003}, {`12`, 4004}, {`-3`, 4004}, {`1.5`, 4003},
		{`{}`, 4003}, {`null`, 4003}, {``, 4003}, {`"{` + u.String() + `}"`, 0},
	} {
		id, err := chat.ParseRoomID(json.RawMessage(v.in))
		code := 0
		if err != nil {
			code = chatmux.AsError(err).Code
		}
		if code != v.code || (code == 0 && id != u) {
			t.Errorf("ParseRoomID(%s) = %v, %v", v.in, id, err)
		}
	}
	ms, err := chat.ParseMessageIDs(json.RawMessage(`["` + u.String() + `","` + u.String() + `"]`))
	if err != nil || len(ms) != 1 {
		t.Errorf("ParseMessageIDs: %v %v", ms, err)
	}
	if chat.Timestamp(mustTime("2026-01-01T12:00:00.123456789+02:00")) != "2026-01-01T10:00:00.123456Z" {
		t.Error("Timestamp")
	}
}

// TestRequireRoomParam: RequireRoomMember and RequireRoomAdmin read the room
// id from a pattern parameter ("{id}" for "room.{id}.pins") as well as from
// a data field.
func TestRequireRoomParam(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		answer := func(c *chatmux.Context) error {
			roomID, m, ok := chat.RoomFrom(c)
			if !ok || !m.IsMember || m.RoomID != roomID {
				return chatmux.Internal(nil)
			}
			return c.Reply(map[string]string{"event": c.Event(), "room_id": roomID.String()})
		}
		e := newEnvWith(t, newStore, func(svc *chat.Service, r chatmux.Router) {
			svc.Register(r)
			r.With(svc.RequireRoomMember("{id}")).HandleFunc("room.{id}.pins", answer)
			r.With(svc.RequireRoomAdmin("{id}")).HandleFunc("room.{id}.lock", answer)
			r.With(svc.RequireRoomMember("{id}")).HandleFunc("room.pins", answer) // no {id}: a mistake
		})
		e.users(3)
		group := e.room(store.Group, 1, 2)
		c1, c2, c3 := e.dial(1), e.dial(2), e.dial(3)
		g := group.String()

		for _, ok := range []struct {
			c     *client
			event string
		}{{c1, "room." + g + ".pins"}, {c2, "room." + g + ".pins"}, {c1, "room." + g + ".lock"}} {
			ok.c.send(ok.event, nil) // no data needed
			if f := ok.c.next(); !jsonEqual(f.Raw, `{"event":"`+ok.event+`","room_id":"`+g+`"}`) {
				t.Fatalf("%s %s: %s", ok.c.name, ok.event, f.Raw)
			}
		}
		for _, b := range []struct {
			c      *client
			event  string
			code   int
			detail string
		}{
			{c3, "room." + g + ".pins", 4002, `"User is not authorized access this room"`},
			{c2, "room." + g + ".lock", 4002, `"User is not an admin of this room"`},
			{c1, "room.x.pins", 4003, `["“x” is not a valid UUID."]`},
			{c1, "room." + uuid.NewString() + ".pins", 4004, `"Resource not found."`},
			{c1, "room.pins", 4006, ""},
		} {
			b.c.send(b.event, map[string]any{"room_id": g}) // data is not read
			b.c.expectError(b.code, b.detail)
		}
		for _, bad := range []string{"", "{id", "{}"} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("RequireRoomMember(%q) did not panic", bad)
					}
				}()
				e.svc.RequireRoomMember(bad)
			}()
		}
	})
}
