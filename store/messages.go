package store

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
)

// MessageStore keeps the messages of the rooms, with their attachments,
// and reads them back: by id, by page or by sequence number.
type MessageStore interface {
	// SendMessage stores a message with the room's next seq, its
	// attachments, the room's new last message and (when m.Notify) a
	// NEW_MESSAGE or REPLY notification for every other member, in one
	// transaction. With a ClientMsgID already used by the same sender in the
	// same room it stores nothing and returns the original message with
	// Duplicate true. A reply that is also a forward is ErrConflict; a parent
	// or forwarded message that does not exist is a *ValidationError on
	// "parent_message_id" / "forwarded_from_id"; a missing room ErrNotFound;
	// a sender who is not a user ErrConflict. Membership is checked only
	// with m.CheckSender (ErrNotMember, ErrCannotSend; after ErrNotFound,
	// before everything else; never for the system). Content is stored as
	// given (sanitising is chat's job). With m.Offline the result lists the
	// members to be told by an offline webhook, computed in the same
	// transaction, and a store that keeps a webhook outbox (WebhookOutbox)
	// writes the event's row in it with m.OutboxLease
	// (docs/protocol.md#offline-webhooks).
	// SenderID 0 is the system: the message has no sender (SenderID 0 and
	// an empty Sender when read back), its notification goes to every
	// member, and its ClientMsgID is unique among the system's messages of
	// the room (docs/protocol.md#system-messages).
	SendMessage(ctx context.Context, m NewMessage) (SendResult, error)
	// Messages returns the messages with the given ids that exist (soft
	// deleted ones included: check IsDeleted), in the order of ids.
	Messages(ctx context.Context, ids []uuid.UUID) ([]Message, error)
	// MessageViews loads everything the wire Message object needs for the
	// given ids (soft-deleted included), in the order of ids, batch-loaded.
	MessageViews(ctx context.Context, ids []uuid.UUID) ([]MessageView, error)
	// MessagesPage returns one page of a room's visible messages, newest
	// first (room.messages with paginate). page < 1 or past the last page
	// gives the last page, and the result carries the effective page. size 0
	// means no pagination: every visible message in one page. A negative
	// size is a *ValidationError.
	MessagesPage(ctx context.Context, roomID uuid.UUID, page, size int) (MessagePage, error)
	// MessagesAfter returns up to limit visible messages with seq > afterSeq,
	// oldest first (catch-up after a reconnect). limit < 1 is a
	// *ValidationError; a missing room ErrNotFound.
	MessagesAfter(ctx context.Context, roomID uuid.UUID, afterSeq int64, limit int) ([]MessageView, error)
	// MessagesBefore returns up to limit visible messages with seq <
	// beforeSeq, newest first (scroll back). Errors as MessagesAfter.
	MessagesBefore(ctx context.Context, roomID uuid.UUID, beforeSeq int64, limit int) ([]MessageView, error)
	// EditMessage replaces the content (and merges extra keys into Extra) of
	// a message and sets IsEdited (message.modify update). A missing or soft
	// deleted message is ErrNotFound.
	EditMessage(ctx context.Context, messageID uuid.UUID, content string, extra JSON) (Message, error)
	// DeleteMessages deletes messages, soft (IsDeleted) or hard, together
	// with all their notifications, and moves each affected room's last
	// message to its latest visible message (message.modify delete).
	// Missing ids (and, for a soft delete, already soft-deleted ones) are
	// skipped; the result lists the ids deleted, in input order. A hard
	// delete sets the parent/forward links of other messages to it to nil.
	DeleteMessages(ctx context.Context, ids []uuid.UUID, hard bool) ([]uuid.UUID, error)
}

// ReactionStore keeps one reaction per user and message.
type ReactionStore interface {
	// AddReaction sets the user's reaction on a message, replacing (and
	// deleting the notification of) a reaction with different content; the
	// same content again is ErrConflict. With r.Notify a REACTION
	// notification for every other member of the room is created in the
	// same transaction. A missing or soft-deleted message is ErrNotFound.
	AddReaction(ctx context.Context, r NewReaction) (Reaction, error)
	// RemoveReaction deletes the user's reaction on the message, whatever its
	// content, and its REACTION notification; it reports whether there was
	// one. A missing or soft-deleted message is ErrNotFound.
	RemoveReaction(ctx context.Context, messageID uuid.UUID, userID int64) (bool, error)
}

// Message is a stored message.
type Message struct {
	ID     uuid.UUID `db:"id"`
	RoomID uuid.UUID `db:"room_id"`
	// Seq is the message's number in its room: 1, 2, 3, ...
	Seq int64 `db:"seq"`
	// SenderID is 0 for a system message.
	SenderID        int64      `db:"sender_id"`
	Content         string     `db:"content"`
	ParentID        *uuid.UUID `db:"parent_id"`
	ForwardedFromID *uuid.UUID `db:"forwarded_from_id"`
	IsForwarded     bool       `db:"is_forwarded"`
	IsEdited        bool       `db:"is_edited"`
	IsDeleted       bool       `db:"is_deleted"`
	// ClientMsgID is the sender's idempotency key, "" when none.
	ClientMsgID string `db:"client_msg_id"`
	// Extra holds fields a host application registers (never nil).
	Extra     JSON      `db:"extra"`
	CreatedAt time.Time `db:"created_at"`
	UpdatedAt time.Time `db:"updated_at"`
}

// NewMessage is the input of SendMessage.
type NewMessage struct {
	RoomID uuid.UUID
	// SenderID 0 sends a system message (no sender).
	SenderID int64
	Content  string
	// ParentID makes the message a reply (notification type REPLY).
	ParentID *uuid.UUID
	// ForwardedFromID makes the message a forward (IsForwarded true).
	ForwardedFromID *uuid.UUID
	// ClientMsgID (at most MaxClientMsgIDLen) makes the send idempotent per
	// (room, sender).
	ClientMsgID string
	Extra       JSON
	Attachments []NewAttachment
	// Notify creates the NEW_MESSAGE/REPLY notification for the other
	// members (none is created when there are no other members).
	Notify bool
	// CheckSender makes the store check, with the send and in the same
	// round trip, that SenderID may send in the room (Membership.CanSend):
	// a sender who is not a member is ErrNotMember, a member without the
	// right ErrCannotSend. The check comes before idempotency: a retry
	// by a sender who lost the right fails too. The system (SenderID 0)
	// is never a member.
	CheckSender bool
	// Offline, when positive, is the inactivity threshold of offline
	// webhooks (docs/protocol.md#offline-webhooks): the result's Offline
	// lists the members other than the sender (every member for a system
	// message), deleted users never, who have no session seen within
	// Offline of the store's clock when the message is stored. 0: none
	// is computed.
	Offline time.Duration
	// OutboxLease, when positive and with Offline, makes a store that
	// keeps a webhook outbox (WebhookOutbox) write the message's event
	// (when it has offline recipients) to the outbox in the send's
	// transaction, leased to the caller for OutboxLease: no relay claims
	// it before then (SendResult.OutboxID). Other stores ignore it.
	OutboxLease time.Duration
}

// Errors of SendMessage with NewMessage.CheckSender.
var (
	// ErrNotMember: the sender is not a member of the room (4002 "User is
	// not authorized to send message to this room",
	// docs/protocol.md#permission-details).
	ErrNotMember = errors.New("store: not a member of the room")
	// ErrCannotSend: the sender is a member without the right to send
	// (a locked group, a channel without can_send_messages; 4002).
	ErrCannotSend = errors.New("store: no permission to send in the room")
)

// SendResult is the outcome of SendMessage.
type SendResult struct {
	Message     Message
	Attachments []Attachment
	// Notification is the created notification, nil when none.
	Notification *Notification
	// Duplicate is true when ClientMsgID matched an earlier send: Message is
	// that original message and nothing new was stored.
	Duplicate bool
	// Offline are the offline recipients of a new message sent with
	// NewMessage.Offline, ordered by id; empty otherwise (a duplicate has
	// none: its event, if any, was made by the original send).
	Offline []Recipient
	// OutboxID is the outbox row of the message's webhook event
	// (NewMessage.OutboxLease), 0 when none was written.
	OutboxID int64
	// RoomName and RoomType are the room's, for the event, set with
	// Offline.
	RoomName string
	RoomType RoomType
}

// Recipient is an offline recipient of a message: a member with no live
// session when it was stored.
type Recipient struct {
	ID       int64
	Username string
}

// WebhookOutbox is implemented by a store that keeps the pending events
// of offline webhooks in a table, written in the transaction of their
// message (the PostgreSQL store; docs/protocol.md#offline-webhooks). A
// row is leased: until its lease ends no other caller claims it.
type WebhookOutbox interface {
	// ClaimWebhookEvents leases up to limit rows whose lease has ended,
	// oldest lease first, for lease, counting an attempt on each; rows
	// leased by a concurrent claim are skipped, never waited for.
	ClaimWebhookEvents(ctx context.Context, lease time.Duration, limit int) ([]OutboxEvent, error)
	// DeleteWebhookEvents deletes rows (their events were delivered or
	// dropped). Missing ids are skipped.
	DeleteWebhookEvents(ctx context.Context, ids []int64) error
	// RetryWebhookEvents leases rows again until after from now (their
	// delivery failed: the next claim comes after the backoff). Missing
	// ids are skipped.
	RetryWebhookEvents(ctx context.Context, ids []int64, after time.Duration) error
}

// OutboxEvent is a row of the webhook outbox: the message of an event and
// its offline recipients' ids.
type OutboxEvent struct {
	ID         int64
	MessageID  uuid.UUID
	RoomID     uuid.UUID
	Recipients []int64
	CreatedAt  time.Time
	// Attempts counts the claims of the row, this one included.
	Attempts int
}

// MessageView is everything the wire Message object shows.
type MessageView struct {
	Message
	// Sender is the zero User for a system message.
	Sender User
	// Parent and ForwardedFrom are loaded recursively; nil when absent.
	Parent        *MessageView
	ForwardedFrom *MessageView
	// DeliveredTo are the usernames of users who acknowledged, ordered by
	// user id.
	DeliveredTo  []string
	ReadReceipts []ReadReceiptView
	Reactions    []ReactionView
	Attachments  []Attachment
}

// MediaType is the kind of an attachment.
type MediaType string

// The four media types.
const (
	MediaImage MediaType = "image"
	MediaVideo MediaType = "video"
	MediaAudio MediaType = "audio"
	MediaFile  MediaType = "file"
)

// Valid reports whether m is one of the four media types.
func (m MediaType) Valid() bool {
	return m == MediaImage || m == MediaVideo || m == MediaAudio || m == MediaFile
}

// mimeTypes is the allow-list of docs/protocol.md#attachment (27 entries).
var mimeTypes = []string{
	"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/heic",
	"audio/mpeg", "audio/mp4", "audio/aac", "audio/ogg", "audio/wav", "audio/opus",
	"video/mp4", "video/quicktime", "video/webm", "video/ogg", "video/x-msvideo", "video/x-matroska",
	"application/pdf", "application/msword",
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	"application/vnd.ms-excel",
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	"application/vnd.ms-powerpoint",
	"application/vnd.openxmlformats-officedocument.presentationml.presentation",
	"text/plain", "text/csv",
}

// MIMETypes returns a copy of the MIME allow-list for attachments.
func MIMETypes() []string { return append([]string(nil), mimeTypes...) }

// ValidMIMEType reports whether s is on the MIME allow-list.
func ValidMIMEType(s string) bool {
	for _, m := range mimeTypes {
		if s == m {
			return true
		}
	}
	return false
}

// Attachment is a media asset of a message (a URL; files are not stored).
type Attachment struct {
	ID        uuid.UUID `db:"id"`
	MessageID uuid.UUID `db:"message_id"`
	MediaURL  string    `db:"media_url"`
	MediaType MediaType `db:"media_type"`
	FileSize  int64     `db:"file_size"`
	MimeType  string    `db:"mime_type"`
	// Caption is "" when unset (null on the wire).
	Caption string `db:"caption"`
	// Metadata is a free-form object (never nil).
	Metadata JSON `db:"metadata"`
}

// NewAttachment is one attachment of NewMessage. MediaURL is required,
// MediaType must be valid, FileSize >= 0, MimeType on the allow-list ("" means
// DefaultMIMEType).
type NewAttachment struct {
	MediaURL  string
	MediaType MediaType
	FileSize  int64
	MimeType  string
	Caption   string
	Metadata  JSON
}

// Reaction is one user's reaction on a message.
type Reaction struct {
	ID        uuid.UUID `db:"id"`
	MessageID uuid.UUID `db:"message_id"`
	UserID    int64     `db:"user_id"`
	Content   string    `db:"content"`
	CreatedAt time.Time `db:"created_at"`
}

// NewReaction is the input of AddReaction.
type NewReaction struct {
	MessageID uuid.UUID
	UserID    int64
	// Content is non-empty, at most MaxReactionLen characters.
	Content string
	// Notify creates a REACTION notification for the other members.
	Notify bool
}

// ReactionView is a reaction with its user, ordered by creation time.
type ReactionView struct {
	Reaction
	User User
}
