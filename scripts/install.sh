#!/usr/bin/env bash
# Installs securechat for the users of this machine: the static binary, its man page and its
# completions for bash, zsh and fish, under PREFIX (default /usr/local; that needs root).
# Usage: scripts/install.sh [PREFIX] [BINARY]   (BINARY: an already built one; default: build it)
#   sudo scripts/install.sh                 /usr/local/bin/securechat, man securechat, Tab completes
#   scripts/install.sh ~/.local             the same for you alone
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:-/usr/local}
binary=${2:-}
if [ -z "$binary" ]; then
  scripts/build-static.sh ./securechat >/dev/null
  binary=./securechat
fi

share=$prefix/share
install -d "$prefix/bin" "$share/man/man1" "$share/bash-completion/completions" "$share/zsh/site-functions" \
  "$share/fish/vendor_completions.d"
install -m 0755 "$binary" "$prefix/bin/securechat"
installed=$prefix/bin/securechat
"$installed" manual > "$share/man/man1/securechat.1"
"$installed" completions bash > "$share/bash-completion/completions/securechat"
"$installed" completions zsh > "$share/zsh/site-functions/_securechat"
"$installed" completions fish > "$share/fish/vendor_completions.d/securechat.fish"
echo "installed $installed, its man page ($share/man/man1/securechat.1) and completions for bash, zsh and fish"
