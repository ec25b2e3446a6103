package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// The error codes of docs/protocol.md#error-codes.
const (
	CodePermissionDenied = 4002
	CodeValidation       = 4003
	CodeNotFound         = 4004
	CodeConstraint       = 4005
	CodeInternal         = 4006
	CodeUnavailable      = 4013
	CodeRateLimited      = 4029
)

// The close codes the client acts on (docs/protocol.md#close-codes).
const (
	CloseNormal         = 1000
	CloseUnsupported    = 1007
	CloseTooBig         = 1009
	CloseAuthFailed     = 4001
	CloseSlowConsumer   = 4008
	CloseUserDeleted    = 4011
	closeNoStatus       = 1006
	closeNotAClose      = -1
	batchSubprotocol    = "chatmux.batch.v1"
	defaultTokenParam   = "token"
	defaultUserParam    = "user"
	maxClientMsgIDBytes = 64
)

// Errors a request, a send or the client itself ends with.
var (
	// ErrClosed: the client was closed (Close) before the request could be
	// sent or answered.
	ErrClosed = errors.New("chatmux client: closed")
	// ErrSignedOut: the server refused the credentials (4001) twice in a
	// row, or once without a TokenFunc to refresh them, or TokenFunc
	// returned ErrNoToken. The client stopped.
	ErrSignedOut = errors.New("chatmux client: signed out")
	// ErrUserDeleted: the server closed the connection with 4011, the
	// user was deleted. The client stopped.
	ErrUserDeleted = errors.New("chatmux client: user deleted (4011)")
	// ErrSessionEnded: the server closed the connection with 1000, a
	// normal closure that asks for nothing. The client stopped; unsent
	// messages are in PendingMessages, for a new client's
	// Options.RestoreOutbox.
	ErrSessionEnded = errors.New("chatmux client: the server ended the session (1000)")
	// ErrNoRequestID: the server does not echo request_id
	// (docs/protocol.md#request-id), which this client needs. The client
	// stopped.
	ErrNoRequestID = errors.New("chatmux client: the server does not echo request_id")
	// ErrConnectionLost: the connection closed before the request got its
	// final answer; it may or may not have been handled.
	ErrConnectionLost = errors.New("chatmux client: connection lost")
	// ErrRequestTimeout: the request got no final answer within
	// Options.RequestTimeout (waiting for a connection included).
	ErrRequestTimeout = errors.New("chatmux client: no answer in time")
	// ErrOutboxFull: the outbox holds Options.OutboxMax unsent messages.
	ErrOutboxFull = errors.New("chatmux client: the outbox is full")
	// ErrNoToken is what a TokenFunc returns to sign the user out: the
	// client stops with ErrSignedOut.
	ErrNoToken = errors.New("chatmux client: no token")
)

// ServerError is an error envelope the server sent in answer to a request
// (docs/protocol.md#errors); the connection stays open. Code is 4002-4006,
// 4013 or 4029; Code 0 with Detail "invalid event type" is the answer to an
// event the server does not know.
type ServerError struct {
	// Code is the error code (0 for the bare-string error).
	Code int
	// Detail is the error's detail as sent: a JSON string, list or object.
	Detail json.RawMessage
	// EventType is the event the error answers.
	EventType string
}

// Error implements error.
func (e *ServerError) Error() string {
	var b strings.Builder
	if e.EventType != "" {
		b.WriteString(e.EventType + ": ")
	}
	if e.Code != 0 {
		fmt.Fprintf(&b, "%d ", e.Code)
	}
	b.WriteString(e.DetailText())
	return b.String()
}

// DetailText returns the detail as one line of text.
func (e *ServerError) DetailText() string {
	var s string
	if json.Unmarshal(e.Detail, &s) == nil {
		return s
	}
	var list []string
	if json.Unmarshal(e.Detail, &list) == nil {
		return strings.Join(list, " ")
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(e.Detail, &fields) == nil {
		var parts []string
		for k, v := range fields {
			var vs []string
			if json.Unmarshal(v, &vs) == nil {
				parts = append(parts, k+": "+strings.Join(vs, " "))
			} else {
				parts = append(parts, k+": "+string(v))
			}
		}
		sortStrings(parts)
		return strings.Join(parts, "; ")
	}
	return string(e.Detail)
}

// FrameRejectedError: the server cannot read the request's frame, so the
// client never sends it (again) (docs/protocol.md#close-codes). Code 1009:
// the frame is over the server's read limit, known beforehand
// (Options.MaxFrameBytes, or the limit a 1009 close stated) or named by a
// 1009 close. Code 1007: the server closed the connection with 1007 on this
// frame. A message of the outbox refused so leaves the outbox; nothing was
// stored.
type FrameRejectedError struct {
	Code      int
	Bytes     int
	Limit     int
	EventType string
}

// Error implements error.
func (e *FrameRejectedError) Error() string {
	if e.Code == CloseUnsupported {
		return fmt.Sprintf("%s: the server closed the connection on this frame: not valid UTF-8 (1007)", e.EventType)
	}
	if e.Limit > 0 {
		return fmt.Sprintf("%s: a frame of %d bytes is over the server's limit of %d (1009)", e.EventType, e.Bytes, e.Limit)
	}
	return fmt.Sprintf("%s: the server closed the connection on a frame of %d bytes, over its limit (1009)", e.EventType, e.Bytes)
}

// IsCode reports whether err is a ServerError with the code.
func IsCode(err error, code int) bool {
	var se *ServerError
	return errors.As(err, &se) && se.Code == code
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
