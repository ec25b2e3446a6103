package chat_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/chat"
	"github.com/chatmux/chatmux/store"
)

// drain returns the frames that arrive before the answer to a heartbeat:
// everything the server had queued for this connection when it read the
// heartbeat (a connection's events are handled in order).
func (c *client) drain() []string {
	c.t.Helper()
	c.send(chat.EventSessionHeartbeat, nil)
	var out []string
	for {
		f := c.next()
		if f.Raw == `{"status":"success"}` {
			return out
		}
		out = append(out, f.Raw)
	}
}

// untilClosed returns the frames that arrive until the server closes the
// connection.
func (c *client) untilClosed() []frame {
	c.t.Helper()
	var out []frame
	timeout := time.After(waitTimeout)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				return out
			}
			out = append(out, f)
		case <-timeout:
			c.t.Fatalf("%s: not closed within %v", c.name, waitTimeout)
		}
	}
}

var (
	uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	timeRE = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
)

// normalize replaces what differs between two runs of one scenario on two
// stores: each distinct id by its rank of first appearance, and
// timestamps.
func normalize(s string) string {
	ids := map[string]string{}
	s = uuidRE.ReplaceAllStringFunc(s, func(id string) string {
		if _, ok := ids[id]; !ok {
			ids[id] = fmt.Sprintf("<id%d>", len(ids)+1)
		}
		return ids[id]
	})
	return timeRE.ReplaceAllString(s, "<time>")
}

func jsonString(t *testing.T, v any) string { return string(mustJSON(t, v)) }

// fixture is what a parity case's setup created.
type fixture struct {
	room, msg uuid.UUID
}

// parityCase is one operation done twice on identical fixtures: once as
// its WebSocket event from the actor's connection, once through the Go
// API as the actor. Both runs must leave the same stored state and send
// the same frames to the actor's and the watchers' connections.
type parityCase struct {
	name     string
	actor    int64
	watchers []int64
	setup    func(e *env) fixture
	event    string
	data     func(fx fixture) any
	call     func(e *env, fx fixture) (json.RawMessage, error)
	state    func(t *testing.T, e *env, fx fixture) any
}

// run does the case one way and returns the transcript (frames of the
// actor, then of each watcher, then the stored state), normalised, and
// the API's answer (normalised with the transcript).
func (pc parityCase) run(t *testing.T, newStore factory, viaAPI bool) (string, string) {
	e := newEnv(t, newStore)
	e.users(5)
	fx := pc.setup(e)
	a := e.dial(pc.actor)
	var ws []*client
	for _, id := range pc.watchers {
		ws = append(ws, e.dial(id))
	}
	var answer json.RawMessage
	if viaAPI {
		var err error
		if answer, err = pc.call(e, fx); err != nil {
			t.Fatalf("%s: API: %v", pc.name, err)
		}
	} else {
		a.send(pc.event, pc.data(fx))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "actor %d: %s\n", pc.actor, strings.Join(a.drain(), "\n"))
	for i, c := range ws {
		fmt.Fprintf(&b, "watcher %d: %s\n", pc.watchers[i], strings.Join(c.drain(), "\n"))
	}
	fmt.Fprintf(&b, "state: %s\n", jsonString(t, pc.state(t, e, fx)))
	fmt.Fprintf(&b, "answer: %s", answer)
	out := normalize(b.String())
	i := strings.LastIndex(out, "\nanswer: ")
	return out[:i], out[i+len("\nanswer: "):]
}

func groupFixture(e *env) fixture {
	room := e.roomWith(store.NewRoom{Type: store.Group, CreatorID: 1, Name: "g", Members: []int64{2, 3}})
	return fixture{room: room, msg: e.message(room, 1, "first")}
}

func channelFixture(e *env) fixture {
	room := e.roomWith(store.NewRoom{Type: store.Channel, CreatorID: 1, Name: "c", Members: []int64{2, 3}})
	return fixture{room: room}
}

func messagesState(t *testing.T, e *env, fx fixture) any {
	t.Helper()
	views, err := e.st.MessagesAfter(bg, fx.room, 0, 100)
	if err != nil {
		t.Fatalf("MessagesAfter: %v", err)
	}
	return views
}

func roomState(t *testing.T, e *env, fx fixture) any {
	t.Helper()
	d, err := e.st.RoomDetail(bg, fx.room)
	if errors.Is(err, store.ErrNotFound) {
		return "no room"
	}
	if err != nil {
		t.Fatalf("RoomDetail: %v", err)
	}
	return d
}

func userRoomsState(t *testing.T, e *env, _ fixture) any {
	t.Helper()
	var out []any
	for id := int64(1); id <= 5; id++ {
		rooms, err := e.st.ListRooms(bg, id)
		if err != nil {
			t.Fatalf("ListRooms: %v", err)
		}
		out = append(out, rooms)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// TestAPIParity: every operation of the Go API, by a user, stores what its
// WebSocket event stores and sends the same frames to every connection,
// and returns the data of the event's dispatch (docs/protocol.md#server-api).
func TestAPIParity(t *testing.T) {
	cases := []parityCase{
		{
			name: "SendMessage", actor: 1, watchers: []int64{2}, setup: groupFixture, event: chat.EventMessageSend,
			data: func(fx fixture) any {
				return map[string]any{"room_id": fx.room, "content": " <b>hi</b> <script>x</script> ", "client_msg_id": "c-1",
					"extra_fields": map[string]any{"media": []any{map[string]any{"media_url": "https://img.example/a.png",
						"media_type": "image", "file_size": 12, "caption": "cap", "metadata": map[string]any{"w": 3}}}}}
			},
			call: func(e *env, fx fixture) (json.RawMessage, error) {
				return e.svc.SendMessage(bg, chat.AsUser(1), chat.SendMessage{RoomID: fx.room, Content: " <b>hi</b> <script>x</script> ",
					ClientMsgID: "c-1", Media: []chat.Media{{URL: "https://img.example/a.png", Type: "image", FileSize: 12,
						Caption: "cap", Metadata: json.RawMessage(`{"w":3}`)}}})
			},
			state: messagesState,
		},
		{
			name: "SendMessage reply", actor: 2, watchers: []int64{1}, setup: groupFixture, event: chat.EventMessageSend,
			data: func(fx fixture) any {
				return map[string]any{"room_id": fx.room, "content": "re", "extra_fields": map[string]any{"parent_message_id": fx.msg}}
			},
			call: func(e *env, fx fixture) (json.RawMessage, error) {
				return e.svc.SendMessage(bg, chat.AsUser(2), chat.SendMessage{RoomID: fx.room, Content: "re", ParentID: &fx.msg})
			},
			state: messagesState,
		},
		{
			name: "EditMessage", actor: 1, watchers: []int64{2}, setup: groupFixture, event: chat.EventMessageModify,
			data: func(fx fixture) any {
				return map[string]any{"action": "update", "message_id": fx.msg, "extra_fields": map[string]any{"content": "edited <i>x</i>"}}
			},
			call: func(e *env, fx fixture) (json.RawMessage, error) {
				return e.svc.EditMessage(bg, chat.AsUser(1), fx.msg, "edited <i>x</i>")
			},
			state: messagesState,
		},
		{
			name: "DeleteMessages", actor: 1, watchers: []int64{2}, setup: groupFixture, event: chat.EventMessageModify,
			data: func(fx fixture) any { return map[string]any{"action": "delete", "message_id": []any{fx.msg}} },
			call: func(e *env, fx fixture) (json.RawMessage, error) {
				return e.svc.DeleteMessages(bg, chat.AsUser(1), []uuid.UUID{fx.msg})
			},
			state: messagesState,
		},
		{
			name: "CreateRoom", actor: 1, watchers: []int64{2, 4}, setup: func(*env) fixture { return fixture{} }, event: chat.EventRoomCreate,
			data: func(fixture) any {
				return map[string]any{"type": "GroupChat", "name": "new", "description": "about", "participants": []any{2, "3"},
					"extra_fields": map[string]any{"max_participants": 10, "group_locked": true, "avatar": "https://img.example/g.png",
						"property": map[string]any{"preferences": map[string]any{"theme": "dark"}}}}
			},
			call: func(e *env, _ fixture) (json.RawMessage, error) {
				return e.svc.CreateRoom(bg, 1, chat.CreateRoom{Type: "group", Name: "new", Description: "about", Members: []int64{2, 3},
					MaxMembers: 10, GroupLocked: true, Avatar: "https://img.example/g.png", Preferences: json.RawMessage(`{"theme":"dark"}`)})
			},
			state: userRoomsState,
		},
		{
			name: "CreateRoom one-to-one", actor: 1, watchers: []int64{2}, setup: func(*env) fixture { return fixture{} }, event: chat.EventRoomCreate,
			data: func(fixture) any { return map[string]any{"type": "OneToOneChat", "participants": []any{2}} },
			call: func(e *env, _ fixture) (json.RawMessage, error) {
				return e.svc.CreateRoom(bg, 1, chat.CreateRoom{Type: "one_to_one", Members: []int64{2}})
			},
			state: userRoomsState,
		},
		{
			name: "UpdateRoom", actor: 1, watchers: []int64{2}, setup: groupFixture, event: chat.EventRoomModify,
			data: func(fx fixture) any {
				return map[string]any{"room_id": fx.room, "action": "update", "data": map[string]any{"name": "renamed", "description": "",
					"join_approval_required": true, "property": map[string]any{"preferences": map[string]any{"k": 1}}}}
			},
			call: func(e *env, fx fixture) (json.RawMessage, error) {
				return e.svc.UpdateRoom(bg, chat.AsUser(1), fx.room, chat.RoomUpdate{Name: ptr("renamed"), Description: ptr(""),
					JoinApprovalRequired: ptr(true), Preferences: json.RawMessage(`{"k":1}`)})
			},
			state: roomState,
		},
		{
			name: "DeleteRoom", actor: 1, watchers: []int64{2}, setup: groupFixture, event: chat.EventRoomModify,
			data: func(fx fixture) any { return map[string]any{"room_id": fx.room, "action": "delete"} },
			call: func(e *env, fx fixture) (json.RawMessage, error) {
				return nil, e.svc.DeleteRoom(bg, chat.AsUser(1), fx.room)
			},
			state: roomState,
		},
		{
			name: "AddMembers", actor: 1, watchers: []int64{2, 4}, setup: groupFixture, event: chat.EventRoomAddMembers,
			data: func(fx fixture) any { return map[string]any{"room_id": fx.room, "members": []any{4, 2}} },
			call: func(e *env, fx fixture) (json.RawMessage, error) {
				return e.svc.AddMembers(bg, chat.AsUser(1), fx.room, []int64{4, 2})
			},
			state: roomState,
		},
		{
			name: "RemoveMembers", actor: 1, watchers: []int64{2, 3}, setup: groupFixture, event: chat.EventRoomRemoveMembers,
			data: func(fx fixture) any { return map[string]any{"room_id": fx.room, "members": []any{3}} },
			call: func(e *env, fx fixture) (json.RawMessage, error) {
				return e.svc.RemoveMembers(bg, chat.AsUser(1), fx.room, []int64{3})
			},
			state: roomState,
		},
		{
			name: "SetRole", actor: 1, watchers: []int64{2}, setup: channelFixture, event: chat.EventRoomModify,
			data: func(fx fixture) any {
				return map[string]any{"room_id": fx.room, "action": "add_moderator", "data": map[string]any{"users": []any{2}}}
			},
			call: func(e *env, fx fixture) (json.RawMessage, error) {
				return e.svc.SetRole(bg, chat.AsUser(1), fx.room, chat.RoleModerator, []int64{2}, true)
			},
			state: roomState,
		},
		{
			name: "SetPermissions", actor: 1, watchers: []int64{2}, setup: channelFixture, event: chat.EventRoomModify,
			data: func(fx fixture) any {
				return map[string]any{"room_id": fx.room, "action": "add_permission",
					"data": map[string]any{"users": []any{2}, "permission": []any{"can_send_messages"}}}
			},
			call: func(e *env, fx fixture) (json.RawMessage, error) {
				return e.svc.SetPermissions(bg, chat.AsUser(1), fx.room, []int64{2}, []string{"can_send_messages"}, true)
			},
			state: func(t *testing.T, e *env, fx fixture) any {
				m, err := e.st.Membership(bg, fx.room, 2)
				if err != nil {
					t.Fatalf("Membership: %v", err)
				}
				return m
			},
		},
		{
			name: "History after_seq", actor: 2, watchers: []int64{1}, setup: func(e *env) fixture {
				fx := groupFixture(e)
				e.message(fx.room, 2, "second")
				e.message(fx.room, 3, "third")
				return fx
			}, event: chat.EventRoomMessages,
			data: func(fx fixture) any { return map[string]any{"room_id": fx.room, "after_seq": 1, "limit": 1} },
			call: func(e *env, fx fixture) (json.RawMessage, error) {
				return e.svc.History(bg, chat.AsUser(2), fx.room, chat.HistoryQuery{AfterSeq: ptr(int64(1)), Limit: 1})
			},
			state: messagesState,
		},
		{
			name: "History page", actor: 2, watchers: []int64{1}, setup: func(e *env) fixture {
				fx := groupFixture(e)
				e.message(fx.room, 2, "second")
				return fx
			}, event: chat.EventRoomMessages,
			data: func(fx fixture) any {
				return map[string]any{"room_id": fx.room, "paginate": map[string]any{"page": 2, "size": 1}}
			},
			call: func(e *env, fx fixture) (json.RawMessage, error) {
				return e.svc.History(bg, chat.AsUser(2), fx.room, chat.HistoryQuery{Page: 2, PageSize: 1})
			},
			state: messagesState,
		},
	}
	forEachStore(t, func(t *testing.T, newStore factory) {
		for _, pc := range cases {
			t.Run(pc.name, func(t *testing.T) {
				viaEvent, _ := pc.run(t, newStore, false)
				viaAPI, answer := pc.run(t, newStore, true)
				if viaEvent != viaAPI {
					t.Fatalf("the event and the API differ\nevent:\n%s\napi:\n%s", viaEvent, viaAPI)
				}
				if answer != "" && !strings.Contains(viaEvent, `"data":`+answer+"}") {
					t.Fatalf("the API's answer is no dispatch's data\nanswer: %s\nframes:\n%s", answer, viaEvent)
				}
				if pc.name != "DeleteRoom" && answer == "" {
					t.Fatalf("the API answered no data")
				}
			})
		}
	})
}

// apiError checks that err is the protocol's error code with detail.
func apiError(t *testing.T, err error, code int, detail string) {
	t.Helper()
	var ce *chatmux.Error
	if !errors.As(err, &ce) {
		t.Fatalf("want error %d %s, got %v", code, detail, err)
	}
	if ce.Code != code || !jsonEqual(jsonString(t, ce.Detail), detail) {
		t.Fatalf("want error %d %s, got %d %s", code, detail, ce.Code, jsonString(t, ce.Detail))
	}
}

// TestAPIRefusals: a user actor gets the refusals its WebSocket event
// gets, with the same codes and details, and nothing is published.
func TestAPIRefusals(t *testing.T) {
	e := newEnv(t, memoryStore)
	e.users(5)
	fx := groupFixture(e)
	channel := channelFixture(e).room
	dm := e.room(store.OneToOne, 1, 2)
	other := e.room(store.Group, 4, 5)
	c1, c2, c3 := e.dial(1), e.dial(2), e.dial(3)
	denied := func(s string) string { return `"` + s + `"` }
	for _, b := range []struct {
		name   string
		call   func() error
		code   int
		detail string
	}{
		{"send non-member", func() error {
			_, err := e.svc.SendMessage(bg, chat.AsUser(4), chat.SendMessage{RoomID: fx.room, Content: "x"})
			return err
		}, 4002, denied("User is not authorized to send message to this room")},
		{"send channel subscriber", func() error {
			_, err := e.svc.SendMessage(bg, chat.AsUser(2), chat.SendMessage{RoomID: channel, Content: "x"})
			return err
		}, 4002, denied("User is not authorized to send message to this room")},
		{"send reply to a room of others", func() error {
			id := e.message(other, 4, "theirs")
			_, err := e.svc.SendMessage(bg, chat.AsUser(2), chat.SendMessage{RoomID: fx.room, Content: "x", ParentID: &id})
			return err
		}, 4002, denied("User is not authorized to access this message")},
		{"send blank", func() error {
			_, err := e.svc.SendMessage(bg, chat.AsUser(2), chat.SendMessage{RoomID: fx.room, Content: "  "})
			return err
		}, 4003, `{"content":["This field may not be blank."]}`},
		{"send bad media", func() error {
			_, err := e.svc.SendMessage(bg, chat.AsUser(2), chat.SendMessage{RoomID: fx.room, Media: []chat.Media{{URL: "javascript:x", Type: "image"}}})
			return err
		}, 4003, `{"media_url":["Enter a valid URL."]}`},
		{"send unknown extra", func() error {
			_, err := e.svc.SendMessage(bg, chat.AsUser(2), chat.SendMessage{RoomID: fx.room, Content: "x", Extra: map[string]json.RawMessage{"k": json.RawMessage(`1`)}})
			return err
		}, 4003, `{"extra_fields":["Unknown field 'k'."]}`},
		{"send unknown room", func() error {
			_, err := e.svc.SendMessage(bg, chat.AsUser(2), chat.SendMessage{RoomID: uuid.New(), Content: "x"})
			return err
		}, 4004, `"Resource not found."`},
		{"unknown actor", func() error {
			_, err := e.svc.SendMessage(bg, chat.AsUser(99), chat.SendMessage{RoomID: fx.room, Content: "x"})
			return err
		}, 4004, `"Resource not found."`},
		{"edit another's message", func() error {
			_, err := e.svc.EditMessage(bg, chat.AsUser(2), fx.msg, "x")
			return err
		}, 4002, denied("User is not authorized to modify this message")},
		{"edit blank", func() error {
			_, err := e.svc.EditMessage(bg, chat.AsUser(1), fx.msg, " ")
			return err
		}, 4003, `["Content should be provided for update action"]`},
		{"delete another's message", func() error {
			_, err := e.svc.DeleteMessages(bg, chat.AsUser(2), []uuid.UUID{fx.msg})
			return err
		}, 4002, denied("User is not authorized to modify this message")},
		{"delete nothing", func() error {
			_, err := e.svc.DeleteMessages(bg, chat.AsUser(1), nil)
			return err
		}, 4003, `["Atleast one message_id is required for modification"]`},
		{"create bad type", func() error {
			_, err := e.svc.CreateRoom(bg, 1, chat.CreateRoom{Type: "GroupChat", Name: "x"})
			return err
		}, 4003, `["Invalid resource type"]`},
		{"create blank name", func() error {
			_, err := e.svc.CreateRoom(bg, 1, chat.CreateRoom{Type: "group"})
			return err
		}, 4003, `{"name":["This field may not be blank."]}`},
		{"create unknown creator", func() error {
			_, err := e.svc.CreateRoom(bg, 77, chat.CreateRoom{Type: "group", Name: "x"})
			return err
		}, 4004, `"Resource not found."`},
		{"update non-admin", func() error {
			_, err := e.svc.UpdateRoom(bg, chat.AsUser(2), fx.room, chat.RoomUpdate{Name: ptr("x")})
			return err
		}, 4002, denied("User is not an admin of this room")},
		{"update bad avatar", func() error {
			_, err := e.svc.UpdateRoom(bg, chat.AsUser(1), fx.room, chat.RoomUpdate{Avatar: ptr("nope")})
			return err
		}, 4003, `{"avatar":["Enter a valid URL."]}`},
		{"delete room non-creator", func() error { return e.svc.DeleteRoom(bg, chat.AsUser(2), fx.room) },
			4002, denied("User is not the creator of this room")},
		{"add non-admin", func() error {
			_, err := e.svc.AddMembers(bg, chat.AsUser(2), fx.room, []int64{4})
			return err
		}, 4002, denied("User is not authorized to add new members to this room")},
		{"add to one-to-one", func() error {
			_, err := e.svc.AddMembers(bg, chat.AsUser(1), dm, []int64{4})
			return err
		}, 4003, `["Invalid room, Can only add or remove members from Groups/Channels"]`},
		{"add nobody", func() error {
			_, err := e.svc.AddMembers(bg, chat.AsUser(1), fx.room, nil)
			return err
		}, 4003, `{"members":["This list may not be empty."]}`},
		{"remove non-admin", func() error {
			_, err := e.svc.RemoveMembers(bg, chat.AsUser(2), fx.room, []int64{3})
			return err
		}, 4002, denied("User is not authorized to remove members from this room")},
		{"role non-admin", func() error {
			_, err := e.svc.SetRole(bg, chat.AsUser(2), fx.room, chat.RoleAdmin, []int64{3}, true)
			return err
		}, 4002, denied("User is not an admin of this room")},
		{"moderator of a group", func() error {
			_, err := e.svc.SetRole(bg, chat.AsUser(1), fx.room, chat.RoleModerator, []int64{3}, true)
			return err
		}, 4003, `["` + store.MsgModeratorsChannel + `"]`},
		{"bad permission", func() error {
			_, err := e.svc.SetPermissions(bg, chat.AsUser(1), fx.room, []int64{2}, []string{"can_fly"}, true)
			return err
		}, 4003, `["Permission 'can_fly' is not a valid group chat permission"]`},
		{"history non-member", func() error {
			_, err := e.svc.History(bg, chat.AsUser(4), fx.room, chat.HistoryQuery{})
			return err
		}, 4002, denied("User is not authorized access this room")},
		{"history one page number", func() error {
			_, err := e.svc.History(bg, chat.AsUser(2), fx.room, chat.HistoryQuery{Page: 1})
			return err
		}, 4003, `["page and size required"]`},
	} {
		t.Run(b.name, func(t *testing.T) { apiError(t, b.call(), b.code, b.detail) })
	}
	// Nothing was published, nothing changed.
	for _, c := range []*client{c1, c2, c3} {
		if got := c.drain(); len(got) != 0 {
			t.Fatalf("%s got %v", c.name, got)
		}
	}
	if d, _ := e.st.RoomDetail(bg, fx.room); d.Name != "g" || len(d.Members) != 3 || len(d.Admins) != 1 {
		t.Fatalf("the room changed: %+v", d)
	}
}

// TestAPISystem: the system skips membership and permission checks, keeps
// every validation, and its messages are system messages
// (docs/protocol.md#system-messages).
func TestAPISystem(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		e := newEnv(t, newStore)
		e.users(4)
		ch := channelFixture(e).room
		c1, c2 := e.dial(1), e.dial(2)

		// A system message in a channel where user 2 cannot send.
		got, err := e.svc.SendMessage(bg, chat.System, chat.SendMessage{RoomID: ch, Content: "Maintenance <b>tonight</b>", ClientMsgID: "sys-1"})
		if err != nil {
			t.Fatalf("SendMessage: %v", err)
		}
		var m map[string]any
		if err := json.Unmarshal(got, &m); err != nil {
			t.Fatal(err)
		}
		if m["sender"] != nil || m["is_system"] != true || m["content"] != "Maintenance <b>tonight</b>" {
			t.Fatalf("system message: %s", got)
		}
		for _, c := range []*client{c1, c2} {
			f := c.expect(chat.DispatchMessage)
			if !jsonEqual(string(f.Data), string(got)) {
				t.Fatalf("%s got %s, want %s", c.name, f.Data, got)
			}
		}
		views, err := e.st.MessagesAfter(bg, ch, 0, 10)
		if err != nil || len(views) != 1 || views[0].SenderID != 0 {
			t.Fatalf("stored: %+v %v", views, err)
		}
		// The retry is idempotent for the system too: the same message,
		// published to nobody.
		again, err := e.svc.SendMessage(bg, chat.System, chat.SendMessage{RoomID: ch, Content: "Maintenance <b>tonight</b>", ClientMsgID: "sys-1"})
		if err != nil || path(t, decode(t, again), "id") != m["id"] {
			t.Fatalf("retry: %s %v", again, err)
		}
		// room.messages shows it as a system message; a user's message
		// has no is_system.
		c1.send(chat.EventMessageSend, map[string]any{"room_id": ch, "content": "mine"})
		c1.expect(chat.DispatchMessage)
		c2.expect(chat.DispatchMessage)
		c2.send(chat.EventRoomMessages, map[string]any{"room_id": ch})
		list := path(t, c2.expect(chat.DispatchRoomMessages).obj(t), "data.messages").([]any)
		if len(list) != 2 {
			t.Fatalf("messages: %v", list)
		}
		if _, ok := list[0].(map[string]any)["is_system"]; ok {
			t.Fatalf("a user's message carries is_system: %v", list[0])
		}
		if sys := list[1].(map[string]any); sys["sender"] != nil || sys["is_system"] != true {
			t.Fatalf("system message read back: %v", sys)
		}

		// Validation stays.
		_, err = e.svc.SendMessage(bg, chat.System, chat.SendMessage{RoomID: ch})
		apiError(t, err, 4003, `{"content":["This field may not be blank."]}`)
		_, err = e.svc.SendMessage(bg, chat.System, chat.SendMessage{RoomID: uuid.New(), Content: "x"})
		apiError(t, err, 4004, `"Resource not found."`)
		_, err = e.svc.AddMembers(bg, chat.System, e.room(store.OneToOne, 1, 2), []int64{3})
		apiError(t, err, 4003, `["Invalid room, Can only add or remove members from Groups/Channels"]`)
		_, err = e.svc.AddMembers(bg, chat.System, ch, []int64{99})
		apiError(t, err, 4004, `"Resource not found."`)

		// Membership changes by the system, which belongs to no room.
		add, err := e.svc.AddMembers(bg, chat.System, ch, []int64{4})
		if err != nil {
			t.Fatalf("AddMembers: %v", err)
		}
		eq(t, path(t, decode(t, add), "added_by"), "system", "added_by")
		c4 := e.dial(4)
		for _, c := range []*client{c1, c2} {
			c.expect(chat.DispatchRoomAddMembers)
		}
		rm, err := e.svc.RemoveMembers(bg, chat.System, ch, []int64{2})
		if err != nil {
			t.Fatalf("RemoveMembers: %v", err)
		}
		eq(t, path(t, decode(t, rm), "removed_by"), "system", "removed_by")
		eq(t, path(t, c2.expect(chat.DispatchRoomExit).obj(t), "message"), "You have been removed by system", "exit")
		for _, c := range []*client{c1, c4} {
			c.expect(chat.DispatchRoomRemoveMembers)
		}
		c2.quiet()
		if _, err := e.svc.UpdateRoom(bg, chat.System, ch, chat.RoomUpdate{Name: ptr("by system")}); err != nil {
			t.Fatalf("UpdateRoom: %v", err)
		}
		for _, c := range []*client{c1, c4} {
			eq(t, path(t, c.expect(chat.DispatchRoomUpdate).obj(t), "name"), "by system", "name")
		}
		// A user's message edited by the system.
		mine := path(t, list[0], "id").(string)
		if _, err := e.svc.EditMessage(bg, chat.System, uuid.MustParse(mine), "moderated"); err != nil {
			t.Fatalf("EditMessage: %v", err)
		}
		for _, c := range []*client{c1, c4} {
			eq(t, path(t, c.expect(chat.DispatchMessageModification).obj(t), "message.content"), "moderated", "edit")
		}
		// History by the system publishes nothing.
		h, err := e.svc.History(bg, chat.System, ch, chat.HistoryQuery{})
		if err != nil || len(path(t, decode(t, h), "data.messages").([]any)) != 2 {
			t.Fatalf("History: %s %v", h, err)
		}
		if err := e.svc.DeleteRoom(bg, chat.System, ch); err != nil {
			t.Fatalf("DeleteRoom: %v", err)
		}
		for _, c := range []*client{c1, c4} {
			c.expect(chat.DispatchRoomDelete)
			c.quiet()
		}
		c2.quiet()
	})
}

func decode(t *testing.T, b json.RawMessage) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// TestAPIAttach: the Go API needs the server it publishes through.
func TestAPIAttach(t *testing.T) {
	cfg := chat.DefaultConfig()
	cfg.Store = memoryStore(t)
	svc := chat.New(cfg)
	_, err := svc.SendMessage(bg, chat.System, chat.SendMessage{RoomID: uuid.New(), Content: "x"})
	apiError(t, err, 4006, `"Internal server error."`)
	_, err = svc.PutUser(bg, store.User{ID: 1, Username: "a"})
	apiError(t, err, 4006, `"Internal server error."`)
}

// TestAPITwoNodes: an API call on one node reaches the connections of
// another through the broker, dispatches and group moves alike.
func TestAPITwoNodes(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		a, b := twoNodes(t, newStore)
		a.users(4)
		fx := groupFixture(a)
		c1 := a.dial(1)
		c2, c3 := b.dial(2), b.dial(3)

		// The same message by the event on node A and by the API on node A
		// reaches node B's connections alike.
		c1.send(chat.EventMessageSend, map[string]any{"room_id": fx.room, "content": "one"})
		viaEvent := c2.expect(chat.DispatchMessage)
		c3.expect(chat.DispatchMessage)
		c1.expect(chat.DispatchMessage)
		got, err := a.svc.SendMessage(bg, chat.AsUser(1), chat.SendMessage{RoomID: fx.room, Content: "one"})
		if err != nil {
			t.Fatalf("SendMessage: %v", err)
		}
		viaAPI := c2.expect(chat.DispatchMessage)
		c3.expect(chat.DispatchMessage)
		c1.expect(chat.DispatchMessage)
		if !jsonEqual(string(viaAPI.Data), string(got)) {
			t.Fatalf("node B got %s, the API answered %s", viaAPI.Data, got)
		}
		if normalize(viaEvent.Raw) != normalize(strings.Replace(viaAPI.Raw, `"seq":3`, `"seq":2`, 1)) {
			t.Fatalf("event and API frames differ:\n%s\n%s", viaEvent.Raw, viaAPI.Raw)
		}

		// A removal by the API on node A moves node B's connection out of
		// the room's group before anything else is sent to the room.
		if _, err := a.svc.RemoveMembers(bg, chat.AsUser(1), fx.room, []int64{3}); err != nil {
			t.Fatalf("RemoveMembers: %v", err)
		}
		eq(t, path(t, c3.expect(chat.DispatchRoomExit).obj(t), "message"), "You have been removed by user1", "exit")
		c2.expect(chat.DispatchRoomRemoveMembers)
		c1.expect(chat.DispatchRoomRemoveMembers)
		if _, err := b.svc.SendMessage(bg, chat.AsUser(2), chat.SendMessage{RoomID: fx.room, Content: "after"}); err != nil {
			t.Fatalf("SendMessage: %v", err)
		}
		c1.expect(chat.DispatchMessage)
		c2.expect(chat.DispatchMessage)
		c3.quiet()
		// An addition by the API on node B moves node A's connections in.
		c4 := a.dial(4)
		if _, err := b.svc.AddMembers(bg, chat.System, fx.room, []int64{4}); err != nil {
			t.Fatalf("AddMembers: %v", err)
		}
		for _, c := range []*client{c1, c2, c4} {
			c.expect(chat.DispatchRoomAddMembers)
		}
		if _, err := b.svc.SendMessage(bg, chat.System, chat.SendMessage{RoomID: fx.room, Content: "welcome"}); err != nil {
			t.Fatalf("SendMessage: %v", err)
		}
		for _, c := range []*client{c1, c2, c4} {
			eq(t, path(t, c.expect(chat.DispatchMessage).obj(t), "is_system"), true, "system message")
		}
		c3.quiet()
	})
}

// TestAPIUsers: PutUser creates and updates users; DeleteUser removes one
// from every room with the dispatches room.leave and room deletion send,
// and closes their connections with 4011 (docs/protocol.md#deleted-users).
func TestAPIUsers(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		e := newEnv(t, newStore)
		got, err := e.svc.PutUser(bg, store.User{ID: 7, Username: "ann", Email: "ann@example.com", FirstName: "Ann"})
		if err != nil || !jsonEqual(string(got), `{"id":7,"username":"ann","email":"ann@example.com","first_name":"Ann","last_name":""}`) {
			t.Fatalf("PutUser: %s %v", got, err)
		}
		if got, err = e.svc.PutUser(bg, store.User{ID: 7, Username: "anne"}); err != nil || path(t, decode(t, got), "username") != "anne" {
			t.Fatalf("PutUser update: %s %v", got, err)
		}
		_, err = e.svc.PutUser(bg, store.User{ID: 0, Username: "x"})
		apiError(t, err, 4003, `{"id":["Ensure this value is greater than or equal to 1."]}`)
		_, err = e.svc.PutUser(bg, store.User{ID: 8})
		apiError(t, err, 4003, `{"username":["This field may not be blank."]}`)

		e.users(4)
		group := e.roomWith(store.NewRoom{Type: store.Group, CreatorID: 1, Name: "g", Members: []int64{2, 3}})
		solo := e.roomWith(store.NewRoom{Type: store.Channel, CreatorID: 3, Name: "solo"})
		dm := e.room(store.OneToOne, 3, 4)
		kept := e.message(group, 3, "stays")
		e.message(dm, 3, "goes")
		c1, c3, c4 := e.dial(1), e.dial(3), e.dial(4)

		del, err := e.svc.DeleteUser(bg, 3)
		if err != nil {
			t.Fatalf("DeleteUser: %v", err)
		}
		eq(t, del.RoomsLeft, []uuid.UUID{group}, "rooms left")
		if len(del.RoomsDeleted) != 2 || !slices.Contains(del.RoomsDeleted, solo) || !slices.Contains(del.RoomsDeleted, dm) {
			t.Fatalf("DeleteUser: %+v", del)
		}
		for _, id := range del.RoomsDeleted {
			if _, err := e.st.RoomDetail(bg, id); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("room %s: %v", id, err)
			}
		}
		// The group sees user 3 leave; user 4 sees the one-to-one chat go.
		rm := c1.expect(chat.DispatchRoomRemoveMembers).obj(t)
		eq(t, rm["removed_members"], []string{"user3"}, "removed")
		eq(t, rm["removed_by"], "self", "removed_by")
		eq(t, path(t, c4.expect(chat.DispatchRoomDelete).obj(t), "room_id"), dm.String(), "dm deleted")
		c1.quiet()
		c4.quiet()
		// Their message in the group stays, with a deleted sender.
		c1.send(chat.EventRoomMessages, map[string]any{"room_id": group})
		msg := path(t, c1.expect(chat.DispatchRoomMessages).obj(t), "data.messages.0").(map[string]any)
		eq(t, msg["id"], kept.String(), "kept message")
		eq(t, msg["sender"], map[string]any{"id": 3, "username": "deleted user 3", "email": "", "first_name": "", "last_name": "",
			"is_deleted": true}, "deleted sender")
		// The deleted user cannot come back, act or be acted upon.
		_, err = e.svc.PutUser(bg, store.User{ID: 3, Username: "back"})
		apiError(t, err, 4005, `["This user has been deleted."]`)
		_, err = e.svc.SendMessage(bg, chat.AsUser(3), chat.SendMessage{RoomID: group, Content: "x"})
		apiError(t, err, 4005, `["This user has been deleted."]`)
		_, err = e.svc.DeleteUser(bg, 99)
		apiError(t, err, 4004, `"Resource not found."`)
		// User 3's connection is closed with 4011 (what was still queued
		// for it, room.leave's dispatches to the leaver, may be dropped).
		c3.untilClosed()
		if code := websocketCode(c3.closed); code != chatmux.CloseUserDeleted {
			t.Fatalf("user 3: close %d (%v)", code, c3.closed)
		}
		// A deleted user who connects again is closed with 4011.
		again := e.dialRaw(3, "user3")
		again.untilClosed()
		if code := websocketCode(again.closed); code != chatmux.CloseUserDeleted {
			t.Fatalf("user 3 again: close %d (%v)", code, again.closed)
		}
		if !del.ConnectionsClosed {
			t.Fatalf("DeleteUser: %+v", del)
		}
	})
}

// BenchmarkAPISendMessage: one message through the Go API into a group of
// 10 members, on the in-memory store, with no connection open (the
// checks, the store, encoding the dispatch once and publishing it).
func BenchmarkAPISendMessage(b *testing.B) {
	cfg := chat.DefaultConfig()
	cfg.Store = memoryStore(nil)
	svc := chat.New(cfg)
	srv := chatmux.NewServer(chatmux.NewRouter(), chatmux.ServerOptions{Authenticate: testAuth})
	svc.Attach(srv)
	for i := int64(1); i <= 10; i++ {
		if _, err := svc.PutUser(bg, store.User{ID: i, Username: fmt.Sprintf("user%d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	r, err := cfg.Store.CreateRoom(bg, store.NewRoom{Type: store.Group, CreatorID: 1, Name: "g", Members: []int64{2, 3, 4, 5, 6, 7, 8, 9, 10}})
	if err != nil {
		b.Fatal(err)
	}
	in := chat.SendMessage{RoomID: r.ID, Content: "hello <b>all</b>"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := svc.SendMessage(bg, chat.AsUser(1), in); err != nil {
			b.Fatal(err)
		}
	}
}
