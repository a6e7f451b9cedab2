#!/usr/bin/env bash
# Start or stop a throw-away PostgreSQL server for the test suite.
#   scripts/pg.sh start DIR   -> prints the asyncpg URL on stdout (exit 3 if no PostgreSQL binaries exist)
#   scripts/pg.sh stop DIR
# Runs initdb/pg_ctl as the postgres user when we are root (PostgreSQL refuses to run as root).
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?data dir}

find_bin() {
  local name=$1
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
  local c; for c in /usr/lib/postgresql/*/bin/"$name"; do [ -x "$c" ] && { echo "$c"; return 0; }; done
  return 1
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then
    # From / : the caller's directory (e.g. a mktemp -d clone) is often unreadable to postgres.
    if command -v runuser >/dev/null 2>&1; then (cd / && runuser -u postgres -- "$@"); else (cd / && su postgres -s /bin/sh -c "$(printf '%q ' "$@")"); fi
  else
    "$@"
  fi
}

case "$cmd" in
start)
  INITDB=$(find_bin initdb) || { echo "no PostgreSQL binaries (initdb) found" >&2; exit 3; }
  PG_CTL=$(find_bin pg_ctl) || { echo "no PostgreSQL binaries (pg_ctl) found" >&2; exit 3; }
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)  # absolute: postgres runs from /
  if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; chmod 700 "$dir"; chmod a+x "$(dirname "$dir")"; fi
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  as_pg "$INITDB" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || as_pg "$INITDB" -D "$dir/data" -U postgres -A trust -E UTF8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  as_pg "$PG_CTL" -D "$dir/data" -l "$dir/data/server.log" -w -t 60 \
    -o "-h 127.0.0.1 -p $port -k $dir/data -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start >/dev/null \
    || { cat "$dir/data/server.log" >&2; exit 1; }
  echo "$port" >"$dir/port"
  echo "postgresql+asyncpg://postgres@127.0.0.1:$port/postgres"
  ;;
stop)
  PG_CTL=$(find_bin pg_ctl) || exit 0
  [ -d "$dir/data" ] && as_pg "$PG_CTL" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
