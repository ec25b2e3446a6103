package groups

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// maxSpareInbox is the largest inbox buffer kept for reuse.
const maxSpareInbox = 4096

// inbox holds the publications read from Redis until the dispatcher hands
// them to local members, so the reader never waits for a delivery (a
// control message makes members join groups, and Join waits for a pong
// that the reader reads).
type inbox struct {
	// wake (capacity 1) tells the dispatcher that the queue is not empty.
	wake chan struct{}

	// mu guards queue and spare.
	mu    sync.Mutex
	queue []inbound
	spare []inbound // a drained queue's buffer, for reuse
}

// inbound is a publication read from a group's channel.
type inbound struct {
	publication
	group string
}

// push queues a publication and wakes the dispatcher.
func (q *inbox) push(in inbound) {
	q.mu.Lock()
	q.queue = append(q.queue, in)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take returns every queued publication, in the order read.
func (q *inbox) take() []inbound {
	q.mu.Lock()
	defer q.mu.Unlock()
	batch := q.queue
	q.queue, q.spare = q.spare[:0], nil
	return batch
}

// recycle keeps a delivered (and zeroed) batch's buffer for reuse.
func (q *inbox) recycle(batch []inbound) {
	q.mu.Lock()
	if cap(batch) <= maxSpareInbox {
		q.spare = batch[:0]
	}
	q.mu.Unlock()
}

// read reads the pub/sub connection of a session until it fails or is
// closed.
//
// Its context is cancelled from the start. When a read fails, go-redis's
// PubSub reconnects at once, in the reader's goroutine, with the reader's
// context, before it returns the error: with Redis unreachable, that
// attempt could take the client's DialTimeout (and its handshake the
// ReadTimeout), delaying the moment the node knows that the connection is
// lost. A cancelled context makes it fail at once; the session goroutine
// makes the next connection itself. The context does not bound the reads
// (go-redis sets read deadlines from a context's deadline, and this one
// has none).
func (r *Redis) read(ps *redis.PubSub, session uint64) error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for {
		v, err := ps.ReceiveTimeout(ctx, 0)
		if err != nil {
			return err
		}
		r.subs.lastRead.Store(time.Now().UnixNano())
		switch v := v.(type) {
		case *redis.Message:
			r.receive(v)
		case *redis.Pong:
			if seq, ok := decodeSeq(v.Payload); ok {
				r.pong(session, seq)
			}
		}
	}
}

// receive handles one message read from Redis: an acknowledgement on the
// node's channel, or a publication on a group's channel.
func (r *Redis) receive(v *redis.Message) {
	if v.Channel == r.nodeChan {
		if seq, ok := decodeSeq(v.Payload); ok {
			r.acks.got(seq)
		}
		return
	}
	group, ok := strings.CutPrefix(v.Channel, r.groupPrefix)
	if !ok {
		return
	}
	pub, err := decodePublication(v.Payload)
	if err != nil {
		r.log.Warn("chatmux: dropping a malformed redis message", "channel", v.Channel, "bytes", len(v.Payload))
		return
	}
	if pub.origin == r.id {
		// Delivered locally at publish time; a control message counts
		// as applied by this node.
		if pub.ack {
			r.acks.got(pub.seq)
		}
		return
	}
	r.inbox.push(inbound{publication: pub, group: group})
}

// dispatch delivers received publications to local members, in the order
// they were read, and acknowledges the control messages it applied.
func (r *Redis) dispatch() {
	defer r.wg.Done()
	for {
		select {
		case <-r.done:
			return
		case <-r.inbox.wake:
		}
		for {
			batch := r.inbox.take()
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
			r.inbox.recycle(batch)
			if r.closed.Load() {
				return
			}
		}
	}
}
