#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need (idempotently),
# then runs lints, unit/conformance/API tests, the runner protocol tests and the end-to-end
# tests that drive the real faas-platform binary with the `openwhisk` npm client.
#
# Usage: scripts/test.sh            (from the repository root or anywhere)
# Every test that needs a service runs with FAAS_REQUIRE_SERVICES=1: a missing service fails
# the run instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

step() { printf '\n=== %s (at %ss) ===\n' "$*" "$SECONDS"; }

step "tools and services"
"$root/scripts/setup.sh"
# Each service script installs and starts its service idempotently and prints its URL last.
FAAS_TEST_COUCHDB_URL=$("$root/scripts/services/couchdb.sh" start | tail -n 1)
export FAAS_TEST_COUCHDB_URL
echo "CouchDB-API server: $FAAS_TEST_COUCHDB_URL"
# Docker engine (Debian's docker.io, dockerd in the background) and the runtime images, built
# locally from faas-exec/runtimes/docker (no registry needed; cached and skipped when current).
"$root/scripts/services/docker.sh" start
"$root/scripts/services/docker.sh" images
# Kafka-API broker (tansu, built once into /var/cache/faas/tansu and reused).
FAAS_TEST_KAFKA_BROKERS=$("$root/scripts/services/kafka.sh" start | tail -n 1)
export FAAS_TEST_KAFKA_BROKERS
echo "Kafka-API broker: $FAAS_TEST_KAFKA_BROKERS"

export FAAS_REQUIRE_SERVICES=1
export CARGO_TERM_COLOR=never

step "format"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "docs"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps --quiet

# Every feature on its own, the MSRV of the dependencies, licenses and sources, packaging.
"$root/scripts/hygiene.sh"

step "build"
cargo build --workspace --all-features --bins

step "runner protocol tests (Node.js and Python runners)"
python3 faas-exec/runtimes/test_runners.py

step "unit, conformance and API tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-features --no-fail-fast
  cargo test --workspace --all-features --doc
else
  cargo test --workspace --all-features --no-fail-fast
fi

# --- SDK examples (faas-platform/examples): each starts its own in-memory platform, checks
# what it shows and exits 0 on its own (README, "Build your own platform"). ---
run_examples() {
  local example
  for example in embedded custom-store custom-executor tower-layer; do
    step "example: $example"
    timeout 120 cargo run --quiet -p faas-platform --all-features --example "$example"
  done
}
run_examples
# --- end of SDK examples ---

step "end-to-end tests (faas-platform + openwhisk npm client)"
FAAS_PLATFORM_BIN="$root/target/debug/faas-platform" npm test --prefix tests/e2e

step "all tests passed"
