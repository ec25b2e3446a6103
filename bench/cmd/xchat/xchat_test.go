package main

import (
	"bytes"
	"context"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatmux/chatmux/bench/peer"
)

// TestMain lets the test binary serve as the Centrifuge peer: the driver
// starts its own executable with "peer" for the Centrifuge trials.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "peer" {
		if err := peer.Main(context.Background(), os.Args[2:], log.New(os.Stderr, "", 0)); err != nil {
			log.Fatal(err)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestParseLayout(t *testing.T) {
	l, err := parseLayout("100x50x100")
	if err != nil || l != (layout{Rooms: 100, Members: 50, Senders: 100}) {
		t.Fatalf("parseLayout(100x50x100) = %+v, %v", l, err)
	}
	if l.Users() != 5000 || l.roomOf(149) != 49 {
		t.Fatalf("users %d, room of 149 = %d", l.Users(), l.roomOf(149))
	}
	for _, bad := range []string{"", "1x100", "1x100x10x1", "0x10x1", "1x1x1", "1x10x11", "ax10x1", "1x-5x1", "10x1000x1"} {
		if _, err := parseLayout(bad); err == nil {
			t.Errorf("parseLayout(%q): no error", bad)
		}
	}
	ls, err := parseLayouts("1x100x10, 1x1000x10")
	if err != nil || len(ls) != 2 || ls[1].Members != 1000 {
		t.Fatalf("parseLayouts = %+v, %v", ls, err)
	}
	if _, err := parseLayouts(" , "); err == nil {
		t.Error("parseLayouts of nothing: no error")
	}
}

func TestParseRates(t *testing.T) {
	rs, err := parseRates("max,half,250.5")
	if err != nil || len(rs) != 3 || !rs[0].Max || !rs[1].Half || rs[2].Fixed != 250.5 {
		t.Fatalf("parseRates = %+v, %v", rs, err)
	}
	if got := rs[2].String(); got != "250.5" {
		t.Errorf("String = %q", got)
	}
	for _, bad := range []string{"half,max", "0", "-3", "fast", "", "NaN"} {
		if _, err := parseRates(bad); err == nil {
			t.Errorf("parseRates(%q): no error", bad)
		}
	}
}

func TestOptions(t *testing.T) {
	var stderr bytes.Buffer
	o, err := parseOptions([]string{"-servers", "centrifuge", "-pairs", "2"}, &stderr)
	if err != nil || len(o.servers) != 1 || o.servers[0] != serverCentrifuge || o.pairs != 2 {
		t.Fatalf("parseOptions = %+v, %v", o, err)
	}
	for _, args := range [][]string{
		{"-servers", "nginx"}, {"-pairs", "0"}, {"-duration", "10ms"}, {"-inflight", "0"},
		{"-size", "8"}, {"-centrifuge-frame", "-1"}, {"extra"},
	} {
		if _, err := parseOptions(args, &stderr); err == nil {
			t.Errorf("parseOptions(%q): no error", args)
		}
	}
}

func TestHist(t *testing.T) {
	prev := -1
	for v := int64(0); v < 1<<30; v = v*9/8 + 1 {
		i := histIndex(v)
		if i < prev {
			t.Fatalf("histIndex(%d) = %d, below the index of a smaller value (%d)", v, i, prev)
		}
		prev = i
		lo := histLow(i)
		hi := histLow(i + 1)
		if v < lo || v >= hi {
			t.Fatalf("%d is in bucket %d = [%d, %d)", v, i, lo, hi)
		}
		if hi-lo > 1 && float64(hi-lo)/float64(lo) > 1.0/16 {
			t.Fatalf("bucket %d = [%d, %d) is wider than 1/16 of its values", i, lo, hi)
		}
	}
	var h hist
	if h.quantile(0.5) != 0 {
		t.Fatal("quantile of an empty histogram is not 0")
	}
	for v := 1; v <= 1000; v++ {
		h.record(time.Duration(v) * time.Millisecond)
	}
	var m hist
	m.merge(&h)
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {0, time.Millisecond}} {
		got := m.quantile(c.q)
		if d := float64(got-c.want) / float64(c.want); d < -0.04 || d > 0.04 {
			t.Errorf("quantile(%v) = %v, want %v within 4%%", c.q, got, c.want)
		}
	}
}

func TestPayload(t *testing.T) {
	p := appendPayload(nil, 1234567890123, 7, 42, 64)
	if len(p) != 64 || !bytes.HasPrefix(p, []byte(marker)) {
		t.Fatalf("payload %q: want 64 bytes starting with the marker", p)
	}
	line := []byte(`{"push":{"pub":{"data":{"content":"` + string(p) + `"}}}} XCB1.2.` + `{"x":"` + string(appendPayload(nil, 5, 0, 0, 32)) + `"}`)
	ts, sender, seq, rest, ok := nextPayload(line)
	if !ok || ts != 1234567890123 || sender != 7 || seq != 42 {
		t.Fatalf("first payload = %d %d %d %v", ts, sender, seq, ok)
	}
	// A truncated marker ("XCB1.2.") is skipped, the next one is read.
	ts, sender, seq, rest, ok = nextPayload(rest)
	if !ok || ts != 5 || sender != 0 || seq != 0 {
		t.Fatalf("second payload = %d %d %d %v", ts, sender, seq, ok)
	}
	if _, _, _, _, ok := nextPayload(rest); ok {
		t.Fatal("a third payload where there is none")
	}
	for _, bad := range []string{"", "XCB", "XCB12", "XCB1.2.3", "XCB..1.", "content XCBa.b.c."} {
		if _, _, _, _, ok := nextPayload([]byte(bad)); ok {
			t.Errorf("nextPayload(%q) found a payload", bad)
		}
	}
}

func TestStatCPU(t *testing.T) {
	stat := []byte("4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1 0 100 0 0")
	d, err := parseStatCPU(stat)
	if err != nil || d != 3250*time.Millisecond {
		t.Fatalf("parseStatCPU = %v, %v; want 3.25s", d, err)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 x 1"} {
		if _, err := parseStatCPU([]byte(bad)); err == nil {
			t.Errorf("parseStatCPU(%q): no error", bad)
		}
	}
	if _, err := procCPU(os.Getpid()); err != nil {
		t.Fatalf("procCPU(self): %v", err)
	}
}

func TestMedianAndReport(t *testing.T) {
	if median(nil) != 0 || median([]float64{3, 1, 2}) != 2 || median([]float64{4, 1, 3, 2}) != 2.5 {
		t.Fatal("median is wrong")
	}
	rows := []result{
		{Server: "chatmux", Layout: "1x100x10", Rate: "max", CPUPerDelivery: 3},
		{Server: "centrifuge", Layout: "1x100x10", Rate: "max", CPUPerDelivery: 2},
		{Server: "chatmux", Layout: "1x100x10", Rate: "max", CPUPerDelivery: 5},
		{Server: "centrifuge", Layout: "1x100x10", Rate: "max", CPUPerDelivery: 2},
	}
	out := report(options{servers: []string{"chatmux", "centrifuge"}, pairs: 2}, rows)
	for _, want := range []string{"| 1x100x10 | max | chatmux | 4.00 (3.00-5.00) |", "| 1x100x10 | max | 4.00 | 2.00 | **2.00** | 1.50, 2.50 |"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

// startPeer serves a Centrifuge peer on a loopback port for the test.
func startPeer(t *testing.T, o peer.Options) string {
	t.Helper()
	p, err := peer.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: p.Handler()}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Close(ctx)
		_ = srv.Shutdown(ctx)
	})
	return "ws://" + ln.Addr().String() + peer.Path
}

// TestTrialAgainstPeer runs trials against an in-process Centrifuge peer
// (CPU is then this process's own): every message reaches every other
// member of its room, at the maximum rate and paced, with one message per
// frame or several.
func TestTrialAgainstPeer(t *testing.T) {
	for _, c := range []struct {
		name  string
		frame int
		rate  float64
	}{{"max", 0, 0}, {"paced one per frame", 1, 300}} {
		t.Run(c.name, func(t *testing.T) {
			url := startPeer(t, peer.Options{MaxMessagesInFrame: c.frame})
			spec := trialSpec{
				layout: layout{Rooms: 3, Members: 4, Senders: 3}, rate: c.rate, inflight: 2, size: 48,
				warmup: 100 * time.Millisecond, duration: 500 * time.Millisecond, sources: 4,
			}
			res, err := runTrial(context.Background(), centrifugeProto{}, url, os.Getpid(), spec)
			if err != nil {
				t.Fatal(err)
			}
			if res.Sends == 0 || res.Deliveries == 0 || res.Lost != 0 || res.Errors != 0 || res.Dropped != 0 {
				t.Fatalf("sends %d, deliveries %d, lost %d, errors %d, dropped %d (%s)",
					res.Sends, res.Deliveries, res.Lost, res.Errors, res.Dropped, res.FirstError)
			}
			if res.P99Ms <= 0 || res.P99Ms < res.P50Ms {
				t.Fatalf("p50 %v ms, p99 %v ms", res.P50Ms, res.P99Ms)
			}
		})
	}
}

// TestPeerRefusesPublishOutsideRoom: a client that publishes into a room it
// did not subscribe to gets an error answer, which the trial counts.
func TestPeerRefusesPublishOutsideRoom(t *testing.T) {
	url := startPeer(t, peer.Options{})
	r := &run{spec: trialSpec{layout: layout{Rooms: 2, Members: 2, Senders: 1}, size: 40}, proto: centrifugeProto{}, base: url, origin: time.Now()}
	c := &client{r: r, u: 0, room: 0, sender: 0, readDone: make(chan struct{}), tokens: make(chan struct{}, 1), ack: new(hist)}
	r.clients = []*client{c}
	hc := newHTTPClient(0)
	if err := r.connect(context.Background(), hc, c); err != nil {
		t.Fatal(err)
	}
	defer r.closeAll()
	c.room = 1 // publish into room:1, not subscribed
	if _, _, err := r.send(c, 1, nil, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.tokens: // an error answer frees the sender's slot
	case <-time.After(10 * time.Second):
		t.Fatal("no answer to a publish outside the room")
	}
	if c.errs.Load() != 1 || c.lastErr.Load() == nil || !strings.Contains(*c.lastErr.Load(), "error") {
		t.Fatalf("errors %d", c.errs.Load())
	}
	if c.delivered.Load() != 0 || c.echoes.Load() != 0 {
		t.Fatal("a refused publish was delivered")
	}
}

// TestDriveBothServers runs the whole driver, as make bench-compare does,
// on a tiny layout: it builds the example server from this repository,
// alternates it with the Centrifuge peer (this test binary), and reports
// both with their ratio.
func TestDriveBothServers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the example server")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to build the example server")
	}
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := drive(context.Background(), []string{
		"-repo", filepath.Join("..", "..", ".."), "-out", out,
		"-layouts", "2x3x2", "-rates", "max,half", "-pairs", "1",
		"-duration", "1s", "-warmup", "200ms", "-sources", "2",
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("drive: %v\n%s", err, stderr.String())
	}
	rep := stdout.String()
	for _, want := range []string{"| 2x3x2 | max | chatmux |", "| 2x3x2 | max | centrifuge |", "| 2x3x2 | half: ", "ratio chatmux/centrifuge"} {
		if !strings.Contains(rep, want) {
			t.Errorf("report lacks %q:\n%s", want, rep)
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "results.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d results, want 4 (2 loads × 2 servers):\n%s", len(lines), b)
	}
	for _, l := range lines {
		if !strings.Contains(l, `"lost":0,"errors":0,"dropped_connections":0`) {
			t.Errorf("a trial lost messages or got errors: %s", l)
		}
	}
}
