package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/chatmux/chatmux/client"
)

// Config is what the bot needs to run.
type Config struct {
	// URL is the chat server's WebSocket endpoint.
	URL string
	// Token is the bot's access token (a JWT of the example server).
	Token string
	// User is the development sign-in name (?user=), when there is no
	// token.
	User string
	// Name is the bot's username, to recognise its own messages (default:
	// User, or the token's "username" claim).
	Name string
	// Logger receives what the bot does (default: discarded).
	Logger *slog.Logger
	// Backoff sets the reconnect delays (zero: the client's defaults).
	Backoff client.Backoff
	// Now tells the time for /time (default time.Now).
	Now func() time.Time
}

// helpText is the answer to /help.
const helpText = "Commands: /help (this list), /echo &lt;text&gt; (says text back), /time (the time, UTC)."

// bot answers commands in the rooms it is a member of.
type bot struct {
	cfg    Config
	name   string
	logger *slog.Logger
	c      *client.Client

	mu sync.Mutex
	// handled is the last seq the bot looked at, per room: it never
	// answers a message twice.
	handled map[string]int64
}

// Run connects the bot and serves until ctx ends or the client stops for
// good (the credentials are refused, the user was deleted).
func Run(ctx context.Context, cfg Config) error {
	b, err := newBot(cfg)
	if err != nil {
		return err
	}
	b.c.Start()
	defer b.c.Close()
	select {
	case <-ctx.Done():
		return nil
	case <-b.c.Stopped():
		return fmt.Errorf("bot: the client stopped: %w", b.c.Err())
	}
}

func newBot(cfg Config) (*bot, error) {
	if cfg.URL == "" {
		return nil, errors.New("bot: no server URL")
	}
	if cfg.Token == "" && cfg.User == "" {
		return nil, errors.New("bot: give a token or a development user name")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	name := cfg.Name
	if name == "" {
		name = cfg.User
	}
	if name == "" {
		name = tokenUsername(cfg.Token)
	}
	if name == "" {
		return nil, errors.New("bot: cannot tell the bot's username from the token: set its name")
	}
	b := &bot{cfg: cfg, name: name, logger: cfg.Logger, handled: map[string]int64{}}
	c, err := client.New(client.Options{
		URL:     cfg.URL,
		Token:   cfg.Token,
		User:    cfg.User,
		Backoff: cfg.Backoff,
		// The bot tracks a room from the first message it sees there live,
		// not from its history: it answers what is said after it joined.
		NoAutoTrack: true,
		Logger:      cfg.Logger,
		Handlers: client.Handlers{
			State:          b.onState,
			Message:        b.onMessage,
			RoomCreate:     b.onRoomCreate,
			RoomAddMembers: b.onAddMembers,
			RoomRemoved:    b.onRoomRemoved,
			SendFailed: func(_, roomID string, err error) {
				b.logger.Warn("bot: the server refused a message", "room", roomID, "err", err)
			},
			Error: func(err error) { b.logger.Warn("bot: client error", "err", err) },
		},
	})
	if err != nil {
		return nil, err
	}
	b.c = c
	return b, nil
}

// tokenUsername reads the "username" claim of a JWT, without checking it
// (the server does): only to recognise the bot's own messages.
func tokenUsername(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var claims struct {
		Username string `json:"username"`
	}
	if json.Unmarshal(raw, &claims) != nil {
		return ""
	}
	return claims.Username
}

// onState tracks the bot's rooms from their newest message on at the first
// connection; after a reconnect the client catches them up itself.
func (b *bot) onState(s client.StateChange) {
	b.logger.Info("bot: connection", "state", s.State.String(), "reason", s.Reason, "code", s.Code)
	if s.State != client.StateConnected || s.Reason != "connect" {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		rooms, err := b.c.ListRooms(ctx)
		if err != nil {
			b.logger.Warn("bot: failed to list the rooms", "err", err)
			return
		}
		for _, r := range rooms {
			var last int64
			if r.LastMessage != nil {
				last = r.LastMessage.Seq
			}
			b.track(r.ID, last)
		}
	}()
}

// track starts answering a room after seq.
func (b *bot) track(roomID string, seq int64) {
	b.mu.Lock()
	if seq > b.handled[roomID] {
		b.handled[roomID] = seq
	}
	seq = b.handled[roomID]
	b.mu.Unlock()
	b.c.TrackRoom(roomID, seq)
}

func (b *bot) onRoomCreate(r client.RoomDetail) {
	for _, u := range r.Members() {
		if u.Username == b.name && (r.Creator == nil || r.Creator.Username != b.name) {
			b.greet(r.ID)
		}
	}
}

func (b *bot) onAddMembers(m client.MembersDispatch) {
	for _, n := range m.NewMembers {
		if n == b.name {
			b.greet(m.Room.ID)
		}
	}
}

func (b *bot) onRoomRemoved(roomID, reason string) {
	b.mu.Lock()
	delete(b.handled, roomID)
	b.mu.Unlock()
	b.logger.Info("bot: left a room", "room", roomID, "reason", reason)
}

// greet says hello in a room the bot was added to; its own message is the
// first the bot sees there live, from which it tracks the room.
func (b *bot) greet(roomID string) {
	b.logger.Info("bot: added to a room", "room", roomID)
	b.say(roomID, "", "Hello, I am "+b.name+". "+helpText)
}

func (b *bot) say(roomID, parentID, content string) {
	if _, err := b.c.Enqueue(client.OutgoingMessage{RoomID: roomID, Content: content, ParentMessageID: parentID}); err != nil {
		b.logger.Warn("bot: failed to send", "room", roomID, "err", err)
	}
}

// onMessage answers the commands among the messages of the bot's rooms,
// each once.
func (b *bot) onMessage(m *client.Message) {
	b.mu.Lock()
	last, known := b.handled[m.Room.ID]
	if m.Seq <= last {
		b.mu.Unlock()
		return
	}
	b.handled[m.Room.ID] = m.Seq
	b.mu.Unlock()
	if !known {
		// The first live message of a room the bot just joined.
		b.c.TrackRoom(m.Room.ID, m.Seq)
	}
	if m.IsSystem || m.Sender == nil || m.Sender.Username == b.name {
		return
	}
	reply, ok := b.answer(m.Content)
	if ok {
		b.say(m.Room.ID, m.ID, reply)
	}
}

// answer returns the bot's answer to a message's content, and false for
// a message that is not a command.
func (b *bot) answer(content string) (string, bool) {
	text := strings.TrimSpace(content)
	if !strings.HasPrefix(text, "/") {
		return "", false
	}
	cmd, arg, _ := strings.Cut(text, " ")
	switch cmd {
	case "/help":
		return helpText, true
	case "/echo":
		arg = strings.TrimSpace(arg)
		if arg == "" {
			return "Usage: /echo &lt;text&gt;", true
		}
		return arg, true
	case "/time":
		return b.cfg.Now().UTC().Format(time.RFC3339), true
	}
	return "Unknown command " + cmd + ". Try /help.", true
}
