#!/usr/bin/env bash
# Quick start, command 1: set up and run the service with its embedded SQLite
# database, two local workers and the demo sweep. Open http://127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p var
exec .venv/bin/sweeps serve --database-url "sqlite:///$PWD/var/sweeps.db" --workers 2 --demo "$@"
