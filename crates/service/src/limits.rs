//! Every bound the service enforces, named once with the reason for it.

use std::time::Duration;

/// Descriptors in one request. Envoy sends one per matching rate-limit
/// action; dozens would already be a misconfiguration.
pub const MAX_DESCRIPTORS: usize = 64;
/// Entries in one descriptor.
pub const MAX_ENTRIES: usize = 32;
/// Bytes in a domain name.
pub const MAX_DOMAIN_BYTES: usize = 256;
/// Bytes in a descriptor entry key.
pub const MAX_KEY_BYTES: usize = 256;
/// Bytes in a descriptor entry value (a URL path or a token fits).
pub const MAX_VALUE_BYTES: usize = 4096;
/// Bytes of a backend health change's detail kept in `/v1/state`'s
/// `store.transitions` (the contract's `MAX_STORE_TRANSITIONS` of them): an
/// error message, cut.
pub const STORE_TRANSITION_DETAIL_BYTES: usize = 256;
/// Bytes in one request message (gRPC frame payload or JSON body). Bounds
/// what one request can make the service allocate.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// The listeners' bounds (connections, HTTP/2 settings, the timeouts of
/// every phase of a connection, shutdown grace) live in the edge crate both
/// the service and the harness use; named here too so one module lists
/// every bound the service enforces.
pub use floodgate_edge::limits::{
    ACCEPT_BACKOFF_MAX, ACCEPT_BACKOFF_MIN, BODY_READ_TIMEOUT, CONNECTION_WINDOW_BYTES,
    HANDSHAKE_TIMEOUT, HEADER_READ_TIMEOUT, IDLE_TIMEOUT, MAX_ALLOWED_HOSTS, MAX_CONNECTIONS,
    MAX_HEADER_LIST_BYTES, MAX_STREAMS_PER_CONNECTION, SHUTDOWN_GRACE, STREAM_WINDOW_BYTES,
};
/// Bytes of response data buffered per HTTP/2 stream before the service
/// stops queueing more (hyper's default; a gRPC answer is a few hundred).
pub const MAX_SEND_BUFFER_BYTES: usize = 400 * 1024;
/// The longest a request may take, body included, before it is answered
/// DEADLINE_EXCEEDED (gRPC) or 503 (HTTP). Envoy's own default timeout for
/// the rate-limit call is 20 ms, so anything near this bound is already
/// useless to the caller.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// Distinct descriptor values per `detailed_metric` limit that get their own
/// series; the rest are counted under `__other__`.
pub const MAX_DETAILED_SERIES_PER_LIMIT: usize = 100;
/// The share of a quota used (in percent) from which admitted hits count as
/// near the limit.
pub const NEAR_LIMIT_PERCENT: u64 = 80;
/// Bytes of a counter key's readable text (`domain|k=v|…#limit`) kept with
/// the key for `/v1/state` and `evict_keys` by prefix. Texts are cut there,
/// so memory stays at most `max_keys` × this; a prefix longer than a cut
/// text does not match it.
pub const MAX_KEY_TEXT_BYTES: usize = 192;
/// Check requests the traffic recorder keeps by default (`serve
/// --traffic-capacity`): at about 200 bytes a request with its strings,
/// ~20 MiB, which holds the last second or so at full load and minutes at
/// ordinary load — the window a dry run replays.
pub const DEFAULT_TRAFFIC_CAPACITY: usize = 100_000;
/// The most the recorder may keep: ~2 GiB at about 200 bytes a request,
/// and a replay of it takes seconds under the action lock.
pub const MAX_TRAFFIC_CAPACITY: usize = 10_000_000;
/// Bytes the traffic recorder's records may take together: about 80,000
/// ordinary requests, so the default capacity is seldom cut short. A request that would
/// cross it is counted (`floodgate_traffic_not_recorded_total{reason=
/// "over_budget"}`), not kept, so hostile requests cannot grow the ring
/// past it whatever the capacity.
pub const DEFAULT_TRAFFIC_BYTES: usize = 16 << 20;
/// The largest request the recorder keeps, in bytes with its heap
/// ([`crate::traffic::record_bytes`]): a check request can be 256 KiB
/// ([`MAX_MESSAGE_BYTES`]), and a few hundred of those would fill the budget
/// with one client's noise. Larger ones are counted
/// (`reason="too_large"`), not kept.
pub const MAX_TRAFFIC_RECORD_BYTES: usize = 8 << 10;
/// Requests `GET /v1/traffic` answers when `limit` is not given.
pub const TRAFFIC_PAGE_DEFAULT: usize = 100;
/// The most requests one `GET /v1/traffic` answers (a page of the largest
/// requests stays within a few MiB).
pub const TRAFFIC_PAGE_MAX: usize = 1_000;
/// Lines (old and new together) of a stretch between two anchors of a
/// config diff (the dry run's `diff`, `control::diff`) that is diffed line
/// by line; a longer stretch is shown as replaced whole. Diffing a stretch
/// costs up to its lines times this, so a whole config's diff stays linear
/// in its size: a Myers diff of the whole, as before, took seconds for
/// 8,000 descriptors and minutes for 32,000 (issue 15).
pub const DIFF_MYERS_MAX_LINES: usize = 1_000;
/// Actions taken over the API (`POST /v1/actions/{name}`, `/v1/config`,
/// `/v1/config/rollback`) admitted at once, the running one included:
/// actions run one at a time, and the harness's pipeline sends one at a
/// time, so more than a few waiting means a caller is flooding the
/// service. One more is answered 503 (`overloaded`, naming this bound)
/// with nothing changed. Waiting actions hold no thread.
pub const MAX_PENDING_ACTIONS: usize = 16;
/// Bytes of request bodies that actions taken over the API may hold at
/// once, from before their body is read until they are answered: an
/// action's share is its `Content-Length` (the whole
/// `MAX_CONTROL_BODY_BYTES`, 4 MiB, when it sends none). One that would
/// pass this is answered 503 (`overloaded`, naming this bound) before its
/// body is read; one action alone is always admitted. Every copy an action
/// makes of its body (the bytes, the parsed text, the parsed config) is
/// proportional to it, so this bounds the control path's memory under a
/// flood of large configs: 16 bodies of 4 MiB grew a service by 80 MiB
/// before it (issue 15). 5 MiB: one config at the body limit at a time,
/// beside any number of small actions (the harness's are a few hundred
/// bytes).
pub const MAX_PENDING_ACTION_BYTES: usize = 5 * 1024 * 1024;
/// How long an action taken over the API may wait for its turn and then be
/// planned (validated, compiled, diffed, replayed): one waiting past it is
/// answered 503 and never runs; one whose planning ends past it is answered
/// 504 and changes nothing (its effect, a swap, is never cut halfway). A
/// dry run of the largest config takes well under a second (see
/// `benches/config_actions.rs`), so this leaves room for a queue of them.
pub const ACTION_TIMEOUT: Duration = Duration::from_secs(30);
