package chat_test

import (
	"context"
	"testing"

	_ "github.com/lib/pq"

	"github.com/chatmux/chatmux/groups"
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
	ctx := context.Background()
	st, err := postgres.Open(ctx, testenv.DatabaseSchema(t, "chat_"))
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return st
}

func init() { presenceBrokers["redis"] = redisBrokers }

// redisBrokers returns two Redis brokers (one per node) under a key prefix
// of the test's own (TEST_REDIS_URL; skipped when unset).
func redisBrokers(t *testing.T) (groups.Broker, groups.Broker) {
	t.Helper()
	url, prefix := testenv.RedisURL(t), testenv.UniqueName("presence")+":"
	mk := func() groups.Broker {
		b, err := groups.NewRedisURL(url, groups.RedisOptions{Prefix: prefix})
		if err != nil {
			t.Fatalf("NewRedisURL: %v", err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return b
	}
	return mk(), mk()
}
