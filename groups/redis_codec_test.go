package groups

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

func TestRedisWireRoundTrip(t *testing.T) {
	const origin = 0xdeadbeef01020304
	tests := []struct {
		name string
		m    *Message
		seq  uint64
		ack  bool
	}{
		{"data", &Message{Kind: KindData, Data: []byte(`{"eventType":"x","data":1}`)}, 1, false},
		{"empty data", &Message{Kind: KindData}, 1 << 7, false},
		{"join", &Message{Kind: KindJoin, Group: "group-42"}, 1 << 14, true},
		{"leave", &Message{Kind: KindLeave, Group: "group-é"}, 1 << 21, true},
		{"close", CloseMessage(4011, "user deleted"), 1 << 35, true},
		{"close without reason", CloseMessage(1000, ""), 2, true},
		{"data with group", &Message{Kind: KindData, Group: "g", Data: []byte{0, 1, 2}}, 1 << 63, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := encodePublication(tt.m, origin, tt.seq, tt.ack)
			pub, err := decodePublication(string(p))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if pub.origin != origin || pub.seq != tt.seq || pub.ack != tt.ack {
				t.Fatalf("header = %x/%d/%v, want %x/%d/%v", pub.origin, pub.seq, pub.ack, uint64(origin), tt.seq, tt.ack)
			}
			if pub.msg.Kind != tt.m.Kind || pub.msg.Group != tt.m.Group || !bytes.Equal(pub.msg.Data, tt.m.Data) {
				t.Fatalf("message = %+v, want %+v", pub.msg, tt.m)
			}
			if header := len(p) - len(tt.m.Data) - len(tt.m.Group); header > wireFixedLen+binary.MaxVarintLen64+1 {
				t.Fatalf("header of %d bytes, want compact", header)
			}
		})
	}
}

func TestRedisWireMalformed(t *testing.T) {
	tests := []struct {
		name string
		p    []byte
	}{
		{"empty", nil},
		{"kind only", []byte{0}},
		{"short origin", []byte("12345678")},
		{"no seq", []byte{0, 1, 2, 3, 4, 5, 6, 7, 8}},
		{"seq overflows", append([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8}, bytes.Repeat([]byte{0xff}, 10)...)},
		{"no group length", []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 1}},
		{"group longer than the rest", []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 1, 200}},
		{"group length overflows", append([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 1}, bytes.Repeat([]byte{0x80}, 11)...)},
	}
	for _, tt := range tests {
		if _, err := decodePublication(string(tt.p)); err != errBadMessage {
			t.Errorf("%s: decode(%v) = %v, want errBadMessage", tt.name, tt.p, err)
		}
	}
}

func TestRedisWireChannels(t *testing.T) {
	if got := groupChannelPrefix("app:") + Room("1"); got != "app:g:group-1" {
		t.Errorf("group channel = %q", got)
	}
	if got := nodeChannel("app:", 0xabc); got != "app:n:abc" {
		t.Errorf("node channel = %q", got)
	}
	for _, seq := range []uint64{0, 1, 1<<64 - 1} {
		if got, ok := decodeSeq(encodeSeq(seq)); !ok || got != seq {
			t.Errorf("seq %d round trip = %d, %v", seq, got, ok)
		}
	}
	for _, bad := range []string{"", "x", "-1", "18446744073709551616"} {
		if _, ok := decodeSeq(bad); ok {
			t.Errorf("decodeSeq(%q) succeeded", bad)
		}
	}
}

// FuzzRedisDecode checks that any bytes read from a group channel either
// fail to decode or decode to a publication that encodes back to the same
// publication. Its seed corpus is in testdata/fuzz/FuzzRedisDecode.
func FuzzRedisDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, p []byte) {
		// The string decoder reads varints as binary.Uvarint does.
		v, n := uvarint(string(p))
		if wv, wn := binary.Uvarint(p); v != wv || n != wn {
			t.Fatalf("uvarint(%x) = %d, %d; binary.Uvarint = %d, %d", p, v, n, wv, wn)
		}
		pub, err := decodePublication(string(p))
		if err != nil {
			return
		}
		if pub.msg.Kind > wireKindMask {
			t.Fatalf("kind %d out of range", pub.msg.Kind)
		}
		if len(pub.msg.Data) == 0 && pub.msg.Data != nil {
			t.Fatal("empty data is not nil")
		}
		again, err := decodePublication(string(encodePublication(pub.msg, pub.origin, pub.seq, pub.ack)))
		if err != nil {
			t.Fatalf("re-encoded %x: %v", p, err)
		}
		samePublication(t, again, pub)
	})
}

// FuzzRedisEncode checks that every message decodes to what was encoded.
// Its seed corpus is in testdata/fuzz/FuzzRedisEncode.
func FuzzRedisEncode(f *testing.F) {
	f.Fuzz(func(t *testing.T, kind uint8, origin, seq uint64, ack bool, group string, data []byte) {
		m := &Message{Kind: Kind(kind & wireKindMask), Group: group, Data: data}
		p := encodePublication(m, origin, seq, ack)
		if !bytes.HasSuffix(p, data) || !strings.Contains(string(p), group) {
			t.Fatalf("encoded %x lacks the group or data", p)
		}
		pub, err := decodePublication(string(p))
		if err != nil {
			t.Fatalf("decode(%x): %v", p, err)
		}
		if len(m.Data) == 0 {
			m.Data = nil
		}
		samePublication(t, pub, publication{origin: origin, seq: seq, ack: ack, msg: m})
	})
}

func samePublication(t *testing.T, got, want publication) {
	t.Helper()
	if got.origin != want.origin || got.seq != want.seq || got.ack != want.ack {
		t.Fatalf("header = %x/%d/%v, want %x/%d/%v", got.origin, got.seq, got.ack, want.origin, want.seq, want.ack)
	}
	if got.msg.Kind != want.msg.Kind || got.msg.Group != want.msg.Group || !bytes.Equal(got.msg.Data, want.msg.Data) || (got.msg.Data == nil) != (want.msg.Data == nil) {
		t.Fatalf("message = %+v, want %+v", got.msg, want.msg)
	}
}

func TestCloseMessage(t *testing.T) {
	m := CloseMessage(4011, "user deleted")
	if m.Kind != KindClose {
		t.Fatalf("kind = %d, want KindClose", m.Kind)
	}
	code, reason, ok := m.CloseStatus()
	if !ok || code != 4011 || reason != "user deleted" {
		t.Fatalf("CloseStatus = %d, %q, %v", code, reason, ok)
	}
	// Through the Redis wire form and back.
	pub, err := decodePublication(string(encodePublication(m, 1, 1, true)))
	if err != nil {
		t.Fatal(err)
	}
	if code, reason, ok := pub.msg.CloseStatus(); !ok || code != 4011 || reason != "user deleted" || !pub.ack {
		t.Fatalf("decoded CloseStatus = %d, %q, %v (ack %v)", code, reason, ok, pub.ack)
	}
	for _, bad := range []*Message{
		{Kind: KindData, Data: []byte{0x0f, 0xab}},
		{Kind: KindJoin, Group: "g"},
		{Kind: KindClose, Data: []byte{0x0f}},
		{Kind: KindClose},
	} {
		if code, reason, ok := bad.CloseStatus(); ok {
			t.Errorf("CloseStatus(%+v) = %d, %q, true; want not ok", bad, code, reason)
		}
	}
}
