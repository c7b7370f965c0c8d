#!/usr/bin/env bash
# Set up everything modelkit's example and tests need, idempotently:
#   system packages (cmake, g++, Go for the template tests, Docker's registry and skopeo for the
#   registry tests), a virtualenv with modelkit and the exact packages of requirements/dev.txt
#   (installed by uv, every file checked against its hash), and the managed llama.cpp toolchain
#   (built once into ~/.cache/modelkit).
#
#   VENV=DIR      the virtualenv (default .venv)
#   UNLOCKED=1    the newest releases the ranges in pyproject.toml allow, not the lock (make test-latest)
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v cmake >/dev/null || need+=(cmake)
command -v g++ >/dev/null || need+=(g++)
command -v go >/dev/null || need+=(golang-go)
command -v make >/dev/null || need+=(make)
command -v docker-registry >/dev/null || need+=(docker-registry)  # a real OCI registry for the push tests
command -v skopeo >/dev/null || need+=(skopeo)  # an independent client that pulls what modelkit pushes
if [ ${#need[@]} -gt 0 ]; then
  echo "==> apt-get install ${need[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

venv=${VENV:-.venv}
python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  echo "==> creating $venv"
  "$python" -m venv "$venv"
fi

# torch is pinned to its 2.13.0 CPU build; this machine keeps that wheel in /opt/wheels (PyPI's
# 2.13.0 for Linux is the CUDA build, gigabytes more).
links=()
[ -d /opt/wheels ] && links=(--find-links /opt/wheels)

scripts/installer.sh
uv=(.uv/bin/uv pip)
if [ "${UNLOCKED:-0}" = 1 ]; then
  stamp="$venv/.modelkit-latest"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ -n "$(find "$stamp" -mmin +720)" ]; then
    echo "==> the newest releases pyproject.toml allows for .[dev] into $venv (not the lock)"
    "${uv[@]}" install -q --python "$venv/bin/python" "${links[@]}" --upgrade -e '.[dev]'
    touch "$stamp"
  fi
else
  stamp="$venv/.modelkit-locked"
  if [ ! -f "$stamp" ] || [ requirements/dev.txt -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "==> requirements/dev.txt into $venv (exact versions, every file's hash checked)"
    "${uv[@]}" sync -q --python "$venv/bin/python" "${links[@]}" --require-hashes requirements/dev.txt
    # modelkit itself, editable, built by the locked hatchling: nothing outside the lock is installed
    "${uv[@]}" install -q --python "$venv/bin/python" --no-deps --no-build-isolation -e .
    touch "$stamp"
  fi
fi

# oras-py, the other independent client of the registry tests, in an environment of its own (its
# own requests and jsonschema pins must not meet modelkit's), from its hash-pinned lock.
if [ ! -x .venv-oras/bin/python ] || [ requirements/oras.txt -nt .venv-oras/.installed ]; then
  echo "==> oras-py from requirements/oras.txt into .venv-oras/"
  "$python" -m venv .venv-oras
  .uv/bin/uv pip sync -q --python .venv-oras/bin/python --require-hashes requirements/oras.txt
  touch .venv-oras/.installed
fi

# An editable install leaves modelkit's bytecode to be written on first import, which never
# happens where PYTHONDONTWRITEBYTECODE is set: every command would compile modelkit again
# (a fresh no-op build 0.5 s instead of 0.3 s). Compiling here is what a wheel install does.
"$venv/bin/python" -m compileall -q modelkit

echo "==> llama.cpp toolchain"
"$venv/bin/modelkit" toolchain install
