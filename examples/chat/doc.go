// Command chat is a complete chat server built on chatmux: the chat domain
// of package chat on the WebSocket endpoint /messaging/, and a web page at
// / to use it from a browser.
//
//	go run ./examples/chat                   # http://127.0.0.1:8080/
//	go run ./examples/chat -addr 127.0.0.1:9000
//
// By default data lives in memory (store/memory) and dispatches fan out in
// process (groups.NewMemory). Set DATABASE_URL to keep data in PostgreSQL
// (migrations are applied at start) and REDIS_URL to fan out through Redis
// across several nodes. When the address is taken, the server says so and
// exits: choose another with -addr or CHATMUX_ADDR.
//
// # Limits
//
// Each user may send 100 messages at once, then one every 200 ms, over all
// their connections (-send-limit or CHATMUX_SEND_LIMIT, "100/20s" by
// default; "off" for none). A message.send past the limit is answered
// with error 4029 and stores nothing; the connection stays open.
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
//	/me           the user of ?user= or ?token= (the page learns its own id), or 401
//	/healthz      {"store":"ok","broker":"ok"}: 200, or 503 when one is unavailable
//	/metrics      Prometheus metrics (middleware/metrics, Go and process collectors)
//
// SIGINT or SIGTERM shuts down gracefully: the listener stops, every
// WebSocket is closed with 1001 (going away) and handlers finish, within
// -shutdown-timeout.
//
// The browser test in webtest/ (run.sh) drives two users through the page
// with headless Chromium.
package main
