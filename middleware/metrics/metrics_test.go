package metrics_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/groups"
	"github.com/chatmux/chatmux/middleware"
	"github.com/chatmux/chatmux/middleware/metrics"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// metric returns the metric of family name whose labels include labels
// (pairs of name, value), nil when there is none.
func metric(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) *dto.Metric {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue next
				}
			}
			return m
		}
	}
	return nil
}

// counter returns the value of a counter or gauge, 0 when absent.
func counter(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	m := metric(t, reg, name, labels...)
	switch {
	case m == nil:
		return 0
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("%s is neither a counter nor a gauge", name)
	return 0
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	r := chatmux.NewRouter()
	r.Use(middleware.RecovererWith(slog.New(slog.DiscardHandler)), m.Middleware, middleware.RateLimit(2, time.Hour))
	r.NotFound(func(*chatmux.Context) error { return nil })
	r.HandleFunc("message.send", func(*chatmux.Context) error { return nil })
	r.HandleFunc("room.{id}.join", func(c *chatmux.Context) error {
		if c.Param("id") == "0" {
			return chatmux.NotFound()
		}
		return nil
	})
	r.HandleFunc("fail", func(*chatmux.Context) error { return errors.New("plain") })
	r.HandleFunc("panic", func(*chatmux.Context) error { panic("x") })

	alice, bob := &chatmux.User{ID: 1}, &chatmux.User{ID: 2}
	send := func(event string, u *chatmux.User) {
		_ = r.ServeEvent(chatmux.NewTestContext(context.Background(), event, json.RawMessage(`{}`), u))
	}
	send("message.send", alice)
	send("message.send", alice)
	send("message.send", alice) // 4029
	send("message.send", bob)
	send("room.1.join", alice)
	send("room.0.join", alice) // 4004
	send("fail", alice)        // 4006
	send("panic", alice)       // panics past the metrics middleware: counted as 4006
	for i := range 50 {
		send(fmt.Sprintf("no.such.event.%d", i), bob) // 2 allowed, then 4029
	}

	tests := []struct {
		pattern, outcome string
		want             float64
	}{
		{"message.send", "ok", 3},
		{"message.send", "4029", 1},
		{"room.{id}.join", "ok", 1},
		{"room.{id}.join", "4004", 1},
		{"fail", "4006", 1},
		{"panic", "4006", 1}, // unwound through the metrics middleware to Recoverer
		{"unmatched", "ok", 2},
		{"unmatched", "4029", 48},
	}
	for _, tc := range tests {
		if got := counter(t, reg, "chatmux_events_total", "pattern", tc.pattern, "outcome", tc.outcome); got != tc.want {
			t.Errorf("events_total{pattern=%q,outcome=%q} = %v, want %v", tc.pattern, tc.outcome, got, tc.want)
		}
	}
	// Raw event names never become labels: the patterns are the routes.
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	patterns := map[string]bool{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "pattern" {
					patterns[lp.GetValue()] = true
				}
			}
		}
	}
	if want := 5; len(patterns) != want { // message.send, room.{id}.join, fail, panic, unmatched
		t.Errorf("pattern labels = %v, want %d", patterns, want)
	}
	h := metric(t, reg, "chatmux_event_duration_seconds", "pattern", "message.send").GetHistogram()
	if h.GetSampleCount() != 4 {
		t.Errorf("duration sample count = %d, want 4", h.GetSampleCount())
	}
	if n, _ := testutil.GatherAndCount(reg, "chatmux_event_duration_seconds"); n != 5 {
		t.Errorf("duration has %d series, want 5", n)
	}
}

// TestMiddlewareConcurrent: the per-pattern caches under concurrent first
// use (run with -race).
func TestMiddlewareConcurrent(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	r := chatmux.NewRouter()
	r.Use(m.Middleware)
	codes := []int{0, 4002, 4003, 4004}
	for i := range 4 {
		r.HandleFunc(fmt.Sprintf("p%d", i), func(c *chatmux.Context) error {
			if code := codes[len(c.Event())%4]; code != 0 {
				return chatmux.NewError(code, "x")
			}
			return nil
		})
	}
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 100 {
				ev := fmt.Sprintf("p%d", (g+i)%4)
				_ = r.ServeEvent(chatmux.NewTestContext(context.Background(), ev, nil, nil))
			}
		}()
	}
	for range 8 {
		<-done
	}
	var total float64
	for i := range 4 {
		total += counter(t, reg, "chatmux_events_total", "pattern", fmt.Sprintf("p%d", i))
	}
	if total != 800 {
		t.Errorf("events counted = %v, want 800", total)
	}
}

type member struct{ _ int }

func (member) Deliver(*groups.Message) {}

func TestDelivered(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	broker := groups.NewMemory()
	broker.Hub().OnDeliver = m.Delivered
	ctx := context.Background()
	for i := range 5 {
		if err := broker.Join(ctx, "group-a", &member{}); err != nil {
			t.Fatal(err)
		}
		_ = i
	}
	if err := broker.Join(ctx, "group-b", &member{}); err != nil {
		t.Fatal(err)
	}
	publish := func(g string, kind groups.Kind) {
		if err := broker.Publish(ctx, g, &groups.Message{Kind: kind, Data: []byte(`{}`), Group: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	publish("group-a", groups.KindData)
	publish("group-a", groups.KindData)
	publish("group-b", groups.KindData)
	publish("group-empty", groups.KindData)
	publish("group-b", groups.KindJoin) // control messages are not fan-out
	h := metric(t, reg, "chatmux_delivery_members").GetHistogram()
	if h.GetSampleCount() != 4 || h.GetSampleSum() != 11 {
		t.Errorf("fan-out histogram: count %d sum %v, want 4 and 11", h.GetSampleCount(), h.GetSampleSum())
	}
	if n, _ := testutil.GatherAndCount(reg, "chatmux_delivery_members"); n != 1 {
		t.Errorf("fan-out has %d series, want 1 (no group label)", n)
	}
}

func TestNewRegistersOnce(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	metrics.New(reg)
	defer func() {
		if recover() == nil {
			t.Error("a second New on one registry did not panic")
		}
	}()
	metrics.New(reg)
}

// TestObserver: connection metrics over a real server, slow consumer
// included.
func TestObserver(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	r := chatmux.NewRouter()
	r.HandleFunc("ping", func(c *chatmux.Context) error { return c.Send("pong", nil) })
	r.HandleFunc("flood", func(c *chatmux.Context) error {
		return c.Send("big", strings.Repeat("x", 512)) // over MaxQueueBytes at once
	})
	srv := chatmux.NewServer(r, chatmux.ServerOptions{Observer: m, MaxQueueBytes: 256, Logger: slog.New(slog.DiscardHandler)})
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		ts.Close()
	})
	url := "ws" + strings.TrimPrefix(ts.URL, "http")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dial := func() *websocket.Conn {
		ws, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ws.CloseNow() })
		return ws
	}
	send := func(ws *websocket.Conn, event string) {
		if err := ws.Write(ctx, websocket.MessageText, []byte(`{"event_type":"`+event+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor := func(name string, want float64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for counter(t, reg, name) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s = %v, want %v", name, counter(t, reg, name), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	a, b, slow := dial(), dial(), dial()
	// An answered event proves each connection is registered.
	for _, ws := range []*websocket.Conn{a, b, slow} {
		send(ws, "ping")
		if _, _, err := ws.Read(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waitFor("chatmux_connections_open", 3)
	waitFor("chatmux_connections_total", 3)

	_ = a.Close(websocket.StatusNormalClosure, "")
	waitFor("chatmux_connections_open", 2)

	send(slow, "flood")
	if _, _, err := slow.Read(ctx); websocket.CloseStatus(err) != chatmux.CodeSlowConsumer {
		t.Fatalf("slow consumer read: %v, want close 4008", err)
	}
	waitFor("chatmux_queue_overflows_total", 1)
	waitFor("chatmux_connections_open", 1)
	waitFor("chatmux_connections_total", 3)
}
