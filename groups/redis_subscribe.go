package groups

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// subscribeChunk is the most channels one SUBSCRIBE or UNSUBSCRIBE names.
const subscribeChunk = 1024

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
