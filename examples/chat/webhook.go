package main

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatmux/chatmux/store"
	"github.com/chatmux/chatmux/webhook"
)

// Offline webhooks (docs/protocol.md#offline-webhooks): with
// CHATMUX_WEBHOOK_URL and CHATMUX_WEBHOOK_SECRET the server runs a
// dispatcher and, on PostgreSQL, a relay of the outbox. Both start with
// the server and stop at its shutdown, after the connections have drained
// (no send is in flight then): the queue is sent within what is left of
// the shutdown timeout; what is not delivered by then stays in the
// PostgreSQL outbox for the other nodes (or this one when it restarts), and
// is lost with the memory store.

// newWebhooks returns the dispatcher of cfg's webhooks (nil when they are
// off), with the store's outbox when it keeps one. It is not started.
func newWebhooks(cfg config, st store.Store, logger *slog.Logger) (*webhook.Dispatcher, error) {
	if !cfg.webhooks() {
		return nil, nil
	}
	wc := webhook.Config{URL: cfg.WebhookURL, Secret: cfg.WebhookSecret, Timeout: cfg.WebhookTimeout, Lease: cfg.WebhookLease,
		Logger: logger}
	if ob, ok := st.(store.WebhookOutbox); ok {
		wc.Outbox = ob
	}
	return webhook.New(wc)
}

// startWebhooks starts the dispatcher and the relay (stopWebhooks stops
// them).
func (a *app) startWebhooks() {
	if a.hooks == nil {
		return
	}
	a.hooks.Start()
	relay := a.svc.WebhookRelay(webhook.RelayConfig{Logger: a.logger})
	a.relayDone = make(chan struct{})
	ctx, stop := context.WithCancel(context.Background())
	a.stopRelay = stop
	go func() {
		defer close(a.relayDone)
		if relay != nil {
			relay.Run(ctx)
		}
	}()
	a.logger.Info("chat: offline webhooks on", "url", a.cfg.WebhookURL, "outbox", a.hooks.Outbox() != nil)
}

// stopWebhooks stops the relay, then sends what is queued until ctx ends.
func (a *app) stopWebhooks(ctx context.Context) error {
	if a.hooks == nil {
		return nil
	}
	a.stopRelay()
	<-a.relayDone
	err := a.hooks.Shutdown(ctx)
	s := a.hooks.Stats()
	a.logger.Info("chat: offline webhooks stopped", "delivered", s.Delivered, "retried", s.Retried, "dropped", s.Dropped,
		"left_in_outbox", s.Deferred, "expired", s.Expired)
	return err
}

// webhookCollector exports a dispatcher's counts:
//
//	chatmux_webhook_events_total{result}   counter: events delivered, retried, dropped, deferred (left to the outbox) and expired
//	chatmux_webhook_requests_total{status} counter: requests by status class (2xx, 3xx, 4xx, 5xx, error)
//	chatmux_webhook_queue_length           gauge: events waiting in memory
type webhookCollector struct {
	d                       *webhook.Dispatcher
	events, requests, queue *prometheus.Desc
}

func newWebhookCollector(d *webhook.Dispatcher) *webhookCollector {
	return &webhookCollector{
		d: d,
		events: prometheus.NewDesc("chatmux_webhook_events_total",
			"Offline webhook events by result: delivered, retried (in a failed request), dropped (lost: queue full without an outbox, "+
				"or left at shutdown), deferred (left to the PostgreSQL outbox), expired (older than the maximum age).",
			[]string{"result"}, nil),
		requests: prometheus.NewDesc("chatmux_webhook_requests_total",
			"Offline webhook requests by status class (2xx, 3xx, 4xx, 5xx; error: no answer).", []string{"status"}, nil),
		queue: prometheus.NewDesc("chatmux_webhook_queue_length", "Offline webhook events waiting in memory.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *webhookCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.events
	ch <- c.requests
	ch <- c.queue
}

// Collect implements prometheus.Collector.
func (c *webhookCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.d.Stats()
	for _, r := range []struct {
		name string
		n    uint64
	}{{"delivered", s.Delivered}, {"retried", s.Retried}, {"dropped", s.Dropped}, {"deferred", s.Deferred}, {"expired", s.Expired}} {
		ch <- prometheus.MustNewConstMetric(c.events, prometheus.CounterValue, float64(r.n), r.name)
	}
	for status, n := range s.Requests {
		ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(n), status)
	}
	ch <- prometheus.MustNewConstMetric(c.queue, prometheus.GaugeValue, float64(s.Queued))
}
