package chat_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chatmux/chatmux/chat"
	"github.com/chatmux/chatmux/store"
)

// TestUserSearch checks user.search end to end on every store: the
// matches, the searcher left out, the limit and its cap, the order, the
// empty email, the answer to the asking socket only, and the errors.
func TestUserSearch(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore factory) {
		e := newEnv(t, newStore)
		for _, u := range []store.User{
			{ID: 1, Username: "alice", Email: "alice@example.com", FirstName: "Alice", LastName: "Smith"},
			{ID: 2, Username: "alicia", Email: "alicia@example.com", FirstName: "Alicia", LastName: "Keys"},
			{ID: 3, Username: "bob", Email: "bob@example.com", FirstName: "Bob", LastName: "Alvarez"},
			{ID: 4, Username: "user4"},
		} {
			if _, err := e.st.UpsertUser(bg, u); err != nil {
				t.Fatalf("UpsertUser: %v", err)
			}
		}
		for i := 0; i < 60; i++ {
			if _, err := e.st.UpsertUser(bg, store.User{ID: int64(100 + i), Username: fmt.Sprintf("zed%02d", i)}); err != nil {
				t.Fatalf("UpsertUser: %v", err)
			}
		}
		// The test authenticator names user 1 "user1" (first name "Fuser1",
		// last name "Luser1"): connecting records that identity, so alice
		// is user1 from here on, and the searcher.
		c1, c1b := e.dial(1), e.dial(1)

		search := func(data any) []map[string]any {
			t.Helper()
			c1.send(chat.EventUserSearch, data)
			f := c1.expect(chat.DispatchUserSearch)
			m := f.obj(t)
			eq(t, keysOf(m), []string{"query", "users"}, "usersearch.dispatch keys")
			var out []map[string]any
			for _, u := range m["users"].([]any) {
				out = append(out, u.(map[string]any))
			}
			return out
		}
		names := func(us []map[string]any) []string {
			out := []string{}
			for _, u := range us {
				out = append(out, u["username"].(string))
			}
			return out
		}

		for _, tc := range []struct {
			name string
			data any
			want []string
		}{
			{"username prefix", map[string]any{"query": "ali"}, []string{"alicia"}},
			{"the searcher left out", map[string]any{"query": "user"}, []string{"user4"}},
			{"the searcher left out, by name too", map[string]any{"query": "fuser1"}, []string{}},
			{"case-insensitive, trimmed", map[string]any{"query": "  BO "}, []string{"bob"}},
			{"last name", map[string]any{"query": "alv"}, []string{"bob"}},
			{"full name", map[string]any{"query": "alicia k"}, []string{"alicia"}},
			{"a prefix, not a substring", map[string]any{"query": "lic"}, []string{}},
			{"nobody", map[string]any{"query": "nobody"}, []string{}},
			{"limit", map[string]any{"query": "zed", "limit": 3}, []string{"zed00", "zed01", "zed02"}},
			{"limit as a string", map[string]any{"query": "zed", "limit": "2"}, []string{"zed00", "zed01"}},
			{"limit null is the default", map[string]any{"query": "zed1", "limit": nil}, []string{"zed10", "zed11", "zed12", "zed13", "zed14", "zed15", "zed16", "zed17", "zed18", "zed19"}},
		} {
			if got := names(search(tc.data)); !equal(got, tc.want) {
				t.Fatalf("%s: users = %q, want %q", tc.name, got, tc.want)
			}
		}

		// The default limit is 20, the cap 50; ordered by username.
		if got := search(map[string]any{"query": "zed"}); len(got) != chat.DefaultUserSearchLimit || got[0]["username"] != "zed00" || got[19]["username"] != "zed19" {
			t.Fatalf("default limit: %d users %q", len(got), names(got))
		}
		if got := search(map[string]any{"query": "zed", "limit": 1000}); len(got) != chat.MaxUserSearchLimit || got[49]["username"] != "zed49" {
			t.Fatalf("capped limit: %d users", len(got))
		}

		// A whole User object with the email left empty; the query echoed as sent.
		c1.send(chat.EventUserSearch, map[string]any{"query": " Bob"})
		f := c1.expect(chat.DispatchUserSearch)
		if !jsonEqual(string(f.Data), `{"query":" Bob","users":[{"id":3,"username":"bob","email":"","first_name":"Bob","last_name":"Alvarez"}]}`) {
			t.Fatalf("usersearch.dispatch = %s", f.Raw)
		}
		// To the asking socket only.
		c1b.quiet()

		for _, b := range []struct {
			data   string
			detail string
		}{
			{`{}`, `{"query":["This field is required."]}`},
			{`{"query":null}`, `{"query":["This field is required."]}`},
			{`{"query":""}`, `{"query":["This field may not be blank."]}`},
			{`{"query":"   "}`, `{"query":["This field may not be blank."]}`},
			{`{"query":7}`, `{"query":["Not a valid string."]}`},
			{`{"query":"` + strings.Repeat("é", 65) + `"}`, `{"query":["Ensure this field has no more than 64 characters."]}`},
			{`{"query":"a","limit":0}`, `{"limit":["Ensure this value is greater than or equal to 1."]}`},
			{`{"query":"a","limit":"x"}`, `{"limit":["A valid integer is required."]}`},
			{`[]`, `{"data":["Must be a JSON object."]}`},
		} {
			c1.send(chat.EventUserSearch, b.data)
			c1.expectError(4003, b.detail)
		}
		// 64 characters once trimmed are fine.
		if got := search(map[string]any{"query": " " + strings.Repeat("é", 64) + " "}); len(got) != 0 {
			t.Fatalf("64 characters: %q", names(got))
		}
		c1.send(chat.EventUserSearch, nil)
		c1.expectError(4003, `{"data":["This field is required."]}`)
	})
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
