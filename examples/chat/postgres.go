package main

import (
	"context"
	"fmt"

	"github.com/chatmux/chatmux/store"
	"github.com/chatmux/chatmux/store/postgres"
)

// openPostgres connects to PostgreSQL and applies the embedded migrations
// (safe when several nodes start at once).
func openPostgres(ctx context.Context, url string) (store.Store, error) {
	st, err := postgres.Open(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("failed to open PostgreSQL: %w", err)
	}
	if err := st.Migrate(ctx); err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("failed to migrate PostgreSQL: %w", err)
	}
	return pgStore{st}, nil
}

// pgStore adds a health check to the PostgreSQL store.
type pgStore struct{ *postgres.Store }

// Ping checks that the database answers.
func (s pgStore) Ping(ctx context.Context) error { return s.DB().PingContext(ctx) }
