package middleware

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/chatmux/chatmux"
)

// DetailTimeout is the detail of the 4006 error Timeout answers with.
const DetailTimeout = "Request timed out."

// errTimedOut is the cause of a context that Timeout cancelled.
var errTimedOut = errors.New("middleware: event timed out")

// Timeout returns a middleware that gives the rest of the chain a context
// with a deadline d from now (c.Context(), set with c.SetContext and put
// back when the chain returns). It panics when d is not positive.
//
// Timeout does not stop a handler: handlers must honour c.Context(), passing
// it to every blocking call (database, broker, HTTP), so that they return
// once the deadline passes. When the deadline set by Timeout has passed and
// the handler returns an error that wraps context.DeadlineExceeded, or an
// error that is not a *chatmux.Error (a driver's "query cancelled", say),
// the event is answered with 4006 "Request timed out.", the handler's error
// kept as the cause for the log. Any other result is returned as is.
func Timeout(d time.Duration) chatmux.Middleware {
	if d <= 0 {
		panic(fmt.Sprintf("middleware: Timeout needs a positive duration, got %v", d))
	}
	return func(next chatmux.Handler) chatmux.Handler {
		return func(c *chatmux.Context) error {
			orig := c.Context()
			parent := orig
			if parent == nil {
				parent = context.Background()
			}
			ctx, cancel := context.WithTimeoutCause(parent, d, errTimedOut)
			c.SetContext(ctx)
			defer func() {
				cancel()
				c.SetContext(orig)
			}()
			err := next(c)
			if err != nil && context.Cause(ctx) == errTimedOut && timeoutError(err) {
				return &chatmux.Error{Code: chatmux.CodeInternal, Detail: DetailTimeout, Err: err}
			}
			return err
		}
	}
}

// timeoutError reports whether err, returned after the deadline, is taken
// as caused by it.
func timeoutError(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errTimedOut) {
		return true
	}
	var e *chatmux.Error
	return !errors.As(err, &e)
}
