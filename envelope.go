package chatmux

import (
	"bytes"
	"encoding/json"
	"sync"
)

// envelope is the client-to-server frame: {"event_type": "...", "data": {...}}
// (docs/protocol.md#client-envelope), with an optional "request_id"
// (docs/protocol.md#request-id).
type envelope struct {
	EventType    string          `json:"event_type"`
	Data         json.RawMessage `json:"data"`
	RawRequestID json.RawMessage `json:"request_id"`

	// requestID is request_id decoded; hasRequestID reports that it was
	// a string (valid or not), to be echoed in the answers.
	requestID    string
	hasRequestID bool
}

var nullJSON = []byte("null")

// maxRequestIDLen is the longest request_id, in bytes.
const maxRequestIDLen = 64

// decodeEnvelope decodes one client frame. It returns a 4003 *Error when the
// frame is not a JSON object, when event_type is not a string, when data is
// present and neither an object nor null, or when request_id is present and
// not a string of 1 to 64 bytes. A missing event_type leaves Event empty (the
// router answers it as an unknown event). Data is nil when absent or null; a
// null request_id is absent. When request_id is a string, it is decoded even
// when the frame is refused, so that the answer echoes it.
func decodeEnvelope(b []byte) (envelope, *Error) {
	// json.Unmarshal needs a pointer, which would put every envelope on
	// the heap: decode into a pooled one and return a copy.
	p := envelopePool.Get().(*envelope)
	env, err := p.decode(b)
	*p = envelope{}
	envelopePool.Put(p)
	return env, err
}

var envelopePool = sync.Pool{New: func() any { return new(envelope) }}

func (env *envelope) decode(b []byte) (envelope, *Error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		if !json.Valid(b) {
			return *env, Validation("Invalid JSON.")
		}
		return *env, Validation("The message must be a JSON object.")
	}
	if err := json.Unmarshal(b, env); err != nil {
		if _, ok := err.(*json.UnmarshalTypeError); ok {
			// The other fields are decoded: only event_type is typed.
			if rerr := env.decodeRequestID(); rerr != nil {
				return *env, rerr
			}
			return *env, FieldError("event_type", "Must be a string.")
		}
		return *env, Validation("Invalid JSON.")
	}
	if rerr := env.decodeRequestID(); rerr != nil {
		return *env, rerr
	}
	if len(env.Data) > 0 {
		switch env.Data[0] {
		case '{':
		case 'n':
			env.Data = nil
		default:
			return *env, FieldError("data", "Must be a JSON object.")
		}
	}
	return *env, nil
}

// decodeRequestID decodes RawRequestID.
func (env *envelope) decodeRequestID() *Error {
	raw := env.RawRequestID
	if len(raw) == 0 || raw[0] == 'n' {
		return nil
	}
	if raw[0] != '"' {
		return FieldError("request_id", "Must be a string of at most 64 characters.")
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		env.requestID = string(raw[1 : len(raw)-1])
	} else if err := json.Unmarshal(raw, &env.requestID); err != nil {
		return FieldError("request_id", "Must be a string of at most 64 characters.")
	}
	env.hasRequestID = true
	if len(env.requestID) == 0 || len(env.requestID) > maxRequestIDLen {
		return FieldError("request_id", "Must be a string of at most 64 characters.")
	}
	return nil
}

// appendDispatch appends the server-to-client envelope
// {"eventType": eventType, "data": data} to dst
// (docs/protocol.md#dispatch-envelope). data must be valid JSON.
func appendDispatch(dst []byte, eventType string, data []byte) []byte {
	dst = append(dst, `{"eventType":`...)
	dst = appendString(dst, eventType)
	dst = append(dst, `,"data":`...)
	dst = append(dst, data...)
	return append(dst, '}')
}

// appendString appends s as a JSON string, escaped as encoding/json does.
func appendString(dst []byte, s string) []byte {
	if isPlainString(s) {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	q, _ := json.Marshal(s)
	return append(dst, q...)
}

// appendRequestID appends frame to dst with "request_id": id added as the
// last key of its top-level object. A frame that is not a JSON object is
// appended as is.
func appendRequestID(dst, frame []byte, id string) []byte {
	end := len(frame)
	for end > 0 && isSpace(frame[end-1]) {
		end--
	}
	start := 0
	for start < end && isSpace(frame[start]) {
		start++
	}
	if end-start < 2 || frame[start] != '{' || frame[end-1] != '}' {
		return append(dst, frame...)
	}
	// The byte before the closing brace of a non-empty object ends a
	// value; only an empty object has its opening brace there.
	last := end - 2
	for last > start && isSpace(frame[last]) {
		last--
	}
	dst = append(dst, frame[:end-1]...)
	if last != start {
		dst = append(dst, ',')
	}
	dst = append(dst, `"request_id":`...)
	dst = appendString(dst, id)
	return append(dst, '}')
}

// appendOK appends the final frame of an event that succeeded:
// {"request_id": id, "ok": true}.
func appendOK(dst []byte, id string) []byte {
	dst = append(dst, `{"request_id":`...)
	dst = appendString(dst, id)
	return append(dst, `,"ok":true}`...)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// isPlainString reports whether s can be written between quotes as a JSON
// string without escaping (encoding/json would leave it unchanged).
func isPlainString(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// EncodeDispatch returns the frame {"eventType": eventType, "data": data},
// with data encoded as JSON. data may be a json.RawMessage or []byte of
// valid JSON, which is used as is. The result is immutable once published:
// every recipient shares the same bytes.
func EncodeDispatch(eventType string, data any) ([]byte, error) {
	raw, err := marshalData(data)
	if err != nil {
		return nil, err
	}
	return appendDispatch(make([]byte, 0, len(raw)+len(eventType)+28), eventType, raw), nil
}

func marshalData(data any) ([]byte, error) {
	switch d := data.(type) {
	case json.RawMessage:
		if d == nil {
			return nullJSON, nil
		}
		return d, nil
	case []byte:
		if d == nil {
			return nullJSON, nil
		}
		return d, nil
	}
	return json.Marshal(data)
}
