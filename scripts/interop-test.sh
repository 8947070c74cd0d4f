#!/usr/bin/env bash
# Tests of the real binary in separate processes, driven from Python: a third-party Noise client
# (PyPI `noiseprotocol`) against `securechat serve`, and more. Usage: scripts/interop-test.sh BINARY
set -euo pipefail
cd "$(dirname "$0")/.."
binary=$(realpath "${1:?usage: scripts/interop-test.sh BINARY}")
python=$(scripts/python-venv.sh)
# As root, the tests run the binary as a throwaway unprivileged user (Tests/interop/unprivileged.py),
# who must be able to reach this checkout.
test_uid=${SECURECHAT_TEST_UID:-64123}
if [ "$(id -u)" -eq 0 ] && ! setpriv --reuid="$test_uid" --regid="$test_uid" --clear-groups -- test -x "$binary" -a -r scripts/install.sh; then
  echo "interop: the tests run securechat as an unprivileged user (uid $test_uid), who cannot reach $PWD;" >&2
  echo "interop: put the checkout where others can read it (every folder above it mode 755), e.g. under /srv" >&2
  exit 1
fi
cd Tests/interop
SECURECHAT_BINARY="$binary" "$python" -W error::ResourceWarning -m unittest -v 2>&1
