#!/usr/bin/env bash
# A new client's check latency while 4,096 idle connections are held open
# on each listener (ADR 0019), beside the same client's latency with none,
# measured in the same run against one release build serving
# scripts/bench/limits.yaml on loopback.
#
# Each measurement is one new h2load client (-c 1 -m 1) sending N gRPC
# checks, one at a time; the p50/p99/max come from h2load's per-request log.
# Then a plain HTTP/1.1 client's /v1/check (curl, 200 times) likewise.
#
# Usage: scripts/idle-load.sh [N]     (default 20000 checks per measurement)
# Installs h2load (nghttp2-client) from Debian's packages if missing.
# Bounded: fixed request counts, 127.0.0.1 only, 4,096 idle connections.
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-20000}
idle=4096
out=${BENCH_OUT:-bench-out}
mkdir -p "$out"
command -v h2load >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq nghttp2-client; }
# The release build of this checkout, in CARGO_TARGET_DIR when set.
nice -n 10 cargo build --release --quiet -p floodgate --bin floodgate
bin=${CARGO_TARGET_DIR:-target}/release/floodgate

python3 - "$out/request.bin" <<'PY'
import struct, sys
def field(tag, payload):
    return bytes([tag << 3 | 2, len(payload)]) + payload
entry = field(1, b"tenant") + field(2, b"t1")
message = field(1, b"bench") + field(2, field(1, entry))
open(sys.argv[1], "wb").write(b"\0" + struct.pack(">I", len(message)) + message)
PY

grpc_port=18091 http_port=18090
# The idle connections stay idle for the whole run: the idle and handshake
# timeouts are set past it.
"$bin" serve --config scripts/bench/limits.yaml --grpc-addr 127.0.0.1:$grpc_port \
  --http-addr 127.0.0.1:$http_port --idle-timeout 10m --handshake-timeout 10m \
  > "$out/idle-serve.log" 2>&1 &
serve_pid=$!
holder_pid=
trap 'kill $serve_pid ${holder_pid:-} 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$http_port") 2>/dev/null && break
  sleep 0.1
done

path=/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit
measure() { # label
  local log="$out/idle-$1.tsv"
  h2load -c 1 -m 1 -t 1 -n "$requests" -d "$out/request.bin" --log-file="$log" \
    -H 'content-type: application/grpc' -H 'te: trailers' \
    "http://127.0.0.1:$grpc_port$path" > "$out/idle-$1.txt"
  # Column 3 of h2load's log: the request's duration in microseconds.
  sort -n -k3 "$log" | awk -v label="$1" '{ d[NR] = $3 } END {
    printf "%-34s gRPC  p50 %6d µs  p99 %6d µs  max %6d µs  (%d checks)\n",
      label, d[int(NR * 0.50)], d[int(NR * 0.99)], d[NR], NR }'
  local times="$out/idle-$1-http.txt"
  : > "$times"
  for _ in $(seq 1 200); do
    curl -s -o /dev/null -w '%{time_total}\n' -H 'content-type: application/json' \
      -d '{"domain":"bench","descriptors":[{"entries":[{"key":"tenant","value":"t1"}]}]}' \
      "http://127.0.0.1:$http_port/v1/check" >> "$times"
  done
  sort -n "$times" | awk -v label="$1" '{ d[NR] = $1 * 1000000 } END {
    printf "%-34s HTTP  p50 %6d µs  p99 %6d µs  max %6d µs  (%d checks, a new connection each)\n",
      label, d[int(NR * 0.50)], d[int(NR * 0.99)], d[NR], NR }'
}

echo "== a new client's check latency (release build) =="
measure "baseline (no idle connections)"
# Hold $idle idle connections open on each listener.
python3 - $grpc_port $http_port $idle <<'PY' &
import socket, sys, time
grpc, http, count = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
held = [socket.create_connection(("127.0.0.1", port)) for port in (grpc, http) for _ in range(count)]
print(f"holding {len(held)} idle connections", flush=True)
time.sleep(600)
PY
holder_pid=$!
# Until both listeners hold them (the holder opens gRPC's first, so
# waiting on gRPC alone measured HTTP with only part of them open).
for _ in $(seq 1 600); do
  metrics=$(curl -s "http://127.0.0.1:$http_port/metrics")
  grpc_open=$(awk '/^floodgate_connections_open\{listener="grpc"\}/ {print $2}' <<< "$metrics")
  http_open=$(awk '/^floodgate_connections_open\{listener="http"\}/ {print $2}' <<< "$metrics")
  [ "${grpc_open:-0}" -ge "$idle" ] && [ "${http_open:-0}" -ge "$idle" ] && break
  sleep 0.1
done
measure "with $idle idle connections each"
curl -s "http://127.0.0.1:$http_port/metrics" | grep -E '^floodgate_(connections|accept)'
