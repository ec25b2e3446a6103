package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/chatmux/chatmux/groups"
	"github.com/chatmux/chatmux/internal/testenv"
	"github.com/chatmux/chatmux/store"
	"github.com/chatmux/chatmux/store/memory"
)

// Tests of how the example server wires the framework's and the chat
// domain's fault handling: close codes when the store cannot check
// credentials, /healthz bounds, the metrics of stale connections and
// failed publishes, chat.resync, and what Close leaves in the store.

// serveWired starts the example server in process on st and b.
func serveWired(t *testing.T, cfg config, st store.Store, b groups.Broker) (*httptest.Server, *app) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	a := assemble(cfg, logger, st, "test", b, "test")
	ts := httptest.NewServer(a.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := a.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		ts.Close()
	})
	return ts, a
}

// Modes of switchStore.
const (
	switchUp   = iota
	switchDown // refuses with store.ErrUnavailable, as PostgreSQL cut
	switchHang // does not answer until the test ends, as PostgreSQL frozen
)

// switchStore is the memory store whose user creation, user upsert and
// Ping fail as mode says.
type switchStore struct {
	store.Store
	mode    atomic.Int32
	release chan struct{} // closed at the end of the test: hung calls return
}

func newSwitchStore(t *testing.T, mode int32) *switchStore {
	s := &switchStore{Store: memory.New(), release: make(chan struct{})}
	s.mode.Store(mode)
	t.Cleanup(func() { close(s.release) })
	return s
}

// fail returns the error of the current mode, after the test when it
// hangs (whatever ctx says: a hung connection does not see it).
func (s *switchStore) fail() error {
	switch s.mode.Load() {
	case switchDown:
		return fmt.Errorf("failed to connect: %w", store.ErrUnavailable)
	case switchHang:
		<-s.release
		return fmt.Errorf("failed to read: %w", store.ErrUnavailable)
	}
	return nil
}

func (s *switchStore) CreateUserByUsername(ctx context.Context, name string) (store.User, error) {
	if err := s.fail(); err != nil {
		return store.User{}, err
	}
	return s.Store.CreateUserByUsername(ctx, name)
}

func (s *switchStore) UpsertUser(ctx context.Context, u store.User) (store.User, error) {
	if err := s.fail(); err != nil {
		return store.User{}, err
	}
	return s.Store.UpsertUser(ctx, u)
}

// Ping is the health check /healthz uses (as (*postgres.Store).Ping).
func (s *switchStore) Ping(context.Context) error { return s.fail() }

// closeCode dials url and returns the close code the server ends the
// connection with, or 0 when it opens and sends its first frame.
func dialCloseCode(t *testing.T, url string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer ws.CloseNow()
	if _, _, err := ws.Read(ctx); err != nil {
		return int(websocket.CloseStatus(err))
	}
	return 0
}

// TestWiredAuthStoreUnavailable: when the store cannot answer (cut: it refuses
// with store.ErrUnavailable; frozen: past -store-timeout), a connection
// with good credentials is closed with 1013 (try again later) in both
// sign-in modes, never 4001; wrong credentials are still 4001, and /me
// answers 503 and 401 likewise.
func TestWiredAuthStoreUnavailable(t *testing.T) {
	valid := hs256(t, testSecret, jwt.MapClaims{"sub": 42, "username": "alice"})
	forged := hs256(t, []byte("not-the-server-secret-not-the-secret"), jwt.MapClaims{"sub": 42, "username": "alice"})
	expired := hs256(t, testSecret, jwt.MapClaims{"sub": 42, "username": "alice", "exp": time.Now().Add(-time.Hour).Unix()})
	tests := []struct {
		name   string
		jwt    bool
		mode   int32
		query  string
		want   int // close code, 0 for an open connection
		wantMe int // status of /me with the same query
	}{
		{"dev, store up", false, switchUp, "?user=alice", 0, http.StatusOK},
		{"dev, store down", false, switchDown, "?user=alice", 1013, http.StatusServiceUnavailable},
		{"dev, store hangs", false, switchHang, "?user=alice", 1013, http.StatusServiceUnavailable},
		{"dev, bad name, store down", false, switchDown, "?user=a%20b", 4001, http.StatusUnauthorized},
		{"dev, no name, store down", false, switchDown, "", 4001, http.StatusUnauthorized},
		{"jwt, store up", true, switchUp, "?token=" + valid, 0, http.StatusOK},
		{"jwt, store down", true, switchDown, "?token=" + valid, 1013, http.StatusServiceUnavailable},
		{"jwt, store hangs", true, switchHang, "?token=" + valid, 1013, http.StatusServiceUnavailable},
		{"jwt, forged token, store down", true, switchDown, "?token=" + forged, 4001, http.StatusUnauthorized},
		{"jwt, expired token, store down", true, switchDown, "?token=" + expired, 4001, http.StatusUnauthorized},
		{"jwt, forged token, store up", true, switchUp, "?token=" + forged, 4001, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newSwitchStore(t, tt.mode)
			cfg := config{Addr: "127.0.0.1:0", StoreTimeout: 300 * time.Millisecond}
			if tt.jwt {
				cfg.JWTSecret = testSecret
			}
			ts, _ := serveWired(t, cfg, st, groups.NewMemory())
			if got := dialCloseCode(t, "ws"+strings.TrimPrefix(ts.URL, "http")+wsPath+tt.query); got != tt.want {
				t.Errorf("close code %d, want %d", got, tt.want)
			}
			res, err := http.Get(ts.URL + "/me" + tt.query)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tt.wantMe {
				t.Errorf("/me: %s, want %d", res.Status, tt.wantMe)
			}
		})
	}
}

// TestWiredHealthzStoreHangs: a store whose health check never returns (a
// frozen connection that no context reaches) is reported unavailable with
// 503, within the bound of /healthz, instead of holding the request.
func TestWiredHealthzStoreHangs(t *testing.T) {
	st := newSwitchStore(t, switchUp)
	ts, _ := serveWired(t, config{Addr: "127.0.0.1:0"}, st, groups.NewMemory())
	// The client gives up long after the bound: without it, the request
	// would never be answered.
	client := &http.Client{Timeout: 5 * time.Second}
	for _, tt := range []struct {
		mode int32
		code int
		body string
	}{
		{switchUp, http.StatusOK, `{"broker":"ok","store":"ok"}`},
		{switchHang, http.StatusServiceUnavailable, `{"broker":"ok","store":"unavailable"}`},
		{switchDown, http.StatusServiceUnavailable, `{"broker":"ok","store":"unavailable"}`},
		{switchUp, http.StatusOK, `{"broker":"ok","store":"ok"}`},
	} {
		st.mode.Store(tt.mode)
		start := time.Now()
		res, err := client.Get(ts.URL + "/healthz")
		if err != nil {
			t.Fatalf("mode %d: %v", tt.mode, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		t.Logf("mode %d: %d %s in %v (bound %v)", tt.mode, res.StatusCode, strings.TrimSpace(string(b)),
			time.Since(start).Round(time.Millisecond), healthCheckTimeout)
		if res.StatusCode != tt.code || strings.TrimSpace(string(b)) != tt.body {
			t.Errorf("mode %d: /healthz = %d %s, want %d %s", tt.mode, res.StatusCode, b, tt.code, tt.body)
		}
	}
}

// switchBroker is the in-process broker with an availability the test
// switches, as the Redis broker reports the loss and the return of Redis.
// While it is down, a data publication reaches the local members (as the
// Redis broker serves them first) and then fails, as Redis's PUBLISH does.
type switchBroker struct {
	*groups.Memory
	mu   sync.Mutex
	f    func(available bool)
	down atomic.Bool
}

var _ groups.Availability = (*switchBroker)(nil)

func (b *switchBroker) OnAvailability(f func(available bool)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.f = f
}

func (b *switchBroker) set(available bool) {
	b.down.Store(!available)
	b.mu.Lock()
	f := b.f
	b.mu.Unlock()
	f(available)
}

func (b *switchBroker) Publish(ctx context.Context, group string, m *groups.Message) error {
	if err := b.Memory.Publish(ctx, group, m); err != nil {
		return err
	}
	if b.down.Load() && m.Kind == groups.KindData {
		return fmt.Errorf("failed to publish: %w", groups.ErrUnavailable)
	}
	return nil
}

// httpGet returns the status and the body of GET url.
func getBody(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, strings.TrimSpace(string(b))
}

// TestWiredBrokerAway: while the broker is away, /healthz reports it
// unavailable, a send is stored and answered to its sender although its
// publication failed (counted in chatmux_publish_failures_total), the
// dispatch the stale connections drop is counted in
// chatmux_stale_dropped_total; when the broker is back, every connection
// gets chat.resync with its rooms and their latest seq, and dispatches
// flow again.
func TestWiredBrokerAway(t *testing.T) {
	b := &switchBroker{Memory: groups.NewMemory()}
	ts, _ := serveWired(t, config{Addr: "127.0.0.1:0"}, memory.New(), b)
	alice := connect(t, ts, "alice")
	bob := connect(t, ts, "bob")
	alice.send("room.create", map[string]any{"type": "OneToOneChat", "participants": []int64{whoami(t, ts, "bob").ID}})
	var room struct {
		ID string `json:"id"`
	}
	alice.expect("roomcreate.dispatch", &room)
	bob.expect("roomcreate.dispatch")
	waitMetrics(t, ts, "chatmux_broker_available 1", "chatmux_publish_failures_total 0")

	b.set(false)
	if code, body := getBody(t, ts.URL+"/healthz"); code != http.StatusServiceUnavailable || body != `{"broker":"unavailable","store":"ok"}` {
		t.Errorf("/healthz while the broker is away = %d %s", code, body)
	}
	bob.send("message.send", map[string]any{"room_id": room.ID, "content": "while away", "client_msg_id": "m1"})
	var m wireMessage
	bob.expect("message.dispatch", &m)
	if m.Content != "while away" || m.Seq != 1 || m.ClientMsgID != "m1" {
		t.Fatalf("bob's answer = %+v", m)
	}
	// The room's dispatch reached both stale connections and was dropped
	// by both; bob was answered on his socket.
	waitMetrics(t, ts, "chatmux_broker_available 0", "chatmux_publish_failures_total 1", "chatmux_stale_dropped_total 2")

	b.set(true)
	for _, c := range []*client{alice, bob} {
		var rs struct {
			Rooms []struct {
				RoomID string `json:"room_id"`
				Seq    int64  `json:"seq"`
			} `json:"rooms"`
			Reason string `json:"reason"`
		}
		c.expect("chat.resync", &rs)
		if len(rs.Rooms) != 1 || rs.Rooms[0].RoomID != room.ID || rs.Rooms[0].Seq != 1 || rs.Reason != "broker" {
			t.Errorf("%s: chat.resync = %+v, want room %s at seq 1", c.name, rs, room.ID)
		}
	}
	if code, body := getBody(t, ts.URL+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz after the broker came back = %d %s", code, body)
	}
	bob.send("message.send", map[string]any{"room_id": room.ID, "content": "back"})
	alice.expect("message.dispatch", &m)
	if m.Content != "back" || m.Seq != 2 {
		t.Errorf("alice got %+v, want seq 2", m)
	}
	waitMetrics(t, ts, "chatmux_broker_available 1", "chatmux_publish_failures_total 1", "chatmux_stale_dropped_total 2")
}

// TestWiredCloseLeavesNoSessions: Close drains the connections (their
// $disconnect deletes their sessions) and then removes the node from the
// store with any session it still has, such as one whose $disconnect
// could not reach the store.
func TestWiredCloseLeavesNoSessions(t *testing.T) {
	st := memory.New()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	a := assemble(config{Addr: "127.0.0.1:0"}, logger, st, "memory", groups.NewMemory(), "memory")
	ts := httptest.NewServer(a.Handler())
	defer ts.Close()
	alice := connect(t, ts, "alice")
	aliceID := whoami(t, ts, "alice").ID
	// A session of this node that no connection will close.
	ctx := context.Background()
	if _, err := st.CreateSession(ctx, store.NewSession{UserID: aliceID, ConnID: "lost", NodeID: a.NodeID()}); err != nil {
		t.Fatal(err)
	}
	if s, err := st.UserSessions(ctx, aliceID); err != nil || len(s) != 2 {
		t.Fatalf("sessions before Close = %+v, %v; want 2", s, err)
	}

	// Alice reads, as a client does: the 1001 close handshake completes.
	closed := make(chan error, 1)
	go func() {
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		defer rcancel()
		_, _, err := alice.ws.Read(rctx)
		closed <- err
	}()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := a.Close(cctx); err != nil {
		t.Fatal(err)
	}
	if err := <-closed; websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("alice after Close: %v, want 1001", err)
	}
	if s, err := st.UserSessions(ctx, aliceID); err != nil || len(s) != 0 {
		t.Errorf("sessions after Close = %+v, %v; want none", s, err)
	}
	// The node is gone from the store: another node's sweep has nothing
	// of it to expire.
	if n, err := st.RemoveNode(ctx, a.NodeID()); err != nil || n != 0 {
		t.Errorf("RemoveNode after Close = %d, %v; want 0", n, err)
	}
}

// TestWiredConnLimits: the example server's per-user limit closes one
// connection too many with 1013, and the per-address limit likewise.
func TestWiredConnLimits(t *testing.T) {
	tests := []struct {
		name string
		cfg  config
	}{
		{"per user", config{Addr: "127.0.0.1:0", MaxConnsPerUser: 2}},
		{"per address", config{Addr: "127.0.0.1:0", MaxConnsPerAddr: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServerWith(t, tt.cfg)
			connect(t, ts, "erin")
			connect(t, ts, "erin")
			url := "ws" + strings.TrimPrefix(ts.URL, "http") + wsPath + "?user=erin"
			if got := dialCloseCode(t, url); got != 1013 {
				t.Errorf("third connection: close %d, want 1013", got)
			}
		})
	}
}

// TestWiredParseConfig: the settings of the fault handling, from
// their defaults, the environment and the flags (which win), and the
// values refused.
func TestWiredParseConfig(t *testing.T) {
	defaults := config{
		ShutdownTimeout: 10 * time.Second,
		DBMaxConns:      16,
		StoreTimeout:    5 * time.Second,
		ConnectTimeout:  5 * time.Second,
		MaxConnsPerUser: 32,
		MaxConnsPerAddr: 0,
		NodeHeartbeat:   5 * time.Second,
		NodeExpiry:      15 * time.Second,

		InactivityThreshold: time.Minute,
		PresenceGrace:       5 * time.Second,
		PresenceInterval:    2 * time.Second,
	}
	with := func(f func(*config)) config { c := defaults; f(&c); return c }
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    config
		wantErr string // a part of the error; "" when accepted
	}{
		{name: "defaults", want: defaults},
		{name: "environment", env: map[string]string{
			"CHATMUX_SHUTDOWN_TIMEOUT":   "30s",
			"CHATMUX_DB_MAX_CONNS":       "4",
			"CHATMUX_STORE_TIMEOUT":      "2s",
			"CHATMUX_CONNECT_TIMEOUT":    "3s",
			"CHATMUX_MAX_CONNS_PER_USER": "0",
			"CHATMUX_MAX_CONNS_PER_ADDR": "100",
			"CHATMUX_NODE_HEARTBEAT":     "1s",
			"CHATMUX_NODE_EXPIRY":        "4s",

			"CHATMUX_INACTIVITY_THRESHOLD": "30s",
			"CHATMUX_PRESENCE_GRACE":       "1s",
			"CHATMUX_PRESENCE_INTERVAL":    "500ms",
		}, want: config{
			ShutdownTimeout: 30 * time.Second, DBMaxConns: 4, StoreTimeout: 2 * time.Second, ConnectTimeout: 3 * time.Second,
			MaxConnsPerUser: 0, MaxConnsPerAddr: 100, NodeHeartbeat: time.Second, NodeExpiry: 4 * time.Second,
			InactivityThreshold: 30 * time.Second, PresenceGrace: time.Second, PresenceInterval: 500 * time.Millisecond,
		}},
		{name: "flags", args: []string{"-shutdown-timeout", "1m", "-db-max-conns", "8", "-store-timeout", "500ms",
			"-connect-timeout", "1s", "-max-conns-per-user", "5", "-max-conns-per-addr", "50",
			"-node-heartbeat", "2s", "-node-expiry", "10s",
			"-inactivity-threshold", "2m", "-presence-grace", "10s", "-presence-interval", "3s"},
			want: config{ShutdownTimeout: time.Minute, DBMaxConns: 8, StoreTimeout: 500 * time.Millisecond, ConnectTimeout: time.Second,
				MaxConnsPerUser: 5, MaxConnsPerAddr: 50, NodeHeartbeat: 2 * time.Second, NodeExpiry: 10 * time.Second,
				InactivityThreshold: 2 * time.Minute, PresenceGrace: 10 * time.Second, PresenceInterval: 3 * time.Second}},
		{name: "flag wins", args: []string{"-store-timeout", "1s"}, env: map[string]string{"CHATMUX_STORE_TIMEOUT": "9s"},
			want: with(func(c *config) { c.StoreTimeout = time.Second })},
		{name: "bad env duration", env: map[string]string{"CHATMUX_STORE_TIMEOUT": "soon"}, wantErr: "CHATMUX_STORE_TIMEOUT"},
		{name: "bad env number", env: map[string]string{"CHATMUX_DB_MAX_CONNS": "many"}, wantErr: "CHATMUX_DB_MAX_CONNS"},
		{name: "zero pool", args: []string{"-db-max-conns", "0"}, wantErr: "-db-max-conns"},
		{name: "zero store timeout", args: []string{"-store-timeout", "0s"}, wantErr: "-store-timeout"},
		{name: "negative connect timeout", args: []string{"-connect-timeout", "-1s"}, wantErr: "-connect-timeout"},
		{name: "zero shutdown timeout", env: map[string]string{"CHATMUX_SHUTDOWN_TIMEOUT": "0s"}, wantErr: "-shutdown-timeout"},
		{name: "negative user limit", args: []string{"-max-conns-per-user", "-1"}, wantErr: "-max-conns-per-user"},
		{name: "negative address limit", args: []string{"-max-conns-per-addr", "-1"}, wantErr: "-max-conns-per-addr"},
		{name: "zero inactivity threshold", args: []string{"-inactivity-threshold", "0s"}, wantErr: "-inactivity-threshold"},
		{name: "negative presence grace", env: map[string]string{"CHATMUX_PRESENCE_GRACE": "-1s"}, wantErr: "-presence-grace"},
		{name: "zero presence interval", args: []string{"-presence-interval", "0"}, wantErr: "-presence-interval"},
		{name: "bad presence env", env: map[string]string{"CHATMUX_INACTIVITY_THRESHOLD": "long"}, wantErr: "CHATMUX_INACTIVITY_THRESHOLD"},
		{name: "expiry under two heartbeats", args: []string{"-node-heartbeat", "10s", "-node-expiry", "15s"}, wantErr: "-node-expiry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := config{
				ShutdownTimeout: cfg.ShutdownTimeout, DBMaxConns: cfg.DBMaxConns, StoreTimeout: cfg.StoreTimeout,
				ConnectTimeout: cfg.ConnectTimeout, MaxConnsPerUser: cfg.MaxConnsPerUser, MaxConnsPerAddr: cfg.MaxConnsPerAddr,
				NodeHeartbeat: cfg.NodeHeartbeat, NodeExpiry: cfg.NodeExpiry,
				InactivityThreshold: cfg.InactivityThreshold, PresenceGrace: cfg.PresenceGrace, PresenceInterval: cfg.PresenceInterval,
			}
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tt.want) {
				t.Errorf("settings = %+v\nwant       %+v", got, tt.want)
			}
		})
	}
}

// TestWiredRedisDownAtStart: a node starts while Redis is down (the broker
// connects in the background): /healthz reports the broker unavailable,
// connections open (stale); once Redis answers, each connection gets
// chat.resync and /healthz reports 200.
func TestWiredRedisDownAtStart(t *testing.T) {
	rds := testenv.NewRedis(t)
	ts := newTestServerWith(t, config{Addr: "127.0.0.1:0", RedisURL: rds.URL(), RedisPrefix: testenv.UniqueName("wired") + ":"})
	if code, body := getBody(t, ts.URL+"/healthz"); code != http.StatusServiceUnavailable || body != `{"broker":"unavailable","store":"ok"}` {
		t.Errorf("/healthz with Redis down = %d %s", code, body)
	}
	alice := connect(t, ts, "alice")
	waitMetrics(t, ts, "chatmux_broker_available 0")

	rds.Start()
	var rs struct {
		Rooms  []json.RawMessage `json:"rooms"`
		Reason string            `json:"reason"`
	}
	alice.expect("chat.resync", &rs)
	if len(rs.Rooms) != 0 || rs.Reason != "broker" {
		t.Errorf("chat.resync = %+v, want no rooms, reason broker", rs)
	}
	waitMetrics(t, ts, "chatmux_broker_available 1")
	// The broker reported true; the health check's own PING may need its
	// client to dial first.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := getBody(t, ts.URL+"/healthz")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz 10s after Redis started = %d %s", code, body)
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
}

// TestWiredWithin: the bound of each /healthz check returns the check's
// own answer whenever the check answers, never a timeout that raced with
// it (a context cancelled by the check's goroutine right after its answer
// did: under -race, as make test runs, that fails within the 1000 calls),
// and gives up on a check that does not answer.
func TestWiredWithin(t *testing.T) {
	boom := errors.New("boom")
	for i := 0; i < 1000; i++ {
		if err := within(context.Background(), time.Minute, func(context.Context) error { return nil }); err != nil {
			t.Fatalf("call %d of a check that answers at once: %v", i, err)
		}
		if err := within(context.Background(), time.Minute, func(context.Context) error { return boom }); err != boom {
			t.Fatalf("call %d of a failing check: %v", i, err)
		}
	}
	release := make(chan struct{})
	defer close(release)
	err := within(context.Background(), 10*time.Millisecond, func(context.Context) error { <-release; return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a check that hangs: %v, want a deadline", err)
	}
}
