package chat_test

import (
	"sync"
	"testing"

	"github.com/chatmux/chatmux/chat"
	"github.com/chatmux/chatmux/store"
)

// TestMissingData: every event that needs data answers 4003 without it,
// never 4006, and the socket stays open (docs/protocol.md#diff-malformed).
func TestMissingData(t *testing.T) {
	e := newEnv(t, memoryStore)
	e.users(1)
	c := e.dial(1)
	for _, ev := range []string{chat.EventMessageSend, chat.EventMessageAcknowledged, chat.EventMessageRead,
		chat.EventMessageReact, chat.EventMessageTyping, chat.EventMessageModify, chat.EventRoomCreate, chat.EventRoomInfo,
		chat.EventRoomAddMembers, chat.EventRoomRemoveMembers, chat.EventRoomMessages, chat.EventRoomJoin,
		chat.EventRoomLeave, chat.EventRoomModify} {
		c.send(ev, nil)
		c.expectError(4003, "")
		c.send(ev, `null`)
		c.expectError(4003, "")
		c.send(ev, `{}`)
		c.expectError(4003, "")
	}
	c.send(chat.EventRoomList, nil)
	c.expect(chat.DispatchRoomList)
}

// TestConcurrentSends: two devices of one user and another user send at
// once; everyone gets every message, and seq numbers are 1..n.
func TestConcurrentSends(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		e := newEnv(t, newStore)
		e.users(2)
		group := e.room(store.Group, 1, 2)
		senders := []*client{e.dial(1), e.dial(1), e.dial(2)}
		const each = 10
		var wg sync.WaitGroup
		seqs := make([]map[float64]bool, len(senders))
		for i, c := range senders {
			seqs[i] = map[float64]bool{}
			wg.Add(1)
			go func(i int, c *client) {
				defer wg.Done()
				for range each * len(senders) {
					f := <-c.frames
					if f.EventType != chat.DispatchMessage {
						t.Errorf("%s: unexpected %s", c.name, f.Raw)
						return
					}
					var m struct {
						Seq float64 `json:"seq"`
					}
					_ = jsonUnmarshal(f.Data, &m)
					seqs[i][m.Seq] = true
				}
			}(i, c)
		}
		var sendWG sync.WaitGroup
		for _, c := range senders {
			sendWG.Add(1)
			go func(c *client) {
				defer sendWG.Done()
				for range each {
					c.send(chat.EventMessageSend, map[string]any{"room_id": group.String(), "content": "x"})
				}
			}(c)
		}
		sendWG.Wait()
		wg.Wait()
		for i := range senders {
			if len(seqs[i]) != each*len(senders) {
				t.Fatalf("client %d saw %d distinct seqs", i, len(seqs[i]))
			}
			for s := 1; s <= each*len(senders); s++ {
				if !seqs[i][float64(s)] {
					t.Fatalf("client %d missed seq %d", i, s)
				}
			}
		}
	})
}
