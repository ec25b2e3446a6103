package chatmux

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/chatmux/chatmux/groups"
)

// User is the authenticated identity of a connection.
type User struct {
	ID        int64
	Username  string
	Email     string
	FirstName string
	LastName  string
	// Claims holds whatever else the authenticator wants handlers to see.
	Claims map[string]any
}

// Conn is one WebSocket connection. Its events are handled one at a time,
// in the order they arrive. Outbound frames wait in a queue bounded in
// bytes; a writer that runs only while the queue is not empty sends every
// queued frame with one write to the socket.
type Conn struct {
	srv         *Server
	ws          *websocket.Conn
	raw         *rawConn
	id          string
	user        *User
	remoteAddr  string
	header      http.Header
	connectedAt time.Time
	ctx         context.Context
	cancel      context.CancelFunc

	lastRead atomic.Int64
	pinging  atomic.Bool
	batched  bool // SubprotocolBatch was negotiated

	mu      sync.Mutex
	queue   [][]byte
	spare   [][]byte
	queued  int
	writing bool
	closed  bool
	holding bool     // $connect is running: group frames wait in held
	held    [][]byte // group frames delivered during $connect

	gmu    sync.Mutex
	groups map[string]struct{}
	left   bool

	vmu    sync.Mutex
	values map[string]any
}

// ID returns the connection's unique id.
func (c *Conn) ID() string { return c.id }

// User returns the authenticated user, nil for an anonymous connection.
func (c *Conn) User() *User { return c.user }

// RemoteAddr returns the peer's address as the HTTP request gave it.
func (c *Conn) RemoteAddr() string { return c.remoteAddr }

// Header returns the headers of the upgrade request.
func (c *Conn) Header() http.Header { return c.header }

// ConnectedAt returns when the connection was accepted.
func (c *Conn) ConnectedAt() time.Time { return c.connectedAt }

// Context returns a context cancelled when the connection closes.
func (c *Conn) Context() context.Context { return c.ctx }

// SetValue stores a value for the life of the connection.
func (c *Conn) SetValue(key string, val any) {
	c.vmu.Lock()
	if c.values == nil {
		c.values = map[string]any{}
	}
	c.values[key] = val
	c.vmu.Unlock()
}

// Value returns a value stored by SetValue.
func (c *Conn) Value(key string) (any, bool) {
	c.vmu.Lock()
	defer c.vmu.Unlock()
	v, ok := c.values[key]
	return v, ok
}

// Batched reports whether the client negotiated SubprotocolBatch.
func (c *Conn) Batched() bool { return c.batched }

// Groups returns the groups the connection belongs to.
func (c *Conn) Groups() []string {
	c.gmu.Lock()
	defer c.gmu.Unlock()
	out := make([]string, 0, len(c.groups))
	for g := range c.groups {
		out = append(out, g)
	}
	return out
}

// Join adds the connection to a group.
func (c *Conn) Join(ctx context.Context, group string) error {
	c.gmu.Lock()
	if c.left {
		c.gmu.Unlock()
		return net.ErrClosed
	}
	if _, ok := c.groups[group]; ok {
		c.gmu.Unlock()
		return nil
	}
	if c.groups == nil {
		c.groups = map[string]struct{}{}
	}
	c.groups[group] = struct{}{}
	// Joining under gmu keeps Join and leaveAll ordered.
	err := c.srv.broker.Join(ctx, group, c)
	if err != nil {
		delete(c.groups, group)
	}
	c.gmu.Unlock()
	if err != nil {
		return fmt.Errorf("failed to join %s: %w", group, err)
	}
	return nil
}

// Leave removes the connection from a group.
func (c *Conn) Leave(ctx context.Context, group string) error {
	c.gmu.Lock()
	defer c.gmu.Unlock()
	if _, ok := c.groups[group]; !ok {
		return nil
	}
	delete(c.groups, group)
	if err := c.srv.broker.Leave(ctx, group, c); err != nil {
		return fmt.Errorf("failed to leave %s: %w", group, err)
	}
	return nil
}

func (c *Conn) leaveAll(ctx context.Context) {
	c.gmu.Lock()
	defer c.gmu.Unlock()
	c.left = true
	for g := range c.groups {
		if err := c.srv.broker.Leave(ctx, g, c); err != nil {
			c.srv.logger.Warn("chatmux: failed to leave group on close", "conn", c.id, "group", g, "err", err)
		}
	}
	c.groups = nil
}

// Deliver implements groups.Member: data is queued, control messages move
// the connection between groups.
func (c *Conn) Deliver(m *groups.Message) {
	switch m.Kind {
	case groups.KindData:
		c.push(m.Data, true)
	case groups.KindJoin:
		if err := c.Join(c.ctx, m.Group); err != nil && !errors.Is(err, net.ErrClosed) {
			c.srv.logger.Warn("chatmux: failed to join group", "conn", c.id, "group", m.Group, "err", err)
		}
	case groups.KindLeave:
		if err := c.Leave(c.ctx, m.Group); err != nil {
			c.srv.logger.Warn("chatmux: failed to leave group", "conn", c.id, "group", m.Group, "err", err)
		}
	}
}

// Send queues a dispatch for this connection only.
func (c *Conn) Send(eventType string, data any) error {
	b, err := EncodeDispatch(eventType, data)
	if err != nil {
		return fmt.Errorf("failed to encode %s: %w", eventType, err)
	}
	c.enqueue(b)
	return nil
}

// Close closes the connection with a WebSocket close code and reason. It
// returns at once; the close handshake goes on in the background.
func (c *Conn) Close(code int, reason string) {
	c.mu.Lock()
	c.closed = true
	c.dropQueue()
	ws := c.ws
	c.mu.Unlock()
	if ws != nil {
		go func() { _ = ws.Close(websocket.StatusCode(code), reason) }()
	}
}

// enqueue queues a frame without blocking. A frame that would take the
// queue over its bound closes the connection as a slow consumer: queued
// frames are dropped and the close frame (4008 "slow consumer") follows
// what is already on its way; a peer that reads nothing for the close
// handshake's 5 s has its socket closed without it.
func (c *Conn) enqueue(frame []byte) { c.push(frame, false) }

// push queues a frame. Group frames (fromGroup) that arrive while $connect
// runs are held back until it returns, so that what $connect sends to the
// socket (a welcome, pending notifications) comes first.
func (c *Conn) push(frame []byte, fromGroup bool) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if c.queued+len(frame) > c.srv.opts.MaxQueueBytes {
		c.closed = true
		c.dropQueue()
		ws := c.ws
		c.mu.Unlock()
		if c.srv.opts.Observer != nil {
			c.srv.opts.Observer.QueueOverflow(c)
		}
		c.srv.logger.Warn("chatmux: closing slow consumer", "conn", c.id, "limit_bytes", c.srv.opts.MaxQueueBytes)
		if ws != nil {
			go func() { _ = ws.Close(CodeSlowConsumer, "slow consumer") }()
		}
		return
	}
	c.queued += len(frame)
	if fromGroup && c.holding {
		c.held = append(c.held, frame)
		c.mu.Unlock()
		return
	}
	c.queue = append(c.queue, frame)
	start := !c.writing
	c.writing = true
	c.mu.Unlock()
	if start {
		go c.writeLoop()
	}
}

// releaseHeld appends the group frames held during $connect to the queue.
func (c *Conn) releaseHeld() {
	c.mu.Lock()
	c.holding = false
	if len(c.held) == 0 || c.closed {
		c.held = nil
		c.mu.Unlock()
		return
	}
	c.queue = append(c.queue, c.held...)
	c.held = nil
	start := !c.writing
	c.writing = true
	c.mu.Unlock()
	if start {
		go c.writeLoop()
	}
}

func (c *Conn) dropQueue() {
	clear(c.queue)
	c.queue = c.queue[:0]
	c.held = nil
	c.queued = 0
}

// writeLoop sends queued frames until the queue is empty, then exits: an
// idle connection has no writer goroutine.
func (c *Conn) writeLoop() {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 || c.closed {
			c.writing = false
			if cap(c.spare) > 256 {
				c.spare = nil
			}
			c.mu.Unlock()
			return
		}
		batch := c.queue
		c.queue, c.spare = c.spare[:0], nil
		c.mu.Unlock()

		n, err := c.writeBatch(batch)
		clear(batch)

		c.mu.Lock()
		c.spare = batch[:0]
		c.queued -= n
		if c.queued < 0 {
			c.queued = 0
		}
		c.mu.Unlock()
		if err != nil {
			c.mu.Lock()
			c.closed = true
			c.dropQueue()
			c.writing = false
			c.mu.Unlock()
			if !errors.Is(err, errCloseSent) {
				// A failed or timed-out write: the socket is dead.
				// (After a close frame, the close handshake is under
				// way and must be left to finish.)
				_ = c.ws.CloseNow()
			}
			return
		}
	}
}

// writeBatch sends every queued frame with one write to the socket. Data
// frames are framed here, straight into one buffer (a server never masks,
// so a frame is a 2-10 byte header and the payload); the WebSocket library
// keeps the reading side and the control frames (pong, ping, close). A
// client that negotiated SubprotocolBatch gets the batch as one message,
// a JSON array of the frames.
func (c *Conn) writeBatch(batch [][]byte) (int, error) {
	n := 0
	for _, f := range batch {
		n += len(f)
	}
	return n, c.raw.writeData(batch, n, c.batched && len(batch) > 1)
}

// readLoop reads and handles frames until the connection closes.
func (c *Conn) readLoop() {
	defer c.finish()
	if err := c.srv.routeLifecycle(c, EventConnect); err != nil {
		e := AsError(err)
		code := websocket.StatusInternalError
		if e.Code >= 4000 && e.Code < 5000 {
			code = websocket.StatusCode(e.Code)
		}
		c.srv.logger.Info("chatmux: $connect refused the connection", "conn", c.id, "err", err)
		_ = c.ws.Close(code, fmt.Sprint(e.Detail))
		return
	}
	c.releaseHeld()
	for {
		typ, r, err := c.ws.Reader(context.Background())
		if err != nil {
			return
		}
		c.lastRead.Store(time.Now().UnixNano())
		buf := bufPool.Get().(*bytes.Buffer)
		_, err = buf.ReadFrom(r)
		if err != nil {
			putBuf(buf)
			return
		}
		if typ != websocket.MessageText {
			c.srv.handleError(c, "", Validation("Binary frames are not supported: send JSON text frames."))
		} else {
			c.handle(buf.Bytes())
		}
		putBuf(buf)
	}
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func putBuf(b *bytes.Buffer) {
	if b.Cap() > 64<<10 {
		return
	}
	b.Reset()
	bufPool.Put(b)
}

// handle decodes one frame and routes it.
func (c *Conn) handle(frame []byte) {
	env, perr := decodeEnvelope(frame)
	if perr != nil {
		c.srv.handleError(c, env.EventType, perr)
		return
	}
	ctx := newContext(c.srv, c, c.ctx, env.EventType, env.Data)
	err := c.srv.serve(ctx)
	if err != nil {
		c.srv.errorHandler(ctx, err)
	}
	ctx.release()
}

// finish runs when the read loop ends: leave every group, route
// $disconnect, release the connection.
func (c *Conn) finish() {
	c.mu.Lock()
	c.closed = true
	c.dropQueue()
	c.mu.Unlock()
	c.leaveAll(context.Background())
	dctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), c.srv.opts.DisconnectTimeout)
	c.cancel()
	if err := c.srv.routeLifecycleCtx(dctx, c, EventDisconnect); err != nil {
		c.srv.logger.Warn("chatmux: $disconnect failed", "conn", c.id, "err", err)
	}
	cancel()
	_ = c.ws.CloseNow()
	c.srv.remove(c)
}

// ping sends a ping and closes the connection when no pong comes back in
// time.
func (c *Conn) ping() {
	defer c.pinging.Store(false)
	ctx, cancel := context.WithTimeout(c.ctx, c.srv.opts.PingTimeout)
	defer cancel()
	if err := c.ws.Ping(ctx); err != nil {
		if c.ctx.Err() == nil {
			c.srv.logger.Info("chatmux: closing unresponsive connection", "conn", c.id, "err", err)
		}
		_ = c.ws.CloseNow()
		return
	}
	c.lastRead.Store(time.Now().UnixNano())
}

// recoverTo turns a panic of the handler chain into a 4006 error.
func recoverTo(err *error, logger interface {
	Error(msg string, args ...any)
}, event string) {
	if p := recover(); p != nil {
		logger.Error("chatmux: panic in handler", "event", event, "panic", p, "stack", string(debug.Stack()))
		*err = Internal(fmt.Errorf("panic: %v", p))
	}
}

// rawConn is the socket under the WebSocket library. The connection's
// writer frames data itself and sends a whole batch with one write; the
// library's own writes (control frames, always whole frames of at most 131
// bytes in one call) go straight through. The mutex keeps the two from
// interleaving inside a frame.
type rawConn struct {
	net.Conn
	timeout time.Duration
	mu      sync.Mutex
	// deadline is when the write deadline last set on the socket expires.
	deadline time.Time
	// closeSent is set once the library has written a close frame: no
	// data frame may follow it.
	closeSent bool
}

// Opcodes of the first header byte, with FIN set.
const (
	finText  = 0x81
	finClose = 0x88
)

var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// Write passes the library's frames through.
func (cc *rawConn) Write(p []byte) (int, error) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if len(p) > 0 && p[0] == finClose {
		cc.closeSent = true
	}
	return cc.writeNow(p)
}

// writeNow writes to the socket under a deadline. Setting a deadline costs
// a timer update, so one set lasts for several writes: each write gets
// between half the timeout and the whole of it.
func (cc *rawConn) writeNow(p []byte) (int, error) {
	if cc.timeout > 0 {
		if now := time.Now(); cc.deadline.Sub(now) < cc.timeout/2 {
			cc.deadline = now.Add(cc.timeout)
			_ = cc.Conn.SetWriteDeadline(cc.deadline)
		}
	}
	return cc.Conn.Write(p)
}

// appendHeader appends the header of an unmasked final text frame.
func appendHeader(b []byte, n int) []byte {
	switch {
	case n < 126:
		return append(b, finText, byte(n))
	case n <= 0xffff:
		return append(b, finText, 126, byte(n>>8), byte(n))
	default:
		return append(b, finText, 127, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32),
			byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// writeData sends frames with one write: each as a text message of its
// own, or, packed, all as one text message holding a JSON array of them.
// size is the sum of their lengths.
func (cc *rawConn) writeData(frames [][]byte, size int, packed bool) error {
	bp := framePool.Get().(*[]byte)
	b := (*bp)[:0]
	if packed {
		b = appendHeader(b, size+len(frames)+1) // brackets and commas
		b = append(b, '[')
		for i, f := range frames {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, f...)
		}
		b = append(b, ']')
	} else {
		for _, f := range frames {
			b = appendHeader(b, len(f))
			b = append(b, f...)
		}
	}
	err := cc.send(b)
	if cap(b) <= 256<<10 { // keep the grown buffer, unless it is large
		*bp = b[:0]
		framePool.Put(bp)
	}
	return err
}

// errCloseSent refuses data after the close frame.
var errCloseSent = fmt.Errorf("chatmux: close frame already sent: %w", net.ErrClosed)

func (cc *rawConn) send(b []byte) error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.closeSent {
		return errCloseSent
	}
	_, err := cc.writeNow(b)
	return err
}

// hijackWriter hands the WebSocket library a socket wrapped in a rawConn
// and small buffers: the 4 KiB buffers of net/http would be held for the
// life of every connection.
type hijackWriter struct {
	http.ResponseWriter
	timeout time.Duration
	raw     *rawConn
}

const (
	readBufferSize  = 512
	writeBufferSize = 512
)

// Unwrap returns the wrapped ResponseWriter (for http.ResponseController).
func (h *hijackWriter) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// Hijack takes over the connection and returns it wrapped, with small
// buffers.
func (h *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.raw = &rawConn{Conn: nc, timeout: h.timeout}
	// Bytes the client sent after its handshake must stay first in line.
	var pre []byte
	if n := brw.Reader.Buffered(); n > 0 {
		p, _ := brw.Reader.Peek(n)
		pre = append([]byte(nil), p...)
	}
	size := max(readBufferSize, len(pre))
	br := bufio.NewReaderSize(h.raw, size)
	if len(pre) > 0 {
		br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(pre), h.raw), size)
		_, _ = br.Peek(len(pre))
	}
	bw := bufio.NewWriterSize(h.raw, writeBufferSize)
	return h.raw, bufio.NewReadWriter(br, bw), nil
}
