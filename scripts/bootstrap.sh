#!/usr/bin/env bash
# Creates .venv (if missing) and installs exactly what requirements.lock pins.
# Re-running is cheap: the lock's hash is remembered and the sync is skipped when unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "tranche needs Python 3.11 or newer; $PY is $("$PY" --version 2>&1)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.tranche-lock-hash
want="$(sha256sum requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==0.13.8"
  .venv/bin/uv pip sync --quiet --python .venv/bin/python --require-hashes requirements.lock
  .venv/bin/uv pip install --quiet --python .venv/bin/python --no-deps -e .
  echo "$want" > "$stamp"
fi
# pdftotext (poppler-utils): the tests read the text of the generated PDF reports.
if ! command -v pdftotext >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
  $SUDO apt-get install -y --no-install-recommends poppler-utils >/dev/null 2>&1 \
    || echo "warning: could not install poppler-utils (pdftotext); PDF text tests will skip" >&2
fi
