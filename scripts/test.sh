#!/usr/bin/env bash
# `make test`: lint, start a throw-away PostgreSQL, make sure Chromium is there, run the whole suite
# against SQLite and PostgreSQL. Cleans up after itself whatever happens.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

echo "== lint (ruff, mypy)"
$BIN/ruff check . || exit 1
$BIN/mypy || exit 1

pgdir=$(mktemp -d "${TMPDIR:-/tmp}/craftlink-pg.XXXXXX")
cleanup() { bash scripts/pg.sh stop "$pgdir/pg" >/dev/null 2>&1; rm -rf "$pgdir"; }
trap cleanup EXIT INT TERM

echo "== PostgreSQL"
if url=$(bash scripts/pg.sh start "$pgdir/pg"); then
  export CRAFTLINK_TEST_PG_URL="$url"
  echo "throw-away PostgreSQL at ${url##*@}"
else
  rc=$?
  if [ "$rc" = 3 ]; then
    echo "NOTE: no PostgreSQL binaries (initdb/pg_ctl) on this machine: the PostgreSQL half of the suite is skipped."
  else
    echo "could not start PostgreSQL (see above)"; exit 1
  fi
fi

echo "== OS packages (Chromium for browser tests, a CJK font for charts)"
bash scripts/ensure-os-packages.sh || echo "NOTE: Chromium unavailable: browser tests will be skipped."

echo "== pytest"
$BIN/pytest -q -p no:cacheprovider "$@"
