package middleware

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"strconv"
	"sync/atomic"

	"github.com/chatmux/chatmux"
)

// requestIDKey is the context key of the event's id. Its type is this
// package's own and unexported, as chi's context keys are, so that no other
// package can read, overwrite or collide with the value: use
// GetRequestID and RequestIDFromContext.
type requestIDKey struct{}

var (
	// requestIDPrefix makes ids unique across processes: 10 random
	// characters, fixed for the life of the process.
	requestIDPrefix = newRequestIDPrefix()
	requestIDSeq    atomic.Uint64
)

func newRequestIDPrefix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])[:10]
}

// RequestID gives each event an id, so that the log lines of one event can
// be told apart from another's. The id is a value of the event's context
// (c.Context()) for the rest of the chain, which gets it with GetRequestID,
// or with RequestIDFromContext from any code it passes the context to;
// the context is put back when the chain returns. Logger writes it when
// RequestID runs before it. Ids are a random per-process prefix and a
// counter ("K7QW2NBXAE-000042"): unique, cheap, and ordered within a
// process. This server-side id is not the client's request_id
// (chatmux.Context.RequestID), which a client chooses to match answers to
// its requests; Logger writes both when both are present.
func RequestID(next chatmux.Handler) chatmux.Handler {
	return func(c *chatmux.Context) error {
		orig := c.Context()
		parent := orig
		if parent == nil {
			parent = context.Background()
		}
		c.SetContext(context.WithValue(parent, requestIDKey{}, newRequestID()))
		defer c.SetContext(orig)
		return next(c)
	}
}

func newRequestID() string {
	var buf [40]byte
	var num [20]byte
	digits := strconv.AppendUint(num[:0], requestIDSeq.Add(1), 10)
	b := append(buf[:0], requestIDPrefix...)
	b = append(b, '-')
	for i := len(digits); i < 6; i++ {
		b = append(b, '0')
	}
	b = append(b, digits...)
	return string(b)
}

// GetRequestID returns the event's id set by RequestID, or "" when there is
// none.
func GetRequestID(c *chatmux.Context) string {
	return RequestIDFromContext(c.Context())
}

// RequestIDFromContext returns the event id that RequestID put in ctx (an
// event's c.Context(), or a context derived from it), or "" when there is
// none.
func RequestIDFromContext(ctx context.Context) string {
	if ctx == nil {
		return ""
	}
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
