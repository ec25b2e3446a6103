package memory

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/chatmux/chatmux/store"
)

// TestSessionsFlat: 80,000 connect/disconnect cycles (up to 100
// connections open at once, 1,000 users) leave the store as big as the
// connections open at the end: no session is kept after its close, and
// what stays is one last-seen time per user.
func TestSessionsFlat(t *testing.T) {
	const users, cycles, open = 1000, 80000, 100
	ctx := context.Background()
	s := New()
	for i := int64(1); i <= users; i++ {
		if _, err := s.UpsertUser(ctx, store.User{ID: i, Username: fmt.Sprint("u", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.TouchNode(ctx, "node-1"); err != nil {
		t.Fatal(err)
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	sizes := func() (int, int, int) {
		s.mu.RLock()
		defer s.mu.RUnlock()
		return len(s.sessions), len(s.lastSeen), len(s.nodes)
	}
	before := heap()
	ring := make([]int64, 0, open)
	peak := 0
	for i := range cycles {
		sess, err := s.CreateSession(ctx, store.NewSession{UserID: int64(i%users + 1), ConnID: fmt.Sprint("conn-", i), NodeID: "node-1"})
		if err != nil {
			t.Fatal(err)
		}
		ring = append(ring, sess.ID)
		if len(ring) == open {
			if err := s.CloseSession(ctx, ring[0]); err != nil {
				t.Fatal(err)
			}
			ring = ring[1:]
		}
		if n, _, _ := sizes(); n > peak {
			peak = n
		}
	}
	if n, seen, nodes := sizes(); n != open-1 || seen != users || nodes != 1 {
		t.Fatalf("after %d cycles: %d sessions (want %d open), %d last-seen entries (want %d), %d nodes", cycles, n, open-1, seen, users, nodes)
	}
	for _, id := range ring {
		if err := s.CloseSession(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	after := heap()
	if n, seen, _ := sizes(); n != 0 || seen != users {
		t.Fatalf("after closing everything: %d sessions, %d last-seen entries", n, seen)
	}
	if peak > open {
		t.Fatalf("peak of %d sessions with %d open connections", peak, open)
	}
	t.Logf("%d cycles: peak %d sessions, 0 at the end; heap %d KiB before, %d KiB after (%+d B)",
		cycles, peak, before>>10, after>>10, int64(after)-int64(before))
}
