package chat_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/chat"
	"github.com/chatmux/chatmux/groups"
	"github.com/chatmux/chatmux/store"
)

func TestDefaults(t *testing.T) {
	cfg := chat.DefaultConfig()
	if cfg.SoftDelete || !cfg.Notifications || cfg.MaxPageSize != 100 || cfg.MaxMessageLength != 5000 ||
		cfg.MaxGroupParticipants != 1000 || cfg.MaxChannelSubscribers != 10000 {
		t.Fatalf("DefaultConfig: %+v", cfg)
	}
	got := chat.New(chat.Config{Store: e0()}).Config()
	if got.MaxGroupParticipants != chat.DefaultMaxGroupParticipants || got.MaxChannelSubscribers != chat.DefaultMaxChannelSubscribers ||
		got.MaxPageSize != chat.DefaultMaxPageSize || got.MaxMessageLength != chat.DefaultMaxMessageLength ||
		got.Logger != slog.Default() || got.InactivityThreshold != chat.DefaultInactivityThreshold ||
		got.PresenceGrace != chat.DefaultPresenceGrace || got.PresenceInterval != chat.DefaultPresenceInterval {
		t.Fatalf("New did not apply defaults: %+v", got)
	}
	for _, bad := range []chat.Config{{}, {Store: e0(), ExtraMessageFields: []string{"sender_id"}}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%+v) did not panic", bad)
				}
			}()
			chat.New(bad)
		}()
	}
	r := chatmux.NewRouter()
	chat.New(chat.Config{Store: e0()}).Register(r)
	want := []string{"$connect", "$disconnect", "$resync", "message.acknowledged", "message.modify", "message.react", "message.read",
		"message.send", "message.typing", "presence.query", "room.add_members", "room.create", "room.info", "room.join", "room.leave",
		"room.list", "room.messages", "room.modify", "room.remove_members", "session.heartbeat", "user.search"}
	eq(t, r.Routes(), want, "routes")
}

// failingBroker is the in-process broker whose Publish fails, after it has
// served the members on this node, while fail is set: what the Redis
// broker does while Redis is down.
type failingBroker struct {
	*groups.Memory
	fail atomic.Bool
}

func (b *failingBroker) Publish(ctx context.Context, group string, m *groups.Message) error {
	if err := b.Memory.Publish(ctx, group, m); err != nil {
		return err
	}
	if b.fail.Load() {
		return errors.New("broker unavailable")
	}
	return nil
}

// logRecords is a slog.Handler that keeps every record.
type logRecords struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logRecords) Enabled(context.Context, slog.Level) bool { return true }

func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}

func (h *logRecords) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecords) WithGroup(string) slog.Handler      { return h }

// find reports whether a record at level has a message that contains msg
// and attributes that include every pair of want.
func (h *logRecords) find(level slog.Level, msg string, want map[string]string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
outer:
	for _, r := range h.recs {
		if r.Level != level || !strings.Contains(r.Message, msg) {
			continue
		}
		attrs := map[string]string{}
		r.Attrs(func(a slog.Attr) bool {
			attrs[a.Key] = a.Value.String()
			return true
		})
		for k, v := range want {
			if attrs[k] != v {
				continue outer
			}
		}
		return true
	}
	return false
}

func (h *logRecords) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	for _, r := range h.recs {
		b.WriteString(r.Level.String() + " " + r.Message)
		r.Attrs(func(a slog.Attr) bool {
			b.WriteString(" " + a.String())
			return true
		})
		b.WriteString("\n")
	}
	return b.String()
}

// TestLogger: a dispatch that cannot be published, or a membership change
// that cannot reach every node, after the change was stored, is logged to
// Config.Logger and not reported to the sender, whose node has served its
// own connections (docs/protocol.md#faults).
func TestLogger(t *testing.T) {
	logs := &logRecords{}
	broker := &failingBroker{Memory: groups.NewMemory()}
	e := newEnvBroker(t, memoryStore, func(svc *chat.Service, r chatmux.Router) { svc.Register(r) }, broker,
		func(c *chat.Config) { c.Logger = slog.New(logs) })
	e.users(3)
	group := e.room(store.Group, 1, 2)
	c1, c2 := e.dial(1), e.dial(2)
	broker.fail.Store(true)

	c1.send(chat.EventMessageSend, map[string]any{"room_id": group.String(), "content": "stored"})
	for _, c := range []*client{c1, c2} {
		eq(t, path(t, c.expect(chat.DispatchMessage).obj(t), "content"), "stored", "local delivery")
	}
	// The sender also gets its answer by Reply (a duplicate here, where
	// the broker served this node before it failed).
	eq(t, path(t, c1.expect(chat.DispatchMessage).obj(t), "seq"), 1, "the sender's answer")
	c1.quiet() // events of a connection are handled in order: the send has returned
	if !logs.find(slog.LevelWarn, "failed to publish", map[string]string{"event": chat.EventMessageSend,
		"dispatch": chat.DispatchMessage, "group": chat.RoomGroup(group)}) {
		t.Fatalf("publish failure not logged; logs:\n%s", logs)
	}
	if page, err := e.st.MessagesPage(bg, group, 1, 10); err != nil || page.Total != 1 {
		t.Fatalf("message not stored: %+v %v", page, err)
	}

	c1.send(chat.EventRoomAddMembers, map[string]any{"room_id": group.String(), "members": []int{3}})
	c1.expect(chat.DispatchRoomAddMembers)
	c2.expect(chat.DispatchRoomAddMembers)
	c1.expect(chat.DispatchRoomAddMembers) // the requester's answer by Reply
	c1.quiet()
	if !logs.find(slog.LevelWarn, "failed to add a user's connections", map[string]string{"event": chat.EventRoomAddMembers,
		"user_id": "3", "group": chat.RoomGroup(group)}) {
		t.Fatalf("membership failure not logged; logs:\n%s", logs)
	}
	if m, err := e.st.Membership(bg, group, 3); err != nil || !m.IsMember {
		t.Fatalf("member not added: %+v %v", m, err)
	}
	c2.quiet()
	if n := e.svc.PublishFailures(); n != 3 {
		t.Fatalf("PublishFailures = %d, want 3 (a dispatch, a move, a dispatch)", n)
	}
}
