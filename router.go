package chatmux

import (
	"fmt"
	"sort"
	"strings"
)

// Router registers event handlers by dotted pattern, in the style of
// go-chi. Its methods are the table of contents of the package's routing.
type Router interface {
	// Use appends middleware to the stack of this router. It panics when
	// a route has already been registered on the router.
	Use(middlewares ...Middleware)
	// With returns an inline router that adds middlewares to the routes
	// registered through it.
	With(middlewares ...Middleware) Router
	// Group returns an inline router with a middleware stack of its own,
	// after calling fn on it.
	Group(fn func(r Router)) Router
	// Route returns an inline router whose patterns are prefixed with
	// prefix and a dot, after calling fn on it.
	Route(prefix string, fn func(r Router)) Router
	// Mount hands every event under prefix (prefix.*) to another router,
	// which sees the remainder of the name.
	Mount(prefix string, sub Router)
	// Handle registers h for pattern. It panics on a malformed or
	// duplicate pattern.
	Handle(pattern string, h Handler)
	// HandleFunc registers a plain function for pattern.
	HandleFunc(pattern string, h func(*Context) error)
	// NotFound sets the handler of events that match no pattern. The
	// default answers {"error": "invalid event type"}. Its answer is the
	// event's final frame: an unknown event with a request_id gets no
	// {"request_id": ..., "ok": true} (docs/protocol.md#request-id).
	NotFound(h Handler)
	// Routes returns every registered pattern, mounted routers included,
	// in sorted order.
	Routes() []string
	// ServeEvent routes c to the handler of its event.
	ServeEvent(c *Context) error
}

// Mux is the Router implementation. The zero value is not usable: call
// NewRouter.
type Mux struct {
	// tree and mounts are shared by a router and its inline routers.
	tree   *tree
	mounts *map[string]*Mux

	parent      *Mux
	inline      bool
	prefix      string
	middlewares []Middleware
	routed      bool

	notFound      Handler
	notFoundChain Handler
}

var _ Router = (*Mux)(nil)

// NewRouter returns an empty router.
func NewRouter() *Mux {
	mounts := map[string]*Mux{}
	mx := &Mux{tree: newTree(), mounts: &mounts}
	mx.notFoundChain = DefaultNotFound
	return mx
}

// DefaultNotFound answers an unknown event with the protocol's bare
// {"error": "invalid event type"} (docs/protocol.md#other-frames).
func DefaultNotFound(c *Context) error {
	return c.ReplyRaw(invalidEventType)
}

var invalidEventType = []byte(`{"error":"invalid event type"}`)

// Use implements Router.
func (mx *Mux) Use(middlewares ...Middleware) {
	if mx.routed {
		panic("chatmux: all middlewares must be defined before routes on a router")
	}
	mx.middlewares = append(mx.middlewares, middlewares...)
	mx.updateNotFound()
}

// With implements Router.
func (mx *Mux) With(middlewares ...Middleware) Router {
	mws := make([]Middleware, 0, len(mx.middlewares)+len(middlewares))
	mws = append(mws, mx.middlewares...)
	mws = append(mws, middlewares...)
	return &Mux{tree: mx.tree, mounts: mx.mounts, parent: mx, inline: true, prefix: mx.prefix, middlewares: mws}
}

// Group implements Router.
func (mx *Mux) Group(fn func(r Router)) Router {
	im := mx.With()
	if fn != nil {
		fn(im)
	}
	return im
}

// Route implements Router.
func (mx *Mux) Route(prefix string, fn func(r Router)) Router {
	if prefix == "" || strings.HasPrefix(prefix, ".") || strings.HasSuffix(prefix, ".") {
		panic(fmt.Sprintf("chatmux: Route prefix %q must be a non-empty dotted name", prefix))
	}
	im := mx.With().(*Mux)
	im.prefix = mx.prefix + prefix + "."
	if fn != nil {
		fn(im)
	}
	return im
}

// Mount implements Router. sub must be a router made by NewRouter.
func (mx *Mux) Mount(prefix string, sub Router) {
	sm, ok := sub.(*Mux)
	if !ok || sm.inline {
		panic("chatmux: Mount takes a router made by NewRouter")
	}
	full := mx.prefix + prefix
	if _, dup := (*mx.mounts)[full]; dup {
		panic(fmt.Sprintf("chatmux: a router is already mounted at %q", full))
	}
	mx.handle(prefix+".*", func(c *Context) error {
		rest := c.popParam()
		return sm.serve(c, rest, full+".", mx.root().notFoundHandler())
	}, false)
	(*mx.mounts)[full] = sm
}

// Handle implements Router.
func (mx *Mux) Handle(pattern string, h Handler) {
	if h == nil {
		panic(fmt.Sprintf("chatmux: nil handler for %q", pattern))
	}
	mx.handle(pattern, h, true)
}

// HandleFunc implements Router.
func (mx *Mux) HandleFunc(pattern string, h func(*Context) error) { mx.Handle(pattern, h) }

func (mx *Mux) handle(pattern string, h Handler, listed bool) {
	full := mx.prefix + pattern
	ep := mx.tree.insert(full, Chain(h, mx.middlewares...))
	if !listed {
		ep.hidden = true
	}
	for m := mx; m != nil; m = m.parent {
		m.routed = true
	}
}

// NotFound implements Router.
func (mx *Mux) NotFound(h Handler) {
	mx.root().notFound = h
	mx.root().updateNotFound()
}

func (mx *Mux) root() *Mux {
	m := mx
	for m.parent != nil {
		m = m.parent
	}
	return m
}

func (mx *Mux) notFoundHandler() Handler {
	if mx.notFound != nil {
		return mx.notFound
	}
	return DefaultNotFound
}

func (mx *Mux) updateNotFound() {
	if mx.inline {
		return
	}
	h := mx.notFound
	if h == nil {
		h = DefaultNotFound
	}
	mx.notFoundChain = Chain(h, mx.middlewares...)
}

// Routes implements Router.
func (mx *Mux) Routes() []string {
	var out []string
	mx.walk("", &out)
	sort.Strings(out)
	return out
}

func (mx *Mux) walk(prefix string, out *[]string) {
	for _, ep := range mx.tree.all {
		if !ep.hidden {
			*out = append(*out, prefix+ep.pattern)
		}
	}
	for p, sub := range *mx.mounts {
		sub.walk(prefix+p+".", out)
	}
}

// ServeEvent implements Router: it routes by c.Event().
func (mx *Mux) ServeEvent(c *Context) error {
	return mx.root().serve(c, c.event, "", nil)
}

// Match reports the pattern that an event name routes to, and whether one
// does. Mounted routers are followed.
func (mx *Mux) Match(event string) (string, bool) {
	m, prefix := mx.root(), ""
	for {
		ep, vals := m.tree.match(event, nil)
		if ep == nil {
			return "", false
		}
		if !ep.hidden {
			return prefix + ep.pattern, true
		}
		p := strings.TrimSuffix(ep.pattern, ".*")
		m, prefix, event = (*m.mounts)[p], prefix+p+".", vals[len(vals)-1]
	}
}

// serve matches name in this router's tree. prefix is the part of the
// event name consumed by the routers this one is mounted on.
func (mx *Mux) serve(c *Context, name, prefix string, fallback Handler) error {
	ep, vals := mx.tree.match(name, c.values)
	if ep == nil {
		c.pattern = ""
		c.unmatched = true
		if mx.notFound == nil && fallback != nil {
			// A mounted router without its own NotFound answers with
			// the parent's, inside its own middleware.
			return Chain(fallback, mx.middlewares...)(c)
		}
		return mx.notFoundChain(c)
	}
	c.values = vals
	c.keys = append(c.keys, ep.keys...)
	if ep.hidden {
		// A mount: name the pattern it will reach before the
		// middleware of this router runs (rate limits, logging).
		p, _ := mx.Match(name)
		c.pattern = prefix + p
	} else {
		c.pattern = prefix + ep.pattern
	}
	return ep.handler(c)
}
