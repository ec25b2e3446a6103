package chatmux

import (
	"context"

	"github.com/coder/websocket"
)

// Shutdown drains the server and closes every connection with 1001 (going
// away), so that a client reconnects, to another node if there is one
// (docs/protocol.md#faults):
//
//   - new upgrade requests are answered 503;
//   - each connection stops reading events: an event read after Shutdown
//     began is not handled (it gets no answer and has no effect; a client
//     resends it after reconnecting);
//   - the event each connection is handling, if any, finishes, and every
//     frame queued for the socket by then (its answers, its final
//     request_id frame, group dispatches) is written;
//   - the connection is closed with 1001, and $disconnect runs when it has
//     ended.
//
// Shutdown returns nil when every connection has ended and its handlers
// have returned. When ctx ends first, every remaining connection is closed
// at once (no close frame; what is still queued is dropped) and its
// context cancelled; Shutdown then returns ctx's error once the handlers
// still running, $disconnect included, have returned.
func (s *Server) Shutdown(ctx context.Context) error {
	for _, c := range s.stop(ctx) {
		s.shutdownConn(ctx, c)
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		// Every connection, including any accepted during the
		// handshake of a request that raced with Shutdown.
		s.mu.Lock()
		for c := range s.conns {
			c.cancel()
			_ = c.ws.CloseNow()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// shutdownConn drains and closes c in a goroutine of its own (see
// Conn.shutdown). A connection accepted while Close runs is closed at once.
func (s *Server) shutdownConn(ctx context.Context, c *Conn) {
	if ctx.Err() != nil {
		c.cancel()
		_ = c.ws.CloseNow()
		return
	}
	// c holds a count in s.wg until it ends: the count cannot be zero.
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c.shutdown(ctx)
	}()
}

// Close closes every connection at once, without the close handshake, and
// waits for their handlers.
func (s *Server) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range s.stop(ctx) {
		c.cancel()
		_ = c.ws.CloseNow()
	}
	s.wg.Wait()
	return nil
}

// stop marks the server as stopping (for ctx, Shutdown's context) and
// returns its connections.
func (s *Server) stop(ctx context.Context) []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopping {
		s.stopping, s.stopCtx = true, ctx
	}
	if s.resyncCancel != nil {
		s.resyncCancel()
		s.resyncCancel = nil
	}
	if s.pingOn {
		close(s.stopPing)
		s.pingOn = false
	}
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	return conns
}

// shutdown closes the connection for Server.Shutdown: the read loop handles
// no more events, the event in flight (if any) finishes, every frame
// queued by then is written, and the connection is closed with 1001. When
// ctx ends first, Shutdown closes the socket at once.
func (c *Conn) shutdown(ctx context.Context) {
	c.draining.Store(true)
	// Wait for the event in flight (an empty critical section).
	c.emu.Lock()
	c.emu.Unlock()
	if ctx.Err() != nil {
		return
	}
	c.drain(ctx)
	if ctx.Err() != nil {
		return
	}
	_ = c.ws.Close(websocket.StatusGoingAway, "server shutting down")
}
