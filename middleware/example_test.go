package middleware_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/middleware"
)

// A route limited to 2 events per minute for each user: the third event
// within the minute is answered with 4029.
func ExampleRateLimit() {
	events := chatmux.NewRouter()
	events.With(middleware.RateLimit(2, time.Minute)).HandleFunc("message.pin", func(*chatmux.Context) error {
		return nil // pin the message
	})

	alice := &chatmux.User{ID: 1}
	for range 3 {
		c := chatmux.NewTestContext(context.Background(), "message.pin", json.RawMessage(`{}`), alice)
		fmt.Println(events.ServeEvent(c))
	}
	// Output:
	// <nil>
	// <nil>
	// chatmux: error 4029: Rate limit exceeded: 2 events per 1m0s for message.pin.
}

// The usual global stack: recover panics, give each event an id, log it
// with its outcome, and limit every pattern. Logger sits outside RateLimit,
// so refused events are logged with their 4029.
func ExampleLogger() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case slog.TimeKey, "duration", "conn", "request_id": // vary from run to run
				return slog.Attr{}
			}
			return a
		},
	}))

	events := chatmux.NewRouter()
	events.Use(
		middleware.Recoverer,
		middleware.RequestID,
		middleware.Logger(logger),
		middleware.RateLimit(1, time.Minute),
	)
	events.HandleFunc("message.send", func(*chatmux.Context) error { return nil })
	events.HandleFunc("room.{id}.purge", func(*chatmux.Context) error {
		return chatmux.PermissionDenied("Only admins may purge a room.")
	})

	user := &chatmux.User{ID: 7}
	for _, event := range []string{"message.send", "message.send", "room.42.purge"} {
		c := chatmux.NewTestContext(context.Background(), event, json.RawMessage(`{}`), user)
		_ = events.ServeEvent(c)
	}
	// Output:
	// level=INFO msg="chatmux: event" event=message.send pattern=message.send user=7 outcome=ok
	// level=INFO msg="chatmux: event" event=message.send pattern=message.send user=7 outcome=4029
	// level=INFO msg="chatmux: event" event=room.42.purge pattern=room.{id}.purge user=7 outcome=4002
}

// Admin-only routes, where the application decides who is an admin.
func ExampleRequireAdmin() {
	isStaff := func(c *chatmux.Context) (bool, error) {
		return c.User().Claims["is_staff"] == true, nil
	}
	events := chatmux.NewRouter()
	events.Group(func(r chatmux.Router) {
		r.Use(middleware.RequireAdmin(isStaff))
		r.HandleFunc("room.{id}.purge", func(*chatmux.Context) error { return nil })
	})

	for _, u := range []*chatmux.User{nil, {ID: 1}, {ID: 2, Claims: map[string]any{"is_staff": true}}} {
		c := chatmux.NewTestContext(context.Background(), "room.42.purge", nil, u)
		fmt.Println(events.ServeEvent(c))
	}
	// Output:
	// chatmux: error 4002: Authentication credentials were not provided.
	// chatmux: error 4002: You do not have permission to perform this action.
	// <nil>
}

// A deadline for slow handlers: they pass c.Context() to every blocking
// call and return its error.
func ExampleTimeout() {
	events := chatmux.NewRouter()
	results := make(chan []string) // a search slower than the deadline: it never answers here
	events.With(middleware.Timeout(20*time.Millisecond)).HandleFunc("search", func(c *chatmux.Context) error {
		select {
		case <-results:
			return nil
		case <-c.Context().Done():
			return c.Context().Err()
		}
	})
	c := chatmux.NewTestContext(context.Background(), "search", nil, nil)
	fmt.Println(events.ServeEvent(c))
	// Output:
	// chatmux: error 4006: Request timed out.: context deadline exceeded
}
