package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// marker starts the payload of every benchmark message:
// "CBT<send unix nanoseconds>.<sender index>.<sequence>." followed by
// padding. Receivers find it by scanning the frame's bytes.
const marker = "CBT"

var dispatchPrefix = []byte(`{"eventType":"message.dispatch"`)

// appendPayload appends a benchmark message's content to dst.
func appendPayload(dst []byte, sentAt int64, sender int, seq int64, size int) []byte {
	start := len(dst)
	dst = append(dst, marker...)
	dst = appendInt(dst, sentAt)
	dst = append(dst, '.')
	dst = appendInt(dst, int64(sender))
	dst = append(dst, '.')
	dst = appendInt(dst, seq)
	dst = append(dst, '.')
	for len(dst)-start < size {
		dst = append(dst, 'x')
	}
	return dst
}

func appendInt(dst []byte, v int64) []byte {
	var b [20]byte
	i := len(b)
	if v == 0 {
		return append(dst, '0')
	}
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, b[i:]...)
}

// parsePayload finds the marker in a frame and returns its three numbers.
func parsePayload(frame []byte) (sentAt int64, sender int, seq int64, ok bool) {
	i := bytes.Index(frame, []byte(marker))
	if i < 0 {
		return 0, 0, 0, false
	}
	p := frame[i+len(marker):]
	var nums [3]int64
	for k := range nums {
		j := 0
		var v int64
		for j < len(p) && p[j] >= '0' && p[j] <= '9' {
			v = v*10 + int64(p[j]-'0')
			j++
		}
		if j == 0 || j >= len(p) || p[j] != '.' {
			return 0, 0, 0, false
		}
		nums[k] = v
		p = p[j+1:]
	}
	return nums[0], int(nums[1]), nums[2], true
}

// ctlFrame is a frame other than a benchmark message: kept for the setup
// steps that wait for it.
type ctlFrame struct {
	EventType string          `json:"eventType"`
	Data      json.RawMessage `json:"data"`
	Error     json.RawMessage `json:"error"`
	Status    string          `json:"status"`
	raw       []byte
}

// maxBox bounds the control frames a connection keeps unclaimed.
const maxBox = 256

// benchConn is one client connection of the load generator. Its read loop
// counts benchmark messages cheaply and keeps other frames for setup.
type benchConn struct {
	ws     *websocket.Conn
	name   string
	userID int64
	room   int // index of the room whose messages it counts, -1 for none
	sender int // index of the sender it is, -1 for none

	// sem holds one token per message of this sender in flight; the read
	// loop takes one back when the sender's own message comes back.
	sem chan struct{}

	// Read-loop state, read by others only after done is closed.
	lat       *hist
	ack       *hist
	lastSeq   map[int]int64
	gaps      int64
	reordered int64
	closeCode websocket.StatusCode
	readErr   error

	delivered    atomic.Int64
	lastDelivery atomic.Int64
	errs         atomic.Int64
	lastErr      atomic.Pointer[string]
	dropped      atomic.Int64

	mu     sync.Mutex
	box    []*ctlFrame
	signal chan struct{}
	done   chan struct{}
}

func newBenchConn(ws *websocket.Conn, name string) *benchConn {
	return &benchConn{
		ws:      ws,
		name:    name,
		room:    -1,
		sender:  -1,
		lastSeq: map[int]int64{},
		signal:  make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
}

// start runs the read loop.
func (c *benchConn) start() { go c.readLoop() }

func (c *benchConn) readLoop() {
	defer close(c.done)
	var buf bytes.Buffer
	for {
		_, r, err := c.ws.Reader(context.Background())
		if err != nil {
			c.finish(err)
			return
		}
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			c.finish(err)
			return
		}
		c.handle(buf.Bytes())
	}
}

func (c *benchConn) finish(err error) {
	c.readErr = err
	c.closeCode = websocket.CloseStatus(err)
}

// nextObject separates the objects of a batched message
// (chatmux.batch.v1): the server's envelopes never contain this text
// outside a string, and inside a string its quotes would be escaped.
var nextObject = []byte(`,{"eventType":`)

// handleBatch counts every object of a batched message: a JSON array of
// the usual frames.
func (c *benchConn) handleBatch(frame []byte) {
	body := frame[1 : len(frame)-1]
	for len(body) > 0 {
		i := bytes.Index(body, nextObject)
		if i < 0 {
			c.handle(body)
			return
		}
		c.handle(body[:i])
		body = body[i+1:]
	}
}

func (c *benchConn) handle(frame []byte) {
	if len(frame) > 1 && frame[0] == '[' && frame[len(frame)-1] == ']' {
		c.handleBatch(frame)
		return
	}
	if bytes.HasPrefix(frame, dispatchPrefix) {
		if sentAt, sender, seq, ok := parsePayload(frame); ok {
			c.count(sentAt, sender, seq)
			return
		}
	}
	f := &ctlFrame{}
	if err := json.Unmarshal(frame, f); err != nil {
		c.fail(fmt.Sprintf("undecodable frame: %.200s", frame))
		return
	}
	f.raw = bytes.Clone(frame)
	if len(f.Error) > 0 {
		c.fail(fmt.Sprintf("error: %.300s", f.Error))
		// A refused send gives its in-flight slot back.
		if c.sem != nil {
			select {
			case <-c.sem:
			default:
			}
		}
	}
	c.mu.Lock()
	if len(c.box) >= maxBox {
		copy(c.box, c.box[1:])
		c.box = c.box[:len(c.box)-1]
		c.dropped.Add(1)
	}
	c.box = append(c.box, f)
	c.mu.Unlock()
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

func (c *benchConn) fail(msg string) {
	c.errs.Add(1)
	c.lastErr.Store(&msg)
}

// count records one delivered benchmark message.
func (c *benchConn) count(sentAt int64, sender int, seq int64) {
	now := time.Now().UnixNano()
	if c.lat == nil {
		c.lat = &hist{}
	}
	c.lat.record(now - sentAt)
	if last, ok := c.lastSeq[sender]; ok {
		switch {
		case seq == last+1:
		case seq > last+1:
			c.gaps += seq - last - 1
		default:
			c.reordered++
		}
		if seq > last {
			c.lastSeq[sender] = seq
		}
	} else {
		if seq > 1 {
			c.gaps += seq - 1
		}
		c.lastSeq[sender] = seq
	}
	c.delivered.Add(1)
	c.lastDelivery.Store(now)
	if sender == c.sender && c.sem != nil {
		if c.ack == nil {
			c.ack = &hist{}
		}
		c.ack.record(now - sentAt)
		select {
		case <-c.sem:
		default:
		}
	}
}

var errClosed = errors.New("connection closed")

// wait returns the first kept frame for which match is true, removing it,
// or fails when ctx ends or the connection closes.
func (c *benchConn) wait(ctx context.Context, match func(f *ctlFrame) bool) (*ctlFrame, error) {
	for {
		if f := c.take(match); f != nil {
			return f, nil
		}
		select {
		case <-c.signal:
		case <-c.done:
			// One last look: the frame may have come with the close.
			if f := c.take(match); f != nil {
				return f, nil
			}
			return nil, fmt.Errorf("%s: %w (%v)", c.name, errClosed, c.readErr)
		case <-ctx.Done():
			msg := ""
			if p := c.lastErr.Load(); p != nil {
				msg = "; last error " + *p
			}
			return nil, fmt.Errorf("%s: %w%s", c.name, ctx.Err(), msg)
		}
	}
}

// take removes and returns the first kept frame for which match is true,
// nil when there is none.
func (c *benchConn) take(match func(f *ctlFrame) bool) *ctlFrame {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, f := range c.box {
		if match(f) {
			c.box = append(c.box[:i], c.box[i+1:]...)
			return f
		}
	}
	return nil
}

// waitEvent waits for a dispatch of the given type.
func (c *benchConn) waitEvent(ctx context.Context, eventType string, match func(f *ctlFrame) bool) (*ctlFrame, error) {
	return c.wait(ctx, func(f *ctlFrame) bool {
		if len(f.Error) > 0 {
			return true
		}
		return f.EventType == eventType && (match == nil || match(f))
	})
}

// request sends an event and waits for the dispatch that answers it. An
// error envelope answers too, as an error.
func (c *benchConn) request(ctx context.Context, event string, data any, want string, match func(f *ctlFrame) bool) (*ctlFrame, error) {
	if err := c.send(ctx, event, data); err != nil {
		return nil, err
	}
	f, err := c.waitEvent(ctx, want, match)
	if err != nil {
		return nil, fmt.Errorf("%s: no %s after %s: %w", c.name, want, event, err)
	}
	if len(f.Error) > 0 {
		return nil, fmt.Errorf("%s: %s refused: %s", c.name, event, f.Error)
	}
	return f, nil
}

// send writes one event.
func (c *benchConn) send(ctx context.Context, event string, data any) error {
	b, err := json.Marshal(map[string]any{"event_type": event, "data": data})
	if err != nil {
		return fmt.Errorf("failed to encode %s: %w", event, err)
	}
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("%s: failed to send %s: %w", c.name, event, err)
	}
	return nil
}

// close closes the connection and waits for its read loop.
func (c *benchConn) close(abrupt bool) {
	if abrupt {
		_ = c.ws.CloseNow()
	} else {
		_ = c.ws.Close(websocket.StatusNormalClosure, "")
	}
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		_ = c.ws.CloseNow()
		<-c.done
	}
}
