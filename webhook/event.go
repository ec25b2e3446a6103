package webhook

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// TypeMessageOffline is the type of the event of a message stored while
// some of its recipients were offline (docs/protocol.md#offline-webhooks).
const TypeMessageOffline = "message.offline"

// Event is one offline webhook event.
type Event struct {
	// ID is the idempotency key: the message's id. An event delivered
	// twice has the same ID; the receiver drops the repeat.
	ID uuid.UUID `json:"id"`
	// Type is TypeMessageOffline.
	Type string `json:"type"`
	// CreatedAt is when the message was stored.
	CreatedAt time.Time `json:"created_at"`
	// Room is the room of the message.
	Room Room `json:"room"`
	// Message is the wire Message object, as in message.dispatch
	// (docs/protocol.md#message).
	Message json.RawMessage `json:"message"`
	// Recipients are the members without a live session when the message
	// was stored, ordered by id.
	Recipients []Recipient `json:"recipients"`
}

// Room names the room of an event.
type Room struct {
	ID   uuid.UUID `json:"id"`
	Name string    `json:"name"`
	// Type is OneToOneChat, GroupChat or Channel.
	Type string `json:"type"`
}

// Recipient is an offline recipient of an event.
type Recipient struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
}

// Body is the JSON body of one webhook request.
type Body struct {
	Events []Event `json:"events"`
}
