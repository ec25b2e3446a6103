package chatmux

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// The fuzz targets run their seeds (below and in testdata/fuzz) with every
// go test; fuzz them with, for example,
//
//	go test -run '^$' -fuzz '^FuzzDecodeEnvelope$' -fuzztime 1m .

// FuzzDecodeEnvelope: any frame decodes without a panic to an envelope or a
// 4003 error; an accepted envelope has object-or-nil data and a request_id
// of 1 to 64 bytes that decodes as encoding/json decodes it, and the
// frames that echo it are valid JSON.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"event_type":"message.send","data":{"room_id":"r","content":"hi"}}`,
		`{"event_type":"message.send","data":null,"request_id":"r-1"}`,
		`{"event_type":"x","request_id":"a\"b\\c\u00e9"}`,
		`{"event_type":5}`,
		`{"event_type":"x","data":[1]}`,
		`{"event_type":"x","request_id":7}`,
		`{"event_type":"a","data":{}}`,
		`[]`,
		`{"data":1}`,
		`{"event_type":null}`,
		"\x00",
		`[1,2]`,
		`"str"`,
		``,
		`{`,
		" \t{\"event_type\":\"x\"}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		env, err := decodeEnvelope(frame)
		if err != nil {
			if err.Code != CodeValidation {
				t.Fatalf("error code %d, want 4003", err.Code)
			}
			switch err.Detail.(type) {
			case []string, map[string][]string:
			default:
				t.Fatalf("detail %T %v", err.Detail, err.Detail)
			}
			return
		}
		if !json.Valid(frame) {
			t.Fatalf("accepted invalid JSON %q", frame)
		}
		if env.Data != nil && (!json.Valid(env.Data) || env.Data[0] != '{') {
			t.Fatalf("data %q is not an object", env.Data)
		}
		if !env.hasRequestID {
			return
		}
		if n := len(env.requestID); n < 1 || n > maxRequestIDLen {
			t.Fatalf("request_id of %d bytes accepted", n)
		}
		if utf8.Valid(frame) {
			var ref struct {
				RequestID string `json:"request_id"`
			}
			if jerr := json.Unmarshal(frame, &ref); jerr == nil && ref.RequestID != env.requestID {
				t.Fatalf("request_id %q, encoding/json reads %q", env.requestID, ref.RequestID)
			}
		}
		checkEcho(t, appendOK(nil, env.requestID), env.requestID)
		checkEcho(t, appendRequestID(nil, []byte(`{"status":"x"}`), env.requestID), env.requestID)
		checkEcho(t, appendRequestID(nil, []byte(` { } `), env.requestID), env.requestID)
	})
}

// checkEcho checks that frame is a JSON object whose request_id is id (as
// JSON carries it: invalid UTF-8 becomes U+FFFD).
func checkEcho(t *testing.T, frame []byte, id string) {
	t.Helper()
	var m struct {
		RequestID *string `json:"request_id"`
	}
	if err := json.Unmarshal(frame, &m); err != nil || m.RequestID == nil {
		t.Fatalf("echo %q: %v", frame, err)
	}
	if want := strings.ToValidUTF8(id, "\uFFFD"); utf8.ValidString(id) && *m.RequestID != want {
		t.Fatalf("echo %q carries %q, want %q", frame, *m.RequestID, want)
	}
}

// FuzzTreeMatch: registering any set of patterns either succeeds or panics
// with a "chatmux:" message; matching any event name never panics; a match
// binds one value per parameter and the pattern with its values put back
// is the event name; a registered static pattern matches itself, and a
// pattern with its parameters filled in matches something.
func FuzzTreeMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"message.send\nroom.{id}.typing\nroom.*", "room.42.typing"},
		{"room.{id}.typing\nroom.{id}.members.{user}\nroom.*", "room.1.members.2"},
		{"a.{x}.c\na.b.*\n*", "a.b.d"},
		{"{a}.{b}\n{a}.{b}.*", "x..y"},
		{"a.{x}\na.{y}", "a.b"},
		{"a.*.b\na..b\n.a\na.{x\n{}.a", "a.b"},
		{"$connect\n$resync\n*", "$connect"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, patterns, event string) {
		tr := newTree()
		var registered []*endpoint
		for _, p := range strings.SplitN(patterns, "\n", 16) {
			if ep, ok := tryInsert(t, tr, p); ok {
				registered = append(registered, ep)
			}
		}
		checkMatch(t, tr, event)
		for _, ep := range registered {
			if len(ep.keys) == 0 {
				if got, _ := tr.match(ep.pattern, nil); got != ep {
					t.Fatalf("static pattern %q does not match itself (got %v)", ep.pattern, got)
				}
				continue
			}
			name := fill(ep.pattern)
			if len(name) > maxEventLen {
				continue
			}
			if got, _ := tr.match(name, nil); got == nil {
				t.Fatalf("%q matches nothing, though %q is registered", name, ep.pattern)
			}
			checkMatch(t, tr, name)
		}
	})
}

// tryInsert registers p and reports whether it was accepted; a refusal
// must be a panic with a "chatmux: " message.
func tryInsert(t *testing.T, tr *tree, p string) (ep *endpoint, ok bool) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			if msg, isString := r.(string); !isString || !strings.HasPrefix(msg, "chatmux: ") {
				t.Fatalf("registering %q panicked with %v", p, r)
			}
			ep, ok = nil, false
		}
	}()
	return tr.insert(p, func(*Context) error { return nil }), true
}

// checkMatch matches event and checks what it binds.
func checkMatch(t *testing.T, tr *tree, event string) {
	t.Helper()
	ep, vals := tr.match(event, nil)
	if ep == nil {
		return
	}
	if len(vals) != len(ep.keys) {
		t.Fatalf("%q matched %q with %d values for %d keys", event, ep.pattern, len(vals), len(ep.keys))
	}
	segs := strings.Split(ep.pattern, ".")
	k := 0
	for i, s := range segs {
		switch {
		case s == "*":
			if vals[k] == "" {
				t.Fatalf("%q matched %q with an empty wildcard", event, ep.pattern)
			}
			segs[i] = vals[k]
			k++
		case strings.HasPrefix(s, "{"):
			if vals[k] == "" || strings.Contains(vals[k], ".") {
				t.Fatalf("%q matched %q with parameter value %q", event, ep.pattern, vals[k])
			}
			segs[i] = vals[k]
			k++
		}
	}
	if got := strings.Join(segs, "."); got != event {
		t.Fatalf("%q matched %q, which with its values is %q", event, ep.pattern, got)
	}
}

// fill returns pattern with "p" for each parameter and "w.x" for the
// wildcard.
func fill(pattern string) string {
	segs := strings.Split(pattern, ".")
	for i, s := range segs {
		switch {
		case s == "*":
			segs[i] = "w.x"
		case strings.HasPrefix(s, "{"):
			segs[i] = "p"
		}
	}
	return strings.Join(segs, ".")
}

// FuzzMatch: on a fixed router, Mux.Match and the tree agree, only valid
// names match, and the matched pattern with its values put back is the
// name.
func FuzzMatch(f *testing.F) {
	r := NewRouter()
	for _, p := range []string{"a.b", "a.{x}", "a.{x}.c", "a.*", "{p}.z", "b.c.d"} {
		r.HandleFunc(p, func(c *Context) error { return nil })
	}
	for _, s := range []string{"a.b", "a.q.c", "x.z", "a", "", "..", "a.b.c.d.e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ev string) {
		pattern, ok := r.Match(ev)
		ep, vals := r.tree.match(ev, nil)
		if ok != (ep != nil) {
			t.Fatalf("Match and tree disagree on %q", ev)
		}
		if !ok {
			return
		}
		if !validEvent(ev) {
			t.Fatalf("invalid event %q matched %q", ev, pattern)
		}
		if len(vals) != len(ep.keys) {
			t.Fatalf("%q: %d values for %d keys", ev, len(vals), len(ep.keys))
		}
		// Rebuild the event from the pattern and the captured values.
		segs := strings.Split(pattern, ".")
		vi := 0
		for i, s := range segs {
			if s == "*" || strings.HasPrefix(s, "{") {
				segs[i] = vals[vi]
				vi++
			}
		}
		if strings.Join(segs, ".") != ev {
			t.Fatalf("%q matched %q with %v", ev, pattern, vals)
		}
	})
}
