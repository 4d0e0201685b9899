//! A robust anomaly detector: median and MAD (median absolute deviation)
//! over a sliding window of recent values.
//!
//! Each new value gets a robust z-score, `(x − median) / (1.4826 × MAD)`
//! (1.4826 makes MAD estimate the standard deviation of normal data). A value
//! is *exceeding* when its score passes `threshold` in the watched
//! direction; an *alarm* is raised when `consecutive` values in a row
//! exceed, and the episode lasts until a value is back within the band. No
//! score is given during warm-up (fewer than `warmup` values seen).
//!
//! Why median/MAD: a few outliers (a burst, a slow scrape) move neither the
//! median nor the MAD, so the band does not widen after every spike the way
//! a mean/standard-deviation band does, and one wild value cannot mask the
//! next. The scale has a floor (`min_relative_scale` of the median) so a
//! perfectly flat series (MAD 0) does not alarm on the smallest wiggle.
//!
//! False alarm rate: measured in `tests/anomaly.rs` on a seeded steady
//! workload (Poisson arrivals, rate read over 1 minute at a 10 s tick, the
//! default settings); see the crate README for the figure.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// The longest history a detector may keep (a day at a 1-minute tick, or
/// 4 hours at 10 s): bounds the per-tick median's cost and memory.
pub const MAX_HISTORY: usize = 1440;
/// Normal data's MAD times this is its standard deviation.
pub const MAD_TO_SIGMA: f64 = 1.4826;

/// Which deviations count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Both,
    Up,
    Down,
}

/// A detector's settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DetectorConfig {
    /// Robust z-score beyond which a value exceeds.
    pub threshold: f64,
    /// Values in the sliding window.
    pub history: usize,
    /// Values needed before scoring starts.
    pub warmup: usize,
    /// Exceeding values in a row before an alarm.
    pub consecutive: u32,
    pub direction: Direction,
    /// The scale never falls below this fraction of |median|.
    pub min_relative_scale: f64,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            threshold: 6.0,
            history: 90,
            warmup: 30,
            consecutive: 3,
            direction: Direction::Both,
            min_relative_scale: 0.01,
        }
    }
}

impl DetectorConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(self.threshold.is_finite() && self.threshold > 0.0) {
            return Err(format!("threshold {} must be above 0", self.threshold));
        }
        if self.history < 5 || self.history > MAX_HISTORY {
            return Err(format!(
                "history {} must be between 5 and {MAX_HISTORY}",
                self.history
            ));
        }
        if self.warmup < 5 || self.warmup > self.history {
            return Err(format!(
                "warmup {} must be between 5 and history ({})",
                self.warmup, self.history
            ));
        }
        if self.consecutive == 0 || self.consecutive > 100 {
            return Err(format!(
                "consecutive {} must be between 1 and 100",
                self.consecutive
            ));
        }
        if !(0.0..=1.0).contains(&self.min_relative_scale) {
            return Err(format!(
                "min_relative_scale {} must be between 0 and 1",
                self.min_relative_scale
            ));
        }
        Ok(())
    }
}

/// Where a detector stands after a value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum DetectorState {
    WarmingUp {
        seen: usize,
        needed: usize,
    },
    Normal,
    /// Exceeding, but fewer than `consecutive` in a row.
    Exceeding {
        run: u32,
    },
    Anomalous {
        since_ms: u64,
        values: u64,
    },
}

/// The outcome of one value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub value: f64,
    pub median: Option<f64>,
    pub scale: Option<f64>,
    pub score: Option<f64>,
    pub state: DetectorState,
    /// True on the value that starts an anomalous episode (the alarm).
    pub alarm: bool,
}

/// One detector: a pure state machine over values (time is only recorded).
#[derive(Debug, Clone)]
pub struct Detector {
    config: DetectorConfig,
    window: VecDeque<f64>,
    run: u32,
    episode_since: Option<u64>,
    episode_values: u64,
    /// Alarms raised so far.
    pub alarms: u64,
    /// Reused for the medians (no allocation per value).
    scratch: Vec<f64>,
}

impl Detector {
    pub fn new(config: DetectorConfig) -> Detector {
        Detector {
            config,
            window: VecDeque::with_capacity(config.history.min(MAX_HISTORY)),
            run: 0,
            episode_since: None,
            episode_values: 0,
            alarms: 0,
            scratch: Vec::with_capacity(config.history.min(MAX_HISTORY)),
        }
    }

    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// Scores `value` against the values before it, then adds it to the
    /// window. Non-finite values are reported and not learned.
    pub fn observe(&mut self, time_ms: u64, value: f64) -> Verdict {
        if !value.is_finite() {
            return Verdict {
                value,
                median: None,
                scale: None,
                score: None,
                state: self.current_state(),
                alarm: false,
            };
        }
        let mut verdict = Verdict {
            value,
            median: None,
            scale: None,
            score: None,
            state: DetectorState::WarmingUp {
                seen: self.window.len(),
                needed: self.config.warmup,
            },
            alarm: false,
        };
        if self.window.len() >= self.config.warmup {
            self.scratch.clear();
            self.scratch.extend(self.window.iter().copied());
            let median = median_of(&mut self.scratch);
            for value in &mut self.scratch {
                *value = (*value - median).abs();
            }
            let mad = median_of(&mut self.scratch);
            let scale = (MAD_TO_SIGMA * mad)
                .max(self.config.min_relative_scale * median.abs())
                .max(f64::MIN_POSITIVE);
            let score = (value - median) / scale;
            let exceeds = match self.config.direction {
                Direction::Both => score.abs() > self.config.threshold,
                Direction::Up => score > self.config.threshold,
                Direction::Down => -score > self.config.threshold,
            };
            verdict.median = Some(median);
            verdict.scale = Some(scale);
            verdict.score = Some(score);
            if exceeds {
                self.run = self.run.saturating_add(1);
                if self.episode_since.is_some() {
                    self.episode_values += 1;
                } else if self.run >= self.config.consecutive {
                    self.episode_since = Some(time_ms);
                    self.episode_values = u64::from(self.run);
                    self.alarms += 1;
                    verdict.alarm = true;
                }
            } else {
                self.run = 0;
                self.episode_since = None;
                self.episode_values = 0;
            }
            verdict.state = self.current_state();
        }
        self.window.push_back(value);
        while self.window.len() > self.config.history {
            self.window.pop_front();
        }
        verdict
    }

    /// Where the detector stands now (after its last value).
    pub fn state(&self) -> DetectorState {
        self.current_state()
    }

    /// Re-learns the reference from the last `keep` values only: older
    /// values are forgotten and any run or episode ends. With fewer than
    /// `warmup` values left the detector warms up again. (The end of an
    /// expected-change notice: the values seen during the window become
    /// the new normal; see `crate::tickets::notices`.)
    pub fn rebase(&mut self, keep: usize) {
        while self.window.len() > keep {
            self.window.pop_front();
        }
        self.run = 0;
        self.episode_since = None;
        self.episode_values = 0;
    }

    fn current_state(&self) -> DetectorState {
        if self.window.len() < self.config.warmup {
            return DetectorState::WarmingUp {
                seen: self.window.len(),
                needed: self.config.warmup,
            };
        }
        match self.episode_since {
            Some(since_ms) => DetectorState::Anomalous {
                since_ms,
                values: self.episode_values,
            },
            None if self.run > 0 => DetectorState::Exceeding { run: self.run },
            None => DetectorState::Normal,
        }
    }
}

/// The median of `values` (reordered in place, O(n)); 0 for none.
fn median_of(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let odd = values.len() % 2 == 1;
    let middle = values.len() / 2;
    let (lower, upper, _) = values.select_nth_unstable_by(middle, f64::total_cmp);
    let upper = *upper;
    if odd {
        return upper;
    }
    let below = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (below + upper) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_then_alarms_once_per_episode() {
        let mut detector = Detector::new(DetectorConfig::default());
        let mut alarms = Vec::new();
        for t in 0..200u64 {
            let value = if (100..110).contains(&t) {
                1000.0
            } else {
                100.0 + (t % 7) as f64
            };
            let verdict = detector.observe(t, value);
            if t < 30 {
                assert!(
                    matches!(verdict.state, DetectorState::WarmingUp { .. }),
                    "{t}"
                );
            }
            if verdict.alarm {
                alarms.push(t);
            }
        }
        assert_eq!(alarms, vec![102]);
        assert_eq!(detector.alarms, 1);
    }

    #[test]
    fn a_flat_series_does_not_alarm_on_a_wiggle() {
        let mut detector = Detector::new(DetectorConfig::default());
        for t in 0..100u64 {
            let value = if t > 50 { 100.5 } else { 100.0 };
            assert!(!detector.observe(t, value).alarm, "{t}");
        }
    }

    #[test]
    fn a_rebase_forgets_the_old_level_and_ends_the_episode() {
        let mut detector = Detector::new(DetectorConfig::default());
        for t in 0..60u64 {
            detector.observe(t, 100.0 + (t % 7) as f64);
        }
        // A step to 500: an episode that the old window keeps alive.
        for t in 60..70u64 {
            detector.observe(t, 500.0 + (t % 7) as f64);
        }
        assert!(matches!(detector.state(), DetectorState::Anomalous { .. }));
        // Re-learning from the last 10 values: warming up on the new level…
        detector.rebase(10);
        assert_eq!(
            detector.state(),
            DetectorState::WarmingUp {
                seen: 10,
                needed: 30
            }
        );
        for t in 70..100u64 {
            assert!(!detector.observe(t, 500.0 + (t % 7) as f64).alarm, "{t}");
        }
        // …which is then normal, and the old level is the anomaly.
        assert_eq!(detector.state(), DetectorState::Normal);
        let mut alarmed = false;
        for t in 100..105u64 {
            alarmed |= detector.observe(t, 100.0).alarm;
        }
        assert!(alarmed);
    }

    #[test]
    fn direction_filters() {
        let config = DetectorConfig {
            direction: Direction::Up,
            consecutive: 1,
            ..DetectorConfig::default()
        };
        let mut detector = Detector::new(config);
        for t in 0..40u64 {
            detector.observe(t, 100.0 + (t % 5) as f64);
        }
        assert!(!detector.observe(41, 0.0).alarm);
        assert!(detector.observe(42, 10_000.0).alarm);
    }
}
