package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"time"
)

// target is the server under load: started by chatbench (a child process
// or in this process) or external (-url).
type target struct {
	url    *url.URL
	kind   string // "child", "in-process" or "external"
	pid    int    // for /proc readings; 0 when unknown or this process
	stats  bool   // the server answers /chatbench/stats
	bare   bool
	child  *childServer
	inproc *benchServer

	// db finds the PostgreSQL backends of a server chatbench started
	// (application_name = schema) to read their CPU time.
	db     *sql.DB
	dbName string
}

// startTarget starts the server of o, or checks o.url.
func startTarget(ctx context.Context, o *options) (*target, error) {
	if o.url != "" {
		u, err := checkTarget(o.url, o.allowRemote)
		if err != nil {
			return nil, err
		}
		return &target{url: u, kind: "external", pid: o.serverPID}, nil
	}
	cfg := o.serve
	var db *sql.DB
	if cfg.DatabaseURL != "" {
		cfg.Schema = "chatbench_" + newRunID()
		cfg.DropSchema = true
		if d, err := sql.Open("postgres", cfg.DatabaseURL); err == nil {
			d.SetMaxOpenConns(1)
			db = d
		}
	}
	t, err := startLocal(ctx, o, cfg)
	if err != nil {
		if db != nil {
			_ = db.Close()
		}
		return nil, err
	}
	t.db, t.dbName = db, cfg.Schema
	return t, nil
}

// serverMode describes the server under load for the report: where it runs
// and what it serves ("child, chat (PostgreSQL), Redis broker").
func serverMode(o *options, t *target) string {
	if t.kind == "external" {
		return "external"
	}
	mode := "chat (memory store)"
	switch {
	case o.serve.Bare:
		mode = "bare framework"
	case o.serve.DatabaseURL != "" && o.serve.UnbatchedSends:
		mode = "chat (PostgreSQL, unbatched sends)"
	case o.serve.DatabaseURL != "":
		mode = "chat (PostgreSQL, batched sends)"
	}
	if o.serve.RedisURL != "" {
		mode += ", Redis broker"
	}
	return t.kind + ", " + mode
}

// startLocal starts the server chatbench runs itself.
func startLocal(ctx context.Context, o *options, cfg serveConfig) (*target, error) {
	if o.inProcess {
		bs, err := startServer(ctx, cfg)
		if err != nil {
			return nil, err
		}
		u, _ := url.Parse(bs.url)
		return &target{url: u, kind: "in-process", stats: true, bare: cfg.Bare, inproc: bs}, nil
	}
	cs, err := startChild(cfg)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(cs.url)
	if err != nil {
		_ = cs.stop()
		return nil, fmt.Errorf("server gave a bad url: %w", err)
	}
	return &target{url: u, kind: "child", pid: cs.pid(), stats: true, bare: cfg.Bare, child: cs}, nil
}

func (t *target) stop() {
	if t.db != nil {
		_ = t.db.Close()
	}
	switch {
	case t.child != nil:
		if err := t.child.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "chatbench: server exited:", err)
		}
	case t.inproc != nil:
		t.inproc.close()
	}
}

// cpu returns the server's CPU time so far, when it runs in a process of
// its own whose pid is known.
func (t *target) cpu() (time.Duration, bool) {
	if t.pid == 0 {
		return 0, false
	}
	d, err := procCPU(t.pid)
	return d, err == nil
}

// rss returns the server's resident set size.
func (t *target) rss() (int64, bool) {
	if t.pid == 0 {
		return 0, false
	}
	n, err := procRSS(t.pid)
	return n, err == nil
}

// serverStats returns the runtime statistics of a server chatbench started;
// gc forces a collection first and returns freed memory to the OS.
func (t *target) serverStats(gc bool) (statsReply, bool) {
	if !t.stats {
		return statsReply{}, false
	}
	if t.inproc != nil {
		if gc {
			freeMemory()
		}
		return t.inproc.readStats(), true
	}
	st, err := fetchStats(t.url.String(), gc)
	return st, err == nil
}

// dbCPU returns the CPU time used so far by the PostgreSQL backends of the
// server chatbench started, when PostgreSQL runs on this machine (its
// processes are visible in /proc). Backends that have exited are not
// counted.
func (t *target) dbCPU(ctx context.Context) (time.Duration, int, bool) {
	if t.db == nil {
		return 0, 0, false
	}
	rows, err := t.db.QueryContext(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = $1`, t.dbName)
	if err != nil {
		return 0, 0, false
	}
	defer rows.Close()
	var total time.Duration
	n := 0
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) != nil {
			return 0, 0, false
		}
		d, err := procCPU(pid)
		if err != nil {
			continue
		}
		total += d
		n++
	}
	return total, n, rows.Err() == nil && n > 0
}

// selfCPU returns this process's CPU time.
func selfCPU() time.Duration {
	d, _ := procCPU(os.Getpid())
	return d
}
