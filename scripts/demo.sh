#!/usr/bin/env bash
# The main job, shown: builds the static binary, starts a server and two peers on loopback, and
# lets Ali and Bianca sign up, chat directly (end to end encrypted, not through the server) and
# hang up. Everything runs in a temporary directory that is removed at the end.
# Usage: scripts/demo.sh [BINARY]   (default: build ./securechat with scripts/build-static.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ge 1 ]; then
  binary=$(realpath "$1")
else
  scripts/build-static.sh ./securechat >/dev/null
  binary=$PWD/securechat
fi

work=$(mktemp -d)
pids=()
# As users run it: an ordinary account with no capabilities. Run as root (as CI is), the demo
# drops to a throwaway uid first, and hands it the folder it works in.
as_user=()
if [ "$(id -u)" -eq 0 ]; then
  uid=${SECURECHAT_TEST_UID:-64123}
  as_user=(setpriv "--reuid=$uid" "--regid=$uid" --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs --)
  chown "$uid:$uid" "$work"
fi
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkfifo "$work/server.out"
"${as_user[@]}" "$binary" serve --listen 127.0.0.1:0 --data-dir "$work/data" >"$work/server.out" 2>"$work/server.log" &
pids+=($!)
exec 3<"$work/server.out"
read -r start_line <&3
echo "server: $start_line"
address=$(sed -E 's/.*listening on ([0-9.]+:[0-9]+),.*/\1/' <<<"$start_line")
key=$(sed -E 's/.*, key ([A-Za-z0-9+/=]{44}).*/\1/' <<<"$start_line")

# Each peer reads commands from a pipe (line mode) and its lines are shown prefixed with its name.
start_peer() {
  local user=$1
  mkfifo "$work/$user.in"
  mkdir -p "$work/$user"
  [ ${#as_user[@]} -eq 0 ] || chown "$uid:$uid" "$work/$user"
  HOME="$work/$user" SECURECHAT_PASSCODE="demo-passcode-$user" \
    "${as_user[@]}" "$binary" peer --user "$user" --signup --server "$address" --server-key "$key" --listen 127.0.0.1:0 \
    <"$work/$user.in" 2>&1 | sed -u "s/^/[$user] /" &
  pids+=($!)
}
say() { echo "$2" >&"$1"; sleep "${3:-0.6}"; }

start_peer ali
start_peer bianca
exec 4>"$work/ali.in" 5>"$work/bianca.in"
sleep 1.5
say 4 "/list"
say 4 "/chat bianca" 1
say 4 "Hello Bianca, this goes straight to you."
say 5 "Hi Ali! The server never sees these lines."
say 4 "Bye for now."
say 4 "/hangup" 1
say 4 "/quit"
say 5 "/quit" 1
echo "demo: done (server log below)"
sed 's/^/[server] /' "$work/server.log"
