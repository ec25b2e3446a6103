package client_test

import (
	"testing"

	"github.com/chatmux/chatmux/client"
)

// TestPresence: bob's connect reaches alice as a typed presence dispatch
// of their room, and both forms of presence.query answer the announced
// state, leaving out a user who shares no room (docs/protocol.md#presence).
func TestPresence(t *testing.T) {
	n := startNode(t, memoryStore(), "")
	bobID := user(t, n.st, "bob")
	carolID := user(t, n.st, "carol")
	got := make(chan client.Presence, 16)
	alice, _ := dialUser(t, n.url(), "alice", func(o *client.Options) {
		o.Handlers.Presence = func(p client.Presence) { got <- p }
	})
	ctx := ctxT(t)
	room, err := alice.CreateRoom(ctx, client.CreateRoom{Type: client.RoomGroup, Name: "trip", Members: []int64{bobID}})
	if err != nil {
		t.Fatalf("CreateRoom: %v", err)
	}
	dialUser(t, n.url(), "bob")
	select {
	case p := <-got:
		if p.RoomID != room.ID || p.UserID != bobID || p.Username != "bob" || !p.Online || p.LastSeen == "" {
			t.Fatalf("presence dispatch = %+v, want bob online in %s", p, room.ID)
		}
	case <-ctx.Done():
		t.Fatal("no presence dispatch for bob")
	}

	ps, err := alice.RoomPresence(ctx, room.ID)
	if err != nil || len(ps) != 2 || ps[0].UserID != bobID || ps[1].Username != "alice" || !ps[0].Online || !ps[1].Online {
		t.Fatalf("RoomPresence = %+v, %v", ps, err)
	}
	ps, err = alice.UsersPresence(ctx, bobID, carolID)
	if err != nil || len(ps) != 1 || ps[0].UserID != bobID || !ps[0].Online || ps[0].RoomID != "" {
		t.Fatalf("UsersPresence(bob, carol) = %+v, %v: want bob only (carol shares no room)", ps, err)
	}
	if _, err := alice.UsersPresence(ctx); !isServerCode(err, client.CodeValidation) {
		t.Fatalf("UsersPresence() = %v, want 4003", err)
	}
}
