// Package peer is a small chat transport built on the Centrifuge library
// (github.com/centrifugal/centrifuge): the other side of the side-by-side
// broadcast benchmark in ../cmd/xchat. It offers the scenario that
// chatmux's example server offers for broadcast: clients connect over
// WebSocket, subscribe to a room channel and publish messages that fan out
// to every subscriber of the room (the publisher included), each message
// one JSON object.
//
// Protocol: Centrifuge's JSON client protocol at /connection/websocket.
// The user id is the query parameter "user" of the upgrade request (no
// secret: a benchmark peer for loopback use). A client may subscribe to
// any channel "room:<id>" and may publish into a channel it is subscribed
// to; the library's in-memory broker fans publications out, with no
// history, presence or join/leave messages.
package peer

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/centrifugal/centrifuge"
)

// Options configure a peer.
type Options struct {
	// MaxMessagesInFrame bounds how many messages the library's writer packs
	// into one WebSocket frame (newline-separated JSON objects). 0 keeps the
	// library's default (16); 1 sends one JSON object per frame, the
	// framing chatmux uses.
	MaxMessagesInFrame int
	// WriteDelay lets the library's writer wait this long to collect more
	// messages before a write (0: the library's default, none).
	WriteDelay time.Duration
	// WriteTimeout bounds one write to a socket (0: the library's
	// default, 1s). On a starved machine the library's 1s can pass between
	// arming the deadline and the write itself, which cuts the connection.
	WriteTimeout time.Duration
	// Logf receives the library's log lines at LogLevel; nil discards them.
	Logf func(format string, args ...any)
	// LogLevel is the library's log level when Logf is set: "error"
	// (the default), "warn", "info" or "debug".
	LogLevel string
}

// RoomPrefix starts the name of every channel a client may subscribe to.
const RoomPrefix = "room:"

// Path is where the WebSocket endpoint is mounted.
const Path = "/connection/websocket"

// Peer is a running Centrifuge node with its HTTP handler.
type Peer struct {
	node    *centrifuge.Node
	handler http.Handler
}

// New starts a Centrifuge node configured as described in the package
// documentation. Shut it down with Close.
func New(o Options) (*Peer, error) {
	if o.MaxMessagesInFrame < 0 {
		return nil, fmt.Errorf("peer: MaxMessagesInFrame must be 0 (library default) or positive, not %d", o.MaxMessagesInFrame)
	}
	if o.WriteTimeout < 0 {
		return nil, fmt.Errorf("peer: WriteTimeout must not be negative, not %v", o.WriteTimeout)
	}
	if o.WriteDelay < 0 {
		return nil, fmt.Errorf("peer: WriteDelay must not be negative, not %v", o.WriteDelay)
	}
	cfg := centrifuge.Config{LogLevel: centrifuge.LogLevelNone}
	if o.Logf != nil {
		switch o.LogLevel {
		case "", "error":
			cfg.LogLevel = centrifuge.LogLevelError
		case "warn":
			cfg.LogLevel = centrifuge.LogLevelWarn
		case "info":
			cfg.LogLevel = centrifuge.LogLevelInfo
		case "debug":
			cfg.LogLevel = centrifuge.LogLevelDebug
		default:
			return nil, fmt.Errorf("peer: unknown log level %q: want error, warn, info or debug", o.LogLevel)
		}
		cfg.LogHandler = func(e centrifuge.LogEntry) { o.Logf("centrifuge: %s %v", e.Message, e.Fields) }
	}
	node, err := centrifuge.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("peer: %w", err)
	}
	node.OnConnecting(func(ctx context.Context, e centrifuge.ConnectEvent) (centrifuge.ConnectReply, error) {
		if _, ok := centrifuge.GetCredentials(ctx); !ok {
			return centrifuge.ConnectReply{}, centrifuge.ErrorUnauthorized
		}
		return centrifuge.ConnectReply{
			MaxMessagesInFrame: o.MaxMessagesInFrame,
			WriteDelay:         o.WriteDelay,
		}, nil
	})
	node.OnConnect(func(client *centrifuge.Client) {
		client.OnSubscribe(func(e centrifuge.SubscribeEvent, cb centrifuge.SubscribeCallback) {
			if !ValidRoom(e.Channel) {
				cb(centrifuge.SubscribeReply{}, centrifuge.ErrorPermissionDenied)
				return
			}
			cb(centrifuge.SubscribeReply{}, nil)
		})
		client.OnPublish(func(e centrifuge.PublishEvent, cb centrifuge.PublishCallback) {
			if !client.IsSubscribed(e.Channel) {
				cb(centrifuge.PublishReply{}, centrifuge.ErrorPermissionDenied)
				return
			}
			// An empty reply: the node publishes to the channel itself.
			cb(centrifuge.PublishReply{}, nil)
		})
	})
	if err := node.Run(); err != nil {
		return nil, fmt.Errorf("peer: %w", err)
	}
	ws := centrifuge.NewWebsocketHandler(node, centrifuge.WebsocketConfig{
		// Load generators send no Origin header; browsers on the same host
		// pass the library's same-host check.
		CheckOrigin:  func(r *http.Request) bool { return true },
		WriteTimeout: o.WriteTimeout,
	})
	mux := http.NewServeMux()
	mux.Handle(Path, authenticate(ws))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "ok clients=%d\n", node.Hub().NumClients())
	})
	return &Peer{node: node, handler: mux}, nil
}

// ValidRoom reports whether a client may subscribe to channel: "room:"
// followed by a non-empty id.
func ValidRoom(channel string) bool {
	return strings.HasPrefix(channel, RoomPrefix) && len(channel) > len(RoomPrefix)
}

// Handler returns the HTTP handler: the WebSocket endpoint at Path and a
// health check at /healthz.
func (p *Peer) Handler() http.Handler { return p.handler }

// Close shuts the node down, disconnecting its clients, within ctx.
func (p *Peer) Close(ctx context.Context) error { return p.node.Shutdown(ctx) }

// authenticate takes the user id from ?user= of the upgrade request;
// without it the request is refused with 401.
func authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := r.URL.Query().Get("user")
		if user == "" {
			http.Error(w, "missing ?user=<id>", http.StatusUnauthorized)
			return
		}
		ctx := centrifuge.SetCredentials(r.Context(), &centrifuge.Credentials{UserID: user})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// CheckLoopback returns an error unless addr (host:port) is a loopback
// address.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("refusing to listen on %q: loopback addresses only", addr)
}

// Serve listens on addr (loopback only) and serves p until ctx is done,
// then shuts the node and the listener down (bounded by five seconds).
func Serve(ctx context.Context, addr string, p *Peer, logger *log.Logger) error {
	if err := CheckLoopback(addr); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("failed to listen: %w", err)
	}
	srv := &http.Server{Handler: p.Handler(), ReadHeaderTimeout: 30 * time.Second}
	if logger != nil {
		logger.Printf("centrifuge peer listening on ws://%s%s", ln.Addr(), Path)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		_ = p.Close(context.Background())
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.Close(sctx)
	_ = srv.Shutdown(sctx)
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Main parses the peer's command-line flags (args without the program
// name) and serves until ctx is done. Flags: -addr (default
// 127.0.0.1:8001), -max-messages-in-frame, -write-timeout, -write-delay,
// -log.
func Main(ctx context.Context, args []string, logger *log.Logger) error {
	fs := flag.NewFlagSet("centrifuge-peer", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8001", "listen `address` (loopback only)")
	var o Options
	fs.IntVar(&o.MaxMessagesInFrame, "max-messages-in-frame", 0,
		"messages packed into one WebSocket frame at most (0: the library's default, 16; 1: one JSON object per frame)")
	fs.DurationVar(&o.WriteTimeout, "write-timeout", 0, "bound of one write to a socket (0: the library's default, 1s)")
	fs.DurationVar(&o.WriteDelay, "write-delay", 0, "how long the writer waits to collect more messages before a write (0: none)")
	level := fs.String("log", "", "log the library's messages at this `level`: error, warn, info or debug (default: none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if *level != "" && logger != nil {
		o.Logf, o.LogLevel = logger.Printf, *level
	}
	p, err := New(o)
	if err != nil {
		return err
	}
	return Serve(ctx, *addr, p, logger)
}
