package middleware

import (
	"github.com/chatmux/chatmux"
)

// Predicate decides whether an event may go on. An error stops the event
// and is answered as is (a *chatmux.Error with its own code, anything else
// as 4006).
type Predicate func(c *chatmux.Context) (bool, error)

// RequirePermission returns a middleware that lets an event go on when
// allow reports true, and answers it with 4002 and detail when allow
// reports false (an empty detail means DetailNoPermission). An error from
// allow is returned as is. allow runs for anonymous connections too:
// c.User() may be nil.
func RequirePermission(allow Predicate, detail string) chatmux.Middleware {
	if allow == nil {
		panic("middleware: RequirePermission needs a predicate")
	}
	if detail == "" {
		detail = DetailNoPermission
	}
	return func(next chatmux.Handler) chatmux.Handler {
		return func(c *chatmux.Context) error {
			ok, err := allow(c)
			if err != nil {
				return err
			}
			if !ok {
				return chatmux.PermissionDenied(detail)
			}
			return next(c)
		}
	}
}

// RequireAdmin returns a middleware that lets only admins through, as
// isAdmin decides: anonymous connections get 4002 "Authentication
// credentials were not provided." (isAdmin is not called, so it may use
// c.User() freely), users that are not admins get 4002 "You do not have
// permission to perform this action.", and an error from isAdmin is
// returned as is.
//
//	isStaff := func(c *chatmux.Context) (bool, error) {
//		return c.User().Claims["is_staff"] == true, nil
//	}
//	events.With(middleware.RequireAdmin(isStaff)).Handle("room.purge", purge)
//
// For a detail of your own, or for a check that also admits anonymous
// connections, use RequirePermission.
func RequireAdmin(isAdmin Predicate) chatmux.Middleware {
	if isAdmin == nil {
		panic("middleware: RequireAdmin needs a predicate")
	}
	perm := RequirePermission(isAdmin, DetailNoPermission)
	return func(next chatmux.Handler) chatmux.Handler {
		return RequireAuth(perm(next))
	}
}
