//! The service's source of time: the contract's one [`Clock`], read in
//! nanoseconds (`now_ns`), injected so tests and simulations can drive it.

pub use floodgate_contract::clock::{Clock, ManualClock, SystemClock};
