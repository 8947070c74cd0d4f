#!/usr/bin/env bash
# Fuzzes the protocol core with libFuzzer and AddressSanitizer (the Fuzz/ package).
# Usage: scripts/fuzz.sh [TARGET|all] [SECONDS] [-- extra libFuzzer flags, e.g. -runs=10000000]
# Each target starts from its small committed seed corpus (Fuzz/Corpus/TARGET, never changed
# here) and fails on a crash, a leak, or any input slower than 1 s; what it finds is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=(FuzzFrames FuzzJSON FuzzRecords FuzzServerSession FuzzCallee FuzzSignalling)
which=${1:-all}
seconds=${2:-60}
shift $(( $# >= 2 ? 2 : $# ))
[ "${1:-}" = "--" ] && shift
[ "$which" = all ] || targets=("$which")

# Both sanitizers in one -sanitize= as well: given two, the Swift driver passes only one of them
# to each compile job, and which one varies from build to build (a target without `fuzzer` has
# no coverage, one without `address` no checks).
build=(swift build --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer,address -c debug)
(cd Fuzz && "${build[@]}" 2>&1 | grep -E "error|warning: unre|Compiling|Build complete" | tail -3)
bin=$(cd Fuzz && "${build[@]}" --show-bin-path)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for target in "${targets[@]}"; do
  mkdir -p "$work/$target"
  cp Fuzz/Corpus/"$target"/* "$work/$target/" 2>/dev/null || true
  echo "fuzz: $target for ${seconds} s"
  # Crashes are recorded only with the Swift backtracer off.
  if SWIFT_BACKTRACE=enable=no LSAN_OPTIONS="suppressions=$PWD/Fuzz/lsan.supp" "$bin/$target" -max_total_time="$seconds" -timeout=1 -rss_limit_mb=4096 \
       -artifact_prefix="$work/$target-" -print_final_stats=1 "$@" "$work/$target" >"$work/$target.log" 2>&1; then
    grep -E "DONE|stat::number_of_executed_units|stat::average_exec_per_sec" "$work/$target.log" | sed "s/^/  /"
    # A target without coverage would be fuzzed blind (see the build above): say so loudly.
    if grep -q "Is the code instrumented for coverage" "$work/$target.log"; then
      echo "  WARNING: $target has no coverage feedback" >&2
    fi
    # libFuzzer times inputs in whole seconds only: replay the corpus it grew, one input at a
    # time, for the slowest in milliseconds. The first input of each process also sets the
    # target up (a real handshake), so it is not counted.
    find "$work/$target" -type f -print0 | SWIFT_BACKTRACE=enable=no LSAN_OPTIONS="suppressions=$PWD/Fuzz/lsan.supp" \
      xargs -0 -n 2000 "$bin/$target" 2>&1 | awk '/^INFO: Seed:/ { warming = 1 }
        /^Executed .* in [0-9]+ ms/ { if (warming) { warming = 0; next } n++; ms = $(NF-1); if (ms > max) max = ms }
        END { printf "  corpus replayed (ASan build): %d inputs, the slowest %d ms\n", n, max }'
  else
    failed+=("$target")
    tail -40 "$work/$target.log"
    for artifact in "$work/$target-"*; do [ -e "$artifact" ] && { echo "  input: $artifact"; xxd "$artifact" | head -20; }; done
  fi
done
if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, no crash, no leak, no slow input"
