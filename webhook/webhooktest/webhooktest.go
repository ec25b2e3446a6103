// Package webhooktest provides a receiver of offline webhooks for tests
// (docs/protocol.md#offline-webhooks), as net/http/httptest provides
// servers: it is meant for the tests of hosts and of chatmux itself.
//
// A Receiver is an HTTP server on loopback that checks every request as a
// host's receiver should (the Content-Type, webhook.Verify on the raw
// body, then a webhook.Body), records the events by id, and counts what it
// saw. It can be told to fail requests (the first few, or all of them for
// a while) and to hold them, so that a test can watch delivery, retries
// and a sender that must never wait for its receiver.
package webhooktest

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux/webhook"
)

// Options are the settings of a Receiver; the zero value verifies and
// records every request and answers 204.
type Options struct {
	// Tolerance is the timestamp tolerance given to webhook.Verify;
	// 0 means webhook.DefaultTolerance.
	Tolerance time.Duration
	// FailFirst is how many requests, from the first that pass the
	// checks (see Stats.Bad), are answered FailStatus instead of being
	// recorded.
	FailFirst int
	// FailStatus is the status of a failed request; 0 means 503.
	FailStatus int
	// Hold, if not nil, holds every request, once it is counted and its
	// events recorded, until Hold is closed, the client gives up, or the
	// Receiver is closed; the request is then answered as it would have
	// been at once (its events stay recorded if the client gave up).
	Hold <-chan struct{}
}

// Stats are the counts of a Receiver.
type Stats struct {
	// Requests counts every request, whatever its answer.
	Requests int
	// Failed counts the requests answered a failing status (FailFirst,
	// Fail).
	Failed int
	// Bad counts the requests refused: a Content-Type other than
	// application/json (415), a signature or timestamp that
	// webhook.Verify rejects (401), or a body that is not a webhook.Body
	// (400). They are never failed nor recorded.
	Bad int
	// Events counts the events recorded, repeats included.
	Events int
	// Unique counts the distinct ids among the events recorded.
	Unique int
}

// Receiver is a webhook receiver on loopback; its methods are safe for
// concurrent use.
type Receiver struct {
	srv       *httptest.Server
	secret    []byte
	opts      Options
	arrived   chan struct{}
	closed    chan struct{}
	closeOnce sync.Once

	mu    sync.Mutex
	fail  int // the status of Fail; 0: none
	stats Stats
	byID  map[uuid.UUID]webhook.Event
}

// arrivedBuffer is how many unread values Arrived holds.
const arrivedBuffer = 1024

// NewReceiver starts a Receiver that verifies requests signed with secret;
// it is closed when the test ends.
func NewReceiver(t testing.TB, secret []byte, opts Options) *Receiver {
	if opts.FailStatus == 0 {
		opts.FailStatus = http.StatusServiceUnavailable
	}
	r := &Receiver{
		secret:  secret,
		opts:    opts,
		arrived: make(chan struct{}, arrivedBuffer),
		closed:  make(chan struct{}),
		byID:    map[uuid.UUID]webhook.Event{},
	}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

// URL is the receiver's URL, to give a webhook.Config.
func (r *Receiver) URL() string { return r.srv.URL }

// Close releases the held requests, then shuts the server down and waits
// for its requests to finish. It may be called more than once.
func (r *Receiver) Close() {
	r.closeOnce.Do(func() {
		close(r.closed)
		r.srv.Close()
	})
}

// Fail makes the receiver answer status to every request from now on,
// instead of recording it (once FailFirst is spent); Fail(0) ends it.
func (r *Receiver) Fail(status int) {
	r.mu.Lock()
	r.fail = status
	r.mu.Unlock()
}

// Stats returns the counts so far, taken together.
func (r *Receiver) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats
	s.Unique = len(r.byID)
	return s
}

// Events returns a copy of the events recorded, by id; of an event
// received more than once, the last copy.
func (r *Receiver) Events() map[uuid.UUID]webhook.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.byID)
}

// Arrived receives one value per request, sent once the request is
// counted and before it is held or answered. It is best effort: beyond
// 1024 unread values, the next are dropped.
func (r *Receiver) Arrived() <-chan struct{} { return r.arrived }

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	status := r.record(req, body, err)
	select {
	case r.arrived <- struct{}{}:
	default:
	}
	if r.opts.Hold != nil {
		select {
		case <-r.opts.Hold:
		case <-r.closed:
		case <-req.Context().Done():
		}
	}
	w.WriteHeader(status)
}

// record counts the request, records its events if it is to succeed, and
// returns the status to answer.
func (r *Receiver) record(req *http.Request, body []byte, readErr error) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.Requests++
	if req.Header.Get("Content-Type") != "application/json" {
		r.stats.Bad++
		return http.StatusUnsupportedMediaType
	}
	if readErr != nil || webhook.Verify(r.secret, req.Header, body, r.opts.Tolerance, time.Now()) != nil {
		r.stats.Bad++
		return http.StatusUnauthorized
	}
	var b webhook.Body
	if err := json.Unmarshal(body, &b); err != nil {
		r.stats.Bad++
		return http.StatusBadRequest
	}
	switch {
	case r.stats.Requests-r.stats.Bad <= r.opts.FailFirst:
		r.stats.Failed++
		return r.opts.FailStatus
	case r.fail != 0:
		r.stats.Failed++
		return r.fail
	}
	for _, e := range b.Events {
		r.stats.Events++
		r.byID[e.ID] = e
	}
	return http.StatusNoContent
}
