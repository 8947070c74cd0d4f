#!/usr/bin/env bash
# Server benchmark (issues 4 and 14): lookups per second with 50 signed-in clients against Redis
# GET with 50 clients on the same machine in the same run, resident memory per idle signed-in
# session, and the instructions per lookup against Redis's per GET under callgrind (figures the
# VM's drift does not move; skipped when valgrind is missing).
# Usage: scripts/bench-server.sh [SECONDS] [IDLE_SESSIONS]   (defaults 20 of lookups, in 5 pairs, and 10000)
#        BENCH_INSTRUCTIONS=no skips the callgrind part (about 5 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
sessions=${2:-10000}
clients=50

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-benchmark >/dev/null || missing+=(redis-tools)
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd=sudo
  $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi
swift build -c release --product securechat >/dev/null
swift build -c release --product securechat-load >/dev/null
bin=$(swift build -c release --show-bin-path)
ulimit -n "$(ulimit -Hn)"   # 10,000 sessions need 10,000 descriptors per process

work=$(mktemp -d)
server_pid=""; redis_pid=""; idle_pid=""
cleanup() {
  for pid in $idle_pid $server_pid $redis_pid; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "preparing $((sessions + clients)) accounts (scrypt N=2^10 for the benchmark)..."
"$bin/securechat-load" prepare --data-dir "$work/data" --users $((sessions + clients))
# One network thread, as Redis serves from one: on a small machine the load generator needs the
# other core, and two server threads fighting it for CPU serve fewer lookups, not more.
cat > "$work/server.conf" <<CONF
listen = 127.0.0.1:0
data-dir = $work/data
scrypt-log-n = 10
presence = no
network-threads = 1
max-connections = 30000
# Every benchmark client comes from 127.0.0.1: the per-host caps would (rightly) stop them.
max-connections-per-host = 30000
max-unsigned-per-host = 30000
signins-in-flight-per-host = 100000
failed-signins-per-host = 100000
log-level = warning
CONF
mkfifo "$work/server.out"
"$bin/securechat" serve --config "$work/server.conf" >"$work/server.out" 2>"$work/server.log" &
server_pid=$!
exec 3<"$work/server.out"
read -r start_line <&3
address=$(sed -E 's/.*listening on ([0-9.]+:[0-9]+),.*/\1/' <<<"$start_line")
key=$(sed -E 's/.*, key ([A-Za-z0-9+/=]{44}).*/\1/' <<<"$start_line")

# CPU time of a process in seconds (user + system), to show which side the throughput waits on.
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }
redis_port=$((20000 + RANDOM % 20000))
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no >/dev/null &
redis_pid=$!
for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$redis_port" set key:__rand_int__ value >/dev/null

# Paired runs: this VM's speed drifts by tens of percent from one minute to the next, so the
# lookups and Redis's GETs take turns, PAIRS pairs of SECONDS / PAIRS each, back to back (the
# order swapped every pair); the verdict is on the median of the pairs' ratios.
pairs=5
pair_seconds=$(( seconds / pairs > 1 ? seconds / pairs : 2 ))
our_run() {  # lookups/s for $pair_seconds; the CPU figures into $work/busy
  local before; before=$(cpu_seconds "$server_pid")
  TIMEFORMAT="%U %S"
  { time "$bin/securechat-load" lookups --server "$address" --server-key "$key" --clients $clients --seconds "$pair_seconds" >"$work/lookups.out"; } 2>"$work/load.cpu"
  local server_busy load_busy
  server_busy=$(awk -v a="$before" -v b="$(cpu_seconds "$server_pid")" -v s="$pair_seconds" 'BEGIN { printf "%d", (b - a) / s * 100 }')
  load_busy=$(awk -v s="$pair_seconds" '{ printf "%d", ($1 + $2) / s * 100 }' "$work/load.cpu")
  echo "server ${server_busy}% of its one thread, load generator ${load_busy}%" > "$work/busy"
  sed -E 's/.*= ([0-9]+) per second.*/\1/' "$work/lookups.out"
}
redis_run() {  # GET/s, about $pair_seconds of GETs
  redis-benchmark -p "$redis_port" -c $clients -n $((pair_seconds * 80000)) -t get -q 2>/dev/null | tr '\r' '\n' \
    | grep -E '^GET: [0-9.]+ requests per second' | tail -1 | sed -E 's/GET: ([0-9.]+) requests.*/\1/'
}
echo "securechat lookups and redis GETs, $clients clients each, $pairs alternating pairs of $pair_seconds s..."
: > "$work/pairs"
for n in $(seq $pairs); do
  if [ $((n % 2)) -eq 1 ]; then ours=$(our_run); theirs=$(redis_run); else theirs=$(redis_run); ours=$(our_run); fi
  echo "$ours $theirs" >> "$work/pairs"
  echo "  pair $n: $ours lookups/s, ${theirs%.*} GET/s (CPU during the lookups: $(cat "$work/busy"))"
done
read -r lookup_rate redis_rate ratio ratios < <(python3 - "$work/pairs" <<'PY'
import statistics, sys
pairs = [tuple(map(float, line.split())) for line in open(sys.argv[1])]
ratios = sorted(ours / redis for ours, redis in pairs)
print(int(statistics.median(p[0] for p in pairs)), int(statistics.median(p[1] for p in pairs)),
      f"{statistics.median(ratios):.2f}", ",".join(f"{r:.2f}" for r in ratios))
PY
)

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$server_pid/status"; }
before=$(rss_kib)
echo "idle: signing in $sessions sessions..."
mkfifo "$work/idle.out"
"$bin/securechat-load" idle --server "$address" --server-key "$key" --sessions "$sessions" >"$work/idle.out" &
idle_pid=$!
exec 4<"$work/idle.out"
read -r ready_line <&4
sleep 1
after=$(rss_kib)
per_session=$(( (after - before) * 1024 / sessions ))

kill "$idle_pid" "$server_pid" 2>/dev/null || true
wait "$idle_pid" "$server_pid" 2>/dev/null || true
idle_pid=""; server_pid=""

# Instructions per operation: the server (the static binary: valgrind 3.19 cannot run the
# dynamically linked one) under callgrind serving lookups for two lengths of time, and
# redis-server under callgrind serving two numbers of GETs; the difference of the totals over
# the difference of the operations cancels start-up, sign-ins and shut-down.
lookup_instructions="-"; get_instructions="-"
if [ "${BENCH_INSTRUCTIONS:-yes}" != no ] && command -v valgrind >/dev/null; then
  static=.build/securechat-static
  [ -x "$static" ] || scripts/build-static.sh "$static" >/dev/null
  callgrind_total() { awk '/^(summary|totals):/ {print $2; exit}' "$1"; }
  server_under_callgrind() {  # SECONDS OUT: lookups for SECONDS; prints "instructions lookups"
    rm -f "$work/server.out"; mkfifo "$work/server.out"
    valgrind --tool=callgrind --callgrind-out-file="$2" "$static" serve --config "$work/server.conf" \
      >"$work/server.out" 2>>"$work/valgrind.log" &
    local pid=$!
    exec 5<"$work/server.out"
    local line; read -r line <&5
    local at; at=$(sed -E 's/.*listening on ([0-9.]+:[0-9]+),.*/\1/' <<<"$line")
    local done; done=$("$bin/securechat-load" lookups --server "$at" --server-key "$key" --clients $clients --seconds "$1")
    kill -TERM "$pid"; wait "$pid" || true
    exec 5<&-
    echo "$(callgrind_total "$2") $(sed -E 's/lookups: ([0-9]+) in.*/\1/' <<<"$done")"
  }
  echo "instructions: the server under callgrind (two runs)..."
  read -r i1 l1 < <(server_under_callgrind 4 "$work/cg.server.1")
  read -r i2 l2 < <(server_under_callgrind 8 "$work/cg.server.2")
  lookup_instructions=$(( (i2 - i1) / (l2 - l1) ))
  redis_under_callgrind() {  # GETS OUT: prints instructions
    valgrind --tool=callgrind --callgrind-out-file="$2" redis-server --port "$redis_port" --bind 127.0.0.1 \
      --save '' --appendonly no --daemonize no >/dev/null 2>>"$work/valgrind.log" &
    local pid=$!
    for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.2; done
    redis-benchmark -p "$redis_port" -c $clients -n "$1" -t get -q >/dev/null 2>&1
    redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || kill -TERM "$pid"
    wait "$pid" || true
    callgrind_total "$2"
  }
  kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; redis_pid=""
  echo "instructions: redis-server under callgrind (two runs)..."
  g1=$(redis_under_callgrind 20000 "$work/cg.redis.1")
  g2=$(redis_under_callgrind 40000 "$work/cg.redis.2")
  get_instructions=$(( (g2 - g1) / 20000 ))
fi

ratio=$(awk -v a="$lookup_rate" -v b="$redis_rate" 'BEGIN { printf "%.2f", a / b }')
verdict=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.8 ? "ok" : "MISSED") }')
memory_verdict=$([ "$per_session" -le 16384 ] && echo ok || echo MISSED)
cat <<REPORT | tee .build/bench-server.txt

securechat server benchmark ($(nproc) CPUs, $(date -u +%Y-%m-%d))
  lookups/s, $clients clients:      $lookup_rate (median of the pairs)
  redis GET/s, $clients clients:    $redis_rate
  ratio (goal >= 0.80):     $ratio $verdict (median of $pairs pairs: $ratios)
  CPU during the lookups:   $(cat "$work/busy") (the last pair)
  instructions per lookup:  $lookup_instructions (server side, callgrind)
  instructions per GET:     $get_instructions (redis-server, callgrind)
  idle sessions:            $sessions ($ready_line)
  server RSS before/after:  $before KiB / $after KiB
  RSS per idle session:     $per_session bytes (goal <= 16384) $memory_verdict
REPORT
