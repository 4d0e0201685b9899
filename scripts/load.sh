#!/usr/bin/env bash
# Load test: h2load against the gRPC API and wrk against the HTTP API of a
# release build serving scripts/bench/limits.yaml on loopback, beside a
# baseline measured in the same run: a plain tonic server answering the same
# RPC with a constant OK (examples/tonic_baseline.rs), i.e. the generic gRPC
# stack with no rate limiting at all.
#
# Usage: scripts/load.sh [SECONDS]      (default 10 s per run)
# Installs h2load (nghttp2-client) and wrk from Debian's packages if missing.
# Bounded: every run has a fixed duration and targets 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
out=${BENCH_OUT:-bench-out}
mkdir -p "$out"

missing=()
command -v h2load >/dev/null 2>&1 || missing+=(nghttp2-client)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if ((${#missing[@]})); then
  apt-get update -qq && apt-get install -y -qq "${missing[@]}"
fi

cargo build --release --quiet -p floodgate --bin floodgate
cargo build --release --quiet -p floodgate-service --example tonic_baseline
# Where cargo put them: CARGO_TARGET_DIR when set, else ./target.
target_dir=${CARGO_TARGET_DIR:-target}
bin=$target_dir/release/floodgate
baseline=$target_dir/release/examples/tonic_baseline

# One framed RateLimitRequest: domain "bench", descriptor [("tenant", "t1")].
python3 - "$out/request.bin" <<'PY'
import struct, sys
def field(tag, payload):
    return bytes([tag << 3 | 2, len(payload)]) + payload
entry = field(1, b"tenant") + field(2, b"t1")
descriptor = field(1, entry)
message = field(1, b"bench") + field(2, descriptor)
open(sys.argv[1], "wb").write(b"\0" + struct.pack(">I", len(message)) + message)
PY
cat > "$out/check.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"domain":"bench","descriptors":[{"entries":[{"key":"tenant","value":"t1"}]}]}'
wrk.headers["Content-Type"] = "application/json"
LUA

cpu_seconds() { # utime + stime of a process, in seconds
  awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"
}

wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "port $1 did not open" >&2
  return 1
}

path=/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit
h2() { # h2load -c 4 -m 16 -t 1: 64 concurrent streams, one descriptor per request
  h2load -c 4 -m 16 -t 1 -D "$duration" -d "$out/request.bin" \
    -H 'content-type: application/grpc' -H 'te: trailers' "http://127.0.0.1:$1$path"
}

report_h2() { # name, log, pid, cpu_before
  local rps mean max cpu requests
  rps=$(awk '/^finished in/ {print $4}' "$2")
  mean=$(awk '/^time for request:/ {print $6}' "$2")
  max=$(awk '/^time for request:/ {print $5}' "$2")
  requests=$(awk '/^requests:/ {print $8}' "$2")
  cpu=$(echo "$(cpu_seconds "$3") - $4" | bc -l)
  printf '%-28s %12s req/s  mean %-9s max %-9s  %s µs CPU/request (%s succeeded)\n' \
    "$1" "$rps" "$mean" "$max" "$(echo "scale=2; $cpu * 1000000 / $requests" | bc -l)" "$requests"
}

echo "== gRPC: h2load -c 4 -m 16 -t 1, ${duration}s each =="
"$baseline" 127.0.0.1:18081 & base_pid=$!
wait_port 18081
before=$(cpu_seconds $base_pid)
h2 18081 > "$out/h2load-baseline.txt"
report_h2 "tonic constant-OK baseline" "$out/h2load-baseline.txt" $base_pid "$before"
kill $base_pid; wait $base_pid 2>/dev/null || true

"$bin" serve --config scripts/bench/limits.yaml --grpc-addr 127.0.0.1:18082 --http-addr 127.0.0.1:18083 >"$out/serve.log" 2>&1 & fg_pid=$!
trap 'kill $fg_pid 2>/dev/null || true' EXIT
wait_port 18082; wait_port 18083
before=$(cpu_seconds $fg_pid)
h2 18082 > "$out/h2load-floodgate.txt"
report_h2 "floodgate (memory store)" "$out/h2load-floodgate.txt" $fg_pid "$before"
base_rps=$(awk '/^finished in/ {print $4}' "$out/h2load-baseline.txt")
fg_rps=$(awk '/^finished in/ {print $4}' "$out/h2load-floodgate.txt")
printf 'ratio floodgate / baseline: %.2f\n' "$(echo "$fg_rps / $base_rps" | bc -l)"

echo
echo "== HTTP: wrk -t 1 -c 16 --latency, ${duration}s =="
wrk -t 1 -c 16 -d "${duration}s" --latency -s "$out/check.lua" http://127.0.0.1:18083/v1/check > "$out/wrk-floodgate.txt"
grep -E 'Requests/sec|Latency  |50%|90%|99%' "$out/wrk-floodgate.txt"

# ---- Redis mode: the same runs with counters in a local redis-server ----
# A redis-server on a free loopback port (no persistence), and a second
# floodgate serving the same config with --backend redis://…, measured
# beside the memory store above in this same run.
command -v redis-server >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq redis-server; }
kill $fg_pid 2>/dev/null || true; wait $fg_pid 2>/dev/null || true
redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
  >"$out/redis.log" 2>&1 & redis_pid=$!
"$bin" serve --config scripts/bench/limits.yaml --grpc-addr 127.0.0.1:18084 --http-addr 127.0.0.1:18085 \
  --backend "redis://127.0.0.1:$redis_port" >"$out/serve-redis.log" 2>&1 & fg_redis_pid=$!
trap 'kill $fg_pid $fg_redis_pid $redis_pid 2>/dev/null || true' EXIT
wait_port "$redis_port"; wait_port 18084; wait_port 18085
echo
echo "== gRPC, Redis store (redis-server on 127.0.0.1:$redis_port): h2load -c 4 -m 16 -t 1, ${duration}s =="
before=$(cpu_seconds $fg_redis_pid)
h2 18084 > "$out/h2load-redis.txt"
report_h2 "floodgate (Redis store)" "$out/h2load-redis.txt" $fg_redis_pid "$before"
echo
echo "== HTTP, Redis store: wrk -t 1 -c 16 --latency, ${duration}s =="
wrk -t 1 -c 16 -d "${duration}s" --latency -s "$out/check.lua" http://127.0.0.1:18085/v1/check > "$out/wrk-redis.txt"
grep -E 'Requests/sec|Latency  |50%|90%|99%' "$out/wrk-redis.txt"
if grep -q 'floodgate_backend_fallback_decisions_total{policy="fail_open"} [1-9]' \
  <(curl -s http://127.0.0.1:18085/metrics 2>/dev/null || true); then
  echo "WARNING: some Redis-mode decisions fell back (Redis timed out): see /metrics" >&2
fi

echo
printf '%-26s %14s %14s %12s\n' "summary (same run)" "gRPC req/s" "HTTP req/s" "HTTP p99"
for name in memory:floodgate redis:redis; do
  label=${name%%:*}; file=${name##*:}
  printf '%-26s %14s %14s %12s\n' "$label store" \
    "$(awk '/^finished in/ {print $4}' "$out/h2load-$file.txt")" \
    "$(awk '/^Requests\/sec/ {print $2}' "$out/wrk-$file.txt")" \
    "$(awk '$1 == "99%" {print $2}' "$out/wrk-$file.txt")"
done
echo
echo "raw outputs in $out/"
