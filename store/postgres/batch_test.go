package postgres_test

import (
	"context"
	"testing"

	"github.com/chatmux/chatmux/internal/testenv"
	"github.com/chatmux/chatmux/store"
	"github.com/chatmux/chatmux/store/postgres"
	"github.com/chatmux/chatmux/store/storetest"
)

// newUnbatchedStore is newStore with every send and every acknowledgement
// written alone (postgres.Options.UnbatchedSends, UnbatchedAcks).
func newUnbatchedStore(tb testing.TB) store.Store {
	tb.Helper()
	ctx := context.Background()
	st, err := postgres.OpenOptions(ctx, testenv.DatabaseSchema(tb, "t_"), postgres.Options{UnbatchedSends: true, UnbatchedAcks: true})
	if err != nil {
		tb.Fatalf("postgres.Open: %v", err)
	}
	tb.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		tb.Fatalf("Migrate: %v", err)
	}
	return st
}

// TestConformanceUnbatched: the unbatched paths pass the suite too.
func TestConformanceUnbatched(t *testing.T) {
	storetest.Run(t, newUnbatchedStore)
}

// BenchmarkStoreUnbatched is BenchmarkStore with unbatched sends and acknowledgements, to
// compare with.
func BenchmarkStoreUnbatched(b *testing.B) {
	storetest.Bench(b, newUnbatchedStore)
}
