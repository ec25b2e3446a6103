package chatmux

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/chatmux/chatmux/internal/wsframe"
)

// readLoop reads and handles frames until the connection closes.
func (c *Conn) readLoop() {
	defer c.finish()
	// c.emu is held since ServeHTTP created c.
	if err := c.connect(); err != nil {
		c.emu.Unlock()
		code, reason := connectClose(err)
		c.srv.logger.Info("chatmux: $connect refused the connection", "conn", c.id, "code", int(code), "err", err)
		_ = c.ws.Close(code, wsframe.CloseReason(reason))
		return
	}
	c.releaseHeld()
	c.emu.Unlock()
	for {
		typ, r, err := c.ws.Reader(context.Background())
		if err != nil {
			return
		}
		c.lastRead.Store(time.Now().UnixNano())
		buf := bufPool.Get().(*bytes.Buffer)
		// The read limit is the server's own (the library's is off): a
		// frame over it is refused with 1009 while the rest of it is
		// read and discarded (closeTooBig).
		c.limited.R, c.limited.N = r, c.srv.opts.ReadLimit+1
		_, err = buf.ReadFrom(&c.limited)
		c.limited.R = nil
		if err != nil {
			putBuf(buf)
			return
		}
		if int64(buf.Len()) > c.srv.opts.ReadLimit {
			putBuf(buf)
			c.closeTooBig(r)
			return
		}
		if typ == websocket.MessageText && !utf8.Valid(buf.Bytes()) {
			// A text frame must be UTF-8 (RFC 6455, section 8.1). The
			// answers to the events before it go first.
			putBuf(buf)
			c.drain(context.Background())
			_ = c.ws.Close(websocket.StatusInvalidFramePayloadData, "invalid UTF-8")
			return
		}
		c.emu.Lock()
		// Once Shutdown has begun, what is read is not handled (the
		// loop goes on reading until the close handshake ends).
		if !c.draining.Load() {
			if typ != websocket.MessageText {
				c.srv.handleError(c, Validation("Binary frames are not supported: send JSON text frames."))
			} else {
				c.handle(buf.Bytes())
			}
		}
		c.emu.Unlock()
		putBuf(buf)
	}
}

// Bounds of the reading that goes on after a 1009 close frame.
const (
	lingerTimeout = time.Second
	lingerBytes   = 64 << 20
)

// closeTooBig closes the connection with 1009 after a frame over the read
// limit, of which r holds the rest. The close frame goes out at once (the
// queued frames are dropped); then the server reads and discards the rest
// of the frame and waits for the client's close frame, for at most
// lingerTimeout and lingerBytes, before it closes the socket. A client
// still sending the frame thus reads the 1009 instead of a reset
// connection (1006).
func (c *Conn) closeTooBig(r io.Reader) {
	c.mu.Lock()
	c.closed = true
	c.dropQueue()
	c.mu.Unlock()
	reason := fmt.Sprintf("message over %d bytes", c.srv.opts.ReadLimit)
	_ = c.raw.SetReadDeadline(time.Now().Add(lingerTimeout))
	if err := c.raw.WriteClose(uint16(websocket.StatusMessageTooBig), reason); err != nil {
		_ = c.ws.CloseNow()
		return
	}
	n, err := io.Copy(io.Discard, io.LimitReader(r, lingerBytes+1))
	if err != nil || n > lingerBytes {
		_ = c.ws.CloseNow()
		return
	}
	// The library's close frame is dropped (WriteClose sent one): Close
	// only waits for the client's, until the read deadline.
	_ = c.ws.Close(websocket.StatusMessageTooBig, reason)
}

// connect routes $connect under ServerOptions.ConnectTimeout.
func (c *Conn) connect() error {
	ctx, cancel := context.WithTimeout(c.ctx, c.srv.opts.ConnectTimeout)
	defer cancel()
	return c.srv.routeLifecycle(ctx, c, EventConnect)
}

// connectClose returns the close code and reason of a connection whose
// $connect (or $resync) failed with err: 1013 and DetailUnavailable when
// err is an internal error that wraps ErrUnavailable or
// context.DeadlineExceeded (a dependency was away or too slow); otherwise
// the code connectCloseCode gives (1013 for a 4013 error) and the error's
// detail.
func connectClose(err error) (websocket.StatusCode, string) {
	e := AsError(err)
	if e.Code == CodeInternal && (errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)) {
		return websocket.StatusTryAgainLater, DetailUnavailable
	}
	return connectCloseCode(e.Code), detailText(e.Detail)
}

// connectCloseCode returns the close code for a $connect that failed with
// an error of the given code (docs/protocol.md#close-codes): 1011 for an
// internal failure (4006, a panic), 1013 "try again later" for an
// unavailable dependency (4013), the code itself for the other 4xxx codes
// and for 1008, 1011 and 1013; 1011 for anything else.
func connectCloseCode(code int) websocket.StatusCode {
	switch {
	case code == CodeInternal:
		return websocket.StatusInternalError
	case code == CodeUnavailable:
		return websocket.StatusTryAgainLater
	case code >= 4000 && code < 5000,
		code == int(websocket.StatusPolicyViolation),
		code == int(websocket.StatusInternalError),
		code == int(websocket.StatusTryAgainLater):
		return websocket.StatusCode(code)
	}
	return websocket.StatusInternalError
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
		} else {
			c.endGather()
		}
	}
	ctx.release()
}

// reservedEvent reports whether name is reserved for events the server
// routes itself (EventConnect, EventDisconnect).
func reservedEvent(name string) bool { return len(name) > 0 && name[0] == '$' }

// finish runs when the read loop ends: wait for a $resync in progress,
// leave every group, route $disconnect, release the connection.
func (c *Conn) finish() {
	c.mu.Lock()
	c.closed = true
	c.dropQueue()
	c.mu.Unlock()
	// End a $resync in progress and wait for it; none starts after, the
	// context being done.
	c.cancel()
	c.emu.Lock()
	c.emu.Unlock()
	c.leaveAll(context.Background())
	dctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), c.srv.opts.DisconnectTimeout)
	if err := c.srv.routeLifecycle(dctx, c, EventDisconnect); err != nil {
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
