package main

// Nodes that stop: the example server built as a binary and run as child
// processes, stopped with SIGTERM under load (it drains) and with SIGKILL
// (the other node expires its sessions) (docs/protocol.md#faults).

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/chatmux/chatmux/internal/testenv"
)

// Node settings of these tests: a heartbeat every second and an expiry of
// 3 s, so that a killed node's sessions are gone within 4 s.
const (
	nodeHeartbeat = time.Second
	nodeExpiry    = 3 * time.Second
	expiryMargin  = 2 * time.Second
)

// TestFaultNodeStops builds the example server once and stops nodes of it
// with SIGTERM and SIGKILL, on one PostgreSQL schema and a private Redis.
func TestFaultNodeStops(t *testing.T) {
	dbURL := faultDatabase(t)
	rds := testenv.StartRedis(t)
	db := openFaultDB(t, dbURL)
	bin := buildChat(t)
	env := faultNodeSettings(dbURL, rds.URL(), nodeEnv{
		"CHATMUX_NODE_HEARTBEAT":   nodeHeartbeat.String(),
		"CHATMUX_NODE_EXPIRY":      nodeExpiry.String(),
		"CHATMUX_SHUTDOWN_TIMEOUT": "5s",
	})
	t.Run("SIGTERM", func(t *testing.T) { testSIGTERM(t, bin, db, env) })
	t.Run("SIGKILL", func(t *testing.T) { testSIGKILL(t, bin, db, env) })
}

// stopNode stops a node with SIGTERM and waits for it to exit.
func stopNode(t *testing.T, n *procNode) {
	t.Helper()
	n.signal(t, syscall.SIGTERM)
	if err := n.wait(t, 30*time.Second); err != nil {
		t.Errorf("node %s exited with %v after SIGTERM", n.name, err)
	}
}

// ids returns the user ids of clients.
func ids(clients []*fclient) []int64 {
	out := make([]int64, len(clients))
	for i, c := range clients {
		out[i] = c.id
	}
	return out
}

// testSIGTERM: six clients of node X send continuously (each four messages
// at once, the next four as soon as those are answered) when X gets
// SIGTERM. X
// drains and exits 0; every client of X is closed with 1001; every message
// stored was acknowledged to its sender (its message.dispatch) before the
// close, compared by client_msg_id with the database; none of X's sessions
// is left open; node Y's clients are untouched.
func testSIGTERM(t *testing.T, bin string, db *faultDB, env nodeEnv) {
	hc := newHTTPClient(t)
	x := startProcNode(t, bin, "X", env)
	y := startProcNode(t, bin, "Y", env)
	var onX, onY []*fclient
	for i := range 6 {
		onX = append(onX, dialClient(t, hc, "X", x.httpURL(), fmt.Sprintf("tx%d", i)))
	}
	for i := range 2 {
		onY = append(onY, dialClient(t, hc, "Y", y.httpURL(), fmt.Sprintf("ty%d", i)))
	}
	room := createGroup(t, onX[0], "sigterm", append(onX[1:], onY...)...)
	if n := db.sessions(ids(onX)); n != len(onX) {
		t.Fatalf("open sessions of X's users: %d, want %d", n, len(onX))
	}

	stop := make(chan struct{})
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
	}()
	var answered countSends
	wait := sendLoad(onX, room, time.Millisecond, 4, stop, &answered)
	answered.waitMore(t, 200)

	termAt := time.Now()
	x.signal(t, syscall.SIGTERM)
	err := x.wait(t, 30*time.Second)
	exitAfter := time.Since(termAt)
	if exitCode(err) != 0 {
		t.Errorf("X exited with %v after SIGTERM, want 0", err)
	}
	// Each sender stops once its connection has closed.
	for _, c := range onX {
		if !c.waitUntil(10*time.Second, func() bool { return c.closed }) {
			t.Errorf("%s: still open after X exited", c.name)
		}
	}
	close(stop)
	results := wait()

	closes := map[int]int{}
	var closeDelays []time.Duration
	for _, c := range onX {
		code, at := c.closeStatus()
		closes[int(code)]++
		closeDelays = append(closeDelays, at.Sub(termAt))
		if code != websocket.StatusGoingAway {
			t.Errorf("%s: closed with %d, want 1001", c.name, code)
		}
	}
	// Sessions are counted right after the exit: long before the other
	// node would expire them (nodeExpiry).
	openX := db.sessions(ids(onX))
	if openX != 0 {
		t.Errorf("open sessions of X's users after its exit: %d, want 0", openX)
	}
	if x.nodeID != "" {
		if n := db.count(`SELECT count(*) FROM sessions WHERE node_id = $1`, x.nodeID); n != 0 {
			t.Errorf("sessions of node %s after its exit: %d, want 0", x.nodeID, n)
		}
		if n := db.count(`SELECT count(*) FROM nodes WHERE id = $1`, x.nodeID); n != 0 {
			t.Errorf("node %s is still in the nodes table after its exit", x.nodeID)
		}
	}
	if n := db.sessions(ids(onY)); n != len(onY) {
		t.Errorf("open sessions of Y's users: %d, want %d", n, len(onY))
	}
	f := checkSends(t, db, room, results)
	if f.storedNotAcknowledged != 0 {
		t.Errorf("stored but never acknowledged to their senders: %d", f.storedNotAcknowledged)
	}
	// A send without an answer was read after the drain began: it has no
	// effect (the client resends it after reconnecting).
	inFlight := f.unanswered
	med, mx := durations(closeDelays)
	t.Logf("sigterm under load: %s", figures("clients", len(onX), "sent", f.sent, "stored", f.stored,
		"acknowledged", f.acknowledged, "answered_ok", f.okAnswers, "answered_error", f.errAnswers,
		"unanswered_not_stored", inFlight-f.storedNotAcknowledged, "stored_not_acknowledged", f.storedNotAcknowledged,
		"ok_without_dispatch", f.okWithoutDispatch, "close_codes", closes, "close_ms_median", med, "close_ms_max", mx,
		"exit_ms", exitAfter.Milliseconds(), "open_sessions_after", openX))
	for _, c := range onY {
		c.mustCall("session.heartbeat", nil)
	}
	stopNode(t, y)
}

// testSIGKILL: node X is killed with SIGKILL while five clients are
// connected to it; node Y's keeper deletes X's sessions within
// nodeExpiry + nodeHeartbeat of the kill, and Y's own sessions stay.
func testSIGKILL(t *testing.T, bin string, db *faultDB, env nodeEnv) {
	hc := newHTTPClient(t)
	x := startProcNode(t, bin, "X", env)
	y := startProcNode(t, bin, "Y", env)
	var onX []*fclient
	for i := range 5 {
		onX = append(onX, dialClient(t, hc, "X", x.httpURL(), fmt.Sprintf("kx%d", i)))
	}
	onY := dialClient(t, hc, "Y", y.httpURL(), "ky0")
	if n := db.sessions(ids(onX)); n != len(onX) {
		t.Fatalf("open sessions of X's users: %d, want %d", n, len(onX))
	}
	// X has written its heartbeat at least once.
	if x.nodeID != "" {
		waitFor(t, 10*time.Second, "X's heartbeat in the nodes table", func() bool {
			return db.count(`SELECT count(*) FROM nodes WHERE id = $1`, x.nodeID) == 1
		})
	}

	killedAt := time.Now()
	x.signal(t, syscall.SIGKILL)
	_ = x.wait(t, 10*time.Second)
	bound := nodeExpiry + nodeHeartbeat
	waitFor(t, bound+expiryMargin+5*time.Second, "X's sessions to expire", func() bool {
		return db.sessions(ids(onX)) == 0
	})
	expired := time.Since(killedAt)
	if expired > bound+expiryMargin {
		t.Errorf("X's sessions expired %v after the kill, want within %v (expiry %v + heartbeat %v) + %v",
			expired, bound, nodeExpiry, nodeHeartbeat, expiryMargin)
	}
	if n := db.sessions([]int64{onY.id}); n != 1 {
		t.Errorf("open sessions of Y's user: %d, want 1", n)
	}
	onY.mustCall("session.heartbeat", nil)
	t.Logf("sigkill: %s", figures("sessions_of_killed_node", len(onX), "expired_after_s", fmt.Sprintf("%.2f", expired.Seconds()),
		"bound_s", bound.Seconds(), "node_heartbeat_s", nodeHeartbeat.Seconds(), "node_expiry_s", nodeExpiry.Seconds(),
		"other_node_sessions_kept", db.sessions([]int64{onY.id})))
	stopNode(t, y)
}
