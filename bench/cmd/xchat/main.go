// Command xchat runs the same broadcast scenario against chatmux's example
// server (examples/chat, on the memory store) and against a server built on
// the Centrifuge library (package github.com/chatmux/chatmux/bench/peer),
// alternating the two in one run, and reports server CPU per delivery,
// deliveries per second and delivery latency for both, with their ratio.
//
// Usage (from the bench directory of the repository):
//
//	go run ./cmd/xchat [flags]
//	go run ./cmd/xchat peer [-addr 127.0.0.1:8001] [-max-messages-in-frame N]
//
// The second form only serves the Centrifuge peer (the driver starts itself
// that way for every Centrifuge trial).
//
// A layout "RxMxS" is R rooms of M members each and S senders: user u is
// in room u%R and users 0..S-1 send. Each trial starts the server afresh
// as a child process, opens R×M WebSocket connections over loopback, puts
// every member in its room (chatmux: room.create of a group; Centrifuge: a
// subscription to room:<r>), then the senders publish messages whose
// content carries the send time, every member other than the sender
// counts a delivery and records its latency. Load "max": each sender
// keeps -inflight messages in flight (its own echo frees a slot); "half":
// half of the lower of the two servers' median maximum sends/s measured
// earlier in the same run, spread evenly over the senders; a number:
// that many sends per second. After -warmup, the measured window of
// -duration reads the server's CPU time (utime+stime in /proc/<pid>/stat)
// and the deliveries at its start and end; after it, the run waits for
// every message to reach every member (a shortfall is reported as lost).
//
// For each layout and load the trials alternate chatmux, Centrifuge,
// chatmux, Centrifuge... (-pairs pairs); the report gives the medians per
// server and the ratio chatmux/Centrifuge of the median CPU per delivery.
// Every trial is also written as a JSON line to results.jsonl in -out.
//
// Only loopback addresses are used. Connections are spread over -sources
// source addresses in 127.0.0.0/8. One server runs at a time, so the open
// files needed are about R×M for the driver and as many for the server.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/chatmux/chatmux/bench/peer"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	args := os.Args[1:]
	var err error
	if len(args) > 0 && args[0] == "peer" {
		err = peer.Main(ctx, args[1:], log.New(os.Stderr, "", log.LstdFlags))
	} else {
		err = drive(ctx, args, os.Stdout, os.Stderr)
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "xchat:", err)
		os.Exit(1)
	}
}

// options are the driver's flags.
type options struct {
	repo     string
	chatBin  string
	servers  []string
	layouts  []layout
	rates    []rateSpec
	pairs    int
	warmup   time.Duration
	duration time.Duration
	inflight int
	size     int
	sources  int
	frame    int
	peerLog  string

	peerWriteTimeout time.Duration
	out              string
	maxTime          time.Duration
}

// Server names, as -servers takes them.
const (
	serverChatmux    = "chatmux"
	serverCentrifuge = "centrifuge"
)

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("xchat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.repo, "repo", "..", "the chatmux repository to build examples/chat from")
	fs.StringVar(&o.chatBin, "chat-bin", "", "a built example server to run instead of building one from -repo")
	servers := fs.String("servers", "chatmux,centrifuge", "servers to run, in this order within each pair: chatmux, centrifuge or both")
	layouts := fs.String("layouts", "100x50x100,1x100x10,1x1000x10", "comma-separated layouts ROOMSxMEMBERSxSENDERS")
	rates := fs.String("rates", "max,half", "comma-separated loads: max, half (of the maximum measured before in the run) or sends per second")
	fs.IntVar(&o.pairs, "pairs", 3, "trials per server for each layout and load, alternating (1-20)")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "sending before the measured window")
	fs.DurationVar(&o.duration, "duration", 8*time.Second, "length of the measured window")
	fs.IntVar(&o.inflight, "inflight", 1, "messages in flight per sender at the maximum rate (1-64)")
	fs.IntVar(&o.size, "size", 64, "message content bytes (32-4000)")
	fs.IntVar(&o.sources, "sources", 16, "source addresses in 127.0.0.0/8 to spread connections over (0: the kernel's choice)")
	fs.IntVar(&o.frame, "centrifuge-frame", 0, "the peer's messages per WebSocket frame at most (0: the library's default, 16; 1: one JSON object per frame like chatmux)")
	fs.DurationVar(&o.peerWriteTimeout, "centrifuge-write-timeout", 10*time.Second,
		"the peer's bound on one write to a socket (chatmux's default is 10s; 0: the library's default, 1s, which cuts connections when the machine starves the server)")
	fs.StringVar(&o.peerLog, "centrifuge-log", "", "the peer's log level in its log file: error, warn, info or debug (default: none)")
	fs.StringVar(&o.out, "out", "", "directory for results.jsonl and the servers' logs (default: a new temporary directory)")
	fs.DurationVar(&o.maxTime, "max-time", 60*time.Minute, "bound on the whole run")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	var err error
	if o.layouts, err = parseLayouts(*layouts); err != nil {
		return o, err
	}
	if o.rates, err = parseRates(*rates); err != nil {
		return o, err
	}
	for _, s := range strings.Split(*servers, ",") {
		switch s = strings.TrimSpace(s); s {
		case serverChatmux, serverCentrifuge:
			o.servers = append(o.servers, s)
		case "":
		default:
			return o, fmt.Errorf("unknown server %q in -servers: want chatmux and/or centrifuge", s)
		}
	}
	switch {
	case len(o.servers) == 0:
		return o, errors.New("-servers names no server")
	case o.pairs < 1 || o.pairs > 20:
		return o, fmt.Errorf("-pairs must be between 1 and 20, not %d", o.pairs)
	case o.duration < time.Second || o.duration > 10*time.Minute:
		return o, fmt.Errorf("-duration must be between 1s and 10m, not %v", o.duration)
	case o.warmup < 0 || o.warmup > time.Minute:
		return o, fmt.Errorf("-warmup must be between 0 and 1m, not %v", o.warmup)
	case o.inflight < 1 || o.inflight > 64:
		return o, fmt.Errorf("-inflight must be between 1 and 64, not %d", o.inflight)
	case o.size < 32 || o.size > 4000:
		return o, fmt.Errorf("-size must be between 32 and 4000, not %d", o.size)
	case o.sources < 0 || o.sources > 1000:
		return o, fmt.Errorf("-sources must be between 0 and 1000, not %d", o.sources)
	case o.peerWriteTimeout < 0:
		return o, fmt.Errorf("-centrifuge-write-timeout must not be negative, not %v", o.peerWriteTimeout)
	case o.frame < 0:
		return o, fmt.Errorf("-centrifuge-frame must not be negative, not %d", o.frame)
	case o.maxTime <= 0:
		return o, fmt.Errorf("-max-time must be positive, not %v", o.maxTime)
	}
	return o, nil
}

func drive(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.maxTime)
	defer cancel()
	logf := func(format string, a ...any) {
		fmt.Fprintf(stderr, "[xchat %s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
	}
	if o.out == "" {
		if o.out, err = os.MkdirTemp("", "xchat-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	nofile := raiseFileLimit()
	for _, l := range o.layouts {
		if need := uint64(l.Users()) + 256; nofile > 0 && need > nofile {
			return fmt.Errorf("layout %s needs about %d open files, the limit is %d", l, need, nofile)
		}
	}
	sides := map[string]*side{}
	for _, name := range o.servers {
		s, err := newSide(ctx, name, o, logf)
		if err != nil {
			return err
		}
		sides[name] = s
	}
	jf, err := os.Create(filepath.Join(o.out, "results.jsonl"))
	if err != nil {
		return err
	}
	defer jf.Close()
	logf("results and server logs in %s", o.out)

	var all []result
	trial := 0
	for _, l := range o.layouts {
		maxRate := map[string]float64{}
		for _, rs := range o.rates {
			offered := rs.Fixed
			if rs.Half {
				lowest := 0.0
				for _, name := range o.servers {
					if v, ok := maxRate[name]; ok && (lowest == 0 || v < lowest) {
						lowest = v
					}
				}
				if lowest <= 0 {
					return fmt.Errorf("layout %s: no maximum rate measured before half", l)
				}
				offered = lowest / 2
			}
			var rows []result
			for pair := 1; pair <= o.pairs; pair++ {
				for _, name := range o.servers {
					trial++
					spec := trialSpec{
						layout: l, rate: offered, inflight: o.inflight, size: o.size,
						warmup: o.warmup, duration: o.duration, sources: o.sources,
					}
					res, err := sides[name].trial(ctx, spec, trial)
					if err != nil {
						return fmt.Errorf("%s, %s, load %s, pair %d: %w", name, l, rs, pair, err)
					}
					res.Server, res.Rate, res.Pair = name, rs.String(), pair
					logf("%-10s %-11s %-5s pair %d: %8.0f deliveries/s, %6.2f µs CPU/delivery, p50 %.2f ms, p99 %.2f ms, %.0f sends/s, server %.2f + generator %.2f cores, lost %d, errors %d, dropped %d, stalls %d, load %.1f",
						name, l, rs, pair, res.DeliveriesPerS, res.CPUPerDelivery, res.P50Ms, res.P99Ms, res.SendsPerS, res.ServerCores, res.GenCores, res.Lost, res.Errors, res.Dropped, res.Stalls, res.LoadAvg)
					if e := res.FirstError; e != "" {
						logf("  first error: %s", e)
					}
					b, _ := json.Marshal(res)
					fmt.Fprintf(jf, "%s\n", b)
					rows = append(rows, res)
				}
			}
			if rs.Max {
				for _, name := range o.servers {
					maxRate[name] = median(pick(rows, name, func(r result) float64 { return r.SendsPerS }))
				}
			}
			all = append(all, rows...)
		}
	}
	fmt.Fprint(stdout, report(o, all))
	return nil
}

// side is one server under test: how to start it and how to talk to it.
type side struct {
	name  string
	argv  []string
	env   []string
	proto func() proto
	path  string
	out   string
	logf  func(string, ...any)
}

func newSide(ctx context.Context, name string, o options, logf func(string, ...any)) (*side, error) {
	s := &side{name: name, out: o.out, logf: logf}
	switch name {
	case serverChatmux:
		bin := o.chatBin
		if bin == "" {
			bin = filepath.Join(o.out, "chat")
			repo, err := filepath.Abs(o.repo)
			if err != nil {
				return nil, err
			}
			if _, err := os.Stat(filepath.Join(repo, "examples", "chat", "main.go")); err != nil {
				return nil, fmt.Errorf("-repo %s is not the chatmux repository (no examples/chat): %w", o.repo, err)
			}
			logf("building the example server from %s", repo)
			cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./examples/chat")
			cmd.Dir = repo
			cmd.Env = append(os.Environ(), "GOWORK=off")
			if b, err := cmd.CombinedOutput(); err != nil {
				return nil, fmt.Errorf("failed to build examples/chat: %v\n%s", err, b)
			}
		}
		var key [16]byte
		_, _ = rand.Read(key[:])
		secret := hex.EncodeToString(key[:])
		s.argv = []string{bin, "-log-level", "warn", "-send-limit", "off", "-shutdown-timeout", "2s", "-max-conns-per-user", "0"}
		s.env = []string{"CHATMUX_JWT_SECRET=" + secret}
		s.path = "/messaging/"
		s.proto = func() proto { return &chatmuxProto{secret: []byte(secret)} }
	case serverCentrifuge:
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		s.argv = []string{self, "peer", "-max-messages-in-frame", strconv.Itoa(o.frame), "-write-timeout", o.peerWriteTimeout.String()}
		if o.peerLog != "" {
			s.argv = append(s.argv, "-log", o.peerLog)
		}
		s.path = peer.Path
		s.proto = func() proto { return centrifugeProto{} }
	}
	return s, nil
}

// trial starts the server, runs one trial against it and stops it.
func (s *side) trial(ctx context.Context, spec trialSpec, n int) (result, error) {
	addr, err := freeAddr()
	if err != nil {
		return result{}, err
	}
	argv := append(append([]string(nil), s.argv...), "-addr", addr)
	logPath := filepath.Join(s.out, fmt.Sprintf("t%02d-%s.log", n, s.name))
	srv, err := startServer(ctx, s.name, argv, s.env, addr, logPath)
	if err != nil {
		return result{}, err
	}
	defer srv.stop()
	res, err := runTrial(ctx, s.proto(), "ws://"+addr+s.path, srv.pid(), spec)
	if err == nil && !srv.alive() {
		err = fmt.Errorf("%s exited during the trial (%v); see %s", s.name, srv.err, logPath)
	}
	return res, err
}
