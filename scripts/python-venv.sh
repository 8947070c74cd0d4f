#!/usr/bin/env bash
# Prints the path of the Python that the interop tests and the lab scripts run on: a venv in
# .build/ (ignored) with PyPI `noiseprotocol`, made once.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$PWD/.build/interop-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import noise' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check noiseprotocol==0.3.1 >&2
fi
echo "$venv/bin/python"
