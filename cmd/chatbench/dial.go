package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// checkTarget parses a ws:// or wss:// URL and refuses hosts that are not
// loopback addresses unless allowRemote is set.
func checkTarget(raw string, allowRemote bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("failed to parse -url: %w", err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return nil, fmt.Errorf("-url must be ws:// or wss://, not %q", u.Scheme)
	}
	if allowRemote {
		return u, nil
	}
	host := u.Hostname()
	var ips []net.IP
	if ip := net.ParseIP(host); ip != nil {
		ips = []net.IP{ip}
	} else {
		ips, err = net.LookupIP(host)
		if err != nil {
			return nil, fmt.Errorf("failed to resolve %s: %w", host, err)
		}
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return nil, fmt.Errorf("refusing non-loopback target %s (%s): pass -allow-remote to load a remote server", host, ip)
		}
	}
	return u, nil
}

// dialer opens WebSocket connections, spreading them over many source
// addresses in 127.0.0.0/8 when the target is an IPv4 loopback address, so
// that the number of connections is not bounded by one address's
// ephemeral ports.
type dialer struct {
	base *url.URL
	// subprotocols are offered on every dial (chatmux.batch.v1 with -batch).
	subprotocols []string
	client       *http.Client
	sources      int
	next         atomic.Uint64
}

// newDialer returns a dialer for target. sources is the number of source
// addresses to use (127.0.0.2 onwards); 0 lets the kernel choose.
func newDialer(target *url.URL, sources int) *dialer {
	d := &dialer{base: target, sources: sources}
	nd := &net.Dialer{Timeout: 30 * time.Second}
	ip := net.ParseIP(target.Hostname())
	useSources := sources > 0 && ip != nil && ip.To4() != nil && ip.IsLoopback()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if !useSources {
				return nd.DialContext(ctx, network, addr)
			}
			i := d.next.Add(1)
			n := int(i % uint64(d.sources))
			src := net.IPv4(127, 0, byte(1+n/250), byte(2+n%250))
			ld := *nd
			ld.LocalAddr = &net.TCPAddr{IP: src}
			return ld.DialContext(ctx, network, addr)
		},
		DisableCompression:  true,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	d.client = &http.Client{Transport: tr}
	return d
}

// dial opens one connection with the query parameters q.
func (d *dialer) dial(ctx context.Context, q url.Values) (*websocket.Conn, error) {
	u := *d.base
	if len(q) > 0 {
		vals := u.Query()
		for k, v := range q {
			vals[k] = v
		}
		u.RawQuery = vals.Encode()
	}
	ws, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{
		HTTPClient:      d.client,
		CompressionMode: websocket.CompressionDisabled,
		Subprotocols:    d.subprotocols,
	})
	if resp != nil && resp.Body != nil && err != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("failed to dial: %w", err)
	}
	ws.SetReadLimit(64 << 20)
	return ws, nil
}

func (d *dialer) close() {
	d.client.Transport.(*http.Transport).CloseIdleConnections()
}
