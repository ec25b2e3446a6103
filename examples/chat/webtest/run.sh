#!/usr/bin/env bash
# Browser tests of the example chat page (examples/chat): builds the server,
# starts it in development mode on a free loopback port (in-memory store,
# in-process broker), runs chat.test.mjs with Node and headless Chromium,
# then the tests that start servers of their own (offline.test.mjs: on
# PostgreSQL, killed and started again; limits.test.mjs: a tight send
# limit); stops the server, and exits non-zero when anything failed.
#
#   bash examples/chat/webtest/run.sh
#
# Needs Go, Node (20+) with npm, and Debian's Chromium at /usr/bin/chromium
# (or $CHROMIUM); as root on Debian it installs Chromium when missing. The
# offline test uses TEST_DATABASE_URL (default, as in the Makefile:
# postgres://postgres@127.0.0.1:5432/test?sslmode=disable) and psql; it is
# skipped when PostgreSQL cannot be reached, unless CHATMUX_REQUIRE_SERVICES=1.
# SCREENSHOT_DIR=dir keeps PNGs of the pages.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

log() { echo "webtest: $*" >&2; }

if [ ! -x "$CHROMIUM" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing Chromium (apt-get install chromium)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
      || { log "failed to install Chromium"; exit 1; }
  else
    log "$CHROMIUM not found: install Debian's chromium package or set CHROMIUM"; exit 1
  fi
fi
for tool in go node npm; do
  command -v "$tool" >/dev/null 2>&1 || { log "$tool not found"; exit 1; }
done

if [ ! -f "$here/node_modules/playwright-core/package.json" ]; then
  log "installing playwright-core (npm ci)"
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) || { log "npm ci failed"; exit 1; }
fi

tmp="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

log "building examples/chat"
(cd "$root" && go build -o "$tmp/chat" ./examples/chat) || { log "build failed"; exit 1; }

# Port 0: the kernel picks a free port; the server logs the URL it got.
# The server API is on, with a key of this run's (chat.test.mjs uses it).
export API_KEY="webtest-$RANDOM-$RANDOM-$RANDOM"
env -u CHATMUX_JWT_SECRET -u DATABASE_URL -u REDIS_URL -u CHATMUX_ADDR CHATMUX_API_KEY="$API_KEY" \
  "$tmp/chat" -addr 127.0.0.1:0 -log-format text -log-level info >"$tmp/server.log" 2>&1 &
pid=$!
url=""
for _ in $(seq 150); do
  url="$(sed -n 's/.*msg="chat: listening" url=\(http:[^ ]*\).*/\1/p' "$tmp/server.log" | head -n1)"
  [ -n "$url" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$url" ]; then
  log "the server did not start:"; cat "$tmp/server.log" >&2; exit 1
fi
log "server at $url"

export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"
(cd "$here" && BASE_URL="$url" CHAT_BIN="$tmp/chat" node --test --test-concurrency=1 --test-reporter=spec chat.test.mjs offline.test.mjs limits.test.mjs)
status=$?

kill -TERM "$pid" 2>/dev/null
wait "$pid"
server_status=$?
pid=""
if [ "$status" -ne 0 ]; then
  log "browser test failed; server log:"; tail -n 50 "$tmp/server.log" >&2
fi
if [ "$server_status" -ne 0 ]; then
  log "the server exited with status $server_status on SIGTERM"; tail -n 20 "$tmp/server.log" >&2
  [ "$status" -eq 0 ] && status=1
fi
exit "$status"
