package middleware

import (
	"log/slog"

	"github.com/chatmux/chatmux"
)

// userAttr is the "user" attribute of a log line: the user's id, or null
// for an anonymous connection (so that logs tell "no user" from user 0).
func userAttr(c *chatmux.Context) slog.Attr {
	if u := c.User(); u != nil {
		return slog.Int64("user", u.ID)
	}
	return slog.Any("user", nil)
}

// connID returns the id of the event's connection, empty when the context
// has none (a test context).
func connID(c *chatmux.Context) string {
	if conn := c.Conn(); conn != nil {
		return conn.ID()
	}
	return ""
}

// isLifecycle reports whether the event is $connect or $disconnect.
func isLifecycle(c *chatmux.Context) bool {
	e := c.Event()
	return e == chatmux.EventConnect || e == chatmux.EventDisconnect
}
