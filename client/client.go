package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// TokenFunc returns the access token for the next connection attempt. It
// is called before every attempt, so an expired token can be refreshed;
// returning ErrNoToken signs the user out, any other error is reported
// (Handlers.Error) and the attempt is retried with backoff.
type TokenFunc func(ctx context.Context) (string, error)

// Options configure a Client. Only URL is required; the zero value of every
// other field is its default.
type Options struct {
	// URL is the WebSocket endpoint, e.g. "wss://chat.example.com/messaging/"
	// (docs/protocol.md#url).
	URL string
	// Token is the access token, sent as the query parameter TokenParam.
	Token string
	// TokenFunc returns the token for each connection attempt; it wins
	// over Token. After a 4001 close the client asks it once more for a
	// fresh token and reconnects at once; a second 4001 in a row signs the
	// user out.
	TokenFunc TokenFunc
	// TokenParam is the query parameter that carries the token (default
	// "token").
	TokenParam string
	// User signs in as this user with the development sign-in of the
	// example server (?user=<name>, docs/protocol.md#authentication). Only
	// for a developer's own machine.
	User string
	// Header is sent with the WebSocket handshake (an Authorization
	// header, say).
	Header http.Header
	// HTTPClient makes the handshake (default http.DefaultClient).
	HTTPClient *http.Client
	// NoBatch does not ask for batched delivery (chatmux.batch.v1,
	// docs/protocol.md#batched-delivery).
	NoBatch bool
	// Backoff sets the reconnect delays.
	Backoff Backoff
	// HeartbeatInterval is how often session.heartbeat is sent (default
	// 20 s); no answer within HeartbeatTimeout (default 10 s) drops the
	// connection and reconnects.
	HeartbeatInterval time.Duration
	// HeartbeatTimeout: see HeartbeatInterval.
	HeartbeatTimeout time.Duration
	// ConnectTimeout bounds the time from dialing to the first answer
	// (default 10 s).
	ConnectTimeout time.Duration
	// RequestTimeout bounds the wait for a request's final answer,
	// waiting for a connection included (default 15 s). It does not bound
	// SendMessage: a message stays in the outbox until it is stored or
	// refused.
	RequestTimeout time.Duration
	// OutboxMax bounds the unsent messages (default 200).
	OutboxMax int
	// MaxSendsInFlight bounds the message.send awaiting an answer at once
	// (default 32).
	MaxSendsInFlight int
	// MaxFrameBytes is the largest frame the server reads (default 65536,
	// the server's default; negative: no check). A request over it fails
	// with FrameRejectedError without being sent. A 1009 close that states
	// the server's limit replaces it.
	MaxFrameBytes int
	// MaxReadBytes is the largest message the client reads (default 32
	// MiB).
	MaxReadBytes int64
	// CatchUpLimit is the number of messages asked per catch-up request
	// (default 100, the server's cap).
	CatchUpLimit int
	// CatchUpConcurrency bounds the catch-up requests in flight, over all
	// rooms (default 4).
	CatchUpConcurrency int
	// NoAutoTrack tracks only the rooms given to TrackRoom. By default the
	// client tracks the rooms it learns of: a room of room.list from its
	// newest message on, any other (created, added to, listed by
	// chat.resync, a first message) from seq 0, since all of its messages
	// may be new to the user (docs/protocol.md#delivery).
	NoAutoTrack bool
	// NewClientMsgID generates client_msg_id values (default "c-" and 32
	// random hex digits).
	NewClientMsgID func() string
	// RestoreOutbox is the outbox of an earlier client (its
	// PendingMessages): these messages are sent once connected, with
	// their client_msg_id, so each is stored once.
	RestoreOutbox []OutboxEntry
	// Handlers receive the dispatches and the client's own events.
	Handlers Handlers
	// Logger receives what the client does not report elsewhere (default:
	// discarded).
	Logger *slog.Logger
}

// The defaults of Options.
const (
	DefaultHeartbeatInterval  = 20 * time.Second
	DefaultHeartbeatTimeout   = 10 * time.Second
	DefaultConnectTimeout     = 10 * time.Second
	DefaultRequestTimeout     = 15 * time.Second
	DefaultOutboxMax          = 200
	DefaultMaxSendsInFlight   = 32
	DefaultMaxFrameBytes      = 65536
	DefaultMaxReadBytes       = 32 << 20
	DefaultCatchUpLimit       = 100
	DefaultCatchUpConcurrency = 4
)

func (o *Options) defaults() {
	o.HeartbeatInterval = orDefault(o.HeartbeatInterval, DefaultHeartbeatInterval)
	o.HeartbeatTimeout = orDefault(o.HeartbeatTimeout, DefaultHeartbeatTimeout)
	o.ConnectTimeout = orDefault(o.ConnectTimeout, DefaultConnectTimeout)
	o.RequestTimeout = orDefault(o.RequestTimeout, DefaultRequestTimeout)
	if o.TokenParam == "" {
		o.TokenParam = defaultTokenParam
	}
	if o.OutboxMax <= 0 {
		o.OutboxMax = DefaultOutboxMax
	}
	if o.MaxSendsInFlight <= 0 {
		o.MaxSendsInFlight = DefaultMaxSendsInFlight
	}
	if o.MaxFrameBytes == 0 {
		o.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if o.MaxReadBytes <= 0 {
		o.MaxReadBytes = DefaultMaxReadBytes
	}
	if o.CatchUpLimit <= 0 {
		o.CatchUpLimit = DefaultCatchUpLimit
	}
	if o.CatchUpConcurrency <= 0 {
		o.CatchUpConcurrency = DefaultCatchUpConcurrency
	}
	if o.NewClientMsgID == nil {
		o.NewClientMsgID = newClientMsgID
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

func newClientMsgID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "c-" + hex.EncodeToString(b[:])
}

// State is the connection's state.
type State int

// The connection's states.
const (
	StateIdle State = iota
	StateConnecting
	StateConnected
	StateDisconnected
)

// String implements fmt.Stringer.
func (s State) String() string {
	switch s {
	case StateIdle:
		return "idle"
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateDisconnected:
		return "disconnected"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// StateChange is a change of the connection's state, with why.
type StateChange struct {
	State State
	// Reason: "connect", "reconnect", "closed by server", "heartbeat
	// timeout", "connect timeout", "dial failed", "signed out", ...
	Reason string
	// Code is the close code, when a close caused it (1006: closed
	// without a close frame).
	Code int
	// CloseReason is the close reason the server gave.
	CloseReason string
	// WillReconnect tells whether the client will try again.
	WillReconnect bool
	// Delay is the wait before the next attempt (disconnected and
	// WillReconnect only).
	Delay time.Duration
	// Attempt is the number of attempts since the last connection.
	Attempt int
	// Err is why the client stopped (WillReconnect false), or why a dial
	// failed.
	Err error
}

// Stats are the counters of the delivery rule, for tests and diagnostics.
type Stats struct {
	// Delivered counts messages handed to Handlers.Message.
	Delivered int
	// DuplicatesDropped counts messages dropped because their (room, seq)
	// had been delivered already.
	DuplicatesDropped int
	// GapsDetected counts live messages that showed a gap in their room's
	// seq.
	GapsDetected int
	// CatchUpRequests counts room.messages after_seq requests sent.
	CatchUpRequests int
	// SendsTransmitted counts message.send frames sent, resends included.
	SendsTransmitted int
	// Resends counts message.send frames sent again with the same
	// client_msg_id.
	Resends int
	// RateLimited counts 4029 answers to messages the outbox sent again.
	RateLimited int
	// Connections counts connections that reached StateConnected.
	Connections int
	// Batches counts WebSocket messages that carried several frames.
	Batches int
}

// Client is a connection to a chatmux chat server that carries the server's
// delivery guarantees to the application (docs/protocol.md#delivery): it
// reconnects with backoff, catches every tracked room up by seq after a
// reconnect, a gap or a chat.resync, drops duplicates by (room, seq), and
// sends messages from an outbox with a client_msg_id until they are stored
// exactly once.
//
// Every method is safe for concurrent use. Handlers run one at a time on
// one goroutine of the client, in the order of the events; a handler may
// call any method of the client.
type Client struct {
	opts Options
	url  *url.URL

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	events *eventQueue

	mu           sync.Mutex
	started      bool
	stopErr      error         // why the client stopped; nil while it runs
	stopped      chan struct{} // closed when it stops
	state        State
	stateCh      chan struct{} // closed and replaced at each state change
	sock         *sock
	reqSeq       uint64
	attempt      int
	authFailures int
	waiting      []*pending
	frameLimit   int
	outbox       []*outItem
	outboxByID   map[string]*outItem
	holdUntil    time.Time
	holdTimer    *time.Timer
	rooms        map[string]*room
	catchSlots   chan struct{}
	stats        Stats
}

// New returns a client for opts; Start connects it. It fails on options
// it cannot use.
func New(opts Options) (*Client, error) {
	if opts.URL == "" {
		return nil, errors.New("chatmux client: Options.URL is required")
	}
	u, err := url.Parse(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("chatmux client: bad Options.URL: %w", err)
	}
	switch u.Scheme {
	case "ws", "wss", "http", "https":
	default:
		return nil, fmt.Errorf("chatmux client: bad Options.URL %q: the scheme must be ws, wss, http or https", opts.URL)
	}
	opts.defaults()
	c := &Client{
		opts:       opts,
		url:        u,
		stopped:    make(chan struct{}),
		stateCh:    make(chan struct{}),
		frameLimit: opts.MaxFrameBytes,
		outboxByID: map[string]*outItem{},
		rooms:      map[string]*room{},
		catchSlots: make(chan struct{}, opts.CatchUpConcurrency),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.events = newEventQueue()
	for _, e := range opts.RestoreOutbox {
		if e.ClientMsgID == "" || e.RoomID == "" || c.outboxByID[e.ClientMsgID] != nil {
			continue
		}
		it := &outItem{entry: e, replay: true, done: make(chan struct{})}
		c.outbox = append(c.outbox, it)
		c.outboxByID[e.ClientMsgID] = it
	}
	return c, nil
}

// Dial returns a started client once it is connected: New, Start and
// WaitConnected. When ctx ends first, or the client stops (wrong
// credentials), the client is closed and the error returned.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	c, err := New(opts)
	if err != nil {
		return nil, err
	}
	c.Start()
	if err := c.WaitConnected(ctx); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// Start starts connecting, and reconnecting until Close or a terminal
// close (1000, 4001 twice, 4011). Calling it again does nothing.
func (c *Client) Start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started || c.stopErr != nil {
		return
	}
	c.started = true
	go c.events.run()
	c.wg.Add(1)
	go c.run()
}

// Close closes the connection (with 1000) and stops reconnecting. Requests
// waiting for an answer fail with ErrClosed; so do SendMessage calls, whose
// messages stay in PendingMessages. Close waits for the client's goroutines
// but not for the handlers: those still queued run, then their goroutine
// ends (Done). A handler may call Close.
func (c *Client) Close() error {
	c.mu.Lock()
	s := c.sock
	c.stopLocked(ErrClosed, StateChange{Reason: "closed by client"})
	c.mu.Unlock()
	if s != nil {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		go func() {
			<-closeCtx.Done()
			_ = s.ws.CloseNow()
		}()
		_ = s.ws.Close(websocket.StatusNormalClosure, "")
		cancel()
	}
	c.cancel()
	c.wg.Wait()
	c.events.close()
	return nil
}

// Done is closed when the client has stopped and its last handler has
// returned.
func (c *Client) Done() <-chan struct{} { return c.events.done }

// Stopped is closed when the client stops for good: Close, a sign-out, a
// 1000 or 4011 close (Err tells which).
func (c *Client) Stopped() <-chan struct{} { return c.stopped }

// Err returns why the client stopped (ErrClosed, ErrSignedOut,
// ErrUserDeleted, ErrSessionEnded, ErrNoRequestID), or nil while it runs.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopErr
}

// State returns the connection's state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Stats returns a copy of the delivery counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// WaitConnected returns once the client is connected (at once if it is),
// with the client's stop error when it stops first, or with ctx's error.
func (c *Client) WaitConnected(ctx context.Context) error {
	for {
		c.mu.Lock()
		st, ch, stop := c.state, c.stateCh, c.stopErr
		c.mu.Unlock()
		if stop != nil {
			return stop
		}
		if st == StateConnected {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// setStateLocked records and reports a state change.
func (c *Client) setStateLocked(s StateChange) {
	c.state = s.State
	close(c.stateCh)
	c.stateCh = make(chan struct{})
	if h := c.opts.Handlers.State; h != nil {
		c.events.push(func() { h(s) })
	}
}

// stopLocked stops the client for good with err: no reconnect, waiting
// requests fail with err, messages stay in the outbox.
func (c *Client) stopLocked(err error, s StateChange) {
	if c.stopErr != nil {
		return
	}
	c.stopErr = err
	close(c.stopped)
	for _, p := range c.waiting {
		c.settleLocked(p, nil, err)
	}
	c.waiting = nil
	if sk := c.sock; sk != nil {
		c.dropSockLocked(sk, err)
	}
	for _, it := range c.outbox {
		if it.timer != nil {
			it.timer.Stop()
			it.timer = nil
		}
		if it.state != stateQueued {
			it.state = stateQueued
		}
	}
	if c.holdTimer != nil {
		c.holdTimer.Stop()
	}
	for _, r := range c.rooms {
		if r.retry != nil {
			r.retry.Stop()
		}
	}
	s.State = StateDisconnected
	s.WillReconnect = false
	s.Attempt = c.attempt
	s.Err = err
	c.setStateLocked(s)
}

// run connects and reconnects until the client stops.
func (c *Client) run() {
	defer c.wg.Done()
	defer c.cancel() // it returns once the client stopped
	reason := "connect"
	for {
		c.mu.Lock()
		if c.stopErr != nil {
			c.mu.Unlock()
			return
		}
		c.setStateLocked(StateChange{State: StateConnecting, Reason: reason, WillReconnect: true, Attempt: c.attempt})
		c.mu.Unlock()
		reason = "reconnect"

		var delay time.Duration
		code, closeReason, why, err := c.attemptOnce()
		c.mu.Lock()
		if c.stopErr != nil {
			c.mu.Unlock()
			return
		}
		change := StateChange{State: StateDisconnected, Reason: why, Code: code, CloseReason: closeReason, WillReconnect: true, Err: err}
		switch {
		case errors.Is(err, ErrNoToken):
			c.stopLocked(ErrSignedOut, StateChange{Reason: "no token"})
			c.mu.Unlock()
			return
		case errors.Is(err, ErrNoRequestID):
			c.stopLocked(ErrNoRequestID, StateChange{Reason: why})
			c.mu.Unlock()
			return
		case code == CloseNormal:
			// docs/protocol.md#close-codes: a normal closure asks for
			// nothing; the session ends.
			c.stopLocked(ErrSessionEnded, change)
			c.mu.Unlock()
			return
		case code == CloseUserDeleted:
			c.stopLocked(ErrUserDeleted, change)
			c.mu.Unlock()
			return
		case code == CloseAuthFailed:
			c.authFailures++
			if c.opts.TokenFunc == nil || c.authFailures >= 2 {
				c.stopLocked(ErrSignedOut, change)
				c.mu.Unlock()
				return
			}
			// Ask TokenFunc for a fresh token and try once more, at once.
			change.Reason = "authentication failed"
		default:
			delay = c.opts.Backoff.Delay(c.attempt, code == CloseSlowConsumer)
			c.attempt++
		}
		change.Delay = delay
		change.Attempt = c.attempt
		c.setStateLocked(change)
		c.mu.Unlock()
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-c.ctx.Done():
				t.Stop()
				return
			}
		}
	}
}

// attemptOnce makes one connection and serves it until it closes. It
// returns the close code (0 when no connection opened, 1006 when it closed
// without a close frame), the close reason, why it ended, and an error
// for a connection that did not open.
func (c *Client) attemptOnce() (code int, closeReason, why string, err error) {
	token := c.opts.Token
	if c.opts.TokenFunc != nil {
		tctx, cancel := context.WithTimeout(c.ctx, c.opts.ConnectTimeout)
		token, err = c.opts.TokenFunc(tctx)
		cancel()
		if err != nil {
			if !errors.Is(err, ErrNoToken) {
				c.reportError(fmt.Errorf("the token function failed: %w", err))
			}
			return 0, "", "token unavailable", err
		}
	}
	dctx, cancel := context.WithTimeout(c.ctx, c.opts.ConnectTimeout)
	defer cancel()
	opts := &websocket.DialOptions{HTTPClient: c.opts.HTTPClient, HTTPHeader: c.opts.Header}
	if !c.opts.NoBatch {
		opts.Subprotocols = []string{batchSubprotocol}
	}
	ws, resp, err := websocket.Dial(dctx, c.dialURL(token), opts)
	if err != nil {
		if resp != nil {
			return 0, "", fmt.Sprintf("dial failed (HTTP %d)", resp.StatusCode), fmt.Errorf("failed to dial: %w", err)
		}
		return 0, "", "dial failed", fmt.Errorf("failed to dial: %w", err)
	}
	ws.SetReadLimit(c.opts.MaxReadBytes)
	return c.serve(ws)
}

// dialURL is Options.URL with the token and the development user in its
// query.
func (c *Client) dialURL(token string) string {
	u := *c.url
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	}
	q := u.Query()
	if token != "" {
		q.Set(c.opts.TokenParam, token)
	}
	if c.opts.User != "" {
		q.Set(defaultUserParam, c.opts.User)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// reportError hands an error not tied to a request to Handlers.Error.
func (c *Client) reportError(err error) {
	c.opts.Logger.Debug("chatmux client", "err", err)
	if h := c.opts.Handlers.Error; h != nil {
		c.events.push(func() { h(err) })
	}
}
