package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"unicode/utf8"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/store"
)

// handleCreateRoom handles room.create: data {type: "OneToOneChat"|
// "GroupChat"|"Channel", participants (one-to-one, group) or subscribers
// (channel): [user ids], name (group, channel), description?,
// extra_fields?: {max_participants | max_subscribers, avatar,
// join_approval_required, group_locked | is_public, property:
// {preferences}}}. Writable fields may also be given at the top level;
// extra_fields wins. The data is read into a CreateRoom and the room is
// created by createRoom, as the Go API's CreateRoom does.
func (s *Service) handleCreateRoom(c *chatmux.Context) error {
	u, f, err := readEvent(c)
	if err != nil {
		return err
	}
	typ, _, _ := f.str("type")
	in := newRoomInput{roomType: store.RoomType(typ)}
	if !in.roomType.Valid() {
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
	if in.Preferences, err = property(merged); err != nil {
		return err
	}
	membersKey := "participants"
	if in.roomType == store.Channel {
		membersKey = "subscribers"
	}
	if v := merged.get(membersKey); v != nil {
		if in.Members, err = userIDList(membersKey, v); err != nil {
			return err
		}
	}
	if in.roomType != store.OneToOne {
		if err := s.readRoomFields(merged, &in); err != nil {
			return err
		}
	}
	_, err = s.createRoom(c.Context(), ev(c), eventActor(u), in)
	return err
}

// newRoomInput is a CreateRoom with its type read.
type newRoomInput struct {
	CreateRoom
	roomType store.RoomType
}

// readRoomFields reads the writable fields of a group or channel at
// creation: their JSON types, a missing name and a cap below 1 (4003);
// createRoom checks the values.
func (s *Service) readRoomFields(f fields, in *newRoomInput) error {
	name, ok, err := f.str("name")
	if err != nil {
		return err
	}
	if !ok {
		return chatmux.FieldError("name", msgRequired)
	}
	in.Name = name
	if in.Description, _, err = f.str("description"); err != nil {
		return err
	}
	if in.Avatar, _, err = f.str("avatar"); err != nil {
		return err
	}
	capKey := capField(in.roomType)
	if v := f.get(capKey); v != nil {
		n, ok := ParseUserID(v)
		if !ok {
			return chatmux.FieldError(capKey, msgNotInt)
		}
		if n < 1 {
			return chatmux.FieldError(capKey, msgMinOne)
		}
		in.MaxMembers = int(min(n, math.MaxInt32))
	}
	type flag struct {
		key string
		dst *bool
	}
	flags := []flag{{"is_public", &in.IsPublic}}
	if in.roomType == store.Group {
		flags = []flag{{"join_approval_required", &in.JoinApprovalRequired}, {"group_locked", &in.GroupLocked}}
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

// capField names the cap of a room type.
func capField(t store.RoomType) string {
	if t == store.Channel {
		return "max_subscribers"
	}
	return "max_participants"
}

// createRoom is room.create by a (a user: the creator) with its input
// read: it checks the values (docs/protocol.md#room-create), creates the
// room (a one-to-one chat lists only the other user, who must exist, else
// 4003 {"participants": ["Invalid pk \"<id>\" - object does not
// exist."]}; unknown ids of a group or channel are dropped), moves every
// member's connections into the room's group, then roomcreate.dispatch
// (RoomDetail) goes to the room.
func (s *Service) createRoom(ctx context.Context, o origin, a actor, in newRoomInput) (json.RawMessage, error) {
	nr := store.NewRoom{Type: in.roomType, CreatorID: a.id, Members: store.UniqueInt64(in.Members)}
	var err error
	if nr.Preferences, err = preferences(in.Preferences); err != nil {
		return nil, err
	}
	if nr.Type != store.OneToOne {
		name, err := checkRoomName(in.Name, true)
		if err != nil {
			return nil, err
		}
		nr.Name, nr.Description = *name, in.Description
		if err := checkAvatar(in.Avatar); err != nil {
			return nil, err
		}
		nr.Avatar = in.Avatar
		capKey, bound := capField(nr.Type), s.cfg.MaxGroupParticipants
		if nr.Type == store.Channel {
			bound = s.cfg.MaxChannelSubscribers
		}
		if in.MaxMembers < 0 {
			return nil, chatmux.FieldError(capKey, msgMinOne)
		}
		if in.MaxMembers > bound {
			return nil, chatmux.FieldError(capKey, fmt.Sprintf("Ensure this value is less than or equal to %d.", bound))
		}
		nr.MaxMembers = in.MaxMembers
		if nr.Type == store.Group {
			nr.GroupLocked, nr.JoinApprovalRequired = in.GroupLocked, in.JoinApprovalRequired
		} else {
			nr.IsPublic = in.IsPublic
		}
	}
	room, err := s.st.CreateRoom(ctx, nr)
	if err != nil {
		return nil, StoreError(err)
	}
	detail, d, err := s.roomDetail(ctx, room.ID)
	if err != nil {
		return nil, err
	}
	group := RoomGroup(room.ID)
	for _, m := range d.Members {
		s.joinUser(ctx, o, m.ID, group)
	}
	return s.broadcast(ctx, o, group, DispatchRoomCreate, detail)
}

// checkRoomName checks a group or channel name. At creation it is
// required (blank: 4003); on update an empty name is nil (left as it is).
func checkRoomName(name string, required bool) (*string, error) {
	if name == "" {
		if !required {
			return nil, nil
		}
		return nil, chatmux.FieldError("name", msgBlank)
	}
	if utf8.RuneCountInString(name) > store.MaxRoomNameLen {
		return nil, chatmux.FieldError("name", fmt.Sprintf("Ensure this field has no more than %d characters.", store.MaxRoomNameLen))
	}
	return &name, nil
}

// checkAvatar checks an avatar URL ("" is none).
func checkAvatar(a string) error {
	if a == "" {
		return nil
	}
	u, perr := url.Parse(a)
	if perr != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "ftp" && u.Scheme != "ftps") {
		return chatmux.FieldError("avatar", msgInvalidURL)
	}
	return nil
}

// property reads property: {preferences: {...}}: the raw preferences
// object, nil when absent.
func property(f fields) (json.RawMessage, error) {
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
	if jsonKind(pv) != 'o' {
		return nil, chatmux.Validation(msgPreferencesObject)
	}
	return pv, nil
}

// preferences decodes a preferences object (nil or null: none).
func preferences(v json.RawMessage) (store.JSON, error) {
	if len(v) == 0 || isNull(v) {
		return nil, nil
	}
	prefs, ok := jsonObject(v)
	if !ok {
		return nil, chatmux.Validation(msgPreferencesObject)
	}
	return prefs, nil
}

// handleListRooms handles room.list: every room of the user as RoomListItem
// objects with unread_count, by last activity, newest first;
// roomlist.dispatch goes to all the user's devices.
func (s *Service) handleListRooms(c *chatmux.Context) error {
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
	_, err = s.sendUser(c.Context(), ev(c), u.ID, DispatchRoomList, out)
	return err
}

// handleRoomInfo handles room.info: data {room_id}. Members only;
// roominfo.dispatch (RoomDetail) goes to all the user's devices.
func (s *Service) handleRoomInfo(c *chatmux.Context) error {
	u, _, roomID, _, err := s.memberEvent(c)
	if err != nil {
		return err
	}
	detail, _, err := s.roomDetail(c.Context(), roomID)
	if err != nil {
		return err
	}
	_, err = s.sendUser(c.Context(), ev(c), u.ID, DispatchRoomInfo, detail)
	return err
}
