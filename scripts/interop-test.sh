#!/usr/bin/env bash
# Tests of the real binary in separate processes, driven from Python: a third-party Noise client
# (PyPI `noiseprotocol`) against `securechat serve`, and more. Usage: scripts/interop-test.sh BINARY
# The venv lives in .build/ (ignored) and is made once.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=$(realpath "${1:?usage: scripts/interop-test.sh BINARY}")
venv=$PWD/.build/interop-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import noise' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check noiseprotocol==0.3.1
fi
cd Tests/interop
SECURECHAT_BINARY="$binary" "$venv/bin/python" -W error::ResourceWarning -m unittest -v 2>&1
