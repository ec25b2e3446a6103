package wsframe

import "unicode/utf8"

// Opcodes of a frame header (RFC 6455, section 5.2).
const (
	OpContinuation byte = 0x0
	OpText         byte = 0x1
	OpBinary       byte = 0x2
	OpClose        byte = 0x8
	OpPing         byte = 0x9
	OpPong         byte = 0xa
)

// finBit marks the last frame of a message.
const finBit = 0x80

// MaxCloseReason is the longest close reason, in bytes: a control frame
// carries at most 125 bytes, two of which are the close code.
const MaxCloseReason = 123

// AppendHeader appends the header of an unmasked frame with the given
// opcode and payload length. fin marks the last frame of a message.
func AppendHeader(b []byte, fin bool, op byte, n int) []byte {
	b0 := op
	if fin {
		b0 |= finBit
	}
	switch {
	case n < 126:
		return append(b, b0, byte(n))
	case n <= 0xffff:
		return append(b, b0, 126, byte(n>>8), byte(n))
	default:
		return append(b, b0, 127, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32),
			byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// CloseReason returns reason cut to at most MaxCloseReason bytes, at a
// UTF-8 boundary. (The library refuses a longer reason, and then sends no
// close frame at all: the peer would see 1006 instead of the code.)
func CloseReason(reason string) string {
	if len(reason) <= MaxCloseReason {
		return reason
	}
	n := MaxCloseReason
	// Step back over continuation bytes to the start of the rune that
	// straddles the cut, unless the cut falls right after a whole rune.
	for n > 0 && !utf8.RuneStart(reason[n]) {
		n--
	}
	return reason[:n]
}
