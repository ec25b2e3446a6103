package groups

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// The acknowledgement of control messages.
//
// A node that publishes a control message (KindJoin, KindLeave, KindClose) sets the
// acknowledgement flag in its header and learns from PUBLISH how many
// subscribers received it. Each node that receives it delivers it to its
// local members (which apply it before Deliver returns), then publishes the
// message's seq to the publisher's node channel. The publisher's own echo
// counts too: its local members were served at publish time. Publish
// returns when the acknowledgements match the receivers, or after
// ControlTimeout.

// ackWaits are the control messages of this node waiting for
// acknowledgements, by publication seq.
type ackWaits struct {
	// mu guards bySeq and the need and got of every ackWait in it.
	mu    sync.Mutex
	bySeq map[uint64]*ackWait
}

// ackWait counts the acknowledgements of one control message.
type ackWait struct {
	need int           // the receivers PUBLISH reported; -1 until it answers
	got  int           // the acknowledgements received
	done chan struct{} // closed when got reaches need
}

// add starts counting the acknowledgements of publication seq.
func (a *ackWaits) add(seq uint64) *ackWait {
	w := &ackWait{need: -1, done: make(chan struct{})}
	a.mu.Lock()
	a.bySeq[seq] = w
	a.mu.Unlock()
	return w
}

// remove stops counting them.
func (a *ackWaits) remove(seq uint64) {
	a.mu.Lock()
	delete(a.bySeq, seq)
	a.mu.Unlock()
}

// got counts one acknowledgement of publication seq. An acknowledgement of
// a publication no longer waited for is dropped.
func (a *ackWaits) got(seq uint64) {
	a.mu.Lock()
	if w := a.bySeq[seq]; w != nil {
		w.got++
		if w.got == w.need {
			close(w.done)
		}
	}
	a.mu.Unlock()
}

// setNeed records how many acknowledgements w needs and reports whether it
// has them already.
func (a *ackWaits) setNeed(w *ackWait, need int) (complete bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	w.need = need
	return w.got >= w.need
}

// counts returns the acknowledgements w got and needs.
func (a *ackWaits) counts(w *ackWait) (got, need int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return w.got, w.need
}

// awaitAcks waits, at most ControlTimeout, until every one of the
// receivers that PUBLISH counted has acknowledged the control message that
// w counts.
// group is where it was published, target the group it moves members
// into or out of. Running out of time is logged, not returned: the message
// did reach Redis.
func (r *Redis) awaitAcks(ctx context.Context, w *ackWait, receivers int64, group, target string) error {
	if r.acks.setNeed(w, int(receivers)) {
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
	got, need := r.acks.counts(w)
	r.log.Warn("chatmux: nodes did not confirm a membership change in time", "group", group, "target", target, "confirmed", got, "receivers", need, "timeout", r.opts.ControlTimeout)
	return nil
}

// sendAck tells node origin that this node applied its control message
// seq.
func (r *Redis) sendAck(origin, seq uint64) {
	defer r.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.PublishTimeout)
	defer cancel()
	if err := r.client.Publish(ctx, nodeChannel(r.opts.Prefix, origin), encodeSeq(seq)).Err(); err != nil {
		r.log.Warn("chatmux: failed to acknowledge a membership change", "err", err)
	}
}
