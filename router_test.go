package chatmux

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// tag returns a handler that records which route ran and its params.
func tag(name string, got *string) Handler {
	return func(c *Context) error {
		*got = name
		return nil
	}
}

func TestTreeLookup(t *testing.T) {
	routes := []string{
		"message.send",
		"message.{action}",
		"message.{id}.react",
		"room.create",
		"room.{id}",
		"room.{id}.typing",
		"room.{id}.members.{user}",
		"room.*",
		"admin.room.{id}.typing",
		"a.b.c",
		"a.{x}.d",
		"a.*",
		"$connect",
	}
	r := NewRouter()
	var got string
	for _, p := range routes {
		r.Handle(p, tag(p, &got))
	}
	tests := []struct {
		event   string
		pattern string
		params  map[string]string
	}{
		{"message.send", "message.send", nil},
		{"message.edit", "message.{action}", map[string]string{"action": "edit"}},
		{"message.42.react", "message.{id}.react", map[string]string{"id": "42"}},
		{"room.create", "room.create", nil},
		{"room.7", "room.{id}", map[string]string{"id": "7"}},
		{"room.7.typing", "room.{id}.typing", map[string]string{"id": "7"}},
		{"room.7.members.9", "room.{id}.members.{user}", map[string]string{"id": "7", "user": "9"}},
		// backtracking: room.{id}.typing fails, the wildcard catches it
		{"room.7.other", "room.*", map[string]string{"*": "7.other"}},
		{"room.7.members", "room.*", map[string]string{"*": "7.members"}},
		{"room.a.b.c.d", "room.*", map[string]string{"*": "a.b.c.d"}},
		{"admin.room.3.typing", "admin.room.{id}.typing", map[string]string{"id": "3"}},
		{"a.b.c", "a.b.c", nil},
		// static "b" fails at "d": backtrack to {x}
		{"a.b.d", "a.{x}.d", map[string]string{"x": "b"}},
		{"a.b.e", "a.*", map[string]string{"*": "b.e"}},
		{"a.q", "a.*", map[string]string{"*": "q"}},
		{"$connect", "$connect", nil},
		// no match
		{"message", "", nil},
		{"room", "", nil},
		{"a", "", nil},
		{"message.send.now.later", "", nil},
		{"", "", nil},
		{"room..x", "", nil},
		{".room.x", "", nil},
		{"room.x.", "", nil},
		{"unknown", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.event, func(t *testing.T) {
			got = ""
			c := NewTestContext(context.Background(), tt.event, nil, nil)
			r.NotFound(func(c *Context) error { got = ""; return nil })
			if err := r.ServeEvent(c); err != nil {
				t.Fatalf("ServeEvent: %v", err)
			}
			if got != tt.pattern {
				t.Fatalf("event %q routed to %q, want %q", tt.event, got, tt.pattern)
			}
			if c.Pattern() != tt.pattern {
				t.Fatalf("Pattern() = %q, want %q", c.Pattern(), tt.pattern)
			}
			for k, v := range tt.params {
				if p := c.Param(k); p != v {
					t.Errorf("Param(%q) = %q, want %q", k, p, v)
				}
			}
			if p, ok := r.Match(tt.event); p != tt.pattern || ok != (tt.pattern != "") {
				t.Errorf("Match(%q) = %q, %v", tt.event, p, ok)
			}
		})
	}
}

func TestRegistrationPanics(t *testing.T) {
	tests := []struct {
		name string
		fn   func()
		want string
	}{
		{"duplicate", func() {
			r := NewRouter()
			r.HandleFunc("a.b", func(*Context) error { return nil })
			r.HandleFunc("a.b", func(*Context) error { return nil })
		}, "already registered"},
		{"duplicate shape", func() {
			r := NewRouter()
			r.HandleFunc("a.{x}", func(*Context) error { return nil })
			r.HandleFunc("a.{y}", func(*Context) error { return nil })
		}, "already registered"},
		{"empty", func() { NewRouter().HandleFunc("", func(*Context) error { return nil }) }, "empty"},
		{"empty segment", func() { NewRouter().HandleFunc("a..b", func(*Context) error { return nil }) }, "empty segment"},
		{"wildcard not last", func() { NewRouter().HandleFunc("a.*.b", func(*Context) error { return nil }) }, "last segment"},
		{"unclosed param", func() { NewRouter().HandleFunc("a.{b", func(*Context) error { return nil }) }, "malformed"},
		{"empty param", func() { NewRouter().HandleFunc("a.{}", func(*Context) error { return nil }) }, "malformed"},
		{"mixed segment", func() { NewRouter().HandleFunc("a.b{c}", func(*Context) error { return nil }) }, "mixes"},
		{"duplicate param", func() { NewRouter().HandleFunc("{a}.{a}", func(*Context) error { return nil }) }, "duplicate parameter"},
		{"nil handler", func() { NewRouter().Handle("a", nil) }, "nil handler"},
		{"use after route", func() {
			r := NewRouter()
			r.HandleFunc("a", func(*Context) error { return nil })
			r.Use(func(h Handler) Handler { return h })
		}, "before routes"},
		{"use after route in group", func() {
			r := NewRouter()
			r.Group(func(g Router) { g.HandleFunc("a", func(*Context) error { return nil }) })
			r.Use(func(h Handler) Handler { return h })
		}, "before routes"},
		{"bad route prefix", func() { NewRouter().Route("a.", nil) }, "prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				p := recover()
				s, _ := p.(string)
				if !strings.HasPrefix(s, "chatmux: ") || !strings.Contains(s, tt.want) {
					t.Fatalf("panic = %v, want a chatmux: panic containing %q", p, tt.want)
				}
			}()
			tt.fn()
		})
	}
}

// trace returns a middleware that appends its name to the trace.
func trace(name string, log *[]string) Middleware {
	return func(next Handler) Handler {
		return func(c *Context) error {
			*log = append(*log, name)
			return next(c)
		}
	}
}

func TestMiddlewareOrderAndScope(t *testing.T) {
	var log []string
	r := NewRouter()
	r.Use(trace("g1", &log), trace("g2", &log))
	final := func(c *Context) error { log = append(log, "h:"+c.Pattern()); return nil }
	r.HandleFunc("plain", final)
	r.With(trace("w", &log)).HandleFunc("with", final)
	r.Group(func(g Router) {
		g.Use(trace("grp", &log))
		g.HandleFunc("grouped", final)
		g.With(trace("grpw", &log)).HandleFunc("grouped.with", final)
	})
	r.Route("room", func(rr Router) {
		rr.Use(trace("room", &log))
		rr.HandleFunc("create", final)
		rr.Route("{id}", func(ir Router) {
			ir.Use(trace("id", &log))
			ir.HandleFunc("typing", final)
		})
	})
	sub := NewRouter()
	sub.Use(trace("sub", &log))
	sub.HandleFunc("pin", final)
	r.With(trace("mount", &log)).Mount("ext", sub)

	tests := []struct {
		event string
		want  []string
	}{
		{"plain", []string{"g1", "g2", "h:plain"}},
		{"with", []string{"g1", "g2", "w", "h:with"}},
		{"grouped", []string{"g1", "g2", "grp", "h:grouped"}},
		{"grouped.with", []string{"g1", "g2", "grp", "grpw", "h:grouped.with"}},
		{"room.create", []string{"g1", "g2", "room", "h:room.create"}},
		{"room.5.typing", []string{"g1", "g2", "room", "id", "h:room.{id}.typing"}},
		{"ext.pin", []string{"g1", "g2", "mount", "sub", "h:ext.pin"}},
		// unmatched: global middleware runs around NotFound
		{"nope", []string{"g1", "g2", "nf"}},
		// unmatched inside a mount: the sub router's middleware runs too
		{"ext.nope", []string{"g1", "g2", "mount", "sub", "nf"}},
	}
	r.NotFound(func(c *Context) error { log = append(log, "nf"); return nil })
	for _, tt := range tests {
		log = nil
		c := NewTestContext(context.Background(), tt.event, nil, nil)
		if err := r.ServeEvent(c); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(log, tt.want) {
			t.Errorf("%s: trace %v, want %v", tt.event, log, tt.want)
		}
	}
	// The With router did not leak its middleware into the parent.
	log = nil
	_ = r.ServeEvent(NewTestContext(context.Background(), "plain", nil, nil))
	if !reflect.DeepEqual(log, []string{"g1", "g2", "h:plain"}) {
		t.Errorf("parent stack changed: %v", log)
	}
	wantRoutes := []string{"ext.pin", "grouped", "grouped.with", "plain", "room.create", "room.{id}.typing", "with"}
	if got := r.Routes(); !reflect.DeepEqual(got, wantRoutes) {
		t.Errorf("Routes() = %v, want %v", got, wantRoutes)
	}
}

func TestMiddlewareShortCircuitAndErrors(t *testing.T) {
	r := NewRouter()
	deny := func(next Handler) Handler {
		return func(c *Context) error { return PermissionDenied("no") }
	}
	called := false
	r.With(deny).HandleFunc("x", func(*Context) error { called = true; return nil })
	err := r.ServeEvent(NewTestContext(context.Background(), "x", nil, nil))
	var e *Error
	if !errors.As(err, &e) || e.Code != CodePermissionDenied || called {
		t.Fatalf("err = %v, called = %v", err, called)
	}
}

func TestBind(t *testing.T) {
	type in struct {
		RoomID string   `json:"room_id"`
		Size   int      `json:"size"`
		IDs    []string `json:"ids"`
	}
	tests := []struct {
		data   string
		field  string
		wantOK bool
	}{
		{`{"room_id":"r","size":3,"ids":["a"]}`, "", true},
		{`{"room_id":"r","unknown":1}`, "", true},
		{`{"room_id":5}`, "room_id", false},
		{`{"size":"x"}`, "size", false},
		{`{"ids":"x"}`, "ids", false},
		{``, "data", false},
	}
	for _, tt := range tests {
		var data json.RawMessage
		if tt.data != "" {
			data = json.RawMessage(tt.data)
		}
		c := NewTestContext(context.Background(), "e", data, nil)
		var v in
		err := c.Bind(&v)
		if tt.wantOK {
			if err != nil {
				t.Errorf("%s: %v", tt.data, err)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeValidation {
			t.Fatalf("%s: err = %v, want 4003", tt.data, err)
		}
		d, ok := e.Detail.(map[string][]string)
		if !ok || len(d[tt.field]) != 1 {
			t.Errorf("%s: detail %#v does not name %q", tt.data, e.Detail, tt.field)
		}
	}
}

type validated struct {
	Name string `json:"name"`
}

func (v *validated) Validate() error {
	if v.Name == "" {
		return FieldError("name", "This field is required.")
	}
	return nil
}

func TestBindValidate(t *testing.T) {
	c := NewTestContext(context.Background(), "e", json.RawMessage(`{}`), nil)
	err := c.Bind(&validated{})
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeValidation {
		t.Fatalf("err = %v", err)
	}
}

func TestDecodeEnvelope(t *testing.T) {
	tests := []struct {
		in      string
		event   string
		data    string
		errCode int
	}{
		{`{"event_type":"a.b","data":{"x":1}}`, "a.b", `{"x":1}`, 0},
		{`  {"event_type":"a","data":null}`, "a", "", 0},
		{`{"event_type":"a"}`, "a", "", 0},
		{`{"data":{}}`, "", `{}`, 0},
		{`{"event_type":"a","data":[1]}`, "a", "", CodeValidation},
		{`{"event_type":"a","data":"s"}`, "a", "", CodeValidation},
		{`{"event_type":5,"data":{}}`, "", "", CodeValidation},
		{`[1,2]`, "", "", CodeValidation},
		{`"x"`, "", "", CodeValidation},
		{`{"event_type":`, "", "", CodeValidation},
		{`not json`, "", "", CodeValidation},
		{``, "", "", CodeValidation},
	}
	for _, tt := range tests {
		env, err := decodeEnvelope([]byte(tt.in))
		if tt.errCode != 0 {
			if err == nil || err.Code != tt.errCode {
				t.Errorf("%q: err = %v, want %d", tt.in, err, tt.errCode)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if env.EventType != tt.event || string(env.Data) != tt.data {
			t.Errorf("%q: got (%q, %q)", tt.in, env.EventType, env.Data)
		}
	}
}

func TestEncodeDispatch(t *testing.T) {
	for _, ev := range []string{"message.dispatch", `we"ird<>`, "ünïcode"} {
		b, err := EncodeDispatch(ev, map[string]any{"a": 1})
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			EventType string         `json:"eventType"`
			Data      map[string]int `json:"data"`
		}
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s: invalid JSON %s: %v", ev, b, err)
		}
		if out.EventType != ev || out.Data["a"] != 1 {
			t.Errorf("round trip of %q gave %+v", ev, out)
		}
	}
	b, _ := EncodeDispatch("x", json.RawMessage(`{"raw":true}`))
	if string(b) != `{"eventType":"x","data":{"raw":true}}` {
		t.Errorf("raw data: %s", b)
	}
}

func TestMountPatternVisibleToParentMiddleware(t *testing.T) {
	var seen string
	r := NewRouter()
	r.Use(func(next Handler) Handler {
		return func(c *Context) error {
			seen = c.Pattern()
			return next(c)
		}
	})
	sub := NewRouter()
	sub.HandleFunc("{id}.pin", func(c *Context) error { return nil })
	r.Mount("ext", sub)
	if err := r.ServeEvent(NewTestContext(context.Background(), "ext.5.pin", nil, nil)); err != nil {
		t.Fatal(err)
	}
	if seen != "ext.{id}.pin" {
		t.Fatalf("parent middleware saw pattern %q", seen)
	}
}
