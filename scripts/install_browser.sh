#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium for the WebChat browser tests, only if it is
# missing. Needs root (CI runs as root with no stdin); prints the browser's path on its last line.
# Playwright drives this browser through `executable_path`; `playwright install` is never used
# (the machines that run DuckLM's tests may have no internet beyond the Debian mirror).
set -euo pipefail

find_chromium() {
  command -v chromium || command -v chromium-browser || true
}

browser="$(find_chromium)"
if [[ -z "$browser" ]]; then
  if [[ "$(id -u)" != "0" ]]; then
    echo "chromium is missing and this script needs root to install it (apt-get install chromium)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq </dev/null >&2
  apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core </dev/null >&2
  browser="$(find_chromium)"
fi
if [[ -z "$browser" ]]; then
  echo "chromium could not be installed" >&2
  exit 1
fi
echo "$browser"
