// Package wsframe writes WebSocket data frames underneath
// github.com/coder/websocket.
//
// The library keeps the reading side and the control frames (ping, pong,
// close); the server's writer frames its data messages itself, straight
// into one buffer, and sends a whole batch of them with one write. A server
// never masks, so a frame is a 2-10 byte header and the payload.
//
// HijackWriter hands the library, during the upgrade, a socket wrapped in
// a Conn: the library's own writes go through Conn.Write, the server's data
// through Conn.WriteText, and one mutex keeps the two from interleaving
// inside a frame.
package wsframe
