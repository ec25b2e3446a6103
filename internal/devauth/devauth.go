// Package devauth is the development sign-in shared by the example servers
// and chatbench: a connection with ?user=<username> is that user, created
// in the store on first use, without a password. It also holds the check
// that keeps a server using it on loopback addresses, and the username rule
// (Django's default validator) that the example server's JWT sign-in
// applies too.
//
// Never expose development sign-in beyond the machine you develop on:
// anyone who can reach the server can be anyone.
package devauth

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/store"
)

// Errors of the Authenticator: wrong credentials. A server logs them; the
// client only sees the 4001 close.
var (
	ErrNoUsername  = errors.New("no credentials: pass ?user=<username> (development mode)")
	ErrBadUsername = errors.New("invalid username: 1-150 letters, digits and @.+-_")
)

// MaxUsernameLen is the longest username accepted, in characters, as
// Django's default user model has it.
const MaxUsernameLen = 150

// conflictRetries bounds the retries of a user creation that collided
// with a concurrent one (see Authenticator).
const conflictRetries = 50

// UserCreator finds or creates a user by username. store.Store satisfies
// it.
type UserCreator interface {
	CreateUserByUsername(ctx context.Context, username string) (store.User, error)
}

// Authenticator returns the development-mode chatmux.Authenticator: the
// request's ?user=<username> (surrounding spaces trimmed) is that user,
// created in users on first use (the store assigns the id). A missing
// name fails with ErrNoUsername, a name ValidUsername refuses with
// ErrBadUsername. A store that refuses the name because it is a deleted
// user's (store.ErrUserDeleted) fails with an error that wraps
// chatmux.ErrUserDeleted: the server closes with 4011, not 4001
// (docs/protocol.md#deleted-users).
//
// A store may refuse a creation that races with another one for a new id
// with store.ErrConflict: the creation is then tried again after a short
// random pause, up to 50 times, until the request's context ends.
//
// A valid name is valid credentials: when the store cannot answer (it is
// unavailable, its deadline or the request's passed, the conflicts never
// ended), the error wraps chatmux.ErrUnavailable (see Unavailable), and
// the server closes the connection with 1013 (try again later), never 4001
// (docs/protocol.md#close-codes).
func Authenticator(users UserCreator) chatmux.Authenticator {
	return func(r *http.Request) (*chatmux.User, error) {
		name := strings.TrimSpace(r.URL.Query().Get("user"))
		if name == "" {
			return nil, ErrNoUsername
		}
		if !ValidUsername(name) {
			return nil, ErrBadUsername
		}
		u, err := createUser(r.Context(), users, name)
		if errors.Is(err, store.ErrUserDeleted) {
			return nil, fmt.Errorf("user %q: %w", name, UserDeleted(err))
		}
		if err != nil {
			return nil, fmt.Errorf("failed to create user %q: %w: %w", name, chatmux.ErrUnavailable, err)
		}
		return &chatmux.User{ID: u.ID, Username: u.Username, Email: u.Email, FirstName: u.FirstName, LastName: u.LastName}, nil
	}
}

// Unavailable returns err wrapping chatmux.ErrUnavailable when it means
// that a store could not answer (store.ErrUnavailable, a deadline or a
// cancellation: errors.Is context.DeadlineExceeded or context.Canceled),
// and err itself otherwise (nil stays nil). An Authenticator that reads a
// store passes its errors through it, so that an unavailable store closes
// the connection with 1013 (try again later) rather than 4001.
func Unavailable(err error) error {
	if err == nil || errors.Is(err, chatmux.ErrUnavailable) {
		return err
	}
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w: %w", chatmux.ErrUnavailable, err)
	}
	return err
}

// UserDeleted returns err wrapping chatmux.ErrUserDeleted when it means
// that the user was deleted for good (errors.Is store.ErrUserDeleted), and
// err itself otherwise (nil stays nil). An Authenticator that records its
// users in a store passes the store's errors through it (and Unavailable),
// so that a deleted user's connection is closed with 4011 (user deleted),
// not 4001.
func UserDeleted(err error) error {
	if err == nil || errors.Is(err, chatmux.ErrUserDeleted) || !errors.Is(err, store.ErrUserDeleted) {
		return err
	}
	return fmt.Errorf("%w: %w", chatmux.ErrUserDeleted, err)
}

// createUser calls CreateUserByUsername, again after a pause of up to 5 ms
// while it reports store.ErrConflict.
func createUser(ctx context.Context, users UserCreator, name string) (store.User, error) {
	for attempt := 0; ; attempt++ {
		u, err := users.CreateUserByUsername(ctx, name)
		if !errors.Is(err, store.ErrConflict) || attempt == conflictRetries {
			return u, err
		}
		t := time.NewTimer(time.Duration(rand.IntN(5000)) * time.Microsecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return u, errors.Join(err, ctx.Err())
		case <-t.C:
		}
	}
}

// ValidUsername accepts what Django's default username validator accepts:
// 1 to MaxUsernameLen letters, digits and @ . + - _.
func ValidUsername(s string) bool {
	if s == "" || utf8.RuneCountInString(s) > MaxUsernameLen {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("@.+-_", r):
		default:
			return false
		}
	}
	return true
}

// IsLoopback reports whether a listen address (host:port) accepts local
// connections only: "localhost" or a loopback IP. An empty host (":8080")
// listens on every interface, so it is not.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckAddr returns nil when addr is a loopback listen address, and
// otherwise an error that refuses to serve development sign-in there and
// ends with hint: what the user can do instead (for example "listen on
// 127.0.0.1 or pass -allow-remote").
func CheckAddr(addr, hint string) error {
	if IsLoopback(addr) {
		return nil
	}
	return fmt.Errorf("refusing to serve development sign-in (no password: anyone can sign in as anyone) on %q, "+
		"which is not a loopback address: %s", addr, hint)
}
