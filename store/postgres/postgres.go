package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"math"
	"net"
	neturl "net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/chatmux/chatmux/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the embedded schema migrations (goose SQL files).
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic("chatmux: embedded migrations missing: " + err.Error())
	}
	return sub
}

// Store is the PostgreSQL store.Store.
type Store struct {
	db *sqlx.DB

	// stmts holds the prepared statements of the hot paths (send,
	// membership, message views), by SQL text, prepared on first use.
	stmtMu sync.Mutex
	stmts  sync.Map // string → *sqlx.Stmt

	// batch writes concurrent sends together; nil with
	// Options.UnbatchedSends. batchStmt caches its statement (see
	// batchQuery).
	batch     writers
	batchStmt atomic.Pointer[sqlx.Stmt]
	// batchOfflineStmt caches sendBatchOfflineSQL likewise.
	batchOfflineStmt atomic.Pointer[sqlx.Stmt]
	// acks writes concurrent acknowledgements together; nil with
	// Options.UnbatchedAcks.
	acks *ackBatcher
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at url (a lib/pq URL or DSN) with the
// default pool (see Options) and checks the connection. Call Migrate
// before first use.
//
// Unless the URL sets jit itself, Open turns PostgreSQL's JIT compilation
// off for its connections: the store's queries are short OLTP queries, and
// a cost estimate that crosses jit_above_cost (a user in many rooms with
// long histories) would otherwise add hundreds of milliseconds of
// compilation to a query that runs in a few. It also asks for generic
// plans of prepared statements (plan_cache_mode=force_generic_plan): the
// store prepares only its hot statements, whose plans do not depend on
// their values. Callers of New should set both in their DSN.
func Open(ctx context.Context, url string) (*Store, error) {
	return OpenOptions(ctx, url, Options{})
}

// OpenOptions is Open with the pool configured by opts.
func OpenOptions(ctx context.Context, url string, opts Options) (*Store, error) {
	db, err := sqlx.Open("postgres", withSessionDefaults(url))
	if err != nil {
		return nil, fmt.Errorf("failed to open database: %w", err)
	}
	opts.apply(db)
	st := &Store{db: db}
	if !opts.UnbatchedSends {
		st.batch = newWriters(st, opts)
	}
	if !opts.UnbatchedAcks {
		st.acks = newAckBatcher(st, opts)
	}
	if err := st.Ping(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("failed to connect to database: %w", err)
	}
	return st, nil
}

// Options bounds the store's connection pool. The zero value means the
// defaults.
type Options struct {
	// MaxOpenConns is the most connections the store holds to the
	// database at once, busy or idle (default 16). Calls beyond it wait
	// for a connection, within their context's deadline. Size it so that
	// every node's pool fits in the server's max_connections.
	MaxOpenConns int
	// MaxIdleConns is the most idle connections kept for reuse (default
	// MaxOpenConns; at most MaxOpenConns).
	MaxIdleConns int
	// ConnMaxIdleTime closes a connection idle for longer (default 5
	// minutes; negative: never).
	ConnMaxIdleTime time.Duration
	// ConnMaxLifetime closes a connection older than this when it is next
	// released (default 0: no limit).
	ConnMaxLifetime time.Duration

	// UnbatchedSends writes every SendMessage as a statement of its own,
	// on a connection of its own, instead of in batches with the
	// concurrent sends (group commit, the default; see SendMessage).
	UnbatchedSends bool
	// UnbatchedAcks writes every Acknowledge in a transaction of its own
	// instead of in batches with the concurrent ones (the default; see
	// Acknowledge). The batch bounds below apply to both kinds of batch.
	UnbatchedAcks bool
	// BatchWriters is the number of batches of sends written at once, each
	// for its share of the rooms (default DefaultBatchWriters).
	BatchWriters int
	// MaxBatch is the most sends written in one batch (default
	// DefaultMaxBatch).
	MaxBatch int
	// MaxBatchBytes bounds the size of a batch: content, extra fields,
	// client_msg_id and attachments, plus a fixed overhead per send and per
	// attachment (default DefaultMaxBatchBytes). A larger send goes alone.
	MaxBatchBytes int
	// BatchTimeout bounds the writing of one batch, whatever its
	// callers' contexts say (default DefaultBatchTimeout).
	BatchTimeout time.Duration
}

// Defaults of Options.
const (
	DefaultMaxOpenConns    = 16
	DefaultConnMaxIdleTime = 5 * time.Minute
)

// apply sets the pool limits of db, defaults applied.
func (o Options) apply(db *sqlx.DB) {
	if o.MaxOpenConns <= 0 {
		o.MaxOpenConns = DefaultMaxOpenConns
	}
	if o.MaxIdleConns <= 0 || o.MaxIdleConns > o.MaxOpenConns {
		o.MaxIdleConns = o.MaxOpenConns
	}
	switch {
	case o.ConnMaxIdleTime == 0:
		o.ConnMaxIdleTime = DefaultConnMaxIdleTime
	case o.ConnMaxIdleTime < 0:
		o.ConnMaxIdleTime = 0
	}
	db.SetMaxOpenConns(o.MaxOpenConns)
	db.SetMaxIdleConns(o.MaxIdleConns)
	db.SetConnMaxIdleTime(o.ConnMaxIdleTime)
	if o.ConnMaxLifetime > 0 {
		db.SetConnMaxLifetime(o.ConnMaxLifetime)
	}
}

// sessionDefaults are the run-time parameters Open adds to a URL or DSN
// that does not set them. plan_cache_mode only concerns the prepared hot
// statements (see stmt): their plans do not depend on the values, and a
// custom plan per call cost more than the query itself.
var sessionDefaults = []struct{ name, value string }{
	{"jit", "off"},
	{"plan_cache_mode", "force_generic_plan"},
}

// withSessionDefaults adds the session defaults (jit=off and a generic plan for
// prepared statements) to a lib/pq URL or key=value DSN that does not
// mention them.
func withSessionDefaults(dsn string) string {
	for _, p := range sessionDefaults {
		if strings.Contains(dsn, p.name+"=") {
			continue
		}
		if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
			u, err := neturl.Parse(dsn)
			if err != nil {
				return dsn // let lib/pq report it
			}
			q := u.Query()
			q.Set(p.name, p.value)
			u.RawQuery = q.Encode()
			dsn = u.String()
			continue
		}
		if strings.TrimSpace(dsn) == "" {
			dsn = p.name + "=" + p.value
		} else {
			dsn += " " + p.name + "=" + p.value
		}
	}
	return dsn
}

// New returns a Store over an open database handle (driver "postgres").
// The handle's pool is the caller's to configure, except that a handle
// without a limit on open connections (database/sql's default) gets the
// limits of Options{} (16 connections). Sends and acknowledgements are
// batched with the default bounds of Options.
func New(db *sqlx.DB) *Store {
	if db.Stats().MaxOpenConnections == 0 {
		Options{}.apply(db)
	}
	st := &Store{db: db}
	st.batch = newWriters(st, Options{})
	st.acks = newAckBatcher(st, Options{})
	return st
}

// Ping checks that the database answers. It returns when ctx ends even if
// a connection hangs (a frozen network path): the abandoned check ends with
// its connection. The error wraps store.ErrUnavailable or ctx's error.
func (s *Store) Ping(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- s.db.PingContext(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("failed to ping the database: %w", ctx.Err())
			}
			return fmt.Errorf("failed to ping the database: %w", unavailable(err))
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("failed to ping the database: %w", ctx.Err())
	}
}

// DB returns the underlying handle.
func (s *Store) DB() *sqlx.DB { return s.db }

// Close cancels the batches of sends and acknowledgements being written
// and fails the calls still queued (both store.ErrUnavailable), and closes the prepared
// statements and the database handle.
func (s *Store) Close() error {
	if s.batch != nil {
		s.batch.close()
	}
	if s.acks != nil {
		s.acks.close()
	}
	s.stmtMu.Lock()
	s.stmts.Range(func(k, v any) bool {
		_ = v.(*sqlx.Stmt).Close()
		s.stmts.Delete(k)
		return true
	})
	s.stmtMu.Unlock()
	return s.db.Close()
}

// stmt returns the prepared form of a hot query: prepared once (on each
// pooled connection as it is needed), it skips the parse and plan of the
// query and one network exchange per call. Planning was most of the
// database's CPU per message.send before (pg_stat_statements: 1.2 ms of
// planning for the message views, 0.4 ms for the membership check). When
// the query cannot be prepared (e.g. the schema is not migrated yet) it
// returns nil: the caller runs the plain query, and preparing is retried
// on the next call.
func (s *Store) stmt(ctx context.Context, query string) *sqlx.Stmt {
	if st, ok := s.stmts.Load(query); ok {
		return st.(*sqlx.Stmt)
	}
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if st, ok := s.stmts.Load(query); ok {
		return st.(*sqlx.Stmt)
	}
	st, err := s.db.PreparexContext(ctx, query)
	if err != nil {
		return nil
	}
	s.stmts.Store(query, st)
	return st
}

// sendQuery returns the prepared send statement, or nil (see stmt).
func (s *Store) sendQuery(ctx context.Context) *sqlx.Stmt { return s.stmt(ctx, sendSQL) }

// selectHot runs a hot query into dest: prepared when q is the store's
// database handle, plain inside a transaction.
func (s *Store) selectHot(ctx context.Context, q sqlx.ExtContext, dest any, query string, args ...any) error {
	if db, ok := q.(*sqlx.DB); ok && db == s.db {
		if st := s.stmt(ctx, query); st != nil {
			return st.SelectContext(ctx, dest, args...)
		}
	}
	return sqlx.SelectContext(ctx, q, dest, query, args...)
}

// Migrate applies the embedded migrations that are not applied yet. A
// PostgreSQL advisory lock held for the session makes concurrent starts of
// several nodes safe: one migrates, the others wait and find nothing to do.
//
// The lock id is derived from the schema the migrations go to
// (current_schema(), i.e. the first entry of search_path), so nodes sharing
// a schema serialise while independent schemas of one database (tests,
// tenants) do not wait for each other. The lock is polled every second for
// up to five minutes.
func (s *Store) Migrate(ctx context.Context) error {
	var schema string
	if err := s.db.GetContext(ctx, &schema, `SELECT coalesce(current_schema(), '')`); err != nil {
		return fmt.Errorf("failed to read the current schema: %w", err)
	}
	h := fnv.New64a()
	h.Write([]byte("chatmux goose " + schema))
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(int64(h.Sum64()&math.MaxInt64)),
		lock.WithLockTimeout(1, 300),
	)
	if err != nil {
		return fmt.Errorf("failed to create migration locker: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, s.db.DB, Migrations(), goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("failed to create migration provider: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("failed to migrate: %w", err)
	}
	return nil
}

// ---- errors ----

// mapErr turns driver errors into the store's typed errors: no rows is
// ErrNotFound; unique, check and foreign-key violations are ErrConflict (or
// the protocol's validation error where there is one); malformed input is
// a validation error; a database that cannot be reached or that gave up on
// the statement is store.ErrUnavailable (see unavailable); an ended
// context stays itself. The constraint name is kept for logs; no SQL text
// is meant for a client.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	var pe *pq.Error
	if !errors.As(err, &pe) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		if isUnavailable(err) {
			return unavailable(err)
		}
		return fmt.Errorf("store/postgres: %w", err)
	}
	switch pe.Code {
	case "23505", "23514", "23503":
		switch pe.Constraint {
		case "rooms_one_to_one_pair_key":
			return store.Invariant(store.ErrDuplicateOneToOne, "", store.MsgChatExists)
		case "messages_parent_id_fkey":
			return store.Invalid("parent_message_id", "Invalid pk - object does not exist.")
		case "messages_forwarded_from_id_fkey":
			return store.Invalid("forwarded_from_id", "Invalid pk - object does not exist.")
		}
		return fmt.Errorf("constraint %s violated: %w", pe.Constraint, store.ErrConflict)
	case "22P02", "22P05", "22021", "22023", "22001", "22003":
		return store.Invalid("", "Invalid input.")
	}
	if isUnavailable(err) {
		return unavailable(err)
	}
	return fmt.Errorf("store/postgres: database error %s: %w", pe.Code, err)
}

// unavailable wraps err with store.ErrUnavailable.
func unavailable(err error) error {
	return fmt.Errorf("store/postgres: database unavailable: %w: %w", store.ErrUnavailable, err)
}

// isUnavailable reports whether err says that the database cannot be
// reached or gave up on the statement, rather than that the statement is
// wrong: a network error (refused, reset, timed out), a connection the
// driver or database/sql found broken, or one of PostgreSQL's errors of
// class 08 (connection exception), 53 (insufficient resources, e.g. too
// many connections), 57 (operator intervention: a cancelled statement, a
// server shutting down or starting up), 55P03 (lock not available) and
// 25P03 (idle in transaction timeout).
func isUnavailable(err error) bool {
	var pe *pq.Error
	if errors.As(err, &pe) {
		code := string(pe.Code)
		switch {
		case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "53"), strings.HasPrefix(code, "57"),
			code == "55P03", code == "25P03":
			return true
		}
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

func isConstraint(err error, name string) bool {
	var pe *pq.Error
	return errors.As(err, &pe) && pe.Constraint == name
}

func retryable(err error) bool {
	var pe *pq.Error
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// ---- transactions ----

// inTx runs fn in a transaction, committing when it returns nil. A
// serialization failure or deadlock is retried a few times.
func (s *Store) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	for attempt := 0; ; attempt++ {
		err := s.tryTx(ctx, fn)
		if err == nil || attempt >= 3 || !retryable(err) {
			return err
		}
	}
}

func (s *Store) tryTx(ctx context.Context, fn func(tx *sqlx.Tx) error) (err error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("failed to begin transaction: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("failed to commit: %w", err)
	}
	return nil
}

// ---- scanning helpers ----

func utc(t time.Time) time.Time { return t.UTC() }

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func uuids(ids []uuid.UUID) pq.StringArray {
	out := make(pq.StringArray, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}
