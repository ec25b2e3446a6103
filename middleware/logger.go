package middleware

import (
	"log/slog"
	"strconv"
	"time"

	"github.com/chatmux/chatmux"
)

// Logger returns a middleware that logs one line per event, after its
// handler returns, with the attributes
//
//	event       the name the client sent
//	pattern     the route pattern that matched ("" for an unknown event)
//	user        the user's id (null when anonymous)
//	conn        the connection's id
//	request_id  the event's id, when RequestID runs before Logger
//	client_request_id  the request_id the client sent, when it sent one
//	duration    the time spent in the rest of the chain
//	outcome     "ok", or the error code answered ("4003", "4029", ...)
//	err         the error, for 4006 (internal) errors only
//
// The level is Info, except for 4006 errors, and errors outside the 4xxx
// range, which are logged at Error. An error that is not a *chatmux.Error
// counts as 4006, as the server answers it. A nil logger means
// slog.Default(). When the logger is not enabled at Info, the line costs
// close to nothing.
//
// The error is returned unchanged: the server still answers it.
func Logger(logger *slog.Logger) chatmux.Middleware {
	return func(next chatmux.Handler) chatmux.Handler {
		return func(c *chatmux.Context) error {
			l := logger
			if l == nil {
				l = slog.Default()
			}
			if !l.Enabled(c.Context(), slog.LevelError) {
				return next(c) // nothing would be written: skip the clock
			}
			start := time.Now()
			err := next(c)
			code := 0
			level := slog.LevelInfo
			if err != nil {
				code = chatmux.AsError(err).Code
				if code == chatmux.CodeInternal || code < 4000 || code > 4999 {
					level = slog.LevelError
				}
			}
			ctx := c.Context()
			if !l.Enabled(ctx, level) {
				return err
			}
			attrs := make([]slog.Attr, 0, 9)
			attrs = append(attrs,
				slog.String("event", c.Event()),
				slog.String("pattern", c.Pattern()),
				userAttr(c),
				slog.String("conn", connID(c)),
			)
			if id := GetRequestID(c); id != "" {
				attrs = append(attrs, slog.String("request_id", id))
			}
			if id := c.RequestID(); id != "" {
				attrs = append(attrs, slog.String("client_request_id", id))
			}
			attrs = append(attrs,
				slog.Duration("duration", time.Since(start)),
				slog.String("outcome", outcomeOf(code)),
			)
			if level == slog.LevelError {
				attrs = append(attrs, slog.String("err", err.Error()))
			}
			l.LogAttrs(ctx, level, "chatmux: event", attrs...)
			return err
		}
	}
}

// Outcome returns the label of an event's result, as Logger and the
// metrics package write it: "ok" for a nil error, else the code the server
// answers with ("4003", "4029", ...; "4006" for an error that is not a
// *chatmux.Error). Its values are few: fit for a metrics label.
func Outcome(err error) string {
	if err == nil {
		return "ok"
	}
	return outcomeOf(chatmux.AsError(err).Code)
}

func outcomeOf(code int) string {
	switch code {
	case 0:
		return "ok"
	case chatmux.CodeUnauthenticated:
		return "4001"
	case chatmux.CodePermissionDenied:
		return "4002"
	case chatmux.CodeValidation:
		return "4003"
	case chatmux.CodeNotFound:
		return "4004"
	case chatmux.CodeConstraint:
		return "4005"
	case chatmux.CodeInternal:
		return "4006"
	case chatmux.CodeRateLimited:
		return "4029"
	}
	return strconv.Itoa(code)
}
