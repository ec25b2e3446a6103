package postgres_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	_ "github.com/lib/pq"
	"go.uber.org/goleak"

	"github.com/chatmux/chatmux/internal/testenv"
	"github.com/chatmux/chatmux/store"
	"github.com/chatmux/chatmux/store/postgres"
	"github.com/chatmux/chatmux/store/storetest"
)

// newStore returns a migrated store in a fresh schema of its own, dropped
// when the test ends.
func newStore(tb testing.TB) store.Store {
	tb.Helper()
	return newPGStore(tb)
}

func newPGStore(tb testing.TB) *postgres.Store {
	tb.Helper()
	url := testenv.DatabaseURL(tb)
	ctx := context.Background()
	schema := testenv.UniqueName("t_")
	admin, err := sql.Open("postgres", url)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		admin.Close()
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
		admin.Close()
	})
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	st, err := postgres.Open(ctx, url+sep+"search_path="+schema)
	if err != nil {
		tb.Fatalf("postgres.Open: %v", err)
	}
	tb.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		tb.Fatalf("Migrate: %v", err)
	}
	return st
}

func TestConformance(t *testing.T) {
	storetest.Run(t, newStore)
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, newStore)
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
