package chat_test

import (
	"testing"

	"github.com/chatmux/chatmux/chat"
)

// TestSendRightAcrossNodes: a member's message.send is checked by the store
// in the same round trip as the insert (store.NewMessage.CheckSender), so
// a right revoked on one node holds at once for a connection on another:
// nothing on the sending node remembers the old right.
func TestSendRightAcrossNodes(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		a, b := twoNodes(t, newStore)
		a.users(3)
		ch := channelFixture(a).room
		grp := groupFixture(a).room
		c1 := a.dial(1)
		c2 := b.dial(2)

		// A channel subscriber granted can_send_messages on node A sends on
		// node B; once node A revokes it, node B refuses the next send.
		c1.send(chat.EventRoomModify, map[string]any{"room_id": ch, "action": "add_permission",
			"data": map[string]any{"users": []int64{2}, "permission": []string{"can_send_messages"}}})
		c1.expect(chat.DispatchRoomUpdate)
		c2.expect(chat.DispatchRoomUpdate)
		c2.send(chat.EventMessageSend, map[string]any{"room_id": ch, "content": "allowed"})
		c2.expect(chat.DispatchMessage)
		c1.expect(chat.DispatchMessage)
		c1.send(chat.EventRoomModify, map[string]any{"room_id": ch, "action": "remove_permission",
			"data": map[string]any{"users": []int64{2}, "permission": []string{"can_send_messages"}}})
		c1.expect(chat.DispatchRoomUpdate)
		c2.expect(chat.DispatchRoomUpdate)
		c2.send(chat.EventMessageSend, map[string]any{"room_id": ch, "content": "refused"})
		c2.expectError(4002, `"User is not authorized to send message to this room"`)
		c1.quiet()

		// A group locked on node A: a plain participant on node B can no
		// longer send; its creator still can.
		c1.send(chat.EventRoomModify, map[string]any{"room_id": grp, "action": "update",
			"data": map[string]any{"group_locked": true}})
		c1.expect(chat.DispatchRoomUpdate)
		c2.expect(chat.DispatchRoomUpdate)
		c2.send(chat.EventMessageSend, map[string]any{"room_id": grp, "content": "locked out"})
		c2.expectError(4002, `"User is not authorized to send message to this room"`)
		c1.send(chat.EventMessageSend, map[string]any{"room_id": grp, "content": "creator"})
		c1.expect(chat.DispatchMessage)
		c2.expect(chat.DispatchMessage)

		// Made an admin on node A, the participant sends on node B again.
		if _, err := a.svc.SetRole(bg, chat.AsUser(1), grp, chat.RoleAdmin, []int64{2}, true); err != nil {
			t.Fatalf("SetRole: %v", err)
		}
		c1.expect(chat.DispatchRoomUpdate)
		c2.expect(chat.DispatchRoomUpdate)
		c2.send(chat.EventMessageSend, map[string]any{"room_id": grp, "content": "admin"})
		c2.expect(chat.DispatchMessage)
		c1.expect(chat.DispatchMessage)
	})
}
