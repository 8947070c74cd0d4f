#!/usr/bin/env bash
# Call set-up across real network placements (issue 13), in the network lab of network
# namespaces (Tests/interop/netlab.py; needs root, installs what it needs): per placement the
# path taken, the time from /chat to both sides connected and the round trips the set-up waited
# for; then a relayed 64 KiB-record stream against the same stream direct (goal >= 0.5x).
# Usage: sudo scripts/bench-paths.sh [CALLS-PER-PLACEMENT] [STREAM-MiB]   (defaults 5 and 256; ~1 min)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
scripts/build-static.sh .build/securechat-static >/dev/null
python=$(scripts/python-venv.sh)
cd Tests/interop
SECURECHAT_BINARY=$(realpath ../../.build/securechat-static) BENCH_CALLS=${1:-5} BENCH_STREAM_MB=${2:-256} "$python" bench_paths.py
