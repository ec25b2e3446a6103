package main

// Presence across two nodes of the example server, built as a binary and
// run as child processes on PostgreSQL and Redis: a user's connect on one
// node, its clean close, and the SIGKILL of its node are announced to a
// member connected to the other node (docs/protocol.md#presence).

import (
	"syscall"
	"testing"
	"time"

	"github.com/chatmux/chatmux/internal/testenv"
)

// Presence settings of this test: small, so that it runs in seconds.
const (
	presenceThreshold = 2 * time.Second
	presenceGrace     = time.Second
	presenceInterval  = 500 * time.Millisecond
	// presenceMargin is what the bounds allow for the store, the broker
	// and a loaded machine.
	presenceMargin = 3 * time.Second
)

// presenceAfter waits until c has a presence.dispatch of user (online or
// not) read after since, and returns when it arrived.
func (c *fclient) presenceAfter(t *testing.T, limit time.Duration, user int64, online bool, since time.Time) time.Time {
	t.Helper()
	var at time.Time
	if !c.waitUntil(limit, func() bool {
		for _, p := range c.presence {
			if p.UserID == user && p.Online == online && !p.At.Before(since) {
				at = p.At
				return true
			}
		}
		return false
	}) {
		t.Fatalf("%s: no presence.dispatch of user %d online=%v within %v", c.name, user, online, limit)
	}
	return at
}

// presenceCount counts c's presence.dispatch frames of user (online or
// not).
func (c *fclient) presenceCount(user int64, online bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, p := range c.presence {
		if p.UserID == user && p.Online == online {
			n++
		}
	}
	return n
}

// TestPresenceNodes: alice on node Y watches bob on node X. Bob's clean
// close is announced offline after the grace, his connect online at once,
// and the SIGKILL of X offline within InactivityThreshold +
// PresenceInterval of when bob was last seen, by Y. Each announcement
// reaches alice once. The delays are logged.
func TestPresenceNodes(t *testing.T) {
	dbURL := faultDatabase(t)
	rds := testenv.StartRedis(t)
	bin := buildChat(t)
	env := faultNodeSettings(dbURL, rds.URL(), nodeEnv{
		"CHATMUX_NODE_HEARTBEAT":       nodeHeartbeat.String(),
		"CHATMUX_NODE_EXPIRY":          nodeExpiry.String(),
		"CHATMUX_INACTIVITY_THRESHOLD": presenceThreshold.String(),
		"CHATMUX_PRESENCE_GRACE":       presenceGrace.String(),
		"CHATMUX_PRESENCE_INTERVAL":    presenceInterval.String(),
	})
	hc := newHTTPClient(t)
	x := startProcNode(t, bin, "X", env)
	y := startProcNode(t, bin, "Y", env)
	alice := dialClient(t, hc, "Y", y.httpURL(), "palice")
	bob := dialClient(t, hc, "X", x.httpURL(), "pbob")
	createGroup(t, alice, "presence", bob)

	// A clean close: offline after the grace.
	closedAt := time.Now()
	_ = bob.ws.Close(1000, "")
	offClose := alice.presenceAfter(t, presenceGrace+presenceInterval+presenceMargin, bob.id, false, closedAt).Sub(closedAt)

	// A connect on X: online on Y.
	connectAt := time.Now()
	bob = dialClient(t, hc, "X", x.httpURL(), "pbob")
	onAcross := alice.presenceAfter(t, presenceMargin, bob.id, true, connectAt).Sub(connectAt)

	// SIGKILL of X: bob's session stops being touched, and Y announces
	// him offline once it is no longer live (the threshold after his
	// connect) and the grace has passed, at its next sweep.
	killedAt := time.Now()
	x.signal(t, syscall.SIGKILL)
	_ = x.wait(t, 10*time.Second)
	bound := presenceThreshold + presenceInterval
	offKillAt := alice.presenceAfter(t, bound+presenceMargin, bob.id, false, killedAt)
	offKill := offKillAt.Sub(killedAt)
	sinceSeen := offKillAt.Sub(connectAt) // bob was last seen at his connect

	// An observation window of three sweeps of Y (an absence cannot be
	// polled for): nothing more about bob.
	time.Sleep(3 * presenceInterval)
	if n := alice.presenceCount(bob.id, false); n != 2 {
		t.Errorf("offline dispatches of bob: %d, want 2 (the close, the kill)", n)
	}
	if n := alice.presenceCount(bob.id, true); n != 1 {
		t.Errorf("online dispatches of bob after the room was created: %d, want 1", n)
	}
	if errs := alice.errors(); len(errs) > 0 {
		t.Errorf("alice: %v", errs)
	}
	t.Logf("presence: %s", figures(
		"online_across_nodes_ms", onAcross.Milliseconds(),
		"offline_after_close_ms", offClose.Milliseconds(),
		"offline_after_sigkill_ms", offKill.Milliseconds(),
		"offline_after_last_seen_ms", sinceSeen.Milliseconds(),
		"bound_after_last_seen_ms", bound.Milliseconds(),
		"threshold_ms", presenceThreshold.Milliseconds(), "grace_ms", presenceGrace.Milliseconds(),
		"interval_ms", presenceInterval.Milliseconds()))
	stopNode(t, y)
}
