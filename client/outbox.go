package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// OutboxEntry is a message waiting in the outbox.
type OutboxEntry struct {
	ClientMsgID string                     `json:"client_msg_id"`
	RoomID      string                     `json:"room_id"`
	Content     string                     `json:"content"`
	ExtraFields map[string]json.RawMessage `json:"extra_fields,omitempty"`
	CreatedAt   time.Time                  `json:"created_at"`
}

// OutgoingMessage is a message to send (docs/protocol.md#message-send).
type OutgoingMessage struct {
	// RoomID is the room (required).
	RoomID string
	// Content is the message's HTML content (docs/protocol.md#content).
	Content string
	// ClientMsgID is the idempotency key; generated when empty. Sending
	// again with the same key while the message is in the outbox waits for
	// the same result.
	ClientMsgID string
	// ParentMessageID makes the message a reply.
	ParentMessageID string
	// ForwardedFromID makes the message a forward.
	ForwardedFromID string
	// Media are the attachments.
	Media []NewAttachment
	// Extra are further extra_fields the host registered.
	Extra map[string]any
}

type outState int

const (
	stateQueued outState = iota
	stateInflight
	stateWaiting
)

// outItem is a message of the outbox. Guarded by Client.mu.
type outItem struct {
	entry OutboxEntry
	state outState
	// replay: sent again (made while disconnected or behind a replay,
	// restored, or sent again after a connection was lost). A 4029 keeps
	// it in the outbox; a 4029 to a message the user just made while
	// connected is a refusal.
	replay      bool
	attempts    int
	transmitted int
	tx          int // the number of its current transmission
	timer       *time.Timer
	finished    bool
	msg         *Message
	err         error
	done        chan struct{}
}

// PendingMessages returns the messages waiting in the outbox, in send
// order: keep them to pass to a later client's Options.RestoreOutbox.
func (c *Client) PendingMessages() []OutboxEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]OutboxEntry, len(c.outbox))
	for i, it := range c.outbox {
		out[i] = it.entry
	}
	return out
}

// SendMessage sends a message and returns it once stored: the sender's own
// message.dispatch, matched by client_msg_id. While disconnected the
// message waits in the outbox and is sent after the reconnect with the same
// client_msg_id, so it is stored once however often it is sent
// (docs/protocol.md#idempotent-sends). It fails with a *ServerError when
// the server refuses it (nothing stored), ErrOutboxFull,
// *FrameRejectedError when its frame is over the server's limit, the
// client's stop error, or ctx's error. When ctx ends or the client stops
// first, the message stays in the outbox: it is still sent, and
// Handlers.Sent or Handlers.SendFailed tell how it ended. 4013 is retried;
// so is 4029 for a message sent again by the client (a replay).
func (c *Client) SendMessage(ctx context.Context, m OutgoingMessage) (*Message, error) {
	it, err := c.enqueue(m)
	if err != nil {
		return nil, err
	}
	select {
	case <-it.done:
		return it.msg, it.err
	case <-c.stopped:
		return nil, c.Err()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Enqueue puts a message in the outbox and returns its client_msg_id
// without waiting: Handlers.Sent or Handlers.SendFailed tell how it ended.
func (c *Client) Enqueue(m OutgoingMessage) (string, error) {
	it, err := c.enqueue(m)
	if err != nil {
		return "", err
	}
	return it.entry.ClientMsgID, nil
}

func (c *Client) enqueue(m OutgoingMessage) (*outItem, error) {
	if m.RoomID == "" {
		return nil, errors.New("chatmux client: SendMessage: RoomID is required")
	}
	if len(m.ClientMsgID) > maxClientMsgIDBytes {
		return nil, fmt.Errorf("chatmux client: SendMessage: ClientMsgID is over %d bytes", maxClientMsgIDBytes)
	}
	extra := map[string]json.RawMessage{}
	for k, v := range m.Extra {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("chatmux client: SendMessage: extra field %q: %w", k, err)
		}
		extra[k] = b
	}
	if m.ParentMessageID != "" {
		extra["parent_message_id"], _ = json.Marshal(m.ParentMessageID)
	}
	if m.ForwardedFromID != "" {
		extra["forwarded_from_id"], _ = json.Marshal(m.ForwardedFromID)
	}
	if len(m.Media) > 0 {
		b, err := json.Marshal(m.Media)
		if err != nil {
			return nil, fmt.Errorf("chatmux client: SendMessage: media: %w", err)
		}
		extra["media"] = b
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopErr != nil {
		return nil, c.stopErr
	}
	if m.ClientMsgID != "" {
		if it := c.outboxByID[m.ClientMsgID]; it != nil {
			return it, nil
		}
	}
	if len(c.outbox) >= c.opts.OutboxMax {
		return nil, fmt.Errorf("%w (%d unsent messages)", ErrOutboxFull, len(c.outbox))
	}
	e := OutboxEntry{ClientMsgID: m.ClientMsgID, RoomID: m.RoomID, Content: m.Content, CreatedAt: time.Now()}
	if e.ClientMsgID == "" {
		e.ClientMsgID = c.opts.NewClientMsgID()
	}
	if len(extra) > 0 {
		e.ExtraFields = extra
	}
	// The frame with the longest request_id the client makes.
	if n := len(encodeEnvelope("message.send", sendData(e), "r0000000000000")); c.frameLimit > 0 && n > c.frameLimit {
		return nil, &FrameRejectedError{Code: CloseTooBig, Bytes: n, Limit: c.frameLimit, EventType: "message.send"}
	}
	// A message waits behind a replay in progress.
	replay := c.sock == nil || !c.sock.ready
	for _, o := range c.outbox {
		replay = replay || o.replay
	}
	it := &outItem{entry: e, replay: replay, done: make(chan struct{})}
	c.outbox = append(c.outbox, it)
	c.outboxByID[e.ClientMsgID] = it
	c.pumpOutboxLocked()
	return it, nil
}

// sendData is the data of the message.send of an entry.
func sendData(e OutboxEntry) json.RawMessage {
	d := struct {
		RoomID      string                     `json:"room_id"`
		Content     string                     `json:"content"`
		ClientMsgID string                     `json:"client_msg_id"`
		ExtraFields map[string]json.RawMessage `json:"extra_fields,omitempty"`
	}{e.RoomID, e.Content, e.ClientMsgID, e.ExtraFields}
	b, _ := json.Marshal(d) // strings and raw JSON: cannot fail
	return b
}

// pumpOutboxLocked sends what the outbox holds, in order, up to
// MaxSendsInFlight at once. Replayed messages go one per room at a time,
// so that one the server refuses for now (4029, 4013) is not overtaken by
// the next of its room, and not before a 4029's hold ends.
func (c *Client) pumpOutboxLocked() {
	s := c.sock
	if s == nil || !s.ready || c.stopErr != nil {
		return
	}
	inflight := 0
	busy := map[string]bool{}
	for _, it := range c.outbox {
		if it.state != stateQueued {
			busy[it.entry.RoomID] = true
		}
		if it.state == stateInflight {
			inflight++
		}
	}
	now := time.Now()
	for _, it := range c.outbox {
		if inflight >= c.opts.MaxSendsInFlight {
			return
		}
		if it.state != stateQueued {
			continue
		}
		if it.replay {
			if busy[it.entry.RoomID] {
				continue
			}
			if wait := c.holdUntil.Sub(now); wait > 0 {
				if c.holdTimer == nil {
					c.holdTimer = time.AfterFunc(wait, func() {
						c.mu.Lock()
						defer c.mu.Unlock()
						c.holdTimer = nil
						c.pumpOutboxLocked()
					})
				}
				return // in order: what comes after waits too
			}
			busy[it.entry.RoomID] = true
		}
		inflight++
		c.transmitSendLocked(it)
	}
}

// transmitSendLocked sends one message of the outbox.
func (c *Client) transmitSendLocked(it *outItem) {
	it.state = stateInflight
	if it.transmitted > 0 {
		c.stats.Resends++
	}
	it.transmitted++
	it.tx++
	tx := it.tx
	c.stats.SendsTransmitted++
	e := it.entry
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		_, err := c.request(c.ctx, "message.send", sendData(e), nil, c.opts.RequestTimeout, e.ClientMsgID)
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.outboxByID[e.ClientMsgID] != it || it.tx != tx || it.state != stateInflight || c.stopErr != nil {
			return
		}
		c.sendAnsweredLocked(it, err)
	}()
}

// sendAnsweredLocked acts on the final answer to a message.send whose
// message is still in the outbox.
func (c *Client) sendAnsweredLocked(it *outItem, err error) {
	var se *ServerError
	var fr *FrameRejectedError
	switch {
	case err == nil:
		// Answered without the message reaching this socket (one
		// truthful answer per send: it was stored). Catch the room up,
		// then send again if it is still missing: the server answers a
		// known client_msg_id with the stored message.
		if r := c.rooms[it.entry.RoomID]; r != nil {
			c.catchUpLocked(r)
		}
		c.waitLocked(it, c.opts.Backoff.Delay(it.attempts, false)+200*time.Millisecond)
	case errors.As(err, &fr):
		c.failSendLocked(it, err)
	case errors.As(err, &se) && se.Code == CodeRateLimited && (it.replay || it.transmitted > 1):
		// Sent again by the client: the user's send is not refused for
		// the rate of the client's own resending; the replay is paced
		// (docs/protocol.md#rate-limits).
		c.stats.RateLimited++
		it.replay = true
		delay := c.opts.Backoff.Delay(it.attempts, false)
		if iv := rateLimitInterval(se.DetailText()); iv > 0 {
			delay = iv + Backoff{Base: iv, Cap: c.opts.Backoff.Cap, Random: c.opts.Backoff.Random}.Delay(it.attempts, false)
		}
		it.attempts++
		if until := time.Now().Add(delay); until.After(c.holdUntil) {
			c.holdUntil = until
		}
		it.state = stateQueued
		c.pumpOutboxLocked()
	case errors.As(err, &se) && se.Code != CodeUnavailable && se.Code != 0:
		c.failSendLocked(it, err)
	case errors.As(err, &se) || errors.Is(err, ErrRequestTimeout):
		// 4013 or no answer: nothing or the message was stored; the same
		// client_msg_id is safe to send again.
		c.waitLocked(it, c.opts.Backoff.Delay(it.attempts, false))
		it.attempts++
	default:
		// The connection was lost: queued for the next one.
		it.state = stateQueued
	}
}

// waitLocked sends it again after delay.
func (c *Client) waitLocked(it *outItem, delay time.Duration) {
	it.state = stateWaiting
	it.timer = time.AfterFunc(delay, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.outboxByID[it.entry.ClientMsgID] != it || it.state != stateWaiting {
			return
		}
		it.timer = nil
		it.state = stateQueued
		c.pumpOutboxLocked()
	})
}

func (c *Client) removeItemLocked(it *outItem) {
	delete(c.outboxByID, it.entry.ClientMsgID)
	for i, o := range c.outbox {
		if o == it {
			c.outbox = append(c.outbox[:i], c.outbox[i+1:]...)
			break
		}
	}
	if it.timer != nil {
		it.timer.Stop()
		it.timer = nil
	}
}

// failSendLocked removes a refused message from the outbox.
func (c *Client) failSendLocked(it *outItem, err error) {
	c.removeItemLocked(it)
	c.finishLocked(it, nil, err)
	if h := c.opts.Handlers.SendFailed; h != nil {
		id, room := it.entry.ClientMsgID, it.entry.RoomID
		c.events.push(func() { h(id, room, err) })
	}
	c.pumpOutboxLocked()
}

// matchSendLocked ends the outbox's message that m stores, if any.
func (c *Client) matchSendLocked(m *Message) {
	if m.ClientMsgID == "" {
		return
	}
	it := c.outboxByID[m.ClientMsgID]
	if it == nil || it.entry.RoomID != m.Room.ID {
		return
	}
	c.removeItemLocked(it)
	c.finishLocked(it, m, nil)
	if h := c.opts.Handlers.Sent; h != nil {
		c.events.push(func() { h(m.ClientMsgID, m) })
	}
	c.pumpOutboxLocked()
}

func (c *Client) finishLocked(it *outItem, m *Message, err error) {
	if it.finished {
		return
	}
	it.finished = true
	it.msg, it.err = m, err
	close(it.done)
}
