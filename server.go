package chatmux

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/chatmux/chatmux/groups"
	"github.com/chatmux/chatmux/internal/wsframe"
)

// Reserved event names routed when a connection opens and closes (and
// EventResync, when its broker is back after an outage), through the same
// middleware as every event. $connect runs under
// ServerOptions.ConnectTimeout; a $connect handler that returns an error
// closes the connection: with 1013 (try again later) for Unavailable
// (4013) or an error that wraps ErrUnavailable or
// context.DeadlineExceeded, 1011 for another internal failure (a plain
// error, a panic, 4006), else with the *Error's code when it is a 4xxx
// code, 1008, 1011 or 1013. $disconnect runs after the connection has left
// every group, with a context that outlives the connection by
// ServerOptions.DisconnectTimeout. Every event name that starts with "$"
// is reserved: a client that sends one is answered as for an unknown
// event, {"error": "invalid event type"}, and no handler runs.
const (
	EventConnect    = "$connect"
	EventDisconnect = "$disconnect"
)

// SubprotocolBatch is the WebSocket subprotocol a client asks for to
// receive several frames in one message: when more than one frame is
// queued, the server sends them as one JSON array of the usual objects
// ([{"eventType": ...}, {"eventType": ...}]); a single frame is sent as
// is. Clients that do not ask get one object per message, as the protocol
// has it. See docs/protocol.md#batched-delivery.
const SubprotocolBatch = "chatmux.batch.v1"

// Authenticator identifies the user of an upgrade request. The request's
// context ends after ServerOptions.ConnectTimeout: an Authenticator that
// calls a store or an identity provider passes it on. An error, or a nil
// user, rejects the connection: the upgrade completes, then the server
// closes it with 4001 when the credentials are wrong, with 4011
// (CloseUserDeleted) when the error wraps ErrUserDeleted (a user deleted
// for good, docs/protocol.md#deleted-users), or with 1013 (try again later)
// when the error wraps ErrUnavailable or context.DeadlineExceeded, or the
// context's deadline has passed: the credentials could not be checked
// (docs/protocol.md#close-codes).
type Authenticator func(r *http.Request) (*User, error)

// Observer receives connection-level events (for metrics). Its methods are
// called on hot paths and must not block. An Observer that also implements
// StaleObserver counts the group frames that stale connections drop.
type Observer interface {
	ConnOpened(c *Conn)
	ConnClosed(c *Conn)
	QueueOverflow(c *Conn)
}

// ServerOptions configures a Server. The zero value of each field means its
// default.
type ServerOptions struct {
	// Authenticate identifies users. Nil accepts every connection as
	// anonymous (Context.User returns nil).
	Authenticate Authenticator
	// Broker fans out dispatches; the default is the in-process
	// groups.NewMemory().
	Broker groups.Broker
	// OriginPatterns lists the hosts allowed to connect cross-origin
	// (path.Match patterns). The default allows same-origin only.
	OriginPatterns []string
	// InsecureSkipVerify disables the origin check. The check runs
	// before Authenticate: a refused origin gets HTTP 403 and the
	// authenticator never sees the request.
	InsecureSkipVerify bool
	// ConnectTimeout bounds the setting up of a connection (default 5s):
	// Authenticate runs with a request whose context has this deadline,
	// and $connect with a context that has it too. Past it, the
	// connection is closed with 1013 (try again later). It bounds each
	// $resync handler the same way.
	ConnectTimeout time.Duration
	// MaxConnsPerUser limits the open connections of one user on this
	// server (0, the default, means no limit). A connection over the
	// limit is closed with 1013 "too many connections" once upgraded.
	// The count is exact: connections are counted from their
	// authentication until they end.
	MaxConnsPerUser int
	// MaxConnsPerAddr limits the open connections from one remote IP
	// address (the request's RemoteAddr without its port; behind a proxy,
	// rewrite RemoteAddr first, e.g. with chi's middleware.RealIP). 0,
	// the default, means no limit. It is checked before Authenticate; a
	// connection over the limit is closed with 1013 "too many
	// connections" once upgraded. The count is exact.
	MaxConnsPerAddr int
	// ReadLimit is the largest frame accepted, in bytes (default 64 KiB).
	// A larger frame closes the connection with 1009: the close frame goes
	// out at once, then the server reads and discards what the client is
	// still sending, until its close frame, for at most 1 s and 64 MiB.
	ReadLimit int64
	// MaxQueueBytes bounds each connection's outbound queue (default
	// 1 MiB). Overflow closes the connection with 4008 "slow consumer".
	MaxQueueBytes int
	// WriteTimeout bounds one write to a socket (default 10s).
	WriteTimeout time.Duration
	// GatherDelay is the latency budget of a connection's writer while
	// group frames keep arriving at it in small writes (the previous
	// write was under 8 KiB and less than 8×GatherDelay ago): the writer
	// then waits until the oldest queued frame is GatherDelay old, so
	// that the frames that arrive meanwhile go out with the same write
	// (one system call instead of one each). A group frame waits at most
	// this long for it; an answer to the connection's own event (Send,
	// Context.Reply) is never held and ends the wait, and so do the end
	// of an event that answered nothing of its own (its echo through a
	// group is its answer), Close and Shutdown. Frames keep their order.
	// Default 2ms; negative disables gathering.
	GatherDelay time.Duration
	// PingInterval is how long a connection may stay silent before the
	// server pings it (default 30s; negative disables pings).
	PingInterval time.Duration
	// PingTimeout is how long a ping waits for its pong before the
	// connection is closed (default 15s).
	PingTimeout time.Duration
	// DisconnectTimeout bounds the $disconnect handler (default 10s).
	DisconnectTimeout time.Duration
	// ErrorHandler turns a handler's error into an answer. The default
	// sends the error envelope to the sender (with the event's request_id
	// when it has one: Context.ReplyRaw adds it) and logs 4006 errors
	// (and 4013 ones as warnings).
	ErrorHandler func(c *Context, err error)
	// Logger receives the server's logs (default slog.Default()).
	Logger *slog.Logger
	// Observer, when set, receives connection-level events (and, when it
	// implements StaleObserver, the frames stale connections drop).
	Observer Observer
}

// Server is an http.Handler that upgrades requests to WebSocket connections
// and routes their events. Mount it on any chi or net/http router.
type Server struct {
	router       Router
	broker       groups.Broker
	opts         ServerOptions
	logger       *slog.Logger
	errorHandler func(c *Context, err error)

	mu       sync.Mutex
	conns    map[*Conn]struct{}
	perUser  map[int64]int  // open connections by user, with MaxConnsPerUser
	perAddr  map[string]int // open connections by remote IP, with MaxConnsPerAddr
	stopping bool
	stopCtx  context.Context // Shutdown's context; cancelled for Close
	// resyncCancel stops the resync in progress, nil when none.
	resyncCancel context.CancelFunc
	// avail is the broker's availability: the number of times it was
	// lost (the epoch) shifted left by one, with the low bit set while it
	// is down (resync.go).
	avail    atomic.Uint64
	staleObs StaleObserver
	stopPing chan struct{}
	pingOn   bool
	wg       sync.WaitGroup
	open     atomic.Int64
}

// NewServer returns a server that routes events with router.
func NewServer(router Router, opts ServerOptions) *Server {
	if router == nil {
		panic("chatmux: NewServer needs a router")
	}
	if opts.Broker == nil {
		opts.Broker = groups.NewMemory()
	}
	if opts.ReadLimit <= 0 {
		opts.ReadLimit = 64 << 10
	}
	if opts.MaxQueueBytes <= 0 {
		opts.MaxQueueBytes = 1 << 20
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.GatherDelay == 0 {
		opts.GatherDelay = 2 * time.Millisecond
	}
	if opts.PingInterval == 0 {
		opts.PingInterval = 30 * time.Second
	}
	if opts.PingTimeout <= 0 {
		opts.PingTimeout = 15 * time.Second
	}
	if opts.DisconnectTimeout <= 0 {
		opts.DisconnectTimeout = 10 * time.Second
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{
		router:  router,
		broker:  opts.Broker,
		opts:    opts,
		logger:  opts.Logger,
		conns:   map[*Conn]struct{}{},
		perUser: map[int64]int{},
		perAddr: map[string]int{},
	}
	s.errorHandler = opts.ErrorHandler
	if s.errorHandler == nil {
		s.errorHandler = s.defaultErrorHandler
	}
	s.staleObs, _ = opts.Observer.(StaleObserver)
	if a, ok := opts.Broker.(groups.Availability); ok {
		a.OnAvailability(s.setAvailable)
	}
	return s
}

// Broker returns the server's broker.
func (s *Server) Broker() groups.Broker { return s.broker }

// Router returns the server's router.
func (s *Server) Router() Router { return s.router }

// Len returns the number of open connections.
func (s *Server) Len() int { return int(s.open.Load()) }

// ServeHTTP upgrades the request and serves the connection until it
// closes. It returns as soon as the connection is set up.
//
// In order: a server that is shutting down answers 503; a refused origin
// gets 403; a remote address at MaxConnsPerAddr, a user at
// MaxConnsPerUser and an Authenticator that cannot check the credentials
// get the upgrade and then a 1013 close; wrong credentials get the upgrade
// and then a 4001 close, or a 4011 close when the Authenticator's error
// wraps ErrUserDeleted.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	stopping := s.stopping
	if !stopping {
		s.wg.Add(1)
	}
	s.mu.Unlock()
	if stopping {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	started := false
	var slots connSlots
	defer func() {
		if !started {
			s.release(slots)
			s.wg.Done()
		}
	}()

	if !s.opts.InsecureSkipVerify {
		if err := checkOrigin(r, s.opts.OriginPatterns); err != nil {
			s.logger.Debug("chatmux: origin refused", "remote", r.RemoteAddr, "err", err)
			http.Error(w, http.StatusText(http.StatusForbidden), http.StatusForbidden)
			return
		}
	}
	if !s.acquireAddr(&slots, remoteIP(r.RemoteAddr)) {
		s.logger.Info("chatmux: too many connections from one address", "remote", r.RemoteAddr, "limit", s.opts.MaxConnsPerAddr)
		s.refuse(w, r, websocket.StatusTryAgainLater, reasonTooManyConns)
		return
	}

	var user *User
	if s.opts.Authenticate != nil {
		var authErr error
		user, authErr = s.authenticate(r)
		if authErr != nil {
			if errors.Is(authErr, ErrUnavailable) {
				s.logger.Warn("chatmux: cannot authenticate: a dependency is unavailable", "remote", r.RemoteAddr, "err", authErr)
				s.refuse(w, r, websocket.StatusTryAgainLater, DetailUnavailable)
				return
			}
			if errors.Is(authErr, ErrUserDeleted) {
				s.logger.Info("chatmux: a deleted user tried to connect", "remote", r.RemoteAddr, "err", authErr)
				s.refuse(w, r, CloseUserDeleted, ReasonUserDeleted)
				return
			}
			s.logger.Info("chatmux: authentication failed", "remote", r.RemoteAddr, "err", authErr)
			s.refuse(w, r, CodeUnauthenticated, "authentication failed")
			return
		}
		if !s.acquireUser(&slots, user.ID) {
			s.logger.Info("chatmux: too many connections of one user", "user", user.ID, "limit", s.opts.MaxConnsPerUser)
			s.refuse(w, r, websocket.StatusTryAgainLater, reasonTooManyConns)
			return
		}
	}

	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	c := &Conn{
		srv:         s,
		slots:       slots,
		id:          uuid.NewString(),
		user:        user,
		remoteAddr:  r.RemoteAddr,
		header:      r.Header,
		connectedAt: time.Now(),
		ctx:         ctx,
		cancel:      cancel,
		// Hold the writer until the socket exists, and group frames
		// until $connect has run.
		writing: true,
		holding: true,
	}
	// No event (Shutdown, $resync) before $connect: the read loop
	// unlocks it when $connect has returned.
	c.emu.Lock()
	s.mu.Lock()
	c.stale.Store(s.staleMarkLocked())
	s.mu.Unlock()
	// Join the user's group before the handshake completes, so that a
	// client that sees its connection open is already reachable.
	if user != nil {
		if err := c.Join(ctx, groups.User(user.ID)); err != nil {
			s.logger.Error("chatmux: failed to join the user's group", "err", err)
			cancel()
			s.refuse(w, r, websocket.StatusTryAgainLater, DetailUnavailable)
			return
		}
	}
	hw := wsframe.NewHijackWriter(w, s.opts.WriteTimeout)
	ws, err := s.accept(hw, r)
	if err != nil {
		c.leaveAll(context.Background())
		cancel()
		return
	}
	// The read loop applies ReadLimit itself (read.go).
	ws.SetReadLimit(-1)
	c.mu.Lock()
	c.ws, c.raw = ws, hw.Conn()
	c.batched = ws.Subprotocol() == SubprotocolBatch
	c.mu.Unlock()
	c.lastRead.Store(c.connectedAt.UnixNano())
	s.mu.Lock()
	s.conns[c] = struct{}{}
	// Ordered with setAvailable by s.mu: stale when the broker is down,
	// not when it came back since the connection was created ($connect,
	// still to run, reads everything afresh).
	c.stale.Store(s.staleMarkLocked())
	s.startPingerLocked()
	// A Shutdown that began during the handshake did not see this
	// connection: close it the same way.
	lateForShutdown, stopCtx := s.stopping, s.stopCtx
	s.mu.Unlock()
	s.open.Add(1)
	if s.opts.Observer != nil {
		s.opts.Observer.ConnOpened(c)
	}
	c.mu.Lock()
	c.writing = len(c.queue) > 0
	startWriter := c.writing
	writer := c.writer()
	c.mu.Unlock()
	if startWriter {
		go writer()
	}
	started = true
	go c.readLoop()
	if lateForShutdown {
		s.shutdownConn(stopCtx, c)
	}
}

// remove forgets a finished connection.
func (s *Server) remove(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.release(c.slots)
	s.open.Add(-1)
	if s.opts.Observer != nil {
		s.opts.Observer.ConnClosed(c)
	}
	s.wg.Done()
}

// startPingerLocked starts the one keepalive goroutine that serves every
// connection. s.mu is held.
func (s *Server) startPingerLocked() {
	if s.pingOn || s.opts.PingInterval < 0 || s.stopping {
		return
	}
	s.pingOn = true
	s.stopPing = make(chan struct{})
	s.wg.Add(1)
	go s.pinger(s.stopPing)
}

func (s *Server) pinger(stop chan struct{}) {
	defer s.wg.Done()
	interval := s.opts.PingInterval
	tick := time.NewTicker(interval / 2)
	defer tick.Stop()
	var due []*Conn
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			limit := now.Add(-interval).UnixNano()
			due = due[:0]
			s.mu.Lock()
			for c := range s.conns {
				if c.lastRead.Load() < limit && !c.pinging.Load() {
					due = append(due, c)
				}
			}
			s.mu.Unlock()
			for _, c := range due {
				if c.pinging.CompareAndSwap(false, true) {
					go c.ping()
				}
			}
			clear(due)
		}
	}
}

// serve routes one event, turning a panic into a 4006 error.
func (s *Server) serve(c *Context) (err error) {
	defer recoverTo(&err, s.logger, c.event)
	return s.router.ServeEvent(c)
}

// recoverTo turns a panic of the handler chain into a 4006 error.
func recoverTo(err *error, logger interface {
	Error(msg string, args ...any)
}, event string) {
	if p := recover(); p != nil {
		logger.Error("chatmux: panic in handler", "event", event, "panic", p, "stack", string(debug.Stack()))
		*err = Internal(fmt.Errorf("panic: %v", p))
	}
}

// routeLifecycle routes a reserved event ($connect, $disconnect, $resync)
// when a route exists.
func (s *Server) routeLifecycle(ctx context.Context, c *Conn, event string) error {
	if m, ok := s.router.(*Mux); ok {
		if _, found := m.Match(event); !found {
			return nil
		}
	}
	cx := newContext(s, c, ctx, event, nil)
	defer cx.release()
	return s.serve(cx)
}

// handleError answers an error raised before a frame is decoded (a binary
// frame).
func (s *Server) handleError(c *Conn, err error) {
	cx := newContext(s, c, c.ctx, "", nil)
	s.errorHandler(cx, err)
	cx.release()
}

func (s *Server) defaultErrorHandler(c *Context, err error) {
	if err == nil {
		return
	}
	e := AsError(err)
	switch e.Code {
	case CodeInternal:
		var uid any
		if u := c.User(); u != nil {
			uid = u.ID
		}
		s.logger.Error("chatmux: event failed", "event", c.event, "pattern", c.pattern, "user", uid, "err", err)
	case CodeUnavailable:
		s.logger.Warn("chatmux: event failed: a dependency is unavailable", "event", c.event, "pattern", c.pattern, "err", err)
	}
	b, merr := encodeError(e)
	if merr != nil {
		s.logger.Error("chatmux: failed to encode error", "err", merr)
		b, _ = encodeError(Internal(merr))
	}
	_ = c.ReplyRaw(b)
}

// ErrorEnvelope returns the JSON of the protocol's error envelope for err:
// {"error": {"code": ..., "detail": ...}}.
func ErrorEnvelope(err error) ([]byte, error) { return encodeError(AsError(err)) }

// Broadcast sends a dispatch to every member of a group, on every node. The
// dispatch is encoded once.
func (s *Server) Broadcast(ctx context.Context, group, eventType string, data any) error {
	b, err := EncodeDispatch(eventType, data)
	if err != nil {
		return fmt.Errorf("failed to encode %s: %w", eventType, err)
	}
	return s.Publish(ctx, group, b)
}

// Publish sends an already encoded frame to every member of a group.
func (s *Server) Publish(ctx context.Context, group string, frame []byte) error {
	if err := s.broker.Publish(ctx, group, &groups.Message{Kind: groups.KindData, Data: frame}); err != nil {
		return fmt.Errorf("failed to publish to %s: %w", group, err)
	}
	return nil
}

// SendUser sends a dispatch to every connection of a user, on every node.
func (s *Server) SendUser(ctx context.Context, userID int64, eventType string, data any) error {
	return s.Broadcast(ctx, groups.User(userID), eventType, data)
}

// JoinUser adds every connection of a user, on every node, to a group. With
// the in-process broker the local connections have joined when it returns.
func (s *Server) JoinUser(ctx context.Context, userID int64, group string) error {
	return s.control(ctx, userID, groups.KindJoin, group)
}

// LeaveUser removes every connection of a user, on every node, from a group.
func (s *Server) LeaveUser(ctx context.Context, userID int64, group string) error {
	return s.control(ctx, userID, groups.KindLeave, group)
}

func (s *Server) control(ctx context.Context, userID int64, kind groups.Kind, group string) error {
	if err := s.broker.Publish(ctx, groups.User(userID), &groups.Message{Kind: kind, Group: group}); err != nil {
		return fmt.Errorf("failed to move user %d's connections (%s): %w", userID, group, err)
	}
	return nil
}
