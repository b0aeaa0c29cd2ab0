#!/usr/bin/env bash
# Shared install step of ./demo and ./test: a local .venv with the project installed from pyproject.
# Re-installs only when pyproject.toml changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv" >&2
  "$PY" -m venv .venv
fi
stamp=".venv/.usine-install-$(sha256sum pyproject.toml | cut -c1-16)${extras:+-$extras}"
if [ ! -f "$stamp" ]; then
  echo "installing usine${extras:+[$extras]} into .venv" >&2
  .venv/bin/python -m pip install --quiet --upgrade pip >/dev/null
  .venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
  touch "$stamp"
fi
# usine's own modules compiled to bytecode once, as a wheel's install does (an editable install leaves them as
# sources): where PYTHONDONTWRITEBYTECODE is set (this project's CI machines), every command, driver and test process
# compiled them again, 0.4-0.5 s of each `usine` command (benchmarks/catalog_load.py). Only changed files are
# compiled again (0.1 s when none is); Python recompiles a stale one in memory.
.venv/bin/python -m compileall -q conformity sandbox examples tests benchmarks >/dev/null
