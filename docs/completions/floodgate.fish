# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_floodgate_global_optspecs
    string join \n h/help V/version
end

function __fish_floodgate_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_floodgate_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_floodgate_using_subcommand
    set -l cmd (__fish_floodgate_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c floodgate -n "__fish_floodgate_needs_command" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_needs_command" -s V -l version -d 'Print version'
complete -c floodgate -n "__fish_floodgate_needs_command" -f -a "serve" -d 'Serve the rate-limit service: Envoy RLS v3 over gRPC and the HTTP API'
complete -c floodgate -n "__fish_floodgate_needs_command" -f -a "config" -d 'Work with rate-limit config files'
complete -c floodgate -n "__fish_floodgate_needs_command" -f -a "catalog" -d 'Generate the catalog docs (docs/catalog/), the CLI reference (docs/cli.md and the README\'s command table), the man pages (docs/man/), the shell completions (docs/completions/) and the Grafana dashboard from the code'
complete -c floodgate -n "__fish_floodgate_needs_command" -f -a "completions" -d 'Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell) to stdout'
complete -c floodgate -n "__fish_floodgate_needs_command" -f -a "ctl" -d 'Operate a running service through its HTTP API (state, actions, events, config), with a bearer token from an environment variable'
complete -c floodgate -n "__fish_floodgate_needs_command" -f -a "harness" -d 'Run the harness: observe services, judge them against objectives, file tickets; serves the harness HTTP API'
complete -c floodgate -n "__fish_floodgate_needs_command" -f -a "ticket" -d 'File and manage tickets through a running harness\'s HTTP API'
complete -c floodgate -n "__fish_floodgate_needs_command" -f -a "notice" -d 'Announce expected changes (a launch, a migration) through a running harness\'s HTTP API, so the anomalies they cause do not page'
complete -c floodgate -n "__fish_floodgate_needs_command" -f -a "revert" -d 'Undo a change an agent made (a proposal id, `P-0003`): its recorded inverses run through the same pipeline as a new, recorded proposal'
complete -c floodgate -n "__fish_floodgate_needs_command" -f -a "ledger" -d 'Check the harness\'s hash-chained ledger'
complete -c floodgate -n "__fish_floodgate_needs_command" -f -a "report" -d 'Write the human review of a harness\'s data directory (report.md and report.html): tickets, SLO budgets, expected-change notices, changes, findings, what waits on a human'
complete -c floodgate -n "__fish_floodgate_needs_command" -f -a "mcp" -d 'Serve the agent tool catalog over MCP on stdin/stdout, calling a running harness (for Claude Desktop and other MCP clients)'
complete -c floodgate -n "__fish_floodgate_needs_command" -f -a "agent" -d 'Run an agent that claims tickets from a harness and works them'
complete -c floodgate -n "__fish_floodgate_needs_command" -f -a "trajectory" -d 'Trajectories of a harness\'s data directory: list, show, export'
complete -c floodgate -n "__fish_floodgate_needs_command" -f -a "reflect" -d 'Ask a running harness to reflect now: repeated fixes, oscillation, non-convergence, repeated escalations, changes overridden from outside'
complete -c floodgate -n "__fish_floodgate_needs_command" -f -a "demo" -d 'The whole loop in one command: a service, the harness, the runbook agent and a workload; a fault, the ticket, the pipeline, the fix'
complete -c floodgate -n "__fish_floodgate_needs_command" -f -a "scenarios" -d 'Fault scenarios in simulated time: run a suite, judge every run against its oracle, write the figures'
complete -c floodgate -n "__fish_floodgate_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c floodgate -n "__fish_floodgate_using_subcommand serve" -l config -d 'Rate-limit config files (envoyproxy/ratelimit YAML); repeat for several domains' -r -F
complete -c floodgate -n "__fish_floodgate_using_subcommand serve" -l grpc-addr -d 'Where Envoy\'s ShouldRateLimit is served (gRPC, HTTP/2 prior knowledge)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand serve" -l http-addr -d 'Where the HTTP API (/v1/check, /metrics, /v1/health) is served' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand serve" -l max-keys -d 'The most counter keys held in memory; past it the store evicts expired keys first, then the least recently used' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand serve" -l worker-threads -d 'Threads serving requests (default: one per core)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand serve" -l tokens-file -d 'Bearer tokens for the HTTP API: one `SCOPE NAME TOKEN` per line (scopes: read, check, operate, admin; `#` comments). More come from the environment variable FLOODGATE_TOKENS (`scope:name:token,...`; never a flag, so tokens stay out of process listings). With tokens every HTTP call needs one; without any the service binds loopback only' -r -F
complete -c floodgate -n "__fish_floodgate_using_subcommand serve" -l events-file -d 'Also append every event to this JSONL file (rotated to FILE.1 at 64 MiB, so the two never hold more than 128 MiB)' -r -F
complete -c floodgate -n "__fish_floodgate_using_subcommand serve" -l traffic-capacity -d 'Check requests kept in the traffic ring (GET /v1/traffic; dry runs of config changes replay it); 0 records nothing. At most 10,000,000' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand serve" -l backend -d 'The counter store: `memory` (in process, the default), a Redis URL `redis://HOST:PORT[/DB]` shared by every instance pointing at it, or a Redis Cluster `redis+cluster://HOST:PORT[,HOST:PORT…]`' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand serve" -l redis-pool-size -d 'Redis: multiplexed connections, used round robin (1 to 64)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand serve" -l redis-connect-timeout -d 'Redis: the bound on one connection attempt (e.g. 1s, 500ms)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand serve" -l redis-command-timeout -d 'Redis: the bound on one decision\'s round trip or one health probe; past it the failure policy decides (e.g. 50ms)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand serve" -l redis-key-prefix -d 'Redis: the prefix of every key name (no braces). Instances that must share limits use the same prefix' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand serve" -l failure-policy -d 'What decides while Redis is down or timing out: fail_open (admit every request), fail_closed (reject every request that consumes) or local_fallback (decide in memory with --local-share of each limit). Switchable at run time with the set_failure_policy action' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand serve" -l local-share -d 'Under local_fallback, the share of each limit\'s quota this instance takes (rounded down, at least 1): set it to 1 / the number of instances so that together they stay near the global limit' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand serve" -l max-connections -d 'Open connections per listener (default 4096); at the cap the longest-idle connection is closed to make room' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand serve" -l handshake-timeout -d 'From accept to the first request\'s headers (default 10s): the HTTP/2 preface and SETTINGS included' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand serve" -l header-read-timeout -d 'An HTTP/1 request\'s headers (default 10s)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand serve" -l body-read-timeout -d 'A request\'s body, from its headers (default 30s); past it the answer is 408 and the connection is closed' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand serve" -l idle-timeout -d 'A connection with no request in flight is closed after this long (default 60s)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand serve" -l allowed-host -d 'Without tokens, a Host (and Origin) accepted besides the bound address and `localhost`: `NAME` (any port) or `NAME:PORT`; repeat for several' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand serve" -l ready-file -d 'Once every listener is bound, write each one\'s name and bound address to this file as JSON (`{"pid": …, "listeners": [{"name": "http", "address": "127.0.0.1:40512"}, …]}`), through a temporary file renamed over it. With port 0 in an address (`127.0.0.1:0`) the system picks a free port: this file says which' -r -F
complete -c floodgate -n "__fish_floodgate_using_subcommand serve" -l x-ratelimit-headers -d 'Also send X-RateLimit-Limit/Remaining/Reset headers'
complete -c floodgate -n "__fish_floodgate_using_subcommand serve" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand config; and not __fish_seen_subcommand_from check help" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand config; and not __fish_seen_subcommand_from check help" -f -a "check" -d 'Validate config files without serving; exits non-zero on the first bad file, printing what is wrong and where'
complete -c floodgate -n "__fish_floodgate_using_subcommand config; and not __fish_seen_subcommand_from check help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c floodgate -n "__fish_floodgate_using_subcommand config; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "check" -d 'Validate config files without serving; exits non-zero on the first bad file, printing what is wrong and where'
complete -c floodgate -n "__fish_floodgate_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c floodgate -n "__fish_floodgate_using_subcommand catalog" -l root -d 'The repository root' -r -F
complete -c floodgate -n "__fish_floodgate_using_subcommand catalog" -l write -d 'Write the generated files (default: print what would change)'
complete -c floodgate -n "__fish_floodgate_using_subcommand catalog" -l check -d 'Exit non-zero when a committed file differs from the code'
complete -c floodgate -n "__fish_floodgate_using_subcommand catalog" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand completions" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and not __fish_seen_subcommand_from state actions run events config help" -l url -d 'The service\'s HTTP API' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and not __fish_seen_subcommand_from state actions run events config help" -l token-env -d 'The environment variable holding the bearer token (unset or empty: no token)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and not __fish_seen_subcommand_from state actions run events config help" -l json -d 'Print the service\'s raw JSON instead of text'
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and not __fish_seen_subcommand_from state actions run events config help" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and not __fish_seen_subcommand_from state actions run events config help" -f -a "state" -d 'Everything the service knows (GET /v1/state)'
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and not __fish_seen_subcommand_from state actions run events config help" -f -a "actions" -d 'The action catalog (GET /v1/actions)'
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and not __fish_seen_subcommand_from state actions run events config help" -f -a "run" -d 'Run an action (POST /v1/actions/{ACTION})'
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and not __fish_seen_subcommand_from state actions run events config help" -f -a "events" -d 'Events, paged or followed (GET /v1/events)'
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and not __fish_seen_subcommand_from state actions run events config help" -f -a "config" -d 'The config: show, versions, diff, apply, rollback'
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and not __fish_seen_subcommand_from state actions run events config help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from state" -l url -d 'The service\'s HTTP API' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from state" -l token-env -d 'The environment variable holding the bearer token (unset or empty: no token)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from state" -l json -d 'Print the service\'s raw JSON instead of text'
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from state" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from actions" -l url -d 'The service\'s HTTP API' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from actions" -l token-env -d 'The environment variable holding the bearer token (unset or empty: no token)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from actions" -l json -d 'Print the service\'s raw JSON instead of text'
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from actions" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from run" -l param -d 'A parameter: the value parses as JSON when it can, else it is a string; dots in the key nest (`limit.domain=api`). Repeatable' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from run" -l params-json -d 'Parameters as a JSON object; `--param`s are applied on top' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from run" -l reason -d 'Why (recorded in the event and the config history)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from run" -l actor -d 'Who asks (default: the token\'s name)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from run" -l expect-version -d 'Only if the config is still at this version (`ctl state` shows it): a config that moved is refused (409 config_moved), not overwritten' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from run" -l url -d 'The service\'s HTTP API' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from run" -l token-env -d 'The environment variable holding the bearer token (unset or empty: no token)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from run" -l dry-run -d 'Preview only: report what would change, change nothing'
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from run" -l json -d 'Print the service\'s raw JSON instead of text'
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from run" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from events" -l after -d 'Only events after this sequence number' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from events" -l type -d 'Only events of this type (repeatable; see docs/catalog/events.md)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from events" -l limit -d 'At most this many per page' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from events" -l url -d 'The service\'s HTTP API' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from events" -l token-env -d 'The environment variable holding the bearer token (unset or empty: no token)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from events" -l follow -d 'Keep printing new events until interrupted'
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from events" -l json -d 'Print the service\'s raw JSON instead of text'
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from events" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from config" -l url -d 'The service\'s HTTP API' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from config" -l token-env -d 'The environment variable holding the bearer token (unset or empty: no token)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from config" -l json -d 'Print the service\'s raw JSON instead of text'
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from config" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from config" -f -a "show" -d 'The current config (YAML) with its version and hash'
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from config" -f -a "versions" -d 'The config history, newest first'
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from config" -f -a "diff" -d 'What applying FILE would change (a dry-run apply)'
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from config" -f -a "apply" -d 'Apply FILE as the whole config'
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from config" -f -a "rollback" -d 'Make VERSION current again (as a new version)'
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from config" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "state" -d 'Everything the service knows (GET /v1/state)'
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "actions" -d 'The action catalog (GET /v1/actions)'
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "run" -d 'Run an action (POST /v1/actions/{ACTION})'
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "events" -d 'Events, paged or followed (GET /v1/events)'
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "config" -d 'The config: show, versions, diff, apply, rollback'
complete -c floodgate -n "__fish_floodgate_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c floodgate -n "__fish_floodgate_using_subcommand harness" -l service -d 'A service\'s HTTP API (repeat for several). Its `/metrics`, `/v1/health`, `/v1/state` and `/v1/events` are read every interval' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand harness" -l objectives -d 'Objectives files (compact YAML and/or OpenSLO v1); repeat for several' -r -F
complete -c floodgate -n "__fish_floodgate_using_subcommand harness" -l data -d 'The data directory (the SQLite ticket queue and its ledger)' -r -F
complete -c floodgate -n "__fish_floodgate_using_subcommand harness" -l http-addr -d 'Where the harness HTTP API is served (a non-loopback address only with --tokens-file)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand harness" -l tokens-file -d 'Bearer tokens for the harness API: one `SCOPE NAME TOKEN` per line (the service\'s format; scopes: read, operate, admin, intake; `#` comments). With tokens every call needs one; without, the API binds loopback only' -r -F
complete -c floodgate -n "__fish_floodgate_using_subcommand harness" -l max-connections -d 'Open connections per listener (default 4096); at the cap the longest-idle connection is closed to make room' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand harness" -l handshake-timeout -d 'From accept to the first request\'s headers (default 10s): the HTTP/2 preface and SETTINGS included' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand harness" -l header-read-timeout -d 'An HTTP/1 request\'s headers (default 10s)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand harness" -l body-read-timeout -d 'A request\'s body, from its headers (default 30s); past it the answer is 408 and the connection is closed' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand harness" -l idle-timeout -d 'A connection with no request in flight is closed after this long (default 60s)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand harness" -l allowed-host -d 'Without tokens, a Host (and Origin) accepted besides the bound address and `localhost`: `NAME` (any port) or `NAME:PORT`; repeat for several' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand harness" -l ready-file -d 'Once every listener is bound, write each one\'s name and bound address to this file as JSON (`{"pid": …, "listeners": [{"name": "http", "address": "127.0.0.1:40512"}, …]}`), through a temporary file renamed over it. With port 0 in an address (`127.0.0.1:0`) the system picks a free port: this file says which' -r -F
complete -c floodgate -n "__fish_floodgate_using_subcommand harness" -l interval -d 'How often services are observed (1s … 5m)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand harness" -l token-env -d 'The environment variable holding the bearer token sent to services (unset or empty: none)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand harness" -l prometheus -d 'Read the series from this Prometheus server\'s query API instead of scraping `/metrics` (services still answer health, state, events)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand harness" -l prometheus-match -d 'The series selector asked of Prometheus' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand harness" -l policy -d 'The pipeline policy: approval gates, freeze windows, budgets, canary and verification (see examples/policy.yaml; default: the documented defaults)' -r -F
complete -c floodgate -n "__fish_floodgate_using_subcommand harness" -l reflection -d 'Reflection\'s thresholds (repeated fixes, escalation, flapping, non-convergence, repeated escalations; ADR 0009). Default: the documented defaults' -r -F
complete -c floodgate -n "__fish_floodgate_using_subcommand harness" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and not __fish_seen_subcommand_from create list show comment approve reject pause resume pipeline incidents link cancel help" -l harness -d 'The harness HTTP API' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and not __fish_seen_subcommand_from create list show comment approve reject pause resume pipeline incidents link cancel help" -l token-env -d 'The environment variable holding the bearer token sent to the harness (unset or empty: none)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and not __fish_seen_subcommand_from create list show comment approve reject pause resume pipeline incidents link cancel help" -l json -d 'Print the harness\'s raw JSON instead of text'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and not __fish_seen_subcommand_from create list show comment approve reject pause resume pipeline incidents link cancel help" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and not __fish_seen_subcommand_from create list show comment approve reject pause resume pipeline incidents link cancel help" -f -a "create" -d 'File a ticket (POST /v1/tickets): from a YAML ticket file (-f), or from flags (--description and the rest)'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and not __fish_seen_subcommand_from create list show comment approve reject pause resume pipeline incidents link cancel help" -f -a "list" -d 'List tickets (GET /v1/tickets)'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and not __fish_seen_subcommand_from create list show comment approve reject pause resume pipeline incidents link cancel help" -f -a "show" -d 'One ticket and its history (GET /v1/tickets/{ID})'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and not __fish_seen_subcommand_from create list show comment approve reject pause resume pipeline incidents link cancel help" -f -a "comment" -d 'Add a comment (POST /v1/tickets/{ID}/comment)'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and not __fish_seen_subcommand_from create list show comment approve reject pause resume pipeline incidents link cancel help" -f -a "approve" -d 'Approve the ticket\'s proposal that awaits a human (POST /v1/tickets/{ID}/approve)'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and not __fish_seen_subcommand_from create list show comment approve reject pause resume pipeline incidents link cancel help" -f -a "reject" -d 'Reject the ticket\'s proposal that awaits a human (POST /v1/tickets/{ID}/reject)'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and not __fish_seen_subcommand_from create list show comment approve reject pause resume pipeline incidents link cancel help" -f -a "pause" -d 'Stop every agent change at once (POST /v1/pause); proposals hold at their next step until `resume`'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and not __fish_seen_subcommand_from create list show comment approve reject pause resume pipeline incidents link cancel help" -f -a "resume" -d 'Lift the pause (POST /v1/resume)'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and not __fish_seen_subcommand_from create list show comment approve reject pause resume pipeline incidents link cancel help" -f -a "pipeline" -d 'The pipeline: paused?, freeze window, proposals in flight (GET /v1/pipeline)'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and not __fish_seen_subcommand_from create list show comment approve reject pause resume pipeline incidents link cancel help" -f -a "incidents" -d 'Incidents: tickets grouped under the one that owns them, with what they share (GET /v1/incidents)'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and not __fish_seen_subcommand_from create list show comment approve reject pause resume pipeline incidents link cancel help" -f -a "link" -d 'Make an open ticket a member of the incident another ticket owns (--to OWNER), or take it out (--unlink) (POST /v1/tickets/{ID}/link)'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and not __fish_seen_subcommand_from create list show comment approve reject pause resume pipeline incidents link cancel help" -f -a "cancel" -d 'Cancel a ticket (POST /v1/tickets/{ID}/cancel)'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and not __fish_seen_subcommand_from create list show comment approve reject pause resume pipeline incidents link cancel help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from create" -s f -l file -d 'A YAML ticket file: `ticket:` with `type`, `objective.description`, `acceptance_criteria` (metric, condition, duration) and `constraints`; errors name the line and the field' -r -F
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from create" -l type -d 'incident, improvement, investigation or task' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from create" -l description -d 'What should be true when the ticket is done (the objective)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from create" -l criterion -d 'An acceptance criterion, `METRIC CONDITION [for DURATION]` (e.g. `latency_p99 < 500us for 1h`); repeat for several' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from create" -l constraint -d 'A constraint on the work; repeat for several' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from create" -l priority -d 'critical, high, medium (the default) or low' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from create" -l fingerprint -d 'The dedup fingerprint (default: derived from the type, description and criteria, as for ticket files)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from create" -l harness -d 'The harness HTTP API' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from create" -l token-env -d 'The environment variable holding the bearer token sent to the harness (unset or empty: none)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from create" -l json -d 'Print the harness\'s raw JSON instead of text'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from list" -l state -d 'Only these states (comma-separated: open,claimed,…)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from list" -l source -d 'Only this source (slo, invariant, anomaly, human, alertmanager, reflection)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from list" -l harness -d 'The harness HTTP API' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from list" -l token-env -d 'The environment variable holding the bearer token sent to the harness (unset or empty: none)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from list" -l json -d 'Print the harness\'s raw JSON instead of text'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from show" -l harness -d 'The harness HTTP API' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from show" -l token-env -d 'The environment variable holding the bearer token sent to the harness (unset or empty: none)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from show" -l json -d 'Print the harness\'s raw JSON instead of text'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from comment" -l actor -d 'Who comments (default: $USER)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from comment" -l harness -d 'The harness HTTP API' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from comment" -l token-env -d 'The environment variable holding the bearer token sent to the harness (unset or empty: none)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from comment" -l json -d 'Print the harness\'s raw JSON instead of text'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from comment" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from approve" -l reason -d 'Why (recorded with the decision)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from approve" -l actor -d 'Who approves (default: $USER)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from approve" -l harness -d 'The harness HTTP API' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from approve" -l token-env -d 'The environment variable holding the bearer token sent to the harness (unset or empty: none)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from approve" -l json -d 'Print the harness\'s raw JSON instead of text'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from approve" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from reject" -l reason -d 'Why (recorded with the decision)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from reject" -l actor -d 'Who rejects (default: $USER)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from reject" -l harness -d 'The harness HTTP API' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from reject" -l token-env -d 'The environment variable holding the bearer token sent to the harness (unset or empty: none)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from reject" -l json -d 'Print the harness\'s raw JSON instead of text'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from reject" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from pause" -l reason -d 'Why (recorded in the ledger)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from pause" -l actor -d 'Who pauses (default: $USER)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from pause" -l harness -d 'The harness HTTP API' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from pause" -l token-env -d 'The environment variable holding the bearer token sent to the harness (unset or empty: none)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from pause" -l json -d 'Print the harness\'s raw JSON instead of text'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from pause" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from resume" -l reason -d 'Why (recorded in the ledger)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from resume" -l actor -d 'Who resumes (default: $USER)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from resume" -l harness -d 'The harness HTTP API' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from resume" -l token-env -d 'The environment variable holding the bearer token sent to the harness (unset or empty: none)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from resume" -l json -d 'Print the harness\'s raw JSON instead of text'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from resume" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from pipeline" -l harness -d 'The harness HTTP API' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from pipeline" -l token-env -d 'The environment variable holding the bearer token sent to the harness (unset or empty: none)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from pipeline" -l json -d 'Print the harness\'s raw JSON instead of text'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from pipeline" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from incidents" -l harness -d 'The harness HTTP API' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from incidents" -l token-env -d 'The environment variable holding the bearer token sent to the harness (unset or empty: none)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from incidents" -l json -d 'Print the harness\'s raw JSON instead of text'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from incidents" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from link" -l to -d 'The owner of the incident to join' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from link" -l reason -d 'Why (recorded in the ledger)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from link" -l actor -d 'Who links (default: $USER)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from link" -l harness -d 'The harness HTTP API' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from link" -l token-env -d 'The environment variable holding the bearer token sent to the harness (unset or empty: none)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from link" -l unlink -d 'Take the ticket out of its incident: it is worked on its own'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from link" -l json -d 'Print the harness\'s raw JSON instead of text'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from link" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from cancel" -l reason -d 'Why (recorded in the ledger)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from cancel" -l actor -d 'Who cancels (default: $USER)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from cancel" -l harness -d 'The harness HTTP API' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from cancel" -l token-env -d 'The environment variable holding the bearer token sent to the harness (unset or empty: none)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from cancel" -l json -d 'Print the harness\'s raw JSON instead of text'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from cancel" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from help" -f -a "create" -d 'File a ticket (POST /v1/tickets): from a YAML ticket file (-f), or from flags (--description and the rest)'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from help" -f -a "list" -d 'List tickets (GET /v1/tickets)'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from help" -f -a "show" -d 'One ticket and its history (GET /v1/tickets/{ID})'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from help" -f -a "comment" -d 'Add a comment (POST /v1/tickets/{ID}/comment)'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from help" -f -a "approve" -d 'Approve the ticket\'s proposal that awaits a human (POST /v1/tickets/{ID}/approve)'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from help" -f -a "reject" -d 'Reject the ticket\'s proposal that awaits a human (POST /v1/tickets/{ID}/reject)'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from help" -f -a "pause" -d 'Stop every agent change at once (POST /v1/pause); proposals hold at their next step until `resume`'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from help" -f -a "resume" -d 'Lift the pause (POST /v1/resume)'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from help" -f -a "pipeline" -d 'The pipeline: paused?, freeze window, proposals in flight (GET /v1/pipeline)'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from help" -f -a "incidents" -d 'Incidents: tickets grouped under the one that owns them, with what they share (GET /v1/incidents)'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from help" -f -a "link" -d 'Make an open ticket a member of the incident another ticket owns (--to OWNER), or take it out (--unlink) (POST /v1/tickets/{ID}/link)'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from help" -f -a "cancel" -d 'Cancel a ticket (POST /v1/tickets/{ID}/cancel)'
complete -c floodgate -n "__fish_floodgate_using_subcommand ticket; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and not __fish_seen_subcommand_from create list show expire help" -l harness -d 'The harness HTTP API' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and not __fish_seen_subcommand_from create list show expire help" -l token-env -d 'The environment variable holding the bearer token sent to the harness (unset or empty: none)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and not __fish_seen_subcommand_from create list show expire help" -l json -d 'Print the harness\'s raw JSON instead of text'
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and not __fish_seen_subcommand_from create list show expire help" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and not __fish_seen_subcommand_from create list show expire help" -f -a "create" -d 'Announce an expected change (POST /v1/notices): anomalies it matches file no ticket while it is active (SLO and invariant tickets always do)'
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and not __fish_seen_subcommand_from create list show expire help" -f -a "list" -d 'List notices (GET /v1/notices)'
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and not __fish_seen_subcommand_from create list show expire help" -f -a "show" -d 'One notice and its ledger history (GET /v1/notices/{ID})'
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and not __fish_seen_subcommand_from create list show expire help" -f -a "expire" -d 'End a notice now (POST /v1/notices/{ID}/expire)'
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and not __fish_seen_subcommand_from create list show expire help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and __fish_seen_subcommand_from create" -l match -d 'A label the change touches, `NAME=VALUE` (exact); NAME is service, limit, tenant, metric, anomaly, slo or invariant. Repeat for several' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and __fish_seen_subcommand_from create" -l match-regex -d 'As --match, with a regex the whole value must match (`anomaly=request_.*`)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and __fish_seen_subcommand_from create" -l from -d 'When the change starts: an RFC 3339 time or `now`' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and __fish_seen_subcommand_from create" -l for -d 'How long it is expected from its start (`2h`, `30m`; at most 7d)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and __fish_seen_subcommand_from create" -l until -d 'When it stops being expected (RFC 3339)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and __fish_seen_subcommand_from create" -l reason -d 'What change is expected, and why' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and __fish_seen_subcommand_from create" -l author -d 'Who announces it, `KIND:NAME` (default: `human:$USER`)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and __fish_seen_subcommand_from create" -l max-factor -d 'How many times its level the matched series may move and still be expected (above 1); beyond it the anomaly is ticketed, naming the notice. Without it, any move is expected' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and __fish_seen_subcommand_from create" -l harness -d 'The harness HTTP API' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and __fish_seen_subcommand_from create" -l token-env -d 'The environment variable holding the bearer token sent to the harness (unset or empty: none)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and __fish_seen_subcommand_from create" -l json -d 'Print the harness\'s raw JSON instead of text'
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and __fish_seen_subcommand_from list" -l state -d 'active, pending, expired or all' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and __fish_seen_subcommand_from list" -l harness -d 'The harness HTTP API' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and __fish_seen_subcommand_from list" -l token-env -d 'The environment variable holding the bearer token sent to the harness (unset or empty: none)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and __fish_seen_subcommand_from list" -l json -d 'Print the harness\'s raw JSON instead of text'
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and __fish_seen_subcommand_from show" -l harness -d 'The harness HTTP API' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and __fish_seen_subcommand_from show" -l token-env -d 'The environment variable holding the bearer token sent to the harness (unset or empty: none)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and __fish_seen_subcommand_from show" -l json -d 'Print the harness\'s raw JSON instead of text'
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and __fish_seen_subcommand_from expire" -l reason -d 'Why the change is no longer expected' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and __fish_seen_subcommand_from expire" -l actor -d 'Who expires it (default: $USER)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and __fish_seen_subcommand_from expire" -l harness -d 'The harness HTTP API' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and __fish_seen_subcommand_from expire" -l token-env -d 'The environment variable holding the bearer token sent to the harness (unset or empty: none)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and __fish_seen_subcommand_from expire" -l json -d 'Print the harness\'s raw JSON instead of text'
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and __fish_seen_subcommand_from expire" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and __fish_seen_subcommand_from help" -f -a "create" -d 'Announce an expected change (POST /v1/notices): anomalies it matches file no ticket while it is active (SLO and invariant tickets always do)'
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and __fish_seen_subcommand_from help" -f -a "list" -d 'List notices (GET /v1/notices)'
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and __fish_seen_subcommand_from help" -f -a "show" -d 'One notice and its ledger history (GET /v1/notices/{ID})'
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and __fish_seen_subcommand_from help" -f -a "expire" -d 'End a notice now (POST /v1/notices/{ID}/expire)'
complete -c floodgate -n "__fish_floodgate_using_subcommand notice; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c floodgate -n "__fish_floodgate_using_subcommand revert" -l harness -d 'The harness HTTP API' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand revert" -l token-env -d 'The environment variable holding the bearer token sent to the harness (an `admin` token when access control is on; unset or empty: none)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand revert" -l reason -d 'Why the change is undone (recorded on both tickets and sent to the services with each inverse call)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand revert" -l actor -d 'Who asks (default: $USER); the revert ticket is claimed in this name' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand revert" -l json -d 'Print the harness\'s raw JSON instead of text'
complete -c floodgate -n "__fish_floodgate_using_subcommand revert" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand ledger; and not __fish_seen_subcommand_from verify help" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand ledger; and not __fish_seen_subcommand_from verify help" -f -a "verify" -d 'Verify the hash chain and the tickets table of a data directory; exits 1 naming the first bad entry'
complete -c floodgate -n "__fish_floodgate_using_subcommand ledger; and not __fish_seen_subcommand_from verify help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c floodgate -n "__fish_floodgate_using_subcommand ledger; and __fish_seen_subcommand_from verify" -l data -d 'The harness\'s data directory (`floodgate harness --data DIR`)' -r -F
complete -c floodgate -n "__fish_floodgate_using_subcommand ledger; and __fish_seen_subcommand_from verify" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand ledger; and __fish_seen_subcommand_from help" -f -a "verify" -d 'Verify the hash chain and the tickets table of a data directory; exits 1 naming the first bad entry'
complete -c floodgate -n "__fish_floodgate_using_subcommand ledger; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c floodgate -n "__fish_floodgate_using_subcommand report" -l data -d 'The harness\'s data directory (`floodgate harness --data DIR`); read only, so a running harness may keep writing it' -r -F
complete -c floodgate -n "__fish_floodgate_using_subcommand report" -l since -d 'The period: this long before now (e.g. 24h, 7d, 30d). Default: the last 7 days, or, when the directory recorded nothing in them (a scenario run\'s simulated dates, an old archive), the directory\'s own period, first record to last' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand report" -l out -d 'Where `report.md` and `report.html` are written (created if missing; files of those names are replaced)' -r -F
complete -c floodgate -n "__fish_floodgate_using_subcommand report" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand mcp" -l harness -d 'The harness HTTP API' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand mcp" -l token -d 'Bearer token for the harness (or the environment variable FLOODGATE_HARNESS_TOKEN, which keeps it out of process listings)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand mcp" -l agent -d 'The agent name claims, proposals and comments are made under' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand mcp" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand agent" -l kind -d 'Which agent works the tickets' -r -f -a "llm\t'A model over an OpenAI-compatible chat-completions API'
runbook\t'The runbooks of --runbooks (YAML decision trees), one per known failure mode; a ticket no runbook matches is escalated'"
complete -c floodgate -n "__fish_floodgate_using_subcommand agent" -l harness -d 'The harness HTTP API' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand agent" -l token -d 'Bearer token for the harness (or the environment variable FLOODGATE_HARNESS_TOKEN, which keeps it out of process listings)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand agent" -l agent -d 'The agent name claims, proposals and comments are made under' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand agent" -l endpoint -d 'llm: the API base, like https://api.openai.com/v1 or http://127.0.0.1:11434/v1 (Ollama); /chat/completions is appended' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand agent" -l model -d 'llm: the model\'s name at the endpoint' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand agent" -l api-key-env -d 'llm: the environment variable holding the API key (unset: no key)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand agent" -l max-steps -d 'The most model calls per ticket' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand agent" -l max-tokens -d 'The most tokens per ticket (summed over the calls\' usage)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand agent" -l max-seconds -d 'The most seconds per ticket' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand agent" -l request-timeout -d 'The bound on one model call, in seconds' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand agent" -l source -d 'Only claim tickets from these sources (slo, invariant, anomaly, human, alertmanager, reflection); repeat or separate with commas' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand agent" -l runbooks -d 'runbook: the directory of runbooks (every *.yaml is loaded and validated at start; default: the runbooks built into floodgate, the repository\'s runbooks/)' -r -F
complete -c floodgate -n "__fish_floodgate_using_subcommand agent" -l service -d 'runbook: the service whose state `state:` observations read (default: the harness\'s first)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand agent" -l interval -d 'runbook: how often the agent looks at its ticket and the queue (seconds)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand agent" -l once -d 'Work one ticket (or find none) and exit'
complete -c floodgate -n "__fish_floodgate_using_subcommand agent" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c floodgate -n "__fish_floodgate_using_subcommand trajectory; and not __fish_seen_subcommand_from list show export help" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand trajectory; and not __fish_seen_subcommand_from list show export help" -f -a "list" -d 'One line per trajectory: ticket, outcome, reward, steps, agent'
complete -c floodgate -n "__fish_floodgate_using_subcommand trajectory; and not __fish_seen_subcommand_from list show export help" -f -a "show" -d 'A readable timeline of one ticket\'s trajectory'
complete -c floodgate -n "__fish_floodgate_using_subcommand trajectory; and not __fish_seen_subcommand_from list show export help" -f -a "export" -d 'Write a dataset, one trajectory per line, and print statistics'
complete -c floodgate -n "__fish_floodgate_using_subcommand trajectory; and not __fish_seen_subcommand_from list show export help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c floodgate -n "__fish_floodgate_using_subcommand trajectory; and __fish_seen_subcommand_from list" -l data -d 'The harness\'s data directory (`floodgate harness --data DIR`)' -r -F
complete -c floodgate -n "__fish_floodgate_using_subcommand trajectory; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand trajectory; and __fish_seen_subcommand_from show" -l data -d 'The harness\'s data directory (`floodgate harness --data DIR`)' -r -F
complete -c floodgate -n "__fish_floodgate_using_subcommand trajectory; and __fish_seen_subcommand_from show" -l json -d 'The trajectory as JSON (ATIF v1.x with the operations fields)'
complete -c floodgate -n "__fish_floodgate_using_subcommand trajectory; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand trajectory; and __fish_seen_subcommand_from export" -l data -d 'The harness\'s data directory (`floodgate harness --data DIR`)' -r -F
complete -c floodgate -n "__fish_floodgate_using_subcommand trajectory; and __fish_seen_subcommand_from export" -l format -r -f -a "jsonl\t''"
complete -c floodgate -n "__fish_floodgate_using_subcommand trajectory; and __fish_seen_subcommand_from export" -l since -d 'Only trajectories started within this long before now (`7d`)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand trajectory; and __fish_seen_subcommand_from export" -l outcome -d 'Only these outcomes (resolved, failed, escalated, cancelled, open)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand trajectory; and __fish_seen_subcommand_from export" -l source -d 'Only tickets from these sources (slo, invariant, anomaly, human, alertmanager, reflection)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand trajectory; and __fish_seen_subcommand_from export" -l out -d 'Where to write (default: standard output; statistics go to standard error then)' -r -F
complete -c floodgate -n "__fish_floodgate_using_subcommand trajectory; and __fish_seen_subcommand_from export" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand trajectory; and __fish_seen_subcommand_from help" -f -a "list" -d 'One line per trajectory: ticket, outcome, reward, steps, agent'
complete -c floodgate -n "__fish_floodgate_using_subcommand trajectory; and __fish_seen_subcommand_from help" -f -a "show" -d 'A readable timeline of one ticket\'s trajectory'
complete -c floodgate -n "__fish_floodgate_using_subcommand trajectory; and __fish_seen_subcommand_from help" -f -a "export" -d 'Write a dataset, one trajectory per line, and print statistics'
complete -c floodgate -n "__fish_floodgate_using_subcommand trajectory; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c floodgate -n "__fish_floodgate_using_subcommand reflect" -l harness -d 'The harness HTTP API' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand reflect" -l token-env -d 'The environment variable holding an admin token (unset: none)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand reflect" -l json -d 'Print the harness\'s raw JSON instead of text'
complete -c floodgate -n "__fish_floodgate_using_subcommand reflect" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand demo" -l speed -d 'Simulated seconds per real second (each tick is 10 simulated seconds). 60 runs the demo in about three minutes' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand demo" -l data -d 'Where the harness keeps its SQLite file (default: a new temporary directory)' -r -F
complete -c floodgate -n "__fish_floodgate_using_subcommand demo" -l http-addr -d 'Where the harness API is served during the demo' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand demo" -l service-addr -d 'Where the service\'s HTTP API is served during the demo' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand demo" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and not __fish_seen_subcommand_from run generate list help" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and not __fish_seen_subcommand_from run generate list help" -f -a "run" -d 'Run a suite of scenarios and judge every run'
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and not __fish_seen_subcommand_from run generate list help" -f -a "generate" -d 'Write generated incidents as scenario files (the suite\'s format), to read, keep and rerun with `run --scenarios DIR --suite generated`'
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and not __fish_seen_subcommand_from run generate list help" -f -a "list" -d 'List the scenarios there are (built in, or of --scenarios DIR): name, family, suites, expected outcome and description'
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and not __fish_seen_subcommand_from run generate list help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and __fish_seen_subcommand_from run" -l suite -d 'The suite: scenarios whose `suites` name it' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and __fish_seen_subcommand_from run" -l scenario -d 'Only the scenarios of these names (repeatable; default: the whole suite)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and __fish_seen_subcommand_from run" -l agent -d 'runbook | llm | mcp | none' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and __fish_seen_subcommand_from run" -l llm-endpoint -d 'llm: the chat-completions API base (like http://127.0.0.1:11434/v1)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and __fish_seen_subcommand_from run" -l llm-model -d 'llm: the model\'s name at the endpoint' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and __fish_seen_subcommand_from run" -l llm-api-key-env -d 'llm: the environment variable holding the API key (unset: no key)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and __fish_seen_subcommand_from run" -l speed -d 'With --realtime: wall time runs this many times faster (1: real time; a 1h30m scenario takes 1h30m, and twice that with its baseline run)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and __fish_seen_subcommand_from run" -l mcp-command -d 'mcp: the external agent\'s command line (run with `sh -c` once a tick while a ticket waits, with FLOODGATE_MCP_URL naming the harness\'s MCP endpoint on loopback; the simulated world waits for it to exit)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and __fish_seen_subcommand_from run" -l seeds -d 'Seeds per scenario (at least each scenario\'s `min_seeds`)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and __fish_seen_subcommand_from run" -l generated -d 'Run N generated incidents instead of a suite (cycling through the families, or those of --family); the files are kept in OUT/generated/' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and __fish_seen_subcommand_from run" -l family -d 'With --generated: only these families (repeatable)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and __fish_seen_subcommand_from run" -l gen-seed -d 'With --generated: the generator\'s seed' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and __fish_seen_subcommand_from run" -l out -d 'Where results and every run\'s harness data go' -r -F
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and __fish_seen_subcommand_from run" -l scenarios -d 'The scenario files (default: the suite built into floodgate, the repository\'s scenarios/)' -r -F
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and __fish_seen_subcommand_from run" -l runbooks -d 'The runbooks the runbook agent uses (default: the runbooks built into floodgate, the repository\'s runbooks/)' -r -F
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and __fish_seen_subcommand_from run" -l realtime -d 'Real time: the service and the harness served on 127.0.0.1 and spoken to over HTTP, each 10 s tick paced by the wall clock'
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and __fish_seen_subcommand_from run" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and __fish_seen_subcommand_from generate" -l family -d 'The families to draw from, cycled in order (repeatable; default: every family)' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and __fish_seen_subcommand_from generate" -l count -d 'How many incidents' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and __fish_seen_subcommand_from generate" -l seed -d 'The generator\'s seed: the same seed gives the same files' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and __fish_seen_subcommand_from generate" -l out -d 'Where the files go (created)' -r -F
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and __fish_seen_subcommand_from generate" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and __fish_seen_subcommand_from list" -l suite -d 'Only the scenarios of this suite' -r
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and __fish_seen_subcommand_from list" -l scenarios -d 'The scenario files (default: the suite built into floodgate)' -r -F
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and __fish_seen_subcommand_from help" -f -a "run" -d 'Run a suite of scenarios and judge every run'
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and __fish_seen_subcommand_from help" -f -a "generate" -d 'Write generated incidents as scenario files (the suite\'s format), to read, keep and rerun with `run --scenarios DIR --suite generated`'
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the scenarios there are (built in, or of --scenarios DIR): name, family, suites, expected outcome and description'
complete -c floodgate -n "__fish_floodgate_using_subcommand scenarios; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and not __fish_seen_subcommand_from serve config catalog completions ctl harness ticket notice revert ledger report mcp agent trajectory reflect demo scenarios help" -f -a "serve" -d 'Serve the rate-limit service: Envoy RLS v3 over gRPC and the HTTP API'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and not __fish_seen_subcommand_from serve config catalog completions ctl harness ticket notice revert ledger report mcp agent trajectory reflect demo scenarios help" -f -a "config" -d 'Work with rate-limit config files'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and not __fish_seen_subcommand_from serve config catalog completions ctl harness ticket notice revert ledger report mcp agent trajectory reflect demo scenarios help" -f -a "catalog" -d 'Generate the catalog docs (docs/catalog/), the CLI reference (docs/cli.md and the README\'s command table), the man pages (docs/man/), the shell completions (docs/completions/) and the Grafana dashboard from the code'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and not __fish_seen_subcommand_from serve config catalog completions ctl harness ticket notice revert ledger report mcp agent trajectory reflect demo scenarios help" -f -a "completions" -d 'Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell) to stdout'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and not __fish_seen_subcommand_from serve config catalog completions ctl harness ticket notice revert ledger report mcp agent trajectory reflect demo scenarios help" -f -a "ctl" -d 'Operate a running service through its HTTP API (state, actions, events, config), with a bearer token from an environment variable'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and not __fish_seen_subcommand_from serve config catalog completions ctl harness ticket notice revert ledger report mcp agent trajectory reflect demo scenarios help" -f -a "harness" -d 'Run the harness: observe services, judge them against objectives, file tickets; serves the harness HTTP API'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and not __fish_seen_subcommand_from serve config catalog completions ctl harness ticket notice revert ledger report mcp agent trajectory reflect demo scenarios help" -f -a "ticket" -d 'File and manage tickets through a running harness\'s HTTP API'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and not __fish_seen_subcommand_from serve config catalog completions ctl harness ticket notice revert ledger report mcp agent trajectory reflect demo scenarios help" -f -a "notice" -d 'Announce expected changes (a launch, a migration) through a running harness\'s HTTP API, so the anomalies they cause do not page'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and not __fish_seen_subcommand_from serve config catalog completions ctl harness ticket notice revert ledger report mcp agent trajectory reflect demo scenarios help" -f -a "revert" -d 'Undo a change an agent made (a proposal id, `P-0003`): its recorded inverses run through the same pipeline as a new, recorded proposal'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and not __fish_seen_subcommand_from serve config catalog completions ctl harness ticket notice revert ledger report mcp agent trajectory reflect demo scenarios help" -f -a "ledger" -d 'Check the harness\'s hash-chained ledger'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and not __fish_seen_subcommand_from serve config catalog completions ctl harness ticket notice revert ledger report mcp agent trajectory reflect demo scenarios help" -f -a "report" -d 'Write the human review of a harness\'s data directory (report.md and report.html): tickets, SLO budgets, expected-change notices, changes, findings, what waits on a human'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and not __fish_seen_subcommand_from serve config catalog completions ctl harness ticket notice revert ledger report mcp agent trajectory reflect demo scenarios help" -f -a "mcp" -d 'Serve the agent tool catalog over MCP on stdin/stdout, calling a running harness (for Claude Desktop and other MCP clients)'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and not __fish_seen_subcommand_from serve config catalog completions ctl harness ticket notice revert ledger report mcp agent trajectory reflect demo scenarios help" -f -a "agent" -d 'Run an agent that claims tickets from a harness and works them'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and not __fish_seen_subcommand_from serve config catalog completions ctl harness ticket notice revert ledger report mcp agent trajectory reflect demo scenarios help" -f -a "trajectory" -d 'Trajectories of a harness\'s data directory: list, show, export'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and not __fish_seen_subcommand_from serve config catalog completions ctl harness ticket notice revert ledger report mcp agent trajectory reflect demo scenarios help" -f -a "reflect" -d 'Ask a running harness to reflect now: repeated fixes, oscillation, non-convergence, repeated escalations, changes overridden from outside'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and not __fish_seen_subcommand_from serve config catalog completions ctl harness ticket notice revert ledger report mcp agent trajectory reflect demo scenarios help" -f -a "demo" -d 'The whole loop in one command: a service, the harness, the runbook agent and a workload; a fault, the ticket, the pipeline, the fix'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and not __fish_seen_subcommand_from serve config catalog completions ctl harness ticket notice revert ledger report mcp agent trajectory reflect demo scenarios help" -f -a "scenarios" -d 'Fault scenarios in simulated time: run a suite, judge every run against its oracle, write the figures'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and not __fish_seen_subcommand_from serve config catalog completions ctl harness ticket notice revert ledger report mcp agent trajectory reflect demo scenarios help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "check" -d 'Validate config files without serving; exits non-zero on the first bad file, printing what is wrong and where'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and __fish_seen_subcommand_from ctl" -f -a "state" -d 'Everything the service knows (GET /v1/state)'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and __fish_seen_subcommand_from ctl" -f -a "actions" -d 'The action catalog (GET /v1/actions)'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and __fish_seen_subcommand_from ctl" -f -a "run" -d 'Run an action (POST /v1/actions/{ACTION})'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and __fish_seen_subcommand_from ctl" -f -a "events" -d 'Events, paged or followed (GET /v1/events)'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and __fish_seen_subcommand_from ctl" -f -a "config" -d 'The config: show, versions, diff, apply, rollback'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and __fish_seen_subcommand_from ticket" -f -a "create" -d 'File a ticket (POST /v1/tickets): from a YAML ticket file (-f), or from flags (--description and the rest)'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and __fish_seen_subcommand_from ticket" -f -a "list" -d 'List tickets (GET /v1/tickets)'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and __fish_seen_subcommand_from ticket" -f -a "show" -d 'One ticket and its history (GET /v1/tickets/{ID})'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and __fish_seen_subcommand_from ticket" -f -a "comment" -d 'Add a comment (POST /v1/tickets/{ID}/comment)'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and __fish_seen_subcommand_from ticket" -f -a "approve" -d 'Approve the ticket\'s proposal that awaits a human (POST /v1/tickets/{ID}/approve)'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and __fish_seen_subcommand_from ticket" -f -a "reject" -d 'Reject the ticket\'s proposal that awaits a human (POST /v1/tickets/{ID}/reject)'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and __fish_seen_subcommand_from ticket" -f -a "pause" -d 'Stop every agent change at once (POST /v1/pause); proposals hold at their next step until `resume`'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and __fish_seen_subcommand_from ticket" -f -a "resume" -d 'Lift the pause (POST /v1/resume)'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and __fish_seen_subcommand_from ticket" -f -a "pipeline" -d 'The pipeline: paused?, freeze window, proposals in flight (GET /v1/pipeline)'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and __fish_seen_subcommand_from ticket" -f -a "incidents" -d 'Incidents: tickets grouped under the one that owns them, with what they share (GET /v1/incidents)'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and __fish_seen_subcommand_from ticket" -f -a "link" -d 'Make an open ticket a member of the incident another ticket owns (--to OWNER), or take it out (--unlink) (POST /v1/tickets/{ID}/link)'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and __fish_seen_subcommand_from ticket" -f -a "cancel" -d 'Cancel a ticket (POST /v1/tickets/{ID}/cancel)'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and __fish_seen_subcommand_from notice" -f -a "create" -d 'Announce an expected change (POST /v1/notices): anomalies it matches file no ticket while it is active (SLO and invariant tickets always do)'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and __fish_seen_subcommand_from notice" -f -a "list" -d 'List notices (GET /v1/notices)'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and __fish_seen_subcommand_from notice" -f -a "show" -d 'One notice and its ledger history (GET /v1/notices/{ID})'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and __fish_seen_subcommand_from notice" -f -a "expire" -d 'End a notice now (POST /v1/notices/{ID}/expire)'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and __fish_seen_subcommand_from ledger" -f -a "verify" -d 'Verify the hash chain and the tickets table of a data directory; exits 1 naming the first bad entry'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and __fish_seen_subcommand_from trajectory" -f -a "list" -d 'One line per trajectory: ticket, outcome, reward, steps, agent'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and __fish_seen_subcommand_from trajectory" -f -a "show" -d 'A readable timeline of one ticket\'s trajectory'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and __fish_seen_subcommand_from trajectory" -f -a "export" -d 'Write a dataset, one trajectory per line, and print statistics'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and __fish_seen_subcommand_from scenarios" -f -a "run" -d 'Run a suite of scenarios and judge every run'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and __fish_seen_subcommand_from scenarios" -f -a "generate" -d 'Write generated incidents as scenario files (the suite\'s format), to read, keep and rerun with `run --scenarios DIR --suite generated`'
complete -c floodgate -n "__fish_floodgate_using_subcommand help; and __fish_seen_subcommand_from scenarios" -f -a "list" -d 'List the scenarios there are (built in, or of --scenarios DIR): name, family, suites, expected outcome and description'
