package wsframe

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// tapConn is the server's socket, under the Conn: it counts the bytes
// written, and can cut a write short (write part of it, then fail) or hold
// one half-way until released.
type tapConn struct {
	net.Conn

	mu      sync.Mutex
	written int
	cut     int           // when >= 0, the next write writes cut bytes and fails
	hold    chan struct{} // when set, the next write of more than 2 bytes stops half-way until it is closed
	holding chan struct{} // closed when a write is held
}

var errInjected = errors.New("injected write failure")

func (tc *tapConn) Write(p []byte) (int, error) {
	tc.mu.Lock()
	cut, hold, holding := tc.cut, tc.hold, tc.holding
	if cut >= 0 {
		tc.cut = -1
	}
	if hold != nil && len(p) > 2 {
		tc.hold = nil
	} else {
		hold = nil
	}
	tc.mu.Unlock()
	if cut >= 0 {
		n, _ := tc.Conn.Write(p[:cut])
		tc.count(n)
		return n, errInjected
	}
	if hold != nil {
		half := len(p) / 2
		n, err := tc.Conn.Write(p[:half])
		tc.count(n)
		if err != nil {
			return n, err
		}
		close(holding)
		<-hold
		m, err := tc.Conn.Write(p[half:])
		tc.count(m)
		return n + m, err
	}
	n, err := tc.Conn.Write(p)
	tc.count(n)
	return n, err
}

func (tc *tapConn) count(n int) {
	tc.mu.Lock()
	tc.written += n
	tc.mu.Unlock()
}

func (tc *tapConn) bytesWritten() int {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.written
}

// tapListener wraps every accepted socket in a tapConn.
type tapListener struct {
	net.Listener
	taps chan *tapConn
}

func (l tapListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &tapConn{Conn: nc, cut: -1}
	l.taps <- tc
	return tc, nil
}

// pair is one WebSocket connection over loopback: the server side accepted
// through a HijackWriter (raw is its Conn, tap the socket under it) and
// the client side, whose reader is the library's.
type pair struct {
	server *websocket.Conn
	raw    *Conn
	tap    *tapConn
	client *websocket.Conn
}

func newPair(t *testing.T) *pair {
	t.Helper()
	type accepted struct {
		ws  *websocket.Conn
		raw *Conn
		err error
	}
	acc := make(chan accepted, 1)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hw := NewHijackWriter(w, 10*time.Second)
		ws, err := websocket.Accept(hw, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
		acc <- accepted{ws, hw.Conn(), err}
	}))
	taps := make(chan *tapConn, 1)
	ts.Listener = tapListener{ts.Listener, taps}
	ts.Start()
	t.Cleanup(ts.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http"), &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	client.SetReadLimit(1 << 20)
	t.Cleanup(func() { _ = client.CloseNow() })
	a := <-acc
	if a.err != nil {
		t.Fatalf("accept: %v", a.err)
	}
	t.Cleanup(func() { _ = a.ws.CloseNow() })
	if a.raw == nil {
		t.Fatal("HijackWriter.Conn is nil after the upgrade")
	}
	return &pair{server: a.ws, raw: a.raw, tap: <-taps, client: client}
}

// read reads one message with the library's reader.
func (p *pair) read(t *testing.T) (websocket.MessageType, []byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.client.Read(ctx)
}

func (p *pair) mustRead(t *testing.T) []byte {
	t.Helper()
	typ, b, err := p.read(t)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("message type %v, want text", typ)
	}
	return b
}

// payload returns n bytes that differ by position, so that a frame cut or
// shifted by a byte does not read back equal.
func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + (seed+byte(i%23))%26
	}
	return b
}

// lengthClasses covers every length form of a frame header: 7-bit (up to
// 125), 16-bit (126 to 65535), 64-bit (65536 and more), at both edges.
var lengthClasses = []int{0, 1, 125, 126, 127, 65535, 65536, 70000}

func TestWriteTextLengthClasses(t *testing.T) {
	p := newPair(t)
	for _, n := range lengthClasses {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			want := payload(n, byte(n))
			if err := p.raw.WriteText([][]byte{want}, n, false); err != nil {
				t.Fatal(err)
			}
			if got := p.mustRead(t); !bytes.Equal(got, want) {
				t.Fatalf("read %d bytes, want %d", len(got), n)
			}
		})
	}
}

func TestWriteTextBatchOfEveryLength(t *testing.T) {
	p := newPair(t)
	var msgs [][]byte
	size := 0
	for i, n := range lengthClasses {
		m := payload(n, byte(i))
		msgs = append(msgs, m)
		size += n
	}
	before := p.tap.bytesWritten()
	if err := p.raw.WriteText(msgs, size, false); err != nil {
		t.Fatal(err)
	}
	// One write: headers of 2, 4 and 10 bytes plus the payloads.
	wantBytes := size
	for _, n := range lengthClasses {
		wantBytes += len(AppendHeader(nil, true, OpText, n))
	}
	if got := p.tap.bytesWritten() - before; got != wantBytes {
		t.Fatalf("wrote %d bytes, want %d", got, wantBytes)
	}
	for i, want := range msgs {
		if got := p.mustRead(t); !bytes.Equal(got, want) {
			t.Fatalf("message %d: read %d bytes, want %d", i, len(got), len(want))
		}
	}
}

func TestWriteTextPacked(t *testing.T) {
	p := newPair(t)
	tests := []struct {
		name string
		msgs []string
	}{
		{"one", []string{`{"a":1}`}},
		{"three", []string{`{"a":1}`, `{"b":2}`, `{"c":3}`}},
		// 16-bit and 64-bit lengths for the array as a whole.
		{"16-bit", []string{`"` + strings.Repeat("x", 200) + `"`, `{}`}},
		{"64-bit", []string{`"` + strings.Repeat("y", 70000) + `"`, `1`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var msgs [][]byte
			size := 0
			for _, m := range tt.msgs {
				msgs = append(msgs, []byte(m))
				size += len(m)
			}
			if err := p.raw.WriteText(msgs, size, true); err != nil {
				t.Fatal(err)
			}
			want := "[" + strings.Join(tt.msgs, ",") + "]"
			if got := p.mustRead(t); string(got) != want {
				t.Fatalf("read %.60q (%d bytes), want %.60q (%d bytes)", got, len(got), want, len(want))
			}
		})
	}
}

// TestFragmentedMessages frames messages in several frames (a first text
// frame, continuations, a final one), with control frames between them,
// in every length class.
func TestFragmentedMessages(t *testing.T) {
	p := newPair(t)
	// The server reads, so that the client's pongs are consumed.
	_ = p.server.CloseRead(context.Background())
	tests := []struct {
		name  string
		parts []int
		ping  bool // a ping between the first and the second fragment
	}{
		{"two small", []int{3, 4}, false},
		{"empty first fragment", []int{0, 5}, false},
		{"empty last fragment", []int{5, 0}, false},
		{"every length class", lengthClasses, false},
		{"ping between fragments", []int{125, 126, 65535}, true},
		{"large then small", []int{65536, 1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b, want []byte
			for i, n := range tt.parts {
				part := payload(n, byte(i))
				op := OpContinuation
				if i == 0 {
					op = OpText
				}
				b = AppendHeader(b, i == len(tt.parts)-1, op, n)
				b = append(b, part...)
				want = append(want, part...)
				if i == 0 && tt.ping {
					b = AppendHeader(b, true, OpPing, 4)
					b = append(b, "ping"...)
				}
			}
			if err := p.raw.WriteFrames(b); err != nil {
				t.Fatal(err)
			}
			if got := p.mustRead(t); !bytes.Equal(got, want) {
				t.Fatalf("read %d bytes, want %d", len(got), len(want))
			}
		})
	}
	// The connection is still in step: a plain message reads back.
	if err := p.raw.WriteText([][]byte{[]byte("after")}, 5, false); err != nil {
		t.Fatal(err)
	}
	if got := p.mustRead(t); string(got) != "after" {
		t.Fatalf("read %q", got)
	}
}

// TestPingsInterleavedWithData sends batches of data while the library
// pings the client: every message arrives whole and in order, and every
// ping gets its pong.
func TestPingsInterleavedWithData(t *testing.T) {
	p := newPair(t)
	readCtx := p.server.CloseRead(context.Background())
	const batches, perBatch, pings = 200, 5, 50
	done := make(chan error, 1)
	go func() {
		for i := 0; i < batches; i++ {
			msgs := make([][]byte, perBatch)
			size := 0
			for j := range msgs {
				msgs[j] = []byte(fmt.Sprintf("%d:%s", i*perBatch+j, payload(100+(i*perBatch+j)%300, byte(j))))
				size += len(msgs[j])
			}
			if err := p.raw.WriteText(msgs, size, false); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	pinged := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(readCtx, 20*time.Second)
		defer cancel()
		for i := 0; i < pings; i++ {
			if err := p.server.Ping(ctx); err != nil {
				pinged <- err
				return
			}
		}
		pinged <- nil
	}()
	for i := 0; i < batches*perBatch; i++ {
		got := p.mustRead(t)
		id, rest, ok := strings.Cut(string(got), ":")
		if !ok || id != strconv.Itoa(i) || rest != string(payload(100+i%300, byte(i%perBatch))) {
			t.Fatalf("message %d: read %.40q", i, got)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("write: %v", err)
	}
	// The client answers pings while it reads: keep reading until every
	// ping has had its answer.
	_ = p.client.CloseRead(context.Background())
	if err := <-pinged; err != nil {
		t.Fatalf("ping: %v", err)
	}
}

// TestCloseAfterData: the library's close frame follows the data already
// written, and data after it is refused.
func TestCloseAfterData(t *testing.T) {
	p := newPair(t)
	const n = 100
	for i := 0; i < n; i++ {
		m := []byte(strconv.Itoa(i))
		if err := p.raw.WriteText([][]byte{m}, len(m), false); err != nil {
			t.Fatal(err)
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- p.server.Close(4008, "slow consumer") }()
	for i := 0; i < n; i++ {
		if got := p.mustRead(t); string(got) != strconv.Itoa(i) {
			t.Fatalf("message %d: read %q", i, got)
		}
	}
	_, _, err := p.read(t)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4008 || ce.Reason != "slow consumer" {
		t.Fatalf("after the data: %v, want close 4008 slow consumer", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := p.raw.WriteText([][]byte{[]byte("late")}, 4, false); !errors.Is(err, ErrCloseSent) {
		t.Fatalf("write after close: %v, want ErrCloseSent", err)
	}
}

// TestCloseWaitsForFrameInProgress: a close frame the library writes while
// a batch is half-way out waits until the batch is whole.
func TestCloseWaitsForFrameInProgress(t *testing.T) {
	p := newPair(t)
	hold, holding := make(chan struct{}), make(chan struct{})
	p.tap.mu.Lock()
	p.tap.hold, p.tap.holding = hold, holding
	p.tap.mu.Unlock()
	big := payload(70000, 1)
	written := make(chan error, 1)
	go func() { written <- p.raw.WriteText([][]byte{big, []byte("tail")}, len(big)+4, false) }()
	<-holding
	closed := make(chan error, 1)
	go func() { closed <- p.server.Close(4008, "slow consumer") }()
	// The close frame must be waiting for the socket, behind the batch.
	waitForStack(t, "wsframe.(*Conn).Write(", "sync.(*Mutex).Lock")
	close(hold)
	if err := <-written; err != nil {
		t.Fatalf("write: %v", err)
	}
	if got := p.mustRead(t); !bytes.Equal(got, big) {
		t.Fatalf("read %d bytes, want %d", len(got), len(big))
	}
	if got := p.mustRead(t); string(got) != "tail" {
		t.Fatalf("read %q, want tail", got)
	}
	_, _, err := p.read(t)
	if code := websocket.CloseStatus(err); code != 4008 {
		t.Fatalf("after the batch: %v, want close 4008", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("close: %v", err)
	}
}

// TestCloseAfterPartialWrite: once a write has failed part-way through a
// frame, nothing more reaches the socket. A close frame written then would
// be read as the rest of the cut frame's payload.
func TestCloseAfterPartialWrite(t *testing.T) {
	p := newPair(t)
	msg := payload(1000, 3)
	p.tap.mu.Lock()
	p.tap.cut = 4 + 10 // the 16-bit header and 10 bytes of the payload
	p.tap.mu.Unlock()
	if err := p.raw.WriteText([][]byte{msg}, len(msg), false); !errors.Is(err, errInjected) {
		t.Fatalf("cut write: %v, want the injected failure", err)
	}
	after := p.tap.bytesWritten()
	if err := p.server.Close(4008, "slow consumer"); err == nil {
		t.Fatal("the library's close reported success after a failed write")
	}
	if got := p.tap.bytesWritten(); got != after {
		t.Fatalf("%d bytes written after the failed write", got-after)
	}
	if err := p.raw.WriteText([][]byte{[]byte("x")}, 1, false); err == nil {
		t.Fatal("a write after the failed one succeeded")
	}
	if err := p.raw.WriteFrames([]byte{0x81, 0}); err == nil {
		t.Fatal("WriteFrames after the failed write succeeded")
	}
	// The client sees a cut frame and the end of the stream, not a close
	// code made of payload bytes.
	_, b, err := p.read(t)
	if err == nil {
		t.Fatalf("read %d bytes of a cut frame", len(b))
	}
	if code := websocket.CloseStatus(err); code != -1 {
		t.Fatalf("client saw close %d (%v) after a cut frame", code, err)
	}
}

// TestCloseReasonTooLong: the library refuses a reason over 123 bytes and
// then sends no close frame; CloseReason keeps the code on the wire.
func TestCloseReasonTooLong(t *testing.T) {
	p := newPair(t)
	long := strings.Repeat("é", 100)
	go func() { _ = p.server.Close(4003, CloseReason(long)) }()
	_, _, err := p.read(t)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4003 {
		t.Fatalf("read: %v, want close 4003", err)
	}
	if ce.Reason != strings.Repeat("é", 61) {
		t.Fatalf("reason %q (%d bytes)", ce.Reason, len(ce.Reason))
	}
}

// TestHijackKeepsEarlyBytes: a frame the client sends in the same packet as
// its handshake is read first.
func TestHijackKeepsEarlyBytes(t *testing.T) {
	got := make(chan string, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hw := NewHijackWriter(w, 10*time.Second)
		if hw.Unwrap() != w {
			t.Error("Unwrap does not return the wrapped ResponseWriter")
		}
		ws, err := websocket.Accept(hw, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			got <- "accept: " + err.Error()
			return
		}
		defer ws.CloseNow()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, b, err := ws.Read(ctx)
		if err != nil {
			got <- "read: " + err.Error()
			return
		}
		got <- string(b)
	}))
	defer ts.Close()
	nc, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	req := "GET / HTTP/1.1\r\nHost: " + strings.TrimPrefix(ts.URL, "http://") + "\r\n" +
		"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	// A masked text frame with a zero key: the payload is sent as is.
	frame := append([]byte{0x81, 0x80 | 5, 0, 0, 0, 0}, "early"...)
	if _, err := nc.Write(append([]byte(req), frame...)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if s := <-got; s != "early" {
		t.Fatalf("server read %q, want early", s)
	}
}

// waitForStack waits until some goroutine's stack holds every one of the
// given frames.
func waitForStack(t *testing.T, frames ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			all := true
			for _, f := range frames {
				if !strings.Contains(g, f) {
					all = false
					break
				}
			}
			if all {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no goroutine blocked in %v", frames)
		}
		time.Sleep(time.Millisecond) // polling interval: each check stops the world
	}
}

// TestWriteCloseThenLibraryClose: a close frame written by WriteClose is
// the only one on the wire; the library's Close that follows waits for the
// peer's answer instead of sending a second one, and data is refused.
func TestWriteCloseThenLibraryClose(t *testing.T) {
	p := newPair(t)
	if err := p.raw.WriteClose(1009, "too big"); err != nil {
		t.Fatalf("WriteClose: %v", err)
	}
	if err := p.raw.WriteClose(1011, "again"); err != nil {
		t.Fatalf("second WriteClose: %v", err)
	}
	if err := p.raw.WriteText([][]byte{[]byte("late")}, 4, false); !errors.Is(err, ErrCloseSent) {
		t.Fatalf("data after WriteClose: %v, want ErrCloseSent", err)
	}
	sent := p.tap.bytesWritten()
	closed := make(chan error, 1)
	go func() { closed <- p.server.Close(1009, "too big") }()
	// The client reads the one close frame and answers it; the
	// library's handshake then ends.
	_, _, err := p.read(t)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 1009 || ce.Reason != "too big" {
		t.Fatalf("client read %v, want close 1009 too big", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("library Close: %v", err)
	}
	if got := p.tap.bytesWritten(); got != sent {
		t.Fatalf("%d more bytes written after WriteClose", got-sent)
	}
}
