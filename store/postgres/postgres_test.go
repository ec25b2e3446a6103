package postgres_test

import (
	"context"
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

func newPGStore(tb testing.TB) *postgres.Store { return newPGStoreWith(tb, postgres.Options{}) }

// newPGStoreWith is a migrated store with opts in a schema of the test's.
func newPGStoreWith(tb testing.TB, opts postgres.Options) *postgres.Store {
	tb.Helper()
	ctx := context.Background()
	st, err := postgres.OpenOptions(ctx, testenv.DatabaseSchema(tb, "t_"), opts)
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
