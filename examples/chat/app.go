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

	"github.com/go-chi/chi/v5"
	chimw "github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/chat"
	"github.com/chatmux/chatmux/groups"
	"github.com/chatmux/chatmux/internal/devauth"
	"github.com/chatmux/chatmux/middleware"
	"github.com/chatmux/chatmux/middleware/metrics"
	"github.com/chatmux/chatmux/store"
	"github.com/chatmux/chatmux/store/memory"
	"github.com/chatmux/chatmux/webhook"
)

// app is one assembled chat server: store, broker, chat service, event
// router, WebSocket server, node keeper and HTTP routes.
type app struct {
	cfg        config
	logger     *slog.Logger
	store      store.Store
	broker     groups.Broker
	svc        *chat.Service
	srv        *chatmux.Server
	keeper     *chat.NodeKeeper
	handler    http.Handler
	storeKind  string
	brokerKind string

	// stopKeeper ends the keeper's heartbeats and the presence loop;
	// keeperDone and presenceDone are closed when they have ended.
	stopKeeper   context.CancelFunc
	keeperDone   chan struct{}
	presenceDone chan struct{}

	// hooks sends the offline webhooks (nil when off); stopRelay ends the
	// outbox relay, relayDone is closed when it has ended.
	hooks     *webhook.Dispatcher
	stopRelay context.CancelFunc
	relayDone chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// newApp opens the store and the broker named by cfg and assembles the
// server. Close releases them.
func newApp(ctx context.Context, cfg config, logger *slog.Logger) (*app, error) {
	st, storeKind, err := openStore(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	b, brokerKind, err := openBroker(ctx, cfg.RedisURL, cfg.RedisPrefix, logger)
	if err != nil {
		_ = closeStore(st)
		return nil, err
	}
	return assemble(cfg, logger, st, storeKind, b, brokerKind), nil
}

// assemble builds the server on an open store and broker, and starts the
// node's heartbeat and, when cfg turns them on, the offline webhooks.
// Close stops them and closes st and b.
func assemble(cfg config, logger *slog.Logger, st store.Store, storeKind string, b groups.Broker, brokerKind string) *app {
	hooks, err := newWebhooks(cfg, st, logger)
	if err != nil {
		// parseConfig refuses what webhook.New refuses (config.checkWebhooks).
		panic("chat: " + err.Error())
	}
	a := &app{cfg: cfg, logger: logger, store: st, broker: b, storeKind: storeKind, brokerKind: brokerKind, hooks: hooks}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg)
	if h, ok := b.(interface{ Hub() *groups.Hub }); ok {
		h.Hub().OnDeliver = m.Delivered
	}

	events := chatmux.NewRouter()
	events.Use(
		middleware.RecovererWith(logger),
		m.Middleware,
		middleware.RequestID,
		middleware.Logger(logger),
	)
	a.svc = registerChat(events, chatSettings{
		Store:        st,
		Logger:       logger,
		SendLimit:    cfg.SendLimit,
		StoreTimeout: cfg.StoreTimeout,
		Webhooks:     hooks,

		InactivityThreshold: cfg.InactivityThreshold,
		PresenceGrace:       cfg.PresenceGrace,
		PresenceInterval:    cfg.PresenceInterval,
	})

	// The authenticators use the service's store, whose every call is
	// bounded by StoreTimeout even when a database connection hangs: an
	// unavailable store closes the connection with 1013, never 4001.
	var auth chatmux.Authenticator
	if cfg.devMode() {
		auth = devauth.Authenticator(a.svc.Store())
	} else {
		auth = jwtAuth(cfg.JWTSecret, a.svc.Store())
	}
	a.srv = chatmux.NewServer(events, chatmux.ServerOptions{
		Authenticate:    auth,
		Broker:          b,
		OriginPatterns:  cfg.Origins,
		ConnectTimeout:  cfg.ConnectTimeout,
		MaxConnsPerUser: cfg.MaxConnsPerUser,
		MaxConnsPerAddr: cfg.MaxConnsPerAddr,
		Logger:          logger,
		Observer:        m, // a chatmux.StaleObserver too: chatmux_stale_dropped_total
	})
	registerServiceMetrics(reg, a.svc, a.srv)
	if hooks != nil {
		reg.MustRegister(newWebhookCollector(hooks))
	}
	// The Go API (and the server API on it) publishes through the server.
	a.svc.Attach(a.srv)

	// The node's heartbeat, and the sweep that deletes the sessions of
	// nodes that died: every node runs one. Its store calls are bounded
	// by StoreTimeout too (Leave at shutdown included).
	a.keeper = chat.NewNodeKeeper(a.svc.Store(), a.svc.NodeID(), chat.NodeKeeperOptions{
		Interval: cfg.NodeHeartbeat,
		Expiry:   cfg.NodeExpiry,
		Logger:   logger,
	})
	kctx, stop := context.WithCancel(context.Background())
	a.stopKeeper, a.keeperDone = stop, make(chan struct{})
	go func() {
		defer close(a.keeperDone)
		a.keeper.Run(kctx)
	}()
	a.startWebhooks()
	// Presence (docs/protocol.md#presence): every node flushes the
	// activity of its connections and sweeps for users going online or
	// offline, announcing each change it flipped.
	a.presenceDone = make(chan struct{})
	go func() {
		defer close(a.presenceDone)
		a.svc.RunPresence(kctx)
	}()

	r := chi.NewRouter()
	r.Use(chimw.RequestID, chimw.Recoverer)
	r.Handle(wsPath, a.srv)
	r.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	r.Get("/healthz", a.healthz)
	r.Get("/config.json", a.pageConfig)
	r.Get("/me", a.whoami(auth))
	mountAPI(r, a.svc, cfg.APIKey, logger, reg)
	static, err := fs.Sub(webFS, "web")
	if err != nil {
		panic("chat: embedded web files missing: " + err.Error())
	}
	r.Handle("/*", pageHeaders(http.FileServerFS(static)))
	a.handler = r
	return a
}

// registerServiceMetrics exports what the chat service and the server
// count themselves:
//
//	chatmux_publish_failures_total   counter: dispatches and membership moves not published after their change was stored
//	chatmux_broker_available         gauge: 1 while the broker is in contact with the other nodes, else 0
func registerServiceMetrics(reg prometheus.Registerer, svc *chat.Service, srv *chatmux.Server) {
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "chatmux",
			Name:      "publish_failures_total",
			Help:      "Dispatches and membership moves that could not be published after their change was stored (each is logged; the sender was answered).",
		}, func() float64 { return float64(svc.PublishFailures()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "chatmux",
			Name:      "broker_available",
			Help:      "1 while the broker is in contact with the other nodes, 0 while connections are stale.",
		}, func() float64 {
			if srv.BrokerAvailable() {
				return 1
			}
			return 0
		}),
	)
}

// Handler returns the HTTP handler of every route.
func (a *app) Handler() http.Handler { return a.handler }

// NodeID returns the id of this node in the store (its sessions carry it).
func (a *app) NodeID() string { return a.svc.NodeID() }

// Close shuts the server down and releases what it holds, in order:
//
//  1. the WebSocket server drains (chatmux.Server.Shutdown): each
//     connection finishes the event it is handling, its answers are
//     written, and it is closed with 1001; $disconnect deletes its
//     session. When ctx ends first, the remaining connections are cut.
//  2. the offline webhooks stop: the relay ends, and the queued events
//     are sent until ctx ends (what is left stays in the PostgreSQL
//     outbox).
//  3. the node's heartbeat and presence loop stop and the node leaves the store
//     (NodeKeeper.Leave), deleting any session still open, also when ctx
//     has ended (the call is bounded by StoreTimeout).
//  4. the broker and the store are closed.
//
// Calling it again returns the first result.
func (a *app) Close(ctx context.Context) error {
	a.closeOnce.Do(func() {
		var errs []error
		if err := a.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("failed to drain the connections: %w", err))
		}
		if err := a.stopWebhooks(ctx); err != nil {
			errs = append(errs, fmt.Errorf("failed to send every queued webhook: %w", err))
		}
		a.stopKeeper()
		<-a.keeperDone
		<-a.presenceDone
		if n, err := a.keeper.Leave(context.WithoutCancel(ctx)); err != nil {
			errs = append(errs, fmt.Errorf("failed to leave the store: %w", err))
		} else if n > 0 {
			a.logger.Info("chat: deleted the sessions left open by this node", "node", a.NodeID(), "sessions", n)
		}
		if err := a.broker.Close(); err != nil {
			errs = append(errs, fmt.Errorf("failed to close the broker: %w", err))
		}
		if err := closeStore(a.store); err != nil {
			errs = append(errs, fmt.Errorf("failed to close the store: %w", err))
		}
		a.closeErr = errors.Join(errs...)
	})
	return a.closeErr
}

// openStore returns the in-memory store, or PostgreSQL with its pool
// bounded by cfg.DBMaxConns and its migrations applied when
// cfg.DatabaseURL is set.
func openStore(ctx context.Context, cfg config, logger *slog.Logger) (store.Store, string, error) {
	if cfg.DatabaseURL == "" {
		return memory.New(), "memory", nil
	}
	st, err := openPostgres(ctx, cfg.DatabaseURL, cfg.DBMaxConns)
	if err != nil {
		return nil, "", err
	}
	logger.Info("chat: PostgreSQL store ready (migrations applied)", "max_conns", st.DB().Stats().MaxOpenConnections)
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

// whoami answers the user that the request's credentials (?user= or
// ?token=, as on the WebSocket) stand for, 401 when they are wrong, or 503
// when they cannot be checked (the store is unavailable): the page learns
// its own user id this way before it connects. Like a WebSocket's,
// the check is bounded by ConnectTimeout.
func (a *app) whoami(auth chatmux.Authenticator) http.HandlerFunc {
	timeout := a.cfg.ConnectTimeout
	if timeout <= 0 {
		timeout = defaultConnectTimeout
	}
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		u, err := auth(r.WithContext(ctx))
		switch {
		case err != nil && (errors.Is(err, chatmux.ErrUnavailable) || ctx.Err() != nil):
			a.logger.Warn("chat: cannot check credentials: the store is unavailable", "remote", r.RemoteAddr, "err", err)
			http.Error(w, `{"error":"service temporarily unavailable"}`, http.StatusServiceUnavailable)
			return
		case err != nil || u == nil:
			a.logger.Info("chat: sign-in refused", "remote", r.RemoteAddr, "err", err)
			http.Error(w, `{"error":"authentication failed"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(store.User{ID: u.ID, Username: u.Username, Email: u.Email, FirstName: u.FirstName, LastName: u.LastName})
	}
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
