package client

import (
	"encoding/json"
	"sync"
)

// Handlers receive what the client learns, one at a time on one goroutine
// of the client, in the order it learned it. A nil handler is skipped. A
// handler may call any method of the client; a slow handler delays the
// handlers after it, never the connection. A handler that waits on
// SendMessage delays the others until the message is stored: send from a
// handler with Enqueue, or wait in a goroutine of your own.
//
// Dispatch handlers take the decoded data of one dispatch type
// (docs/protocol.md#dispatches); Dispatch takes every dispatch frame as it
// arrives, known or not (hosts add their own), before the typed handler.
// Message is the delivery rule's output, not message.dispatch as it
// arrives: every message of every tracked room, exactly once and in seq
// order (docs/protocol.md#delivery), live or caught up. With
// Options.NoAutoTrack, a live message of a room that is not tracked is
// handed over as it arrives, without the rule.
type Handlers struct {
	// Message: every message of every tracked room, once, in seq order.
	Message func(m *Message)
	// Dispatch: every dispatch frame as it arrives.
	Dispatch func(d Dispatch)

	// Notifications: chat.notifications, the notifications pending at
	// connect, by room id.
	Notifications func(byRoom map[string][]Notification)
	// Resync: a chat.resync was received and acted on.
	Resync func(r ResyncResult)
	// Delivered: messagedelivered.dispatch, the user's messages that
	// someone acknowledged.
	Delivered func(msgs []Message)
	// ReadReceipt: readreceipt.dispatch, messages with new read receipts
	// (one object or a list on the wire: always a list here).
	ReadReceipt func(msgs []Message)
	// Reaction: reaction.dispatch.
	Reaction func(r ReactionDispatch)
	// Typing: messagetyping.dispatch.
	Typing func(t TypingDispatch)
	// Modification: messagemodification.dispatch (an edit or a deletion).
	Modification func(m ModificationDispatch)
	// RoomCreate: roomcreate.dispatch, a room the user is a member of was
	// created.
	RoomCreate func(r RoomDetail)
	// RoomList: roomlist.dispatch.
	RoomList func(rooms []RoomListItem)
	// RoomInfo: roominfo.dispatch.
	RoomInfo func(r RoomDetail)
	// RoomMessages: roommessages.dispatch (catch-up pages too).
	RoomMessages func(p RoomMessagesPage)
	// RoomAddMembers: roomaddmembers.dispatch, members joined or were
	// added (the user too, when it was added).
	RoomAddMembers func(m MembersDispatch)
	// RoomRemoveMembers: roomremovemembers.dispatch.
	RoomRemoveMembers func(m MembersDispatch)
	// RoomExit: roomexit.dispatch, the user left or was removed.
	RoomExit func(e RoomExitDispatch)
	// RoomDelete: roomdelete.dispatch.
	RoomDelete func(d RoomDeleteDispatch)
	// RoomUpdate: roomupdate.dispatch.
	RoomUpdate func(r RoomDetail)
	// UserSearch: usersearch.dispatch.
	UserSearch func(r UserSearchDispatch)
	// Presence: presence.dispatch, a user of one of the user's rooms went
	// online or offline (docs/protocol.md#presence).
	Presence func(p Presence)

	// State: every change of the connection's state.
	State func(s StateChange)
	// RoomRemoved: a tracked room is no longer tracked: the user left, was
	// removed, the room was deleted, or chat.resync did not list it.
	RoomRemoved func(roomID, reason string)
	// Sent: a message of the outbox was stored (once per message, also for
	// messages of RestoreOutbox).
	Sent func(clientMsgID string, m *Message)
	// SendFailed: the server refused a message of the outbox; it left the
	// outbox. Once per message.
	SendFailed func(clientMsgID, roomID string, err error)
	// Error: an error not tied to a request (an unmatched error envelope,
	// a frame that is not JSON, a failed token function).
	Error func(err error)
}

// ResyncResult is what the client did about a chat.resync.
type ResyncResult struct {
	Reason string
	// CaughtUp are the tracked rooms whose seq was ahead: being caught up.
	CaughtUp []string
	// Added are the listed rooms the client did not track: tracked from
	// seq 0 now.
	Added []string
	// Removed are the tracked rooms not listed: no longer tracked.
	Removed []string
}

// typedHandlerLocked returns the call of the typed handler of d, or nil.
func (c *Client) typedHandler(d Dispatch) func() {
	h := &c.opts.Handlers
	switch d.EventType {
	case DispatchNotifications:
		return decodeFor(d, h.Notifications)
	case DispatchDelivered:
		return decodeFor(d, h.Delivered)
	case DispatchReadReceipt:
		if h.ReadReceipt == nil {
			return nil
		}
		var list []Message
		if json.Unmarshal(d.Data, &list) != nil {
			var one Message
			if json.Unmarshal(d.Data, &one) != nil {
				return nil
			}
			list = []Message{one}
		}
		return func() { h.ReadReceipt(list) }
	case DispatchReaction:
		return decodeFor(d, h.Reaction)
	case DispatchTyping:
		return decodeFor(d, h.Typing)
	case DispatchModification:
		return decodeFor(d, h.Modification)
	case DispatchRoomCreate:
		return decodeFor(d, h.RoomCreate)
	case DispatchRoomList:
		return decodeFor(d, h.RoomList)
	case DispatchRoomInfo:
		return decodeFor(d, h.RoomInfo)
	case DispatchRoomMessages:
		return decodeFor(d, h.RoomMessages)
	case DispatchRoomAddMembers:
		return decodeFor(d, h.RoomAddMembers)
	case DispatchRoomRemoveMembers:
		return decodeFor(d, h.RoomRemoveMembers)
	case DispatchRoomExit:
		return decodeFor(d, h.RoomExit)
	case DispatchRoomDelete:
		return decodeFor(d, h.RoomDelete)
	case DispatchRoomUpdate:
		return decodeFor(d, h.RoomUpdate)
	case DispatchUserSearch:
		return decodeFor(d, h.UserSearch)
	case DispatchPresence:
		return decodeFor(d, h.Presence)
	}
	return nil
}

// decodeFor decodes d's data for the handler f; nil when f is nil or the
// data does not decode.
func decodeFor[T any](d Dispatch, f func(T)) func() {
	if f == nil {
		return nil
	}
	var v T
	if err := json.Unmarshal(d.Data, &v); err != nil {
		return nil
	}
	return func() { f(v) }
}

// eventQueue runs the handlers' calls in order on one goroutine. Push
// never blocks.
type eventQueue struct {
	mu      sync.Mutex
	cond    *sync.Cond
	items   []func()
	closed  bool
	running bool
	done    chan struct{}
}

func newEventQueue() *eventQueue {
	q := &eventQueue{done: make(chan struct{})}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *eventQueue) push(f func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.items = append(q.items, f)
	q.cond.Signal()
}

// close lets the queue run what it holds, then end.
func (q *eventQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.closed = true
	if !q.running {
		close(q.done)
	}
	q.cond.Signal()
}

func (q *eventQueue) run() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.running = true
	defer close(q.done)
	for {
		for len(q.items) == 0 && !q.closed {
			q.cond.Wait()
		}
		if len(q.items) == 0 {
			q.mu.Unlock()
			return
		}
		f := q.items[0]
		q.items[0] = nil
		q.items = q.items[1:]
		q.mu.Unlock()
		f()
		q.mu.Lock()
	}
}
