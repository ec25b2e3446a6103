package groups

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// maxPipeline is the most PUBLISHes sent in one pipeline.
	maxPipeline = 256
	// maxSparePipeline is the largest queue buffer kept for reuse.
	maxSparePipeline = 4 * maxPipeline
)

// publishQueue orders the node's PUBLISHes: one PUBLISH or pipeline is in
// flight at a time, in queue order, so that Redis executes a node's
// publications in the order they were made.
type publishQueue struct {
	// wake (capacity 1) tells the publisher goroutine that requests are
	// queued, or that the PUBLISH in flight is done.
	wake chan struct{}

	// mu guards busy, queue and spare.
	mu    sync.Mutex
	busy  bool      // a PUBLISH or pipeline is in flight
	queue []*pubReq // waiting for the publisher goroutine, in order
	spare []*pubReq // a sent queue's buffer, for reuse
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

// Publish implements Broker: it delivers m to the local members of group,
// in the caller's goroutine, then publishes it to Redis for the other
// nodes, at most PublishTimeout. A control message (KindJoin, KindLeave,
// KindClose) then waits, at most ControlTimeout, until every node that
// received it has applied it.
//
// While the node knows that its pub/sub connection is lost (it has
// reported false to OnAvailability, and not yet true), Publish fails fast,
// at most DownPublishTimeout. While the node's attempts to reconnect fail,
// it does not try Redis: it asks for a new attempt (made at once, at least
// 50ms after the previous one) and publishes only if that attempt
// connects; otherwise it returns an error wrapping ErrUnavailable. When
// Redis answers (only the pub/sub connection was lost, or Redis is back),
// the PUBLISH is made, so the other nodes get the message. Not dialing a
// Redis that refuses connections also keeps go-redis's pool from giving up
// on dialing for a while after PoolSize failed dials.
//
// When Publish returns an error, this is what has been delivered:
//
//   - ErrClosed when the broker was closed before the call: nothing, to
//     no one.
//   - Any other error: every local member of group had m delivered (its
//     Deliver called) before Publish returned; the local members are
//     always served, Redis or not.
//   - An error wrapping ErrUnavailable because no attempt to reconnect
//     succeeded: no other node got m (it was not sent).
//   - An error wrapping ErrUnavailable (Redis did not answer within the
//     bound), ctx's error (ctx ended first) or ErrClosed (Close was called
//     meanwhile), from the PUBLISH: the other nodes may or may not have
//     it. The PUBLISH may have failed before reaching Redis (no other node
//     gets m), or Redis may have executed it without its answer arriving
//     in time (every node subscribed then gets m). A node that did not get
//     m because it had lost its own connection reports false, then true,
//     to its callbacks; a node that was connected does not know that it
//     missed m.
//   - ctx's error or ErrClosed from the wait of a control
//     message for acknowledgements: Redis has executed the PUBLISH, so
//     every node subscribed to group got m and applies it; only the
//     confirmation is missing. (Running out of ControlTimeout is not an
//     error: it is logged, and Publish returns nil.)
func (r *Redis) Publish(ctx context.Context, group string, m *Message) error {
	if r.closed.Load() {
		return ErrClosed
	}
	r.hub.Deliver(group, m)
	down := r.subs.unavailable.Load()
	if down && r.subs.unreachable.Load() && !r.awaitReconnect(ctx) {
		return fmt.Errorf("failed to publish to redis: %w: cannot connect", ErrUnavailable)
	}
	seq := r.pubSeq.Add(1)
	control := m.Kind != KindData
	payload := encodePublication(m, r.id, seq, control)
	var w *ackWait
	if control {
		w = r.acks.add(seq)
		defer r.acks.remove(seq)
	}
	n, err := r.publish(ctx, r.groupPrefix+group, payload, down)
	if err != nil {
		if ctx.Err() == nil {
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return fmt.Errorf("failed to publish to redis: %w", err)
	}
	if w == nil {
		return nil
	}
	return r.awaitAcks(ctx, w, n, group, m.Group)
}

// publish hands a PUBLISH to the publisher goroutine and waits for its
// answer, at most PublishTimeout, or DownPublishTimeout when the node is
// down. It returns the number of subscribers that received the message.
func (r *Redis) publish(ctx context.Context, channel string, payload []byte, down bool) (int64, error) {
	bound := r.opts.PublishTimeout
	if down {
		bound = r.opts.DownPublishTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	q := &r.pubq
	q.mu.Lock()
	if !down && !q.busy && len(q.queue) == 0 {
		// Nothing queued nor in flight: publish from this goroutine,
		// saving two goroutine switches; whoever queues meanwhile waits
		// for it, so the order holds. Not while the node is down: a
		// connection that stopped answering could hold this goroutine
		// for the client's ReadTimeout, beyond the bound, whereas a
		// queued request is given up at the bound.
		q.busy = true
		q.mu.Unlock()
		n, err := r.client.Publish(ctx, channel, payload).Result()
		q.mu.Lock()
		q.busy = false
		more := len(q.queue) > 0
		q.mu.Unlock()
		if more {
			q.wakePublisher()
		}
		return n, err
	}
	req := &pubReq{channel: channel, payload: payload, ctx: ctx, done: make(chan struct{})}
	q.queue = append(q.queue, req)
	q.mu.Unlock()
	q.wakePublisher()
	select {
	case <-req.done:
		return req.n, req.err
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-r.done:
		return 0, ErrClosed
	}
}

func (q *publishQueue) wakePublisher() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// next takes the next batch to send (at most maxPipeline requests) and
// marks it in flight. It returns nothing while a direct publish is in
// flight (that publish wakes the publisher when it is done) or when the
// queue is empty.
func (q *publishQueue) next() []*pubReq {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.busy {
		return nil
	}
	batch := q.queue
	if len(batch) > maxPipeline {
		batch = batch[:maxPipeline:maxPipeline]
		q.queue = q.queue[maxPipeline:]
	} else {
		q.queue, q.spare = q.spare[:0], nil
	}
	q.busy = len(batch) > 0
	return batch
}

// sent ends the flight of a batch returned by next (its requests answered
// and cleared) and keeps its buffer for reuse.
func (q *publishQueue) sent(batch []*pubReq) {
	q.mu.Lock()
	q.busy = false
	if cap(batch) <= maxSparePipeline && cap(batch) > maxPipeline/2 {
		q.spare = batch[:0]
	}
	q.mu.Unlock()
}

// closeQueue answers every queued request with ErrClosed.
func (q *publishQueue) closeQueue() {
	q.mu.Lock()
	for _, req := range q.queue {
		req.err = ErrClosed
		close(req.done)
	}
	q.queue = nil
	q.mu.Unlock()
}

// publisher sends queued PUBLISHes, as many as are waiting in one pipeline
// (one write, one round trip), one pipeline at a time and in the order they
// were queued: one node's publications reach Redis in its order, and
// concurrent publishers share round trips.
func (r *Redis) publisher() {
	defer r.wg.Done()
	q := &r.pubq
	for {
		select {
		case <-r.done:
			q.closeQueue()
			return
		case <-q.wake:
		}
		for {
			batch := q.next()
			if len(batch) == 0 {
				break
			}
			r.publishBatch(batch)
			clear(batch)
			q.sent(batch)
		}
	}
}

// publishBatch sends a batch of PUBLISHes and answers each request.
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
