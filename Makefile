# The few commands people run. `make demo` and `make test` work on a fresh machine:
# both create .venv from requirements.lock when it is missing.
.PHONY: bootstrap demo test lint fmt bench soak lock serve-execution serve-trade serve-doctoral reliability

bootstrap:
	./scripts/bootstrap.sh

demo: bootstrap
	.venv/bin/tranche demo

test:
	./scripts/test.sh

lint: bootstrap
	.venv/bin/ruff check src tests benchmarks migrations
	.venv/bin/ruff format --check src tests benchmarks migrations
	.venv/bin/mypy --strict src
	.venv/bin/lint-imports

fmt: bootstrap
	.venv/bin/ruff format src tests benchmarks migrations
	.venv/bin/ruff check --fix src tests benchmarks migrations

bench: bootstrap
	.venv/bin/tranche bench --help

soak: bootstrap
	.venv/bin/pytest -m slow

# Re-pin after editing pyproject.toml dependencies.
lock: bootstrap
	.venv/bin/uv pip compile pyproject.toml --extra dev --extra demo --python-version 3.11 --generate-hashes -o requirements.lock

serve-execution: bootstrap
	.venv/bin/tranche serve execution

serve-trade: bootstrap
	.venv/bin/tranche serve trade

serve-doctoral: bootstrap
	.venv/bin/tranche serve doctoral

# The reliability suite (tests/reliability), long fault and load runs included (slow-marked:
# test_load.py's 60 s runs at 10 and 50 clients and 10 000 trade submissions); figures in
# docs/reliability.md.
reliability: bootstrap
	CI=true .venv/bin/pytest -s -q tests/reliability -p no:randomly
