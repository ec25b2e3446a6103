package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// The typed methods of the events of docs/protocol.md#events. Each sends
// its event with a request_id and returns once the server sent its final
// answer (docs/protocol.md#request-id), with the dispatch that answers it
// when there is one. They fail as Request does.

// errNoAnswer is the error of a request answered without the dispatch it
// expects.
func errNoAnswer(event, dispatch string) error {
	return &ServerError{Detail: json.RawMessage(fmt.Sprintf("%q", "no "+dispatch+" in the answer")), EventType: event}
}

// answer returns the data of the last frame of frames that is eventType
// and for which match (nil: any) returns true, decoded into out.
func answer[T any](frames []Dispatch, event, eventType string, match func(*T) bool) (*T, error) {
	var found *T
	for _, f := range frames {
		if f.EventType != eventType {
			continue
		}
		v := new(T)
		if json.Unmarshal(f.Data, v) != nil || (match != nil && !match(v)) {
			continue
		}
		found = v
	}
	if found == nil {
		return nil, errNoAnswer(event, eventType)
	}
	return found, nil
}

// isType returns a collect function that keeps the dispatches of
// eventType whose data match returns true for.
func isType[T any](eventType string, match func(*T) bool) func(Dispatch) bool {
	return func(d Dispatch) bool {
		if d.EventType != eventType {
			return false
		}
		if match == nil {
			return true
		}
		v := new(T)
		return json.Unmarshal(d.Data, v) == nil && match(v)
	}
}

// Acknowledge sends message.acknowledged: delivery receipts for messages of
// others (docs/protocol.md#message-acknowledged).
func (c *Client) Acknowledge(ctx context.Context, messageIDs ...string) error {
	if len(messageIDs) == 0 {
		return errors.New("chatmux client: Acknowledge: no message id")
	}
	_, err := c.Request(ctx, "message.acknowledged", map[string]any{"message_id": messageIDs}, nil)
	return err
}

// Read sends message.read: read receipts (docs/protocol.md#message-read).
func (c *Client) Read(ctx context.Context, messageIDs ...string) error {
	if len(messageIDs) == 0 {
		return errors.New("chatmux client: Read: no message id")
	}
	_, err := c.Request(ctx, "message.read", map[string]any{"message_id": messageIDs}, nil)
	return err
}

// React adds the user's reaction to a message (docs/protocol.md#message-react)
// and returns the reaction.dispatch.
func (c *Client) React(ctx context.Context, messageID, reaction string) (*ReactionDispatch, error) {
	return c.react(ctx, map[string]any{"type": "add", "message_id": messageID, "reaction_content": reaction}, messageID)
}

// RemoveReaction removes the user's reaction to a message and returns the
// reaction.dispatch (Status "failed" when there was none).
func (c *Client) RemoveReaction(ctx context.Context, messageID string) (*ReactionDispatch, error) {
	return c.react(ctx, map[string]any{"type": "remove", "message_id": messageID}, messageID)
}

func (c *Client) react(ctx context.Context, data map[string]any, messageID string) (*ReactionDispatch, error) {
	of := func(r *ReactionDispatch) bool { return r.Message.ID == messageID }
	frames, err := c.Request(ctx, "message.react", data, isType(DispatchReaction, of))
	if err != nil {
		return nil, err
	}
	return answer(frames, "message.react", DispatchReaction, of)
}

// Typing sends message.typing (docs/protocol.md#message-typing); send it at
// most every 2-3 s while the user types.
func (c *Client) Typing(ctx context.Context, roomID string) error {
	_, err := c.Request(ctx, "message.typing", map[string]any{"room_id": roomID}, nil)
	return err
}

// EditMessage edits one of the user's messages (docs/protocol.md#message-modify)
// and returns it edited.
func (c *Client) EditMessage(ctx context.Context, messageID, content string) (*Message, error) {
	of := func(m *ModificationDispatch) bool {
		return m.Action == "update" && m.Message != nil && m.Message.ID == messageID
	}
	frames, err := c.Request(ctx, "message.modify", map[string]any{
		"action": "update", "message_id": messageID, "extra_fields": map[string]any{"content": content},
	}, isType(DispatchModification, of))
	if err != nil {
		return nil, err
	}
	m, err := answer(frames, "message.modify", DispatchModification, of)
	if err != nil {
		return nil, err
	}
	return m.Message, nil
}

// DeleteMessages deletes messages of the user's, all of one room.
func (c *Client) DeleteMessages(ctx context.Context, messageIDs ...string) error {
	if len(messageIDs) == 0 {
		return errors.New("chatmux client: DeleteMessages: no message id")
	}
	_, err := c.Request(ctx, "message.modify", map[string]any{"action": "delete", "message_id": messageIDs}, nil)
	return err
}

// CreateRoom is the input of room.create (docs/protocol.md#room-create).
type CreateRoom struct {
	// Type is RoomOneToOne, RoomGroup or RoomChannel.
	Type string
	// Name (groups, channels; required there), Description, Avatar.
	Name, Description, Avatar string
	// Members are the other members: participants, or a channel's
	// subscribers. A one-to-one chat names exactly the other user.
	Members []int64
	// MaxMembers is max_participants / max_subscribers (0: the server's
	// default).
	MaxMembers int
	// GroupLocked, JoinApprovalRequired (groups), IsPublic (channels).
	GroupLocked, JoinApprovalRequired, IsPublic bool
	// Preferences is the room's preferences object (nil: none).
	Preferences json.RawMessage
}

func (r CreateRoom) data() map[string]any {
	d := map[string]any{"type": r.Type}
	members := r.Members
	if members == nil {
		members = []int64{}
	}
	extra := map[string]any{}
	if r.Type == RoomChannel {
		d["subscribers"] = members
		if r.MaxMembers > 0 {
			extra["max_subscribers"] = r.MaxMembers
		}
		if r.IsPublic {
			extra["is_public"] = true
		}
	} else {
		d["participants"] = members
		if r.MaxMembers > 0 {
			extra["max_participants"] = r.MaxMembers
		}
		if r.GroupLocked {
			extra["group_locked"] = true
		}
		if r.JoinApprovalRequired {
			extra["join_approval_required"] = true
		}
	}
	if r.Type != RoomOneToOne {
		d["name"] = r.Name
		if r.Description != "" {
			d["description"] = r.Description
		}
		if r.Avatar != "" {
			d["avatar"] = r.Avatar
		}
	}
	if r.Preferences != nil {
		extra["property"] = map[string]any{"preferences": r.Preferences}
	}
	if len(extra) > 0 {
		d["extra_fields"] = extra
	}
	return d
}

// fitsCreate scores a created room as the answer to a room.create: -1 when
// it cannot be (another type or name, a one-to-one chat with someone
// else), else how many of the asked members it has.
func fitsCreate(d *RoomDetail, in CreateRoom) int {
	if d.Type != in.Type || (in.Type != RoomOneToOne && d.Name != in.Name) {
		return -1
	}
	have := map[int64]bool{}
	for _, u := range d.Members() {
		have[u.ID] = true
	}
	found := 0
	for _, id := range in.Members {
		if have[id] {
			found++
		}
	}
	if in.Type == RoomOneToOne && found != len(in.Members) {
		return -1
	}
	return found
}

// CreateRoom sends room.create and returns the new room's detail. The
// roomcreate.dispatch goes to the room without request_id, so a room
// someone else created with this user in the same window may arrive too:
// the answer is the one that fits the input best.
func (c *Client) CreateRoom(ctx context.Context, in CreateRoom) (*RoomDetail, error) {
	fits := func(d *RoomDetail) bool { return fitsCreate(d, in) >= 0 }
	frames, err := c.Request(ctx, "room.create", in.data(), isType(DispatchRoomCreate, fits))
	if err != nil {
		return nil, err
	}
	var best *RoomDetail
	for _, f := range frames {
		if f.EventType != DispatchRoomCreate {
			continue
		}
		d := new(RoomDetail)
		if json.Unmarshal(f.Data, d) == nil && fits(d) && (best == nil || fitsCreate(d, in) >= fitsCreate(best, in)) {
			best = d
		}
	}
	if best == nil {
		return nil, errNoAnswer("room.create", DispatchRoomCreate)
	}
	return best, nil
}

// ListRooms sends room.list: every room of the user, most recently active
// first (docs/protocol.md#room-list).
func (c *Client) ListRooms(ctx context.Context) ([]RoomListItem, error) {
	frames, err := c.Request(ctx, "room.list", map[string]any{}, isType[[]RoomListItem](DispatchRoomList, nil))
	if err != nil {
		return nil, err
	}
	l, err := answer[[]RoomListItem](frames, "room.list", DispatchRoomList, nil)
	if err != nil {
		return nil, err
	}
	return *l, nil
}

// RoomInfo sends room.info: a room's detail (docs/protocol.md#room-info).
func (c *Client) RoomInfo(ctx context.Context, roomID string) (*RoomDetail, error) {
	of := func(d *RoomDetail) bool { return d.ID == roomID }
	frames, err := c.Request(ctx, "room.info", map[string]any{"room_id": roomID}, isType(DispatchRoomInfo, of))
	if err != nil {
		return nil, err
	}
	return answer(frames, "room.info", DispatchRoomInfo, of)
}

// HistoryQuery is the form of room.messages (docs/protocol.md#pagination):
// AfterSeq or BeforeSeq with Limit (by seq), or Page and Size (pages), or
// nothing (every message).
type HistoryQuery struct {
	AfterSeq  *int64
	BeforeSeq *int64
	Limit     int
	Page      int
	Size      int
}

// RoomMessages sends room.messages and returns the page. Tracked rooms are
// caught up by the client itself: this is for history and scrolling back.
func (c *Client) RoomMessages(ctx context.Context, roomID string, q HistoryQuery) (*RoomMessagesPage, error) {
	data := map[string]any{"room_id": roomID}
	switch {
	case q.AfterSeq != nil:
		data["after_seq"] = *q.AfterSeq
	case q.BeforeSeq != nil:
		data["before_seq"] = *q.BeforeSeq
	case q.Page > 0 || q.Size > 0:
		data["paginate"] = map[string]int{"page": q.Page, "size": q.Size}
	}
	if q.Limit > 0 {
		data["limit"] = q.Limit
	}
	of := func(p *RoomMessagesPage) bool {
		if p.Data.RoomID != roomID {
			return false
		}
		switch {
		case q.AfterSeq != nil:
			return p.AfterSeq != nil && *p.AfterSeq == *q.AfterSeq
		case q.BeforeSeq != nil:
			return p.BeforeSeq != nil && *p.BeforeSeq == *q.BeforeSeq
		}
		return p.AfterSeq == nil && p.BeforeSeq == nil
	}
	frames, err := c.Request(ctx, "room.messages", data, isType(DispatchRoomMessages, of))
	if err != nil {
		return nil, err
	}
	return answer(frames, "room.messages", DispatchRoomMessages, of)
}

// JoinRoom sends room.join: joins a public channel (docs/protocol.md#room-join).
func (c *Client) JoinRoom(ctx context.Context, roomID string) error {
	_, err := c.Request(ctx, "room.join", map[string]any{"room_id": roomID}, nil)
	return err
}

// LeaveRoom sends room.leave (docs/protocol.md#room-leave).
func (c *Client) LeaveRoom(ctx context.Context, roomID string) error {
	_, err := c.Request(ctx, "room.leave", map[string]any{"room_id": roomID}, nil)
	return err
}

// AddMembers sends room.add_members (docs/protocol.md#room-add-members).
func (c *Client) AddMembers(ctx context.Context, roomID string, userIDs ...int64) error {
	_, err := c.Request(ctx, "room.add_members", map[string]any{"room_id": roomID, "members": nonNil(userIDs)}, nil)
	return err
}

// RemoveMembers sends room.remove_members (docs/protocol.md#room-remove-members).
func (c *Client) RemoveMembers(ctx context.Context, roomID string, userIDs ...int64) error {
	_, err := c.Request(ctx, "room.remove_members", map[string]any{"room_id": roomID, "members": nonNil(userIDs)}, nil)
	return err
}

func nonNil(ids []int64) []int64 {
	if ids == nil {
		return []int64{}
	}
	return ids
}

// RoomUpdate is the input of room.modify update: nil fields are left as
// they are (docs/protocol.md#room-modify).
type RoomUpdate struct {
	Name, Description, Avatar                   *string
	GroupLocked, JoinApprovalRequired, IsPublic *bool
	Preferences                                 json.RawMessage
}

// UpdateRoom sends room.modify update and returns the updated room.
func (c *Client) UpdateRoom(ctx context.Context, roomID string, u RoomUpdate) (*RoomDetail, error) {
	d := map[string]any{}
	set := func(k string, v any, ok bool) {
		if ok {
			d[k] = v
		}
	}
	set("name", u.Name, u.Name != nil)
	set("description", u.Description, u.Description != nil)
	set("avatar", u.Avatar, u.Avatar != nil)
	set("group_locked", u.GroupLocked, u.GroupLocked != nil)
	set("join_approval_required", u.JoinApprovalRequired, u.JoinApprovalRequired != nil)
	set("is_public", u.IsPublic, u.IsPublic != nil)
	if u.Preferences != nil {
		d["property"] = map[string]any{"preferences": u.Preferences}
	}
	of := func(r *RoomDetail) bool { return r.ID == roomID }
	frames, err := c.Request(ctx, "room.modify", map[string]any{"room_id": roomID, "action": "update", "data": d},
		isType(DispatchRoomUpdate, of))
	if err != nil {
		return nil, err
	}
	return answer(frames, "room.modify", DispatchRoomUpdate, of)
}

// DeleteRoom sends room.modify delete.
func (c *Client) DeleteRoom(ctx context.Context, roomID string) error {
	_, err := c.Request(ctx, "room.modify", map[string]any{"room_id": roomID, "action": "delete"}, nil)
	return err
}

// SetRole gives (on) or takes (off) a role: "admin" (groups) or
// "moderator" (channels), through room.modify add_admin, remove_admin,
// add_moderator or remove_moderator.
func (c *Client) SetRole(ctx context.Context, roomID, role string, on bool, userIDs ...int64) error {
	if role != "admin" && role != "moderator" {
		return fmt.Errorf("chatmux client: SetRole: role %q is not admin or moderator", role)
	}
	action := "remove_" + role
	if on {
		action = "add_" + role
	}
	_, err := c.Request(ctx, "room.modify", map[string]any{"room_id": roomID, "action": action,
		"data": map[string]any{"users": nonNil(userIDs)}}, nil)
	return err
}

// SetPermissions gives (on) or takes (off) permissions
// (docs/protocol.md#permissions) through room.modify add_permission or
// remove_permission.
func (c *Client) SetPermissions(ctx context.Context, roomID string, on bool, perms []string, userIDs ...int64) error {
	action := "remove_permission"
	if on {
		action = "add_permission"
	}
	_, err := c.Request(ctx, "room.modify", map[string]any{"room_id": roomID, "action": action,
		"data": map[string]any{"users": nonNil(userIDs), "permission": perms}}, nil)
	return err
}

// Heartbeat sends session.heartbeat; the client sends one by itself every
// Options.HeartbeatInterval.
func (c *Client) Heartbeat(ctx context.Context) error {
	_, err := c.Request(ctx, "session.heartbeat", nil, nil)
	return err
}

// SearchUsers sends user.search: users whose name starts with query, at
// most limit (0: the server's default) (docs/protocol.md#user-search).
func (c *Client) SearchUsers(ctx context.Context, query string, limit int) ([]User, error) {
	data := map[string]any{"query": query}
	if limit > 0 {
		data["limit"] = limit
	}
	frames, err := c.Request(ctx, "user.search", data, nil)
	if err != nil {
		return nil, err
	}
	r, err := answer[UserSearchDispatch](frames, "user.search", DispatchUserSearch, nil)
	if err != nil {
		return nil, err
	}
	return r.Users, nil
}

// RoomPresence sends presence.query for a room: the announced presence of
// its members (in a channel: its creator and moderators, and the user),
// ordered by user id (docs/protocol.md#presence-query).
func (c *Client) RoomPresence(ctx context.Context, roomID string) ([]Presence, error) {
	return c.queryPresence(ctx, map[string]any{"room_id": roomID})
}

// UsersPresence sends presence.query for users (1 to 100 ids): the
// announced presence of those who share a room with the user, ordered by
// user id; the others are left out (docs/protocol.md#presence-query).
func (c *Client) UsersPresence(ctx context.Context, userIDs ...int64) ([]Presence, error) {
	return c.queryPresence(ctx, map[string]any{"user_ids": userIDs})
}

func (c *Client) queryPresence(ctx context.Context, data map[string]any) ([]Presence, error) {
	frames, err := c.Request(ctx, "presence.query", data, nil)
	if err != nil {
		return nil, err
	}
	r, err := answer[PresenceQueryDispatch](frames, "presence.query", DispatchPresenceQuery, nil)
	if err != nil {
		return nil, err
	}
	return r.Users, nil
}
