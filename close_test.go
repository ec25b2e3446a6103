package chatmux

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

func TestDetailText(t *testing.T) {
	tests := []struct {
		name   string
		detail any
		want   string
	}{
		{"nil", nil, ""},
		{"string", "banned", "banned"},
		{"list", []string{"Not allowed.", "Try later."}, "Not allowed. Try later."},
		{"field map", map[string][]string{"room_id": {"Not a valid UUID."}, "content": {"Too long.", "Empty."}},
			"content: Too long. Empty.; room_id: Not a valid UUID."},
		{"other map", map[string]any{"retry_after": 5}, `{"retry_after":5}`},
		{"number", 42, "42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := detailText(tt.detail); got != tt.want {
				t.Fatalf("detailText(%#v) = %q, want %q", tt.detail, got, tt.want)
			}
		})
	}
}

// readClose reads until the connection closes and returns the close frame.
func readClose(t *testing.T, c *websocket.Conn) websocket.CloseError {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, _, err := c.Read(ctx)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("connection ended without a close frame: %v", err)
		}
		return ce
	}
}

func TestConnectErrorCloseReason(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes
	tests := []struct {
		name       string
		err        error
		wantCode   int
		wantReason string
	}{
		{"string detail", PermissionDenied("banned"), CodePermissionDenied, "banned"},
		{"list detail", Validation("Not allowed here."), CodeValidation, "Not allowed here."},
		{"field detail", FieldError("room_id", "Not a valid UUID."), CodeValidation, "room_id: Not a valid UUID."},
		{"reason over 123 bytes", PermissionDenied(long), CodePermissionDenied, strings.Repeat("é", 61)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRouter()
			r.HandleFunc(EventConnect, func(c *Context) error { return tt.err })
			h := newHarness(t, r, ServerOptions{})
			ce := readClose(t, h.dial(1))
			if int(ce.Code) != tt.wantCode || ce.Reason != tt.wantReason {
				t.Fatalf("close %d %q, want %d %q", ce.Code, ce.Reason, tt.wantCode, tt.wantReason)
			}
		})
	}
}

func TestConnCloseLongReason(t *testing.T) {
	r := NewRouter()
	reason := strings.Repeat("x", 121) + "€€" // 127 bytes: the cut at 123 falls inside the first €
	r.HandleFunc("bye", func(c *Context) error {
		c.Conn().Close(4100, reason)
		return nil
	})
	h := newHarness(t, r, ServerOptions{})
	c := h.dial(1)
	send(t, c, `{"event_type":"bye"}`)
	ce := readClose(t, c)
	if ce.Code != 4100 || ce.Reason != strings.Repeat("x", 121) || !utf8.ValidString(ce.Reason) {
		t.Fatalf("close %d %q, want 4100 and the reason cut before the euro sign", ce.Code, ce.Reason)
	}
}

func TestConnectErrorCloseCodes(t *testing.T) {
	tests := []struct {
		name       string
		connect    func(c *Context) error
		wantCode   int
		wantReason string
	}{
		{"plain error", func(*Context) error { return errors.New("db down") }, 1011, DetailInternal},
		{"internal", func(*Context) error { return Internal(errors.New("db down")) }, 1011, DetailInternal},
		{"panic", func(*Context) error { panic("bug") }, 1011, DetailInternal},
		{"unavailable", func(*Context) error { return Unavailable(errors.New("timeout")) }, 1013, DetailUnavailable},
		{"try again later", func(*Context) error { return NewError(1013, "Too many connections.") }, 1013, "Too many connections."},
		{"policy", func(*Context) error { return NewError(1008, "policy") }, 1008, "policy"},
		{"a code a server may not send", func(*Context) error { return NewError(1005, "x") }, 1011, "x"},
		{"permission denied", func(*Context) error { return PermissionDenied("banned") }, CodePermissionDenied, "banned"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRouter()
			r.HandleFunc(EventConnect, tt.connect)
			h := newHarness(t, r, ServerOptions{})
			ce := readClose(t, h.dial(1))
			if int(ce.Code) != tt.wantCode || ce.Reason != tt.wantReason {
				t.Fatalf("close %d %q, want %d %q", ce.Code, ce.Reason, tt.wantCode, tt.wantReason)
			}
		})
	}
}

// TestServerInvalidUTF8Closes1007: a text frame that is not UTF-8 closes
// the connection with 1007, after the answers already queued.
func TestServerInvalidUTF8Closes1007(t *testing.T) {
	h := newHarness(t, echoRouter(), ServerOptions{})
	c := h.dial(1)
	send(t, c, `{"event_type":"echo","data":{"text":"héllo"}}`)
	if m := readJSON(t, c); m["data"].(map[string]any)["text"] != "héllo" {
		t.Fatalf("valid UTF-8 refused: %v", m)
	}
	send(t, c, `{"event_type":"echo","data":{"text":"before"}}`)
	send(t, c, "{\"event_type\":\"echo\",\"data\":{\"text\":\"\xff\xfe\"}}")
	if m := readJSON(t, c); m["data"].(map[string]any)["text"] != "before" {
		t.Fatalf("the answer before the bad frame: %v", m)
	}
	if ce := readClose(t, c); ce.Code != websocket.StatusInvalidFramePayloadData {
		t.Fatalf("close %d %q, want 1007", ce.Code, ce.Reason)
	}
}

// TestServerOversizeFrameWhileSending: a client still sending a large
// frame when the server refuses it reads the 1009 close, not a reset
// connection (1006): the server reads and discards the rest until the
// client's close. It does so for at most lingerTimeout (then it resets the
// connection, as documented): an attempt that outlasted that bound, which
// a busy machine can make happen, proves nothing either way and is made
// again.
func TestServerOversizeFrameWhileSending(t *testing.T) {
	h := newHarness(t, echoRouter(), ServerOptions{})
	big := make([]byte, 4<<20) // 64 times the read limit
	for i := range big {
		big[i] = 'x'
	}
	const want, maxAttempts = 3, 30
	checked := 0
	var slow []time.Duration
	for i := 0; checked < want; i++ {
		if i == maxAttempts {
			t.Fatalf("only %d of %d attempts ended within the server's linger bound (%v); the others took %v", checked, maxAttempts, lingerTimeout, slow)
		}
		c := h.dial(1)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		// Write the whole frame before reading anything, as a client
		// busy sending does.
		start := time.Now()
		werr := c.Write(ctx, websocket.MessageText, big)
		_, _, err := c.Read(ctx)
		cancel()
		// The server's bound starts after the write did: a result
		// seen within lingerTimeout of the start of the write was not
		// caused by it.
		took := time.Since(start)
		if took >= lingerTimeout {
			slow = append(slow, took)
			continue
		}
		checked++
		// The server read the whole frame: no reset.
		if werr != nil {
			t.Fatalf("attempt %d: write (%v): %v", i, took, werr)
		}
		if got := CloseStatus(err); got != int(websocket.StatusMessageTooBig) {
			t.Fatalf("attempt %d: close status %d (%v), want 1009", i, got, err)
		}
	}
	if len(slow) > 0 {
		t.Logf("%d attempts outlasted the linger bound and were made again: %v", len(slow), slow)
	}
}
