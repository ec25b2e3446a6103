package main

import (
	"context"
	"fmt"

	"github.com/chatmux/chatmux/store/postgres"
)

// openPostgres connects to PostgreSQL with a pool of at most maxConns
// connections (0: the store's default, 16) and applies the embedded
// migrations (safe when several nodes start at once). Size maxConns so
// that every node's pool fits in the server's max_connections: calls
// beyond it wait for a connection, within their deadline (-store-timeout).
// The store's Ping is the health check of /healthz.
func openPostgres(ctx context.Context, url string, maxConns int) (*postgres.Store, error) {
	st, err := postgres.OpenOptions(ctx, url, postgres.Options{MaxOpenConns: maxConns})
	if err != nil {
		return nil, fmt.Errorf("failed to open PostgreSQL: %w", err)
	}
	if err := st.Migrate(ctx); err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("failed to migrate PostgreSQL: %w", err)
	}
	return st, nil
}
