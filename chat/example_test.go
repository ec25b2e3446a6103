package chat_test

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/chat"
	"github.com/chatmux/chatmux/store/memory"
)

// The default event map on a router, served at the package's path.
func ExampleService_Register() {
	cfg := chat.DefaultConfig()
	cfg.Store = memory.New()
	svc := chat.New(cfg)

	events := chatmux.NewRouter()
	svc.Register(events)

	r := chi.NewRouter()
	r.Handle("/messaging/", chatmux.NewServer(events, chatmux.ServerOptions{
		Authenticate: func(r *http.Request) (*chatmux.User, error) {
			return &chatmux.User{ID: 1, Username: "alice"}, nil // use a real authenticator
		},
	}))
	_ = r // http.ListenAndServe(addr, r)
}

// The Go form of EVENT_MAPPER: take the default map, remove, replace and
// add events, then register it. Custom events reuse the permission checks.
func ExampleService_Events() {
	cfg := chat.DefaultConfig()
	cfg.Store = memory.New()
	svc := chat.New(cfg)

	events := svc.Events()
	delete(events, chat.EventMessageTyping) // no typing indicators
	send := events[chat.EventMessageSend]
	events[chat.EventMessageSend] = func(c *chatmux.Context) error {
		// ... content moderation, analytics ...
		return send(c)
	}
	r := chatmux.NewRouter()
	chat.RegisterEvents(r, events)
	r.With(svc.RequireRoomAdmin("room_id")).HandleFunc("message.pin", func(c *chatmux.Context) error {
		roomID, _, _ := chat.RoomFrom(c)
		return c.Broadcast(chat.RoomGroup(roomID), "message.pinned", map[string]any{"room_id": roomID})
	})
}
