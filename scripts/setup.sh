#!/usr/bin/env bash
# Installs the Debian packages securechat needs to build and test, only those that are missing.
set -euo pipefail

# tmux: the terminal tests; iproute2, iptables, tcpdump: the network lab; zsh, fish, groff-base,
# man-db: the completion scripts and the man page, checked with the real tools; postgresql: the
# scale-out tests start their own cluster with it (as its unprivileged `postgres` account).
packages=(libssl-dev libgcrypt20-dev libgpg-error-dev pkg-config file binutils python3-venv tmux
          iproute2 iptables tcpdump zsh fish groff-base man-db postgresql)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "setup: all build and test packages present"
