#!/usr/bin/env bash
# The whole gate: lint, format, types, layering, then every test (warnings are errors).
# Extra arguments go to pytest. Exit code is non-zero if anything fails, including
# pytest's 5 ("no tests ran").
# The tests spend most of their time waiting on the real servers (commits, brokers,
# subprocesses), so they run in TRANCHE_TEST_WORKERS processes (pytest-xdist, default 3
# on this 2-core machine), a test file per worker so module fixtures start once.
# TRANCHE_TEST_WORKERS=0 runs them in this process.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff check";        ruff check src tests benchmarks migrations
echo "== ruff format";       ruff format --check src tests benchmarks migrations
echo "== mypy --strict src"; mypy --strict src
echo "== lint-imports";      lint-imports
echo "== pytest"
pytest -m "not slow" -n "${TRANCHE_TEST_WORKERS:-3}" --dist loadfile "$@"
