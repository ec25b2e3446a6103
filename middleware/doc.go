// Package middleware holds the standard middleware of chatmux, one per
// file, each a chatmux.Middleware (func(chatmux.Handler) chatmux.Handler)
// or a function that returns one:
//
//	Recoverer, RecovererWith  a panic becomes a 4006 answer; the stack is logged
//	Logger                    one slog line per event: pattern, user, duration, outcome
//	RequestID                 an id per event, for the logs (GetRequestID, RequestIDFromContext)
//	RateLimit                 token buckets per user (or connection) and pattern: 4029
//	RequireAuth               anonymous connections get 4002
//	RequireAdmin              a caller's predicate decides: 4002 otherwise
//	RequirePermission         the same, with a detail of your own
//	Timeout                   a deadline on c.Context() for the rest of the chain
//
// Prometheus metrics (events, durations, connections, fan-out sizes) live
// in the subpackage middleware/metrics, so that only programs that want
// them compile the Prometheus client.
//
// Middleware runs in the order given, the first one outermost. Router-wide
// middleware goes on with Use; route-specific middleware with With, Group
// or Route:
//
//	events := chatmux.NewRouter()
//	events.Use(
//		middleware.Recoverer,          // first: covers everything after it
//		middleware.RequestID,
//		middleware.Logger(logger),     // sees the final outcome, 4029 included
//		middleware.RateLimit(120, time.Minute),
//	)
//	events.HandleFunc("message.send", send)
//	events.Group(func(r chatmux.Router) {
//		r.Use(middleware.RequireAdmin(isStaff), middleware.Timeout(5*time.Second))
//		r.HandleFunc("room.purge", purge)
//	})
//
// Every middleware here returns errors rather than answering: the server's
// error handler sends the one error envelope, and the middleware outside
// (Logger, metrics) sees what was answered. They keep no per-connection
// goroutines or timers, and are safe for concurrent use by any number of
// connections.
package middleware
