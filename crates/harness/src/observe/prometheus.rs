//! Reading series from a Prometheus server instead of scraping.
//!
//! Each tick asks `GET /api/v1/query_range` for `match` (by default every
//! `floodgate_*` series) from just after the last instant read up to now,
//! at the observe interval as `step`; the answer (a `matrix`) becomes one
//! [`Exposition`] per instant, fed to the same time-series store in time
//! order. The first tick reads back [`BACKFILL_MS`], so the SLO short
//! windows have data from the start.
//!
//! Prometheus keeps no `# TYPE` in query answers: names ending `_total`,
//! `_bucket`, `_count` or `_sum` are read as counters, the rest as gauges.
//! Prometheus's own `instance` and `job` labels are kept.

use crate::observe::exposition::{
    parse_value, Exposition, MetricType, Sample, MAX_SAMPLES_PER_SCRAPE,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// The series read when no `--prometheus-match` is given.
pub const DEFAULT_MATCH: &str = r#"{__name__=~"floodgate_.+"}"#;
/// How far back the first tick reads.
pub const BACKFILL_MS: u64 = 60 * 60 * 1000;
/// The largest answer accepted, in bytes.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// The most instants one answer may hold (Prometheus's own cap is 11,000
/// points per series).
pub const MAX_INSTANTS: usize = 11_000;
/// The longest one query may take.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a query failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrometheusError(pub String);

impl fmt::Display for PrometheusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PrometheusError {}

#[derive(Debug, Deserialize)]
struct Response {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<RangeSeries>,
}

#[derive(Debug, Deserialize)]
struct RangeSeries {
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

/// How a series read from Prometheus is stored.
pub fn metric_type(name: &str) -> MetricType {
    if ["_total", "_bucket", "_count", "_sum"]
        .iter()
        .any(|suffix| name.ends_with(suffix))
    {
        MetricType::Counter
    } else {
        MetricType::Gauge
    }
}

/// Parses a `query_range` answer into one exposition per instant (in time
/// order, times in milliseconds). Series without `__name__` are skipped.
pub fn parse_query_range(body: &[u8]) -> Result<Vec<(u64, Exposition)>, PrometheusError> {
    if body.len() > MAX_RESPONSE_BYTES {
        return Err(PrometheusError(format!(
            "answer of {} bytes, more than {MAX_RESPONSE_BYTES}",
            body.len()
        )));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let response: Response = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|error| PrometheusError(format!("{}: {}", error.path(), error.inner())))?;
    if response.status != "success" {
        return Err(PrometheusError(format!(
            "{}: {}",
            response
                .error_type
                .unwrap_or_else(|| response.status.clone()),
            response.error.unwrap_or_default()
        )));
    }
    let data = response
        .data
        .ok_or_else(|| PrometheusError("data: missing".into()))?;
    if data.result_type != "matrix" {
        return Err(PrometheusError(format!(
            "data.resultType: {:?}, expected \"matrix\" (a range query)",
            data.result_type
        )));
    }
    let mut instants: BTreeMap<u64, Exposition> = BTreeMap::new();
    for (index, series) in data.result.into_iter().enumerate() {
        let Some(name) = series.metric.get("__name__").cloned() else {
            continue;
        };
        let labels: Vec<(String, String)> = series
            .metric
            .into_iter()
            .filter(|(label, _)| label != "__name__")
            .collect();
        for (point, (seconds, text)) in series.values.into_iter().enumerate() {
            if !seconds.is_finite() || seconds < 0.0 {
                return Err(PrometheusError(format!(
                    "data.result[{index}].values[{point}]: bad timestamp {seconds}"
                )));
            }
            let value = parse_value(&text).ok_or_else(|| {
                PrometheusError(format!(
                    "data.result[{index}].values[{point}]: {text:?} is not a number"
                ))
            })?;
            let time_ms = (seconds * 1000.0).round() as u64;
            if !instants.contains_key(&time_ms) && instants.len() >= MAX_INSTANTS {
                return Err(PrometheusError(format!(
                    "more than {MAX_INSTANTS} instants in one answer"
                )));
            }
            let exposition = instants.entry(time_ms).or_default();
            if exposition.samples.len() >= MAX_SAMPLES_PER_SCRAPE {
                return Err(PrometheusError(format!(
                    "more than {MAX_SAMPLES_PER_SCRAPE} samples at one instant"
                )));
            }
            exposition
                .types
                .entry(name.clone())
                .or_insert_with(|| metric_type(&name));
            exposition.samples.push(Sample {
                name: name.clone(),
                labels: labels.clone(),
                value,
            });
        }
    }
    Ok(instants.into_iter().collect())
}

/// A Prometheus server's HTTP query API as a source of samples.
#[derive(Debug, Clone)]
pub struct PrometheusSource {
    base: String,
    query: String,
    step_ms: u64,
    client: reqwest::Client,
    /// The last instant fed to the store.
    last_ms: Option<u64>,
}

impl PrometheusSource {
    /// `base` like `http://127.0.0.1:9090`; `query` a series selector (or
    /// any PromQL answering a matrix); `step_ms` the observe interval.
    pub fn new(base: &str, query: &str, step_ms: u64) -> PrometheusSource {
        PrometheusSource {
            base: base.trim_end_matches('/').to_owned(),
            query: query.to_owned(),
            step_ms: step_ms.max(1000),
            client: reqwest::Client::new(),
            last_ms: None,
        }
    }

    /// Reads the instants after the last one read, up to `now_ms`.
    pub async fn fetch(&mut self, now_ms: u64) -> Result<Vec<(u64, Exposition)>, PrometheusError> {
        let start_ms = match self.last_ms {
            Some(last) => last + 1,
            None => now_ms.saturating_sub(BACKFILL_MS),
        };
        if start_ms > now_ms {
            return Ok(Vec::new());
        }
        let seconds = |ms: u64| format!("{}.{:03}", ms / 1000, ms % 1000);
        let url = format!("{}/api/v1/query_range", self.base);
        let request = self
            .client
            .get(&url)
            .query(&[
                ("query", self.query.clone()),
                ("start", seconds(start_ms)),
                ("end", seconds(now_ms)),
                ("step", seconds(self.step_ms)),
            ])
            .timeout(QUERY_TIMEOUT);
        let response = request
            .send()
            .await
            .map_err(|error| PrometheusError(format!("{url}: {error}")))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|error| PrometheusError(format!("{url}: {error}")))?;
        if !status.is_success() && status.as_u16() != 400 && status.as_u16() != 422 {
            return Err(PrometheusError(format!("{url}: HTTP {status}")));
        }
        let instants = parse_query_range(&body)?;
        let fresh: Vec<(u64, Exposition)> = instants
            .into_iter()
            .filter(|(time, _)| self.last_ms.is_none_or(|last| *time > last) && *time <= now_ms)
            .collect();
        if let Some((last, _)) = fresh.last() {
            self.last_ms = Some(*last);
        }
        Ok(fresh)
    }
}
