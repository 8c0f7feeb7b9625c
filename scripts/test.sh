#!/usr/bin/env bash
# The whole gate: lint, format, types, layering, then every test (warnings are errors).
# Extra arguments go to pytest. Exit code is non-zero if anything fails, including
# pytest's 5 ("no tests ran").
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff check";        ruff check src tests benchmarks migrations
echo "== ruff format";       ruff format --check src tests benchmarks migrations
echo "== mypy --strict src"; mypy --strict src
echo "== lint-imports";      lint-imports
echo "== pytest"
pytest -m "not slow" "$@"
