package chat

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/store"
)

// Presence (docs/protocol.md#presence): who is online, announced to the
// rooms a user belongs to when it changes.
const (
	// EventPresenceQuery asks for the presence of a room's members or of
	// given users.
	EventPresenceQuery = "presence.query"
	// DispatchPresence announces that a user went online or offline, to
	// each room they belong to (in a channel: its creator and moderators
	// only).
	DispatchPresence = "presence.dispatch"
	// DispatchPresenceQuery answers EventPresenceQuery, to the asking
	// socket.
	DispatchPresenceQuery = "presencequery.dispatch"
)

// Defaults of the presence settings of Config.
const (
	DefaultInactivityThreshold = 60 * time.Second
	DefaultPresenceGrace       = 5 * time.Second
	DefaultPresenceInterval    = 2 * time.Second
)

// MaxPresenceUsers bounds the user_ids of one presence.query.
const MaxPresenceUsers = 100

// activity collects the sessions whose connections sent an event since the
// last flush (docs/protocol.md#presence): one store call per
// PresenceInterval touches them all.
type activity struct {
	mu  sync.Mutex
	ids map[int64]struct{}
}

func (a *activity) add(id int64) {
	a.mu.Lock()
	if a.ids == nil {
		a.ids = map[int64]struct{}{}
	}
	a.ids[id] = struct{}{}
	a.mu.Unlock()
}

// take empties the set and returns what it held.
func (a *activity) take() []int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]int64, 0, len(a.ids))
	for id := range a.ids {
		out = append(out, id)
	}
	a.ids = nil
	return out
}

// Activity is middleware that counts an event as activity of its
// connection's session (docs/protocol.md#presence): RunPresence writes the
// sessions that had some in one store call per PresenceInterval, and a
// session keeps its user online while it had activity within
// InactivityThreshold. Events() wraps every event of the default map with
// it but $connect, $disconnect, $resync and session.heartbeat (which
// writes at once); wrap a host's own events with it too:
//
//	events.With(svc.Activity).Handle("message.pin", pin)
func (s *Service) Activity(next chatmux.Handler) chatmux.Handler {
	return func(c *chatmux.Context) error {
		if id, ok := sessionID(c); ok {
			s.activity.add(id)
		}
		return next(c)
	}
}

// wirePresence is the data of presence.dispatch, and (without room_id) one
// user of presencequery.dispatch.
type wirePresence struct {
	RoomID   string  `json:"room_id,omitempty"`
	UserID   int64   `json:"user_id"`
	Username string  `json:"username"`
	Online   bool    `json:"online"`
	LastSeen *string `json:"last_seen"`
}

func presenceJSON(p store.Presence, username string) wirePresence {
	w := wirePresence{UserID: p.UserID, Username: username, Online: p.Online}
	if !p.LastSeen.IsZero() {
		ts := Timestamp(p.LastSeen)
		w.LastSeen = &ts
	}
	return w
}

// announce publishes the presence changes to each room of each user where
// their presence is shown. Failures are logged and counted
// (PublishFailures): the change is stored and is not announced again.
func (s *Service) announce(ctx context.Context, o origin, changes []store.Presence) {
	if len(changes) == 0 {
		return
	}
	ids := make([]int64, len(changes))
	for i, p := range changes {
		ids[i] = p.UserID
	}
	us, err := s.st.Users(ctx, ids)
	if err != nil {
		s.presenceFailed(ctx, o, "failed to read the users of presence changes", err)
		return
	}
	names := make(map[int64]string, len(us))
	for _, u := range us {
		names[u.ID] = u.Username
	}
	s.announceNamed(ctx, o, changes, names)
}

// announceNamed is announce with the users' names known (by user id).
func (s *Service) announceNamed(ctx context.Context, o origin, changes []store.Presence, names map[int64]string) {
	ids := make([]int64, len(changes))
	for i, p := range changes {
		ids[i] = p.UserID
	}
	shown, err := s.st.PresenceRooms(ctx, ids)
	if err != nil {
		s.presenceFailed(ctx, o, "failed to read the rooms of presence changes", err)
		return
	}
	for _, p := range changes {
		s.publishPresence(ctx, o, p, names[p.UserID], shown[p.UserID])
	}
}

// publishPresence publishes presence.dispatch about p to each of rooms.
func (s *Service) publishPresence(ctx context.Context, o origin, p store.Presence, username string, rooms []uuid.UUID) {
	w := presenceJSON(p, username)
	for _, id := range rooms {
		w.RoomID = id.String()
		_, _ = s.broadcast(ctx, o, RoomGroup(id), DispatchPresence, w)
	}
}

func (s *Service) presenceFailed(ctx context.Context, o origin, msg string, err error) {
	s.publishFailures.Add(1)
	s.log.WarnContext(ctx, "chat: "+msg, "event", o.name, "err", err)
}

// RunPresence keeps presence (docs/protocol.md#presence) until ctx ends:
// every Config.PresenceInterval it flushes the activity of this node's
// connections (one TouchSessions call) and sweeps the store for users to
// announce online or offline, publishing each change it flipped through
// the attached server (Attach). Every node that serves connections runs
// it: without it, events other than session.heartbeat do not count as
// activity and nobody is ever announced offline. A sweep runs only while a
// server is attached; failures are logged and retried at the next tick.
func (s *Service) RunPresence(ctx context.Context) {
	t := time.NewTicker(s.cfg.PresenceInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.PresenceTick(ctx)
	}
}

// PresenceTick is one step of RunPresence: the flush, then the sweep. It
// returns the changes this node announced.
func (s *Service) PresenceTick(ctx context.Context) []store.Presence {
	if ids := s.activity.take(); len(ids) > 0 {
		if err := s.st.TouchSessions(ctx, ids); err != nil {
			if ctx.Err() == nil {
				s.log.WarnContext(ctx, "chat: failed to record the activity of sessions", "sessions", len(ids), "err", err)
			}
			for _, id := range ids {
				s.activity.add(id)
			}
		}
	}
	srv := s.srv.Load()
	if srv == nil {
		return nil
	}
	changes, err := s.st.SweepPresence(ctx, s.cfg.InactivityThreshold, s.cfg.PresenceGrace)
	if err != nil {
		if ctx.Err() == nil {
			s.log.WarnContext(ctx, "chat: presence sweep failed", "err", err)
		}
		return nil
	}
	s.announce(ctx, origin{srv: srv, name: "presence.sweep"}, changes)
	return changes
}

// handlePresenceQuery handles presence.query: data {room_id} (a member's
// room: its members, in a channel its creator and moderators and the
// asker) or {user_ids: [...]} (1 to MaxPresenceUsers ids: those who share
// a room with the asker where their presence is shown, and the asker);
// exactly one of the two. It answers presencequery.dispatch {room_id?,
// users: [{user_id, username, online, last_seen}]} ordered by user id,
// online being the announced state (docs/protocol.md#presence-query).
func (s *Service) handlePresenceQuery(c *chatmux.Context) error {
	u, f, err := readEvent(c)
	if err != nil {
		return err
	}
	ctx := c.Context()
	_, hasRoom := f["room_id"]
	rawIDs, hasUsers := f["user_ids"]
	if hasRoom == hasUsers {
		return chatmux.Validation("Exactly one of room_id and user_ids must be provided")
	}
	var out struct {
		RoomID string         `json:"room_id,omitempty"`
		Users  []wirePresence `json:"users"`
	}
	names := map[int64]string{}
	var ids []int64
	if hasRoom {
		roomID, m, err := s.roomAccess(c, f, "room_id")
		if err != nil {
			return err
		}
		if !m.IsMember {
			return chatmux.PermissionDenied(msgDeniedRoom)
		}
		d, err := s.st.RoomDetail(ctx, roomID)
		if err != nil {
			return StoreError(err)
		}
		out.RoomID = roomID.String()
		shown := map[int64]bool{u.ID: true}
		if d.Type == store.Channel {
			for _, a := range d.Admins {
				shown[a.ID] = true
			}
			if d.Creator != nil {
				shown[d.Creator.ID] = true
			}
		}
		for _, mb := range d.Members {
			if d.Type != store.Channel || shown[mb.ID] {
				ids = append(ids, mb.ID)
				names[mb.ID] = mb.Username
			}
		}
	} else {
		if ids, err = userIDList("user_ids", rawIDs); err != nil {
			return err
		}
		if len(ids) == 0 {
			return chatmux.FieldError("user_ids", msgEmptyList)
		}
		if len(ids) > MaxPresenceUsers {
			return chatmux.FieldError("user_ids", "Ensure this field has no more than 100 elements.")
		}
		if ids, err = s.sharedUsers(ctx, u.ID, ids); err != nil {
			return err
		}
		us, err := s.st.Users(ctx, ids)
		if err != nil {
			return StoreError(err)
		}
		for _, x := range us {
			names[x.ID] = x.Username
		}
	}
	ps, err := s.st.Presence(ctx, ids)
	if err != nil {
		return StoreError(err)
	}
	out.Users = make([]wirePresence, 0, len(ps))
	for _, p := range ps {
		out.Users = append(out.Users, presenceJSON(p, names[p.UserID]))
	}
	return send(c, DispatchPresenceQuery, out)
}

// sharedUsers returns the ids among ids that share a room with askerID
// where their presence is shown, and askerID itself: two store reads
// whatever the number of ids.
func (s *Service) sharedUsers(ctx context.Context, askerID int64, ids []int64) ([]int64, error) {
	rooms, err := s.st.UserRoomIDs(ctx, askerID)
	if err != nil {
		return nil, StoreError(err)
	}
	mine := make(map[uuid.UUID]bool, len(rooms))
	for _, id := range rooms {
		mine[id] = true
	}
	shown, err := s.st.PresenceRooms(ctx, ids)
	if err != nil {
		return nil, StoreError(err)
	}
	out := []int64{}
	for _, id := range ids {
		if id == askerID {
			out = append(out, id)
			continue
		}
		for _, room := range shown[id] {
			if mine[room] {
				out = append(out, id)
				break
			}
		}
	}
	return out, nil
}

// TouchSessions implements store.Store under the deadline.
func (b *boundedStore) TouchSessions(ctx context.Context, sessionIDs []int64) error {
	return b.exec(ctx, func(ctx context.Context) error { return b.st.TouchSessions(ctx, sessionIDs) })
}

// SweepPresence implements store.Store under the deadline.
func (b *boundedStore) SweepPresence(ctx context.Context, threshold, grace time.Duration) ([]store.Presence, error) {
	return bounded(ctx, b.d, func(ctx context.Context) ([]store.Presence, error) {
		return b.st.SweepPresence(ctx, threshold, grace)
	})
}

// Presence implements store.Store under the deadline.
func (b *boundedStore) Presence(ctx context.Context, userIDs []int64) ([]store.Presence, error) {
	return bounded(ctx, b.d, func(ctx context.Context) ([]store.Presence, error) { return b.st.Presence(ctx, userIDs) })
}

// PresenceRooms implements store.Store under the deadline.
func (b *boundedStore) PresenceRooms(ctx context.Context, userIDs []int64) (map[int64][]uuid.UUID, error) {
	return bounded(ctx, b.d, func(ctx context.Context) (map[int64][]uuid.UUID, error) { return b.st.PresenceRooms(ctx, userIDs) })
}
