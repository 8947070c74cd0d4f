#!/usr/bin/env bash
# Builds securechat as one fully static, stripped executable, prints its size and runs its selftest.
# Usage: scripts/build-static.sh [--scale-out] [--symbols] [output-path]   (default: ./securechat)
#   --scale-out  the build with the ScaleOut trait: several `serve` nodes on one PostgreSQL
#                (docs/DEPLOYING.md). It links the database driver with its TLS and crypto, so it
#                is larger; it is built in .build-scaleout and its size is printed, not budgeted.
#   --symbols    also writes OUTPUT.symbols, the same binary with its symbol table (without the
#                debug info valgrind 3.19 cannot read): for counting calls by function name.
set -euo pipefail
cd "$(dirname "$0")/.."

scale_out=false
symbols=false
while [ $# -gt 0 ]; do
  case "$1" in
    --scale-out) scale_out=true ;;
    --symbols) symbols=true ;;
    *) break ;;
  esac
  shift
done
output=${1:-./securechat}
budget=$((24 * 1000 * 1000))   # the size budget of the default binary: 24 MB stripped

# --icf=safe: the linker folds identical functions whose address is never compared (specialised
# generics are often byte-identical); about 0.2 MB of the budget.
flags=(-c release --static-swift-stdlib -Xswiftc -static-executable -Xlinker --icf=safe --product securechat)
if $scale_out; then
  flags+=(--traits ScaleOut --scratch-path .build-scaleout)
fi
swift build "${flags[@]}"
binary=$(swift build "${flags[@]}" --show-bin-path)/securechat
cp "$binary" "$output"
strip "$output"
if $symbols; then
  cp "$binary" "$output.symbols"
  strip --strip-debug "$output.symbols"
fi

description=$(file -b "$output")
case "$description" in
  *"statically linked"*) ;;
  *) echo "error: $output is not statically linked: $description" >&2; exit 1 ;;
esac
size=$(stat -c %s "$output")
name=securechat
$scale_out && name="securechat (scale-out)"
awk -v s="$size" -v n="$name" 'BEGIN { printf "%s: %d bytes (%.1f MB) stripped, statically linked\n", n, s, s / 1000000 }'
if ! $scale_out && (( size > budget )); then
  echo "error: the binary is over the 24 MB budget" >&2
  exit 1
fi
"$output" selftest --backend all
