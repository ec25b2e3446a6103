// Package client is the Go client of the chatmux chat protocol
// (docs/protocol.md): a connection to a chatmux chat server that carries
// the server's delivery guarantees to the program, with the same semantics
// as the JavaScript client (clients/js).
//
//	c, err := client.Dial(ctx, client.Options{
//		URL:   "wss://chat.example.com/messaging/",
//		Token: token, // or TokenFunc, or User for the development sign-in
//		Handlers: client.Handlers{
//			Message: func(m *client.Message) { fmt.Println(m.Room.ID, m.Seq, m.Content) },
//		},
//	})
//	if err != nil { ... }
//	defer c.Close()
//	room, err := c.CreateRoom(ctx, client.CreateRoom{Type: client.RoomGroup, Name: "ops", Members: []int64{2}})
//	m, err := c.SendMessage(ctx, client.OutgoingMessage{RoomID: room.ID, Content: "hello"})
//
// What it does:
//
//   - Connects with a token (the query parameter token), a TokenFunc
//     called before every attempt, or the example server's development
//     sign-in (?user=<name>), and asks for batched delivery.
//   - Reconnects with exponential backoff and full jitter (1 s, 2 s, 4 s,
//     ... up to 30 s; after a 4008 "slow consumer" close at least 5 s more).
//     A 4001 close asks TokenFunc for a fresh token and reconnects once; a
//     second 4001 in a row signs out (ErrSignedOut). 1000 (ErrSessionEnded)
//     and 4011 (ErrUserDeleted) stop the client. A frame that caused a 1007
//     or 1009 close is never sent again (docs/protocol.md#close-codes).
//   - Sends session.heartbeat every 20 s and drops a connection that does
//     not answer within 10 s.
//   - Sends a request_id with every request, so each call returns its own
//     final answer (docs/protocol.md#request-id). The server must echo
//     request_id (every chatmux server does); against one that does not the
//     client stops with ErrNoRequestID.
//   - Tracks the last seq of every room it knows, hands each message of a
//     tracked room to Handlers.Message exactly once and in seq order, fills
//     gaps with room.messages after_seq, drops duplicates by (room, seq),
//     and catches every tracked room up after a reconnect and on
//     chat.resync (docs/protocol.md#delivery, #catch-up, #resync).
//   - Sends messages through a bounded outbox: each keeps its client_msg_id
//     and is sent again after a reconnect, 4013 or a timeout until the
//     server stores it (once) or refuses it; its result arrives once
//     (docs/protocol.md#idempotent-sends, #faults).
//
// Dispatches reach the program through Handlers: one typed handler per
// dispatch type, and Dispatch for every frame (hosts add their own). The
// handlers run one at a time on a goroutine of the client, in order.
package client
