package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/chatmux/chatmux/internal/devauth"
)

// config is everything the server is started with: flags and environment.
type config struct {
	// Addr is the listen address (flag -addr, env CHATMUX_ADDR).
	Addr string
	// DatabaseURL selects PostgreSQL when set (env DATABASE_URL).
	DatabaseURL string
	// RedisURL selects the Redis broker when set (env REDIS_URL).
	RedisURL string
	// RedisPrefix starts the Redis channel names, so that deployments can
	// share one Redis (flag -redis-prefix, default "chatmux:").
	RedisPrefix string
	// JWTSecret enables JWT authentication when set (env CHATMUX_JWT_SECRET).
	JWTSecret []byte
	// InsecureDevAuth lets development mode listen on a non-loopback
	// address (flag -insecure-dev-auth).
	InsecureDevAuth bool
	// Origins lists extra origins allowed to open WebSockets (flag
	// -origins, comma-separated host patterns); same-origin always works.
	Origins []string
	// LogFormat is "json" or "text"; LogLevel a slog level name.
	LogFormat string
	LogLevel  string
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout time.Duration
	// SendLimit bounds each user's message.send events, over all the
	// user's connections (flag -send-limit, env CHATMUX_SEND_LIMIT,
	// default 100/20s); past it a send is answered 4029. The zero value
	// sets no limit.
	SendLimit rateSpec
}

// defaultSendLimit lets a user send 100 messages at once (an outbox
// resent after a reconnect, a paste), then one every 200 ms: far above
// what a person types, far below what a runaway client sends.
var defaultSendLimit = rateSpec{Events: 100, Per: 20 * time.Second}

// rateSpec is a rate limit of Events events per Per, written "100/20s"
// ("5/s" means 5/1s); "off" or "0" is no limit (the zero value).
type rateSpec struct {
	Events int
	Per    time.Duration
}

// String returns the spec as parseRate reads it.
func (r rateSpec) String() string {
	if r.Events == 0 {
		return "off"
	}
	return fmt.Sprintf("%d/%s", r.Events, r.Per)
}

// Set implements flag.Value.
func (r *rateSpec) Set(s string) error {
	v, err := parseRate(s)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// parseRate reads "<events>/<duration>" ("100/20s", "5/s", "30/1m"), or
// "off" or "0" for no limit.
func parseRate(s string) (rateSpec, error) {
	s = strings.TrimSpace(s)
	if s == "off" || s == "0" {
		return rateSpec{}, nil
	}
	n, d, ok := strings.Cut(s, "/")
	events, err := strconv.Atoi(n)
	if !ok || err != nil || events <= 0 {
		return rateSpec{}, fmt.Errorf("invalid rate %q: want <events>/<duration> such as 100/20s, or off", s)
	}
	if d != "" && (d[0] < '0' || d[0] > '9') {
		d = "1" + d // "5/s" is 5 per 1s
	}
	per, err := time.ParseDuration(d)
	if err != nil || per <= 0 {
		return rateSpec{}, fmt.Errorf("invalid rate %q: the period must be a positive duration such as 20s or 1m", s)
	}
	return rateSpec{Events: events, Per: per}, nil
}

// devMode reports whether users sign in by name alone.
func (c config) devMode() bool { return len(c.JWTSecret) == 0 }

func main() {
	cfg, err := parseConfig(os.Args[1:], os.Getenv, os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(2)
	}
	logger, err := newLogger(cfg.LogFormat, cfg.LogLevel, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(2)
	}
	slog.SetDefault(logger)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, a second one kills at once.
		<-ctx.Done()
		stop()
	}()
	if err := run(ctx, cfg, logger, nil); err != nil {
		logger.Error("chat: " + err.Error())
		os.Exit(1)
	}
}

// parseConfig reads flags over environment defaults.
func parseConfig(args []string, getenv func(string) string, out io.Writer) (config, error) {
	cfg := config{
		DatabaseURL: getenv("DATABASE_URL"),
		RedisURL:    getenv("REDIS_URL"),
		JWTSecret:   []byte(getenv("CHATMUX_JWT_SECRET")),
	}
	addr := getenv("CHATMUX_ADDR")
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	cfg.SendLimit = defaultSendLimit
	if v := getenv("CHATMUX_SEND_LIMIT"); v != "" {
		var err error
		if cfg.SendLimit, err = parseRate(v); err != nil {
			return cfg, fmt.Errorf("CHATMUX_SEND_LIMIT: %w", err)
		}
	}
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprint(out, `Usage: chat [flags]

A complete chatmux chat server with a web page at / and the WebSocket
endpoint at /messaging/.

Environment:
  CHATMUX_ADDR        listen address (default 127.0.0.1:8080; -addr wins)
  CHATMUX_SEND_LIMIT  message.send per user (default 100/20s; -send-limit wins)
  CHATMUX_JWT_SECRET  HS256 secret; without it users sign in by name (development mode)
  DATABASE_URL        PostgreSQL URL; without it data lives in memory
  REDIS_URL           Redis URL for fan-out across nodes; without it, in-process

Flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.Addr, "addr", addr, "listen `address`")
	fs.BoolVar(&cfg.InsecureDevAuth, "insecure-dev-auth", false,
		"allow development-mode sign-in (no password) on a non-loopback address")
	fs.StringVar(&cfg.RedisPrefix, "redis-prefix", "chatmux:", "prefix of the Redis channel names (with REDIS_URL)")
	origins := fs.String("origins", "", "comma-separated extra origin host `patterns` allowed to connect")
	fs.StringVar(&cfg.LogFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "graceful shutdown limit")
	fs.Var(&cfg.SendLimit, "send-limit", "message.send `rate` per user, over all their connections, as events/period "+
		"(100/20s: 100 at once, then one every 200ms), or off; past it a send is answered 4029")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	for _, o := range strings.Split(*origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			cfg.Origins = append(cfg.Origins, o)
		}
	}
	if cfg.devMode() && !cfg.InsecureDevAuth {
		if err := devauth.CheckAddr(cfg.Addr, "set CHATMUX_JWT_SECRET, listen on 127.0.0.1, or pass -insecure-dev-auth"); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// listen opens the TCP listener on addr. When the address is taken, the
// error says so and how to choose another.
func listen(ctx context.Context, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("failed to listen on %s: the address is already in use (is another server running?); "+
			"choose another with -addr or CHATMUX_ADDR, for example -addr %s: %w", addr, nextAddr(addr), err)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to listen on %s (set another address with -addr or CHATMUX_ADDR): %w", addr, err)
	}
	return ln, nil
}

// nextAddr returns addr with the next port number, an example of another
// address to listen on.
func nextAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	p, perr := strconv.Atoi(port)
	if err != nil || perr != nil || p <= 0 || p >= 65535 {
		return "127.0.0.1:8081"
	}
	return net.JoinHostPort(host, strconv.Itoa(p+1))
}

// newLogger returns a slog logger writing to w in the given format.
func newLogger(format, level string, w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("invalid -log-level %q", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("invalid -log-format %q (text or json)", format)
}

// run serves until ctx ends, then shuts down gracefully. When ready is not
// nil it receives the listening address once the server accepts
// connections.
func run(ctx context.Context, cfg config, logger *slog.Logger, ready chan<- string) error {
	// Listen first: a taken port is reported before anything else happens.
	ln, err := listen(ctx, cfg.Addr)
	if err != nil {
		return err
	}
	if cfg.devMode() {
		logger.Warn("chat: DEVELOPMENT MODE: no CHATMUX_JWT_SECRET is set, anyone who can reach this server " +
			"signs in as any user with ?user=<name>, without a password. Set CHATMUX_JWT_SECRET in production.")
		if !devauth.IsLoopback(cfg.Addr) {
			logger.Warn("chat: development-mode sign-in is exposed beyond this machine (-insecure-dev-auth)", "addr", cfg.Addr)
		}
	}
	a, err := newApp(ctx, cfg, logger)
	if err != nil {
		_ = ln.Close()
		return err
	}
	hs := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	logger.Info("chat: listening", "url", "http://"+ln.Addr().String()+"/", "store", a.storeKind, "broker", a.brokerKind,
		"auth", map[bool]string{true: "development", false: "jwt"}[cfg.devMode()], "send_limit", cfg.SendLimit.String())
	if ready != nil {
		ready <- ln.Addr().String()
	}

	select {
	case err := <-errc:
		_ = a.Close(context.Background())
		return fmt.Errorf("server failed: %w", err)
	case <-ctx.Done():
	}
	logger.Info("chat: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	// Stop the listener and plain HTTP requests first, then close the
	// WebSockets (hijacked, so http.Server.Shutdown does not wait for them)
	// with 1001 and wait for their handlers.
	herr := hs.Shutdown(sctx)
	aerr := a.Close(sctx)
	if err := errors.Join(herr, aerr); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("chat: stopped")
	return nil
}
