package groups

import "slices"

// The availability of a Redis broker, reported to the callbacks of
// OnAvailability.
//
// The changes are made, and queued, under r.subs.mu by the code that
// learns of them (the session goroutine when a session ends, the reader
// when a pong brings one up), so the queue holds them in the order they
// happened. One notifier goroutine hands them to the callbacks, holding no
// lock: a callback may call Join, Leave and Publish.

// availabilityEvent is one change, and the callbacks to tell: those
// registered when it happened.
type availabilityEvent struct {
	available bool
	to        []func(available bool)
}

var _ Availability = (*Redis)(nil)

// OnAvailability implements Availability.
//
// f(false) comes as soon as the node knows that its pub/sub connection is
// lost: it failed (Redis closed it, a read or a write on it failed), it
// stayed silent for HealthCheckTimeout, or, when the node has never been
// up, its first attempt to connect failed. From then on, messages that
// other nodes publish may be missed by this node, Join returns without
// waiting for a confirmation (until a new connection is made) and Publish
// fails fast (see Publish).
//
// f(true) comes once a new connection is up and the subscription of every
// group with local members is confirmed, the groups joined while the node
// was unavailable included (a Join still in progress at that moment
// returns once its own subscription is confirmed). A message that another
// node publishes after f(true) was called reaches every local member of
// its group whose Join has returned, unless the connection is lost again,
// which another f(false) reports.
//
// Calls alternate, starting with false: false, true, false... A node that
// starts with Redis up reports nothing until it loses it; a loss while the
// node is coming back (before true) is no new call, the node stays
// unavailable. When f is registered while the node is unavailable, its
// first call is f(false), made at once.
//
// The calls to every registered callback are serialised (never two at a
// time, whichever the callback), in order, from a goroutine of the
// broker that holds no lock: f may call Join, Leave and Publish on this
// broker, but must not block for long (later changes wait for it), and
// must not call Close. No call starts after Close has returned. f must
// not be nil.
func (r *Redis) OnAvailability(f func(available bool)) {
	if f == nil {
		panic("groups: OnAvailability with a nil func")
	}
	s := &r.subs
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listeners = append(slices.Clip(s.listeners), f)
	if s.down {
		s.events = append(s.events, availabilityEvent{available: false, to: []func(bool){f}})
		s.wakeNotifier()
	}
}

// queueAvailabilityLocked queues a change for the callbacks registered
// now. r.subs.mu is held.
func (r *Redis) queueAvailabilityLocked(available bool) {
	s := &r.subs
	if len(s.listeners) == 0 || r.closed.Load() {
		return
	}
	s.events = append(s.events, availabilityEvent{available: available, to: s.listeners})
	s.wakeNotifier()
}

func (s *subscriptions) wakeNotifier() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// nextAvailability takes the oldest queued change.
func (s *subscriptions) nextAvailability() (ev availabilityEvent, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.events) == 0 {
		s.events = nil
		return ev, false
	}
	ev = s.events[0]
	s.events[0] = availabilityEvent{}
	s.events = s.events[1:]
	return ev, true
}

// notifier hands the queued changes to the callbacks, one at a time, in
// order, until Close.
func (r *Redis) notifier() {
	defer r.wg.Done()
	s := &r.subs
	for {
		select {
		case <-r.done:
			return
		case <-s.notify:
		}
		for {
			ev, ok := s.nextAvailability()
			if !ok {
				break
			}
			for _, f := range ev.to {
				if r.closed.Load() {
					return
				}
				f(ev.available)
			}
		}
	}
}
