package memory

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/chatmux/chatmux/store"
)

// SearchUsers implements store.Store. It scans every user: the in-memory
// store is for development and tests.
func (s *Store) SearchUsers(ctx context.Context, prefix string, exceptID int64, limit int) ([]store.User, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	out := []store.User{}
	if prefix == "" || limit < 1 {
		return out, nil
	}
	p := strings.ToLower(prefix)
	s.mu.RLock()
	for _, u := range s.users {
		if u.ID != exceptID && !u.Deleted && userMatches(u, p) {
			out = append(out, *u)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b store.User) int { return cmp.Compare(a.Username, b.Username) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// userMatches reports whether u's username, last name or full name starts
// with the lower-case prefix p.
func userMatches(u *store.User, p string) bool {
	for _, name := range []string{u.Username, u.LastName, u.FirstName + " " + u.LastName} {
		if strings.HasPrefix(strings.ToLower(name), p) {
			return true
		}
	}
	return false
}
