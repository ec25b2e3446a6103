package chat

import (
	"github.com/google/uuid"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/store"
)

// receiptEvent reads what message.acknowledged and message.read start
// with: readEvent, then data.message_id (an id or a list, not empty), each
// message visible (4004) and in a room of the user (4002).
func (s *Service) receiptEvent(c *chatmux.Context) (*chatmux.User, messageIDs, error) {
	u, f, err := readEvent(c)
	if err != nil {
		return nil, messageIDs{}, err
	}
	ids, _, err := s.messageIDsOf(c, f, u.ID)
	return u, ids, err
}

// handleAcknowledge handles message.acknowledged (delivery receipts):
// data {message_id: id or [ids]}. The user is added to delivered_to of each
// message and removed from its notifications; each sender then gets
// messagedelivered.dispatch with the list of their messages, on all
// devices. Acknowledging one's own message does nothing
// (docs/protocol.md#diff-idempotent-receipts).
func (s *Service) handleAcknowledge(c *chatmux.Context) error {
	u, ids, err := s.receiptEvent(c)
	if err != nil {
		return err
	}
	acked, err := s.st.Acknowledge(c.Context(), u.ID, ids.IDs)
	if err != nil {
		return StoreError(err)
	}
	if len(acked) == 0 {
		return nil
	}
	views, err := s.st.MessageViews(c.Context(), acked)
	if err != nil {
		return StoreError(err)
	}
	senders, bySender := groupMessages(s, views, func(v *store.MessageView) int64 { return v.SenderID })
	for _, id := range senders {
		if _, err := s.sendUser(c.Context(), ev(c), id, DispatchMessageDelivered, bySender[id]); err != nil {
			return err
		}
	}
	return nil
}

// handleRead handles message.read (read receipts): data {message_id: id
// or [ids]}. Own messages and messages already read are skipped
// (docs/protocol.md#diff-idempotent-receipts).
// For a single id readreceipt.dispatch carries the Message object; for a
// list, one dispatch per room carries the array of that room's messages.
// Each goes to the room.
func (s *Service) handleRead(c *chatmux.Context) error {
	u, ids, err := s.receiptEvent(c)
	if err != nil {
		return err
	}
	receipts, err := s.st.MarkRead(c.Context(), u.ID, ids.IDs)
	if err != nil {
		return StoreError(err)
	}
	if len(receipts) == 0 {
		return nil
	}
	read := make([]uuid.UUID, len(receipts))
	for i, r := range receipts {
		read[i] = r.MessageID
	}
	views, err := s.st.MessageViews(c.Context(), read)
	if err != nil {
		return StoreError(err)
	}
	if !ids.List {
		if len(views) == 0 {
			return nil
		}
		_, err := s.broadcast(c.Context(), ev(c), RoomGroup(views[0].RoomID), DispatchReadReceipt, s.messageJSON(&views[0]))
		return err
	}
	rooms, byRoom := groupMessages(s, views, func(v *store.MessageView) uuid.UUID { return v.RoomID })
	for _, id := range rooms {
		if _, err := s.broadcast(c.Context(), ev(c), RoomGroup(id), DispatchReadReceipt, byRoom[id]); err != nil {
			return err
		}
	}
	return nil
}

// groupMessages encodes views grouped by key: the keys in the order they
// first appear, and each key's Message objects in order.
func groupMessages[K comparable](s *Service, views []store.MessageView, key func(*store.MessageView) K) ([]K, map[K][]*wireMessage) {
	var keys []K
	groups := map[K][]*wireMessage{}
	for i := range views {
		k := key(&views[i])
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], s.messageJSON(&views[i]))
	}
	return keys, groups
}
