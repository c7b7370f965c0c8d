#!/usr/bin/env bash
# Set up everything modelkit's example and tests need, idempotently:
#   system packages (cmake, g++, Go for the template tests, Docker's registry for the push tests),
#   a virtualenv in .venv with modelkit
#   and its extras, and the managed llama.cpp toolchain (built once into ~/.cache/modelkit).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v cmake >/dev/null || need+=(cmake)
command -v g++ >/dev/null || need+=(g++)
command -v go >/dev/null || need+=(golang-go)
command -v make >/dev/null || need+=(make)
command -v docker-registry >/dev/null || need+=(docker-registry)  # a real OCI registry for the push tests
if [ ${#need[@]} -gt 0 ]; then
  echo "==> apt-get install ${need[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$python" -m venv .venv
fi
stamp=.venv/.modelkit-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "==> pip install -e '.[dev]' (torch is pinned to the 2.13.0 CPU wheel)"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  touch "$stamp"
fi

# An editable install leaves modelkit's bytecode to be written on first import, which never
# happens where PYTHONDONTWRITEBYTECODE is set: every command would compile modelkit again
# (a fresh no-op build 0.5 s instead of 0.3 s). Compiling here is what a wheel install does.
.venv/bin/python -m compileall -q modelkit

echo "==> llama.cpp toolchain"
.venv/bin/modelkit toolchain install
