// Package metrics exports Prometheus metrics of a chatmux server: events
// by pattern and outcome, handler durations, open connections, slow
// consumers, fan-out sizes and the group frames that stale connections
// dropped while the broker was away.
//
// One Metrics value serves a whole server through three hooks:
//
//	m := metrics.New(prometheus.DefaultRegisterer)
//	events.Use(middleware.Recoverer, m.Middleware)  // events and durations
//	broker := groups.NewMemory()
//	broker.Hub().OnDeliver = m.Delivered             // fan-out sizes
//	srv := chatmux.NewServer(events, chatmux.ServerOptions{
//		Broker: broker, Observer: m,                  // connections
//	})
//	http.Handle("/metrics", promhttp.Handler())
//
// It lives apart from package middleware so that programs that do not
// want Prometheus do not compile its client.
//
// Labels are bounded: the pattern of the route (never the event name a
// client sent; events that match no route are "unmatched") and the outcome
// ("ok" or an error code). Groups are not a label: there can be as many as
// rooms.
package metrics

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/middleware"
)

// Unmatched is the pattern label of events that matched no route.
const Unmatched = "unmatched"

// Metrics collects the metrics of one server. It is a chatmux.Observer
// and a chatmux.StaleObserver (ServerOptions.Observer), its Middleware
// method is a chatmux.Middleware, and its Delivered method fits
// groups.Hub.OnDeliver. It is safe for concurrent use. The metrics are:
//
//	chatmux_events_total{pattern,outcome}            counter
//	chatmux_event_duration_seconds{pattern}          histogram
//	chatmux_connections_open                         gauge
//	chatmux_connections_total                        counter
//	chatmux_queue_overflows_total                    counter
//	chatmux_delivery_members                         histogram
//	chatmux_stale_dropped_total                      counter
type Metrics struct {
	events    *prometheus.CounterVec
	durations *prometheus.HistogramVec
	open      prometheus.Gauge
	conns     prometheus.Counter
	overflows prometheus.Counter
	fanout    prometheus.Histogram
	stale     prometheus.Counter

	// byPattern caches the children of the vectors per pattern: the
	// patterns are the routes, a fixed set. It is copied on write.
	mu        sync.Mutex
	byPattern atomic.Pointer[map[string]*patternMetrics]
}

type patternMetrics struct {
	label    string
	duration prometheus.Observer
	ok       prometheus.Counter
	mu       sync.Mutex
	outcomes atomic.Pointer[map[string]prometheus.Counter]
}

var (
	_ chatmux.Observer      = (*Metrics)(nil)
	_ chatmux.StaleObserver = (*Metrics)(nil)
)

// New returns a Metrics whose collectors are registered with reg (nil
// means prometheus.DefaultRegisterer). It panics when they are already
// registered there, as prometheus.MustRegister does: make one Metrics per
// registry.
func New(reg prometheus.Registerer) *Metrics {
	if reg == nil {
		reg = prometheus.DefaultRegisterer
	}
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "chatmux",
			Name:      "events_total",
			Help:      "Events handled, by route pattern and outcome (ok or the error code answered).",
		}, []string{"pattern", "outcome"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "chatmux",
			Name:      "event_duration_seconds",
			Help:      "Time spent in the middleware and handler of an event, by route pattern.",
			Buckets:   []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"pattern"}),
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "chatmux",
			Name:      "connections_open",
			Help:      "WebSocket connections open now.",
		}),
		conns: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "chatmux",
			Name:      "connections_total",
			Help:      "WebSocket connections accepted (authenticated or anonymous).",
		}),
		overflows: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "chatmux",
			Name:      "queue_overflows_total",
			Help:      "Connections closed as slow consumers (4008): their outbound queue overflowed.",
		}),
		fanout: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "chatmux",
			Name:      "delivery_members",
			Help:      "Local members reached by one delivery of a dispatch to a group.",
			Buckets:   prometheus.ExponentialBuckets(1, 4, 9), // 1 .. 65536
		}),
		stale: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "chatmux",
			Name:      "stale_dropped_total",
			Help:      "Group data frames (room and user dispatches) dropped by stale connections while the broker was away; clients fetch them after chat.resync.",
		}),
	}
	empty := map[string]*patternMetrics{}
	m.byPattern.Store(&empty)
	reg.MustRegister(m.events, m.durations, m.open, m.conns, m.overflows, m.fanout, m.stale)
	return m
}

// Middleware is a chatmux.Middleware that counts events by pattern and
// outcome and observes their durations. Put it before RateLimit and the
// auth checks, so that what they refuse is counted too. A panic that
// unwinds through it is counted as the 4006 that Recoverer answers, and
// goes on unwinding. A pattern's "ok" series exists from its first event.
func (m *Metrics) Middleware(next chatmux.Handler) chatmux.Handler {
	return func(c *chatmux.Context) error {
		start := time.Now()
		done := false
		defer func() {
			if !done {
				m.observe(c.Pattern(), start, errPanicked)
			}
		}()
		err := next(c)
		done = true
		m.observe(c.Pattern(), start, err)
		return err
	}
}

// errPanicked stands for a panic: Recoverer answers it with 4006.
var errPanicked = chatmux.Internal(nil)

func (m *Metrics) observe(pattern string, start time.Time, err error) {
	pm := m.pattern(pattern)
	pm.duration.Observe(time.Since(start).Seconds())
	if err == nil {
		pm.ok.Inc()
	} else {
		pm.outcome(m, middleware.Outcome(err)).Inc()
	}
}

// pattern returns the cached children of a pattern ("" for unmatched).
func (m *Metrics) pattern(p string) *patternMetrics {
	if pm := (*m.byPattern.Load())[p]; pm != nil {
		return pm
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.byPattern.Load()
	if pm := old[p]; pm != nil {
		return pm
	}
	label := p
	if label == "" {
		label = Unmatched
	}
	pm := &patternMetrics{
		label:    label,
		duration: m.durations.WithLabelValues(label),
		ok:       m.events.WithLabelValues(label, "ok"),
	}
	outcomes := map[string]prometheus.Counter{}
	pm.outcomes.Store(&outcomes)
	next := make(map[string]*patternMetrics, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[p] = pm
	m.byPattern.Store(&next)
	return pm
}

// outcome returns the counter of an error outcome of the pattern.
func (pm *patternMetrics) outcome(m *Metrics, o string) prometheus.Counter {
	if ctr := (*pm.outcomes.Load())[o]; ctr != nil {
		return ctr
	}
	pm.mu.Lock()
	defer pm.mu.Unlock()
	old := *pm.outcomes.Load()
	if ctr := old[o]; ctr != nil {
		return ctr
	}
	ctr := m.events.WithLabelValues(pm.label, o)
	next := make(map[string]prometheus.Counter, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[o] = ctr
	pm.outcomes.Store(&next)
	return ctr
}

// ConnOpened implements chatmux.Observer.
func (m *Metrics) ConnOpened(*chatmux.Conn) {
	m.open.Inc()
	m.conns.Inc()
}

// ConnClosed implements chatmux.Observer.
func (m *Metrics) ConnClosed(*chatmux.Conn) { m.open.Dec() }

// QueueOverflow implements chatmux.Observer.
func (m *Metrics) QueueOverflow(*chatmux.Conn) { m.overflows.Inc() }

// StaleDropped implements chatmux.StaleObserver: it counts a group data
// frame that a stale connection dropped because the server's broker had
// lost contact with the other nodes (docs/protocol.md#faults).
func (m *Metrics) StaleDropped(*chatmux.Conn) { m.stale.Inc() }

// Delivered observes the number of local members one delivery to a group
// reached. Its signature is that of groups.Hub.OnDeliver:
//
//	broker.Hub().OnDeliver = m.Delivered
//
// The group's name is not recorded: there can be as many groups as rooms.
func (m *Metrics) Delivered(group string, members int) {
	m.fanout.Observe(float64(members))
}
