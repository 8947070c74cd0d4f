#!/usr/bin/env bash
# Instructions per operation, ours against C for the same work (issue 14): figures that do not
# drift with this VM's speed. Each operation runs N and 2N times under `valgrind --tool=callgrind`
# (`securechat bench --count N --only KEY`, `crypto_baseline --count N KEY`); the difference of
# the two totals over N is the cost of one operation, with start-up and set-up cancelled.
# Usage: scripts/bench-instructions.sh        (about 4 minutes; installs valgrind if missing)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd=sudo
  $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq valgrind >/dev/null
fi
mkdir -p .build
gcc -O2 -Wall -o .build/crypto_baseline Benchmarks/Baseline/crypto_baseline.c -lssl -lcrypto -lgcrypt
# The shipped static binary: valgrind 3.19 cannot run the dynamically linked one (it fails in
# /opt/swift's libdispatch.so), and these are the instructions users' machines run anyway.
bin=.build/securechat-static
[ -x "$bin" ] && [ -x "$bin.symbols" ] && "$bin" bench --help 2>/dev/null | grep -q -- --count \
  || scripts/build-static.sh --symbols "$bin" >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# callgrind COMMAND...: runs the command under callgrind into $work/callgrind.out.
callgrind() {
  valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" "$@" >/dev/null 2>"$work/valgrind.log" \
    || { cat "$work/valgrind.log" >&2; exit 1; }
}

# instructions COMMAND...: the total instructions callgrind counted for the command.
instructions() {
  callgrind "$@"
  awk '/^(summary|totals):/ {print $2; exit}' "$work/callgrind.out"
}

# per_operation N KIND KEY: instructions of one operation of KEY, ours or C's.
per_operation() {
  local n=$1 kind=$2 key=$3 one two
  if [ "$kind" = ours ]; then
    one=$(instructions "$bin" bench --count "$n" --only "$key")
    two=$(instructions "$bin" bench --count $((2 * n)) --only "$key")
  else
    one=$(instructions .build/crypto_baseline --count "$n" "$key" 64 1024 16384)
    two=$(instructions .build/crypto_baseline --count $((2 * n)) "$key" 64 1024 16384)
  fi
  echo $(( (two - one) / n ))
}

# row LABEL N OURS-KEY C-KEY GOAL: one line with both counts, the ratio and its verdict.
row() {
  local label=$1 n=$2 ours_key=$3 c_key=$4 goal=$5 ours c
  ours=$(per_operation "$n" ours "$ours_key")
  c=$(per_operation "$n" c "$c_key")
  awk -v l="$label" -v o="$ours" -v c="$c" -v g="$goal" 'BEGIN {
    r = o / c
    verdict = g == "" ? "" : (r <= g ? sprintf("<= %.2f ok", g) : sprintf("<= %.2f MISSED", g))
    printf "%-38s %12d %12d %7.2f  %s\n", l, o, c, r, verdict }' | tee -a .build/bench-instructions.txt
}

: > .build/bench-instructions.txt
echo "instructions per operation under callgrind (ours, C, ours/C, goal)" | tee -a .build/bench-instructions.txt
printf "%-38s %12s %12s %7s  %s\n" "" ours C ratio goal | tee -a .build/bench-instructions.txt
for backend in openssl gcrypt; do
  for cipher in chachapoly aesgcm; do
    for size in 64 1024 16384; do
      n=$(( size >= 16384 ? 400 : 4000 ))
      for op in seal open; do
        row "$op $backend $cipher $size B" "$n" "$op $backend $cipher $size" "$op $backend $cipher $size" 1.05
      done
    done
  done
  row "x25519-dh $backend" 200 "x25519-dh $backend" "x25519-dh $backend" 1.05
  row "x25519-keygen $backend" 200 "x25519-keygen $backend" "x25519-keygen $backend" ""
  row "IK both sides / floor $backend" 40 "ik-handshake $backend chachapoly" "ik-floor $backend" 1.10
done
# Heap allocations per IK handshake, both sides, in the shipped binary (its copy with symbols):
# the calls into the allocator that callgrind counted (N and 2N handshakes again), against the
# libraries' own for the same 2 key generations and 6 DH (crypto_baseline --allocations).
allocator_calls() {  # COUNT KEY: calls into malloc, calloc, realloc and memalign
  callgrind "$bin.symbols" bench --count "$1" --only "$2"
  callgrind_annotate --threshold=100 --tree=caller "$work/callgrind.out" | python3 -c '
import re, sys
total = callers = 0
for line in sys.stdin:
    called = re.match(r"^ *[0-9,]+ \([ 0-9.%]+\)  < .*\(([0-9,]+)x\)", line)
    if called:
        callers += int(called.group(1).replace(",", ""))
        continue
    if re.match(r"^ *[0-9,]+ \([ 0-9.%]+\)  \* .*:(malloc|calloc|realloc|_mid_memalign[.a-z0-9]*|posix_memalign) \[", line):
        total += callers
    callers = 0
print(total)'
}
.build/crypto_baseline --allocations 64 > "$work/c-allocations.txt"
for backend in openssl gcrypt; do
  one=$(allocator_calls 20 "ik-handshake $backend chachapoly")
  two=$(allocator_calls 40 "ik-handshake $backend chachapoly")
  c=$(awk -v k="ik-floor" -v b="$backend" '$2 == k && $3 == b {print $4}' "$work/c-allocations.txt")
  awk -v l="allocations per IK, $backend" -v o=$(( (two - one) / 20 )) -v c="$c" 'BEGIN {
    printf "%-38s %12d %12d %7.2f  <= 100 %s (C: the libraries alone)\n", l, o, c, o / c, (o <= 100 ? "ok" : "MISSED") }' \
    | tee -a .build/bench-instructions.txt
done

# IK against TLS 1.3: C's TLS instructions over ours (how many times fewer ours are).
ik=$(per_operation 40 ours "ik-handshake openssl chachapoly")
for tls in tls13-handshake tls13-mutual; do
  c=$(per_operation 40 c "$tls openssl")
  goal=$([ "$tls" = tls13-mutual ] && echo 2.5 || echo 2.0)
  awk -v t="$tls" -v o="$ik" -v c="$c" -v g="$goal" 'BEGIN {
    r = c / o
    printf "%-38s %12d %12d %7.2f  >= %.1f× fewer %s\n", "IK (openssl) vs " t, o, c, r, g, (r >= g ? "ok" : "MISSED") }' \
    | tee -a .build/bench-instructions.txt
done
echo "written to .build/bench-instructions.txt" >&2
