package middleware_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"go.uber.org/goleak"

	"github.com/chatmux/chatmux"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// serve routes one event for user (nil: anonymous) on a test context.
func serve(r chatmux.Router, event string, user *chatmux.User) error {
	return r.ServeEvent(chatmux.NewTestContext(context.Background(), event, json.RawMessage(`{}`), user))
}

// errCode returns the code of a *chatmux.Error, 0 for nil, -1 otherwise.
func errCode(err error) int {
	if err == nil {
		return 0
	}
	var e *chatmux.Error
	if !errors.As(err, &e) {
		return -1
	}
	return e.Code
}

func errDetail(err error) any {
	var e *chatmux.Error
	if !errors.As(err, &e) {
		return nil
	}
	return e.Detail
}

func ok(*chatmux.Context) error { return nil }

// router returns a router with mws and the handler h on pattern, whose
// unknown events are answered nil (the default answer needs a socket).
func router(pattern string, h chatmux.Handler, mws ...chatmux.Middleware) *chatmux.Mux {
	r := chatmux.NewRouter()
	r.Use(mws...)
	r.NotFound(ok)
	r.Handle(pattern, h)
	return r
}
