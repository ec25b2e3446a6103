package client_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/chatmux/chatmux/client"
	"github.com/chatmux/chatmux/internal/testenv"
	"github.com/chatmux/chatmux/store"
	"github.com/chatmux/chatmux/store/postgres"
)

// TestServerKilledMemory kills the server mid-conversation and starts a new
// one on the same address and the same (memory) store.
func TestServerKilledMemory(t *testing.T) {
	conversationAcrossRestart(t, memoryStore(), 60)
}

// TestServerKilledPostgres is the same on PostgreSQL: the new server is a
// new chat service on the same database.
func TestServerKilledPostgres(t *testing.T) {
	url := testenv.DatabaseSchema(t, "client_restart_")
	st, err := postgres.Open(bg, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(bg); err != nil {
		t.Fatal(err)
	}
	conversationAcrossRestart(t, st, 100)
}

// conversationAcrossRestart has two clients send n messages each to a
// group, kills the server once both have received a third of them, starts
// a new one on the same address and store, and checks that every message
// was stored once and that each client received every message once, in
// seq order.
func conversationAcrossRestart(t *testing.T, st store.Store, n int) {
	first := startNode(t, st, "")
	addr := first.addr
	bobID := user(t, st, "bob")
	opts := func(o *client.Options) {
		o.RequestTimeout = 5 * time.Second
		o.ConnectTimeout = 2 * time.Second
	}
	alice, arec := dialUser(t, first.url(), "alice", opts)
	bob, brec := dialUser(t, first.url(), "bob", opts)
	ctx := ctxT(t)
	room, err := alice.CreateRoom(ctx, client.CreateRoom{Type: client.RoomGroup, Name: "restart", Members: []int64{bobID}})
	if err != nil {
		t.Fatal(err)
	}

	type result struct {
		id  string
		seq int64
		err error
	}
	results := make([][]result, 2)
	var wg sync.WaitGroup
	for i, c := range []*client.Client{alice, bob} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range n {
				id := fmt.Sprintf("c-%d-%d", i, k)
				m, err := c.SendMessage(ctx, client.OutgoingMessage{RoomID: room.ID, Content: id, ClientMsgID: id})
				r := result{id: id, err: err}
				if m != nil {
					r.seq = m.Seq
				}
				results[i] = append(results[i], r)
			}
		}()
	}

	// Mid-conversation: kill the server, wait until both clients know,
	// then start a new one on the same address.
	arec.wait(t, "a third of the messages", func() bool { return arec.countLocked(room.ID) >= 2*n/3 })
	first.kill()
	for _, rec := range []*recorder{arec, brec} {
		rec.wait(t, "the client sees the connection drop", func() bool {
			for _, s := range rec.states {
				if s.State == client.StateDisconnected && s.WillReconnect {
					return true
				}
			}
			return false
		})
	}
	startNode(t, st, addr)
	wg.Wait()

	for i, rs := range results {
		if len(rs) != n {
			t.Fatalf("client %d: %d results, want %d", i, len(rs), n)
		}
		for _, r := range rs {
			if r.err != nil {
				t.Errorf("client %d: send %s: %v", i, r.id, r.err)
			}
		}
	}
	total := 2 * n
	for name, rec := range map[string]*recorder{"alice": arec, "bob": brec} {
		rec.wait(t, name+" receives every message", func() bool { return rec.countLocked(room.ID) >= total })
		got := rec.roomMessages(room.ID)
		seen := map[string]bool{}
		for k, m := range got {
			if m.Seq != int64(k+1) {
				t.Fatalf("%s: message %d has seq %d: lost, duplicated or out of order", name, k, m.Seq)
			}
			if seen[m.ClientMsgID] {
				t.Fatalf("%s: %s delivered twice", name, m.ClientMsgID)
			}
			seen[m.ClientMsgID] = true
		}
		if len(got) != total {
			t.Fatalf("%s: %d messages, want %d", name, len(got), total)
		}
	}
	// The store holds each message once.
	after := int64(0)
	stored := map[string]int{}
	for {
		page, err := alice.RoomMessages(ctx, room.ID, client.HistoryQuery{AfterSeq: &after, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Data.Messages {
			stored[m.ClientMsgID]++
			after = m.Seq
		}
		if !page.HasMore {
			break
		}
	}
	if len(stored) != total {
		t.Fatalf("stored %d distinct messages, want %d", len(stored), total)
	}
	for id, k := range stored {
		if k != 1 {
			t.Fatalf("%s stored %d times", id, k)
		}
	}
	as, bs := alice.Stats(), bob.Stats()
	if as.Connections < 2 || bs.Connections < 2 {
		t.Fatalf("connections: alice %d, bob %d; want a reconnect each", as.Connections, bs.Connections)
	}
	t.Logf("alice %+v", as)
	t.Logf("bob   %+v", bs)
}
