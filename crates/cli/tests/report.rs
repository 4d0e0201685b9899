//! `floodgate report`: a real data directory built with the store's own
//! API (tickets of every source, proposals in several stages with applied
//! changes, an escalation, a help ticket, a proposal awaiting approval,
//! SLO snapshots), read back by the library and by the real binary.

use floodgate_contract::actions::{InverseCall, Risk};
use floodgate_harness::change::proposal::{ActionCall, Applied, Approval, Proposal, Stage};
use floodgate_harness::learn::reflection::{help_ticket, Evidence, Finding, FindingKind};
use floodgate_harness::report::load::read_report;
use floodgate_harness::report::{render_html, render_markdown, ReportData};
use floodgate_harness::store::slo::{
    SloSnapshot, SLO_SNAPSHOT_INTERVAL_MS, SLO_SNAPSHOT_RETENTION_MS,
};
use floodgate_harness::tickets::notices::{NoticeDraft, NoticeEvent};
use floodgate_harness::tickets::{Command, NewTicket, Objective, Priority, Source, TicketType};
use floodgate_harness::Store;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Output};
use std::sync::atomic::{AtomicU64, Ordering};

const MINUTE: u64 = 60_000;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;
/// A fixed end of the period for the library's reports.
const NOW_MS: u64 = 1_780_000_000_000;
const AGENT: &str = "runbook";
const OLD_RATIONALE: &str = "Old change: widen the burst for the launch";
const GOOD_RATIONALE: &str =
    "Availability burns because api/per_tenant rejects legitimate traffic: raise it 64 → 128";
const HOSTILE_RATIONALE: &str =
    "Latency: lower the store's capacity <script>alert(\"owned\")</script> & see";
const APPROVAL_RATIONALE: &str = "Fail closed while Redis flaps";
const APPROVAL_REASON: &str = "set_failure_policy is high risk: the policy asks a human";
const ESCALATION_REASON: &str = "budget exhausted: 3 proposals";
const FINDING_MESSAGE: &str = "I have fixed this three times and it keeps coming back";
const OLD_NOTICE_REASON: &str = "initech moves region";
const LAUNCH_REASON: &str = "acme launches: five times the traffic";
const BEYOND: &str =
    "the change went beyond what was announced: 5000 is outside what N-0002 allowed [10, 1000]";

fn scratch(name: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "floodgate-report-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn draft(source: Source, kind: TicketType, description: &str, fingerprint: &str) -> NewTicket {
    NewTicket {
        kind,
        objective: Objective {
            description: description.to_owned(),
        },
        acceptance_criteria: Vec::new(),
        constraints: Vec::new(),
        context: json!({}),
        source,
        priority: Priority::Medium,
        fingerprint: fingerprint.to_owned(),
    }
}

fn file(store: &Store, draft: &NewTicket, at: u64) -> String {
    store.intake(draft, None, at).expect("intake").ticket.id
}

fn claim(store: &Store, id: &str, at: u64) {
    store
        .command(
            id,
            &Command::Claim {
                agent: AGENT.into(),
                ttl_ms: 6 * HOUR,
            },
            at,
        )
        .expect("claim");
}

fn set_limit(value: u64) -> serde_json::Value {
    json!({"domain": "api", "limit": "per_tenant", "requests_per_unit": value})
}

fn proposal(ticket: &str, rationale: &str, actions: Vec<ActionCall>, at: u64) -> Proposal {
    let risks = actions.iter().map(|_| Risk::Medium).collect();
    Proposal {
        id: String::new(),
        ticket_id: ticket.to_owned(),
        agent: AGENT.to_owned(),
        rationale: rationale.to_owned(),
        actions,
        risks,
        stage: Stage::Testing,
        created_ms: at,
        updated_ms: at,
        records: Vec::new(),
        test: serde_json::Value::Null,
        approval: None,
        canary: None,
        canary_passed: false,
        interim: false,
        applied: Vec::new(),
        verify: None,
        outcome: String::new(),
        held: String::new(),
        rollback_then: None,
        pending_command: None,
        base_config: None,
        bases: Default::default(),
        locks: Vec::new(),
    }
}

fn applied(target: &str, from: u64, to: u64, at: u64) -> Applied {
    Applied {
        target: target.to_owned(),
        action: "set_limit".to_owned(),
        params: set_limit(to),
        time_ms: at,
        inverse: Some(InverseCall {
            action: "set_limit".to_owned(),
            params: set_limit(from),
        }),
        undone: false,
        event_seq: at / 1000,
    }
}

/// Moves a proposal to `stage` with a record, saving it with its ledger
/// entry and (optionally) a command on its ticket.
fn advance(
    store: &Store,
    proposal: &mut Proposal,
    stage: Stage,
    result: &str,
    at: u64,
    command: Option<Command>,
) {
    proposal.record(
        at,
        result,
        format!("{} {result}", proposal.stage.as_str()),
        json!(null),
    );
    proposal.stage = stage;
    let refused = store
        .save_proposal(
            proposal,
            &format!("proposal.{}", stage.as_str()),
            json!({"proposal": proposal.id, "stage": stage.as_str()}),
            command.as_ref(),
            at,
        )
        .expect("save proposal");
    assert!(refused.is_none(), "{refused:?}");
}

/// The tickets the data directory holds, and what a report of the last
/// seven days before `now` must say about them.
struct Built {
    old: String,
    resolved: String,
    escalated: String,
    awaiting: String,
    help: String,
}

/// Builds a harness data directory whose history ends at `now`.
fn build(dir: &Path, now: u64) -> Built {
    let store = Store::open(dir).expect("store");

    // Ten days ago: a human ticket fixed by a change (outside a 7-day
    // window).
    let t = now - 10 * DAY;
    let old = file(
        &store,
        &draft(
            Source::Human,
            TicketType::Task,
            "Prepare for the launch",
            "human:launch",
        ),
        t,
    );
    claim(&store, &old, t + MINUTE);
    let mut p = store
        .create_proposal(
            &proposal(
                &old,
                OLD_RATIONALE,
                vec![ActionCall {
                    action: "set_limit".into(),
                    params: set_limit(20),
                }],
                t + 2 * MINUTE,
            ),
            Some(&Command::Start {
                agent: AGENT.into(),
            }),
            t + 2 * MINUTE,
        )
        .expect("proposal");
    p.applied.push(applied("svc-a", 10, 20, t + 3 * MINUTE));
    advance(
        &store,
        &mut p,
        Stage::Verifying,
        "applied",
        t + 3 * MINUTE,
        Some(Command::Submit {
            agent: AGENT.into(),
        }),
    );
    p.outcome = "verified".into();
    advance(
        &store,
        &mut p,
        Stage::Succeeded,
        "passed",
        t + 20 * MINUTE,
        Some(Command::Resolve {
            actor: "pipeline".into(),
            reason: "criteria met".into(),
        }),
    );

    // Six days ago: an SLO ticket resolved by a change on two services.
    let t = now - 6 * DAY;
    let resolved = file(
        &store,
        &draft(
            Source::Slo,
            TicketType::Incident,
            "availability is burning its error budget",
            "slo:availability",
        ),
        t,
    );
    claim(&store, &resolved, t + MINUTE);
    let mut p = store
        .create_proposal(
            &proposal(
                &resolved,
                GOOD_RATIONALE,
                vec![ActionCall {
                    action: "set_limit".into(),
                    params: set_limit(128),
                }],
                t + 2 * MINUTE,
            ),
            Some(&Command::Start {
                agent: AGENT.into(),
            }),
            t + 2 * MINUTE,
        )
        .expect("proposal");
    p.applied.push(applied("svc-a", 64, 128, t + 3 * MINUTE));
    advance(
        &store,
        &mut p,
        Stage::Canary,
        "passed",
        t + 3 * MINUTE,
        None,
    );
    p.applied.push(applied("svc-b", 64, 128, t + 8 * MINUTE));
    advance(
        &store,
        &mut p,
        Stage::Verifying,
        "successful",
        t + 8 * MINUTE,
        Some(Command::Submit {
            agent: AGENT.into(),
        }),
    );
    p.outcome = "verified: every criterion met after the deploy".into();
    advance(
        &store,
        &mut p,
        Stage::Succeeded,
        "passed",
        t + 20 * MINUTE,
        Some(Command::Resolve {
            actor: "pipeline".into(),
            reason: "criteria met".into(),
        }),
    );

    // Five days ago: a change rolled back, then the ticket escalated.
    let t = now - 5 * DAY;
    let escalated = file(
        &store,
        &draft(
            Source::Slo,
            TicketType::Incident,
            "latency p99 above objective",
            "slo:latency",
        ),
        t,
    );
    claim(&store, &escalated, t + MINUTE);
    let mut p = store
        .create_proposal(
            &proposal(
                &escalated,
                HOSTILE_RATIONALE,
                vec![ActionCall {
                    action: "set_limit".into(),
                    params: set_limit(32),
                }],
                t + 2 * MINUTE,
            ),
            Some(&Command::Start {
                agent: AGENT.into(),
            }),
            t + 2 * MINUTE,
        )
        .expect("proposal");
    p.applied.push(applied("svc-a", 64, 32, t + 3 * MINUTE));
    advance(
        &store,
        &mut p,
        Stage::Canary,
        "passed",
        t + 3 * MINUTE,
        None,
    );
    p.applied[0].undone = true;
    p.outcome = "the canary failed: undone".into();
    advance(
        &store,
        &mut p,
        Stage::RolledBack,
        "rolled_back",
        t + 9 * MINUTE,
        Some(Command::Escalate {
            actor: "pipeline".into(),
            reason: ESCALATION_REASON.into(),
        }),
    );

    // Two days ago: an anomaly a human cancelled.
    let t = now - 2 * DAY;
    let cancelled = file(
        &store,
        &draft(
            Source::Anomaly,
            TicketType::Investigation,
            "traffic halved",
            "anomaly:traffic",
        ),
        t,
    );
    store
        .command(
            &cancelled,
            &Command::Cancel {
                actor: "alice".into(),
                reason: "a holiday".into(),
            },
            t + HOUR,
        )
        .expect("cancel");

    // A day ago: reflection asks a human for help.
    let t = now - DAY;
    let finding = Finding {
        kind: FindingKind::Hysteresis,
        fingerprints: vec!["slo:availability".into()],
        key: "hysteresis:slo:availability".into(),
        suspend: true,
        evidence: Evidence {
            tickets: vec![resolved.clone(), old.clone()],
            tried: vec!["set_limit on api/per_tenant requests_per_unit=128".into()],
            newest_ms: t,
            ..Evidence::default()
        },
        message: FINDING_MESSAGE.into(),
    };
    let help = file(&store, &help_ticket(&finding), t);

    // Three hours ago: an invariant ticket; one proposal refused by the
    // test stage, the next waiting for a human.
    let t = now - 3 * HOUR;
    let awaiting = file(
        &store,
        &draft(
            Source::Invariant,
            TicketType::Incident,
            "store_healthy breached on svc-a",
            "invariant:store_healthy:svc-a",
        ),
        t,
    );
    claim(&store, &awaiting, t + MINUTE);
    let mut p = store
        .create_proposal(
            &proposal(
                &awaiting,
                "Raise the store's capacity",
                vec![ActionCall {
                    action: "set_store_capacity".into(),
                    params: json!({"max_keys": 0}),
                }],
                t + 2 * MINUTE,
            ),
            Some(&Command::Start {
                agent: AGENT.into(),
            }),
            t + 2 * MINUTE,
        )
        .expect("proposal");
    p.outcome = "refused by the dry run: max_keys must be positive".into();
    advance(
        &store,
        &mut p,
        Stage::Failed,
        "failed",
        t + 3 * MINUTE,
        None,
    );
    let mut p = store
        .create_proposal(
            &proposal(
                &awaiting,
                APPROVAL_RATIONALE,
                vec![ActionCall {
                    action: "set_failure_policy".into(),
                    params: json!({"policy": "fail_closed"}),
                }],
                now - 2 * HOUR,
            ),
            None,
            now - 2 * HOUR,
        )
        .expect("proposal");
    p.approval = Some(Approval {
        reasons: vec![APPROVAL_REASON.into()],
        requested_ms: now - 2 * HOUR,
        deadline_ms: now + HOUR,
        then: Stage::Canary,
        decision: None,
    });
    advance(
        &store,
        &mut p,
        Stage::AwaitingApproval,
        "passed",
        now - 2 * HOUR,
        None,
    );

    // An hour ago: a human's request, untouched.
    file(
        &store,
        &draft(
            Source::Human,
            TicketType::Task,
            "Document the burst limits",
            "human:docs",
        ),
        now - HOUR,
    );

    // SLO snapshots, as the observe loop writes them.
    let snap = |name: &str, time_ms: u64, budget: f64, firing: Option<&str>| SloSnapshot {
        time_ms,
        name: name.to_owned(),
        sli: Some(1.0 - (1.0 - budget) / 1000.0),
        error_budget_remaining: Some(budget),
        firing: firing.map(str::to_owned),
        burn_rates: json!([{"window": "5m", "burn_rate": 1.5}]),
    };
    for (time_ms, budget, firing) in [
        (now - 40 * DAY, 0.99, None),
        (now - 8 * DAY, 0.97, None),
        (now - 6 * DAY, 0.9, None),
        (now - 5 * DAY, 0.6, Some("ticket")),
        (now - 3 * DAY, 0.35, Some("page")),
        (now - HOUR, 0.5, None),
    ] {
        let written = store
            .record_slo_snapshots(&[snap("availability", time_ms, budget, firing)])
            .expect("snapshot");
        assert_eq!(written, 1, "one snapshot at {time_ms}");
    }
    // At most one per interval per SLO: the second is dropped.
    let t = now - 2 * HOUR;
    let written = store
        .record_slo_snapshots(&[
            snap("latency", t, 0.8, None),
            snap(
                "latency",
                t + SLO_SNAPSHOT_INTERVAL_MS - 1,
                0.1,
                Some("page"),
            ),
            snap("latency", t + SLO_SNAPSHOT_INTERVAL_MS, 0.75, None),
        ])
        .expect("snapshots");
    assert_eq!(written, 2, "the snapshot within the interval is dropped");
    let history = store.slo_history(0).expect("history");
    assert!(
        history
            .iter()
            .all(|s| s.time_ms >= now - SLO_SNAPSHOT_RETENTION_MS - HOUR),
        "older than the retention: deleted ({history:?})"
    );
    assert_eq!(history.len(), 5 + 2);
    assert_eq!(
        store.slo_history(now - 7 * DAY).expect("history").len(),
        4 + 2
    );

    // Expected-change notices: one twenty days ago (outside), one for a
    // launch three days ago that held back an episode and saw another go
    // beyond it, one expired early yesterday.
    let notice = |matchers: serde_json::Value, reason: &str, at: u64, max_factor: Option<f64>| {
        let draft: NoticeDraft = serde_json::from_value(json!({
            "matchers": matchers,
            "duration_ms": 6 * HOUR,
            "reason": reason,
            "author": "deploy:ci",
            "max_factor": max_factor,
        }))
        .expect("a draft");
        store
            .create_notice(&draft.validate(at).expect("valid"), at)
            .expect("notice")
            .id
    };
    notice(
        json!([{"name": "tenant", "value": "initech"}]),
        OLD_NOTICE_REASON,
        now - 20 * DAY,
        None,
    );
    let launch = notice(
        json!([{"name": "tenant", "value": "acme"}, {"name": "anomaly", "regex": "request_.*"}]),
        LAUNCH_REASON,
        now - 3 * DAY,
        Some(10.0),
    );
    store
        .record_notice_event(
            &launch,
            &NoticeEvent::Suppressed {
                anomaly: "request_rate".into(),
                detail: json!({"value": 512.5, "notice": launch}),
            },
            now - 3 * DAY + HOUR,
        )
        .expect("suppressed");
    store
        .record_notice_event(
            &launch,
            &NoticeEvent::Exceeded {
                anomaly: "request_rate".into(),
                detail: json!({"value": 5000, "beyond": BEYOND}),
            },
            now - 3 * DAY + 2 * HOUR,
        )
        .expect("exceeded");
    let migration = notice(
        json!([{"name": "service", "value": "edge-1"}]),
        "migrate <b>edge-1</b>",
        now - DAY,
        None,
    );
    store
        .expire_notice(&migration, "human:alice", "postponed", now - DAY + HOUR)
        .expect("expired");
    drop(store);
    Built {
        old,
        resolved,
        escalated,
        awaiting,
        help,
    }
}

fn load(dir: &Path, since_ms: u64) -> ReportData {
    read_report(dir, since_ms, NOW_MS).expect("report")
}

#[test]
fn the_report_counts_lists_and_links_what_happened_in_the_period() {
    let dir = scratch("library");
    let built = build(&dir, NOW_MS);
    let data = load(&dir, NOW_MS - 7 * DAY);

    // Tickets filed in the period, by source and outcome now.
    let counts = |source: &str| data.tickets.get(source).copied().unwrap_or_default();
    assert_eq!(counts("slo").resolved, 1);
    assert_eq!(counts("slo").escalated, 1);
    assert_eq!(counts("slo").total(), 2);
    assert_eq!(counts("invariant").open, 1);
    assert_eq!(counts("anomaly").cancelled, 1);
    assert_eq!(counts("reflection").open, 1);
    assert_eq!(counts("human").open, 1, "the old human ticket is outside");
    assert_eq!(counts("human").total(), 1);
    assert_eq!(data.ticket_totals().total(), 6);

    // SLO budgets from the snapshots in the period.
    assert!(data.slo_history_kept);
    assert_eq!(data.slos.len(), 2);
    let availability = &data.slos[0];
    assert_eq!(availability.name, "availability");
    assert_eq!(availability.snapshots, 4);
    assert_eq!(availability.first.time_ms, NOW_MS - 6 * DAY);
    assert_eq!(availability.first.budget, Some(0.9));
    assert_eq!(availability.last.budget, Some(0.5));
    let min = availability.min.as_ref().expect("a lowest budget");
    assert_eq!((min.time_ms, min.budget), (NOW_MS - 3 * DAY, Some(0.35)));
    assert_eq!(availability.firing_snapshots, 2);
    assert_eq!(availability.loudest.as_deref(), Some("page"));
    let latency = &data.slos[1];
    assert_eq!(
        (latency.snapshots, latency.first.budget, latency.last.budget),
        (2, Some(0.8), Some(0.75))
    );

    // Every change applied in the period, with what it did and its undo.
    let changes: Vec<(&str, &str, &str)> = data
        .changes
        .iter()
        .map(|c| (c.ticket.as_str(), c.stage.as_str(), c.rationale.as_str()))
        .collect();
    assert_eq!(
        changes,
        vec![
            (built.resolved.as_str(), "succeeded", GOOD_RATIONALE),
            (built.escalated.as_str(), "rolled_back", HOSTILE_RATIONALE),
        ],
        "only proposals that applied something, in the period"
    );
    let good = &data.changes[0];
    assert_eq!(good.agent, AGENT);
    assert_eq!(good.applied.len(), 2);
    assert_eq!(good.applied[1].target, "svc-b");
    assert_eq!(
        good.applied[0]
            .inverse
            .as_ref()
            .map(|(action, params)| (action.as_str(), params.contains("\"requests_per_unit\":64"))),
        Some(("set_limit", true))
    );
    assert_eq!(good.stages.len(), 3);
    assert!(data.changes[1].applied[0].undone);

    // Findings and what waits on a human.
    assert_eq!(data.findings.len(), 1);
    assert_eq!(data.findings[0].ticket, built.help);
    assert_eq!(data.findings[0].kind.as_deref(), Some("hysteresis"));
    assert_eq!(data.findings[0].message, FINDING_MESSAGE);
    assert!(data.findings[0].suspend);
    assert_eq!(data.waiting.approvals.len(), 1);
    let approval = &data.waiting.approvals[0];
    assert_eq!(approval.ticket, built.awaiting);
    assert_eq!(approval.reasons, vec![APPROVAL_REASON.to_owned()]);
    assert_eq!(approval.deadline_ms, Some(NOW_MS + HOUR));
    assert_eq!(data.waiting.escalated.len(), 1);
    assert_eq!(data.waiting.escalated[0].ticket, built.escalated);
    assert_eq!(data.waiting.escalated[0].reason, ESCALATION_REASON);
    assert_eq!(data.waiting.escalated[0].by, "pipeline");
    assert_eq!(data.waiting.help.len(), 1);
    assert_eq!(data.waiting.help[0].ticket, built.help);
    assert!(data.omitted.is_empty());

    // Notices of the period, with what they held back.
    let notices: Vec<(&str, &str, usize, usize)> = data
        .notices
        .iter()
        .map(|n| {
            (
                n.id.as_str(),
                n.state.as_str(),
                n.suppressed.len(),
                n.exceeded.len(),
            )
        })
        .collect();
    assert_eq!(
        notices,
        vec![("N-0002", "expired", 1, 1), ("N-0003", "expired", 0, 0)]
    );
    let launch = &data.notices[0];
    assert_eq!(launch.matchers, "tenant=acme, anomaly=~request_.*");
    assert_eq!(launch.max_factor, Some(10.0));
    assert_eq!(launch.suppressed[0].anomaly, "request_rate");
    assert_eq!(launch.suppressed[0].value, Some(512.5));
    assert_eq!(launch.exceeded[0].beyond, BEYOND);
    assert_eq!(
        data.notices[1].expired,
        Some((
            NOW_MS - DAY + HOUR,
            "human:alice".into(),
            "postponed".into()
        ))
    );

    // Markdown.
    let md = render_markdown(&data);
    assert!(md.contains("| slo | 0 | 1 | 0 | 1 | 0 | 2 |"), "{md}");
    assert!(md.contains("| human | 1 | 0 | 0 | 0 | 0 | 1 |"), "{md}");
    assert!(
        md.contains("| availability | 90.0% | 50.0% | -40.0 pp | 35.0% at "),
        "{md}"
    );
    assert!(md.contains(GOOD_RATIONALE), "{md}");
    for change in [&built.resolved, &built.escalated] {
        assert!(
            md.contains(&format!("`GET /v1/trajectories/{change}`")),
            "{md}"
        );
        assert!(
            md.contains(&format!("`floodgate trajectory show {change}`")),
            "{md}"
        );
    }
    assert!(
        md.contains("\\<script\\>alert(\"owned\")\\</script\\> \\& see"),
        "{md}"
    );
    assert!(md.contains(APPROVAL_REASON), "{md}");
    assert!(
        md.contains(&format!("`floodgate ticket approve {}`", built.awaiting)),
        "{md}"
    );
    assert!(md.contains(ESCALATION_REASON), "{md}");
    assert!(md.contains(FINDING_MESSAGE), "{md}");
    assert!(
        !md.contains(OLD_RATIONALE),
        "the old change is outside the period"
    );
    assert!(md.contains("## Expected changes (2)"), "{md}");
    assert!(
        md.contains(&format!("### N-0002 (expired): {LAUNCH_REASON}")),
        "{md}"
    );
    assert!(md.contains("- held back 1 anomaly episode:"), "{md}");
    assert!(md.contains("request_rate at 512.5"), "{md}");
    assert!(md.contains("- went beyond it (ticketed): "), "{md}");
    assert!(md.contains("expired early "), "{md}");
    assert!(md.contains("migrate \\<b\\>edge-1\\</b\\>"), "{md}");
    assert!(!md.contains(OLD_NOTICE_REASON), "{md}");
    assert!(
        md.contains("2 expected-change notices (1 anomaly held back)"),
        "{md}"
    );

    // HTML: standalone, escaped.
    let html = render_html(&data);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("<script"), "no script, and none let through");
    assert!(!html.contains("src="), "no external asset");
    assert!(
        html.contains("&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt; &amp; see"),
        "the rationale is escaped"
    );
    assert!(html.contains(&format!("GET /v1/trajectories/{}", built.resolved)));
    assert!(html.contains(&format!("floodgate trajectory show {}", built.escalated)));
    assert!(html.contains(APPROVAL_REASON));
    assert!(html.contains(&built.help));
    assert!(!html.contains(OLD_RATIONALE));
    assert!(html.contains("<section id=\"notices\">"));
    assert!(html.contains(LAUNCH_REASON));
    assert!(html.contains("migrate &lt;b&gt;edge-1&lt;/b&gt;"));

    // A longer window takes the old ticket and its change in.
    let month = load(&dir, NOW_MS - 30 * DAY);
    assert_eq!(month.tickets["human"].resolved, 1);
    assert_eq!(month.ticket_totals().total(), 7);
    assert_eq!(month.changes.len(), 3);
    assert_eq!(month.changes[0].ticket, built.old);
    assert!(render_markdown(&month).contains(OLD_RATIONALE));
    // The availability budget's first snapshot in 30 days is 8 days old.
    assert_eq!(month.slos[0].first.budget, Some(0.97));
    assert_eq!(month.notices.len(), 3);
    assert_eq!(month.notices[0].reason, OLD_NOTICE_REASON);

    // The store answers the same as the read-only path.
    let store = Store::open(&dir).expect("store");
    assert_eq!(
        ReportData::from_store(&store, NOW_MS - 7 * DAY, NOW_MS).expect("report"),
        data
    );
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

fn floodgate(args: &[&str]) -> Output {
    Process::new(env!("CARGO_BIN_EXE_floodgate"))
        .args(args)
        .output()
        .expect("run floodgate")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}

#[test]
fn floodgate_report_writes_markdown_and_html_and_names_bad_input() {
    let dir = scratch("binary");
    let data = dir.join("data");
    // The binary reads the clock once: the history ends now.
    let built = build(&data, wall_clock_ms());
    let out = dir.join("out");
    let data_arg = data.display().to_string();
    let out_arg = out.display().to_string();

    let run = floodgate(&[
        "report", "--data", &data_arg, "--since", "7d", "--out", &out_arg,
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let printed: Vec<String> = text(&run.stdout).lines().map(str::to_owned).collect();
    let md_path = out.join("report.md");
    let html_path = out.join("report.html");
    assert_eq!(
        printed,
        vec![
            md_path.display().to_string(),
            html_path.display().to_string()
        ]
    );
    let md = std::fs::read_to_string(&md_path).expect("report.md");
    let html = std::fs::read_to_string(&html_path).expect("report.html");
    assert!(md.contains("| slo | 0 | 1 | 0 | 1 | 0 | 2 |"), "{md}");
    assert!(md.contains(GOOD_RATIONALE), "{md}");
    assert!(md.contains(&format!("`floodgate trajectory show {}`", built.resolved)));
    assert!(md.contains(&built.awaiting) && md.contains(&built.help));
    assert!(
        !md.contains(OLD_RATIONALE),
        "--since 7d leaves the old change out"
    );
    assert!(!html.contains("<script"));
    assert!(html.contains("&lt;script&gt;"));
    assert!(html.contains(&format!("GET /v1/trajectories/{}", built.escalated)));

    let month = floodgate(&[
        "report", "--data", &data_arg, "--since", "30d", "--out", &out_arg,
    ]);
    assert!(month.status.success(), "{}", text(&month.stderr));
    let md = std::fs::read_to_string(&md_path).expect("report.md");
    assert!(
        md.contains(OLD_RATIONALE),
        "--since 30d takes the old change in"
    );
    assert!(md.contains("| human | 1 | 1 | 0 | 0 | 0 | 2 |"), "{md}");

    // Bad input: refused, naming the flag and what is wrong.
    let bad_since = floodgate(&[
        "report", "--data", &data_arg, "--since", "7x", "--out", &out_arg,
    ]);
    assert!(!bad_since.status.success());
    let error = text(&bad_since.stderr);
    assert!(
        error.contains("--since") && error.contains("\"7x\" is not a duration"),
        "{error}"
    );

    let missing = dir.join("missing");
    let run = floodgate(&[
        "report",
        "--data",
        &missing.display().to_string(),
        "--out",
        &out_arg,
    ]);
    assert!(!run.status.success());
    let error = text(&run.stderr);
    assert!(
        error.contains("--data") && error.contains("is not a directory"),
        "{error}"
    );

    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).expect("empty dir");
    let run = floodgate(&[
        "report",
        "--data",
        &empty.display().to_string(),
        "--out",
        &out_arg,
    ]);
    assert!(!run.status.success());
    let error = text(&run.stderr);
    assert!(
        error.contains("--data") && error.contains("not a harness data directory"),
        "{error}"
    );
    assert!(
        std::fs::read_dir(&empty)
            .expect("empty dir")
            .next()
            .is_none(),
        "nothing is created in a directory that is not a harness's"
    );

    let garbage = dir.join("garbage");
    std::fs::create_dir_all(&garbage).expect("garbage dir");
    std::fs::write(
        garbage.join("harness.sqlite3"),
        "not a database at all, just text\n".repeat(200),
    )
    .expect("garbage file");
    let run = floodgate(&[
        "report",
        "--data",
        &garbage.display().to_string(),
        "--out",
        &out_arg,
    ]);
    assert!(!run.status.success());
    let error = text(&run.stderr);
    assert!(
        error.contains("--data") && error.contains("not a database"),
        "{error}"
    );

    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn floodgate_report_on_old_data_reports_the_directory_s_own_period() {
    let dir = scratch("own-period");
    let data = dir.join("data");
    // A history that ended long before now, like a scenario run's
    // simulated dates.
    let built = build(&data, NOW_MS);
    assert!(wall_clock_ms() > NOW_MS + 7 * DAY);
    let out = dir.join("out");
    let data_arg = data.display().to_string();
    let out_arg = out.display().to_string();

    let run = floodgate(&["report", "--data", &data_arg, "--out", &out_arg]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert!(
        text(&run.stderr).contains("reporting its own period"),
        "{}",
        text(&run.stderr)
    );
    let md = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    // The whole recorded history, the oldest change included.
    assert!(md.contains(GOOD_RATIONALE), "{md}");
    assert!(md.contains(OLD_RATIONALE), "{md}");
    assert!(md.contains(&built.awaiting), "{md}");

    // An explicit --since is the period: the last 7 days hold nothing.
    let run = floodgate(&[
        "report", "--data", &data_arg, "--since", "7d", "--out", &out_arg,
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert!(!text(&run.stderr).contains("own period"));
    let md = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    assert!(!md.contains(GOOD_RATIONALE), "{md}");
    let _ = std::fs::remove_dir_all(dir);
}
