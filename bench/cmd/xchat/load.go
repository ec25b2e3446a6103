package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// proto is one server's protocol as the load generator speaks it.
type proto interface {
	// url is the WebSocket URL of user u.
	url(base string, u int) (string, error)
	// handshake runs on a fresh connection before its read loop starts
	// (Centrifuge: connect and subscribe).
	handshake(ctx context.Context, c *client) error
	// prepare runs once every connection is open and reading, and returns
	// once every member receives its room's messages (chatmux: creates the
	// rooms).
	prepare(ctx context.Context, r *run) error
	// appendSend appends the frame that publishes content from sender c
	// into its room.
	appendSend(dst []byte, c *client, content []byte) []byte
	// isDelivery reports whether a received message (one line of a frame)
	// is a broadcast message.
	isDelivery(line []byte) bool
	// control handles any other received message (setup answers, pings,
	// errors) and reports whether it was an error answer.
	control(c *client, line []byte) (isError bool)
}

// trialSpec is what one trial runs.
type trialSpec struct {
	layout   layout
	rate     float64 // sends per second over all senders; 0: maximum
	inflight int     // messages in flight per sender at the maximum rate
	size     int     // message content bytes
	warmup   time.Duration
	duration time.Duration
	sources  int // source addresses in 127.0.0.0/8 to spread connections over
}

// run is the state of one trial against one server.
type run struct {
	spec   trialSpec
	proto  proto
	base   string // the server's WebSocket URL
	origin time.Time

	clients []*client
	roomIDs []atomic.Pointer[string] // per room, set by prepare (chatmux)

	winStart atomic.Int64 // ns since origin; latencies of messages sent in [winStart, winEnd) are recorded
	winEnd   atomic.Int64

	sent     atomic.Int64
	expected atomic.Int64 // deliveries expected for the messages sent (members other than the sender)
	dropped  atomic.Int64 // connections the server closed during the trial
	stalls   atomic.Int64 // a sender's echo did not come back in time
	skipped  atomic.Int64 // paced sends skipped: too many of the sender's messages in flight
	closing  atomic.Bool
}

func (r *run) now() int64 { return int64(time.Since(r.origin)) }

// client is one connection of the load generator.
type client struct {
	r      *run
	u      int // user index
	room   int
	sender int // sender index, or -1
	ws     *websocket.Conn

	nextID atomic.Uint64 // command ids (Centrifuge)
	seq    atomic.Int64  // the sender's message sequence

	// Owned by the read loop; read by others after readDone is closed.
	lat      hist  // deliveries from other members, sent in the window
	ack      *hist // the sender's own echoes, sent in the window (senders only)
	readErr  error
	readDone chan struct{}

	delivered atomic.Int64 // deliveries from other members, all the trial
	echoes    atomic.Int64 // the sender's own messages back
	errs      atomic.Int64
	lastErr   atomic.Pointer[string]
	joined    atomic.Bool // chatmux: in its room's group
	tokens    chan struct{}
}

// result is one trial's measurement.
type result struct {
	Server         string  `json:"server"`
	Layout         string  `json:"layout"`
	Rate           string  `json:"rate"`
	OfferedPerS    float64 `json:"offered_sends_per_s"` // 0 at the maximum rate
	Pair           int     `json:"pair"`
	WindowS        float64 `json:"window_s"`
	Sends          int64   `json:"sends"`
	SendsPerS      float64 `json:"sends_per_s"`
	Deliveries     int64   `json:"deliveries"`
	DeliveriesPerS float64 `json:"deliveries_per_s"`
	ServerCPUS     float64 `json:"server_cpu_s"`
	CPUPerDelivery float64 `json:"server_cpu_us_per_delivery"`
	ServerCores    float64 `json:"server_cores"`
	GenCores       float64 `json:"generator_cores"`
	P50Ms          float64 `json:"p50_ms"`
	P99Ms          float64 `json:"p99_ms"`
	AckP99Ms       float64 `json:"ack_p99_ms"`
	Lost           int64   `json:"lost"`
	Errors         int64   `json:"errors"`
	Dropped        int64   `json:"dropped_connections"`
	Stalls         int64   `json:"stalls"`
	Skipped        int64   `json:"skipped"`
	LoadAvg        float64 `json:"load_avg"`
	SetupS         float64 `json:"setup_s"`
	FirstError     string  `json:"first_error,omitempty"`
}

// Bounds of the phases around the measured window.
const (
	connectTimeout = 120 * time.Second
	prepareTimeout = 120 * time.Second
	drainTimeout   = 10 * time.Second
	stallTimeout   = 5 * time.Second
	maxOpenPaced   = 1000 // a paced sender's messages in flight before it skips
	connectConc    = 32
)

// runTrial runs spec against the server at base (whose process is pid)
// and returns the measurement of its window.
func runTrial(ctx context.Context, p proto, base string, pid int, spec trialSpec) (res result, err error) {
	r := &run{spec: spec, proto: p, base: base, origin: time.Now()}
	r.winStart.Store(1<<63 - 1)
	r.winEnd.Store(1<<63 - 1)
	l := spec.layout
	r.roomIDs = make([]atomic.Pointer[string], l.Rooms)
	r.clients = make([]*client, l.Users())
	for u := range r.clients {
		c := &client{r: r, u: u, room: l.roomOf(u), sender: -1, readDone: make(chan struct{})}
		if u < l.Senders {
			c.sender = u
			c.ack = new(hist)
			c.tokens = make(chan struct{}, max(spec.inflight, 1))
		}
		r.clients[u] = c
	}
	hc := newHTTPClient(spec.sources)
	defer hc.CloseIdleConnections()
	defer func() { _ = r.closeAll() }()

	t0 := time.Now()
	if err := r.connectAll(ctx, hc); err != nil {
		return res, err
	}
	pctx, cancel := context.WithTimeout(ctx, prepareTimeout)
	err = p.prepare(pctx, r)
	cancel()
	if err != nil {
		return res, fmt.Errorf("failed to set up the rooms: %w", err)
	}
	setup := time.Since(t0)

	// Send phase: warm up, then measure a window.
	sctx, stopSenders := context.WithCancel(ctx)
	var wg sync.WaitGroup
	r.startSenders(sctx, &wg)
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			stopSenders()
			wg.Wait()
		}
	}
	defer stop()
	if err := sleepCtx(ctx, spec.warmup); err != nil {
		return res, err
	}
	type snap struct {
		t               int64
		cpu, self       time.Duration
		delivered, sent int64
	}
	take := func() (snap, error) {
		cpu, err := procCPU(pid)
		return snap{t: r.now(), cpu: cpu, self: selfCPU(), delivered: r.delivered(), sent: r.sent.Load()}, err
	}
	s0, err := take()
	if err != nil {
		return res, err
	}
	r.winStart.Store(s0.t)
	if err := sleepCtx(ctx, spec.duration); err != nil {
		return res, err
	}
	s1, err := take()
	if err != nil {
		return res, err
	}
	r.winEnd.Store(s1.t)
	stop()

	// Drain: wait until every message sent has reached every member.
	deadline := time.Now().Add(drainTimeout)
	for r.delivered() < r.expected.Load() && time.Now().Before(deadline) {
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return res, err
		}
	}
	if !r.closeAll() {
		return res, errors.New("the connections' read loops did not end within 10s of closing them")
	}

	win := time.Duration(s1.t - s0.t).Seconds()
	res = result{
		Layout:      l.String(),
		WindowS:     win,
		Sends:       s1.sent - s0.sent,
		Deliveries:  s1.delivered - s0.delivered,
		ServerCPUS:  (s1.cpu - s0.cpu).Seconds(),
		GenCores:    (s1.self - s0.self).Seconds() / win,
		Stalls:      r.stalls.Load(),
		Dropped:     r.dropped.Load(),
		Skipped:     r.skipped.Load(),
		LoadAvg:     loadAvg(),
		SetupS:      setup.Seconds(),
		Lost:        max(0, r.expected.Load()-r.delivered()),
		OfferedPerS: spec.rate,
	}
	res.SendsPerS = float64(res.Sends) / win
	res.DeliveriesPerS = float64(res.Deliveries) / win
	res.ServerCores = res.ServerCPUS / win
	if res.Deliveries > 0 {
		res.CPUPerDelivery = res.ServerCPUS * 1e6 / float64(res.Deliveries)
	}
	var lat, ack hist
	for _, c := range r.clients {
		lat.merge(&c.lat)
		if c.ack != nil {
			ack.merge(c.ack)
		}
		res.Errors += c.errs.Load()
	}
	res.FirstError = r.firstErr()
	res.P50Ms = ms(lat.quantile(0.50))
	res.P99Ms = ms(lat.quantile(0.99))
	res.AckP99Ms = ms(ack.quantile(0.99))
	if res.Deliveries == 0 {
		return res, fmt.Errorf("no deliveries in the measured window (%d sends, %d errors; %s)", res.Sends, res.Errors, r.firstErr())
	}
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// firstErr describes the first error answer a connection got, if any.
func (r *run) firstErr() string {
	for _, c := range r.clients {
		if e := c.lastErr.Load(); e != nil {
			return fmt.Sprintf("user %d: %s", c.u, *e)
		}
	}
	return ""
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// delivered is the number of deliveries to members other than the sender.
func (r *run) delivered() int64 {
	var n int64
	for _, c := range r.clients {
		n += c.delivered.Load()
	}
	return n
}

// newHTTPClient returns the client that dials the WebSocket upgrades,
// spreading connections over sources addresses 127.0.0.2 onwards, so that
// repeated trials do not run out of one address's ephemeral ports.
func newHTTPClient(sources int) *http.Client {
	nd := &net.Dialer{Timeout: 30 * time.Second}
	var next atomic.Uint64
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if sources <= 0 {
				return nd.DialContext(ctx, network, addr)
			}
			n := int(next.Add(1) % uint64(sources))
			ld := *nd
			ld.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, byte(1+n/250), byte(2+n%250))}
			return ld.DialContext(ctx, network, addr)
		},
		DisableCompression: true,
		Proxy:              nil,
	}
	return &http.Client{Transport: tr}
}

// connectAll opens every connection (at most connectConc at once) and
// starts its read loop.
func (r *run) connectAll(ctx context.Context, hc *http.Client) error {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range min(connectConc, len(r.clients)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(r.clients) || ctx.Err() != nil {
					return
				}
				if err := r.connect(ctx, hc, r.clients[i]); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("user %d: %w", i, err)
					}
					mu.Unlock()
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

func (r *run) connect(ctx context.Context, hc *http.Client, c *client) error {
	u, err := r.proto.url(r.base, c.u)
	if err != nil {
		return err
	}
	ws, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: hc, CompressionMode: websocket.CompressionDisabled})
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		return fmt.Errorf("failed to connect: %w", err)
	}
	ws.SetReadLimit(64 << 20)
	c.ws = ws
	if err := r.proto.handshake(ctx, c); err != nil {
		_ = ws.CloseNow()
		return err
	}
	go c.readLoop()
	return nil
}

// closeAll closes every connection and waits (bounded) for the read
// loops to end; it reports whether they all did (only then may their
// histograms be read). Calls after the first do nothing and report true.
func (r *run) closeAll() bool {
	if r.closing.Swap(true) {
		return true
	}
	for _, c := range r.clients {
		if c.ws != nil {
			_ = c.ws.CloseNow()
		}
	}
	deadline := time.After(10 * time.Second)
	for _, c := range r.clients {
		if c.ws == nil {
			continue
		}
		select {
		case <-c.readDone:
		case <-deadline:
			return false
		}
	}
	return true
}

// readLoop reads frames until the connection ends. A frame may hold
// several messages, one per line (Centrifuge's JSON protocol).
func (c *client) readLoop() {
	defer close(c.readDone)
	var buf bytes.Buffer
	ctx := context.Background()
	for {
		_, rd, err := c.ws.Reader(ctx)
		if err != nil {
			c.readErr = err
			c.r.lostConn(c, err)
			return
		}
		buf.Reset()
		if _, err := buf.ReadFrom(rd); err != nil {
			c.readErr = err
			c.r.lostConn(c, err)
			return
		}
		frame := buf.Bytes()
		for len(frame) > 0 {
			line := frame
			if k := bytes.IndexByte(frame, '\n'); k >= 0 {
				line, frame = frame[:k], frame[k+1:]
			} else {
				frame = nil
			}
			if len(line) == 0 {
				continue
			}
			if c.r.proto.isDelivery(line) {
				c.onDelivery(line)
				continue
			}
			if c.r.proto.control(c, line) {
				c.errs.Add(1)
				s := string(line[:min(len(line), 300)])
				c.lastErr.Store(&s)
				if c.sender >= 0 {
					c.giveToken() // the message will not come back
				}
			}
		}
	}
}

// lostConn records a connection that ended while the trial still ran.
func (r *run) lostConn(c *client, err error) {
	if r.closing.Load() {
		return
	}
	r.dropped.Add(1)
	s := fmt.Sprintf("connection closed %.1fs into the trial: %v", time.Duration(r.now()).Seconds(), err)
	c.lastErr.CompareAndSwap(nil, &s)
}

// onDelivery counts the benchmark messages of one received message.
func (c *client) onDelivery(line []byte) {
	now := c.r.now()
	ws, we := c.r.winStart.Load(), c.r.winEnd.Load()
	for {
		sentAt, sender, _, rest, ok := nextPayload(line)
		if !ok {
			return
		}
		line = rest
		inWindow := sentAt >= ws && sentAt < we
		if sender == c.sender {
			c.echoes.Add(1)
			if inWindow {
				c.ack.record(time.Duration(now - sentAt))
			}
			c.giveToken()
			continue
		}
		c.delivered.Add(1)
		if inWindow {
			c.lat.record(time.Duration(now - sentAt))
		}
	}
}

func (c *client) giveToken() {
	if c.tokens == nil {
		return
	}
	select {
	case c.tokens <- struct{}{}:
	default:
	}
}

// startSenders starts every sender: at the maximum rate each keeps
// spec.inflight messages in flight (a message's own echo frees its slot);
// at a fixed rate each sends rate/senders messages per second from a
// random phase, without waiting for echoes.
func (r *run) startSenders(ctx context.Context, wg *sync.WaitGroup) {
	l := r.spec.layout
	for s := range l.Senders {
		c := r.clients[s]
		if r.spec.rate > 0 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.paced(ctx, c)
			}()
			continue
		}
		for range max(r.spec.inflight, 1) {
			c.tokens <- struct{}{}
		}
		for range max(r.spec.inflight, 1) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.closedLoop(ctx, c)
			}()
		}
	}
}

// fanout is the number of deliveries one message of c makes.
func (r *run) fanout() int64 { return int64(r.spec.layout.Members - 1) }

func (r *run) send(c *client, seq int64, content, frame []byte) ([]byte, []byte, error) {
	content = appendPayload(content[:0], r.now(), c.sender, seq, r.spec.size)
	frame = r.proto.appendSend(frame[:0], c, content)
	r.sent.Add(1)
	r.expected.Add(r.fanout())
	// Not ctx: the WebSocket library closes a connection whose write is
	// cancelled, and stopping the senders must not cut a member off.
	wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err := c.ws.Write(wctx, websocket.MessageText, frame)
	cancel()
	if err != nil {
		r.sent.Add(-1)
		r.expected.Add(-r.fanout())
	}
	return content, frame, err
}

func (r *run) nextSeq(c *client) int64 { return c.seq.Add(1) }

func (r *run) closedLoop(ctx context.Context, c *client) {
	var content, frame []byte
	t := time.NewTimer(stallTimeout)
	defer t.Stop()
	for {
		t.Reset(stallTimeout)
		select {
		case <-c.tokens:
		case <-t.C:
			r.stalls.Add(1)
		case <-ctx.Done():
			return
		}
		var err error
		content, frame, err = r.send(c, r.nextSeq(c), content, frame)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
				c.errs.Add(1)
				s := err.Error()
				c.lastErr.Store(&s)
			}
			return
		}
	}
}

func (r *run) paced(ctx context.Context, c *client) {
	interval := time.Duration(float64(time.Second) * float64(r.spec.layout.Senders) / r.spec.rate)
	next := time.Now().Add(time.Duration(rand.Int64N(int64(interval) + 1)))
	var content, frame []byte
	var sent int64
	for {
		if err := sleepCtx(ctx, time.Until(next)); err != nil {
			return
		}
		next = next.Add(interval)
		if lag := time.Since(next); lag > time.Second {
			next = time.Now() // too far behind: do not burst to catch up
		}
		if sent-c.echoes.Load() >= maxOpenPaced {
			r.skipped.Add(1)
			continue
		}
		var err error
		content, frame, err = r.send(c, r.nextSeq(c), content, frame)
		if err != nil {
			if ctx.Err() == nil {
				c.errs.Add(1)
				s := err.Error()
				c.lastErr.Store(&s)
			}
			return
		}
		sent++
	}
}

// withQuery returns base with the query parameter k=v added.
func withQuery(base, k, v string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String(), nil
}
