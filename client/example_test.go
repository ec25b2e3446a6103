package client_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	"github.com/chatmux/chatmux/client"
)

// A client that prints every message of its rooms, once and in order, and
// answers "ping" with "pong".
func Example() {
	ctx := context.Background()
	var c *client.Client // set before Start: the handlers may use it
	c, err := client.New(client.Options{
		URL:  "ws://127.0.0.1:8080/messaging/",
		User: "alice", // development sign-in; Token or TokenFunc otherwise
		Handlers: client.Handlers{
			Message: func(m *client.Message) {
				fmt.Printf("%s #%d: %s\n", m.Room.ID, m.Seq, m.Content)
				if strings.TrimSpace(m.Content) == "ping" {
					// From a handler, Enqueue: SendMessage would hold the
					// handlers until the answer is stored.
					_, _ = c.Enqueue(client.OutgoingMessage{RoomID: m.Room.ID, Content: "pong"})
				}
			},
			State: func(s client.StateChange) { log.Println("connection:", s.State, s.Reason, s.Code) },
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	c.Start()
	defer c.Close()
	if err := c.WaitConnected(ctx); err != nil {
		log.Fatal(err)
	}
	rooms, err := c.ListRooms(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range rooms {
		fmt.Println(r.ID, r.Name, r.UnreadCount)
	}
}
