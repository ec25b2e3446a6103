package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/coder/websocket"
)

// chatmuxProto speaks chatmux's protocol (docs/protocol.md in the
// repository) to the example server in JWT mode: user u has id u+1.
// prepare creates one group per room (room.create by its first member,
// the others as participants) and waits until every member received the
// room's roomcreate.dispatch, which it gets once its connections are in
// the room's group; a send is message.send, a delivery message.dispatch.
type chatmuxProto struct {
	secret []byte
	layout layout
}

var (
	dispatchPrefix   = []byte(`{"eventType":"message.dispatch"`)
	roomCreatePrefix = []byte(`{"eventType":"roomcreate.dispatch"`)
	errorPrefix      = []byte(`{"error"`)
)

// hs256 signs claims as a JSON Web Token with HMAC-SHA256.
func hs256(secret []byte, claims map[string]any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	s := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(payload)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(s))
	return s + "." + enc.EncodeToString(m.Sum(nil)), nil
}

func (p *chatmuxProto) url(base string, u int) (string, error) {
	tok, err := hs256(p.secret, map[string]any{
		"sub":      strconv.Itoa(u + 1),
		"username": "xchat" + strconv.Itoa(u+1),
		"exp":      time.Now().Add(24 * time.Hour).Unix(),
	})
	if err != nil {
		return "", err
	}
	return withQuery(base, "token", tok)
}

func (p *chatmuxProto) handshake(ctx context.Context, c *client) error { return nil }

func (p *chatmuxProto) prepare(ctx context.Context, r *run) error {
	l := r.spec.layout
	for room := range l.Rooms {
		creator := r.clients[room] // user `room` is the first member of room `room`
		var others []int
		for u := room + l.Rooms; u < l.Users(); u += l.Rooms {
			others = append(others, u+1)
		}
		msg, err := json.Marshal(map[string]any{
			"event_type": "room.create",
			"data": map[string]any{
				"type":         "GroupChat",
				"name":         fmt.Sprintf("xchat room %d", room),
				"participants": others,
				"extra_fields": map[string]any{"max_participants": l.Members},
			},
		})
		if err != nil {
			return err
		}
		if err := creator.ws.Write(ctx, websocket.MessageText, msg); err != nil {
			return fmt.Errorf("room %d: failed to send room.create: %w", room, err)
		}
	}
	for {
		ready := true
		for _, c := range r.clients {
			if e := c.lastErr.Load(); e != nil {
				return fmt.Errorf("user %d got %s", c.u, *e)
			}
			if !c.joined.Load() {
				ready = false
			}
		}
		for room := range r.roomIDs {
			if r.roomIDs[room].Load() == nil {
				ready = false
			}
		}
		if ready {
			return nil
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return fmt.Errorf("not every member joined its room: %w", err)
		}
	}
}

func (p *chatmuxProto) appendSend(dst []byte, c *client, content []byte) []byte {
	dst = append(dst, `{"event_type":"message.send","data":{"room_id":"`...)
	if id := c.r.roomIDs[c.room].Load(); id != nil {
		dst = append(dst, *id...)
	}
	dst = append(dst, `","content":"`...)
	dst = append(dst, content...) // the payload needs no JSON escaping
	return append(dst, `"}}`...)
}

func (p *chatmuxProto) isDelivery(line []byte) bool { return bytes.HasPrefix(line, dispatchPrefix) }

func (p *chatmuxProto) control(c *client, line []byte) bool {
	switch {
	case bytes.HasPrefix(line, roomCreatePrefix):
		if c.u == c.room { // the room's creator records its id
			var d struct {
				Data struct {
					ID string `json:"id"`
				} `json:"data"`
			}
			if err := json.Unmarshal(line, &d); err != nil || d.Data.ID == "" {
				s := fmt.Sprintf("an unreadable roomcreate.dispatch (%v)", err)
				c.lastErr.Store(&s)
				return true
			}
			c.r.roomIDs[c.room].Store(&d.Data.ID)
		}
		c.joined.Store(true)
	case bytes.HasPrefix(line, errorPrefix):
		return true
	}
	return false
}

// centrifugeProto speaks Centrifuge's JSON client protocol to the peer
// (package peer): user u connects with ?user=<u+1>, sends the connect and
// subscribe commands for "room:<its room>" in one frame and waits for both
// replies; a send is a publish command, a delivery a push with a
// publication. The server's pings ({}) are answered with {}.
type centrifugeProto struct{}

var (
	pushPrefix = []byte(`{"push":`)
	ping       = []byte(`{}`)
)

func (centrifugeProto) url(base string, u int) (string, error) {
	return withQuery(base, "user", strconv.Itoa(u+1))
}

func (centrifugeProto) handshake(ctx context.Context, c *client) error {
	cmd := fmt.Sprintf(`{"id":1,"connect":{"name":"xchat"}}`+"\n"+`{"id":2,"subscribe":{"channel":"room:%d"}}`, c.room)
	if err := c.ws.Write(ctx, websocket.MessageText, []byte(cmd)); err != nil {
		return fmt.Errorf("failed to send connect: %w", err)
	}
	c.nextID.Store(2)
	got := 0
	for got < 2 {
		_, frame, err := c.ws.Read(ctx)
		if err != nil {
			return fmt.Errorf("no answer to connect and subscribe: %w", err)
		}
		for _, line := range bytes.Split(frame, []byte{'\n'}) {
			if len(line) == 0 || bytes.Equal(line, ping) {
				continue
			}
			var rep struct {
				ID    int             `json:"id"`
				Error json.RawMessage `json:"error"`
			}
			if err := json.Unmarshal(line, &rep); err != nil {
				return fmt.Errorf("unreadable answer %.200q: %w", line, err)
			}
			if len(rep.Error) > 0 {
				return fmt.Errorf("command %d refused: %s", rep.ID, rep.Error)
			}
			if rep.ID == 1 || rep.ID == 2 {
				got++
			}
		}
	}
	c.joined.Store(true)
	return nil
}

func (centrifugeProto) prepare(ctx context.Context, r *run) error {
	for _, c := range r.clients {
		if !c.joined.Load() {
			return errors.New("a connection is not subscribed")
		}
	}
	return nil
}

func (centrifugeProto) appendSend(dst []byte, c *client, content []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendUint(dst, c.nextID.Add(1), 10)
	dst = append(dst, `,"publish":{"channel":"room:`...)
	dst = strconv.AppendInt(dst, int64(c.room), 10)
	dst = append(dst, `","data":{"content":"`...)
	dst = append(dst, content...)
	return append(dst, `"}}}`...)
}

func (centrifugeProto) isDelivery(line []byte) bool { return bytes.HasPrefix(line, pushPrefix) }

func (centrifugeProto) control(c *client, line []byte) bool {
	if bytes.Equal(line, ping) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = c.ws.Write(ctx, websocket.MessageText, ping)
		cancel()
		return false
	}
	return bytes.Contains(line, []byte(`"error":`))
}
