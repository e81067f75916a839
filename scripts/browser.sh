#!/usr/bin/env bash
# Make sure the browser the browser tests drive is installed: Debian's Chromium, from apt-get (as root).
# The tests launch it through Playwright's `executable_path`; Playwright's own browser download is never used
# (stores and CI may have no internet access beyond the package mirrors). Idempotent: does nothing when present.
set -euo pipefail

log() { printf 'browser: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    log "need root to run: $*"; return 1; fi
}

if command -v chromium >/dev/null 2>&1; then
  log "Chromium is installed ($(chromium --version 2>/dev/null || echo 'version unknown'))"
  exit 0
fi
log "installing Chromium"
as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# Fonts too: a page without them renders blank boxes in screenshots.
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
command -v chromium >/dev/null 2>&1 || { log "Chromium did not install"; exit 1; }
log "installed $(chromium --version 2>/dev/null || echo chromium)"
