//! Floodgate's pure rate-limit core.
//!
//! - [`model`]: units, algorithms and rates;
//! - [`algo`]: the algorithms as pure functions of (rate, state, cost, now),
//!   and the all-or-nothing decision over several limits;
//! - [`config`]: envoyproxy/ratelimit's YAML format (plus Floodgate's
//!   extensions), validated with errors that name the file, path and problem;
//! - [`table`]: the compiled config, matching request descriptors to limits;
//! - [`replay`]: a recorded window of requests decided again under two
//!   configs, counting the requests that flip between allowed and limited.
//!
//! Architecture invariant: this crate does no I/O and reads no clock. Time
//! comes in as [`model::Nanos`]; files come in as strings.

pub mod algo;
pub mod config;
pub mod limits;
pub mod model;
pub mod replay;
pub mod table;

pub use algo::{decide, decide_all, Check, Cost, KeyState, Lease, LeaseId, Verdict};
pub use config::{
    compile, load, parse_file, ConfigError, ConfigSource, DescriptorConfig, DomainConfig,
    RateLimitConfig, Replace,
};
pub use model::{Algorithm, Nanos, Rate, Unit, NANOS_PER_SECOND};
pub use table::{counter_key, counter_key_text, LimitDef, LimitId, Resolved, Table};
