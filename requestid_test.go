package chatmux

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestAppendRequestID(t *testing.T) {
	tests := []struct {
		name  string
		frame string
		id    string
		want  string
	}{
		{"empty object", `{}`, "r1", `{"request_id":"r1"}`},
		{"empty object with spaces", ` { } `, "r1", ` { "request_id":"r1"}`},
		{"dispatch", `{"eventType":"a","data":{}}`, "r1", `{"eventType":"a","data":{},"request_id":"r1"}`},
		{"nested object last", `{"a":{"b":{}}}`, "r1", `{"a":{"b":{}},"request_id":"r1"}`},
		{"brace in a string", `{"a":"}"}`, "r1", `{"a":"}","request_id":"r1"}`},
		{"trailing newline", "{\"a\":1}\n", "r1", `{"a":1,"request_id":"r1"}`},
		{"bare error", `{"error":"invalid event type"}`, "r1", `{"error":"invalid event type","request_id":"r1"}`},
		{"id with a quote", `{"a":1}`, `x"y`, `{"a":1,"request_id":"x\"y"}`},
		{"id with html", `{"a":1}`, `<b>`, `{"a":1,"request_id":"\u003cb\u003e"}`},
		{"array", `[1,2]`, "r1", `[1,2]`},
		{"string", `"s"`, "r1", `"s"`},
		{"empty", ``, "r1", ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(appendRequestID(nil, []byte(tt.frame), tt.id)); got != tt.want {
				t.Fatalf("appendRequestID(%q, %q) = %q, want %q", tt.frame, tt.id, got, tt.want)
			}
		})
	}
}

func TestDecodeEnvelopeRequestID(t *testing.T) {
	long := strings.Repeat("x", 65)
	tests := []struct {
		name     string
		frame    string
		wantID   string
		wantHas  bool
		wantCode int    // 0: no error
		wantErr  string // the field named by the error's detail
	}{
		{"absent", `{"event_type":"a"}`, "", false, 0, ""},
		{"null", `{"event_type":"a","request_id":null}`, "", false, 0, ""},
		{"string", `{"event_type":"a","request_id":"r1"}`, "r1", true, 0, ""},
		{"escaped", `{"event_type":"a","request_id":"r\u0031\n"}`, "r1\n", true, 0, ""},
		{"first key", `{"request_id":"r1","event_type":"a","data":{}}`, "r1", true, 0, ""},
		{"64 bytes", `{"event_type":"a","request_id":"` + strings.Repeat("x", 64) + `"}`, strings.Repeat("x", 64), true, 0, ""},
		{"65 bytes", `{"event_type":"a","request_id":"` + long + `"}`, long, true, CodeValidation, "request_id"},
		{"empty", `{"event_type":"a","request_id":""}`, "", true, CodeValidation, "request_id"},
		{"number", `{"event_type":"a","request_id":5}`, "", false, CodeValidation, "request_id"},
		{"object", `{"event_type":"a","request_id":{"x":1}}`, "", false, CodeValidation, "request_id"},
		{"with bad data", `{"event_type":"a","data":[1],"request_id":"r1"}`, "r1", true, CodeValidation, "data"},
		{"with bad event_type", `{"event_type":5,"request_id":"r1"}`, "r1", true, CodeValidation, "event_type"},
		{"bad id and bad event_type", `{"event_type":5,"request_id":7}`, "", false, CodeValidation, "request_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := decodeEnvelope([]byte(tt.frame))
			if env.requestID != tt.wantID || env.hasRequestID != tt.wantHas {
				t.Errorf("request id %q (%v), want %q (%v)", env.requestID, env.hasRequestID, tt.wantID, tt.wantHas)
			}
			if tt.wantCode == 0 {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				return
			}
			if err == nil || err.Code != tt.wantCode {
				t.Fatalf("error %v, want code %d", err, tt.wantCode)
			}
			if d, ok := err.Detail.(map[string][]string); !ok || d[tt.wantErr] == nil {
				t.Fatalf("detail %v, want one naming %s", err.Detail, tt.wantErr)
			}
		})
	}
}

func readRaw(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

// requestIDRouter answers in each of the ways a handler can.
func requestIDRouter() *Mux {
	r := echoRouter()
	r.HandleFunc("quiet", func(c *Context) error { return nil })
	r.HandleFunc("raw", func(c *Context) error { return c.ReplyRaw([]byte(`{"status":"success"}`)) })
	r.HandleFunc("list", func(c *Context) error { return c.Reply([]int{1, 2}) })
	r.HandleFunc("denied", func(c *Context) error { return FieldError("room_id", "Not a member.") })
	return r
}

// The sentinel is an event without request_id sent after each case: its
// answer must be the next frame, so no case leaves an extra frame behind.
const (
	sentinel       = `{"event_type":"echo","data":{"text":"sentinel"}}`
	sentinelAnswer = `{"eventType":"echo.dispatch","data":{"text":"sentinel","user":1}}`
)

// TestServerRequestID: with a request_id, every answer to the socket
// carries it as its last key, and exactly one final frame ends the event:
// the error envelope, or {"request_id":...,"ok":true} when the handler
// returned nil.
func TestServerRequestID(t *testing.T) {
	long := strings.Repeat("z", 65)
	tests := []struct {
		name  string
		frame string
		want  []string
	}{
		{"send", `{"event_type":"echo","data":{"text":"hi"},"request_id":"r1"}`, []string{
			`{"eventType":"echo.dispatch","data":{"text":"hi","user":1},"request_id":"r1"}`,
			`{"request_id":"r1","ok":true}`,
		}},
		{"reply", `{"event_type":"join","data":{"group":"g"},"request_id":"r2"}`, []string{
			`{"status":"joined","request_id":"r2"}`,
			`{"request_id":"r2","ok":true}`,
		}},
		{"reply raw", `{"request_id":"r3","event_type":"raw"}`, []string{
			`{"status":"success","request_id":"r3"}`,
			`{"request_id":"r3","ok":true}`,
		}},
		{"reply that is not an object", `{"event_type":"list","request_id":"r4"}`, []string{
			`[1,2]`,
			`{"request_id":"r4","ok":true}`,
		}},
		{"nothing but the final frame", `{"event_type":"quiet","request_id":"r5"}`, []string{
			`{"request_id":"r5","ok":true}`,
		}},
		{"group dispatch before the final frame", `{"event_type":"say","data":{"group":"g","text":"x"},"request_id":"r6"}`, []string{
			`{"eventType":"said","data":{"group":"g","text":"x"}}`,
			`{"request_id":"r6","ok":true}`,
		}},
		{"handler error", `{"event_type":"denied","request_id":"r7"}`, []string{
			`{"error":{"code":4003,"detail":{"room_id":["Not a member."]}},"request_id":"r7"}`,
		}},
		{"bind error", `{"event_type":"echo","request_id":"r8"}`, []string{
			`{"error":{"code":4003,"detail":{"data":["This field is required."]}},"request_id":"r8"}`,
		}},
		{"panic", `{"event_type":"boom","data":{},"request_id":"r9"}`, []string{
			`{"error":{"code":4006,"detail":"Internal server error."},"request_id":"r9"}`,
		}},
		{"unknown event", `{"event_type":"nope","request_id":"r10"}`, []string{
			`{"error":"invalid event type","request_id":"r10"}`,
		}},
		{"reserved event", `{"event_type":"$disconnect","request_id":"r11"}`, []string{
			`{"error":"invalid event type","request_id":"r11"}`,
		}},
		{"malformed data", `{"event_type":"echo","data":[1],"request_id":"r12"}`, []string{
			`{"error":{"code":4003,"detail":{"data":["Must be a JSON object."]}},"request_id":"r12"}`,
		}},
		{"id with characters to escape", `{"event_type":"quiet","request_id":"a\"<\u00e9"}`, []string{
			`{"request_id":"a\"\u003cé","ok":true}`,
		}},
		{"id too long", `{"event_type":"quiet","request_id":"` + long + `"}`, []string{
			`{"error":{"code":4003,"detail":{"request_id":["Must be a string of at most 64 characters."]}},"request_id":"` + long + `"}`,
		}},
		{"id not a string", `{"event_type":"quiet","request_id":17}`, []string{
			`{"error":{"code":4003,"detail":{"request_id":["Must be a string of at most 64 characters."]}}}`,
		}},
		{"id null", `{"event_type":"join","data":{"group":"g"},"request_id":null}`, []string{
			`{"status":"joined"}`,
		}},
	}
	h := newHarness(t, requestIDRouter(), ServerOptions{})
	c := h.dial(1)
	for _, tt := range tests {
		send(t, c, tt.frame)
		for i, want := range tt.want {
			if got := readRaw(t, c); got != want {
				t.Errorf("%s: frame %d\n got %s\nwant %s", tt.name, i, got, want)
			}
		}
		send(t, c, sentinel)
		if got := readRaw(t, c); got != sentinelAnswer {
			t.Fatalf("%s: an extra frame %s", tt.name, got)
		}
	}
}

// TestServerWithoutRequestIDUnchanged: a client that sends no request_id
// gets exactly the bytes it got before request_id existed.
func TestServerWithoutRequestIDUnchanged(t *testing.T) {
	tests := []struct {
		name  string
		frame string
		want  []string
	}{
		{"send", `{"event_type":"echo","data":{"text":"hi"}}`, []string{`{"eventType":"echo.dispatch","data":{"text":"hi","user":1}}`}},
		{"reply", `{"event_type":"join","data":{"group":"g"}}`, []string{`{"status":"joined"}`}},
		{"reply raw", `{"event_type":"raw"}`, []string{`{"status":"success"}`}},
		{"reply not an object", `{"event_type":"list"}`, []string{`[1,2]`}},
		{"nothing", `{"event_type":"quiet"}`, nil},
		{"group dispatch", `{"event_type":"say","data":{"group":"g","text":"x"}}`, []string{`{"eventType":"said","data":{"group":"g","text":"x"}}`}},
		{"handler error", `{"event_type":"denied"}`, []string{`{"error":{"code":4003,"detail":{"room_id":["Not a member."]}}}`}},
		{"panic", `{"event_type":"boom","data":{}}`, []string{`{"error":{"code":4006,"detail":"Internal server error."}}`}},
		{"unknown event", `{"event_type":"nope"}`, []string{`{"error":"invalid event type"}`}},
		{"missing event", `{"data":{}}`, []string{`{"error":"invalid event type"}`}},
		{"malformed data", `{"event_type":"echo","data":[1]}`, []string{`{"error":{"code":4003,"detail":{"data":["Must be a JSON object."]}}}`}},
		{"invalid JSON", `{"event_type":`, []string{`{"error":{"code":4003,"detail":["Invalid JSON."]}}`}},
		{"not an object", `[1]`, []string{`{"error":{"code":4003,"detail":["The message must be a JSON object."]}}`}},
		{"event_type not a string", `{"event_type":5}`, []string{`{"error":{"code":4003,"detail":{"event_type":["Must be a string."]}}}`}},
	}
	h := newHarness(t, requestIDRouter(), ServerOptions{})
	c := h.dial(1)
	for _, tt := range tests {
		send(t, c, tt.frame)
		for i, want := range tt.want {
			if got := readRaw(t, c); got != want {
				t.Errorf("%s: frame %d\n got %s\nwant %s", tt.name, i, got, want)
			}
		}
		send(t, c, sentinel)
		if got := readRaw(t, c); got != sentinelAnswer {
			t.Fatalf("%s: an extra frame %s", tt.name, got)
		}
	}
}
