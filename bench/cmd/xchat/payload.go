package main

import "bytes"

// marker starts the content of every benchmark message:
// "XCB<send time>.<sender>.<seq>." then padding, where the send time is in
// nanoseconds since the driver's clock origin. Receivers find it by
// scanning a frame's bytes, so the same code reads both servers' frames
// (and frames that carry several messages).
const marker = "XCB"

var markerBytes = []byte(marker)

// appendPayload appends a message content of at least size bytes.
func appendPayload(dst []byte, sentAt int64, sender int, seq int64, size int) []byte {
	start := len(dst)
	dst = append(dst, marker...)
	dst = appendUint(dst, uint64(sentAt))
	dst = append(dst, '.')
	dst = appendUint(dst, uint64(sender))
	dst = append(dst, '.')
	dst = appendUint(dst, uint64(seq))
	dst = append(dst, '.')
	for len(dst)-start < size {
		dst = append(dst, 'x')
	}
	return dst
}

func appendUint(dst []byte, v uint64) []byte {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(dst, b[i:]...)
}

// nextPayload finds the first message content in b and returns its three
// numbers and the rest of b after it; ok is false when b holds no
// well-formed one.
func nextPayload(b []byte) (sentAt int64, sender int, seq int64, rest []byte, ok bool) {
	for {
		i := bytes.Index(b, markerBytes)
		if i < 0 {
			return 0, 0, 0, nil, false
		}
		p := b[i+len(marker):]
		var nums [3]int64
		good := true
		for k := range nums {
			j := 0
			var v int64
			for j < len(p) && j < 19 && p[j] >= '0' && p[j] <= '9' {
				v = v*10 + int64(p[j]-'0')
				j++
			}
			if j == 0 || j >= len(p) || p[j] != '.' {
				good = false
				break
			}
			nums[k] = v
			p = p[j+1:]
		}
		if good {
			return nums[0], int(nums[1]), nums[2], p, true
		}
		b = b[i+len(marker):]
	}
}
