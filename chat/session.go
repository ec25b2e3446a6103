package chat

import (
	"errors"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/groups"
	"github.com/chatmux/chatmux/store"
)

// connSessionKey is the connection value that holds the store's session id.
const connSessionKey = "chat.session_id"

// handleConnect handles $connect: it records the authenticated identity in the
// store (UpsertUser), opens a session for the connection, joins the
// connection to the group of every room its user belongs to (from the
// store, docs/protocol.md#diff-subscriptions; the user's own group is
// joined by the server)
// announces the user online when they were not (docs/protocol.md#presence)
// and, when notifications are enabled, sends chat.notifications to this
// socket only. An anonymous connection is closed with 4001, a deleted
// user's with 4011.
func (s *Service) handleConnect(c *chatmux.Context) error {
	u := c.User()
	if u == nil {
		return errNoUser
	}
	ctx := c.Context()
	if _, err := s.st.UpsertUser(ctx, store.User{ID: u.ID, Username: u.Username, Email: u.Email,
		FirstName: u.FirstName, LastName: u.LastName}); err != nil {
		return connectError(err)
	}
	sess, err := s.openSession(c, u, true)
	if err != nil {
		return err
	}
	rooms, err := s.st.UserRoomIDs(ctx, u.ID)
	if err != nil {
		return StoreError(err)
	}
	for _, id := range rooms {
		if err := c.Join(groups.Room(id.String())); err != nil {
			return brokerError(err)
		}
	}
	// A removal that committed after the first read may have sent its
	// LeaveUser before this connection joined: read again and leave what
	// is gone. (Additions reach the connection through its user group,
	// which it joined before the handshake.)
	again, err := s.st.UserRoomIDs(ctx, u.ID)
	if err != nil {
		return StoreError(err)
	}
	still := make(map[uuid.UUID]bool, len(again))
	for _, id := range again {
		still[id] = true
	}
	for _, id := range rooms {
		if !still[id] {
			if err := c.Leave(groups.Room(id.String())); err != nil {
				return brokerError(err)
			}
		}
	}
	if sess.WentOnline && len(again) > 0 {
		s.announceNamed(ctx, ev(c), []store.Presence{{UserID: u.ID, Online: true, LastSeen: sess.LastSeen}},
			map[int64]string{u.ID: u.Username})
	}
	if !s.cfg.Notifications {
		return nil
	}
	pending, err := s.st.PendingNotifications(ctx, u.ID)
	if err != nil {
		return StoreError(err)
	}
	data, err := s.notificationsJSON(pending)
	if err != nil {
		return chatmux.Internal(err)
	}
	return send(c, "chat.notifications", data)
}

// connectError maps a store error at $connect: a deleted user (a user
// deleted between the two steps too) closes the connection with 4011
// (docs/protocol.md#deleted-users); the rest as StoreError.
func connectError(err error) error {
	if errors.Is(err, store.ErrUserDeleted) {
		return chatmux.UserDeleted(err)
	}
	return StoreError(err)
}

// openSession opens the connection's session, on this node; with
// markOnline it also flips the user's announced presence to online when it
// was not (Session.WentOnline, docs/protocol.md#presence): $connect then
// announces them (a second tab, a reload within the grace flip nothing).
func (s *Service) openSession(c *chatmux.Context, u *chatmux.User, markOnline bool) (store.Session, error) {
	sess, err := s.st.CreateSession(c.Context(), store.NewSession{UserID: u.ID, ConnID: c.Conn().ID(), NodeID: s.cfg.NodeID,
		MarkOnline: markOnline})
	if err != nil {
		return store.Session{}, connectError(err)
	}
	c.Conn().SetValue(connSessionKey, sess.ID)
	return sess, nil
}

// handleDisconnect handles $disconnect: it closes the connection's session (the
// store deletes it and records when the user was last seen). The server
// has already taken the connection out of every group.
func (s *Service) handleDisconnect(c *chatmux.Context) error {
	id, ok := sessionID(c)
	if !ok {
		return nil
	}
	return StoreError(s.st.CloseSession(c.Context(), id))
}

func sessionID(c *chatmux.Context) (int64, bool) {
	if c.Conn() == nil {
		return 0, false
	}
	v, ok := c.Conn().Value(connSessionKey)
	if !ok {
		return 0, false
	}
	id, ok := v.(int64)
	return id, ok
}

var heartbeatOK = []byte(`{"status":"success"}`)

// handleHeartbeat handles session.heartbeat: it sets the last_seen of the
// session and of its user to now and replies {"status": "success"} to this
// socket. A session that no longer exists (expired as its node's, when
// this node could not reach the store for longer than the nodes' expiry)
// is opened again.
func (s *Service) handleHeartbeat(c *chatmux.Context) error {
	u, err := user(c)
	if err != nil {
		return err
	}
	if id, ok := sessionID(c); ok {
		if _, err := s.st.TouchSession(c.Context(), id); err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				return StoreError(err)
			}
			// Announced online again, if at all, by the next sweep.
			if _, err := s.openSession(c, u, false); err != nil {
				return err
			}
		}
	}
	return c.ReplyRaw(heartbeatOK)
}
