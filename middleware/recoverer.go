package middleware

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/chatmux/chatmux"
)

// Recoverer turns a panic in the rest of the chain into a 4006 "Internal
// server error." answer to the sender, and logs the panic with its stack
// through slog.Default(). The connection stays open and keeps handling
// events. Put it first, so that it covers every other middleware.
//
// Every panic is recovered, http.ErrAbortHandler included: an event has no
// HTTP response to abort.
func Recoverer(next chatmux.Handler) chatmux.Handler {
	return recoverer(nil, next)
}

// RecovererWith is Recoverer logging to logger instead of slog.Default()
// (nil means slog.Default()).
func RecovererWith(logger *slog.Logger) chatmux.Middleware {
	return func(next chatmux.Handler) chatmux.Handler {
		return recoverer(logger, next)
	}
}

func recoverer(logger *slog.Logger, next chatmux.Handler) chatmux.Handler {
	return func(c *chatmux.Context) (err error) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			l := logger
			if l == nil {
				l = slog.Default()
			}
			l.LogAttrs(c.Context(), slog.LevelError, "chatmux: panic in handler",
				slog.String("event", c.Event()),
				slog.String("pattern", c.Pattern()),
				userAttr(c),
				slog.String("conn", connID(c)),
				slog.Any("panic", p),
				slog.String("stack", string(debug.Stack())),
			)
			err = chatmux.Internal(panicError(p))
		}()
		return next(c)
	}
}

// panicError makes the value of a panic the cause of the 4006 error,
// keeping it reachable with errors.Is or errors.As when it is an error.
func panicError(p any) error {
	if e, ok := p.(error); ok {
		return fmt.Errorf("panic: %w", e)
	}
	return errors.New("panic: " + fmt.Sprint(p))
}
