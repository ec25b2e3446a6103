package main

// What the fault tests run on: PostgreSQL (a schema of each test's own), a
// private redis-server that a test may kill and restart, the example
// server in this process (built by run, as main builds it) or as a child
// process (the binary built once per test that needs it), and an admin
// connection to the database to count what was stored.

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/chatmux/chatmux/internal/testenv"
)

// faultPoll is the interval at which the fault tests poll for a condition.
const faultPoll = 10 * time.Millisecond

// waitFor polls cond every faultPoll until it holds, and fails the test
// with what when it still does not after limit.
func waitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(faultPoll) // polling interval
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use: a node's logs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// dumpLogsOnFailure logs the tail of a node's logs when the test has
// failed, so that a failure shows what the server said.
func dumpLogsOnFailure(t *testing.T, name string, logs *syncBuffer) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last log lines of node %s:\n%s", name, tail(logs.String(), 60))
		}
	})
}

// faultDatabase returns the URL of a schema of the test's own (dropped when
// the test ends), or skips the test without TEST_DATABASE_URL (fails under
// CHATMUX_REQUIRE_SERVICES=1).
func faultDatabase(t *testing.T) string {
	t.Helper()
	return testenv.DatabaseSchema(t, "example_faults_")
}

// withParam returns the PostgreSQL URL u with a query parameter set.
func withParam(t testing.TB, u, name, value string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatalf("parse %s: %v", u, err)
	}
	q := p.Query()
	q.Set(name, value)
	p.RawQuery = q.Encode()
	return p.String()
}

// withHost returns the URL u with its host:port replaced (a proxy's).
func withHost(t testing.TB, u, host string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatalf("parse %s: %v", u, err)
	}
	p.Host = host
	return p.String()
}

// faultDB is an admin connection to the test's schema.
type faultDB struct {
	t  testing.TB
	db *sql.DB
}

func openFaultDB(t testing.TB, dbURL string) *faultDB {
	t.Helper()
	db, err := sql.Open("postgres", withParam(t, dbURL, "application_name", "chatmux_fault_admin"))
	if err != nil {
		t.Fatalf("open the database: %v", err)
	}
	db.SetMaxOpenConns(2)
	t.Cleanup(func() { _ = db.Close() })
	return &faultDB{t: t, db: db}
}

// count runs a query that returns one integer.
func (d *faultDB) count(query string, args ...any) int {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int
	if err := d.db.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
		d.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// storedMessage is a row of messages.
type storedMessage struct {
	Seq         int64
	ClientMsgID string
	SenderID    int64
}

// roomMessages returns every message of a room by seq.
func (d *faultDB) roomMessages(roomID string) map[int64]storedMessage {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := d.db.QueryContext(ctx,
		`SELECT seq, coalesce(client_msg_id, ''), sender_id FROM messages WHERE room_id = $1`, roomID)
	if err != nil {
		d.t.Fatalf("read the messages of room %s: %v", roomID, err)
	}
	defer rows.Close()
	out := map[int64]storedMessage{}
	for rows.Next() {
		var m storedMessage
		if err := rows.Scan(&m.Seq, &m.ClientMsgID, &m.SenderID); err != nil {
			d.t.Fatal(err)
		}
		out[m.Seq] = m
	}
	if err := rows.Err(); err != nil {
		d.t.Fatal(err)
	}
	return out
}

// sessions returns the number of open sessions of the users.
func (d *faultDB) sessions(userIDs []int64) int {
	d.t.Helper()
	return d.count(`SELECT count(*) FROM sessions WHERE user_id = ANY($1)`, pq.Array(userIDs))
}

// isMember reports whether the user is a member of the room in the store.
func (d *faultDB) isMember(roomID string, userID int64) bool {
	d.t.Helper()
	return d.count(`SELECT count(*) FROM memberships WHERE room_id = $1 AND user_id = $2`, roomID, userID) == 1
}

// backends returns the number of PostgreSQL backends of an application
// name.
func (d *faultDB) backends(app string) int {
	d.t.Helper()
	return d.count(`SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, app)
}

// nodeEnv is the environment of an example server: its settings by the
// names of the contract's table (CHATMUX_STORE_TIMEOUT, ...).
type nodeEnv map[string]string

// faultNodeSettings are the settings every fault node starts with, over
// which a test sets its own: no send limit (the tests send fast), a small
// pool (the database is shared), short timeouts.
func faultNodeSettings(dbURL, redisURL string, over nodeEnv) nodeEnv {
	env := nodeEnv{
		"CHATMUX_ADDR":             "127.0.0.1:0",
		"CHATMUX_SEND_LIMIT":       "off",
		"CHATMUX_DB_MAX_CONNS":     "8",
		"CHATMUX_STORE_TIMEOUT":    "2s",
		"CHATMUX_CONNECT_TIMEOUT":  "2s",
		"CHATMUX_SHUTDOWN_TIMEOUT": "5s",
		"DATABASE_URL":             dbURL,
		"REDIS_URL":                redisURL,
	}
	for k, v := range over {
		env[k] = v
	}
	return env
}

// faultNode is an example server running in this process, built by run as
// main builds it.
type faultNode struct {
	name string
	addr string // host:port
	logs *syncBuffer
}

// httpURL and wsURL are the node's base URLs.
func (n *faultNode) httpURL() string { return "http://" + n.addr }
func (n *faultNode) wsURL() string   { return "ws://" + n.addr }

// startFaultNode starts the example server in this process with the
// settings of env (read by parseConfig, as main reads them), and stops it
// as SIGTERM does (run's context ends) when the test ends.
func startFaultNode(t *testing.T, name string, env nodeEnv) *faultNode {
	t.Helper()
	cfg, err := parseConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatalf("node %s: config: %v", name, err)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", name)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, logger, ready) }()
	n := &faultNode{name: name, logs: logs}
	dumpLogsOnFailure(t, name, logs)
	select {
	case n.addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("node %s: run: %v", name, err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("node %s: not listening within 30s", name)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Logf("node %s: run returned %v", name, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("node %s: run did not return within 30s of its shutdown", name)
		}
	})
	return n
}

// healthz asks a node's /healthz and returns the status code, the body and
// how long the answer took.
func healthz(hc *http.Client, base string) (int, string, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
	if err != nil {
		return 0, "", 0, err
	}
	start := time.Now()
	res, err := hc.Do(req)
	if err != nil {
		return 0, "", time.Since(start), err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, strings.TrimSpace(string(b)), time.Since(start), err
}

// newHTTPClient returns an HTTP client of the test's own, whose idle
// connections are closed when the test ends.
func newHTTPClient(t *testing.T) *http.Client {
	tr := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// buildChat builds the example server's binary into a directory of the
// test's own and returns its path.
func buildChat(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	out := filepath.Join(t.TempDir(), "chat")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, ".")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build the example server: %v\n%s", err, b)
	}
	return out
}

// procNode is the example server running as a child process.
type procNode struct {
	name   string
	addr   string
	nodeID string // from its "listening" line, when it says
	cmd    *exec.Cmd
	logs   *syncBuffer
	exited chan struct{}
	err    error // cmd.Wait's, once exited is closed
}

func (n *procNode) httpURL() string { return "http://" + n.addr }
func (n *procNode) wsURL() string   { return "ws://" + n.addr }

// startProcNode starts the binary bin with env (and nothing else of this
// process's environment but PATH and HOME), logging JSON, and returns once
// it logs that it listens. The process is killed when the test ends if it
// is still running.
func startProcNode(t *testing.T, bin, name string, env nodeEnv) *procNode {
	t.Helper()
	cmd := exec.Command(bin, "-log-format", "json")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	n := &procNode{name: name, cmd: cmd, logs: &syncBuffer{}, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node %s: %v", name, err)
	}
	dumpLogsOnFailure(t, name, n.logs)
	listening := make(chan [2]string, 1)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			_, _ = n.logs.Write([]byte(line + "\n"))
			if addr, id, ok := listeningLine(line); ok {
				select {
				case listening <- [2]string{addr, id}:
				default:
				}
			}
		}
	}()
	go func() {
		<-scanned // Wait closes the pipe: read it all first
		n.err = cmd.Wait()
		close(n.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-n.exited:
		default:
			_ = cmd.Process.Kill()
			<-n.exited
		}
	})
	select {
	case l := <-listening:
		n.addr, n.nodeID = l[0], l[1]
	case <-n.exited:
		t.Fatalf("node %s exited at start: %v\n%s", name, n.err, tail(n.logs.String(), 30))
	case <-time.After(30 * time.Second):
		t.Fatalf("node %s: no listening line within 30s", name)
	}
	return n
}

// listeningLine reads the server's JSON "listening" log line: the address
// (from the first http:// URL, or an addr field) and the node id when the
// line has one.
func listeningLine(line string) (addr, nodeID string, ok bool) {
	var m map[string]any
	if json.Unmarshal([]byte(line), &m) != nil {
		return "", "", false
	}
	if msg, _ := m["msg"].(string); !strings.Contains(msg, "listening") {
		return "", "", false
	}
	for _, k := range []string{"node", "node_id"} {
		if s, ok := m[k].(string); ok {
			nodeID = s
		}
	}
	for _, k := range []string{"url", "addr", "address"} {
		s, _ := m[k].(string)
		if u, err := url.Parse(s); err == nil && u.Host != "" {
			return u.Host, nodeID, true
		}
		if _, _, err := net.SplitHostPort(s); err == nil {
			return s, nodeID, true
		}
	}
	return "", "", false
}

// signal sends sig to the process.
func (n *procNode) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := n.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal node %s: %v", n.name, err)
	}
}

// wait waits for the process to exit, at most limit, and returns how it
// exited.
func (n *procNode) wait(t *testing.T, limit time.Duration) error {
	t.Helper()
	select {
	case <-n.exited:
		return n.err
	case <-time.After(limit):
		t.Fatalf("node %s did not exit within %v", n.name, limit)
		return nil
	}
}

// exitCode returns the exit code of an exited process's error (0 for nil,
// -1 for a signal).
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -2
	}
	return 0
}

// figures formats name=value pairs on one line for the closing note.
func figures(kv ...any) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%v=%v", kv[i], kv[i+1])
	}
	return b.String()
}
