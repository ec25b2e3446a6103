package groups

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// subscribeChunk is the most channels one SUBSCRIBE or UNSUBSCRIBE
	// names.
	subscribeChunk = 1024
	// minBackoff and maxBackoff bound the wait between two attempts to
	// open a pub/sub session. maxBackoff bounds how long a node stays
	// unavailable after Redis is back; a Publish meanwhile asks for an
	// attempt at once, minBackoff after the previous one.
	minBackoff = 50 * time.Millisecond
	maxBackoff = 500 * time.Millisecond
)

// subscriptions is the state of the node's pub/sub connection and of each
// group's channel on it.
//
// A group's channel is wanted while the Hub has local members of the group.
// Join and Leave update what is wanted and mark the group dirty; the
// session goroutine (run) sends every dirty change as one UNSUBSCRIBE and
// one SUBSCRIBE, then a PING. Redis answers the commands of one connection
// in order, so the PONG confirms every SUBSCRIBE sent before its PING.
//
// Each pub/sub connection is a session. A new session forgets what was
// sent and marks every wanted group dirty again; once its connection is
// made, its first flush takes every dirty group, and the session comes up
// when the PONG of that flush confirms them.
//
// The node is available while a session is up. It becomes unavailable
// (down) when a session ends, or when the first one fails before coming
// up, and available again when a later session comes up; each change is
// queued, under mu, for the callbacks of OnAvailability, so they see the
// changes in the order they happened.
//
// Join waits for its group's confirmation, except while the node is down
// and the current session has not taken its first flush (connected is
// false): then it returns at once, and its group, dirty, is in that first
// flush, confirmed before the session comes up. Once the flush is taken,
// a Join waits for its own confirmation (one round trip), so no group
// joined without a confirmation is left out of the first flush, and the
// session comes up at its pong however many joins follow.
type subscriptions struct {
	// wake (capacity 1) tells the session goroutine that groups are dirty.
	wake chan struct{}
	// lastRead is the time (UnixNano) of the last item read from the
	// pub/sub connection, for the health check. It is atomic, not guarded
	// by mu.
	lastRead atomic.Int64
	// unavailable mirrors down for Publish, which reads it without mu.
	unavailable atomic.Bool
	// unreachable is set when an attempt to connect fails and cleared when
	// one succeeds: Publish does not try Redis meanwhile, it waits for the
	// outcome of a new attempt. Written under mu, read without it.
	unreachable atomic.Bool
	// kick (capacity 1) asks the session goroutine, waiting to reconnect,
	// for an attempt now (at least minBackoff after the previous one).
	kick chan struct{}
	// notify (capacity 1) tells the notifier goroutine that events are
	// queued.
	notify chan struct{}

	// mu guards every field below, and the subState of every group.
	mu        sync.Mutex
	groups    map[string]*subState
	dirty     map[string]struct{} // groups whose want differs from what was sent
	pending   []barrier           // pings sent and not answered, in order
	changed   chan struct{}       // closed and replaced when a state changes
	session   uint64              // the current session's number
	upSeq     uint64              // the first flush's ping: the session is not up before its pong
	up        bool                // the session is up: its first flush is confirmed
	down      bool                // unavailable: a session ended (or the first failed) since one was up
	connected bool                // the current session has made its connection and taken its first flush
	failed    uint64              // the last session whose attempt to connect failed
	pingSeq   uint64              // the last ping sent

	// listeners are the callbacks of OnAvailability, in registration
	// order; the slice is replaced, never modified, so that events can
	// share it.
	listeners []func(available bool)
	// events are the availability changes not yet handed to listeners,
	// in order.
	events []availabilityEvent
}

// subState is the state of one group's channel.
type subState struct {
	want      bool   // the node has local members of the group
	sent      bool   // SUBSCRIBE sent on the current session
	confirmed bool   // Redis has executed it
	barrier   uint64 // the ping whose pong confirms it
}

// barrier is a ping sent after subscribing to groups: its pong confirms
// them.
type barrier struct {
	seq    uint64
	groups []string
}

func newSubscriptions() subscriptions {
	return subscriptions{
		wake:    make(chan struct{}, 1),
		notify:  make(chan struct{}, 1),
		kick:    make(chan struct{}, 1),
		groups:  map[string]*subState{},
		dirty:   map[string]struct{}{},
		changed: make(chan struct{}),
	}
}

// Join implements Broker. It returns when the node's subscription to the
// group's channel is confirmed by Redis, or at once while the node is
// unavailable (it has reported false to OnAvailability) and has no new
// connection yet: the subscription is then made, and confirmed, before the
// node reports true. Either way, a message that another node publishes
// after Join returned and after the node reported true (if it had reported
// false) reaches the member. When the confirmation does not come within
// JoinTimeout, or before ctx ends, the join is undone and the error
// returned.
func (r *Redis) Join(ctx context.Context, group string, m Member) error {
	if r.closed.Load() {
		return ErrClosed
	}
	first := r.hub.Join(group, m)
	s := &r.subs
	s.mu.Lock()
	st := s.groups[group]
	if first || st == nil {
		st = r.updateWantLocked(group)
	}
	if st == nil || st.confirmed || s.joinEarlyLocked() {
		s.mu.Unlock()
		return nil
	}
	timer := time.NewTimer(r.opts.JoinTimeout)
	defer timer.Stop()
	err := ctx.Err()
	for err == nil {
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			err = ctx.Err()
		case <-timer.C:
			err = fmt.Errorf("no confirmation within %v: %w", r.opts.JoinTimeout, ErrUnavailable)
		case <-r.done:
			err = ErrClosed
		}
		s.mu.Lock()
		st = s.groups[group]
		if st == nil || st.confirmed || s.joinEarlyLocked() {
			// Confirmed, left meanwhile, or the connection was lost
			// (the subscription is confirmed before the node reports
			// true).
			s.mu.Unlock()
			return nil
		}
	}
	s.mu.Unlock()
	if r.hub.Leave(group, m) {
		s.mu.Lock()
		r.updateWantLocked(group)
		s.mu.Unlock()
	}
	return fmt.Errorf("failed to subscribe to %s: %w", group, err)
}

// joinEarlyLocked reports whether Join returns without waiting for its
// confirmation: the node is down and its next session has not taken its
// first flush, which will subscribe to the group. s.mu is held.
func (s *subscriptions) joinEarlyLocked() bool { return s.down && !s.connected }

// Leave implements Broker. The node unsubscribes (in the background) when
// the group has no local member left.
func (r *Redis) Leave(_ context.Context, group string, m Member) error {
	if r.hub.Leave(group, m) {
		r.subs.mu.Lock()
		r.updateWantLocked(group)
		r.subs.mu.Unlock()
	}
	return nil
}

// updateWantLocked makes the wanted state of a group's channel match the
// hub (whether it has local members) and wakes the session goroutine when
// it changes. Reading the hub under r.subs.mu makes the last updater win,
// however joins and leaves interleave. r.subs.mu is held.
func (r *Redis) updateWantLocked(group string) *subState {
	s := &r.subs
	want := r.hub.Len(group) > 0
	st := s.groups[group]
	if st == nil {
		if !want {
			return nil
		}
		st = &subState{}
		s.groups[group] = st
	}
	if st.want != want {
		st.want = want
		s.dirty[group] = struct{}{}
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return st
}

// Up reports whether the node is available: its pub/sub connection is
// established and no subscription it held was unconfirmed when it came up
// (see OnAvailability). It is false from the moment the node knows that
// the connection is lost, and before the first connection is up.
func (r *Redis) Up() bool {
	r.subs.mu.Lock()
	defer r.subs.mu.Unlock()
	return r.subs.up
}

// waitUp waits for the pub/sub session to come up.
func (r *Redis) waitUp(d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	s := &r.subs
	for {
		s.mu.Lock()
		up, ch := s.up, s.changed
		s.mu.Unlock()
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

// changedLocked wakes every waiter on s.changed. s.mu is held.
func (s *subscriptions) changedLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
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
		if !r.pause(backoff) {
			return
		}
		if !wasUp {
			backoff = min(2*backoff, maxBackoff)
		}
	}
}

// pause waits d before the next attempt to connect, or only minBackoff
// when a Publish asks for an attempt. It reports false when the broker is
// closed meanwhile.
func (r *Redis) pause(d time.Duration) bool {
	t := time.NewTimer(min(d, minBackoff))
	defer t.Stop()
	select {
	case <-r.done:
		return false
	case <-t.C:
	}
	if d <= minBackoff {
		return true
	}
	t.Reset(d - minBackoff)
	select {
	case <-r.done:
		return false
	case <-t.C:
	case <-r.subs.kick:
	}
	return true
}

// awaitReconnect is called by Publish while the node's last attempt to
// connect failed: it asks the session goroutine for an attempt now and
// waits for one that started after the call to succeed (Redis is
// reachable: the PUBLISH is worth making) or fail, at most
// DownPublishTimeout. It reports whether Redis is reachable.
func (r *Redis) awaitReconnect(ctx context.Context) bool {
	s := &r.subs
	s.mu.Lock()
	after := s.session // an attempt in flight may have started before Redis came back
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	timer := time.NewTimer(r.opts.DownPublishTimeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		reachable, failed, ch := !s.unreachable.Load(), s.failed > after, s.changed
		s.mu.Unlock()
		if reachable || failed {
			return reachable
		}
		select {
		case <-ch:
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		case <-r.done:
			return false
		}
	}
}

// startSessionLocked begins a new session: nothing is sent on it yet, so
// every wanted group is dirty and every other one forgotten. s.mu is held.
func (s *subscriptions) startSessionLocked() (session uint64) {
	s.session++
	s.up = false
	s.connected = false
	s.upSeq = 0
	s.pending = nil
	for g, st := range s.groups {
		st.sent, st.confirmed = false, false
		if st.want {
			s.dirty[g] = struct{}{}
		} else {
			delete(s.groups, g)
			delete(s.dirty, g)
		}
	}
	s.changedLocked()
	return s.session
}

// runSession opens a pub/sub connection, subscribes to every wanted group,
// and serves subscription changes and health checks until the connection
// fails. It reports whether the session came up.
func (r *Redis) runSession() (wasUp bool, err error) {
	s := &r.subs
	s.mu.Lock()
	session := s.startSessionLocked()
	s.mu.Unlock()

	// Connect: the node's own channel is the first subscription.
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.PublishTimeout)
	ps := r.client.Subscribe(ctx)
	err = ps.Subscribe(ctx, r.nodeChan)
	cancel()
	if err != nil {
		s.mu.Lock()
		s.unreachable.Store(true)
		s.failed = session
		r.lostLocked() // wakes awaitReconnect
		s.mu.Unlock()
		_ = ps.Close()
		return false, fmt.Errorf("failed to connect: %w", err)
	}
	s.mu.Lock()
	if s.unreachable.Load() {
		s.unreachable.Store(false)
		s.changedLocked() // wakes awaitReconnect
	}
	s.mu.Unlock()
	s.lastRead.Store(time.Now().UnixNano())
	readErr := make(chan error, 1)
	go func() { readErr <- r.read(ps, session) }()
	defer func() {
		s.mu.Lock()
		wasUp = s.up
		r.lostLocked()
		s.mu.Unlock()
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
		case <-s.wake:
			if err := r.flush(ps, false); err != nil {
				return false, err
			}
		case now := <-tick.C:
			if silent := now.Sub(time.Unix(0, s.lastRead.Load())); silent > r.opts.HealthCheckTimeout {
				return false, fmt.Errorf("pub/sub connection silent for %v", silent.Round(time.Millisecond))
			}
			if err := r.ping(ps); err != nil {
				return false, err
			}
		}
	}
}

// takeChangesLocked collects the dirty groups: the channels to subscribe
// to and those to unsubscribe from. When there is something to subscribe
// to, or force is set, it also numbers the ping that will confirm it (0
// when no ping is needed); the first flush of a session forces a ping,
// whose pong brings the session up. s.mu is held.
func (s *subscriptions) takeChangesLocked(force bool) (adds, removes []string, ping uint64) {
	for g := range s.dirty {
		st := s.groups[g]
		switch {
		case st == nil:
		case st.want && !st.sent:
			st.sent, st.confirmed = true, false
			adds = append(adds, g)
		case !st.want && st.sent:
			removes = append(removes, g)
			delete(s.groups, g)
		case !st.want:
			delete(s.groups, g)
		}
	}
	clear(s.dirty)
	if len(adds) > 0 || force {
		s.pingSeq++
		ping = s.pingSeq
		for _, g := range adds {
			s.groups[g].barrier = ping
		}
		s.pending = append(s.pending, barrier{seq: ping, groups: adds})
		if force {
			s.upSeq = ping
			s.connected = true
		}
	}
	return adds, removes, ping
}

// flush sends every pending subscription change, then a ping that confirms
// the new subscriptions. The first flush of a session (force) pings even
// with nothing to subscribe: its answer brings the session up.
func (r *Redis) flush(ps *redis.PubSub, force bool) error {
	r.subs.mu.Lock()
	adds, removes, ping := r.subs.takeChangesLocked(force)
	r.subs.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), r.opts.PublishTimeout)
	defer cancel()
	if err := r.command(ctx, ps.Unsubscribe, removes); err != nil {
		return fmt.Errorf("failed to unsubscribe: %w", err)
	}
	if err := r.command(ctx, ps.Subscribe, adds); err != nil {
		return fmt.Errorf("failed to subscribe: %w", err)
	}
	if ping != 0 {
		if err := ps.Ping(ctx, encodeSeq(ping)); err != nil {
			return fmt.Errorf("failed to ping: %w", err)
		}
	}
	return nil
}

// command sends a SUBSCRIBE or UNSUBSCRIBE (fn) of the channels of groups,
// subscribeChunk channels at a time.
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
	r.subs.mu.Lock()
	r.subs.pingSeq++
	seq := r.subs.pingSeq
	r.subs.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.PublishTimeout)
	defer cancel()
	if err := ps.Ping(ctx, encodeSeq(seq)); err != nil {
		return fmt.Errorf("failed to ping: %w", err)
	}
	return nil
}

// pong confirms the subscriptions sent on session before ping seq.
func (r *Redis) pong(session, seq uint64) {
	s := &r.subs
	s.mu.Lock()
	defer s.mu.Unlock()
	if session != s.session {
		return
	}
	changed := false
	i := 0
	for ; i < len(s.pending) && s.pending[i].seq <= seq; i++ {
		b := s.pending[i]
		for _, g := range b.groups {
			if st := s.groups[g]; st != nil && st.sent && !st.confirmed && st.barrier == b.seq {
				st.confirmed = true
				changed = true
			}
		}
	}
	s.pending = s.pending[i:]
	if !s.up && s.upSeq != 0 && seq >= s.upSeq {
		r.upLocked()
		return // upLocked wakes the waiters
	}
	if changed {
		s.changedLocked()
	}
}

// upLocked brings the session up and, when the node was unavailable,
// makes it available again. r.subs.mu is held.
func (r *Redis) upLocked() {
	s := &r.subs
	s.up = true
	if s.down {
		s.down = false
		s.unavailable.Store(false)
		r.queueAvailabilityLocked(true)
	}
	s.changedLocked()
}

// lostLocked ends the session: the node is unavailable until a new one
// comes up. r.subs.mu is held.
func (r *Redis) lostLocked() {
	s := &r.subs
	s.up = false
	s.connected = false
	if !s.down {
		s.down = true
		s.unavailable.Store(true)
		r.queueAvailabilityLocked(false)
	}
	s.changedLocked()
}
