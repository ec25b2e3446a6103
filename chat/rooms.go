package chat

import (
	"encoding/json"
	"fmt"
	"net/url"
	"unicode/utf8"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/store"
)

// CreateRoom handles room.create: data {type: "OneToOneChat"|"GroupChat"|
// "Channel", participants (one-to-one, group) or subscribers (channel): [user
// ids], name (group, channel), description?, extra_fields?: {max_participants
// | max_subscribers, avatar, join_approval_required, group_locked |
// is_public, property: {preferences}}}. Writable fields may also be given at
// the top level; extra_fields wins. A one-to-one chat lists only the other
// user, who must exist (else 4003 {"participants": ["Invalid pk \"<id>\" -
// object does not exist."]}); unknown ids of a group or channel are
// dropped. Every member's connections join the room's group, then
// roomcreate.dispatch (RoomDetail) goes to the room (docs/protocol.md#room-create).
func (s *Service) CreateRoom(c *chatmux.Context) error {
	u, f, err := readEvent(c)
	if err != nil {
		return err
	}
	typ, _, _ := f.str("type")
	nr := store.NewRoom{Type: store.RoomType(typ), CreatorID: u.ID}
	if !nr.Type.Valid() {
		return chatmux.Validation(msgInvalidResourceType)
	}
	merged := fields{}
	for k, v := range f {
		merged[k] = v
	}
	extra, _, err := f.object("extra_fields")
	if err != nil {
		return err
	}
	for k, v := range extra {
		merged[k] = v
	}
	if nr.Preferences, err = property(merged); err != nil {
		return err
	}
	membersKey := "participants"
	if nr.Type == store.Channel {
		membersKey = "subscribers"
	}
	if v := merged.get(membersKey); v != nil {
		ids, err := userIDList(membersKey, v)
		if err != nil {
			return err
		}
		nr.Members = ids
	}
	if nr.Type != store.OneToOne {
		if err := s.roomFields(merged, &nr); err != nil {
			return err
		}
	}
	room, err := s.st.CreateRoom(c.Context(), nr)
	if err != nil {
		return StoreError(err)
	}
	detail, d, err := s.roomDetail(c.Context(), room.ID)
	if err != nil {
		return err
	}
	group := RoomGroup(room.ID)
	for _, m := range d.Members {
		s.joinUser(c, m.ID, group)
	}
	return s.broadcast(c, group, DispatchRoomCreate, detail)
}

// roomFields reads the writable fields of a group or channel at creation.
func (s *Service) roomFields(f fields, nr *store.NewRoom) error {
	name, err := roomName(f, true)
	if err != nil {
		return err
	}
	nr.Name = *name
	if d, _, err := f.str("description"); err != nil {
		return err
	} else {
		nr.Description = d
	}
	if nr.Avatar, err = avatar(f); err != nil {
		return err
	}
	capKey, bound := "max_participants", s.cfg.MaxGroupParticipants
	if nr.Type == store.Channel {
		capKey, bound = "max_subscribers", s.cfg.MaxChannelSubscribers
	}
	if v := f.get(capKey); v != nil {
		n, ok := ParseUserID(v)
		if !ok {
			return chatmux.FieldError(capKey, msgNotInt)
		}
		if n < 1 {
			return chatmux.FieldError(capKey, msgMinOne)
		}
		if n > int64(bound) {
			return chatmux.FieldError(capKey, fmt.Sprintf("Ensure this value is less than or equal to %d.", bound))
		}
		nr.MaxMembers = int(n)
	}
	type flag struct {
		key string
		dst *bool
	}
	flags := []flag{{"is_public", &nr.IsPublic}}
	if nr.Type == store.Group {
		flags = []flag{{"join_approval_required", &nr.JoinApprovalRequired}, {"group_locked", &nr.GroupLocked}}
	}
	for _, fl := range flags {
		b, err := f.boolean(fl.key)
		if err != nil {
			return err
		}
		if b != nil {
			*fl.dst = *b
		}
	}
	return nil
}

// roomName reads and checks a group or channel name. At creation it is
// required; on update an absent or empty name is nil (left as it is).
func roomName(f fields, required bool) (*string, error) {
	name, ok, err := f.str("name")
	if err != nil {
		return nil, err
	}
	if !ok || name == "" {
		if !required {
			return nil, nil
		}
		if !ok {
			return nil, chatmux.FieldError("name", msgRequired)
		}
		return nil, chatmux.FieldError("name", msgBlank)
	}
	if utf8.RuneCountInString(name) > store.MaxRoomNameLen {
		return nil, chatmux.FieldError("name", fmt.Sprintf("Ensure this field has no more than %d characters.", store.MaxRoomNameLen))
	}
	return &name, nil
}

// avatar reads an optional avatar URL ("" when absent).
func avatar(f fields) (string, error) {
	a, ok, err := f.str("avatar")
	if err != nil || !ok || a == "" {
		return "", err
	}
	u, perr := url.Parse(a)
	if perr != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "ftp" && u.Scheme != "ftps") {
		return "", chatmux.FieldError("avatar", msgInvalidURL)
	}
	return a, nil
}

// property reads property: {preferences: {...}}: nil when absent.
func property(f fields) (store.JSON, error) {
	v := f.get("property")
	if v == nil {
		return nil, nil
	}
	var p fields
	if jsonKind(v) != 'o' || json.Unmarshal(v, &p) != nil {
		return nil, chatmux.Validation(msgPropertyObject)
	}
	pv := p.get("preferences")
	if pv == nil {
		return nil, nil
	}
	prefs, ok := jsonObject(pv)
	if !ok {
		return nil, chatmux.Validation(msgPreferencesObject)
	}
	return prefs, nil
}

// ListRooms handles room.list: every room of the user as RoomListItem
// objects with unread_count, by last activity, newest first;
// roomlist.dispatch goes to all the user's devices.
func (s *Service) ListRooms(c *chatmux.Context) error {
	u, err := user(c)
	if err != nil {
		return err
	}
	if _, err := decodeFields(c, true); err != nil {
		return err
	}
	items, err := s.st.ListRooms(c.Context(), u.ID)
	if err != nil {
		return StoreError(err)
	}
	out := make([]any, len(items))
	for i := range items {
		out[i] = s.roomListItemJSON(&items[i])
	}
	return s.sendUser(c, u.ID, DispatchRoomList, out)
}

// RoomInfo handles room.info: data {room_id}. Members only;
// roominfo.dispatch (RoomDetail) goes to all the user's devices.
func (s *Service) RoomInfo(c *chatmux.Context) error {
	u, _, roomID, _, err := s.memberEvent(c)
	if err != nil {
		return err
	}
	detail, _, err := s.roomDetail(c.Context(), roomID)
	if err != nil {
		return err
	}
	return s.sendUser(c, u.ID, DispatchRoomInfo, detail)
}
