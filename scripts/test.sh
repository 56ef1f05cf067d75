#!/usr/bin/env bash
# Quick start, command 2: set up everything and run the whole test suite:
# lint, types, and pytest against SQLite files, a real PostgreSQL server
# started here on loopback, real Keras training, and headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test

pgdir=$(mktemp -d /tmp/sweeps-pg.XXXXXX)
port=${SWEEPS_TEST_PG_PORT:-55439}
cleanup() { bash .ci/postgres.sh stop "$pgdir" || true; rm -rf "$pgdir"; }
trap cleanup EXIT
echo "== starting PostgreSQL on 127.0.0.1:$port"
SWEEPS_TEST_POSTGRES_URL=$(bash .ci/postgres.sh start "$pgdir" "$port")
export SWEEPS_TEST_POSTGRES_URL SWEEPS_TEST_REQUIRE_POSTGRES=1
export SWEEPS_TEST_CHROMIUM=/usr/bin/chromium TF_CPP_MIN_LOG_LEVEL=2

echo "== ruff"
.venv/bin/ruff check service workers migrations tests benchmarks stability_sweeps
echo "== mypy (strict) on service/, workers/ and stability_sweeps/"
.venv/bin/mypy service workers stability_sweeps

echo "== pytest"
set +e
.venv/bin/python -m pytest -p no:cacheprovider "$@"
status=$?
set -e
if [ $status = 5 ]; then
  echo "error: pytest collected no tests; that is a failure, not a pass" >&2
  exit 1
fi
exit $status
