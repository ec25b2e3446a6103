package chatmux

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestAsErrorUnavailable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"wraps ErrUnavailable", fmt.Errorf("failed to query: %w", ErrUnavailable), CodeUnavailable},
		{"Unavailable", Unavailable(errors.New("timeout")), CodeUnavailable},
		{"plain", errors.New("boom"), CodeInternal},
		{"deadline alone", context.DeadlineExceeded, CodeInternal},
		{"an *Error wins", fmt.Errorf("x: %w: %w", NotFound(), ErrUnavailable), CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AsError(tt.err).Code; got != tt.want {
				t.Fatalf("AsError(%v).Code = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
	if !errors.Is(Unavailable(nil), ErrUnavailable) {
		t.Error("a 4013 error does not match ErrUnavailable")
	}
	if errors.Is(Internal(nil), ErrUnavailable) {
		t.Error("a 4006 error matches ErrUnavailable")
	}
}

// dialClose dials url and returns the close frame the server sends.
func dialClose(t *testing.T, url string) websocket.CloseError {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("the upgrade must complete before the close: %v", err)
	}
	defer c.CloseNow()
	return readClose(t, c)
}

func TestAuthenticateCloseCodes(t *testing.T) {
	tests := []struct {
		name       string
		auth       Authenticator
		wantCode   websocket.StatusCode
		wantReason string
		// waits: the authenticator waits for the deadline.
		waits bool
	}{
		{"wrong credentials", func(*http.Request) (*User, error) { return nil, errors.New("bad token") },
			CodeUnauthenticated, "authentication failed", false},
		{"no user", func(*http.Request) (*User, error) { return nil, nil },
			CodeUnauthenticated, "authentication failed", false},
		{"identity provider away", func(*http.Request) (*User, error) {
			return nil, fmt.Errorf("failed to reach the store: %w", ErrUnavailable)
		}, websocket.StatusTryAgainLater, DetailUnavailable, false},
		{"deadline honoured", func(r *http.Request) (*User, error) {
			<-r.Context().Done()
			return nil, fmt.Errorf("failed to query: %w", r.Context().Err())
		}, websocket.StatusTryAgainLater, DetailUnavailable, true},
		{"user deleted", func(*http.Request) (*User, error) {
			return nil, fmt.Errorf("user 7: %w", ErrUserDeleted)
		}, CloseUserDeleted, ReasonUserDeleted, false},
		{"deadline passed, error not wrapped", func(r *http.Request) (*User, error) {
			<-r.Context().Done()
			return nil, errors.New("gave up")
		}, websocket.StatusTryAgainLater, DetailUnavailable, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The default ConnectTimeout (5s) for the authenticators that
			// answer at once: a short one could run out while a busy
			// machine runs them, which turns any error into 1013. The
			// ones that wait for the deadline get a short one.
			timeout := time.Duration(0)
			if tt.waits {
				timeout = 50 * time.Millisecond
			}
			h := newHarness(t, echoRouter(), ServerOptions{Authenticate: tt.auth, ConnectTimeout: timeout})
			ce := dialClose(t, h.url)
			if ce.Code != tt.wantCode || ce.Reason != tt.wantReason {
				t.Fatalf("close %d %q, want %d %q", ce.Code, ce.Reason, tt.wantCode, tt.wantReason)
			}
		})
	}
}

// TestAuthenticateHasConnectDeadline: the request Authenticate sees has a
// context that ends after ConnectTimeout.
func TestAuthenticateHasConnectDeadline(t *testing.T) {
	got := make(chan time.Duration, 1)
	auth := func(r *http.Request) (*User, error) {
		d, ok := r.Context().Deadline()
		if !ok {
			got <- -1
		} else {
			got <- time.Until(d)
		}
		return &User{ID: 1}, nil
	}
	h := newHarness(t, echoRouter(), ServerOptions{Authenticate: auth, ConnectTimeout: time.Hour})
	h.dial(1)
	if left := <-got; left <= 0 || left > time.Hour {
		t.Fatalf("time left on the Authenticate context: %v, want (0, 1h]", left)
	}
}

func TestConnectTimeout(t *testing.T) {
	tests := []struct {
		name    string
		connect func(c *Context) error
	}{
		{"context ends", func(c *Context) error {
			<-c.Context().Done()
			return c.Context().Err()
		}},
		{"wrapped deadline", func(c *Context) error {
			<-c.Context().Done()
			return fmt.Errorf("failed to load rooms: %w", c.Context().Err())
		}},
		{"internal wrapping ErrUnavailable", func(c *Context) error {
			return Internal(fmt.Errorf("failed to load rooms: %w", ErrUnavailable))
		}},
		{"plain error wrapping ErrUnavailable", func(c *Context) error {
			return fmt.Errorf("failed to load rooms: %w", ErrUnavailable)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRouter()
			r.HandleFunc(EventConnect, tt.connect)
			h := newHarness(t, r, ServerOptions{ConnectTimeout: 50 * time.Millisecond})
			ce := readClose(t, h.dial(1))
			if ce.Code != websocket.StatusTryAgainLater || ce.Reason != DetailUnavailable {
				t.Fatalf("close %d %q, want 1013 %q", ce.Code, ce.Reason, DetailUnavailable)
			}
		})
	}
}

// TestOriginCheckedBeforeAuthenticate: a refused origin gets 403 and the
// authenticator never runs.
func TestOriginCheckedBeforeAuthenticate(t *testing.T) {
	var calls atomic.Int64
	auth := func(r *http.Request) (*User, error) {
		calls.Add(1)
		return testAuth(r)
	}
	tests := []struct {
		name      string
		opts      ServerOptions
		origin    string
		wantCalls int64
		wantOK    bool
	}{
		{"cross-origin refused", ServerOptions{}, "https://evil.example", 0, false},
		{"bad origin URL", ServerOptions{}, "://x", 0, false},
		{"pattern allows", ServerOptions{OriginPatterns: []string{"*.example"}}, "https://chat.example", 1, true},
		{"scheme pattern", ServerOptions{OriginPatterns: []string{"https://*.example"}}, "https://chat.example", 1, true},
		{"scheme pattern, other scheme", ServerOptions{OriginPatterns: []string{"https://*.example"}}, "http://chat.example", 0, false},
		{"check disabled", ServerOptions{InsecureSkipVerify: true}, "https://evil.example", 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls.Store(0)
			tt.opts.Authenticate = auth
			h := newHarness(t, echoRouter(), tt.opts)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			hdr := http.Header{"Origin": {tt.origin}}
			c, resp, err := websocket.Dial(ctx, h.url+"?user=1", &websocket.DialOptions{HTTPHeader: hdr})
			if tt.wantOK {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				c.CloseNow()
			} else if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
				if c != nil {
					c.CloseNow()
				}
				t.Fatalf("dial: %v, want HTTP 403", err)
			}
			if n := calls.Load(); n != tt.wantCalls {
				t.Fatalf("Authenticate ran %d times, want %d", n, tt.wantCalls)
			}
		})
	}
}

// waitFor polls cond until it holds or 30 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestConnectionLimits(t *testing.T) {
	tests := []struct {
		name  string
		opts  ServerOptions
		users []int64 // users of the connections within the limit
		over  int64   // user of the connection over it
		other int64   // a user that may still connect, 0 for none
	}{
		{"per user", ServerOptions{MaxConnsPerUser: 2}, []int64{1, 1, 2}, 1, 3},
		{"per address", ServerOptions{MaxConnsPerAddr: 3}, []int64{1, 2, 3}, 4, 0},
		{"both, user first", ServerOptions{MaxConnsPerUser: 1, MaxConnsPerAddr: 3}, []int64{1, 2}, 1, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var auths atomic.Int64
			tt.opts.Authenticate = func(r *http.Request) (*User, error) {
				auths.Add(1)
				return testAuth(r)
			}
			h := newHarness(t, echoRouter(), tt.opts)
			conns := make([]*websocket.Conn, len(tt.users))
			for i, u := range tt.users {
				conns[i] = h.dial(u)
				// The connection is counted and works.
				send(t, conns[i], `{"event_type":"echo","data":{"text":"hi"}}`)
				readJSON(t, conns[i])
			}
			before := auths.Load()
			ce := dialClose(t, h.url+"?user="+strconv.FormatInt(tt.over, 10))
			if ce.Code != websocket.StatusTryAgainLater || ce.Reason != reasonTooManyConns {
				t.Fatalf("over the limit: close %d %q, want 1013 %q", ce.Code, ce.Reason, reasonTooManyConns)
			}
			if tt.opts.MaxConnsPerUser == 0 && auths.Load() != before {
				t.Error("a connection over the address limit was authenticated")
			}
			if tt.other != 0 {
				c := h.dial(tt.other)
				send(t, c, `{"event_type":"echo","data":{"text":"hi"}}`)
				if m := readJSON(t, c); m["eventType"] != "echo.dispatch" {
					t.Fatalf("another user: %v", m)
				}
				_ = c.Close(websocket.StatusNormalClosure, "")
			}
			// Closing one frees its place.
			_ = conns[0].Close(websocket.StatusNormalClosure, "")
			waitFor(t, "the closed connection to be released", func() bool { return h.srv.Len() == len(tt.users)-1 })
			c := h.dial(tt.over)
			send(t, c, `{"event_type":"echo","data":{"text":"again"}}`)
			if m := readJSON(t, c); m["eventType"] != "echo.dispatch" {
				t.Fatalf("after a close, the place was not freed: %v", m)
			}
			_ = c.Close(websocket.StatusNormalClosure, "")
			for _, c := range conns[1:] {
				_ = c.Close(websocket.StatusNormalClosure, "")
			}
			waitFor(t, "every connection to end", func() bool { return h.srv.Len() == 0 })
			h.srv.mu.Lock()
			defer h.srv.mu.Unlock()
			if len(h.srv.perUser) != 0 || len(h.srv.perAddr) != 0 {
				t.Fatalf("counts left after every connection ended: users %v, addresses %v", h.srv.perUser, h.srv.perAddr)
			}
		})
	}
}

func TestRemoteIP(t *testing.T) {
	tests := []struct{ in, want string }{
		{"127.0.0.1:5555", "127.0.0.1"},
		{"[::1]:80", "::1"},
		{"10.0.0.1", "10.0.0.1"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := remoteIP(tt.in); got != tt.want {
			t.Errorf("remoteIP(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
