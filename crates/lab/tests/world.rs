//! The simulated world's fleet: several instances behind a load balancer,
//! checks spread over their tick, and a run's start time of day.

use floodgate_contract::client::ServiceApi;
use floodgate_lab::backend::Condition;
use floodgate_lab::workload::{Contract, Generator, Send, TenantSpec, Workload};
use floodgate_lab::world::{instance_name, BackendSpec, World, WorldSpec, OBJECTIVES, T0_MS};
use floodgate_store::FailurePolicy;

fn workload(tenants: &[&str]) -> Workload {
    Workload {
        domain: "edge".into(),
        key: "org".into(),
        tenants: tenants
            .iter()
            .map(|name| {
                TenantSpec {
                    name: (*name).into(),
                    contract: Contract::WellBehaved,
                    per_minute: 60,
                    burst_every: None,
                    burst_for: None,
                    burst_factor: None,
                }
                .compile()
                .expect("tenant")
            })
            .collect(),
        diurnal_amplitude: 0.0,
    }
}

const LIMITS: &str = "
domain: edge
descriptors:
  - key: org
    rate_limits:
      - {name: org_guard, unit: second, requests_per_unit: 5}
";

fn world(name: &str, backend: BackendSpec, instances: u32, tenants: &[&str]) -> World {
    let data = std::env::temp_dir().join(format!("floodgate-world-{name}-{}", std::process::id()));
    World::build(
        &WorldSpec {
            limits: LIMITS.into(),
            objectives: OBJECTIVES.into(),
            policy: String::new(),
            store_capacity: 1000,
            backend,
            instances,
            t0_ms: T0_MS + 14 * 3_600_000,
            seed: 9,
            data,
            network: None,
        },
        Generator::new(workload(tenants), 9),
    )
    .expect("world")
}

/// Checks each instance answered, from its own `/v1/state`.
async fn answered(world: &World) -> Vec<u64> {
    let mut out = Vec::new();
    for service in &world.services {
        let state = service.state().await.expect("state");
        out.push(state.limits.iter().map(|limit| limit.hits).sum());
    }
    out
}

#[tokio::test]
async fn a_memory_fleet_keeps_each_tenant_on_one_instance_and_spreads_its_checks_over_the_tick() {
    let mut world = world(
        "by-key",
        BackendSpec::Memory,
        3,
        &["alpha", "beta", "gamma", "delta", "epsilon", "zeta"],
    );
    assert_eq!(world.services.len(), 3);
    assert_eq!(instance_name(2), "svc-c");
    assert_eq!(
        world.now(),
        T0_MS + 14 * 3_600_000,
        "the run starts at 14:00"
    );
    // 40 checks of one tenant in a tick, under a limit of 5 a second: spread
    // over ten seconds most are admitted; arriving at once, 5 would be.
    let plan = vec![Send {
        tenant: "alpha".into(),
        count: 40,
        good: true,
    }];
    world.advance(10_000);
    let traffic = world.send(&plan, 10_000).await.expect("send");
    let (sent, admitted) = traffic.tenants["alpha"];
    assert_eq!(sent, 40);
    assert!(
        admitted > 25,
        "spread over the tick, a 5/s limit admits most of 40 checks: {admitted}"
    );
    // Every tenant's checks land on one instance, the same each tick.
    let mut homes = Vec::new();
    for tenant in ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"] {
        let before = answered(&world).await;
        world.advance(10_000);
        world
            .send(
                &[Send {
                    tenant: tenant.into(),
                    count: 6,
                    good: true,
                }],
                10_000,
            )
            .await
            .expect("send");
        let after = answered(&world).await;
        let moved: Vec<usize> = (0..3).filter(|i| after[*i] != before[*i]).collect();
        assert_eq!(moved.len(), 1, "{tenant} went to {moved:?}");
        homes.push(moved[0]);
    }
    homes.sort_unstable();
    homes.dedup();
    assert!(homes.len() > 1, "six tenants all hashed to one instance");
}

#[tokio::test]
async fn a_fleet_sharing_a_remote_backend_takes_turns_and_shares_its_counters_and_faults() {
    let mut world = world(
        "round-robin",
        BackendSpec::Remote {
            failure_policy: FailurePolicy::FailClosed,
            key_ops_per_tick: 0,
        },
        3,
        &["alpha"],
    );
    world.advance(10_000);
    let before = answered(&world).await;
    let traffic = world
        .send(
            &[Send {
                tenant: "alpha".into(),
                count: 90,
                good: true,
            }],
            10_000,
        )
        .await
        .expect("send");
    let after = answered(&world).await;
    for index in 0..3 {
        assert!(
            after[index] > before[index],
            "instance {index} answered nothing"
        );
    }
    // One counter for the fleet: 5 a second over ten seconds admits at
    // most 50 of 90 (three instances counting apart would admit up to 90).
    let admitted = traffic.tenants["alpha"].1;
    assert!((30..=50).contains(&admitted), "{admitted}");
    // A backend fault reaches every instance: fail_closed rejects everywhere.
    world
        .remote
        .as_ref()
        .expect("remote")
        .switch
        .set(Condition::Down);
    world.advance(10_000);
    let traffic = world
        .send(
            &[Send {
                tenant: "alpha".into(),
                count: 9,
                good: true,
            }],
            10_000,
        )
        .await
        .expect("send");
    assert_eq!(traffic.tenants["alpha"], (9, 0));
    assert_eq!(traffic.good_rejected, 9);
}

#[tokio::test]
async fn the_harness_evidence_merges_the_fleet_and_names_the_rejected_value() {
    // On a memory fleet each tenant lives on one instance: the evidence
    // must find the one that overruns its limit wherever it lives.
    let mut world = world(
        "evidence",
        BackendSpec::Memory,
        3,
        &["alpha", "beta", "gamma", "delta"],
    );
    for _ in 0..3 {
        world.advance(10_000);
        world
            .send(
                &[
                    Send {
                        tenant: "gamma".into(),
                        count: 200,
                        good: true,
                    },
                    Send {
                        tenant: "alpha".into(),
                        count: 16,
                        good: true,
                    },
                    Send {
                        tenant: "beta".into(),
                        count: 16,
                        good: true,
                    },
                ],
                10_000,
            )
            .await
            .expect("send");
        world.observe().await.expect("the harness observes");
    }
    let evidence = world.get("/v1/evidence").await.expect("evidence");
    assert_eq!(evidence["services"].as_array().map(Vec::len), Some(3));
    let rejecting = &evidence["rejecting"];
    assert_eq!(rejecting["name"], "org_guard", "{evidence}");
    assert_eq!(rejecting["quota_per_second"], 5.0);
    let top = &rejecting["values"][0];
    assert_eq!(top["value"], "org=gamma", "{rejecting}");
    assert_eq!(top["entries"][0]["value"], "gamma");
    // 600 checks in 30 s of a 5/s limit: 20/s asked. The top values
    // average over their whole window (60 s and the current minute so
    // far), so the rate reads lower, but still past the limit.
    let ratio = top["demand_ratio"].as_f64().expect("ratio");
    assert!(ratio > 1.0, "gamma asks past its limit: {top}");
    assert!(top["over_per_second"].as_f64().expect("over") > 0.0);
    // Since when: a tick of the harness saw the rejections begin.
    let since = top["rejected_since_ms"].as_u64().expect("since when");
    assert!(since <= evidence["at_ms"].as_u64().expect("at"), "{top}");
    // Nobody else is rejected.
    for value in rejecting["values"]
        .as_array()
        .expect("values")
        .iter()
        .skip(1)
    {
        assert_eq!(value["over_per_second"], 0.0, "{value}");
        assert!(value.get("rejected_since_ms").is_none(), "{value}");
    }
}

#[test]
fn a_planned_load_is_declared_as_the_admitted_rate_anomalys_capacity() {
    use floodgate_harness::observe::objectives;
    let planned = objectives::parse("lab.yaml", &floodgate_lab::world::objectives(Some(480)))
        .expect("objectives");
    let anomaly = &planned.anomalies[0];
    assert_eq!(anomaly.name, "admitted_rate");
    assert_eq!(anomaly.capacity, Some(8.0), "480 a minute is 8 a second");
    let unplanned =
        objectives::parse("lab.yaml", &floodgate_lab::world::objectives(None)).expect("objectives");
    assert_eq!(unplanned.anomalies[0].capacity, None);
    assert_eq!(
        unplanned,
        objectives::parse("lab.yaml", OBJECTIVES).expect("objectives")
    );
}
