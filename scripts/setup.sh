#!/usr/bin/env bash
# Sets up a fresh machine for Stability Sweeps: a virtual environment in .venv
# with the package installed, and (with --test) PostgreSQL, PgBouncer and Chromium from
# Debian packages for the test suite. Safe to run again: it only adds what is
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."

with_test=0
[ "${1:-}" = "--test" ] && with_test=1

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "error: Python 3.10 or newer is needed ($python is $("$python" --version 2>&1))" >&2
  exit 2
fi

if [ $with_test = 1 ]; then
  need=()
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  # tests/deploy/test_pgbouncer.py starts its own PgBouncer in front of the test PostgreSQL
  [ -x /usr/sbin/pgbouncer ] || command -v pgbouncer >/dev/null 2>&1 || need+=(pgbouncer)
  if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "error: the tests need ${need[*]}; run as root or: sudo apt-get install -y ${need[*]}" >&2
      exit 2
    fi
    echo "== installing ${need[*]} from Debian packages"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
extras="dashboard"
[ $with_test = 1 ] && extras="dashboard,test"
echo "== installing stability-sweeps[$extras] into .venv (TensorFlow's CPU build is large: a few minutes the first time)"
.venv/bin/python -m pip install -q -e ".[$extras]"
