//! Real `redis-server` processes on loopback for the tests (and the
//! benchmark, which includes this file by path): one server, or a small
//! Redis Cluster, each on ephemeral ports, killed on drop.
//!
//! If `redis-server` is not installed the Redis tests fail (they never
//! skip): CI installs it (`scripts/test.sh`).

#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How many ports to try before giving up on starting a server (another
/// process may take a port between our probe and the server's bind).
const START_ATTEMPTS: usize = 10;
/// Readiness polls (PING) per start, `POLL_INTERVAL` apart: 10 s in all.
const READY_POLLS: usize = 1_000;
const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// Bound on one raw command's I/O.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// Whether `redis-server` can be run; panics with the fix if not.
pub fn require_redis_server() {
    match Command::new("redis-server").arg("--version").output() {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "`redis-server --version` failed ({}): the Redis store tests need a working \
             redis-server",
            output.status
        ),
        Err(error) => panic!(
            "redis-server is not installed ({error}): the Redis store tests need it — \
             install Debian's package (`apt-get install redis-server`; scripts/test.sh \
             does this)"
        ),
    }
}

/// Whether `redis-server` is on PATH (the benchmark skips Redis without it).
pub fn have_redis_server() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// A free loopback port (bound then released: a server may still lose it
/// to another process, which the start loop retries).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
    listener.local_addr().expect("local address").port()
}

/// One `redis-server` on 127.0.0.1, no persistence, killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    /// For cluster nodes: the cluster bus port.
    bus_port: Option<u16>,
    dir: PathBuf,
}

impl RedisServer {
    /// A standalone server on a free port.
    pub fn start() -> RedisServer {
        RedisServer::start_with(false)
    }

    /// A cluster-enabled node (not yet part of a cluster).
    fn start_cluster_node() -> RedisServer {
        RedisServer::start_with(true)
    }

    fn start_with(cluster: bool) -> RedisServer {
        require_redis_server();
        let dir = std::env::temp_dir().join(format!(
            "floodgate-redis-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the server's directory");
        let mut server = RedisServer {
            child: None,
            port: 0,
            bus_port: None,
            dir,
        };
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            server.port = free_port();
            server.bus_port = cluster.then(free_port);
            match server.spawn() {
                Ok(()) => return server,
                Err(error) => failures.push(error),
            }
        }
        panic!("could not start redis-server after {START_ATTEMPTS} attempts: {failures:#?}");
    }

    /// Starts the process on `self.port` and waits until it answers PING.
    fn spawn(&mut self) -> Result<(), String> {
        let log = self.dir.join("redis.log");
        let mut command = Command::new("redis-server");
        command
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .args(["--daemonize", "no"]);
        if let Some(bus_port) = self.bus_port {
            command
                .args(["--cluster-enabled", "yes", "--cluster-config-file"])
                .arg(self.dir.join("nodes.conf"))
                .arg("--cluster-port")
                .arg(bus_port.to_string())
                .args(["--cluster-node-timeout", "5000"]);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| format!("spawn redis-server: {error}"))?;
        for _ in 0..READY_POLLS {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(format!(
                    "redis-server exited ({status}) on port {}: {log}",
                    self.port
                ));
            }
            if matches!(command_on(self.port, &["PING"]), Ok(Reply::Status(ref s)) if s == "PONG") {
                self.child = Some(child);
                return Ok(());
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(format!(
            "redis-server on port {} never answered PING",
            self.port
        ))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Runs one command on this server.
    pub fn command(&self, args: &[&str]) -> Reply {
        command_on(self.port, args)
            .unwrap_or_else(|error| panic!("redis command {args:?} on port {}: {error}", self.port))
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts an empty server again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            match self.spawn() {
                Ok(()) => return,
                Err(error) => failures.push(error),
            }
        }
        panic!(
            "could not restart redis-server on port {}: {failures:#?}",
            self.port
        );
    }

    /// Stops the process (SIGSTOP): connections stay open, nothing answers.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Resumes a paused process (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("server running").id();
        let status = Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {pid}");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_ref() {
            // A paused server would not die from SIGKILL any later, but
            // resume it anyway so nothing lingers stopped.
            let _ = Command::new("kill")
                .arg("-CONT")
                .arg(child.id().to_string())
                .status();
        }
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster of cluster-enabled servers on loopback, every slot
/// assigned (split evenly, no replicas), killed on drop.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `n` nodes, assigns the 16,384 slots evenly, joins them
    /// (`CLUSTER MEET`) and waits until every node reports
    /// `cluster_state:ok` with every slot assigned and every node known.
    pub fn start(n: usize) -> RedisCluster {
        assert!(n >= 1);
        let nodes: Vec<RedisServer> = (0..n).map(|_| RedisServer::start_cluster_node()).collect();
        for (index, node) in nodes.iter().enumerate() {
            let epoch = (index + 1).to_string();
            expect_ok(node.command(&["CLUSTER", "SET-CONFIG-EPOCH", &epoch]));
            let first = 16_384 * index / n;
            let last = 16_384 * (index + 1) / n - 1;
            expect_ok(node.command(&[
                "CLUSTER",
                "ADDSLOTSRANGE",
                &first.to_string(),
                &last.to_string(),
            ]));
        }
        for node in &nodes[1..] {
            let port = node.port.to_string();
            let bus = node.bus_port.expect("cluster node").to_string();
            expect_ok(nodes[0].command(&["CLUSTER", "MEET", "127.0.0.1", &port, &bus]));
        }
        let cluster = RedisCluster { nodes };
        let known = format!("cluster_known_nodes:{n}");
        for _ in 0..READY_POLLS {
            let ready = cluster.nodes.iter().all(|node| {
                let Reply::Bulk(Some(info)) = node.command(&["CLUSTER", "INFO"]) else {
                    return false;
                };
                let info = String::from_utf8_lossy(&info);
                info.contains("cluster_state:ok")
                    && info.contains("cluster_slots_assigned:16384")
                    && info.contains(&known)
            });
            if ready {
                return cluster;
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        panic!("the {n}-node Redis Cluster never reached cluster_state:ok");
    }

    /// `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,…`
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        format!("redis+cluster://{}", nodes.join(","))
    }

    /// Runs one keyed command on the node that owns `key`'s slot.
    pub fn keyed_command(&self, args: &[&str]) -> Reply {
        for node in &self.nodes {
            match node.command(args) {
                Reply::Error(error) if error.starts_with("MOVED") => continue,
                reply => return reply,
            }
        }
        panic!("no node owns the key of {args:?}");
    }

    /// The index of the node that owns `key`.
    pub fn owner_of(&self, key: &str) -> usize {
        self.nodes
            .iter()
            .position(|node| !matches!(node.command(&["TYPE", key]), Reply::Error(ref e) if e.starts_with("MOVED")))
            .expect("some node owns every slot")
    }
}

fn expect_ok(reply: Reply) {
    assert!(
        matches!(reply, Reply::Status(ref s) if s == "OK"),
        "{reply:?}"
    );
}

/// A RESP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

/// Runs one command on a fresh connection to `127.0.0.1:port`.
pub fn command_on(port: u16, args: &[&str]) -> io::Result<Reply> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut request = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        request.extend_from_slice(arg.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    stream.write_all(&request)?;
    read_reply(&mut BufReader::new(stream))
}

fn read_reply(reader: &mut impl BufRead) -> io::Result<Reply> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    let line = line.trim_end_matches("\r\n");
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad reply line {line:?}"),
        )
    };
    let (kind, rest) = line.split_at_checked(1).ok_or_else(bad)?;
    Ok(match kind {
        "+" => Reply::Status(rest.to_string()),
        "-" => Reply::Error(rest.to_string()),
        ":" => Reply::Int(rest.parse().map_err(|_| bad())?),
        "$" => {
            let len: i64 = rest.parse().map_err(|_| bad())?;
            if len < 0 {
                Reply::Bulk(None)
            } else {
                let mut data = vec![0; len as usize + 2];
                reader.read_exact(&mut data)?;
                data.truncate(len as usize);
                Reply::Bulk(Some(data))
            }
        }
        "*" => {
            let len: i64 = rest.parse().map_err(|_| bad())?;
            let mut items = Vec::new();
            for _ in 0..len.max(0) {
                items.push(read_reply(reader)?);
            }
            Reply::Array(items)
        }
        _ => return Err(bad()),
    })
}
