package memory

import (
	"context"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux/store"
)

// TouchSessions implements store.Store.
func (s *Store) TouchSessions(ctx context.Context, sessionIDs []int64) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := store.Now()
	for _, id := range sessionIDs {
		if sess, ok := s.sessions[id]; ok {
			sess.LastSeen = now
			s.seen(sess.UserID, now)
		}
	}
	return nil
}

// SweepPresence implements store.Store. It holds the store's lock, so no
// two sweeps see the same flip.
func (s *Store) SweepPresence(ctx context.Context, threshold, grace time.Duration) ([]store.Presence, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := store.Now()
	live := map[int64]bool{}
	for _, sess := range s.sessions {
		if !sess.LastSeen.Before(now.Add(-threshold)) {
			live[sess.UserID] = true
		}
	}
	out := []store.Presence{}
	for id := range live {
		if u, ok := s.users[id]; ok && !u.Deleted && !s.online[id] {
			s.online[id] = true
			out = append(out, store.Presence{UserID: id, Online: true, LastSeen: s.lastSeen[id]})
		}
	}
	for id, on := range s.online {
		if !on || live[id] {
			continue
		}
		seen, ok := s.lastSeen[id]
		if ok && !seen.Before(now.Add(-grace)) {
			continue
		}
		s.online[id] = false
		out = append(out, store.Presence{UserID: id, LastSeen: seen})
	}
	slices.SortFunc(out, func(a, b store.Presence) int { return cmpInt64(a.UserID, b.UserID) })
	return out, nil
}

// Presence implements store.Store.
func (s *Store) Presence(ctx context.Context, userIDs []int64) ([]store.Presence, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []store.Presence{}
	for _, id := range slices.Compact(store.SortedInt64(userIDs)) {
		if _, ok := s.users[id]; ok {
			out = append(out, store.Presence{UserID: id, Online: s.online[id], LastSeen: s.lastSeen[id]})
		}
	}
	return out, nil
}

// PresenceRooms implements store.Store.
func (s *Store) PresenceRooms(ctx context.Context, userIDs []int64) (map[int64][]uuid.UUID, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := map[int64][]uuid.UUID{}
	for _, id := range userIDs {
		if _, done := out[id]; done {
			continue
		}
		var rooms []uuid.UUID
		for roomID := range s.userRooms[id] {
			r := s.rooms[roomID]
			if m := r.members[id]; m != nil && (r.r.Type != store.Channel || r.r.CreatorID == id || m.admin) {
				rooms = append(rooms, roomID)
			}
		}
		if len(rooms) > 0 {
			slices.SortFunc(rooms, uuidLess)
			out[id] = rooms
		}
	}
	return out, nil
}
