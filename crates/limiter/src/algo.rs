//! The rate-limit algorithms: pure functions of (rate, key state, cost, now).
//!
//! Architecture invariant: nothing here reads a clock, allocates per decision
//! (except concurrency leases, which are bounded by the limit) or does I/O.
//! A store keeps one [`KeyState`] per counter key and calls [`decide`] (one
//! limit) or [`decide_all`] (every limit of one request, all or nothing).
//!
//! Time never runs backwards for a key: each state remembers the latest
//! `now` it has seen and uses the later of the two, so a clock that steps
//! back can neither panic nor admit extra hits.

use crate::model::{Algorithm, Nanos, Rate};

/// What a request asks of one limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cost {
    /// Consume this many hits; 0 checks without consuming.
    Consume(u64),
    /// Give hits back (Envoy's `is_negative_hits`). Never goes below zero.
    /// For `concurrency` this releases held leases, oldest first.
    Refund(u64),
    /// Release one concurrency lease by id (a no-op for other algorithms).
    Release(LeaseId),
}

impl Cost {
    /// The hits this cost consumes (0 for refunds and releases).
    pub const fn consumed(self) -> u64 {
        match self {
            Cost::Consume(hits) => hits,
            Cost::Refund(_) | Cost::Release(_) => 0,
        }
    }
}

/// Identifies one concurrency lease within its key.
pub type LeaseId = u64;

/// One held concurrency lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// Unique within the key, increasing.
    pub id: LeaseId,
    /// How many units of the limit the lease holds.
    pub units: u64,
    /// When the lease frees itself if never released.
    pub expires_at: Nanos,
}

/// The counter state of one key under one limit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum KeyState {
    /// Never used (or reset): behaves as a full quota.
    #[default]
    Empty,
    /// `fixed_window`: hits counted in the window starting at `start`.
    Window { start: Nanos, count: u64 },
    /// `token_bucket` (GCRA): the theoretical arrival time, plus the latest
    /// `now` seen so a clock stepping back cannot refill the bucket.
    Gcra { tat: Nanos, seen: Nanos },
    /// `sliding_window`: counts of the current aligned window and the one
    /// before it.
    Sliding {
        start: Nanos,
        previous: u64,
        current: u64,
        seen: Nanos,
    },
    /// `concurrency`: the leases held now, oldest first.
    Leases {
        held: Vec<Lease>,
        next_id: LeaseId,
        seen: Nanos,
    },
}

impl KeyState {
    /// The algorithm this state belongs to (`None` when empty).
    pub fn algorithm(&self) -> Option<Algorithm> {
        match self {
            KeyState::Empty => None,
            KeyState::Window { .. } => Some(Algorithm::FixedWindow),
            KeyState::Gcra { .. } => Some(Algorithm::TokenBucket),
            KeyState::Sliding { .. } => Some(Algorithm::SlidingWindow),
            KeyState::Leases { .. } => Some(Algorithm::Concurrency),
        }
    }

    /// When this state stops mattering: after this instant it is equivalent
    /// to [`KeyState::Empty`] and a store may drop it. `rate` must be the
    /// rate the state was built under.
    pub fn expires_at(&self, rate: &Rate) -> Nanos {
        let period = rate.period();
        match self {
            KeyState::Empty => 0,
            KeyState::Window { start, .. } => start.saturating_add(period),
            KeyState::Gcra { tat, .. } => *tat,
            KeyState::Sliding { start, .. } => start.saturating_add(period.saturating_mul(2)),
            KeyState::Leases { held, .. } => {
                held.iter().map(|lease| lease.expires_at).max().unwrap_or(0)
            }
        }
    }

    /// Units in use right now (hits in the window, tokens spent, leases
    /// held), for usage summaries. Never more than the state records.
    pub fn used(&self, rate: &Rate, now: Nanos) -> u64 {
        let mut probe = self.clone();
        let verdict = decide(rate, &mut probe, Cost::Consume(0), now);
        full_quota(rate).saturating_sub(verdict.remaining)
    }
}

/// The most `remaining` can be: the bucket capacity for `token_bucket`
/// (none at a zero rate), one unit's quota for the other algorithms.
fn full_quota(rate: &Rate) -> u64 {
    match rate.algorithm {
        Algorithm::TokenBucket if rate.requests_per_unit == 0 => 0,
        Algorithm::TokenBucket => rate.burst,
        _ => rate.requests_per_unit,
    }
}

/// The answer of one limit to one cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Whether this limit admits the cost.
    pub admitted: bool,
    /// Hits still available after this decision (0 when over the limit).
    pub remaining: u64,
    /// Nanoseconds until the quota is whole again (end of the window, bucket
    /// full, soonest lease expiry).
    pub reset_after: Nanos,
    /// For an admitted concurrency acquisition: the lease it created.
    pub lease: Option<LeaseId>,
}

/// Decides one cost against one limit at `now`, updating `state` only when
/// the cost is admitted (or is a refund). A rejected cost leaves the state
/// semantically unchanged (it may roll an elapsed window or drop expired
/// leases, which changes nothing observable).
pub fn decide(rate: &Rate, state: &mut KeyState, cost: Cost, now: Nanos) -> Verdict {
    if state.algorithm() != Some(rate.algorithm) {
        *state = KeyState::Empty;
    }
    match rate.algorithm {
        Algorithm::FixedWindow => fixed_window(rate, state, cost, now),
        Algorithm::TokenBucket => token_bucket(rate, state, cost, now),
        Algorithm::SlidingWindow => sliding_window(rate, state, cost, now),
        Algorithm::Concurrency => concurrency(rate, state, cost, now),
    }
}

fn window_start(now: Nanos, period: Nanos) -> Nanos {
    now - now % period
}

fn fixed_window(rate: &Rate, state: &mut KeyState, cost: Cost, now: Nanos) -> Verdict {
    let period = rate.period();
    let limit = rate.requests_per_unit;
    let (mut start, mut count) = match *state {
        KeyState::Window { start, count } => (start, count),
        _ => (window_start(now, period), 0),
    };
    // A clock behind the stored window keeps using the stored window.
    let current = window_start(now, period);
    if current > start {
        start = current;
        count = 0;
    }
    let now = now.max(start);
    let reset_after = start.saturating_add(period).saturating_sub(now);
    let admitted = match cost {
        Cost::Consume(hits) => {
            let admitted = count.checked_add(hits).is_some_and(|total| total <= limit);
            if admitted {
                count += hits;
            }
            admitted
        }
        Cost::Refund(hits) => {
            count = count.saturating_sub(hits);
            true
        }
        Cost::Release(_) => true,
    };
    *state = KeyState::Window { start, count };
    Verdict {
        admitted,
        remaining: limit.saturating_sub(count),
        reset_after,
        lease: None,
    }
}

fn token_bucket(rate: &Rate, state: &mut KeyState, cost: Cost, now: Nanos) -> Verdict {
    let interval = u128::from(rate.emission_interval());
    // A zero rate never refills, so it admits nothing (emission_interval
    // treats it as one per unit, which would let `burst` through per unit).
    let capacity = u128::from(full_quota(rate)) * interval;
    // The arrival time must stay representable: a clamped one would be too
    // early and hand out capacity near the end of time.
    let latest = u128::from(Nanos::MAX);
    let (tat, seen) = match *state {
        KeyState::Gcra { tat, seen } => (tat, seen),
        _ => (now, now),
    };
    let now = now.max(seen);
    let base = u128::from(tat.max(now));
    let now_wide = u128::from(now);
    let (admitted, new_tat) = match cost {
        Cost::Consume(hits) => {
            let candidate = base + u128::from(hits) * interval;
            if candidate - now_wide <= capacity && candidate <= latest {
                (true, candidate)
            } else {
                (false, base)
            }
        }
        // A refund moves the arrival time back, but never before now: the
        // bucket cannot hold more than its capacity.
        Cost::Refund(hits) => (
            true,
            base.saturating_sub(u128::from(hits) * interval)
                .max(now_wide),
        ),
        Cost::Release(_) => (true, base),
    };
    let new_tat = Nanos::try_from(new_tat).unwrap_or(Nanos::MAX);
    *state = KeyState::Gcra {
        tat: new_tat,
        seen: now,
    };
    let used = u128::from(new_tat - now);
    let room = capacity
        .saturating_sub(used)
        .min(latest - u128::from(new_tat));
    let remaining = room / interval;
    Verdict {
        admitted,
        remaining: u64::try_from(remaining).unwrap_or(u64::MAX),
        reset_after: new_tat - now,
        lease: None,
    }
}

fn sliding_window(rate: &Rate, state: &mut KeyState, cost: Cost, now: Nanos) -> Verdict {
    let period = rate.period();
    let limit = u128::from(rate.requests_per_unit);
    let (mut start, mut previous, mut current, seen) = match *state {
        KeyState::Sliding {
            start,
            previous,
            current,
            seen,
        } => (start, previous, current, seen),
        _ => (window_start(now, period), 0, 0, now),
    };
    let now = now.max(seen).max(start);
    let aligned = window_start(now, period);
    if aligned > start {
        previous = if aligned - start == period {
            current
        } else {
            0
        };
        current = 0;
        start = aligned;
    }
    let elapsed = u128::from(now - start);
    let period_wide = u128::from(period);
    // The estimate, scaled by `period` to stay exact in integers:
    // previous * (period - elapsed) / period + current.
    let carried = u128::from(previous) * (period_wide - elapsed);
    let fits = |current: u64| carried + u128::from(current) * period_wide <= limit * period_wide;
    let admitted = match cost {
        Cost::Consume(hits) => match current.checked_add(hits) {
            Some(total) if fits(total) => {
                current = total;
                true
            }
            _ => false,
        },
        Cost::Refund(hits) => {
            current = current.saturating_sub(hits);
            true
        }
        Cost::Release(_) => true,
    };
    *state = KeyState::Sliding {
        start,
        previous,
        current,
        seen: now,
    };
    let budget = (limit * period_wide).saturating_sub(carried) / period_wide;
    let remaining = budget.saturating_sub(u128::from(current));
    Verdict {
        admitted,
        remaining: u64::try_from(remaining).unwrap_or(u64::MAX),
        reset_after: start.saturating_add(period) - now,
        lease: None,
    }
}

fn concurrency(rate: &Rate, state: &mut KeyState, cost: Cost, now: Nanos) -> Verdict {
    let limit = rate.requests_per_unit;
    let ttl = rate.period();
    if !matches!(state, KeyState::Leases { .. }) {
        *state = KeyState::Leases {
            held: Vec::new(),
            next_id: 1,
            seen: now,
        };
    }
    let KeyState::Leases {
        held,
        next_id,
        seen,
    } = state
    else {
        unreachable!("state was set to leases above");
    };
    let now = now.max(*seen);
    *seen = now;
    // An expiry saturated at Nanos::MAX lies beyond the end of time: such a
    // lease never expires (else leases acquired at Nanos::MAX would be free).
    held.retain(|lease| lease.expires_at > now || lease.expires_at == Nanos::MAX);
    let in_use = |held: &Vec<Lease>| held.iter().map(|lease| lease.units).sum::<u64>();
    let mut lease = None;
    let admitted = match cost {
        Cost::Consume(0) => in_use(held) <= limit,
        Cost::Consume(units) => {
            let fits = in_use(held)
                .checked_add(units)
                .is_some_and(|total| total <= limit);
            if fits {
                let id = *next_id;
                *next_id += 1;
                held.push(Lease {
                    id,
                    units,
                    expires_at: now.saturating_add(ttl),
                });
                lease = Some(id);
            }
            fits
        }
        Cost::Refund(mut units) => {
            // Release the oldest leases first; a partial release shrinks one.
            while units > 0 {
                let Some(oldest) = held.first_mut() else {
                    break;
                };
                if oldest.units <= units {
                    units -= oldest.units;
                    held.remove(0);
                } else {
                    oldest.units -= units;
                    units = 0;
                }
            }
            true
        }
        Cost::Release(id) => {
            held.retain(|lease| lease.id != id);
            true
        }
    };
    let used = in_use(held);
    let reset_after = held
        .iter()
        .map(|lease| lease.expires_at - now)
        .min()
        .unwrap_or(0);
    Verdict {
        admitted,
        remaining: limit.saturating_sub(used),
        reset_after,
        lease,
    }
}

/// One limit's part in a request decided by [`decide_all`].
#[derive(Debug)]
pub struct Check<'a> {
    /// The limit's rate.
    pub rate: &'a Rate,
    /// The key's counter state; updated in place.
    pub state: &'a mut KeyState,
    /// What the request asks of this limit.
    pub cost: Cost,
    /// A shadow limit is counted and reported but never rejects.
    pub shadow: bool,
}

/// Decides every limit of one request at once, all or nothing: the request
/// is admitted only if every non-shadow limit admits it, and a rejected
/// request consumes from none of its limits (shadow ones included). Refunds
/// and releases always apply.
///
/// `verdicts` receives one verdict per check, in order; it is cleared first
/// (passed in so the hot path can reuse its buffer). Returns whether the
/// request is admitted.
///
/// Checks are decided in order. Each check borrows its state exclusively,
/// so one state cannot appear twice in a request (the borrow checker
/// rejects it, see below): a store that meets the same key twice in one
/// request must merge those into one check (for consumes, by summing the
/// hits, which admits exactly what deciding them in turn would).
///
/// ```
/// use floodgate_limiter::algo::{decide_all, Check, Cost, KeyState};
/// use floodgate_limiter::model::{Algorithm, Rate, Unit};
///
/// let rate = Rate::new(Algorithm::FixedWindow, 1, Unit::Second);
/// let (mut one, mut other) = (KeyState::Empty, KeyState::Empty);
/// let mut checks = [
///     Check { rate: &rate, state: &mut one, cost: Cost::Consume(1), shadow: false },
///     Check { rate: &rate, state: &mut other, cost: Cost::Consume(1), shadow: false },
/// ];
/// assert!(decide_all(&mut checks, 0, &mut Vec::new()));
/// ```
///
/// The same state twice does not compile (E0499):
///
/// ```compile_fail,E0499
/// use floodgate_limiter::algo::{decide_all, Check, Cost, KeyState};
/// use floodgate_limiter::model::{Algorithm, Rate, Unit};
///
/// let rate = Rate::new(Algorithm::FixedWindow, 1, Unit::Second);
/// let mut state = KeyState::Empty;
/// let mut checks = [
///     Check { rate: &rate, state: &mut state, cost: Cost::Consume(1), shadow: false },
///     Check { rate: &rate, state: &mut state, cost: Cost::Consume(1), shadow: false },
/// ];
/// decide_all(&mut checks, 0, &mut Vec::new());
/// ```
pub fn decide_all(checks: &mut [Check<'_>], now: Nanos, verdicts: &mut Vec<Verdict>) -> bool {
    verdicts.clear();
    // Fast path: one check needs no undo log, since a rejected decision
    // leaves its state unchanged.
    if let [only] = checks {
        let verdict = decide(only.rate, only.state, only.cost, now);
        verdicts.push(verdict);
        return verdict.admitted || only.shadow;
    }
    let originals: Vec<KeyState> = checks.iter().map(|check| check.state.clone()).collect();
    let mut admitted = true;
    for check in checks.iter_mut() {
        let verdict = decide(check.rate, check.state, check.cost, now);
        admitted &= verdict.admitted || check.shadow;
        verdicts.push(verdict);
    }
    if admitted {
        return true;
    }
    // Rejected: put every state back, then re-apply only refunds and
    // releases.
    for (check, original) in checks.iter_mut().zip(originals).rev() {
        *check.state = original;
    }
    for check in checks.iter_mut() {
        if !matches!(check.cost, Cost::Consume(_)) {
            decide(check.rate, check.state, check.cost, now);
        }
    }
    // Report each limit's quota as the request left it, keeping which limit
    // said no.
    for (verdict, check) in verdicts.iter_mut().zip(checks.iter_mut()) {
        let left = decide(check.rate, check.state, Cost::Consume(0), now);
        verdict.remaining = left.remaining;
        verdict.reset_after = left.reset_after;
        verdict.lease = None;
    }
    false
}
