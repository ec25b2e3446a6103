package main

// Redis outages with two nodes on one PostgreSQL and one (private) Redis:
// what the senders are told, what the other clients are told once Redis is
// back, and what they have after catching up (docs/protocol.md#faults,
// docs/protocol.md#resync).

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatmux/chatmux/internal/testenv"
)

// createGroup has owner create a group with members and waits until every
// member's connection has its roomcreate.dispatch; it returns the room id.
func createGroup(t *testing.T, owner *fclient, name string, members ...*fclient) string {
	t.Helper()
	ids := make([]int64, len(members))
	for i, m := range members {
		ids[i] = m.id
	}
	owner.mustCall("room.create", map[string]any{"type": "GroupChat", "name": name, "participants": ids})
	var room struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(owner.data("roomcreate.dispatch"), &room); err != nil || room.ID == "" {
		t.Fatalf("room.create: no roomcreate.dispatch before the answer (%v)", err)
	}
	for _, m := range members {
		if !m.waitUntil(10*time.Second, func() bool { return m.counts["roomcreate.dispatch"] > 0 }) {
			t.Fatalf("%s: no roomcreate.dispatch", m.name)
		}
	}
	return room.ID
}

// waitBroker polls /healthz of every node until each reports the broker
// as wantUp (ok) or down (unavailable).
func waitBroker(t *testing.T, hc *http.Client, wantUp bool, bases ...string) {
	t.Helper()
	want := `"broker":"unavailable"`
	if wantUp {
		want = `"broker":"ok"`
	}
	for _, base := range bases {
		waitFor(t, 20*time.Second, base+" /healthz with "+want, func() bool {
			_, body, _, err := healthz(hc, base)
			return err == nil && strings.Contains(body, want)
		})
	}
}

// sendResult is one message.send of a load loop and its answer.
type sendResult struct {
	c        *fclient
	cmid     string
	sentAt   time.Time
	fin      ffinal
	answered bool
}

// sendLoad has each client send to room, burst messages at a time
// (written one after the other, then their answers awaited; at most one
// burst per pace), until stop is closed or the client's connection has
// ended; it returns a function that waits for the loops and returns every
// send.
func sendLoad(clients []*fclient, room string, pace time.Duration, burst int, stop <-chan struct{}, sent *countSends) func() []sendResult {
	var mu sync.Mutex
	var all []sendResult
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(pace)
			defer tick.Stop()
			for i := 1; ; {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				rs := make([]sendResult, 0, burst)
				for range burst {
					r := sendResult{c: c, cmid: fmt.Sprintf("%s-%d", c.name, i), sentAt: time.Now()}
					i++
					if c.writeSend(room, r.cmid) != nil {
						break
					}
					rs = append(rs, r)
				}
				for j := range rs {
					rs[j].fin, rs[j].answered = c.final("send:"+rs[j].cmid, 20*time.Second)
					sent.add()
				}
				mu.Lock()
				all = append(all, rs...)
				mu.Unlock()
				if c.isClosed() {
					return
				}
			}
		}()
	}
	return func() []sendResult {
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return all
	}
}

// countSends counts the sends answered so far, for the test to pace its
// phases by.
type countSends struct {
	mu sync.Mutex
	n  int
}

func (s *countSends) add() {
	s.mu.Lock()
	s.n++
	s.mu.Unlock()
}

func (s *countSends) get() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// waitSends waits until at least n more sends were answered.
func (s *countSends) waitMore(t *testing.T, n int) {
	t.Helper()
	from := s.get()
	waitFor(t, 30*time.Second, fmt.Sprintf("%d more sends answered", n), func() bool { return s.get() >= from+n })
}

// isClosed reports whether the client's connection has ended.
func (c *fclient) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// sendFigures checks every send's answer against the database: a send is
// answered exactly once, an error only when nothing was stored, and a
// success only after the sender's own message.dispatch. It returns the
// counts; the test fails on a violation.
type sendFigures struct {
	sent, stored, okAnswers, errAnswers, unanswered int
	acknowledged                                    int // the sender got its own message.dispatch
	okWithoutDispatch, errorAfterStored             int
	storedNotAcknowledged                           int
	errCodes                                        map[int]int
}

func checkSends(t *testing.T, db *faultDB, room string, results []sendResult) sendFigures {
	t.Helper()
	stored := db.roomMessages(room)
	byCmid := map[string]storedMessage{}
	for _, m := range stored {
		if m.ClientMsgID != "" {
			byCmid[m.ClientMsgID] = m
		}
	}
	f := sendFigures{sent: len(results), errCodes: map[int]int{}}
	for _, r := range results {
		_, isStored := byCmid[r.cmid]
		if isStored {
			f.stored++
		}
		r.c.mu.Lock()
		_, acked := r.c.own[r.cmid]
		r.c.mu.Unlock()
		if acked {
			f.acknowledged++
		}
		switch {
		case !r.answered:
			f.unanswered++
			if isStored && !acked {
				f.storedNotAcknowledged++
			}
		case r.fin.OK:
			f.okAnswers++
			if !r.fin.Acked {
				f.okWithoutDispatch++
				t.Errorf("%s: send %s answered ok without its message.dispatch first (stored %v, dispatch later %v)",
					r.c.name, r.cmid, isStored, acked)
			}
		default:
			f.errAnswers++
			f.errCodes[r.fin.Code]++
			if isStored {
				f.errorAfterStored++
				t.Errorf("%s: send %s answered %s although it was stored", r.c.name, r.cmid, r.fin.Raw)
			}
		}
	}
	return f
}

// missedMessages returns, for each client, the messages of room in the
// database that the client does not have.
func missedMessages(db *faultDB, room string, clients []*fclient) (total int, per map[string]int) {
	stored := db.roomMessages(room)
	per = map[string]int{}
	for _, c := range clients {
		have := c.messages(room)
		for seq := range stored {
			if _, ok := have[seq]; !ok {
				per[c.name]++
				total++
			}
		}
	}
	return total, per
}

// durations returns the median and the largest of ds in milliseconds.
func durations(ds []time.Duration) (medianMS, maxMS int64) {
	if len(ds) == 0 {
		return -1, -1
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2].Milliseconds(), s[len(s)-1].Milliseconds()
}

// resyncBound is the bound these tests state for chat.resync after Redis
// answers again: the broker's reconnect backoff (at most 500 ms), the
// confirmation of its subscriptions, then the $resync of each connection
// (8 at a time, three store reads each). Measured: tens of milliseconds
// for a handful of connections.
const resyncBound = 3 * time.Second

// TestFaultRedisOutage: Redis is killed for about 3 s while four clients
// on each of two nodes send to one room continuously. No send is answered
// with an error once stored, and every success comes after the sender's
// own dispatch; every client receives chat.resync within resyncBound of
// Redis answering again, and once it has caught up (after_seq) it has
// every message of the room (counted against the database).
func TestFaultRedisOutage(t *testing.T) {
	dbURL := faultDatabase(t)
	rds := testenv.StartRedis(t)
	db := openFaultDB(t, dbURL)
	hc := newHTTPClient(t)
	env := faultNodeSettings(dbURL, rds.URL(), nil)
	a := startFaultNode(t, "A", env)
	b := startFaultNode(t, "B", env)

	const perNode = 4
	const outage = 3 * time.Second
	var clients []*fclient
	for i := range perNode {
		clients = append(clients, dialClient(t, hc, "A", a.httpURL(), fmt.Sprintf("ra%d", i)))
		clients = append(clients, dialClient(t, hc, "B", b.httpURL(), fmt.Sprintf("rb%d", i)))
	}
	room := createGroup(t, clients[0], "outage", clients[1:]...)

	stop := make(chan struct{})
	var answered countSends
	wait := sendLoad(clients, room, 60*time.Millisecond, 1, stop, &answered)
	stopped := false
	defer func() {
		if !stopped {
			close(stop)
			wait()
		}
	}()
	answered.waitMore(t, 40)

	killed := time.Now()
	rds.Kill()
	waitBroker(t, hc, false, a.httpURL(), b.httpURL())
	downSeen := time.Since(killed)
	answered.waitMore(t, 20) // sends go on while the nodes know Redis is away
	if rest := outage - time.Since(killed); rest > 0 {
		time.Sleep(rest) // the outage lasts that long
	}
	up := rds.Start()
	downFor := up.Sub(killed)

	// Every client, on either node, is told to resync.
	var delays, delaysA, delaysB []time.Duration
	for _, c := range clients {
		if !c.waitUntil(resyncBound, func() bool {
			for _, r := range c.resyncs {
				if r.At.After(killed) {
					return true
				}
			}
			return false
		}) {
			t.Errorf("%s (node %s): no chat.resync within %v of Redis answering again", c.name, c.node, resyncBound)
			continue
		}
		r, _ := c.resyncAfter(killed)
		d := r.At.Sub(up)
		delays = append(delays, d)
		if c.node == "A" {
			delaysA = append(delaysA, d)
		} else {
			delaysB = append(delaysB, d)
		}
		if _, ok := r.Rooms[room]; !ok {
			t.Errorf("%s: chat.resync %v does not list the room", c.name, r.Rooms)
		}
	}
	answered.waitMore(t, 40) // and after Redis is back
	close(stop)
	results := wait()
	stopped = true

	// Every client catches up: it has every stored message within a few
	// seconds (the last ones by dispatch, the missed ones by after_seq).
	stored := db.roomMessages(room)
	for _, c := range clients {
		c.waitUntil(10*time.Second, func() bool {
			for seq := range stored {
				if !c.hasLocked(room, seq) {
					return false
				}
			}
			return true
		})
	}
	f := checkSends(t, db, room, results)
	missed, perClient := missedMessages(db, room, clients)
	if missed != 0 {
		t.Errorf("missed after catch-up: %d (per client %v)", missed, perClient)
	}
	if f.unanswered != 0 {
		t.Errorf("%d sends got no answer within 20s", f.unanswered)
	}
	var anomalies []string
	for _, c := range clients {
		for _, e := range c.errors() {
			anomalies = append(anomalies, c.name+": "+e)
		}
	}
	if len(anomalies) != 0 {
		t.Errorf("unexpected frames: %q", anomalies)
	}
	med, largest := durations(delays)
	medA, maxA := durations(delaysA)
	medB, maxB := durations(delaysB)
	t.Logf("redis outage: %s", figures("clients", len(clients), "redis_down_ms", downFor.Milliseconds(),
		"down_seen_by_healthz_ms", downSeen.Milliseconds(), "sent", f.sent, "stored", len(stored),
		"answered_ok", f.okAnswers, "answered_error", f.errAnswers, "error_codes", f.errCodes, "unanswered", f.unanswered,
		"acknowledged", f.acknowledged, "ok_without_dispatch", f.okWithoutDispatch,
		"error_after_stored", f.errorAfterStored, "missed_after_catch_up", missed,
		"resync_ms_median", med, "resync_ms_max", largest, "resync_ms_A", fmt.Sprintf("%d/%d", medA, maxA),
		"resync_ms_B", fmt.Sprintf("%d/%d", medB, maxB)))
}

// TestFaultMembershipDuringRedisOutage: the owner is on node A, R, L and
// N on node B. While Redis is down the owner removes R, L leaves and the
// owner adds N: each is answered with success and committed. After Redis
// is back, R and L receive none of the messages sent after their removal,
// and N has every one of them (after its resync catch-up).
func TestFaultMembershipDuringRedisOutage(t *testing.T) {
	dbURL := faultDatabase(t)
	rds := testenv.StartRedis(t)
	db := openFaultDB(t, dbURL)
	hc := newHTTPClient(t)
	env := faultNodeSettings(dbURL, rds.URL(), nil)
	a := startFaultNode(t, "A", env)
	b := startFaultNode(t, "B", env)

	owner := dialClient(t, hc, "A", a.httpURL(), "owner")
	r := dialClient(t, hc, "B", b.httpURL(), "removed")
	l := dialClient(t, hc, "B", b.httpURL(), "leaver")
	n := dialClient(t, hc, "B", b.httpURL(), "added")
	room := createGroup(t, owner, "membership", r, l)

	sendN := func(prefix string, count int) {
		t.Helper()
		for i := range count {
			cmid := fmt.Sprintf("%s-%d", prefix, i)
			fin, ok := owner.send(room, cmid, 15*time.Second)
			if !ok || !fin.OK {
				t.Fatalf("owner: send %s: answer %+v (answered %v)", cmid, fin, ok)
			}
			if !fin.Acked {
				t.Errorf("owner: send %s answered ok without its message.dispatch first", cmid)
			}
		}
	}
	sendN("before", 3)
	for _, c := range []*fclient{r, l} {
		if !c.waitUntil(10*time.Second, func() bool { return len(c.rooms[room]) == 3 }) {
			t.Fatalf("%s: has %d of the 3 messages sent before the outage", c.name, len(c.messages(room)))
		}
	}

	killed := time.Now()
	rds.Kill()
	waitBroker(t, hc, false, a.httpURL(), b.httpURL())

	changes := []struct {
		who   *fclient
		event string
		data  map[string]any
	}{
		{owner, "room.remove_members", map[string]any{"room_id": room, "members": []int64{r.id}}},
		{l, "room.leave", map[string]any{"room_id": room}},
		{owner, "room.add_members", map[string]any{"room_id": room, "members": []int64{n.id}}},
	}
	for _, ch := range changes {
		start := time.Now()
		fin, ok := ch.who.call(ch.event, ch.data, 15*time.Second)
		if !ok || !fin.OK {
			t.Fatalf("%s while Redis is down: answer %+v (answered %v), want success", ch.event, fin, ok)
		}
		t.Logf("%s while Redis is down: answered ok in %d ms", ch.event, time.Since(start).Milliseconds())
	}
	if db.isMember(room, r.id) || db.isMember(room, l.id) || !db.isMember(room, n.id) {
		t.Fatalf("not committed: removed member %v, leaver member %v, added member %v",
			db.isMember(room, r.id), db.isMember(room, l.id), db.isMember(room, n.id))
	}
	var removal int64 // the last seq before the changes
	for seq := range db.roomMessages(room) {
		removal = max(removal, seq)
	}

	sendN("down", 3) // while Redis is down
	up := rds.Start()
	sendN("back", 5) // right after Redis is back, before or while the nodes resync
	for _, c := range []*fclient{owner, r, l, n} {
		if !c.waitUntil(resyncBound, func() bool {
			for _, rs := range c.resyncs {
				if rs.At.After(killed) {
					return true
				}
			}
			return false
		}) {
			t.Fatalf("%s: no chat.resync within %v of Redis answering again", c.name, resyncBound)
		}
		rs, _ := c.resyncAfter(killed)
		_, listed := rs.Rooms[room]
		if listed != (c == owner || c == n) {
			t.Errorf("%s: chat.resync lists the room: %v", c.name, listed)
		}
		t.Logf("%s: chat.resync %d ms after Redis answered", c.name, rs.At.Sub(up).Milliseconds())
	}
	sendN("after", 5) // after every resync

	stored := db.roomMessages(room)
	var afterRemoval []int64
	for seq := range stored {
		if seq > removal {
			afterRemoval = append(afterRemoval, seq)
		}
	}
	if !n.waitUntil(10*time.Second, func() bool {
		for _, seq := range afterRemoval {
			if !n.hasLocked(room, seq) {
				return false
			}
		}
		return true
	}) {
		t.Errorf("added member: has not every message sent after the changes")
	}
	received := func(c *fclient) (dispatched, total int) {
		for seq, m := range c.messages(room) {
			if seq > removal {
				total++
				if m.Dispatch {
					dispatched++
				}
			}
		}
		return dispatched, total
	}
	rDisp, rGot := received(r)
	lDisp, lGot := received(l)
	nDisp, nGot := received(n)
	if rGot != 0 || lGot != 0 {
		t.Errorf("removed member received %d and leaver %d messages sent after the changes; want 0", rGot, lGot)
	}
	if nGot != len(afterRemoval) {
		t.Errorf("added member has %d of the %d messages sent after the changes", nGot, len(afterRemoval))
	}
	t.Logf("membership during redis outage: %s", figures("sent_after_changes", len(afterRemoval),
		"removed_received", rGot, "leaver_received", lGot, "added_received", nGot, "added_by_dispatch", nDisp,
		"added_by_catch_up", nGot-nDisp, "removed_by_dispatch", rDisp, "leaver_by_dispatch", lDisp))
	for _, c := range []*fclient{owner, r, l, n} {
		if errs := c.errors(); len(errs) != 0 {
			t.Errorf("%s: unexpected frames %q", c.name, errs)
		}
	}
}
