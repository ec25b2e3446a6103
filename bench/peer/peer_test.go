package peer

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestValidRoom(t *testing.T) {
	for ch, want := range map[string]bool{"room:1": true, "room:abc": true, "room:": false, "user:1": false, "": false, "xroom:1": false} {
		if got := ValidRoom(ch); got != want {
			t.Errorf("ValidRoom(%q) = %v, want %v", ch, got, want)
		}
	}
}

func TestCheckLoopback(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:8001", "[::1]:80", "localhost:1", "127.1.2.3:0"} {
		if err := CheckLoopback(ok); err != nil {
			t.Errorf("CheckLoopback(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"0.0.0.0:8001", ":8001", "10.0.0.1:80", "example.com:80", "127.0.0.1"} {
		if err := CheckLoopback(bad); err == nil {
			t.Errorf("CheckLoopback(%q): no error", bad)
		}
	}
}

func TestOptionsChecked(t *testing.T) {
	if _, err := New(Options{MaxMessagesInFrame: -1}); err == nil {
		t.Error("a negative MaxMessagesInFrame was accepted")
	}
	if _, err := New(Options{WriteDelay: -time.Second}); err == nil {
		t.Error("a negative WriteDelay was accepted")
	}
	if err := Main(context.Background(), []string{"-addr", "0.0.0.0:0"}, nil); err == nil {
		t.Error("Main listened on a non-loopback address")
	}
	if err := Main(context.Background(), []string{"stray"}, nil); err == nil {
		t.Error("Main accepted a stray argument")
	}
}

// TestAnonymousRefused: an upgrade request without ?user= gets 401, and the
// health check answers.
func TestAnonymousRefused(t *testing.T) {
	p, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	srv := httptest.NewServer(p.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + Path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", resp.StatusCode)
	}
	resp, err = http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz status %d", resp.StatusCode)
	}
}
