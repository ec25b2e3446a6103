package store

import (
	"bytes"
	"database/sql/driver"
	"encoding/json"
	"fmt"
)

// JSON is a JSON object (preferences, Extra, attachment metadata). Both
// stores hand out decoded copies, so numbers are float64 and a caller may
// modify what it gets without touching the store.
type JSON map[string]any

// Value implements driver.Valuer: the object encoded as text, "{}" for
// nil. (Text rather than bytes, so that it also works with lib/pq's
// binary_parameters mode.)
func (j JSON) Value() (driver.Value, error) {
	if j == nil {
		return "{}", nil
	}
	b, err := json.Marshal(map[string]any(j))
	if err != nil {
		return nil, fmt.Errorf("failed to encode JSON object: %w", err)
	}
	return string(b), nil
}

// Scan implements sql.Scanner for json/jsonb columns.
func (j *JSON) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case nil:
		*j = JSON{}
		return nil
	case []byte:
		b = v
	case string:
		b = []byte(v)
	default:
		return fmt.Errorf("failed to scan JSON object from %T", src)
	}
	m := JSON{}
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("failed to decode JSON object: %w", err)
	}
	*j = m
	return nil
}

// Clone returns a deep copy of j through an encode/decode round trip, so
// the copy has the types PostgreSQL would give back (never nil). An object
// that cannot be encoded is a *ValidationError on field.
func (j JSON) Clone(field string) (JSON, error) {
	if len(j) == 0 {
		return JSON{}, nil
	}
	b, err := json.Marshal(map[string]any(j))
	if err != nil {
		return nil, Invalid(field, "Value must be valid JSON.")
	}
	if bytes.Contains(b, []byte(`\u0000`)) {
		// PostgreSQL's jsonb cannot hold NUL characters.
		return nil, Invalid(field, "Value must not contain NUL characters.")
	}
	m := JSON{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, Invalid(field, "Value must be valid JSON.")
	}
	return m, nil
}

// MustClone is Clone for objects known to be encodable (read paths).
func (j JSON) MustClone() JSON {
	c, err := j.Clone("")
	if err != nil {
		return JSON{}
	}
	return c
}
