package chatmux

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/chatmux/chatmux/groups"
)

// Context is the state of one event: its name, pattern and parameters, its
// data, the connection it came from, and the ways to answer. A Context is
// reused after its handler returns: do not keep it, or anything it returns
// by reference, beyond that.
type Context struct {
	srv     *Server
	conn    *Conn
	ctx     context.Context
	event   string
	pattern string
	data    json.RawMessage
	keys    []string
	values  []string
	kv      []kv

	// requestID is the event's request_id, echoed in its answers when
	// hasRequestID is set.
	requestID    string
	hasRequestID bool
	// unmatched is set when no pattern matched the event.
	unmatched bool
}

type kv struct {
	key string
	val any
}

var contextPool = sync.Pool{New: func() any { return new(Context) }}

func newContext(srv *Server, conn *Conn, ctx context.Context, event string, data json.RawMessage) *Context {
	c := contextPool.Get().(*Context)
	c.srv, c.conn, c.ctx, c.event, c.data = srv, conn, ctx, event, data
	return c
}

func (c *Context) release() {
	clear(c.kv)
	*c = Context{keys: c.keys[:0], values: c.values[:0], kv: c.kv[:0]}
	contextPool.Put(c)
}

// NewTestContext returns a Context for an event with the given data, on a
// connection of its own (with a unique id) that has no socket: for unit
// tests of handlers and middleware. Answering methods return an error.
func NewTestContext(ctx context.Context, event string, data json.RawMessage, user *User) *Context {
	id := fmt.Sprintf("test-%d", testConnIDs.Add(1))
	return &Context{ctx: ctx, event: event, data: data, conn: &Conn{id: id, user: user, ctx: ctx}}
}

var testConnIDs atomic.Int64

// RequestID returns the request_id the client sent with the event, "" when
// it sent none. Frames sent with Reply, ReplyRaw and Send carry it, and so
// does the error envelope (docs/protocol.md#request-id). It is the
// client's correlation id, not middleware.RequestID's server-side log id.
func (c *Context) RequestID() string { return c.requestID }

// Event returns the event name the client sent.
func (c *Context) Event() string { return c.event }

// Pattern returns the pattern that matched the event, empty when none did.
// Use it, not Event, as a metrics label or a rate-limit key.
func (c *Context) Pattern() string { return c.pattern }

// Param returns the value of a pattern parameter ("{id}" or "*"), or the
// empty string.
func (c *Context) Param(name string) string {
	for i := len(c.keys) - 1; i >= 0; i-- {
		if c.keys[i] == name {
			return c.values[i]
		}
	}
	return ""
}

// popParam removes and returns the last captured value (a mount's
// remainder).
func (c *Context) popParam() string {
	n := len(c.values) - 1
	v := c.values[n]
	c.values, c.keys = c.values[:n], c.keys[:n]
	return v
}

// Data returns the raw JSON object of the event's data, nil when the client
// sent none (or null).
func (c *Context) Data() json.RawMessage { return c.data }

// Bind decodes the event's data into v. Missing data, or a value of the
// wrong JSON type, is a 4003 error whose detail names the field. Unknown
// fields are ignored. When v has a method Validate() error, Bind returns
// its result.
func (c *Context) Bind(v any) error {
	if c.data == nil {
		return FieldError("data", "This field is required.")
	}
	if err := json.Unmarshal(c.data, v); err != nil {
		return bindError(err)
	}
	if val, ok := v.(interface{ Validate() error }); ok {
		return val.Validate()
	}
	return nil
}

func bindError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "data"
		}
		return FieldError(field, fmt.Sprintf("Expected %s, got %s.", jsonKind(te.Type.Kind().String()), te.Value))
	}
	return Validation(err.Error())
}

func jsonKind(goKind string) string {
	switch {
	case goKind == "string":
		return "a string"
	case goKind == "bool":
		return "a boolean"
	case strings.HasPrefix(goKind, "int"), strings.HasPrefix(goKind, "uint"), strings.HasPrefix(goKind, "float"):
		return "a number"
	case goKind == "slice", goKind == "array":
		return "a list"
	default:
		return "an object"
	}
}

// Context returns the context of the event: cancelled when the connection
// closes (or earlier, under a Timeout middleware).
func (c *Context) Context() context.Context { return c.ctx }

// SetContext replaces the event's context (for middleware such as Timeout).
func (c *Context) SetContext(ctx context.Context) { c.ctx = ctx }

// Set stores a value for the rest of the event's middleware chain.
func (c *Context) Set(key string, val any) {
	for i := range c.kv {
		if c.kv[i].key == key {
			c.kv[i].val = val
			return
		}
	}
	c.kv = append(c.kv, kv{key, val})
}

// Get returns a value stored by Set.
func (c *Context) Get(key string) (any, bool) {
	for i := range c.kv {
		if c.kv[i].key == key {
			return c.kv[i].val, true
		}
	}
	return nil, false
}

// Conn returns the connection the event came from.
func (c *Context) Conn() *Conn { return c.conn }

// User returns the authenticated user, nil for an anonymous connection.
func (c *Context) User() *User {
	if c.conn == nil {
		return nil
	}
	return c.conn.user
}

// Server returns the server that runs the connection.
func (c *Context) Server() *Server { return c.srv }

var errNoConn = errors.New("chatmux: context has no connection")

// Reply sends v, encoded as JSON, to this socket only. When the client sent
// a request_id with the event, a JSON object gets it as its last key.
func (c *Context) Reply(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("failed to encode reply: %w", err)
	}
	return c.ReplyRaw(b)
}

// ReplyRaw sends a frame of JSON as is to this socket only. b must not be
// modified afterwards. When the client sent a request_id with the event, a
// copy of b gets it as the last key of its top-level object (a frame that
// is not an object is sent as is).
func (c *Context) ReplyRaw(b []byte) error {
	if c.conn == nil || c.conn.ws == nil {
		return errNoConn
	}
	if c.hasRequestID {
		b = appendRequestID(make([]byte, 0, len(b)+len(c.requestID)+16), b, c.requestID)
	}
	c.conn.enqueue(b)
	return nil
}

// Send sends the dispatch {"eventType", "data"} to this socket only, with
// the event's request_id when the client sent one.
func (c *Context) Send(eventType string, data any) error {
	b, err := EncodeDispatch(eventType, data)
	if err != nil {
		return fmt.Errorf("failed to encode %s: %w", eventType, err)
	}
	return c.ReplyRaw(b)
}

// SendUser sends a dispatch to every connection of a user, on every node.
func (c *Context) SendUser(userID int64, eventType string, data any) error {
	return c.Broadcast(groups.User(userID), eventType, data)
}

// Broadcast sends a dispatch to every member of a group, on every node. The
// dispatch is encoded once for all of them.
func (c *Context) Broadcast(group, eventType string, data any) error {
	if c.srv == nil {
		return errNoConn
	}
	return c.srv.Broadcast(c.ctx, group, eventType, data)
}

// Join adds this connection to a group.
func (c *Context) Join(group string) error {
	if c.conn == nil || c.srv == nil {
		return errNoConn
	}
	return c.conn.Join(c.ctx, group)
}

// Leave removes this connection from a group.
func (c *Context) Leave(group string) error {
	if c.conn == nil || c.srv == nil {
		return errNoConn
	}
	return c.conn.Leave(c.ctx, group)
}

// JoinUser adds every connection of a user, on every node, to a group.
func (c *Context) JoinUser(userID int64, group string) error {
	if c.srv == nil {
		return errNoConn
	}
	return c.srv.JoinUser(c.ctx, userID, group)
}

// LeaveUser removes every connection of a user, on every node, from a group.
func (c *Context) LeaveUser(userID int64, group string) error {
	if c.srv == nil {
		return errNoConn
	}
	return c.srv.LeaveUser(c.ctx, userID, group)
}
