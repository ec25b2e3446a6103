package testenv

import (
	"io"
	"net"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// Redis is a redis-server of a test's own, on a free loopback port, that
// the test starts, kills and restarts by its PID: tests that take Redis
// away use it, never the machine's Redis. It keeps nothing on disk.
type Redis struct {
	// Addr is the server's host:port.
	Addr string

	tb   testing.TB
	bin  string
	port string
	dir  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
}

// NewRedis reserves a loopback port for a redis-server found on PATH,
// without starting it, or skips the test when there is none (fails under
// CHATMUX_REQUIRE_SERVICES=1). The server is killed when the test ends.
func NewRedis(tb testing.TB) *Redis {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if Required() {
			tb.Fatal("redis-server is not on PATH but CHATMUX_REQUIRE_SERVICES=1: this test runs a Redis of its own")
		}
		tb.Skip("redis-server not on PATH: skipping a test that runs a Redis of its own (install redis-server)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	r := &Redis{Addr: addr, tb: tb, bin: bin, port: port, dir: tb.TempDir()}
	tb.Cleanup(r.Kill)
	return r
}

// StartRedis is NewRedis, started.
func StartRedis(tb testing.TB) *Redis {
	tb.Helper()
	r := NewRedis(tb)
	r.Start()
	return r
}

// URL is the redis:// URL of the server.
func (r *Redis) URL() string { return "redis://" + r.Addr + "/0" }

// Start starts the server (again) on its port, waits until it answers
// PING, and returns when the process was started.
func (r *Redis) Start() (started time.Time) {
	r.tb.Helper()
	cmd := exec.Command(r.bin, "--port", r.port, "--bind", "127.0.0.1", "--dir", r.dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no")
	if err := cmd.Start(); err != nil {
		r.tb.Fatalf("start redis-server: %v", err)
	}
	started = time.Now()
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	r.mu.Lock()
	r.cmd, r.exited = cmd, exited
	r.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for !r.answers() {
		select {
		case <-exited:
			r.tb.Fatalf("redis-server on port %s exited at start", r.port)
		default:
		}
		if time.Now().After(deadline) {
			r.tb.Fatalf("redis-server on port %s did not answer within 10s", r.port)
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
	return started
}

// answers reports whether the server answers a PING.
func (r *Redis) answers() bool {
	c, err := net.DialTimeout("tcp", r.Addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return false
	}
	buf := make([]byte, 7)
	n, _ := io.ReadFull(c, buf)
	return string(buf[:n]) == "+PONG\r\n"
}

// Kill ends the server with SIGKILL (by its PID) and waits until it has
// exited. Killing a server that is not running does nothing.
func (r *Redis) Kill() {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}
