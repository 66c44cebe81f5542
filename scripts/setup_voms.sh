#!/usr/bin/env bash
# The VOMS client commands (voms-proxy-init, voms-proxy-info) for the NoVomsCredManager tests:
# Debian's voms-clients package, installed only when a command is missing. Idempotent.
# Needs root only when it has something to install.
set -euo pipefail

log() { echo "setup_voms: $*" >&2; }

if command -v voms-proxy-init >/dev/null 2>&1 && command -v voms-proxy-info >/dev/null 2>&1; then
    exit 0
fi
[ "$(id -u)" -eq 0 ] || { log "ERROR: voms-proxy-init/voms-proxy-info missing; run as root to install voms-clients"; exit 1; }
command -v apt-get >/dev/null 2>&1 || { log "ERROR: no apt-get: install the voms-clients package by hand"; exit 1; }
log "installing voms-clients"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q --no-install-recommends voms-clients >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends voms-clients >/dev/null
fi
command -v voms-proxy-init >/dev/null 2>&1 && command -v voms-proxy-info >/dev/null 2>&1 \
    || { log "ERROR: voms-clients installed but voms-proxy-init/voms-proxy-info not on PATH"; exit 1; }
log "voms-clients installed"
