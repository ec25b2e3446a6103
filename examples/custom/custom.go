// Command custom is the "custom consumer" of django-realtime-chat-messaging
// done the chatmux way: no subclassing, only an event map, middleware and
// plain functions.
//
// On top of the default chat protocol it adds:
//   - message.pin: room admins only; message.pinned goes to the room;
//   - message.flag: any member; message.flagged goes to the room and
//     moderation.alert to every device of the room's admins;
//   - message.analytics: the event counts of this server, to this socket;
//   - a per-user rate limit on message.send (4029 past the limit);
//   - analytics: every event counted by pattern and outcome;
//   - $connect/$disconnect logging with the connection's duration;
//   - message.typing removed from the default map ("invalid event type").
//
// Run it with `go run ./examples/custom` and connect to
// ws://127.0.0.1:8081/messaging/?user=<username> (development
// authentication: ids are assigned by the store).
package main

import (
	"encoding/json"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/chat"
	"github.com/chatmux/chatmux/middleware"
)

// Options configures the custom event map.
type Options struct {
	// SendLimit and SendPer bound message.send per user (30 per minute,
	// as the package's example).
	SendLimit int
	SendPer   time.Duration
	Logger    *slog.Logger
}

// Analytics counts events by pattern and outcome.
type Analytics struct {
	mu     sync.Mutex
	counts map[string]map[string]int
}

// NewAnalytics returns empty counters.
func NewAnalytics() *Analytics { return &Analytics{counts: map[string]map[string]int{}} }

// Middleware counts each event after its handler ran.
func (a *Analytics) Middleware(next chatmux.Handler) chatmux.Handler {
	return func(c *chatmux.Context) error {
		err := next(c)
		pattern := c.Pattern()
		if pattern == "" {
			pattern = "unmatched"
		}
		a.mu.Lock()
		if a.counts[pattern] == nil {
			a.counts[pattern] = map[string]int{}
		}
		a.counts[pattern][middleware.Outcome(err)]++
		a.mu.Unlock()
		return err
	}
}

// Snapshot returns a copy of the counts: pattern → outcome → count.
func (a *Analytics) Snapshot() map[string]map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]map[string]int, len(a.counts))
	for p, m := range a.counts {
		out[p] = make(map[string]int, len(m))
		for o, n := range m {
			out[p][o] = n
		}
	}
	return out
}

// Pins remembers pinned messages per room. The example keeps them in
// memory; a real application would store them (for instance as a message
// extra field registered with chat.Config.ExtraMessageFields).
type Pins struct {
	mu   sync.Mutex
	pins map[uuid.UUID][]uuid.UUID
}

// Pin records a pinned message and reports whether it was new.
func (p *Pins) Pin(room, msg uuid.UUID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pins == nil {
		p.pins = map[uuid.UUID][]uuid.UUID{}
	}
	for _, m := range p.pins[room] {
		if m == msg {
			return false
		}
	}
	p.pins[room] = append(p.pins[room], msg)
	return true
}

// Room returns the pinned messages of a room in pin order.
func (p *Pins) Room(room uuid.UUID) []uuid.UUID {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]uuid.UUID(nil), p.pins[room]...)
}

// Events builds the custom event router on top of the chat service.
func Events(svc *chat.Service, analytics *Analytics, pins *Pins, opts Options) chatmux.Router {
	if opts.SendLimit <= 0 {
		opts.SendLimit, opts.SendPer = 30, time.Minute
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	c := &custom{svc: svc, pins: pins, analytics: analytics, log: logger}

	r := chatmux.NewRouter()
	r.Use(middleware.RecovererWith(logger), analytics.Middleware)

	// The default event map, customised like EVENT_MAPPER: wrap, remove,
	// add.
	events := svc.Events()
	events[chatmux.EventConnect] = c.logConnect(events[chatmux.EventConnect])
	events[chatmux.EventDisconnect] = c.logDisconnect(events[chatmux.EventDisconnect])
	events[chat.EventMessageSend] = middleware.RateLimit(opts.SendLimit, opts.SendPer)(events[chat.EventMessageSend])
	delete(events, chat.EventMessageTyping)
	chat.RegisterEvents(r, events)

	// The host's own events, counted as activity for presence
	// (docs/protocol.md#presence) as the default events are.
	own := r.With(svc.Activity)
	own.With(svc.RequireRoomAdmin("room_id")).HandleFunc("message.pin", c.pin)
	own.With(svc.RequireRoomMember("room_id")).HandleFunc("message.flag", c.flag)
	own.With(middleware.RequireAuth).HandleFunc("message.analytics", c.analyticsEvent)
	return r
}

type custom struct {
	svc       *chat.Service
	pins      *Pins
	analytics *Analytics
	log       *slog.Logger
}

func (cu *custom) logConnect(next chatmux.Handler) chatmux.Handler {
	return func(c *chatmux.Context) error {
		err := next(c)
		cu.log.Info("connected", "user", c.User().Username, "conn", c.Conn().ID(), "remote", c.Conn().RemoteAddr(), "outcome", middleware.Outcome(err))
		return err
	}
}

func (cu *custom) logDisconnect(next chatmux.Handler) chatmux.Handler {
	return func(c *chatmux.Context) error {
		err := next(c)
		cu.log.Info("disconnected", "user", c.User().Username, "conn", c.Conn().ID(),
			"duration", time.Since(c.Conn().ConnectedAt()).Round(time.Millisecond).String())
		return err
	}
}

type messageRef struct {
	RoomID    string `json:"room_id"`
	MessageID string `json:"message_id"`
	Reason    string `json:"reason"`
}

// messageInRoom parses message_id and checks that it belongs to the room
// the middleware resolved.
func (cu *custom) messageInRoom(c *chatmux.Context) (uuid.UUID, uuid.UUID, messageRef, error) {
	room, _, _ := chat.RoomFrom(c)
	var in messageRef
	if err := c.Bind(&in); err != nil {
		return room, uuid.Nil, in, err
	}
	if in.MessageID == "" {
		return room, uuid.Nil, in, chatmux.FieldError("message_id", "This field is required.")
	}
	id, err := uuid.Parse(in.MessageID)
	if err != nil {
		return room, uuid.Nil, in, chatmux.FieldError("message_id", "Must be a valid UUID.")
	}
	msgs, err := cu.svc.Store().Messages(c.Context(), []uuid.UUID{id})
	if err != nil {
		return room, uuid.Nil, in, chat.StoreError(err)
	}
	if len(msgs) != 1 || msgs[0].RoomID != room || msgs[0].IsDeleted {
		return room, uuid.Nil, in, chatmux.NotFound()
	}
	return room, id, in, nil
}

// pin handles message.pin: {"room_id", "message_id"} from a room admin.
func (cu *custom) pin(c *chatmux.Context) error {
	room, id, _, err := cu.messageInRoom(c)
	if err != nil {
		return err
	}
	if !cu.pins.Pin(room, id) {
		return chatmux.Validation("Message is already pinned.")
	}
	msg, err := cu.svc.MessageJSON(c.Context(), id)
	if err != nil {
		return err
	}
	return c.Broadcast(chat.RoomGroup(room), "message.pinned", map[string]any{
		"room_id":   room,
		"message":   msg[0],
		"pinned_by": c.User().Username,
	})
}

// flag handles message.flag: {"room_id", "message_id", "reason"} from any
// member. The room sees message.flagged; its admins, on all their devices,
// get moderation.alert.
func (cu *custom) flag(c *chatmux.Context) error {
	room, id, in, err := cu.messageInRoom(c)
	if err != nil {
		return err
	}
	if len(in.Reason) > 500 {
		return chatmux.FieldError("reason", "Ensure this field has no more than 500 characters.")
	}
	flagged := map[string]any{
		"room_id":    room,
		"message_id": id,
		"flagged_by": c.User().Username,
		"reason":     cu.svc.Sanitize(in.Reason),
	}
	if err := c.Broadcast(chat.RoomGroup(room), "message.flagged", flagged); err != nil {
		return err
	}
	admins, err := cu.svc.RoomAdmins(c.Context(), room)
	if err != nil {
		return err
	}
	msg, err := cu.svc.MessageJSON(c.Context(), id)
	if err != nil {
		return err
	}
	alert := map[string]any{"room_id": room, "message": msg[0], "flagged_by": c.User().Username, "reason": flagged["reason"]}
	data, err := json.Marshal(alert) // encoded once for every admin
	if err != nil {
		return chatmux.Internal(err)
	}
	for _, uid := range admins {
		if err := c.SendUser(uid, "moderation.alert", json.RawMessage(data)); err != nil {
			return err
		}
	}
	return nil
}

// analyticsEvent handles message.analytics: the counts, to this socket.
func (cu *custom) analyticsEvent(c *chatmux.Context) error {
	snap := cu.analytics.Snapshot()
	patterns := make([]string, 0, len(snap))
	for p := range snap {
		patterns = append(patterns, p)
	}
	sort.Strings(patterns)
	type row struct {
		Pattern  string         `json:"pattern"`
		Outcomes map[string]int `json:"outcomes"`
	}
	rows := make([]row, 0, len(patterns))
	for _, p := range patterns {
		rows = append(rows, row{p, snap[p]})
	}
	return c.Send("message.analytics", map[string]any{"events": rows})
}
