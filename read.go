package chatmux

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/chatmux/chatmux/internal/wsframe"
)

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
		_ = c.ws.Close(code, wsframe.CloseReason(detailText(e.Detail)))
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
			c.srv.handleError(c, Validation("Binary frames are not supported: send JSON text frames."))
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

// handle decodes one frame and routes it. A reserved event name ($connect,
// $disconnect, anything starting with "$") is never routed from the wire:
// it is answered as an unknown event.
//
// An event with a request_id gets exactly one final frame: its error
// envelope, the answer to an unknown event, or, when the handler returned
// nil, {"request_id": ..., "ok": true}, queued after everything the event
// sent to this socket (docs/protocol.md#request-id).
func (c *Conn) handle(frame []byte) {
	env, perr := decodeEnvelope(frame)
	if perr != nil {
		env.Data = nil
	}
	ctx := newContext(c.srv, c, c.ctx, env.EventType, env.Data)
	ctx.requestID, ctx.hasRequestID = env.requestID, env.hasRequestID
	switch {
	case perr != nil:
		c.srv.errorHandler(ctx, perr)
	case reservedEvent(env.EventType):
		_ = ctx.ReplyRaw(invalidEventType)
	default:
		err := c.srv.serve(ctx)
		if err != nil {
			c.srv.errorHandler(ctx, err)
		} else if ctx.hasRequestID && !ctx.unmatched {
			c.enqueue(appendOK(make([]byte, 0, len(ctx.requestID)+32), ctx.requestID))
		}
	}
	ctx.release()
}

// reservedEvent reports whether name is reserved for events the server
// routes itself (EventConnect, EventDisconnect).
func reservedEvent(name string) bool { return len(name) > 0 && name[0] == '$' }

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
