package chatmux

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/chatmux/chatmux/groups"
	"github.com/chatmux/chatmux/internal/wsframe"
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
// in the order they arrive (read.go). Outbound frames wait in a queue
// bounded in bytes (queue.go); a writer that runs only while the queue is
// not empty sends every queued frame with one write to the socket, and
// while group frames keep arriving it gathers them for up to
// ServerOptions.GatherDelay first (write.go).
type Conn struct {
	srv         *Server
	slots       connSlots // what the connection counts against the limits
	ws          *websocket.Conn
	raw         *wsframe.Conn
	id          string
	user        *User
	remoteAddr  string
	header      http.Header
	connectedAt time.Time
	ctx         context.Context
	cancel      context.CancelFunc

	limited  io.LimitedReader // the read loop's, reused for every frame
	lastRead atomic.Int64

	// emu is held while one of the connection's events, $connect or
	// $resync is handled (from the connection's creation until $connect
	// has returned): Shutdown takes it to wait for the event in flight,
	// $resync to run between events.
	emu sync.Mutex
	// draining is set when Shutdown begins: the read loop handles no
	// event read from then on.
	draining atomic.Bool
	// stale is 0, or the epoch of the broker loss (Server.avail) since
	// which the connection drops its group data frames (resync.go).
	stale atomic.Uint64
	// resyncMark is the stale mark that the $resync running now was
	// started for (0 outside a resync): Resume clears that mark only, so
	// that a loss during the resync keeps the connection stale for the
	// next one.
	resyncMark atomic.Uint64
	pinging    atomic.Bool
	batched    bool // SubprotocolBatch was negotiated

	mu      sync.Mutex
	queue   [][]byte
	spare   [][]byte
	queued  int
	writing bool
	closed  bool
	sealed  bool          // the queue takes no more frames; the writer sends what it holds
	drained chan struct{} // closed when the writer stops after the queue was sealed
	holding bool          // $connect is running: group frames wait in held
	held    [][]byte      // group frames delivered during $connect
	// Gathering (write.go). urgent is set while the queue holds a frame
	// for this connection alone (an answer), which is sent without
	// gathering. lastWrite is when the writer last took a batch
	// (nanotime) and lastSize how many bytes it held; firstQueued is when
	// the oldest queued frame was queued. gathering is set while the
	// writer waits for more frames; wake ends the wait. timer is the
	// writer's own.
	urgent      bool
	gathering   bool
	lastWrite   int64
	lastSize    int
	firstQueued int64
	wake        chan struct{}
	timer       *time.Timer
	writeFn     func() // see writer

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

// InGroup reports whether the connection belongs to group.
func (c *Conn) InGroup(group string) bool {
	c.gmu.Lock()
	defer c.gmu.Unlock()
	_, ok := c.groups[group]
	return ok
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

// Deliver implements groups.Member: data is queued (dropped while the
// connection is stale), control messages move the connection between
// groups or close it (Server.CloseUser).
func (c *Conn) Deliver(m *groups.Message) {
	switch m.Kind {
	case groups.KindData:
		if c.stale.Load() != 0 {
			c.dropStale()
			return
		}
		c.push(m.Data, true)
	case groups.KindJoin:
		if err := c.Join(c.ctx, m.Group); err != nil && !errors.Is(err, net.ErrClosed) {
			c.srv.logger.Warn("chatmux: failed to join group", "conn", c.id, "group", m.Group, "err", err)
		}
	case groups.KindLeave:
		if err := c.Leave(c.ctx, m.Group); err != nil {
			c.srv.logger.Warn("chatmux: failed to leave group", "conn", c.id, "group", m.Group, "err", err)
		}
	case groups.KindClose:
		if code, reason, ok := m.CloseStatus(); ok {
			c.Close(code, reason)
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
// returns at once; the close handshake goes on in the background. A
// reason longer than a close frame carries (123 bytes) is cut at a UTF-8
// boundary.
func (c *Conn) Close(code int, reason string) {
	c.mu.Lock()
	c.closed = true
	c.dropQueue()
	c.wakeWriterLocked()
	ws := c.ws
	c.mu.Unlock()
	if ws != nil {
		reason = wsframe.CloseReason(reason)
		go func() { _ = ws.Close(websocket.StatusCode(code), reason) }()
	}
}
