#!/usr/bin/env bash
# The JavaScript client's tests, for CI: install the pinned devDependencies
# (package-lock.json) and run `npm test`: the TypeScript build, the unit
# tests, and the integration tests against examples/chat (built with Go
# from this repository, or CHATMUX_CHAT_BIN). The PostgreSQL test needs
# TEST_DATABASE_URL and psql; without them it is skipped, unless
# CHATMUX_REQUIRE_SERVICES=1, which makes it fail.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
npm test
