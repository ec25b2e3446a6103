// Package chatmux routes WebSocket events the way go-chi routes HTTP
// requests.
//
// The wire protocol it serves, envelopes, error codes and close codes
// included, is described in docs/protocol.md.
//
// A client sends JSON frames {"event_type": "message.send", "data": {...}}.
// A Router matches the event name against dotted patterns, runs the
// middleware chain of the route and calls its Handler, a plain function of a
// *Context. The Server is an http.Handler: it upgrades requests with
// github.com/coder/websocket, authenticates them, and runs one connection
// per client with a bounded outbound queue. Dispatches go to this socket, to
// every device of a user, or to a group (a room) through a groups.Broker:
// in-process by default, Redis across nodes.
//
// A minimal program:
//
//	events := chatmux.NewRouter()
//	events.Use(middleware.Recoverer)
//	events.HandleFunc("ping", func(c *chatmux.Context) error {
//		return c.Send("pong", map[string]any{"at": time.Now()})
//	})
//	srv := chatmux.NewServer(events, chatmux.ServerOptions{})
//	r := chi.NewRouter()
//	r.Handle("/messaging/", srv)
//	http.ListenAndServe("127.0.0.1:8080", r)
//
// # Patterns
//
// A pattern is a dotted name. A segment is static text, a parameter
// "{name}" that matches exactly one segment, or, as the last segment, the
// wildcard "*" that matches one or more segments. A static segment wins
// over a parameter, which wins over the wildcard; when the preferred branch
// fails further down, matching backtracks.
//
//	pattern             matches                      does not match
//	message.send        message.send                 message.send.now, message
//	room.{id}.typing    room.42.typing               room.typing, room.4.2.typing
//	room.*              room.create, room.a.b        room, rooms.create
//	*                   anything valid               "" , a..b, .a
//
// Parameters are read with Context.Param("id"); the wildcard's text with
// Context.Param("*"). Registration mistakes (a duplicate or malformed
// pattern, Use after a route) panic at start-up with a "chatmux:" prefix.
//
// # Errors
//
// A handler returns an error; the server answers the sender with
// {"error": {"code": ..., "detail": ...}}. Return an *Error (see
// PermissionDenied, Validation, FieldError, NotFound, Constraint,
// RateLimited) to choose the code and detail; any other error is a 4006
// "Internal server error." and is logged with its event (see
// docs/protocol.md#errors). Unknown events are answered {"error": "invalid
// event type"} (docs/protocol.md#other-frames). Malformed frames (invalid
// JSON, a non-object, a non-object data, a binary frame) are answered with
// 4003 and the connection stays open; a frame over ServerOptions.ReadLimit
// closes it with 1009 (docs/protocol.md#malformed-frames). Event names that
// start with "$" are reserved: from the wire they are answered as unknown
// events and never routed.
//
// # Request ids
//
// A client may add "request_id" (a string of 1 to 64 bytes) to an event's
// envelope. The answers to that event sent to its socket (Context.Reply,
// ReplyRaw, Send and the error envelope) then carry it as their last key,
// and the event ends with exactly one final frame: its error envelope, or
// {"request_id": ..., "ok": true} when the handler returned nil, queued
// after everything the event sent to the socket, group dispatches
// included. Frames to groups do not carry it: they are encoded once for
// everyone. Clients that send no request_id see none of this
// (docs/protocol.md#request-id).
//
// # Connections
//
// $connect and $disconnect (EventConnect, EventDisconnect) are routed like
// events when a route exists, so logging, metrics and authentication see
// them. Each connection joins its user's group (groups.User) before its
// handshake completes; group frames that reach it while $connect runs are
// held until $connect returns, so that what $connect sends to the socket
// comes first.
// A connection's events are handled in order, one at a time. Its outbound
// queue is bounded in bytes (ServerOptions.MaxQueueBytes); a connection
// that cannot keep up is closed with 4008 "slow consumer" and delays no one
// else. Queued frames are written with one write to the socket. A client
// that negotiates the WebSocket subprotocol SubprotocolBatch
// ("chatmux.batch.v1") receives several queued frames as one message, a
// JSON array of the usual objects; other clients get one object per
// message (docs/protocol.md#batched-delivery). The codes a connection is
// closed with are listed in docs/protocol.md#close-codes.
//
// # Faults
//
// The origin check runs before the Authenticator: a refused origin gets
// HTTP 403. Authenticate and $connect run under
// ServerOptions.ConnectTimeout (5 s by default). An Authenticator error
// that wraps ErrUnavailable or a deadline closes the connection with 1013
// (try again later), one that wraps ErrUserDeleted with 4011
// (CloseUserDeleted), any other with 4001; a $connect that fails with 4013,
// or with an error wrapping ErrUnavailable or a deadline, closes it with
// 1013, one wrapping ErrUserDeleted with 4011, another failure with 1011.
// Server.CloseUser closes every connection of a user, on every node. ServerOptions.MaxConnsPerUser and
// MaxConnsPerAddr bound the open connections of a user and of a remote IP;
// one over a limit is closed with 1013 "too many connections".
//
// A broker that can lose contact with the other nodes (Redis) reports it
// to the server. While it is away, every connection is stale
// (Conn.Stale): it drops the data frames of its groups, since the node
// cannot know of membership changes made elsewhere, while control messages
// (JoinUser, LeaveUser, CloseUser) still apply and what is sent to its own socket
// still goes out. When the broker is back, the server routes EventResync
// ("$resync") to each stale connection, a few at a time; the handler fixes
// the connection's groups, calls Conn.Resume and tells the client what to
// fetch (docs/protocol.md#resync). A StaleObserver counts what was dropped.
//
// Server.Shutdown drains: new upgrades get 503, each connection stops
// handling events, the event in flight finishes and its answers (and
// everything else queued for the socket) are written, then the connection
// is closed with 1001 and $disconnect runs (docs/protocol.md#faults). A
// frame over ServerOptions.ReadLimit gets the 1009 close frame at once;
// the server then reads and discards what the client is still sending
// until its close frame (at most 1 s and 64 MiB), so that the client reads
// the 1009.
package chatmux
