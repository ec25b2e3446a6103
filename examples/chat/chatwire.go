package main

import (
	"log/slog"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/chat"
	"github.com/chatmux/chatmux/middleware"
	"github.com/chatmux/chatmux/store"
)

// wsPath is where the WebSocket endpoint is mounted.
const wsPath = "/messaging/"

// registerChat registers the chat domain's events (the 16 events of the
// protocol, $connect and $disconnect) on events, with message.send limited
// per user to sendLimit (none when its Events is 0: past it, 4029). It is
// the one place this program touches package chat: a host that adds events
// or middleware of its own does it here (see examples/custom).
func registerChat(events chatmux.Router, st store.Store, logger *slog.Logger, sendLimit rateSpec) {
	cfg := chat.DefaultConfig()
	cfg.Store = st
	cfg.Logger = logger
	svc := chat.New(cfg)
	m := svc.Events()
	if sendLimit.Events > 0 {
		m[chat.EventMessageSend] = middleware.RateLimit(sendLimit.Events, sendLimit.Per)(m[chat.EventMessageSend])
	}
	chat.RegisterEvents(events, m)
}
