package groups

import (
	"context"
	"errors"
	"sync/atomic"
)

// ErrClosed is returned by a broker's methods after Close.
var ErrClosed = errors.New("groups: broker closed")

// Memory is the in-process broker: one node, delivery in the publisher's
// goroutine. It is the default.
type Memory struct {
	hub    *Hub
	closed atomic.Bool
}

var _ Broker = (*Memory)(nil)

// NewMemory returns an in-process broker.
func NewMemory() *Memory { return &Memory{hub: NewHub()} }

// Hub returns the broker's local index (to set OnDeliver, or to inspect).
func (b *Memory) Hub() *Hub { return b.hub }

// Join implements Broker.
func (b *Memory) Join(_ context.Context, group string, m Member) error {
	if b.closed.Load() {
		return ErrClosed
	}
	b.hub.Join(group, m)
	return nil
}

// Leave implements Broker.
func (b *Memory) Leave(_ context.Context, group string, m Member) error {
	b.hub.Leave(group, m)
	return nil
}

// Publish implements Broker. Delivery to local members has happened when it
// returns.
func (b *Memory) Publish(_ context.Context, group string, m *Message) error {
	if b.closed.Load() {
		return ErrClosed
	}
	b.hub.Deliver(group, m)
	return nil
}

// Close implements Broker.
func (b *Memory) Close() error {
	b.closed.Store(true)
	return nil
}
