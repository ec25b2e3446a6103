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
	"github.com/chatmux/chatmux/store"
	"github.com/chatmux/chatmux/store/memory"
)

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
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("bad address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("refusing to serve development authentication on %s", addr)
	}
	st := memory.New()
	cfg := chat.DefaultConfig()
	cfg.Store = st
	cfg.Logger = logger
	svc := chat.New(cfg)
	events := Events(svc, NewAnalytics(), &Pins{}, Options{Logger: logger})
	srv := chatmux.NewServer(events, chatmux.ServerOptions{Authenticate: devAuth(st), Logger: logger})

	r := chi.NewRouter()
	r.Handle("/messaging/", srv)
	hs := &http.Server{Addr: addr, Handler: r, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.ListenAndServe() }()
	logger.Info("custom chat server listening", "url", "ws://"+addr+"/messaging/?user=<username>")
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// devAuth authenticates ?user=<username>; the store assigns the id.
func devAuth(st store.Store) chatmux.Authenticator {
	return func(r *http.Request) (*chatmux.User, error) {
		name := r.URL.Query().Get("user")
		if name == "" || len(name) > 150 {
			return nil, errors.New("missing or over-long ?user=")
		}
		u, err := st.CreateUserByUsername(r.Context(), name)
		if err != nil {
			return nil, err
		}
		return &chatmux.User{ID: u.ID, Username: u.Username}, nil
	}
}
