package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	_ "github.com/lib/pq" // the PostgreSQL driver for -database-url

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/chat"
	"github.com/chatmux/chatmux/groups"
	"github.com/chatmux/chatmux/internal/devauth"
	"github.com/chatmux/chatmux/store"
	"github.com/chatmux/chatmux/store/memory"
	"github.com/chatmux/chatmux/store/postgres"
)

// serveConfig says which server to run.
type serveConfig struct {
	Addr        string
	Bare        bool
	DatabaseURL string
	// Schema, when set with DatabaseURL, is created if missing and used
	// through search_path; DropSchema drops it when the server stops.
	Schema     string
	DropSchema bool
	CPUProfile string
	// MemProfile receives a heap profile each time the stats endpoint
	// is asked to collect garbage (connect does, with every connection
	// open).
	MemProfile string
	LogLevel   string
	// MaxQueueBytes is the per-connection outbound bound (0: default).
	MaxQueueBytes int
	// NoNotifications turns the chat domain's notifications off.
	NoNotifications bool
	// RedisURL, when set, fans out through the Redis broker instead of
	// the in-process one.
	RedisURL string
	// UnbatchedSends makes the PostgreSQL store write each send alone
	// (postgres.Options.UnbatchedSends) instead of in batches.
	UnbatchedSends bool
	// BatchWriters is postgres.Options.BatchWriters (0: the default).
	BatchWriters int
}

// benchServer is a chatmux server run by chatbench, in this process or in
// the serve subcommand's.
type benchServer struct {
	url     string
	srv     *chatmux.Server
	hs      *http.Server
	cleanup []func()
	// pg is the PostgreSQL store, nil on the memory store.
	pg *postgres.Store
}

// readStats is readStats with the server's connections and, on
// PostgreSQL, its batches of sends.
func (bs *benchServer) readStats() statsReply {
	st := readStats()
	st.Conns = bs.srv.Len()
	if bs.pg != nil {
		s := bs.pg.SendStats()
		st.SendBatches, st.BatchedSends = s.Batches, s.Sends
	}
	return st
}

// statsReply is what GET /chatbench/stats answers.
type statsReply struct {
	Goroutines int    `json:"goroutines"`
	Conns      int    `json:"conns"`
	RSS        int64  `json:"rss_bytes"`
	HeapInuse  uint64 `json:"heap_inuse_bytes"`
	StackInuse uint64 `json:"stack_inuse_bytes"`
	// SendBatches and BatchedSends count the PostgreSQL store's batches
	// of sends and the sends in them (zero on other stores or unbatched).
	SendBatches  int64 `json:"send_batches"`
	BatchedSends int64 `json:"batched_sends"`
}

func readStats() statsReply {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, _ := procRSS(os.Getpid())
	return statsReply{
		Goroutines: runtime.NumGoroutine(),
		RSS:        rss,
		HeapInuse:  ms.HeapInuse,
		StackInuse: ms.StackInuse,
	}
}

func freeMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelError
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// startServer starts a server on cfg.Addr in this process.
func startServer(ctx context.Context, cfg serveConfig) (*benchServer, error) {
	logger := newLogger(cfg.LogLevel)
	bs := &benchServer{}
	opts := chatmux.ServerOptions{
		InsecureSkipVerify: true,
		Logger:             logger,
		MaxQueueBytes:      cfg.MaxQueueBytes,
	}
	if cfg.RedisURL != "" {
		b, err := groups.NewRedisURL(cfg.RedisURL, groups.RedisOptions{Prefix: "chatbench:" + newRunID() + ":", Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("failed to start the Redis broker: %w", err)
		}
		bs.cleanup = append(bs.cleanup, func() { _ = b.Close() })
		opts.Broker = b
	}
	var router chatmux.Router
	var svc *chat.Service
	if cfg.Bare {
		router = bareRouter()
	} else {
		st, closeStore, err := openStore(ctx, cfg)
		if err != nil {
			return nil, err
		}
		bs.cleanup = append(bs.cleanup, closeStore)
		if pg, ok := st.(*postgres.Store); ok {
			bs.pg = pg
		}
		router, svc = chatRouter(st, !cfg.NoNotifications, logger)
		opts.Authenticate = devauth.Authenticator(st)
	}
	bs.srv = chatmux.NewServer(router, opts)
	if svc != nil {
		// Presence runs as in the example server (docs/protocol.md#presence).
		svc.Attach(bs.srv)
		pctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		go func() {
			defer close(done)
			svc.RunPresence(pctx)
		}()
		bs.cleanup = append(bs.cleanup, func() { stop(); <-done })
	}
	mux := http.NewServeMux()
	mux.Handle("/messaging/", bs.srv)
	mux.HandleFunc("/chatbench/stats", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("gc") != "" {
			freeMemory()
			if cfg.MemProfile != "" {
				if f, err := os.Create(cfg.MemProfile); err == nil {
					_ = pprof.WriteHeapProfile(f)
					_ = f.Close()
				}
			}
		}
		st := bs.readStats()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st)
	})
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		bs.close()
		return nil, fmt.Errorf("failed to listen: %w", err)
	}
	bs.url = "ws://" + ln.Addr().String() + "/messaging/"
	bs.hs = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	go func() { _ = bs.hs.Serve(ln) }()
	return bs, nil
}

// close stops the server: every connection is closed at once.
func (bs *benchServer) close() {
	if bs.hs != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = bs.hs.Shutdown(ctx)
		cancel()
	}
	if bs.srv != nil {
		_ = bs.srv.Close()
	}
	for i := len(bs.cleanup) - 1; i >= 0; i-- {
		bs.cleanup[i]()
	}
}

// openStore opens the memory store, or PostgreSQL when a database URL is
// set (in a schema of its own when cfg.Schema is set).
func openStore(ctx context.Context, cfg serveConfig) (store.Store, func(), error) {
	if cfg.DatabaseURL == "" {
		return memory.New(), func() {}, nil
	}
	dbURL := cfg.DatabaseURL
	var drop func()
	if cfg.Schema != "" {
		db, err := sql.Open("postgres", dbURL)
		if err != nil {
			return nil, nil, fmt.Errorf("failed to open database: %w", err)
		}
		if _, err := db.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS "`+cfg.Schema+`"`); err != nil {
			_ = db.Close()
			return nil, nil, fmt.Errorf("failed to create schema %s: %w", cfg.Schema, err)
		}
		drop = func() {
			if cfg.DropSchema {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, _ = db.ExecContext(ctx, `DROP SCHEMA "`+cfg.Schema+`" CASCADE`)
				cancel()
			}
			_ = db.Close()
		}
		dbURL = withSearchPath(dbURL, cfg.Schema)
	}
	// A pool of 32: the persist test's senders and readers share it.
	st, err := postgres.OpenOptions(ctx, dbURL, postgres.Options{MaxOpenConns: 32, UnbatchedSends: cfg.UnbatchedSends, BatchWriters: cfg.BatchWriters})
	if err != nil {
		if drop != nil {
			drop()
		}
		return nil, nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		_ = st.Close()
		if drop != nil {
			drop()
		}
		return nil, nil, err
	}
	return st, func() {
		_ = st.Close()
		if drop != nil {
			drop()
		}
	}, nil
}

// withSearchPath adds search_path to a lib/pq URL or key=value DSN, and
// application_name (the schema's name) so that the backends of this
// server can be found in pg_stat_activity; lib/pq sends unknown keys to
// the server as run-time parameters.
func withSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			q.Set("application_name", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema + " application_name=" + schema
}

// bareRouter is the framework alone: bench.join adds the connection to a
// group, bench.send broadcasts the content to it as message.dispatch.
func bareRouter() chatmux.Router {
	r := chatmux.NewRouter()
	r.HandleFunc("bench.join", func(c *chatmux.Context) error {
		var in struct {
			Group string `json:"group"`
		}
		if err := c.Bind(&in); err != nil {
			return err
		}
		if in.Group == "" {
			return chatmux.FieldError("group", "This field is required.")
		}
		if err := c.Join(in.Group); err != nil {
			return err
		}
		return c.Send("bench.joined", map[string]string{"group": in.Group})
	})
	r.HandleFunc("bench.send", func(c *chatmux.Context) error {
		var in struct {
			Group   string `json:"group"`
			Content string `json:"content"`
		}
		if err := c.Bind(&in); err != nil {
			return err
		}
		return c.Broadcast(in.Group, "message.dispatch", struct {
			Content string `json:"content"`
		}{in.Content})
	})
	return r
}

// runServe is the serve subcommand: it runs a server until SIGINT or
// SIGTERM and prints "listening <url>" on stdout once it accepts.
func runServe(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var cfg serveConfig
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "listen address")
	fs.BoolVar(&cfg.Bare, "bare", false, "serve the framework alone: bench.join and bench.send, no store")
	fs.StringVar(&cfg.DatabaseURL, "database-url", "", "PostgreSQL URL (default: the in-memory store)")
	fs.StringVar(&cfg.Schema, "schema", "", "with -database-url: create and use this schema")
	fs.BoolVar(&cfg.DropSchema, "drop-schema", false, "with -schema: drop the schema on exit")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of the server to this file")
	fs.StringVar(&cfg.MemProfile, "memprofile", "", "write a heap profile to this file whenever /chatbench/stats?gc=1 is fetched")
	fs.StringVar(&cfg.LogLevel, "log-level", "error", "server log level")
	fs.IntVar(&cfg.MaxQueueBytes, "max-queue-bytes", 0, "per-connection outbound queue bound (0: chatmux default)")
	fs.StringVar(&cfg.RedisURL, "redis-url", "", "fan out through the Redis broker at this URL (default: in-process)")
	fs.BoolVar(&cfg.NoNotifications, "no-notifications", false, "chat: create no notifications (ENABLE_NOTIFICATION off)")
	fs.BoolVar(&cfg.UnbatchedSends, "unbatched-sends", false, "with -database-url: write each send alone instead of in batches (group commit)")
	fs.IntVar(&cfg.BatchWriters, "batch-writers", 0, "with -database-url: batches of sends written at once (0: the store's default)")
	allowRemote := fs.Bool("allow-remote", false, "allow a listen address that is not loopback (development authentication: anyone can be anyone)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !*allowRemote {
		if err := devauth.CheckAddr(cfg.Addr, "use a loopback address or pass -allow-remote"); err != nil {
			return err
		}
	}
	raiseFileLimit()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopProfile, err := startCPUProfile(cfg.CPUProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	bs, err := startServer(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Printf("listening %s\n", bs.url)
	<-ctx.Done()
	bs.close()
	return nil
}

// childServer is a serve subcommand run by chatbench.
type childServer struct {
	url string
	cmd *exec.Cmd
}

// startChild runs "chatbench serve" in a child process and waits until it
// listens.
func startChild(cfg serveConfig) (*childServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("failed to find own executable: %w", err)
	}
	args := []string{"serve", "-addr", cfg.Addr, "-log-level", cfg.LogLevel}
	if cfg.Bare {
		args = append(args, "-bare")
	}
	if cfg.DatabaseURL != "" {
		args = append(args, "-database-url", cfg.DatabaseURL)
	}
	if cfg.Schema != "" {
		args = append(args, "-schema", cfg.Schema)
	}
	if cfg.DropSchema {
		args = append(args, "-drop-schema")
	}
	if cfg.CPUProfile != "" {
		args = append(args, "-cpuprofile", cfg.CPUProfile)
	}
	if cfg.MemProfile != "" {
		args = append(args, "-memprofile", cfg.MemProfile)
	}
	if cfg.MaxQueueBytes > 0 {
		args = append(args, "-max-queue-bytes", fmt.Sprint(cfg.MaxQueueBytes))
	}
	if cfg.NoNotifications {
		args = append(args, "-no-notifications")
	}
	if cfg.RedisURL != "" {
		args = append(args, "-redis-url", cfg.RedisURL)
	}
	if cfg.UnbatchedSends {
		args = append(args, "-unbatched-sends")
	}
	if cfg.BatchWriters > 0 {
		args = append(args, "-batch-writers", fmt.Sprint(cfg.BatchWriters))
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("failed to start server: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start server: %w", err)
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case line, ok := <-lines:
		if u, found := strings.CutPrefix(line, "listening "); ok && found {
			return &childServer{url: u, cmd: cmd}, nil
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("server did not start (said %q)", line)
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, errors.New("server did not start within 60s")
	}
}

func (c *childServer) pid() int { return c.cmd.Process.Pid }

// stop asks the server to stop and waits for it (it writes its profile on
// the way out).
func (c *childServer) stop() error {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(60 * time.Second):
		_ = c.cmd.Process.Kill()
		return <-done
	}
}

// fetchStats asks a chatbench server for its runtime statistics.
func fetchStats(wsURL string, gc bool) (statsReply, error) {
	var st statsReply
	u, err := url.Parse(wsURL)
	if err != nil {
		return st, err
	}
	u.Scheme = "http"
	u.Path = "/chatbench/stats"
	if gc {
		u.RawQuery = "gc=1"
	}
	resp, err := http.Get(u.String())
	if err != nil {
		return st, fmt.Errorf("failed to fetch server stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("failed to fetch server stats: %s", resp.Status)
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	return st, err
}
