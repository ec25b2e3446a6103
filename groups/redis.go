package groups

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// The Redis broker lives in several files, one per concern:
//
//	redis.go               the public type, its options and its life cycle
//	redis_codec.go         what goes over the wire: channel names, the publication format
//	redis_subscribe.go     the subscription state machine (Join, Leave)
//	redis_session.go       the pub/sub connection: connecting, health check, reconnecting
//	redis_receive.go       reading the pub/sub connection and delivering to local members
//	redis_publish.go       the publish pipeline (Publish)
//	redis_ack.go           the acknowledgement of control messages between nodes
//	redis_availability.go  reporting the loss and the return of Redis (OnAvailability)

// RedisOptions configures a Redis broker. The zero value of each field means
// its default.
type RedisOptions struct {
	// Prefix starts the name of every Redis channel the broker uses, so that
	// several deployments can share one Redis (default "chatmux:"). A
	// group's channel is Prefix+"g:"+group; a node's own channel (for
	// acknowledgements) is Prefix+"n:"+node id.
	Prefix string
	// PublishTimeout bounds one PUBLISH, including the wait for a free
	// connection and retries (default 2s). Publish returns an error after
	// it, never hangs.
	PublishTimeout time.Duration
	// DownPublishTimeout bounds Publish instead of PublishTimeout while
	// the node knows that its pub/sub connection is lost (it has reported
	// false to OnAvailability, and not yet true), so that it fails fast
	// (default 200ms, at most PublishTimeout). See Publish.
	DownPublishTimeout time.Duration
	// JoinTimeout bounds how long Join waits for Redis to confirm the
	// node's subscription to the group's channel (default 2s). A Join that
	// times out is undone and returns an error.
	JoinTimeout time.Duration
	// ControlTimeout bounds how long Publish of a control message
	// (KindJoin, KindLeave, KindClose) waits for every node that received it to have applied it
	// (default 2s). When it runs out, Publish logs a warning and returns
	// nil: the message did reach Redis, only the confirmation is missing.
	ControlTimeout time.Duration
	// HealthCheckInterval is how often the node pings Redis over its
	// pub/sub connection (default 1s).
	HealthCheckInterval time.Duration
	// HealthCheckTimeout is how long the pub/sub connection may stay
	// silent (no message and no answer to a ping) before the node replaces
	// it and resubscribes every channel (default 3s).
	HealthCheckTimeout time.Duration
	// Logger receives the broker's logs (default slog.Default()).
	Logger *slog.Logger
	// ConnectInBackground makes NewRedis return at once instead of
	// waiting for Redis: a node can start while Redis is away. It then
	// reports false to OnAvailability when its first attempt to connect
	// fails (at once to a callback registered after that), and true when
	// it is connected; meanwhile Join returns without waiting and Publish
	// fails fast, as on any loss. While the first attempt is in flight,
	// Join waits for its confirmation as usual (at most JoinTimeout).
	ConnectInBackground bool
}

func (o RedisOptions) withDefaults() RedisOptions {
	if o.Prefix == "" {
		o.Prefix = "chatmux:"
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = 2 * time.Second
	}
	if o.DownPublishTimeout <= 0 {
		o.DownPublishTimeout = 200 * time.Millisecond
	}
	o.DownPublishTimeout = min(o.DownPublishTimeout, o.PublishTimeout)
	if o.JoinTimeout <= 0 {
		o.JoinTimeout = 2 * time.Second
	}
	if o.ControlTimeout <= 0 {
		o.ControlTimeout = 2 * time.Second
	}
	if o.HealthCheckInterval <= 0 {
		o.HealthCheckInterval = time.Second
	}
	if o.HealthCheckTimeout <= 0 {
		o.HealthCheckTimeout = 3 * o.HealthCheckInterval
	}
	if o.HealthCheckTimeout <= o.HealthCheckInterval {
		o.HealthCheckTimeout = o.HealthCheckInterval + o.HealthCheckInterval/2
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// ErrUnavailable is wrapped by the errors of a Redis broker that cannot
// reach Redis in time.
var ErrUnavailable = errors.New("groups: redis unavailable")

// Redis is a broker for several nodes that share one Redis: each node
// publishes to a group's Redis channel and delivers what it receives to its
// local members through its Hub.
//
// # Subscriptions
//
// A node is subscribed to a group's channel only while it has local members
// of the group (the Hub's first join and last leave). One goroutine owns
// the pub/sub connection: Join and Leave record what they want and wake it;
// it sends every pending change as one SUBSCRIBE and one UNSUBSCRIBE (of
// up to 1024 channels each), then a PING whose answer confirms them (Redis
// answers the commands of one connection in order). Join returns when the
// node's subscription to the group is confirmed, bounded by ctx and
// JoinTimeout: a message that any node publishes after Join returned
// reaches the member (unless the node's pub/sub connection fails in
// between). After a reconnect the new connection subscribes to every group
// with local members, confirmed the same way, before the node counts as up.
//
// # Delivery and order
//
// Publish delivers to the node's local members first, in the caller's
// goroutine as the in-process broker does, then publishes to Redis; a node
// ignores its own publications when Redis echoes them back (the wire header
// names the node). So local members are served exactly once, without a
// Redis round trip, and go on being served while Redis is down.
//
// The PUBLISHes of a node go through one goroutine that sends whatever is
// queued as one pipeline, one pipeline at a time, in queue order (concurrent
// publishers share round trips; Publish returns when Redis has answered).
// Redis executes them in that order and forwards a channel's messages to
// each subscriber in execution order; a remote node reads its one pub/sub
// connection in one goroutine and hands messages to its members in the
// order read. So publications that are ordered on the publishing node (one
// Publish returned before the next began, as the events of one connection
// are handled) arrive in that order at every member on every node.
// Concurrent publications from different goroutines or nodes have no order
// to keep: members on different nodes may see them interleaved differently
// (local members see the publishing node's order, remote ones Redis's).
//
// # Membership changes across nodes
//
// Publish of a control message (KindJoin, KindLeave, KindClose:
// Server.JoinUser/LeaveUser/CloseUser publish one to a user's group) waits
// until every node that received it has applied it (for KindClose: every
// local connection of the user has started its close handshake). PUBLISH answers with the number of subscribers that got
// the message; each of them, after delivering the message to its local
// members (a chatmux connection joins or leaves synchronously in Deliver,
// and Join waits for its subscription to be confirmed), sends an
// acknowledgement to the publisher's node channel. So when JoinUser returns
// nil, every device of the user on every node is a member of the group and
// its node is subscribed: a broadcast made right after reaches all of them.
// The wait is bounded by ControlTimeout; when a node does not answer in
// time (it died, or lost its pub/sub connection) Publish logs a warning and
// returns nil. Clients other than chatmux nodes that subscribe to a user's
// channel (a redis-cli SUBSCRIBE, or a PSUBSCRIBE on the prefix) are counted
// by PUBLISH too and never acknowledge: with them, every control message
// waits the whole ControlTimeout. The guarantee holds for members that apply
// control messages within Deliver, as chatmux connections do.
//
// Receiving never waits for a slow connection (members only queue data),
// but a node applies received control messages in line: a join that makes
// the node subscribe holds up its later deliveries for one round trip to
// Redis (at most JoinTimeout), which is what keeps them in order.
//
// # Failures
//
// Publish returns an error wrapping ErrUnavailable after at most
// PublishTimeout when Redis does not answer; local members have been served
// already (its doc says what the other nodes may have got). The pub/sub
// connection is pinged every HealthCheckInterval; when it stays silent for
// HealthCheckTimeout, or fails, it is closed and a new one subscribes to
// every group with local members (retrying with backoff, at most 500ms
// apart, until Redis answers). Messages that other nodes publish meanwhile
// are lost to this node: Redis pub/sub delivers at most once.
//
// The node says so: from the moment it knows that the connection is lost
// until the new one has confirmed every subscription, it is unavailable,
// and the callbacks registered with OnAvailability hear false, then true,
// so that a server can tell its connections what they may have missed.
// While it is unavailable, Join does not wait for a confirmation
// until a new connection is made (the subscription is confirmed before the
// node reports true), and Publish fails fast (see Publish).
//
// # Wire format
//
// One Redis message per publication: a byte holding the kind (low 4 bits)
// and an acknowledgement flag (0x10), the publishing node's id (8 bytes,
// big-endian), the node's publication sequence number (uvarint),
// Message.Group (uvarint length, then bytes; the target of a control
// message, empty for data), then Message.Data as is: a frame is encoded
// once, whatever the number of nodes and members.
type Redis struct {
	client    redis.UniversalClient
	ownClient bool // made by NewRedisURL: Close closes it
	opts      RedisOptions
	hub       *Hub
	log       *slog.Logger

	id          uint64 // this node's id, in the header of its publications
	groupPrefix string // what starts every group's channel
	nodeChan    string // this node's channel: acknowledgements for it

	pubSeq atomic.Uint64 // the node's last publication sequence number
	closed atomic.Bool
	done   chan struct{}  // closed by Close
	wg     sync.WaitGroup // the goroutines, and acknowledgements being sent

	// One part per concern, each with its own lock that guards that part
	// only. No code path holds two of them at once.
	subs  subscriptions // the pub/sub session and each group channel's state
	inbox inbox         // messages read from Redis, waiting for delivery
	pubq  publishQueue  // PUBLISHes waiting for the publisher goroutine
	acks  ackWaits      // control messages waiting for other nodes' acks
}

var _ Broker = (*Redis)(nil)

// NewRedis returns a broker over Redis pub/sub. It waits (at most
// PublishTimeout) for its pub/sub connection to be ready and returns an
// error wrapping ErrUnavailable when Redis does not answer, unless
// ConnectInBackground is set. The caller keeps ownership of client: Close
// does not close it.
func NewRedis(client redis.UniversalClient, opts RedisOptions) (*Redis, error) {
	if client == nil {
		return nil, errors.New("groups: NewRedis needs a client")
	}
	opts = opts.withDefaults()
	var idb [8]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return nil, fmt.Errorf("failed to make a node id: %w", err)
	}
	id := binary.BigEndian.Uint64(idb[:])
	r := &Redis{
		client:      client,
		opts:        opts,
		hub:         NewHub(),
		log:         opts.Logger,
		id:          id,
		groupPrefix: groupChannelPrefix(opts.Prefix),
		nodeChan:    nodeChannel(opts.Prefix, id),
		done:        make(chan struct{}),
		subs:        newSubscriptions(),
		inbox:       inbox{wake: make(chan struct{}, 1)},
		pubq:        publishQueue{wake: make(chan struct{}, 1)},
		acks:        ackWaits{bySeq: map[uint64]*ackWait{}},
	}
	r.wg.Add(4)
	go r.run()
	go r.dispatch()
	go r.publisher()
	go r.notifier()
	if opts.ConnectInBackground {
		return r, nil
	}
	if err := r.waitUp(opts.PublishTimeout); err != nil {
		_ = r.Close()
		return nil, err
	}
	return r, nil
}

// NewRedisURL parses a Redis URL (redis://[user:password@]host:port/db, see
// redis.ParseURL) and returns a broker over a client of its own, closed by
// Close.
func NewRedisURL(url string, opts RedisOptions) (*Redis, error) {
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("failed to parse redis url: %w", err)
	}
	client := redis.NewClient(o)
	r, err := NewRedis(client, opts)
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	r.ownClient = true
	return r, nil
}

// Hub returns the broker's local index (to set OnDeliver, or to inspect).
func (r *Redis) Hub() *Hub { return r.hub }

// Close implements Broker: it stops the node's subscriptions and waits for
// its goroutines. Local members stay in the Hub.
func (r *Redis) Close() error {
	if !r.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(r.done)
	r.wg.Wait()
	if r.ownClient {
		return r.client.Close()
	}
	return nil
}
