package groups

import (
	"encoding/binary"
	"errors"
	"strconv"
)

// Everything the Redis broker writes to Redis, and reads back, is built and
// parsed in this file: channel names, the wire form of a publication, and
// the payloads of acknowledgements and pings.
//
// A publication is one Redis message:
//
//	kind     1 byte     low 4 bits: Message.Kind; 0x10: acknowledgement wanted
//	origin   8 bytes    the publishing node's id, big-endian
//	seq      uvarint    the node's publication sequence number
//	group    uvarint n, then n bytes: Message.Group (empty for data)
//	data     the rest:  Message.Data as is
//
// The frame is copied in as is, so it is encoded once whatever the number of
// nodes and members.

const (
	wireKindMask = 0x0f
	wireAckFlag  = 0x10
	// wireFixedLen is the length of the kind byte and the origin.
	wireFixedLen = 1 + 8
)

// errBadMessage is returned by decodePublication for bytes that are not a
// publication.
var errBadMessage = errors.New("groups: malformed redis message")

// publication is the decoded wire form of one Redis message.
type publication struct {
	origin uint64 // the publishing node's id
	seq    uint64 // its publication sequence number
	ack    bool   // the publisher waits for an acknowledgement
	msg    *Message
}

// groupChannelPrefix returns what starts the channel of every group:
// the channel of group g is groupChannelPrefix(prefix) + g.
func groupChannelPrefix(prefix string) string { return prefix + "g:" }

// nodeChannel returns the channel on which a node receives the
// acknowledgements of its control messages.
func nodeChannel(prefix string, node uint64) string {
	return prefix + "n:" + strconv.FormatUint(node, 16)
}

// encodePublication builds the wire form of m, published by node origin as
// its publication seq.
func encodePublication(m *Message, origin, seq uint64, ack bool) []byte {
	b := make([]byte, 0, wireFixedLen+binary.MaxVarintLen64*2+len(m.Group)+len(m.Data))
	k := byte(m.Kind) & wireKindMask
	if ack {
		k |= wireAckFlag
	}
	b = append(b, k)
	b = binary.BigEndian.AppendUint64(b, origin)
	b = binary.AppendUvarint(b, seq)
	b = binary.AppendUvarint(b, uint64(len(m.Group)))
	b = append(b, m.Group...)
	return append(b, m.Data...)
}

// decodePublication parses the wire form of a publication, as go-redis
// hands over a message's payload. Only Message.Data is copied (and only
// when it is not empty): a node that drops its own publications echoed
// back by Redis reads their header without copying them.
func decodePublication(p string) (pub publication, err error) {
	if len(p) < wireFixedLen {
		return pub, errBadMessage
	}
	pub.ack = p[0]&wireAckFlag != 0
	kind := Kind(p[0] & wireKindMask)
	for i := 1; i < wireFixedLen; i++ {
		pub.origin = pub.origin<<8 | uint64(p[i])
	}
	p = p[wireFixedLen:]
	seq, n := uvarint(p)
	if n <= 0 {
		return pub, errBadMessage
	}
	pub.seq = seq
	p = p[n:]
	gl, n := uvarint(p)
	if n <= 0 || gl > uint64(len(p)-n) {
		return pub, errBadMessage
	}
	p = p[n:]
	m := &Message{Kind: kind}
	if gl > 0 {
		m.Group = p[:gl]
	}
	if rest := p[gl:]; len(rest) > 0 {
		m.Data = []byte(rest)
	}
	pub.msg = m
	return pub, nil
}

// uvarint is binary.Uvarint over a string: the value and the number of
// bytes read; n == 0 when s is too short, n < 0 when the value overflows 64
// bits.
func uvarint(s string) (v uint64, n int) {
	var shift uint
	for i := 0; i < len(s); i++ {
		if i == binary.MaxVarintLen64 {
			return 0, -(i + 1)
		}
		b := s[i]
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				return 0, -(i + 1)
			}
			return v | uint64(b)<<shift, i + 1
		}
		v |= uint64(b&0x7f) << shift
		shift += 7
	}
	return 0, 0
}

// encodeSeq is the payload of an acknowledgement (the acknowledged
// publication's seq, sent to its publisher's node channel) and of a ping
// (whose pong confirms the subscriptions sent before it).
func encodeSeq(seq uint64) string { return strconv.FormatUint(seq, 10) }

// decodeSeq parses the payload of an acknowledgement or a pong.
func decodeSeq(payload string) (uint64, bool) {
	seq, err := strconv.ParseUint(payload, 10, 64)
	return seq, err == nil
}
