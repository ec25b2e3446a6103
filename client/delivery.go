package client

import (
	"encoding/json"
	"errors"
	"sort"
	"time"
)

// room is a tracked room (docs/protocol.md#delivery). Guarded by Client.mu.
type room struct {
	id string
	// last is the last seq handed to the application (0: none yet).
	last int64
	// buffer holds live messages waiting for a catch-up, by seq, with the
	// pass they arrived in.
	buffer   map[int64]buffered
	pass     int
	catching bool
	again    bool
	retry    *time.Timer
}

type buffered struct {
	msg  *Message
	pass int
}

// handleDispatchLocked applies the delivery rule to a dispatch and hands it
// to the handlers.
func (c *Client) handleDispatchLocked(d Dispatch) {
	auto := !c.opts.NoAutoTrack
	if h := c.opts.Handlers.Dispatch; h != nil {
		c.events.push(func() { h(d) })
	}
	if f := c.typedHandler(d); f != nil {
		c.events.push(f)
	}
	switch d.EventType {
	case DispatchMessage:
		var m Message
		if json.Unmarshal(d.Data, &m) == nil {
			c.ingestLiveLocked(&m)
		}
	case DispatchRoomList:
		var items []RoomListItem
		if auto && json.Unmarshal(d.Data, &items) == nil {
			for _, it := range items {
				if it.ID != "" && c.rooms[it.ID] == nil {
					var last int64
					if it.LastMessage != nil {
						last = it.LastMessage.Seq
					}
					c.addRoomLocked(it.ID, last, true)
				}
			}
		}
	case DispatchRoomCreate:
		var r RoomDetail
		if auto && json.Unmarshal(d.Data, &r) == nil && r.ID != "" && c.rooms[r.ID] == nil {
			c.addRoomLocked(r.ID, 0, true)
		}
	case DispatchRoomAddMembers:
		// A room the user was added to: all of its messages are new.
		var m MembersDispatch
		if auto && json.Unmarshal(d.Data, &m) == nil && m.Room.ID != "" && c.rooms[m.Room.ID] == nil {
			c.addRoomLocked(m.Room.ID, 0, true)
		}
	case DispatchRoomExit:
		var e RoomExitDispatch
		if json.Unmarshal(d.Data, &e) == nil && e.Room.ID != "" {
			c.removeRoomLocked(e.Room.ID, "left")
		}
	case DispatchRoomDelete:
		var e RoomDeleteDispatch
		if json.Unmarshal(d.Data, &e) == nil && e.RoomID != "" {
			c.removeRoomLocked(e.RoomID, "deleted")
		}
	case DispatchResync:
		var r ResyncDispatch
		if json.Unmarshal(d.Data, &r) == nil {
			c.resyncLocked(r)
		}
	}
}

// TrackRoom tracks a room: its messages after afterSeq are handed to
// Handlers.Message in order, exactly once, and it is caught up after every
// reconnect. With afterSeq 0 the room's whole history is delivered.
// Tracking a tracked room changes nothing.
func (c *Client) TrackRoom(roomID string, afterSeq int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rooms[roomID] == nil && c.stopErr == nil {
		c.addRoomLocked(roomID, afterSeq, true)
	}
}

// UntrackRoom stops tracking a room.
func (c *Client) UntrackRoom(roomID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.untrackLocked(roomID)
}

// LastSeq returns the last seq handed to the application for a room, and
// whether the room is tracked.
func (c *Client) LastSeq(roomID string) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rooms[roomID]
	if r == nil {
		return 0, false
	}
	return r.last, true
}

// TrackedRooms returns the ids of the tracked rooms, sorted.
func (c *Client) TrackedRooms() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]string, 0, len(c.rooms))
	for id := range c.rooms {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func (c *Client) untrackLocked(id string) {
	if r := c.rooms[id]; r != nil {
		if r.retry != nil {
			r.retry.Stop()
		}
		delete(c.rooms, id)
	}
}

// addRoomLocked tracks a room from last on and, when connected and
// catchUp, catches it up.
func (c *Client) addRoomLocked(id string, last int64, catchUp bool) *room {
	r := &room{id: id, last: last, buffer: map[int64]buffered{}}
	c.rooms[id] = r
	if catchUp && c.sock != nil && c.sock.ready {
		c.catchUpLocked(r)
	}
	return r
}

func (c *Client) removeRoomLocked(id, reason string) {
	if c.rooms[id] == nil {
		return
	}
	c.untrackLocked(id)
	if h := c.opts.Handlers.RoomRemoved; h != nil {
		c.events.push(func() { h(id, reason) })
	}
}

// ingestLiveLocked applies the gap rule to a live message.
func (c *Client) ingestLiveLocked(m *Message) {
	if m.Room.ID == "" {
		return
	}
	c.matchSendLocked(m)
	r := c.rooms[m.Room.ID]
	if r == nil {
		if c.opts.NoAutoTrack {
			c.deliverUntrackedLocked(m)
			return
		}
		// A room the client did not know (the user may have been added
		// while away): from seq 0, so the messages before this one come
		// first.
		r = c.addRoomLocked(m.Room.ID, 0, false)
	}
	if _, held := r.buffer[m.Seq]; m.Seq <= r.last || held {
		c.stats.DuplicatesDropped++
		return
	}
	if !r.catching && m.Seq == r.last+1 {
		c.deliverLocked(r, m)
		return
	}
	r.buffer[m.Seq] = buffered{msg: m, pass: r.pass}
	if !r.catching {
		c.stats.GapsDetected++
		c.catchUpLocked(r)
	}
}

func (c *Client) deliverLocked(r *room, m *Message) {
	r.last = m.Seq
	c.stats.Delivered++
	if h := c.opts.Handlers.Message; h != nil {
		c.events.push(func() { h(m) })
	}
}

func (c *Client) deliverUntrackedLocked(m *Message) {
	if h := c.opts.Handlers.Message; h != nil {
		c.events.push(func() { h(m) })
	}
}

// catchUpLocked fetches a room's messages after its last seq, then hands
// the held live ones over in order (docs/protocol.md#catch-up).
func (c *Client) catchUpLocked(r *room) {
	if r.catching {
		r.again = true
		return
	}
	if r.retry != nil {
		r.retry.Stop()
		r.retry = nil
	}
	if c.stopErr != nil {
		return
	}
	r.catching = true
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.runCatchUp(r)
	}()
}

func (c *Client) runCatchUp(r *room) {
	err := c.catchUpPasses(r)
	if err == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r.catching = false
	if c.rooms[r.id] != r || c.stopErr != nil {
		return
	}
	if IsCode(err, CodePermissionDenied) || IsCode(err, CodeNotFound) {
		c.removeRoomLocked(r.id, "not a member")
		return
	}
	if errors.Is(err, ErrConnectionLost) {
		return // caught up after the reconnect
	}
	// A timeout or a store outage (4013): try again shortly while
	// connected.
	r.retry = time.AfterFunc(c.opts.Backoff.Delay(1, false)+100*time.Millisecond, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		r.retry = nil
		if c.sock != nil && c.sock.ready && c.rooms[r.id] == r {
			c.catchUpLocked(r)
		}
	})
}

// catchUpPasses runs catch-up passes until nothing is left to do.
func (c *Client) catchUpPasses(r *room) error {
	for {
		c.mu.Lock()
		if c.rooms[r.id] != r {
			r.catching = false
			c.mu.Unlock()
			return nil
		}
		r.again = false
		r.pass++
		pass := r.pass
		c.mu.Unlock()
		for {
			c.mu.Lock()
			after := r.last
			c.mu.Unlock()
			page, err := c.fetchAfter(r.id, after)
			if err != nil {
				return err
			}
			c.mu.Lock()
			if c.rooms[r.id] != r {
				r.catching = false
				c.mu.Unlock()
				return nil
			}
			for i := range page.Data.Messages {
				m := &page.Data.Messages[i]
				c.matchSendLocked(m)
				if m.Seq > r.last {
					delete(r.buffer, m.Seq)
					c.deliverLocked(r, m)
				} else {
					c.stats.DuplicatesDropped++
				}
			}
			more := page.HasMore && len(page.Data.Messages) > 0
			c.mu.Unlock()
			if !more {
				break
			}
		}
		c.mu.Lock()
		// Live messages that waited, in order; a gap left before one that
		// arrived before this pass asked is a deleted message.
		seqs := make([]int64, 0, len(r.buffer))
		for s := range r.buffer {
			seqs = append(seqs, s)
		}
		sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
		for _, s := range seqs {
			w := r.buffer[s]
			if s <= r.last {
				delete(r.buffer, s)
				c.stats.DuplicatesDropped++
				continue
			}
			if s == r.last+1 || w.pass < pass {
				delete(r.buffer, s)
				c.deliverLocked(r, w.msg)
				continue
			}
			break
		}
		done := !(r.again || len(r.buffer) > 0) || c.rooms[r.id] != r || c.stopErr != nil
		if done {
			// In the same critical section as the last delivery: a live
			// message from now on is judged by the gap rule afresh.
			r.catching = false
		}
		c.mu.Unlock()
		if done {
			return nil
		}
	}
}

// fetchAfter asks for a room's messages after a seq. The answer goes to
// every device of the user without request_id, so another device's answer
// to the same question may arrive in this request's window: every answer
// is merged.
func (c *Client) fetchAfter(roomID string, after int64) (*RoomMessagesPage, error) {
	select {
	case c.catchSlots <- struct{}{}:
	case <-c.ctx.Done():
		return nil, ErrConnectionLost
	}
	defer func() { <-c.catchSlots }()
	c.mu.Lock()
	c.stats.CatchUpRequests++
	c.mu.Unlock()
	matches := func(d Dispatch) bool {
		if d.EventType != DispatchRoomMessages {
			return false
		}
		var p struct {
			Data struct {
				RoomID string `json:"room_id"`
			} `json:"data"`
			AfterSeq *int64 `json:"after_seq"`
		}
		return json.Unmarshal(d.Data, &p) == nil && p.Data.RoomID == roomID && p.AfterSeq != nil && *p.AfterSeq == after
	}
	frames, err := c.request(c.ctx, "room.messages",
		map[string]any{"room_id": roomID, "after_seq": after, "limit": c.opts.CatchUpLimit}, matches, c.opts.RequestTimeout, "")
	if err != nil {
		if c.ctx.Err() != nil {
			return nil, ErrConnectionLost
		}
		return nil, err
	}
	var pages []RoomMessagesPage
	for _, f := range frames {
		var p RoomMessagesPage
		if matches(f) && json.Unmarshal(f.Data, &p) == nil {
			pages = append(pages, p)
		}
	}
	switch len(pages) {
	case 0:
		return nil, &ServerError{Detail: json.RawMessage(`"no roommessages.dispatch in the answer"`), EventType: "room.messages"}
	case 1:
		return &pages[0], nil
	}
	bySeq := map[int64]Message{}
	out := &RoomMessagesPage{Data: RoomMessages{RoomID: roomID}, AfterSeq: &after}
	for _, p := range pages {
		for _, m := range p.Data.Messages {
			bySeq[m.Seq] = m
		}
		out.HasMore = out.HasMore || p.HasMore
	}
	for _, m := range bySeq {
		out.Data.Messages = append(out.Data.Messages, m)
	}
	sort.Slice(out.Data.Messages, func(i, j int) bool { return out.Data.Messages[i].Seq < out.Data.Messages[j].Seq })
	return out, nil
}

// resyncLocked acts on chat.resync (docs/protocol.md#resync).
func (c *Client) resyncLocked(d ResyncDispatch) {
	listed := map[string]int64{}
	for _, x := range d.Rooms {
		if x.RoomID != "" {
			listed[x.RoomID] = x.Seq
		}
	}
	res := ResyncResult{Reason: d.Reason}
	for _, id := range sortedKeys(c.rooms) {
		if _, ok := listed[id]; !ok {
			res.Removed = append(res.Removed, id)
			c.removeRoomLocked(id, "resync")
		}
	}
	for _, id := range sortedKeys(listed) {
		seq := listed[id]
		r := c.rooms[id]
		switch {
		case r == nil:
			// A room the user was added to while the broker was away:
			// all of its messages are new to the user.
			if !c.opts.NoAutoTrack {
				c.addRoomLocked(id, 0, seq > 0)
				res.Added = append(res.Added, id)
			}
		case seq > r.last:
			res.CaughtUp = append(res.CaughtUp, id)
			c.catchUpLocked(r)
		}
	}
	if h := c.opts.Handlers.Resync; h != nil {
		c.events.push(func() { h(res) })
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
