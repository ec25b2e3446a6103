package middleware

import (
	"github.com/chatmux/chatmux"
)

// Details of the 4002 errors of RequireAuth and RequireAdmin.
const (
	DetailNotAuthenticated = "Authentication credentials were not provided."
	DetailNoPermission     = "You do not have permission to perform this action."
)

// RequireAuth answers the events of anonymous connections with 4002
// "Authentication credentials were not provided." and passes the others
// on. Use it on routes that need a user when the server accepts anonymous
// connections (ServerOptions.Authenticate nil, or an authenticator that
// lets some through).
func RequireAuth(next chatmux.Handler) chatmux.Handler {
	return func(c *chatmux.Context) error {
		if c.User() == nil {
			return chatmux.PermissionDenied(DetailNotAuthenticated)
		}
		return next(c)
	}
}
