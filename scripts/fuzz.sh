#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser of outside input (ADR 0020):
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# builds the libFuzzer binaries of fuzz/ (cargo-fuzz on the stable
# toolchain: RUSTC_BOOTSTRAP=1, no sanitizer, optimised with debug
# assertions and overflow checks), then runs each target (all of them
# unless named) for SECONDS_PER_TARGET seconds (default 30), one after
# the other, and prints per target the executions, executions per second,
# coverage and any crash. Exits non-zero when a target crashed (a panic, a
# timeout of FUZZ_TIMEOUT seconds on one input, or more than FUZZ_RSS_MB
# of memory).
#
# It installs what it needs when missing: cargo-fuzz (from crates.io) and a
# C++ compiler (Debian's g++, for libFuzzer itself).
#
# Each target starts from its committed seeds (fuzz/corpus/<target>/, never
# written to) plus what earlier runs found (<target dir>/corpus/<target>/,
# kept between runs). A crash input is written to fuzz/artifacts/<target>/;
# make it a regression test in the owning crate and add it to
# fuzz/corpus/<target>/ (replayed by `cargo nextest run -p floodgate-fuzz`).
#
# Environment: FUZZ_TARGET_DIR (default fuzz/target), FUZZ_TIMEOUT
# (seconds per input, default 10), FUZZ_RSS_MB (default 2048), FUZZ_NICE
# (default 10), FUZZ_JOBS (targets run at once, default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

log() { printf '\n==> %s\n' "$*"; }

seconds=${1:-30}
if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds < 1)); then
  echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
  exit 2
fi
shift || true

all_targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^floodgate-fuzz-targets$')
if (($#)); then
  targets=("$@")
  for target in "${targets[@]}"; do
    if ! grep -qx "$target" <<<"$all_targets"; then
      echo "unknown target $target (known: $(echo $all_targets))" >&2
      exit 2
    fi
  done
else
  mapfile -t targets <<<"$all_targets"
fi

target_dir=${FUZZ_TARGET_DIR:-$root/fuzz/target}
timeout=${FUZZ_TIMEOUT:-10}
rss_mb=${FUZZ_RSS_MB:-2048}
nice_level=${FUZZ_NICE:-10}
jobs=${FUZZ_JOBS:-1}

# libFuzzer is C++: libfuzzer-sys compiles it with the system's compiler.
if ! command -v c++ >/dev/null 2>&1; then
  log "installing g++ from Debian's packages"
  apt-get update -qq && apt-get install -y -qq --no-install-recommends g++
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

# cargo-fuzz passes -Z flags (sanitizer coverage options): on the one
# stable toolchain RUSTC_BOOTSTRAP=1 lets rustc accept them. No sanitizer:
# AddressSanitizer needs a nightly standard library built for it, and the
# workspace forbids unsafe code, so what is left to find is panics,
# overflows, hangs and memory growth, which libFuzzer sees without one.
log "building the fuzz targets (cargo fuzz build, stable toolchain)"
started=$(date +%s)
RUSTC_BOOTSTRAP=1 nice -n "$nice_level" cargo fuzz build -O --debug-assertions \
  --sanitizer none --target-dir "$target_dir"
echo "built in $(($(date +%s) - started)) s"

host=$(rustc -vV | sed -n 's/^host: //p')
bin_dir="$target_dir/$host/release"
mkdir -p "$target_dir/logs"

run_target() {
  local target=$1
  local work="$target_dir/corpus/$target"
  local artifacts="$root/fuzz/artifacts/$target"
  mkdir -p "$work" "$artifacts"
  # The first folder receives new inputs; the committed seeds are only read.
  local rc=0
  nice -n "$nice_level" "$bin_dir/$target" "$work" "fuzz/corpus/$target" \
    -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb="$rss_mb" \
    -artifact_prefix="$artifacts/" -print_final_stats=1 \
    >"$target_dir/logs/$target.log" 2>&1 || rc=$?
  echo "$rc" >"$target_dir/logs/$target.rc"
}

log "fuzzing ${#targets[@]} targets, ${seconds} s each, $jobs at a time"
running=0
for target in "${targets[@]}"; do
  rm -f "$target_dir/logs/$target.rc"
  run_target "$target" &
  running=$((running + 1))
  if ((running >= jobs)); then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

failed=()
printf '\n%-14s %12s %10s %8s %8s %8s  %s\n' target execs execs/s cov ft corpus result
for target in "${targets[@]}"; do
  file="$target_dir/logs/$target.log"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$file" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$file" | tail -1)
  last=$(grep -E '^#[0-9]+' "$file" | grep -E ' cov: ' | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9A-Za-z]*\).*/\1/p' <<<"$last")
  artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$file" | tail -1)
  rc=$(cat "$target_dir/logs/$target.rc" 2>/dev/null || echo missing)
  if [ "$rc" = 0 ] && [ -z "$artifact" ]; then
    result=clean
  else
    result="CRASH (exit $rc) ${artifact:-} — log: $file"
    failed+=("$target")
  fi
  printf '%-14s %12s %10s %8s %8s %8s  %s\n' "$target" "${execs:--}" "${rate:--}" \
    "${cov:--}" "${ft:--}" "${corp:--}" "$result"
done

if ((${#failed[@]})); then
  for target in "${failed[@]}"; do
    log "$target crashed; the end of its log:"
    grep -v -E '^#[0-9]+' "$target_dir/logs/$target.log" | tail -30
  done
  echo
  echo "crashed: ${failed[*]} (reproduce: $bin_dir/TARGET fuzz/artifacts/TARGET/crash-…)"
  exit 1
fi
echo
echo "every target ran clean"
