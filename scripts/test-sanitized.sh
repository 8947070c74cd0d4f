#!/usr/bin/env bash
# The Swift tests once under AddressSanitizer and once under ThreadSanitizer, then every fuzz
# target for a short time (issue 12). A sanitizer report, a crash or a leak fails it. CI runs it
# after the test command; each sanitizer builds in its own folder so the normal build is kept.
# Usage: scripts/test-sanitized.sh [FUZZ-SECONDS-PER-TARGET]   (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
fuzz_seconds=${1:-10}
SECURECHAT_VECTORS=$(scripts/fetch-vectors.sh)
export SECURECHAT_VECTORS
if [ -d ../shared ]; then export SECURECHAT_SHARED=$(realpath ../shared); fi

# One run of the Swift tests under `$1`; fails on a sanitizer report or a failed test.
sanitized_run() {
  # halt_on_error: the first report fails the run instead of scrolling past.
  # detect_leaks=0: at exit, channels of servers a test did not wait to stop are still in NIO's
  # reference cycles and show as indirect leaks; the fuzz targets below check leaks in the core.
  ASAN_OPTIONS=halt_on_error=1:detect_leaks=0 TSAN_OPTIONS=halt_on_error=1 \
    swift test --scratch-path ".build-$1" --sanitize="$1" --disable-xctest >"$log" 2>&1 \
    && ! grep -qE "ERROR: (Address|Thread)Sanitizer|WARNING: ThreadSanitizer" "$log" \
    && grep -qE '^✔ Test run with [0-9]+ tests? .* passed' "$log"
}

for sanitizer in address thread; do
  echo "sanitized: swift test under --sanitize=$sanitizer"
  mkdir -p ".build-$sanitizer"
  log=".build-$sanitizer/test-output.txt"
  if ! sanitized_run "$sanitizer"; then
    # A sanitizer report fails at once. A failed test without one is run again once: the
    # sanitizers slow everything several times, and a few network tests wait on real deadlines.
    if grep -qE "Sanitizer" "$log" || ! { grep -E "✘ Test .* failed" "$log" | sed "s/^/  slow under $sanitizer, once more: /"; sanitized_run "$sanitizer"; }; then
      grep -E -A30 "Sanitizer|✘" "$log" | head -80
      echo "sanitized: FAILED under --sanitize=$sanitizer (whole log: $log)" >&2
      exit 1
    fi
  fi
  grep -E '^✔ Test run with' "$log" | sed "s/^/  $sanitizer: /"
done

scripts/fuzz.sh all "$fuzz_seconds"
