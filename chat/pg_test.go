package chat_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	_ "github.com/lib/pq"

	"github.com/chatmux/chatmux/internal/testenv"
	"github.com/chatmux/chatmux/store"
	"github.com/chatmux/chatmux/store/postgres"
)

func init() { stores["postgres"] = postgresStore }

// postgresStore returns a migrated PostgreSQL store in a fresh schema of
// its own, dropped when the test ends (TEST_DATABASE_URL; skipped when
// unset, see internal/testenv).
func postgresStore(t *testing.T) store.Store {
	t.Helper()
	url := testenv.DatabaseURL(t)
	ctx := context.Background()
	schema := testenv.UniqueName("chat_")
	admin, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		admin.Close()
	})
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	st, err := postgres.Open(ctx, url+sep+"search_path="+schema)
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return st
}
