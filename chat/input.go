package chat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/store"
)

// Clients send loose JSON, and the package's Python code reads it loosely;
// every helper that reads an event's data is here, so that the quirks stay
// in one place: a null field is an absent one; user ids are numbers or
// numeric strings and compare as ids (ParseUserID); a room or message id
// that is a JSON integer names nothing (4004); truth is Python's (truthy);
// numbers convert as int() does (pyInt); and type errors name Python's
// types (kindName).

// fields is the data object of an event, decoded one level deep.
type fields map[string]json.RawMessage

// decodeFields decodes the event's data. Missing data is an empty object
// when optional is true, else 4003.
func decodeFields(c *chatmux.Context, optional bool) (fields, error) {
	data := c.Data()
	if len(data) == 0 {
		if optional {
			return fields{}, nil
		}
		return nil, chatmux.FieldError("data", msgRequired)
	}
	var f fields
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, chatmux.FieldError("data", msgNotObject)
	}
	if f == nil {
		f = fields{}
	}
	return f, nil
}

// get returns the raw value of key, nil when absent or null.
func (f fields) get(key string) json.RawMessage {
	v, ok := f[key]
	if !ok || isNull(v) {
		return nil
	}
	return v
}

// limit reads the optional "limit" field: def when it is absent, an
// integer (a JSON number or a numeric string) of at least 1, cut to max.
func (f fields) limit(def, max int64) (int64, error) {
	lv := f.get("limit")
	if lv == nil {
		return def, nil
	}
	n, ok := ParseUserID(lv)
	if !ok {
		return 0, chatmux.FieldError("limit", msgNotInt)
	}
	if n < 1 {
		return 0, chatmux.FieldError("limit", msgMinOne)
	}
	return min(n, max), nil
}

func isNull(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) == 0 || string(v) == "null"
}

// jsonKind names the JSON type of a raw value.
func jsonKind(v json.RawMessage) byte {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return 0
	}
	switch c := v[0]; {
	case c == '"':
		return 's'
	case c == '{':
		return 'o'
	case c == '[':
		return 'a'
	case c == 't' || c == 'f':
		return 'b'
	case c == 'n':
		return 0
	default:
		return 'n'
	}
}

// isJSONInteger reports whether a number literal has no fraction or
// exponent (what Python's json reads as an int).
func isJSONInteger(v json.RawMessage) bool {
	return !bytes.ContainsAny(v, ".eE")
}

func kindName(v json.RawMessage) string {
	switch jsonKind(v) {
	case 's':
		return "str"
	case 'n':
		if isJSONInteger(v) {
			return "int"
		}
		return "float"
	case 'b':
		return "bool"
	case 'a':
		return "list"
	case 'o':
		return "dict"
	}
	return "NoneType"
}

// truthy is Python's truth value of a JSON value.
func truthy(v json.RawMessage) bool {
	switch strings.TrimSpace(string(v)) {
	case "", "null", "false", "0", `""`, "[]", "{}", "0.0":
		return false
	}
	return true
}

// pyInt converts a JSON value as Python's int() does: numbers (fractions
// truncated) and integer strings.
func pyInt(v json.RawMessage) (int64, bool) {
	switch jsonKind(v) {
	case 'n':
		var f float64
		if err := json.Unmarshal(v, &f); err != nil {
			return 0, false
		}
		if isJSONInteger(v) {
			return ParseUserID(v)
		}
		if math.Abs(f) > 1<<53 {
			return 0, false
		}
		return int64(f), true
	case 's':
		var str string
		if err := json.Unmarshal(v, &str); err != nil {
			return 0, false
		}
		n, err := strconv.ParseInt(strings.TrimSpace(str), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// ParseRoomID reads a room id from its JSON value with the rules of
// docs/protocol.md#encoding: a UUID string is the id; a malformed string is 4003
// “x” is not a valid UUID.; a JSON integer names no room (4004); anything
// else (missing included) is 4003 "Invalid room_id type".
func ParseRoomID(v json.RawMessage) (uuid.UUID, error) {
	return parseUUID(v, msgInvalidRoomIDType)
}

func parseUUID(v json.RawMessage, typeMsg string) (uuid.UUID, error) {
	switch jsonKind(v) {
	case 's':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return uuid.Nil, chatmux.Validation(typeMsg)
		}
		id, err := uuid.Parse(s)
		if err != nil {
			return uuid.Nil, chatmux.Validation(msgNotUUID(s))
		}
		return id, nil
	case 'n':
		if isJSONInteger(v) {
			// The package reads an integer as the integer value of a UUID:
			// such a room never exists.
			return uuid.Nil, chatmux.NotFound()
		}
	}
	return uuid.Nil, chatmux.Validation(typeMsg)
}

// messageIDs is the parsed message_id of an event: one id or a list.
type messageIDs struct {
	IDs []uuid.UUID
	// Raw are the ids as the client sent them (message_ids echo).
	Raw []json.RawMessage
	// List is true when the client sent a list.
	List bool
}

// ParseMessageIDs reads message_id: a UUID string, or a list of them. The
// rules of ParseRoomID apply to each (an integer names no message: 4004);
// any other type is 4003 "Invalid message_id type". Duplicates are
// removed from IDs (not from Raw).
func ParseMessageIDs(v json.RawMessage) ([]uuid.UUID, error) {
	m, err := parseMessageIDs(v)
	return m.IDs, err
}

func parseMessageIDs(v json.RawMessage) (messageIDs, error) {
	var out messageIDs
	switch jsonKind(v) {
	case 's', 'n':
		id, err := parseUUID(v, msgInvalidMessageIDType)
		if err != nil {
			return out, err
		}
		out.IDs, out.Raw = []uuid.UUID{id}, []json.RawMessage{v}
		return out, nil
	case 'a':
		var items []json.RawMessage
		if err := json.Unmarshal(v, &items); err != nil {
			return out, chatmux.Validation(msgInvalidMessageIDType)
		}
		out.List = true
		for _, it := range items {
			k := jsonKind(it)
			if k != 's' && k != 'n' {
				return out, chatmux.Validation(msgInvalidMessageIDType)
			}
		}
		for _, it := range items {
			id, err := parseUUID(it, msgInvalidMessageIDType)
			if err != nil {
				return out, err
			}
			out.IDs = append(out.IDs, id)
		}
		out.IDs = store.UniqueUUIDs(out.IDs)
		out.Raw = items
		return out, nil
	case 0:
		return out, chatmux.FieldError("message_id", msgRequired)
	}
	return out, chatmux.Validation(msgInvalidMessageIDType)
}

// ParseUserID reads a user id from a JSON number or a numeric string, so
// that ids compare as ids whatever their JSON type (docs/protocol.md#diff-ids).
func ParseUserID(v json.RawMessage) (int64, bool) {
	switch jsonKind(v) {
	case 'n':
		var f json.Number
		if err := json.Unmarshal(v, &f); err != nil {
			return 0, false
		}
		if n, err := f.Int64(); err == nil {
			return n, true
		}
		x, err := f.Float64()
		if err != nil || x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			return 0, false
		}
		return int64(x), true
	case 's':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return 0, false
		}
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// ParseUserIDs reads a list of user ids (numbers or numeric strings),
// duplicates removed. ok is false when v is not a list or an item is not
// an id.
func ParseUserIDs(v json.RawMessage) (ids []int64, ok bool) {
	if jsonKind(v) != 'a' {
		return nil, false
	}
	var items []json.RawMessage
	if err := json.Unmarshal(v, &items); err != nil {
		return nil, false
	}
	ids = make([]int64, 0, len(items))
	for _, it := range items {
		id, ok := ParseUserID(it)
		if !ok {
			return nil, false
		}
		ids = append(ids, id)
	}
	return store.UniqueInt64(ids), true
}

// userIDList reads a list of user ids for key (4003 when not a list of ids).
func userIDList(key string, v json.RawMessage) ([]int64, error) {
	if jsonKind(v) != 'a' {
		return nil, chatmux.FieldError(key, fmt.Sprintf("Expected a list of items but got type \"%s\".", kindName(v)))
	}
	ids, ok := ParseUserIDs(v)
	if !ok {
		return nil, chatmux.FieldError(key, msgNotInt)
	}
	return ids, nil
}

// str reads an optional string field: ok is false when absent or null; a
// value of another type is 4003.
func (f fields) str(key string) (string, bool, error) {
	v := f.get(key)
	if v == nil {
		return "", false, nil
	}
	var s string
	if jsonKind(v) != 's' || json.Unmarshal(v, &s) != nil {
		return "", false, chatmux.FieldError(key, msgNotString)
	}
	return s, true, nil
}

// boolean reads an optional boolean field.
func (f fields) boolean(key string) (*bool, error) {
	v := f.get(key)
	if v == nil {
		return nil, nil
	}
	var b bool
	if jsonKind(v) != 'b' || json.Unmarshal(v, &b) != nil {
		return nil, chatmux.FieldError(key, msgNotBool)
	}
	return &b, nil
}

// object reads an optional JSON object field.
func (f fields) object(key string) (fields, bool, error) {
	v := f.get(key)
	if v == nil {
		return nil, false, nil
	}
	var o fields
	if jsonKind(v) != 'o' || json.Unmarshal(v, &o) != nil {
		return nil, false, chatmux.FieldError(key, msgNotObject)
	}
	if o == nil {
		o = fields{}
	}
	return o, true, nil
}

// jsonObject decodes an object value into store.JSON.
func jsonObject(v json.RawMessage) (store.JSON, bool) {
	if jsonKind(v) != 'o' {
		return nil, false
	}
	var m store.JSON
	if err := json.Unmarshal(v, &m); err != nil {
		return nil, false
	}
	if m == nil {
		m = store.JSON{}
	}
	return m, true
}
