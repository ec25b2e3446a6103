package storetest

import (
	"slices"
	"testing"

	"github.com/chatmux/chatmux/store"
)

// testSearchUsers checks SearchUsers: prefixes of the username, the last
// name and the full name, case-insensitive, the searcher left out, %, _
// and \ taken literally, byte order of usernames, the limit, and no
// listing of everyone.
func testSearchUsers(t *testing.T, st store.Store) {
	for _, u := range []store.User{
		{ID: 1, Username: "alice", FirstName: "Alice", LastName: "Smith"},
		{ID: 2, Username: "Alicia", FirstName: "Alicia", LastName: "Keys"},
		{ID: 3, Username: "bob_a", FirstName: "Robert", LastName: "Alley"},
		{ID: 4, Username: "bob", FirstName: "Bob", LastName: "Builder"},
		{ID: 5, Username: "bobby", Email: "alice@example.com"},
		{ID: 6, Username: "b%c"},
		{ID: 7, Username: `b\d`},
		{ID: 8, Username: "zoë", FirstName: "Zoë", LastName: "Ünal"},
		{ID: 9, Username: "al", FirstName: "Al"},
	} {
		_, err := st.UpsertUser(ctx, u)
		ok(t, err)
	}
	names := func(us []store.User) []string {
		out := make([]string, len(us))
		for i, u := range us {
			out[i] = u.Username
		}
		return out
	}
	for _, tc := range []struct {
		prefix string
		except int64
		limit  int
		want   []string
	}{
		// Usernames, ordered by byte: upper case before lower case.
		{"ali", 0, 10, []string{"Alicia", "alice"}},
		{"ALI", 0, 10, []string{"Alicia", "alice"}},
		// The last name ("Alley") and the username "al"; the email never matches.
		{"al", 0, 10, []string{"Alicia", "al", "alice", "bob_a"}},
		{"al", 9, 10, []string{"Alicia", "alice", "bob_a"}},
		{"al", 9, 2, []string{"Alicia", "alice"}},
		// The full name: first name, a space, last name.
		{"robert al", 0, 10, []string{"bob_a"}},
		{"alice sm", 0, 10, []string{"alice"}},
		{"smith", 0, 10, []string{"alice"}},
		{"smith alice", 0, 10, nil},
		// The searcher is left out.
		{"bob", 4, 10, []string{"bob_a", "bobby"}},
		{"bob", 0, 10, []string{"bob", "bob_a", "bobby"}},
		// Wildcards of LIKE are plain characters.
		{"bob_", 0, 10, []string{"bob_a"}},
		{"b%", 0, 10, []string{"b%c"}},
		{"b_", 0, 10, nil},
		{`b\`, 0, 10, []string{`b\d`}},
		{"%", 0, 10, nil},
		// Not a substring: a prefix.
		{"lice", 0, 10, nil},
		// Beyond ASCII, the same case.
		{"zoë", 0, 10, []string{"zoë"}},
		{"Ünal", 0, 10, []string{"zoë"}},
		// No listing of everyone.
		{"", 0, 10, nil},
		{"a", 0, 0, nil},
		{"a", 0, -1, nil},
	} {
		got, err := st.SearchUsers(ctx, tc.prefix, tc.except, tc.limit)
		ok(t, err)
		if got == nil {
			t.Fatalf("SearchUsers(%q, %d, %d) = nil, want an empty list", tc.prefix, tc.except, tc.limit)
		}
		if g := names(got); len(g) != len(tc.want) || (len(g) > 0 && !slices.Equal(g, tc.want)) {
			t.Fatalf("SearchUsers(%q, %d, %d) = %q, want %q", tc.prefix, tc.except, tc.limit, g, tc.want)
		}
	}
	// The users come whole.
	got, err := st.SearchUsers(ctx, "zo", 0, 1)
	ok(t, err)
	if len(got) != 1 || got[0] != (store.User{ID: 8, Username: "zoë", FirstName: "Zoë", LastName: "Ünal"}) {
		t.Fatalf("SearchUsers(zo) = %+v", got)
	}
}
