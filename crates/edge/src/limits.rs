//! Every bound of a listener, named once with the reason for it. The
//! defaults of [`crate::server::ListenerOptions`]; `floodgate serve` and
//! `floodgate harness` can lower the timeouts and the cap by flags.

use std::time::Duration;

/// Open connections per listener. At the cap a new connection sheds the
/// connection that has been idle longest (no request in flight); only when
/// every connection is busy is the new one closed at accept.
pub const MAX_CONNECTIONS: usize = 4096;
/// From accept to the first request's headers: the TCP connection, the
/// HTTP/2 preface and SETTINGS, and the first request's headers. A client
/// that opens a connection and sends nothing is cut here.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// An HTTP/1 request's headers, from their first byte (hyper's
/// `header_read_timeout`). HTTP/2 headers arrive in one block, bounded by
/// [`MAX_HEADER_LIST_BYTES`]; a connection waiting for them is idle.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A request's whole body, from the moment its headers were read. The
/// largest body the APIs take (4 MiB, a whole config) needs 140 KB/s;
/// a body that has not finished by then is answered 408 and its
/// connection closed. (`/v1/check` and gRPC have their own 1 s limit.)
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// A keep-alive connection with no request in flight is closed after this
/// long (a long poll or an event stream is a request in flight).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The first pause after an accept error (out of file descriptors,
/// ENOBUFS, …); it doubles on each further error up to
/// [`ACCEPT_BACKOFF_MAX`] and resets on the next accepted connection.
pub const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
/// The longest pause after repeated accept errors.
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How long shutdown waits for in-flight requests before closing anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Concurrent HTTP/2 streams per connection (Envoy multiplexes its checks).
pub const MAX_STREAMS_PER_CONNECTION: u32 = 1024;
/// Bytes of request headers (HPACK-decoded) per HTTP/2 request, as
/// advertised in SETTINGS_MAX_HEADER_LIST_SIZE: a gRPC call needs a few
/// hundred; this is hyper's default, kept for both listeners.
pub const MAX_HEADER_LIST_BYTES: u32 = 16 * 1024;
/// Header fields in one request. An HTTP/1 request over this many, or
/// over [`MAX_HEADER_LIST_BYTES`] (counted as HTTP/2 counts: name, value
/// and 32 bytes per field), is answered 431 with a JSON error naming
/// `headers` before any route sees it. Past [`HYPER_MAX_HEADERS`] fields
/// or hyper's read buffer (~400 KiB) hyper answers 431 itself, without a
/// body; HTTP/2 header blocks over [`MAX_HEADER_LIST_BYTES`] are refused
/// by h2 the same way (a bare 431 and RST_STREAM): neither lets a service
/// write that answer.
pub const MAX_REQUEST_HEADERS: usize = 100;
/// Header fields hyper parses in one HTTP/1 request (its own default is
/// 100): room past [`MAX_REQUEST_HEADERS`] so that bound's refusal is ours,
/// with a JSON body.
pub const HYPER_MAX_HEADERS: usize = 4 * MAX_REQUEST_HEADERS;
/// HTTP/2 receive window per stream. Bigger than the 64 KiB default so a
/// whole request message fits without waiting for a WINDOW_UPDATE; it bounds
/// what one stream can make the service buffer.
pub const STREAM_WINDOW_BYTES: u32 = 1024 * 1024;
/// HTTP/2 receive window per connection: lets a multiplexing client keep
/// many requests in flight; bounds what one connection can make the service
/// buffer.
pub const CONNECTION_WINDOW_BYTES: u32 = 8 * 1024 * 1024;
/// Names `--allowed-host` may add (each is compared with every request's
/// Host in open mode).
pub const MAX_ALLOWED_HOSTS: usize = 64;
/// Bytes of a refused Host, Origin or Content-Type kept in a refusal's
/// message and event.
pub const MAX_REFUSED_VALUE_BYTES: usize = 256;
