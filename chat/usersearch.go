package chat

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/chatmux/chatmux"
)

// Limits of user.search (docs/protocol.md#user-search).
const (
	// MaxUserSearchQueryLen is the longest query, in characters, after
	// leading and trailing spaces are trimmed.
	MaxUserSearchQueryLen = 64
	// DefaultUserSearchLimit is the number of users found when the event
	// gives no limit.
	DefaultUserSearchLimit = 20
	// MaxUserSearchLimit caps the limit a client may ask for.
	MaxUserSearchLimit = 50
)

// userSearchResult is the data of usersearch.dispatch.
type userSearchResult struct {
	Query string     `json:"query"`
	Users []wireUser `json:"users"`
}

// handleSearchUsers handles user.search, a chatmux addition to the default event
// map (docs/protocol.md#user-search): it finds users to start a chat with
// by a prefix of their username, last name or full name, compared
// case-insensitively, and sends usersearch.dispatch {query, users} to this
// socket: at most limit users (default 20, at most 50), the searcher left
// out, ordered by username. The query is required and may not be blank
// (1 to 64 characters once trimmed), so the event never lists everyone.
// The users' email addresses are left empty: anyone signed in may search,
// and an address is for the members of a shared room.
func (s *Service) handleSearchUsers(c *chatmux.Context) error {
	u, f, err := readEvent(c)
	if err != nil {
		return err
	}
	if f.get("query") == nil {
		return chatmux.FieldError("query", msgRequired)
	}
	query, _, err := f.str("query")
	if err != nil {
		return err
	}
	prefix := strings.TrimSpace(query)
	if prefix == "" {
		return chatmux.FieldError("query", msgBlank)
	}
	if utf8.RuneCountInString(prefix) > MaxUserSearchQueryLen {
		return chatmux.FieldError("query", fmt.Sprintf("Ensure this field has no more than %d characters.", MaxUserSearchQueryLen))
	}
	limit, err := f.limit(DefaultUserSearchLimit, MaxUserSearchLimit)
	if err != nil {
		return err
	}
	found, err := s.st.SearchUsers(c.Context(), prefix, u.ID, int(limit))
	if err != nil {
		return StoreError(err)
	}
	users := usersJSON(found)
	for i := range users {
		users[i].Email = ""
	}
	return send(c, DispatchUserSearch, userSearchResult{Query: query, Users: users})
}
