package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The headers of a webhook request (docs/protocol.md#offline-webhooks).
const (
	// HeaderTimestamp carries the time of the request, in Unix seconds.
	HeaderTimestamp = "X-Chatmux-Timestamp"
	// HeaderSignature carries "v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>";
	// several signatures may be given, separated by commas (one per
	// secret while a secret is being rotated).
	HeaderSignature = "X-Chatmux-Signature"
)

// DefaultTolerance is the age beyond which Verify rejects a request's
// timestamp, as a replay, when given no tolerance.
const DefaultTolerance = 5 * time.Minute

// MinSecretLen is the shortest secret the example server accepts.
const MinSecretLen = 16

// Errors of Verify.
var (
	// ErrNoSignature: the timestamp or the signature header is missing or
	// malformed.
	ErrNoSignature = errors.New("webhook: missing or malformed signature headers")
	// ErrSignature: no signature of the request matches its body.
	ErrSignature = errors.New("webhook: signature mismatch")
	// ErrTimestamp: the timestamp is further from now than the tolerance.
	ErrTimestamp = errors.New("webhook: timestamp outside the tolerance")
)

// Sign returns the value of HeaderSignature for body sent at timestamp
// (Unix seconds): "v1=" and the hex HMAC-SHA256, keyed by secret, of the
// timestamp in decimal, a dot, and the body.
func Sign(secret []byte, timestamp int64, body []byte) string {
	return "v1=" + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret []byte, timestamp int64, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(strconv.FormatInt(timestamp, 10)))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a webhook request: the signature of body under secret and
// HeaderTimestamp (any of the "v1=" signatures of HeaderSignature, compared
// in constant time), then the timestamp, which must be within tolerance of
// now (DefaultTolerance when tolerance <= 0) in either direction. A
// receiver calls it on the raw body, before decoding it.
func Verify(secret []byte, h http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	ts, err := strconv.ParseInt(h.Get(HeaderTimestamp), 10, 64)
	sigs := h.Get(HeaderSignature)
	if err != nil || sigs == "" {
		return ErrNoSignature
	}
	want := mac(secret, ts, body)
	ok, any := false, false
	for _, s := range strings.Split(sigs, ",") {
		v, found := strings.CutPrefix(strings.TrimSpace(s), "v1=")
		if !found {
			continue
		}
		got, err := hex.DecodeString(v)
		if err != nil {
			continue
		}
		any = true
		if hmac.Equal(got, want) {
			ok = true
		}
	}
	switch {
	case !any:
		return ErrNoSignature
	case !ok:
		return ErrSignature
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return ErrTimestamp
	}
	return nil
}
