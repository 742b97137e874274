#!/usr/bin/env bash
# Test dependencies that pip cannot install: Debian's Chromium for the browser tests
# (Playwright drives it through executable_path; Playwright's own browser downloads are never
# used) and, from npm, the browser SDK the marketing-site test serves (tests/browser_site,
# pinned by its package-lock.json). Safe to run repeatedly: it installs only what is missing.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
SITE_DIR="$(cd "$(dirname "$0")/.." && pwd)/tests/browser_site"

install_site_sdk() {
    if [ -f "$SITE_DIR/node_modules/@segment/analytics-next/dist/umd/index.js" ] &&
        [ -f "$SITE_DIR/node_modules/@rudderstack/analytics-js/dist/npm/modern/bundled/esm/index.mjs" ]; then
        echo "browser SDKs: present in tests/browser_site"
        return
    fi
    if ! command -v npm >/dev/null 2>&1; then
        if ! command -v apt-get >/dev/null 2>&1; then
            echo "npm: missing and apt-get is not available; install Node.js and npm" >&2
            exit 1
        fi
        echo "npm: installing nodejs and npm with apt-get"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
    fi
    echo "browser SDKs: installing with npm ci into tests/browser_site"
    npm ci --prefix "$SITE_DIR" --no-audit --no-fund
}

install_site_sdk

if [ -x "$CHROMIUM" ]; then
    echo "chromium: present ($("$CHROMIUM" --version 2>/dev/null || echo unknown version))"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium: missing and apt-get is not available; install Chromium at $CHROMIUM" >&2
    exit 1
fi

echo "chromium: installing with apt-get"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
"$CHROMIUM" --version
