package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/chat"
	"github.com/chatmux/chatmux/internal/devauth"
	"github.com/chatmux/chatmux/store/memory"
)

// wsPath is where the WebSocket endpoint is mounted.
const wsPath = "/messaging/"

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "listen address (loopback only: development authentication)")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, logger); err != nil {
		logger.Error("custom: " + err.Error())
		os.Exit(1)
	}
}

func run(ctx context.Context, addr string, logger *slog.Logger) error {
	if err := devauth.CheckAddr(addr, "listen on 127.0.0.1"); err != nil {
		return err
	}
	st := memory.New()
	cfg := chat.DefaultConfig()
	cfg.Store = st
	cfg.Logger = logger
	svc := chat.New(cfg)
	events := Events(svc, NewAnalytics(), &Pins{}, Options{Logger: logger})
	srv := chatmux.NewServer(events, chatmux.ServerOptions{Authenticate: devauth.Authenticator(st), Logger: logger})
	// Presence (docs/protocol.md#presence): the service publishes through
	// the server, and sweeps until ctx ends.
	svc.Attach(srv)
	go svc.RunPresence(ctx)

	r := chi.NewRouter()
	r.Handle(wsPath, srv)
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("failed to listen on %s (choose another address with -addr): %w", addr, err)
	}
	hs := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	logger.Info("custom chat server listening", "url", "ws://"+ln.Addr().String()+wsPath+"?user=<username>")
	select {
	case err := <-errc:
		return fmt.Errorf("server failed: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("failed to shut down: %w", err)
	}
	return nil
}
