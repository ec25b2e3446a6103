package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"
	"time"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/groups"
	"github.com/chatmux/chatmux/store"
)

// TimeFormat is the layout of every timestamp on the wire: RFC 3339 in
// UTC with microseconds and a Z, e.g. 2026-01-01T12:00:00.123456Z.
const TimeFormat = "2006-01-02T15:04:05.000000Z"

// Timestamp formats t as the protocol does (see TimeFormat).
func Timestamp(t time.Time) string { return t.UTC().Format(TimeFormat) }

// RoomGroup returns the group name of a room: "group-<uuid>".
func RoomGroup(roomID uuid.UUID) string { return groups.Room(roomID.String()) }

// wireUser is the User object (docs/protocol.md#user).
type wireUser struct {
	ID        int64  `json:"id"`
	Username  string `json:"username"`
	Email     string `json:"email"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	// IsDeleted is true for a deleted user, absent for everyone else
	// (docs/protocol.md#deleted-users).
	IsDeleted bool `json:"is_deleted,omitempty"`
}

func userJSON(u store.User) wireUser {
	return wireUser{ID: u.ID, Username: u.Username, Email: u.Email, FirstName: u.FirstName, LastName: u.LastName,
		IsDeleted: u.Deleted}
}

func userPtr(u *store.User) *wireUser {
	if u == nil {
		return nil
	}
	w := userJSON(*u)
	return &w
}

func usersJSON(us []store.User) []wireUser {
	out := make([]wireUser, len(us))
	for i, u := range us {
		out[i] = userJSON(u)
	}
	return out
}

type roomRef struct {
	ID string `json:"id"`
}

type wireReadReceipt struct {
	Reader wireUser `json:"reader"`
	ReadAt string   `json:"read_at"`
}

type wireReaction struct {
	ID              string   `json:"id"`
	User            wireUser `json:"user"`
	ReactionContent string   `json:"reaction_content"`
	CreatedAt       string   `json:"created_at"`
}

type wireAttachment struct {
	ID        string     `json:"id"`
	MediaURL  string     `json:"media_url"`
	MediaType string     `json:"media_type"`
	FileSize  int64      `json:"file_size"`
	MimeType  string     `json:"mime_type"`
	Caption   *string    `json:"caption"`
	Metadata  store.JSON `json:"metadata"`
}

// wireMessage is the Message object (docs/protocol.md#message), with
// chatmux's additions seq and client_msg_id (docs/protocol.md#seq,
// docs/protocol.md#idempotent-sends) and the host's extra fields.
type wireMessage struct {
	ID            string            `json:"id"`
	Room          roomRef           `json:"room"`
	Sender        *wireUser         `json:"sender"`
	IsSystem      bool              `json:"is_system,omitempty"`
	Content       string            `json:"content"`
	IsDeleted     bool              `json:"is_deleted"`
	IsEdited      bool              `json:"is_edited"`
	IsForwarded   bool              `json:"is_forwarded"`
	ParentMessage *wireMessage      `json:"parent_message"`
	ForwardedFrom *wireMessage      `json:"forwarded_from"`
	DeliveredTo   []string          `json:"delivered_to"`
	ReadReceipts  []wireReadReceipt `json:"read_receipts"`
	Reactions     []wireReaction    `json:"reactions"`
	Attachments   []wireAttachment  `json:"attachments"`
	CreatedAt     string            `json:"created_at"`
	UpdatedAt     string            `json:"updated_at"`
	Seq           int64             `json:"seq"`
	ClientMsgID   string            `json:"client_msg_id,omitempty"`
	extra         store.JSON
}

// reservedMessageKeys are the keys of the Message object and the inputs
// of message.send; a host's extra field may not take one of them.
var reservedMessageKeys = map[string]bool{
	"id": true, "room": true, "sender": true, "content": true, "is_deleted": true, "is_edited": true,
	"is_forwarded": true, "parent_message": true, "forwarded_from": true, "delivered_to": true,
	"read_receipts": true, "reactions": true, "attachments": true, "created_at": true, "updated_at": true,
	"seq": true, "client_msg_id": true, "is_system": true, "room_id": true, "sender_id": true, "parent_message_id": true,
	"forwarded_from_id": true, "media": true, "message_id": true, "extra_fields": true,
}

// marshal encodes v as JSON without escaping <, > and & (message content
// is HTML): the bytes the package sends, and shorter frames.
func marshal(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// MarshalJSON encodes the message with the host's extra fields appended
// as top-level keys.
func (m wireMessage) MarshalJSON() ([]byte, error) {
	type plain wireMessage
	b, err := marshal(plain(m))
	if err != nil || len(m.extra) == 0 {
		return b, err
	}
	keys := make([]string, 0, len(m.extra))
	for k := range m.extra {
		if !reservedMessageKeys[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	buf := bytes.NewBuffer(b[:len(b)-1])
	for _, k := range keys {
		kb, _ := marshal(k)
		vb, err := marshal(m.extra[k])
		if err != nil {
			return nil, err
		}
		buf.WriteByte(',')
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(vb)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func (s *Service) messageJSON(v *store.MessageView) *wireMessage {
	if v == nil {
		return nil
	}
	m := &wireMessage{
		ID:            v.ID.String(),
		Room:          roomRef{ID: v.RoomID.String()},
		Sender:        userPtr(&v.Sender),
		Content:       v.Content,
		IsDeleted:     v.IsDeleted,
		IsEdited:      v.IsEdited,
		IsForwarded:   v.IsForwarded,
		ParentMessage: s.messageJSON(v.Parent),
		ForwardedFrom: s.messageJSON(v.ForwardedFrom),
		DeliveredTo:   v.DeliveredTo,
		ReadReceipts:  make([]wireReadReceipt, len(v.ReadReceipts)),
		Reactions:     make([]wireReaction, len(v.Reactions)),
		Attachments:   make([]wireAttachment, len(v.Attachments)),
		CreatedAt:     Timestamp(v.CreatedAt),
		UpdatedAt:     Timestamp(v.UpdatedAt),
		Seq:           v.Seq,
		ClientMsgID:   v.ClientMsgID,
	}
	if v.SenderID == 0 {
		// A system message (docs/protocol.md#system-messages).
		m.Sender, m.IsSystem = nil, true
	}
	if m.DeliveredTo == nil {
		m.DeliveredTo = []string{}
	}
	for i, r := range v.ReadReceipts {
		m.ReadReceipts[i] = wireReadReceipt{Reader: userJSON(r.Reader), ReadAt: Timestamp(r.ReadAt)}
	}
	for i, r := range v.Reactions {
		m.Reactions[i] = wireReaction{ID: r.ID.String(), User: userJSON(r.User), ReactionContent: r.Content, CreatedAt: Timestamp(r.CreatedAt)}
	}
	for i, a := range v.Attachments {
		w := wireAttachment{ID: a.ID.String(), MediaURL: a.MediaURL, MediaType: string(a.MediaType),
			FileSize: a.FileSize, MimeType: a.MimeType, Metadata: a.Metadata}
		if a.Caption != "" {
			c := a.Caption
			w.Caption = &c
		}
		if w.Metadata == nil {
			w.Metadata = store.JSON{}
		}
		m.Attachments[i] = w
	}
	if len(s.extra) > 0 && len(v.Extra) > 0 {
		m.extra = store.JSON{}
		for k, val := range v.Extra {
			if s.extra[k] {
				m.extra[k] = val
			}
		}
	}
	return m
}

// messagesJSON loads and encodes messages, in the order of ids. Missing ids
// are skipped.
func (s *Service) messagesJSON(ctx context.Context, ids []uuid.UUID) ([]*wireMessage, error) {
	views, err := s.st.MessageViews(ctx, ids)
	if err != nil {
		return nil, StoreError(err)
	}
	out := make([]*wireMessage, len(views))
	for i := range views {
		out[i] = s.messageJSON(&views[i])
	}
	return out, nil
}

// MessageJSON returns the protocol's Message objects (docs/protocol.md#message)
// of the given messages, encoded, in the order of ids; missing ids are
// skipped. Custom events embed them in their dispatches.
func (s *Service) MessageJSON(ctx context.Context, ids ...uuid.UUID) ([]json.RawMessage, error) {
	ms, err := s.messagesJSON(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]json.RawMessage, len(ms))
	for i, m := range ms {
		b, err := marshal(m)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// ---- rooms ----

type wireProperty struct {
	Preferences store.JSON `json:"preferences"`
}

type wireOneToOne struct {
	Type         string       `json:"type"`
	ID           string       `json:"id"`
	CreatedAt    string       `json:"created_at"`
	UpdatedAt    string       `json:"updated_at"`
	Property     wireProperty `json:"property"`
	Participants []wireUser   `json:"participants"`
}

type wireGroup struct {
	Type                 string       `json:"type"`
	ID                   string       `json:"id"`
	CreatedAt            string       `json:"created_at"`
	UpdatedAt            string       `json:"updated_at"`
	Property             wireProperty `json:"property"`
	Name                 string       `json:"name"`
	Description          *string      `json:"description"`
	Creator              *wireUser    `json:"creator"`
	Participants         []wireUser   `json:"participants"`
	Admins               []wireUser   `json:"admins"`
	MaxParticipants      int          `json:"max_participants"`
	Avatar               *string      `json:"avatar"`
	JoinApprovalRequired bool         `json:"join_approval_required"`
	GroupLocked          bool         `json:"group_locked"`
}

type wireChannel struct {
	Type           string       `json:"type"`
	ID             string       `json:"id"`
	CreatedAt      string       `json:"created_at"`
	UpdatedAt      string       `json:"updated_at"`
	Property       wireProperty `json:"property"`
	Name           string       `json:"name"`
	Description    *string      `json:"description"`
	Creator        *wireUser    `json:"creator"`
	Subscribers    []wireUser   `json:"subscribers"`
	Moderators     []wireUser   `json:"moderators"`
	IsPublic       bool         `json:"is_public"`
	Avatar         *string      `json:"avatar"`
	MaxSubscribers int          `json:"max_subscribers"`
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func prefs(j store.JSON) store.JSON {
	if j == nil {
		return store.JSON{}
	}
	return j
}

// roomDetailJSON is the RoomDetail object (docs/protocol.md#room-detail).
func roomDetailJSON(d store.RoomDetail) any {
	common := func() (string, string, string, wireProperty) {
		return d.ID.String(), Timestamp(d.CreatedAt), Timestamp(d.UpdatedAt), wireProperty{Preferences: prefs(d.Preferences)}
	}
	id, created, updated, prop := common()
	switch d.Type {
	case store.Group:
		return wireGroup{Type: string(d.Type), ID: id, CreatedAt: created, UpdatedAt: updated, Property: prop,
			Name: d.Name, Description: nullable(d.Description), Creator: userPtr(d.Creator),
			Participants: usersJSON(d.Members), Admins: usersJSON(d.Admins), MaxParticipants: d.MaxMembers,
			Avatar: nullable(d.Avatar), JoinApprovalRequired: d.JoinApprovalRequired, GroupLocked: d.GroupLocked}
	case store.Channel:
		return wireChannel{Type: string(d.Type), ID: id, CreatedAt: created, UpdatedAt: updated, Property: prop,
			Name: d.Name, Description: nullable(d.Description), Creator: userPtr(d.Creator),
			Subscribers: usersJSON(d.Members), Moderators: usersJSON(d.Admins), IsPublic: d.IsPublic,
			Avatar: nullable(d.Avatar), MaxSubscribers: d.MaxMembers}
	}
	return wireOneToOne{Type: string(d.Type), ID: id, CreatedAt: created, UpdatedAt: updated, Property: prop,
		Participants: usersJSON(d.Members)}
}

// roomDetail loads and encodes a room's detail.
func (s *Service) roomDetail(ctx context.Context, roomID uuid.UUID) (any, store.RoomDetail, error) {
	d, err := s.st.RoomDetail(ctx, roomID)
	if err != nil {
		return nil, d, StoreError(err)
	}
	return roomDetailJSON(d), d, nil
}

// RoomDetailJSON returns the protocol's RoomDetail object of a room,
// encoded (docs/protocol.md#room-detail).
func (s *Service) RoomDetailJSON(ctx context.Context, roomID uuid.UUID) (json.RawMessage, error) {
	v, _, err := s.roomDetail(ctx, roomID)
	if err != nil {
		return nil, err
	}
	return marshal(v)
}

type wireListOneToOne struct {
	Type        string       `json:"type"`
	ID          string       `json:"id"`
	CreatedAt   string       `json:"created_at"`
	UpdatedAt   string       `json:"updated_at"`
	LastMessage *wireMessage `json:"last_message"`
	UnreadCount int          `json:"unread_count"`
	Peer        *wireUser    `json:"peer"`
}

type wireListGroup struct {
	Type                 string       `json:"type"`
	ID                   string       `json:"id"`
	CreatedAt            string       `json:"created_at"`
	UpdatedAt            string       `json:"updated_at"`
	LastMessage          *wireMessage `json:"last_message"`
	UnreadCount          int          `json:"unread_count"`
	Name                 string       `json:"name"`
	Description          *string      `json:"description"`
	Creator              *wireUser    `json:"creator"`
	MaxParticipants      int          `json:"max_participants"`
	Avatar               *string      `json:"avatar"`
	JoinApprovalRequired bool         `json:"join_approval_required"`
	GroupLocked          bool         `json:"group_locked"`
}

type wireListChannel struct {
	Type           string       `json:"type"`
	ID             string       `json:"id"`
	CreatedAt      string       `json:"created_at"`
	UpdatedAt      string       `json:"updated_at"`
	LastMessage    *wireMessage `json:"last_message"`
	UnreadCount    int          `json:"unread_count"`
	Name           string       `json:"name"`
	Description    *string      `json:"description"`
	Creator        *wireUser    `json:"creator"`
	IsPublic       bool         `json:"is_public"`
	Avatar         *string      `json:"avatar"`
	MaxSubscribers int          `json:"max_subscribers"`
}

// roomListItemJSON is the RoomListItem object with chatmux's unread_count
// (docs/protocol.md#room-list-item, docs/protocol.md#unread-counts).
func (s *Service) roomListItemJSON(it *store.RoomListItem) any {
	id, created, updated := it.ID.String(), Timestamp(it.CreatedAt), Timestamp(it.UpdatedAt)
	last := s.messageJSON(it.LastMessage)
	switch it.Type {
	case store.Group:
		return wireListGroup{Type: string(it.Type), ID: id, CreatedAt: created, UpdatedAt: updated, LastMessage: last,
			UnreadCount: it.UnreadCount, Name: it.Name, Description: nullable(it.Description), Creator: userPtr(it.Creator),
			MaxParticipants: it.MaxMembers, Avatar: nullable(it.Avatar), JoinApprovalRequired: it.JoinApprovalRequired,
			GroupLocked: it.GroupLocked}
	case store.Channel:
		return wireListChannel{Type: string(it.Type), ID: id, CreatedAt: created, UpdatedAt: updated, LastMessage: last,
			UnreadCount: it.UnreadCount, Name: it.Name, Description: nullable(it.Description), Creator: userPtr(it.Creator),
			IsPublic: it.IsPublic, Avatar: nullable(it.Avatar), MaxSubscribers: it.MaxMembers}
	}
	return wireListOneToOne{Type: string(it.Type), ID: id, CreatedAt: created, UpdatedAt: updated, LastMessage: last,
		UnreadCount: it.UnreadCount, Peer: userPtr(it.Peer)}
}

// ---- notifications ----

type wireNotification struct {
	ID               string       `json:"id"`
	NotificationType string       `json:"notification_type"`
	Message          *wireMessage `json:"message"`
}

// notificationsJSON encodes chat.notifications: an object keyed by room id
// whose keys keep the store's order (newest first,
// docs/protocol.md#diff-notification-order), which a Go map
// would sort.
func (s *Service) notificationsJSON(rooms []store.RoomNotifications) (json.RawMessage, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, r := range rooms {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteByte('"')
		buf.WriteString(r.RoomID.String())
		buf.WriteString(`":`)
		list := make([]wireNotification, len(r.Notifications))
		for j := range r.Notifications {
			n := &r.Notifications[j]
			list[j] = wireNotification{ID: n.ID.String(), NotificationType: string(n.Type), Message: s.messageJSON(&n.Message)}
		}
		b, err := marshal(list)
		if err != nil {
			return nil, err
		}
		buf.Write(b)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// origin is where an operation's dispatches and group moves come from:
// a WebSocket event (c, whose socket is answered directly when a publish
// misses it) or a Go API call through the attached server (c nil: no
// socket of origin). Both publish through the same server, so a dispatch
// reaches every node the same way (docs/protocol.md#server-api).
type origin struct {
	c   *chatmux.Context
	srv *chatmux.Server
	// name names the operation in logs: the event, or "api.<Method>".
	name string
}

// ev is the origin of a WebSocket event.
func ev(c *chatmux.Context) origin { return origin{c: c, srv: c.Server(), name: c.Event()} }

// publish and move run after the change was stored (or, for a removal,
// just before it commits): an API call whose caller gives up meanwhile
// (its context is cancelled) still publishes, so that every node learns
// of the change.
func (o origin) publish(ctx context.Context, group, eventType string, b json.RawMessage) error {
	if o.c != nil {
		return o.c.Broadcast(group, eventType, b)
	}
	return o.srv.Broadcast(context.WithoutCancel(ctx), group, eventType, b)
}

func (o origin) move(ctx context.Context, userID int64, group string, join bool) error {
	ctx = context.WithoutCancel(ctx)
	switch {
	case o.c != nil && join:
		return o.c.JoinUser(userID, group)
	case o.c != nil:
		return o.c.LeaveUser(userID, group)
	case join:
		return o.srv.JoinUser(ctx, userID, group)
	}
	return o.srv.LeaveUser(ctx, userID, group)
}

// inGroup reports whether the origin's connection is a member of group
// (false for an API call, which has none).
func (o origin) inGroup(group string) bool { return o.c != nil && inGroup(o.c, group) }

// broadcast and sendUser encode a dispatch's data once with marshal and
// publish it to a group (a room's, a user's); they return the encoded
// data (what the Go API returns). They run after the operation's change is
// stored (or when nothing is stored), so a publish failure is not the
// caller's error: it is logged and counted (PublishFailures), and when the
// event's connection is one of the group's members it gets the dispatch by
// Reply, so that its request has its answer (a client drops a message it
// already has by (room, seq)). Clients elsewhere catch up after their
// node's chat.resync (docs/protocol.md#faults). An encoding failure is a
// bug: 4006.
func (s *Service) broadcast(ctx context.Context, o origin, group, eventType string, v any) (json.RawMessage, error) {
	b, err := marshal(v)
	if err != nil {
		return nil, chatmux.Internal(err)
	}
	err = o.publish(ctx, group, eventType, b)
	if err != nil {
		s.publishFailures.Add(1)
		s.log.WarnContext(ctx, "chat: failed to publish a dispatch", "event", o.name,
			"dispatch", eventType, "group", group, "err", err)
	}
	// The sender always gets its answer (docs/protocol.md#one-answer-per-send):
	// when the publish failed, or when its connection is stale (a broker
	// outage not yet resynchronised: the group frame was dropped for it),
	// answer its socket directly. A duplicate is possible and clients drop
	// it by (room, seq).
	if o.c != nil && (err != nil || (o.c.Conn() != nil && o.c.Conn().Stale())) && inGroup(o.c, group) {
		if err := o.c.Send(eventType, b); err != nil {
			s.log.WarnContext(ctx, "chat: failed to answer the sender", "event", o.name,
				"dispatch", eventType, "err", err)
		}
	}
	return b, nil
}

// inGroup reports whether the event's connection is a member of group.
func inGroup(c *chatmux.Context, group string) bool {
	return c.Conn() != nil && c.Conn().InGroup(group)
}

func (s *Service) sendUser(ctx context.Context, o origin, userID int64, eventType string, v any) (json.RawMessage, error) {
	return s.broadcast(ctx, o, groups.User(userID), eventType, v)
}

// joinUser and leaveUser move every connection of a user into or out of a
// group after a membership change was stored. As with broadcast, a failure
// is logged and counted, not returned: the change is committed, and the
// connections of nodes that missed the move are fixed when their node
// resynchronises (docs/protocol.md#resync).
func (s *Service) joinUser(ctx context.Context, o origin, userID int64, group string) {
	if err := o.move(ctx, userID, group, true); err != nil {
		s.publishFailures.Add(1)
		s.log.WarnContext(ctx, "chat: failed to add a user's connections to a group", "event", o.name,
			"user_id", userID, "group", group, "err", err)
	}
}

func (s *Service) leaveUser(ctx context.Context, o origin, userID int64, group string) {
	if err := o.move(ctx, userID, group, false); err != nil {
		s.publishFailures.Add(1)
		s.log.WarnContext(ctx, "chat: failed to remove a user's connections from a group", "event", o.name,
			"user_id", userID, "group", group, "err", err)
	}
}

// send encodes a dispatch for this socket only.
func send(c *chatmux.Context, eventType string, v any) error {
	b, err := marshal(v)
	if err != nil {
		return chatmux.Internal(err)
	}
	return c.Send(eventType, b)
}
