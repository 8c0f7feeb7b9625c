#!/usr/bin/env bash
# Creates .venv (if missing) and installs exactly what requirements.lock pins (the
# runtime dependencies plus the `dev` and `demo` extras), then the Debian tools the
# tests need where they are missing.
# Re-running is cheap: the lock's hash is remembered and the sync is skipped when
# unchanged, and apt is asked only for a tool whose binary is absent.
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
  # --compile-bytecode: with PYTHONDONTWRITEBYTECODE set (as on the CI machines) Python
  # never caches .pyc files, and every `tranche` process would compile its imports
  # again (12.5 s instead of 5 s to start the CLI here).
  .venv/bin/uv pip sync --quiet --compile-bytecode --python .venv/bin/python --require-hashes requirements.lock
  .venv/bin/uv pip install --quiet --python .venv/bin/python --no-deps -e .
  echo "$want" > "$stamp"
fi
# Our own modules too, for the same reason; only changed files are compiled again.
.venv/bin/python -m compileall -q -j 0 src >/dev/null

# Debian tools the tests need: binary -> package. Installed only when the binary is
# absent. Without apt (or without the rights to use it) this warns and goes on: the
# tests needing a missing tool then skip, or fail under CI=true.
declare -A tools=([pdftoppm]=poppler-utils [7z]=p7zip-full [chromium]=chromium)
missing=()
for binary in "${!tools[@]}"; do
  command -v "$binary" >/dev/null 2>&1 || missing+=("${tools[$binary]}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt=()
  if [ "$(id -u)" -eq 0 ]; then
    apt=(apt-get)
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    apt=(sudo -n apt-get)
  fi
  if [ "${#apt[@]}" -eq 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "warning: cannot install ${missing[*]} (no apt-get, or not root); tests needing them skip (fail under CI=true)" >&2
  else
    # Wait for another apt run (another checkout bootstrapping) rather than fail on its lock.
    opts=(-qq -o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0)
    install() {
      DEBIAN_FRONTEND=noninteractive "${apt[@]}" "${opts[@]}" install -y --no-install-recommends \
        "${missing[@]}" >/dev/null 2>&1
    }
    # The package lists may be stale or absent: refresh them only when installing fails.
    if ! install && ! { "${apt[@]}" "${opts[@]}" update >/dev/null 2>&1 && install; }; then
      echo "warning: apt-get could not install ${missing[*]}; tests needing them skip (fail under CI=true)" >&2
    fi
  fi
fi
