#!/usr/bin/env bash
# Set up .venv with the project installed. Idempotent: a second run only checks a stamp file.
#   bash scripts/setup.sh        # runtime (the chat, the CLI)
#   bash scripts/setup.sh dev    # plus test tools and the browser for the UI tests
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python_bin="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $python_bin" >&2
  "$python_bin" -m venv .venv
fi
stamp=".venv/.installed-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)-${extras:-base}"
if [ ! -f "$stamp" ]; then
  echo "setup: installing (first run takes a few minutes)" >&2
  .venv/bin/python -m pip install -q --upgrade pip
  # The CPU build of torch lies on this machine's disk; asking for it first keeps pip from
  # pulling a multi-GB CUDA build for packages that depend on torch.
  .venv/bin/python -m pip install -q torch==2.13.0
  # The dev extra includes [milvus] (pymilvus 3.0.2, milvus-lite 2.5.1, setuptools<81) and [ray]
  # (ray[data] 2.60.0), pinned in pyproject.toml, so CI runs the Milvus and Ray tests on the real engines.
  if [ "$extras" = "dev" ]; then
    # llama-cpp-python (the LLM tests' server) compiles from source, about 7 minutes. Built for
    # AVX2 and not for the CPU at hand: a native build segfaulted on its first token on a Xeon with
    # AVX-512 and AMX (2026-12-07), and a native wheel would not move between machines either. The
    # wheel is kept in ${XDG_CACHE_HOME:-~/.cache}/newsrag/wheels under a name that holds its version
    # and flags (pip's own wheel cache would hand back a wheel built with other flags), so a later
    # setup reuses it.
    llama_req="$(grep -o 'llama-cpp-python\[server\]==[0-9.]*' pyproject.toml | sed 's/\[server\]//')"
    llama_flags="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
    wheels="${XDG_CACHE_HOME:-$HOME/.cache}/newsrag/wheels/${llama_req}-$(echo "$llama_flags" | sha256sum | cut -c1-8)"
    if ! ls "$wheels"/*.whl >/dev/null 2>&1; then
      echo "setup: compiling $llama_req for AVX2 (about 7 minutes, once per machine)" >&2
      rm -rf "$wheels.partial"
      CMAKE_ARGS="$llama_flags" .venv/bin/python -m pip wheel -q --no-cache-dir --no-deps "$llama_req" -w "$wheels.partial"
      mv "$wheels.partial" "$wheels"
    fi
    .venv/bin/python -m pip install -q --no-deps --force-reinstall "$wheels"/*.whl  # the extras below find it installed
  fi
  .venv/bin/python -m pip install -q -e ".${extras:+[$extras]}"
  touch "$stamp"
fi
# The German-English dictionary that finds an English question's words in German articles
# (rag/answering/lexicon.py) is Debian's trans-de-en. Answering works without it, English questions less well.
if [ ! -f /usr/share/trans/de-en ] && command -v apt-get >/dev/null; then
  echo "setup: installing the German-English dictionary (trans-de-en)" >&2
  sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo -n"; fi
  { $sudo_cmd apt-get update -q && $sudo_cmd apt-get install -y -q trans-de-en; } >&2 \
    || echo "setup: trans-de-en not installed; English questions are answered without a dictionary" >&2
fi
# Parsing the dictionary takes seconds: compile it once into the model cache (every start maps it).
if [ -f /usr/share/trans/de-en ]; then
  .venv/bin/python -c "from rag.answering.lexicon import main; main()" >&2 || echo "setup: the dictionary is compiled on the first English question" >&2
fi
# The browser test drives Debian's chromium (Playwright cannot download its own browser offline).
if [ "$extras" = "dev" ] && [ ! -x /usr/bin/chromium ]; then
  echo "setup: installing chromium for the browser test" >&2
  sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -q && $sudo_cmd apt-get install -y -q chromium
fi
