// Package testenv gives integration tests the addresses of the real
// PostgreSQL and Redis they run against.
//
// Tests read TEST_DATABASE_URL and TEST_REDIS_URL. When a variable is unset
// the test is skipped with a message that names it, unless
// CHATMUX_REQUIRE_SERVICES=1 is set (as .ci/run does), in which case a
// missing service fails the test instead.
package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	_ "github.com/lib/pq" // the PostgreSQL driver for DatabaseSchema
)

// Required reports whether CHATMUX_REQUIRE_SERVICES asks for every service.
func Required() bool {
	v := os.Getenv("CHATMUX_REQUIRE_SERVICES")
	return v == "1" || strings.EqualFold(v, "true")
}

// DatabaseURL returns TEST_DATABASE_URL, or skips (or fails, see Required) the test.
func DatabaseURL(tb testing.TB) string {
	tb.Helper()
	return lookup(tb, "TEST_DATABASE_URL", "PostgreSQL")
}

// RedisURL returns TEST_REDIS_URL, or skips (or fails, see Required) the test.
func RedisURL(tb testing.TB) string {
	tb.Helper()
	return lookup(tb, "TEST_REDIS_URL", "Redis")
}

func lookup(tb testing.TB, name, what string) string {
	tb.Helper()
	v := os.Getenv(name)
	if v != "" {
		return v
	}
	if Required() {
		tb.Fatalf("%s is not set but CHATMUX_REQUIRE_SERVICES=1: %s is required", name, what)
	}
	tb.Skipf("%s not set: skipping %s integration test (e.g. %s)", name, what, example(name))
	return ""
}

func example(name string) string {
	if name == "TEST_REDIS_URL" {
		return "TEST_REDIS_URL=redis://127.0.0.1:6379/0"
	}
	return "TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// UniqueName returns prefix followed by random hex: a schema name or key
// prefix of a test's own.
func UniqueName(prefix string) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return prefix + hex.EncodeToString(b[:])
}

// DatabaseSchema creates a fresh PostgreSQL schema of the test's own in
// the database of TEST_DATABASE_URL (skipping or failing as DatabaseURL
// does), drops it with everything in it when the test ends, and returns the
// URL with search_path set to it.
func DatabaseSchema(tb testing.TB, prefix string) string {
	tb.Helper()
	url := DatabaseURL(tb)
	schema := UniqueName(prefix)
	admin, err := sql.Open("postgres", url)
	if err != nil {
		tb.Fatalf("open %s: %v", url, err)
	}
	if _, err := admin.ExecContext(context.Background(), `CREATE SCHEMA `+schema); err != nil {
		admin.Close()
		tb.Fatalf("create schema %s: %v", schema, err)
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
	return url + sep + "search_path=" + schema
}
