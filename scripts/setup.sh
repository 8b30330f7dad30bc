#!/usr/bin/env bash
# Installs and starts what the tests need, idempotently, on a fresh machine.
# Tools: Rust (present on the machine), Node.js + npm, Python 3, and the e2e test's npm
# packages. Services are started by scripts/services/*.sh (called from scripts/test.sh, which
# exports their URLs for the tests).
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }

apt_updated=0
apt_install() {
  if ! need apt-get; then echo "missing $* and no apt-get" >&2; exit 1; fi
  if [ "$apt_updated" = 0 ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

need cargo || { echo "cargo (Rust toolchain) is required" >&2; exit 1; }
need python3 || apt_install python3
need node || apt_install nodejs
need npm || apt_install npm
# The process executor's sandbox: bubblewrap (namespaces, read-only root) and setpriv
# (util-linux; switching to an unprivileged uid when the platform runs as root).
need bwrap || apt_install bubblewrap
need setpriv || apt_install util-linux

# The openwhisk npm client for the end-to-end tests (versions pinned by package-lock.json).
if [ ! -d tests/e2e/node_modules/openwhisk ]; then
  npm ci --prefix tests/e2e --no-audit --no-fund
fi
echo "setup: cargo $(cargo --version | cut -d' ' -f2), node $(node --version), python $(python3 --version | cut -d' ' -f2), $(bwrap --version)"
