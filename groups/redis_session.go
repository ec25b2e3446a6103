package groups

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// The pub/sub session: connecting, the health check, reconnecting with
// backoff, and the availability that follows from it (see
// subscriptions for the state, OnAvailability for what is reported).

const (
	// minBackoff and maxBackoff bound the wait between two attempts to
	// open a pub/sub session. maxBackoff bounds how long a node stays
	// unavailable after Redis is back; a Publish meanwhile asks for an
	// attempt at once, minBackoff after the previous one.
	minBackoff = 50 * time.Millisecond
	maxBackoff = 500 * time.Millisecond
)

// run owns the pub/sub connection: one session after another until Close.
func (r *Redis) run() {
	defer r.wg.Done()
	backoff := minBackoff
	failures := 0 // attempts failed since the connection was last up
	for {
		wasUp, err := r.runSession()
		if r.closed.Load() {
			return
		}
		if wasUp {
			backoff = minBackoff
			failures = 0
		}
		// The loss, then one line a minute or so while Redis stays away
		// (every 120th attempt at the 500ms cap), not one per attempt.
		if failures%120 == 0 {
			r.log.Warn("chatmux: redis pub/sub connection lost, reconnecting", "err", err, "retry_in", backoff,
				"failed_attempts", failures)
		}
		failures++
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
