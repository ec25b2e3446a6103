package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	oaerrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/paths"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"

	"github.com/chatmux/chatmux/internal/testenv"
)

// The server API against its document, docs/openapi.yaml: the document is
// a valid OpenAPI 3.1 document; every route of the router under /api/v1 is
// in it and every operation in it is a route; and a scenario on the real
// server (the example's assembly, memory store; PostgreSQL too) calls
// every operation until each has answered every status the document lists
// for it, each answer checked against the document: the status must be
// listed and the body must match its schema. A request meant to succeed
// must match the document's request schemas too.

// testAPIKey is the API key of the tests' servers.
const testAPIKey = "test-key-0123456789abcdef"

// openAPIPath is the document, from this package's directory.
const openAPIPath = "../../docs/openapi.yaml"

// oaDoc is the parsed document and its validator.
type oaDoc struct {
	model *v3.Document
	v     validator.Validator
	// mu serialises the validator: the tests call it from one goroutine
	// each, but subtests may run in parallel.
	mu sync.Mutex
}

// loadOpenAPI parses docs/openapi.yaml and checks it against the OpenAPI
// 3.1 schema.
func loadOpenAPI(t *testing.T) *oaDoc {
	t.Helper()
	spec, err := os.ReadFile(openAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := libopenapi.NewDocument(spec)
	if err != nil {
		t.Fatalf("parse %s: %v", openAPIPath, err)
	}
	if v := doc.GetVersion(); v != "3.1.0" {
		t.Fatalf("%s is OpenAPI %s, want 3.1.0", openAPIPath, v)
	}
	m, err := doc.BuildV3Model()
	if err != nil {
		t.Fatalf("build the model of %s: %v", openAPIPath, err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator of %s: %v", openAPIPath, errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		t.Fatalf("%s is not a valid OpenAPI document:\n%s", openAPIPath, formatErrors(verrs))
	}
	return &oaDoc{model: &m.Model, v: v}
}

func formatErrors(errs []*oaerrors.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "  - %s", e.Error())
		for _, se := range e.SchemaValidationErrors {
			fmt.Fprintf(&b, "\n      %s at %s (%s)", se.Reason, se.FieldPath, se.KeywordLocation)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// operations returns every "METHOD /path" of the document, with the
// statuses each lists.
func (d *oaDoc) operations() map[string][]string {
	out := map[string][]string{}
	for path, item := range d.model.Paths.PathItems.FromOldest() {
		for method, op := range item.GetOperations().FromOldest() {
			var codes []string
			for code := range op.Responses.Codes.FromOldest() {
				codes = append(codes, code)
			}
			out[strings.ToUpper(method)+" "+path] = codes
		}
	}
	return out
}

// routerOperations walks the router and returns every "METHOD /path" under
// /api/v1.
func routerOperations(t *testing.T, h http.Handler) map[string]bool {
	t.Helper()
	routes, ok := h.(chi.Routes)
	if !ok {
		t.Fatalf("the handler is a %T, not a chi router", h)
	}
	out := map[string]bool{}
	err := chi.Walk(routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if strings.HasPrefix(route, apiPrefix+"/") {
			out[method+" "+strings.TrimSuffix(route, "/")] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// apiServer is the example server, in process, with the API on.
type apiServer struct {
	ts   *httptest.Server
	app  *app
	logs *syncBuffer
}

// startAPIServer starts the example server as newApp assembles it, logging
// JSON lines into logs.
func startAPIServer(t *testing.T, cfg config) *apiServer {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, ts := serveApp(t, cfg, logger)
	return &apiServer{ts: ts, app: a, logs: logs}
}

// apiResult is one answer of the API.
type apiResult struct {
	status int
	header http.Header
	body   []byte
}

// decode decodes the answer's body into v.
func (r apiResult) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("answer %d %s: %v", r.status, r.body, err)
	}
}

// apiCaller calls the API of one server, checks every answer against the
// document and records which statuses each operation answered.
type apiCaller struct {
	t    *testing.T
	base string
	doc  *oaDoc
	seen map[string]map[string]bool // "METHOD /template" -> statuses
}

func newAPICaller(t *testing.T, base string, doc *oaDoc) *apiCaller {
	return &apiCaller{t: t, base: base, doc: doc, seen: map[string]map[string]bool{}}
}

// req is one call: the acting user (0: none), the body (nil: none; []byte
// sent as is, anything else as JSON) and headers to set or, with an empty
// value, to leave out.
type req struct {
	method, path string
	as           int64
	body         any
	header       map[string]string
}

// call sends r with the API key and checks the answer against the
// document; want is the status expected.
func (c *apiCaller) call(r req, want int) apiResult {
	c.t.Helper()
	var body []byte
	switch b := r.body.(type) {
	case nil:
	case []byte:
		body = b
	default:
		var err error
		if body, err = json.Marshal(b); err != nil {
			c.t.Fatal(err)
		}
	}
	newReq := func() *http.Request {
		hr, err := http.NewRequest(r.method, c.base+r.path, bytes.NewReader(body))
		if err != nil {
			c.t.Fatal(err)
		}
		hr.Header.Set("Authorization", "Bearer "+testAPIKey)
		if body != nil {
			hr.Header.Set("Content-Type", "application/json")
		}
		if r.as != 0 {
			hr.Header.Set(asUserHeader, fmt.Sprint(r.as))
		}
		for k, v := range r.header {
			if v == "" {
				hr.Header.Del(k)
			} else {
				hr.Header.Set(k, v)
			}
		}
		return hr
	}
	hr := newReq()
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		c.t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	got, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		c.t.Fatalf("%s %s: read: %v", r.method, r.path, err)
	}
	out := apiResult{status: res.StatusCode, header: res.Header, body: got}
	if res.StatusCode != want {
		c.t.Fatalf("%s %s (as %d) = %d %s; want %d", r.method, r.path, r.as, res.StatusCode, got, want)
	}

	// The answer, against the document.
	c.doc.mu.Lock()
	defer c.doc.mu.Unlock()
	vreq := newReq()
	_, perrs, template := paths.FindPath(vreq, c.doc.model, nil)
	if template == "" || len(perrs) > 0 {
		c.t.Fatalf("%s %s: not in %s: %s", r.method, r.path, openAPIPath, formatErrors(perrs))
	}
	op := r.method + " " + template
	if c.seen[op] == nil {
		c.seen[op] = map[string]bool{}
	}
	c.seen[op][fmt.Sprint(res.StatusCode)] = true
	res.Body = io.NopCloser(bytes.NewReader(got))
	if ok, errs := c.doc.v.ValidateHttpResponse(vreq, res); !ok {
		c.t.Errorf("%s %s = %d %s: the answer does not match %s:\n%s", r.method, r.path, res.StatusCode, got, openAPIPath, formatErrors(errs))
	}
	if res.StatusCode < 300 {
		if ok, errs := c.doc.v.ValidateHttpRequestSync(newReq()); !ok {
			c.t.Errorf("%s %s succeeded, but the request does not match %s:\n%s", r.method, r.path, openAPIPath, formatErrors(errs))
		}
	}
	if res.StatusCode >= 400 {
		var e apiError
		if err := json.Unmarshal(got, &e); err != nil || e.Code == 0 || httpStatus(e.Code) != res.StatusCode && !httpOnlyStatus(res.StatusCode) {
			c.t.Errorf("%s %s = %d %s: want the status of its code", r.method, r.path, res.StatusCode, got)
		}
	}
	return out
}

// httpOnlyStatus reports the statuses of the HTTP layer, whose code is
// 4003 (or 4004 for an unknown path).
func httpOnlyStatus(status int) bool {
	return status == http.StatusRequestEntityTooLarge || status == http.StatusUnsupportedMediaType || status == http.StatusMethodNotAllowed
}

// unexercised lists the statuses that the document lists and the calls
// never got, but for those skip accepts.
func (c *apiCaller) unexercised(ops map[string][]string, skip func(op, code string) bool) []string {
	var out []string
	for op, codes := range ops {
		for _, code := range codes {
			if !c.seen[op][code] && !skip(op, code) {
				out = append(out, op+" "+code)
			}
		}
	}
	sort.Strings(out)
	return out
}

// needsFailure reports the statuses that only a bug (500) or a failing
// store can produce: 503 (TestAPIStoreDown answers one), and 204 from a
// call whose change was stored but whose answer could not be read back.
func needsFailure(op, code string) bool {
	return code == "500" || code == "503" || code == "204" && op != "DELETE /api/v1/rooms/{room_id}"
}

// TestOpenAPIRoutes checks that the router's routes under /api/v1 and the
// document's operations are the same.
func TestOpenAPIRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	s := startAPIServer(t, config{APIKey: testAPIKey})
	router := routerOperations(t, s.app.Handler())
	documented := doc.operations()
	if len(router) == 0 {
		t.Fatal("no route under " + apiPrefix)
	}
	for op := range router {
		if _, ok := documented[op]; !ok {
			t.Errorf("route %s is not in %s", op, openAPIPath)
		}
	}
	for op := range documented {
		if !router[op] {
			t.Errorf("%s documents %s, which the router does not have", openAPIPath, op)
		}
	}
}

// TestOpenAPI runs the scenario on the memory store.
func TestOpenAPI(t *testing.T) {
	doc := loadOpenAPI(t)
	s := startAPIServer(t, config{APIKey: testAPIKey})
	apiScenario(t, doc, s, 0)
}

// TestOpenAPIPostgres runs the scenario on PostgreSQL (a schema of its
// own, migrated at start).
func TestOpenAPIPostgres(t *testing.T) {
	dbURL := testenv.DatabaseSchema(t, "example_api_")
	doc := loadOpenAPI(t)
	s := startAPIServer(t, config{APIKey: testAPIKey, DatabaseURL: dbURL, DBMaxConns: 4})
	apiScenario(t, doc, s, 1000)
}

// apiScenario calls every operation of the document on s until each has
// answered every status the document lists (but those of needsFailure)
// and checks the
// answers' contents where they matter. Users get ids from base+1 on.
func apiScenario(t *testing.T, doc *oaDoc, s *apiServer, base int64) {
	c := newAPICaller(t, s.ts.URL, doc)
	alice, bob, carol, dave := base+1, base+2, base+3, base+4
	const nobody = 999999
	missingRoom := "/api/v1/rooms/00000000-0000-4000-8000-000000000000"
	missingMsg := "/api/v1/messages/00000000-0000-4000-8000-000000000000"
	big := []byte(`{"content":"` + strings.Repeat("x", maxAPIBody) + `"}`)
	text := map[string]string{"Content-Type": "text/plain"}
	noKey := map[string]string{"Authorization": ""}

	// Users.
	for i, name := range []string{"alice", "bob", "carol", "dave"} {
		var u struct {
			ID       int64  `json:"id"`
			Username string `json:"username"`
		}
		path := fmt.Sprintf("/api/v1/users/%d", base+int64(i)+1)
		c.call(req{method: "PUT", path: path, body: map[string]string{"username": fmt.Sprintf("%s%d", name, base), "first_name": name}}, 200).decode(t, &u)
		if u.ID != base+int64(i)+1 || u.Username != fmt.Sprintf("%s%d", name, base) {
			t.Fatalf("PUT %s = %+v", path, u)
		}
	}
	userPath := fmt.Sprintf("/api/v1/users/%d", alice)
	c.call(req{method: "PUT", path: userPath, body: map[string]string{"username": fmt.Sprintf("alice%d", base), "last_name": "Liddell"}}, 200)
	c.call(req{method: "PUT", path: userPath, as: bob, body: map[string]string{"username": "x"}}, 400)
	c.call(req{method: "PUT", path: "/api/v1/users/0", body: map[string]string{"username": "x"}}, 400)
	c.call(req{method: "PUT", path: userPath, body: map[string]string{"username": fmt.Sprintf("bob%d", base)}}, 409)
	c.call(req{method: "PUT", path: userPath, header: noKey, body: map[string]string{"username": "x"}}, 401)
	c.call(req{method: "PUT", path: userPath, header: text, body: map[string]string{"username": "x"}}, 415)
	c.call(req{method: "PUT", path: userPath, body: big}, 413)

	// Rooms.
	var group, channel, direct struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	}
	c.call(req{method: "POST", path: "/api/v1/rooms", as: alice, body: map[string]any{
		"type": "group", "name": "Trip", "description": "Where and when", "members": []int64{bob, carol},
		"preferences": map[string]string{"theme": "dark"}}}, 201).decode(t, &group)
	c.call(req{method: "POST", path: "/api/v1/rooms", as: alice, body: map[string]any{
		"type": "channel", "name": "News", "members": []int64{bob}, "is_public": true}}, 201).decode(t, &channel)
	c.call(req{method: "POST", path: "/api/v1/rooms", as: alice, body: map[string]any{
		"type": "one_to_one", "members": []int64{carol}}}, 201).decode(t, &direct)
	if group.Type != "GroupChat" || channel.Type != "Channel" || direct.Type != "OneToOneChat" {
		t.Fatalf("rooms = %+v %+v %+v", group, channel, direct)
	}
	c.call(req{method: "POST", path: "/api/v1/rooms", body: map[string]any{"type": "group", "name": "No creator"}}, 400)
	c.call(req{method: "POST", path: "/api/v1/rooms", as: nobody, body: map[string]any{"type": "group", "name": "Ghost"}}, 404)
	c.call(req{method: "POST", path: "/api/v1/rooms", as: alice, body: map[string]any{"type": "group"}}, 400)
	c.call(req{method: "POST", path: "/api/v1/rooms", as: alice, header: noKey, body: map[string]any{"type": "group", "name": "x"}}, 401)
	c.call(req{method: "POST", path: "/api/v1/rooms", as: alice, header: text, body: map[string]any{"type": "group", "name": "x"}}, 415)
	c.call(req{method: "POST", path: "/api/v1/rooms", as: alice, body: big}, 413)
	groupPath := "/api/v1/rooms/" + group.ID
	channelPath := "/api/v1/rooms/" + channel.ID

	// PATCH /rooms/{room_id}.
	var updated struct {
		Name     string `json:"name"`
		Property struct {
			Preferences map[string]string `json:"preferences"`
		} `json:"property"`
	}
	c.call(req{method: "PATCH", path: groupPath, as: alice, body: map[string]any{"name": "Trip (Sat)", "preferences": map[string]string{"theme": "light"}}}, 200).decode(t, &updated)
	if updated.Name != "Trip (Sat)" || updated.Property.Preferences["theme"] != "light" {
		t.Errorf("updated room = %+v", updated)
	}
	c.call(req{method: "PATCH", path: groupPath, body: map[string]any{"description": "By the system"}}, 200)
	c.call(req{method: "PATCH", path: groupPath, as: bob, body: map[string]any{"name": "Mine"}}, 403)
	c.call(req{method: "PATCH", path: missingRoom, as: alice, body: map[string]any{"name": "x"}}, 404)
	c.call(req{method: "PATCH", path: "/api/v1/rooms/not-a-uuid", as: alice, body: map[string]any{"name": "x"}}, 400)
	c.call(req{method: "PATCH", path: groupPath, as: alice, header: noKey, body: map[string]any{"name": "x"}}, 401)
	c.call(req{method: "PATCH", path: groupPath, as: alice, header: text, body: map[string]any{"name": "x"}}, 415)
	c.call(req{method: "PATCH", path: groupPath, as: alice, body: big}, 413)

	// Members.
	var added struct {
		NewMembers []string `json:"new_members"`
		AddedBy    string   `json:"added_by"`
	}
	c.call(req{method: "POST", path: groupPath + "/members", as: alice, body: map[string]any{"user_ids": []int64{dave}}}, 200).decode(t, &added)
	if len(added.NewMembers) != 1 || added.NewMembers[0] != fmt.Sprintf("dave%d", base) || added.AddedBy != fmt.Sprintf("alice%d", base) {
		t.Errorf("added = %+v", added)
	}
	c.call(req{method: "POST", path: channelPath + "/members", body: map[string]any{"user_ids": []int64{carol}}}, 200).decode(t, &added)
	if added.AddedBy != "system" {
		t.Errorf("added by the system = %+v", added)
	}
	c.call(req{method: "POST", path: groupPath + "/members", as: dave, body: map[string]any{"user_ids": []int64{carol}}}, 403)
	c.call(req{method: "POST", path: groupPath + "/members", as: alice, body: map[string]any{"user_ids": []int64{nobody}}}, 404)
	c.call(req{method: "POST", path: groupPath + "/members", as: alice, body: map[string]any{"user_ids": []int64{}}}, 400)
	c.call(req{method: "POST", path: groupPath + "/members", as: alice, header: noKey, body: map[string]any{"user_ids": []int64{dave}}}, 401)
	c.call(req{method: "POST", path: groupPath + "/members", as: alice, header: text, body: map[string]any{"user_ids": []int64{dave}}}, 415)
	c.call(req{method: "POST", path: groupPath + "/members", as: alice, body: big}, 413)

	// Roles and permissions.
	var detail struct {
		Admins []struct {
			ID int64 `json:"id"`
		} `json:"admins"`
	}
	c.call(req{method: "POST", path: groupPath + "/roles/admin", as: alice, body: map[string]any{"user_ids": []int64{bob}}}, 200).decode(t, &detail)
	if len(detail.Admins) != 2 || detail.Admins[1].ID != bob {
		t.Errorf("admins after granting bob = %+v", detail.Admins)
	}
	for _, method := range []string{"POST", "DELETE"} {
		c.call(req{method: method, path: groupPath + "/roles/admin", as: carol, body: map[string]any{"user_ids": []int64{carol}}}, 403)
		c.call(req{method: method, path: missingRoom + "/roles/admin", as: alice, body: map[string]any{"user_ids": []int64{bob}}}, 404)
		c.call(req{method: method, path: groupPath + "/roles/moderator", as: alice, body: map[string]any{"user_ids": []int64{bob}}}, 400)
		c.call(req{method: method, path: groupPath + "/roles/admin", as: alice, header: noKey, body: map[string]any{"user_ids": []int64{bob}}}, 401)
		c.call(req{method: method, path: groupPath + "/roles/admin", as: alice, header: text, body: map[string]any{"user_ids": []int64{bob}}}, 415)
		c.call(req{method: method, path: groupPath + "/roles/admin", as: alice, body: big}, 413)

		c.call(req{method: method, path: channelPath + "/permissions", as: bob, body: map[string]any{"user_ids": []int64{bob}, "permissions": []string{"can_send_messages"}}}, 403)
		c.call(req{method: method, path: missingRoom + "/permissions", as: alice, body: map[string]any{"user_ids": []int64{bob}, "permissions": []string{"can_send_messages"}}}, 404)
		c.call(req{method: method, path: channelPath + "/permissions", as: alice, body: map[string]any{"user_ids": []int64{bob}, "permissions": []string{"can_fly"}}}, 400)
		c.call(req{method: method, path: channelPath + "/permissions", as: alice, header: noKey, body: map[string]any{"user_ids": []int64{bob}, "permissions": []string{"can_send_messages"}}}, 401)
		c.call(req{method: method, path: channelPath + "/permissions", as: alice, header: text, body: map[string]any{"user_ids": []int64{bob}, "permissions": []string{"can_send_messages"}}}, 415)
		c.call(req{method: method, path: channelPath + "/permissions", as: alice, body: big}, 413)
	}
	c.call(req{method: "DELETE", path: groupPath + "/roles/admin", as: alice, body: map[string]any{"user_ids": []int64{bob}}}, 200).decode(t, &detail)
	if len(detail.Admins) != 1 {
		t.Errorf("admins after taking bob's role = %+v", detail.Admins)
	}

	// Messages: bob may not post in the channel until he holds
	// can_send_messages.
	msgs := channelPath + "/messages"
	c.call(req{method: "POST", path: msgs, as: bob, body: map[string]any{"content": "hello"}}, 403)
	c.call(req{method: "POST", path: channelPath + "/permissions", as: alice, body: map[string]any{"user_ids": []int64{bob}, "permissions": []string{"can_send_messages"}}}, 200)
	type message struct {
		ID       string `json:"id"`
		Content  string `json:"content"`
		Seq      int64  `json:"seq"`
		IsSystem bool   `json:"is_system"`
		Sender   *struct {
			ID int64 `json:"id"`
		} `json:"sender"`
		IsEdited bool `json:"is_edited"`
	}
	var m1, m1again, sys, m2 message
	c.call(req{method: "POST", path: msgs, as: bob, body: map[string]any{"content": "<b>hello</b><script>x</script>", "client_msg_id": "c-1"}}, 201).decode(t, &m1)
	c.call(req{method: "POST", path: msgs, as: bob, body: map[string]any{"content": "again", "client_msg_id": "c-1"}}, 201).decode(t, &m1again)
	if m1.Content != "<b>hello</b>x" || m1.Sender == nil || m1.Sender.ID != bob || m1.IsSystem {
		t.Errorf("bob's message = %+v", m1)
	}
	if m1again.ID != m1.ID || m1again.Content != m1.Content {
		t.Errorf("a retry with the same client_msg_id = %+v, want the original %+v", m1again, m1)
	}
	c.call(req{method: "POST", path: msgs, body: map[string]any{"content": "Maintenance at 9", "media": []map[string]any{
		{"media_url": "https://example.com/a.png", "media_type": "image", "mime_type": "image/png", "file_size": 10, "metadata": map[string]int{"width": 8}},
	}}}, 201).decode(t, &sys)
	if !sys.IsSystem || sys.Sender != nil {
		t.Errorf("system message = %s", mustJSON(t, sys))
	}
	c.call(req{method: "POST", path: msgs, as: alice, body: map[string]any{"content": "a reply", "parent_message_id": m1.ID}}, 201).decode(t, &m2)
	c.call(req{method: "POST", path: msgs, as: alice, body: map[string]any{"content": "both", "parent_message_id": m1.ID, "forwarded_from_id": m1.ID}}, 409)
	c.call(req{method: "POST", path: msgs, as: alice, body: map[string]any{"content": "   "}}, 400)
	c.call(req{method: "POST", path: msgs, as: alice, body: map[string]any{"content": "x", "sender": 1}}, 400)
	c.call(req{method: "POST", path: groupPath + "/messages", as: nobody, body: map[string]any{"content": "x"}}, 404)
	c.call(req{method: "POST", path: missingRoom + "/messages", body: map[string]any{"content": "x"}}, 404)
	c.call(req{method: "DELETE", path: channelPath + "/permissions", as: alice, body: map[string]any{"user_ids": []int64{bob}, "permissions": []string{"can_send_messages"}}}, 200)
	c.call(req{method: "POST", path: msgs, as: bob, body: map[string]any{"content": "once more"}}, 403)
	c.call(req{method: "POST", path: msgs, as: alice, header: noKey, body: map[string]any{"content": "x"}}, 401)
	c.call(req{method: "POST", path: msgs, as: alice, header: text, body: map[string]any{"content": "x"}}, 415)
	c.call(req{method: "POST", path: msgs, as: alice, body: big}, 413)

	// History, in its four forms.
	var after struct {
		AfterSeq int64 `json:"after_seq"`
		HasMore  bool  `json:"has_more"`
		Data     struct {
			Messages []message `json:"messages"`
		} `json:"data"`
	}
	c.call(req{method: "GET", path: msgs + "?after_seq=0&limit=2", as: carol}, 200).decode(t, &after)
	if len(after.Data.Messages) != 2 || !after.HasMore || after.Data.Messages[0].ID != m1.ID || after.Data.Messages[1].ID != sys.ID {
		t.Errorf("after_seq=0&limit=2 = %s", mustJSON(t, after))
	}
	c.call(req{method: "GET", path: msgs + "?before_seq=3"}, 200)
	c.call(req{method: "GET", path: msgs + "?page=1&page_size=2", as: alice}, 200)
	c.call(req{method: "GET", path: msgs}, 200)
	c.call(req{method: "GET", path: msgs + "?after_seq=x"}, 400)
	c.call(req{method: "GET", path: msgs + "?after=1"}, 400)
	c.call(req{method: "GET", path: msgs, as: dave}, 403)
	c.call(req{method: "GET", path: missingRoom + "/messages"}, 404)
	c.call(req{method: "GET", path: msgs, header: noKey}, 401)

	// Edit and delete.
	var edited struct {
		Action  string  `json:"action"`
		Message message `json:"message"`
	}
	mPath := "/api/v1/messages/" + m1.ID
	c.call(req{method: "PATCH", path: mPath, as: bob, body: map[string]any{"content": "hello, edited"}}, 200).decode(t, &edited)
	if edited.Action != "update" || edited.Message.Content != "hello, edited" || !edited.Message.IsEdited {
		t.Errorf("edited = %+v", edited)
	}
	c.call(req{method: "PATCH", path: mPath, body: map[string]any{"content": "by the system"}}, 200)
	c.call(req{method: "PATCH", path: mPath, as: alice, body: map[string]any{"content": "not mine"}}, 403)
	c.call(req{method: "PATCH", path: mPath, as: bob, body: map[string]any{"content": ""}}, 400)
	c.call(req{method: "PATCH", path: missingMsg, as: bob, body: map[string]any{"content": "x"}}, 404)
	c.call(req{method: "PATCH", path: mPath, as: bob, header: noKey, body: map[string]any{"content": "x"}}, 401)
	c.call(req{method: "PATCH", path: mPath, as: bob, header: text, body: map[string]any{"content": "x"}}, 415)
	c.call(req{method: "PATCH", path: mPath, as: bob, body: big}, 413)

	c.call(req{method: "DELETE", path: mPath, as: alice}, 403)
	c.call(req{method: "DELETE", path: "/api/v1/messages/nope", as: bob}, 400)
	c.call(req{method: "DELETE", path: mPath, as: bob, header: noKey}, 401)
	var deleted struct {
		Action     string   `json:"action"`
		MessageIDs []string `json:"message_ids"`
	}
	c.call(req{method: "DELETE", path: mPath, as: bob}, 200).decode(t, &deleted)
	if deleted.Action != "delete" || len(deleted.MessageIDs) != 1 || deleted.MessageIDs[0] != m1.ID {
		t.Errorf("deleted = %+v", deleted)
	}
	c.call(req{method: "DELETE", path: mPath, as: bob}, 404)

	c.call(req{method: "DELETE", path: "/api/v1/messages", as: bob, body: map[string]any{"message_ids": []string{m2.ID}}}, 403)
	c.call(req{method: "DELETE", path: "/api/v1/messages", body: map[string]any{"message_ids": []string{}}}, 400)
	c.call(req{method: "DELETE", path: "/api/v1/messages", body: map[string]any{"message_ids": []string{m1.ID}}}, 404)
	c.call(req{method: "DELETE", path: "/api/v1/messages", header: noKey, body: map[string]any{"message_ids": []string{m2.ID}}}, 401)
	c.call(req{method: "DELETE", path: "/api/v1/messages", header: text, body: map[string]any{"message_ids": []string{m2.ID}}}, 415)
	c.call(req{method: "DELETE", path: "/api/v1/messages", body: big}, 413)
	c.call(req{method: "DELETE", path: "/api/v1/messages", body: map[string]any{"message_ids": []string{m2.ID, sys.ID}}}, 200).decode(t, &deleted)
	if len(deleted.MessageIDs) != 2 {
		t.Errorf("deleted = %+v", deleted)
	}

	// Removing members; the room deleted when left empty.
	var removed struct {
		RemovedMembers []string `json:"removed_members"`
		RemovedBy      string   `json:"removed_by"`
	}
	c.call(req{method: "DELETE", path: groupPath + "/members", as: alice, body: map[string]any{"user_ids": []int64{dave}}}, 200).decode(t, &removed)
	if len(removed.RemovedMembers) != 1 || removed.RemovedBy != fmt.Sprintf("alice%d", base) {
		t.Errorf("removed = %+v", removed)
	}
	c.call(req{method: "DELETE", path: groupPath + "/members", as: carol, body: map[string]any{"user_ids": []int64{bob}}}, 403)
	c.call(req{method: "DELETE", path: groupPath + "/members", as: alice, body: map[string]any{"user_ids": []int64{nobody}}}, 404)
	c.call(req{method: "DELETE", path: groupPath + "/members", as: alice, body: map[string]any{}}, 400)
	c.call(req{method: "DELETE", path: groupPath + "/members", as: alice, header: noKey, body: map[string]any{"user_ids": []int64{bob}}}, 401)
	c.call(req{method: "DELETE", path: groupPath + "/members", as: alice, header: text, body: map[string]any{"user_ids": []int64{bob}}}, 415)
	c.call(req{method: "DELETE", path: groupPath + "/members", as: alice, body: big}, 413)
	var gone struct {
		RoomID string `json:"room_id"`
	}
	// The creator is skipped unless they remove themself.
	c.call(req{method: "DELETE", path: groupPath + "/members", body: map[string]any{"user_ids": []int64{alice, bob, carol}}}, 200).decode(t, &removed)
	if len(removed.RemovedMembers) != 2 || removed.RemovedBy != "system" {
		t.Errorf("the system removing everyone = %+v, want bob and carol removed", removed)
	}
	c.call(req{method: "DELETE", path: groupPath + "/members", as: alice, body: map[string]any{"user_ids": []int64{alice}}}, 200).decode(t, &gone)
	if gone.RoomID != group.ID {
		t.Errorf("removing every member = %+v, want the room deleted", gone)
	}

	// Deleting a room.
	directPath := "/api/v1/rooms/" + direct.ID
	c.call(req{method: "DELETE", path: directPath, as: bob}, 403)
	c.call(req{method: "DELETE", path: directPath, as: alice, header: noKey}, 401)
	c.call(req{method: "DELETE", path: "/api/v1/rooms/x", as: alice}, 400)
	c.call(req{method: "DELETE", path: directPath, as: alice}, 204)
	c.call(req{method: "DELETE", path: directPath, as: alice}, 404)

	// Deleting a user: alice created the channel, which stays with bob
	// and carol.
	var du struct {
		UserID            int64    `json:"user_id"`
		RoomsDeleted      []string `json:"rooms_deleted"`
		RoomsLeft         []string `json:"rooms_left"`
		ConnectionsClosed bool     `json:"connections_closed"`
	}
	c.call(req{method: "DELETE", path: userPath, as: alice}, 400)
	c.call(req{method: "DELETE", path: userPath, header: noKey}, 401)
	c.call(req{method: "DELETE", path: "/api/v1/users/x"}, 400)
	c.call(req{method: "DELETE", path: userPath}, 200).decode(t, &du)
	if du.UserID != alice || len(du.RoomsLeft) != 1 || du.RoomsLeft[0] != channel.ID {
		t.Errorf("deleted user = %+v", du)
	}
	c.call(req{method: "DELETE", path: fmt.Sprintf("/api/v1/users/%d", nobody)}, 404)
	c.call(req{method: "PUT", path: userPath, body: map[string]string{"username": "alice again"}}, 409)
	var creator struct {
		Creator struct {
			Username  string `json:"username"`
			IsDeleted bool   `json:"is_deleted"`
		} `json:"creator"`
	}
	c.call(req{method: "PATCH", path: channelPath, body: map[string]any{"description": "still here"}}, 200).decode(t, &creator)
	if !creator.Creator.IsDeleted || creator.Creator.Username != fmt.Sprintf("deleted user %d", alice) {
		t.Errorf("the deleted creator = %+v", creator.Creator)
	}

	if missing := c.unexercised(doc.operations(), needsFailure); len(missing) > 0 {
		t.Errorf("statuses documented but never answered in the scenario:\n  %s", strings.Join(missing, "\n  "))
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
