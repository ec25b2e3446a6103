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
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
)

const usageText = `chatbench: a load generator for chatmux over real WebSockets.

Usage:
  chatbench fanout  [flags]   R rooms x M members, S senders; deliveries/s and latency
  chatbench connect [flags]   N idle connections; connect rate, server memory per connection
  chatbench persist [flags]   message.send acknowledged by its own dispatch, on PostgreSQL
  chatbench churn   [flags]   connections open and close while messages flow; nothing lost
  chatbench serve   [flags]   run the server under test (chatmux + chat, dev auth)

Run "chatbench <scenario> -h" for the flags of a scenario.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usageText)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = runServe(os.Args[2:])
	case "fanout", "connect", "persist", "churn":
		err = runScenario(os.Args[1], os.Args[2:], os.Stdout)
	case "-h", "-help", "--help", "help":
		fmt.Print(usageText)
		return
	default:
		fmt.Fprintf(os.Stderr, "chatbench: unknown scenario %q\n\n%s", os.Args[1], usageText)
		os.Exit(2)
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "chatbench:", err)
		os.Exit(1)
	}
}

// options holds every flag of the scenarios; each scenario sets its own
// defaults and reads what it needs.
type options struct {
	scenario string

	// Target.
	url         string
	allowRemote bool
	serverPID   int
	inProcess   bool
	serve       serveConfig
	sources     int

	// Bounds and output.
	duration     time.Duration
	setupTimeout time.Duration
	drain        time.Duration
	quiet        bool
	jsonOut      bool
	genProfile   string

	// Rooms and messages (fanout, persist, churn).
	rooms    int
	members  int
	senders  int
	rate     float64
	inflight int
	batch    bool
	size     int
	groupCap int

	// Churn.
	churners  int
	churnHold time.Duration

	// Connect.
	conns     int
	connRate  float64
	hold      time.Duration
	perWorker int
	worker    bool
	prefix    string
}

// internalFlags are left out of -h: connect passes them to its worker
// processes.
var internalFlags = map[string]bool{"worker": true, "prefix": true}

func parseOptions(scenario string, args []string) (*options, error) {
	o := &options{scenario: scenario}
	// Churning members would otherwise get every notification of their
	// room again on each connect.
	o.serve.NoNotifications = scenario == "churn"
	fs := flag.NewFlagSet(scenario, flag.ContinueOnError)
	fs.StringVar(&o.url, "url", "", "target an external server (ws://127.0.0.1:8080/messaging/); default: start one")
	fs.BoolVar(&o.allowRemote, "allow-remote", false, "allow a -url that is not a loopback address")
	fs.IntVar(&o.serverPID, "server-pid", 0, "with -url: the server's pid, to report its RSS and CPU time")
	fs.BoolVar(&o.inProcess, "in-process", false, "run the server in this process (default: a child process)")
	fs.StringVar(&o.serve.Addr, "server-addr", "127.0.0.1:0", "listen address of the server chatbench starts")
	fs.BoolVar(&o.serve.Bare, "bare", false, "start the bare framework server (bench.send broadcasts to a group, no store)")
	fs.StringVar(&o.serve.DatabaseURL, "database-url", "", "start the server on PostgreSQL (a fresh schema, dropped afterwards)")
	fs.StringVar(&o.serve.RedisURL, "redis-url", "", "start the server with the Redis broker at this URL (default: in-process broker)")
	fs.StringVar(&o.serve.CPUProfile, "cpuprofile", "", "write the started server's CPU profile to this file")
	fs.StringVar(&o.serve.MemProfile, "memprofile", "", "write the started server's heap profile to this file (connect: with every connection open)")
	fs.StringVar(&o.serve.LogLevel, "server-log-level", "error", "log level of the started server")
	fs.IntVar(&o.serve.MaxQueueBytes, "max-queue-bytes", 0, "per-connection outbound queue bound of the started server (0: default 1 MiB)")
	fs.BoolVar(&o.serve.UnbatchedSends, "unbatched-sends", false, "with -database-url: the server writes each send alone instead of in batches (group commit), for A/B runs")
	fs.IntVar(&o.serve.BatchWriters, "batch-writers", 0, "with -database-url: batches of sends the server writes at once (0: the store's default)")
	fs.BoolVar(&o.serve.NoNotifications, "no-notifications", o.serve.NoNotifications, "the chat server runs with notifications off (started so; with -url, do not wait for chat.notifications)")
	fs.IntVar(&o.sources, "sources", 64, "source addresses in 127.0.0.0/8 to spread connections over (0: kernel's choice)")
	fs.DurationVar(&o.setupTimeout, "setup-timeout", 2*time.Minute, "bound on connecting and creating rooms")
	fs.DurationVar(&o.drain, "drain", 5*time.Second, "how long to wait for messages in flight after sending stops")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress bar")
	fs.StringVar(&o.genProfile, "gen-cpuprofile", "", "write the load generator's own CPU profile to this file")
	fs.BoolVar(&o.jsonOut, "json", false, "print the results as JSON")
	fs.IntVar(&o.groupCap, "group-cap", 100, "rooms of more members are public channels instead of group chats")
	fs.IntVar(&o.size, "size", 64, "content size of each message in bytes (at least the timestamp marker)")
	fs.IntVar(&o.inflight, "inflight", 1, "messages in flight per sender")
	fs.BoolVar(&o.batch, "batch", false, "ask for the chatmux.batch.v1 subprotocol: several queued dispatches per WebSocket message")
	fs.BoolVar(&o.worker, "worker", false, "run as a worker process of connect (internal)")
	fs.StringVar(&o.prefix, "prefix", "", "user name prefix (internal)")

	switch scenario {
	case "fanout":
		fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long to send")
		fs.IntVar(&o.rooms, "rooms", 1, "rooms")
		fs.IntVar(&o.members, "members", 100, "members per room")
		fs.IntVar(&o.senders, "senders", 10, "senders in all (spread over the rooms)")
		fs.Float64Var(&o.rate, "rate", 0, "target sends per second over all senders (0: as fast as acknowledgements allow)")
	case "persist":
		fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long to send")
		fs.IntVar(&o.rooms, "rooms", 20, "rooms")
		fs.IntVar(&o.members, "members", 2, "members per room")
		fs.IntVar(&o.senders, "senders", 20, "senders in all (spread over the rooms)")
		fs.Float64Var(&o.rate, "rate", 0, "target sends per second over all senders (0: as fast as acknowledgements allow)")
	case "churn":
		fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long to send and churn")
		fs.IntVar(&o.rooms, "rooms", 10, "rooms")
		fs.IntVar(&o.members, "members", 20, "members per room that stay connected")
		fs.IntVar(&o.senders, "senders", 10, "senders in all (spread over the rooms)")
		fs.Float64Var(&o.rate, "rate", 2000, "target sends per second over all senders (0: max)")
		fs.IntVar(&o.churners, "churners", 50, "connections that keep opening and closing")
		fs.DurationVar(&o.churnHold, "churn-hold", 200*time.Millisecond, "mean time a churning connection stays open")
	case "connect":
		fs.DurationVar(&o.duration, "duration", 2*time.Minute, "bound on opening the connections")
		fs.IntVar(&o.conns, "conns", 1000, "idle connections to open")
		fs.Float64Var(&o.connRate, "conn-rate", 2000, "connections opened per second (0: as fast as possible)")
		fs.DurationVar(&o.hold, "hold", 3*time.Second, "how long to hold the connections open before measuring")
		fs.IntVar(&o.perWorker, "per-process", 9000, "connections per generator process; more spawn worker processes")
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: chatbench %s [flags]\n\nFlags:\n", scenario)
		fs.VisitAll(func(f *flag.Flag) {
			if internalFlags[f.Name] {
				return
			}
			fmt.Fprintf(fs.Output(), "  -%s\n    \t%s (default %q)\n", f.Name, f.Usage, f.DefValue)
		})
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if o.duration <= 0 {
		return nil, errors.New("-duration must be positive")
	}
	switch scenario {
	case "fanout", "persist", "churn":
		if o.rooms < 1 || o.members < 1 || o.senders < 1 {
			return nil, errors.New("-rooms, -members and -senders must be at least 1")
		}
		if o.senders > o.rooms*o.members {
			return nil, fmt.Errorf("-senders %d is more than the %d members", o.senders, o.rooms*o.members)
		}
		if o.inflight < 1 {
			o.inflight = 1
		}
	case "connect":
		if o.conns < 1 {
			return nil, errors.New("-conns must be at least 1")
		}
		if o.perWorker < 1 {
			o.perWorker = 9000
		}
	}
	if scenario == "persist" && o.url == "" && o.serve.DatabaseURL == "" {
		return nil, errors.New("persist needs -database-url (PostgreSQL) or -url of a server on PostgreSQL")
	}
	if o.url != "" && !o.worker && (o.serve.Bare || o.serve.DatabaseURL != "" || o.serve.UnbatchedSends || o.serve.RedisURL != "" || o.inProcess || o.serve.CPUProfile != "" || o.serve.MemProfile != "") {
		return nil, errors.New("-bare, -database-url, -unbatched-sends, -redis-url, -in-process, -cpuprofile and -memprofile configure the server chatbench starts; they do not go with -url")
	}
	return o, nil
}

// runScenario parses the flags of a scenario, runs it until its duration
// ends (or SIGINT) and prints its report to out.
func runScenario(scenario string, args []string, out io.Writer) error {
	o, err := parseOptions(scenario, args)
	if err != nil {
		return err
	}
	raiseFileLimit()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.worker {
		return runConnectWorker(ctx, o, out)
	}
	stopProfile, err := startCPUProfile(o.genProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	rep, err := run(ctx, o)
	if rep != nil {
		rep.command = "chatbench " + scenario + " " + strings.Join(args, " ")
		if perr := rep.print(out, o.jsonOut); perr != nil && err == nil {
			err = perr
		}
	}
	return err
}

// startCPUProfile writes a CPU profile of this process to path until the
// returned function is called. An empty path profiles nothing.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("failed to create profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("failed to start profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

// run runs the scenario of o.
func run(ctx context.Context, o *options) (*report, error) {
	switch o.scenario {
	case "fanout", "persist":
		return runFanout(ctx, o)
	case "churn":
		return runChurn(ctx, o)
	case "connect":
		return runConnect(ctx, o)
	}
	return nil, fmt.Errorf("unknown scenario %q", o.scenario)
}

func newRunID() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newBar returns a progress bar on stderr, invisible with -quiet.
func newBar(o *options, max int64, desc string) *progressbar.ProgressBar {
	return progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetVisibility(!o.quiet),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

// report is a scenario's result: named values in order, printed as a table
// or as one JSON object.
type report struct {
	scenario string
	command  string
	rows     []reportRow
	notes    []string
}

type reportRow struct {
	key   string
	value any
	unit  string
}

func (r *report) add(key string, value any, unit string) {
	r.rows = append(r.rows, reportRow{key, value, unit})
}

func (r *report) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// get returns a value by key (tests).
func (r *report) get(key string) (any, bool) {
	for _, row := range r.rows {
		if row.key == key {
			return row.value, true
		}
	}
	return nil, false
}

func (r *report) print(w io.Writer, asJSON bool) error {
	if asJSON {
		obj := map[string]any{"scenario": r.scenario, "command": r.command}
		for _, row := range r.rows {
			obj[row.key] = row.value
		}
		if len(r.notes) > 0 {
			obj["notes"] = r.notes
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(obj)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\t%s\n", "scenario", r.scenario)
	for _, row := range r.rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", row.key, formatValue(row.value), row.unit)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range r.notes {
		fmt.Fprintln(w, "note:", n)
	}
	return nil
}

func formatValue(v any) string {
	switch x := v.(type) {
	case float64:
		switch {
		case x >= 1000:
			return fmt.Sprintf("%.0f", x)
		case x >= 10:
			return fmt.Sprintf("%.1f", x)
		default:
			return fmt.Sprintf("%.3f", x)
		}
	case latencySummary:
		return fmt.Sprintf("p50 %.3f  p90 %.3f  p99 %.3f  max %.3f  (n=%d)", x.P50MS, x.P90MS, x.P99MS, x.MaxMS, x.Count)
	}
	return fmt.Sprint(v)
}
