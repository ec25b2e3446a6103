package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux/webhook"
	"github.com/chatmux/chatmux/webhook/webhooktest"
)

var secret = []byte("0123456789abcdef-test")

func TestSignVerify(t *testing.T) {
	body := []byte(`{"events":[]}`)
	now := time.Unix(1_700_000_000, 0)
	h := http.Header{}
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(webhook.HeaderSignature, webhook.Sign(secret, now.Unix(), body))
	if err := webhook.Verify(secret, h, body, 0, now.Add(time.Minute)); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	// The vector of docs/protocol.md#offline-webhooks (openssl dgst -sha256 -hmac).
	if got, want := webhook.Sign([]byte("my webhook secret"), 1700000000, []byte(`{"events":[]}`)),
		"v1=701d9f5e08ec2df64de203c33bd908fb13c07ce5019515240ce6989b6ba4c3ba"; got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
	cases := []struct {
		name string
		mod  func(h http.Header, body []byte) ([]byte, time.Time)
		want error
	}{
		{"tampered body", func(h http.Header, b []byte) ([]byte, time.Time) { return []byte(`{"events":[{}]}`), now }, webhook.ErrSignature},
		{"other secret", func(h http.Header, b []byte) ([]byte, time.Time) {
			h.Set(webhook.HeaderSignature, webhook.Sign([]byte("another secret!!"), now.Unix(), b))
			return b, now
		}, webhook.ErrSignature},
		{"old timestamp", func(h http.Header, b []byte) ([]byte, time.Time) { return b, now.Add(6 * time.Minute) }, webhook.ErrTimestamp},
		{"future timestamp", func(h http.Header, b []byte) ([]byte, time.Time) { return b, now.Add(-6 * time.Minute) }, webhook.ErrTimestamp},
		{"timestamp changed", func(h http.Header, b []byte) ([]byte, time.Time) {
			h.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix()+1, 10))
			return b, now
		}, webhook.ErrSignature},
		{"no signature", func(h http.Header, b []byte) ([]byte, time.Time) { h.Del(webhook.HeaderSignature); return b, now }, webhook.ErrNoSignature},
		{"no timestamp", func(h http.Header, b []byte) ([]byte, time.Time) { h.Del(webhook.HeaderTimestamp); return b, now }, webhook.ErrNoSignature},
		{"bad hex", func(h http.Header, b []byte) ([]byte, time.Time) {
			h.Set(webhook.HeaderSignature, "v1=zz")
			return b, now
		}, webhook.ErrNoSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := h.Clone()
			b, at := tc.mod(h, body)
			if err := webhook.Verify(secret, h, b, 5*time.Minute, at); !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	// Rotation: any of several signatures.
	h2 := h.Clone()
	h2.Set(webhook.HeaderSignature, webhook.Sign([]byte("old secret 123456"), now.Unix(), body)+", "+h.Get(webhook.HeaderSignature))
	if err := webhook.Verify(secret, h2, body, 0, now); err != nil {
		t.Fatalf("Verify with two signatures: %v", err)
	}
}

func event() webhook.Event {
	return webhook.Event{ID: uuid.New(), Type: webhook.TypeMessageOffline, CreatedAt: time.Now().UTC(),
		Room: webhook.Room{ID: uuid.New(), Name: "r", Type: "GroupChat"}, Message: json.RawMessage(`{"id":"x"}`),
		Recipients: []webhook.Recipient{{ID: 3, Username: "carol"}}}
}

func newDispatcher(t *testing.T, url string, mod func(*webhook.Config)) *webhook.Dispatcher {
	t.Helper()
	cfg := webhook.Config{URL: url, Secret: secret, MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	d, err := webhook.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Shutdown(context.Background()) })
	return d
}

// waitFor polls cond until it holds or 10 s have passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestNewChecks(t *testing.T) {
	for _, cfg := range []webhook.Config{{URL: "ftp://x", Secret: secret}, {URL: "/relative", Secret: secret}, {URL: "http://x"}} {
		if _, err := webhook.New(cfg); err == nil {
			t.Errorf("New(%+v) did not fail", cfg)
		}
	}
}

// TestDeliverBatched: queued events go in batches of at most MaxBatch,
// signed; every one arrives once.
func TestDeliverBatched(t *testing.T) {
	rcv := webhooktest.NewReceiver(t, secret, webhooktest.Options{})
	d := newDispatcher(t, rcv.URL(), func(c *webhook.Config) { c.MaxBatch = 7 })
	const n = 50
	for range n {
		if !d.Enqueue(webhook.Pending{Event: event()}) {
			t.Fatal("Enqueue refused")
		}
	}
	d.Start()
	waitFor(t, "every event", func() bool { return rcv.Stats().Unique == n && d.Stats().Delivered == n })
	got := rcv.Stats()
	if got.Events != n || got.Bad != 0 {
		t.Fatalf("events %d (want %d), bad requests %d", got.Events, n, got.Bad)
	}
	if got.Requests != (n+6)/7 {
		t.Fatalf("%d requests for %d events in batches of 7 (all queued before the start), want %d", got.Requests, n, (n+6)/7)
	}
	if s := d.Stats(); s.Delivered != n || s.Requests["2xx"] != uint64(got.Requests) {
		t.Fatalf("stats %+v", s)
	}
}

// TestRetryUntilRecovered: a receiver answering 503 for a while gets
// everything after it recovers, exactly once each.
func TestRetryUntilRecovered(t *testing.T) {
	rcv := webhooktest.NewReceiver(t, secret, webhooktest.Options{})
	rcv.Fail(http.StatusServiceUnavailable)
	d := newDispatcher(t, rcv.URL(), func(c *webhook.Config) { c.MaxBatch = 10 })
	d.Start()
	const n = 30
	for range n {
		d.Enqueue(webhook.Pending{Event: event()})
	}
	waitFor(t, "five failed requests", func() bool { return d.Stats().Requests["5xx"] >= 5 })
	rcv.Fail(0)
	waitFor(t, "every event", func() bool { return rcv.Stats().Unique == n && d.Stats().Delivered == n })
	s := d.Stats()
	if got := rcv.Stats().Events; got != n {
		t.Fatalf("%d events received for %d unique", got, n)
	}
	if s.Delivered != n || s.Retried == 0 || s.Dropped != 0 {
		t.Fatalf("stats %+v", s)
	}
	t.Logf("delivered %d, retried %d events in %d failed requests", s.Delivered, s.Retried, s.Requests["5xx"])
}

// TestEnqueueNeverBlocks: with the receiver hanging, Enqueue returns at
// once; what does not fit the queue is counted as dropped (or deferred
// with an outbox row), and Shutdown gives up at its deadline.
func TestEnqueueNeverBlocks(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	rcv := webhooktest.NewReceiver(t, secret, webhooktest.Options{Hold: hang})
	d := newDispatcher(t, rcv.URL(), func(c *webhook.Config) {
		c.QueueSize = 4
		c.MaxBatch = 1
		c.Timeout = time.Hour
		c.Lease = 2 * time.Hour
	})
	d.Start()
	d.Enqueue(webhook.Pending{Event: event()})
	<-rcv.Arrived() // the sender is stuck in its first request
	accepted := 0
	for range 10 {
		if d.Enqueue(webhook.Pending{Event: event()}) {
			accepted++
		}
	}
	if d.Enqueue(webhook.Pending{Event: event(), OutboxID: 9}) {
		t.Fatal("an event beyond the queue was accepted")
	}
	s := d.Stats()
	if accepted != 4 || s.Dropped != 6 || s.Deferred != 1 || s.Queued != 4 {
		t.Fatalf("accepted %d; stats %+v", accepted, s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown = %v", err)
	}
	if s := d.Stats(); s.Dropped != 6+5 || s.Delivered != 0 {
		t.Fatalf("after shutdown: %+v", s)
	}
	if d.Enqueue(webhook.Pending{Event: event()}) {
		t.Fatal("Enqueue after Shutdown accepted")
	}
}

// TestShutdownDrains: Shutdown sends what is queued before returning.
func TestShutdownDrains(t *testing.T) {
	rcv := webhooktest.NewReceiver(t, secret, webhooktest.Options{})
	d := newDispatcher(t, rcv.URL(), nil)
	for range 25 {
		d.Enqueue(webhook.Pending{Event: event()})
	}
	if err := d.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := rcv.Stats().Unique; got != 25 || d.Stats().Delivered != 25 {
		t.Fatalf("received %d, stats %+v", got, d.Stats())
	}
}

// TestMaxAge: an event older than MaxAge is dropped unsent.
func TestMaxAge(t *testing.T) {
	rcv := webhooktest.NewReceiver(t, secret, webhooktest.Options{})
	d := newDispatcher(t, rcv.URL(), func(c *webhook.Config) { c.MaxAge = time.Hour })
	old := event()
	old.CreatedAt = time.Now().Add(-2 * time.Hour)
	d.Enqueue(webhook.Pending{Event: old})
	d.Enqueue(webhook.Pending{Event: event()})
	if err := d.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s, got := d.Stats(), rcv.Stats().Unique; s.Expired != 1 || s.Delivered != 1 || got != 1 {
		t.Fatalf("stats %+v, received %d", s, got)
	}
}

func TestBackoff(t *testing.T) {
	for n := 1; n < 40; n++ {
		c := min(time.Second<<min(n-1, 30), 5*time.Minute)
		for range 50 {
			if b := webhook.Backoff(n, time.Second, 5*time.Minute); b <= 0 || b > c {
				t.Fatalf("Backoff(%d) = %v, want in (0, %v]", n, b, c)
			}
		}
	}
}
