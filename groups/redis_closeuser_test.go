package groups_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/groups"
)

// closeFrame reads (and drops) the client's frames until its connection
// ends, and returns the close frame it ended with.
func (c *client) closeFrame(t *testing.T) websocket.CloseError {
	t.Helper()
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	for {
		select {
		case b := <-c.frames:
			if b != nil {
				continue
			}
			var ce websocket.CloseError
			if !errors.As(c.readErr, &ce) {
				t.Fatalf("connection ended without a close frame: %v", c.readErr)
			}
			return ce
		case <-timer.C:
			t.Fatal("the connection was not closed")
		}
	}
}

// Server.CloseUser on one node closes the user's connections on every
// node, and only theirs.
func TestRedisCloseUserAcrossNodes(t *testing.T) {
	_, nodes := startNodes(t, 2, groups.RedisOptions{})
	phone := nodes[0].dial(t, 9)
	laptop := nodes[1].dial(t, 9)
	other := nodes[1].dial(t, 1)
	for _, c := range []*client{phone, laptop, other} {
		c.call("room.join", map[string]any{"room": "lobby"})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := nodes[0].srv.CloseUser(ctx, 9, chatmux.CloseUserDeleted, chatmux.ReasonUserDeleted); err != nil {
		t.Fatalf("CloseUser: %v", err)
	}
	for name, c := range map[string]*client{"phone (publishing node)": phone, "laptop (other node)": laptop} {
		if ce := c.closeFrame(t); int(ce.Code) != chatmux.CloseUserDeleted || ce.Reason != chatmux.ReasonUserDeleted {
			t.Fatalf("%s: close %d %q, want 4011 %q", name, ce.Code, ce.Reason, chatmux.ReasonUserDeleted)
		}
	}
	// The other user on the same node as the laptop is untouched.
	got := other.call("room.say", map[string]any{"room": "lobby", "text": "still here"})
	if f := other.expect(got, "room.said", 1); f[0].Data["text"] != "still here" {
		t.Fatalf("other user got %v", f[0].Data)
	}
}
