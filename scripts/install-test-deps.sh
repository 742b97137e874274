#!/usr/bin/env bash
# Test dependencies that pip cannot install: Debian's Chromium for the dashboard's browser
# test (Playwright drives it through executable_path; Playwright's own browser downloads
# are never used). Safe to run repeatedly: it installs only what is missing.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    echo "chromium: present ($("$CHROMIUM" --version 2>/dev/null || echo unknown version))"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium: missing and apt-get is not available; install Chromium at $CHROMIUM" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

echo "chromium: installing with apt-get"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
"$CHROMIUM" --version
