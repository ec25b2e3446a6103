package chat

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/microcosm-cc/bluemonday"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/store"
	"github.com/chatmux/chatmux/webhook"
)

// Config configures a Service. Start from DefaultConfig: its boolean
// settings default to true where the protocol's do, which the zero value
// of a bool cannot express. Zero numbers mean their default
// (docs/protocol.md#settings).
type Config struct {
	// Store persists everything. Required.
	Store store.Store
	// SoftDelete keeps deleted messages (is_deleted = true, hidden from
	// room.messages and from every message-id check) instead of deleting
	// them: the package's MESSAGE_SOFT_DELETE. DefaultConfig sets it to
	// false, the package's default (docs/protocol.md#diff-soft-delete).
	SoftDelete bool
	// Notifications creates notifications on send and reaction and pushes
	// chat.notifications on connect: the package's ENABLE_NOTIFICATION.
	// DefaultConfig sets it to true.
	Notifications bool
	// MaxGroupParticipants and MaxChannelSubscribers bound the caps
	// (max_participants, max_subscribers) a client may set when it creates
	// a room (docs/protocol.md#diff-modify-validation). Defaults 1,000 and
	// 10,000.
	MaxGroupParticipants  int
	MaxChannelSubscribers int
	// MaxPageSize caps the size of a room.messages page and the limit of
	// an after_seq/before_seq query (default 100).
	MaxPageSize int
	// MaxMessageLength is the longest message content accepted, in
	// characters (default 5,000).
	MaxMessageLength int
	// ExtraMessageFields lists the extra_fields keys, besides
	// parent_message_id, forwarded_from_id and media, that message.send and
	// message.modify update accept. Their values are stored in the
	// message's Extra and shown as top-level fields of the Message object.
	ExtraMessageFields []string
	// StoreTimeout bounds every store call of a handler, $connect and
	// $disconnect included: a call that has not returned by then is
	// answered 4013 "Service temporarily unavailable, try again." (the
	// connection stays open; at $connect the server closes with 1013),
	// as is a store that cannot be reached (docs/protocol.md#faults).
	// Default 5 s; negative: no bound.
	StoreTimeout time.Duration
	// NodeID names this node (this process) in the store: every session
	// it opens carries it, and a NodeKeeper with the same id keeps the
	// node's heartbeat, so that the sessions of a node that died are
	// expired by the others (default: a random UUID per Service). It
	// must be unique among the nodes that share a store, new for every
	// run of the process (a restarted process that took the id of a
	// killed one would keep that one's sessions alive with its own
	// heartbeat), and at most store.MaxNodeIDLen characters.
	NodeID string
	// InactivityThreshold is how long a session stays live after its
	// connection was last seen (connect, heartbeat or any other event): a
	// user is online while at least one of their sessions is live
	// (docs/protocol.md#presence). Default 60 s (zero or negative: the
	// default); keep it above the clients' heartbeat interval.
	InactivityThreshold time.Duration
	// PresenceGrace is how long a user stays announced online after their
	// last session closed or went idle, so that a page reload announces
	// nothing (default 5 s; zero or negative: the default).
	PresenceGrace time.Duration
	// PresenceInterval is how often RunPresence flushes the activity of
	// this node's connections and sweeps for presence changes (default
	// 2 s; zero or negative: the default).
	PresenceInterval time.Duration
	// Webhooks, when set, sends an offline webhook for every stored
	// message with members other than the sender who have no live
	// session (docs/protocol.md#offline-webhooks). When the dispatcher
	// has an outbox (webhook.Config.Outbox: the PostgreSQL store), the
	// event is written to it in the send's transaction. The host starts
	// and shuts down the dispatcher, and runs WebhookRelay on every node.
	Webhooks *webhook.Dispatcher
	// Logger receives what the service does not report to a client: a
	// dispatch that could not be published, or a membership change that
	// could not reach every connection, after the change was stored
	// (default slog.Default()).
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultMaxGroupParticipants  = 1000
	DefaultMaxChannelSubscribers = 10000
	DefaultMaxPageSize           = 100
	DefaultMaxMessageLength      = 5000
)

// DefaultConfig returns the protocol's defaults: hard delete, notifications
// on, and the default limits. Set Store before calling New.
func DefaultConfig() Config {
	return Config{
		StoreTimeout:          DefaultStoreTimeout,
		SoftDelete:            false,
		Notifications:         true,
		MaxGroupParticipants:  DefaultMaxGroupParticipants,
		MaxChannelSubscribers: DefaultMaxChannelSubscribers,
		MaxPageSize:           DefaultMaxPageSize,
		MaxMessageLength:      DefaultMaxMessageLength,
	}
}

// Service is the chat domain: the handlers of the 16 events and of
// $connect/$disconnect, the permission checks and the wire encoding. Create
// it with New; it is safe for concurrent use.
type Service struct {
	cfg    Config
	st     store.Store
	log    *slog.Logger
	policy *bluemonday.Policy
	extra  map[string]bool

	publishFailures atomic.Uint64
	// activity holds the sessions active since the last presence flush.
	activity activity
	// srv is the server the Go API publishes through (Attach).
	srv atomic.Pointer[chatmux.Server]
}

// New returns a Service. It panics when cfg.Store is nil (a start-up
// mistake). Zero limits take their defaults; the booleans are used as
// given (see DefaultConfig).
func New(cfg Config) *Service {
	if cfg.Store == nil {
		panic("chat: Config.Store is required")
	}
	if cfg.MaxGroupParticipants <= 0 {
		cfg.MaxGroupParticipants = DefaultMaxGroupParticipants
	}
	if cfg.MaxChannelSubscribers <= 0 {
		cfg.MaxChannelSubscribers = DefaultMaxChannelSubscribers
	}
	if cfg.MaxPageSize <= 0 {
		cfg.MaxPageSize = DefaultMaxPageSize
	}
	if cfg.MaxMessageLength <= 0 {
		cfg.MaxMessageLength = DefaultMaxMessageLength
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.NodeID == "" {
		cfg.NodeID = uuid.NewString()
	}
	if cfg.InactivityThreshold <= 0 {
		cfg.InactivityThreshold = DefaultInactivityThreshold
	}
	if cfg.PresenceGrace <= 0 {
		cfg.PresenceGrace = DefaultPresenceGrace
	}
	if cfg.PresenceInterval <= 0 {
		cfg.PresenceInterval = DefaultPresenceInterval
	}
	if cfg.StoreTimeout == 0 {
		cfg.StoreTimeout = DefaultStoreTimeout
	}
	s := &Service{cfg: cfg, st: &boundedStore{st: cfg.Store, d: cfg.StoreTimeout}, log: cfg.Logger, policy: newPolicy(), extra: map[string]bool{}}
	for _, k := range cfg.ExtraMessageFields {
		if reservedMessageKeys[k] {
			panic("chat: ExtraMessageFields may not name the built-in field " + k)
		}
		s.extra[k] = true
	}
	return s
}

// Config returns the service's configuration, defaults applied.
func (s *Service) Config() Config { return s.cfg }

// Store returns the service's store with every call bounded by
// Config.StoreTimeout, as the handlers use it: custom events that use it
// get the same deadlines (and StoreError turns a timeout into 4013).
func (s *Service) Store() store.Store { return s.st }

// PublishFailures returns how many dispatches and membership moves could
// not be published after their change was stored, since New (each is also
// logged to Config.Logger). A host exports it as a metric.
func (s *Service) PublishFailures() uint64 { return s.publishFailures.Load() }

// NodeID returns the id of this node's sessions (Config.NodeID).
func (s *Service) NodeID() string { return s.cfg.NodeID }
