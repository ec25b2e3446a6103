package store

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// ReceiptStore keeps delivery and read receipts.
type ReceiptStore interface {
	// Acknowledge adds userID to delivered_to of the messages and removes
	// userID from the recipients of their notifications, deleting
	// notifications left without recipients (message.acknowledged). The
	// user's own messages are skipped. Any missing or soft-deleted id is
	// ErrNotFound and nothing changes. The result lists the acknowledged ids
	// (own messages excluded), in input order. An unknown userID is
	// ErrConflict.
	Acknowledge(ctx context.Context, userID int64, messageIDs []uuid.UUID) ([]uuid.UUID, error)
	// MarkRead inserts read receipts of readerID, skipping own messages and
	// messages already read; it returns the receipts newly created, in input
	// order (message.read). Any missing or soft-deleted id is ErrNotFound and
	// nothing changes.
	MarkRead(ctx context.Context, readerID int64, messageIDs []uuid.UUID) ([]ReadReceipt, error)
}

// NotificationStore reads the notifications still pending for a user.
type NotificationStore interface {
	// PendingNotifications returns the notifications that still list userID
	// as a recipient, grouped by room; rooms ordered by their newest
	// notification's message time, newest first, and notifications in a
	// room newest message first (chat.notifications).
	PendingNotifications(ctx context.Context, userID int64) ([]RoomNotifications, error)
}

// ReadReceipt records that a reader read a message.
type ReadReceipt struct {
	ID        uuid.UUID `db:"id"`
	MessageID uuid.UUID `db:"message_id"`
	ReaderID  int64     `db:"reader_id"`
	ReadAt    time.Time `db:"read_at"`
}

// ReadReceiptView is a read receipt with its reader, ordered by read time.
type ReadReceiptView struct {
	ReadReceipt
	Reader User
}

// NotificationType is the kind of a notification.
type NotificationType string

// The three notification types.
const (
	NotifyNewMessage NotificationType = "NEW_MESSAGE"
	NotifyReply      NotificationType = "REPLY"
	NotifyReaction   NotificationType = "REACTION"
)

// Notification is a pending notification about a message.
type Notification struct {
	ID        uuid.UUID        `db:"id"`
	Type      NotificationType `db:"type"`
	MessageID uuid.UUID        `db:"message_id"`
	RoomID    uuid.UUID        `db:"room_id"`
	// ReactionID links a REACTION notification to its reaction.
	ReactionID *uuid.UUID `db:"reaction_id"`
	// Recipients are the users still to be notified, ascending (never empty).
	Recipients []int64
	CreatedAt  time.Time `db:"created_at"`
}

// NotificationView is a notification with its message.
type NotificationView struct {
	ID      uuid.UUID
	Type    NotificationType
	Message MessageView
}

// RoomNotifications are one room's pending notifications of a user.
type RoomNotifications struct {
	RoomID        uuid.UUID
	Notifications []NotificationView
}
