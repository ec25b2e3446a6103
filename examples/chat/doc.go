// Command chat is a complete chat server built on chatmux: the chat domain
// of package chat on the WebSocket endpoint /messaging/, and a web page at
// / to use it from a browser.
//
//	go run ./examples/chat                   # http://127.0.0.1:8080/
//	go run ./examples/chat -addr 127.0.0.1:9000
//
// By default data lives in memory (store/memory) and dispatches fan out in
// process (groups.NewMemory). Set DATABASE_URL to keep data in PostgreSQL
// (migrations are applied at start; the pool holds at most -db-max-conns
// connections, 16 by default) and REDIS_URL to fan out through Redis
// across several nodes. A node starts while Redis is down: its connections
// receive no room dispatches until Redis is back, then each gets
// chat.resync. When the address is taken, the server says so and exits:
// choose another with -addr or CHATMUX_ADDR.
//
// The server logs one line when it listens, with its address and its node
// id (the id its sessions carry in the store).
//
// # Limits
//
// Each user may send 100 messages at once, then one every 200 ms, over all
// their connections (-send-limit or CHATMUX_SEND_LIMIT, "100/20s" by
// default; "off" for none). A message.send past the limit is answered
// with error 4029 and stores nothing; the connection stays open.
//
// # Faults
//
// Every store call of an event is bounded by -store-timeout (5 s): past
// it, or with the store down, the event is answered with error 4013 and
// the connection stays open. Signing in and setting a connection up are
// bounded by -connect-timeout (5 s): past it, or with the store down, the
// connection is closed with 1013 (try again later), never 4001. A user may
// hold -max-conns-per-user connections on a node (32), an IP address
// -max-conns-per-addr (no limit by default); one more is closed with 1013.
// The node writes a heartbeat to the store every -node-heartbeat (5 s) and
// deletes the sessions of nodes silent for -node-expiry (15 s). Each
// setting has an environment variable (see -h); docs/protocol.md#faults
// says what a client sees.
//
// # Signing in
//
// With CHATMUX_JWT_SECRET set, a connection must carry an HS256 JSON Web
// Token in ?token= (browsers) or an "Authorization: Bearer" header, with
// the claims sub (the integer user id, as a number or a string), username,
// and optionally email, first_name and last_name. Other algorithms are
// refused. Users are recorded in the store as they connect.
//
// Without a secret the server runs in development mode: ?user=<name> signs
// in as that user, created on first use, without a password. It logs a
// warning, and refuses to listen on an address other than loopback unless
// -insecure-dev-auth is given.
//
// # Routes
//
//	/messaging/   the WebSocket endpoint (see docs/protocol.md)
//	/             the web page (embedded, no CDN; built on clients/js)
//	/config.json  what the page needs: {"auth": "dev"|"jwt", "path": "/messaging/"}
//	/me           the user of ?user= or ?token= (the page learns its own id), 401, or 503 when the store is unavailable
//	/healthz      {"store":"ok","broker":"ok"}: 200, or 503 when one is unavailable; within 1 s always
//	/metrics      Prometheus metrics (middleware/metrics, publish failures, broker availability, Go and process)
//
// SIGINT or SIGTERM drains: the listener stops, each WebSocket finishes the
// event it is handling (events read after that are ignored: the client
// sends them again after reconnecting), its answers are written and it is
// closed with 1001 (going away), within -shutdown-timeout (10 s); then the
// node leaves the store with any session still open, and the broker and
// the store are closed. A second signal kills at once.
//
// The browser test in webtest/ (run.sh) drives two users through the page
// with headless Chromium.
package main
