package client

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// pending is a request waiting for its final answer. Its fields are
// guarded by Client.mu until done is closed.
type pending struct {
	id          string
	event       string
	frame       []byte
	clientMsgID string // message.send only
	collect     func(Dispatch) bool
	frames      []Dispatch
	err         error
	sock        *sock
	settled     bool
	done        chan struct{}
}

// Request sends an event and returns the dispatches collected until its
// final answer (docs/protocol.md#request-id): those sent to this socket
// with the request's request_id, and those to a room or the user for which
// collect returns true (nil: none). It fails with a *ServerError (the
// error envelope), ErrConnectionLost, ErrRequestTimeout, the client's stop
// error, or ctx's error. While disconnected the request waits for the
// connection, within Options.RequestTimeout. data is encoded with
// encoding/json (nil: no data). Use it for events a host added; the typed
// methods cover the protocol's.
func (c *Client) Request(ctx context.Context, eventType string, data any, collect func(Dispatch) bool) ([]Dispatch, error) {
	return c.request(ctx, eventType, data, collect, c.opts.RequestTimeout, "")
}

func (c *Client) request(ctx context.Context, eventType string, data any, collect func(Dispatch) bool, timeout time.Duration, clientMsgID string) ([]Dispatch, error) {
	raw, err := marshalData(data)
	if err != nil {
		return nil, fmt.Errorf("%s: failed to encode data: %w", eventType, err)
	}
	c.mu.Lock()
	if c.stopErr != nil {
		err := c.stopErr
		c.mu.Unlock()
		return nil, err
	}
	p := &pending{id: c.nextIDLocked(), event: eventType, clientMsgID: clientMsgID, collect: collect, done: make(chan struct{})}
	p.frame = encodeEnvelope(eventType, raw, p.id)
	if s := c.sock; s != nil && s.ready {
		c.transmitLocked(s, p)
	} else {
		c.waiting = append(c.waiting, p)
	}
	c.mu.Unlock()
	return c.await(ctx, p, timeout)
}

// requestOn sends a request on s only (a heartbeat): it fails at once
// when s is not the current connection.
func (c *Client) requestOn(s *sock, eventType string, data any, collect func(Dispatch) bool, timeout time.Duration) ([]Dispatch, error) {
	raw, err := marshalData(data)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.sock != s || c.stopErr != nil {
		c.mu.Unlock()
		return nil, ErrConnectionLost
	}
	p := &pending{id: c.nextIDLocked(), event: eventType, collect: collect, done: make(chan struct{})}
	p.frame = encodeEnvelope(eventType, raw, p.id)
	c.transmitLocked(s, p)
	c.mu.Unlock()
	return c.await(c.ctx, p, timeout)
}

func marshalData(data any) (json.RawMessage, error) {
	switch v := data.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		return v, nil
	}
	return json.Marshal(data)
}

// await waits for p's final answer, the timeout or ctx.
func (c *Client) await(ctx context.Context, p *pending, timeout time.Duration) ([]Dispatch, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return p.frames, p.err
	case <-t.C:
		c.giveUp(p, fmt.Errorf("%s: %w (%v)", p.event, ErrRequestTimeout, timeout))
	case <-ctx.Done():
		c.giveUp(p, ctx.Err())
	}
	<-p.done
	return p.frames, p.err
}

// giveUp settles p with err unless it was answered meanwhile.
func (c *Client) giveUp(p *pending, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, w := range c.waiting {
		if w == p {
			c.waiting = append(c.waiting[:i], c.waiting[i+1:]...)
			break
		}
	}
	c.settleLocked(p, nil, err)
}

// transmitLocked sends p on s.
func (c *Client) transmitLocked(s *sock, p *pending) {
	if c.frameLimit > 0 && len(p.frame) > c.frameLimit {
		c.settleLocked(p, nil, &FrameRejectedError{Code: CloseTooBig, Bytes: len(p.frame), Limit: c.frameLimit, EventType: p.event})
		return
	}
	p.sock = s
	s.inflight[p.id] = p
	s.unanswered = append(s.unanswered, p)
	s.enqueue(p.frame)
}

// settleLocked ends p with frames or err, once.
func (c *Client) settleLocked(p *pending, frames []Dispatch, err error) {
	if p.settled {
		return
	}
	p.settled = true
	if p.sock != nil {
		delete(p.sock.inflight, p.id)
	}
	if err != nil {
		p.frames, p.err = nil, err
	} else {
		p.frames = frames
	}
	close(p.done)
}
