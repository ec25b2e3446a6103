package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux/store"
)

// Thresholds of the presence tests: an hour keeps everything live (or in
// grace); minus an hour puts the limit in the future, so that nothing is.
const (
	always = time.Hour
	never  = -time.Hour
)

// sweep runs SweepPresence and returns its flips as "id:on"/"id:off".
func sweep(t *testing.T, st store.Store, threshold, grace time.Duration) []string {
	t.Helper()
	ps, err := st.SweepPresence(ctx, threshold, grace)
	ok(t, err)
	out := []string{}
	for _, p := range ps {
		out = append(out, presenceString(p))
	}
	return out
}

func presenceString(p store.Presence) string {
	if p.Online {
		return fmt.Sprintf("%d:on", p.UserID)
	}
	return fmt.Sprintf("%d:off", p.UserID)
}

func wantFlips(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(append([]string{}, want...)) {
		t.Fatalf("%s: flips %v, want %v", what, got, want)
	}
}

// testPresence: the announced state per user (docs/protocol.md#presence):
// MarkOnline flips once, the sweep announces offline only past the
// threshold and the grace, an idle session is offline, and a touched one
// online again.
func testPresence(t *testing.T, st store.Store) {
	users(t, st, 3)
	ps, err := st.Presence(ctx, []int64{3, 1, 99, 1, 2})
	ok(t, err)
	if len(ps) != 3 || ps[0].UserID != 1 || ps[2].UserID != 3 {
		t.Fatalf("Presence = %+v, want users 1..3", ps)
	}
	for _, p := range ps {
		if p.Online || !p.LastSeen.IsZero() {
			t.Fatalf("Presence of a user never seen = %+v, want offline, never seen", p)
		}
	}
	if ps, err := st.Presence(ctx, nil); err != nil || len(ps) != 0 {
		t.Fatalf("Presence(nil) = %v %v", ps, err)
	}

	// Connect: the session's MarkOnline flips once.
	s1, err := st.CreateSession(ctx, store.NewSession{UserID: 1, ConnID: "c1", NodeID: "n", MarkOnline: true})
	ok(t, err)
	if !s1.WentOnline {
		t.Fatalf("CreateSession with MarkOnline = %+v, want a flip to online", s1)
	}
	tab, err := st.CreateSession(ctx, store.NewSession{UserID: 1, ConnID: "c2", NodeID: "n", MarkOnline: true})
	ok(t, err)
	if tab.WentOnline {
		t.Fatalf("a second session of a user online = %+v, want no flip", tab)
	}
	ps, err = st.Presence(ctx, []int64{1})
	ok(t, err)
	if len(ps) != 1 || !ps[0].Online || ps[0].LastSeen.Before(s1.LastSeen) {
		t.Fatalf("Presence after the connects = %+v, want online, last seen at or after %v", ps, s1.LastSeen)
	}
	ok(t, st.CloseSession(ctx, tab.ID))
	wantFlips(t, "sweep with user 1 live", sweep(t, st, always, always))

	// Disconnect: offline only once the grace has passed, and only once.
	ok(t, st.CloseSession(ctx, s1.ID))
	wantFlips(t, "sweep within the grace", sweep(t, st, always, always))
	wantFlips(t, "sweep past the grace", sweep(t, st, always, never), "1:off")
	wantFlips(t, "sweep again", sweep(t, st, always, never))
	ps, err = st.Presence(ctx, []int64{1})
	ok(t, err)
	if len(ps) != 1 || ps[0].Online || ps[0].LastSeen.Before(s1.LastSeen) {
		t.Fatalf("Presence after offline = %+v", ps)
	}

	// A session the sweep finds live is announced online (no MarkOnline);
	// one idle for longer than the threshold is offline though open, and
	// online again once touched.
	s2, err := st.CreateSession(ctx, store.NewSession{UserID: 2, ConnID: "c2", NodeID: "n"})
	ok(t, err)
	wantFlips(t, "sweep with user 2 live", sweep(t, st, always, always), "2:on")
	wantFlips(t, "sweep with user 2 idle, within the grace", sweep(t, st, never, always))
	wantFlips(t, "sweep with user 2 idle", sweep(t, st, never, never), "2:off")
	wantFlips(t, "sweep with user 2 idle again", sweep(t, st, never, never))
	before, err := st.LastSeen(ctx, []int64{2})
	ok(t, err)
	time.Sleep(2 * time.Millisecond) // so that the clock moves on
	ok(t, st.TouchSessions(ctx, []int64{s2.ID, s1.ID, 12345}))
	ok(t, st.TouchSessions(ctx, nil))
	open, err := st.UserSessions(ctx, 2)
	ok(t, err)
	if len(open) != 1 || !open[0].LastSeen.After(s2.LastSeen) {
		t.Fatalf("sessions after TouchSessions = %+v, want LastSeen after %v", open, s2.LastSeen)
	}
	after, err := st.LastSeen(ctx, []int64{2})
	ok(t, err)
	if !after[2].After(before[2]) {
		t.Fatalf("last seen after TouchSessions = %v, want after %v", after[2], before[2])
	}
	ps2, err := st.SweepPresence(ctx, always, always)
	ok(t, err)
	if len(ps2) != 1 || !ps2[0].Online || ps2[0].UserID != 2 || !ps2[0].LastSeen.Equal(after[2]) {
		t.Fatalf("sweep after the touch = %+v, want user 2 online, last seen %v", ps2, after[2])
	}
	ps, err = st.Presence(ctx, []int64{1, 2, 3})
	ok(t, err)
	got := []string{}
	for _, p := range ps {
		got = append(got, presenceString(p))
	}
	wantFlips(t, "Presence", got, "1:off", "2:on", "3:off")
}

// testPresenceConcurrent: sweeps and connects with MarkOnline running at
// once on many users return each flip exactly once.
func testPresenceConcurrent(t *testing.T, st store.Store) {
	const n, workers = 30, 6
	users(t, st, n)
	for i := range n {
		_, err := st.CreateSession(ctx, store.NewSession{UserID: int64(i + 1), ConnID: "c", NodeID: "n"})
		ok(t, err)
	}
	run := func(f func() ([]store.Presence, error)) map[string]int {
		t.Helper()
		var mu sync.Mutex
		seen := map[string]int{}
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ps, err := f()
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				defer mu.Unlock()
				for _, p := range ps {
					seen[presenceString(p)]++
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		return seen
	}
	check := func(what string, seen map[string]int, state string) {
		t.Helper()
		if len(seen) != n {
			t.Fatalf("%s: %d users flipped, want %d: %v", what, len(seen), n, seen)
		}
		for i := 1; i <= n; i++ {
			if k := fmt.Sprintf("%d:%s", i, state); seen[k] != 1 {
				t.Fatalf("%s: %s returned %d times, want once", what, k, seen[k])
			}
		}
	}
	// Online: half by connects with MarkOnline (every worker connects
	// each of them), all by the sweeps, at once.
	on := run(func() ([]store.Presence, error) {
		var out []store.Presence
		for i := 1; i <= n; i += 2 {
			s, err := st.CreateSession(ctx, store.NewSession{UserID: int64(i), ConnID: "m", NodeID: "n", MarkOnline: true})
			if err != nil {
				return nil, err
			}
			if s.WentOnline {
				out = append(out, store.Presence{UserID: s.UserID, Online: true, LastSeen: s.LastSeen})
			}
		}
		ps, err := st.SweepPresence(ctx, always, always)
		return append(out, ps...), err
	})
	check("online", on, "on")
	for i := range n {
		open, err := st.UserSessions(ctx, int64(i+1))
		ok(t, err)
		for _, s := range open {
			ok(t, st.CloseSession(ctx, s.ID))
		}
	}
	off := run(func() ([]store.Presence, error) { return st.SweepPresence(ctx, always, never) })
	check("offline", off, "off")
}

// testPresenceDeletedUser: a deleted user's presence goes with them, and is
// never announced again.
func testPresenceDeletedUser(t *testing.T, st store.Store) {
	users(t, st, 2)
	if s, err := st.CreateSession(ctx, store.NewSession{UserID: 2, ConnID: "c", NodeID: "n", MarkOnline: true}); err != nil || !s.WentOnline {
		t.Fatalf("CreateSession with MarkOnline = %+v %v, want a flip", s, err)
	}
	_, err := st.DeleteUser(ctx, 2)
	ok(t, err)
	ps, err := st.Presence(ctx, []int64{2})
	ok(t, err)
	if len(ps) != 1 || ps[0].Online || !ps[0].LastSeen.IsZero() {
		t.Fatalf("Presence of a deleted user = %+v, want offline, never seen", ps)
	}
	if s, err := st.CreateSession(ctx, store.NewSession{UserID: 2, ConnID: "c2", NodeID: "n", MarkOnline: true}); !errors.Is(err, store.ErrUserDeleted) || s.WentOnline {
		t.Fatalf("CreateSession of a deleted user = %+v %v, want ErrUserDeleted, no flip", s, err)
	}
	wantFlips(t, "sweep after the deletion", sweep(t, st, never, never))
}

// testPresenceOnConnect: CreateSession with MarkOnline flips the user's
// announced presence to online in its own transaction: of concurrent
// connects of an offline user exactly one reports it, later ones none;
// without MarkOnline nothing flips.
func testPresenceOnConnect(t *testing.T, st store.Store) {
	users(t, st, 2)
	s, err := st.CreateSession(ctx, store.NewSession{UserID: 2, ConnID: "plain", NodeID: "n"})
	ok(t, err)
	if s.WentOnline {
		t.Fatal("a session without MarkOnline flipped the presence")
	}
	if ps, err := st.Presence(ctx, []int64{2}); err != nil || len(ps) != 1 || ps[0].Online {
		t.Fatalf("Presence after a session without MarkOnline = %+v, %v: want offline", ps, err)
	}
	ok(t, st.CloseSession(ctx, s.ID))

	connect := func(workers int) (flips int, ids []int64) {
		t.Helper()
		var mu sync.Mutex
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for i := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := st.CreateSession(ctx, store.NewSession{UserID: 1, ConnID: fmt.Sprintf("c%d", i), NodeID: "n", MarkOnline: true})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				defer mu.Unlock()
				ids = append(ids, s.ID)
				if s.WentOnline {
					flips++
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		return flips, ids
	}
	if flips, _ := connect(6); flips != 1 {
		t.Fatalf("6 concurrent connects of an offline user: %d flips, want 1", flips)
	}
	if ps, err := st.Presence(ctx, []int64{1}); err != nil || len(ps) != 1 || !ps[0].Online {
		t.Fatalf("Presence after the connects = %+v, %v: want online", ps, err)
	}
	// A second tab while online flips nothing, and leaves no flip for a
	// sweep either.
	if flips, _ := connect(1); flips != 0 {
		t.Fatal("a connect of a user online already flipped the presence")
	}
	ps, err := st.SweepPresence(ctx, always, always)
	ok(t, err)
	for _, p := range ps {
		if p.UserID == 1 {
			t.Fatalf("the sweep flipped a user that connected online: %+v", p)
		}
	}
	// Offline (every session closed, the sweep), then a connect flips
	// again.
	got, err := st.UserSessions(ctx, 1)
	ok(t, err)
	for _, s := range got {
		ok(t, st.CloseSession(ctx, s.ID))
	}
	ps, err = st.SweepPresence(ctx, always, never)
	ok(t, err)
	if len(ps) != 1 || ps[0].UserID != 1 || ps[0].Online {
		t.Fatalf("sweep after closing every session = %+v, want user 1 offline", ps)
	}
	if flips, _ := connect(1); flips != 1 {
		t.Fatal("a connect after going offline did not flip the presence")
	}
}

// testPresenceRooms: the rooms where a user's presence is shown are their
// one-to-one chats and groups, and the channels they created or moderate;
// a subscriber's channel is not one, nor is a room they left.
func testPresenceRooms(t *testing.T, st store.Store) {
	users(t, st, 5)
	g := group(t, st, 1, 2)
	ch := channel(t, st, 1, 2, 3)
	_, err := st.SetRole(ctx, ch.ID, []int64{3}, true)
	ok(t, err)
	pair, err := st.CreateRoom(ctx, store.NewRoom{Type: store.OneToOne, CreatorID: 1, Members: []int64{4}})
	ok(t, err)
	left := group(t, st, 5, 1)
	_, err = st.RemoveMembers(ctx, store.RemoveMembers{RoomID: left.ID, ActorID: 1, UserIDs: []int64{1}})
	ok(t, err)
	got, err := st.PresenceRooms(ctx, []int64{1, 2, 3, 4, 99, 2})
	ok(t, err)
	want := map[int64][]uuid.UUID{
		1: sortedUUIDs(g.ID, ch.ID, pair.ID),
		2: {g.ID},
		3: {ch.ID},
		4: {pair.ID},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("PresenceRooms = %v, want %v", got, want)
	}
	if got, err := st.PresenceRooms(ctx, nil); err != nil || len(got) != 0 {
		t.Fatalf("PresenceRooms(nil) = %v, %v", got, err)
	}
}
