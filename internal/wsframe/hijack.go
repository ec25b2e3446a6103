package wsframe

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Buffer sizes of a hijacked connection: the 4 KiB buffers of net/http
// would be held for the life of every connection. The library reads frame
// headers through the reader and writes control frames (at most 131 bytes)
// through the writer.
const (
	ReadBufferSize  = 512
	WriteBufferSize = 512
)

// HijackWriter wraps the ResponseWriter of an upgrade request: when the
// WebSocket library hijacks the connection, it gets the socket wrapped in
// a Conn, with small buffers.
type HijackWriter struct {
	http.ResponseWriter
	timeout time.Duration
	conn    *Conn
}

// NewHijackWriter wraps w; the hijacked Conn bounds each write by
// writeTimeout (see NewConn).
func NewHijackWriter(w http.ResponseWriter, writeTimeout time.Duration) *HijackWriter {
	return &HijackWriter{ResponseWriter: w, timeout: writeTimeout}
}

// Conn returns the hijacked socket, nil before Hijack.
func (h *HijackWriter) Conn() *Conn { return h.conn }

// Unwrap returns the wrapped ResponseWriter (for http.ResponseController).
func (h *HijackWriter) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// Hijack takes over the connection and returns it wrapped in a Conn, with
// small buffers. Bytes the client sent after its handshake, already read
// by net/http, are read first.
func (h *HijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("failed to hijack: %w", err)
	}
	h.conn = NewConn(nc, h.timeout)
	var pre []byte
	if n := brw.Reader.Buffered(); n > 0 {
		p, _ := brw.Reader.Peek(n)
		pre = append([]byte(nil), p...)
	}
	size := max(ReadBufferSize, len(pre))
	br := bufio.NewReaderSize(h.conn, size)
	if len(pre) > 0 {
		br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(pre), h.conn), size)
		_, _ = br.Peek(len(pre))
	}
	bw := bufio.NewWriterSize(h.conn, WriteBufferSize)
	return h.conn, bufio.NewReadWriter(br, bw), nil
}
