package groups

import (
	"context"
	"encoding/binary"
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
	// KindClose asks every member to close its connection, with the
	// WebSocket close code and reason that Message.Data carries (see
	// CloseMessage and Message.CloseStatus).
	KindClose
)

// Message is what a Broker delivers. It is shared by every recipient and
// must not be modified once published.
type Message struct {
	Kind Kind
	// Data is the encoded frame of a KindData message, or the close code
	// and reason of a KindClose message (see CloseMessage).
	Data []byte
	// Group is the group that a KindJoin or KindLeave message names.
	Group string
}

// CloseMessage returns a KindClose message: its Data is the close code, two
// bytes big-endian, followed by the reason, as in a WebSocket close frame.
// The code must fit in two bytes (the valid close codes do).
func CloseMessage(code int, reason string) *Message {
	data := make([]byte, 2, 2+len(reason))
	binary.BigEndian.PutUint16(data, uint16(code))
	return &Message{Kind: KindClose, Data: append(data, reason...)}
}

// CloseStatus returns the close code and reason of a KindClose message,
// and ok false for any other message or a KindClose message whose Data
// is shorter than a code.
func (m *Message) CloseStatus() (code int, reason string, ok bool) {
	if m.Kind != KindClose || len(m.Data) < 2 {
		return 0, "", false
	}
	return int(binary.BigEndian.Uint16(m.Data)), string(m.Data[2:]), true
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
