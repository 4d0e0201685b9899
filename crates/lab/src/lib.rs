//! Floodgate's lab: a simulated world (a real service and the real harness
//! in process, on manual clocks), a seeded workload, a fault API, agent
//! drivers, scenarios as data, an independent verifier and the suite's
//! figures. Only simulation and tests use it: `floodgate serve` never
//! wires it, and its faults are not in the service's action catalog.

pub mod backend;
pub mod fault;
pub mod generate;
pub mod oracle;
pub mod report;
/// The seeded generator every world and workload draws from.
pub use floodgate_contract::rng;
pub mod run;
pub mod scenario;
pub mod workload;
pub mod world;

pub use fault::{Fault, FaultKind};
pub use oracle::{judge, Verdict};
pub use run::{run_scenario, AgentKind, Options, RunResult};
pub use scenario::{load_dir, parse, Scenario, ScenarioError};
