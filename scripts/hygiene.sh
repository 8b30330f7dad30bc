#!/usr/bin/env bash
# Manifest and dependency hygiene, run by scripts/test.sh (and usable alone):
#   1. every feature of every crate builds on its own (`cargo hack --each-feature`);
#   2. the minimum supported Rust version: no dependency in the lock file asks for a newer Rust
#      than the workspace's `rust-version` (clippy's `incompatible_msrv` lint, on in the clippy
#      step, catches standard-library APIs newer than it in our own code);
#   3. licenses, duplicate-version bans and sources (`cargo deny`, policy in deny.toml);
#   4. every library crate packages and builds as it would be published
#      (`cargo publish --workspace --dry-run`).
# The tools are installed once with `cargo install --locked` at pinned versions.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_HACK_VERSION=0.6.46
CARGO_DENY_VERSION=0.20.2

step() { printf '\n=== %s (hygiene, at %ss) ===\n' "$*" "$SECONDS"; }

# `cargo install` of a pinned version, skipped when that version is already installed.
ensure_tool() {
  local crate=$1 version=$2
  if "$crate" --version 2>/dev/null | grep -q " $version"; then
    return
  fi
  # Subcommands print as `cargo-hack 0.6.44`; `cargo hack --version` also works.
  if cargo "${crate#cargo-}" --version 2>/dev/null | grep -q " $version"; then
    return
  fi
  echo "hygiene.sh: installing $crate $version (once)"
  cargo install --locked --quiet "$crate" --version "$version"
}

ensure_tool cargo-hack "$CARGO_HACK_VERSION"
ensure_tool cargo-deny "$CARGO_DENY_VERSION"

step "each feature on its own (cargo hack)"
cargo hack check --workspace --each-feature --no-dev-deps --quiet

step "minimum supported Rust version"
cargo metadata --format-version 1 --locked --all-features --filter-platform "$(rustc -vV | sed -n 's/^host: //p')" |
  python3 -c '
import json, sys
meta = json.load(sys.stdin)
def v(s):
    return tuple(int(x) for x in (s.split(".") + ["0", "0"])[:3])
members = set(meta["workspace_members"])
ours = {p["rust_version"] for p in meta["packages"] if p["id"] in members}
if len(ours) != 1 or None in ours:
    sys.exit(f"every workspace crate must declare the one workspace rust-version, found {ours}")
msrv = ours.pop()
used = {n["id"] for n in meta["resolve"]["nodes"]}
newer = sorted("{} {} needs Rust {}".format(p["name"], p["version"], p["rust_version"])
               for p in meta["packages"]
               if p["id"] in used and p.get("rust_version") and v(p["rust_version"]) > v(msrv))
if newer:
    sys.exit("dependencies newer than our rust-version " + msrv + ":\n  " + "\n  ".join(newer))
print(f"rust-version {msrv}: all {len(used)} resolved packages declare it or older (or nothing)")
'

step "licenses, bans and sources (cargo deny)"
# Advisories are not checked here: their database is a git repository this machine's network
# cannot reach (see TESTING.md).
cargo deny --log-level error check licenses bans sources

step "packaging (cargo publish --dry-run)"
# The dry run builds our packages as registry crates (an overlay source unpacked into Cargo's
# registry cache, directory name starting with '-'), and Cargo takes a registry crate of the
# same version as unchanged: on a machine that ran it before, it would verify against stale
# copies. Drop the unpacked copies, the old packages and our crates' fingerprints (a fresh
# machine has none of them, so this costs CI nothing).
rm -rf target/package "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/faas-* \
  target/debug/.fingerprint/faas-*
cargo publish --workspace --dry-run --locked --quiet
