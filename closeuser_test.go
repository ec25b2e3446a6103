package chatmux

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestCloseUserClosesEveryConnectionOfTheUser(t *testing.T) {
	r := echoRouter()
	disconnected := make(chan int64, 4)
	r.HandleFunc(EventDisconnect, func(c *Context) error {
		disconnected <- c.User().ID
		return nil
	})
	h := newHarness(t, r, ServerOptions{})
	phone, laptop := h.dial(2), h.dial(2)
	other := h.dial(1)
	// Every connection has finished $connect (it answers an event).
	for _, c := range []*websocket.Conn{phone, laptop, other} {
		send(t, c, `{"event_type":"echo","data":{"text":"hi"}}`)
		if m := readJSON(t, c); m["eventType"] != "echo.dispatch" {
			t.Fatalf("echo = %v", m)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.srv.CloseUser(ctx, 2, CloseUserDeleted, ReasonUserDeleted); err != nil {
		t.Fatalf("CloseUser: %v", err)
	}
	for _, c := range []*websocket.Conn{phone, laptop} {
		if ce := readClose(t, c); ce.Code != CloseUserDeleted || ce.Reason != ReasonUserDeleted {
			t.Fatalf("close %d %q, want 4011 %q", ce.Code, ce.Reason, ReasonUserDeleted)
		}
	}
	for range 2 {
		if id := <-disconnected; id != 2 {
			t.Fatalf("$disconnect of user %d, want 2", id)
		}
	}
	// The other user is untouched.
	send(t, other, `{"event_type":"echo","data":{"text":"still here"}}`)
	if m := readJSON(t, other); m["eventType"] != "echo.dispatch" {
		t.Fatalf("other user's echo = %v", m)
	}
	// A user without connections is not an error.
	if err := h.srv.CloseUser(ctx, 99, CloseUserDeleted, ReasonUserDeleted); err != nil {
		t.Fatalf("CloseUser of nobody: %v", err)
	}
}

func TestCloseUserRefusesBadInput(t *testing.T) {
	h := newHarness(t, echoRouter(), ServerOptions{})
	c := h.dial(3)
	ctx := context.Background()
	for _, code := range []int{0, 999, 1005, 1006, 1015, 2999, 5000, -4011} {
		if err := h.srv.CloseUser(ctx, 3, code, "x"); err == nil {
			t.Errorf("CloseUser with code %d succeeded", code)
		}
	}
	if err := h.srv.CloseUser(ctx, 3, 4000, "bad \xff utf-8"); err == nil {
		t.Error("CloseUser with an invalid UTF-8 reason succeeded")
	}
	// Nothing was sent: the connection still answers.
	send(t, c, `{"event_type":"echo","data":{"text":"ok"}}`)
	if m := readJSON(t, c); m["eventType"] != "echo.dispatch" {
		t.Fatalf("echo = %v", m)
	}
	// A long reason is cut to fit a close frame.
	if err := h.srv.CloseUser(ctx, 3, 4000, strings.Repeat("é", 100)); err != nil {
		t.Fatal(err)
	}
	if ce := readClose(t, c); ce.Code != 4000 || len(ce.Reason) > 123 || !strings.HasPrefix(ce.Reason, "éé") {
		t.Fatalf("close %d %q (%d bytes)", ce.Code, ce.Reason, len(ce.Reason))
	}
}

// A $connect that fails with an error wrapping ErrUserDeleted closes with
// 4011, as an Authenticator's does (TestAuthenticateCloseCodes).
func TestConnectUserDeletedCloses4011(t *testing.T) {
	for name, err := range map[string]error{
		"wrapped sentinel": fmt.Errorf("failed to record user: %w", ErrUserDeleted),
		"UserDeleted":      UserDeleted(errors.New("store: user deleted")),
	} {
		t.Run(name, func(t *testing.T) {
			r := NewRouter()
			r.HandleFunc(EventConnect, func(c *Context) error { return err })
			h := newHarness(t, r, ServerOptions{})
			if ce := readClose(t, h.dial(5)); ce.Code != CloseUserDeleted || ce.Reason != ReasonUserDeleted {
				t.Fatalf("close %d %q, want 4011 %q", ce.Code, ce.Reason, ReasonUserDeleted)
			}
		})
	}
	if e := UserDeleted(nil); !errors.Is(e, ErrUserDeleted) || errors.Is(e, ErrUnavailable) {
		t.Fatal("UserDeleted does not match ErrUserDeleted alone")
	}
	if errors.Is(Unavailable(nil), ErrUserDeleted) || errors.Is(Internal(nil), ErrUserDeleted) {
		t.Fatal("another *Error matches ErrUserDeleted")
	}
}
