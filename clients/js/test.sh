#!/usr/bin/env bash
# The JavaScript client's tests, for CI: install the pinned devDependencies
# (package-lock.json) and run `npm test`: the TypeScript build, the bundle
# check, the unit tests, and the integration tests against examples/chat,
# built here once with Go from this repository (or CHATMUX_CHAT_BIN). The
# PostgreSQL tests need TEST_DATABASE_URL and psql, the two-node tests
# TEST_REDIS_URL, the Redis outage test redis-server on PATH; without them
# they are skipped, unless CHATMUX_REQUIRE_SERVICES=1, which makes them fail.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
if [ -z "${CHATMUX_CHAT_BIN:-}" ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd ../.. && go build -o "$tmp/chat" ./examples/chat)
  export CHATMUX_CHAT_BIN="$tmp/chat"
fi
npm test
