#!/usr/bin/env bash
# `make lock`: resolve the development environment afresh and write it to requirements/ with
# exact versions and every file's hash. Review the diff and commit it on its own; `make setup`
# installs exactly what these files say.
#
#   requirements/dev.txt        pyproject.toml's [dev] extra (everything the example, the tests and CI use)
#   requirements/installer.txt  uv itself, which installs dev.txt
#   requirements/oras.txt       oras-py, an independent registry client the tests pull with (.venv-oras)
#
# The lock is for the machines the project is built and tested on: CPython 3.11 on x86-64 Linux,
# with torch's 2.13.0 CPU build from /opt/wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/installer.sh
links=()
[ -d /opt/wheels ] && links=(--find-links /opt/wheels)
upgrade=(--upgrade)
[ "${KEEP:-0}" = 1 ] && upgrade=()  # KEEP=1: add what pyproject.toml gained, move nothing else
common=(--generate-hashes "${upgrade[@]}" --python-version 3.11 --python-platform x86_64-manylinux_2_28
        --no-emit-find-links --custom-compile-command "make lock" --quiet)
.uv/bin/uv pip compile "${common[@]}" "${links[@]}" --extra dev pyproject.toml -o requirements/dev.txt
echo "uv" | .uv/bin/uv pip compile "${common[@]}" - -o requirements/installer.txt
echo "oras==0.2.43" | .uv/bin/uv pip compile "${common[@]}" - -o requirements/oras.txt
grep -E "^(uv|torch|moto|transformers)==" requirements/*.txt
