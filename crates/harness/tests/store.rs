//! The durable queue: kill -9 during a burst of writes, tampering with the
//! ledger, claims, reopening, and Alertmanager intake.

mod common;

use common::{scratch_dir, seed, Rng, T0_MS};
use floodgate_harness::store::ledger::{self, VerifyError};
use floodgate_harness::store::tickets::IntakeAction;
use floodgate_harness::store::tickets::TicketFilter;
use floodgate_harness::store::StoreError;
use floodgate_harness::tickets::alertmanager;
use floodgate_harness::tickets::criteria::{Condition, Criterion};
use floodgate_harness::tickets::{
    Command, IntakePolicy, NewTicket, Objective, Priority, Source, TicketState, TicketType,
    TransitionError,
};
use floodgate_harness::Store;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command as Process, Stdio};

fn draft(fingerprint: &str) -> NewTicket {
    NewTicket {
        kind: TicketType::Incident,
        objective: Objective {
            description: format!("problem {fingerprint}"),
        },
        acceptance_criteria: vec![Criterion {
            metric: "error_ratio".into(),
            condition: Condition::parse("< 0.1%").expect("parses"),
            duration: None,
            baseline: None,
            reference: None,
        }],
        constraints: vec!["no changes during peak hours".into()],
        context: serde_json::json!({"evidence": fingerprint}),
        source: Source::Human,
        priority: Priority::Medium,
        fingerprint: fingerprint.into(),
    }
}

fn open(dir: &Path) -> Store {
    Store::open(dir).unwrap_or_else(|error| panic!("{error}"))
}

fn claim(agent: &str) -> Command {
    Command::Claim {
        agent: agent.into(),
        ttl_ms: 60_000,
    }
}

const CHILD_DIR_ENV: &str = "FLOODGATE_HARNESS_KILL9_DIR";
/// The child stops by itself after this many tickets, should the parent die.
const CHILD_MAX_TICKETS: u64 = 20_000;

/// In the child (the test binary re-run with `CHILD_DIR_ENV` set): file
/// tickets and claim them as fast as it can, printing every acknowledged
/// write, until killed.
fn child_writer(dir: &Path) {
    let store = open(dir);
    for i in 0..CHILD_MAX_TICKETS {
        let now = T0_MS + i;
        let outcome = store
            .intake(&draft(&format!("burst-{i}")), None, now)
            .expect("intake");
        println!("ACK created {}", outcome.ticket.id);
        store
            .command(&outcome.ticket.id, &claim("agent"), now)
            .expect("claim");
        println!("ACK claimed {}", outcome.ticket.id);
    }
}

#[test]
fn kill_9_during_a_burst_loses_nothing_acknowledged() {
    if let Ok(dir) = std::env::var(CHILD_DIR_ENV) {
        child_writer(Path::new(&dir));
        return;
    }
    let seed = seed(9);
    let mut rng = Rng::from_state(seed);
    for round in 0..3 {
        let dir = scratch_dir("kill9");
        // Kill after a seeded number of acknowledgements, mid-burst.
        let kill_after = 20 + rng.next_u64() % 300;
        let mut child = Process::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "kill_9_during_a_burst_loses_nothing_acknowledged",
                "--nocapture",
            ])
            .env(CHILD_DIR_ENV, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawns the writer");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut acked: Vec<(String, String)> = Vec::new();
        while acked.len() < kill_after as usize {
            let Some(Ok(line)) = lines.next() else {
                panic!("seed {seed} round {round}: the writer ended early");
            };
            if let Some(rest) = line.strip_prefix("ACK ") {
                let (what, id) = rest.split_once(' ').expect("ACK what id");
                acked.push((what.to_owned(), id.to_owned()));
            }
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        // Lines already in the pipe were acknowledged before the kill.
        for line in lines.map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("ACK ") {
                let (what, id) = rest.split_once(' ').expect("ACK what id");
                acked.push((what.to_owned(), id.to_owned()));
            }
        }
        let report = ledger::verify(&dir)
            .unwrap_or_else(|error| panic!("seed {seed} round {round}: {error}"));
        let store = open(&dir);
        for (what, id) in &acked {
            let ticket = store
                .get(id)
                .unwrap_or_else(|error| panic!("{error}"))
                .unwrap_or_else(|| panic!("seed {seed} round {round}: acknowledged {id} lost"));
            if what == "claimed" {
                assert_eq!(
                    ticket.state,
                    TicketState::Claimed,
                    "seed {seed} round {round}: {id}"
                );
            }
        }
        // Nothing beyond the one write in flight when the kill landed.
        let created = acked.iter().filter(|(what, _)| what == "created").count() as u64;
        assert!(
            report.tickets == created || report.tickets == created + 1,
            "seed {seed}: {report:?} vs {created}"
        );
        let acks = acked.len() as u64;
        assert!(
            report.entries == acks || report.entries == acks + 1,
            "seed {seed}: {report:?} vs {acks} acks"
        );
        eprintln!(
            "round {round}: killed after {} acks; {report:?}",
            acked.len()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Runs SQL on the store's file directly, as someone with the file would.
fn tamper(dir: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(dir.join(floodgate_harness::store::DB_FILE))
        .expect("opens the file");
    conn.execute_batch(sql).expect("tampers");
}

fn populated(name: &str) -> std::path::PathBuf {
    let dir = scratch_dir(name);
    let store = open(&dir);
    for i in 0..3 {
        let outcome = store
            .intake(&draft(&format!("fp-{i}")), None, T0_MS + i)
            .expect("intake");
        store
            .command(&outcome.ticket.id, &claim("agent"), T0_MS + 10)
            .expect("claim");
    }
    store
        .command(
            "INF-0002",
            &Command::Comment {
                actor: "human".into(),
                text: "looking".into(),
            },
            T0_MS + 20,
        )
        .expect("comment");
    let report = ledger::verify(&dir).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!((report.entries, report.tickets), (7, 3));
    dir
}

fn expect_tampered(dir: &Path, seq: Option<u64>, needle: &str) {
    match ledger::verify(dir) {
        Err(VerifyError::Tampered {
            seq: found,
            message,
        }) => {
            assert_eq!(found, seq, "{message}");
            assert!(message.contains(needle), "{message:?} lacks {needle:?}");
        }
        other => panic!("expected tampering to be detected, got {other:?}"),
    }
}

#[test]
fn a_hand_edited_ledger_fails_verification() {
    // The ledger refuses edits while its triggers stand.
    let dir = populated("edit-refused");
    let conn =
        rusqlite::Connection::open(dir.join(floodgate_harness::store::DB_FILE)).expect("opens");
    assert!(conn
        .execute("UPDATE ledger SET time_ms = 0 WHERE seq = 1", [])
        .is_err());
    assert!(conn
        .execute("DELETE FROM ledger WHERE seq = 7", [])
        .is_err());
    drop(conn);

    // An edited entry.
    let dir = populated("edit-body");
    tamper(
        &dir,
        "DROP TRIGGER ledger_no_update;
         UPDATE ledger SET body = replace(body, '\"agent\":\"agent\"', '\"agent\":\"mallory\"') WHERE seq = 2;",
    );
    expect_tampered(&dir, Some(2), "hash does not match");

    // An edited entry whose hash was recomputed: the next entry's link breaks.
    let dir = populated("edit-rehash");
    let conn =
        rusqlite::Connection::open(dir.join(floodgate_harness::store::DB_FILE)).expect("opens");
    let (body, prev): (String, String) = conn
        .query_row(
            "SELECT body, prev_hash FROM ledger WHERE seq = 2",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .expect("reads");
    let forged = body.replace("\"agent\":\"agent\"", "\"agent\":\"mallory\"");
    let hash = ledger::chain_hash(&prev, &forged);
    conn.execute_batch("DROP TRIGGER ledger_no_update;")
        .expect("drops");
    conn.execute(
        "UPDATE ledger SET body = ?1, hash = ?2 WHERE seq = 2",
        rusqlite::params![forged, hash],
    )
    .expect("forges");
    drop(conn);
    expect_tampered(&dir, Some(3), "prev_hash");

    // A removed last entry: the head no longer matches.
    let dir = populated("edit-delete");
    tamper(
        &dir,
        "DROP TRIGGER ledger_no_delete; DELETE FROM ledger WHERE seq = 7;",
    );
    expect_tampered(&dir, None, "head");

    // A ticket row edited behind the ledger's back.
    let dir = populated("edit-ticket");
    tamper(
        &dir,
        "UPDATE tickets SET state = 'resolved', doc = replace(doc, '\"state\":\"claimed\"', '\"state\":\"resolved\"') WHERE id = 'INF-0001';",
    );
    expect_tampered(&dir, None, "INF-0001 differs");
}

#[test]
fn claims_expire_and_only_the_claimant_works_the_ticket() {
    let dir = scratch_dir("claims");
    let store = open(&dir);
    let id = store
        .intake(&draft("fp"), None, T0_MS)
        .expect("intake")
        .ticket
        .id;
    store.command(&id, &claim("a"), T0_MS).expect("claim");
    let refused = store.command(&id, &claim("b"), T0_MS + 1);
    assert!(
        matches!(
            refused,
            Err(StoreError::Transition(TransitionError::NotAllowed { .. }))
        ),
        "{refused:?}"
    );
    let refused = store.command(&id, &Command::Start { agent: "b".into() }, T0_MS + 1);
    assert!(
        matches!(
            refused,
            Err(StoreError::Transition(TransitionError::NotClaimant { .. }))
        ),
        "{refused:?}"
    );
    store
        .command(&id, &Command::Start { agent: "a".into() }, T0_MS + 2)
        .expect("start");
    assert_eq!(
        store.expire_claims(T0_MS + 59_999).expect("expire"),
        Vec::<String>::new()
    );
    assert_eq!(
        store.expire_claims(T0_MS + 60_000).expect("expire"),
        vec![id.clone()]
    );
    let ticket = store.get(&id).expect("get").expect("exists");
    assert_eq!((ticket.state, ticket.claim), (TicketState::Open, None));
    store
        .command(&id, &claim("b"), T0_MS + 60_001)
        .expect("b claims it now");
    let history: Vec<String> = store
        .history(&id)
        .expect("history")
        .into_iter()
        .map(|entry| entry.kind)
        .collect();
    assert_eq!(
        history,
        [
            "ticket.created",
            "ticket.transitioned",
            "ticket.transitioned",
            "ticket.transitioned",
            "ticket.transitioned"
        ]
    );
    assert_eq!(store.next_open().expect("next"), None);
    ledger::verify(&dir).unwrap_or_else(|error| panic!("{error}"));
}

#[test]
fn recurrences_are_absorbed_reopened_then_escalated() {
    let dir = scratch_dir("reopen");
    let store = open(&dir).with_policy(IntakePolicy {
        reopen_window_ms: 3_600_000,
        max_reopens: 1,
    });
    let first = store.intake(&draft("fp"), None, T0_MS).expect("intake");
    assert_eq!(first.action, IntakeAction::Created);
    let id = first.ticket.id;
    let again = store.intake(&draft("fp"), None, T0_MS + 1).expect("intake");
    assert_eq!(
        (again.action, again.ticket.occurrences),
        (IntakeAction::Absorbed, 2)
    );
    // Filing and absorbing are no reopen: reflection waits its interval.
    assert!(!store.take_reopened());
    let resolve = |store: &Store, at: u64| {
        store.command(&id, &claim("a"), at).expect("claim");
        store
            .command(&id, &Command::Start { agent: "a".into() }, at)
            .expect("start");
        store
            .command(&id, &Command::Submit { agent: "a".into() }, at)
            .expect("submit");
        store
            .command(
                &id,
                &Command::Resolve {
                    actor: "harness".into(),
                    reason: "criteria met".into(),
                },
                at,
            )
            .expect("resolve");
    };
    resolve(&store, T0_MS + 10);
    let reopened = store
        .intake(&draft("fp"), None, T0_MS + 20)
        .expect("intake");
    assert_eq!(
        (
            reopened.action,
            reopened.ticket.state,
            reopened.ticket.reopened
        ),
        (IntakeAction::Reopened, TicketState::Open, 1)
    );
    // A reopen is told once (the observe loop reflects at once).
    assert!(store.take_reopened());
    assert!(!store.take_reopened());
    resolve(&store, T0_MS + 30);
    let escalated = store
        .intake(&draft("fp"), None, T0_MS + 40)
        .expect("intake");
    assert_eq!(
        (escalated.action, escalated.ticket.state),
        (IntakeAction::Reopened, TicketState::Escalated)
    );
    store
        .command(
            &id,
            &Command::Resolve {
                actor: "human".into(),
                reason: "fixed by hand".into(),
            },
            T0_MS + 50,
        )
        .expect("a human resolves it");
    // Long after: a new ticket, linked to the old one.
    let later = store
        .intake(&draft("fp"), None, T0_MS + 50 + 3_600_001)
        .expect("intake");
    assert_eq!(later.action, IntakeAction::Created);
    assert_eq!(later.ticket.id, "INF-0002");
    assert_eq!(later.ticket.context["previous_ticket"], "INF-0001");
    ledger::verify(&dir).unwrap_or_else(|error| panic!("{error}"));
}

const PAYLOAD: &str = r#"{
  "version": "4",
  "groupKey": "{}/{}:{alertname=\"HighErrorRate\"}",
  "truncatedAlerts": 0,
  "status": "firing",
  "receiver": "floodgate",
  "groupLabels": {"alertname": "HighErrorRate"},
  "commonLabels": {"alertname": "HighErrorRate", "severity": "critical"},
  "commonAnnotations": {"summary": "Error rate above 1%"},
  "externalURL": "http://alertmanager.invalid",
  "alerts": [
    {
      "status": "firing",
      "labels": {"alertname": "HighErrorRate", "severity": "critical", "instance": "a"},
      "annotations": {"summary": "Error rate above 1% on a"},
      "startsAt": "2026-11-26T10:00:00Z",
      "endsAt": "0001-01-01T00:00:00Z",
      "generatorURL": "http://prometheus.invalid/graph",
      "fingerprint": "c6ab2b1a2f1e2d3c"
    },
    {
      "status": "resolved",
      "labels": {"alertname": "HighErrorRate", "severity": "critical", "instance": "b"},
      "annotations": {},
      "startsAt": "2026-11-26T09:00:00Z",
      "endsAt": "2026-11-26T09:30:00Z",
      "generatorURL": "",
      "fingerprint": "d7bc3c2b3a2f1e0d"
    }
  ]
}"#;

fn deliver(store: &Store, body: &str, now: u64) -> Vec<IntakeAction> {
    let payload = alertmanager::parse(body.as_bytes()).unwrap_or_else(|error| panic!("{error}"));
    let conversion = alertmanager::convert(&payload).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(conversion.resolved, 1);
    conversion
        .intakes
        .iter()
        .map(|intake| {
            store
                .intake(&intake.draft, Some(&intake.intake_key), now)
                .expect("intake")
                .action
        })
        .collect()
}

#[test]
fn the_same_alertmanager_payload_twice_makes_one_ticket() {
    let dir = scratch_dir("alertmanager");
    let store = open(&dir);
    assert_eq!(deliver(&store, PAYLOAD, T0_MS), [IntakeAction::Created]);
    let head = store.head().expect("head");
    assert_eq!(
        deliver(&store, PAYLOAD, T0_MS + 1),
        [IntakeAction::Duplicate]
    );
    assert_eq!(
        store.head().expect("head"),
        head,
        "a duplicate writes nothing"
    );
    let tickets = store.list(&TicketFilter::default()).expect("list");
    assert_eq!(tickets.len(), 1);
    let ticket = &tickets[0];
    assert_eq!(
        (ticket.source, ticket.priority, ticket.occurrences),
        (Source::Alertmanager, Priority::Critical, 1)
    );
    assert_eq!(ticket.objective.description, "Error rate above 1% on a");
    assert_eq!(ticket.fingerprint, "alertmanager:c6ab2b1a2f1e2d3c");
    assert_eq!(ticket.context["alertmanager"]["receiver"], "floodgate");
    // The same alert firing again later (a new startsAt) is an occurrence.
    let again = PAYLOAD.replace("2026-11-26T10:00:00Z", "2026-11-26T12:00:00Z");
    assert_eq!(deliver(&store, &again, T0_MS + 2), [IntakeAction::Absorbed]);
    assert_eq!(
        store.get(&ticket.id).expect("get").map(|t| t.occurrences),
        Some(2)
    );
    ledger::verify(&dir).unwrap_or_else(|error| panic!("{error}"));
    // A payload of another version is refused, naming the field.
    let v3 = alertmanager::parse(PAYLOAD.replace("\"4\"", "\"3\"").as_bytes()).expect("parses");
    let error = alertmanager::convert(&v3).expect_err("refused");
    assert_eq!(
        error.to_string(),
        "version: \"3\" is not supported (expected \"4\")"
    );
    let error = alertmanager::parse(
        br#"{"version": "4", "groupKey": "g", "status": "firing", "alerts": [{"status": 1}]}"#,
    )
    .expect_err("refused");
    assert_eq!(error.field, "alerts[0].status");
}

#[test]
fn the_ledger_pages_in_order() {
    let dir = populated("pages");
    let store = open(&dir);
    let first = store.ledger_page(0, 4).expect("page");
    let rest = store
        .ledger_page(first.last().map_or(0, |entry| entry.seq), 100)
        .expect("page");
    let seqs: Vec<u64> = first.iter().chain(&rest).map(|entry| entry.seq).collect();
    assert_eq!(seqs, (1..=7).collect::<Vec<_>>());
    assert_eq!(first[0].prev_hash, floodgate_harness::store::GENESIS_HASH);
    assert!(first
        .windows(2)
        .all(|pair| pair[1].prev_hash == pair[0].hash));
}

#[test]
fn evidence_with_awkward_floats_verifies() {
    // Burn rates, ratios and budgets are floats whose shortest spelling
    // must read back to the same value, or the ledger's canonical form
    // would not reproduce (found by the runbook agent's end-to-end test).
    let dir = scratch_dir("floats");
    let store = open(&dir);
    let seed = seed(0x5eed_f10a7);
    let mut rng = Rng::from_state(seed);
    let mut draft = draft("floats");
    let values: Vec<f64> = (0..200)
        .map(|i| match i % 4 {
            0 => (rng.next_u64() % 1_000_000) as f64 / 7.0,
            1 => 1.0 / (1.0 + (rng.next_u64() % 1_000_000) as f64),
            2 => ((rng.next_u64() % 1_000) as f64) * 1e-9 + 0.1,
            _ => 0.999_9 + ((rng.next_u64() % 100) as f64) * 1e-17,
        })
        .collect();
    draft.context = serde_json::json!({ "report": { "burn_rates": values } });
    store.intake(&draft, None, T0_MS).expect("intake");
    drop(store);
    let report = ledger::verify(&dir).unwrap_or_else(|error| panic!("seed {seed}: {error:?}"));
    assert_eq!(report.entries, 1);
}

#[test]
fn a_reminder_of_an_episode_a_verified_fix_ended_does_not_reopen_its_ticket() {
    use floodgate_harness::harness::Violation;
    use floodgate_harness::run::observer::file_violations;
    let dir = scratch_dir("stale-reminder");
    let store = open(&dir);
    let mut first = draft("slo:demo");
    first.context = serde_json::json!({"since_ms": T0_MS});
    let filed = store.intake(&first, None, T0_MS).expect("intake");
    let id = filed.ticket.id.clone();
    for command in [
        claim("agent-1"),
        Command::Start {
            agent: "agent-1".into(),
        },
        Command::Submit {
            agent: "agent-1".into(),
        },
        Command::Resolve {
            actor: "harness".into(),
            reason: "verified".into(),
        },
    ] {
        store
            .command(&id, &command, T0_MS + 1_000)
            .expect("command");
    }
    // The alert that was firing since T0 reminds an hour later: the tail
    // of the episode the fix ended.
    let stale = Violation {
        draft: first.clone(),
        reminder: true,
    };
    let outcomes = file_violations(&store, &[stale], T0_MS + 3_600_000).expect("filed");
    assert!(outcomes.is_empty(), "{outcomes:?}");
    assert_eq!(
        store.get(&id).expect("get").expect("ticket").state,
        TicketState::Resolved
    );
    // A new episode (the alert fired again after the fix) reopens it.
    let mut fresh = first.clone();
    fresh.context = serde_json::json!({"since_ms": T0_MS + 7_200_000});
    let again = Violation {
        draft: fresh,
        reminder: true,
    };
    let outcomes = file_violations(&store, &[again], T0_MS + 7_300_000).expect("filed");
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].action, IntakeAction::Reopened);
}

fn notice_draft(tenant: &str) -> floodgate_harness::tickets::notices::NoticeDraft {
    serde_json::from_value(serde_json::json!({
        "matchers": [{"name": "tenant", "value": tenant}],
        "duration_ms": 3_600_000,
        "reason": format!("{tenant} launches"),
        "author": "deploy:ci",
    }))
    .expect("a draft")
}

#[test]
fn live_notices_are_bounded_and_expired_ones_make_room() {
    use floodgate_harness::tickets::notices::MAX_LIVE_NOTICES;
    let dir = scratch_dir("notices-bound");
    let store = open(&dir);
    let now = T0_MS;
    let notice = notice_draft("acme").validate(now).expect("valid");
    for _ in 0..MAX_LIVE_NOTICES {
        store.create_notice(&notice, now).expect("room");
    }
    assert_eq!(
        store.live_notices(now).expect("live").len(),
        MAX_LIVE_NOTICES
    );
    match store.create_notice(&notice, now) {
        Err(StoreError::Conflict { field, message }) => {
            assert_eq!(field, "notices");
            assert!(message.contains("expire one"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    store
        .expire_notice("N-0007", "human:alice", "postponed", now + 1)
        .expect("expires");
    let created = store.create_notice(&notice, now + 2).expect("room again");
    assert_eq!(created.id, "N-1001");
    // Once their windows end, none is live.
    assert!(store
        .live_notices(now + 3_600_000 + 2)
        .expect("live")
        .is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_hand_edited_notice_fails_verification() {
    let dir = scratch_dir("notice-edit");
    let store = open(&dir);
    let notice = notice_draft("acme").validate(T0_MS).expect("valid");
    store.create_notice(&notice, T0_MS).expect("created");
    store
        .expire_notice("N-0001", "human:alice", "postponed", T0_MS + 5)
        .expect("expired");
    drop(store);
    let report = ledger::verify(&dir).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!((report.entries, report.notices), (2, 1));
    // Moving the end back to the original hides the early expiry.
    tamper(
        &dir,
        &format!(
            "UPDATE notices SET end_ms = {} WHERE id = 'N-0001';",
            T0_MS + 3_600_000
        ),
    );
    expect_tampered(&dir, None, "notice N-0001 differs from its ledger history");
    let _ = std::fs::remove_dir_all(dir);
}

fn caused(fingerprint: &str, causes: &[&str]) -> NewTicket {
    let mut draft = draft(fingerprint);
    draft.context = serde_json::json!({ "causes": causes });
    draft
}

fn state_of(store: &Store, id: &str) -> (TicketState, Option<String>) {
    let ticket = store.get(id).expect("get").expect("ticket");
    (ticket.state, ticket.incident)
}

#[test]
fn tickets_with_a_common_cause_are_one_incident_worked_by_its_owner() {
    let dir = scratch_dir("incidents");
    let store = open(&dir);
    let owner = store
        .intake(
            &caused("slo:x", &["value:api/org=a", "limit:api/per_org"]),
            None,
            T0_MS,
        )
        .expect("owner")
        .ticket;
    assert_eq!(owner.incident, None);
    // A ticket of another cause is its own incident.
    let other = store
        .intake(&caused("anomaly:y", &["value:api/org=b"]), None, T0_MS + 1)
        .expect("other")
        .ticket;
    assert_eq!(other.incident, None);
    // One sharing a cause joins the owner's incident and is not handed out.
    let member = store
        .intake(&caused("anomaly:z", &["value:api/org=a"]), None, T0_MS + 2)
        .expect("member")
        .ticket;
    assert_eq!(member.incident.as_deref(), Some(owner.id.as_str()));
    assert_eq!(member.state, TicketState::Open);
    store
        .command(
            &other.id,
            &Command::Cancel {
                actor: "alice".into(),
                reason: "noise".into(),
            },
            T0_MS + 3,
        )
        .expect("cancel");
    assert_eq!(
        store.next_open().expect("next").map(|ticket| ticket.id),
        Some(owner.id.clone()),
        "the member waits for its owner"
    );
    store
        .command(&owner.id, &claim("agent"), T0_MS + 4)
        .expect("claim");
    assert_eq!(store.next_open().expect("next"), None);
    let history = store.history(&owner.id).expect("history");
    assert!(history.iter().any(|entry| entry.kind == "ticket.commented"
        && entry.data["text"]
            .as_str()
            .unwrap_or("")
            .contains(&member.id)));
    let incidents = store.incidents(10).expect("incidents");
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].owner.id, owner.id);
    assert_eq!(incidents[0].members.len(), 1);
    assert_eq!(incidents[0].members[0].causes, ["value:api/org=a"]);

    // The owner's fix is verified: the member is resolved with it.
    store
        .command(
            &owner.id,
            &Command::Start {
                agent: "agent".into(),
            },
            T0_MS + 5,
        )
        .expect("start");
    store
        .command(
            &owner.id,
            &Command::Submit {
                agent: "agent".into(),
            },
            T0_MS + 6,
        )
        .expect("submit");
    store
        .command(
            &owner.id,
            &Command::Resolve {
                actor: "harness".into(),
                reason: "verified".into(),
            },
            T0_MS + 7,
        )
        .expect("resolve");
    assert_eq!(state_of(&store, &member.id).0, TicketState::Resolved);

    // A failed owner releases its members to be worked on their own; an
    // escalated one takes them to the human with it.
    let failing = store
        .intake(&caused("slo:f", &["instance:svc-b"]), None, T0_MS + 10)
        .expect("owner")
        .ticket;
    let released = store
        .intake(
            &caused("invariant:g", &["instance:svc-b"]),
            None,
            T0_MS + 11,
        )
        .expect("member")
        .ticket;
    assert_eq!(released.incident.as_deref(), Some(failing.id.as_str()));
    store
        .command(&failing.id, &claim("agent"), T0_MS + 12)
        .expect("claim");
    store
        .command(
            &failing.id,
            &Command::Start {
                agent: "agent".into(),
            },
            T0_MS + 13,
        )
        .expect("start");
    store
        .command(
            &failing.id,
            &Command::Fail {
                actor: "agent".into(),
                reason: "no fix".into(),
            },
            T0_MS + 14,
        )
        .expect("fail");
    assert_eq!(state_of(&store, &released.id), (TicketState::Open, None));
    assert_eq!(
        store.next_open().expect("next").map(|t| t.id),
        Some(released.id.clone())
    );

    let escalating = store
        .intake(&caused("slo:e", &["limit:api/q"]), None, T0_MS + 20)
        .expect("owner")
        .ticket;
    let follower = store
        .intake(&caused("slo:e2", &["limit:api/q"]), None, T0_MS + 21)
        .expect("member")
        .ticket;
    store
        .command(
            &escalating.id,
            &Command::Escalate {
                actor: "agent".into(),
                reason: "too big".into(),
            },
            T0_MS + 22,
        )
        .expect("escalate");
    assert_eq!(state_of(&store, &follower.id).0, TicketState::Escalated);

    // An investigation (an anomaly) that goes to a human asks a question:
    // the harm that joined it (an SLO burn) is released to be worked, an
    // investigation that joined it goes with it.
    let mut asking = caused("anomaly:rise", &["value:api/org=c"]);
    asking.kind = TicketType::Investigation;
    let asking = store
        .intake(&asking, None, T0_MS + 30)
        .expect("owner")
        .ticket;
    let harm = store
        .intake(&caused("slo:burn", &["value:api/org=c"]), None, T0_MS + 31)
        .expect("member")
        .ticket;
    let mut echo = caused("anomaly:other", &["value:api/org=c"]);
    echo.kind = TicketType::Investigation;
    let echo = store
        .intake(&echo, None, T0_MS + 32)
        .expect("member")
        .ticket;
    assert_eq!(harm.incident.as_deref(), Some(asking.id.as_str()));
    assert_eq!(echo.incident.as_deref(), Some(asking.id.as_str()));
    store
        .command(&asking.id, &claim("agent"), T0_MS + 33)
        .expect("claim");
    store
        .command(
            &asking.id,
            &Command::Escalate {
                actor: "agent".into(),
                reason: "is this rise abuse?".into(),
            },
            T0_MS + 34,
        )
        .expect("escalate");
    assert_eq!(state_of(&store, &harm.id), (TicketState::Open, None));
    assert_eq!(state_of(&store, &echo.id).0, TicketState::Escalated);

    // Past the window, a shared cause is a new incident.
    let late = store
        .intake(
            &caused("slo:late", &["value:api/org=b2", "instance:svc-b"]),
            None,
            T0_MS + floodgate_harness::tickets::incidents::INCIDENT_WINDOW_MS + 20,
        )
        .expect("late")
        .ticket;
    assert_eq!(late.incident, None);

    // Explicit links: only to an active owner, never to a member, only of
    // an open ticket; unlinking needs a link.
    let link = |incident: Option<&str>| Command::Link {
        actor: "alice".into(),
        incident: incident.map(str::to_owned),
        reason: "same outage".into(),
    };
    let now = T0_MS + floodgate_harness::tickets::incidents::INCIDENT_WINDOW_MS + 30;
    let lone = store
        .intake(&draft("lone"), None, now)
        .expect("lone")
        .ticket;
    assert!(matches!(
        store.command(&lone.id, &link(Some(&owner.id)), now),
        Err(StoreError::Invalid {
            field: "incident",
            ..
        })
    ));
    assert!(store.command(&lone.id, &link(Some(&lone.id)), now).is_err());
    store
        .command(&lone.id, &link(Some(&late.id)), now)
        .expect("link");
    assert_eq!(state_of(&store, &lone.id).1, Some(late.id.clone()));
    store.command(&lone.id, &link(None), now).expect("unlink");
    assert_eq!(state_of(&store, &lone.id).1, None);
    assert!(store.command(&lone.id, &link(None), now).is_err());
    drop(store);
    // Every move is in the ledger: the rebuilt tickets match.
    ledger::verify(&dir).unwrap_or_else(|error| panic!("{error:?}"));
}

#[test]
fn reflection_escalates_the_open_tickets_the_harness_filed_on_a_suspended_fingerprint() {
    use floodgate_harness::learn::reflection::Thresholds;
    use floodgate_harness::run::reflector::{self, Stored, STATE_SETTING};
    let dir = scratch_dir("suspended-escalated");
    let store = open(&dir);
    let filed = |fingerprint: &str, source: Source, causes: &[&str], at: u64| {
        let mut draft = caused(fingerprint, causes);
        draft.source = source;
        store.intake(&draft, None, at).expect("intake").ticket
    };
    // A help ticket a human has not answered; three fingerprints wait on it.
    let help = filed("reflection:contested:slo:x", Source::Reflection, &[], T0_MS);
    let mut stored = Stored::default();
    for fingerprint in ["slo:x", "human:y", "anomaly:z", "human:v", "human:u"] {
        stored
            .suspended
            .entry(fingerprint.into())
            .or_default()
            .insert(help.id.clone());
    }
    store
        .put_setting(
            STATE_SETTING,
            &serde_json::to_string(&stored).expect("json"),
        )
        .expect("stored");
    let slo = filed("slo:x", Source::Slo, &["value:api/org=a"], T0_MS + 1);
    let human = filed("human:y", Source::Human, &[], T0_MS + 2);
    // A member of the SLO ticket's incident follows its owner.
    let member = filed(
        "anomaly:z",
        Source::Anomaly,
        &["value:api/org=a"],
        T0_MS + 3,
    );
    assert_eq!(member.incident.as_deref(), Some(slo.id.as_str()));
    let free = filed("slo:w", Source::Slo, &[], T0_MS + 4);
    // A human's ticket, worked and resolved, then reopened by its
    // violation recurring: the harness's episode now.
    let reported = filed("human:v", Source::Human, &[], T0_MS + 5);
    let agent = "agent-1".to_owned();
    for command in [
        Command::Claim {
            agent: agent.clone(),
            ttl_ms: 60_000,
        },
        Command::Start {
            agent: agent.clone(),
        },
        Command::Submit {
            agent: agent.clone(),
        },
        Command::Resolve {
            actor: agent.clone(),
            reason: "fixed".into(),
        },
    ] {
        store
            .command(&reported.id, &command, T0_MS + 6)
            .expect("moves");
    }
    let reopened = filed("human:v", Source::Human, &[], T0_MS + 7);
    assert_eq!(reopened.id, reported.id);
    assert_eq!(reopened.state, TicketState::Open);
    // A human's report that went to a human, then filed again through the
    // API (fresh): a new episode of it, the harness's to hold as well.
    let first = filed("human:u", Source::Human, &[], T0_MS + 8);
    store
        .command(
            &first.id,
            &Command::Escalate {
                actor: "agent-1".into(),
                reason: "cannot tell".into(),
            },
            T0_MS + 8,
        )
        .expect("escalated");
    let mut again = caused("human:u", &[]);
    again.source = Source::Human;
    let episode = store
        .intake_as(&again, None, T0_MS + 9, true)
        .expect("intake")
        .ticket;
    assert_ne!(episode.id, first.id);
    assert_eq!(episode.context["previous_ticket"], first.id.as_str());

    let report =
        reflector::run(&store, &Thresholds::default(), T0_MS + 10).expect("reflection runs");
    let mut expected = vec![slo.id.clone(), reported.id.clone(), episode.id.clone()];
    expected.sort();
    let mut escalated = report.escalated.clone();
    escalated.sort();
    assert_eq!(escalated, expected, "{report:?}");
    let history = store.history(&slo.id).expect("history");
    let escalation = history.last().expect("an entry");
    assert!(
        escalation.data.to_string().contains(&help.id),
        "names the help ticket it waits on: {escalation:?}"
    );
    assert_eq!(state_of(&store, &slo.id).0, TicketState::Escalated);
    // The member followed its owner; the human's ticket, the help ticket
    // and a ticket of another fingerprint are left as they were.
    assert_eq!(state_of(&store, &member.id).0, TicketState::Escalated);
    assert_eq!(state_of(&store, &human.id).0, TicketState::Open);
    assert_eq!(state_of(&store, &help.id).0, TicketState::Open);
    assert_eq!(state_of(&store, &free.id).0, TicketState::Open);
    // A second run finds nothing more to escalate.
    let again = reflector::run(&store, &Thresholds::default(), T0_MS + 20).expect("runs");
    assert!(again.escalated.is_empty(), "{again:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
