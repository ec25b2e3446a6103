package main

import (
	"log/slog"
	"time"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/chat"
	"github.com/chatmux/chatmux/middleware"
	"github.com/chatmux/chatmux/store"
	"github.com/chatmux/chatmux/webhook"
)

// wsPath is where the WebSocket endpoint is mounted.
const wsPath = "/messaging/"

// searchLimit bounds each user's user.search events: 30 at once, then
// one every 2 s (past it, 4029).
var searchLimit = rateSpec{Events: 30, Per: time.Minute}

// chatSettings are the settings of the chat domain that this program sets.
type chatSettings struct {
	// Store persists everything.
	Store store.Store
	// Logger receives what the service does not report to a client.
	Logger *slog.Logger
	// SendLimit limits message.send per user (none when its Events is
	// 0: past it, 4029).
	SendLimit rateSpec
	// StoreTimeout bounds every store call of a handler (0: the chat
	// package's default, 5 s): past it, 4013.
	StoreTimeout time.Duration
	// Webhooks sends the offline webhooks (nil: off).
	Webhooks *webhook.Dispatcher
	// InactivityThreshold, PresenceGrace and PresenceInterval are the
	// presence settings (0: the chat package's defaults).
	InactivityThreshold, PresenceGrace, PresenceInterval time.Duration
}

// registerChat registers the chat domain's events (the events of the
// protocol, $connect, $disconnect and $resync) on events, and returns the
// service: its Store (every call bounded by StoreTimeout), its NodeID and
// its PublishFailures. It is the one place this program configures package
// chat: a host that adds events or middleware of its own does it here
// (see examples/custom).
func registerChat(events chatmux.Router, s chatSettings) *chat.Service {
	cfg := chat.DefaultConfig()
	cfg.Store = s.Store
	cfg.Logger = s.Logger
	if s.StoreTimeout > 0 {
		cfg.StoreTimeout = s.StoreTimeout
	}
	cfg.Webhooks = s.Webhooks
	cfg.InactivityThreshold = s.InactivityThreshold
	cfg.PresenceGrace = s.PresenceGrace
	cfg.PresenceInterval = s.PresenceInterval
	svc := chat.New(cfg)
	m := svc.Events()
	if s.SendLimit.Events > 0 {
		m[chat.EventMessageSend] = middleware.RateLimit(s.SendLimit.Events, s.SendLimit.Per)(m[chat.EventMessageSend])
	}
	// A search box sends a query per pause in typing; walking the whole
	// directory prefix by prefix takes many more.
	m[chat.EventUserSearch] = middleware.RateLimit(searchLimit.Events, searchLimit.Per)(m[chat.EventUserSearch])
	chat.RegisterEvents(events, m)
	return svc
}
