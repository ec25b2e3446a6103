package chatmux

import "context"

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
	if c.closed || c.sealed {
		c.mu.Unlock()
		return
	}
	if c.queued+len(frame) > c.srv.opts.MaxQueueBytes {
		c.closed = true
		c.dropQueue()
		c.wakeWriterLocked()
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
	if len(c.queue) == 0 {
		c.firstQueued = nanotime()
	}
	c.queue = append(c.queue, frame)
	if !fromGroup {
		c.urgent = true
		c.wakeWriterLocked()
	}
	start := !c.writing
	c.writing = true
	w := c.writer()
	c.mu.Unlock()
	if start {
		go w()
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
	if len(c.queue) == 0 {
		c.firstQueued = nanotime()
	}
	c.queue = append(c.queue, c.held...)
	c.held = nil
	start := !c.writing
	c.writing = true
	w := c.writer()
	c.mu.Unlock()
	if start {
		go w()
	}
}

// writer returns the connection's writeLoop as a func value, made once:
// a go statement on it starts the writer without allocating. c.mu is held,
// or the connection is not shared yet.
func (c *Conn) writer() func() {
	if c.writeFn == nil {
		c.writeFn = c.writeLoop
	}
	return c.writeFn
}

func (c *Conn) dropQueue() {
	clear(c.queue)
	c.queue = c.queue[:0]
	c.held = nil
	c.queued = 0
}

// drain seals the queue and waits until the writer has sent every frame it
// holds, or has failed (each write is bounded by ServerOptions.WriteTimeout),
// or ctx ends.
func (c *Conn) drain(ctx context.Context) {
	c.mu.Lock()
	c.sealed = true
	c.wakeWriterLocked()
	if !c.writing {
		c.mu.Unlock()
		return
	}
	if c.drained == nil {
		c.drained = make(chan struct{})
	}
	ch := c.drained
	c.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
	}
}

// writerStopped wakes a drain waiting for the writer. c.mu is held.
func (c *Conn) writerStopped() {
	c.writing = false
	if c.drained != nil {
		close(c.drained)
		c.drained = nil
	}
}
