package main

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chatmux/chatmux/internal/testenv"
)

func TestMain(m *testing.M) {
	// The tests that start child processes (serve, connect workers) run
	// this test binary as chatbench.
	if os.Getenv("CHATBENCH_TEST_AS_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

func TestChildProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	t.Setenv("CHATBENCH_TEST_AS_MAIN", "1")
	// A server in a child process ("chatbench serve"), measured from /proc.
	rep := runSmall(t)
	if _, ok := rep.get("server_cpu_per_delivery_us"); !ok {
		t.Error("no server CPU per delivery for a child server")
	}
	// connect over two worker processes. A bare server registers a
	// connection just after its handshake answer: -hold lets it count the
	// last ones before it is measured (see settleHold).
	o, err := parseOptions("connect", []string{"-quiet", "-bare", "-conns", "40", "-per-process", "20", "-conn-rate", "0", "-hold", settleHold})
	if err != nil {
		t.Fatal(err)
	}
	rep, err = run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := rep.get("worker_processes"); v != 2 {
		t.Errorf("worker processes %v, want 2", v)
	}
	if v, _ := rep.get("opened"); v.(int64) != 40 {
		t.Errorf("opened %v, want 40", v)
	}
	if v, _ := rep.get("server_conns"); v.(int) != 40 {
		t.Errorf("server has %v connections, want 40", v)
	}
	if _, ok := rep.get("server_rss_per_conn_kib"); !ok {
		t.Error("no server RSS per connection for a child server")
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	for _, size := range []int{0, 10, 64, 300} {
		b := appendPayload(nil, 1764000000123456789, 17, 42, size)
		if len(b) < size {
			t.Fatalf("size %d: payload of %d bytes", size, len(b))
		}
		frame := append([]byte(`{"eventType":"message.dispatch","data":{"content":"`), b...)
		frame = append(frame, `"}}`...)
		at, sender, seq, ok := parsePayload(frame)
		if !ok || at != 1764000000123456789 || sender != 17 || seq != 42 {
			t.Fatalf("size %d: parsed %d %d %d %v", size, at, sender, seq, ok)
		}
	}
	for _, bad := range []string{"", "CBT", "CBT12", "CBT12.3", "CBT12.3.4", "CBTx.1.2."} {
		if _, _, _, ok := parsePayload([]byte(bad)); ok {
			t.Errorf("parsePayload(%q) ok", bad)
		}
	}
}

func TestHistQuantiles(t *testing.T) {
	var h hist
	for i := 1; i <= 1000; i++ {
		h.record(int64(i) * int64(time.Microsecond))
	}
	check := func(q float64, want time.Duration) {
		got := h.quantile(q)
		if d := float64(got-want) / float64(want); d < -0.04 || d > 0.04 {
			t.Errorf("quantile(%v) = %v, want about %v", q, got, want)
		}
	}
	check(0.5, 500*time.Microsecond)
	check(0.99, 990*time.Microsecond)
	check(1, 1000*time.Microsecond)
	if h.n != 1000 || h.max != int64(time.Millisecond) {
		t.Errorf("n %d max %d", h.n, h.max)
	}
	for _, v := range []int64{0, 1, 31, 32, 33, 1000, 1 << 40} {
		if i := histIndex(v); histValue(i) < v || i >= histBuckets {
			t.Errorf("bucket %d of %d has bound %d", i, v, histValue(i))
		}
	}
}

func TestCheckTarget(t *testing.T) {
	for _, u := range []string{"ws://127.0.0.1:8080/messaging/", "ws://localhost:1/", "ws://[::1]:80/", "ws://127.3.4.5/"} {
		if _, err := checkTarget(u, false); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
	for _, u := range []string{"ws://10.0.0.1/", "ws://192.168.1.1:80/", "http://127.0.0.1/"} {
		if _, err := checkTarget(u, false); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
	if _, err := checkTarget("ws://10.0.0.1/", true); err != nil {
		t.Errorf("-allow-remote: %v", err)
	}
}

// runSmall runs fanout for about a second against an in-process server
// and checks that every message reached every member of its room.
func runSmall(t *testing.T, args ...string) *report {
	t.Helper()
	// -drain is how long the run may wait for messages in flight after the
	// senders stop; it ends as soon as all arrived, so a generous bound
	// costs nothing on an idle machine and keeps a loaded one from
	// reporting messages that are only late as lost.
	base := []string{"-quiet", "-duration", "1s", "-rooms", "2", "-members", "4", "-senders", "3", "-sources", "4", "-drain", "30s"}
	o, err := parseOptions("fanout", append(base, args...))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	get := func(k string) any {
		v, ok := rep.get(k)
		if !ok {
			t.Fatalf("report has no %s", k)
		}
		return v
	}
	sent := get("sent").(int64)
	expected := get("expected_deliveries").(int64)
	delivered := get("delivered").(int64)
	if sent == 0 {
		t.Fatal("nothing sent")
	}
	// 2 rooms of 4 members: each message reaches the 4 members of its room.
	if expected != sent*4 {
		t.Errorf("expected deliveries %d, want %d (sent %d x 4 members)", expected, sent*4, sent)
	}
	if delivered != expected {
		t.Errorf("delivered %d, want %d", delivered, expected)
	}
	for _, k := range []string{"lost", "errors", "gaps", "duplicates_or_reordered", "slow_consumer_closes", "closed_early", "unacked_at_end"} {
		if v := get(k).(int64); v != 0 {
			t.Errorf("%s = %d, want 0", k, v)
		}
	}
	if lat := get("latency_ms").(latencySummary); int64(lat.Count) != delivered || lat.P50MS > lat.P99MS || lat.P99MS > lat.MaxMS {
		t.Errorf("latency summary %+v does not match %d deliveries", lat, delivered)
	}
	if ack := get("ack_latency_ms").(latencySummary); int64(ack.Count) != sent {
		t.Errorf("ack summary %+v does not match %d sends", ack, sent)
	}
	var buf bytes.Buffer
	if err := rep.print(&buf, true); err != nil {
		t.Fatal(err)
	}
	if err := rep.print(&buf, false); err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestFanoutBare(t *testing.T) {
	runSmall(t, "-in-process", "-bare")
}

func TestFanoutBareRate(t *testing.T) {
	rep := runSmall(t, "-in-process", "-bare", "-rate", "300", "-inflight", "2")
	if v, _ := rep.get("sends_per_s"); v.(float64) > 400 {
		t.Errorf("sends/s %v over the target rate 300", v)
	}
}

func TestFanoutChat(t *testing.T) {
	runSmall(t, "-in-process")
}

// TestFanoutBatched runs with the chatmux.batch.v1 subprotocol: arrays of
// dispatches are split and every message still counted once, in order.
func TestFanoutBatched(t *testing.T) {
	rep := runSmall(t, "-in-process", "-batch", "-inflight", "4")
	if v, _ := rep.get("batched_framing"); v != true {
		t.Errorf("batched_framing = %v", v)
	}
	runSmall(t, "-in-process", "-bare", "-batch", "-inflight", "4")
}

func TestHandleBatch(t *testing.T) {
	c := newBenchConn(nil, "t")
	c.room = 0
	var frames [][]byte
	for seq := int64(1); seq <= 3; seq++ {
		f := append([]byte(`{"eventType":"message.dispatch","data":{"content":"`), appendPayload(nil, time.Now().UnixNano(), 0, seq, 20)...)
		frames = append(frames, append(f, `"}}`...))
	}
	frames = append(frames, []byte(`{"eventType":"roomlist.dispatch","data":[]}`))
	batch := append([]byte{'['}, bytes.Join(frames, []byte{','})...)
	batch = append(batch, ']')
	c.handle(batch)
	if got := c.delivered.Load(); got != 3 || c.gaps != 0 || c.reordered != 0 {
		t.Fatalf("delivered %d, gaps %d, reordered %d", got, c.gaps, c.reordered)
	}
	if len(c.box) != 1 || c.box[0].EventType != "roomlist.dispatch" {
		t.Fatalf("control frames %+v", c.box)
	}
	if c.errs.Load() != 0 {
		t.Fatalf("errors: %v", *c.lastErr.Load())
	}
}

func TestFanoutChatChannel(t *testing.T) {
	// Rooms over -group-cap are public channels; the second sender of a
	// room is made a moderator.
	runSmall(t, "-in-process", "-group-cap", "2", "-senders", "4")
}

func TestChurnChat(t *testing.T) {
	o, err := parseOptions("churn", []string{"-in-process", "-quiet", "-duration", "1s", "-rooms", "2", "-members", "3",
		"-senders", "2", "-churners", "4", "-churn-hold", "50ms", "-rate", "200", "-drain", "30s"})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"lost", "errors", "gaps", "duplicates_or_reordered", "churn_connect_errors"} {
		if v, _ := rep.get(k); v.(int64) != 0 {
			t.Errorf("%s = %d, want 0", k, v)
		}
	}
	if v, _ := rep.get("churn_cycles"); v.(int64) == 0 {
		t.Error("no churn cycles")
	}
	if v, _ := rep.get("sent"); v.(int64) == 0 {
		t.Error("nothing sent")
	}
}

// settleHold is the -hold of the connect runs that check the server's
// count of connections. A client sees its connection open when the server
// has written the handshake answer; the server counts the connection just
// after that, in the handler's goroutine, which a busy machine may not run
// for a while. A chat server has counted a connection by the time it sends
// chat.notifications, which connect waits for; a bare server sends nothing,
// so the count is read after this pause, long enough for any machine.
const settleHold = "1s"

func TestConnectInProcess(t *testing.T) {
	for _, bare := range []bool{false, true} {
		args := []string{"-in-process", "-quiet", "-conns", "30", "-conn-rate", "0", "-hold", "10ms"}
		if bare {
			args = append(args, "-bare", "-hold", settleHold)
		}
		o, err := parseOptions("connect", args)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := run(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := rep.get("opened"); v.(int64) != 30 {
			t.Errorf("bare %v: opened %v, want 30", bare, v)
		}
		if v, _ := rep.get("server_conns"); v.(int) != 30 {
			t.Errorf("bare %v: server has %v connections, want 30", bare, v)
		}
	}
}

func TestSlowConsumerCounted(t *testing.T) {
	// A 400-byte outbound queue overflows at once under 5 senders with 16
	// messages in flight each: the server closes members with 4008.
	o, err := parseOptions("fanout", []string{"-bare", "-in-process", "-quiet", "-duration", "500ms", "-rooms", "1",
		"-members", "6", "-senders", "3", "-inflight", "16", "-max-queue-bytes", "400", "-drain", "200ms"})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	slow, _ := rep.get("slow_consumer_closes")
	closed, _ := rep.get("closed_early")
	if slow.(int64) == 0 || slow.(int64) > closed.(int64) {
		t.Errorf("slow-consumer closes %v, closed early %v: want some, all counted as closed", slow, closed)
	}
	if lost, _ := rep.get("lost"); lost.(int64) == 0 {
		t.Error("no message reported lost although members were closed")
	}
}

func TestFanoutExternalURL(t *testing.T) {
	// A server chatbench did not start: only -url (and no /proc readings).
	bs, err := startServer(context.Background(), serveConfig{Addr: "127.0.0.1:0", LogLevel: "error"})
	if err != nil {
		t.Fatal(err)
	}
	defer bs.close()
	rep := runSmall(t, "-url", bs.url)
	if v, _ := rep.get("server"); v != "external" {
		t.Errorf("server = %v, want external", v)
	}
	if _, ok := rep.get("server_cpu_per_delivery_us"); ok {
		t.Error("CPU per delivery reported for an external server without -server-pid")
	}
}

func TestPersistPostgres(t *testing.T) {
	dbURL := testenv.DatabaseURL(t)
	o, err := parseOptions("persist", []string{"-in-process", "-quiet", "-duration", "1s", "-rooms", "3", "-senders", "3",
		"-drain", "30s", "-database-url", dbURL})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	sent, _ := rep.get("sent")
	if sent.(int64) == 0 {
		t.Fatal("nothing sent")
	}
	for _, k := range []string{"lost", "errors", "gaps", "duplicates_or_reordered"} {
		if v, _ := rep.get(k); v.(int64) != 0 {
			t.Errorf("%s = %d, want 0", k, v)
		}
	}
	if ack, _ := rep.get("ack_latency_ms"); int64(ack.(latencySummary).Count) != sent.(int64) {
		t.Errorf("acks %+v for %d sends", ack, sent)
	}
}

func TestFanoutRedis(t *testing.T) {
	runSmall(t, "-in-process", "-redis-url", testenv.RedisURL(t))
}
