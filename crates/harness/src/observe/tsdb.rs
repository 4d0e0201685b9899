//! A bounded in-memory time-series store, good for every window the SLOs
//! need (5 minutes to 3 days).
//!
//! - A series is a metric name plus its sorted labels.
//! - Each series keeps a ring of raw points at scrape resolution for
//!   [`RAW_RETENTION_MS`] (7 hours: the longest short window of the default
//!   alert table is 6 hours), and downsampled buckets of [`BUCKET_MS`]
//!   (5 minutes) for [`RETENTION_MS`] (3 days, the longest long window, plus
//!   one bucket).
//! - Counters are stored reset-adjusted: when a value drops, the value
//!   before the drop is added to an offset, so `increase(start, end)` over
//!   any window, at either resolution, is one subtraction — counter resets
//!   (a service restart) never read as negative or lost traffic.
//! - A counter series that appears after its target's first scrape gets an
//!   implicit zero at the previous scrape: a `code="error"` series born with
//!   value 50 means 50 errors happened, not that they were always there.
//!
//! Memory (default limits): a raw point is 16 bytes and the ring holds at
//! most [`DEFAULT_RAW_POINTS`] (2,520 = 7 h at 10 s), 40 KiB; a bucket is
//! 56 bytes and at most [`MAX_BUCKETS`] (866) are kept, 47 KiB; so about
//! 90 KiB per series, and at most [`MAX_SERIES`] (500) series: ~45 MiB worst
//! case. The rate-limit service exports well under 200 series. Samples of
//! series beyond the bound are dropped and counted
//! ([`TsdbStats::dropped_samples`]), never stored.

use crate::observe::exposition::{Exposition, MetricType};
use crate::observe::selector::Selector;
use crate::quantity::{DAY_MS, HOUR_MS, MINUTE_MS};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// How long raw points are kept: the longest short window of the default
/// alert table (6 h) plus an hour of margin.
pub const RAW_RETENTION_MS: u64 = 7 * HOUR_MS;
/// The scrape interval the raw ring is sized for.
pub const DEFAULT_SCRAPE_INTERVAL_MS: u64 = 10_000;
/// Raw points per series: [`RAW_RETENTION_MS`] at [`DEFAULT_SCRAPE_INTERVAL_MS`].
/// Faster scrapes (simulations) shorten the raw span; queries then fall back
/// to buckets, never to unbounded memory.
pub const DEFAULT_RAW_POINTS: usize = (RAW_RETENTION_MS / DEFAULT_SCRAPE_INTERVAL_MS) as usize;
/// The downsampling step beyond the raw span: 5 minutes, 0.1% of a 3-day
/// window.
pub const BUCKET_MS: u64 = 5 * MINUTE_MS;
/// How far back any query can reach: the longest window of the default
/// alert table (3 days), plus one bucket so a 3-day window is whole.
pub const RETENTION_MS: u64 = 3 * DAY_MS + BUCKET_MS;
/// Buckets per series: [`RETENTION_MS`] / [`BUCKET_MS`] plus the open one.
pub const MAX_BUCKETS: usize = (RETENTION_MS / BUCKET_MS) as usize + 1;
/// The most series held at once (a few hundred are expected; see the module
/// doc for the memory this bounds).
pub const MAX_SERIES: usize = 500;
/// The most points one range query answers.
pub const MAX_RANGE_POINTS: usize = 11_000;

/// The label the store adds to tell targets apart.
pub const INSTANCE_LABEL: &str = "instance";

/// The bounds of one store. [`TsdbLimits::default`] is what the harness
/// uses; tests shrink them to exercise eviction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TsdbLimits {
    pub max_series: usize,
    pub raw_points: usize,
    pub bucket_ms: u64,
    pub retention_ms: u64,
}

impl Default for TsdbLimits {
    fn default() -> Self {
        TsdbLimits {
            max_series: MAX_SERIES,
            raw_points: DEFAULT_RAW_POINTS,
            bucket_ms: BUCKET_MS,
            retention_ms: RETENTION_MS,
        }
    }
}

/// How a series' values combine over time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeriesKind {
    /// Monotonic; stored reset-adjusted; read with increase and rate.
    Counter,
    /// Any value; read as the latest value or an average.
    Gauge,
}

impl SeriesKind {
    /// Counters, histogram and summary parts, and untyped `_total` names are
    /// counters; the rest are gauges.
    pub fn of(exposition: &Exposition, name: &str) -> SeriesKind {
        match exposition.type_of(name) {
            MetricType::Counter => SeriesKind::Counter,
            MetricType::Untyped if name.ends_with("_total") => SeriesKind::Counter,
            _ => SeriesKind::Gauge,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    time_ms: u64,
    /// Reset-adjusted for counters; as scraped for gauges.
    value: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Bucket {
    start_ms: u64,
    last: Point,
    min: f64,
    max: f64,
    sum: f64,
    count: u32,
}

#[derive(Debug, Clone)]
struct Series {
    kind: SeriesKind,
    raw: VecDeque<Point>,
    buckets: VecDeque<Bucket>,
    /// Counters: the last value as scraped, to detect resets.
    last_scraped: f64,
    /// Counters: the sum of values lost to resets.
    offset: f64,
    resets: u64,
}

impl Series {
    fn new(kind: SeriesKind) -> Series {
        Series {
            kind,
            raw: VecDeque::new(),
            buckets: VecDeque::new(),
            last_scraped: 0.0,
            offset: 0.0,
            resets: 0,
        }
    }

    fn last_time(&self) -> Option<u64> {
        self.raw.back().map(|point| point.time_ms)
    }

    fn push(&mut self, time_ms: u64, scraped: f64, limits: &TsdbLimits) {
        let value = match self.kind {
            SeriesKind::Counter => {
                if scraped < self.last_scraped {
                    self.offset += self.last_scraped;
                    self.resets += 1;
                }
                self.last_scraped = scraped;
                scraped + self.offset
            }
            SeriesKind::Gauge => scraped,
        };
        let point = Point { time_ms, value };
        self.raw.push_back(point);
        while self.raw.len() > limits.raw_points.max(1) {
            self.raw.pop_front();
        }
        let start_ms = time_ms - time_ms % limits.bucket_ms.max(1);
        match self.buckets.back_mut() {
            Some(bucket) if bucket.start_ms == start_ms => {
                bucket.last = point;
                bucket.min = bucket.min.min(value);
                bucket.max = bucket.max.max(value);
                bucket.sum += value;
                bucket.count = bucket.count.saturating_add(1);
            }
            _ => self.buckets.push_back(Bucket {
                start_ms,
                last: point,
                min: value,
                max: value,
                sum: value,
                count: 1,
            }),
        }
        let oldest = time_ms.saturating_sub(limits.retention_ms);
        while self
            .buckets
            .front()
            .is_some_and(|bucket| bucket.last.time_ms < oldest)
            || self.buckets.len() > MAX_BUCKETS.max(1)
        {
            self.buckets.pop_front();
        }
    }

    /// The last point at or before `time_ms`, at the finest resolution that
    /// still holds it; `None` when the series has no point that old.
    fn at(&self, time_ms: u64) -> Option<Point> {
        if self
            .raw
            .front()
            .is_some_and(|first| first.time_ms <= time_ms)
        {
            let index = self.raw.partition_point(|point| point.time_ms <= time_ms);
            return index.checked_sub(1).and_then(|i| self.raw.get(i)).copied();
        }
        let index = self
            .buckets
            .partition_point(|bucket| bucket.last.time_ms <= time_ms);
        index
            .checked_sub(1)
            .and_then(|i| self.buckets.get(i))
            .map(|bucket| bucket.last)
    }

    /// The oldest point held (a bucket's last point when buckets reach
    /// further back than the raw ring).
    fn earliest(&self) -> Option<Point> {
        let bucket = self.buckets.front().map(|bucket| bucket.last);
        let raw = self.raw.front().copied();
        match (bucket, raw) {
            (Some(b), Some(r)) => Some(if b.time_ms < r.time_ms { b } else { r }),
            (b, r) => b.or(r),
        }
    }

    /// Counter increase over (start, end]: adjusted value at end minus at
    /// start; a series younger than the window counts from its first point.
    fn increase(&self, start_ms: u64, end_ms: u64) -> Option<f64> {
        let end = self.at(end_ms)?;
        let start = match self.at(start_ms) {
            Some(point) => point,
            None => self.earliest()?,
        };
        if start.time_ms > end.time_ms {
            return None;
        }
        Some((end.value - start.value).max(0.0))
    }

    /// The mean of the values in (start, end]: raw points when the raw ring
    /// reaches back to `start`, bucket means otherwise.
    fn mean(&self, start_ms: u64, end_ms: u64) -> Option<(f64, u64)> {
        let mut sum = 0.0;
        let mut count: u64 = 0;
        if self
            .raw
            .front()
            .is_some_and(|first| first.time_ms <= start_ms)
        {
            for point in self
                .raw
                .iter()
                .filter(|p| p.time_ms > start_ms && p.time_ms <= end_ms)
            {
                sum += point.value;
                count += 1;
            }
        } else {
            for bucket in self
                .buckets
                .iter()
                .filter(|b| b.last.time_ms > start_ms && b.start_ms <= end_ms)
            {
                sum += bucket.sum;
                count += u64::from(bucket.count);
            }
        }
        (count > 0).then(|| (sum / count as f64, count))
    }
}

/// Counts of what the store holds and refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TsdbStats {
    pub series: usize,
    pub raw_points: usize,
    pub buckets: usize,
    /// Samples of new series refused because [`TsdbLimits::max_series`] was
    /// reached.
    pub dropped_samples: u64,
    /// Samples at or before their series' last time, or NaN.
    pub ignored_samples: u64,
    /// Series no query reads, evicted at the cap for one a query reads
    /// (or one the harness records).
    pub evicted_series: u64,
    /// Counter resets seen.
    pub resets: u64,
    /// An estimate of the bytes held by points and buckets.
    pub approx_bytes: usize,
}

/// The outcome of a counter increase over a window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Increase {
    /// Summed over every matching series.
    pub value: f64,
    /// How many series contributed.
    pub series: usize,
}

/// The store. Not thread-safe by itself: the harness owns it and ticks it.
#[derive(Debug, Clone)]
pub struct Tsdb {
    limits: TsdbLimits,
    /// name → sorted labels → series. Ordered so every query and report is
    /// deterministic.
    series: BTreeMap<String, BTreeMap<Vec<(String, String)>, Series>>,
    count: usize,
    /// instance → time of its last ingested scrape (for the implicit zero of
    /// series born later).
    last_scrape_ms: HashMap<String, u64>,
    /// The time of the first sample ever ingested: windows reaching before
    /// it are only partly covered.
    first_ms: Option<u64>,
    latest_ms: Option<u64>,
    dropped_samples: u64,
    ignored_samples: u64,
    /// The families the harness's queries read (SLIs, criteria metrics,
    /// anomaly series): at the series cap, a new series of one of them (or
    /// one the harness records itself) takes the place of the stalest
    /// series no query reads, so a full store never blinds an objective.
    wanted: BTreeSet<String>,
    /// Series evicted that way.
    evicted_series: u64,
}

impl Default for Tsdb {
    fn default() -> Self {
        Tsdb::new(TsdbLimits::default())
    }
}

impl Tsdb {
    pub fn new(limits: TsdbLimits) -> Tsdb {
        Tsdb {
            limits,
            series: BTreeMap::new(),
            count: 0,
            last_scrape_ms: HashMap::new(),
            first_ms: None,
            latest_ms: None,
            dropped_samples: 0,
            ignored_samples: 0,
            wanted: BTreeSet::new(),
            evicted_series: 0,
        }
    }

    /// Names the families the harness's queries read (see [`Tsdb::wanted`]):
    /// they, and every series [`Tsdb::record`] writes, are kept before any
    /// other when the series cap is reached.
    pub fn want(&mut self, families: impl IntoIterator<Item = String>) {
        self.wanted.extend(families);
    }

    pub fn limits(&self) -> TsdbLimits {
        self.limits
    }

    /// The time of the first sample ingested.
    pub fn first_ms(&self) -> Option<u64> {
        self.first_ms
    }

    /// The time of the latest sample ingested.
    pub fn latest_ms(&self) -> Option<u64> {
        self.latest_ms
    }

    /// How much of the window `(end - window, end]` has data: from the later
    /// of its start and the first ingest, to its end.
    pub fn coverage_ms(&self, window_ms: u64, end_ms: u64) -> u64 {
        match self.first_ms {
            Some(first) if first <= end_ms => {
                let start = end_ms.saturating_sub(window_ms).max(first);
                end_ms - start
            }
            _ => 0,
        }
    }

    /// Ingests one scrape of one target. `instance`, when not empty, is
    /// added as the `instance` label so two targets' counters stay apart.
    pub fn ingest(&mut self, time_ms: u64, instance: &str, exposition: &Exposition) {
        let previous = self.last_scrape_ms.get(instance).copied();
        for sample in &exposition.samples {
            let kind = SeriesKind::of(exposition, &sample.name);
            let mut labels = sample.labels.clone();
            if !instance.is_empty() {
                labels.retain(|(label, _)| label != INSTANCE_LABEL);
                labels.push((INSTANCE_LABEL.to_owned(), instance.to_owned()));
                labels.sort();
            }
            self.push(time_ms, &sample.name, labels, sample.value, kind, previous);
        }
        self.last_scrape_ms.insert(instance.to_owned(), time_ms);
        self.collect_garbage(time_ms);
    }

    /// Records one value of one series (the harness's own series: invariant
    /// results, anomaly scores). `labels` need not be sorted.
    pub fn record(
        &mut self,
        time_ms: u64,
        name: &str,
        mut labels: Vec<(String, String)>,
        value: f64,
        kind: SeriesKind,
    ) {
        labels.sort();
        if !self.wanted.contains(name) {
            self.wanted.insert(name.to_owned());
        }
        self.push(time_ms, name, labels, value, kind, None);
    }

    fn push(
        &mut self,
        time_ms: u64,
        name: &str,
        labels: Vec<(String, String)>,
        value: f64,
        kind: SeriesKind,
        previous_scrape_ms: Option<u64>,
    ) {
        if value.is_nan() {
            self.ignored_samples += 1;
            return;
        }
        let limits = self.limits;
        let is_new = self
            .series
            .get(name)
            .is_none_or(|family| !family.contains_key(&labels));
        if is_new && self.count >= limits.max_series && self.wanted.contains(name) {
            self.evict_unwanted();
        }
        let at_capacity = self.count >= limits.max_series;
        if !self.series.contains_key(name) {
            self.series.insert(name.to_owned(), BTreeMap::new());
        }
        let Some(family) = self.series.get_mut(name) else {
            return;
        };
        let series = match family.get_mut(&labels) {
            Some(series) => series,
            None => {
                if at_capacity {
                    self.dropped_samples += 1;
                    if family.is_empty() {
                        self.series.remove(name);
                    }
                    return;
                }
                self.count += 1;
                let mut series = Series::new(kind);
                if let (SeriesKind::Counter, Some(previous)) = (kind, previous_scrape_ms) {
                    if previous < time_ms {
                        series.push(previous, 0.0, &limits);
                    }
                }
                family.entry(labels).or_insert(series)
            }
        };
        if series.last_time().is_some_and(|last| last >= time_ms) {
            self.ignored_samples += 1;
            return;
        }
        series.push(time_ms, value, &limits);
        self.first_ms = Some(self.first_ms.map_or(time_ms, |first| first.min(time_ms)));
        self.latest_ms = Some(self.latest_ms.map_or(time_ms, |latest| latest.max(time_ms)));
    }

    /// Drops series with no point within the retention.
    /// Removes the series no query reads whose last sample is the oldest
    /// (the first in name and label order among equals); `false` when every
    /// series held is wanted.
    fn evict_unwanted(&mut self) -> bool {
        let victim = self
            .series
            .iter()
            .filter(|(name, _)| !self.wanted.contains(*name))
            .flat_map(|(name, family)| {
                family
                    .iter()
                    .map(move |(labels, series)| (series.last_time(), name, labels))
            })
            .min_by_key(|(last, _, _)| *last)
            .map(|(_, name, labels)| (name.clone(), labels.clone()));
        let Some((name, labels)) = victim else {
            return false;
        };
        if let Some(family) = self.series.get_mut(&name) {
            family.remove(&labels);
            if family.is_empty() {
                self.series.remove(&name);
            }
        }
        self.count -= 1;
        self.evicted_series += 1;
        true
    }

    fn collect_garbage(&mut self, now_ms: u64) {
        let oldest = now_ms.saturating_sub(self.limits.retention_ms);
        let mut removed = 0;
        self.series.retain(|_, family| {
            family.retain(|_, series| {
                let keep = series.last_time().is_some_and(|last| last >= oldest);
                if !keep {
                    removed += 1;
                }
                keep
            });
            !family.is_empty()
        });
        self.count -= removed;
    }

    fn matching<'a>(
        &'a self,
        selector: &'a Selector,
    ) -> impl Iterator<Item = (&'a [(String, String)], &'a Series)> + 'a {
        self.series
            .get(&selector.name)
            .into_iter()
            .flat_map(move |family| {
                family
                    .iter()
                    .filter(move |(labels, _)| selector.matches(&selector.name, labels))
                    .map(|(labels, series)| (labels.as_slice(), series))
            })
    }

    /// The summed counter increase of every matching series over
    /// `(end - window, end]`; `None` when nothing matches or no series has a
    /// point by `end`.
    pub fn increase(&self, selector: &Selector, window_ms: u64, end_ms: u64) -> Option<Increase> {
        let start_ms = end_ms.saturating_sub(window_ms);
        let mut total = Increase {
            value: 0.0,
            series: 0,
        };
        for (_, series) in self.matching(selector) {
            if let Some(increase) = series.increase(start_ms, end_ms) {
                total.value += increase;
                total.series += 1;
            }
        }
        (total.series > 0).then_some(total)
    }

    /// Per-second rate over the window: the increase divided by the covered
    /// span (not the nominal window, so a young store does not under-read).
    pub fn rate(&self, selector: &Selector, window_ms: u64, end_ms: u64) -> Option<f64> {
        let increase = self.increase(selector, window_ms, end_ms)?;
        let covered = self.coverage_ms(window_ms, end_ms);
        (covered > 0).then(|| increase.value / (covered as f64 / 1000.0))
    }

    /// The sum of every matching series' latest value at or before `at_ms`
    /// (for counters, the reset-adjusted value: monotonic across restarts).
    pub fn value_at(&self, selector: &Selector, at_ms: u64) -> Option<f64> {
        let mut sum = 0.0;
        let mut found = false;
        for (_, series) in self.matching(selector) {
            if let Some(point) = series.at(at_ms) {
                sum += point.value;
                found = true;
            }
        }
        found.then_some(sum)
    }

    /// The mean over `(end - window, end]` of the sum of matching gauges
    /// (each series' mean, summed).
    pub fn mean(&self, selector: &Selector, window_ms: u64, end_ms: u64) -> Option<f64> {
        let start_ms = end_ms.saturating_sub(window_ms);
        let mut sum = 0.0;
        let mut found = false;
        for (_, series) in self.matching(selector) {
            if let Some((mean, _)) = series.mean(start_ms, end_ms) {
                sum += mean;
                found = true;
            }
        }
        found.then_some(sum)
    }

    /// The `q` quantile (0..1) of a histogram over the window, as
    /// Prometheus's `histogram_quantile` computes it: bucket increases summed
    /// across series per `le`, then linear interpolation inside the bucket
    /// that holds the rank. `bucket_selector` names the `_bucket` series.
    pub fn histogram_quantile(
        &self,
        q: f64,
        bucket_selector: &Selector,
        window_ms: u64,
        end_ms: u64,
    ) -> Option<f64> {
        if !(0.0..=1.0).contains(&q) {
            return None;
        }
        let start_ms = end_ms.saturating_sub(window_ms);
        let mut per_le: BTreeMap<OrderedLe, f64> = BTreeMap::new();
        for (labels, series) in self.matching(bucket_selector) {
            let Some(le) = labels
                .iter()
                .find(|(label, _)| label == "le")
                .and_then(|(_, value)| crate::observe::exposition::parse_value(value))
            else {
                continue;
            };
            if le.is_nan() {
                continue;
            }
            if let Some(increase) = series.increase(start_ms, end_ms) {
                *per_le.entry(OrderedLe(le)).or_default() += increase;
            }
        }
        let total = per_le.iter().next_back().map(|(_, count)| *count)?;
        if total <= 0.0
            || per_le
                .keys()
                .next_back()
                .is_none_or(|le| le.0 != f64::INFINITY)
        {
            return None;
        }
        let rank = q * total;
        let mut lower_bound = 0.0;
        let mut lower_count = 0.0;
        for (le, count) in &per_le {
            if *count >= rank {
                if le.0 == f64::INFINITY {
                    return Some(lower_bound);
                }
                let in_bucket = count - lower_count;
                if in_bucket <= 0.0 {
                    return Some(le.0);
                }
                return Some(lower_bound + (le.0 - lower_bound) * (rank - lower_count) / in_bucket);
            }
            lower_bound = le.0;
            lower_count = *count;
        }
        None
    }

    /// A range query: `f(end)` at every `step` from `start` to `end`
    /// inclusive, where `f` is a rate over `rate_window_ms` for counters
    /// (when given) or the value otherwise. Bounded by [`MAX_RANGE_POINTS`].
    pub fn range(
        &self,
        selector: &Selector,
        rate_window_ms: Option<u64>,
        start_ms: u64,
        end_ms: u64,
        step_ms: u64,
    ) -> Vec<(u64, f64)> {
        let mut out = Vec::new();
        if step_ms == 0 || start_ms > end_ms {
            return out;
        }
        let mut at = start_ms;
        while at <= end_ms && out.len() < MAX_RANGE_POINTS {
            let value = match rate_window_ms {
                Some(window) => self.rate(selector, window, at),
                None => self.value_at(selector, at),
            };
            if let Some(value) = value {
                out.push((at, value));
            }
            at = match at.checked_add(step_ms) {
                Some(next) => next,
                None => break,
            };
        }
        out
    }

    /// The latest value of every series, summed per metric name (the
    /// `metrics` map of invariant expressions).
    pub fn latest_by_name(&self) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for (name, family) in &self.series {
            let mut sum = 0.0;
            for series in family.values() {
                if let Some(point) = series.raw.back() {
                    sum += match series.kind {
                        SeriesKind::Counter => series.last_scraped,
                        SeriesKind::Gauge => point.value,
                    };
                }
            }
            out.insert(name.clone(), sum);
        }
        out
    }

    /// Metric names held.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.series.keys().map(String::as_str)
    }

    pub fn stats(&self) -> TsdbStats {
        let mut stats = TsdbStats {
            series: self.count,
            dropped_samples: self.dropped_samples,
            ignored_samples: self.ignored_samples,
            evicted_series: self.evicted_series,
            ..TsdbStats::default()
        };
        for family in self.series.values() {
            for series in family.values() {
                stats.raw_points += series.raw.len();
                stats.buckets += series.buckets.len();
                stats.resets += series.resets;
            }
        }
        stats.approx_bytes = stats.raw_points * std::mem::size_of::<Point>()
            + stats.buckets * std::mem::size_of::<Bucket>();
        stats
    }
}

/// A bucket bound usable as an ordered map key (never NaN: filtered before).
#[derive(Debug, Clone, Copy, PartialEq)]
struct OrderedLe(f64);

impl Eq for OrderedLe {}

impl PartialOrd for OrderedLe {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrderedLe {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::exposition::parse;

    fn scrape(db: &mut Tsdb, time_ms: u64, text: &str) {
        db.ingest(time_ms, "", &parse(text).expect("valid exposition"));
    }

    const TYPE: &str = "# TYPE c_total counter\n";

    #[test]
    fn increase_survives_counter_resets() {
        let mut db = Tsdb::default();
        scrape(&mut db, 0, &format!("{TYPE}c_total 0\n"));
        scrape(&mut db, 10_000, &format!("{TYPE}c_total 100\n"));
        scrape(&mut db, 20_000, &format!("{TYPE}c_total 30\n")); // restart: 30 new
        scrape(&mut db, 30_000, &format!("{TYPE}c_total 50\n"));
        let all = Selector::metric("c_total");
        let increase = db.increase(&all, 30_000, 30_000).expect("data");
        assert_eq!(increase.value, 150.0);
        assert_eq!(
            db.increase(&all, 10_000, 30_000).map(|i| i.value),
            Some(20.0)
        );
        assert_eq!(
            db.increase(&all, 20_000, 30_000).map(|i| i.value),
            Some(50.0)
        );
        assert_eq!(db.stats().resets, 1);
        assert_eq!(db.value_at(&all, 30_000), Some(150.0));
        assert_eq!(db.rate(&all, 20_000, 30_000), Some(2.5));
    }

    #[test]
    fn a_late_series_counts_from_zero() {
        let mut db = Tsdb::default();
        scrape(&mut db, 0, &format!("{TYPE}c_total{{code=\"ok\"}} 10\n"));
        scrape(
            &mut db,
            10_000,
            &format!("{TYPE}c_total{{code=\"ok\"}} 20\nc_total{{code=\"error\"}} 5\n"),
        );
        let errors = Selector::parse("c_total{code=\"error\"}").expect("selector");
        assert_eq!(
            db.increase(&errors, 60_000, 10_000).map(|i| i.value),
            Some(5.0)
        );
    }

    #[test]
    fn old_windows_fall_back_to_buckets_and_memory_is_bounded() {
        let limits = TsdbLimits {
            max_series: 3,
            raw_points: 30,
            ..TsdbLimits::default()
        };
        let mut db = Tsdb::new(limits);
        let step = 10_000;
        let steps = RETENTION_MS / step + 1000;
        for i in 0..steps {
            let text = format!("{TYPE}c_total 10 \nc_total{{x=\"1\"}} {}\n", i);
            scrape(&mut db, i * step, &text);
        }
        let end = (steps - 1) * step;
        let one = Selector::parse("c_total{x=\"1\"}").expect("selector");
        // 1 per step; a day back is far beyond the 30 raw points.
        let day = db.increase(&one, DAY_MS, end).expect("data").value;
        assert!(
            (day - (DAY_MS / step) as f64).abs() <= (BUCKET_MS / step) as f64,
            "{day}"
        );
        let stats = db.stats();
        assert_eq!(stats.series, 2);
        assert!(stats.raw_points <= 2 * 30);
        assert!(stats.buckets <= 2 * MAX_BUCKETS, "{stats:?}");
        // A third and a fourth new series: one fits, one is dropped.
        scrape(
            &mut db,
            end + step,
            &format!("{TYPE}c_total{{x=\"2\"}} 1\nc_total{{x=\"3\"}} 1\n"),
        );
        assert_eq!(db.stats().series, 3);
        assert_eq!(db.stats().dropped_samples, 1);
    }

    #[test]
    fn at_the_cap_a_wanted_series_takes_the_place_of_the_stalest_unwanted_one() {
        let limits = TsdbLimits {
            max_series: 3,
            ..TsdbLimits::default()
        };
        let mut db = Tsdb::new(limits);
        db.want(["wanted_total".to_owned()]);
        // Three unwanted series fill the store; "b" stops being scraped.
        scrape(
            &mut db,
            0,
            "# TYPE a_total counter\na_total 1\n# TYPE b_total counter\nb_total 1\n# TYPE c_total counter\nc_total 1\n",
        );
        scrape(
            &mut db,
            10_000,
            "# TYPE a_total counter\na_total 2\n# TYPE c_total counter\nc_total 2\n",
        );
        // A new unwanted series is dropped, as before.
        scrape(&mut db, 20_000, "# TYPE d_total counter\nd_total 1\n");
        assert_eq!(db.stats().dropped_samples, 1);
        assert_eq!(db.stats().evicted_series, 0);
        // A wanted one evicts the stalest unwanted series (b), and so does
        // a series the harness records itself.
        scrape(
            &mut db,
            30_000,
            "# TYPE wanted_total counter\nwanted_total{code=\"over_limit\"} 4\n",
        );
        db.record(30_000, "own_gauge", vec![], 1.0, SeriesKind::Gauge);
        let stats = db.stats();
        assert_eq!((stats.series, stats.evicted_series), (3, 2), "{stats:?}");
        assert!(db.value_at(&Selector::metric("b_total"), 30_000).is_none());
        assert_eq!(
            db.value_at(&Selector::metric("wanted_total"), 30_000),
            Some(4.0)
        );
        assert_eq!(
            db.value_at(&Selector::metric("own_gauge"), 30_000),
            Some(1.0)
        );
        // With nothing unwanted left to evict, a new wanted series is
        // dropped: the cap holds.
        scrape(
            &mut db,
            40_000,
            "# TYPE wanted_total counter\nwanted_total{code=\"ok\"} 1\nwanted_total{code=\"error\"} 1\nwanted_total{code=\"x\"} 1\n",
        );
        let stats = db.stats();
        assert_eq!(stats.series, 3, "{stats:?}");
        assert!(stats.dropped_samples >= 2, "{stats:?}");
    }

    #[test]
    fn histogram_quantile_interpolates() {
        let mut db = Tsdb::default();
        let text = |a: u64, b: u64, inf: u64| {
            format!(
                "# TYPE h histogram\nh_bucket{{le=\"0.001\"}} {a}\nh_bucket{{le=\"0.01\"}} {b}\nh_bucket{{le=\"+Inf\"}} {inf}\n"
            )
        };
        scrape(&mut db, 0, &text(0, 0, 0));
        scrape(&mut db, 10_000, &text(50, 100, 100));
        let buckets = Selector::metric("h_bucket");
        let p50 = db
            .histogram_quantile(0.5, &buckets, 60_000, 10_000)
            .expect("p50");
        assert!((p50 - 0.001).abs() < 1e-12, "{p50}");
        let p99 = db
            .histogram_quantile(0.99, &buckets, 60_000, 10_000)
            .expect("p99");
        assert!((p99 - (0.001 + 0.009 * 49.0 / 50.0)).abs() < 1e-12, "{p99}");
    }
}
