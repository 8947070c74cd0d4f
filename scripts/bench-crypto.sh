#!/usr/bin/env bash
# securechat's crypto against C in the same run (issue 6): builds the C baseline
# (Benchmarks/Baseline/crypto_baseline.c, libcrypto + libssl + libgcrypt called directly) and the
# release binary, runs both on the same sizes, and prints per backend × cipher × size our MB/s,
# C's and the ratio; then the IK handshake against the sum of its X25519 and hash costs and
# against a TLS 1.3 full handshake done in-process with libssl. Writes .build/bench.json (our
# `securechat bench --json`, best of the rounds) and the README's chart, docs/bench-chart.svg.
# Usage: scripts/bench-crypto.sh [SECONDS-PER-FIGURE]   (default 0.3; about 2.5 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-0.3}
sizes="16 64 256 1024 16384 65519"

mkdir -p .build
gcc -O2 -Wall -o .build/crypto_baseline Benchmarks/Baseline/crypto_baseline.c -lssl -lcrypto -lgcrypt
swift build -c release --product securechat >/dev/null
bin=$(swift build -c release --show-bin-path)/securechat

# This VM's speed drifts by tens of percent from one minute to the next, so the two sides take
# turns, three rounds each, and each figure is the best of its three rounds.
for round in 1 2 3; do
  echo "round $round of 3: C baseline, then securechat bench, $seconds s per figure..." >&2
  .build/crypto_baseline "$seconds" $sizes > ".build/bench-c.$round.txt"
  "$bin" bench --seconds "$seconds" --sizes "${sizes// /,}" --json > ".build/bench.$round.json" 2>/dev/null
done

python3 - "$seconds" <<'PY'
import json, sys
# Best of the rounds: the highest rate, except for the ratios and latencies, where lower is better.
lower_is_better = ("ik-vs-floor", "connect ")
rounds = [json.load(open(f".build/bench.{n}.json")) for n in (1, 2, 3)]
best = rounds[0]
for result in best["results"]:
    values = [r["value"] for run in rounds for r in run["results"] if r["key"] == result["key"]]
    result["value"] = min(values) if result["key"].startswith(lower_is_better) else max(values)
json.dump(best, open(".build/bench.json", "w"), indent=1)
ours = {r["key"]: r["value"] for r in best["results"]}
c = {}
for n in (1, 2, 3):
    for line in open(f".build/bench-c.{n}.txt"):
        *key, value = line.split()
        c[" ".join(key)] = max(c.get(" ".join(key), 0.0), float(value))

print(f"\nsecurechat vs C, same machine, same run ({sys.argv[1]} s per figure; best of 3 alternating rounds)")
print(f"{'':32}{'ours MB/s':>11}{'C MB/s':>11}{'ratio':>8}  goal")
misses = 0
for key in (k for k in c if k.startswith(("seal", "open"))):
    size = int(key.split()[-1])
    goal = 0.95 if size >= 1024 else 0.85 if size == 64 else None
    ratio = ours[key] / c[key]
    verdict = "" if goal is None else (f">= {goal:.2f} ok" if ratio >= goal else f">= {goal:.2f} MISSED")
    misses += goal is not None and ratio < goal
    print(f"{key:32}{ours[key]:11.1f}{c[key]:11.1f}{ratio:8.2f}  {verdict}")

print("\nIK handshake (both sides, in-process)")
tls = c["tls13-handshake openssl"]
for backend in ("openssl", "gcrypt"):
    for cipher in ("chachapoly", "aesgcm"):
        rate = ours[f"ik-handshake {backend} {cipher}"]
        over = ours[f"ik-vs-floor {backend} {cipher}"]  # time over the sum of its X25519 and hash costs
        speedup = rate / tls
        print(f"  {backend:8}{cipher:11}{1e6 / rate:8.0f} µs  vs X25519+hash floor {over:5.2f}× (goal <= 1.15: "
              f"{'ok' if over <= 1.15 else 'MISSED'})  vs TLS 1.3 ({1e6 / tls:.0f} µs) {speedup:4.2f}× faster "
              f"(goal >= 2.5: {'ok' if speedup >= 2.5 else 'MISSED'})")
print(f"\nX25519 per second, ours (C): " + ", ".join(
    f"{op} {b} {ours[f'x25519-{op} {b}']:.0f} ({c[f'x25519-{op} {b}']:.0f})" for b in ("openssl", "gcrypt") for op in ("keygen", "dh")))
print("securechat bench, round 1: " + best["recommendation"])
PY
python3 scripts/bench-chart.py .build/bench.json docs/bench-chart.svg
echo "chart for the README: docs/bench-chart.svg" >&2
