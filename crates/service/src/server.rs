//! The accept loop of both listeners: `floodgate_edge::server`, shared with
//! the harness (connection cap shedding idle connections first, handshake,
//! header, body and idle timeouts, accept back-off, graceful shutdown;
//! docs/adr/0019-connection-edge.md). Re-exported here so the service's
//! code and docs keep one path to it.

pub use floodgate_edge::server::*;
