package main

import (
	"log/slog"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/chat"
	"github.com/chatmux/chatmux/store"
)

// registerChat registers the chat domain's events (the 16 events of the
// protocol, $connect and $disconnect) on events and returns the path the
// WebSocket endpoint is mounted at. It is the one place this program
// touches package chat: a host that adds events or middleware of its own
// does it here (see examples/custom).
func registerChat(events chatmux.Router, st store.Store, logger *slog.Logger) string {
	cfg := chat.DefaultConfig()
	cfg.Store = st
	cfg.Logger = logger
	svc := chat.New(cfg)
	svc.Register(events)
	return "/messaging/"
}
