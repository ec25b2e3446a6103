package memory

import (
	"bytes"
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux/store"
)

// Store is the in-memory store.Store. The zero value is not usable; call New.
type Store struct {
	mu sync.RWMutex

	users      map[int64]*store.User
	byUsername map[string]int64
	sessions   map[int64]*store.Session
	nextSessID int64
	lastSeen   map[int64]time.Time  // by user
	nodes      map[string]time.Time // node heartbeats
	online     map[int64]bool       // announced presence, by user

	rooms     map[uuid.UUID]*room
	pairs     map[[2]int64]uuid.UUID
	userRooms map[int64]map[uuid.UUID]struct{}

	messages      map[uuid.UUID]*message
	notifications map[uuid.UUID]*notification
}

type member struct {
	admin bool
	perms map[store.Permission]struct{}
}

type room struct {
	r       store.Room
	members map[int64]*member
	msgs    []*message // seq order; hard-deleted messages removed
	clients map[clientKey]*message
}

type clientKey struct {
	sender int64
	id     string
}

type message struct {
	m           store.Message
	attachments []store.Attachment
	delivered   map[int64]struct{}
	receipts    map[int64]store.ReadReceipt
	reactions   map[int64]store.Reaction
	notes       map[uuid.UUID]struct{}
}

type notification struct {
	n          store.Notification
	recipients map[int64]struct{}
}

var _ store.Store = (*Store)(nil)

// New returns an empty in-memory store.
func New() *Store {
	return &Store{
		users:         map[int64]*store.User{},
		byUsername:    map[string]int64{},
		sessions:      map[int64]*store.Session{},
		lastSeen:      map[int64]time.Time{},
		nodes:         map[string]time.Time{},
		online:        map[int64]bool{},
		rooms:         map[uuid.UUID]*room{},
		pairs:         map[[2]int64]uuid.UUID{},
		userRooms:     map[int64]map[uuid.UUID]struct{}{},
		messages:      map[uuid.UUID]*message{},
		notifications: map[uuid.UUID]*notification{},
	}
}

// ---- helpers ----

func ctxErr(ctx context.Context) error { return ctx.Err() }

func pairKey(a, b int64) [2]int64 {
	if a > b {
		a, b = b, a
	}
	return [2]int64{a, b}
}

func uuidLess(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) }

func (s *Store) roomOf(id uuid.UUID) (*room, error) {
	r, ok := s.rooms[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	return r, nil
}

func copyRoom(r store.Room) store.Room {
	r.Preferences = r.Preferences.MustClone()
	r.Extra = r.Extra.MustClone()
	if r.LastMessageID != nil {
		id := *r.LastMessageID
		r.LastMessageID = &id
	}
	return r
}

func copyMessage(m store.Message) store.Message {
	m.Extra = m.Extra.MustClone()
	if m.ParentID != nil {
		id := *m.ParentID
		m.ParentID = &id
	}
	if m.ForwardedFromID != nil {
		id := *m.ForwardedFromID
		m.ForwardedFromID = &id
	}
	return m
}

func copyAttachment(a store.Attachment) store.Attachment {
	a.Metadata = a.Metadata.MustClone()
	return a
}

func (s *Store) copyNotification(n *notification) *store.Notification {
	c := n.n
	if c.ReactionID != nil {
		id := *c.ReactionID
		c.ReactionID = &id
	}
	c.Recipients = store.SortedInt64(slices.Collect(maps.Keys(n.recipients)))
	return &c
}

// ---- users ----

// UpsertUser implements store.Store.
func (s *Store) UpsertUser(ctx context.Context, u store.User) (store.User, error) {
	if err := ctxErr(ctx); err != nil {
		return store.User{}, err
	}
	if err := store.ValidateUser(u); err != nil {
		return store.User{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.liveUser(u.ID); err != nil {
		return store.User{}, err
	}
	if id, ok := s.byUsername[u.Username]; ok && id != u.ID {
		return store.User{}, store.ErrConflict
	}
	if old, ok := s.users[u.ID]; ok {
		delete(s.byUsername, old.Username)
	}
	c := u
	s.users[u.ID] = &c
	s.byUsername[u.Username] = u.ID
	return u, nil
}

// CreateUserByUsername implements store.Store.
func (s *Store) CreateUserByUsername(ctx context.Context, username string) (store.User, error) {
	if err := ctxErr(ctx); err != nil {
		return store.User{}, err
	}
	if err := store.ValidateUser(store.User{ID: 1, Username: username}); err != nil {
		return store.User{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.byUsername[username]; ok {
		return *s.users[id], nil
	}
	var max int64
	for id := range s.users {
		max = maxInt(max, id)
	}
	u := store.User{ID: max + 1, Username: username}
	s.users[u.ID] = &u
	s.byUsername[username] = u.ID
	return u, nil
}

func maxInt(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// Users implements store.Store.
func (s *Store) Users(ctx context.Context, ids []int64) ([]store.User, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []store.User{}
	for _, id := range store.SortedInt64(store.UniqueInt64(ids)) {
		if u, ok := s.users[id]; ok {
			out = append(out, *u)
		}
	}
	return out, nil
}

func (s *Store) user(id int64) store.User {
	if u, ok := s.users[id]; ok {
		return *u
	}
	return store.User{ID: id}
}

// ---- sessions and nodes ----

// CreateSession implements store.Store.
func (s *Store) CreateSession(ctx context.Context, ns store.NewSession) (store.Session, error) {
	if err := store.ValidateNewSession(ns); err != nil {
		return store.Session{}, err
	}
	if err := ctxErr(ctx); err != nil {
		return store.Session{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[ns.UserID]; !ok {
		return store.Session{}, store.ErrConflict
	}
	if err := s.liveUser(ns.UserID); err != nil {
		return store.Session{}, err
	}
	s.nextSessID++
	now := store.Now()
	sess := store.Session{ID: s.nextSessID, UserID: ns.UserID, ConnID: ns.ConnID, NodeID: ns.NodeID, LastSeen: now, Created: now}
	s.sessions[sess.ID] = &sess
	s.seen(ns.UserID, now)
	out := sess
	if ns.MarkOnline && !s.online[ns.UserID] {
		s.online[ns.UserID] = true
		out.WentOnline = true
	}
	return out, nil
}

// seen moves a user's last seen time forward to t. s.mu is held.
func (s *Store) seen(userID int64, t time.Time) {
	if u, ok := s.users[userID]; !ok || u.Deleted {
		return
	}
	if old, ok := s.lastSeen[userID]; !ok || t.After(old) {
		s.lastSeen[userID] = t
	}
}

// TouchSession implements store.Store.
func (s *Store) TouchSession(ctx context.Context, sessionID int64) (time.Time, error) {
	if err := ctxErr(ctx); err != nil {
		return time.Time{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[sessionID]
	if !ok {
		return time.Time{}, store.ErrNotFound
	}
	sess.LastSeen = store.Now()
	s.seen(sess.UserID, sess.LastSeen)
	return sess.LastSeen, nil
}

// CloseSession implements store.Store.
func (s *Store) CloseSession(ctx context.Context, sessionID int64) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess, ok := s.sessions[sessionID]; ok {
		delete(s.sessions, sessionID)
		s.seen(sess.UserID, store.Now())
	}
	return nil
}

// UserSessions implements store.Store.
func (s *Store) UserSessions(ctx context.Context, userID int64) ([]store.Session, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []store.Session{}
	for _, sess := range s.sessions {
		if sess.UserID == userID {
			out = append(out, *sess)
		}
	}
	slices.SortFunc(out, func(a, b store.Session) int { return cmpInt64(a.ID, b.ID) })
	return out, nil
}

// LastSeen implements store.Store.
func (s *Store) LastSeen(ctx context.Context, userIDs []int64) (map[int64]time.Time, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[int64]time.Time, len(userIDs))
	for _, id := range userIDs {
		if t, ok := s.lastSeen[id]; ok {
			out[id] = t
		}
	}
	return out, nil
}

// TouchNode implements store.Store.
func (s *Store) TouchNode(ctx context.Context, nodeID string) error {
	if err := store.ValidateNodeID(nodeID); err != nil {
		return err
	}
	if err := ctxErr(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nodes[nodeID] = time.Now()
	return nil
}

// ExpireNodes implements store.Store.
func (s *Store) ExpireNodes(ctx context.Context, maxAge time.Duration) (int, error) {
	if err := ctxErr(ctx); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	expired := map[string]bool{}
	for id, seen := range s.nodes {
		if now.Sub(seen) > maxAge {
			expired[id] = true
			delete(s.nodes, id)
		}
	}
	limit := store.Now().Add(-maxAge)
	n := 0
	for id, sess := range s.sessions {
		_, alive := s.nodes[sess.NodeID]
		switch {
		case alive:
			continue
		case expired[sess.NodeID]:
		case sess.LastSeen.Before(limit):
			// A session of no known node, not seen for maxAge.
		default:
			continue
		}
		delete(s.sessions, id)
		s.seen(sess.UserID, sess.LastSeen)
		n++
	}
	return n, nil
}

// RemoveNode implements store.Store.
func (s *Store) RemoveNode(ctx context.Context, nodeID string) (int, error) {
	if err := ctxErr(ctx); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.nodes, nodeID)
	now := store.Now()
	n := 0
	for id, sess := range s.sessions {
		if sess.NodeID == nodeID {
			delete(s.sessions, id)
			s.seen(sess.UserID, now)
			n++
		}
	}
	return n, nil
}

// ---- rooms ----

// CreateRoom implements store.Store.
func (s *Store) CreateRoom(ctx context.Context, in store.NewRoom) (store.Room, error) {
	if err := ctxErr(ctx); err != nil {
		return store.Room{}, err
	}
	in, err := store.ValidateNewRoom(in)
	if err != nil {
		return store.Room{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[in.CreatorID]; !ok {
		return store.Room{}, store.ErrNotFound
	}
	if err := s.liveUser(in.CreatorID); err != nil {
		return store.Room{}, err
	}
	members := []int64{in.CreatorID}
	for _, id := range in.Members {
		u, ok := s.users[id]
		switch {
		case ok && !u.Deleted:
			members = append(members, id)
		case in.Type != store.OneToOne:
			// Unknown and deleted members of a group or channel are dropped.
		case ok:
			return store.Room{}, store.DeletedUserError("participants", id)
		default:
			return store.Room{}, store.UnknownUserError("participants", id)
		}
	}
	now := store.Now()
	r := &room{
		r: store.Room{
			ID: uuid.New(), Type: in.Type, Name: in.Name, Description: in.Description, Avatar: in.Avatar,
			MaxMembers: in.MaxMembers, JoinApprovalRequired: in.JoinApprovalRequired,
			GroupLocked: in.GroupLocked, IsPublic: in.IsPublic,
			Preferences: in.Preferences, Extra: in.Extra, CreatedAt: now, UpdatedAt: now,
		},
		members: map[int64]*member{},
		clients: map[clientKey]*message{},
	}
	switch in.Type {
	case store.OneToOne:
		if len(members) != 2 {
			return store.Room{}, store.Invariant(store.ErrOneToOneParticipants, "participants", store.MsgOneToOneTwo)
		}
		key := pairKey(members[0], members[1])
		if _, ok := s.pairs[key]; ok {
			return store.Room{}, store.Invariant(store.ErrDuplicateOneToOne, "", store.MsgChatExists)
		}
		s.pairs[key] = r.r.ID
	default:
		if len(members) > in.MaxMembers {
			return store.Room{}, store.CapError(in.Type)
		}
		r.r.CreatorID = in.CreatorID
	}
	for _, id := range members {
		r.members[id] = &member{perms: map[store.Permission]struct{}{}}
		s.addUserRoom(id, r.r.ID)
	}
	if in.Type != store.OneToOne {
		r.members[in.CreatorID].admin = true
	}
	s.rooms[r.r.ID] = r
	return copyRoom(r.r), nil
}

func (s *Store) addUserRoom(userID int64, roomID uuid.UUID) {
	m := s.userRooms[userID]
	if m == nil {
		m = map[uuid.UUID]struct{}{}
		s.userRooms[userID] = m
	}
	m[roomID] = struct{}{}
}

func (s *Store) delUserRoom(userID int64, roomID uuid.UUID) {
	if m := s.userRooms[userID]; m != nil {
		delete(m, roomID)
		if len(m) == 0 {
			delete(s.userRooms, userID)
		}
	}
}

// Room implements store.Store.
func (s *Store) Room(ctx context.Context, roomID uuid.UUID) (store.Room, error) {
	if err := ctxErr(ctx); err != nil {
		return store.Room{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, err := s.roomOf(roomID)
	if err != nil {
		return store.Room{}, err
	}
	return copyRoom(r.r), nil
}

// RoomDetail implements store.Store.
func (s *Store) RoomDetail(ctx context.Context, roomID uuid.UUID) (store.RoomDetail, error) {
	if err := ctxErr(ctx); err != nil {
		return store.RoomDetail{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, err := s.roomOf(roomID)
	if err != nil {
		return store.RoomDetail{}, err
	}
	d := store.RoomDetail{Room: copyRoom(r.r), Members: []store.User{}, Admins: []store.User{}}
	if r.r.CreatorID != 0 {
		if u, ok := s.users[r.r.CreatorID]; ok {
			c := *u
			d.Creator = &c
		}
	}
	for _, id := range store.SortedInt64(slices.Collect(maps.Keys(r.members))) {
		u := s.user(id)
		d.Members = append(d.Members, u)
		if r.members[id].admin {
			d.Admins = append(d.Admins, u)
		}
	}
	return d, nil
}

// UpdateRoom implements store.Store.
func (s *Store) UpdateRoom(ctx context.Context, roomID uuid.UUID, up store.RoomUpdate) (store.Room, error) {
	if err := ctxErr(ctx); err != nil {
		return store.Room{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.roomOf(roomID)
	if err != nil {
		return store.Room{}, err
	}
	up, err = store.ValidateRoomUpdate(r.r.Type, up)
	if err != nil {
		return store.Room{}, err
	}
	x := &r.r
	if up.Name != nil {
		x.Name = *up.Name
	}
	if up.Description != nil {
		x.Description = *up.Description
	}
	if up.Avatar != nil {
		x.Avatar = *up.Avatar
	}
	if up.GroupLocked != nil {
		x.GroupLocked = *up.GroupLocked
	}
	if up.JoinApprovalRequired != nil {
		x.JoinApprovalRequired = *up.JoinApprovalRequired
	}
	if up.IsPublic != nil {
		x.IsPublic = *up.IsPublic
	}
	if up.Preferences != nil {
		x.Preferences = up.Preferences
	}
	if up.Extra != nil {
		merged := x.Extra.MustClone()
		maps.Copy(merged, up.Extra)
		x.Extra = merged
	}
	x.UpdatedAt = store.Now()
	return copyRoom(r.r), nil
}

// DeleteRoom implements store.Store.
func (s *Store) DeleteRoom(ctx context.Context, roomID uuid.UUID) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.roomOf(roomID)
	if err != nil {
		return err
	}
	s.deleteRoom(r)
	return nil
}

func (s *Store) deleteRoom(r *room) {
	gone := map[uuid.UUID]struct{}{}
	for _, m := range r.msgs {
		gone[m.m.ID] = struct{}{}
		s.dropMessage(m)
	}
	s.nullReferences(gone)
	for id := range r.members {
		s.delUserRoom(id, r.r.ID)
	}
	if r.r.Type == store.OneToOne {
		for k, id := range s.pairs {
			if id == r.r.ID {
				delete(s.pairs, k)
			}
		}
	}
	delete(s.rooms, r.r.ID)
}

// dropMessage removes a message and its notifications from the indexes (not
// from its room's list).
func (s *Store) dropMessage(m *message) {
	for nid := range m.notes {
		delete(s.notifications, nid)
	}
	delete(s.messages, m.m.ID)
}

// nullReferences clears parent/forward links to hard-deleted messages (ON
// DELETE SET NULL).
func (s *Store) nullReferences(gone map[uuid.UUID]struct{}) {
	if len(gone) == 0 {
		return
	}
	for _, m := range s.messages {
		if m.m.ParentID != nil {
			if _, ok := gone[*m.m.ParentID]; ok {
				m.m.ParentID = nil
			}
		}
		if m.m.ForwardedFromID != nil {
			if _, ok := gone[*m.m.ForwardedFromID]; ok {
				m.m.ForwardedFromID = nil
			}
		}
	}
}

// lastVisible is the latest not-deleted message of r, nil when none.
func (r *room) lastVisible() *message {
	for i := len(r.msgs) - 1; i >= 0; i-- {
		if !r.msgs[i].m.IsDeleted {
			return r.msgs[i]
		}
	}
	return nil
}

func (r *room) refreshLast() {
	if m := r.lastVisible(); m != nil {
		id := m.m.ID
		r.r.LastMessageID = &id
	} else {
		r.r.LastMessageID = nil
	}
}

// ListRooms implements store.Store.
func (s *Store) ListRooms(ctx context.Context, userID int64) ([]store.RoomListItem, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	type entry struct {
		item store.RoomListItem
		at   time.Time
	}
	entries := make([]entry, 0, len(s.userRooms[userID]))
	cache := map[uuid.UUID]*store.MessageView{}
	for rid := range s.userRooms[userID] {
		r := s.rooms[rid]
		it := store.RoomListItem{Room: copyRoom(r.r)}
		at := r.r.CreatedAt
		if r.r.CreatorID != 0 {
			if u, ok := s.users[r.r.CreatorID]; ok {
				c := *u
				it.Creator = &c
			}
		}
		if r.r.Type == store.OneToOne {
			for id := range r.members {
				if id != userID {
					u := s.user(id)
					it.Peer = &u
				}
			}
		}
		if last := r.lastVisible(); last != nil {
			it.LastMessage = s.view(last.m.ID, cache)
			at = last.m.CreatedAt
		}
		for _, m := range r.msgs {
			if m.m.IsDeleted || m.m.SenderID == userID {
				continue
			}
			if _, ok := m.receipts[userID]; !ok {
				it.UnreadCount++
			}
		}
		entries = append(entries, entry{it, at})
	}
	slices.SortFunc(entries, func(a, b entry) int {
		if c := b.at.Compare(a.at); c != 0 {
			return c
		}
		return uuidLess(b.item.ID, a.item.ID)
	})
	out := make([]store.RoomListItem, len(entries))
	for i, e := range entries {
		out[i] = e.item
	}
	return out, nil
}

// UserRoomIDs implements store.Store.
func (s *Store) UserRoomIDs(ctx context.Context, userID int64) ([]uuid.UUID, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := slices.Collect(maps.Keys(s.userRooms[userID]))
	slices.SortFunc(out, uuidLess)
	if out == nil {
		out = []uuid.UUID{}
	}
	return out, nil
}

// UserRoomSeqs implements store.Store.
func (s *Store) UserRoomSeqs(ctx context.Context, userID int64) ([]store.RoomSeq, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]store.RoomSeq, 0, len(s.userRooms[userID]))
	for id := range s.userRooms[userID] {
		out = append(out, store.RoomSeq{RoomID: id, Seq: s.rooms[id].r.LastSeq})
	}
	slices.SortFunc(out, func(a, b store.RoomSeq) int { return uuidLess(a.RoomID, b.RoomID) })
	return out, nil
}

// RoomMemberIDs implements store.Store.
func (s *Store) RoomMemberIDs(ctx context.Context, roomID uuid.UUID) ([]int64, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, err := s.roomOf(roomID)
	if err != nil {
		return nil, err
	}
	return store.SortedInt64(slices.Collect(maps.Keys(r.members))), nil
}

// ---- membership ----

func (r *room) membership(userID int64) store.Membership {
	ms := store.Membership{
		RoomID: r.r.ID, RoomType: r.r.Type, CreatorID: r.r.CreatorID,
		IsPublic: r.r.IsPublic, GroupLocked: r.r.GroupLocked, Permissions: []store.Permission{},
	}
	if m, ok := r.members[userID]; ok {
		ms.IsMember = true
		ms.IsAdmin = m.admin
		for p := range m.perms {
			ms.Permissions = append(ms.Permissions, p)
		}
		slices.Sort(ms.Permissions)
	}
	return ms
}

// Membership implements store.Store.
func (s *Store) Membership(ctx context.Context, roomID uuid.UUID, userID int64) (store.Membership, error) {
	if err := ctxErr(ctx); err != nil {
		return store.Membership{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, err := s.roomOf(roomID)
	if err != nil {
		return store.Membership{}, err
	}
	return r.membership(userID), nil
}

// Memberships implements store.Store.
func (s *Store) Memberships(ctx context.Context, roomIDs []uuid.UUID, userID int64) (map[uuid.UUID]store.Membership, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[uuid.UUID]store.Membership, len(roomIDs))
	for _, id := range roomIDs {
		if r, ok := s.rooms[id]; ok {
			out[id] = r.membership(userID)
		}
	}
	return out, nil
}

// AddMembers implements store.Store.
func (s *Store) AddMembers(ctx context.Context, roomID uuid.UUID, userIDs []int64) ([]int64, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.roomOf(roomID)
	if err != nil {
		return nil, err
	}
	if r.r.Type == store.OneToOne {
		return nil, store.Invariant(store.ErrWrongRoomType, "", store.MsgMembersGroupChannel)
	}
	ids := store.SortedInt64(store.UniqueInt64(userIDs))
	for _, id := range ids {
		if _, ok := s.users[id]; !ok {
			return nil, store.ErrNotFound
		}
	}
	added := []int64{}
	for _, id := range ids {
		if s.users[id].Deleted {
			return nil, store.DeletedUserError("members", id)
		}
		if _, ok := r.members[id]; !ok {
			added = append(added, id)
		}
	}
	if len(r.members)+len(added) > r.r.MaxMembers {
		return nil, store.CapError(r.r.Type)
	}
	for _, id := range added {
		r.members[id] = &member{perms: map[store.Permission]struct{}{}}
		s.addUserRoom(id, r.r.ID)
	}
	return added, nil
}

// RemoveMembers implements store.Store.
func (s *Store) RemoveMembers(ctx context.Context, rm store.RemoveMembers) (store.RemoveResult, error) {
	if err := ctxErr(ctx); err != nil {
		return store.RemoveResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.roomOf(rm.RoomID)
	if err != nil {
		return store.RemoveResult{}, err
	}
	if r.r.Type == store.OneToOne {
		return store.RemoveResult{}, store.Invariant(store.ErrWrongRoomType, "", store.MsgMembersGroupChannel)
	}
	ids := store.SortedInt64(store.UniqueInt64(rm.UserIDs))
	for _, id := range ids {
		if _, ok := s.users[id]; !ok {
			return store.RemoveResult{}, store.ErrNotFound
		}
	}
	res := store.RemoveResult{Removed: []int64{}}
	for _, id := range ids {
		if _, ok := r.members[id]; !ok {
			continue
		}
		if id == r.r.CreatorID && rm.ActorID != r.r.CreatorID {
			continue
		}
		delete(r.members, id)
		s.delUserRoom(id, r.r.ID)
		res.Removed = append(res.Removed, id)
	}
	if len(r.members) == 0 {
		s.deleteRoom(r)
		res.RoomDeleted = true
	}
	return res, nil
}

func roleError() error {
	return store.Invariant(store.ErrWrongRoomType, "", "Roles and permissions only exist in groups and channels")
}

// SetRole implements store.Store.
func (s *Store) SetRole(ctx context.Context, roomID uuid.UUID, userIDs []int64, on bool) ([]int64, error) {
	return s.changeMembers(ctx, roomID, userIDs, nil, func(m *member) bool {
		if m.admin == on {
			return false
		}
		m.admin = on
		return true
	})
}

// SetPermissions implements store.Store.
func (s *Store) SetPermissions(ctx context.Context, roomID uuid.UUID, userIDs []int64, perms []store.Permission, on bool) ([]int64, error) {
	check := func(r *room) error { return store.ValidatePermissions(r.r.Type, perms) }
	return s.changeMembers(ctx, roomID, userIDs, check, func(m *member) bool {
		did := false
		for _, p := range perms {
			_, has := m.perms[p]
			switch {
			case on && !has:
				m.perms[p] = struct{}{}
				did = true
			case !on && has:
				delete(m.perms, p)
				did = true
			}
		}
		return did
	})
}

// changeMembers is SetRole and SetPermissions: in a group or channel (a
// one-to-one chat is ErrWrongRoomType) that passes check (when not nil), it
// calls change for every member among userIDs but the creator, ascending,
// and returns the ids for which change reported a change.
func (s *Store) changeMembers(ctx context.Context, roomID uuid.UUID, userIDs []int64, check func(*room) error, change func(*member) bool) ([]int64, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.roomOf(roomID)
	if err != nil {
		return nil, err
	}
	if r.r.Type == store.OneToOne {
		return nil, roleError()
	}
	if check != nil {
		if err := check(r); err != nil {
			return nil, err
		}
	}
	changed := []int64{}
	for _, id := range store.SortedInt64(store.UniqueInt64(userIDs)) {
		m, ok := r.members[id]
		if ok && id != r.r.CreatorID && change(m) {
			changed = append(changed, id)
		}
	}
	return changed, nil
}
