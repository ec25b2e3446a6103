package middleware

import (
	"crypto/rand"
	"encoding/base32"
	"strconv"
	"sync/atomic"

	"github.com/chatmux/chatmux"
)

// RequestIDKey is the Context.Set key under which RequestID stores the
// event's id.
const RequestIDKey = "request_id"

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

// RequestID gives each event an id, stored with Context.Set under
// RequestIDKey and read with GetRequestID, so that the log lines of one
// event can be told apart from another's. Logger writes it when RequestID
// runs before it. Ids are a random per-process prefix and a counter
// ("K7QW2NBXAE-000042"): unique, cheap, and ordered within a process.
func RequestID(next chatmux.Handler) chatmux.Handler {
	return func(c *chatmux.Context) error {
		c.Set(RequestIDKey, newRequestID())
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
	v, _ := c.Get(RequestIDKey)
	id, _ := v.(string)
	return id
}
