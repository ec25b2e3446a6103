package chatmux

import (
	"context"
	"sync"

	"github.com/coder/websocket"
)

// EventResync is the reserved event the server routes to each of its
// stale connections (see Conn.Stale) when its broker is back after it lost
// contact with the other nodes. Only a broker that reports it (one with
// the method OnAvailability(func(available bool)), as groups.Availability
// has it) makes connections stale; the in-process broker never does. The
// handler re-reads what the connection needs (its rooms), fixes its groups
// with Join and Leave, calls
// Conn.Resume, and only then reads what it tells the client (each room's
// latest seq), so that nothing published in between is missed: it is
// either delivered or counted in what the client is told
// (docs/protocol.md#resync).
//
// $resync is routed through the middleware like $connect, under
// ServerOptions.ConnectTimeout, never at the same time as another event of
// the connection, and on at most 8 connections at a time. When
// no route exists, or the handler does not call Resume, the server clears
// the mark after the handler returns. A handler that returns an error
// closes the connection with 1013 (try again later): the client reconnects
// and catches up.
const EventResync = "$resync"

// resyncConcurrency bounds the $resync handlers running at once.
const resyncConcurrency = 8

// StaleObserver is an optional interface of ServerOptions.Observer: it
// counts the group frames that stale connections drop.
type StaleObserver interface {
	// StaleDropped is called for each group data frame dropped because
	// the connection is stale (its broker was away). It is called on
	// the broadcast path and must not block.
	StaleDropped(c *Conn)
}

// Stale reports whether the connection is stale: its server's broker lost
// contact with the other nodes, and the connection has not been resynced
// since. A stale connection drops the data frames of its groups (room and
// user dispatches); control messages (JoinUser, LeaveUser) still move it
// between groups, and what is sent to its own socket (Context.Reply,
// Send, Conn.Send) still goes out. A handler that answers its own socket
// through a group (a message's dispatch to its room) can check Stale and
// answer with Send instead.
func (c *Conn) Stale() bool { return c.stale.Load() != 0 }

// Resume clears the connection's stale mark, so that its group frames are
// delivered again. The $resync handler calls it once it has fixed the
// connection's groups, before it reads what it tells the client. It clears
// only the mark of the outage that this resync repairs, and does nothing
// outside a $resync or while the broker is down: a connection whose broker
// was lost again meanwhile (even if it is already back) stays stale until
// its next resync, which the server routes.
func (c *Conn) Resume() {
	if c.srv == nil {
		return
	}
	mark := c.resyncMark.Load()
	if mark == 0 || c.srv.avail.Load()&1 != 0 {
		return
	}
	c.stale.CompareAndSwap(mark, 0)
}

// BrokerAvailable reports whether the server's broker is in contact with
// the other nodes (always true for a broker that cannot lose it, such as
// the in-process one).
func (s *Server) BrokerAvailable() bool { return s.avail.Load()&1 == 0 }

// staleMarkLocked returns the stale mark of a connection opened now: the
// current epoch while the broker is down, else 0. s.mu is held.
func (s *Server) staleMarkLocked() uint64 {
	if st := s.avail.Load(); st&1 != 0 {
		return st >> 1
	}
	return 0
}

// setAvailable is the broker's availability callback. On false it marks
// every connection stale with a new epoch and stops a resync in progress;
// on true it starts routing $resync to every stale connection.
func (s *Server) setAvailable(available bool) {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return
	}
	st := s.avail.Load()
	if !available {
		epoch := st>>1 + 1
		s.avail.Store(epoch<<1 | 1)
		for c := range s.conns {
			c.stale.Store(epoch)
		}
		if s.resyncCancel != nil {
			s.resyncCancel()
			s.resyncCancel = nil
		}
		n := len(s.conns)
		s.mu.Unlock()
		s.logger.Warn("chatmux: broker unavailable: group frames are dropped until it is back", "conns", n)
		return
	}
	if st&1 == 0 {
		s.mu.Unlock()
		return
	}
	s.avail.Store(st &^ 1)
	var due []*Conn
	for c := range s.conns {
		if c.stale.Load() != 0 {
			due = append(due, c)
		}
	}
	if len(due) == 0 {
		s.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.resyncCancel = cancel
	// Not stopping: Shutdown has not begun to wait.
	s.wg.Add(1)
	s.mu.Unlock()
	s.logger.Info("chatmux: broker available again: resyncing connections", "conns", len(due))
	go s.resync(ctx, cancel, due)
}

// resync routes $resync to each connection of due, resyncConcurrency at a
// time, until done or ctx ends (the broker was lost again, or the server
// is shutting down).
func (s *Server) resync(ctx context.Context, cancel context.CancelFunc, due []*Conn) {
	defer s.wg.Done()
	defer cancel()
	work := make(chan *Conn)
	var wg sync.WaitGroup
	for i := 0; i < min(resyncConcurrency, len(due)); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				c.resync(ctx)
			}
		}()
	}
feed:
	for _, c := range due {
		select {
		case work <- c:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
}

// resync routes $resync to the connection, between its events, and clears
// its stale mark after (see EventResync).
func (c *Conn) resync(round context.Context) {
	c.emu.Lock()
	defer c.emu.Unlock()
	mark := c.stale.Load()
	if round.Err() != nil || c.ctx.Err() != nil || c.draining.Load() || mark == 0 {
		return
	}
	c.resyncMark.Store(mark)
	defer c.resyncMark.Store(0)
	ctx, cancel := context.WithTimeout(c.ctx, c.srv.opts.ConnectTimeout)
	err := c.srv.routeLifecycle(ctx, c, EventResync)
	cancel()
	if err != nil {
		c.srv.logger.Warn("chatmux: $resync failed: closing the connection", "conn", c.id, "err", err)
		c.Close(int(websocket.StatusTryAgainLater), "try again later")
		return
	}
	c.Resume()
}

// dropStale counts a group frame dropped by a stale connection.
func (c *Conn) dropStale() {
	if o := c.srv.staleObs; o != nil {
		o.StaleDropped(c)
	}
}
