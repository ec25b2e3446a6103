package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/groups"
)

// Tests of the HTTP layer of the server API: the key, the bodies, the
// statuses of the protocol's codes, the log line and the metrics of each
// call, and that a call reaches the WebSocket clients.

// rawCall sends one request to the API and returns its status, headers
// and body.
func rawCall(t *testing.T, base, method, path string, header map[string]string, body []byte) (int, http.Header, string) {
	t.Helper()
	r, err := http.NewRequest(method, base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, strings.TrimSuffix(string(b), "\n")
}

// keyed returns headers with the test key and a JSON content type, plus
// kv (name, value, ...).
func keyed(kv ...string) map[string]string {
	h := map[string]string{"Authorization": "Bearer " + testAPIKey, "Content-Type": "application/json"}
	for i := 0; i+1 < len(kv); i += 2 {
		h[kv[i]] = kv[i+1]
	}
	return h
}

// TestAPIOff checks that without a key every /api/v1 route answers 404
// and says how to turn the API on, whatever the credentials.
func TestAPIOff(t *testing.T) {
	s := startAPIServer(t, config{})
	for _, path := range []string{"/api/v1/rooms", "/api/v1/users/1", "/api/v1/", "/api/v1", "/api/v1/nope"} {
		for _, method := range []string{"GET", "POST", "PUT", "DELETE"} {
			code, h, body := rawCall(t, s.ts.URL, method, path, keyed(), []byte(`{"username":"x"}`))
			if code != http.StatusNotFound || body != `{"detail":"The server API is off: set CHATMUX_API_KEY."}` || h.Get("Content-Type") != "application/json" {
				t.Errorf("%s %s with the API off = %d %s %q", method, path, code, h.Get("Content-Type"), body)
			}
		}
	}
	if routes := routerOperations(t, s.app.Handler()); len(routes) != 0 {
		t.Errorf("routes under /api/v1 with the API off: %v", routes)
	}
	// The page is still served.
	if code, _, _ := rawCall(t, s.ts.URL, "GET", "/healthz", nil, nil); code != http.StatusOK {
		t.Errorf("/healthz = %d", code)
	}
}

// TestAPIAuth checks the bearer key: missing, wrong, another scheme and a
// lowercase scheme; an unknown path is 401 before 404, so the routes are
// not told to a caller without the key.
func TestAPIAuth(t *testing.T) {
	s := startAPIServer(t, config{APIKey: testAPIKey})
	user := []byte(`{"username":"ann"}`)
	const unauthorized = `{"code":4001,"detail":"Missing or wrong API key: send Authorization: Bearer \u003cCHATMUX_API_KEY\u003e."}`
	for _, tt := range []struct {
		name, auth, path string
		code             int
	}{
		{"no header", "", "/api/v1/users/1", 401},
		{"wrong key", "Bearer " + testAPIKey + "x", "/api/v1/users/1", 401},
		{"a prefix of the key", "Bearer " + testAPIKey[:10], "/api/v1/users/1", 401},
		{"empty key", "Bearer ", "/api/v1/users/1", 401},
		{"basic", "Basic " + testAPIKey, "/api/v1/users/1", 401},
		{"the key alone", testAPIKey, "/api/v1/users/1", 401},
		{"unknown path without key", "", "/api/v1/secret", 401},
		{"lowercase scheme", "bearer " + testAPIKey, "/api/v1/users/1", 200},
		{"key", "Bearer " + testAPIKey, "/api/v1/users/1", 200},
	} {
		h := map[string]string{"Content-Type": "application/json"}
		if tt.auth != "" {
			h["Authorization"] = tt.auth
		}
		code, hd, body := rawCall(t, s.ts.URL, "PUT", tt.path, h, user)
		if code != tt.code {
			t.Errorf("%s: %d %s, want %d", tt.name, code, body, tt.code)
			continue
		}
		if code == 401 && (body != unauthorized || hd.Get("WWW-Authenticate") != `Bearer realm="chatmux"`) {
			t.Errorf("%s: 401 %q WWW-Authenticate %q", tt.name, body, hd.Get("WWW-Authenticate"))
		}
	}

	// With the key: an unknown path is 404, a known path with another
	// method 405 with Allow.
	code, _, body := rawCall(t, s.ts.URL, "GET", "/api/v1/secret", keyed(), nil)
	if code != 404 || body != `{"code":4004,"detail":"No such route: GET /api/v1/secret (see docs/openapi.yaml)."}` {
		t.Errorf("unknown path = %d %s", code, body)
	}
	code, hd, body := rawCall(t, s.ts.URL, "GET", "/api/v1/rooms", keyed(), nil)
	if code != 405 || hd.Get("Allow") != "POST" || body != `{"code":4003,"detail":["Method GET is not allowed on /api/v1/rooms."]}` {
		t.Errorf("GET /api/v1/rooms = %d Allow %q %s", code, hd.Get("Allow"), body)
	}
	code, hd, _ = rawCall(t, s.ts.URL, "PUT", "/api/v1/rooms/"+"00000000-0000-4000-8000-000000000000", keyed(), nil)
	if code != 405 || hd.Get("Allow") != "PATCH, DELETE" {
		t.Errorf("PUT /api/v1/rooms/{id} = %d Allow %q", code, hd.Get("Allow"))
	}
}

// TestAPIBodies checks the request bodies: the content type, the size
// bound, unknown fields, wrong types, malformed JSON, and the acting
// user's header.
func TestAPIBodies(t *testing.T) {
	s := startAPIServer(t, config{APIKey: testAPIKey})
	put := func(h map[string]string, body []byte) (int, string) {
		t.Helper()
		code, _, b := rawCall(t, s.ts.URL, "PUT", "/api/v1/users/7", h, body)
		return code, b
	}
	// A body of exactly the bound is read; one byte more is 413.
	exact := []byte(`{"username":"ann"}`)
	exact = append(exact, bytes.Repeat([]byte(" "), maxAPIBody-len(exact))...)
	if code, b := put(keyed(), exact); code != 200 {
		t.Errorf("a body of %d bytes = %d %s", len(exact), code, b)
	}
	if code, b := put(keyed(), append(exact, ' ')); code != 413 || b != `{"code":4003,"detail":["The request body is larger than 1048576 bytes."]}` {
		t.Errorf("a body of %d bytes = %d %s", len(exact)+1, code, b)
	}

	for _, tt := range []struct {
		name   string
		header map[string]string
		body   string
		code   int
		want   string
	}{
		{"charset", keyed("Content-Type", "application/json; charset=utf-8"), `{"username":"ann"}`, 200, `"username":"ann"`},
		{"no content type", map[string]string{"Authorization": "Bearer " + testAPIKey}, `{"username":"ann"}`, 415,
			`{"code":4003,"detail":["The request body must be JSON: send Content-Type: application/json."]}`},
		{"form", keyed("Content-Type", "application/x-www-form-urlencoded"), `username=ann`, 415, `"code":4003`},
		{"unknown field", keyed(), `{"username":"ann","nickname":"a"}`, 400, `{"code":4003,"detail":{"nickname":["Unknown field."]}}`},
		{"wrong type", keyed(), `{"username":7}`, 400, `{"code":4003,"detail":{"username":["Not a valid string."]}}`},
		{"not an object", keyed(), `["ann"]`, 400, `{"code":4003,"detail":["The request body must be a JSON object."]}`},
		{"two objects", keyed(), `{"username":"ann"}{"username":"bob"}`, 400, `{"code":4003,"detail":["The request body must be one JSON object."]}`},
		{"malformed", keyed(), `{"username":`, 400, `{"code":4003,"detail":["Invalid JSON."]}`},
		{"syntax", keyed(), `{username}`, 400, `{"code":4003,"detail":["Invalid JSON."]}`},
		{"empty", keyed(), ``, 400, `{"code":4003,"detail":["The request body is empty: send a JSON object."]}`},
		{"blank username", keyed(), `{"username":""}`, 400, `{"code":4003,"detail":{"username":["This field may not be blank."]}}`},
		{"as user", keyed(asUserHeader, "1"), `{"username":"ann"}`, 400, `"detail":{"Chatmux-As-User":`},
	} {
		code, b := put(tt.header, []byte(tt.body))
		if code != tt.code || !strings.Contains(b, tt.want) {
			t.Errorf("%s: %d %s, want %d with %s", tt.name, code, b, tt.code, tt.want)
		}
	}

	// Nested and list fields, and the acting user's header.
	for _, tt := range []struct {
		name, path, as, body string
		want                 string
	}{
		{"float id", "/api/v1/rooms", "7", `{"type":"group","name":"g","members":[1.5]}`, `{"code":4003,"detail":{"members":["A valid integer is required."]}}`},
		{"string id", "/api/v1/rooms", "7", `{"type":"group","name":"g","members":"1"}`, `{"code":4003,"detail":{"members":["Expected a list of items."]}}`},
		{"as user not a number", "/api/v1/rooms", "me", `{"type":"group","name":"g"}`, `{"code":4003,"detail":{"Chatmux-As-User":["A valid integer is required."]}}`},
		{"as user zero", "/api/v1/rooms", "0", `{"type":"group","name":"g"}`, `{"code":4003,"detail":{"Chatmux-As-User":["Ensure this value is greater than or equal to 1."]}}`},
		{"media field", "/api/v1/rooms/00000000-0000-4000-8000-000000000000/messages", "", `{"media":[{"media_url":"https://x.org/a","size":1}]}`, `{"code":4003,"detail":{"size":["Unknown field."]}}`},
		{"media type", "/api/v1/rooms/00000000-0000-4000-8000-000000000000/messages", "", `{"media":[{"media_url":"https://x.org/a","file_size":"1"}]}`, `{"code":4003,"detail":{"media.file_size":["A valid integer is required."]}}`},
		{"parent id", "/api/v1/rooms/00000000-0000-4000-8000-000000000000/messages", "", `{"content":"x","parent_message_id":"p"}`, `{"code":4003,"detail":{"parent_message_id":["“p” is not a valid UUID."]}}`},
	} {
		h := keyed()
		if tt.as != "" {
			h[asUserHeader] = tt.as
		}
		method := "POST"
		code, _, b := rawCall(t, s.ts.URL, method, tt.path, h, []byte(tt.body))
		if code != 400 || b != tt.want {
			t.Errorf("%s: %d %s, want 400 %s", tt.name, code, b, tt.want)
		}
	}
	code, _, b := rawCall(t, s.ts.URL, "GET", "/api/v1/rooms/00000000-0000-4000-8000-00000000000/messages", keyed(), nil)
	if code != 400 || b != `{"code":4003,"detail":["“00000000-0000-4000-8000-00000000000” is not a valid UUID."]}` {
		t.Errorf("a short room id = %d %s", code, b)
	}
	code, _, b = rawCall(t, s.ts.URL, "GET", "/api/v1/rooms/00000000-0000-4000-8000-000000000000/messages?limit=1&limit=2", keyed(), nil)
	if code != 400 || b != `{"code":4003,"detail":{"limit":["Give this parameter once."]}}` {
		t.Errorf("limit twice = %d %s", code, b)
	}
}

// TestAPIHTTPStatus checks the status of each protocol code.
func TestAPIHTTPStatus(t *testing.T) {
	for code, want := range map[int]int{
		chatmux.CodeUnauthenticated:  401,
		chatmux.CodePermissionDenied: 403,
		chatmux.CodeValidation:       400,
		chatmux.CodeNotFound:         404,
		chatmux.CodeConstraint:       409,
		chatmux.CodeInternal:         500,
		chatmux.CodeUnavailable:      503,
		chatmux.CodeRateLimited:      429,
		4999:                         500,
	} {
		if got := httpStatus(code); got != want {
			t.Errorf("httpStatus(%d) = %d, want %d", code, got, want)
		}
	}
}

// TestAPIObserved checks that each call is logged (method, route pattern,
// status, duration, request id) and counted in /metrics by route and
// status, with its latency.
func TestAPIObserved(t *testing.T) {
	s := startAPIServer(t, config{APIKey: testAPIKey})
	code, h, body := rawCall(t, s.ts.URL, "PUT", "/api/v1/users/5", keyed("X-Request-Id", "req-42"), []byte(`{"username":"eve"}`))
	if code != 200 || h.Get("X-Request-Id") != "req-42" {
		t.Fatalf("PUT = %d %s X-Request-Id %q", code, body, h.Get("X-Request-Id"))
	}
	code, h, _ = rawCall(t, s.ts.URL, "DELETE", "/api/v1/rooms/00000000-0000-4000-8000-000000000000", keyed(), nil)
	if code != 404 || h.Get("X-Request-Id") == "" {
		t.Fatalf("DELETE = %d X-Request-Id %q", code, h.Get("X-Request-Id"))
	}
	generated := h.Get("X-Request-Id")
	rawCall(t, s.ts.URL, "GET", "/api/v1/nope/1", nil, nil)

	type line struct {
		Level     string  `json:"level"`
		Msg       string  `json:"msg"`
		Method    string  `json:"method"`
		Route     string  `json:"route"`
		Status    int     `json:"status"`
		Duration  float64 `json:"duration"`
		RequestID string  `json:"request_id"`
	}
	var got []line
	sc := bufio.NewScanner(strings.NewReader(s.logs.String()))
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err == nil && strings.HasPrefix(l.Msg, "api: ") {
			got = append(got, l)
		}
	}
	want := []line{
		{Level: "INFO", Msg: "api: PUT /api/v1/users/{user_id}", Method: "PUT", Route: "/api/v1/users/{user_id}", Status: 200, RequestID: "req-42"},
		{Level: "INFO", Msg: "api: DELETE /api/v1/rooms/{room_id}", Method: "DELETE", Route: "/api/v1/rooms/{room_id}", Status: 404, RequestID: generated},
		{Level: "INFO", Msg: "api: GET unmatched", Method: "GET", Route: "unmatched", Status: 401},
	}
	if len(got) != len(want) {
		t.Fatalf("api log lines = %+v, want %d:\n%s", got, len(want), s.logs.String())
	}
	for i := range want {
		g := got[i]
		if g.Duration <= 0 {
			t.Errorf("line %d has no duration: %+v", i, g)
		}
		g.Duration = 0
		if want[i].RequestID == "" {
			want[i].RequestID = g.RequestID
		}
		if g != want[i] || g.RequestID == "" {
			t.Errorf("log line %d = %+v, want %+v", i, g, want[i])
		}
	}

	waitMetrics(t, s.ts,
		`chatmux_api_requests_total{method="PUT",route="/api/v1/users/{user_id}",status="200"} 1`,
		`chatmux_api_requests_total{method="DELETE",route="/api/v1/rooms/{room_id}",status="404"} 1`,
		`chatmux_api_requests_total{method="GET",route="unmatched",status="401"} 1`,
		`chatmux_api_request_duration_seconds_count{method="PUT",route="/api/v1/users/{user_id}"} 1`,
	)
}

// TestAPIStoreDown checks that a call while the store is down answers 503
// with the protocol's detail, as the document says.
func TestAPIStoreDown(t *testing.T) {
	doc := loadOpenAPI(t)
	st := newSwitchStore(t, switchDown)
	ts, _ := serveWired(t, config{APIKey: testAPIKey}, st, groups.NewMemory())
	c := newAPICaller(t, ts.URL, doc)
	res := c.call(req{method: "PUT", path: "/api/v1/users/1", body: map[string]string{"username": "ann"}}, 503)
	if got := string(bytes.TrimSpace(res.body)); got != `{"code":4013,"detail":"Service temporarily unavailable, try again."}` {
		t.Errorf("503 body = %s", got)
	}
}

// TestAPIReachesSockets checks that the calls publish what their
// WebSocket events publish: a member's socket gets a system message and
// the room's changes, and a deleted user's socket is closed with 4011.
func TestAPIReachesSockets(t *testing.T) {
	s := startAPIServer(t, config{APIKey: testAPIKey})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.ts.URL, "http")+wsPath+"?user=zoe", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	frames := make(chan map[string]json.RawMessage, 64)
	closed := make(chan error, 1)
	go func() {
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				closed <- err
				close(frames)
				return
			}
			var f map[string]json.RawMessage
			if json.Unmarshal(b, &f) == nil {
				frames <- f
			}
		}
	}()
	next := func(eventType string) json.RawMessage {
		t.Helper()
		for f := range frames {
			var et string
			_ = json.Unmarshal(f["eventType"], &et)
			if et == eventType {
				return f["data"]
			}
		}
		t.Fatalf("the socket closed before %s", eventType)
		return nil
	}
	next("chat.notifications")
	var me struct{ ID int64 }
	code, _, body := rawCall(t, s.ts.URL, "GET", "/me?user=zoe", nil, nil)
	if code != 200 {
		t.Fatalf("/me = %d %s", code, body)
	}
	if err := json.Unmarshal([]byte(body), &me); err != nil {
		t.Fatal(err)
	}

	base := newAPICaller(t, s.ts.URL, loadOpenAPI(t))
	var room struct{ ID string }
	base.call(req{method: "PUT", path: "/api/v1/users/100", body: map[string]string{"username": "yan"}}, 200)
	base.call(req{method: "POST", path: "/api/v1/rooms", as: 100, body: map[string]any{"type": "group", "name": "Ops", "members": []int64{me.ID}}}, 201).decode(t, &room)
	var created struct{ ID, Name string }
	if err := json.Unmarshal(next("roomcreate.dispatch"), &created); err != nil || created.ID != room.ID || created.Name != "Ops" {
		t.Errorf("roomcreate.dispatch = %+v (%v), want room %s", created, err, room.ID)
	}
	base.call(req{method: "POST", path: "/api/v1/rooms/" + room.ID + "/messages", body: map[string]any{"content": "Deploy at 5", "client_msg_id": "sys-1"}}, 201)
	var m struct {
		Content  string          `json:"content"`
		IsSystem bool            `json:"is_system"`
		Sender   json.RawMessage `json:"sender"`
	}
	if err := json.Unmarshal(next("message.dispatch"), &m); err != nil || m.Content != "Deploy at 5" || !m.IsSystem || string(m.Sender) != "null" {
		t.Errorf("message.dispatch = %+v (%v)", m, err)
	}
	base.call(req{method: "PATCH", path: "/api/v1/rooms/" + room.ID, as: 100, body: map[string]any{"name": "Ops 2"}}, 200)
	if err := json.Unmarshal(next("roomupdate.dispatch"), &created); err != nil || created.Name != "Ops 2" {
		t.Errorf("roomupdate.dispatch = %+v (%v)", created, err)
	}

	// Deleting zoe closes her socket with 4011.
	var du struct {
		ConnectionsClosed bool `json:"connections_closed"`
	}
	base.call(req{method: "DELETE", path: fmt.Sprintf("/api/v1/users/%d", me.ID)}, 200).decode(t, &du)
	if !du.ConnectionsClosed {
		t.Errorf("deleting a connected user: %+v", du)
	}
	for range frames {
	}
	if err := <-closed; websocket.CloseStatus(err) != 4011 {
		t.Errorf("the deleted user's socket ended with %v, want close 4011", err)
	}
}

// TestAPIKeyConfig checks the API key's settings: the variable, the flag
// (which wins) and the minimum length.
func TestAPIKeyConfig(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	cfg, err := parseConfig(nil, env(map[string]string{"CHATMUX_API_KEY": testAPIKey}), io.Discard)
	if err != nil || cfg.APIKey != testAPIKey {
		t.Errorf("from the environment: %q, %v", cfg.APIKey, err)
	}
	cfg, err = parseConfig([]string{"-api-key", testAPIKey + "2"}, env(map[string]string{"CHATMUX_API_KEY": testAPIKey}), io.Discard)
	if err != nil || cfg.APIKey != testAPIKey+"2" {
		t.Errorf("the flag over the environment: %q, %v", cfg.APIKey, err)
	}
	cfg, err = parseConfig(nil, env(nil), io.Discard)
	if err != nil || cfg.APIKey != "" {
		t.Errorf("no key: %q, %v", cfg.APIKey, err)
	}
	_, err = parseConfig(nil, env(map[string]string{"CHATMUX_API_KEY": "short"}), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "at least 16 characters, not 5") || strings.Contains(err.Error(), "short") {
		t.Errorf("a short key: %v", err)
	}
}
