#!/usr/bin/env bash
# The one command that checks everything: set up, lint, check the import layers and the types, run all tests.
# With no arguments the fast tier runs first (fake embedder, under a minute: a broken change
# shows before the model loads), then the slow tier (real model, browser, LLM server).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports
.venv/bin/mypy
if [ "$#" -gt 0 ]; then
  exec .venv/bin/python -m pytest -q "$@"
fi
.venv/bin/python -m pytest -q -m "not slow"
exec .venv/bin/python -m pytest -q -m slow
