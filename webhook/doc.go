// Package webhook delivers offline webhooks: when a message is stored and
// some of its recipients have no live session, chatmux POSTs a signed JSON
// body to a URL of the host's, which then pushes the message to them by
// whatever means it has (docs/protocol.md#offline-webhooks).
//
// A body is {"events": [Event, ...]}. It is signed with HMAC-SHA256 over
// "<timestamp>.<body>" with a shared secret (Sign); a Go receiver checks
// it with Verify, which also rejects an old timestamp (a replay). Delivery
// is at least once: every Event has an ID (the message's id), by which the
// receiver drops repeats.
//
// A Dispatcher holds a bounded queue of pending events and a sender that
// posts them in batches of up to MaxBatch, retrying a failed batch with
// exponential backoff and full jitter. An event that does not fit the
// queue is never waited for: it is counted and logged, and, without an
// outbox, lost. With an Outbox (the PostgreSQL store's webhook_outbox
// table, written in the transaction of the message), the outbox is the
// queue: a delivered event's row is deleted, a failed one is rescheduled,
// and a Relay on every node claims the rows whose lease has expired (those
// of a node that crashed between the commit and the call, those that did
// not fit a queue, and those rescheduled after a failure), so no event is
// lost with a node.
//
// Package webhooktest provides a receiver for tests.
package webhook
