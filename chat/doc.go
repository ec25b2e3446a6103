// Package chat is the chat domain of chatmux: the 16 events of the
// django-realtime-chat-messaging protocol (../shared/PROTOCOL.md), wire
// compatible with that package, with the fixes and additions of its Part A.
//
// A Service holds a store.Store and a Config. Its handlers are plain
// chatmux handlers, one method per event; Register puts the default event
// map on a router, Events returns that map so that a host can trim,
// replace or extend it (the Go form of the package's EVENT_MAPPER):
//
//	svc := chat.New(chat.Config{...}) // start from chat.DefaultConfig()
//	events := chatmux.NewRouter()
//	events.Use(middleware.Recoverer)
//	svc.Register(events)
//	events.With(svc.RequireRoomAdmin("room_id")).Handle("message.pin", pin)
//	srv := chatmux.NewServer(events, chatmux.ServerOptions{Authenticate: auth})
//
// # Connections
//
// On $connect the authenticated identity is upserted into the store, a
// session is opened, the connection joins the group of every room its user
// belongs to (read from the store, never from a cache) and, when
// notifications are enabled, chat.notifications is sent to this socket
// first. $disconnect closes the session. Membership changes at run time
// move every open connection of the affected users, on every node, with
// Context.JoinUser and Context.LeaveUser, before anything is broadcast to
// the room.
//
// # Permissions
//
// Every handler checks its own permissions, with the rules of PROTOCOL.md
// B4 and B6 (CanSend, IsRoomAdmin, CanDeleteRoom, CanAddMembers,
// CanRemoveMembers on a store.Membership): a handler can be re-registered
// under more middleware and stays safe. Custom events reuse the same rules
// through RequireRoomMember and RequireRoomAdmin, and the helpers
// MessageJSON, RoomDetailJSON, RoomAdmins, Sanitize and StoreError.
//
// # Wire details
//
// Timestamps are RFC 3339 UTC with microseconds and Z (Timestamp). Room
// ids follow B2.4 (ParseRoomID); user ids are read from JSON numbers or
// numeric strings (ParseUserID), so that ids compare as ids (A2.12).
// Dispatches never carry "type": "broadcast_group". Message content is
// sanitised with bluemonday to the allow-list of B9; the sanitiser's
// output matches the package's test vectors byte for byte, except that
// attribute values keep quotes as numeric entities (&#34;, &#39;) where
// bleach writes &quot; and a bare quote.
package chat
