#!/usr/bin/env bash
# Builds securechat as one fully static, stripped executable, prints its size and runs its selftest.
# Usage: scripts/build-static.sh [output-path]   (default: ./securechat)
set -euo pipefail
cd "$(dirname "$0")/.."

output=${1:-./securechat}
budget=$((24 * 1000 * 1000))   # the size budget: 24 MB stripped

# --icf=safe: the linker folds identical functions whose address is never compared (specialised
# generics are often byte-identical); about 0.2 MB of the budget.
flags=(-c release --static-swift-stdlib -Xswiftc -static-executable -Xlinker --icf=safe --product securechat)
swift build "${flags[@]}"
binary=$(swift build "${flags[@]}" --show-bin-path)/securechat
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
