#!/bin/sh
# Installs the Debian packages given as arguments that are not installed yet.
set -eu
# The HTML report's browser spec and --format pdf: headless Chromium, CJK fonts, poppler.
set -- "$@" chromium
set -- "$@" fonts-noto-cjk
set -- "$@" poppler-utils
# bench/peers/: Debian's old luacurl binding (Lua 5.1 ABI; LuaJIT loads it), a peer client.
set -- "$@" lua-curl
# bench/peers/: lua-http (cqueues; Debian ships it for Lua 5.1-5.3, so LuaJIT loads it).
set -- "$@" lua-http
# npm for playwright-core; Debian's only when none is installed (nodesource's nodejs has its own).
command -v npm >/dev/null 2>&1 || set -- "$@" nodejs npm
# The progress bar in a real terminal (tmux), process groups and ps for the sandbox specs.
set -- "$@" tmux
set -- "$@" procps
# spec/helpers/fds.lua, bench/longrun.lua: lfs lists a process's fds without a child of its own.
set -- "$@" lua-filesystem
# GNU time: the batch's peak RSS and CPU (spec/batch_memory_spec.lua, bench/batch.lua).
set -- "$@" time
missing=""
for pkg in "$@"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    case "$status" in
        "install ok installed") ;;
        *) missing="$missing $pkg" ;;
    esac
done
if [ -n "$missing" ]; then
echo "installing:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
fi
# playwright-core (package-lock.json) into node_modules/: it drives the system chromium,
# so no browser is downloaded.
cd "$(dirname "$0")/.."
want=$(sed -n 's/.*"playwright-core": "\([^"]*\)".*/\1/p' package.json)
have=$(sed -n 's/^  "version": "\([^"]*\)".*/\1/p' node_modules/playwright-core/package.json 2>/dev/null || true)
if [ "$want" != "$have" ]; then
    echo "npm ci (playwright-core $want)"
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
fi
