package chatmux

import (
	"errors"

	"github.com/chatmux/chatmux/internal/wsframe"
)

// writeLoop sends queued frames until the queue is empty, then exits: an
// idle connection has no writer goroutine.
func (c *Conn) writeLoop() {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 || c.closed {
			c.writerStopped()
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
