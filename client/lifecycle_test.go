package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/chatmux/chatmux/client"
)

// TestSendOutlivesItsContext: a SendMessage whose context ends leaves its
// message in the outbox; it is still stored, and Sent says so once.
func TestSendOutlivesItsContext(t *testing.T) {
	release := make(chan struct{})
	f := newFakeServer(t, func(_ int, _ *http.Request, ws *websocket.Conn) {
		for {
			ev, rid, data, err := readRequest(ws)
			if err != nil {
				return
			}
			if ev == "message.send" {
				var d struct {
					RoomID      string `json:"room_id"`
					ClientMsgID string `json:"client_msg_id"`
				}
				_ = json.Unmarshal(data, &d)
				<-release
				write(ws, `{"eventType":"message.dispatch","data":`+fakeMessage(d.RoomID, 1, d.ClientMsgID)+`}`)
			}
			answerOK(ws, ev, rid)
		}
	})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free) // before the server's cleanup, which waits for its handlers
	c, rec := newClient(t, client.Options{URL: f.url(), Backoff: fastBackoff})
	c.Start()
	ctx, cancel := context.WithTimeout(ctxT(t), 50*time.Millisecond)
	defer cancel()
	_, err := c.SendMessage(ctx, client.OutgoingMessage{RoomID: "R", Content: "x", ClientMsgID: "c-9"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("SendMessage: %v, want the context's deadline", err)
	}
	if p := c.PendingMessages(); len(p) != 1 || p[0].ClientMsgID != "c-9" {
		t.Fatalf("outbox %+v, want c-9", p)
	}
	free()
	rec.wait(t, "Sent", func() bool { return rec.sent["c-9"] == 1 })
	if p := c.PendingMessages(); len(p) != 0 {
		t.Fatalf("outbox %+v after Sent, want empty", p)
	}
}

// TestCloseFromHandler: a handler may close its client.
func TestCloseFromHandler(t *testing.T) {
	st := memoryStore()
	n := startNode(t, st, "")
	bobID := user(t, st, "bob")
	alice, _ := dialUser(t, n.url(), "alice")
	var bob *client.Client
	bob, err := client.New(client.Options{URL: n.url(), User: "bob", Handlers: client.Handlers{
		Message: func(*client.Message) { _ = bob.Close() },
	}})
	if err != nil {
		t.Fatal(err)
	}
	bob.Start()
	t.Cleanup(func() { closeClient(t, bob) })
	ctx := ctxT(t)
	if err := bob.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	room, err := alice.CreateRoom(ctx, client.CreateRoom{Type: client.RoomGroup, Name: "g", Members: []int64{bobID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendMessage(ctx, client.OutgoingMessage{RoomID: room.ID, Content: "bye"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-bob.Done():
	case <-ctx.Done():
		t.Fatal("the client closed from its handler did not end")
	}
	if !errors.Is(bob.Err(), client.ErrClosed) {
		t.Fatalf("Err() = %v, want ErrClosed", bob.Err())
	}
}
