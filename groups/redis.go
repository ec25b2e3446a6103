package groups

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

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
	// JoinTimeout bounds how long Join waits for Redis to confirm the
	// node's subscription to the group's channel (default 2s). A Join that
	// times out is undone and returns an error.
	JoinTimeout time.Duration
	// ControlTimeout bounds how long Publish of a KindJoin or KindLeave
	// message waits for every node that received it to have applied it
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
}

func (o RedisOptions) withDefaults() RedisOptions {
	if o.Prefix == "" {
		o.Prefix = "chatmux:"
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = 2 * time.Second
	}
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

const (
	// subscribeChunk is the most channels one SUBSCRIBE or UNSUBSCRIBE
	// names.
	subscribeChunk = 1024
	minBackoff     = 50 * time.Millisecond
	maxBackoff     = 2 * time.Second
)

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
// Publish of a KindJoin or KindLeave message (Server.JoinUser/LeaveUser
// publish one to a user's group) waits until every node that received it
// has applied it. PUBLISH answers with the number of subscribers that got
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
// already. The pub/sub connection is pinged every HealthCheckInterval; when
// it stays silent for HealthCheckTimeout, or fails, it is closed and a new
// one subscribes to every group with local members (retrying with backoff
// until Redis answers). While it is down, Join does not wait for a
// confirmation (the subscription is made when Redis is back), and
// messages that other nodes publish meanwhile are lost to this node: Redis
// pub/sub delivers at most once.
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
	ownClient bool
	opts      RedisOptions
	hub       *Hub
	log       *slog.Logger

	id          uint64
	groupPrefix string // Prefix + "g:"
	ackChan     string // this node's channel

	seq    atomic.Uint64 // publication sequence
	closed atomic.Bool
	done   chan struct{}
	wg     sync.WaitGroup
	wake   chan struct{}

	// subscribeCommands counts the SUBSCRIBE commands sent (for tests).
	subscribeCommands atomic.Int64

	// lastRead is the time (UnixNano) of the last item read from the
	// pub/sub connection.
	lastRead atomic.Int64

	mu      sync.Mutex
	subs    map[string]*subState // by group
	dirty   map[string]struct{}  // groups whose want differs from sent
	pending []barrier            // pings that confirm subscriptions
	changed chan struct{}        // closed and replaced when a state changes
	session uint64               // current pub/sub session
	upSeq   uint64               // the ping that brings the session up
	up      bool                 // the session has confirmed every subscription
	pingSeq uint64

	amu  sync.Mutex
	acks map[uint64]*ackWait

	qmu    sync.Mutex
	queue  []inbound
	qspare []inbound
	qwake  chan struct{}

	pmu    sync.Mutex
	pbusy  bool // a PUBLISH or pipeline is in flight
	pq     []*pubReq
	pspare []*pubReq
	pwake  chan struct{}
}

// pubReq is one PUBLISH waiting for the publisher goroutine.
type pubReq struct {
	channel string
	payload []byte
	ctx     context.Context
	n       int64
	err     error
	done    chan struct{} // closed when n and err are set
}

// maxPipeline is the most PUBLISHes sent in one pipeline.
const maxPipeline = 256

type subState struct {
	want      bool   // the node has local members
	sent      bool   // SUBSCRIBE written on the current session
	confirmed bool   // Redis has executed it
	barrier   uint64 // the ping whose answer confirms it
}

type barrier struct {
	seq    uint64
	groups []string
}

type ackWait struct {
	need int // -1 until PUBLISH answers
	got  int
	done chan struct{}
}

type inbound struct {
	group  string
	msg    *Message
	origin uint64
	seq    uint64
	ack    bool
}

var _ Broker = (*Redis)(nil)

// NewRedis returns a broker over Redis pub/sub. It waits (at most
// PublishTimeout) for its pub/sub connection to be ready and returns an
// error wrapping ErrUnavailable when Redis does not answer. The caller
// keeps ownership of client: Close does not close it.
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
		groupPrefix: opts.Prefix + "g:",
		ackChan:     opts.Prefix + "n:" + strconv.FormatUint(id, 16),
		done:        make(chan struct{}),
		wake:        make(chan struct{}, 1),
		subs:        map[string]*subState{},
		dirty:       map[string]struct{}{},
		changed:     make(chan struct{}),
		acks:        map[uint64]*ackWait{},
		qwake:       make(chan struct{}, 1),
		pwake:       make(chan struct{}, 1),
	}
	r.wg.Add(3)
	go r.run()
	go r.dispatch()
	go r.publisher()
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

// Join implements Broker. It returns when the node's subscription to the
// group's channel is confirmed by Redis, or at once while Redis is
// unreachable (the subscription is made when it comes back). When the
// confirmation does not come within JoinTimeout, or before ctx ends, the
// join is undone and the error returned.
func (r *Redis) Join(ctx context.Context, group string, m Member) error {
	if r.closed.Load() {
		return ErrClosed
	}
	first := r.hub.Join(group, m)
	r.mu.Lock()
	st := r.subs[group]
	if first || st == nil {
		st = r.updateLocked(group)
	}
	if st == nil || st.confirmed || !r.up {
		r.mu.Unlock()
		return nil
	}
	timer := time.NewTimer(r.opts.JoinTimeout)
	defer timer.Stop()
	err := ctx.Err()
	for err == nil {
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			err = ctx.Err()
		case <-timer.C:
			err = fmt.Errorf("no confirmation within %v: %w", r.opts.JoinTimeout, ErrUnavailable)
		case <-r.done:
			err = ErrClosed
		}
		r.mu.Lock()
		st = r.subs[group]
		if st == nil || st.confirmed || !r.up {
			// Confirmed, left meanwhile, or Redis went away (the
			// subscription is made again when it is back).
			r.mu.Unlock()
			return nil
		}
	}
	r.mu.Unlock()
	if r.hub.Leave(group, m) {
		r.mu.Lock()
		r.updateLocked(group)
		r.mu.Unlock()
	}
	return fmt.Errorf("failed to subscribe to %s: %w", group, err)
}

// Leave implements Broker. The node unsubscribes (in the background) when
// the group has no local member left.
func (r *Redis) Leave(_ context.Context, group string, m Member) error {
	if r.hub.Leave(group, m) {
		r.mu.Lock()
		r.updateLocked(group)
		r.mu.Unlock()
	}
	return nil
}

// updateLocked makes the wanted subscription state of a group match the
// hub (whether it has local members) and wakes the subscriber when it
// changes. Reading the hub under r.mu makes the last updater win, however
// joins and leaves interleave. r.mu is held.
func (r *Redis) updateLocked(group string) *subState {
	want := r.hub.Len(group) > 0
	st := r.subs[group]
	if st == nil {
		if !want {
			return nil
		}
		st = &subState{}
		r.subs[group] = st
	}
	if st.want != want {
		st.want = want
		r.dirty[group] = struct{}{}
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
	return st
}

// Publish implements Broker: it delivers m to the local members of group,
// then publishes it to Redis (at most PublishTimeout). A KindJoin or
// KindLeave message then waits, at most ControlTimeout, until every node
// that received it has applied it.
func (r *Redis) Publish(ctx context.Context, group string, m *Message) error {
	if r.closed.Load() {
		return ErrClosed
	}
	r.hub.Deliver(group, m)
	seq := r.seq.Add(1)
	control := m.Kind != KindData
	payload := r.encode(m, seq, control)
	var w *ackWait
	if control {
		w = r.addAck(seq)
		defer r.removeAck(seq)
	}
	n, err := r.publish(ctx, r.groupPrefix+group, payload)
	if err != nil {
		if ctx.Err() == nil {
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return fmt.Errorf("failed to publish to redis: %w", err)
	}
	if !control {
		return nil
	}
	r.amu.Lock()
	w.need = int(n)
	ok := w.got >= w.need
	r.amu.Unlock()
	if ok {
		return nil
	}
	timer := time.NewTimer(r.opts.ControlTimeout)
	defer timer.Stop()
	select {
	case <-w.done:
		return nil
	case <-timer.C:
	case <-ctx.Done():
		return fmt.Errorf("failed to wait for the nodes to apply a control message: %w", ctx.Err())
	case <-r.done:
		return ErrClosed
	}
	r.amu.Lock()
	got, need := w.got, w.need
	r.amu.Unlock()
	r.log.Warn("chatmux: nodes did not confirm a membership change in time", "group", group, "target", m.Group, "confirmed", got, "receivers", need, "timeout", r.opts.ControlTimeout)
	return nil
}

func (r *Redis) addAck(seq uint64) *ackWait {
	w := &ackWait{need: -1, done: make(chan struct{})}
	r.amu.Lock()
	r.acks[seq] = w
	r.amu.Unlock()
	return w
}

func (r *Redis) removeAck(seq uint64) {
	r.amu.Lock()
	delete(r.acks, seq)
	r.amu.Unlock()
}

func (r *Redis) gotAck(seq uint64) {
	r.amu.Lock()
	if w := r.acks[seq]; w != nil {
		w.got++
		if w.got == w.need {
			close(w.done)
		}
	}
	r.amu.Unlock()
}

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

// Up reports whether the node's pub/sub connection is established and has
// confirmed every subscription.
func (r *Redis) Up() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.up
}

// waitUp waits for the pub/sub session to come up.
func (r *Redis) waitUp(d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		r.mu.Lock()
		up, ch := r.up, r.changed
		r.mu.Unlock()
		if up {
			return nil
		}
		select {
		case <-ch:
		case <-timer.C:
			return fmt.Errorf("failed to subscribe within %v: %w", d, ErrUnavailable)
		}
	}
}

// broadcastLocked wakes every waiter on r.changed. r.mu is held.
func (r *Redis) broadcastLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// encode builds the wire form of a message.
func (r *Redis) encode(m *Message, seq uint64, ack bool) []byte {
	b := make([]byte, 0, 1+8+binary.MaxVarintLen64*2+len(m.Group)+len(m.Data))
	k := byte(m.Kind) & 0x0f
	if ack {
		k |= 0x10
	}
	b = append(b, k)
	b = binary.BigEndian.AppendUint64(b, r.id)
	b = binary.AppendUvarint(b, seq)
	b = binary.AppendUvarint(b, uint64(len(m.Group)))
	b = append(b, m.Group...)
	return append(b, m.Data...)
}

var errBadMessage = errors.New("groups: malformed redis message")

// decode parses the wire form of a message.
func decode(p []byte) (in inbound, err error) {
	if len(p) < 9 {
		return in, errBadMessage
	}
	in.ack = p[0]&0x10 != 0
	kind := Kind(p[0] & 0x0f)
	in.origin = binary.BigEndian.Uint64(p[1:9])
	p = p[9:]
	seq, n := binary.Uvarint(p)
	if n <= 0 {
		return in, errBadMessage
	}
	in.seq = seq
	p = p[n:]
	gl, n := binary.Uvarint(p)
	if n <= 0 || gl > uint64(len(p)-n) {
		return in, errBadMessage
	}
	p = p[n:]
	m := &Message{Kind: kind}
	if gl > 0 {
		m.Group = string(p[:gl])
	}
	if rest := p[gl:]; len(rest) > 0 {
		m.Data = rest
	}
	in.msg = m
	return in, nil
}

// run owns the pub/sub connection: one session after another until Close.
func (r *Redis) run() {
	defer r.wg.Done()
	backoff := minBackoff
	for {
		wasUp, err := r.runSession()
		if r.closed.Load() {
			return
		}
		if wasUp {
			backoff = minBackoff
		}
		r.log.Warn("chatmux: redis pub/sub connection lost, reconnecting", "err", err, "retry_in", backoff)
		select {
		case <-r.done:
			return
		case <-time.After(backoff):
		}
		if !wasUp {
			backoff = min(2*backoff, maxBackoff)
		}
	}
}

// runSession opens a pub/sub connection, subscribes to every wanted group,
// and serves subscription changes and health checks until the connection
// fails. It reports whether the session came up.
func (r *Redis) runSession() (wasUp bool, err error) {
	r.mu.Lock()
	r.session++
	session := r.session
	r.up = false
	r.upSeq = 0
	r.pending = nil
	for g, st := range r.subs {
		st.sent, st.confirmed = false, false
		if st.want {
			r.dirty[g] = struct{}{}
		} else {
			delete(r.subs, g)
			delete(r.dirty, g)
		}
	}
	r.broadcastLocked()
	r.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), r.opts.PublishTimeout)
	ps := r.client.Subscribe(ctx, r.ackChan)
	cancel()
	r.lastRead.Store(time.Now().UnixNano())
	readErr := make(chan error, 1)
	go func() { readErr <- r.read(ps, session) }()
	defer func() {
		r.mu.Lock()
		wasUp = r.up
		r.up = false
		r.broadcastLocked()
		r.mu.Unlock()
		_ = ps.Close()
		<-readErr
	}()

	if err := r.flush(ps, true); err != nil {
		return false, err
	}

	tick := time.NewTicker(r.opts.HealthCheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-r.done:
			return false, ErrClosed
		case err := <-readErr:
			readErr <- err // for the deferred wait
			return false, err
		case <-r.wake:
			if err := r.flush(ps, false); err != nil {
				return false, err
			}
		case now := <-tick.C:
			if silent := now.Sub(time.Unix(0, r.lastRead.Load())); silent > r.opts.HealthCheckTimeout {
				return false, fmt.Errorf("pub/sub connection silent for %v", silent.Round(time.Millisecond))
			}
			if err := r.ping(ps); err != nil {
				return false, err
			}
		}
	}
}

// flush sends every pending subscription change, then a ping that confirms
// the new subscriptions. The first flush of a session (force) pings even
// with nothing to subscribe: its answer brings the session up.
func (r *Redis) flush(ps *redis.PubSub, force bool) error {
	var adds, removes []string
	r.mu.Lock()
	for g := range r.dirty {
		st := r.subs[g]
		switch {
		case st == nil:
		case st.want && !st.sent:
			st.sent, st.confirmed = true, false
			adds = append(adds, g)
		case !st.want && st.sent:
			removes = append(removes, g)
			delete(r.subs, g)
		case !st.want:
			delete(r.subs, g)
		}
	}
	clear(r.dirty)
	var seq uint64
	if len(adds) > 0 || force {
		r.pingSeq++
		seq = r.pingSeq
		for _, g := range adds {
			r.subs[g].barrier = seq
		}
		r.pending = append(r.pending, barrier{seq: seq, groups: adds})
		if force {
			r.upSeq = seq
		}
	}
	r.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), r.opts.PublishTimeout)
	defer cancel()
	if err := r.command(ctx, ps.Unsubscribe, removes); err != nil {
		return fmt.Errorf("failed to unsubscribe: %w", err)
	}
	if err := r.command(ctx, ps.Subscribe, adds); err != nil {
		return fmt.Errorf("failed to subscribe: %w", err)
	}
	r.subscribeCommands.Add(int64((len(adds) + subscribeChunk - 1) / subscribeChunk))
	if seq != 0 {
		if err := ps.Ping(ctx, strconv.FormatUint(seq, 10)); err != nil {
			return fmt.Errorf("failed to ping: %w", err)
		}
	}
	return nil
}

func (r *Redis) command(ctx context.Context, fn func(context.Context, ...string) error, groups []string) error {
	for len(groups) > 0 {
		n := min(len(groups), subscribeChunk)
		chans := make([]string, n)
		for i, g := range groups[:n] {
			chans[i] = r.groupPrefix + g
		}
		if err := fn(ctx, chans...); err != nil {
			return err
		}
		groups = groups[n:]
	}
	return nil
}

// ping sends a health-check ping.
func (r *Redis) ping(ps *redis.PubSub) error {
	r.mu.Lock()
	r.pingSeq++
	seq := r.pingSeq
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.PublishTimeout)
	defer cancel()
	if err := ps.Ping(ctx, strconv.FormatUint(seq, 10)); err != nil {
		return fmt.Errorf("failed to ping: %w", err)
	}
	return nil
}

// read reads the pub/sub connection until it fails or is closed.
func (r *Redis) read(ps *redis.PubSub, session uint64) error {
	ctx := context.Background()
	for {
		v, err := ps.ReceiveTimeout(ctx, 0)
		if err != nil {
			return err
		}
		r.lastRead.Store(time.Now().UnixNano())
		switch v := v.(type) {
		case *redis.Message:
			r.receive(v)
		case *redis.Pong:
			if seq, err := strconv.ParseUint(v.Payload, 10, 64); err == nil {
				r.pong(session, seq)
			}
		}
	}
}

// pong confirms the subscriptions written before ping seq.
func (r *Redis) pong(session, seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if session != r.session {
		return
	}
	changed := false
	i := 0
	for ; i < len(r.pending) && r.pending[i].seq <= seq; i++ {
		b := r.pending[i]
		for _, g := range b.groups {
			if st := r.subs[g]; st != nil && st.sent && !st.confirmed && st.barrier == b.seq {
				st.confirmed = true
				changed = true
			}
		}
	}
	r.pending = r.pending[i:]
	if !r.up && r.upSeq != 0 && seq >= r.upSeq {
		r.up = true
		changed = true
	}
	if changed {
		r.broadcastLocked()
	}
}

// receive handles one message read from Redis.
func (r *Redis) receive(v *redis.Message) {
	if v.Channel == r.ackChan {
		if seq, err := strconv.ParseUint(v.Payload, 10, 64); err == nil {
			r.gotAck(seq)
		}
		return
	}
	group, ok := strings.CutPrefix(v.Channel, r.groupPrefix)
	if !ok {
		return
	}
	in, err := decode([]byte(v.Payload))
	if err != nil {
		r.log.Warn("chatmux: dropping a malformed redis message", "channel", v.Channel, "bytes", len(v.Payload))
		return
	}
	if in.origin == r.id {
		// Delivered locally at publish time.
		if in.ack {
			r.gotAck(in.seq)
		}
		return
	}
	in.group = group
	r.qmu.Lock()
	r.queue = append(r.queue, in)
	r.qmu.Unlock()
	select {
	case r.qwake <- struct{}{}:
	default:
	}
}

// dispatch delivers received messages to local members, in the order they
// were read. It runs apart from the reader: a control message makes members
// join groups, and Join waits for a confirmation that the reader reads.
func (r *Redis) dispatch() {
	defer r.wg.Done()
	for {
		select {
		case <-r.done:
			return
		case <-r.qwake:
		}
		for {
			r.qmu.Lock()
			batch := r.queue
			r.queue, r.qspare = r.qspare[:0], nil
			r.qmu.Unlock()
			if len(batch) == 0 {
				break
			}
			for i := range batch {
				in := &batch[i]
				r.hub.Deliver(in.group, in.msg)
				if in.ack {
					r.wg.Add(1)
					go r.sendAck(in.origin, in.seq)
				}
				*in = inbound{}
			}
			r.qmu.Lock()
			if cap(batch) <= 4096 {
				r.qspare = batch[:0]
			}
			r.qmu.Unlock()
			if r.closed.Load() {
				return
			}
		}
	}
}

// sendAck tells a node that this node applied its control message.
func (r *Redis) sendAck(origin, seq uint64) {
	defer r.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.PublishTimeout)
	defer cancel()
	ch := r.opts.Prefix + "n:" + strconv.FormatUint(origin, 16)
	if err := r.client.Publish(ctx, ch, strconv.FormatUint(seq, 10)).Err(); err != nil {
		r.log.Warn("chatmux: failed to acknowledge a membership change", "err", err)
	}
}

// publish hands a PUBLISH to the publisher goroutine and waits for its
// answer, at most PublishTimeout. It returns the number of subscribers
// that received the message.
func (r *Redis) publish(ctx context.Context, channel string, payload []byte) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.PublishTimeout)
	defer cancel()
	r.pmu.Lock()
	if !r.pbusy && len(r.pq) == 0 {
		// Nothing queued nor in flight: publish from this goroutine,
		// saving two goroutine switches; whoever queues meanwhile waits
		// for it, so the order holds.
		r.pbusy = true
		r.pmu.Unlock()
		n, err := r.client.Publish(ctx, channel, payload).Result()
		r.pmu.Lock()
		r.pbusy = false
		more := len(r.pq) > 0
		r.pmu.Unlock()
		if more {
			r.wakePublisher()
		}
		return n, err
	}
	req := &pubReq{channel: channel, payload: payload, ctx: ctx, done: make(chan struct{})}
	r.pq = append(r.pq, req)
	r.pmu.Unlock()
	r.wakePublisher()
	select {
	case <-req.done:
		return req.n, req.err
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-r.done:
		return 0, ErrClosed
	}
}

func (r *Redis) wakePublisher() {
	select {
	case r.pwake <- struct{}{}:
	default:
	}
}

// publisher sends queued PUBLISHes, as many as are waiting in one pipeline
// (one write, one round trip), one pipeline at a time and in the order they
// were queued: one node's publications reach Redis in its order, and
// concurrent publishers share round trips.
func (r *Redis) publisher() {
	defer r.wg.Done()
	for {
		select {
		case <-r.done:
			r.pmu.Lock()
			for _, req := range r.pq {
				req.err = ErrClosed
				close(req.done)
			}
			r.pq = nil
			r.pmu.Unlock()
			return
		case <-r.pwake:
		}
		for {
			r.pmu.Lock()
			if r.pbusy {
				// A direct publish is in flight: it wakes us when done.
				r.pmu.Unlock()
				break
			}
			batch := r.pq
			if len(batch) > maxPipeline {
				batch = batch[:maxPipeline:maxPipeline]
				r.pq = r.pq[maxPipeline:]
			} else {
				r.pq, r.pspare = r.pspare[:0], nil
			}
			r.pbusy = len(batch) > 0
			r.pmu.Unlock()
			if len(batch) == 0 {
				break
			}
			r.publishBatch(batch)
			clear(batch)
			r.pmu.Lock()
			r.pbusy = false
			if cap(batch) <= 4*maxPipeline && cap(batch) > maxPipeline/2 {
				r.pspare = batch[:0]
			}
			r.pmu.Unlock()
		}
	}
}

func (r *Redis) publishBatch(batch []*pubReq) {
	// Skip the requests whose caller gave up; the batch is bounded by the
	// latest deadline among the others.
	live := batch[:0:0]
	var deadline time.Time
	for _, req := range batch {
		if err := req.ctx.Err(); err != nil {
			req.err = err
			close(req.done)
			continue
		}
		live = append(live, req)
		if d, ok := req.ctx.Deadline(); ok && d.After(deadline) {
			deadline = d
		}
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if len(live) == 1 {
		req := live[0]
		req.n, req.err = r.client.Publish(ctx, req.channel, req.payload).Result()
		close(req.done)
		return
	}
	pipe := r.client.Pipeline()
	cmds := make([]*redis.IntCmd, len(live))
	for i, req := range live {
		cmds[i] = pipe.Publish(ctx, req.channel, req.payload)
	}
	_, _ = pipe.Exec(ctx)
	for i, req := range live {
		req.n, req.err = cmds[i].Result()
		close(req.done)
	}
}
