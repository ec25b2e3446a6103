package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/chatmux/chatmux/client"
)

// fakeRooms holds the messages of a fake server's rooms, by room id, seq
// 1..n.
type fakeRooms struct {
	mu    sync.Mutex
	rooms map[string]int64
}

func (f *fakeRooms) set(room string, n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rooms[room] = n
}

func fakeMessage(room string, seq int64, cmid string) string {
	return fmt.Sprintf(`{"id":"%s-%d","room":{"id":%q},"sender":{"id":1,"username":"u"},"content":"m","seq":%d,"client_msg_id":%q}`,
		room, seq, room, seq, cmid)
}

// page answers room.messages after_seq from the rooms.
func (f *fakeRooms) page(data json.RawMessage) string {
	var q struct {
		RoomID   string `json:"room_id"`
		AfterSeq int64  `json:"after_seq"`
	}
	_ = json.Unmarshal(data, &q)
	f.mu.Lock()
	n := f.rooms[q.RoomID]
	f.mu.Unlock()
	var msgs []string
	for s := q.AfterSeq + 1; s <= n; s++ {
		msgs = append(msgs, fakeMessage(q.RoomID, s, ""))
	}
	return fmt.Sprintf(`{"eventType":"roommessages.dispatch","data":{"after_seq":%d,"data":{"room_id":%q,"messages":[%s]},"has_more":false,"limit":100}}`,
		q.AfterSeq, q.RoomID, strings.Join(msgs, ","))
}

// readRequest reads one client envelope with its data.
func readRequest(ws *websocket.Conn) (event, rid string, data json.RawMessage, err error) {
	_, b, err := ws.Read(context.Background())
	if err != nil {
		return "", "", nil, err
	}
	var env struct {
		EventType string          `json:"event_type"`
		RequestID string          `json:"request_id"`
		Data      json.RawMessage `json:"data"`
	}
	err = json.Unmarshal(b, &env)
	return env.EventType, env.RequestID, env.Data, err
}

// TestResync: on chat.resync the client catches up the listed rooms it is
// behind in, tracks the listed rooms it did not know from seq 0, and
// stops tracking the rooms not listed (docs/protocol.md#resync).
func TestResync(t *testing.T) {
	rooms := &fakeRooms{rooms: map[string]int64{"A": 3, "B": 0}}
	resync := make(chan string)
	f := newFakeServer(t, func(_ int, _ *http.Request, ws *websocket.Conn) {
		over := make(chan struct{})
		defer close(over)
		go func() {
			select {
			case r, ok := <-resync:
				if ok {
					write(ws, r)
				}
			case <-over:
			}
		}()
		for {
			ev, rid, data, err := readRequest(ws)
			if err != nil {
				return
			}
			if ev == "room.messages" {
				write(ws, rooms.page(data))
			}
			answerOK(ws, ev, rid)
		}
	})
	var mu sync.Mutex
	var results []client.ResyncResult
	rec := newRecorder()
	opts := client.Options{URL: f.url(), Backoff: fastBackoff, Handlers: rec.handlers()}
	opts.Handlers.Resync = func(r client.ResyncResult) {
		mu.Lock()
		results = append(results, r)
		mu.Unlock()
		rec.mu.Lock()
		rec.notifyLocked()
		rec.mu.Unlock()
	}
	c, err := client.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeClient(t, c) })
	c.TrackRoom("A", 1)
	c.TrackRoom("B", 0)
	c.Start()
	rec.wait(t, "A caught up", func() bool { return rec.countLocked("A") == 2 })

	rooms.set("A", 5)
	rooms.set("C", 2)
	resync <- `{"eventType":"chat.resync","data":{"rooms":[{"room_id":"A","seq":5},{"room_id":"C","seq":2}],"reason":"broker"}}`
	close(resync)
	rec.wait(t, "A and C caught up", func() bool { return rec.countLocked("A") == 4 && rec.countLocked("C") == 2 })
	var seqs []int64
	for _, m := range rec.roomMessages("A") {
		seqs = append(seqs, m.Seq)
	}
	if !slices.Equal(seqs, []int64{2, 3, 4, 5}) {
		t.Fatalf("room A delivered %v, want 2..5", seqs)
	}
	if got := c.TrackedRooms(); !slices.Equal(got, []string{"A", "C"}) {
		t.Fatalf("tracked %v, want A and C", got)
	}
	rec.wait(t, "the resync result", func() bool { mu.Lock(); defer mu.Unlock(); return len(results) == 1 })
	mu.Lock()
	r := results[0]
	mu.Unlock()
	if r.Reason != "broker" || !slices.Equal(r.CaughtUp, []string{"A"}) || !slices.Equal(r.Added, []string{"C"}) || !slices.Equal(r.Removed, []string{"B"}) {
		t.Fatalf("resync result %+v", r)
	}
}

// TestSendRetriedAfterUnavailable: a message.send answered 4013 stays in
// the outbox and is sent again with the same client_msg_id; its result
// arrives once.
func TestSendRetriedAfterUnavailable(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	f := newFakeServer(t, func(_ int, _ *http.Request, ws *websocket.Conn) {
		for {
			ev, rid, data, err := readRequest(ws)
			if err != nil {
				return
			}
			if ev != "message.send" {
				answerOK(ws, ev, rid)
				continue
			}
			var d struct {
				RoomID      string `json:"room_id"`
				ClientMsgID string `json:"client_msg_id"`
			}
			_ = json.Unmarshal(data, &d)
			mu.Lock()
			seen = append(seen, d.ClientMsgID)
			n := len(seen)
			mu.Unlock()
			if n == 1 {
				write(ws, `{"error":{"code":4013,"detail":"Service temporarily unavailable, try again."},"request_id":"`+rid+`"}`)
				continue
			}
			write(ws, `{"eventType":"message.dispatch","data":`+fakeMessage(d.RoomID, 1, d.ClientMsgID)+`}`)
			answerOK(ws, ev, rid)
		}
	})
	c, rec := newClient(t, client.Options{URL: f.url(), Backoff: fastBackoff})
	c.Start()
	ctx := ctxT(t)
	m, err := c.SendMessage(ctx, client.OutgoingMessage{RoomID: "R", Content: "x", ClientMsgID: "c-7"})
	if err != nil || m.ClientMsgID != "c-7" {
		t.Fatalf("SendMessage = %+v, %v", m, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(seen, []string{"c-7", "c-7"}) {
		t.Fatalf("the server read %v, want c-7 twice", seen)
	}
	if s := c.Stats(); s.Resends != 1 || s.SendsTransmitted != 2 {
		t.Fatalf("stats %+v, want 2 transmissions, 1 resend", s)
	}
	rec.wait(t, "Sent once", func() bool { return rec.sent["c-7"] == 1 && len(rec.failed) == 0 })
}

// TestReplayRateLimited: a message sent again by the client (here: made
// before the connection) and answered 4029 stays in the outbox and goes
// out again after the interval the error states; a message the user makes
// while connected and that is answered 4029 is refused.
func TestReplayRateLimited(t *testing.T) {
	var mu sync.Mutex
	sends := map[string]int{}
	f := newFakeServer(t, func(_ int, _ *http.Request, ws *websocket.Conn) {
		for {
			ev, rid, data, err := readRequest(ws)
			if err != nil {
				return
			}
			if ev != "message.send" {
				answerOK(ws, ev, rid)
				continue
			}
			var d struct {
				RoomID      string `json:"room_id"`
				ClientMsgID string `json:"client_msg_id"`
			}
			_ = json.Unmarshal(data, &d)
			mu.Lock()
			sends[d.ClientMsgID]++
			k := sends[d.ClientMsgID]
			mu.Unlock()
			if k == 1 {
				write(ws, `{"error":{"code":4029,"detail":"Rate limit exceeded: 10 events per 200ms for message.send."},"request_id":"`+rid+`"}`)
				continue
			}
			write(ws, `{"eventType":"message.dispatch","data":`+fakeMessage(d.RoomID, int64(k), d.ClientMsgID)+`}`)
			answerOK(ws, ev, rid)
		}
	})
	c, rec := newClient(t, client.Options{URL: f.url(), Backoff: fastBackoff})
	if _, err := c.Enqueue(client.OutgoingMessage{RoomID: "R", Content: "early", ClientMsgID: "c-early"}); err != nil {
		t.Fatal(err)
	}
	c.Start()
	rec.wait(t, "the early message is stored", func() bool { return rec.sent["c-early"] == 1 })
	if s := c.Stats(); s.RateLimited != 1 || s.Resends != 1 {
		t.Fatalf("stats %+v, want one 4029 and one resend", s)
	}
	_, err := c.SendMessage(ctxT(t), client.OutgoingMessage{RoomID: "S", Content: "now", ClientMsgID: "c-now"})
	if !isServerCode(err, client.CodeRateLimited) {
		t.Fatalf("a message made while connected: %v, want 4029", err)
	}
	rec.wait(t, "SendFailed for it", func() bool { return rec.failed["c-now"] != nil })
}
