package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	chimw "github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/groups"
	"github.com/chatmux/chatmux/internal/devauth"
	"github.com/chatmux/chatmux/middleware"
	"github.com/chatmux/chatmux/middleware/metrics"
	"github.com/chatmux/chatmux/store"
	"github.com/chatmux/chatmux/store/memory"
)

// app is one assembled chat server: store, broker, event router, WebSocket
// server and HTTP routes.
type app struct {
	cfg        config
	logger     *slog.Logger
	store      store.Store
	broker     groups.Broker
	srv        *chatmux.Server
	handler    http.Handler
	storeKind  string
	brokerKind string

	closeOnce sync.Once
	closeErr  error
}

// newApp opens the store and the broker named by cfg and builds the HTTP
// handler. Close releases them.
func newApp(ctx context.Context, cfg config, logger *slog.Logger) (*app, error) {
	a := &app{cfg: cfg, logger: logger}
	var err error
	if a.store, a.storeKind, err = openStore(ctx, cfg.DatabaseURL, logger); err != nil {
		return nil, err
	}
	if a.broker, a.brokerKind, err = openBroker(ctx, cfg.RedisURL, cfg.RedisPrefix, logger); err != nil {
		closeStore(a.store)
		return nil, err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg)
	if h, ok := a.broker.(interface{ Hub() *groups.Hub }); ok {
		h.Hub().OnDeliver = m.Delivered
	}

	events := chatmux.NewRouter()
	events.Use(
		middleware.RecovererWith(logger),
		m.Middleware,
		middleware.RequestID,
		middleware.Logger(logger),
	)
	registerChat(events, a.store, logger, cfg.SendLimit)

	var auth chatmux.Authenticator
	if cfg.devMode() {
		auth = devauth.Authenticator(a.store)
	} else {
		auth = jwtAuth(cfg.JWTSecret, a.store)
	}
	a.srv = chatmux.NewServer(events, chatmux.ServerOptions{
		Authenticate:   auth,
		Broker:         a.broker,
		OriginPatterns: cfg.Origins,
		Logger:         logger,
		Observer:       m,
	})

	r := chi.NewRouter()
	r.Use(chimw.RequestID, chimw.Recoverer)
	r.Handle(wsPath, a.srv)
	r.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	r.Get("/healthz", a.healthz)
	r.Get("/config.json", a.pageConfig)
	r.Get("/me", a.whoami(auth))
	static, err := fs.Sub(webFS, "web")
	if err != nil {
		panic("chat: embedded web files missing: " + err.Error())
	}
	r.Handle("/*", pageHeaders(http.FileServerFS(static)))
	a.handler = r
	return a, nil
}

// Handler returns the HTTP handler of every route.
func (a *app) Handler() http.Handler { return a.handler }

// Close closes every WebSocket with 1001 and waits for their handlers (or
// for ctx), then closes the broker and the store. Calling it again returns
// the first result.
func (a *app) Close(ctx context.Context) error {
	a.closeOnce.Do(func() {
		var errs []error
		if a.srv != nil {
			if err := a.srv.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("failed to close connections: %w", err))
			}
		}
		if err := a.broker.Close(); err != nil {
			errs = append(errs, fmt.Errorf("failed to close broker: %w", err))
		}
		if err := closeStore(a.store); err != nil {
			errs = append(errs, fmt.Errorf("failed to close store: %w", err))
		}
		a.closeErr = errors.Join(errs...)
	})
	return a.closeErr
}

// openStore returns the in-memory store, or PostgreSQL with its migrations
// applied when url is set.
func openStore(ctx context.Context, url string, logger *slog.Logger) (store.Store, string, error) {
	if url == "" {
		return memory.New(), "memory", nil
	}
	st, err := openPostgres(ctx, url)
	if err != nil {
		return nil, "", err
	}
	logger.Info("chat: PostgreSQL store ready (migrations applied)")
	return st, "postgres", nil
}

func closeStore(st store.Store) error {
	if c, ok := st.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// openBroker returns the in-process broker, or the Redis one when url is
// set.
func openBroker(ctx context.Context, url, prefix string, logger *slog.Logger) (groups.Broker, string, error) {
	if url == "" {
		return groups.NewMemory(), "memory", nil
	}
	b, err := openRedis(ctx, url, prefix, logger)
	if err != nil {
		return nil, "", err
	}
	return b, "redis", nil
}

// health reports whether the store and the broker answer.
func (a *app) health(ctx context.Context) (storeErr, brokerErr error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); storeErr = pingStore(ctx, a.store) }()
	go func() { defer wg.Done(); brokerErr = pingBroker(ctx, a.broker) }()
	wg.Wait()
	return storeErr, brokerErr
}

// healthz answers {"store":"ok","broker":"ok"} with 200 when both answer,
// and 503 with "unavailable" for what does not.
func (a *app) healthz(w http.ResponseWriter, r *http.Request) {
	storeErr, brokerErr := a.health(r.Context())
	status := func(what string, err error) string {
		if err != nil {
			a.logger.Warn("chat: health check failed", "component", what, "err", err)
			return "unavailable"
		}
		return "ok"
	}
	body := map[string]string{"store": status("store", storeErr), "broker": status("broker", brokerErr)}
	code := http.StatusOK
	if storeErr != nil || brokerErr != nil {
		code = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

type pinger interface {
	Ping(ctx context.Context) error
}

// pingStore checks the store with its Ping method (PostgreSQL), else with
// a cheap query.
func pingStore(ctx context.Context, st store.Store) error {
	if p, ok := st.(pinger); ok {
		return p.Ping(ctx)
	}
	if p, ok := st.(interface{ PingContext(context.Context) error }); ok {
		return p.PingContext(ctx)
	}
	_, err := st.Users(ctx, []int64{1})
	return err
}

// pingBroker checks the broker with its Ping method (Redis), else by
// publishing a control message to a group that has no members: it reaches
// the broker's transport and nobody else.
func pingBroker(ctx context.Context, b groups.Broker) error {
	if p, ok := b.(pinger); ok {
		return p.Ping(ctx)
	}
	return b.Publish(ctx, "chatmux-healthz", &groups.Message{Kind: groups.KindLeave, Group: "chatmux-healthz"})
}

// pageConfig tells the web page how to sign in and where the WebSocket is.
func (a *app) pageConfig(w http.ResponseWriter, _ *http.Request) {
	auth := "jwt"
	if a.cfg.devMode() {
		auth = "dev"
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]string{"auth": auth, "path": wsPath})
}

// whoami answers the user that the request's credentials (?user= or
// ?token=, as on the WebSocket) stand for, or 401: the page learns its own
// user id this way before it connects.
func (a *app) whoami(auth chatmux.Authenticator) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		u, err := auth(r)
		if err != nil || u == nil {
			a.logger.Info("chat: sign-in refused", "remote", r.RemoteAddr, "err", err)
			http.Error(w, `{"error":"authentication failed"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(store.User{ID: u.ID, Username: u.Username, Email: u.Email, FirstName: u.FirstName, LastName: u.LastName})
	}
}

// pageCSP lets the page load its own script and style and open its
// WebSocket, and nothing else: an injected <script> would not run.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data: https:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// pageHeaders sets the page's security headers, and makes browsers
// revalidate its files so that a rebuilt binary's page is picked up on
// reload.
func pageHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Cache-Control", "no-cache")
		hd.Set("Content-Security-Policy", pageCSP)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}
