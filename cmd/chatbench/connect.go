package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// dialParallel bounds the handshakes in progress per process.
const dialParallel = 256

// openResult is what opening a batch of idle connections gave.
type openResult struct {
	conns    []*benchConn
	opened   int64
	failed   int64
	lat      hist
	firstErr string
	elapsed  time.Duration
}

// openConns opens n idle connections at rate per second (0: as fast as
// possible), each a user named prefix<i>, and calls progress as they
// open. It stops early when ctx ends.
func openConns(ctx context.Context, w *world, n int, rate float64, prefix string, progress func(opened, failed int64)) *openResult {
	res := &openResult{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var opened, failed atomic.Int64
	sem := make(chan struct{}, dialParallel)
	start := time.Now()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		if rate > 0 {
			at := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if d := time.Until(at); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
				}
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			t0 := time.Now()
			c, err := w.connect(ctx, prefix+strconv.Itoa(i))
			d := time.Since(t0)
			mu.Lock()
			if err != nil {
				if res.firstErr == "" {
					res.firstErr = err.Error()
				}
				mu.Unlock()
				failed.Add(1)
			} else {
				res.conns = append(res.conns, c)
				res.lat.record(int64(d))
				mu.Unlock()
				opened.Add(1)
			}
			if progress != nil {
				progress(opened.Load(), failed.Load())
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.opened, res.failed = opened.Load(), failed.Load()
	return res
}

// closeConns closes conns, 256 at a time, and returns when all are closed.
func closeConns(conns []*benchConn) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, c := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			c.close(false)
			<-sem
		}()
	}
	wg.Wait()
}

// workerMsg is one line a connect worker prints on stdout.
type workerMsg struct {
	Opened   int64    `json:"opened"`
	Failed   int64    `json:"failed"`
	Done     bool     `json:"done,omitempty"`
	Elapsed  int64    `json:"elapsed_ns,omitempty"`
	Counts   []uint64 `json:"counts,omitempty"`
	Max      int64    `json:"max,omitempty"`
	Sum      float64  `json:"sum,omitempty"`
	FirstErr string   `json:"first_error,omitempty"`
}

// runConnectWorker is a worker process of connect: it opens its share of
// the connections, reports on stdout, holds them until stdin closes, then
// closes them.
func runConnectWorker(ctx context.Context, o *options, out io.Writer) error {
	u, err := checkTarget(o.url, o.allowRemote)
	if err != nil {
		return err
	}
	t := &target{url: u, kind: "external", bare: o.serve.Bare}
	w := &world{o: o, t: t, d: newDialer(u, o.sources)}
	var outMu sync.Mutex
	enc := json.NewEncoder(out)
	emit := func(m workerMsg) {
		outMu.Lock()
		_ = enc.Encode(m)
		outMu.Unlock()
	}
	var last atomic.Int64
	octx, cancel := context.WithTimeout(ctx, o.duration)
	res := openConns(octx, w, o.conns, o.connRate, o.prefix, func(opened, failed int64) {
		now := time.Now().UnixNano()
		if l := last.Load(); now-l > int64(200*time.Millisecond) && last.CompareAndSwap(l, now) {
			emit(workerMsg{Opened: opened, Failed: failed})
		}
	})
	cancel()
	emit(workerMsg{Opened: res.opened, Failed: res.failed, Done: true, Elapsed: int64(res.elapsed),
		Counts: res.lat.counts[:], Max: res.lat.max, Sum: res.lat.sum, FirstErr: res.firstErr})
	// Hold until the parent closes stdin (or a signal).
	stdinDone := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(stdinDone) }()
	select {
	case <-stdinDone:
	case <-ctx.Done():
	}
	closeConns(res.conns)
	w.d.close()
	return nil
}

// worker is a connect worker process seen from the parent.
type worker struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	mu    sync.Mutex
	last  workerMsg
	done  chan struct{} // closed when its final report came
	exit  chan struct{}
}

func startWorker(o *options, t *target, n int, rate float64, prefix string) (*worker, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("failed to find own executable: %w", err)
	}
	args := []string{"connect", "-worker", "-quiet", "-url", t.url.String(), "-conns", strconv.Itoa(n),
		"-conn-rate", strconv.FormatFloat(rate, 'f', -1, 64), "-sources", strconv.Itoa(o.sources),
		"-prefix", prefix, "-duration", o.duration.String()}
	if o.allowRemote {
		args = append(args, "-allow-remote")
	}
	if t.bare {
		args = append(args, "-bare")
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start worker: %w", err)
	}
	wk := &worker{cmd: cmd, stdin: stdin, done: make(chan struct{}), exit: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		final := false
		for sc.Scan() {
			var m workerMsg
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue
			}
			wk.mu.Lock()
			wk.last = m
			wk.mu.Unlock()
			if m.Done && !final {
				final = true
				close(wk.done)
			}
		}
		if !final {
			close(wk.done)
		}
		_ = cmd.Wait()
		close(wk.exit)
	}()
	return wk, nil
}

func (wk *worker) state() workerMsg {
	wk.mu.Lock()
	defer wk.mu.Unlock()
	return wk.last
}

// runConnect opens N idle connections (over worker processes when N is
// more than one process holds) and measures the server's memory and
// goroutines per connection.
func runConnect(ctx context.Context, o *options) (*report, error) {
	t, err := startTarget(ctx, o)
	if err != nil {
		return nil, err
	}
	defer t.stop()
	rep := &report{scenario: "connect"}
	rep.add("server", serverMode(o, t), "")
	rep.add("target_conns", o.conns, "")

	before, statsOK := t.serverStats(true)
	rssBefore, rssOK := t.rss()
	cpu0, cpuOK := t.cpu()

	workers := (o.conns + o.perWorker - 1) / o.perWorker
	run := newRunID()
	var lat hist
	var opened, failed int64
	var elapsed time.Duration
	var firstErr string
	var local *openResult
	bar := newBar(o, int64(o.conns), "connecting")
	if workers <= 1 {
		w := &world{o: o, t: t, d: newDialer(t.url, o.sources)}
		octx, cancel := context.WithTimeout(ctx, o.duration)
		local = openConns(octx, w, o.conns, o.connRate, "cc"+run+"_", func(op, fl int64) { _ = bar.Set64(op + fl) })
		cancel()
		defer w.d.close()
		lat.merge(&local.lat)
		opened, failed, elapsed, firstErr = local.opened, local.failed, local.elapsed, local.firstErr
	} else {
		var wks []*worker
		defer func() {
			for _, wk := range wks {
				_ = wk.stdin.Close()
			}
			for _, wk := range wks {
				select {
				case <-wk.exit:
				case <-time.After(time.Minute):
					_ = wk.cmd.Process.Kill()
					<-wk.exit
				}
			}
		}()
		left := o.conns
		for i := 0; i < workers; i++ {
			n := left / (workers - i)
			left -= n
			wk, err := startWorker(o, t, n, o.connRate/float64(workers), fmt.Sprintf("cc%s_%d_", run, i))
			if err != nil {
				return nil, err
			}
			wks = append(wks, wk)
		}
		tick := time.NewTicker(250 * time.Millisecond)
		for _, wk := range wks {
		wait:
			for {
				select {
				case <-wk.done:
					break wait
				case <-tick.C:
					var sum int64
					for _, x := range wks {
						st := x.state()
						sum += st.Opened + st.Failed
					}
					_ = bar.Set64(sum)
				}
			}
		}
		tick.Stop()
		for _, wk := range wks {
			st := wk.state()
			opened += st.Opened
			failed += st.Failed
			elapsed = max(elapsed, time.Duration(st.Elapsed))
			if firstErr == "" {
				firstErr = st.FirstErr
			}
			var h hist
			copy(h.counts[:], st.Counts)
			for _, c := range st.Counts {
				h.n += c
			}
			h.max, h.sum = st.Max, st.Sum
			lat.merge(&h)
		}
		rep.add("worker_processes", workers, "")
	}
	_ = bar.Finish()
	rep.add("opened", opened, "")
	rep.add("failed", failed, "")
	if firstErr != "" {
		rep.note("first connect error: %s", firstErr)
	}
	rep.add("open_time_s", round(elapsed.Seconds(), 2), "s")
	if elapsed > 0 {
		rep.add("connects_per_s", round(float64(opened)/elapsed.Seconds(), 0), "/s")
	}
	rep.add("connect_latency_ms", lat.summary(), "ms")

	// Let the server settle, then measure it with every connection open.
	select {
	case <-time.After(o.hold):
	case <-ctx.Done():
	}
	if cpu1, ok := t.cpu(); ok && cpuOK && opened > 0 {
		rep.add("server_cpu_per_connect_us", round(float64((cpu1-cpu0).Microseconds())/float64(opened), 1), "µs")
	}
	after, ok := t.serverStats(true)
	if ok && statsOK {
		rep.add("server_conns", after.Conns, "")
		rep.add("server_goroutines_before", before.Goroutines, "")
		rep.add("server_goroutines_after", after.Goroutines, "")
		if opened > 0 {
			rep.add("server_goroutines_per_conn", round(float64(after.Goroutines-before.Goroutines)/float64(opened), 2), "")
			rep.add("server_heap_per_conn_kib", round(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/float64(opened)/1024, 2), "KiB")
			rep.add("server_stack_per_conn_kib", round(float64(int64(after.StackInuse)-int64(before.StackInuse))/float64(opened)/1024, 2), "KiB")
		}
	}
	if rssAfter, ok := t.rss(); ok && rssOK {
		rep.add("server_rss_before_mib", round(mib(rssBefore), 1), "MiB")
		rep.add("server_rss_after_mib", round(mib(rssAfter), 1), "MiB")
		if opened > 0 {
			rep.add("server_rss_per_conn_kib", round(float64(rssAfter-rssBefore)/float64(opened)/1024, 2), "KiB")
		}
	} else if t.kind == "in-process" {
		rep.note("in-process: the RSS would include the generator; run without -in-process for the server's memory")
	}
	if local != nil {
		closeConns(local.conns)
	}
	return rep, ctx.Err()
}
