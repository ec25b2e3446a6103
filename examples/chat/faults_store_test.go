package main

// PostgreSQL faults and bounds, with the example server in this process:
// reserved events from the wire, a database frozen then cut (through a TCP
// proxy), and the pool bound under 100 connections at once
// (docs/protocol.md#faults).

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/chatmux/chatmux/internal/testenv"
	"github.com/chatmux/chatmux/store/storetest"
)

// TestFaultReservedEvents: $connect, $disconnect and any other $-event
// sent by a client are answered as unknown events ("invalid event type",
// with the request_id echoed when there is one), run nothing (no second
// chat.notifications, no extra session in the store), and the connection
// goes on working (heartbeats); its session is gone once it closes.
func TestFaultReservedEvents(t *testing.T) {
	dbURL := faultDatabase(t)
	db := openFaultDB(t, dbURL)
	hc := newHTTPClient(t)
	node := startFaultNode(t, "A", faultNodeSettings(dbURL, "", nil))
	c := dialClient(t, hc, "A", node.httpURL(), "reserved")
	if n := db.sessions([]int64{c.id}); n != 1 {
		t.Fatalf("sessions of the user after connecting: %d, want 1", n)
	}

	const each = 200
	events := []string{"$connect", "$disconnect", "$resync", "$anything"}
	sent := 0
	var rids []string
	for i := range each {
		for j, ev := range events {
			if j >= 2 && i >= 10 { // a few of the others
				continue
			}
			rid := ""
			if i%2 == 1 {
				rid = fmt.Sprintf("res-%s-%d", ev, i)
				rids = append(rids, rid)
			}
			if err := c.write(ev, rid, map[string]any{}); err != nil {
				t.Fatalf("write %s: %v", ev, err)
			}
			sent++
		}
	}
	// Events of a connection are handled in order: once the heartbeat is
	// answered, every reserved event was.
	fin, ok := c.call("session.heartbeat", nil, 15*time.Second)
	if !ok || !fin.OK {
		t.Fatalf("heartbeat after the reserved events: %+v (answered %v)", fin, ok)
	}
	unknown, other := 0, []string{}
	for _, e := range c.errors() {
		if e == `"invalid event type"` {
			unknown++
		} else {
			other = append(other, e)
		}
	}
	c.mu.Lock()
	for _, rid := range rids {
		if f, ok := c.finals[rid]; ok && f.Raw == `"invalid event type"` {
			unknown++
		} else {
			other = append(other, fmt.Sprintf("%s: %+v", rid, f))
		}
	}
	status := c.counts["status:success"]
	c.mu.Unlock()
	if unknown != sent || len(other) != 0 {
		t.Errorf("%d of %d reserved events answered as unknown; other answers %q", unknown, sent, other)
	}
	if n := c.count("chat.notifications"); n != 1 {
		t.Errorf("chat.notifications frames: %d, want 1", n)
	}
	sessions := db.sessions([]int64{c.id})
	if sessions != 1 {
		t.Errorf("sessions of the user after the reserved events: %d, want 1", sessions)
	}
	for i := range 3 {
		if fin, ok := c.call("session.heartbeat", nil, 15*time.Second); !ok || !fin.OK {
			t.Fatalf("heartbeat %d: %+v", i, fin)
		}
	}
	if n := c.count("status:success"); n != status+3 || status < 1 {
		t.Errorf("heartbeat answers {\"status\":\"success\"}: %d then %d, want 1 then 4", status, n)
	}
	_ = c.ws.Close(websocket.StatusNormalClosure, "")
	waitFor(t, 10*time.Second, "the session to be deleted once the connection closed", func() bool {
		return db.sessions([]int64{c.id}) == 0
	})
	t.Logf("reserved events: %s", figures("sent", sent, "answered_unknown", unknown,
		"chat_notifications", c.count("chat.notifications"), "sessions_during", sessions, "sessions_after_close", 0))
}

// pgFaultTimeouts are the store and connect timeouts of the PostgreSQL
// fault test, and the margin its bounds allow over them.
const (
	pgStoreTimeout   = time.Second
	pgConnectTimeout = time.Second
	pgMargin         = 1500 * time.Millisecond
	healthzBound     = time.Second
)

// TestFaultPostgresFrozenThenCut: the node talks to PostgreSQL through a
// proxy that first freezes (bytes stop, connections hang) and then cuts
// (every connection reset, again and again). Throughout, a send is
// answered 4013 within the store timeout (the connection stays open),
// /healthz answers 503 with the store unavailable within about 1 s, and a
// new connection is closed with 1013 (never 4001) within the connect
// timeout. Once the proxy is restored, everything works again.
func TestFaultPostgresFrozenThenCut(t *testing.T) {
	dbURL := faultDatabase(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := storetest.NewProxy(t, u.Host)
	hc := newHTTPClient(t)
	node := startFaultNode(t, "A", faultNodeSettings(withHost(t, dbURL, proxy.Addr()), "", nodeEnv{
		"CHATMUX_STORE_TIMEOUT":   pgStoreTimeout.String(),
		"CHATMUX_CONNECT_TIMEOUT": pgConnectTimeout.String(),
	}))
	alice := dialClient(t, hc, "A", node.httpURL(), "pgalice")
	bob := dialClient(t, hc, "A", node.httpURL(), "pgbob")
	room := createGroup(t, alice, "frozen", bob)
	if fin, ok := alice.send(room, "before", 10*time.Second); !ok || !fin.OK {
		t.Fatalf("send before the fault: %+v", fin)
	}

	type phaseFigures struct {
		sendMS, healthMS, connectMS []time.Duration
		sendCodes, connectCodes     map[int]int
		healthCodes                 map[int]int
	}
	measure := func(phase string) phaseFigures {
		t.Helper()
		f := phaseFigures{sendCodes: map[int]int{}, connectCodes: map[int]int{}, healthCodes: map[int]int{}}
		var wg sync.WaitGroup
		var mu sync.Mutex
		// Sends, one from each client (the events of one connection are
		// handled one after the other: two from one client would add up).
		for i, c := range []*fclient{alice, bob} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				fin, ok := c.send(room, fmt.Sprintf("%s-%d", phase, i), 20*time.Second)
				d := time.Since(start)
				mu.Lock()
				defer mu.Unlock()
				f.sendMS = append(f.sendMS, d)
				f.sendCodes[fin.Code]++
				switch {
				case !ok:
					t.Errorf("%s: send got no answer within 20s", phase)
				case fin.Code != 4013:
					t.Errorf("%s: send answered %+v, want error 4013", phase, fin)
				case d > pgStoreTimeout+pgMargin:
					t.Errorf("%s: send answered 4013 after %v, want within %v + %v", phase, d, pgStoreTimeout, pgMargin)
				}
			}()
		}
		// /healthz.
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, body, d, err := healthz(hc, node.httpURL())
				mu.Lock()
				defer mu.Unlock()
				f.healthMS = append(f.healthMS, d)
				f.healthCodes[code]++
				if err != nil || code != 503 || !strings.Contains(body, `"store":"unavailable"`) {
					t.Errorf("%s: /healthz = %d %s (%v), want 503 with the store unavailable", phase, code, body, err)
				} else if d > healthzBound+pgMargin {
					t.Errorf("%s: /healthz answered after %v, want within %v", phase, d, healthzBound)
				}
			}()
		}
		// New connections: a known user and a new one.
		for _, name := range []string{"pgalice", "pgnew" + phase} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, d, err := dialRefused(node.httpURL(), name, 20*time.Second)
				mu.Lock()
				defer mu.Unlock()
				f.connectMS = append(f.connectMS, d)
				f.connectCodes[int(code)]++
				switch {
				case err != nil:
					t.Errorf("%s: connect as %s: %v, want the upgrade then close 1013", phase, name, err)
				case code != websocket.StatusTryAgainLater:
					t.Errorf("%s: connect as %s closed with %d, want 1013", phase, name, code)
				case d > pgConnectTimeout+pgMargin:
					t.Errorf("%s: connect as %s closed with 1013 after %v, want within %v + %v", phase, name, d, pgConnectTimeout, pgMargin)
				}
			}()
		}
		wg.Wait()
		return f
	}
	report := func(phase string, f phaseFigures) {
		sm, sx := durations(f.sendMS)
		hm, hx := durations(f.healthMS)
		cm, cx := durations(f.connectMS)
		t.Logf("postgres %s: %s", phase, figures("send_codes", f.sendCodes, "send_ms_median", sm, "send_ms_max", sx,
			"healthz_codes", f.healthCodes, "healthz_ms_median", hm, "healthz_ms_max", hx,
			"connect_close_codes", f.connectCodes, "connect_ms_median", cm, "connect_ms_max", cx))
	}

	proxy.Freeze()
	report("frozen", measure("frozen"))

	// Cut: every connection is reset, and every new one too, every 20ms,
	// while the proxy stays frozen: calls fail fast instead of hanging.
	stopCut := make(chan struct{})
	cutDone := make(chan struct{})
	go func() {
		defer close(cutDone)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			proxy.Cut()
			select {
			case <-stopCut:
				return
			case <-tick.C:
			}
		}
	}()
	cut := measure("cut")
	close(stopCut)
	<-cutDone
	report("cut", cut)

	// Restored: everything works again, the open connections included.
	restored := time.Now()
	proxy.Thaw()
	waitFor(t, 15*time.Second, "/healthz 200 after the proxy is restored", func() bool {
		code, _, _, err := healthz(hc, node.httpURL())
		return err == nil && code == 200
	})
	healthyAfter := time.Since(restored)
	for i, c := range []*fclient{alice, bob} {
		if fin, ok := c.send(room, fmt.Sprintf("restored-%d", i), 10*time.Second); !ok || !fin.OK || !fin.Acked {
			t.Errorf("%s: send after the restore: %+v (answered %v)", c.name, fin, ok)
		}
	}
	carol := dialClient(t, hc, "A", node.httpURL(), "pgcarol")
	carol.mustCall("session.heartbeat", nil)
	for _, c := range []*fclient{alice, bob} {
		if code, _ := c.closeStatus(); code != -1 {
			t.Errorf("%s: the connection was closed (%d) by the outage", c.name, code)
		}
	}
	t.Logf("postgres restored: %s", figures("healthz_ok_after_ms", healthyAfter.Milliseconds(),
		"open_connections_kept", 2, "new_connection", "ok"))
}

// TestFaultPoolBounded: 100 clients connect at once to a node whose pool
// is bounded to 8 (CHATMUX_DB_MAX_CONNS): every one connects, and the node
// never holds more than 8 backends (counted in pg_stat_activity by the
// node's application_name).
func TestFaultPoolBounded(t *testing.T) {
	const clients, bound = 100, 8
	dbURL := faultDatabase(t)
	db := openFaultDB(t, dbURL)
	hc := newHTTPClient(t)
	app := testenv.UniqueName("chatmux_pool_")
	node := startFaultNode(t, "A", faultNodeSettings(withParam(t, dbURL, "application_name", app), "", nodeEnv{
		"CHATMUX_DB_MAX_CONNS":    fmt.Sprint(bound),
		"CHATMUX_CONNECT_TIMEOUT": "20s",
		"CHATMUX_STORE_TIMEOUT":   "20s",
	}))
	if n := db.backends(app); n < 1 || n > bound {
		t.Fatalf("backends of the node at start: %d (is application_name %s passed?)", n, app)
	}

	stopSampling := make(chan struct{})
	sampled := make(chan int, 1)
	go func() {
		largest := 0
		for {
			var n int
			err := db.db.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n)
			if err == nil {
				largest = max(largest, n)
			}
			select {
			case <-stopSampling:
				sampled <- largest
				return
			case <-time.After(5 * time.Millisecond): // sampling interval
			}
		}
	}()
	start := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var connectTimes []time.Duration
	var failures []string
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			t0 := time.Now()
			_, err := tryClient(t, hc, "A", node.httpURL(), fmt.Sprintf("pool%03d", i))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failures = append(failures, err.Error())
				return
			}
			connectTimes = append(connectTimes, time.Since(t0))
		}()
	}
	close(start)
	wg.Wait()
	close(stopSampling)
	largest := <-sampled
	if len(failures) != 0 {
		t.Errorf("%d of %d clients did not connect: %q", len(failures), clients, failures)
	}
	if largest > bound {
		t.Errorf("the node held %d backends at once, more than its pool bound %d", largest, bound)
	}
	ids := db.count(`SELECT count(*) FROM sessions`)
	if ids != len(connectTimes) {
		t.Errorf("sessions in the store: %d, want %d", ids, len(connectTimes))
	}
	med, mx := durations(connectTimes)
	t.Logf("pool bound: %s", figures("clients", clients, "connected", len(connectTimes), "db_max_conns", bound,
		"max_backends", largest, "connect_ms_median", med, "connect_ms_max", mx))
}
