//! The event log: every effect on the service as a typed event with a
//! sequence number, kept in a bounded ring and optionally appended to a
//! bounded JSONL file.
//!
//! Sequence numbers start at 1 and increase by exactly one per event for
//! the life of the process; an event is numbered, stored and written to the
//! file under one lock, so readers see them in order and without gaps
//! (except for events the ring has dropped, which `oldest_seq` reveals).

use crate::clock::Clock;
use floodgate_contract::events::{Event, EventBody, EventPage};
use floodgate_contract::state::EventsState;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Events kept in memory. At a few hundred bytes each (event payloads are
/// bounded, see [`MAX_EVENT_PARAMS_BYTES`]) that is a few MiB, and enough
/// for a reader polling every few seconds to miss nothing even during an
/// access-denied flood of a few thousand requests a second.
pub const EVENT_RING_CAPACITY: usize = 10_000;
/// Events one `GET /v1/events` page returns when `limit` is not given.
pub const EVENT_PAGE_DEFAULT: usize = 100;
/// The most events one page returns, whatever `limit` asks: bounds the
/// response (about 1 MiB at most).
pub const EVENT_PAGE_MAX: usize = 1_000;
/// The longest `wait_ms` a long poll may ask for; longer asks are cut to
/// it. Shorter than common proxy idle timeouts (60 s).
pub const EVENT_WAIT_MAX: Duration = Duration::from_secs(30);
/// Size at which the events file is rotated: it is renamed to `PATH.1`
/// (replacing an older one) and a new `PATH` is started, so the files
/// never hold more than twice this.
pub const EVENTS_FILE_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Bytes of an action's parameters recorded in an event; larger parameters
/// (a whole config) are recorded by size and hash instead.
pub const MAX_EVENT_PARAMS_BYTES: usize = 4 * 1024;
/// Changes recorded in one event; the rest are summarised by count (the
/// action's HTTP answer lists them all).
pub const MAX_EVENT_CHANGES: usize = 100;
/// Bytes of an error message recorded in an event.
pub const MAX_EVENT_ERROR_BYTES: usize = 1024;

/// The optional JSONL copy of the event log, one event per line, rotated
/// at [`EVENTS_FILE_MAX_BYTES`].
#[derive(Debug)]
pub struct EventsFile {
    path: PathBuf,
    file: File,
    written: u64,
    /// [`EVENTS_FILE_MAX_BYTES`] (smaller in tests).
    max_bytes: u64,
    /// Whether a write failed (reported once, then retried silently).
    failing: bool,
}

impl EventsFile {
    /// Opens (creating or appending to) `path`.
    pub fn open(path: &Path) -> io::Result<EventsFile> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let written = file.metadata()?.len();
        Ok(EventsFile {
            path: path.to_path_buf(),
            file,
            written,
            max_bytes: EVENTS_FILE_MAX_BYTES,
            failing: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn rotated_path(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".1");
        PathBuf::from(name)
    }

    fn append(&mut self, line: &[u8]) {
        let result = (|| -> io::Result<()> {
            if self.written > 0 && self.written + line.len() as u64 > self.max_bytes {
                std::fs::rename(&self.path, self.rotated_path())?;
                self.file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?;
                self.written = 0;
            }
            self.file.write_all(line)?;
            self.written += line.len() as u64;
            Ok(())
        })();
        match result {
            Ok(()) => self.failing = false,
            Err(error) if !self.failing => {
                self.failing = true;
                tracing::warn!(path = %self.path.display(), %error, "cannot append to the events file");
            }
            Err(_) => {}
        }
    }
}

struct Inner {
    ring: VecDeque<Arc<Event>>,
    next_seq: u64,
    file: Option<EventsFile>,
}

/// Which event types a reader wants (empty: all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypeFilter(Vec<&'static str>);

impl TypeFilter {
    /// Parses `a,b,c`; every name must be in the events catalog.
    pub fn parse(text: &str) -> Result<TypeFilter, String> {
        let mut types = Vec::new();
        for name in text
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
        {
            let Some(def) = floodgate_contract::events::CATALOG
                .iter()
                .find(|def| def.name == name)
            else {
                let mut shown = name.to_string();
                super::keys::cut(&mut shown, 64);
                return Err(format!(
                    "unknown event type \"{shown}\" (see docs/catalog/events.md)"
                ));
            };
            if !types.contains(&def.name) {
                types.push(def.name);
            }
        }
        Ok(TypeFilter(types))
    }

    fn accepts(&self, event: &Event) -> bool {
        self.0.is_empty() || self.0.contains(&event.body.type_name())
    }
}

/// The event log of one service.
pub struct EventLog {
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
    newest: watch::Sender<u64>,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog")
            .field("figures", &self.figures())
            .finish_non_exhaustive()
    }
}

impl EventLog {
    pub fn new(clock: Arc<dyn Clock>, file: Option<EventsFile>) -> EventLog {
        EventLog {
            clock,
            inner: Mutex::new(Inner {
                ring: VecDeque::with_capacity(1024),
                next_seq: 1,
                file,
            }),
            newest: watch::channel(0).0,
        }
    }

    /// Records one event; returns its sequence number.
    pub fn emit(&self, actor: &str, reason: &str, body: EventBody) -> u64 {
        let time_ms = self.clock.now_ns() / 1_000_000;
        let mut inner = self.inner.lock();
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let event = Arc::new(Event {
            seq,
            time_ms,
            actor: actor.to_string(),
            reason: reason.to_string(),
            body,
        });
        if let Some(file) = inner.file.as_mut() {
            if let Ok(mut line) = serde_json::to_vec(&*event) {
                line.push(b'\n');
                file.append(&line);
            }
        }
        if inner.ring.len() >= EVENT_RING_CAPACITY {
            inner.ring.pop_front();
        }
        inner.ring.push_back(event);
        drop(inner);
        self.newest.send_replace(seq);
        seq
    }

    /// The events after `after` that `filter` accepts, at most `limit`.
    pub fn page(&self, after: u64, filter: &TypeFilter, limit: usize) -> EventPage {
        let inner = self.inner.lock();
        let oldest_seq = inner.ring.front().map_or(0, |event| event.seq);
        let newest_seq = inner.next_seq - 1;
        let start = match inner.ring.front() {
            Some(front) if after >= front.seq => {
                usize::try_from(after - front.seq + 1).unwrap_or(usize::MAX)
            }
            _ => 0,
        };
        let mut events = Vec::new();
        let mut next_after = after;
        for event in inner.ring.iter().skip(start) {
            if events.len() >= limit {
                break;
            }
            next_after = event.seq;
            if filter.accepts(event) {
                events.push(Event::clone(event));
            }
        }
        EventPage {
            events,
            next_after,
            oldest_seq,
            newest_seq,
        }
    }

    /// Like [`EventLog::page`], but when nothing is there yet waits up to
    /// `wait` (at most [`EVENT_WAIT_MAX`]) for a matching event, or until
    /// `stopping` says the service is shutting down.
    pub async fn wait_page(
        &self,
        after: u64,
        filter: &TypeFilter,
        limit: usize,
        wait: Duration,
        mut stopping: watch::Receiver<bool>,
    ) -> EventPage {
        let deadline = tokio::time::Instant::now() + wait.min(EVENT_WAIT_MAX);
        let mut newest = self.newest.subscribe();
        let mut cursor = after;
        loop {
            // Mark the current value seen before reading, so an event
            // emitted after the read wakes the wait below.
            newest.borrow_and_update();
            let page = self.page(cursor, filter, limit);
            if !page.events.is_empty() || wait.is_zero() || *stopping.borrow() {
                return page;
            }
            cursor = page.next_after;
            tokio::select! {
                changed = newest.changed() => if changed.is_err() { return page },
                () = tokio::time::sleep_until(deadline) => return page,
                _ = stopping.changed() => return page,
            }
        }
    }

    /// Wakes when a new event is recorded.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.newest.subscribe()
    }

    /// The ring's figures for `/v1/state`.
    pub fn figures(&self) -> EventsState {
        let inner = self.inner.lock();
        EventsState {
            oldest_seq: inner.ring.front().map_or(0, |event| event.seq),
            newest_seq: inner.next_seq - 1,
            capacity: EVENT_RING_CAPACITY as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn log() -> EventLog {
        EventLog::new(Arc::new(ManualClock::at_ns(5_000_000)), None)
    }

    fn drain(log: &EventLog, draining: bool) -> u64 {
        log.emit("t", "", EventBody::DrainChanged { draining })
    }

    #[test]
    fn sequence_numbers_start_at_one_and_pages_follow_the_cursor() {
        let log = log();
        for i in 0..10 {
            assert_eq!(drain(&log, i % 2 == 0), i + 1);
        }
        let all = TypeFilter::default();
        let page = log.page(0, &all, 4);
        assert_eq!(
            page.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert_eq!(
            (page.next_after, page.oldest_seq, page.newest_seq),
            (4, 1, 10)
        );
        assert_eq!(page.events[0].time_ms, 5);
        let page = log.page(8, &all, 4);
        assert_eq!(page.events.len(), 2);
        assert_eq!(page.next_after, 10);
        let page = log.page(10, &all, 4);
        assert!(page.events.is_empty());
        assert_eq!(page.next_after, 10);
    }

    #[test]
    fn filters_skip_other_types_but_the_cursor_moves_past_them() {
        let log = log();
        drain(&log, true);
        log.emit("t", "", EventBody::ServiceStopping {});
        drain(&log, false);
        let filter = TypeFilter::parse("service_stopping").expect("known");
        let page = log.page(0, &filter, 10);
        assert_eq!(page.events.len(), 1);
        assert_eq!(page.next_after, 3);
        assert!(TypeFilter::parse("nope").is_err());
    }

    #[test]
    fn the_ring_is_bounded() {
        let log = log();
        for _ in 0..EVENT_RING_CAPACITY + 5 {
            drain(&log, true);
        }
        let figures = log.figures();
        assert_eq!(figures.oldest_seq, 6);
        assert_eq!(figures.newest_seq, EVENT_RING_CAPACITY as u64 + 5);
        let page = log.page(0, &TypeFilter::default(), 1);
        assert_eq!(page.events[0].seq, 6);
    }

    #[test]
    fn the_file_gets_one_json_line_per_event() {
        let dir = std::env::temp_dir().join(format!("floodgate-events-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("events.jsonl");
        let _ = std::fs::remove_file(&path);
        let log = EventLog::new(
            Arc::new(ManualClock::at_ns(0)),
            Some(EventsFile::open(&path).expect("open")),
        );
        drain(&log, true);
        drain(&log, false);
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<Event> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("event"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].seq, 2);

        // Past the bound the file is rotated to PATH.1 and started anew.
        let mut file = EventsFile::open(&path).expect("reopen");
        let written = text.len() as u64;
        assert_eq!(file.written, written);
        // Room for less than one more line: the next event rotates.
        file.max_bytes = written + 10;
        let log = EventLog::new(Arc::new(ManualClock::at_ns(0)), Some(file));
        drain(&log, true);
        drain(&log, false);
        let rotated = std::fs::read_to_string(dir.join("events.jsonl.1")).expect("rotated");
        assert_eq!(rotated, text);
        let current = std::fs::read_to_string(&path).expect("current");
        assert_eq!(current.lines().count(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
