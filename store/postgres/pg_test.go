package postgres_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io/fs"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/pressly/goose/v3"

	"github.com/chatmux/chatmux/internal/testenv"
	"github.com/chatmux/chatmux/store"
	"github.com/chatmux/chatmux/store/postgres"
)

var ctx = context.Background()

// ---- a driver wrapper that counts statements ----

type counter struct{ n atomic.Int64 }

type countingConnector struct {
	driver.Connector
	c *counter
}

func (cc countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := cc.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &countingConn{conn.(pqConn), cc.c}, nil
}

type pqConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.QueryerContext
	driver.ExecerContext
	driver.NamedValueChecker
}

type countingConn struct {
	pqConn
	c *counter
}

func (c *countingConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	c.c.n.Add(1)
	return c.pqConn.QueryContext(ctx, q, args)
}

func (c *countingConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	c.c.n.Add(1)
	return c.pqConn.ExecContext(ctx, q, args)
}

func (c *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	c.c.n.Add(1)
	tx, err := c.pqConn.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return countingTx{tx, c.c}, nil
}

func (c *countingConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	c.c.n.Add(1)
	st, err := c.pqConn.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	return countingStmt{st.(pqStmt), c.c}, nil
}

type pqStmt interface {
	driver.Stmt
	driver.StmtQueryContext
	driver.StmtExecContext
}

// countingStmt counts executions of a prepared statement (one Bind/Execute
// exchange each).
type countingStmt struct {
	pqStmt
	c *counter
}

func (s countingStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	s.c.n.Add(1)
	return s.pqStmt.QueryContext(ctx, args)
}

func (s countingStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	s.c.n.Add(1)
	return s.pqStmt.ExecContext(ctx, args)
}

type countingTx struct {
	driver.Tx
	c *counter
}

func (t countingTx) Commit() error   { t.c.n.Add(1); return t.Tx.Commit() }
func (t countingTx) Rollback() error { t.c.n.Add(1); return t.Tx.Rollback() }

// countingStore is a migrated store in a fresh schema whose statements
// (queries, execs, begins, commits, rollbacks) are counted.
func countingStore(t *testing.T) (*postgres.Store, *counter) {
	t.Helper()
	url := schemaURL(t)
	conn, err := pq.NewConnector(url)
	if err != nil {
		t.Fatal(err)
	}
	c := &counter{}
	db := sqlx.NewDb(sql.OpenDB(countingConnector{conn, c}), "postgres")
	st := postgres.New(db)
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st, c
}

// schemaURL creates a fresh schema dropped at cleanup and returns the test
// database URL with search_path set to it.
func schemaURL(tb testing.TB) string {
	tb.Helper()
	return testenv.DatabaseSchema(tb, "t_")
}

// TestRoundTrips pins the number of statements the hot paths take (each
// parameterised statement is one Parse/Describe and one Bind/Execute
// exchange with lib/pq's default settings).
func TestRoundTrips(t *testing.T) {
	st, c := countingStore(t)
	for i := int64(1); i <= 3; i++ {
		if _, err := st.UpsertUser(ctx, store.User{ID: i, Username: "u" + string(rune('0'+i))}); err != nil {
			t.Fatal(err)
		}
	}
	g, err := st.CreateRoom(ctx, store.NewRoom{Type: store.Group, CreatorID: 1, Name: "g", Members: []int64{2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	measure := func(name string, want int64, fn func() error) {
		t.Helper()
		before := c.n.Load()
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := c.n.Load() - before; got != want {
			t.Errorf("%s took %d statements, want %d", name, got, want)
		}
	}
	var msg store.Message
	// The first send also prepares the send statement on this connection.
	if _, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: 2, Content: "warm-up"}); err != nil {
		t.Fatal(err)
	}
	measure("SendMessage with attachment and notification", 1, func() error {
		res, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: 1, Content: "x", Notify: true, ClientMsgID: "k",
			Attachments: []store.NewAttachment{{MediaURL: "u", MediaType: store.MediaImage}}})
		msg = res.Message
		if err == nil && (res.Notification == nil || len(res.Attachments) != 1) {
			err = errors.New("notification or attachment missing")
		}
		return err
	})
	measure("SendMessage retry", 3, func() error {
		res, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: 1, Content: "x", ClientMsgID: "k"})
		if err == nil && !res.Duplicate {
			err = errors.New("not a duplicate")
		}
		return err
	})
	// The hot reads are prepared on first use, an exchange of its own.
	if _, err := st.Membership(ctx, g.ID, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := st.MessageViews(ctx, []uuid.UUID{msg.ID}); err != nil {
		t.Fatal(err)
	}
	measure("Membership", 1, func() error { _, err := st.Membership(ctx, g.ID, 2); return err })
	measure("MessageViews", 1, func() error { _, err := st.MessageViews(ctx, []uuid.UUID{msg.ID}); return err })
	var reply store.Message
	measure("SendMessage reply", 1, func() error {
		res, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: 2, Content: "r", ParentID: &msg.ID})
		reply = res.Message
		return err
	})
	// Prepare the closure query on this connection first: hot queries
	// are prepared once, and the preparation is an exchange of its own.
	if _, err := st.MessageViews(ctx, []uuid.UUID{reply.ID}); err != nil {
		t.Fatal(err)
	}
	measure("MessageViews of a reply (parent outside the batch)", 3, func() error {
		vs, err := st.MessageViews(ctx, []uuid.UUID{reply.ID})
		if err == nil && (len(vs) != 1 || vs[0].Parent == nil || len(vs[0].Parent.Attachments) != 1) {
			err = errors.New("parent not loaded")
		}
		return err
	})
	measure("MessageViews of a reply and its parent", 1, func() error {
		_, err := st.MessageViews(ctx, []uuid.UUID{reply.ID, msg.ID})
		return err
	})
	// The room's last message is the reply: list, views, closure of its
	// parent, views of the parent.
	measure("ListRooms", 4, func() error { _, err := st.ListRooms(ctx, 2); return err })
	measure("MessagesPage", 3, func() error { _, err := st.MessagesPage(ctx, g.ID, 1, 50); return err })
}

// TestConstraintsInDatabase checks that the invariants hold even for
// writes that bypass the store, and that their violations map to
// ErrConflict without SQL text.
func TestConstraintsInDatabase(t *testing.T) {
	st, _ := countingStore(t)
	for i := int64(1); i <= 3; i++ {
		if _, err := st.UpsertUser(ctx, store.User{ID: i, Username: "u" + string(rune('0'+i))}); err != nil {
			t.Fatal(err)
		}
	}
	o, err := st.CreateRoom(ctx, store.NewRoom{Type: store.OneToOne, CreatorID: 1, Members: []int64{2}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.SendMessage(ctx, store.NewMessage{RoomID: o.ID, SenderID: 1, Content: "x"})
	if err != nil {
		t.Fatal(err)
	}
	db := st.DB()
	now := store.Now()
	for _, tc := range []struct {
		name, constraint, sql string
		args                  []any
	}{
		{"one-to-one pair reversed", "rooms_one_to_one_pair_key",
			`INSERT INTO rooms (id, type, pair_a, pair_b, created_at, updated_at) VALUES ($1, 'OneToOneChat', 2, 1, $2, $2)`,
			[]any{uuid.New(), now}},
		{"reply and forward", "forwarded_messages_cant_be_replies",
			`INSERT INTO messages (id, room_id, seq, sender_id, parent_id, is_forwarded, created_at, updated_at) VALUES ($1, $2, 99, 1, $3, true, $4, $4)`,
			[]any{uuid.New(), o.ID, m.Message.ID, now}},
		{"seq per room", "messages_room_seq_key",
			`INSERT INTO messages (id, room_id, seq, sender_id, created_at, updated_at) VALUES ($1, $2, 1, 2, $3, $3)`,
			[]any{uuid.New(), o.ID, now}},
		{"mime allow-list", "valid_mime_type",
			`INSERT INTO attachments (id, message_id, position, media_url, media_type, mime_type) VALUES ($1, $2, 1, 'u', 'file', 'application/x-sh')`,
			[]any{uuid.New(), m.Message.ID}},
		{"negative file size", "attachments_file_size_check",
			`INSERT INTO attachments (id, message_id, position, media_url, media_type, file_size) VALUES ($1, $2, 1, 'u', 'file', -1)`,
			[]any{uuid.New(), m.Message.ID}},
		{"reaction per user", "unique_reaction",
			`INSERT INTO reactions (id, message_id, user_id, content, created_at) VALUES ($1, $3, 2, 'a', $4), ($2, $3, 2, 'b', $4)`,
			[]any{uuid.New(), uuid.New(), m.Message.ID, now}},
		{"receipt per reader", "unique_read_receipts",
			`INSERT INTO read_receipts (id, message_id, reader_id, read_at) VALUES ($1, $3, 2, $4), ($2, $3, 2, $4)`,
			[]any{uuid.New(), uuid.New(), m.Message.ID, now}},
		{"long room name", "rooms_name_check",
			`INSERT INTO rooms (id, type, name, creator_id, created_at, updated_at) VALUES ($1, 'GroupChat', repeat('x', 65), 1, $2, $2)`,
			[]any{uuid.New(), now}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := db.ExecContext(ctx, tc.sql, tc.args...)
			var pe *pq.Error
			if !errors.As(err, &pe) || pe.Constraint != tc.constraint {
				t.Fatalf("error = %v, want a violation of %s", err, tc.constraint)
			}
		})
	}
	// The store maps such violations to typed errors.
	_, err = st.SendMessage(ctx, store.NewMessage{RoomID: o.ID, SenderID: 99, Content: "x"})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("unknown sender: %v, want ErrConflict", err)
	}
}

// TestMigrateConcurrently starts several nodes against one fresh schema at
// once: the session lock lets exactly one apply the migrations.
func TestMigrateConcurrently(t *testing.T) {
	url := schemaURL(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := postgres.Open(ctx, url)
			if err != nil {
				errs[i] = err
				return
			}
			defer st.Close()
			errs[i] = st.Migrate(ctx)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("Migrate: %v", err)
		}
	}
	st, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	files, err := fs.Glob(postgres.Migrations(), "*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("embedded migrations: %v, %v", files, err)
	}
	var n int
	if err := st.DB().GetContext(ctx, &n, `SELECT count(*) FROM goose_db_version WHERE version_id > 0`); err != nil || n != len(files) {
		t.Fatalf("%d migrations recorded (%v), want each of the %d once", n, err, len(files))
	}
}

// TestInvalidInputNoSQL checks that malformed input comes back typed.
func TestInvalidInputNoSQL(t *testing.T) {
	st, _ := countingStore(t)
	_, err := st.UpsertUser(ctx, store.User{ID: 1, Username: "a\x00b"})
	var ve *store.ValidationError
	if !errors.As(err, &ve) || strings.Contains(err.Error(), "pq:") {
		t.Fatalf("NUL in username: %v", err)
	}
	_, err = st.Room(ctx, uuid.New())
	if !errors.Is(err, store.ErrNotFound) || strings.Contains(err.Error(), "sql") {
		t.Fatalf("missing room: %v", err)
	}
}

// TestNoOrphanNotifications checks the rows behind the interface: after
// concurrent acknowledgements no notification is left without recipients.
func TestNoOrphanNotifications(t *testing.T) {
	st, _ := countingStore(t)
	var members []int64
	for i := int64(1); i <= 8; i++ {
		if _, err := st.UpsertUser(ctx, store.User{ID: i, Username: "u" + string(rune('0'+i))}); err != nil {
			t.Fatal(err)
		}
		members = append(members, i)
	}
	g, err := st.CreateRoom(ctx, store.NewRoom{Type: store.Group, CreatorID: 1, Name: "g", Members: members})
	if err != nil {
		t.Fatal(err)
	}
	var ids []uuid.UUID
	for i := range 5 {
		res, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: int64(i%2 + 1), Content: "x", Notify: true})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.Message.ID)
	}
	var wg sync.WaitGroup
	for u := int64(1); u <= 8; u++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := st.Acknowledge(ctx, u, ids); err != nil {
				t.Errorf("Acknowledge(%d): %v", u, err)
			}
		}()
	}
	wg.Wait()
	var n int
	if err := st.DB().GetContext(ctx, &n, `SELECT count(*) FROM notifications`); err != nil || n != 0 {
		t.Fatalf("%d notifications left (%v), want 0", n, err)
	}
}

// TestOpenTurnsJITOff checks that Open's connections run without JIT.
func TestOpenTurnsJITOff(t *testing.T) {
	st, err := postgres.Open(ctx, schemaURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var jit string
	if err := st.DB().GetContext(ctx, &jit, `SHOW jit`); err != nil || jit != "off" {
		t.Fatalf("jit = %q (%v), want off", jit, err)
	}
}

// TestMigrationsDownUp checks that every migration's Down undoes its Up.
func TestMigrationsDownUp(t *testing.T) {
	st, err := postgres.Open(ctx, schemaURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, st.DB().DB, postgres.Migrations())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 0); err != nil {
		t.Fatalf("down: %v", err)
	}
	var tables int
	if err := st.DB().GetContext(ctx, &tables, `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'goose_db_version'`); err != nil || tables != 0 {
		t.Fatalf("%d tables left after down (%v)", tables, err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if _, err := st.UpsertUser(ctx, store.User{ID: 1, Username: "a"}); err != nil {
		t.Fatalf("store after re-migration: %v", err)
	}
}
