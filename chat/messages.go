package chat

import (
	"encoding/json"
	"fmt"
	neturl "net/url"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/store"
)

// content reads and checks message content: a string, not blank after
// trimming (unless blankOK), at most MaxMessageLength characters.
func (s *Service) content(f fields, blankOK bool) (string, error) {
	v := f.get("content")
	if v == nil {
		if blankOK {
			return "", nil
		}
		return "", chatmux.FieldError("content", msgRequired)
	}
	var text string
	if jsonKind(v) != 's' || json.Unmarshal(v, &text) != nil {
		return "", chatmux.FieldError("content", msgNotString)
	}
	text = strings.TrimSpace(text)
	if text == "" && !blankOK {
		return "", chatmux.FieldError("content", msgBlank)
	}
	if utf8.RuneCountInString(text) > s.cfg.MaxMessageLength {
		return "", chatmux.FieldError("content", fmt.Sprintf("Ensure this field has no more than %d characters.", s.cfg.MaxMessageLength))
	}
	return s.Sanitize(text), nil
}

// SendMessage handles message.send (docs/protocol.md#message-send):
// data {room_id, content, client_msg_id?, extra_fields?: {parent_message_id,
// forwarded_from_id, media, host fields}}. The sender needs the send
// permission (CanSend). The message is stored in one transaction with its
// attachments and notification, then message.dispatch goes to the room. A
// retry with the same client_msg_id stores nothing and sends the original
// message to this socket only.
func (s *Service) SendMessage(c *chatmux.Context) error {
	u, f, roomID, m, err := s.roomEvent(c)
	if err != nil {
		return err
	}
	if !CanSend(m, u.ID) {
		return chatmux.PermissionDenied(msgDeniedSend)
	}
	nm := store.NewMessage{RoomID: roomID, SenderID: u.ID, Notify: s.cfg.Notifications}
	extra, _, err := f.object("extra_fields")
	if err != nil {
		return err
	}
	if v := extra.get("media"); v != nil {
		if nm.Attachments, err = parseMedia(v); err != nil {
			return err
		}
	}
	if nm.Content, err = s.content(f, len(nm.Attachments) > 0); err != nil {
		return err
	}
	cid, _, err := f.str("client_msg_id")
	if err != nil {
		return err
	}
	if utf8.RuneCountInString(cid) > store.MaxClientMsgIDLen {
		return chatmux.FieldError("client_msg_id", fmt.Sprintf("Ensure this field has no more than %d characters.", store.MaxClientMsgIDLen))
	}
	nm.ClientMsgID = cid
	for _, ref := range []struct {
		key string
		dst **uuid.UUID
	}{{"parent_message_id", &nm.ParentID}, {"forwarded_from_id", &nm.ForwardedFromID}} {
		v := extra.get(ref.key)
		if v == nil {
			continue
		}
		id, err := s.referencedMessage(c, u.ID, ref.key, v)
		if err != nil {
			return err
		}
		*ref.dst = &id
	}
	if nm.Extra, err = s.extraFields(extra, "parent_message_id", "forwarded_from_id", "media"); err != nil {
		return err
	}
	res, err := s.st.SendMessage(c.Context(), nm)
	if err != nil {
		return StoreError(err)
	}
	var msgs []*wireMessage
	if res.Duplicate || nm.ParentID != nil || nm.ForwardedFromID != nil {
		msgs, err = s.messagesJSON(c.Context(), []uuid.UUID{res.Message.ID})
		if err == nil && len(msgs) != 1 {
			err = store.ErrNotFound
		}
		if err != nil && res.Duplicate {
			return StoreError(err) // nothing new was stored: the retry may retry
		}
		if err != nil {
			// Stored: the sender's answer is the message as sent, without
			// the referenced message's object.
			s.log.WarnContext(c.Context(), "chat: failed to read a stored message back; sending it as sent", "message_id", res.Message.ID, "err", err)
			msgs = nil
		}
	}
	if msgs == nil {
		// A new message without references: everything its Message
		// object shows is at hand (no receipts, reactions or deliveries
		// yet; the sender was stored from this identity on connect), so
		// it is encoded without reading it back.
		v := store.MessageView{Message: res.Message, Attachments: res.Attachments,
			Sender: store.User{ID: u.ID, Username: u.Username, Email: u.Email, FirstName: u.FirstName, LastName: u.LastName}}
		msgs = []*wireMessage{s.messageJSON(&v)}
	}
	if res.Duplicate {
		return send(c, DispatchMessage, msgs[0])
	}
	// A connection that is not in the room's group although its user is a
	// member (a group move it missed) still gets its answer.
	group := RoomGroup(roomID)
	joined := inGroup(c, group)
	if err := s.broadcast(c, group, DispatchMessage, msgs[0]); err != nil {
		return err
	}
	if !joined && c.Conn() != nil {
		return send(c, DispatchMessage, msgs[0])
	}
	return nil
}

// extraFields returns the host-registered extra fields of extra_fields
// (Config.ExtraMessageFields); any other key than those and the allowed
// built-in ones is 4003 (docs/protocol.md#diff-extra-fields).
func (s *Service) extraFields(extra fields, builtin ...string) (store.JSON, error) {
	out := store.JSON{}
	names := make([]string, 0, len(extra))
	for k := range extra {
		names = append(names, k)
	}
	sort.Strings(names)
outer:
	for _, k := range names {
		for _, b := range builtin {
			if k == b {
				continue outer
			}
		}
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

// referencedMessage checks parent_message_id / forwarded_from_id: a UUID of
// an existing, visible message (else 4003) in a room the sender belongs to
// (else 4002, docs/protocol.md#diff-reply-access).
func (s *Service) referencedMessage(c *chatmux.Context, userID int64, key string, v json.RawMessage) (uuid.UUID, error) {
	var raw string
	if jsonKind(v) != 's' || json.Unmarshal(v, &raw) != nil {
		return uuid.Nil, chatmux.FieldError(key, "Incorrect type. Expected pk value, received "+kindName(v)+".")
	}
	id, err := uuid.Parse(raw)
	if err != nil {
		return uuid.Nil, chatmux.FieldError(key, msgNotUUID(raw))
	}
	got, err := s.st.Messages(c.Context(), []uuid.UUID{id})
	if err != nil {
		return uuid.Nil, StoreError(err)
	}
	if len(got) != 1 || got[0].IsDeleted {
		return uuid.Nil, chatmux.FieldError(key, fmt.Sprintf("Invalid pk \"%s\" - object does not exist.", raw))
	}
	m, err := s.st.Membership(c.Context(), got[0].RoomID, userID)
	if err != nil {
		return uuid.Nil, StoreError(err)
	}
	if !m.IsMember {
		return uuid.Nil, chatmux.PermissionDenied(msgDeniedMessage)
	}
	return id, nil
}

// parseMedia reads extra_fields.media: a list of {media_url, media_type,
// file_size?, mime_type?, caption?, metadata?}. Any invalid item is 4003
// (docs/protocol.md#diff-media), nothing is stored. media_url must be an
// absolute http or https URL with a host (isWebURL), else {"media_url":
// ["Enter a valid URL."]}: clients render it as a link or an image, and a
// javascript: or data: URL is not something to relay to a room
// (docs/protocol.md#attachment).
func parseMedia(v json.RawMessage) ([]store.NewAttachment, error) {
	if jsonKind(v) != 'a' {
		return nil, chatmux.FieldError("media", fmt.Sprintf("Expected a list of items but got type \"%s\".", kindName(v)))
	}
	var items []json.RawMessage
	if err := json.Unmarshal(v, &items); err != nil {
		return nil, chatmux.FieldError("media", "Invalid value.")
	}
	out := make([]store.NewAttachment, 0, len(items))
	for _, it := range items {
		var f fields
		if jsonKind(it) != 'o' || json.Unmarshal(it, &f) != nil {
			return nil, chatmux.FieldError("media", "Invalid data. Expected a dictionary.")
		}
		var a store.NewAttachment
		var err error
		url, ok, err := f.str("media_url")
		if err != nil {
			return nil, err
		}
		if !ok || url == "" {
			return nil, chatmux.FieldError("media_url", msgRequired)
		}
		if !isWebURL(url) {
			return nil, chatmux.FieldError("media_url", msgInvalidURL)
		}
		a.MediaURL = url
		mt, _, err := f.str("media_type")
		if err != nil {
			return nil, err
		}
		a.MediaType = store.MediaType(mt)
		if a.MimeType, _, err = f.str("mime_type"); err != nil {
			return nil, err
		}
		if a.Caption, _, err = f.str("caption"); err != nil {
			return nil, err
		}
		if fs := f.get("file_size"); fs != nil {
			n, ok := ParseUserID(fs)
			if !ok || jsonKind(fs) != 'n' {
				return nil, chatmux.FieldError("file_size", msgNotInt)
			}
			a.FileSize = n
		}
		if md := f.get("metadata"); md != nil {
			obj, ok := jsonObject(md)
			if !ok {
				return nil, chatmux.FieldError("metadata", msgNotObject)
			}
			a.Metadata = obj
		}
		if a, err = store.ValidateAttachment(a); err != nil {
			return nil, StoreError(err)
		}
		out = append(out, a)
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

// Typing handles message.typing: with the send permission, it broadcasts
// messagetyping.dispatch {username, room_id, user_id}
// (docs/protocol.md#diff-typing) to
// the room, the typer included. Nothing is stored.
func (s *Service) Typing(c *chatmux.Context) error {
	u, _, roomID, m, err := s.roomEvent(c)
	if err != nil {
		return err
	}
	if !CanSend(m, u.ID) {
		return chatmux.PermissionDenied(msgDeniedSend)
	}
	return s.broadcast(c, RoomGroup(roomID), DispatchTyping, struct {
		Username string `json:"username"`
		RoomID   string `json:"room_id"`
		UserID   int64  `json:"user_id"`
	}{u.Username, roomID.String(), u.ID})
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

// ReactToMessage handles message.react: data {type: "add"|"remove",
// message_id, reaction_content}. Any member of the message's room may
// react. add replaces a different reaction of the user (the same one again
// is 4005) and answers {status, type: "add", message}; remove answers
// {status: "successful"|"failed", action: "remove", message}. Both go to the
// room as reaction.dispatch.
func (s *Service) ReactToMessage(c *chatmux.Context) error {
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
		m, err := s.oneMessage(c, msg.ID)
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
		m, err := s.oneMessage(c, msg.ID)
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
	return s.broadcast(c, RoomGroup(msg.RoomID), DispatchReaction, payload)
}

func (s *Service) oneMessage(c *chatmux.Context, id uuid.UUID) (*wireMessage, error) {
	ms, err := s.messagesJSON(c.Context(), []uuid.UUID{id})
	if err != nil {
		return nil, err
	}
	if len(ms) != 1 {
		return nil, chatmux.NotFound()
	}
	return ms[0], nil
}

// ModifyMessages handles message.modify: data {action: "update"|"delete",
// message_id: id or [ids], extra_fields: {content, host fields} for
// update}. Only the sender of every listed message may modify them, and
// only while a member of their (single) room. update edits one message
// (sanitised, is_edited) and answers {status, action: "update", message};
// delete removes them (soft or hard per Config.SoftDelete) with their
// notifications and answers {status, action: "delete", message_ids}. The
// answer goes to the room as messagemodification.dispatch.
func (s *Service) ModifyMessages(c *chatmux.Context) error {
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
	// The sender check runs first: existence (4004), sender (4002), one
	// room (4003); then membership (4002).
	msgs, err := s.liveMessages(c.Context(), ids.IDs)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if m.SenderID != u.ID {
			return chatmux.PermissionDenied(msgDeniedModify)
		}
	}
	roomID := msgs[0].RoomID
	for _, m := range msgs[1:] {
		if m.RoomID != roomID {
			return chatmux.Validation(msgSameRoom)
		}
	}
	mem, err := s.membership(c.Context(), roomID, u.ID)
	if err != nil {
		return err
	}
	if !mem.IsMember {
		return chatmux.PermissionDenied(msgDeniedMessage)
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
		var raw string
		if jsonKind(extra.get("content")) != 's' || json.Unmarshal(extra.get("content"), &raw) != nil ||
			strings.TrimSpace(raw) == "" {
			return chatmux.Validation(msgContentForUpdate)
		}
		content, err := s.content(extra, false)
		if err != nil {
			return err
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
		if _, err := s.st.EditMessage(c.Context(), ids.IDs[0], content, hostExtra); err != nil {
			return StoreError(err)
		}
		m, err := s.oneMessage(c, ids.IDs[0])
		if err != nil {
			return err
		}
		return s.broadcast(c, RoomGroup(roomID), DispatchMessageModification, struct {
			Status  string       `json:"status"`
			Action  string       `json:"action"`
			Message *wireMessage `json:"message"`
		}{"successful", "update", m})
	case "delete":
		if _, err := s.st.DeleteMessages(c.Context(), ids.IDs, !s.cfg.SoftDelete); err != nil {
			return StoreError(err)
		}
		return s.broadcast(c, RoomGroup(roomID), DispatchMessageModification, struct {
			Status     string            `json:"status"`
			Action     string            `json:"action"`
			MessageIDs []json.RawMessage `json:"message_ids"`
		}{"successful", "delete", ids.Raw})
	}
	return chatmux.Validation(msgInvalidAction)
}
