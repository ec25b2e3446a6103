package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	neturl "net/url"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/chatmux/chatmux/internal/testenv"
	"github.com/chatmux/chatmux/store"
	"github.com/chatmux/chatmux/store/postgres"
	"github.com/chatmux/chatmux/store/storetest"
)

// withParams returns a lib/pq URL with query parameters added.
func withParams(t *testing.T, url string, kv ...string) string {
	t.Helper()
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for i := 0; i < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// lockRoom holds the row lock of a room from a connection of its own until
// the returned function is called: every send to that room waits.
func lockRoom(t *testing.T, url string, room fmt.Stringer) func() {
	t.Helper()
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `SELECT 1 FROM rooms WHERE id = $1 FOR UPDATE`, room.String()); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			_ = tx.Rollback()
			_ = db.Close()
		})
	}
	t.Cleanup(release)
	return release
}

func fixtures(t *testing.T, st store.Store) store.Room {
	t.Helper()
	for i := int64(1); i <= 2; i++ {
		if _, err := st.UpsertUser(ctx, store.User{ID: i, Username: fmt.Sprint("u", i)}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := st.CreateRoom(ctx, store.NewRoom{Type: store.Group, CreatorID: 1, Name: "g", Members: []int64{2}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestPoolBounded: 100 concurrent callers never make the store hold more
// connections than Options.MaxOpenConns; the others wait for one.
func TestPoolBounded(t *testing.T) {
	const bound, callers = 4, 100
	app := testenv.UniqueName("pool_")
	url := withParams(t, schemaURL(t), "application_name", app)
	// Unbatched: each send then takes a connection of its own (batched,
	// the sends to one room would share their writer's one connection).
	st, err := postgres.OpenOptions(ctx, url, postgres.Options{MaxOpenConns: bound, UnbatchedSends: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	room := fixtures(t, st)
	admin, err := sqlx.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	admin.SetMaxOpenConns(1)
	backends := func() int {
		t.Helper()
		var n int
		// The admin handle shares the application name: leave it out.
		if err := admin.GetContext(ctx, &n, `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = $1 AND pid <> pg_backend_pid()`, app); err != nil {
			t.Fatal(err)
		}
		return n
	}

	release := lockRoom(t, withParams(t, url, "application_name", "locker"), room.ID)
	errs := make(chan error, callers)
	for i := range callers {
		go func() {
			_, err := st.SendMessage(ctx, store.NewMessage{RoomID: room.ID, SenderID: int64(i%2 + 1), Content: "x"})
			errs <- err
		}()
	}
	// Every caller is either holding one of the max connections (blocked
	// on the room's lock) or waiting for one.
	peak := 0
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := backends()
		peak = max(peak, n)
		stats := st.DB().Stats()
		if n > bound || stats.OpenConnections > bound {
			t.Fatalf("%d backends, %d open connections: over the bound of %d", n, stats.OpenConnections, bound)
		}
		if stats.InUse == bound && stats.WaitCount >= callers-bound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("callers not all blocked: %+v, %d backends", stats, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	release()
	for range callers {
		if err := <-errs; err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	if n := backends(); n > bound {
		t.Fatalf("%d backends after the burst, bound %d", n, bound)
	}
	r, err := st.Room(ctx, room.ID)
	if err != nil || r.LastSeq != callers {
		t.Fatalf("room after %d sends: last_seq %d (%v)", callers, r.LastSeq, err)
	}
	if got := st.DB().Stats().MaxOpenConnections; got != bound {
		t.Fatalf("MaxOpenConnections = %d, want %d", got, bound)
	}
	t.Logf("peak backends %d of bound %d; %d waits for a connection", peak, bound, st.DB().Stats().WaitCount)
}

// TestPoolDefaults: Open and New bound the pool at 16 connections.
func TestPoolDefaults(t *testing.T) {
	url := schemaURL(t)
	st, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got := st.DB().Stats().MaxOpenConnections; postgres.DefaultMaxOpenConns != 16 || got != 16 {
		t.Fatalf("Open: MaxOpenConnections = %d, want 16", got)
	}
	db, err := sqlx.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	st2 := postgres.New(db)
	defer st2.Close()
	if got := db.Stats().MaxOpenConnections; got != 16 {
		t.Fatalf("New: MaxOpenConnections = %d, want 16", got)
	}
	db3, err := sqlx.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	db3.SetMaxOpenConns(3)
	st3 := postgres.New(db3)
	defer st3.Close()
	if got := db3.Stats().MaxOpenConnections; got != 3 {
		t.Fatalf("New kept the caller's limit? MaxOpenConnections = %d, want 3", got)
	}
}

// TestDeadlineHonoured: a call that waits longer than its context allows
// (a send blocked behind a lock) returns with the context's error. Written
// alone (unbatched), its statement is cancelled: nothing is stored. Written
// in a batch, the batch is not the caller's to cancel: it goes on when the
// lock is released, and a retry with the same client_msg_id finds the
// message. Either way the message is stored once.
func TestDeadlineHonoured(t *testing.T) {
	for _, unbatched := range []bool{true, false} {
		t.Run(fmt.Sprintf("unbatched=%v", unbatched), func(t *testing.T) {
			url := schemaURL(t)
			st, err := postgres.OpenOptions(ctx, url, postgres.Options{UnbatchedSends: unbatched})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if err := st.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			room := fixtures(t, st)
			release := lockRoom(t, url, room.ID)
			cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			late := store.NewMessage{RoomID: room.ID, SenderID: 1, Content: "late", ClientMsgID: "late"}
			_, err = st.SendMessage(cctx, late)
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("send past its deadline: %v, want DeadlineExceeded or ErrUnavailable", err)
			}
			release()
			res, err := st.SendMessage(ctx, late)
			if err != nil {
				t.Fatalf("retry after the timeout: %v", err)
			}
			// Batched, the send was stored unless its deadline passed before
			// the writer took it (TestBatchEdges makes that deterministic).
			if unbatched && res.Duplicate {
				t.Fatalf("the timed-out unbatched send was stored")
			}
			if res.Message.Seq != 1 || res.Message.Content != "late" {
				t.Fatalf("retry after the timeout: %+v", res.Message)
			}
			if r, err := st.Room(ctx, room.ID); err != nil || r.LastSeq != 1 {
				t.Fatalf("after the retry: last_seq %d (%v), want 1", r.LastSeq, err)
			}
		})
	}
}

// TestUnavailable: a database that cannot be reached, or whose connections
// are cut, is store.ErrUnavailable; a frozen path makes Ping return when
// its context ends.
func TestUnavailable(t *testing.T) {
	url := schemaURL(t)
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	proxy := storetest.NewProxy(t, u.Host)
	u.Host = proxy.Addr()
	st, err := postgres.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	room := fixtures(t, st)

	// Frozen: Ping and a bounded call return when their context ends.
	proxy.Freeze()
	for _, call := range []struct {
		name string
		fn   func(context.Context) error
	}{
		{"Ping", st.Ping},
		{"Membership", func(c context.Context) error { _, err := st.Membership(c, room.ID, 1); return err }},
	} {
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		done := make(chan error, 1)
		go func() { done <- call.fn(cctx) }()
		var err error
		received := true
		if call.name == "Ping" {
			err = <-done
		} else {
			// The driver may stay blocked in a read on the frozen
			// connection: only Ping promises to return on its own.
			select {
			case err = <-done:
			case <-cctx.Done():
				err, received = cctx.Err(), false
			}
		}
		cancel()
		if !received {
			t.Cleanup(func() {
				// Whatever happened below, let the blocked call end.
				proxy.Thaw()
				proxy.Cut()
				<-done
			})
		}
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("%s on a frozen path: %v", call.name, err)
		}
	}

	// Cut: the pooled connections are gone; calls answer ErrUnavailable
	// (or succeed on a fresh connection once the proxy forwards again).
	proxy.Cut()
	proxy.Thaw()
	for i := 0; ; i++ {
		_, err := st.Membership(ctx, room.ID, 1)
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("a call on a cut connection: %v, want ErrUnavailable", err)
		}
		if i > 20 {
			t.Fatalf("no call succeeds after the cut: %v", err)
		}
	}

	// A port nobody listens on.
	dead := *u
	dead.Host = "127.0.0.1:1"
	if _, err := postgres.Open(ctx, dead.String()); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Open of a closed port: %v, want ErrUnavailable", err)
	}
	db, err := sqlx.Open("postgres", dead.String())
	if err != nil {
		t.Fatal(err)
	}
	st2 := postgres.New(db)
	defer st2.Close()
	if _, err := st2.Membership(ctx, room.ID, 1); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("a call to a closed port: %v, want ErrUnavailable", err)
	}
	if err := st.Ping(ctx); err != nil {
		t.Fatalf("Ping after the proxy thawed: %v", err)
	}
}
