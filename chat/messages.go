package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	neturl "net/url"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/store"
)

// content checks and sanitises message content: not blank after
// trimming (unless blankOK), at most MaxMessageLength characters.
func (s *Service) content(text string, blankOK bool) (string, error) {
	text = strings.TrimSpace(text)
	if text == "" && !blankOK {
		return "", chatmux.FieldError("content", msgBlank)
	}
	if utf8.RuneCountInString(text) > s.cfg.MaxMessageLength {
		return "", chatmux.FieldError("content", fmt.Sprintf("Ensure this field has no more than %d characters.", s.cfg.MaxMessageLength))
	}
	return s.Sanitize(text), nil
}

// handleSendMessage handles message.send (docs/protocol.md#message-send):
// data {room_id, content, client_msg_id?, extra_fields?: {parent_message_id,
// forwarded_from_id, media, host fields}}. The sender needs the send
// permission (CanSend); then the data is read into a SendMessage and sent
// by sendMessage, as the Go API's SendMessage does.
func (s *Service) handleSendMessage(c *chatmux.Context) error {
	u, f, err := readEvent(c)
	if err != nil {
		return err
	}
	roomID, err := roomIDField(f)
	if err != nil {
		return err
	}
	a := eventActor(u)
	// A connection in the room's group belongs to a member (a removal takes
	// it out before it commits): its send right is checked by the store in
	// the same round trip as the insert (store.NewMessage.CheckSender).
	// Any other sender is checked first, so that a non-member's 4002 or an
	// unknown room's 4004 comes before the data's errors.
	inRoom := inGroup(c, RoomGroup(roomID))
	if !inRoom {
		if _, err := s.sendAccess(c.Context(), a, roomID); err != nil {
			return err
		}
	}
	in, err := readSendMessage(f)
	if err != nil {
		return err
	}
	in.RoomID = roomID
	_, err = s.send(c.Context(), ev(c), a, in, inRoom)
	return err
}

// readSendMessage reads the data of message.send into a SendMessage: the
// JSON types of its fields (4003); their values are checked by
// sendMessage.
func readSendMessage(f fields) (SendMessage, error) {
	var in SendMessage
	extra, _, err := f.object("extra_fields")
	if err != nil {
		return in, err
	}
	if v := extra.get("media"); v != nil {
		if in.Media, err = readMedia(v); err != nil {
			return in, err
		}
	}
	content, ok, err := f.str("content")
	if err != nil {
		return in, err
	}
	if !ok && len(in.Media) == 0 {
		return in, chatmux.FieldError("content", msgRequired)
	}
	in.Content = content
	if in.ClientMsgID, _, err = f.str("client_msg_id"); err != nil {
		return in, err
	}
	for _, ref := range []struct {
		key string
		dst **uuid.UUID
	}{{"parent_message_id", &in.ParentID}, {"forwarded_from_id", &in.ForwardedFromID}} {
		v := extra.get(ref.key)
		if v == nil {
			continue
		}
		var raw string
		if jsonKind(v) != 's' || json.Unmarshal(v, &raw) != nil {
			return in, chatmux.FieldError(ref.key, "Incorrect type. Expected pk value, received "+kindName(v)+".")
		}
		id, err := uuid.Parse(raw)
		if err != nil {
			return in, chatmux.FieldError(ref.key, msgNotUUID(raw))
		}
		*ref.dst = &id
	}
	for k, v := range extra {
		switch k {
		case "parent_message_id", "forwarded_from_id", "media":
			continue
		}
		if in.Extra == nil {
			in.Extra = map[string]json.RawMessage{}
		}
		in.Extra[k] = v
	}
	return in, nil
}

// sendMessage is message.send after its access check (sendAccess): it checks the values of in, stores the message in one
// transaction with its attachments and notifications, then
// message.dispatch goes to the room. A retry with the same client_msg_id
// stores nothing and answers the original message to the event's socket
// only (an API call gets it back and publishes nothing). By the system it
// is a system message (docs/protocol.md#system-messages).
func (s *Service) sendMessage(ctx context.Context, o origin, a actor, in SendMessage) (json.RawMessage, error) {
	return s.send(ctx, o, a, in, false)
}

// send is sendMessage; with checkSender the access check was not made
// yet, and the store makes it with the insert (ErrNotMember and
// ErrCannotSend are 4002, as sendAccess answers).
func (s *Service) send(ctx context.Context, o origin, a actor, in SendMessage, checkSender bool) (json.RawMessage, error) {
	nm := store.NewMessage{RoomID: in.RoomID, SenderID: a.id, Notify: s.cfg.Notifications, CheckSender: checkSender && !a.system()}
	var err error
	if nm.Attachments, err = checkMedia(in.Media); err != nil {
		return nil, err
	}
	if nm.Content, err = s.content(in.Content, len(nm.Attachments) > 0); err != nil {
		return nil, err
	}
	if utf8.RuneCountInString(in.ClientMsgID) > store.MaxClientMsgIDLen {
		return nil, chatmux.FieldError("client_msg_id", fmt.Sprintf("Ensure this field has no more than %d characters.", store.MaxClientMsgIDLen))
	}
	nm.ClientMsgID = in.ClientMsgID
	for _, ref := range []struct {
		key string
		id  *uuid.UUID
	}{{"parent_message_id", in.ParentID}, {"forwarded_from_id", in.ForwardedFromID}} {
		if ref.id == nil {
			continue
		}
		if err := s.referencedMessage(ctx, a, ref.key, *ref.id); err != nil {
			return nil, err
		}
	}
	nm.ParentID, nm.ForwardedFromID = in.ParentID, in.ForwardedFromID
	if nm.Extra, err = s.extraFields(in.Extra); err != nil {
		return nil, err
	}
	leased := s.webhookSend(&nm)
	res, err := s.st.SendMessage(ctx, nm)
	if errors.Is(err, store.ErrNotMember) || errors.Is(err, store.ErrCannotSend) {
		return nil, chatmux.PermissionDenied(msgDeniedSend)
	}
	if err != nil {
		return nil, StoreError(err)
	}
	var msgs []*wireMessage
	if res.Duplicate || nm.ParentID != nil || nm.ForwardedFromID != nil {
		msgs, err = s.messagesJSON(ctx, []uuid.UUID{res.Message.ID})
		if err == nil && len(msgs) != 1 {
			err = store.ErrNotFound
		}
		if err != nil && res.Duplicate {
			return nil, StoreError(err) // nothing new was stored: the retry may retry
		}
		if err != nil {
			// Stored: the sender's answer is the message as sent, without
			// the referenced message's object.
			s.log.WarnContext(ctx, "chat: failed to read a stored message back; sending it as sent", "message_id", res.Message.ID, "err", err)
			msgs = nil
		}
	}
	if msgs == nil {
		// A new message without references: everything its Message
		// object shows is at hand (no receipts, reactions or deliveries
		// yet; the sender is the actor), so it is encoded without reading
		// it back.
		v := store.MessageView{Message: res.Message, Attachments: res.Attachments, Sender: a.user}
		msgs = []*wireMessage{s.messageJSON(&v)}
	}
	if res.Duplicate {
		if o.c != nil {
			return nil, send(o.c, DispatchMessage, msgs[0])
		}
		return marshal(msgs[0])
	}
	// A connection that is not in the room's group although its user is a
	// member (a group move it missed) still gets its answer.
	group := RoomGroup(in.RoomID)
	joined := o.inGroup(group)
	b, err := s.broadcast(ctx, o, group, DispatchMessage, msgs[0])
	if err != nil {
		return nil, err
	}
	s.offlineWebhook(res, b, leased)
	if o.c != nil && !joined && o.c.Conn() != nil {
		return b, o.c.Send(DispatchMessage, b)
	}
	return b, nil
}

// extraFields returns the host-registered extra fields of extra_fields
// (Config.ExtraMessageFields); any other key is 4003
// (docs/protocol.md#diff-extra-fields).
func (s *Service) extraFields(extra map[string]json.RawMessage) (store.JSON, error) {
	out := store.JSON{}
	names := make([]string, 0, len(extra))
	for k := range extra {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !s.extra[k] {
			return nil, chatmux.FieldError("extra_fields", fmt.Sprintf("Unknown field '%s'.", k))
		}
		var val any
		if err := json.Unmarshal(extra[k], &val); err != nil {
			return nil, chatmux.FieldError(k, "Invalid value.")
		}
		out[k] = val
	}
	return out, nil
}

// referencedMessage checks parent_message_id / forwarded_from_id: an
// existing, visible message (else 4003) in a room the sender belongs to
// (else 4002, docs/protocol.md#diff-reply-access; the system may refer to
// any message).
func (s *Service) referencedMessage(ctx context.Context, a actor, key string, id uuid.UUID) error {
	got, err := s.st.Messages(ctx, []uuid.UUID{id})
	if err != nil {
		return StoreError(err)
	}
	if len(got) != 1 || got[0].IsDeleted {
		return chatmux.FieldError(key, fmt.Sprintf("Invalid pk \"%s\" - object does not exist.", id))
	}
	if a.system() {
		return nil
	}
	m, err := s.st.Membership(ctx, got[0].RoomID, a.id)
	if err != nil {
		return StoreError(err)
	}
	if !m.IsMember {
		return chatmux.PermissionDenied(msgDeniedMessage)
	}
	return nil
}

// readMedia reads extra_fields.media: a list of {media_url, media_type,
// file_size?, mime_type?, caption?, metadata?}, each field of its JSON
// type (else 4003, docs/protocol.md#diff-media); checkMedia checks the
// values.
func readMedia(v json.RawMessage) ([]Media, error) {
	if jsonKind(v) != 'a' {
		return nil, chatmux.FieldError("media", fmt.Sprintf("Expected a list of items but got type \"%s\".", kindName(v)))
	}
	var items []json.RawMessage
	if err := json.Unmarshal(v, &items); err != nil {
		return nil, chatmux.FieldError("media", "Invalid value.")
	}
	out := make([]Media, 0, len(items))
	for _, it := range items {
		var f fields
		if jsonKind(it) != 'o' || json.Unmarshal(it, &f) != nil {
			return nil, chatmux.FieldError("media", "Invalid data. Expected a dictionary.")
		}
		var m Media
		var err error
		url, ok, err := f.str("media_url")
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, chatmux.FieldError("media_url", msgRequired)
		}
		m.URL = url
		if m.Type, _, err = f.str("media_type"); err != nil {
			return nil, err
		}
		if m.MimeType, _, err = f.str("mime_type"); err != nil {
			return nil, err
		}
		if m.Caption, _, err = f.str("caption"); err != nil {
			return nil, err
		}
		if fs := f.get("file_size"); fs != nil {
			n, ok := ParseUserID(fs)
			if !ok || jsonKind(fs) != 'n' {
				return nil, chatmux.FieldError("file_size", msgNotInt)
			}
			m.FileSize = n
		}
		if md := f.get("metadata"); md != nil {
			if jsonKind(md) != 'o' {
				return nil, chatmux.FieldError("metadata", msgNotObject)
			}
			m.Metadata = md
		}
		out = append(out, m)
	}
	return out, nil
}

// checkMedia checks attachments: media_url must be an absolute http or
// https URL with a host (isWebURL), else {"media_url": ["Enter a valid
// URL."]}: clients render it as a link or an image, and a javascript: or
// data: URL is not something to relay to a room
// (docs/protocol.md#attachment); metadata a JSON object; the rest as
// store.ValidateAttachment checks it. Any invalid item is 4003 and
// nothing is stored.
func checkMedia(media []Media) ([]store.NewAttachment, error) {
	out := make([]store.NewAttachment, 0, len(media))
	for _, m := range media {
		if m.URL == "" {
			return nil, chatmux.FieldError("media_url", msgRequired)
		}
		if !isWebURL(m.URL) {
			return nil, chatmux.FieldError("media_url", msgInvalidURL)
		}
		a := store.NewAttachment{MediaURL: m.URL, MediaType: store.MediaType(m.Type), MimeType: m.MimeType,
			Caption: m.Caption, FileSize: m.FileSize}
		if len(m.Metadata) > 0 && !isNull(m.Metadata) {
			obj, ok := jsonObject(m.Metadata)
			if !ok {
				return nil, chatmux.FieldError("metadata", msgNotObject)
			}
			a.Metadata = obj
		}
		a, err := store.ValidateAttachment(a)
		if err != nil {
			return nil, StoreError(err)
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// isWebURL reports whether s is an absolute http or https URL (the scheme
// in any case) with a host, as net/url parses it (which refuses control
// characters and spaces in the host).
func isWebURL(s string) bool {
	u, err := neturl.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.Opaque == ""
}

// handleTyping handles message.typing: with the send permission, it broadcasts
// messagetyping.dispatch {username, room_id, user_id}
// (docs/protocol.md#diff-typing) to
// the room, the typer included. Nothing is stored.
func (s *Service) handleTyping(c *chatmux.Context) error {
	u, _, roomID, m, err := s.roomEvent(c)
	if err != nil {
		return err
	}
	if !CanSend(m, u.ID) {
		return chatmux.PermissionDenied(msgDeniedSend)
	}
	_, err = s.broadcast(c.Context(), ev(c), RoomGroup(roomID), DispatchTyping, struct {
		Username string `json:"username"`
		RoomID   string `json:"room_id"`
		UserID   int64  `json:"user_id"`
	}{u.Username, roomID.String(), u.ID})
	return err
}

// messageIDsOf parses data.message_id and checks access (existence, not
// deleted: 4004; membership: 4002).
func (s *Service) messageIDsOf(c *chatmux.Context, f fields, userID int64) (messageIDs, []store.Message, error) {
	ids, err := parseMessageIDs(f["message_id"])
	if err != nil {
		return ids, nil, err
	}
	if len(ids.IDs) == 0 {
		return ids, nil, chatmux.FieldError("message_id", msgEmptyList)
	}
	msgs, err := s.accessMessages(c.Context(), userID, ids.IDs)
	return ids, msgs, err
}

// handleReact handles message.react: data {type: "add"|"remove",
// message_id, reaction_content}. Any member of the message's room may
// react. add replaces a different reaction of the user (the same one again
// is 4005) and answers {status, type: "add", message}; remove answers
// {status: "successful"|"failed", action: "remove", message}. Both go to the
// room as reaction.dispatch.
func (s *Service) handleReact(c *chatmux.Context) error {
	u, f, err := readEvent(c)
	if err != nil {
		return err
	}
	v := f.get("message_id")
	if k := jsonKind(v); k != 's' && k != 'n' {
		if k == 0 {
			return chatmux.FieldError("message_id", msgRequired)
		}
		return chatmux.Validation(msgInvalidMessageIDType)
	}
	_, msgs, err := s.messageIDsOf(c, f, u.ID)
	if err != nil {
		return err
	}
	msg := msgs[0]
	typ, _, _ := f.str("type")
	var payload any
	switch typ {
	case "add":
		content, ok, err := f.str("reaction_content")
		if err != nil {
			return err
		}
		if !ok {
			return chatmux.FieldError("reaction_content", msgRequired)
		}
		if err := store.ValidateReaction(content); err != nil {
			return StoreError(err)
		}
		if _, err := s.st.AddReaction(c.Context(), store.NewReaction{MessageID: msg.ID, UserID: u.ID,
			Content: content, Notify: s.cfg.Notifications}); err != nil {
			return StoreError(err)
		}
		m, err := s.oneMessage(c.Context(), msg.ID)
		if err != nil {
			return err
		}
		payload = struct {
			Status  string       `json:"status"`
			Type    string       `json:"type"`
			Message *wireMessage `json:"message"`
		}{"successful", "add", m}
	case "remove":
		removed, err := s.st.RemoveReaction(c.Context(), msg.ID, u.ID)
		if err != nil {
			return StoreError(err)
		}
		status := "successful"
		if !removed {
			status = "failed"
		}
		m, err := s.oneMessage(c.Context(), msg.ID)
		if err != nil {
			return err
		}
		payload = struct {
			Status  string       `json:"status"`
			Message *wireMessage `json:"message"`
			Action  string       `json:"action"`
		}{status, m, "remove"}
	default:
		return chatmux.Validation(msgInvalidReactionType)
	}
	_, err = s.broadcast(c.Context(), ev(c), RoomGroup(msg.RoomID), DispatchReaction, payload)
	return err
}

func (s *Service) oneMessage(ctx context.Context, id uuid.UUID) (*wireMessage, error) {
	ms, err := s.messagesJSON(ctx, []uuid.UUID{id})
	if err != nil {
		return nil, err
	}
	if len(ms) != 1 {
		return nil, chatmux.NotFound()
	}
	return ms[0], nil
}

// handleModifyMessages handles message.modify: data {action:
// "update"|"delete", message_id: id or [ids], extra_fields: {content, host
// fields} for update}. Only the sender of every listed message may modify
// them, and only while a member of their (single) room (modifyAccess).
// update edits one message (editMessage, as the Go API's EditMessage);
// delete removes them (deleteMessages, as DeleteMessages).
func (s *Service) handleModifyMessages(c *chatmux.Context) error {
	u, f, err := readEvent(c)
	if err != nil {
		return err
	}
	ids, err := parseMessageIDs(f["message_id"])
	if err != nil {
		return err
	}
	if len(ids.IDs) == 0 {
		return chatmux.Validation(msgAtLeastOneMessage)
	}
	ctx := c.Context()
	roomID, err := s.modifyAccess(ctx, eventActor(u), ids.IDs)
	if err != nil {
		return err
	}
	action, ok, err := f.str("action")
	if err != nil {
		return chatmux.Validation(msgInvalidAction)
	}
	if !ok {
		return chatmux.Validation(msgActionRequired)
	}
	switch action {
	case "update":
		if len(ids.IDs) > 1 {
			return chatmux.Validation(msgOneAtATime)
		}
		extra, _, err := f.object("extra_fields")
		if err != nil || len(extra) == 0 {
			return chatmux.Validation(msgExtraFieldsForUpdate)
		}
		var content string
		if jsonKind(extra.get("content")) != 's' || json.Unmarshal(extra.get("content"), &content) != nil {
			return chatmux.Validation(msgContentForUpdate)
		}
		// Only content and the host's fields change; sender, room,
		// timestamps, flags, parent and forward are ignored
		// (docs/protocol.md#message-modify).
		hostExtra := store.JSON{}
		for k, v := range extra {
			if s.extra[k] {
				var val any
				if json.Unmarshal(v, &val) == nil {
					hostExtra[k] = val
				}
			}
		}
		_, err = s.editMessage(ctx, ev(c), roomID, ids.IDs[0], content, hostExtra)
		return err
	case "delete":
		_, err := s.deleteMessages(ctx, ev(c), roomID, ids.IDs, ids.Raw)
		return err
	}
	return chatmux.Validation(msgInvalidAction)
}

// editMessage is message.modify update after its access check
// (modifyAccess): the content must not be blank ("Content should be
// provided for update action") and is checked and sanitised as at send;
// the message is edited (is_edited) with the host's fields, and
// messagemodification.dispatch {status, action: "update", message} goes
// to the room.
func (s *Service) editMessage(ctx context.Context, o origin, roomID, id uuid.UUID, content string, hostExtra store.JSON) (json.RawMessage, error) {
	if strings.TrimSpace(content) == "" {
		return nil, chatmux.Validation(msgContentForUpdate)
	}
	content, err := s.content(content, false)
	if err != nil {
		return nil, err
	}
	if hostExtra == nil {
		hostExtra = store.JSON{}
	}
	if _, err := s.st.EditMessage(ctx, id, content, hostExtra); err != nil {
		return nil, StoreError(err)
	}
	m, err := s.oneMessage(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.broadcast(ctx, o, RoomGroup(roomID), DispatchMessageModification, struct {
		Status  string       `json:"status"`
		Action  string       `json:"action"`
		Message *wireMessage `json:"message"`
	}{"successful", "update", m})
}

// deleteMessages is message.modify delete after its access check
// (modifyAccess): the messages are deleted (soft or hard per
// Config.SoftDelete) with their notifications, and
// messagemodification.dispatch {status, action: "delete", message_ids}
// (raw: the ids as the client sent them) goes to the room.
func (s *Service) deleteMessages(ctx context.Context, o origin, roomID uuid.UUID, ids []uuid.UUID, raw []json.RawMessage) (json.RawMessage, error) {
	if _, err := s.st.DeleteMessages(ctx, ids, !s.cfg.SoftDelete); err != nil {
		return nil, StoreError(err)
	}
	return s.broadcast(ctx, o, RoomGroup(roomID), DispatchMessageModification, struct {
		Status     string            `json:"status"`
		Action     string            `json:"action"`
		MessageIDs []json.RawMessage `json:"message_ids"`
	}{"successful", "delete", raw})
}
