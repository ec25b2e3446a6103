package main

import (
	"log/slog"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/store"
)

// registerChat registers the chat domain's events (the 16 events of the
// protocol, $connect and $disconnect) on events and returns the path the
// WebSocket endpoint is mounted at.
//
// TODO(chat): the chat package has not landed yet; this registers nothing.
func registerChat(events chatmux.Router, st store.Store, logger *slog.Logger) string {
	_, _, _ = events, st, logger
	return "/messaging/"
}
