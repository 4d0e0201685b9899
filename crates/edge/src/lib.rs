//! Floodgate's network edge, shared by the service and the harness (a
//! crate of its own because the harness may not depend on the service;
//! docs/adr/0019-connection-edge.md):
//!
//! - [`server`]: the one accept loop: a connection cap that sheds the
//!   longest-idle connection first, handshake, header, body and idle
//!   timeouts, an accept that backs off on errors (counted), graceful
//!   shutdown, and hyper on top of it ([`server::serve_connections`]);
//! - [`nofile`]: the open-file limit raised to the hard limit at start;
//! - [`guard`]: the open-mode guard (Host, Origin, Content-Type) for APIs
//!   served without tokens (ADR 0004);
//! - [`refusal`]: the JSON error of every refusal, and the 405 answer;
//! - [`ready`]: the ready file, naming each listener's bound address
//!   (`--ready-file`: port 0 binds a free port, and the file says which);
//! - [`limits`]: every bound, named.

pub mod guard;
pub mod limits;
pub mod nofile;
pub mod ready;
pub mod refusal;
pub mod server;
