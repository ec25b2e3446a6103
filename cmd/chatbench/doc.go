// Command chatbench is a load generator for chatmux: it speaks the chat
// protocol over real WebSockets (github.com/coder/websocket) and reports
// throughput, latency, errors and the server's CPU and memory.
//
// Usage:
//
//	chatbench fanout  [flags]   R rooms x M members, S senders
//	chatbench connect [flags]   N idle connections
//	chatbench persist [flags]   sends acknowledged by their dispatch, on PostgreSQL
//	chatbench churn   [flags]   connections opening and closing while messages flow
//	chatbench serve   [flags]   the server under test: chatmux + chat, dev auth
//
// # Scenarios
//
// fanout connects -rooms x -members users, has them create their rooms
// (group chats, or public channels above -group-cap members) and runs
// -senders senders for -duration. Each sender keeps -inflight messages in
// flight (default 1: send, wait for its own message.dispatch, send the
// next), at -rate sends/s over all senders or as fast as that allows. The
// content of every message carries its send time and the sender's sequence
// number ("CBT<unix ns>.<sender>.<seq>."); receivers scan each frame's
// bytes for that marker instead of decoding JSON, so the generator stays
// cheap. The report gives deliveries/s, end-to-end latency (send to
// receipt, every member), the senders' acknowledgement latency, messages
// lost, gaps and reorderings per sender, error envelopes and slow-consumer
// closes (4008).
//
// persist is fanout with defaults for a database: 20 rooms of 2 members,
// 20 senders; its figures are sends/s and the acknowledgement latency (the
// sender's own message.dispatch comes after the transaction commits).
// Without -url it needs -database-url; the server then runs in a fresh
// schema (search_path), dropped when it stops, and when PostgreSQL runs on
// this machine the report adds its backends' CPU time per send. The
// PostgreSQL store writes concurrent sends in batches (the report gives
// the batches and the sends per batch); -unbatched-sends makes it write
// each send alone, for A/B runs against the same database, and
// -batch-writers sets how many batches it writes at once.
//
// churn is fanout plus -churners room members whose connections keep
// closing (every other one without the close handshake) and reopening
// after a random time around -churn-hold. Members that stay must get every
// message, in order. The chat server it starts runs with notifications off
// (otherwise each reconnect would carry every pending notification of the
// room).
//
// connect opens -conns idle connections at -conn-rate per second and, with
// every one open, reports the server's resident memory (VmRSS) before and
// after, its heap, stack and goroutines per connection, and the connect
// rate and latency. A process may hold at most the hard limit of open files
// (20,000 here), so above -per-process connections (9,000) chatbench
// re-executes itself as worker processes (the hidden -worker flag), each
// opening its share.
//
// # The server
//
// Without -url, chatbench starts the server itself: "chatbench serve" in a
// child process, so that its CPU time and memory (from /proc/<pid>) are
// measured apart from the generator's; with -in-process in this process
// instead (tests; goroutine counts only). The server is chatmux with the
// chat domain on store/memory, with development authentication (a
// connection to /messaging/?user=<name> is that user); -database-url puts
// it on PostgreSQL; -bare serves the framework alone: a router whose
// bench.join joins a group and whose bench.send broadcasts to it, with no
// store. -cpuprofile writes the server's CPU profile when it stops,
// -memprofile a heap profile with every connection of connect open,
// -redis-url fans out through the Redis broker. The serve subcommand
// listens on loopback addresses only unless given -allow-remote, since
// anyone who can reach it can be anyone.
//
// With -url ws://127.0.0.1:8080/messaging/ chatbench loads an external
// server (examples/chat without CHATMUX_JWT_SECRET, say: development
// sign-in); -server-pid lets it report
// that server's RSS and CPU time. Targets must be loopback addresses unless
// -allow-remote is given.
//
// # Bounds
//
// Every scenario stops by itself: -duration bounds the sending (or the
// opening of connections), -setup-timeout the room setup, -drain the wait
// for messages in flight. Connections are spread over -sources source
// addresses in 127.0.0.0/8 so that their number is not bound by one
// address's ephemeral ports, and the file limit is raised to the hard
// limit. A progress bar goes to stderr (-quiet turns it off); the summary
// goes to stdout as a table, or as JSON with -json.
//
// -batch makes every client ask for the chatmux.batch.v1 subprotocol, under
// which the server sends the dispatches queued for a connection as one JSON
// array per WebSocket message; receivers split the arrays.
//
// Examples:
//
//	chatbench fanout -rooms 1 -members 1000 -senders 10 -duration 15s
//	chatbench fanout -rooms 100 -members 50 -senders 100 -duration 15s
//	chatbench fanout -bare -members 100 -senders 10 -duration 15s
//	chatbench fanout -bare -members 100 -senders 10 -batch -duration 15s
//	chatbench connect -conns 10000
//	chatbench persist -database-url 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
//	chatbench churn -duration 15s
//	chatbench serve -addr 127.0.0.1:8080 -cpuprofile /tmp/server.pprof
package main
