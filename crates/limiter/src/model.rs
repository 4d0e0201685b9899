//! The limit model: units, algorithms and the rate a limit enforces.
//!
//! These are the types every other crate speaks. They carry no I/O and no
//! clock: time is always passed in as [`Nanos`] since the Unix epoch.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A point in time or a duration, in nanoseconds. Points are measured from
/// the Unix epoch, so fixed windows align with envoyproxy/ratelimit's.
pub type Nanos = u64;

/// One second in [`Nanos`].
pub const NANOS_PER_SECOND: Nanos = 1_000_000_000;

/// The time unit of a limit, as envoyproxy/ratelimit spells it.
///
/// Month and year are fixed lengths (30 and 365 days), exactly as
/// envoyproxy/ratelimit computes its window divider, so existing configs keep
/// their windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Unit {
    /// Every unit, in the order the docs list them.
    pub const ALL: [Unit; 7] = [
        Unit::Second,
        Unit::Minute,
        Unit::Hour,
        Unit::Day,
        Unit::Week,
        Unit::Month,
        Unit::Year,
    ];

    /// The length of one unit in seconds.
    pub const fn seconds(self) -> u64 {
        match self {
            Unit::Second => 1,
            Unit::Minute => 60,
            Unit::Hour => 3_600,
            Unit::Day => 86_400,
            Unit::Week => 604_800,
            Unit::Month => 2_592_000,
            Unit::Year => 31_536_000,
        }
    }

    /// The length of one unit in nanoseconds.
    pub const fn nanos(self) -> Nanos {
        self.seconds() * NANOS_PER_SECOND
    }

    /// The lower-case name used in config files and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Unit::Second => "second",
            Unit::Minute => "minute",
            Unit::Hour => "hour",
            Unit::Day => "day",
            Unit::Week => "week",
            Unit::Month => "month",
            Unit::Year => "year",
        }
    }

    /// Parses a unit name case-insensitively, as envoyproxy/ratelimit does.
    pub fn parse(name: &str) -> Option<Unit> {
        Unit::ALL
            .into_iter()
            .find(|unit| unit.as_str().eq_ignore_ascii_case(name))
    }

    /// The `envoy.service.ratelimit.v3.RateLimitResponse.RateLimit.Unit` code.
    pub const fn envoy_code(self) -> i32 {
        match self {
            Unit::Second => 1,
            Unit::Minute => 2,
            Unit::Hour => 3,
            Unit::Day => 4,
            Unit::Month => 5,
            Unit::Year => 6,
            Unit::Week => 7,
        }
    }

    /// The unit for an Envoy unit code; `None` for UNKNOWN or an unknown code.
    pub const fn from_envoy_code(code: i32) -> Option<Unit> {
        match code {
            1 => Some(Unit::Second),
            2 => Some(Unit::Minute),
            3 => Some(Unit::Hour),
            4 => Some(Unit::Day),
            5 => Some(Unit::Month),
            6 => Some(Unit::Year),
            7 => Some(Unit::Week),
            _ => None,
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// A counter per window aligned to the Unix epoch (envoyproxy/ratelimit's
    /// behaviour, and the default).
    #[default]
    FixedWindow,
    /// GCRA: one theoretical arrival time per key; `requests_per_unit` is the
    /// sustained rate and `burst` the capacity.
    TokenBucket,
    /// A weighted estimate over the current and the previous aligned window.
    SlidingWindow,
    /// In-flight leases: at most `requests_per_unit` held at once, each
    /// expiring one `unit` after it was acquired unless released earlier.
    Concurrency,
}

impl Algorithm {
    /// Every algorithm, in the order the docs list them.
    pub const ALL: [Algorithm; 4] = [
        Algorithm::FixedWindow,
        Algorithm::TokenBucket,
        Algorithm::SlidingWindow,
        Algorithm::Concurrency,
    ];

    /// The snake-case name used in config files and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::FixedWindow => "fixed_window",
            Algorithm::TokenBucket => "token_bucket",
            Algorithm::SlidingWindow => "sliding_window",
            Algorithm::Concurrency => "concurrency",
        }
    }

    /// Parses an algorithm name (exact, snake case).
    pub fn parse(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The numbers one limit enforces. Validated at construction: a `Rate`
/// always has a positive quota and a positive burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    /// How the limit counts.
    pub algorithm: Algorithm,
    /// Requests allowed per unit (for `concurrency`: leases held at once).
    pub requests_per_unit: u64,
    /// The window (fixed, sliding), the refill period (token bucket) or the
    /// lease time-to-live (concurrency).
    pub unit: Unit,
    /// Token-bucket capacity; equals `requests_per_unit` for other algorithms.
    pub burst: u64,
}

impl Rate {
    /// A rate with the default burst (one unit's quota).
    pub fn new(algorithm: Algorithm, requests_per_unit: u64, unit: Unit) -> Rate {
        Rate {
            algorithm,
            requests_per_unit,
            unit,
            burst: requests_per_unit,
        }
    }

    /// The same rate with a token-bucket burst.
    pub fn with_burst(mut self, burst: u64) -> Rate {
        self.burst = burst;
        self
    }

    /// The window or period of this rate in nanoseconds.
    pub const fn period(&self) -> Nanos {
        self.unit.nanos()
    }

    /// GCRA's emission interval: the time one request's worth of capacity
    /// takes to come back, rounded up so the bucket never refills early.
    pub fn emission_interval(&self) -> Nanos {
        let quota = self.requests_per_unit.max(1);
        self.period().div_ceil(quota)
    }
}
