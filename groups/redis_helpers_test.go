package groups

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chatmux/chatmux/internal/testenv"
)

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// generous bounds a wait that the broker bounds itself by a timeout of a
// few seconds at most: a test fails when it runs out only if that bound
// was not applied at all, never because the machine is busy.
const generous = time.Minute

// boundedContext returns a context that ends after generous: a call that
// returns while it is still alive returned by a bound of its own.
func boundedContext(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), generous)
	tb.Cleanup(cancel)
	return ctx
}

// joinConfirmed joins m to group, trying again while Redis does not
// confirm the subscription within the node's JoinTimeout (a short one in
// the tests that exercise it, which a busy machine may exceed).
func joinConfirmed(tb testing.TB, b *Redis, group string, m Member) {
	tb.Helper()
	deadline := time.Now().Add(generous)
	for {
		err := b.Join(context.Background(), group, m)
		if err == nil {
			return
		}
		if !errors.Is(err, ErrUnavailable) || time.Now().After(deadline) {
			tb.Fatalf("Join(%s): %v", group, err)
		}
	}
}

// logLines is a log of the messages at level Warn and above that a
// broker logged.
type logLines struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logLines) logger() *slog.Logger { return slog.New(l) }

// matching returns the messages logged so far that contain s.
func (l *logLines) matching(s string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, m := range l.msgs {
		if strings.Contains(m, s) {
			out = append(out, m)
		}
	}
	return out
}

// Enabled, Handle, WithAttrs and WithGroup make logLines a slog.Handler.
func (l *logLines) Enabled(_ context.Context, level slog.Level) bool {
	return level >= slog.LevelWarn
}

func (l *logLines) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.msgs = append(l.msgs, r.Message)
	l.mu.Unlock()
	return nil
}

func (l *logLines) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logLines) WithGroup(string) slog.Handler      { return l }

// redisNode is one "node" of a test: a client of its own (named, so that
// its pub/sub connection can be found in CLIENT LIST) and a broker.
type redisNode struct {
	name   string
	client *redis.Client
	broker *Redis
}

// testRedisOptions returns the client options of TEST_REDIS_URL, or skips.
func testRedisOptions(tb testing.TB) *redis.Options {
	tb.Helper()
	o, err := redis.ParseURL(testenv.RedisURL(tb))
	if err != nil {
		tb.Fatalf("TEST_REDIS_URL: %v", err)
	}
	return o
}

// newRedisNode starts a broker on a client of its own. addr, when not
// empty, replaces the Redis address (a proxy's).
func newRedisNode(tb testing.TB, name, addr string, opts RedisOptions) *redisNode {
	tb.Helper()
	o := testRedisOptions(tb)
	o.ClientName = name
	if addr != "" {
		o.Addr = addr
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger
	}
	client := redis.NewClient(o)
	b, err := NewRedis(client, opts)
	if err != nil {
		_ = client.Close()
		tb.Fatalf("NewRedis(%s): %v", name, err)
	}
	tb.Cleanup(func() {
		_ = b.Close()
		_ = client.Close()
	})
	return &redisNode{name: name, client: client, broker: b}
}

// adminClient is a separate client for inspecting Redis.
func adminClient(tb testing.TB) *redis.Client {
	tb.Helper()
	c := redis.NewClient(testRedisOptions(tb))
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// channels lists the group channels under prefix that Redis has
// subscribers for.
func channels(tb testing.TB, admin *redis.Client, prefix string) []string {
	tb.Helper()
	out, err := admin.PubSubChannels(context.Background(), prefix+"g:*").Result()
	if err != nil {
		tb.Fatalf("PUBSUB CHANNELS: %v", err)
	}
	for i, c := range out {
		out[i] = strings.TrimPrefix(c, prefix+"g:")
	}
	return out
}

// killPubSub kills the pub/sub connections of the named clients only (not
// those of other tests sharing the Redis) and returns how many it killed.
func killPubSub(tb testing.TB, admin *redis.Client, name string) int {
	tb.Helper()
	list, err := admin.ClientList(context.Background()).Result()
	if err != nil {
		tb.Fatalf("CLIENT LIST: %v", err)
	}
	n := 0
	for _, line := range strings.Split(list, "\n") {
		var id string
		var named, pubsub bool
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "id":
				id = v
			case "name":
				named = v == name
			case "flags":
				pubsub = strings.Contains(v, "P")
			case "sub":
				pubsub = pubsub || v != "0"
			}
		}
		if named && pubsub && id != "" {
			if err := admin.Do(context.Background(), "CLIENT", "KILL", "ID", id).Err(); err == nil {
				n++
			}
		}
	}
	return n
}

// recorder is a Member that keeps what it receives.
type recorder struct {
	mu   sync.Mutex
	msgs []*Message
	ch   chan struct{}
	// onControl, when set, handles KindJoin and KindLeave (in Deliver,
	// as chatmux connections do).
	onControl func(m *Message)
}

func newRecorder() *recorder { return &recorder{ch: make(chan struct{}, 1)} }

func (r *recorder) Deliver(m *Message) {
	if m.Kind != KindData {
		if r.onControl != nil {
			r.onControl(m)
		}
		return
	}
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
	select {
	case r.ch <- struct{}{}:
	default:
	}
}

// data returns the payloads received so far.
func (r *recorder) data() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.msgs))
	for i, m := range r.msgs {
		out[i] = string(m.Data)
	}
	return out
}

// wait waits until the recorder holds n messages, or fails the test.
func (r *recorder) wait(tb testing.TB, n int, d time.Duration) []string {
	tb.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		got := r.data()
		if len(got) >= n {
			return got
		}
		select {
		case <-r.ch:
		case <-deadline.C:
			tb.Fatalf("received %d of %d messages in %v", len(got), n, d)
		}
	}
}

// waitFor waits until the recorder has received s.
func (r *recorder) waitFor(d time.Duration, s string) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		for _, got := range r.data() {
			if got == s {
				return true
			}
		}
		select {
		case <-r.ch:
		case <-deadline.C:
			return false
		}
	}
}

func dataMsg(s string) *Message { return &Message{Kind: KindData, Data: []byte(s)} }

// proxy is a TCP proxy to Redis that a test can freeze (existing
// connections stop forwarding, silently), hold (new connections are
// accepted but frozen from the start) or take down (connections are closed
// and new ones refused). It counts the connections it accepts and the
// SUBSCRIBE commands that go through it, and can delay what it forwards.
type proxy struct {
	ln     net.Listener
	target string
	// subscribes counts the SUBSCRIBE commands sent to Redis.
	subscribes atomic.Int64
	// accepted counts the client connections accepted.
	accepted atomic.Int64
	// delay, when set before the proxy is used, delays every chunk it
	// forwards, both ways: a link with that latency.
	delay time.Duration

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	gen     int // generation of new connections
	frozen  int // connections of a generation below this are frozen
	hold    bool
	down    bool
	wg      sync.WaitGroup
	closed  bool
	release chan struct{} // closed by close: frozen copies end
}

func newProxy(tb testing.TB, target string) *proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}, release: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down || p.closed {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.mu.Unlock()
		p.accepted.Add(1)
		u, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[u] = struct{}{}, struct{}{}
		gen := p.gen
		if p.hold {
			gen = -1 // below any p.frozen: frozen from the start
		}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, u, gen, false)
		go p.pipe(u, c, gen, true)
	}
}

// subscribeCommand is how a SUBSCRIBE command's name is written in RESP
// (go-redis writes it in lower case). UNSUBSCRIBE does not match: its
// length differs.
var subscribeCommand = []byte("$9\r\nsubscribe\r\n")

// pipe copies src to dst. Once its generation is frozen it forwards
// nothing more and keeps both connections open, silent, until close. When
// toRedis, it counts the SUBSCRIBE commands it forwards.
func (p *proxy) pipe(dst, src net.Conn, gen int, toRedis bool) {
	defer p.wg.Done()
	defer func() { _ = dst.Close(); _ = src.Close() }()
	buf := make([]byte, 32<<10)
	var tail []byte // the end of the previous read, for a command cut in two
	for {
		n, err := src.Read(buf)
		if toRedis && n > 0 {
			seen := bytes.ToLower(append(tail, buf[:n]...))
			p.subscribes.Add(int64(bytes.Count(seen, subscribeCommand)))
			tail = append(tail[:0], seen[max(0, len(seen)-len(subscribeCommand)+1):]...)
		}
		if n > 0 {
			p.mu.Lock()
			frozen := gen < p.frozen
			p.mu.Unlock()
			if frozen {
				<-p.release
				return
			}
			if p.delay > 0 {
				time.Sleep(p.delay) // the link's latency
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// freeze makes every open connection silently stop forwarding; new
// connections work.
func (p *proxy) freeze() {
	p.mu.Lock()
	p.gen++
	p.frozen = p.gen
	p.mu.Unlock()
}

// setHold makes new connections frozen from the start (hold) or not.
func (p *proxy) setHold(hold bool) {
	p.mu.Lock()
	p.hold = hold
	p.mu.Unlock()
}

// setDown closes every connection and refuses new ones (down) or accepts
// them again.
func (p *proxy) setDown(down bool) {
	p.mu.Lock()
	p.down = down
	var conns []net.Conn
	if down {
		for c := range p.conns {
			conns = append(conns, c)
		}
		clear(p.conns)
	}
	p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

func (p *proxy) close() {
	p.mu.Lock()
	p.closed = true
	conns := p.conns
	p.conns = map[net.Conn]struct{}{}
	close(p.release)
	p.mu.Unlock()
	_ = p.ln.Close()
	for c := range conns {
		_ = c.Close()
	}
	p.wg.Wait()
}

// newPrivateNode starts a broker on a client of its own to addr.
func newPrivateNode(tb testing.TB, name, addr string, opts RedisOptions) *redisNode {
	tb.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger
	}
	client := redis.NewClient(&redis.Options{Addr: addr, ClientName: name})
	b, err := NewRedis(client, opts)
	if err != nil {
		_ = client.Close()
		tb.Fatalf("NewRedis(%s): %v", name, err)
	}
	tb.Cleanup(func() {
		_ = b.Close()
		_ = client.Close()
	})
	return &redisNode{name: name, client: client, broker: b}
}

// availabilityLog records the calls of one or more OnAvailability
// callbacks of a broker, and whether two ever ran at once.
type availabilityLog struct {
	running  atomic.Int32
	overlaps atomic.Int32

	mu    sync.Mutex
	calls []availabilityCall
	ch    chan struct{}
}

type availabilityCall struct {
	available bool
	at        time.Time
	callback  int // which of the log's callbacks
}

func newAvailabilityLog() *availabilityLog {
	return &availabilityLog{ch: make(chan struct{}, 1)}
}

// callback returns the i-th callback of the log; also, when set, it runs
// then.
func (l *availabilityLog) callback(i int, then func(available bool)) func(bool) {
	return func(available bool) {
		if l.running.Add(1) > 1 {
			l.overlaps.Add(1)
		}
		defer l.running.Add(-1)
		at := time.Now()
		if then != nil {
			then(available)
		}
		l.mu.Lock()
		l.calls = append(l.calls, availabilityCall{available: available, at: at, callback: i})
		l.mu.Unlock()
		select {
		case l.ch <- struct{}{}:
		default:
		}
	}
}

// of returns the calls of callback i.
func (l *availabilityLog) of(i int) []availabilityCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []availabilityCall
	for _, c := range l.calls {
		if c.callback == i {
			out = append(out, c)
		}
	}
	return out
}

// wait waits until callback i has had n calls, and returns the n-th, or
// fails the test.
func (l *availabilityLog) wait(tb testing.TB, i, n int, d time.Duration) availabilityCall {
	tb.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		if got := l.of(i); len(got) >= n {
			return got[n-1]
		}
		select {
		case <-l.ch:
		case <-deadline.C:
			tb.Fatalf("callback %d: %d calls after %v, want %d: %v", i, len(l.of(i)), d, n, l.of(i))
		}
	}
}

// checkAlternates checks that callback i was called n times, false first,
// then alternating.
func (l *availabilityLog) checkAlternates(tb testing.TB, i, n int) {
	tb.Helper()
	got := l.of(i)
	if len(got) != n {
		tb.Fatalf("callback %d: %d calls, want %d", i, len(got), n)
	}
	for k, c := range got {
		if want := k%2 == 1; c.available != want {
			tb.Fatalf("callback %d: call %d = %v, want %v (calls alternate, false first)", i, k, c.available, want)
		}
	}
	if n := l.overlaps.Load(); n != 0 {
		tb.Fatalf("%d callback calls overlapped another", n)
	}
}
