package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chatmux/chatmux/internal/testenv"
	"github.com/chatmux/chatmux/webhook/webhooktest"
)

// Offline webhooks in the example server (docs/protocol.md#offline-webhooks):
// the settings, the metrics, and a node killed between the commit and the
// call.

const testWebhookSecret = "webhook-secret-of-the-tests"

// TestWebhookConfig: the URL and the secret come together or not at all;
// the URL is absolute http(s), the secret 16+ characters, the lease
// longer than the timeout.
func TestWebhookConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
		on      bool
	}{
		{name: "off"},
		{name: "on", env: map[string]string{"CHATMUX_WEBHOOK_URL": "https://hooks.example.com/chat", "CHATMUX_WEBHOOK_SECRET": testWebhookSecret}, on: true},
		{name: "url alone", env: map[string]string{"CHATMUX_WEBHOOK_URL": "https://hooks.example.com/chat"}, wantErr: "without CHATMUX_WEBHOOK_SECRET"},
		{name: "secret alone", env: map[string]string{"CHATMUX_WEBHOOK_SECRET": testWebhookSecret}, wantErr: "without CHATMUX_WEBHOOK_URL"},
		{name: "short secret", env: map[string]string{"CHATMUX_WEBHOOK_URL": "http://127.0.0.1:9/h", "CHATMUX_WEBHOOK_SECRET": "short"},
			wantErr: "at least 16 characters"},
		{name: "relative url", env: map[string]string{"CHATMUX_WEBHOOK_URL": "/hooks", "CHATMUX_WEBHOOK_SECRET": testWebhookSecret},
			wantErr: "absolute http or https"},
		{name: "other scheme", env: map[string]string{"CHATMUX_WEBHOOK_URL": "ftp://x/y", "CHATMUX_WEBHOOK_SECRET": testWebhookSecret},
			wantErr: "absolute http or https"},
		{name: "lease under timeout", args: []string{"-webhook-lease", "5s", "-webhook-timeout", "5s"},
			env:     map[string]string{"CHATMUX_WEBHOOK_URL": "http://127.0.0.1:9/h", "CHATMUX_WEBHOOK_SECRET": testWebhookSecret},
			wantErr: "-webhook-lease"},
		{name: "lease and timeout by env", env: map[string]string{"CHATMUX_WEBHOOK_URL": "http://127.0.0.1:9/h",
			"CHATMUX_WEBHOOK_SECRET": testWebhookSecret, "CHATMUX_WEBHOOK_TIMEOUT": "2s", "CHATMUX_WEBHOOK_LEASE": "3s"}, on: true},
		{name: "bad lease", env: map[string]string{"CHATMUX_WEBHOOK_LEASE": "soon"}, wantErr: "CHATMUX_WEBHOOK_LEASE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.webhooks() != tt.on {
				t.Fatalf("webhooks on = %v, want %v", cfg.webhooks(), tt.on)
			}
			if tt.name == "lease and timeout by env" && (cfg.WebhookTimeout != 2*time.Second || cfg.WebhookLease != 3*time.Second) {
				t.Fatalf("timeout %v, lease %v", cfg.WebhookTimeout, cfg.WebhookLease)
			}
		})
	}
}

// TestWebhookMetrics: with the memory store, a message to an offline
// member reaches the receiver and /metrics counts it.
func TestWebhookMetrics(t *testing.T) {
	sink := webhooktest.NewReceiver(t, []byte(testWebhookSecret), webhooktest.Options{})
	ts := newTestServerWith(t, config{Addr: "127.0.0.1:0", WebhookURL: sink.URL(), WebhookSecret: []byte(testWebhookSecret)})
	hc := newHTTPClient(t)
	alice := dialClient(t, hc, "A", ts.URL, "alice")
	bobID, err := userID(hc, ts.URL, "bob") // a user, never connected
	if err != nil {
		t.Fatal(err)
	}
	alice.mustCall("room.create", map[string]any{"type": "GroupChat", "name": "hooks", "participants": []int64{bobID}})
	var room struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(alice.data("roomcreate.dispatch"), &room); err != nil {
		t.Fatal(err)
	}
	if _, ok := alice.send(room.ID, "m1", 10*time.Second); !ok {
		t.Fatal("no answer to the send")
	}
	waitFor(t, 10*time.Second, "the event", func() bool { return sink.Stats().Unique == 1 })
	for _, e := range sink.Events() {
		if len(e.Recipients) != 1 || e.Recipients[0].Username != "bob" || e.Room.Name != "hooks" {
			t.Fatalf("event %+v", e)
		}
	}
	want := []string{
		`chatmux_webhook_events_total{result="delivered"} 1`,
		`chatmux_webhook_events_total{result="dropped"} 0`,
		`chatmux_webhook_requests_total{status="2xx"} 1`,
		`chatmux_webhook_queue_length 0`,
	}
	waitFor(t, 10*time.Second, "the metrics", func() bool {
		_, body := getBody(t, ts.URL+"/metrics")
		for _, w := range want {
			if !strings.Contains(body, w) {
				return false
			}
		}
		return true
	})
}

// TestWebhookNodeKilled (PostgreSQL, processes): node X stores messages
// for offline members, sends their events to a receiver that holds every
// request until the test ends, and is killed with SIGKILL with the request in flight; its
// outbox rows outlive it, and node Y's relay delivers every event once
// X's lease has ended.
func TestWebhookNodeKilled(t *testing.T) {
	dbURL := faultDatabase(t)
	rds := testenv.StartRedis(t)
	db := openFaultDB(t, dbURL)
	bin := buildChat(t)
	sink := webhooktest.NewReceiver(t, []byte(testWebhookSecret), webhooktest.Options{})
	// The receiver of X: it records what it gets and holds every request
	// until it is closed, at the end of the test.
	held := webhooktest.NewReceiver(t, []byte(testWebhookSecret), webhooktest.Options{Hold: make(chan struct{})})
	const lease = 4 * time.Second
	base := nodeEnv{"CHATMUX_WEBHOOK_SECRET": testWebhookSecret, "CHATMUX_WEBHOOK_TIMEOUT": "3s", "CHATMUX_WEBHOOK_LEASE": lease.String()}
	envOf := func(url string) nodeEnv {
		e := nodeEnv{"CHATMUX_WEBHOOK_URL": url}
		for k, v := range base {
			e[k] = v
		}
		return faultNodeSettings(dbURL, rds.URL(), e)
	}
	x := startProcNode(t, bin, "X", envOf(held.URL()))
	y := startProcNode(t, bin, "Y", envOf(sink.URL()))
	hc := newHTTPClient(t)
	sender := dialClient(t, hc, "X", x.httpURL(), "hx")
	var offline []int64
	for _, name := range []string{"hoff1", "hoff2"} {
		id, err := userID(hc, x.httpURL(), name)
		if err != nil {
			t.Fatal(err)
		}
		offline = append(offline, id)
	}
	sender.mustCall("room.create", map[string]any{"type": "GroupChat", "name": "killed", "participants": offline})
	var room struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(sender.data("roomcreate.dispatch"), &room); err != nil {
		t.Fatal(err)
	}
	const n = 20
	for i := range n {
		if fin, ok := sender.send(room.ID, fmt.Sprint("k", i), 10*time.Second); !ok || !fin.OK {
			t.Fatalf("send %d: %+v %v", i, fin, ok)
		}
	}
	waitFor(t, 10*time.Second, "X's request in flight", func() bool { return held.Stats().Events > 0 })
	if c := db.count(`SELECT count(*) FROM webhook_outbox`); c != n {
		t.Fatalf("outbox rows before the kill: %d, want %d", c, n)
	}
	killedAt := time.Now()
	x.signal(t, syscall.SIGKILL)
	_ = x.wait(t, 10*time.Second)
	waitFor(t, lease+30*time.Second, "Y to deliver X's events", func() bool { return sink.Stats().Unique == n })
	delivered := time.Since(killedAt)
	waitFor(t, 10*time.Second, "the outbox to empty", func() bool { return db.count(`SELECT count(*) FROM webhook_outbox`) == 0 })
	got, xs := sink.Stats(), held.Stats()
	unique, events, hung := got.Unique, got.Events, xs.Events
	for _, e := range sink.Events() {
		if len(e.Recipients) != 2 || e.Room.Name != "killed" {
			t.Fatalf("event %+v", e)
		}
	}
	if events != n || got.Bad+xs.Bad != 0 {
		t.Fatalf("events received by Y's receiver: %d for %d messages (bad requests %d)", events, n, got.Bad+xs.Bad)
	}
	t.Logf("sigkill between commit and call: %s", figures("messages", n, "held_by_killed_node", hung,
		"delivered_by_other_node", events, "unique_after_dedup", unique, "duplicates_before_dedup", hung+events-unique,
		"delivered_after_kill_s", fmt.Sprintf("%.2f", delivered.Seconds()), "lease_s", lease.Seconds()))
	stopNode(t, y)
}
