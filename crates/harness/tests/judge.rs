//! The canary judge: Mann-Whitney U against independently computed
//! reference values, the normal CDF, properties, and every verdict.

use floodgate_harness::change::judge::{
    self, judge, mann_whitney_u, normal_cdf, normal_sf, Direction, Method, MetricCheck,
    MetricOutcome, Outcome, Thresholds, Verdict,
};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn close(actual: f64, expected: f64, relative: f64) -> bool {
    (actual - expected).abs() <= relative * expected.abs().max(f64::MIN_POSITIVE)
}

fn assert_close(what: &str, actual: f64, expected: f64, relative: f64) {
    assert!(
        close(actual, expected, relative),
        "{what}: {actual} is not within {relative} (relative) of {expected}"
    );
}

// ---------------------------------------------------------------------------
// reference values

/// Reference values from SciPy 1.17.1, computed independently of this crate:
///
/// ```python
/// from scipy.stats import mannwhitneyu, rankdata
/// import numpy as np
/// for alt in ["less", "greater", "two-sided"]:
///     mannwhitneyu(a, b, alternative=alt, method="asymptotic", use_continuity=True)
/// # z (no continuity correction), with the tie-corrected variance:
/// U1 = rankdata(np.concatenate([a, b]))[:n].sum() - n*(n+1)/2
/// _, t = np.unique(np.concatenate([a, b]), return_counts=True)
/// z = (U1 - n*m/2) / np.sqrt(n*m/12 * ((N+1) - (t**3 - t).sum() / (N*(N-1))))
/// ```
struct Reference {
    name: &'static str,
    a: &'static [f64],
    b: &'static [f64],
    u_a: f64,
    z: f64,
    p_less: f64,
    p_greater: f64,
    p_two_sided: f64,
}

const REFERENCES: &[Reference] = &[
    Reference {
        name: "no ties, fully separated",
        a: &[1.0, 2.0, 3.0, 4.0, 5.0],
        b: &[6.0, 7.0, 8.0, 9.0, 10.0],
        u_a: 0.0,
        z: -2.6111648393354674,
        p_less: 0.006092890177672406,
        p_greater: 0.9966923245172357,
        p_two_sided: 0.012185780355344813,
    },
    Reference {
        name: "ties within and across samples",
        a: &[1.1, 2.2, 2.2, 3.3, 4.4, 5.5],
        b: &[2.2, 3.3, 3.3, 6.6, 7.7],
        u_a: 9.0,
        z: -1.1159224968016033,
        p_less: 0.15317071891385547,
        p_greater: 0.8866524480733494,
        p_two_sided: 0.30634143782771095,
    },
    Reference {
        name: "overlapping, unequal sizes",
        a: &[0.5, 0.7, 0.9, 1.2, 1.4, 1.5, 2.0, 2.1],
        b: &[0.3, 0.6, 0.8, 0.8, 1.0, 1.1],
        u_a: 37.0,
        z: 1.6801401067373083,
        p_less: 0.9594867494997957,
        p_greater: 0.05309913850497155,
        p_two_sided: 0.1061982770099431,
    },
    Reference {
        name: "error ratios, canary up",
        a: &[0.010, 0.012, 0.011, 0.013, 0.012, 0.014, 0.012],
        b: &[0.010, 0.010, 0.011, 0.009, 0.010, 0.012, 0.010, 0.011],
        u_a: 47.5,
        z: 2.3284792439172852,
        p_less: 0.9915340651758845,
        p_greater: 0.01164101671656115,
        p_two_sided: 0.0232820334331223,
    },
];

#[test]
fn mann_whitney_matches_reference_values() {
    for reference in REFERENCES {
        let test = mann_whitney_u(reference.a, reference.b);
        let n_m = (reference.a.len() * reference.b.len()) as f64;
        assert_eq!(test.u_a, reference.u_a, "{}: u_a", reference.name);
        assert_eq!(test.u_b, n_m - reference.u_a, "{}: u_b", reference.name);
        assert_close(reference.name, test.z, reference.z, 1e-12);
        // The normal CDF's relative error is below 1.2e-7.
        assert_close(reference.name, test.p_less, reference.p_less, 1e-6);
        assert_close(reference.name, test.p_greater, reference.p_greater, 1e-6);
        assert_close(
            reference.name,
            test.p_two_sided,
            reference.p_two_sided,
            1e-6,
        );
    }
}

#[test]
fn mann_whitney_by_hand() {
    // a = [1, 3], b = [2]: ranks 1, 3 for a → R_a = 4, U_a = 4 − 3 = 1
    // (one pair 3 > 2, one pair 1 < 2); U_b = 2·1 − 1 = 1. mean 1, so z = 0.
    let test = mann_whitney_u(&[1.0, 3.0], &[2.0]);
    assert_eq!((test.u_a, test.u_b, test.z), (1.0, 1.0, 0.0));
    // With the continuity correction, no evidence either way: p capped at 1.
    assert_eq!(test.p_two_sided, 1.0);
    // Every value equal: σ = 0, no evidence of a difference.
    let flat = mann_whitney_u(&[2.0, 2.0, 2.0], &[2.0, 2.0]);
    assert_eq!(
        (
            flat.u_a,
            flat.u_b,
            flat.z,
            flat.p_less,
            flat.p_greater,
            flat.p_two_sided
        ),
        (3.0, 3.0, 0.0, 1.0, 1.0, 1.0)
    );
    // An empty side.
    let empty = mann_whitney_u(&[], &[1.0, 2.0]);
    assert_eq!((empty.u_a, empty.u_b, empty.p_two_sided), (0.0, 0.0, 1.0));
}

#[test]
fn normal_cdf_matches_reference_values() {
    // SciPy 1.17.1: norm.cdf(x), norm.sf(x).
    let table = [
        (0.0, 0.5, 0.5),
        (1.0, 0.8413447460685429, 0.15865525393145707),
        (1.96, 0.9750021048517795, 0.024997895148220435),
        (-1.96, 0.024997895148220435, 0.9750021048517795),
        (3.0, 0.9986501019683699, 0.0013498980316300933),
        (5.0, 0.9999997133484281, 2.866515718791933e-07),
        (-8.0, 6.22096057427174e-16, 0.9999999999999993),
        (-20.0, 2.7536241186061556e-89, 1.0),
    ];
    for (x, cdf, sf) in table {
        // Relative accuracy even far in the tails.
        assert_close(&format!("cdf({x})"), normal_cdf(x), cdf, 1.5e-7);
        assert_close(&format!("sf({x})"), normal_sf(x), sf, 1.5e-7);
    }
    assert!(judge::erfc(f64::NAN).is_nan());
    assert_eq!(normal_cdf(f64::INFINITY), 1.0);
    assert_eq!(normal_cdf(f64::NEG_INFINITY), 0.0);
}

// ---------------------------------------------------------------------------
// properties

fn sample() -> impl Strategy<Value = Vec<f64>> {
    // Integers as floats make ties common.
    prop::collection::vec((0i32..20).prop_map(f64::from), 1..25)
}

fn check(name: &str, direction: Direction, critical: bool, method: Method) -> MetricCheck {
    MetricCheck {
        name: name.into(),
        direction,
        critical,
        method,
        min_samples: 3,
    }
}

fn effect(max_relative_change: f64, min_absolute_change: f64) -> Method {
    Method::EffectSize {
        max_relative_change,
        min_absolute_change,
    }
}

const MANN_WHITNEY: Method = Method::MannWhitney {
    alpha: 0.05,
    min_absolute_change: 0.0,
};

fn data(pairs: &[(&str, Vec<f64>)]) -> BTreeMap<String, Vec<f64>> {
    pairs
        .iter()
        .map(|(name, values)| (name.to_string(), values.clone()))
        .collect()
}

proptest! {
    #[test]
    fn swapping_samples_swaps_u(a in sample(), b in sample()) {
        let forward = mann_whitney_u(&a, &b);
        let backward = mann_whitney_u(&b, &a);
        prop_assert_eq!(forward.u_a, backward.u_b);
        prop_assert_eq!(forward.u_b, backward.u_a);
        prop_assert!(close(forward.p_less, backward.p_greater, 1e-12));
        prop_assert!(close(forward.p_two_sided, backward.p_two_sided, 1e-12));
        prop_assert!(close(forward.z, -backward.z, 1e-12) || forward.z == 0.0);
    }

    #[test]
    fn u_values_add_up_and_p_values_are_probabilities(a in sample(), b in sample()) {
        let test = mann_whitney_u(&a, &b);
        prop_assert_eq!(test.u_a + test.u_b, (a.len() * b.len()) as f64);
        prop_assert!(test.u_a >= 0.0 && test.u_b >= 0.0);
        for p in [test.p_less, test.p_greater, test.p_two_sided] {
            prop_assert!((0.0..=1.0).contains(&p), "{}", p);
        }
        // The two one-sided tests cannot both be significant.
        prop_assert!(test.p_less + test.p_greater >= 1.0 - 1e-9);
    }

    #[test]
    fn identical_samples_show_no_difference(a in sample()) {
        let test = mann_whitney_u(&a, &a);
        prop_assert!((test.p_two_sided - 1.0).abs() < 1e-9, "{:?}", test);
        prop_assert_eq!(test.u_a, test.u_b);
        prop_assert_eq!(test.z, 0.0);
    }

    #[test]
    fn a_large_rise_fails_an_increase_check(
        baseline in prop::collection::vec(0.0f64..1.0, 5..30),
        canary in prop::collection::vec(0.0f64..1.0, 5..30),
    ) {
        let shifted: Vec<f64> = canary.iter().map(|value| value + 100.0).collect();
        for method in [effect(0.1, 0.001), MANN_WHITNEY] {
            let checks = [check("error_ratio", Direction::Increase, true, method)];
            let verdict = judge(
                &checks,
                &data(&[("error_ratio", shifted.clone())]),
                &data(&[("error_ratio", baseline.clone())]),
                Thresholds::default(),
            );
            prop_assert_eq!(verdict.outcome, Outcome::Failed, "{:?}", verdict);
            prop_assert_eq!(verdict.metrics[0].outcome, MetricOutcome::Fail);
            // The same rise passes a Decrease check.
            let checks = [check("error_ratio", Direction::Decrease, true, method)];
            let verdict = judge(
                &checks,
                &data(&[("error_ratio", shifted.clone())]),
                &data(&[("error_ratio", baseline.clone())]),
                Thresholds::default(),
            );
            prop_assert_eq!(verdict.outcome, Outcome::Successful, "{:?}", verdict);
        }
    }

    #[test]
    fn an_error_is_never_a_pass(
        good in prop::collection::vec(0.0f64..1.0, 3..10),
        bad_value in prop::sample::select(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY]),
        bad_side_is_canary in any::<bool>(),
        critical in any::<bool>(),
        others in 0usize..4,
    ) {
        let mut poisoned = good.clone();
        poisoned.push(bad_value);
        let mut canary = vec![("broken", if bad_side_is_canary { poisoned.clone() } else { good.clone() })];
        let mut baseline = vec![("broken", if bad_side_is_canary { good.clone() } else { poisoned })];
        let mut checks = vec![check("broken", Direction::Either, critical, effect(0.1, 0.0))];
        let names = ["a", "b", "c", "d"];
        for name in &names[..others] {
            canary.push((name, good.clone()));
            baseline.push((name, good.clone()));
            checks.push(check(name, Direction::Increase, false, MANN_WHITNEY));
        }
        let verdict = judge(&checks, &data(&canary), &data(&baseline), Thresholds::default());
        prop_assert_eq!(verdict.outcome, Outcome::Error, "{:?}", verdict);
        prop_assert_eq!(verdict.metrics[0].outcome, MetricOutcome::Error);
        // The others all passed, and still no pass.
        prop_assert!(verdict.metrics[1..].iter().all(|metric| metric.outcome == MetricOutcome::Pass));
    }
}

// ---------------------------------------------------------------------------
// verdicts

fn run(
    checks: &[MetricCheck],
    canary: &[(&str, Vec<f64>)],
    baseline: &[(&str, Vec<f64>)],
) -> Verdict {
    judge(
        checks,
        &data(canary),
        &data(baseline),
        Thresholds::default(),
    )
}

fn steady() -> Vec<f64> {
    vec![0.010, 0.011, 0.010, 0.012, 0.011]
}

#[test]
fn successful_when_every_metric_passes() {
    let checks = [
        check("error_ratio", Direction::Increase, true, effect(0.1, 0.001)),
        check("latency_p99", Direction::Increase, false, MANN_WHITNEY),
    ];
    let verdict = run(
        &checks,
        &[
            ("error_ratio", steady()),
            ("latency_p99", vec![1.0, 1.1, 0.9, 1.0]),
        ],
        &[
            ("error_ratio", steady()),
            ("latency_p99", vec![1.0, 1.0, 1.1, 0.9]),
        ],
    );
    assert_eq!(verdict.outcome, Outcome::Successful, "{verdict:?}");
    assert_eq!(verdict.score, Some(100.0));
    assert_eq!(
        verdict.reason,
        "score 100 (2 passed, 0 failed) is at or above pass (95)"
    );
    let error_ratio = &verdict.metrics[0];
    assert_eq!(error_ratio.outcome, MetricOutcome::Pass);
    assert_eq!(error_ratio.canary.count, 5);
    assert_eq!(error_ratio.canary.median, Some(0.011));
    assert_eq!(error_ratio.relative_change, Some(0.0));
    assert_eq!(error_ratio.p_value, None);
    assert!(verdict.metrics[1].p_value.is_some_and(|p| p > 0.05));
}

#[test]
fn a_critical_failure_fails_the_canary() {
    let checks = [
        check("error_ratio", Direction::Increase, true, effect(0.1, 0.001)),
        check("a", Direction::Increase, false, effect(0.1, 0.0)),
        check("b", Direction::Increase, false, effect(0.1, 0.0)),
    ];
    let canary = vec![0.020, 0.021, 0.019, 0.020];
    let verdict = run(
        &checks,
        &[("error_ratio", canary), ("a", steady()), ("b", steady())],
        &[("error_ratio", steady()), ("a", steady()), ("b", steady())],
    );
    assert_eq!(verdict.outcome, Outcome::Failed);
    assert_eq!(verdict.reason, "critical metric failed: error_ratio");
    // The score is still reported: 2 of 3.
    assert!(verdict
        .score
        .is_some_and(|score| (score - 200.0 / 3.0).abs() < 1e-9));
    let metric = &verdict.metrics[0];
    assert_eq!(metric.outcome, MetricOutcome::Fail);
    assert!(metric
        .relative_change
        .is_some_and(|change| (change - (0.020 - 0.011) / 0.011).abs() < 1e-12));
    assert_eq!(
        metric.reason,
        "median 0.011 → 0.02 (+81.818181818%): beyond 10% and 0.001 in the bad direction (increase)"
    );
}

#[test]
fn scores_map_to_outcomes_by_thresholds() {
    // Four non-critical metrics; `failing` of them rise by half.
    let verdict_with = |failing: usize, thresholds: Thresholds| {
        let names = ["a", "b", "c", "d"];
        let checks: Vec<MetricCheck> = names
            .iter()
            .map(|name| check(name, Direction::Increase, false, effect(0.1, 0.0)))
            .collect();
        let canary: Vec<(&str, Vec<f64>)> = names
            .iter()
            .enumerate()
            .map(|(index, name)| {
                let scale = if index < failing { 1.5 } else { 1.0 };
                (*name, steady().iter().map(|value| value * scale).collect())
            })
            .collect();
        let baseline: Vec<(&str, Vec<f64>)> = names.iter().map(|name| (*name, steady())).collect();
        judge(&checks, &data(&canary), &data(&baseline), thresholds)
    };
    let defaults = Thresholds::default();
    let one = verdict_with(1, defaults); // 75: marginal ≤ 75 < 95
    assert_eq!(
        (one.outcome, one.score),
        (Outcome::Inconclusive, Some(75.0))
    );
    assert_eq!(
        one.reason,
        "score 75 (3 passed, 1 failed) is between marginal (75) and pass (95)"
    );
    let two = verdict_with(2, defaults); // 50 < 75
    assert_eq!((two.outcome, two.score), (Outcome::Failed, Some(50.0)));
    assert_eq!(
        two.reason,
        "score 50 (2 passed, 2 failed) is below marginal (75)"
    );
    let lenient = Thresholds {
        pass: 75.0,
        marginal: 50.0,
    };
    assert_eq!(verdict_with(1, lenient).outcome, Outcome::Successful);
    assert_eq!(verdict_with(2, lenient).outcome, Outcome::Inconclusive);
    assert_eq!(verdict_with(3, lenient).outcome, Outcome::Failed);
}

#[test]
fn too_few_samples_is_no_data_and_all_no_data_is_inconclusive() {
    let checks = [
        check("error_ratio", Direction::Increase, true, effect(0.1, 0.001)),
        check("latency_p99", Direction::Increase, false, MANN_WHITNEY),
    ];
    // Two samples where three are needed; latency only on the baseline.
    let verdict = run(
        &checks,
        &[("error_ratio", vec![0.5, 0.5])],
        &[
            ("error_ratio", steady()),
            ("latency_p99", vec![1.0, 1.0, 1.0]),
        ],
    );
    assert_eq!(verdict.outcome, Outcome::Inconclusive);
    assert_eq!(verdict.score, None);
    assert_eq!(verdict.reason, "too few samples to judge any metric");
    assert_eq!(verdict.metrics[0].outcome, MetricOutcome::NoData);
    assert_eq!(
        verdict.metrics[0].reason,
        "2 canary and 5 baseline samples; 3 needed on each side"
    );
    assert_eq!(verdict.metrics[1].outcome, MetricOutcome::NoData);
    // One metric with data decides; the other is left out of the score.
    let verdict = run(
        &checks,
        &[("error_ratio", steady())],
        &[
            ("error_ratio", steady()),
            ("latency_p99", vec![1.0, 1.0, 1.0]),
        ],
    );
    assert_eq!(
        (verdict.outcome, verdict.score),
        (Outcome::Successful, Some(100.0))
    );
    // No checks at all: nothing to judge.
    let verdict = run(&[], &[], &[]);
    assert_eq!(verdict.outcome, Outcome::Inconclusive);
    assert_eq!(verdict.reason, "no metrics to judge");
}

#[test]
fn errors_make_the_verdict_an_error() {
    let checks = [
        check(
            "error_ratio",
            Direction::Increase,
            false,
            effect(0.1, 0.001),
        ),
        check("missing", Direction::Increase, false, MANN_WHITNEY),
    ];
    let verdict = run(
        &checks,
        &[("error_ratio", steady())],
        &[("error_ratio", steady())],
    );
    assert_eq!(verdict.outcome, Outcome::Error);
    assert_eq!(verdict.reason, "could not judge missing");
    assert_eq!(
        verdict.metrics[1].reason,
        "neither the canary nor the baseline reported the metric"
    );
    // A non-finite sample.
    let verdict = run(
        &checks[..1],
        &[("error_ratio", vec![0.1, f64::NAN, 0.1])],
        &[("error_ratio", steady())],
    );
    assert_eq!(verdict.outcome, Outcome::Error);
    assert_eq!(
        verdict.metrics[0].reason,
        "the canary has a non-finite sample (NaN)"
    );
    assert_eq!(verdict.metrics[0].canary.median, None);
    // An error outranks a critical failure: the judgement itself is in doubt.
    let verdict = run(
        &[
            check("error_ratio", Direction::Increase, true, effect(0.1, 0.001)),
            check("broken", Direction::Increase, false, effect(0.1, 0.0)),
        ],
        &[
            ("error_ratio", vec![1.0, 1.0, 1.0]),
            ("broken", vec![f64::INFINITY]),
        ],
        &[("error_ratio", steady())],
    );
    assert_eq!(verdict.outcome, Outcome::Error);
    // Invalid parameters and a metric checked twice.
    let verdict = run(
        &[check(
            "error_ratio",
            Direction::Increase,
            false,
            Method::MannWhitney {
                alpha: 1.5,
                min_absolute_change: 0.0,
            },
        )],
        &[("error_ratio", steady())],
        &[("error_ratio", steady())],
    );
    assert_eq!(verdict.outcome, Outcome::Error);
    assert_eq!(
        verdict.metrics[0].reason,
        "invalid check: alpha must be above 0 and below 1, not 1.5"
    );
    let twice = check("error_ratio", Direction::Increase, false, effect(0.1, 0.0));
    let verdict = run(
        &[twice.clone(), twice],
        &[("error_ratio", steady())],
        &[("error_ratio", steady())],
    );
    assert_eq!(verdict.outcome, Outcome::Error);
    assert_eq!(
        verdict.metrics[1].reason,
        "the metric is checked more than once"
    );
    // Invalid thresholds.
    let verdict = judge(
        &[check(
            "error_ratio",
            Direction::Increase,
            false,
            effect(0.1, 0.0),
        )],
        &data(&[("error_ratio", steady())]),
        &data(&[("error_ratio", steady())]),
        Thresholds {
            pass: 50.0,
            marginal: 80.0,
        },
    );
    assert_eq!(verdict.outcome, Outcome::Error);
    assert_eq!(
        verdict.reason,
        "invalid thresholds: marginal (80) must not be above pass (50)"
    );
}

#[test]
fn effect_size_needs_both_bounds_exceeded() {
    let judge_one = |method: Method, direction: Direction, canary: Vec<f64>, baseline: Vec<f64>| {
        let verdict = run(
            &[check("m", direction, false, method)],
            &[("m", canary)],
            &[("m", baseline)],
        );
        verdict.metrics[0].clone()
    };
    // +100% but only 0.0001 in absolute terms: below min_absolute_change.
    let tiny = judge_one(
        effect(0.1, 0.001),
        Direction::Increase,
        vec![0.0002; 3],
        vec![0.0001; 3],
    );
    assert_eq!(tiny.outcome, MetricOutcome::Pass, "{}", tiny.reason);
    assert!(tiny
        .relative_change
        .is_some_and(|change| (change - 1.0).abs() < 1e-9));
    // +5% of a large value: above the absolute bound, within the relative.
    let small = judge_one(
        effect(0.1, 0.001),
        Direction::Increase,
        vec![1.05; 3],
        vec![1.0; 3],
    );
    assert_eq!(small.outcome, MetricOutcome::Pass);
    // Exactly at the bound is not beyond it.
    let at = judge_one(
        effect(0.5, 0.0),
        Direction::Increase,
        vec![3.0; 3],
        vec![2.0; 3],
    );
    assert_eq!(at.outcome, MetricOutcome::Pass);
    // A fall is bad for Decrease, fine for Increase, bad for Either.
    let fall = |direction| judge_one(effect(0.1, 0.0), direction, vec![0.5; 3], vec![1.0; 3]);
    assert_eq!(fall(Direction::Decrease).outcome, MetricOutcome::Fail);
    assert_eq!(fall(Direction::Increase).outcome, MetricOutcome::Pass);
    assert_eq!(fall(Direction::Either).outcome, MetricOutcome::Fail);
    assert_eq!(fall(Direction::Decrease).relative_change, Some(-0.5));
    // A negative baseline: relative to its magnitude.
    let negative = judge_one(
        effect(0.1, 0.0),
        Direction::Increase,
        vec![-0.5; 3],
        vec![-1.0; 3],
    );
    assert_eq!(negative.relative_change, Some(0.5));
    assert_eq!(negative.outcome, MetricOutcome::Fail);
    // A zero baseline: only the absolute change counts.
    let from_zero = judge_one(
        effect(0.1, 0.001),
        Direction::Increase,
        vec![0.01; 3],
        vec![0.0; 3],
    );
    assert_eq!(from_zero.outcome, MetricOutcome::Fail);
    assert_eq!(from_zero.relative_change, None);
    assert_eq!(
        from_zero.reason,
        "median 0 → 0.01: the baseline is 0 and the change exceeds 0.001 in the bad direction (increase)"
    );
    let barely = judge_one(
        effect(0.1, 0.001),
        Direction::Increase,
        vec![0.0005; 3],
        vec![0.0; 3],
    );
    assert_eq!(barely.outcome, MetricOutcome::Pass);
}

#[test]
fn mann_whitney_is_one_sided_in_the_bad_direction() {
    let low = vec![1.0, 2.0, 3.0, 4.0, 5.0];
    let high = vec![6.0, 7.0, 8.0, 9.0, 10.0];
    let verdict_for = |direction| {
        run(
            &[check("m", direction, false, MANN_WHITNEY)],
            &[("m", high.clone())],
            &[("m", low.clone())],
        )
        .metrics[0]
            .clone()
    };
    let increase = verdict_for(Direction::Increase);
    assert_eq!(increase.outcome, MetricOutcome::Fail);
    assert!(increase
        .p_value
        .is_some_and(|p| close(p, 0.006092890177672406, 1e-6)));
    assert_eq!(
        increase.reason,
        "Mann-Whitney U = 25, p = 0.006093 for canary greater than baseline: below alpha 0.05"
    );
    let decrease = verdict_for(Direction::Decrease);
    assert_eq!(decrease.outcome, MetricOutcome::Pass);
    assert!(decrease
        .p_value
        .is_some_and(|p| close(p, 0.9966923245172357, 1e-6)));
    let either = verdict_for(Direction::Either);
    assert_eq!(either.outcome, MetricOutcome::Fail);
    assert!(either
        .p_value
        .is_some_and(|p| close(p, 0.012185780355344813, 1e-6)));
}

#[test]
fn verdicts_serialize_in_snake_case() {
    let verdict = run(
        &[check(
            "error_ratio",
            Direction::Increase,
            true,
            effect(0.1, 0.001),
        )],
        &[("error_ratio", vec![0.5, 0.5])],
        &[("error_ratio", steady())],
    );
    let json = serde_json::to_value(&verdict).unwrap_or_default();
    assert_eq!(json["outcome"], "inconclusive");
    assert_eq!(json["metrics"][0]["outcome"], "no_data");
    assert_eq!(json["metrics"][0]["canary"]["count"], 2);
    let back: Verdict = serde_json::from_value(json).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(back, verdict);
    let check = check("m", Direction::Either, false, MANN_WHITNEY);
    let json = serde_json::to_value(&check).unwrap_or_default();
    assert_eq!(json["direction"], "either");
    assert_eq!(json["method"]["mann_whitney"]["alpha"], 0.05);
}

proptest! {
    #[test]
    fn any_samples_give_a_verdict_and_errors_are_never_passes(
        canary in prop::collection::vec(any::<f64>(), 0..12),
        baseline in prop::collection::vec(any::<f64>(), 0..12),
        min_samples in 0usize..6,
        alpha in any::<f64>(),
    ) {
        let checks = [
            MetricCheck { min_samples, ..check("a", Direction::Increase, true, effect(0.1, 0.0)) },
            MetricCheck { min_samples, ..check("b", Direction::Either, false, Method::MannWhitney { alpha, min_absolute_change: 0.0 }) },
        ];
        let verdict = run(&checks, &[("a", canary.clone()), ("b", canary)], &[("a", baseline.clone()), ("b", baseline)]);
        let errors = verdict.metrics.iter().any(|metric| metric.outcome == MetricOutcome::Error);
        prop_assert_eq!(errors, verdict.outcome == Outcome::Error, "{:?}", verdict);
        if let Some(score) = verdict.score {
            prop_assert!((0.0..=100.0).contains(&score));
        }
    }
}

#[test]
fn a_significant_but_immaterial_shift_passes_the_mann_whitney_check() {
    // Every canary sample is 40 µs above every baseline sample: p is tiny,
    // but a 0.5 ms floor says the shift does not matter.
    let baseline: Vec<f64> = (0..12).map(|i| 0.000050 + f64::from(i) * 1e-7).collect();
    let canary: Vec<f64> = baseline.iter().map(|v| v + 0.000040).collect();
    let check = |floor: f64| MetricCheck {
        name: "latency_p99".into(),
        direction: Direction::Increase,
        critical: true,
        method: Method::MannWhitney {
            alpha: 0.05,
            min_absolute_change: floor,
        },
        min_samples: 3,
    };
    let maps = |values: &Vec<f64>| BTreeMap::from([("latency_p99".to_owned(), values.clone())]);
    let strict = judge(
        &[check(0.0)],
        &maps(&canary),
        &maps(&baseline),
        Thresholds::default(),
    );
    assert_eq!(strict.outcome, Outcome::Failed, "{strict:?}");
    let floored = judge(
        &[check(0.0005)],
        &maps(&canary),
        &maps(&baseline),
        Thresholds::default(),
    );
    assert_eq!(floored.outcome, Outcome::Successful, "{floored:?}");
    assert!(
        floored.metrics[0].reason.contains("within 0.0005"),
        "{}",
        floored.metrics[0].reason
    );
    // Past the floor it fails again.
    let far: Vec<f64> = baseline.iter().map(|v| v + 0.002).collect();
    let failed = judge(
        &[check(0.0005)],
        &maps(&far),
        &maps(&baseline),
        Thresholds::default(),
    );
    assert_eq!(failed.outcome, Outcome::Failed, "{failed:?}");
}
