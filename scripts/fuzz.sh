#!/usr/bin/env bash
# Fuzzes the protocol core with libFuzzer and AddressSanitizer (the Fuzz/ package).
# Usage: [FUZZ_WORK=DIR] [FUZZ_CONFIGURATION=release] scripts/fuzz.sh [--jobs N] [TARGET|all] [SECONDS] [-- extra libFuzzer flags, e.g. -runs=10000000]
#        FUZZ_WORK=DIR scripts/fuzz.sh --replay-plain [TARGET|all]
# Each target starts from its small committed seed corpus (Fuzz/Corpus/TARGET, never changed
# here) and fails on a crash, a leak, or any input slower than 1 s; what it finds is printed.
# --jobs N runs N targets at once (one core each), reports still printed in target order.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=1
if [ "${1:-}" = "--jobs" ]; then jobs=$2; shift 2; fi
targets=(FuzzFrames FuzzJSON FuzzRecords FuzzServerSession FuzzCallee FuzzSignalling)
# --replay-plain [TARGET|all]: the corpora a long run grew in $FUZZ_WORK, each input timed in
# microseconds on an optimised build without the fuzzer's instrumentation or ASan (what the
# input costs our code), fastest of three runs; fails on any input over 1 ms.
if [ "${1:-}" = "--replay-plain" ]; then
  [ -n "${FUZZ_WORK:-}" ] || { echo "fuzz: --replay-plain needs FUZZ_WORK (the long run's corpora)" >&2; exit 2; }
  [ "${2:-all}" = all ] || targets=("$2")
  plain=(swift build -c release --scratch-path .build/replay -Xswiftc -DFUZZ_REPLAY)
  (cd Fuzz && "${plain[@]}" 2>&1 | grep -E "error|Build complete" | tail -1)
  bin=$(cd Fuzz && "${plain[@]}" --show-bin-path)
  slow=0
  for target in "${targets[@]}"; do
    find "$FUZZ_WORK/$target/" -type f | sort | xargs -d '\n' -n 1000 "$bin/$target" | awk -v t="$target" '
      { us = $(NF-1); n++; if (us > max) { max = us; slowest = $2 } if (us > 1000) over++ }
      END { printf "  %s: %d inputs, the slowest %d us (%s), %d over 1 ms\n", t, n, max, slowest, over; exit over > 0 }' || slow=1
  done
  exit $slow
fi
which=${1:-all}
seconds=${2:-60}
shift $(( $# >= 2 ? 2 : $# ))
[ "${1:-}" = "--" ] && shift
[ "$which" = all ] || targets=("$which")

# Both sanitizers in one -sanitize= as well: given two, the Swift driver passes only one of them
# to each compile job, and which one varies from build to build (a target without `fuzzer` has
# no coverage, one without `address` no checks).
# FUZZ_CONFIGURATION=release: optimised code, still with both sanitizers and every precondition,
# about 1.5× the executions a second (for long runs; CI fuzzes the debug build).
build=(swift build --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer,address -c "${FUZZ_CONFIGURATION:-debug}")
(cd Fuzz && "${build[@]}" 2>&1 | grep -E "error|warning: unre|Compiling|Build complete" | tail -3)
bin=$(cd Fuzz && "${build[@]}" --show-bin-path)
# FUZZ_WORK=DIR keeps the grown corpora, logs and findings there (for a long run).
if [ -n "${FUZZ_WORK:-}" ]; then work=$FUZZ_WORK; mkdir -p "$work"; else work=$(mktemp -d); trap 'rm -rf "$work"' EXIT; fi
export SWIFT_BACKTRACE=enable=no   # crashes are recorded only with the Swift backtracer off
export LSAN_OPTIONS="suppressions=$PWD/Fuzz/lsan.supp"

# Input length limits where 4096 (a whole frame) is more than a target can use: 126 events are
# far more than a call set-up has (at most 10 candidates), and longer inputs only run slower.
declare -A max_len=([FuzzSignalling]=128)

# Fuzzes one target; writes its report to $work/TARGET.report and fails if it found anything.
fuzz_target() {
  local target=$1 report=$work/$1.report
  local limit=()
  [ -n "${max_len[$target]:-}" ] && limit=(-max_len="${max_len[$target]}")
  mkdir -p "$work/$target"
  cp Fuzz/Corpus/"$target"/* "$work/$target/" 2>/dev/null || true
  echo "fuzz: $target for ${seconds} s" >"$report"
  if ! "$bin/$target" -max_total_time="$seconds" -timeout=1 -rss_limit_mb=4096 \
       -artifact_prefix="$work/$target-" -print_final_stats=1 "${limit[@]}" "${@:2}" "$work/$target" >"$work/$target.log" 2>&1; then
    tail -40 "$work/$target.log" >>"$report"
    for artifact in "$work/$target-"*; do [ -e "$artifact" ] && { echo "  input: $artifact"; xxd "$artifact" | head -20; }; done >>"$report"
    return 1
  fi
  grep -E "DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb" "$work/$target.log" | sed "s/^/  /" >>"$report"
  grep -oE "cov: [0-9]+ ft: [0-9]+ corp: [0-9]+" "$work/$target.log" | tail -1 | sed "s/^/  final /" >>"$report"
  # A target without coverage would be fuzzed blind (see the build above): say so loudly.
  if grep -q "Is the code instrumented for coverage" "$work/$target.log"; then
    echo "  WARNING: $target has no coverage feedback" >>"$report"
  fi
  replay "$target" >>"$report"
}

# libFuzzer times inputs in whole seconds only: replay the corpus a target grew for the slowest
# input in milliseconds. Each batch runs three times in one process: the first pass also pays
# one-time set-up (a lazy handshake, Swift metadata for a new code path), which an attacker
# cannot make the process pay again, so it is shown apart; of the other two, each input's faster
# run counts, so that a moment the process was not scheduled is not taken for the input's cost.
replay() {
  local target=$1
  find "$work/$target" -type f | sort | xargs -d '\n' -n 1000 sh -c '"$0" "$@" "$@" "$@"' "$bin/$target" 2>&1 | awk '
    /^Running: / { input = $2 }
    /^Executed .* in [0-9]+ ms/ { ms = $(NF-1)
      if (!(input in runs)) { runs[input] = 0; if (ms > first) first = ms; next }
      if (runs[input]++ == 0 || ms < best[input]) best[input] = ms }
    END { for (input in best) { n++; if (best[input] >= max) { max = best[input]; slowest = input } }
          printf "  corpus replayed (ASan build): %d inputs, the slowest %s ms%s; first runs with set-up up to %d ms\n",
                 n, max == 0 ? "under 1" : max, max == 0 ? "" : " (" slowest ")", first }'
}

failed=()
running=()
# Reports are printed in target order as each finishes; at most $jobs run at once.
for target in "${targets[@]}"; do
  while (( $(jobs -rp | wc -l) >= jobs )); do wait -n || true; done
  fuzz_target "$target" "$@" &
  running+=("$target:$!")
done
for entry in "${running[@]}"; do
  if ! wait "${entry#*:}"; then failed+=("${entry%%:*}"); fi
  cat "$work/${entry%%:*}.report"
done
if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, no crash, no leak, no slow input"
