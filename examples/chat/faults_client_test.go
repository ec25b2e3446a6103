package main

// fclient is the WebSocket client of the fault tests: it reads every frame
// in a goroutine of its own and records what a chat client keeps (the
// messages of each room by seq, its own sends' answers by request_id, the
// chat.resync frames), and it follows the delivery rule of
// docs/protocol.md#delivery: on a gap in a room's seq, and on a chat.resync
// that lists a seq above the last it has, it catches the room up with
// room.messages after_seq.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fframe is one server frame, decoded loosely.
type fframe struct {
	EventType string          `json:"eventType"`
	Data      json.RawMessage `json:"data"`
	Error     json.RawMessage `json:"error"`
	RequestID string          `json:"request_id"`
	OK        bool            `json:"ok"`
	Status    string          `json:"status"`
}

// fmessage is the part of a Message object the fault tests read.
type fmessage struct {
	ID   string `json:"id"`
	Room struct {
		ID string `json:"id"`
	} `json:"room"`
	Sender struct {
		ID int64 `json:"id"`
	} `json:"sender"`
	Seq         int64  `json:"seq"`
	ClientMsgID string `json:"client_msg_id"`
}

// ffinal is the final frame of a request: {"request_id", "ok": true} or
// an error envelope with the request_id.
type ffinal struct {
	OK   bool
	Code int    // the error's code, 0 when none
	Raw  string // the error as sent
	At   time.Time
	// Acked, for a message.send: the sender's own message.dispatch had
	// arrived when the final frame came.
	Acked bool
}

// fseen is a message the client has, by dispatch or catch-up.
type fseen struct {
	ClientMsgID string
	Sender      int64
	Dispatch    bool // by message.dispatch (else by room.messages)
	At          time.Time
}

// fresync is one chat.resync frame.
type fresync struct {
	At    time.Time
	Rooms map[string]int64
}

// fpresence is one presence.dispatch frame.
type fpresence struct {
	RoomID   string  `json:"room_id"`
	UserID   int64   `json:"user_id"`
	Online   bool    `json:"online"`
	LastSeen *string `json:"last_seen"`
	At       time.Time
}

// fclient is one WebSocket user of a node.
type fclient struct {
	t    *testing.T
	name string
	id   int64
	node string
	ws   *websocket.Conn

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every change
	finals   map[string]ffinal
	rooms    map[string]map[int64]fseen
	own      map[string]int64 // client_msg_id of its own dispatched messages -> seq
	resyncs  []fresync
	presence []fpresence                // presence.dispatch frames, in arrival order
	counts   map[string]int             // frames by eventType; "error" for error envelopes
	lastData map[string]json.RawMessage // the data of the last frame of each eventType
	errs     []string                   // error envelopes without a request_id
	closed   bool
	closeErr error
	closedAt time.Time
	nextReq  int

	catchUp chan struct{} // capacity 1: a room may have a gap
	done    chan struct{} // closed when the reader has returned
}

// dialClient opens a WebSocket to the node as user name (development
// sign-in) and waits for its chat.notifications. It fails the test when
// the connection is refused or closed.
func dialClient(t *testing.T, hc *http.Client, node, base, name string) *fclient {
	t.Helper()
	c, err := tryClient(t, hc, node, base, name)
	if err != nil {
		t.Fatalf("%s on %s: %v", name, node, err)
	}
	return c
}

// tryClient is dialClient returning an error instead of failing.
func tryClient(t *testing.T, hc *http.Client, node, base, name string) (*fclient, error) {
	id, err := userID(hc, base, name)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/messaging/?user="+name, nil)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	ws.SetReadLimit(32 << 20)
	c := &fclient{t: t, name: name, id: id, node: node, ws: ws, changed: make(chan struct{}),
		finals: map[string]ffinal{}, rooms: map[string]map[int64]fseen{}, own: map[string]int64{},
		counts: map[string]int{}, lastData: map[string]json.RawMessage{}, catchUp: make(chan struct{}, 1), done: make(chan struct{})}
	stop := make(chan struct{})
	go c.read()
	go c.catchUpLoop(stop)
	t.Cleanup(func() {
		close(stop)
		_ = ws.CloseNow()
		<-c.done
	})
	// closed is read under c.mu: the reader sets it when the connection
	// ends, possibly long after this (a node killed later).
	if !c.waitUntil(20*time.Second, func() bool { return c.counts["chat.notifications"] > 0 || c.closed }) || c.isClosed() {
		c.mu.Lock()
		defer c.mu.Unlock()
		return nil, fmt.Errorf("no chat.notifications (closed %v: %v)", c.closed, c.closeErr)
	}
	return c, nil
}

// userID asks the node who name is (/me), creating the user.
func userID(hc *http.Client, base, name string) (int64, error) {
	res, err := hc.Get(base + "/me?user=" + name)
	if err != nil {
		return 0, fmt.Errorf("/me: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("/me?user=%s: %s", name, res.Status)
	}
	var me struct {
		ID int64 `json:"id"`
	}
	if err := json.NewDecoder(res.Body).Decode(&me); err != nil {
		return 0, fmt.Errorf("/me: %w", err)
	}
	return me.ID, nil
}

// notifyLocked wakes every waiter; c.mu is held.
func (c *fclient) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// waitUntil waits until cond (called with c.mu held) holds, at most limit,
// and reports whether it does.
func (c *fclient) waitUntil(limit time.Duration, cond func() bool) bool {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		c.mu.Lock()
		ok, ch := cond(), c.changed
		c.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-timer.C:
			c.mu.Lock()
			defer c.mu.Unlock()
			return cond()
		}
	}
}

// read records every frame until the connection ends.
func (c *fclient) read() {
	defer close(c.done)
	for {
		_, b, err := c.ws.Read(context.Background())
		now := time.Now()
		if err != nil {
			c.mu.Lock()
			c.closed, c.closeErr, c.closedAt = true, err, now
			c.notifyLocked()
			c.mu.Unlock()
			return
		}
		var f fframe
		if err := json.Unmarshal(b, &f); err != nil {
			c.mu.Lock()
			c.errs = append(c.errs, "bad frame: "+string(b))
			c.notifyLocked()
			c.mu.Unlock()
			continue
		}
		c.mu.Lock()
		gap := c.recordLocked(f, now)
		c.notifyLocked()
		c.mu.Unlock()
		if gap {
			c.kickCatchUp()
		}
	}
}

// recordLocked records a frame; it reports whether a room may need a
// catch-up (a gap, or a chat.resync). c.mu is held.
func (c *fclient) recordLocked(f fframe, now time.Time) bool {
	switch {
	case f.Error != nil:
		c.counts["error"]++
		if f.RequestID == "" {
			c.errs = append(c.errs, string(f.Error))
			return false
		}
		var e struct {
			Code int `json:"code"`
		}
		_ = json.Unmarshal(f.Error, &e)
		c.finalLocked(f.RequestID, ffinal{Code: e.Code, Raw: string(f.Error), At: now})
		return false
	case f.OK && f.RequestID != "":
		fin := ffinal{OK: true, At: now}
		if cmid, ok := strings.CutPrefix(f.RequestID, "send:"); ok {
			_, fin.Acked = c.own[cmid]
		}
		c.finalLocked(f.RequestID, fin)
		return false
	}
	if f.Status != "" {
		c.counts["status:"+f.Status]++
	}
	c.counts[f.EventType]++
	c.lastData[f.EventType] = f.Data
	switch f.EventType {
	case "message.dispatch":
		var m fmessage
		if json.Unmarshal(f.Data, &m) != nil || m.Seq == 0 {
			c.errs = append(c.errs, "bad message.dispatch: "+string(f.Data))
			return false
		}
		if m.Sender.ID == c.id && m.ClientMsgID != "" {
			c.own[m.ClientMsgID] = m.Seq
		}
		seqs := c.roomLocked(m.Room.ID)
		if _, dup := seqs[m.Seq]; !dup {
			seqs[m.Seq] = fseen{ClientMsgID: m.ClientMsgID, Sender: m.Sender.ID, Dispatch: true, At: now}
		}
		return m.Seq > 1 && !c.hasLocked(m.Room.ID, m.Seq-1)
	case "roommessages.dispatch":
		var p struct {
			Data struct {
				RoomID   string     `json:"room_id"`
				Messages []fmessage `json:"messages"`
			} `json:"data"`
		}
		if json.Unmarshal(f.Data, &p) != nil {
			c.errs = append(c.errs, "bad roommessages.dispatch: "+string(f.Data))
			return false
		}
		seqs := c.roomLocked(p.Data.RoomID)
		for _, m := range p.Data.Messages {
			if _, dup := seqs[m.Seq]; !dup {
				seqs[m.Seq] = fseen{ClientMsgID: m.ClientMsgID, Sender: m.Sender.ID, At: now}
			}
		}
	case "presence.dispatch":
		var p fpresence
		if json.Unmarshal(f.Data, &p) != nil || p.UserID == 0 {
			c.errs = append(c.errs, "bad presence.dispatch: "+string(f.Data))
			return false
		}
		p.At = now
		c.presence = append(c.presence, p)
	case "chat.resync":
		var p struct {
			Rooms []struct {
				RoomID string `json:"room_id"`
				Seq    int64  `json:"seq"`
			} `json:"rooms"`
		}
		if json.Unmarshal(f.Data, &p) != nil {
			c.errs = append(c.errs, "bad chat.resync: "+string(f.Data))
			return false
		}
		r := fresync{At: now, Rooms: map[string]int64{}}
		for _, room := range p.Rooms {
			r.Rooms[room.RoomID] = room.Seq
			c.roomLocked(room.RoomID)
		}
		c.resyncs = append(c.resyncs, r)
		return true
	}
	return false
}

// finalLocked records the final frame of a request; a second one for the
// same request_id is recorded as an error.
func (c *fclient) finalLocked(rid string, fin ffinal) {
	if prev, dup := c.finals[rid]; dup {
		c.errs = append(c.errs, fmt.Sprintf("second final frame for %s: %+v after %+v", rid, fin, prev))
		return
	}
	c.finals[rid] = fin
}

// roomLocked returns the messages of a room the client has.
func (c *fclient) roomLocked(roomID string) map[int64]fseen {
	seqs := c.rooms[roomID]
	if seqs == nil {
		seqs = map[int64]fseen{}
		c.rooms[roomID] = seqs
	}
	return seqs
}

func (c *fclient) hasLocked(roomID string, seq int64) bool {
	_, ok := c.rooms[roomID][seq]
	return ok
}

// lastLocked returns the last seq the client has of a room with every
// message before it: where a catch-up starts.
func (c *fclient) lastLocked(roomID string) int64 {
	seqs := c.rooms[roomID]
	var last int64
	for {
		if _, ok := seqs[last+1]; !ok {
			return last
		}
		last++
	}
}

// wantLocked returns the highest seq the client knows exists in a room:
// the highest it has, or a chat.resync listed.
func (c *fclient) wantLocked(roomID string) int64 {
	var want int64
	for seq := range c.rooms[roomID] {
		want = max(want, seq)
	}
	for _, r := range c.resyncs {
		want = max(want, r.Rooms[roomID])
	}
	return want
}

func (c *fclient) kickCatchUp() {
	select {
	case c.catchUp <- struct{}{}:
	default:
	}
}

// catchUpLoop catches up, with room.messages after_seq, every room where
// the client knows of messages it does not have (docs/protocol.md#catch-up),
// each time it is kicked, until stop.
func (c *fclient) catchUpLoop(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-c.done:
			return
		case <-c.catchUp:
		}
		c.catchUpOnce()
	}
}

// catchUpOnce fetches after_seq=last for every room with a known gap,
// page after page, while that makes progress.
func (c *fclient) catchUpOnce() {
	c.mu.Lock()
	rooms := make([]string, 0, len(c.rooms))
	for id := range c.rooms {
		rooms = append(rooms, id)
	}
	c.mu.Unlock()
	for _, room := range rooms {
		for range 100 {
			c.mu.Lock()
			last, want := c.lastLocked(room), c.wantLocked(room)
			// A room the latest chat.resync does not list is a room
			// the client was removed from: nothing to fetch.
			listed := true
			if n := len(c.resyncs); n > 0 {
				_, listed = c.resyncs[n-1].Rooms[room]
			}
			c.mu.Unlock()
			if last >= want || !listed {
				break
			}
			fin, ok := c.call("room.messages", map[string]any{"room_id": room, "after_seq": last, "limit": 100}, 10*time.Second)
			if !ok || !fin.OK {
				break
			}
			c.mu.Lock()
			progress := c.lastLocked(room) > last
			c.mu.Unlock()
			if !progress {
				break
			}
		}
	}
}

// write sends an event with a request_id ("" for none).
func (c *fclient) write(event, requestID string, data any) error {
	env := map[string]any{"event_type": event, "data": data}
	if requestID != "" {
		env["request_id"] = requestID
	}
	b, err := json.Marshal(env)
	if err != nil {
		return err
	}
	return c.writeRaw(b)
}

// writeRaw sends a frame as is.
func (c *fclient) writeRaw(b []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// call sends an event with a request_id of its own and waits, at most
// limit, for its final frame; ok is false when none came.
func (c *fclient) call(event string, data any, limit time.Duration) (ffinal, bool) {
	c.mu.Lock()
	c.nextReq++
	rid := "r" + strconv.Itoa(c.nextReq)
	c.mu.Unlock()
	return c.request(event, rid, data, limit)
}

// request sends an event with request_id rid and waits, at most limit,
// for its final frame.
func (c *fclient) request(event, rid string, data any, limit time.Duration) (ffinal, bool) {
	if err := c.write(event, rid, data); err != nil {
		return ffinal{}, false
	}
	return c.final(rid, limit)
}

// final waits, at most limit, for the final frame of request rid; ok is
// false when none came (the connection may have closed first).
func (c *fclient) final(rid string, limit time.Duration) (ffinal, bool) {
	ok := c.waitUntil(limit, func() bool {
		_, have := c.finals[rid]
		return have || c.closed
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	fin, have := c.finals[rid]
	return fin, ok && have
}

// mustCall is call that fails the test unless the answer is ok.
func (c *fclient) mustCall(event string, data any) {
	c.t.Helper()
	fin, ok := c.call(event, data, 15*time.Second)
	if !ok || !fin.OK {
		c.t.Fatalf("%s: %s: answer %+v (answered %v)", c.name, event, fin, ok)
	}
}

// send sends message.send with client_msg_id cmid (its request_id is
// "send:"+cmid) and waits, at most limit, for the final frame.
func (c *fclient) send(roomID, cmid string, limit time.Duration) (ffinal, bool) {
	if err := c.writeSend(roomID, cmid); err != nil {
		return ffinal{}, false
	}
	return c.final("send:"+cmid, limit)
}

// writeSend sends message.send with client_msg_id cmid (its request_id is
// "send:"+cmid) without waiting for the answer.
func (c *fclient) writeSend(roomID, cmid string) error {
	return c.write("message.send", "send:"+cmid,
		map[string]any{"room_id": roomID, "content": "message " + cmid, "client_msg_id": cmid})
}

// data returns the data of the last frame of eventType.
func (c *fclient) data(eventType string) json.RawMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastData[eventType]
}

// errors returns the error envelopes without a request_id and the
// anomalies the client saw (second final frames, frames it could not read).
func (c *fclient) errors() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.errs...)
}

// count returns how many frames of eventType the client has read.
func (c *fclient) count(eventType string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[eventType]
}

// resyncAfter returns the first chat.resync read after t.
func (c *fclient) resyncAfter(t time.Time) (fresync, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.resyncs {
		if r.At.After(t) {
			return r, true
		}
	}
	return fresync{}, false
}

// messages returns a copy of the messages the client has of a room.
func (c *fclient) messages(roomID string) map[int64]fseen {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[int64]fseen, len(c.rooms[roomID]))
	for k, v := range c.rooms[roomID] {
		out[k] = v
	}
	return out
}

// closeStatus returns how the connection ended: its close code (-1 when
// it has not ended, 0 when it ended without a close frame) and when.
func (c *fclient) closeStatus() (websocket.StatusCode, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		return -1, time.Time{}
	}
	code := websocket.CloseStatus(c.closeErr)
	if code == -1 {
		code = 0
	}
	return code, c.closedAt
}

// dialRefused opens a WebSocket as user name and waits, at most limit, for
// the server to close it; it returns the close code (-1 when the server
// sent a frame or nothing instead, 0 when the connection ended without a
// close frame), how long from the dial, and the dial's error when the
// upgrade failed.
func dialRefused(base, name string, limit time.Duration) (websocket.StatusCode, time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/messaging/?user="+name, nil)
	if err != nil {
		return 0, time.Since(start), err
	}
	defer ws.CloseNow()
	_, _, err = ws.Read(ctx)
	if err == nil || ctx.Err() != nil {
		// A frame (the connection is open), or nothing at all.
		return -1, time.Since(start), nil
	}
	code := websocket.CloseStatus(err)
	if code == -1 {
		code = 0
	}
	return code, time.Since(start), nil
}
