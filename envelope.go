package chatmux

import (
	"bytes"
	"encoding/json"
)

// envelope is the client-to-server frame: {"event_type": "...", "data": {...}}
// (docs/protocol.md#client-envelope).
type envelope struct {
	EventType string          `json:"event_type"`
	Data      json.RawMessage `json:"data"`
}

var nullJSON = []byte("null")

// decodeEnvelope decodes one client frame. It returns a 4003 *Error when the
// frame is not a JSON object, when event_type is not a string or when data is
// present and neither an object nor null. A missing event_type leaves Event
// empty (the router answers it as an unknown event). Data is nil when absent
// or null.
func decodeEnvelope(b []byte) (envelope, *Error) {
	var env envelope
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		if !json.Valid(b) {
			return env, Validation("Invalid JSON.")
		}
		return env, Validation("The message must be a JSON object.")
	}
	if err := json.Unmarshal(b, &env); err != nil {
		if _, ok := err.(*json.UnmarshalTypeError); ok {
			return env, FieldError("event_type", "Must be a string.")
		}
		return env, Validation("Invalid JSON.")
	}
	if len(env.Data) > 0 {
		switch env.Data[0] {
		case '{':
		case 'n':
			env.Data = nil
		default:
			return env, FieldError("data", "Must be a JSON object.")
		}
	}
	return env, nil
}

// appendDispatch appends the server-to-client envelope
// {"eventType": eventType, "data": data} to dst
// (docs/protocol.md#dispatch-envelope). data must be valid JSON.
func appendDispatch(dst []byte, eventType string, data []byte) []byte {
	dst = append(dst, `{"eventType":`...)
	if isPlainString(eventType) {
		dst = append(dst, '"')
		dst = append(dst, eventType...)
		dst = append(dst, '"')
	} else {
		q, _ := json.Marshal(eventType)
		dst = append(dst, q...)
	}
	dst = append(dst, `,"data":`...)
	dst = append(dst, data...)
	return append(dst, '}')
}

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
