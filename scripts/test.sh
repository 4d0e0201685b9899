#!/usr/bin/env bash
# Runs every check and test of the workspace, installing what it needs on a
# fresh Debian machine (Debian packages, the Python `mcp` package,
# cargo-nextest) if missing, then rustfmt, clippy
# (warnings denied), the catalog drift check, and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

# Debian packages the tests use: redis-server for the Redis store's tests
# and benchmark, prometheus for the harness's Prometheus test (both start
# their own servers on loopback ports; neither needs the system service).
need_apt=()
if ! command -v redis-server >/dev/null 2>&1; then
  need_apt+=(redis-server)
fi
if ! command -v prometheus >/dev/null 2>&1 && [ ! -x /usr/bin/prometheus ]; then
  need_apt+=(prometheus)
fi
# python3 and pip for the Python `mcp` package below.
if ! command -v python3 >/dev/null 2>&1; then
  need_apt+=(python3 python3-pip)
elif ! python3 -m pip --version >/dev/null 2>&1; then
  need_apt+=(python3-pip)
fi
if ((${#need_apt[@]})); then
  log "installing ${need_apt[*]} from Debian's packages"
  # Keep the packages' services from starting: policy-rc.d (when none is
  # set already) tells invoke-rc.d to start nothing during the install.
  policy=/usr/sbin/policy-rc.d
  own_policy=false
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=true
  fi
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
  if $own_policy; then rm -f "$policy"; fi
  # If a service started anyway (systemd as init ignores policy-rc.d), stop
  # it: the tests run their own prometheus, and nothing should stay behind.
  if [[ " ${need_apt[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null 2>&1 \
    && systemctl is-active --quiet prometheus 2>/dev/null; then
    systemctl stop prometheus && systemctl disable --quiet prometheus
  fi
fi

# The official MCP SDK for Python: crates/cli/tests/mcp_e2e.rs drives
# `floodgate mcp` and the harness's /mcp with it (and fails without it).
# Debian's python3 is externally managed (PEP 668): pip then needs
# --break-system-packages to install into it.
if ! python3 -c 'import mcp' >/dev/null 2>&1; then
  log "installing the Python mcp package"
  pip_flags=(--quiet --disable-pip-version-check --root-user-action=ignore)
  if python3 -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'; then
    pip_flags+=(--break-system-packages)
  fi
  python3 -m pip install "${pip_flags[@]}" 'mcp>=1.0,<3'
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install --locked cargo-nextest
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true

# Incremental compilation keeps a second copy of every workspace crate's
# intermediate state, which a one-shot run never reuses: off unless asked
# for, to keep the build's footprint on disk small (ADR 0013).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy (warnings denied)"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "catalog drift"
cargo run --quiet --locked -p floodgate -- catalog --check

log "doc tests"
cargo test --workspace --doc --locked --quiet

# Last, so its summary line closes the output. It includes the fuzz
# targets' committed corpora, replayed by `floodgate-fuzz`'s tests; the
# coverage-guided run (scripts/fuzz.sh) does not fit CI's time: a cold
# build of the libFuzzer binaries alone takes longer than CI has left
# (ADR 0020).
log "tests"
cargo nextest run --workspace --locked --no-fail-fast
