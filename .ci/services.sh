#!/usr/bin/env bash
# Start PostgreSQL and Redis on 127.0.0.1 when they are not running;
# install them first (as root, with apt-get) when they are missing.
set -euo pipefail
TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"

apt_updated=0
apt_install() {
	if [ "$(id -u)" != 0 ]; then
		echo "services: $* missing and not root: cannot install" >&2
		return 1
	fi
	if [ "$apt_updated" = 0 ]; then
		apt-get update -qq
		apt_updated=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

pg_ready() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }

if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
	echo "services: installing PostgreSQL"
	apt_install postgresql postgresql-client
fi
if ! pg_ready; then
	echo "services: starting PostgreSQL"
	pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
for _ in $(seq 1 60); do pg_ready && break; sleep 0.5; done
pg_ready || { echo "services: PostgreSQL did not start" >&2; exit 1; }
# Trust auth on loopback and the test database, as the tests expect.
if ! psql "$TEST_DATABASE_URL" -c 'select 1' >/dev/null 2>&1; then
	hba="$(su postgres -c "psql -tAc 'show hba_file'" 2>/dev/null || true)"
	if [ -n "$hba" ] && ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
		sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
		su postgres -c "psql -c 'select pg_reload_conf()'" >/dev/null
	fi
	su postgres -c "psql -tAc \"select 1 from pg_database where datname='test'\"" | grep -q 1 ||
		su postgres -c "createdb test"
fi
psql "$TEST_DATABASE_URL" -c 'select 1' >/dev/null

if ! command -v redis-server >/dev/null 2>&1; then
	echo "services: installing Redis"
	apt_install redis-server
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
	echo "services: starting Redis"
	mkdir -p /var/lib/redis
	redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no --dir /var/lib/redis
fi
for _ in $(seq 1 40); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.25; done
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null
echo "services: PostgreSQL and Redis are up"
