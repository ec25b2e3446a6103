package groups

import (
	"context"
	"strconv"
)

// Kind says what a Message asks of its recipients.
type Kind uint8

const (
	// KindData carries a frame for every member to send.
	KindData Kind = iota
	// KindJoin asks every member to join Message.Group.
	KindJoin
	// KindLeave asks every member to leave Message.Group.
	KindLeave
)

// Message is what a Broker delivers. It is shared by every recipient and
// must not be modified once published.
type Message struct {
	Kind Kind
	// Data is the encoded frame of a KindData message.
	Data []byte
	// Group is the group that a KindJoin or KindLeave message names.
	Group string
}

// Member receives the messages of the groups it belongs to. Deliver is
// called from the publisher's or the broker's goroutine: it must not block
// (queue and return).
type Member interface {
	Deliver(m *Message)
}

// Broker fans messages out to the members of groups. Implementations are
// safe for concurrent use.
type Broker interface {
	// Join adds a local member to a group.
	Join(ctx context.Context, group string, m Member) error
	// Leave removes a local member from a group. Leaving a group one is
	// not in does nothing.
	Leave(ctx context.Context, group string, m Member) error
	// Publish delivers m to every member of group, on every node.
	Publish(ctx context.Context, group string, m *Message) error
	// Close releases the broker's resources.
	Close() error
}

// Availability is implemented by brokers that can lose contact with the other nodes (Redis).
type Availability interface {
	// OnAvailability registers f. The broker calls f(false) as soon as it knows it has lost its
	// connection (messages from other nodes may be missed from then on) and f(true) once it is
	// back AND every subscription it holds is confirmed again. Calls are serialised, never
	// concurrent, in order, and come from a goroutine of the broker; f must not block for long.
	OnAvailability(f func(available bool))
}

// Room returns the name of a room's group: "group-<id>".
func Room(id string) string { return "group-" + id }

// User returns the name of the group of all connections of a user:
// "user-<id>".
func User(id int64) string { return "user-" + strconv.FormatInt(id, 10) }
