package devauth_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/internal/devauth"
	"github.com/chatmux/chatmux/store"
	"github.com/chatmux/chatmux/store/memory"
)

func TestAuthenticator(t *testing.T) {
	auth := devauth.Authenticator(memory.New())
	ids := map[string]int64{}
	tests := []struct {
		query   string
		name    string // the user signed in as; "" when refused
		wantErr error
	}{
		{"?user=alice", "alice", nil},
		{"?user=bob", "bob", nil},
		{"?user=alice", "alice", nil}, // the same user again
		{"?user=%20carol%20", "carol", nil},
		{"?user=d.o%2Be-f_g@h", "d.o+e-f_g@h", nil},
		{"?user=" + strings.Repeat("x", devauth.MaxUsernameLen), strings.Repeat("x", devauth.MaxUsernameLen), nil},
		{"", "", devauth.ErrNoUsername},
		{"?user=", "", devauth.ErrNoUsername},
		{"?user=%20", "", devauth.ErrNoUsername},
		{"?token=x", "", devauth.ErrNoUsername},
		{"?user=a%20b", "", devauth.ErrBadUsername},
		{"?user=%3Cscript%3E", "", devauth.ErrBadUsername},
		{"?user=" + strings.Repeat("x", devauth.MaxUsernameLen+1), "", devauth.ErrBadUsername},
	}
	for _, tt := range tests {
		u, err := auth(httptest.NewRequest(http.MethodGet, "/messaging/"+tt.query, nil))
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("%q: %+v, %v; want %v", tt.query, u, err, tt.wantErr)
			}
			continue
		}
		if err != nil || u.Username != tt.name || u.ID <= 0 {
			t.Errorf("%q: %+v, %v; want user %q", tt.query, u, err, tt.name)
			continue
		}
		if id, seen := ids[u.Username]; seen && id != u.ID {
			t.Errorf("%q: id %d, earlier %d", tt.query, u.ID, id)
		}
		for name, id := range ids {
			if name != u.Username && id == u.ID {
				t.Errorf("%q: id %d is %q's", tt.query, u.ID, name)
			}
		}
		ids[u.Username] = u.ID
	}
}

// conflicting fails its first n creations with store.ErrConflict.
type conflicting struct {
	n, calls int
}

func (c *conflicting) CreateUserByUsername(_ context.Context, name string) (store.User, error) {
	c.calls++
	if c.calls <= c.n {
		return store.User{}, store.ErrConflict
	}
	return store.User{ID: 7, Username: name}, nil
}

// TestAuthenticatorConflict: a creation that collided with another is
// tried again, a bounded number of times, and not after the request ended.
func TestAuthenticatorConflict(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name      string
		conflicts int
		ctx       context.Context
		wantCalls int
		wantErr   error
	}{
		{"no conflict", 0, context.Background(), 1, nil},
		{"two conflicts", 2, context.Background(), 3, nil},
		{"always", 1000, context.Background(), 51, store.ErrConflict},
		{"request gone", 1000, cancelled, 1, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			users := &conflicting{n: tt.conflicts}
			r := httptest.NewRequestWithContext(tt.ctx, http.MethodGet, "/messaging/?user=alice", nil)
			u, err := devauth.Authenticator(users)(r)
			if users.calls != tt.wantCalls {
				t.Errorf("%d creations, want %d", users.calls, tt.wantCalls)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || u.ID != 7 || u.Username != "alice" {
				t.Errorf("%+v, %v; want alice (7)", u, err)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:8080", true},
		{"127.3.4.5:0", true},
		{"localhost:1", true},
		{"[::1]:80", true},
		{":8080", false},
		{"0.0.0.0:80", false},
		{"[::]:80", false},
		{"10.1.2.3:80", false},
		{"example.com:80", false},
		{"127.0.0.1", false}, // no port: not a listen address
		{"nonsense", false},
	}
	for _, tt := range tests {
		if got := devauth.IsLoopback(tt.addr); got != tt.want {
			t.Errorf("IsLoopback(%q) = %v, want %v", tt.addr, got, tt.want)
		}
		err := devauth.CheckAddr(tt.addr, "pass -the-flag")
		if (err == nil) != tt.want {
			t.Errorf("CheckAddr(%q) = %v, want an error: %v", tt.addr, err, !tt.want)
		}
		if err != nil && (!strings.Contains(err.Error(), tt.addr) || !strings.HasSuffix(err.Error(), ": pass -the-flag")) {
			t.Errorf("CheckAddr(%q) = %q: want the address and the hint", tt.addr, err)
		}
	}
}

// failing fails every creation with err.
type failing struct{ err error }

func (f failing) CreateUserByUsername(context.Context, string) (store.User, error) {
	return store.User{}, f.err
}

// TestAuthenticatorStoreUnavailable: a valid name that the store cannot
// look up (unavailable, past a deadline, conflicting without end) wraps
// chatmux.ErrUnavailable; a missing or invalid name does not.
func TestAuthenticatorStoreUnavailable(t *testing.T) {
	tests := []struct {
		name      string
		query     string
		err       error
		wantUnav  bool
		wantCause error
	}{
		{"store unavailable", "?user=alice", fmt.Errorf("failed to connect: %w", store.ErrUnavailable), true, store.ErrUnavailable},
		{"deadline", "?user=alice", fmt.Errorf("failed to read: %w", context.DeadlineExceeded), true, context.DeadlineExceeded},
		{"conflicts without end", "?user=alice", store.ErrConflict, true, store.ErrConflict},
		{"user deleted", "?user=alice", fmt.Errorf("user 3: %w", store.ErrUserDeleted), false, chatmux.ErrUserDeleted},
		{"no name", "", store.ErrUnavailable, false, devauth.ErrNoUsername},
		{"bad name", "?user=a%20b", store.ErrUnavailable, false, devauth.ErrBadUsername},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := devauth.Authenticator(failing{tt.err})(httptest.NewRequest(http.MethodGet, "/messaging/"+tt.query, nil))
			if u != nil || err == nil {
				t.Fatalf("%+v, %v: want an error", u, err)
			}
			if errors.Is(err, chatmux.ErrUnavailable) != tt.wantUnav {
				t.Errorf("%v: errors.Is ErrUnavailable = %v, want %v", err, !tt.wantUnav, tt.wantUnav)
			}
			if !errors.Is(err, tt.wantCause) {
				t.Errorf("%v: does not wrap %v", err, tt.wantCause)
			}
		})
	}
}

func TestUserDeleted(t *testing.T) {
	other := errors.New("boom")
	deleted := fmt.Errorf("user 3: %w", store.ErrUserDeleted)
	for _, tt := range []struct {
		err  error
		want bool // wraps chatmux.ErrUserDeleted
	}{
		{nil, false},
		{other, false},
		{store.ErrNotFound, false},
		{fmt.Errorf("x: %w", store.ErrUnavailable), false},
		{deleted, true},
		{chatmux.ErrUserDeleted, true},
	} {
		got := devauth.UserDeleted(tt.err)
		if errors.Is(got, chatmux.ErrUserDeleted) != tt.want {
			t.Errorf("UserDeleted(%v) = %v: wraps ErrUserDeleted %v, want %v", tt.err, got, !tt.want, tt.want)
		}
		if tt.err != nil && !errors.Is(got, tt.err) {
			t.Errorf("UserDeleted(%v) = %v: lost the cause", tt.err, got)
		}
		if tt.err == nil && got != nil {
			t.Errorf("UserDeleted(nil) = %v", got)
		}
	}
	// Through a real store: the sign-in name of a deleted user is free
	// again, for a new user with a new id (the deleted one keeps its row
	// under "deleted user 3", which is no sign-in name).
	st := memory.New()
	if _, err := st.UpsertUser(context.Background(), store.User{ID: 3, Username: "carol"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DeleteUser(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	u, err := devauth.Authenticator(st)(httptest.NewRequest(http.MethodGet, "/messaging/?user=carol", nil))
	if err != nil || u.ID == 3 {
		t.Fatalf("sign-in as carol after the deletion = %+v, %v: want a new user", u, err)
	}
}

func TestUnavailable(t *testing.T) {
	other := errors.New("boom")
	tests := []struct {
		err  error
		want bool // wraps chatmux.ErrUnavailable
	}{
		{nil, false},
		{other, false},
		{store.ErrNotFound, false},
		{store.ErrConflict, false},
		{fmt.Errorf("x: %w", store.ErrUnavailable), true},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), true},
		{context.Canceled, true},
		{chatmux.ErrUnavailable, true},
	}
	for _, tt := range tests {
		got := devauth.Unavailable(tt.err)
		if errors.Is(got, chatmux.ErrUnavailable) != tt.want {
			t.Errorf("Unavailable(%v) = %v: wraps ErrUnavailable %v, want %v", tt.err, got, !tt.want, tt.want)
		}
		if tt.err != nil && !errors.Is(got, tt.err) {
			t.Errorf("Unavailable(%v) = %v: lost the cause", tt.err, got)
		}
		if tt.err == nil && got != nil {
			t.Errorf("Unavailable(nil) = %v", got)
		}
	}
}

// TestAuthenticatorCloseCodes: on a chatmux server, a store that fails
// with store.ErrUnavailable closes the connection with 1013 (try again
// later); a wrong name closes it with 4001.
func TestAuthenticatorCloseCodes(t *testing.T) {
	srv := chatmux.NewServer(chatmux.NewRouter(), chatmux.ServerOptions{
		Authenticate: devauth.Authenticator(failing{fmt.Errorf("failed to connect: %w", store.ErrUnavailable)}),
		Logger:       slog.New(slog.DiscardHandler),
	})
	ts := httptest.NewServer(srv)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		ts.Close()
	}()
	deleted := chatmux.NewServer(chatmux.NewRouter(), chatmux.ServerOptions{
		Authenticate: devauth.Authenticator(failing{fmt.Errorf("user 3: %w", store.ErrUserDeleted)}),
		Logger:       slog.New(slog.DiscardHandler),
	})
	tsDeleted := httptest.NewServer(deleted)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = deleted.Shutdown(ctx)
		tsDeleted.Close()
	}()
	for _, tt := range []struct {
		query string
		want  websocket.StatusCode
		url   string
	}{
		{"?user=alice", chatmux.CloseUserDeleted, tsDeleted.URL},
		{"?user=alice", websocket.StatusTryAgainLater, ""},
		{"?user=a%20b", chatmux.CodeUnauthenticated, ""},
		{"", chatmux.CodeUnauthenticated, ""},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		url := ts.URL
		if tt.url != "" {
			url = tt.url
		}
		ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+"/"+tt.query, nil)
		if err != nil {
			cancel()
			t.Fatalf("%q: %v", tt.query, err)
		}
		_, _, err = ws.Read(ctx)
		if got := websocket.CloseStatus(err); got != tt.want {
			t.Errorf("%q: %v, want close %d", tt.query, err, tt.want)
		}
		_ = ws.CloseNow()
		cancel()
	}
}
