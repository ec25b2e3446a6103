package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// sock is one WebSocket connection. Its maps are guarded by Client.mu.
type sock struct {
	ws      *websocket.Conn
	helloID string
	ready   bool
	// inflight are the requests sent on it waiting for their final answer.
	inflight map[string]*pending
	// unanswered are the requests sent on it whose final answer has not
	// come (settled by a timeout or not), in the order sent: what a 1007
	// or 1009 close may be about.
	unanswered []*pending
	killReason string

	outMu   sync.Mutex
	out     [][]byte
	outWake chan struct{}
	done    chan struct{} // closed when the connection is over
	readyCh chan struct{} // closed once the hello is answered
}

// enqueue queues a frame for the writer.
func (s *sock) enqueue(frame []byte) {
	s.outMu.Lock()
	s.out = append(s.out, frame)
	s.outMu.Unlock()
	select {
	case s.outWake <- struct{}{}:
	default:
	}
}

// kill drops the connection without a close handshake.
func (s *sock) kill(reason string) {
	s.outMu.Lock()
	if s.killReason == "" {
		s.killReason = reason
	}
	s.outMu.Unlock()
	_ = s.ws.CloseNow()
}

func (s *sock) killedFor() string {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	return s.killReason
}

// writer writes the queued frames in order until the connection is over.
func (s *sock) writer(ctx context.Context) {
	for {
		select {
		case <-s.outWake:
		case <-s.done:
			return
		}
		for {
			s.outMu.Lock()
			q := s.out
			s.out = nil
			s.outMu.Unlock()
			if len(q) == 0 {
				break
			}
			for _, f := range q {
				wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err := s.ws.Write(wctx, websocket.MessageText, f)
				cancel()
				if err != nil {
					s.kill("write failed")
					return
				}
			}
		}
	}
}

// serve runs one open connection until it closes (see attemptOnce).
func (c *Client) serve(ws *websocket.Conn) (code int, closeReason, why string, err error) {
	c.mu.Lock()
	s := &sock{
		ws:       ws,
		helloID:  c.nextIDLocked(),
		inflight: map[string]*pending{},
		outWake:  make(chan struct{}, 1),
		done:     make(chan struct{}),
		readyCh:  make(chan struct{}),
	}
	if c.stopErr != nil {
		c.mu.Unlock()
		_ = ws.CloseNow()
		return 0, "", "closed by client", c.stopErr
	}
	c.sock = s
	c.mu.Unlock()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		s.writer(c.ctx)
	}()
	go func() {
		defer wg.Done()
		c.keepAlive(s)
	}()
	// The first request tells whether the server echoes request_id.
	s.enqueue(encodeEnvelope("session.heartbeat", nil, s.helloID))

	code, closeReason = c.read(s)
	why = "closed by server"
	if k := s.killedFor(); k != "" {
		why = k
	}
	c.mu.Lock()
	c.closedLocked(s, code, closeReason, why)
	noEcho := s.killedFor() == errNoEcho
	c.mu.Unlock()
	close(s.done)
	_ = ws.CloseNow()
	wg.Wait()
	if noEcho {
		return code, closeReason, why, ErrNoRequestID
	}
	return code, closeReason, why, nil
}

const errNoEcho = "the server does not echo request_id"

// keepAlive drops a connection whose hello is not answered within the
// connect timeout, then sends session.heartbeat every HeartbeatInterval and
// drops the connection when one gets no answer within HeartbeatTimeout.
func (c *Client) keepAlive(s *sock) {
	t := time.NewTimer(c.opts.ConnectTimeout)
	select {
	case <-s.readyCh:
		t.Stop()
	case <-t.C:
		s.kill("connect timeout")
		return
	case <-s.done:
		t.Stop()
		return
	}
	tick := time.NewTicker(c.opts.HeartbeatInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-s.done:
			return
		}
		_, err := c.requestOn(s, "session.heartbeat", nil, nil, c.opts.HeartbeatTimeout)
		if errors.Is(err, ErrRequestTimeout) {
			s.kill("heartbeat timeout")
			return
		}
	}
}

// read reads frames until the connection closes, and returns its close
// code and reason (1006 and "" without a close frame).
func (c *Client) read(s *sock) (int, string) {
	for {
		_, b, err := s.ws.Read(c.ctx)
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				return int(ce.Code), ce.Reason
			}
			return closeNoStatus, ""
		}
		frames, err := decodeFrames(b)
		if err != nil {
			c.reportError(err)
			continue
		}
		c.mu.Lock()
		if len(frames) > 1 {
			c.stats.Batches++
		}
		for _, f := range frames {
			if c.sock != s {
				break
			}
			c.handleFrameLocked(s, f)
		}
		c.mu.Unlock()
	}
}

// frame is one frame from the server (docs/protocol.md#other-frames).
type frame struct {
	EventType *string         `json:"eventType"`
	Data      json.RawMessage `json:"data"`
	RequestID *string         `json:"request_id"`
	Error     json.RawMessage `json:"error"`
	Status    string          `json:"status"`
	OK        bool            `json:"ok"`
}

// decodeFrames parses one WebSocket message into its frames: one object,
// or with batched delivery an array of objects, in order.
func decodeFrames(b []byte) ([]frame, error) {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		var fs []frame
		if err := json.Unmarshal(b, &fs); err != nil {
			return nil, errors.New("failed to decode a batch of frames: " + err.Error())
		}
		return fs, nil
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, errors.New("failed to decode a frame: " + err.Error())
	}
	return []frame{f}, nil
}

// encodeEnvelope returns the client envelope (docs/protocol.md#client-envelope).
func encodeEnvelope(eventType string, data json.RawMessage, requestID string) []byte {
	env := struct {
		EventType string          `json:"event_type"`
		Data      json.RawMessage `json:"data,omitempty"`
		RequestID string          `json:"request_id,omitempty"`
	}{eventType, data, requestID}
	b, _ := json.Marshal(env) // a string and raw JSON: cannot fail
	return b
}

func (c *Client) nextIDLocked() string {
	c.reqSeq++
	return "r" + strconv.FormatUint(c.reqSeq, 36)
}

func (c *Client) handleFrameLocked(s *sock, f frame) {
	rid := ""
	if f.RequestID != nil {
		rid = *f.RequestID
	}
	if f.EventType != nil {
		d := Dispatch{EventType: *f.EventType, Data: f.Data, RequestID: rid}
		c.collectLocked(s, d)
		c.handleDispatchLocked(d)
		return
	}
	if len(f.Error) > 0 && string(f.Error) != "null" {
		err := parseServerError(f.Error)
		if !s.ready {
			if rid == s.helloID {
				c.readyLocked(s)
			} else if rid == "" {
				s.kill(errNoEcho)
			}
			return
		}
		c.removeUnansweredLocked(s, rid)
		if p := s.inflight[rid]; rid != "" && p != nil {
			err.EventType = p.event
			c.settleLocked(p, nil, err)
			return
		}
		c.reportError(err)
		return
	}
	if f.Status == "success" || f.OK {
		if !s.ready {
			if rid == s.helloID {
				c.readyLocked(s)
			} else if rid == "" && f.Status == "success" {
				s.kill(errNoEcho)
			}
			return
		}
		if !f.OK || rid == "" {
			return // a heartbeat's status: its ok frame follows
		}
		c.removeUnansweredLocked(s, rid)
		if p := s.inflight[rid]; p != nil {
			c.settleLocked(p, p.frames, nil)
		}
	}
}

func parseServerError(raw json.RawMessage) *ServerError {
	if len(raw) > 0 && raw[0] == '"' {
		return &ServerError{Detail: raw}
	}
	var e struct {
		Code   int             `json:"code"`
		Detail json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(raw, &e) != nil {
		return &ServerError{Detail: raw}
	}
	return &ServerError{Code: e.Code, Detail: e.Detail}
}

func (c *Client) removeUnansweredLocked(s *sock, rid string) {
	for i, p := range s.unanswered {
		if p.id == rid {
			s.unanswered = append(s.unanswered[:i], s.unanswered[i+1:]...)
			return
		}
	}
}

// collectLocked hands a dispatch to the open requests that want it.
func (c *Client) collectLocked(s *sock, d Dispatch) {
	if d.RequestID != "" {
		if p := s.inflight[d.RequestID]; p != nil {
			p.frames = append(p.frames, d)
			return
		}
	}
	for _, p := range s.inflight {
		if p.collect != nil && p.collect(d) {
			p.frames = append(p.frames, d)
		}
	}
}

// readyLocked: the hello was answered; the connection is usable.
func (c *Client) readyLocked(s *sock) {
	s.ready = true
	close(s.readyCh)
	c.attempt = 0
	c.authFailures = 0
	c.stats.Connections++
	reason := "reconnect"
	if c.stats.Connections == 1 {
		reason = "connect"
	}
	c.setStateLocked(StateChange{State: StateConnected, Reason: reason, WillReconnect: true})
	waiting := c.waiting
	c.waiting = nil
	for _, p := range waiting {
		c.transmitLocked(s, p)
	}
	c.pumpOutboxLocked()
	for _, r := range c.rooms {
		c.catchUpLocked(r)
	}
}

var closeLimitRe = regexp.MustCompile(`over (\d+) bytes`)

// closedLocked forgets a connection that closed with code.
func (c *Client) closedLocked(s *sock, code int, closeReason, why string) {
	if c.sock != s {
		return
	}
	var refused []*pending
	var errs []error
	if (code == CloseUnsupported || code == CloseTooBig) && len(s.unanswered) > 0 {
		refused = c.offendersLocked(s, code, closeReason)
		for _, p := range refused {
			errs = append(errs, &FrameRejectedError{Code: code, Bytes: len(p.frame), EventType: p.event})
		}
	}
	for i, p := range refused {
		c.settleLocked(p, nil, errs[i])
	}
	c.dropSockLocked(s, ErrConnectionLost)
	// docs/protocol.md#close-codes: never send again the frame that
	// caused 1007 or 1009.
	for i, p := range refused {
		if it := c.outboxByID[p.clientMsgID]; p.clientMsgID != "" && it != nil {
			c.failSendLocked(it, errs[i])
		}
	}
}

// offendersLocked returns the requests a 1007 or 1009 close is about. 1007:
// the server answers every event before the frame that is not UTF-8, so it
// is the first unanswered one. 1009: any unanswered one over the limit the
// close states (the limit is kept), or the largest one.
func (c *Client) offendersLocked(s *sock, code int, closeReason string) []*pending {
	if code == CloseUnsupported {
		return s.unanswered[:1]
	}
	if m := closeLimitRe.FindStringSubmatch(closeReason); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil && n > 0 {
			c.frameLimit = n
			var over []*pending
			for _, p := range s.unanswered {
				if len(p.frame) > n {
					over = append(over, p)
				}
			}
			if len(over) > 0 {
				return over
			}
		}
	}
	big := s.unanswered[0]
	for _, p := range s.unanswered {
		if len(p.frame) > len(big.frame) {
			big = p
		}
	}
	return []*pending{big}
}

// dropSockLocked forgets a connection: its open requests fail with err
// and the messages it carried go back to the outbox's queue, as replays.
func (c *Client) dropSockLocked(s *sock, err error) {
	if c.sock == s {
		c.sock = nil
	}
	for _, p := range s.inflight {
		c.settleLocked(p, nil, err)
	}
	s.unanswered = nil
	for _, it := range c.outbox {
		if it.state == stateInflight {
			it.state = stateQueued
		}
		it.replay = true
	}
}
