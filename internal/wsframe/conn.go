package wsframe

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// ErrCloseSent refuses data after the close frame.
var ErrCloseSent = fmt.Errorf("chatmux: close frame already sent: %w", net.ErrClosed)

// errBroken refuses every write after a failed one. It does not wrap
// net.ErrClosed: the library then gives up its close handshake at once
// instead of waiting for an answer to a close frame it could not send.
var errBroken = errors.New("chatmux: an earlier write to the socket failed")

// Conn is the socket under the WebSocket library. The library's writes
// (the handshake response and control frames, always whole frames in one
// call) go through Write; data frames go through WriteText, which frames
// a whole batch and sends it with one write. A mutex keeps the two from
// interleaving inside a frame.
//
// After the library has written a close frame, data is refused
// (ErrCloseSent). After a failed write, which may have ended inside a
// frame, every write is refused: a close frame sent then would be read as
// the rest of the cut frame's payload.
type Conn struct {
	net.Conn
	timeout time.Duration

	mu sync.Mutex
	// deadline is when the write deadline last set on the socket expires.
	deadline time.Time
	// closeSent is set once a close frame is written: no data frame may
	// follow it.
	closeSent bool
	// ownClose is set when WriteClose wrote the close frame: the
	// library's own close frame, later, is dropped.
	ownClose bool
	// err is the first write failure.
	err error
}

// NewConn wraps nc. Each write gets at least half of writeTimeout and at
// most all of it; zero means no deadline.
func NewConn(nc net.Conn, writeTimeout time.Duration) *Conn {
	return &Conn{Conn: nc, timeout: writeTimeout}
}

// Write passes the library's writes through.
func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, errBroken
	}
	if len(p) > 0 && p[0] == finBit|OpClose {
		if c.ownClose {
			// WriteClose sent the close frame: a second one would
			// break the protocol. The library goes on with its
			// close handshake as if it had sent this one.
			return len(p), nil
		}
		c.closeSent = true
	}
	return c.writeLocked(p)
}

// WriteClose writes a close frame with code and reason (at most
// MaxCloseReason bytes) now, without waiting for an answer, unless a close
// frame was already written (then it does nothing). Data frames are
// refused from then on, and the library's own close frame, when its Close
// follows, is dropped: its close handshake then only waits for the peer's
// close frame. A server uses it to say why it closes while it goes on
// reading (and discarding) what the peer is still sending.
func (c *Conn) WriteClose(code uint16, reason string) error {
	reason = CloseReason(reason)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeSent {
		return nil
	}
	if c.err != nil {
		return errBroken
	}
	b := make([]byte, 0, 4+len(reason))
	b = AppendHeader(b, true, OpClose, 2+len(reason))
	b = append(b, byte(code>>8), byte(code))
	b = append(b, reason...)
	c.closeSent, c.ownClose = true, true
	if _, err := c.writeLocked(b); err != nil {
		return fmt.Errorf("failed to write the close frame: %w", err)
	}
	return nil
}

// writeLocked writes to the socket under a deadline. Setting a deadline
// costs a timer update, so one set lasts for several writes: each write
// gets between half the timeout and the whole of it. c.mu is held.
func (c *Conn) writeLocked(p []byte) (int, error) {
	if c.timeout > 0 {
		if now := time.Now(); c.deadline.Sub(now) < c.timeout/2 {
			c.deadline = now.Add(c.timeout)
			_ = c.Conn.SetWriteDeadline(c.deadline)
		}
	}
	n, err := c.Conn.Write(p)
	if err != nil {
		c.err = err
	}
	return n, err
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// WriteText sends msgs with one write: each as a text message of its
// own, or, packed, all as one text message holding a JSON array of them.
// size is the sum of their lengths.
func (c *Conn) WriteText(msgs [][]byte, size int, packed bool) error {
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	if packed {
		b = AppendHeader(b, true, OpText, size+len(msgs)+1) // brackets and commas
		b = append(b, '[')
		for i, m := range msgs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, m...)
		}
		b = append(b, ']')
	} else {
		for _, m := range msgs {
			b = AppendHeader(b, true, OpText, len(m))
			b = append(b, m...)
		}
	}
	err := c.WriteFrames(b)
	if cap(b) <= 256<<10 { // keep the grown buffer, unless it is large
		*bp = b[:0]
		bufPool.Put(bp)
	}
	return err
}

// WriteFrames writes b, whole frames already framed (see AppendHeader),
// with one write. It fails with ErrCloseSent after the library's close
// frame, and without writing anything after a failed write.
func (c *Conn) WriteFrames(b []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeSent {
		return ErrCloseSent
	}
	if c.err != nil {
		return errBroken
	}
	if _, err := c.writeLocked(b); err != nil {
		return fmt.Errorf("failed to write frames: %w", err)
	}
	return nil
}
