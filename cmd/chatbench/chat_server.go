package main

import (
	"log/slog"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/chat"
	"github.com/chatmux/chatmux/store"
)

// chatRouter returns a router with the chat domain's default event map on
// store st, and the service behind it.
func chatRouter(st store.Store, notifications bool, logger *slog.Logger) (chatmux.Router, *chat.Service) {
	cfg := chat.DefaultConfig()
	cfg.Store = st
	cfg.Notifications = notifications
	cfg.Logger = logger
	svc := chat.New(cfg)
	r := chatmux.NewRouter()
	svc.Register(r)
	return r, svc
}
