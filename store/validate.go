package store

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
)

// The helpers below are shared by the implementations so that both reject
// the same input with the same errors before touching any data.

func maxLenMsg(n int) string {
	return fmt.Sprintf("Ensure this field has no more than %d characters.", n)
}

// ValidateText rejects strings PostgreSQL cannot store (invalid UTF-8 or
// NUL bytes), so both stores refuse the same input.
func ValidateText(field string, values ...string) error {
	for _, v := range values {
		if !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
			return Invalid(field, "Invalid text: must be UTF-8 without NUL characters.")
		}
	}
	return nil
}

// ValidateUser checks a user for UpsertUser.
func ValidateUser(u User) error {
	if u.ID <= 0 {
		return Invalid("id", "Invalid user id.")
	}
	if u.Username == "" {
		return Invalid("username", MsgRequired)
	}
	if err := ValidateText("username", u.Username); err != nil {
		return err
	}
	if IsDeletedUsername(u.Username) {
		return Invariant(ErrUserDeleted, "username", "This username belongs to a deleted user.")
	}
	return validateFields(textField{"email", u.Email}, textField{"first_name", u.FirstName}, textField{"last_name", u.LastName})
}

// textField is a named string for validateFields.
type textField struct{ name, value string }

// validateFields is ValidateText for several fields, each reported under
// its own name.
func validateFields(fs ...textField) error {
	for _, f := range fs {
		if err := ValidateText(f.name, f.value); err != nil {
			return err
		}
	}
	return nil
}

// ValidateNewSession checks the input of CreateSession.
func ValidateNewSession(ns NewSession) error {
	if err := ValidateText("conn_id", ns.ConnID); err != nil {
		return err
	}
	if err := ValidateText("node_id", ns.NodeID); err != nil {
		return err
	}
	if utf8.RuneCountInString(ns.NodeID) > MaxNodeIDLen {
		return Invalid("node_id", "%s", maxLenMsg(MaxNodeIDLen))
	}
	return nil
}

// ValidateNodeID checks the node id of TouchNode: not empty, at most
// MaxNodeIDLen characters.
func ValidateNodeID(id string) error {
	if id == "" {
		return Invalid("node_id", MsgRequired)
	}
	return ValidateNewSession(NewSession{NodeID: id})
}

// ValidateNewRoom checks r and returns it normalised: defaults applied,
// JSON objects copied, members de-duplicated without the creator.
func ValidateNewRoom(r NewRoom) (NewRoom, error) {
	if !r.Type.Valid() {
		return r, Invalid("type", "Invalid resource type")
	}
	if r.CreatorID <= 0 {
		return r, Invalid("creator", "Invalid user id.")
	}
	if err := validateFields(textField{"name", r.Name}, textField{"description", r.Description}, textField{"avatar", r.Avatar}); err != nil {
		return r, err
	}
	var err error
	if r.Preferences, err = r.Preferences.Clone("preferences"); err != nil {
		return r, err
	}
	if r.Extra, err = r.Extra.Clone("extra_fields"); err != nil {
		return r, err
	}
	members := make([]int64, 0, len(r.Members))
	for _, id := range UniqueInt64(r.Members) {
		if id != r.CreatorID {
			members = append(members, id)
		}
	}
	r.Members = members
	if r.Type == OneToOne {
		r.Name, r.Description, r.Avatar = "", "", ""
		r.MaxMembers = 0
		r.JoinApprovalRequired, r.GroupLocked, r.IsPublic = false, false, false
		return r, nil
	}
	if err := ValidateRoomName(r.Name); err != nil {
		return r, err
	}
	if r.MaxMembers < 0 {
		return r, Invalid("max_members", "Ensure this value is greater than or equal to 0.")
	}
	if r.MaxMembers == 0 {
		r.MaxMembers = DefaultMaxParticipants
		if r.Type == Channel {
			r.MaxMembers = DefaultMaxSubscribers
		}
	}
	if r.Type == Group {
		r.IsPublic = false
	} else {
		r.GroupLocked, r.JoinApprovalRequired = false, false
	}
	return r, nil
}

// ValidateRoomName checks a group or channel name: required, at most
// MaxRoomNameLen characters.
func ValidateRoomName(name string) error {
	if name == "" {
		return Invalid("name", MsgRequired)
	}
	if utf8.RuneCountInString(name) > MaxRoomNameLen {
		return Invalid("name", "%s", maxLenMsg(MaxRoomNameLen))
	}
	return nil
}

// ValidateRoomUpdate checks up for a room of type t and returns it with the
// fields that do not apply to t cleared and JSON objects copied.
func ValidateRoomUpdate(t RoomType, up RoomUpdate) (RoomUpdate, error) {
	var err error
	if up.Preferences != nil {
		if up.Preferences, err = up.Preferences.Clone("preferences"); err != nil {
			return up, err
		}
	}
	if up.Extra != nil {
		if up.Extra, err = up.Extra.Clone("extra_fields"); err != nil {
			return up, err
		}
	}
	switch t {
	case OneToOne:
		up.Name, up.Description, up.Avatar = nil, nil, nil
		up.GroupLocked, up.JoinApprovalRequired, up.IsPublic = nil, nil, nil
	case Group:
		up.IsPublic = nil
	case Channel:
		up.GroupLocked, up.JoinApprovalRequired = nil, nil
	}
	for _, f := range []struct {
		name string
		p    *string
	}{{"name", up.Name}, {"description", up.Description}, {"avatar", up.Avatar}} {
		if f.p != nil {
			if err := ValidateText(f.name, *f.p); err != nil {
				return up, err
			}
		}
	}
	if up.Name != nil {
		if err := ValidateRoomName(*up.Name); err != nil {
			return up, err
		}
	}
	return up, nil
}

// ValidateNewMessage checks m and returns it normalised (attachment
// defaults, JSON copies). A reply that is also a forward is ErrConflict, as
// the database check constraint reports it.
func ValidateNewMessage(m NewMessage) (NewMessage, error) {
	if m.RoomID == uuid.Nil {
		return m, Invalid("room_id", MsgRequired)
	}
	if m.SenderID < 0 {
		return m, Invalid("sender", "Invalid user id.")
	}
	if err := ValidateText("content", m.Content); err != nil {
		return m, err
	}
	if err := ValidateText("client_msg_id", m.ClientMsgID); err != nil {
		return m, err
	}
	if utf8.RuneCountInString(m.ClientMsgID) > MaxClientMsgIDLen {
		return m, Invalid("client_msg_id", "%s", maxLenMsg(MaxClientMsgIDLen))
	}
	if m.ParentID != nil && m.ForwardedFromID != nil {
		return m, fmt.Errorf("a message cannot be both a reply and a forward: %w", ErrConflict)
	}
	var err error
	if m.Extra, err = m.Extra.Clone("extra_fields"); err != nil {
		return m, err
	}
	atts := make([]NewAttachment, len(m.Attachments))
	for i, a := range m.Attachments {
		if atts[i], err = ValidateAttachment(a); err != nil {
			return m, err
		}
	}
	m.Attachments = atts
	return m, nil
}

// ValidateAttachment checks a and returns it with defaults applied.
func ValidateAttachment(a NewAttachment) (NewAttachment, error) {
	if err := validateFields(textField{"media_url", a.MediaURL}, textField{"media_type", string(a.MediaType)},
		textField{"mime_type", a.MimeType}, textField{"caption", a.Caption}); err != nil {
		return a, err
	}
	if a.MediaURL == "" {
		return a, Invalid("media_url", MsgRequired)
	}
	if !a.MediaType.Valid() {
		return a, Invalid("media_type", "%q is not a valid choice.", string(a.MediaType))
	}
	if a.FileSize < 0 {
		return a, Invalid("file_size", "Ensure this value is greater than or equal to 0.")
	}
	if a.MimeType == "" {
		a.MimeType = DefaultMIMEType
	}
	if !ValidMIMEType(a.MimeType) {
		return a, Invalid("mime_type", "%q is not a valid mime type.", a.MimeType)
	}
	var err error
	if a.Metadata, err = a.Metadata.Clone("metadata"); err != nil {
		return a, err
	}
	return a, nil
}

// ValidateReaction checks reaction content: non-empty, at most
// MaxReactionLen characters.
func ValidateReaction(content string) error {
	if content == "" {
		return Invalid("reaction_content", MsgBlank)
	}
	if err := ValidateText("reaction_content", content); err != nil {
		return err
	}
	if utf8.RuneCountInString(content) > MaxReactionLen {
		return Invalid("reaction_content", "%s", maxLenMsg(MaxReactionLen))
	}
	return nil
}

// ValidatePermissions checks that every permission belongs to room type t.
func ValidatePermissions(t RoomType, perms []Permission) error {
	for _, p := range perms {
		if p.ValidFor(t) {
			continue
		}
		kind := "group chat"
		if t == Channel {
			kind = "channel"
		}
		return Invalid("permission", "Permission '%s' is not a valid %s permission", p, kind)
	}
	return nil
}

// UniqueInt64 returns ids without duplicates, first occurrence kept.
func UniqueInt64(ids []int64) []int64 {
	out := make([]int64, 0, len(ids))
	seen := make(map[int64]struct{}, len(ids))
	for _, id := range ids {
		if _, ok := seen[id]; !ok {
			seen[id] = struct{}{}
			out = append(out, id)
		}
	}
	return out
}

// UniqueUUIDs returns ids without duplicates, first occurrence kept.
func UniqueUUIDs(ids []uuid.UUID) []uuid.UUID {
	out := make([]uuid.UUID, 0, len(ids))
	seen := make(map[uuid.UUID]struct{}, len(ids))
	for _, id := range ids {
		if _, ok := seen[id]; !ok {
			seen[id] = struct{}{}
			out = append(out, id)
		}
	}
	return out
}

// SortedInt64 returns a sorted copy of ids.
func SortedInt64(ids []int64) []int64 {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}
