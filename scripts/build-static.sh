#!/usr/bin/env bash
# Builds securechat as one fully static, stripped executable, prints its size and runs its selftest.
# Usage: scripts/build-static.sh [output-path]   (default: ./securechat)
set -euo pipefail
cd "$(dirname "$0")/.."

output=${1:-./securechat}
budget=$((24 * 1000 * 1000))   # the size budget: 24 MB stripped

swift build -c release --static-swift-stdlib -Xswiftc -static-executable --product securechat
binary=$(swift build -c release --static-swift-stdlib -Xswiftc -static-executable --product securechat --show-bin-path)/securechat
cp "$binary" "$output"
strip "$output"

description=$(file -b "$output")
case "$description" in
  *"statically linked"*) ;;
  *) echo "error: $output is not statically linked: $description" >&2; exit 1 ;;
esac
size=$(stat -c %s "$output")
awk -v s="$size" 'BEGIN { printf "securechat: %d bytes (%.1f MB) stripped, statically linked\n", s, s / 1000000 }'
if (( size > budget )); then
  echo "error: the binary is over the 24 MB budget" >&2
  exit 1
fi
"$output" selftest --backend all
