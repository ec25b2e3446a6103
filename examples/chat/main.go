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
	"syscall"
	"time"

	"github.com/chatmux/chatmux/internal/devauth"
)

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

// run serves until ctx ends (SIGTERM or SIGINT), then shuts down: the
// listener stops, every connection is drained and closed with 1001 within
// cfg.ShutdownTimeout, the node leaves the store with the sessions it still
// has, and the broker and the store are closed. When ready is not nil it
// receives the listening address once the server accepts connections.
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
	logger.Info("chat: listening", "url", "http://"+ln.Addr().String()+"/", "node", a.NodeID(),
		"store", a.storeKind, "broker", a.brokerKind,
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
	timeout := cfg.ShutdownTimeout
	if timeout <= 0 {
		timeout = defaultShutdownTimeout
	}
	logger.Info("chat: shutting down: draining connections", "node", a.NodeID(), "conns", a.srv.Len(), "timeout", timeout)
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// Stop the listener and plain HTTP requests first, then drain the
	// WebSockets (hijacked, so http.Server.Shutdown does not wait for
	// them): each finishes the event it is handling, sends its answers
	// and is closed with 1001. Then the node leaves the store.
	herr := hs.Shutdown(sctx)
	aerr := a.Close(sctx)
	if err := errors.Join(herr, aerr); err != nil {
		return fmt.Errorf("failed to shut down: %w", err)
	}
	logger.Info("chat: stopped", "node", a.NodeID())
	return nil
}
