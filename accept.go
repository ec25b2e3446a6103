package chatmux

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/coder/websocket"

	"github.com/chatmux/chatmux/internal/wsframe"
)

// What ServeHTTP checks before a connection is set up: the origin, the
// connection limits and the credentials (under ConnectTimeout), and the
// upgrade itself.

// reasonTooManyConns is the reason of the 1013 close of a connection over
// MaxConnsPerUser or MaxConnsPerAddr.
const reasonTooManyConns = "too many connections"

// authenticate runs the Authenticator under ConnectTimeout. An error that
// means the credentials could not be checked (ErrUnavailable, a deadline)
// is returned wrapping ErrUnavailable; a nil user is an error.
func (s *Server) authenticate(r *http.Request) (*User, error) {
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.ConnectTimeout)
	defer cancel()
	user, err := s.opts.Authenticate(r.WithContext(ctx))
	switch {
	case err == nil && user == nil:
		return nil, errors.New("no user")
	case err == nil:
		return user, nil
	case errors.Is(err, ErrUnavailable):
		return nil, err
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded:
		return nil, fmt.Errorf("failed to authenticate within %v: %w: %w", s.opts.ConnectTimeout, ErrUnavailable, err)
	}
	return nil, err
}

// refuse completes the upgrade and closes the connection with code and
// reason (the client reads a close code only from a WebSocket).
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, code websocket.StatusCode, reason string) {
	ws, err := s.accept(wsframe.NewHijackWriter(w, s.opts.WriteTimeout), r)
	if err != nil {
		return
	}
	go func() { _ = ws.Close(code, reason) }()
}

// connSlots records what a connection counts against the connection
// limits.
type connSlots struct {
	addr    string // the remote IP counted in perAddr, "" when none
	user    int64  // the user counted in perUser, when hasUser
	hasUser bool
}

// acquireAddr counts a connection from ip against MaxConnsPerAddr and
// reports whether it is within the limit.
func (s *Server) acquireAddr(slots *connSlots, ip string) bool {
	if s.opts.MaxConnsPerAddr <= 0 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perAddr[ip] >= s.opts.MaxConnsPerAddr {
		return false
	}
	s.perAddr[ip]++
	slots.addr = ip
	return true
}

// acquireUser counts a connection of user id against MaxConnsPerUser and
// reports whether it is within the limit.
func (s *Server) acquireUser(slots *connSlots, id int64) bool {
	if s.opts.MaxConnsPerUser <= 0 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perUser[id] >= s.opts.MaxConnsPerUser {
		return false
	}
	s.perUser[id]++
	slots.user, slots.hasUser = id, true
	return true
}

// release gives back what acquireAddr and acquireUser counted.
func (s *Server) release(slots connSlots) {
	if slots.addr == "" && !slots.hasUser {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if slots.addr != "" {
		if s.perAddr[slots.addr]--; s.perAddr[slots.addr] <= 0 {
			delete(s.perAddr, slots.addr)
		}
	}
	if slots.hasUser {
		if s.perUser[slots.user]--; s.perUser[slots.user] <= 0 {
			delete(s.perUser, slots.user)
		}
	}
}

// remoteIP returns the IP address of a RemoteAddr ("host:port"), or the
// whole of it when it has no port.
func remoteIP(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// checkOrigin applies the origin policy of the WebSocket library (same
// host, or a host matching one of patterns) before the upgrade, so that a
// refused origin is refused before authentication.
func checkOrigin(r *http.Request, patterns []string) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil {
		return fmt.Errorf("failed to parse Origin %q: %w", origin, err)
	}
	if strings.EqualFold(r.Host, u.Host) {
		return nil
	}
	for _, p := range patterns {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		ok, err := path.Match(strings.ToLower(p), strings.ToLower(target))
		if err != nil {
			return fmt.Errorf("failed to match origin pattern %q: %w", p, err)
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("origin %q is not allowed for host %q", origin, r.Host)
}

func (s *Server) accept(w http.ResponseWriter, r *http.Request) (*websocket.Conn, error) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		OriginPatterns:     s.opts.OriginPatterns,
		InsecureSkipVerify: s.opts.InsecureSkipVerify,
		CompressionMode:    websocket.CompressionDisabled,
		Subprotocols:       []string{SubprotocolBatch},
	})
	if err != nil {
		s.logger.Debug("chatmux: upgrade failed", "remote", r.RemoteAddr, "err", err)
		return nil, err
	}
	return ws, nil
}
