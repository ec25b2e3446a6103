package metrics_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/groups"
	"github.com/chatmux/chatmux/middleware/metrics"
)

// flakyBroker is the in-process broker with an availability the test
// switches, as the Redis broker reports the loss and the return of Redis.
type flakyBroker struct {
	*groups.Memory
	mu sync.Mutex
	f  func(available bool)
}

var _ groups.Availability = (*flakyBroker)(nil)

func (b *flakyBroker) OnAvailability(f func(available bool)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.f = f
}

func (b *flakyBroker) set(available bool) {
	b.mu.Lock()
	f := b.f
	b.mu.Unlock()
	f(available)
}

// TestStaleDropped: while the broker is away, every group frame a stale
// connection drops is counted in chatmux_stale_dropped_total; frames to the
// sender's own socket are not dropped, and once the broker is back and the
// connection resumed, group frames are delivered and no longer counted.
func TestStaleDropped(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	r := chatmux.NewRouter()
	r.HandleFunc("join", func(c *chatmux.Context) error {
		if err := c.Join("g"); err != nil {
			return err
		}
		return c.Reply("joined")
	})
	r.HandleFunc("shout", func(c *chatmux.Context) error {
		if err := c.Broadcast("g", "shouted", "hi"); err != nil {
			return err
		}
		return c.Reply("shouted")
	})
	r.HandleFunc("stale", func(c *chatmux.Context) error { return c.Reply(c.Conn().Stale()) })
	broker := &flakyBroker{Memory: groups.NewMemory()}
	srv := chatmux.NewServer(r, chatmux.ServerOptions{
		Broker:       broker,
		Observer:     m,
		Logger:       slog.New(slog.DiscardHandler),
		Authenticate: func(r *http.Request) (*chatmux.User, error) { return &chatmux.User{ID: 1}, nil },
	})
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		ts.Close()
	})
	// The deadline of every dial, write and read of the test: generous,
	// a passing test is far from it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dial := func() *websocket.Conn {
		ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ws.CloseNow() })
		return ws
	}
	// ask sends event and returns the next frame (a Reply is the value
	// as is).
	ask := func(ws *websocket.Conn, event string) string {
		t.Helper()
		if err := ws.Write(ctx, websocket.MessageText, []byte(`{"event_type":"`+event+`"}`)); err != nil {
			t.Fatal(err)
		}
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	const dropped = "chatmux_stale_dropped_total"

	member, sender := dial(), dial()
	if got := ask(member, "join"); !strings.Contains(got, `"joined"`) {
		t.Fatalf("join: %s", got)
	}
	broker.set(false)
	for i := 1; i <= 3; i++ {
		// The drop is counted on the broadcast path, before the
		// sender's reply is queued.
		if got := ask(sender, "shout"); !strings.Contains(got, `"shouted"`) {
			t.Fatalf("shout %d: %s", i, got)
		}
		if got := counter(t, reg, dropped); got != float64(i) {
			t.Fatalf("after %d shouts while stale: %s = %v", i, dropped, got)
		}
	}

	broker.set(true)
	// Resuming is asynchronous ($resync is routed to each connection):
	// wait until the member is no longer stale.
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := ask(member, "stale")
		if got == "false" {
			break
		}
		if got != "true" {
			t.Fatalf("stale: %s", got)
		}
		if time.Now().After(deadline) {
			t.Fatal("the member is still stale 30s after the broker came back")
		}
	}
	if got := ask(sender, "shout"); !strings.Contains(got, `"shouted"`) {
		t.Fatalf("shout after resume: %s", got)
	}
	// The frame the member dropped earlier is gone; this one arrives.
	if _, b, err := member.Read(ctx); err != nil || !strings.Contains(string(b), `"shouted"`) {
		t.Fatalf("member after resume: %s, %v", b, err)
	}
	if got := counter(t, reg, dropped); got != 3 {
		t.Errorf("%s = %v after the broker came back, want 3", dropped, got)
	}
}
