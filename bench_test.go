package chatmux

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/chatmux/chatmux/internal/wsframe"
)

func benchRouter() *Mux {
	r := NewRouter()
	nop := func(*Context) error { return nil }
	for _, p := range []string{"message.send", "message.read", "message.react", "message.typing", "message.modify",
		"room.create", "room.list", "room.info", "room.messages", "room.{id}.typing", "room.{id}.members.{user}", "admin.*"} {
		r.HandleFunc(p, nop)
	}
	return r
}

func BenchmarkMatch(b *testing.B) {
	r := benchRouter()
	for _, ev := range []string{"message.send", "room.42.typing", "room.42.members.7", "admin.a.b.c", "nope.nope"} {
		b.Run(ev, func(b *testing.B) {
			vals := make([]string, 0, 4)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				_, vals = r.tree.match(ev, vals[:0])
			}
		})
	}
}

func BenchmarkServeEventFiveMiddlewares(b *testing.B) {
	r := NewRouter()
	mw := func(next Handler) Handler {
		return func(c *Context) error { return next(c) }
	}
	r.Use(mw, mw, mw, mw, mw)
	r.HandleFunc("room.{id}.typing", func(c *Context) error {
		if c.Param("id") == "" {
			b.Fatal("no param")
		}
		return nil
	})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c := newContext(nil, nil, context.Background(), "room.42.typing", nil)
		if err := r.ServeEvent(c); err != nil {
			b.Fatal(err)
		}
		c.release()
	}
}

func BenchmarkDecodeEnvelope(b *testing.B) {
	frame := []byte(`{"event_type":"message.send","data":{"room_id":"1b4e28ba-2fa1-11d2-883f-0016d3cca427","content":"hello there"}}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := decodeEnvelope(frame); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBroadcastEnqueue1000 measures encode + publish + enqueue to 1,000
// local connections whose writers are held, so only the broadcast path is
// counted. Allocations per broadcast must not grow with the recipients.
func BenchmarkBroadcastEnqueue1000(b *testing.B) {
	srv := NewServer(NewRouter(), ServerOptions{MaxQueueBytes: 1 << 30, Logger: quietLogger})
	conns := make([]*Conn, 1000)
	for i := range conns {
		c := &Conn{srv: srv, writing: true, ctx: context.Background()}
		if err := c.Join(context.Background(), "room"); err != nil {
			b.Fatal(err)
		}
		conns[i] = c
	}
	payload := map[string]any{"id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "content": "hello", "seq": 1}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := srv.Broadcast(ctx, "room", "message.dispatch", payload); err != nil {
			b.Fatal(err)
		}
		if i%256 == 255 {
			b.StopTimer()
			for _, c := range conns {
				c.mu.Lock()
				c.dropQueue()
				c.mu.Unlock()
			}
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(b.N*len(conns))/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchmarkBroadcastSockets measures whole deliveries over loopback
// WebSockets: one broadcast reaches every client, which reads it.
func BenchmarkBroadcastSockets(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) { benchSockets(b, n) })
	}
}

func benchSockets(b *testing.B, n int) {
	srv := NewServer(NewRouter(), ServerOptions{MaxQueueBytes: 64 << 20, Logger: quietLogger, PingInterval: -1})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(ts.URL, "http")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	clients := make([]*websocket.Conn, n)
	for i := range clients {
		c, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer c.CloseNow()
		clients[i] = c
	}
	for srv.Len() < n { // counted once in srv.conns; len(srv.conns) would race
		time.Sleep(time.Millisecond) // polling interval
	}
	srv.mu.Lock()
	for c := range srv.conns {
		_ = c.Join(ctx, "room")
	}
	srv.mu.Unlock()
	frame, _ := json.Marshal(map[string]any{"id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "content": strings.Repeat("x", 100)})
	var wg sync.WaitGroup
	b.ResetTimer()
	for _, c := range clients {
		wg.Add(1)
		go func(c *websocket.Conn) {
			defer wg.Done()
			for i := 0; i < b.N; i++ {
				_, r, err := c.Reader(ctx)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, r)
			}
		}(c)
	}
	const window = 32
	for i := 0; i < b.N; i++ {
		if err := srv.Broadcast(ctx, "room", "message.dispatch", json.RawMessage(frame)); err != nil {
			b.Fatal(err)
		}
		if i%window == window-1 {
			time.Sleep(0) // let readers run
		}
	}
	wg.Wait()
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchmarkHandleEvent measures one client frame from decoding to the
// handler's answer on the connection's queue (whose writer is held, so
// nothing is written): the per-event cost of the read loop.
func BenchmarkHandleEvent(b *testing.B) {
	answer := []byte(`{"eventType":"message.dispatch","data":{"id":"1b4e28ba-2fa1-11d2-883f-0016d3cca427","seq":1}}`)
	r := NewRouter()
	r.HandleFunc("message.send", func(c *Context) error { return nil })
	r.HandleFunc("message.reply", func(c *Context) error { return c.ReplyRaw(answer) })
	srv := NewServer(r, ServerOptions{MaxQueueBytes: 1 << 30, Logger: quietLogger, PingInterval: -1})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer client.CloseNow()
	var c *Conn
	for c == nil {
		srv.mu.Lock()
		for k := range srv.conns {
			c = k
		}
		srv.mu.Unlock()
		runtime.Gosched()
	}
	// Hold the writer: answers stay queued.
	c.mu.Lock()
	for c.writing {
		c.mu.Unlock()
		runtime.Gosched()
		c.mu.Lock()
	}
	c.writing = true
	c.mu.Unlock()
	data := `"data":{"room_id":"1b4e28ba-2fa1-11d2-883f-0016d3cca427","content":"hello there"}`
	for _, bc := range []struct{ name, frame string }{
		{"no-answer", `{"event_type":"message.send",` + data + `}`},
		{"reply", `{"event_type":"message.reply",` + data + `}`},
		{"unknown", `{"event_type":"message.nope",` + data + `}`},
		{"request_id/no-answer", `{"event_type":"message.send",` + data + `,"request_id":"r-1234"}`},
		{"request_id/reply", `{"event_type":"message.reply",` + data + `,"request_id":"r-1234"}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			frame := []byte(bc.frame)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				c.handle(frame)
				if i%256 == 255 {
					c.mu.Lock()
					c.dropQueue()
					c.mu.Unlock()
				}
			}
		})
	}
}

// countConn is a socket that accepts every write at once and counts the
// writes (system calls, on a real socket) and bytes.
type countConn struct {
	net.Conn
	writes atomic.Int64
	bytes  atomic.Int64
}

func (c *countConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	c.bytes.Add(int64(len(p)))
	return len(p), nil
}

func (c *countConn) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkDeliver measures the whole delivery path of group frames, from
// Publish to the socket's write (a socket that takes every write at once,
// so that the system call is left out): the hub's fan-out, the queue, the
// writer and the framing. One op is one delivery. It reports the
// allocations per delivery and the writes per delivery (what the
// writer's gathering saves: each write is a system call on a real
// socket). Every message goes to every member of one room; the messages
// are spaced by 1 µs per member (1 ms at 1,000 members), so that each
// connection's writer has gone idle, or is about to, when the next one
// comes, as at a steady rate below the maximum.
func BenchmarkDeliver(b *testing.B) {
	for _, n := range []int{100, 1000} {
		for _, gather := range []time.Duration{-1, 5 * time.Millisecond} {
			name := fmt.Sprintf("members=%d/gather=%v", n, gather)
			if gather < 0 {
				name = fmt.Sprintf("members=%d/gather=off", n)
			}
			b.Run(name, func(b *testing.B) { benchDeliver(b, n, gather) })
		}
	}
}

func benchDeliver(b *testing.B, n int, gather time.Duration) {
	srv := NewServer(NewRouter(), ServerOptions{MaxQueueBytes: 64 << 20, Logger: quietLogger, GatherDelay: gather})
	conns := make([]*Conn, n)
	socks := make([]*countConn, n)
	ctx := context.Background()
	for i := range conns {
		socks[i] = &countConn{}
		c := &Conn{srv: srv, ctx: ctx, raw: wsframe.NewConn(socks[i], time.Second)}
		if err := c.Join(ctx, "room"); err != nil {
			b.Fatal(err)
		}
		conns[i] = c
	}
	frame, _ := EncodeDispatch("message.dispatch", map[string]any{
		"id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "content": strings.Repeat("x", 64), "seq": 1})
	msgs := max(1, b.N/n)
	interval := time.Duration(n) * time.Microsecond
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < msgs; i++ {
		for time.Since(start) < time.Duration(i)*interval {
			runtime.Gosched() // the pace of the messages
		}
		if err := srv.Publish(ctx, "room", frame); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range conns { // wait for every writer to finish
		for {
			c.mu.Lock()
			idle := !c.writing
			c.mu.Unlock()
			if idle {
				break
			}
			runtime.Gosched()
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	var writes, bytes int64
	for _, s := range socks {
		writes += s.writes.Load()
		bytes += s.bytes.Load()
	}
	if want := int64(msgs) * int64(n) * int64(len(frame)); bytes < want {
		b.Fatalf("%d bytes written, want at least %d", bytes, want)
	}
	deliveries := float64(msgs * n)
	b.ReportMetric(float64(writes)/deliveries, "writes/delivery")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/deliveries, "allocs/delivery")
}
