#!/usr/bin/env bash
# Set everything up (idempotent) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The browser tests drive Debian's Chromium through Playwright (never `playwright install`).
if [ ! -x /usr/bin/chromium ]; then
    echo "installing Debian's chromium for the browser tests" >&2
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
# The accessibility audit runs axe-core (from the npm registry, pinned and checked) in the browser tests.
AXE_VERSION=4.14.1
AXE_SHA256=29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c
AXE=.cache/axe-core-$AXE_VERSION/axe.min.js
if [ ! -f "$AXE" ] && command -v npm >/dev/null; then
    echo "fetching axe-core $AXE_VERSION for the accessibility tests" >&2
    mkdir -p "$(dirname "$AXE")"
    tmp=$(mktemp -d)
    if (cd "$tmp" && npm pack --silent "axe-core@$AXE_VERSION" >/dev/null 2>&1 && tar xzf "axe-core-$AXE_VERSION.tgz" package/axe.min.js); then
        if echo "$AXE_SHA256  $tmp/package/axe.min.js" | sha256sum -c --quiet - 2>/dev/null; then
            mv "$tmp/package/axe.min.js" "$AXE"
        else
            echo "axe-core $AXE_VERSION from npm does not have the expected sha256; the audit will be skipped" >&2
        fi
    else
        echo "could not fetch axe-core from npm; the accessibility audit will be skipped" >&2
    fi
    rm -rf "$tmp"
fi
export RAG_AXE="$PWD/$AXE"
export HF_HUB_OFFLINE=1
exec .venv/bin/python -m pytest "$@"
