package chat_test

import (
	"context"
	"testing"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/chat"
	"github.com/chatmux/chatmux/store"
)

// probeStore publishes a "probe" dispatch to the room's group just before
// a removal reaches the store: a message stored at that moment.
type probeStore struct {
	store.Store
	srv **chatmux.Server
}

func (p *probeStore) RemoveMembers(ctx context.Context, in store.RemoveMembers) (store.RemoveResult, error) {
	if err := (*p.srv).Broadcast(ctx, chat.RoomGroup(in.RoomID), "probe", nil); err != nil {
		return store.RemoveResult{}, err
	}
	return p.Store.RemoveMembers(ctx, in)
}

// TestRemovedBeforeCommit: the connections of a removed member, and of a
// member who leaves, are out of the room's group before the removal
// commits, so that nothing sent to the room from then on reaches them
// (docs/protocol.md#faults); the others still get it.
func TestRemovedBeforeCommit(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		var srv *chatmux.Server
		e := newEnv(t, func(t *testing.T) store.Store { return &probeStore{Store: newStore(t), srv: &srv} })
		srv = e.srv
		e.users(3)
		room := e.roomWith(store.NewRoom{Type: store.Group, CreatorID: 1, Name: "g", Members: []int64{2, 3}})
		c1, c2, c3 := e.dial(1), e.dial(2), e.dial(3)

		c1.send(chat.EventRoomRemoveMembers, map[string]any{"room_id": room.String(), "members": []int{2}})
		c2.expect(chat.DispatchRoomExit) // not the probe
		for _, c := range []*client{c1, c3} {
			c.expect("probe")
			c.expect(chat.DispatchRoomRemoveMembers)
		}

		c3.send(chat.EventRoomLeave, map[string]any{"room_id": room.String()})
		c3.expect(chat.DispatchRoomExit) // not the probe
		c1.expect("probe")
		c1.expect(chat.DispatchRoomRemoveMembers)
	})
}

// TestSenderOutsideGroup: a member whose connection is not in the room's
// group (it missed the move: here the room was created in the store after
// it connected) still gets its message.dispatch, exactly once, and the
// room's other connections get theirs.
func TestSenderOutsideGroup(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		e := newEnv(t, newStore)
		e.users(2)
		c1 := e.dial(1)
		room := e.room(store.Group, 1, 2) // after c1 connected: c1 is not in its group
		c2 := e.dial(2)                   // connects after: c2 is
		c1.send(chat.EventMessageSend, map[string]any{"room_id": room.String(), "content": "hi"})
		c1.expect(chat.DispatchMessage)
		c2.expect(chat.DispatchMessage)
		c1.quiet()
	})
}
