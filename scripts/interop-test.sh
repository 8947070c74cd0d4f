#!/usr/bin/env bash
# Tests of the real binary in separate processes, driven from Python: a third-party Noise client
# (PyPI `noiseprotocol`) against `securechat serve`, and more. Usage: scripts/interop-test.sh BINARY
set -euo pipefail
cd "$(dirname "$0")/.."
binary=$(realpath "${1:?usage: scripts/interop-test.sh BINARY}")
python=$(scripts/python-venv.sh)
cd Tests/interop
SECURECHAT_BINARY="$binary" "$python" -W error::ResourceWarning -m unittest -v 2>&1
