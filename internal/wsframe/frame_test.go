package wsframe

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendHeader(t *testing.T) {
	tests := []struct {
		name string
		fin  bool
		op   byte
		n    int
		want []byte
	}{
		{"empty text", true, OpText, 0, []byte{0x81, 0}},
		{"7-bit max", true, OpText, 125, []byte{0x81, 125}},
		{"16-bit min", true, OpText, 126, []byte{0x81, 126, 0, 126}},
		{"16-bit 127", true, OpText, 127, []byte{0x81, 126, 0, 127}},
		{"16-bit max", true, OpText, 65535, []byte{0x81, 126, 0xff, 0xff}},
		{"64-bit min", true, OpText, 65536, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
		{"64-bit 70000", true, OpText, 70000, []byte{0x81, 127, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70}},
		{"first fragment", false, OpText, 3, []byte{0x01, 3}},
		{"continuation", false, OpContinuation, 126, []byte{0x00, 126, 0, 126}},
		{"last continuation", true, OpContinuation, 1, []byte{0x80, 1}},
		{"ping", true, OpPing, 4, []byte{0x89, 4}},
		{"close", true, OpClose, 2, []byte{0x88, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("xy")
			got := AppendHeader(prefix, tt.fin, tt.op, tt.n)
			if !bytes.Equal(got[:2], prefix) || !bytes.Equal(got[2:], tt.want) {
				t.Fatalf("AppendHeader(%v, %#x, %d) = % x, want % x after the prefix", tt.fin, tt.op, tt.n, got, tt.want)
			}
		})
	}
}

func TestCloseReason(t *testing.T) {
	tests := []struct {
		name   string
		reason string
		want   string
	}{
		{"empty", "", ""},
		{"short", "slow consumer", "slow consumer"},
		{"exactly the limit", strings.Repeat("a", 123), strings.Repeat("a", 123)},
		{"one over", strings.Repeat("a", 124), strings.Repeat("a", 123)},
		{"long", strings.Repeat("a", 1000), strings.Repeat("a", 123)},
		// 61 two-byte runes are 122 bytes; the 62nd would end at 124.
		{"two-byte rune across the cut", strings.Repeat("é", 62), strings.Repeat("é", 61)},
		// One byte then 61 two-byte runes: the 62nd ends exactly at 123.
		{"two-byte rune ending at the cut", "a" + strings.Repeat("é", 62), "a" + strings.Repeat("é", 61)},
		// 41 three-byte runes are exactly 123 bytes.
		{"three-byte runes filling the limit", strings.Repeat("€", 42), strings.Repeat("€", 41)},
		{"four-byte rune across the cut", strings.Repeat("a", 121) + "😀", strings.Repeat("a", 121)},
		{"four-byte rune ending at the cut", strings.Repeat("a", 119) + "😀b", strings.Repeat("a", 119) + "😀"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CloseReason(tt.reason)
			if got != tt.want {
				t.Fatalf("CloseReason(%d bytes) = %q (%d bytes), want %q", len(tt.reason), got, len(got), tt.want)
			}
			if len(got) > MaxCloseReason || !utf8.ValidString(got) || !strings.HasPrefix(tt.reason, got) {
				t.Fatalf("CloseReason(%q) = %q: not a valid prefix of at most %d bytes", tt.reason, got, MaxCloseReason)
			}
		})
	}
}

func FuzzCloseReason(f *testing.F) {
	f.Add(strings.Repeat("é", 70))
	f.Add(strings.Repeat("a", 122) + "😀")
	f.Fuzz(func(t *testing.T, s string) {
		got := CloseReason(s)
		if len(got) > MaxCloseReason || !strings.HasPrefix(s, got) {
			t.Fatalf("CloseReason(%q) = %q", s, got)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("CloseReason(%q) = %q cuts a rune", s, got)
		}
		if len(s) <= MaxCloseReason && got != s {
			t.Fatalf("CloseReason(%q) = %q changed a short reason", s, got)
		}
		if utf8.ValidString(s) && len(s) > MaxCloseReason && len(got) < MaxCloseReason-3 {
			t.Fatalf("CloseReason cut %d bytes to %d", len(s), len(got))
		}
	})
}
