package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/store"
)

// The Go API: the chat's operations for host code (a backend, an HTTP
// API, a bot) that has no socket. Each method runs the rules of the
// matching WebSocket event, stores the same rows and publishes the same
// dispatches and group moves, on every node, through the attached server;
// it returns the data of the dispatch that event answers with
// (docs/protocol.md#server-api).

// Actor is who performs an operation of the Go API. The zero value is the
// system (System): the host's backend itself.
type Actor struct {
	// UserID is the acting user; 0 is the system.
	UserID int64
}

// System is the actor of the host's backend. It skips every membership
// and permission check but keeps every validation; it is never a member
// of anything, and the messages it sends are system messages
// (docs/protocol.md#system-messages).
var System = Actor{}

// AsUser returns the actor of user id: an operation by it runs exactly the
// rules of the matching WebSocket event, as if that user had sent it.
func AsUser(id int64) Actor { return Actor{UserID: id} }

// IsSystem reports whether a is the system.
func (a Actor) IsSystem() bool { return a.UserID == 0 }

// Attach gives the service the server it publishes through: call it once,
// before the first call of the Go API (a call before it is 4006). The
// WebSocket handlers do not need it: they publish through their event's
// server.
func (s *Service) Attach(srv *chatmux.Server) { s.srv.Store(srv) }

var errNotAttached = chatmux.Internal(errors.New("chat: the Go API needs a server: call Service.Attach first"))

// SendMessage is the input of Service.SendMessage: the data of
// message.send (docs/protocol.md#message-send).
type SendMessage struct {
	RoomID  uuid.UUID
	Content string
	// ClientMsgID makes a retry idempotent (docs/protocol.md#idempotent-sends).
	ClientMsgID string
	// ParentID (a reply) and ForwardedFromID name existing messages.
	ParentID, ForwardedFromID *uuid.UUID
	// Media are the attachments, with the rules of extra_fields.media.
	Media []Media
	// Extra holds the host's fields (Config.ExtraMessageFields only).
	Extra map[string]json.RawMessage
}

// Media is one attachment of a message (docs/protocol.md#attachment).
type Media struct {
	URL, Type, MimeType, Caption string
	FileSize                     int64
	// Metadata is a JSON object (nil: none).
	Metadata json.RawMessage
}

// CreateRoom is the input of Service.CreateRoom: the data of room.create
// (docs/protocol.md#room-create).
type CreateRoom struct {
	// Type is "one_to_one", "group" or "channel".
	Type                      string
	Name, Description, Avatar string
	// Members are the participants or subscribers besides the creator
	// (a one-to-one chat: the other user).
	Members []int64
	// MaxMembers is max_participants or max_subscribers (0: the default).
	MaxMembers int
	// GroupLocked and JoinApprovalRequired apply to groups, IsPublic to
	// channels.
	GroupLocked, JoinApprovalRequired, IsPublic bool
	// Preferences is property.preferences, a JSON object (nil: none).
	Preferences json.RawMessage
}

// RoomUpdate is the input of Service.UpdateRoom: the data of room.modify
// update. Nil fields (and empty strings) are left as they are; a
// one-to-one chat takes only Preferences.
type RoomUpdate struct {
	Name, Description, Avatar                   *string
	GroupLocked, JoinApprovalRequired, IsPublic *bool
	// Preferences replaces property.preferences (a JSON object; nil: left).
	Preferences json.RawMessage
}

// Role is a room role that SetRole gives or takes.
type Role string

// The roles: admins of groups, moderators of channels.
const (
	RoleAdmin     Role = "admin"
	RoleModerator Role = "moderator"
)

// HistoryQuery is the input of Service.History, as room.messages takes
// it: AfterSeq or BeforeSeq with Limit (0: Config.MaxPageSize), else Page
// and PageSize (both 0: every message).
type HistoryQuery struct {
	AfterSeq, BeforeSeq *int64
	Limit               int
	Page, PageSize      int
}

// DeletedUser is the outcome of Service.DeleteUser.
type DeletedUser struct {
	UserID int64
	// RoomsDeleted are the rooms deleted with the user (their one-to-one
	// chats, and groups and channels left without members).
	RoomsDeleted []uuid.UUID
	// RoomsLeft are the groups and channels the user left.
	RoomsLeft []uuid.UUID
	// ConnectionsClosed is true when the user's connections, on every
	// node, were told to close with 4011.
	ConnectionsClosed bool
}

// actor is an Actor resolved for an operation: the system, or a user with
// the names its dispatches show.
type actor struct {
	id   int64
	user store.User
}

// systemName is the name of the system in added_by, removed_by and room
// exit messages (docs/protocol.md#server-api).
const systemName = "system"

func (a actor) system() bool { return a.id == 0 }

func (a actor) username() string {
	if a.system() {
		return systemName
	}
	return a.user.Username
}

// eventActor is the actor of a WebSocket event: its authenticated user.
func eventActor(u *chatmux.User) actor {
	return actor{id: u.ID, user: store.User{ID: u.ID, Username: u.Username, Email: u.Email, FirstName: u.FirstName, LastName: u.LastName}}
}

// api starts a call of the Go API: the attached server, and the actor read
// from the store (a user actor that is not a user is 4004, a deleted user
// 4005).
func (s *Service) api(ctx context.Context, name string, by Actor) (origin, actor, error) {
	srv := s.srv.Load()
	if srv == nil {
		return origin{}, actor{}, errNotAttached
	}
	o := origin{srv: srv, name: "api." + name}
	if by.IsSystem() {
		return o, actor{}, nil
	}
	us, err := s.st.Users(ctx, []int64{by.UserID})
	if err != nil {
		return o, actor{}, StoreError(err)
	}
	if len(us) != 1 {
		return o, actor{}, chatmux.NotFound()
	}
	if us[0].Deleted && name != "DeleteUser" {
		return o, actor{}, StoreError(store.ErrUserDeleted)
	}
	return o, actor{id: us[0].ID, user: us[0]}, nil
}

// SendMessage sends a message as message.send does and returns its Message
// object. By System it is a system message: no sender, "sender": null and
// "is_system": true on the wire (docs/protocol.md#system-messages).
func (s *Service) SendMessage(ctx context.Context, by Actor, m SendMessage) (json.RawMessage, error) {
	o, a, err := s.api(ctx, "SendMessage", by)
	if err != nil {
		return nil, err
	}
	if _, err := s.sendAccess(ctx, a, m.RoomID); err != nil {
		return nil, err
	}
	return s.sendMessage(ctx, o, a, m)
}

// EditMessage changes a message's content as message.modify update does
// and returns the messagemodification.dispatch data. A user may edit only
// their own messages, while a member of the room.
func (s *Service) EditMessage(ctx context.Context, by Actor, id uuid.UUID, content string) (json.RawMessage, error) {
	o, a, err := s.api(ctx, "EditMessage", by)
	if err != nil {
		return nil, err
	}
	roomID, err := s.modifyAccess(ctx, a, []uuid.UUID{id})
	if err != nil {
		return nil, err
	}
	return s.editMessage(ctx, o, roomID, id, content, nil)
}

// DeleteMessages deletes messages of one room as message.modify delete
// does (soft or hard per Config.SoftDelete) and returns the
// messagemodification.dispatch data. An empty list is 4003.
func (s *Service) DeleteMessages(ctx context.Context, by Actor, ids []uuid.UUID) (json.RawMessage, error) {
	o, a, err := s.api(ctx, "DeleteMessages", by)
	if err != nil {
		return nil, err
	}
	ids = store.UniqueUUIDs(ids)
	if len(ids) == 0 {
		return nil, chatmux.Validation(msgAtLeastOneMessage)
	}
	roomID, err := s.modifyAccess(ctx, a, ids)
	if err != nil {
		return nil, err
	}
	raw := make([]json.RawMessage, len(ids))
	for i, id := range ids {
		raw[i] = json.RawMessage(`"` + id.String() + `"`)
	}
	return s.deleteMessages(ctx, o, roomID, ids, raw)
}

// CreateRoom creates a room as room.create by creatorID does (the creator
// must be a user: else 4004) and returns its RoomDetail.
func (s *Service) CreateRoom(ctx context.Context, creatorID int64, r CreateRoom) (json.RawMessage, error) {
	if creatorID <= 0 {
		return nil, chatmux.NotFound()
	}
	o, a, err := s.api(ctx, "CreateRoom", AsUser(creatorID))
	if err != nil {
		return nil, err
	}
	var t store.RoomType
	switch r.Type {
	case "one_to_one":
		t = store.OneToOne
	case "group":
		t = store.Group
	case "channel":
		t = store.Channel
	default:
		return nil, chatmux.Validation(msgInvalidResourceType)
	}
	return s.createRoom(ctx, o, a, newRoomInput{CreateRoom: r, roomType: t})
}

// UpdateRoom changes a room as room.modify update does and returns the
// roomupdate.dispatch data (RoomDetail).
func (s *Service) UpdateRoom(ctx context.Context, by Actor, roomID uuid.UUID, u RoomUpdate) (json.RawMessage, error) {
	o, a, err := s.api(ctx, "UpdateRoom", by)
	if err != nil {
		return nil, err
	}
	m, err := s.adminAccess(ctx, a, roomID)
	if err != nil {
		return nil, err
	}
	return s.updateRoom(ctx, o, roomID, m, u)
}

// DeleteRoom deletes a room as room.modify delete does: roomdelete.dispatch
// goes to the room, then its members' connections leave its group.
func (s *Service) DeleteRoom(ctx context.Context, by Actor, roomID uuid.UUID) error {
	o, a, err := s.api(ctx, "DeleteRoom", by)
	if err != nil {
		return err
	}
	m, err := s.membership(ctx, roomID, a.id)
	if err != nil {
		return err
	}
	if !a.system() && !CanDeleteRoom(m, a.id) {
		return chatmux.PermissionDenied(msgDeniedCreator)
	}
	_, err = s.deleteRoom(ctx, o, roomID)
	return err
}

// AddMembers adds members as room.add_members does and returns the
// roomaddmembers.dispatch data (added_by is "system" for the system).
func (s *Service) AddMembers(ctx context.Context, by Actor, roomID uuid.UUID, userIDs []int64) (json.RawMessage, error) {
	o, a, err := s.api(ctx, "AddMembers", by)
	if err != nil {
		return nil, err
	}
	if _, err := s.membersAccess(ctx, a, roomID, CanAddMembers, msgDeniedAdd); err != nil {
		return nil, err
	}
	return s.addMembers(ctx, o, a, roomID, userIDs)
}

// RemoveMembers removes members as room.remove_members does and returns
// the roomremovemembers.dispatch data, or, when the room was left empty
// and deleted, the roomdelete.dispatch data.
func (s *Service) RemoveMembers(ctx context.Context, by Actor, roomID uuid.UUID, userIDs []int64) (json.RawMessage, error) {
	o, a, err := s.api(ctx, "RemoveMembers", by)
	if err != nil {
		return nil, err
	}
	if _, err := s.membersAccess(ctx, a, roomID, CanRemoveMembers, msgDeniedRemove); err != nil {
		return nil, err
	}
	return s.removeMembers(ctx, o, a, roomID, userIDs)
}

// SetRole gives (on) or takes away a role as room.modify add_admin /
// remove_admin (RoleAdmin, groups) or add_moderator / remove_moderator
// (RoleModerator, channels) does, and returns the roomupdate.dispatch
// data.
func (s *Service) SetRole(ctx context.Context, by Actor, roomID uuid.UUID, role Role, userIDs []int64, on bool) (json.RawMessage, error) {
	o, a, err := s.api(ctx, "SetRole", by)
	if err != nil {
		return nil, err
	}
	if role != RoleAdmin && role != RoleModerator {
		return nil, chatmux.FieldError("role", fmt.Sprintf("%q is not a valid choice.", string(role)))
	}
	m, err := s.adminAccess(ctx, a, roomID)
	if err != nil {
		return nil, err
	}
	return s.setRole(ctx, o, roomID, m, role, userIDs, on)
}

// SetPermissions gives (on) or takes away permissions as room.modify
// add_permission / remove_permission does, and returns the
// roomupdate.dispatch data.
func (s *Service) SetPermissions(ctx context.Context, by Actor, roomID uuid.UUID, userIDs []int64, perms []string, on bool) (json.RawMessage, error) {
	o, a, err := s.api(ctx, "SetPermissions", by)
	if err != nil {
		return nil, err
	}
	m, err := s.adminAccess(ctx, a, roomID)
	if err != nil {
		return nil, err
	}
	return s.setPermissions(ctx, o, roomID, m, userIDs, perms, on)
}

// History reads a room's messages as room.messages does and returns the
// roommessages.dispatch data. For a user actor that dispatch also goes to
// the user's devices, as the event's does; the system reads without
// publishing.
func (s *Service) History(ctx context.Context, by Actor, roomID uuid.UUID, q HistoryQuery) (json.RawMessage, error) {
	o, a, err := s.api(ctx, "History", by)
	if err != nil {
		return nil, err
	}
	if _, err := s.memberAccess(ctx, a, roomID); err != nil {
		return nil, err
	}
	return s.history(ctx, o, a, roomID, q)
}

// PutUser creates a user or updates its username, email and names, and
// returns its User object. The id must be positive and the username not
// blank (4003); a username another user holds is 4005; a deleted user's id
// is 4005 wrapping store.ErrUserDeleted.
func (s *Service) PutUser(ctx context.Context, u store.User) (json.RawMessage, error) {
	if s.srv.Load() == nil {
		return nil, errNotAttached
	}
	if u.ID <= 0 {
		return nil, chatmux.FieldError("id", msgMinOne)
	}
	if strings.TrimSpace(u.Username) == "" {
		return nil, chatmux.FieldError("username", msgBlank)
	}
	got, err := s.st.UpsertUser(ctx, u)
	if err != nil {
		return nil, StoreError(err)
	}
	return marshal(userJSON(got))
}
