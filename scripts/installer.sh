#!/usr/bin/env bash
# The installer, uv, in a folder of its own (.uv/), at the version and hashes of requirements/installer.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=.uv/.installed
if [ ! -x .uv/bin/uv ] || [ requirements/installer.txt -nt "$stamp" ]; then
  echo "==> uv from requirements/installer.txt into .uv/"
  "${PYTHON:-python3}" -m venv .uv
  .uv/bin/pip install -q --require-hashes --no-deps -r requirements/installer.txt
  touch "$stamp"
fi
