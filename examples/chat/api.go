package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	chimw "github.com/go-chi/chi/v5/middleware"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/chat"
	"github.com/chatmux/chatmux/store"
)

// The server API: the operations of the chat domain's Go API (chat.Service
// SendMessage, CreateRoom, ...) as JSON over HTTP under /api/v1, for
// backends written in any language. docs/openapi.yaml documents every
// route; openapi_test.go checks the server against it.
//
// A call acts as the system unless it names a user in the As-User header
// (asUserHeader): a user runs the rules of the matching WebSocket event, as
// if that user had sent it (docs/protocol.md#events); the system skips the
// permission and membership checks but keeps every validation.

const (
	// apiPrefix is where the server API is mounted.
	apiPrefix = "/api/v1"
	// maxAPIBody bounds a request body: past it, 413.
	maxAPIBody = 1 << 20
	// asUserHeader names the user a call acts as; without it, the system.
	asUserHeader = "Chatmux-As-User"
	// apiOffDetail is the body of every /api/v1 route when no key is set.
	apiOffDetail = "The server API is off: set CHATMUX_API_KEY."
)

// chatAPI is the part of chat.Service that the server API calls.
type chatAPI interface {
	SendMessage(ctx context.Context, by chat.Actor, m chat.SendMessage) (json.RawMessage, error)
	EditMessage(ctx context.Context, by chat.Actor, id uuid.UUID, content string) (json.RawMessage, error)
	DeleteMessages(ctx context.Context, by chat.Actor, ids []uuid.UUID) (json.RawMessage, error)
	CreateRoom(ctx context.Context, creatorID int64, r chat.CreateRoom) (json.RawMessage, error)
	UpdateRoom(ctx context.Context, by chat.Actor, roomID uuid.UUID, u chat.RoomUpdate) (json.RawMessage, error)
	DeleteRoom(ctx context.Context, by chat.Actor, roomID uuid.UUID) error
	AddMembers(ctx context.Context, by chat.Actor, roomID uuid.UUID, userIDs []int64) (json.RawMessage, error)
	RemoveMembers(ctx context.Context, by chat.Actor, roomID uuid.UUID, userIDs []int64) (json.RawMessage, error)
	SetRole(ctx context.Context, by chat.Actor, roomID uuid.UUID, role chat.Role, userIDs []int64, on bool) (json.RawMessage, error)
	SetPermissions(ctx context.Context, by chat.Actor, roomID uuid.UUID, userIDs []int64, perms []string, on bool) (json.RawMessage, error)
	History(ctx context.Context, by chat.Actor, roomID uuid.UUID, q chat.HistoryQuery) (json.RawMessage, error)
	PutUser(ctx context.Context, u store.User) (json.RawMessage, error)
	DeleteUser(ctx context.Context, userID int64) (chat.DeletedUser, error)
}

// serverAPI serves /api/v1.
type serverAPI struct {
	svc    chatAPI
	logger *slog.Logger
	// keyHash is the SHA-256 of the API key: comparing hashes in constant
	// time tells nothing of the key, its length included.
	keyHash [32]byte
	on      bool

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// mountAPI mounts the server API on r at apiPrefix, with its metrics on
// reg:
//
//	chatmux_api_requests_total             counter by method, route and status
//	chatmux_api_request_duration_seconds   histogram by method and route
//
// With an empty key every /api/v1 route answers 404 and says how to turn
// the API on.
func mountAPI(r chi.Router, svc chatAPI, key string, logger *slog.Logger, reg prometheus.Registerer) {
	a := &serverAPI{
		svc:    svc,
		logger: logger,
		on:     key != "",
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "chatmux",
			Name:      "api_requests_total",
			Help:      "Calls of the server API (/api/v1) by method, route pattern and HTTP status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "chatmux",
			Name:      "api_request_duration_seconds",
			Help:      "Time to answer a call of the server API (/api/v1), by method and route pattern.",
			Buckets:   prometheus.DefBuckets,
		}, []string{"method", "route"}),
	}
	a.keyHash = sha256.Sum256([]byte(key))
	reg.MustRegister(a.requests, a.duration)
	if a.on {
		logger.Info("chat: the server API is on", "path", apiPrefix+"/", "doc", "docs/openapi.yaml")
	} else {
		logger.Info("chat: the server API is off (its routes answer 404): set CHATMUX_API_KEY to turn it on", "path", apiPrefix+"/")
	}
	r.Route(apiPrefix, a.routes)
}

// routes registers every route of the API (docs/openapi.yaml).
func (a *serverAPI) routes(r chi.Router) {
	r.Use(a.observe)
	if !a.on {
		r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusNotFound, map[string]string{"detail": apiOffDetail})
		})
		return
	}
	r.Use(a.authenticate)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		markUnmatched(r)
		a.fail(w, r, &httpError{status: http.StatusNotFound, code: chatmux.CodeNotFound,
			detail: fmt.Sprintf("No such route: %s %s (see docs/openapi.yaml).", r.Method, r.URL.Path)})
	})
	sub := r
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		markUnmatched(r)
		w.Header().Set("Allow", strings.Join(allowedMethods(sub, strings.TrimPrefix(r.URL.Path, apiPrefix)), ", "))
		a.fail(w, r, &httpError{status: http.StatusMethodNotAllowed, code: chatmux.CodeValidation,
			detail: []string{fmt.Sprintf("Method %s is not allowed on %s.", r.Method, r.URL.Path)}})
	})

	r.Post("/rooms", a.createRoom)
	r.Patch("/rooms/{room_id}", a.updateRoom)
	r.Delete("/rooms/{room_id}", a.deleteRoom)
	r.Post("/rooms/{room_id}/members", a.setMembers(true))
	r.Delete("/rooms/{room_id}/members", a.setMembers(false))
	r.Post("/rooms/{room_id}/roles/{role}", a.setRole(true))
	r.Delete("/rooms/{room_id}/roles/{role}", a.setRole(false))
	r.Post("/rooms/{room_id}/permissions", a.setPermissions(true))
	r.Delete("/rooms/{room_id}/permissions", a.setPermissions(false))
	r.Get("/rooms/{room_id}/messages", a.history)
	r.Post("/rooms/{room_id}/messages", a.sendMessage)
	r.Patch("/messages/{message_id}", a.editMessage)
	r.Delete("/messages/{message_id}", a.deleteMessage)
	r.Delete("/messages", a.deleteMessages)
	r.Put("/users/{user_id}", a.putUser)
	r.Delete("/users/{user_id}", a.deleteUser)
}

// allowedMethods lists the methods that routes answer on path, for the
// Allow header of a 405.
func allowedMethods(routes chi.Routes, path string) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if routes.Match(chi.NewRouteContext(), m, path) {
			out = append(out, m)
		}
	}
	return out
}

// apiCall is what observe learns of a call from its handler.
type apiCall struct {
	unmatched bool  // no route matched the path
	cause     error // the cause of an error answer, for the log
}

type apiCallKey struct{}

// observe logs every call (method, route pattern, status, duration,
// request id) and counts it in the API's metrics. It sets X-Request-Id on
// the answer: the id that the call's log line carries.
func (a *serverAPI) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		call := &apiCall{}
		rid := chimw.GetReqID(r.Context())
		if rid != "" {
			w.Header().Set(chimw.RequestIDHeader, rid)
		}
		ww := chimw.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r.WithContext(context.WithValue(r.Context(), apiCallKey{}, call)))
		elapsed := time.Since(start)

		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		// Calls answered before a route matched (API off, 401, unknown
		// path) count under one label: paths never become labels.
		route := "unmatched"
		if rctx := chi.RouteContext(r.Context()); a.on && !call.unmatched && rctx != nil {
			route = rctx.RoutePattern()
		}
		a.requests.WithLabelValues(r.Method, route, strconv.Itoa(status)).Inc()
		a.duration.WithLabelValues(r.Method, route).Observe(elapsed.Seconds())

		level := slog.LevelInfo
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Duration("duration", elapsed),
			slog.String("request_id", rid),
		}
		if call.cause != nil {
			attrs = append(attrs, slog.String("err", call.cause.Error()))
		}
		switch {
		case status >= 500 && status != http.StatusServiceUnavailable:
			level = slog.LevelError
		case status == http.StatusServiceUnavailable:
			level = slog.LevelWarn
		}
		a.logger.LogAttrs(r.Context(), level, "api: "+r.Method+" "+route, attrs...)
	})
}

// markUnmatched tells observe that no route of the API answers r.
func markUnmatched(r *http.Request) {
	if c, ok := r.Context().Value(apiCallKey{}).(*apiCall); ok {
		c.unmatched = true
	}
}

// authenticate refuses a call without the API key as a bearer token: 401.
func (a *serverAPI) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		got := sha256.Sum256([]byte(strings.TrimSpace(token)))
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(got[:], a.keyHash[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="chatmux"`)
			markUnmatched(r) // refused before routing
			writeJSON(w, http.StatusUnauthorized, apiError{Code: chatmux.CodeUnauthenticated,
				Detail: "Missing or wrong API key: send Authorization: Bearer <CHATMUX_API_KEY>."})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// apiError is the body of every error answer: the protocol's code and
// detail (docs/protocol.md#error-codes).
type apiError struct {
	Code   int `json:"code"`
	Detail any `json:"detail"`
}

// httpError is an error of the HTTP layer whose status is not the one of
// its code (413, 415, 405) or that no service call produced.
type httpError struct {
	status int
	code   int
	detail any
}

func (e *httpError) Error() string { return fmt.Sprintf("HTTP %d: %v", e.status, e.detail) }

// validation returns a 400 with code 4003.
func validation(detail any) *httpError {
	if s, ok := detail.(string); ok {
		detail = []string{s}
	}
	return &httpError{status: http.StatusBadRequest, code: chatmux.CodeValidation, detail: detail}
}

// fieldError returns a 400 with code 4003 naming one field.
func fieldError(field, msg string) *httpError {
	return validation(map[string][]string{field: {msg}})
}

// httpStatus maps a protocol error code to the HTTP status of its answer.
func httpStatus(code int) int {
	switch code {
	case chatmux.CodeUnauthenticated:
		return http.StatusUnauthorized
	case chatmux.CodePermissionDenied:
		return http.StatusForbidden
	case chatmux.CodeValidation:
		return http.StatusBadRequest
	case chatmux.CodeNotFound:
		return http.StatusNotFound
	case chatmux.CodeConstraint:
		return http.StatusConflict
	case chatmux.CodeUnavailable:
		return http.StatusServiceUnavailable
	case chatmux.CodeRateLimited:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

// fail answers err: an *httpError with its status, any other error as the
// protocol error it maps to (chat.StoreError, chatmux.AsError) with the
// status of its code. The cause of a 4006 or 4013 is logged, never sent.
func (a *serverAPI) fail(w http.ResponseWriter, r *http.Request, err error) {
	call, _ := r.Context().Value(apiCallKey{}).(*apiCall)
	var he *httpError
	if errors.As(err, &he) {
		writeJSON(w, he.status, apiError{Code: he.code, Detail: he.detail})
		return
	}
	e := chatmux.AsError(chat.StoreError(err))
	if call != nil && e.Err != nil {
		call.cause = e.Err
	}
	writeJSON(w, httpStatus(e.Code), apiError{Code: e.Code, Detail: e.Detail})
}

// writeJSON answers v as JSON with status; a json.RawMessage is sent as
// is.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, ok := v.(json.RawMessage)
	if !ok {
		var err error
		if b, err = json.Marshal(v); err != nil {
			status = http.StatusInternalServerError
			b = []byte(`{"code":4006,"detail":"Internal server error."}`)
		}
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b)
	_, _ = w.Write([]byte("\n"))
}

// answer writes the data of a successful call with status. A call that
// stored its change but could not read it back for its answer (the store
// failed just after the commit) returns no data and no error: that is 204,
// not an error, since a retry would do the change twice
// (docs/protocol.md#server-api).
func (a *serverAPI) answer(w http.ResponseWriter, r *http.Request, status int, data json.RawMessage, err error) {
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if len(data) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, status, data)
}

// decodeBody reads the JSON object of r's body into v: its content type
// must be application/json (else 415), it may be at most maxAPIBody bytes
// (else 413), and it may carry no field that v does not have (else 400).
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return &httpError{status: http.StatusUnsupportedMediaType, code: chatmux.CodeValidation,
			detail: []string{"The request body must be JSON: send Content-Type: application/json."}}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAPIBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	if err := dec.Decode(&json.RawMessage{}); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return bodyError(err)
		}
		return validation("The request body must be one JSON object.")
	}
	return nil
}

// bodyError maps an error of decoding a request body to its answer.
func bodyError(err error) error {
	var (
		mbe *http.MaxBytesError
		ute *json.UnmarshalTypeError
		se  *json.SyntaxError
	)
	switch {
	case errors.As(err, &mbe):
		return &httpError{status: http.StatusRequestEntityTooLarge, code: chatmux.CodeValidation,
			detail: []string{fmt.Sprintf("The request body is larger than %d bytes.", maxAPIBody)}}
	case errors.Is(err, io.EOF):
		return validation("The request body is empty: send a JSON object.")
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
		return validation("Invalid JSON.")
	case errors.As(err, &ute):
		if ute.Field == "" {
			return validation("The request body must be a JSON object.")
		}
		return fieldError(ute.Field, typeMessage(ute.Type.Kind().String()))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if f, err := strconv.Unquote(name); err == nil {
			return fieldError(f, "Unknown field.")
		}
	}
	return validation("Invalid JSON.")
}

// typeMessage is the protocol's detail for a value of the wrong JSON type
// (docs/protocol.md#validation-details).
func typeMessage(kind string) string {
	switch kind {
	case "string":
		return "Not a valid string."
	case "bool":
		return "Must be a valid boolean."
	case "int", "int64", "int32", "uint", "uint64", "float64":
		return "A valid integer is required."
	case "slice", "array":
		return "Expected a list of items."
	}
	return "Must be an object."
}

// actor reads the As-User header: the system when it is absent.
func actor(r *http.Request) (chat.Actor, error) {
	v, ok := r.Header[asUserHeader]
	if !ok {
		return chat.System, nil
	}
	id, err := positiveID(asUserHeader, strings.Join(v, ","))
	if err != nil {
		return chat.System, err
	}
	return chat.AsUser(id), nil
}

// noActor refuses the As-User header on the routes that only the system
// calls (users).
func noActor(r *http.Request) error {
	if _, ok := r.Header[asUserHeader]; ok {
		return fieldError(asUserHeader, "Users are managed by the system: this route takes no "+asUserHeader+".")
	}
	return nil
}

// positiveID parses a user id: an integer of at least 1.
func positiveID(field, s string) (int64, error) {
	id, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fieldError(field, "A valid integer is required.")
	}
	if id < 1 {
		return 0, fieldError(field, "Ensure this value is greater than or equal to 1.")
	}
	return id, nil
}

// pathUUID reads the UUID path parameter name.
func pathUUID(r *http.Request, name string) (uuid.UUID, error) {
	return parseUUID(chi.URLParam(r, name))
}

// parseUUID parses a room or message id; a malformed one is 400 with the
// protocol's detail.
func parseUUID(s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return uuid.Nil, validation("“" + s + "” is not a valid UUID.")
	}
	return id, nil
}

// nullToNil turns a JSON null into no value.
func nullToNil(b json.RawMessage) json.RawMessage {
	if string(b) == "null" {
		return nil
	}
	return b
}

// userIDs checks a list of user ids that must not be empty.
func userIDs(field string, ids []int64) error {
	if len(ids) == 0 {
		return fieldError(field, "This list may not be empty.")
	}
	return nil
}

// roomCall reads the acting user and the room of a /rooms/{room_id} route.
func roomCall(r *http.Request) (chat.Actor, uuid.UUID, error) {
	by, err := actor(r)
	if err != nil {
		return by, uuid.Nil, err
	}
	id, err := pathUUID(r, "room_id")
	return by, id, err
}

// createRoomBody is the body of POST /rooms.
type createRoomBody struct {
	Type                 string          `json:"type"`
	Name                 string          `json:"name"`
	Description          string          `json:"description"`
	Avatar               string          `json:"avatar"`
	Members              []int64         `json:"members"`
	MaxMembers           int             `json:"max_members"`
	GroupLocked          bool            `json:"group_locked"`
	JoinApprovalRequired bool            `json:"join_approval_required"`
	IsPublic             bool            `json:"is_public"`
	Preferences          json.RawMessage `json:"preferences"`
}

// createRoom: POST /rooms, as the user of the As-User header (required):
// the room's creator.
func (a *serverAPI) createRoom(w http.ResponseWriter, r *http.Request) {
	by, err := actor(r)
	if err == nil && by.IsSystem() {
		err = fieldError(asUserHeader, "This field is required: the creator of the room.")
	}
	var b createRoomBody
	if err == nil {
		err = decodeBody(w, r, &b)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	data, err := a.svc.CreateRoom(r.Context(), by.UserID, chat.CreateRoom{
		Type: b.Type, Name: b.Name, Description: b.Description, Avatar: b.Avatar,
		Members: b.Members, MaxMembers: b.MaxMembers,
		GroupLocked: b.GroupLocked, JoinApprovalRequired: b.JoinApprovalRequired, IsPublic: b.IsPublic,
		Preferences: nullToNil(b.Preferences),
	})
	a.answer(w, r, http.StatusCreated, data, err)
}

// updateRoomBody is the body of PATCH /rooms/{room_id}: absent fields are
// left as they are.
type updateRoomBody struct {
	Name                 *string         `json:"name"`
	Description          *string         `json:"description"`
	Avatar               *string         `json:"avatar"`
	GroupLocked          *bool           `json:"group_locked"`
	JoinApprovalRequired *bool           `json:"join_approval_required"`
	IsPublic             *bool           `json:"is_public"`
	Preferences          json.RawMessage `json:"preferences"`
}

// updateRoom: PATCH /rooms/{room_id}.
func (a *serverAPI) updateRoom(w http.ResponseWriter, r *http.Request) {
	by, room, err := roomCall(r)
	var b updateRoomBody
	if err == nil {
		err = decodeBody(w, r, &b)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	data, err := a.svc.UpdateRoom(r.Context(), by, room, chat.RoomUpdate{
		Name: b.Name, Description: b.Description, Avatar: b.Avatar,
		GroupLocked: b.GroupLocked, JoinApprovalRequired: b.JoinApprovalRequired, IsPublic: b.IsPublic,
		Preferences: nullToNil(b.Preferences),
	})
	a.answer(w, r, http.StatusOK, data, err)
}

// deleteRoom: DELETE /rooms/{room_id}.
func (a *serverAPI) deleteRoom(w http.ResponseWriter, r *http.Request) {
	by, room, err := roomCall(r)
	if err == nil {
		err = a.svc.DeleteRoom(r.Context(), by, room)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// usersBody is the body of the member and role routes.
type usersBody struct {
	UserIDs []int64 `json:"user_ids"`
}

// roomUsers reads what the member and role routes start with: the actor,
// the room of the path, and the body's non-empty user_ids.
func roomUsers(w http.ResponseWriter, r *http.Request) (chat.Actor, uuid.UUID, []int64, error) {
	by, room, err := roomCall(r)
	var b usersBody
	if err == nil {
		err = decodeBody(w, r, &b)
	}
	if err == nil {
		err = userIDs("user_ids", b.UserIDs)
	}
	return by, room, b.UserIDs, err
}

// setMembers: POST (add) and DELETE (remove) /rooms/{room_id}/members.
func (a *serverAPI) setMembers(add bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		by, room, ids, err := roomUsers(w, r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		var data json.RawMessage
		if add {
			data, err = a.svc.AddMembers(r.Context(), by, room, ids)
		} else {
			data, err = a.svc.RemoveMembers(r.Context(), by, room, ids)
		}
		a.answer(w, r, http.StatusOK, data, err)
	}
}

// setRole: POST (grant) and DELETE (take away) /rooms/{room_id}/roles/{role}.
func (a *serverAPI) setRole(on bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		by, room, ids, err := roomUsers(w, r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		data, err := a.svc.SetRole(r.Context(), by, room, chat.Role(chi.URLParam(r, "role")), ids, on)
		a.answer(w, r, http.StatusOK, data, err)
	}
}

// permissionsBody is the body of the permission routes.
type permissionsBody struct {
	UserIDs     []int64  `json:"user_ids"`
	Permissions []string `json:"permissions"`
}

// setPermissions: POST (grant) and DELETE (revoke) /rooms/{room_id}/permissions.
func (a *serverAPI) setPermissions(on bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		by, room, err := roomCall(r)
		var b permissionsBody
		if err == nil {
			err = decodeBody(w, r, &b)
		}
		if err == nil {
			err = userIDs("user_ids", b.UserIDs)
		}
		if err == nil && len(b.Permissions) == 0 {
			err = fieldError("permissions", "This list may not be empty.")
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
		data, err := a.svc.SetPermissions(r.Context(), by, room, b.UserIDs, b.Permissions, on)
		a.answer(w, r, http.StatusOK, data, err)
	}
}

// historyParams are the query parameters of GET /rooms/{room_id}/messages.
var historyParams = []string{"after_seq", "before_seq", "limit", "page", "page_size"}

// history: GET /rooms/{room_id}/messages.
func (a *serverAPI) history(w http.ResponseWriter, r *http.Request) {
	by, room, err := roomCall(r)
	var q chat.HistoryQuery
	if err == nil {
		q, err = historyQuery(r.URL.Query())
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	data, err := a.svc.History(r.Context(), by, room, q)
	a.answer(w, r, http.StatusOK, data, err)
}

// historyQuery reads the query parameters of GET /rooms/{room_id}/messages:
// integers, each at most once; any other parameter is 400.
func historyQuery(v url.Values) (chat.HistoryQuery, error) {
	var q chat.HistoryQuery
	for name := range v {
		if !containsString(historyParams, name) {
			return q, fieldError(name, "Unknown query parameter: use "+strings.Join(historyParams, ", ")+".")
		}
	}
	ints := make(map[string]int64, len(v))
	for _, name := range historyParams {
		vals, ok := v[name]
		if !ok {
			continue
		}
		if len(vals) != 1 {
			return q, fieldError(name, "Give this parameter once.")
		}
		n, err := strconv.ParseInt(vals[0], 10, 64)
		if err != nil {
			return q, fieldError(name, "A valid integer is required.")
		}
		ints[name] = n
	}
	if n, ok := ints["after_seq"]; ok {
		q.AfterSeq = &n
	}
	if n, ok := ints["before_seq"]; ok {
		q.BeforeSeq = &n
	}
	q.Limit = clampInt(ints["limit"])
	q.Page = clampInt(ints["page"])
	q.PageSize = clampInt(ints["page_size"])
	return q, nil
}

// clampInt converts n to an int without wrapping around.
func clampInt(n int64) int {
	const maxInt = int64(^uint(0) >> 1)
	switch {
	case n > maxInt:
		return int(maxInt)
	case n < -maxInt:
		return int(-maxInt)
	}
	return int(n)
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// sendMessageBody is the body of POST /rooms/{room_id}/messages.
type sendMessageBody struct {
	Content         string                     `json:"content"`
	ClientMsgID     string                     `json:"client_msg_id"`
	ParentMessageID *string                    `json:"parent_message_id"`
	ForwardedFromID *string                    `json:"forwarded_from_id"`
	Media           []mediaBody                `json:"media"`
	ExtraFields     map[string]json.RawMessage `json:"extra_fields"`
}

// mediaBody is one attachment of a message (docs/protocol.md#attachment).
type mediaBody struct {
	MediaURL  string          `json:"media_url"`
	MediaType string          `json:"media_type"`
	MimeType  string          `json:"mime_type"`
	Caption   string          `json:"caption"`
	FileSize  int64           `json:"file_size"`
	Metadata  json.RawMessage `json:"metadata"`
}

// sendMessage: POST /rooms/{room_id}/messages, as the acting user, or a
// system message.
func (a *serverAPI) sendMessage(w http.ResponseWriter, r *http.Request) {
	by, room, err := roomCall(r)
	var b sendMessageBody
	if err == nil {
		err = decodeBody(w, r, &b)
	}
	m := chat.SendMessage{RoomID: room, Content: b.Content, ClientMsgID: b.ClientMsgID, Extra: b.ExtraFields}
	if err == nil && b.ParentMessageID != nil {
		m.ParentID, err = optionalUUID("parent_message_id", *b.ParentMessageID)
	}
	if err == nil && b.ForwardedFromID != nil {
		m.ForwardedFromID, err = optionalUUID("forwarded_from_id", *b.ForwardedFromID)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	for _, md := range b.Media {
		m.Media = append(m.Media, chat.Media{URL: md.MediaURL, Type: md.MediaType, MimeType: md.MimeType,
			Caption: md.Caption, FileSize: md.FileSize, Metadata: nullToNil(md.Metadata)})
	}
	data, err := a.svc.SendMessage(r.Context(), by, m)
	a.answer(w, r, http.StatusCreated, data, err)
}

// optionalUUID parses the id of a referenced message.
func optionalUUID(field, s string) (*uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return nil, fieldError(field, "“"+s+"” is not a valid UUID.")
	}
	return &id, nil
}

// editBody is the body of PATCH /messages/{message_id}.
type editBody struct {
	Content string `json:"content"`
}

// editMessage: PATCH /messages/{message_id}.
func (a *serverAPI) editMessage(w http.ResponseWriter, r *http.Request) {
	by, err := actor(r)
	var id uuid.UUID
	if err == nil {
		id, err = pathUUID(r, "message_id")
	}
	var b editBody
	if err == nil {
		err = decodeBody(w, r, &b)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	data, err := a.svc.EditMessage(r.Context(), by, id, b.Content)
	a.answer(w, r, http.StatusOK, data, err)
}

// deleteMessage: DELETE /messages/{message_id}.
func (a *serverAPI) deleteMessage(w http.ResponseWriter, r *http.Request) {
	by, err := actor(r)
	var id uuid.UUID
	if err == nil {
		id, err = pathUUID(r, "message_id")
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	data, err := a.svc.DeleteMessages(r.Context(), by, []uuid.UUID{id})
	a.answer(w, r, http.StatusOK, data, err)
}

// deleteMessagesBody is the body of DELETE /messages.
type deleteMessagesBody struct {
	MessageIDs []string `json:"message_ids"`
}

// deleteMessages: DELETE /messages, several messages of one room.
func (a *serverAPI) deleteMessages(w http.ResponseWriter, r *http.Request) {
	by, err := actor(r)
	var b deleteMessagesBody
	if err == nil {
		err = decodeBody(w, r, &b)
	}
	if err == nil && len(b.MessageIDs) == 0 {
		err = fieldError("message_ids", "This list may not be empty.")
	}
	ids := make([]uuid.UUID, 0, len(b.MessageIDs))
	for _, s := range b.MessageIDs {
		if err != nil {
			break
		}
		var id uuid.UUID
		id, err = parseUUID(s)
		ids = append(ids, id)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	data, err := a.svc.DeleteMessages(r.Context(), by, ids)
	a.answer(w, r, http.StatusOK, data, err)
}

// userBody is the body of PUT /users/{user_id}.
type userBody struct {
	Username  string `json:"username"`
	Email     string `json:"email"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
}

// putUser: PUT /users/{user_id}, create or update a user.
func (a *serverAPI) putUser(w http.ResponseWriter, r *http.Request) {
	err := noActor(r)
	var id int64
	if err == nil {
		id, err = positiveID("user_id", chi.URLParam(r, "user_id"))
	}
	var b userBody
	if err == nil {
		err = decodeBody(w, r, &b)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	data, err := a.svc.PutUser(r.Context(), store.User{ID: id, Username: b.Username, Email: b.Email, FirstName: b.FirstName, LastName: b.LastName})
	a.answer(w, r, http.StatusOK, data, err)
}

// deletedUserJSON is the answer of DELETE /users/{user_id}.
type deletedUserJSON struct {
	UserID            int64       `json:"user_id"`
	RoomsDeleted      []uuid.UUID `json:"rooms_deleted"`
	RoomsLeft         []uuid.UUID `json:"rooms_left"`
	ConnectionsClosed bool        `json:"connections_closed"`
}

// deleteUser: DELETE /users/{user_id}.
func (a *serverAPI) deleteUser(w http.ResponseWriter, r *http.Request) {
	err := noActor(r)
	var id int64
	if err == nil {
		id, err = positiveID("user_id", chi.URLParam(r, "user_id"))
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	d, err := a.svc.DeleteUser(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := deletedUserJSON{UserID: d.UserID, RoomsDeleted: d.RoomsDeleted, RoomsLeft: d.RoomsLeft, ConnectionsClosed: d.ConnectionsClosed}
	if out.RoomsDeleted == nil {
		out.RoomsDeleted = []uuid.UUID{}
	}
	if out.RoomsLeft == nil {
		out.RoomsLeft = []uuid.UUID{}
	}
	writeJSON(w, http.StatusOK, out)
}
