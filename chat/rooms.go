package chat

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/store"
)

// CreateRoom handles room.create: data {type: "OneToOneChat"|"GroupChat"|
// "Channel", participants (one-to-one, group) or subscribers (channel): [user
// ids], name (group, channel), description?, extra_fields?: {max_participants
// | max_subscribers, avatar, join_approval_required, group_locked |
// is_public, property: {preferences}}}. Writable fields may also be given at
// the top level; extra_fields wins. A one-to-one chat lists only the other
// user. Every member's connections join the room's group, then
// roomcreate.dispatch (RoomDetail) goes to the room.
func (s *Service) CreateRoom(c *chatmux.Context) error {
	u, err := user(c)
	if err != nil {
		return err
	}
	f, err := decodeFields(c, false)
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
			return chatmux.FieldError(capKey, "Ensure this value is greater than or equal to 1.")
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

// userIDList reads a list of user ids for key (4003 when not a list of ids).
func userIDList(key string, v json.RawMessage) ([]int64, error) {
	if jsonKind(v) != 'a' {
		return nil, chatmux.FieldError(key, fmt.Sprintf("Expected a list of items but got type \"%s\".", kindName(v)))
	}
	ids, ok := ParseUserIDs(v)
	if !ok {
		return nil, chatmux.FieldError(key, msgNotInt)
	}
	return ids, nil
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
	u, err := user(c)
	if err != nil {
		return err
	}
	f, err := decodeFields(c, false)
	if err != nil {
		return err
	}
	roomID, _, err := s.requireMember(c, f)
	if err != nil {
		return err
	}
	detail, _, err := s.roomDetail(c.Context(), roomID)
	if err != nil {
		return err
	}
	return s.sendUser(c, u.ID, DispatchRoomInfo, detail)
}

type messagesData struct {
	RoomID   string         `json:"room_id"`
	Messages []*wireMessage `json:"messages"`
}

// RoomMessages handles room.messages: data {room_id, paginate?: {page,
// size}} (PROTOCOL.md B10, A2.16), or {room_id, after_seq | before_seq,
// limit?} (A3). Members only; roommessages.dispatch goes to all the user's
// devices. Without paginate every visible message comes, newest first;
// with it, one page of at most Config.MaxPageSize, with the effective page
// echoed. after_seq returns the messages after a seq, oldest first;
// before_seq those before it, newest first; both with has_more.
func (s *Service) RoomMessages(c *chatmux.Context) error {
	u, err := user(c)
	if err != nil {
		return err
	}
	f, err := decodeFields(c, false)
	if err != nil {
		return err
	}
	roomID, _, err := s.requireMember(c, f)
	if err != nil {
		return err
	}
	if f.get("after_seq") != nil || f.get("before_seq") != nil {
		return s.messagesBySeq(c, u.ID, roomID, f)
	}
	page, size, paginated, err := s.paginate(f.get("paginate"))
	if err != nil {
		return err
	}
	p, err := s.st.MessagesPage(c.Context(), roomID, page, size)
	if err != nil {
		return StoreError(err)
	}
	data := messagesData{RoomID: roomID.String(), Messages: s.viewsJSON(p.Messages)}
	if !paginated {
		return s.sendUser(c, u.ID, DispatchRoomMessages, struct {
			Data messagesData `json:"data"`
		}{data})
	}
	return s.sendUser(c, u.ID, DispatchRoomMessages, struct {
		HasNext     bool         `json:"has_next"`
		HasPrevious bool         `json:"has_previous"`
		NextPage    *int         `json:"next_page_number"`
		PrevPage    *int         `json:"prev_page_number"`
		Page        int          `json:"page"`
		Size        int          `json:"size"`
		Data        messagesData `json:"data"`
	}{p.HasNext, p.HasPrevious, pageNumber(p.NextPage()), pageNumber(p.PreviousPage()), p.Page, p.Size, data})
}

func pageNumber(n int) *int {
	if n == 0 {
		return nil
	}
	return &n
}

func (s *Service) viewsJSON(views []store.MessageView) []*wireMessage {
	out := make([]*wireMessage, len(views))
	for i := range views {
		out[i] = s.messageJSON(&views[i])
	}
	return out
}

// paginate reads room.messages' paginate object. No paginate, a non-object
// or an empty object means every message (paginated false).
func (s *Service) paginate(v json.RawMessage) (page, size int, paginated bool, err error) {
	var p fields
	if jsonKind(v) != 'o' || json.Unmarshal(v, &p) != nil || len(p) == 0 {
		return 0, 0, false, nil
	}
	pv, sv := p.get("page"), p.get("size")
	if !truthy(pv) || !truthy(sv) {
		return 0, 0, false, chatmux.Validation(msgPageAndSize)
	}
	pg, ok1 := pyInt(pv)
	sz, ok2 := pyInt(sv)
	if !ok1 || !ok2 {
		return 0, 0, false, chatmux.Validation(msgInvalidTypes)
	}
	if pg == 0 || sz == 0 {
		return 0, 0, false, chatmux.Validation(msgPageAndSize)
	}
	if sz < 0 {
		return 0, 0, false, chatmux.FieldError("size", "Ensure this value is greater than or equal to 1.")
	}
	sz = min(sz, int64(s.cfg.MaxPageSize))
	if pg > math.MaxInt32 || pg < math.MinInt32 {
		pg = -1 // out of range: the last page
	}
	return int(pg), int(sz), true, nil
}

// truthy is Python's truth value of a JSON value.
func truthy(v json.RawMessage) bool {
	switch strings.TrimSpace(string(v)) {
	case "", "null", "false", "0", `""`, "[]", "{}", "0.0":
		return false
	}
	return true
}

// pyInt converts a JSON value as Python's int() does: numbers (fractions
// truncated) and integer strings.
func pyInt(v json.RawMessage) (int64, bool) {
	switch jsonKind(v) {
	case 'n':
		var f float64
		if err := json.Unmarshal(v, &f); err != nil {
			return 0, false
		}
		if isJSONInteger(v) {
			return ParseUserID(v)
		}
		if math.Abs(f) > 1<<53 {
			return 0, false
		}
		return int64(f), true
	case 's':
		var str string
		if err := json.Unmarshal(v, &str); err != nil {
			return 0, false
		}
		n, err := strconv.ParseInt(strings.TrimSpace(str), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// messagesBySeq answers room.messages with after_seq or before_seq.
func (s *Service) messagesBySeq(c *chatmux.Context, userID int64, roomID uuid.UUID, f fields) error {
	if f.get("after_seq") != nil && f.get("before_seq") != nil {
		return chatmux.Validation("Give after_seq or before_seq, not both")
	}
	key := "after_seq"
	if f.get("after_seq") == nil {
		key = "before_seq"
	}
	seq, ok := ParseUserID(f.get(key))
	if !ok || seq < 0 {
		return chatmux.FieldError(key, msgNotInt)
	}
	limit := int64(s.cfg.MaxPageSize)
	if lv := f.get("limit"); lv != nil {
		n, ok := ParseUserID(lv)
		if !ok {
			return chatmux.FieldError("limit", msgNotInt)
		}
		if n < 1 {
			return chatmux.FieldError("limit", "Ensure this value is greater than or equal to 1.")
		}
		limit = min(n, limit)
	}
	var views []store.MessageView
	var err error
	if key == "after_seq" {
		views, err = s.st.MessagesAfter(c.Context(), roomID, seq, int(limit)+1)
	} else {
		views, err = s.st.MessagesBefore(c.Context(), roomID, seq, int(limit)+1)
	}
	if err != nil {
		return StoreError(err)
	}
	more := len(views) > int(limit)
	if more {
		views = views[:limit]
	}
	out := map[string]any{
		"data":     messagesData{RoomID: roomID.String(), Messages: s.viewsJSON(views)},
		key:        seq,
		"limit":    limit,
		"has_more": more,
	}
	return s.sendUser(c, userID, DispatchRoomMessages, out)
}

// JoinRoom handles room.join: data {room_id}. Only public channels can be
// joined; a member joining again changes and sends nothing (A2.17). The
// joiner's connections join the room's group, then roomaddmembers.dispatch
// {room, new_members: [username], added_by: "self"} goes to the room.
func (s *Service) JoinRoom(c *chatmux.Context) error {
	u, _, roomID, m, err := s.roomEvent(c)
	if err != nil {
		return err
	}
	switch {
	case m.RoomType == store.OneToOne:
		return chatmux.Validation(msgJoinOneToOne)
	case m.RoomType == store.Group:
		return chatmux.Validation(msgAskAdmin)
	case !m.IsPublic:
		return chatmux.Validation(msgPrivateChannel)
	case m.IsMember:
		return nil
	}
	added, err := s.st.AddMembers(c.Context(), roomID, []int64{u.ID})
	if err != nil {
		return StoreError(err)
	}
	if len(added) == 0 {
		return nil
	}
	group := RoomGroup(roomID)
	s.joinUser(c, u.ID, group)
	detail, _, err := s.roomDetail(c.Context(), roomID)
	if err != nil {
		return err
	}
	return s.broadcast(c, group, DispatchRoomAddMembers, addMembersPayload{detail, []string{u.Username}, "self"})
}

type addMembersPayload struct {
	Room       any      `json:"room"`
	NewMembers []string `json:"new_members"`
	AddedBy    string   `json:"added_by"`
}

type removeMembersPayload struct {
	Room           any      `json:"room"`
	RemovedMembers []string `json:"removed_members"`
	RemovedBy      string   `json:"removed_by"`
}

type exitPayload struct {
	Room    any    `json:"room"`
	Message string `json:"message"`
}

type deletePayload struct {
	RoomID string `json:"room_id"`
}

// LeaveRoom handles room.leave: data {room_id}. A member of a group or
// channel leaves it (losing role and permissions). The leaver's
// connections leave the room's group; the leaver's devices get
// roomexit.dispatch {room, message: "You left <name>"} and the room gets
// roomremovemembers.dispatch {room, removed_members, removed_by: "self"}.
// When the room becomes empty it is deleted and the leaver's devices get
// only roomdelete.dispatch {room_id}.
func (s *Service) LeaveRoom(c *chatmux.Context) error {
	u, err := user(c)
	if err != nil {
		return err
	}
	f, err := decodeFields(c, false)
	if err != nil {
		return err
	}
	roomID, m, err := s.requireMember(c, f)
	if err != nil {
		return err
	}
	if m.RoomType == store.OneToOne {
		return chatmux.Validation(msgLeaveOneToOne)
	}
	res, err := s.st.RemoveMembers(c.Context(), store.RemoveMembers{RoomID: roomID, ActorID: u.ID, UserIDs: []int64{u.ID}})
	if err != nil {
		return StoreError(err)
	}
	group := RoomGroup(roomID)
	s.leaveUser(c, u.ID, group)
	if res.RoomDeleted {
		return s.sendUser(c, u.ID, DispatchRoomDelete, deletePayload{roomID.String()})
	}
	detail, d, err := s.roomDetail(c.Context(), roomID)
	if err != nil {
		return err
	}
	if err := s.sendUser(c, u.ID, DispatchRoomExit, exitPayload{detail, "You left " + d.Name}); err != nil {
		return err
	}
	return s.broadcast(c, group, DispatchRoomRemoveMembers, removeMembersPayload{detail, []string{u.Username}, "self"})
}

// memberList reads data.members for add/remove (4003 when missing, not a
// list of ids, or empty).
func memberList(f fields) ([]int64, error) {
	v := f.get("members")
	if v == nil {
		return nil, chatmux.FieldError("members", msgRequired)
	}
	ids, err := userIDList("members", v)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, chatmux.FieldError("members", msgEmptyList)
	}
	return ids, nil
}

// usernames returns the usernames of ids, ordered by id.
func (s *Service) usernames(c *chatmux.Context, ids []int64) ([]string, error) {
	out := []string{}
	if len(ids) == 0 {
		return out, nil
	}
	us, err := s.st.Users(c.Context(), ids)
	if err != nil {
		return nil, StoreError(err)
	}
	for _, u := range us {
		out = append(out, u.Username)
	}
	return out, nil
}

// AddMembers handles room.add_members: data {room_id, members: [user ids]}.
// Groups and channels only (4003); the user must be a member allowed to
// add (CanAddMembers, else 4002). An unknown user id is 4004 and nothing is
// added; existing members are skipped; the cap is 4003. The new members'
// connections join the room's group, then roomaddmembers.dispatch {room,
// new_members, added_by: <username>} goes to the room.
func (s *Service) AddMembers(c *chatmux.Context) error {
	u, f, roomID, m, err := s.roomEvent(c)
	if err != nil {
		return err
	}
	if m.RoomType == store.OneToOne {
		return chatmux.Validation(store.MsgMembersGroupChannel)
	}
	if !CanAddMembers(m, u.ID) {
		return chatmux.PermissionDenied(msgDeniedAdd)
	}
	ids, err := memberList(f)
	if err != nil {
		return err
	}
	added, err := s.st.AddMembers(c.Context(), roomID, ids)
	if err != nil {
		return StoreError(err)
	}
	group := RoomGroup(roomID)
	for _, id := range added {
		s.joinUser(c, id, group)
	}
	names, err := s.usernames(c, added)
	if err != nil {
		return err
	}
	detail, _, err := s.roomDetail(c.Context(), roomID)
	if err != nil {
		return err
	}
	return s.broadcast(c, group, DispatchRoomAddMembers, addMembersPayload{detail, names, u.Username})
}

// RemoveMembers handles room.remove_members: data {room_id, members: [user
// ids]}. Groups and channels only (4003); the user must be a member allowed
// to remove (CanRemoveMembers, else 4002). An unknown user id is 4004 and
// nothing changes; the creator is skipped unless the creator removes
// themself; non-members are skipped. Removed users leave the room's group
// and get roomexit.dispatch {room, message: "You have been removed by
// <username>"} on their devices; the room gets roomremovemembers.dispatch
// {room, removed_members, removed_by: <username>}. A room left empty is
// deleted and every removed user gets roomdelete.dispatch {room_id}
// (A2.17).
func (s *Service) RemoveMembers(c *chatmux.Context) error {
	u, f, roomID, m, err := s.roomEvent(c)
	if err != nil {
		return err
	}
	if m.RoomType == store.OneToOne {
		return chatmux.Validation(store.MsgMembersGroupChannel)
	}
	if !CanRemoveMembers(m, u.ID) {
		return chatmux.PermissionDenied(msgDeniedRemove)
	}
	ids, err := memberList(f)
	if err != nil {
		return err
	}
	res, err := s.st.RemoveMembers(c.Context(), store.RemoveMembers{RoomID: roomID, ActorID: u.ID, UserIDs: ids})
	if err != nil {
		return StoreError(err)
	}
	group := RoomGroup(roomID)
	for _, id := range res.Removed {
		s.leaveUser(c, id, group)
	}
	if res.RoomDeleted {
		for _, id := range res.Removed {
			if err := s.sendUser(c, id, DispatchRoomDelete, deletePayload{roomID.String()}); err != nil {
				return err
			}
		}
		return nil
	}
	names, err := s.usernames(c, res.Removed)
	if err != nil {
		return err
	}
	detail, _, err := s.roomDetail(c.Context(), roomID)
	if err != nil {
		return err
	}
	exit := exitPayload{detail, "You have been removed by " + u.Username}
	for _, id := range res.Removed {
		if err := s.sendUser(c, id, DispatchRoomExit, exit); err != nil {
			return err
		}
	}
	return s.broadcast(c, group, DispatchRoomRemoveMembers, removeMembersPayload{detail, names, u.Username})
}
