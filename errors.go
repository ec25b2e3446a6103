package chatmux

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/coder/websocket"
)

// Error codes carried in the error envelope {"error": {"code", "detail"}}.
// They are never WebSocket close codes, except where noted. See
// docs/protocol.md#error-codes and docs/protocol.md#close-codes.
const (
	// CodeUnauthenticated is the close code of a connection whose
	// authentication failed (the only code used to close, not to answer).
	CodeUnauthenticated = 4001
	// CodePermissionDenied answers an event the user may not perform.
	CodePermissionDenied = 4002
	// CodeValidation answers malformed or invalid input.
	CodeValidation = 4003
	// CodeNotFound answers an event that names something that does not exist.
	CodeNotFound = 4004
	// CodeConstraint answers an event that would break a storage constraint.
	CodeConstraint = 4005
	// CodeInternal answers an event whose handler failed unexpectedly.
	CodeInternal = 4006
	// CodeSlowConsumer is the close code of a connection whose outbound
	// queue overflowed.
	CodeSlowConsumer = 4008
	// CodeUnavailable answers an event that failed because a dependency
	// (the store) is down or too slow: the client may retry. A $connect
	// that fails with it closes the connection with 1013 (try again
	// later).
	CodeUnavailable = 4013
	// CodeRateLimited answers an event refused by a rate limit.
	CodeRateLimited = 4029
)

// CloseUserDeleted is the close code of every connection of a user who
// was deleted for good (Server.CloseUser), and of a deleted user's attempt
// to connect again (an Authenticator or a $connect error that wraps
// ErrUserDeleted). A client treats it as final: it signs out and does not
// reconnect (docs/protocol.md#close-codes, docs/protocol.md#deleted-users).
const CloseUserDeleted = 4011

// ReasonUserDeleted is the reason that goes with CloseUserDeleted.
const ReasonUserDeleted = "user deleted"

// Fixed details of the protocol.
const (
	DetailNotFound    = "Resource not found."
	DetailConstraint  = "Database constraint violated."
	DetailInternal    = "Internal server error."
	DetailUnavailable = "Service temporarily unavailable, try again."
)

// ErrUnavailable reports that a dependency (a store, an identity provider)
// is down or too slow to answer: the client should try again later. An
// Authenticator wraps it (fmt.Errorf("failed to check the token: %w",
// chatmux.ErrUnavailable)) when it cannot check credentials, and the
// connection is closed with 1013 (try again later) instead of 4001. A
// handler error that wraps it is answered with 4013. A 4013 *Error (see
// Unavailable) matches it with errors.Is.
var ErrUnavailable = errors.New("chatmux: service temporarily unavailable")

// ErrUserDeleted reports that the user was deleted for good and may not
// connect again. An Authenticator wraps it (fmt.Errorf("user %d: %w", id,
// chatmux.ErrUserDeleted)) and the connection is closed with
// CloseUserDeleted (4011) instead of 4001; a $connect handler error that
// wraps it closes the connection with 4011 too. A UserDeleted *Error
// matches it with errors.Is.
var ErrUserDeleted = errors.New("chatmux: user deleted")

// Error is an error with a protocol code and a detail for the client. The
// detail is a string, a list of strings or an object of field names to lists
// of strings; it is sent as is. Err, when set, is the cause: logged, never
// sent.
type Error struct {
	Code   int
	Detail any
	Err    error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("chatmux: error %d: %v: %v", e.Code, e.Detail, e.Err)
	}
	return fmt.Sprintf("chatmux: error %d: %v", e.Code, e.Detail)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports that a 4013 error is ErrUnavailable and a 4011 error
// ErrUserDeleted.
func (e *Error) Is(target error) bool {
	return (target == ErrUnavailable && e.Code == CodeUnavailable) ||
		(target == ErrUserDeleted && e.Code == CloseUserDeleted)
}

// NewError returns an Error with the given code and detail.
func NewError(code int, detail any) *Error { return &Error{Code: code, Detail: detail} }

// PermissionDenied returns a 4002 error with the given detail.
func PermissionDenied(detail string) *Error {
	return &Error{Code: CodePermissionDenied, Detail: detail}
}

// Validation returns a 4003 error. A string detail is sent as a one-element
// list, as the protocol does; a list or a field map is sent as is.
func Validation(detail any) *Error {
	if s, ok := detail.(string); ok {
		detail = []string{s}
	}
	return &Error{Code: CodeValidation, Detail: detail}
}

// FieldError returns a 4003 error whose detail names one field:
// {"field": ["message"]}.
func FieldError(field, message string) *Error {
	return &Error{Code: CodeValidation, Detail: map[string][]string{field: {message}}}
}

// NotFound returns a 4004 error with the protocol's fixed detail.
func NotFound() *Error { return &Error{Code: CodeNotFound, Detail: DetailNotFound} }

// Constraint returns a 4005 error with the protocol's fixed detail, keeping
// cause for the log.
func Constraint(cause error) *Error {
	return &Error{Code: CodeConstraint, Detail: DetailConstraint, Err: cause}
}

// Internal returns a 4006 error with the protocol's fixed detail, keeping
// cause for the log.
func Internal(cause error) *Error {
	return &Error{Code: CodeInternal, Detail: DetailInternal, Err: cause}
}

// Unavailable returns a 4013 error with the protocol's fixed detail, keeping
// cause for the log.
func Unavailable(cause error) *Error {
	return &Error{Code: CodeUnavailable, Detail: DetailUnavailable, Err: cause}
}

// UserDeleted returns a CloseUserDeleted (4011) error with the detail
// ReasonUserDeleted, keeping cause for the log. Returned by $connect, it
// closes the connection with 4011.
func UserDeleted(cause error) *Error {
	return &Error{Code: CloseUserDeleted, Detail: ReasonUserDeleted, Err: cause}
}

// RateLimited returns a 4029 error whose detail states the limit.
func RateLimited(detail string) *Error { return &Error{Code: CodeRateLimited, Detail: detail} }

// AsError returns err as an *Error: itself when it is (or wraps) one, a
// 4013 error when it wraps ErrUnavailable, a 4011 error (UserDeleted) when
// it wraps ErrUserDeleted, else a 4006 internal error. The new error keeps
// err as its cause.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, ErrUnavailable) {
		return Unavailable(err)
	}
	if errors.Is(err, ErrUserDeleted) {
		return UserDeleted(err)
	}
	return Internal(err)
}

// CloseStatus returns the WebSocket close code of err, or -1 when err is not
// a close error. It reads the codes chatmux closes with (4001, 4008, 4011,
// 1001, 1009) as well as any other.
func CloseStatus(err error) int {
	return int(websocket.CloseStatus(err))
}

type errorBody struct {
	Code   int `json:"code"`
	Detail any `json:"detail"`
}

func encodeError(e *Error) ([]byte, error) {
	return json.Marshal(struct {
		Error errorBody `json:"error"`
	}{errorBody{e.Code, e.Detail}})
}

// detailText renders an error's detail as plain text, for a close reason:
// a string as is, a list of strings joined by spaces, a map of fields to
// messages as "field: message" pairs in field order, anything else as JSON.
func detailText(detail any) string {
	switch d := detail.(type) {
	case nil:
		return ""
	case string:
		return d
	case []string:
		return strings.Join(d, " ")
	case map[string][]string:
		keys := make([]string, 0, len(d))
		for k := range d {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ": " + strings.Join(d[k], " ")
		}
		return strings.Join(parts, "; ")
	}
	b, err := json.Marshal(detail)
	if err != nil {
		return ""
	}
	return string(b)
}
