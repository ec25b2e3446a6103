package chat_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/chat"
	"github.com/chatmux/chatmux/store"
	"github.com/chatmux/chatmux/store/memory"
)

// fuzzEvents are the events FuzzEventInput sends: the 16 of the protocol.
var fuzzEvents = func() []string {
	svc := chat.New(chat.Config{Store: memory.New()})
	var out []string
	for name := range svc.Events() {
		if !strings.HasPrefix(name, "$") {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}()

// errNoSocket is what a handler's answer to its own socket returns on a
// test context, which has none.
var errNoSocket = chatmux.NewTestContext(context.Background(), "", nil, nil).ReplyRaw(nil)

// eventFixture is a store with users 1-3, a group of 1 and 2, a public
// channel of 1, a one-to-one chat of 1 and 2 and a message by each in the
// group. In an event's data, $G, $C, $D, $M and $N stand for their ids.
func eventFixture(t *testing.T) (store.Store, *strings.Replacer) {
	ctx := context.Background()
	st := memory.New()
	for i, name := range []string{"ann", "bob", "cy"} {
		if _, err := st.UpsertUser(ctx, store.User{ID: int64(i + 1), Username: name}); err != nil {
			t.Fatal(err)
		}
	}
	room := func(nr store.NewRoom) string {
		r, err := st.CreateRoom(ctx, nr)
		if err != nil {
			t.Fatal(err)
		}
		return r.ID.String()
	}
	g := room(store.NewRoom{Type: store.Group, CreatorID: 1, Name: "g", Members: []int64{2}})
	gid := uuid.MustParse(g)
	c := room(store.NewRoom{Type: store.Channel, CreatorID: 1, Name: "c", IsPublic: true})
	d := room(store.NewRoom{Type: store.OneToOne, CreatorID: 1, Members: []int64{2}})
	var msgs []string
	for _, sender := range []int64{1, 2} {
		res, err := st.SendMessage(ctx, store.NewMessage{RoomID: gid, SenderID: sender, Content: "hi", Notify: true})
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, res.Message.ID.String())
	}
	return st, strings.NewReplacer("$G", g, "$C", c, "$D", d, "$M", msgs[0], "$N", msgs[1])
}

// FuzzEventInput sends any data, as any of users 1-3, to each of the 16
// events' handlers over a fresh fixture: no input panics, and each is
// answered nil or with an error of the protocol for bad or refused input
// (4002-4005), never 4006 (but for the answers to the socket, which a test
// context does not have). The seed corpus is testdata/fuzz/FuzzEventInput;
// `go test` runs only the seeds (fuzz with -fuzz=FuzzEventInput).
func FuzzEventInput(f *testing.F) {
	for _, seed := range []struct {
		event string
		user  uint8
		data  string
	}{
		{chat.EventMessageSend, 1, `{"room_id":"$G","content":"<b>hi</b>","client_msg_id":"c1","extra_fields":{"parent_message_id":"$N"}}`},
		{chat.EventMessageSend, 2, `{"room_id":"$D","extra_fields":{"media":[{"media_url":"https://x/a.png","media_type":"image","file_size":3}]}}`},
		{chat.EventMessageAcknowledged, 2, `{"message_id":["$M","$M"]}`},
		{chat.EventMessageRead, 2, `{"message_id":"$M"}`},
		{chat.EventMessageReact, 2, `{"type":"add","message_id":"$M","reaction_content":"+1"}`},
		{chat.EventMessageModify, 1, `{"action":"update","message_id":"$M","extra_fields":{"content":"new"}}`},
		{chat.EventMessageModify, 2, `{"action":"delete","message_id":["$N"]}`},
		{chat.EventMessageTyping, 1, `{"room_id":"$G"}`},
		{chat.EventRoomCreate, 3, `{"type":"GroupChat","name":"n","participants":["1",2],"extra_fields":{"max_participants":5}}`},
		{chat.EventRoomCreate, 3, `{"type":"OneToOneChat","participants":[1]}`},
		{chat.EventRoomList, 1, `null`},
		{chat.EventRoomInfo, 1, `{"room_id":"$C"}`},
		{chat.EventRoomAddMembers, 1, `{"room_id":"$G","members":[3]}`},
		{chat.EventRoomRemoveMembers, 1, `{"room_id":"$G","members":["2"]}`},
		{chat.EventRoomMessages, 1, `{"room_id":"$G","paginate":{"page":1,"size":"1"}}`},
		{chat.EventRoomMessages, 2, `{"room_id":"$G","after_seq":0,"limit":1}`},
		{chat.EventRoomJoin, 3, `{"room_id":"$C"}`},
		{chat.EventRoomLeave, 2, `{"room_id":"$G"}`},
		{chat.EventRoomModify, 1, `{"room_id":"$G","action":"add_permission","data":{"users":[2],"permission":["can_add_new_participants"]}}`},
		{chat.EventRoomModify, 1, `{"room_id":"$G","action":"update","data":{"name":"x","description":"\u0000"}}`},
		{chat.EventSessionHeartbeat, 1, `{}`},
	} {
		f.Add(uint8(slices.Index(fuzzEvents, seed.event)), seed.user, []byte(seed.data))
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, event, user uint8, data []byte) {
		st, ids := eventFixture(t)
		cfg := chat.DefaultConfig()
		cfg.Store, cfg.Logger, cfg.ExtraMessageFields = st, log, []string{"priority"}
		svc := chat.New(cfg)
		name := fuzzEvents[int(event)%len(fuzzEvents)]
		uid := int64((user-1)%3 + 1)
		raw := json.RawMessage(ids.Replace(string(data)))
		c := chatmux.NewTestContext(context.Background(), name, raw, &chatmux.User{ID: uid, Username: []string{"ann", "bob", "cy"}[uid-1]})
		err := svc.Events()[name](c)
		if err == nil || errors.Is(err, errNoSocket) {
			return
		}
		e := chatmux.AsError(err)
		if e.Code < chatmux.CodePermissionDenied || e.Code > chatmux.CodeConstraint {
			t.Fatalf("%s as user %d with %s: %v", name, uid, raw, err)
		}
		if _, err := chatmux.ErrorEnvelope(e); err != nil {
			t.Fatalf("%s with %s: the error does not encode: %v", name, raw, err)
		}
	})
}
