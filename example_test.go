package chatmux_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/chatmux/chatmux"
)

func ExampleNewRouter() {
	events := chatmux.NewRouter()
	events.Use(func(next chatmux.Handler) chatmux.Handler {
		return func(c *chatmux.Context) error {
			fmt.Println("before", c.Event())
			return next(c)
		}
	})
	events.HandleFunc("room.{id}.typing", func(c *chatmux.Context) error {
		fmt.Println("typing in room", c.Param("id"))
		return nil
	})
	events.Route("message", func(r chatmux.Router) {
		r.HandleFunc("send", func(c *chatmux.Context) error {
			var in struct {
				Content string `json:"content"`
			}
			if err := c.Bind(&in); err != nil {
				return err
			}
			fmt.Println("send:", in.Content)
			return nil
		})
	})
	fmt.Println(events.Routes())

	ctx := context.Background()
	_ = events.ServeEvent(chatmux.NewTestContext(ctx, "room.42.typing", nil, nil))
	_ = events.ServeEvent(chatmux.NewTestContext(ctx, "message.send", json.RawMessage(`{"content":"hi"}`), nil))
	// Output:
	// [message.send room.{id}.typing]
	// before room.42.typing
	// typing in room 42
	// before message.send
	// send: hi
}

func ExampleContext_Bind() {
	events := chatmux.NewRouter()
	events.HandleFunc("message.send", func(c *chatmux.Context) error {
		var in struct {
			RoomID string `json:"room_id"`
		}
		return c.Bind(&in)
	})
	err := events.ServeEvent(chatmux.NewTestContext(context.Background(), "message.send", json.RawMessage(`{"room_id":5}`), nil))
	b, _ := chatmux.ErrorEnvelope(err)
	fmt.Println(string(b))
	// Output:
	// {"error":{"code":4003,"detail":{"room_id":["Expected a string, got number."]}}}
}
