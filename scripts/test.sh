#!/usr/bin/env bash
# Runs every check and test of the workspace, installing what it needs on a
# fresh Debian machine: cargo-nextest if missing, then rustfmt, clippy
# (warnings denied), the catalog drift check, and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

# Debian packages the tests use: redis-server for the Redis store's tests
# and benchmark (they start their own servers on loopback ports).
need_apt=()
if ! command -v redis-server >/dev/null 2>&1; then
  need_apt+=(redis-server)
fi
if ((${#need_apt[@]})); then
  log "installing ${need_apt[*]} from Debian's packages"
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install --locked cargo-nextest
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy (warnings denied)"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "catalog drift"
cargo run --quiet --locked -p floodgate -- catalog --check

log "doc tests"
cargo test --workspace --doc --locked --quiet

# Last, so its summary line closes the output.
log "tests"
cargo nextest run --workspace --locked --no-fail-fast
