package chatmux

import (
	"errors"
	"time"

	"github.com/chatmux/chatmux/internal/wsframe"
)

// Gathering (see ServerOptions.GatherDelay). A write counts as small under
// gatherMaxBytes; a connection whose previous batch was taken less than
// gatherWindow times GatherDelay ago is one that frames keep arriving at
// (at 2 ms, 63 frames/s or more: below that, a wait of GatherDelay would
// rarely catch a second frame, and costs a timer).
const (
	gatherMaxBytes = 8 << 10
	gatherWindow   = 8
)

// clockBase is the origin of nanotime.
var clockBase = time.Now()

// nanotime returns the monotonic time in nanoseconds since clockBase,
// plus one: 0 is never a time it returns.
func nanotime() int64 { return int64(time.Since(clockBase)) + 1 }

// writeLoop sends queued frames until the queue is empty, then exits: an
// idle connection has no writer goroutine.
//
// While group frames keep arriving in small writes, the writer gathers
// them: it waits until the oldest queued frame is GatherDelay old, so
// that the frames that arrive meanwhile go out with the same write (one
// system call, and one wake-up of the reader, instead of one each). See
// gatherWait for when it does; an answer to the connection's own event,
// Close and a sealed queue (Shutdown) end the wait at once.
func (c *Conn) writeLoop() {
	gathered := false
	for {
		c.mu.Lock()
		c.gathering = false
		if len(c.queue) == 0 || c.closed {
			c.writerStopped()
			if cap(c.spare) > 256 {
				c.spare = nil
			}
			c.mu.Unlock()
			return
		}
		now := nanotime()
		if !gathered {
			if wait := c.gatherWait(now); wait > 0 {
				c.gathering = true
				if c.wake == nil {
					c.wake = make(chan struct{}, 1)
				}
				wake := c.wake
				c.mu.Unlock()
				c.gather(time.Duration(wait), wake)
				gathered = true
				continue
			}
		}
		gathered = false
		batch := c.queue
		c.queue, c.spare = c.spare[:0], nil
		c.urgent = false
		c.lastWrite, c.lastSize = now, c.queued
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
			c.writerStopped()
			c.mu.Unlock()
			if !errors.Is(err, wsframe.ErrCloseSent) {
				// A failed or timed-out write: the socket is dead.
				// (After a close frame, the close handshake is under
				// way and must be left to finish.)
				_ = c.ws.CloseNow()
			}
			return
		}
	}
}

// gatherWait returns how long the writer waits before it takes the queue,
// 0 to take it now. It waits while frames keep arriving in small writes:
// gathering is on (GatherDelay > 0), there was a previous batch, it was
// small and was taken less than gatherWindow×GatherDelay ago, what is queued is small,
// holds no answer to the connection's own event (urgent) and the queue is
// not sealed; it then waits until the oldest queued frame has waited
// GatherDelay. A frame therefore waits at most GatherDelay for gathering,
// and a connection that receives a frame now and then never waits. c.mu
// is held.
func (c *Conn) gatherWait(now int64) int64 {
	d := int64(c.srv.opts.GatherDelay)
	if d <= 0 || c.urgent || c.sealed || c.lastSize >= gatherMaxBytes || c.queued >= gatherMaxBytes {
		return 0
	}
	if c.lastWrite == 0 || now-c.lastWrite > gatherWindow*d {
		return 0
	}
	return c.firstQueued + d - now
}

// gather waits for d, or until wake. Only the writer calls it, so the
// timer is the writer's alone.
func (c *Conn) gather(d time.Duration, wake chan struct{}) {
	select {
	case <-wake: // a wake-up left over from an earlier wait
	default:
	}
	if c.timer == nil {
		c.timer = time.NewTimer(d)
	} else {
		c.timer.Reset(d)
	}
	select {
	case <-c.timer.C:
	case <-wake:
		c.timer.Stop()
	}
}

// endGather runs when an event's handler has returned without an answer
// of its own: what it queued for this connection through a group (its
// echo, the sender's own message.dispatch) is the answer its client waits
// for, so it goes out without the gathering wait, as a reply would.
func (c *Conn) endGather() {
	c.mu.Lock()
	if len(c.queue) > 0 {
		c.urgent = true
		c.wakeWriterLocked()
	}
	c.mu.Unlock()
}

// wakeWriterLocked ends the writer's gathering wait, if it is waiting.
// c.mu is held.
func (c *Conn) wakeWriterLocked() {
	if c.gathering {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// writeBatch sends every queued frame with one write to the socket. Data
// frames are framed by the connection's wsframe.Conn, straight into one
// buffer; the WebSocket library keeps the reading side and the control
// frames (pong, ping, close). A client that negotiated SubprotocolBatch
// gets the batch as one message, a JSON array of the frames.
func (c *Conn) writeBatch(batch [][]byte) (int, error) {
	n := 0
	for _, f := range batch {
		n += len(f)
	}
	return n, c.raw.WriteText(batch, n, c.batched && len(batch) > 1)
}
