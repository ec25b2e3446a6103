package chat

import (
	"encoding/json"
	"errors"
	"strconv"
	"testing"

	"github.com/chatmux/chatmux"
)

// inputError reports why err is not what a parser of client input may
// return: nil or a *chatmux.Error of 4003 (bad input) or 4004 (an id that
// names nothing), with a detail that encodes.
func inputError(err error) string {
	if err == nil {
		return ""
	}
	var e *chatmux.Error
	if !errors.As(err, &e) {
		return "not a *chatmux.Error: " + err.Error()
	}
	if e.Code != chatmux.CodeValidation && e.Code != chatmux.CodeNotFound {
		return "code " + strconv.Itoa(e.Code)
	}
	if _, err := chatmux.ErrorEnvelope(e); err != nil {
		return "detail does not encode: " + err.Error()
	}
	return ""
}

// FuzzLooseJSON runs the loose-JSON readers of input.go on any value: none
// panics, each answers only 4003 or 4004, and what they accept is
// consistent (a user id read back from its decimal form is itself; a
// parsed room id is the UUID of a JSON string; a parsed id list has no
// duplicates). The seed corpus is testdata/fuzz/FuzzLooseJSON; `go test`
// runs only the seeds (fuzz with -fuzz=FuzzLooseJSON).
func FuzzLooseJSON(f *testing.F) {
	for _, s := range []string{`7`, `"7"`, `" 7 "`, `7.0`, `7.5`, `1e3`, `-0`, `9223372036854775808`, `"x"`, `null`,
		`true`, `[]`, `[1,"2",2]`, `{}`, `"5f0c2a4e-8c7b-4f59-9a51-0d1c9b3e2f10"`, `["5f0c2a4e-8c7b-4f59-9a51-0d1c9b3e2f10",3]`,
		`{"a":1,"a":2}`, `"\u0000"`, ` `, `[`, `0.0`, `""`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		raw := json.RawMessage(v)
		_ = jsonKind(raw)
		_ = kindName(raw)
		_ = truthy(raw)
		_, _ = pyInt(raw)
		_ = isNull(raw)

		if n, ok := ParseUserID(raw); ok {
			back, ok2 := ParseUserID(json.RawMessage(strconv.FormatInt(n, 10)))
			if !ok2 || back != n {
				t.Fatalf("ParseUserID(%s) = %d, but its decimal form reads %d %v", v, n, back, ok2)
			}
		}
		if ids, ok := ParseUserIDs(raw); ok {
			seen := map[int64]bool{}
			for _, id := range ids {
				if seen[id] {
					t.Fatalf("ParseUserIDs(%s) = %v has duplicates", v, ids)
				}
				seen[id] = true
			}
		}
		if _, err := userIDList("members", raw); inputError(err) != "" {
			t.Fatalf("userIDList(%s): %s", v, inputError(err))
		}
		id, err := ParseRoomID(raw)
		if bad := inputError(err); bad != "" {
			t.Fatalf("ParseRoomID(%s): %s", v, bad)
		}
		if err == nil {
			var s string
			if jsonKind(raw) != 's' || json.Unmarshal(raw, &s) != nil || s == "" {
				t.Fatalf("ParseRoomID(%s) = %s from a value that is not a string", v, id)
			}
		}
		m, err := parseMessageIDs(raw)
		if bad := inputError(err); bad != "" {
			t.Fatalf("parseMessageIDs(%s): %s", v, bad)
		}
		if err == nil {
			if len(m.IDs) > len(m.Raw) {
				t.Fatalf("parseMessageIDs(%s): %d ids from %d values", v, len(m.IDs), len(m.Raw))
			}
			seen := map[string]bool{}
			for _, id := range m.IDs {
				if seen[id.String()] {
					t.Fatalf("parseMessageIDs(%s) = %v has duplicates", v, m.IDs)
				}
				seen[id.String()] = true
			}
		}

		// The same value as a field of an event's data, read by each
		// typed reader.
		f := fields{"k": raw}
		if _, _, err := f.str("k"); inputError(err) != "" {
			t.Fatalf("str(%s): %s", v, inputError(err))
		}
		if _, err := f.boolean("k"); inputError(err) != "" {
			t.Fatalf("boolean(%s): %s", v, inputError(err))
		}
		if _, _, err := f.object("k"); inputError(err) != "" {
			t.Fatalf("object(%s): %s", v, inputError(err))
		}
		if _, err := property(fields{"property": raw}); inputError(err) != "" {
			t.Fatalf("property(%s): %s", v, inputError(err))
		}
		if media, err := readMedia(raw); inputError(err) != "" {
			t.Fatalf("readMedia(%s): %s", v, inputError(err))
		} else if _, err := checkMedia(media); inputError(err) != "" {
			t.Fatalf("checkMedia(%s): %s", v, inputError(err))
		}
		if _, err := roleUsers(fields{"users": raw}); inputError(err) != "" {
			t.Fatalf("roleUsers(%s): %s", v, inputError(err))
		}
		if a, _, err := (fields{"avatar": raw}).str("avatar"); inputError(err) != "" {
			t.Fatalf("avatar(%s): %s", v, inputError(err))
		} else if err := checkAvatar(a); inputError(err) != "" {
			t.Fatalf("checkAvatar(%s): %s", v, inputError(err))
		}
	})
}
