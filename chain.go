package chatmux

// Handler handles one event. It is a plain function: return nil when done,
// or an error that the server turns into an error envelope for the sender
// (see Error).
type Handler func(c *Context) error

// Middleware wraps a Handler with behaviour that runs before and after it:
// authentication, rate limits, logging, recovery.
type Middleware func(next Handler) Handler

// Chain returns h wrapped by middlewares, the first one outermost.
func Chain(h Handler, middlewares ...Middleware) Handler {
	for i := len(middlewares) - 1; i >= 0; i-- {
		h = middlewares[i](h)
	}
	return h
}
