package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/chatmux/chatmux/chat"
	"github.com/chatmux/chatmux/internal/devauth"
	"github.com/chatmux/chatmux/webhook"
)

// config is everything the server is started with: flags and environment.
// The zero value of a number or a duration means its default (the flag's
// default where the flag has one, else the package's), so that tests can
// build a config by hand.
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
	// APIKey turns the server API (/api/v1) on: a backend calls it with
	// "Authorization: Bearer <APIKey>" (env CHATMUX_API_KEY, flag
	// -api-key). Empty: every /api/v1 route answers 404.
	APIKey string
	// InsecureDevAuth lets development mode listen on a non-loopback
	// address (flag -insecure-dev-auth).
	InsecureDevAuth bool
	// Origins lists extra origins allowed to open WebSockets (flag
	// -origins, comma-separated host patterns); same-origin always works.
	Origins []string
	// LogFormat is "json" or "text"; LogLevel a slog level name.
	LogFormat string
	LogLevel  string
	// ShutdownTimeout bounds the draining shutdown on SIGTERM or SIGINT
	// (flag -shutdown-timeout, env CHATMUX_SHUTDOWN_TIMEOUT, default
	// 10s).
	ShutdownTimeout time.Duration
	// SendLimit bounds each user's message.send events, over all the
	// user's connections (flag -send-limit, env CHATMUX_SEND_LIMIT,
	// default 100/20s); past it a send is answered 4029. The zero value
	// sets no limit.
	SendLimit rateSpec
	// DBMaxConns bounds the PostgreSQL pool (flag -db-max-conns, env
	// CHATMUX_DB_MAX_CONNS, default 16): postgres.Options.MaxOpenConns.
	DBMaxConns int
	// StoreTimeout bounds every store call of a handler (flag
	// -store-timeout, env CHATMUX_STORE_TIMEOUT, default 5s): past it the
	// event is answered 4013 (chat.Config.StoreTimeout).
	StoreTimeout time.Duration
	// ConnectTimeout bounds the authentication and $connect of a new
	// connection (flag -connect-timeout, env CHATMUX_CONNECT_TIMEOUT,
	// default 5s): past it the connection is closed with 1013
	// (chatmux.ServerOptions.ConnectTimeout).
	ConnectTimeout time.Duration
	// MaxConnsPerUser bounds the open connections of one user on this
	// node (flag -max-conns-per-user, env CHATMUX_MAX_CONNS_PER_USER,
	// default 32; 0 is no limit); one more is closed with 1013.
	MaxConnsPerUser int
	// MaxConnsPerAddr bounds the open connections from one IP address
	// (flag -max-conns-per-addr, env CHATMUX_MAX_CONNS_PER_ADDR, default
	// 0: no limit); one more is closed with 1013.
	MaxConnsPerAddr int
	// NodeHeartbeat is the interval of the node's heartbeat in the store
	// and of its sweeps for dead nodes (flag -node-heartbeat, env
	// CHATMUX_NODE_HEARTBEAT, default 5s).
	NodeHeartbeat time.Duration
	// NodeExpiry is how long a node may miss its heartbeat before the
	// others delete its sessions (flag -node-expiry, env
	// CHATMUX_NODE_EXPIRY, default 15s): a dead node's sessions are gone
	// within NodeExpiry + NodeHeartbeat.
	NodeExpiry time.Duration
	// WebhookURL turns offline webhooks on (env CHATMUX_WEBHOOK_URL): an
	// absolute http or https URL that receives the signed POSTs
	// (docs/protocol.md#offline-webhooks). Set with WebhookSecret or not
	// at all.
	WebhookURL string
	// WebhookSecret signs the webhooks (env CHATMUX_WEBHOOK_SECRET, at
	// least webhook.MinSecretLen characters).
	WebhookSecret []byte
	// WebhookTimeout bounds each webhook request (flag -webhook-timeout,
	// env CHATMUX_WEBHOOK_TIMEOUT, default 10s).
	WebhookTimeout time.Duration
	// WebhookLease is how long an outbox row belongs to the node that
	// wrote or claimed it (flag -webhook-lease, env CHATMUX_WEBHOOK_LEASE,
	// default 30s; more than WebhookTimeout): with PostgreSQL, the events
	// of a node that crashed are sent by another within it.
	WebhookLease time.Duration
	// InactivityThreshold is how long a session stays live after its
	// connection was last seen (flag -inactivity-threshold, env
	// CHATMUX_INACTIVITY_THRESHOLD, default 60s):
	// chat.Config.InactivityThreshold.
	InactivityThreshold time.Duration
	// PresenceGrace is how long a user stays online after their last
	// session closed or went idle (flag -presence-grace, env
	// CHATMUX_PRESENCE_GRACE, default 5s): chat.Config.PresenceGrace.
	PresenceGrace time.Duration
	// PresenceInterval is how often the node flushes activity and sweeps
	// for presence changes (flag -presence-interval, env
	// CHATMUX_PRESENCE_INTERVAL, default 2s): chat.Config.PresenceInterval.
	PresenceInterval time.Duration
}

// webhooks reports whether offline webhooks are on.
func (c config) webhooks() bool { return c.WebhookURL != "" }

// Defaults of the settings that have a flag.
const (
	defaultAddr            = "127.0.0.1:8080"
	defaultShutdownTimeout = 10 * time.Second
	defaultDBMaxConns      = 16
	defaultStoreTimeout    = 5 * time.Second
	defaultConnectTimeout  = 5 * time.Second
	defaultMaxConnsPerUser = 32
	defaultNodeHeartbeat   = 5 * time.Second
	defaultNodeExpiry      = 15 * time.Second
	defaultWebhookTimeout  = webhook.DefaultTimeout
	defaultWebhookLease    = webhook.DefaultLease
	// The presence settings default to the chat package's.
	defaultInactivityThreshold = chat.DefaultInactivityThreshold
	defaultPresenceGrace       = chat.DefaultPresenceGrace
	defaultPresenceInterval    = chat.DefaultPresenceInterval
)

// minAPIKeyLen is the shortest API key accepted: a key is a secret, not a
// password to remember.
const minAPIKeyLen = 16

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

// envFlags maps each flag that an environment variable can set to that
// variable: the variable sets the flag's value, a flag on the command line
// wins.
var envFlags = []struct{ flag, env string }{
	{"addr", "CHATMUX_ADDR"},
	{"send-limit", "CHATMUX_SEND_LIMIT"},
	{"shutdown-timeout", "CHATMUX_SHUTDOWN_TIMEOUT"},
	{"db-max-conns", "CHATMUX_DB_MAX_CONNS"},
	{"store-timeout", "CHATMUX_STORE_TIMEOUT"},
	{"connect-timeout", "CHATMUX_CONNECT_TIMEOUT"},
	{"max-conns-per-user", "CHATMUX_MAX_CONNS_PER_USER"},
	{"max-conns-per-addr", "CHATMUX_MAX_CONNS_PER_ADDR"},
	{"node-heartbeat", "CHATMUX_NODE_HEARTBEAT"},
	{"node-expiry", "CHATMUX_NODE_EXPIRY"},
	{"api-key", "CHATMUX_API_KEY"},
	{"webhook-timeout", "CHATMUX_WEBHOOK_TIMEOUT"},
	{"webhook-lease", "CHATMUX_WEBHOOK_LEASE"},
	{"inactivity-threshold", "CHATMUX_INACTIVITY_THRESHOLD"},
	{"presence-grace", "CHATMUX_PRESENCE_GRACE"},
	{"presence-interval", "CHATMUX_PRESENCE_INTERVAL"},
}

const usage = `Usage: chat [flags]

A complete chatmux chat server with a web page at / and the WebSocket
endpoint at /messaging/.

Environment (a flag given on the command line wins):
  CHATMUX_ADDR                 -addr (default 127.0.0.1:8080)
  CHATMUX_SEND_LIMIT           -send-limit (default 100/20s)
  CHATMUX_SHUTDOWN_TIMEOUT     -shutdown-timeout (default 10s)
  CHATMUX_DB_MAX_CONNS         -db-max-conns (default 16)
  CHATMUX_STORE_TIMEOUT        -store-timeout (default 5s)
  CHATMUX_CONNECT_TIMEOUT      -connect-timeout (default 5s)
  CHATMUX_MAX_CONNS_PER_USER   -max-conns-per-user (default 32)
  CHATMUX_MAX_CONNS_PER_ADDR   -max-conns-per-addr (default 0: no limit)
  CHATMUX_NODE_HEARTBEAT       -node-heartbeat (default 5s)
  CHATMUX_NODE_EXPIRY          -node-expiry (default 15s)
  CHATMUX_INACTIVITY_THRESHOLD -inactivity-threshold (default 1m0s)
  CHATMUX_PRESENCE_GRACE       -presence-grace (default 5s)
  CHATMUX_PRESENCE_INTERVAL    -presence-interval (default 2s)
  CHATMUX_API_KEY              -api-key: the bearer key of the server API at /api/v1;
                               without it the API is off (prefer the variable: a flag
                               shows in the process list)
  CHATMUX_WEBHOOK_TIMEOUT      -webhook-timeout (default 10s)
  CHATMUX_WEBHOOK_LEASE        -webhook-lease (default 30s)
  CHATMUX_WEBHOOK_URL    receiver of the offline webhooks; without it they are off
  CHATMUX_WEBHOOK_SECRET the webhooks' HMAC-SHA256 secret (16+ characters; with the URL)
  CHATMUX_JWT_SECRET  HS256 secret; without it users sign in by name (development mode)
  DATABASE_URL        PostgreSQL URL; without it data lives in memory
  REDIS_URL           Redis URL for fan-out across nodes; without it, in-process

Flags:
`

// parseConfig reads flags over environment defaults.
func parseConfig(args []string, getenv func(string) string, out io.Writer) (config, error) {
	cfg := config{
		DatabaseURL: getenv("DATABASE_URL"),
		RedisURL:    getenv("REDIS_URL"),
		JWTSecret:   []byte(getenv("CHATMUX_JWT_SECRET")),
		SendLimit:   defaultSendLimit,
		WebhookURL:  getenv("CHATMUX_WEBHOOK_URL"),
	}
	if v := getenv("CHATMUX_WEBHOOK_SECRET"); v != "" {
		cfg.WebhookSecret = []byte(v)
	}
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprint(out, usage)
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.Addr, "addr", defaultAddr, "listen `address`")
	fs.BoolVar(&cfg.InsecureDevAuth, "insecure-dev-auth", false,
		"allow development-mode sign-in (no password) on a non-loopback address")
	fs.StringVar(&cfg.RedisPrefix, "redis-prefix", "chatmux:", "prefix of the Redis channel names (with REDIS_URL)")
	origins := fs.String("origins", "", "comma-separated extra origin host `patterns` allowed to connect")
	fs.StringVar(&cfg.LogFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", defaultShutdownTimeout,
		"on SIGTERM or SIGINT, how long the answers to the events in flight may take to reach their sockets before every connection is cut")
	fs.Var(&cfg.SendLimit, "send-limit", "message.send `rate` per user, over all their connections, as events/period "+
		"(100/20s: 100 at once, then one every 200ms), or off; past it a send is answered 4029")
	fs.IntVar(&cfg.DBMaxConns, "db-max-conns", defaultDBMaxConns, "the most connections to PostgreSQL this node holds at once (with DATABASE_URL)")
	fs.DurationVar(&cfg.StoreTimeout, "store-timeout", defaultStoreTimeout,
		"bound of every store call of an event; past it the event is answered 4013 (try again)")
	fs.DurationVar(&cfg.ConnectTimeout, "connect-timeout", defaultConnectTimeout,
		"bound of the sign-in and set-up of a new connection; past it the connection is closed with 1013 (try again later)")
	fs.IntVar(&cfg.MaxConnsPerUser, "max-conns-per-user", defaultMaxConnsPerUser,
		"open connections of one user on this node (0: no limit); one more is closed with 1013")
	fs.StringVar(&cfg.APIKey, "api-key", "", "bearer `key` of the server API at /api/v1 (at least "+
		strconv.Itoa(minAPIKeyLen)+" characters); without it the API is off. Prefer CHATMUX_API_KEY: a flag shows in the process list")
	fs.IntVar(&cfg.MaxConnsPerAddr, "max-conns-per-addr", 0,
		"open connections from one IP address (0: no limit); one more is closed with 1013")
	fs.DurationVar(&cfg.NodeHeartbeat, "node-heartbeat", defaultNodeHeartbeat,
		"interval of this node's heartbeat in the store, and of its sweeps for dead nodes")
	fs.DurationVar(&cfg.NodeExpiry, "node-expiry", defaultNodeExpiry,
		"how long a node may miss its heartbeat before the other nodes delete its sessions")
	fs.DurationVar(&cfg.WebhookTimeout, "webhook-timeout", defaultWebhookTimeout,
		"bound of each offline webhook request (with CHATMUX_WEBHOOK_URL); past it the request has failed and is retried")
	fs.DurationVar(&cfg.WebhookLease, "webhook-lease", defaultWebhookLease,
		"how long a webhook outbox row belongs to the node that wrote or claimed it (PostgreSQL): "+
			"the events of a crashed node are sent by another after it")
	fs.DurationVar(&cfg.InactivityThreshold, "inactivity-threshold", defaultInactivityThreshold,
		"how long a connection stays online after its last heartbeat or event (keep it above the clients' heartbeat interval)")
	fs.DurationVar(&cfg.PresenceGrace, "presence-grace", defaultPresenceGrace,
		"how long a user stays online after their last connection closed, so that a page reload announces nothing")
	fs.DurationVar(&cfg.PresenceInterval, "presence-interval", defaultPresenceInterval,
		"how often this node records the activity of its connections and sweeps for users going online or offline")
	for _, ef := range envFlags {
		if v := getenv(ef.env); v != "" {
			if err := fs.Set(ef.flag, v); err != nil {
				return cfg, fmt.Errorf("%s: %w", ef.env, err)
			}
		}
	}
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
	if err := cfg.check(); err != nil {
		return cfg, err
	}
	if cfg.devMode() && !cfg.InsecureDevAuth {
		if err := devauth.CheckAddr(cfg.Addr, "set CHATMUX_JWT_SECRET, listen on 127.0.0.1, or pass -insecure-dev-auth"); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// check refuses settings out of range.
func (c config) check() error {
	var errs []error
	positive := func(name string, d time.Duration) {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("-%s must be a positive duration, not %v", name, d))
		}
	}
	positive("shutdown-timeout", c.ShutdownTimeout)
	positive("store-timeout", c.StoreTimeout)
	positive("connect-timeout", c.ConnectTimeout)
	positive("node-heartbeat", c.NodeHeartbeat)
	positive("node-expiry", c.NodeExpiry)
	positive("inactivity-threshold", c.InactivityThreshold)
	positive("presence-grace", c.PresenceGrace)
	positive("presence-interval", c.PresenceInterval)
	if c.NodeHeartbeat > 0 && c.NodeExpiry < 2*c.NodeHeartbeat {
		errs = append(errs, fmt.Errorf("-node-expiry (%v) must be at least twice -node-heartbeat (%v)", c.NodeExpiry, c.NodeHeartbeat))
	}
	if c.DBMaxConns < 1 {
		errs = append(errs, fmt.Errorf("-db-max-conns must be at least 1, not %d", c.DBMaxConns))
	}
	if c.MaxConnsPerUser < 0 {
		errs = append(errs, fmt.Errorf("-max-conns-per-user must be 0 (no limit) or more, not %d", c.MaxConnsPerUser))
	}
	if c.APIKey != "" && len(c.APIKey) < minAPIKeyLen {
		errs = append(errs, fmt.Errorf("the API key (CHATMUX_API_KEY or -api-key) must be at least %d characters, not %d: "+
			"generate one with: openssl rand -hex 32", minAPIKeyLen, len(c.APIKey)))
	}
	if c.MaxConnsPerAddr < 0 {
		errs = append(errs, fmt.Errorf("-max-conns-per-addr must be 0 (no limit) or more, not %d", c.MaxConnsPerAddr))
	}
	errs = append(errs, c.checkWebhooks()...)
	return errors.Join(errs...)
}

// checkWebhooks refuses half a webhook configuration: a URL without a
// secret or a secret without a URL, a URL that is not absolute http(s),
// a short secret, and a lease not longer than the timeout.
func (c config) checkWebhooks() []error {
	var errs []error
	switch {
	case c.WebhookURL == "" && len(c.WebhookSecret) == 0:
		return nil
	case c.WebhookURL == "":
		return []error{errors.New("CHATMUX_WEBHOOK_SECRET is set without CHATMUX_WEBHOOK_URL: set both to turn offline webhooks on, or neither")}
	case len(c.WebhookSecret) == 0:
		return []error{errors.New("CHATMUX_WEBHOOK_URL is set without CHATMUX_WEBHOOK_SECRET: the webhooks are signed with it " +
			"(generate one with: openssl rand -hex 32)")}
	}
	if u, err := url.Parse(c.WebhookURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("CHATMUX_WEBHOOK_URL must be an absolute http or https URL, not %q", c.WebhookURL))
	}
	if len(c.WebhookSecret) < webhook.MinSecretLen {
		errs = append(errs, fmt.Errorf("CHATMUX_WEBHOOK_SECRET must be at least %d characters, not %d: "+
			"generate one with: openssl rand -hex 32", webhook.MinSecretLen, len(c.WebhookSecret)))
	}
	timeout, lease := c.WebhookTimeout, c.WebhookLease
	if timeout == 0 {
		timeout = defaultWebhookTimeout
	}
	if lease == 0 {
		lease = defaultWebhookLease
	}
	if timeout < 0 || lease <= timeout {
		errs = append(errs, fmt.Errorf("-webhook-lease (%v) must be longer than -webhook-timeout (%v), both positive", lease, timeout))
	}
	return errs
}
