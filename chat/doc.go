// Package chat is the chat domain of chatmux: the 16 events of the
// django-realtime-chat-messaging protocol, wire compatible with that
// package, with the deliberate differences and the additions that
// docs/protocol.md lists (docs/protocol.md#differences,
// docs/protocol.md#additions). docs/protocol.md is the reference for every
// rule below.
//
// A Service holds a store.Store and a Config. Its handlers are plain
// chatmux handlers, one per event; Register puts the default event map on
// a router, Events returns that map so that a host can trim, replace or
// extend it (the Go form of the package's EVENT_MAPPER):
//
//	svc := chat.New(chat.Config{...}) // start from chat.DefaultConfig()
//	events := chatmux.NewRouter()
//	events.Use(middleware.Recoverer)
//	svc.Register(events)
//	events.With(svc.RequireRoomAdmin("room_id")).Handle("message.pin", pin)
//	srv := chatmux.NewServer(events, chatmux.ServerOptions{Authenticate: auth})
//	svc.Attach(srv) // for the Go API
//
// # The Go API
//
// The same operations are methods for host code without a socket
// (docs/protocol.md#server-api): SendMessage, EditMessage,
// DeleteMessages, CreateRoom, UpdateRoom, DeleteRoom, AddMembers,
// RemoveMembers, SetRole, SetPermissions, History, PutUser and
// DeleteUser. Each runs the core its WebSocket event runs (the handler
// only reads the event's JSON into the method's input), so it checks,
// stores and publishes exactly what the event does, on every node through
// the attached server, and returns the data of the event's dispatch. The
// actor is a user (AsUser), with the user's permissions, or System, the
// host's backend, which skips membership and permission checks and sends
// system messages (docs/protocol.md#system-messages):
//
//	msg, err := svc.SendMessage(ctx, chat.System, chat.SendMessage{RoomID: room, Content: "Maintenance at 22:00"})
//
// # Connections
//
// On $connect the authenticated identity is upserted into the store, a
// session is opened for the connection (carrying Config.NodeID), the
// connection joins the group of every room its user belongs to (read from
// the store, never from a cache) and, when notifications are enabled,
// chat.notifications is sent to this socket first. $disconnect closes the
// session: the store deletes it and keeps when the user was last seen.
// Membership changes at run time move every open connection of the
// affected users, on every node, with Context.JoinUser and
// Context.LeaveUser, before anything is broadcast to the room.
//
// After a broker outage the server routes $resync to each connection:
// Resync re-reads the user's rooms, fixes the connection's groups and sends
// chat.resync with every room's latest seq (docs/protocol.md#resync).
//
// A NodeKeeper per node keeps the node's heartbeat in the store and
// expires the sessions of nodes that died without closing them.
//
// # Presence
//
// A user is online while one of their sessions was seen (connect,
// heartbeat, any event wrapped with Activity) within
// Config.InactivityThreshold. The announced state lives in the store, so
// every node agrees; each change is announced once, by the node whose
// write flipped it, as presence.dispatch to the user's rooms (in a channel,
// only its creator's and moderators'), and presence.query answers it
// (docs/protocol.md#presence). Every node runs RunPresence after Attach:
// it writes the activity of its connections and sweeps for users going
// online or offline, with Config.PresenceGrace so that a reload announces
// nothing.
//
// # Offline webhooks
//
// With Config.Webhooks (a webhook.Dispatcher), a stored message whose room
// has members without a live session makes one signed event for the host,
// its recipients computed in the send's transaction; on PostgreSQL the
// event is written to an outbox in that transaction, and WebhookRelay,
// run on every node, sends what a crashed node left
// (docs/protocol.md#offline-webhooks).
//
// # Permissions
//
// Every handler checks its own permissions, with the rules of
// docs/protocol.md#room-types and docs/protocol.md#permissions (CanSend,
// IsRoomAdmin, CanDeleteRoom, CanAddMembers, CanRemoveMembers on a
// store.Membership): a handler can be re-registered under more middleware
// and stays safe. Custom events reuse the same rules through
// RequireRoomMember and RequireRoomAdmin, which read the room id from a
// data field ("room_id") or a pattern parameter ("{id}" of
// "room.{id}.pins"), and the helpers MessageJSON, RoomDetailJSON,
// RoomAdmins, Sanitize and StoreError.
//
// # Failures
//
// Every store call of a handler runs under Config.StoreTimeout (default
// 5 s): a call that does not return in time, or a store that cannot be
// reached, is 4013 "Service temporarily unavailable, try again." and the
// connection stays open (at $connect the server closes with 1013). A
// message.send answered 4013 may have been stored: its retry with the same
// client_msg_id is safe.
//
// A dispatch that cannot be published, or a membership change that cannot
// reach every node, after the event's change was stored, is logged to
// Config.Logger and counted (PublishFailures), never reported to the sender
// as an error: the change stands. The sender's connection gets the
// dispatch by Reply when it is one of its recipients, so that every stored
// message.send is answered with its message.dispatch; clients elsewhere
// catch up after their node's chat.resync (docs/protocol.md#faults).
//
// # Wire details
//
// Timestamps are RFC 3339 UTC with microseconds and Z (Timestamp). Room
// ids follow docs/protocol.md#encoding (ParseRoomID); user ids are read
// from JSON numbers or numeric strings (ParseUserID), so that ids compare
// as ids (docs/protocol.md#diff-ids). Dispatches never carry "type":
// "broadcast_group" and are encoded without HTML escaping (content is HTML,
// sent as the package sends it). Message content is sanitised with
// bluemonday to the allow-list of docs/protocol.md#content; the
// sanitiser's output matches the package's test vectors byte for byte,
// except that attribute values keep quotes as numeric entities (&#34;,
// &#39;) where bleach writes &quot; and a bare quote
// (docs/protocol.md#diff-sanitiser).
//
// # Choices where the protocol leaves room
//
// Besides the differences of docs/protocol.md#differences, where the
// package's behaviour is a bug or undefined, chat answers clearly:
//
//   - extra_fields keys of message.send other than parent_message_id,
//     forwarded_from_id, media and Config.ExtraMessageFields are 4003
//     {"extra_fields": ["Unknown field 'k'."]}; a soft-deleted parent or
//     forwarded message does not exist (4003).
//   - room.create: a participants/subscribers value that is not a list of
//     ids is 4003 (the package treats a non-list as empty); a duplicate
//     one-to-one chat is ["Chat already exists"] (the package wraps it
//     twice, ["['Chat already exists']"]).
//   - An empty message_id list on message.acknowledged or message.read, and
//     an empty members list, are 4003 "This list may not be empty.".
//   - add/remove_permission on a one-to-one chat is 4003 "Invalid room,
//     Can only modify permissions in Groups/Channels".
//   - A one-to-one room.create naming a user id that does not exist is
//     4003 {"participants": ["Invalid pk \"<id>\" - object does not
//     exist."]} (the package answers that the chat needs 2 participants).
//   - room.modify update: wrong types are 4003; empty strings leave name,
//     description and avatar as they are (the package cannot clear them
//     either).
//   - room.messages also takes {after_seq | before_seq, limit}; the answer
//     is {data: {room_id, messages}, after_seq | before_seq, limit,
//     has_more}, messages oldest first after a seq, newest first before.
//   - A client_msg_id retry answers message.dispatch with the original
//     message to the sending socket only.
//   - A username that another user id already holds makes $connect fail
//     (the connection closes with 4005).
package chat
