#!/usr/bin/env bash
# Scale-out benchmark (issue 15), on a real PostgreSQL started here in a temporary folder:
#  - lookups per second on one node backed by PostgreSQL against the same binary on the
#    embedded store, same run (goal >= 0.95x: lookups are answered from memory on both);
#  - the time from a sign-in on node 2 to the PRESENCE reaching a client on node 1 (goal p99 <= 50 ms);
#  - sign-ups per second on PostgreSQL against the embedded store (reported; scrypt at N=2^10).
# Usage: scripts/bench-cluster.sh [SECONDS] [ROUNDS]   (defaults 5 and 200)
# Lookups alternate between the two nodes in 6 pairs of SECONDS each: this VM's speed drifts by
# tens of percent within minutes, so each pair is a ratio of its own and the median is the figure.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
rounds=${2:-200}
clients=50
signups=400

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$pg_bin" ]; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd=sudo
  $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq postgresql >/dev/null
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
# One binary for both sides of each ratio: the scale-out build, with and without `database`.
securechat=.build/securechat-scaleout
scripts/build-static.sh --scale-out "$securechat" >/dev/null
swift build -c release --product securechat-load >/dev/null
load=$(swift build -c release --show-bin-path)/securechat-load

work=$(mktemp -d)
chmod 755 "$work"
pids=()
# PostgreSQL refuses to run as root: as root it runs as Debian's unprivileged `postgres` account.
as_pg=(); [ "$(id -u)" -eq 0 ] && as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups --)
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/pg"
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$work/pg"
pg_port=$((20000 + RANDOM % 20000))
echo "bench-password" > "$work/pg/pw"
[ "$(id -u)" -eq 0 ] && chown postgres "$work/pg/pw"
"${as_pg[@]}" "$pg_bin/initdb" -D "$work/pg/data" -U securechat --auth=scram-sha-256 --pwfile="$work/pg/pw" -E UTF8 --locale=C >/dev/null
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w \
  -o "-p $pg_port -k $work/pg -c listen_addresses=127.0.0.1" start >/dev/null
echo "bench-password" > "$work/db-password"; chmod 600 "$work/db-password"

# Node configs: the same settings, with and without the database.
common="scrypt-log-n = 10
presence = yes
network-threads = 1
signups-per-host = 1000000
max-connections-per-host = 30000
max-unsigned-per-host = 30000
signins-in-flight-per-host = 100000
failed-signins-per-host = 100000
log-level = warning"
start_node() {  # NAME EXTRA-CONFIG: starts a node; sets address and key
  local name=$1
  mkdir -p "$work/$name"; chmod 700 "$work/$name"
  [ -f "$work/server.key" ] && cp "$work/server.key" "$work/$name/server.key"
  local port=$((20000 + RANDOM % 20000))
  printf 'listen = 127.0.0.1:%s\ndata-dir = %s\n%s\n%s\n' "$port" "$work/$name" "$common" "$2" > "$work/$name.conf"
  mkfifo "$work/$name.out"
  "$securechat" serve --config "$work/$name.conf" >"$work/$name.out" 2>"$work/$name.log" &
  pids+=($!)
  exec {fd}<"$work/$name.out"
  local line; read -r line <&"$fd"
  address=$(sed -E 's/.*listening on ([0-9.]+:[0-9]+),.*/\1/' <<<"$line")
  key=$(sed -E 's/.*, key ([A-Za-z0-9+/=]{44}).*/\1/' <<<"$line")
  [ -f "$work/server.key" ] || cp "$work/$name/server.key" "$work/server.key"
}
database="database = postgres://securechat@127.0.0.1:$pg_port/postgres
database-password-file = $work/db-password"

start_node embedded ""
embedded=$address
start_node node1 "$database
node-name = node1"
node1=$address
start_node node2 "$database
node-name = node2"
node2=$address

rate() {  # the rate in a load line; stops the benchmark when the load failed
  local value; value=$(sed -nE 's/.*= ([0-9]+) per second.*/\1/p' <<<"$1")
  [ -n "$value" ] || { echo "error: the load failed: $1" >&2; exit 1; }
  echo "$value"
}
echo "sign-ups ($signups, 8 in flight)..."
signups_embedded=$("$load" signups --server "$embedded" --server-key "$key" --users "$signups")
signups_pg=$("$load" signups --server "$node1" --server-key "$key" --users "$signups")
rate "$signups_embedded" >/dev/null; rate "$signups_pg" >/dev/null
echo "  embedded:   $signups_embedded"
echo "  PostgreSQL: $signups_pg"

echo "lookups ($clients clients, $seconds s each, alternated in 6 pairs)..."
lookups_embedded=(); lookups_pg=()
for _ in 1 2 3 4 5 6; do
  line=$("$load" lookups --server "$embedded" --server-key "$key" --clients $clients --seconds "$seconds" 2>&1 || true)
  lookups_embedded+=("$(rate "$line")")
  line=$("$load" lookups --server "$node1" --server-key "$key" --clients $clients --seconds "$seconds" 2>&1 || true)
  lookups_pg+=("$(rate "$line")")
done
echo "  embedded:   ${lookups_embedded[*]} per second"
echo "  PostgreSQL: ${lookups_pg[*]} per second"

echo "PRESENCE from node 2 to node 1 ($rounds sign-ins)..."
presence=$("$load" presence --server "$node1" --other "$node2" --server-key "$key" --rounds "$rounds")
echo "  $presence"

ratios=()
for index in "${!lookups_pg[@]}"; do
  ratios+=("$(awk -v a="${lookups_pg[$index]}" -v b="${lookups_embedded[$index]}" 'BEGIN { printf "%.2f", a / b }')")
done
ratio=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { printf "%.2f", (v[int((NR + 1) / 2)] + v[int(NR / 2) + 1]) / 2 }')
echo "  ratio pair by pair: ${ratios[*]}"
p99=$(sed -E 's/.*p99 ([0-9.]+) ms.*/\1/' <<<"$presence")
signup_ratio=$(awk -v a="$(rate "$signups_pg")" -v b="$(rate "$signups_embedded")" 'BEGIN { printf "%.2f", a / b }')
verdict() { awk -v v="$1" -v g="$2" -v d="$3" 'BEGIN { print ((d == "min" ? v >= g : v <= g) ? "met" : "NOT met") }'; }
echo
echo "| figure | result | goal | verdict |"
echo "|---|---|---|---|"
echo "| lookups/s, PostgreSQL node / embedded store (same binary, same run; median of 6 pairs) | $ratio× (pairs ${ratios[*]}) | ≥ 0.95× | $(verdict "$ratio" 0.95 min) |"
echo "| PRESENCE, sign-in on node 2 → client on node 1 | $presence | p99 ≤ 50 ms | $(verdict "$p99" 50 max) |"
echo "| sign-ups/s, PostgreSQL / embedded (scrypt N=2^10) | $(rate "$signups_pg") / $(rate "$signups_embedded") = ${signup_ratio}× | reported | — |"
