package memory

import (
	"context"
	"fmt"
	"slices"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux/store"
)

// DeleteUser implements store.Store (docs/protocol.md#deleted-users).
func (s *Store) DeleteUser(ctx context.Context, userID int64) (store.UserDeletion, error) {
	if err := ctxErr(ctx); err != nil {
		return store.UserDeletion{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[userID]
	if !ok {
		return store.UserDeletion{}, store.ErrNotFound
	}
	res := store.UserDeletion{RoomsDeleted: []uuid.UUID{}, RoomsLeft: []uuid.UUID{}}
	if u.Deleted {
		return res, nil
	}
	for rid := range s.userRooms[userID] {
		r := s.rooms[rid]
		if r.r.Type == store.OneToOne {
			s.deleteRoom(r)
			res.RoomsDeleted = append(res.RoomsDeleted, rid)
			continue
		}
		delete(r.members, userID)
		s.delUserRoom(userID, rid)
		if len(r.members) == 0 {
			s.deleteRoom(r)
			res.RoomsDeleted = append(res.RoomsDeleted, rid)
		} else {
			res.RoomsLeft = append(res.RoomsLeft, rid)
		}
	}
	slices.SortFunc(res.RoomsDeleted, uuidLess)
	slices.SortFunc(res.RoomsLeft, uuidLess)
	for id, sess := range s.sessions {
		if sess.UserID == userID {
			delete(s.sessions, id)
		}
	}
	delete(s.lastSeen, userID)
	delete(s.online, userID)
	for _, m := range s.messages {
		delete(m.delivered, userID)
		delete(m.receipts, userID)
		if re, ok := m.reactions[userID]; ok {
			s.dropReaction(m, re)
		}
		for nid := range m.notes {
			n := s.notifications[nid]
			delete(n.recipients, userID)
			if len(n.recipients) == 0 {
				delete(s.notifications, nid)
				delete(m.notes, nid)
			}
		}
	}
	delete(s.byUsername, u.Username)
	*u = store.User{ID: userID, Username: store.DeletedUsername(userID), Deleted: true}
	s.byUsername[u.Username] = userID
	return res, nil
}

// liveUser returns the user id unless it is deleted: ErrUserDeleted. An
// unknown id is not an error here (the callers decide). s.mu is held.
func (s *Store) liveUser(id int64) error {
	if u, ok := s.users[id]; ok && u.Deleted {
		return fmt.Errorf("user %d: %w", id, store.ErrUserDeleted)
	}
	return nil
}
