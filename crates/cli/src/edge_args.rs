//! The listener flags `floodgate serve` and `floodgate harness` share: the
//! connection cap, the timeouts of each phase of a connection, the names
//! the open-mode guard accepts as Host, and the ready file naming the
//! bound addresses (docs/adr/0019-connection-edge.md,
//! docs/adr/0004-access-control.md).

use anyhow::{Context as _, Result};
use clap::Args;
use floodgate_edge::guard::OpenMode;
use floodgate_edge::limits;
use floodgate_edge::server::ListenerOptions;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct EdgeArgs {
    /// Open connections per listener (default 4096); at the cap the
    /// longest-idle connection is closed to make room.
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// From accept to the first request's headers (default 10s): the
    /// HTTP/2 preface and SETTINGS included.
    #[arg(long, value_parser = crate::parse_duration, value_name = "DURATION")]
    handshake_timeout: Option<Duration>,
    /// An HTTP/1 request's headers (default 10s).
    #[arg(long, value_parser = crate::parse_duration, value_name = "DURATION")]
    header_read_timeout: Option<Duration>,
    /// A request's body, from its headers (default 30s); past it the
    /// answer is 408 and the connection is closed.
    #[arg(long, value_parser = crate::parse_duration, value_name = "DURATION")]
    body_read_timeout: Option<Duration>,
    /// A connection with no request in flight is closed after this long
    /// (default 60s).
    #[arg(long, value_parser = crate::parse_duration, value_name = "DURATION")]
    idle_timeout: Option<Duration>,
    /// Without tokens, a Host (and Origin) accepted besides the bound
    /// address and `localhost`: `NAME` (any port) or `NAME:PORT`; repeat
    /// for several.
    #[arg(long = "allowed-host", value_name = "NAME[:PORT]")]
    allowed_hosts: Vec<String>,
    /// Once every listener is bound, write each one's name and bound
    /// address to this file as JSON (`{"pid": …, "listeners": [{"name":
    /// "http", "address": "127.0.0.1:40512"}, …]}`), through a temporary
    /// file renamed over it. With port 0 in an address (`127.0.0.1:0`)
    /// the system picks a free port: this file says which.
    #[arg(long, value_name = "PATH")]
    ready_file: Option<PathBuf>,
}

impl EdgeArgs {
    /// The listener bounds, the defaults of `floodgate_edge::limits` where
    /// no flag is given.
    pub fn listener_options(&self) -> Result<ListenerOptions> {
        let options = ListenerOptions {
            max_connections: self.max_connections.unwrap_or(limits::MAX_CONNECTIONS),
            handshake_timeout: self.handshake_timeout.unwrap_or(limits::HANDSHAKE_TIMEOUT),
            header_read_timeout: self
                .header_read_timeout
                .unwrap_or(limits::HEADER_READ_TIMEOUT),
            body_read_timeout: self.body_read_timeout.unwrap_or(limits::BODY_READ_TIMEOUT),
            idle_timeout: self.idle_timeout.unwrap_or(limits::IDLE_TIMEOUT),
        };
        options.validate().map_err(anyhow::Error::msg)?;
        Ok(options)
    }

    /// Writes `--ready-file`, if given: `listeners` as (name, bound
    /// address). Call it once every listener is bound.
    pub fn write_ready(&self, listeners: &[(&str, SocketAddr)]) -> Result<()> {
        let Some(path) = &self.ready_file else {
            return Ok(());
        };
        floodgate_edge::ready::write(path, listeners)
            .with_context(|| format!("--ready-file {}: cannot write", path.display()))
    }

    /// The open-mode guard's policy.
    pub fn open_mode(&self) -> Result<OpenMode> {
        OpenMode::new(&self.allowed_hosts).map_err(anyhow::Error::msg)
    }
}
