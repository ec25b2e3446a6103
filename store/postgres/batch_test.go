package postgres_test

import (
	"testing"

	"github.com/chatmux/chatmux/store"
	"github.com/chatmux/chatmux/store/postgres"
	"github.com/chatmux/chatmux/store/storetest"
)

// newUnbatchedStore is newStore with every send and every acknowledgement
// written alone (postgres.Options.UnbatchedSends, UnbatchedAcks).
func newUnbatchedStore(tb testing.TB) store.Store {
	return newPGStoreWith(tb, postgres.Options{UnbatchedSends: true, UnbatchedAcks: true})
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

// BenchmarkWebhooks measures the sends of offline webhooks (off, offline
// recipients, outbox row), batched and unbatched.
func BenchmarkWebhooks(b *testing.B) {
	b.Run("Batched", func(b *testing.B) { storetest.BenchWebhooks(b, newStore) })
	b.Run("Unbatched", func(b *testing.B) { storetest.BenchWebhooks(b, newUnbatchedStore) })
}
