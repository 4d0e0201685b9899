//! The ready file (`--ready-file PATH`): once every listener of a process
//! is bound, the address each one got, as JSON. A listener given port 0
//! is bound by the system on a free port, and this file is how whoever
//! started the process (a test, a supervisor) learns it — without choosing
//! a port first and hoping nobody takes it before the bind.
//!
//! ```json
//! {"pid": 4242, "listeners": [{"name": "grpc", "address": "127.0.0.1:40511"},
//!                             {"name": "http", "address": "127.0.0.1:40512"}]}
//! ```
//!
//! Written to a temporary file beside `PATH` and renamed over it, so a
//! reader polling for `PATH` sees either nothing or the whole document.

use serde_json::json;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Writes the ready file at `path`: `listeners` as (name, bound address),
/// in the given order. Call it after every listener is bound.
pub fn write(path: &Path, listeners: &[(&str, SocketAddr)]) -> std::io::Result<()> {
    let document = json!({
        "pid": std::process::id(),
        "listeners": listeners
            .iter()
            .map(|(name, address)| json!({"name": name, "address": address.to_string()}))
            .collect::<Vec<_>>(),
    });
    let temporary = temporary_beside(path);
    let written = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(document.to_string().as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// `DIR/.NAME.PID.tmp` for `DIR/NAME`: in the same directory (a rename
/// within one file system is atomic), named by this process.
fn temporary_beside(path: &Path) -> PathBuf {
    let name = path.file_name().map_or_else(
        || "ready".into(),
        |name| name.to_string_lossy().into_owned(),
    );
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_names_every_listener_and_leaves_no_temporary_behind() {
        let dir = std::env::temp_dir().join(format!("floodgate-ready-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("ready.json");
        let grpc: SocketAddr = "127.0.0.1:40511".parse().expect("addr");
        let http: SocketAddr = "[::1]:40512".parse().expect("addr");
        write(&path, &[("grpc", grpc), ("http", http)]).expect("written");
        let document: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        assert_eq!(document["pid"], std::process::id());
        assert_eq!(
            document["listeners"],
            json!([
                {"name": "grpc", "address": "127.0.0.1:40511"},
                {"name": "http", "address": "[::1]:40512"},
            ])
        );
        let left: Vec<_> = std::fs::read_dir(&dir)
            .expect("list")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("ready.json")]);
        // A directory that does not exist is an error, and leaves nothing.
        assert!(write(&dir.join("missing/ready.json"), &[("http", http)]).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
