package storetest

import (
	"net"
	"sync"
	"testing"
)

// Proxy is a TCP proxy for fault tests: it forwards connections to a
// target (a database) until it is frozen (bytes stop flowing both ways,
// connections stay open: a hung network path) or cut (every connection is
// reset). Create it with NewProxy; it closes when the test ends.
type Proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	frozen bool
	thaw   chan struct{} // closed by Thaw
	cut    chan struct{} // closed by Cut
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
	closed bool
}

// NewProxy listens on a free loopback port and forwards to target
// ("host:port").
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("proxy: failed to listen: %v", err)
	}
	p := &Proxy{ln: ln, target: target, thaw: make(chan struct{}), cut: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.close)
	return p
}

// Addr returns the proxy's address ("127.0.0.1:port").
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Freeze stops every byte in both directions, on open and new
// connections, until Thaw.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.frozen {
		p.frozen = true
		p.thaw = make(chan struct{})
	}
}

// Thaw lets bytes flow again.
func (p *Proxy) Thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen {
		p.frozen = false
		close(p.thaw)
	}
}

// Cut closes every open connection (both sides see a reset or EOF), frozen
// or not. New connections are still accepted (and frozen while the proxy
// is).
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
	close(p.cut)
	p.cut = make(chan struct{})
}

func (p *Proxy) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	_ = p.ln.Close()
	p.Thaw()
	p.Cut()
	p.wg.Wait()
}

// gate blocks while the proxy is frozen; it reports false when the
// connections are cut meanwhile or the proxy is closed.
func (p *Proxy) gate() bool {
	p.mu.Lock()
	frozen, thaw, cut, closed := p.frozen, p.thaw, p.cut, p.closed
	p.mu.Unlock()
	if frozen {
		select {
		case <-thaw:
		case <-cut:
			return false
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.closed && !closed
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			if !p.gate() || !p.track(in) {
				_ = in.Close()
				return
			}
			defer p.untrack(in)
			out, err := net.Dial("tcp", p.target)
			if err != nil || !p.track(out) {
				return
			}
			defer p.untrack(out)
			done := make(chan struct{}, 2)
			go func() { p.pipe(out, in); done <- struct{}{} }()
			go func() { p.pipe(in, out); done <- struct{}{} }()
			<-done
			// One side ended: end the other.
			_ = in.Close()
			_ = out.Close()
			<-done
		}()
	}
}

// pipe copies src to dst, holding every chunk while the proxy is frozen.
func (p *Proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.gate() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
