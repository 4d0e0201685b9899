//! The one gate every YAML text Floodgate reads passes before it is
//! deserialised: limits configs, objectives, policy, tickets, runbooks,
//! scenarios and reflection thresholds, from files and request bodies.
//!
//! [`check`] walks the text's event stream once (saphyr-parser: a pull
//! parser, no recursion, nothing kept but a stack of the open collections)
//! and refuses, naming the line, column and path of the offending node:
//!
//! - aliases and anchors (`&a` / `*a`): serde_norway expands every alias
//!   when it deserialises, so a text of a few KiB can stand for GiBs (the
//!   "billion laughs"); no Floodgate document needs them;
//! - tags outside YAML's core schema (`!!binary`, `!custom`, …);
//! - nesting deeper than [`YAML_MAX_DEPTH`] and more than
//!   [`YAML_MAX_NODES`] nodes;
//! - NUL characters (raw, or a `"\0"` escape) anywhere.
//!
//! The walk stops at the first refusal, so an attack costs no more than
//! reading up to the bound. A text that passes can be handed to
//! `serde_norway` as before; its own syntax errors keep their messages.
//!
//! [`load`] is the one loader built on it: size bound, gate, then
//! serde_norway, every refusal a [`FileError`] (`file: line N: path:
//! message`). [`line_of`] finds the line of a field refused after parsing
//! (`slos[0].target`), so every YAML error in Floodgate names its line.

use crate::limits::{YAML_MAX_DEPTH, YAML_MAX_NODES, YAML_PATH_KEY_BYTES};
use saphyr_parser::{Event, Parser, Span, Tag};
use std::fmt;

/// What a YAML text may hold; [`Bounds::default`] is the project's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Deepest nesting of collections.
    pub max_depth: usize,
    /// Most nodes over the whole text.
    pub max_nodes: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            max_depth: YAML_MAX_DEPTH,
            max_nodes: YAML_MAX_NODES,
        }
    }
}

/// Why a text was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// An alias (`*name`).
    Alias,
    /// An anchor (`&name`).
    Anchor,
    /// A tag outside the core schema, as written after resolution.
    Tag(String),
    /// Nesting deeper than the bound.
    TooDeep { limit: usize },
    /// More nodes than the bound.
    TooManyNodes { limit: usize },
    /// A NUL character.
    Nul,
    /// The text is not YAML (the parser's message).
    Syntax(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Alias => write!(f, "YAML aliases (`*name`) are not accepted"),
            Problem::Anchor => write!(f, "YAML anchors (`&name`) are not accepted"),
            Problem::Tag(tag) => write!(
                f,
                "YAML tag `{tag}` is not accepted (only the core schema's !!str, !!int, !!float, !!bool, !!null, !!seq, !!map)"
            ),
            Problem::TooDeep { limit } => {
                write!(f, "nested deeper than {limit} levels")
            }
            Problem::TooManyNodes { limit } => write!(f, "more than {limit} YAML nodes"),
            Problem::Nul => write!(f, "NUL characters are not accepted"),
            Problem::Syntax(message) => write!(f, "not valid YAML: {message}"),
        }
    }
}

/// A refused text: what, and where (1-based line and column, and the path
/// of the node within its document, e.g. `domains[2].descriptors[0].key`;
/// empty at the document's root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub problem: Problem,
    pub line: usize,
    pub column: usize,
    pub path: String,
}

impl Refusal {
    /// The path when there is one, else `line L column C`: what callers
    /// report as the refused field.
    pub fn field(&self) -> String {
        if self.path.is_empty() {
            self.location()
        } else {
            self.path.clone()
        }
    }

    /// `line L column C`.
    pub fn location(&self) -> String {
        format!("line {} column {}", self.line, self.column)
    }

    /// The problem, with its line when [`Refusal::field`] is a path:
    /// `YAML aliases … (line 3 column 9)`.
    pub fn message(&self) -> String {
        if self.path.is_empty() {
            self.problem.to_string()
        } else {
            format!("{} ({})", self.problem, self.location())
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field(), self.message())
    }
}

impl std::error::Error for Refusal {}

/// Checks `text` against the project's bounds ([`Bounds::default`]).
pub fn check(text: &str) -> Result<(), Refusal> {
    check_with(text, Bounds::default())
}

/// One open collection on the way to the current node.
enum Frame {
    /// A mapping: the last key seen (quoted in paths) and whether the next
    /// node is a value.
    Mapping { key: String, in_value: bool },
    /// A sequence: the index of the next node.
    Sequence { index: usize },
}

struct Walk {
    frames: Vec<Frame>,
    document: usize,
    nodes: usize,
    bounds: Bounds,
}

impl Walk {
    fn path(&self) -> String {
        let mut path = if self.document > 0 {
            format!("document[{}]", self.document)
        } else {
            String::new()
        };
        for frame in &self.frames {
            match frame {
                Frame::Mapping { key, in_value } => {
                    if *in_value {
                        if !path.is_empty() {
                            path.push('.');
                        }
                        path.push_str(key);
                    }
                }
                Frame::Sequence { index } => {
                    path.push_str(&format!("[{index}]"));
                }
            }
        }
        path
    }

    fn refuse(&self, problem: Problem, span: &Span) -> Refusal {
        Refusal {
            problem,
            line: span.start.line(),
            column: span.start.col() + 1,
            path: self.path(),
        }
    }

    /// A node begins: count it, and refuse what it carries.
    fn begin(&mut self, anchor: usize, tag: Option<&Tag>, span: &Span) -> Result<(), Refusal> {
        self.nodes += 1;
        if self.nodes > self.bounds.max_nodes {
            return Err(self.refuse(
                Problem::TooManyNodes {
                    limit: self.bounds.max_nodes,
                },
                span,
            ));
        }
        if anchor != 0 {
            return Err(self.refuse(Problem::Anchor, span));
        }
        if let Some(tag) = tag {
            if !core_schema(tag) {
                let written = if tag.is_yaml_core_schema() {
                    format!("!!{}", tag.suffix)
                } else {
                    tag.to_string()
                };
                return Err(self.refuse(Problem::Tag(written), span));
            }
        }
        Ok(())
    }

    /// A node ended (a scalar at once, a collection at its end event): its
    /// parent moves on.
    fn end(&mut self, key: Option<&str>) {
        match self.frames.last_mut() {
            Some(Frame::Mapping {
                key: last,
                in_value,
            }) => {
                if *in_value {
                    *in_value = false;
                } else {
                    *last = match key {
                        Some(key) => quoted_key(key),
                        None => "?".to_owned(),
                    };
                    *in_value = true;
                }
            }
            Some(Frame::Sequence { index }) => *index += 1,
            None => {}
        }
    }

    fn open(&mut self, frame: Frame, span: &Span) -> Result<(), Refusal> {
        if self.frames.len() >= self.bounds.max_depth {
            return Err(self.refuse(
                Problem::TooDeep {
                    limit: self.bounds.max_depth,
                },
                span,
            ));
        }
        self.frames.push(frame);
        Ok(())
    }
}

/// Checks `text` against `bounds`.
pub fn check_with(text: &str, bounds: Bounds) -> Result<(), Refusal> {
    let mut walk = Walk {
        frames: Vec::new(),
        document: 0,
        nodes: 0,
        bounds,
    };
    if let Some(at) = text.find('\0') {
        let line = text[..at].matches('\n').count() + 1;
        let column = at - text[..at].rfind('\n').map_or(0, |newline| newline + 1) + 1;
        return Err(Refusal {
            problem: Problem::Nul,
            line,
            column,
            path: String::new(),
        });
    }
    let mut documents = 0usize;
    for item in Parser::new_from_str(text) {
        let (event, span) = match item {
            Ok(pair) => pair,
            Err(error) => {
                // The scanner's own bound on flow nesting (255) may be
                // met before the walk sees 64 levels: it reads ahead.
                let problem = match error.info() {
                    "recursion limit exceeded" => Problem::TooDeep {
                        limit: bounds.max_depth,
                    },
                    info if info.contains("unknown anchor") => Problem::Alias,
                    info => Problem::Syntax(info.to_owned()),
                };
                // A syntax error names its line: the path the walk had
                // reached may not be where the text went wrong.
                let path = match problem {
                    Problem::Syntax(_) => String::new(),
                    _ => walk.path(),
                };
                return Err(Refusal {
                    problem,
                    line: error.marker().line(),
                    column: error.marker().col() + 1,
                    path,
                });
            }
        };
        match event {
            Event::DocumentStart(_) => {
                walk.document = documents;
                documents += 1;
                walk.frames.clear();
            }
            Event::Alias(_) => {
                walk.nodes += 1;
                return Err(walk.refuse(Problem::Alias, &span));
            }
            Event::Scalar(value, _, anchor, tag) => {
                walk.begin(anchor, tag.as_deref(), &span)?;
                if value.contains('\0') {
                    return Err(walk.refuse(Problem::Nul, &span));
                }
                walk.end(Some(&value));
            }
            Event::SequenceStart(anchor, tag) => {
                walk.begin(anchor, tag.as_deref(), &span)?;
                walk.open(Frame::Sequence { index: 0 }, &span)?;
            }
            Event::MappingStart(anchor, tag) => {
                walk.begin(anchor, tag.as_deref(), &span)?;
                walk.open(
                    Frame::Mapping {
                        key: String::new(),
                        in_value: false,
                    },
                    &span,
                )?;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                walk.frames.pop();
                walk.end(None);
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
    }
    Ok(())
}

/// Whether a tag is one of the core schema's.
fn core_schema(tag: &Tag) -> bool {
    tag.is_yaml_core_schema()
        && matches!(
            tag.suffix.as_str(),
            "str" | "int" | "float" | "bool" | "null" | "seq" | "map"
        )
}

/// A key as a path segment: plain when it is a simple name, quoted (and cut
/// to [`YAML_PATH_KEY_BYTES`]) otherwise.
fn quoted_key(key: &str) -> String {
    let simple = !key.is_empty()
        && key.len() <= YAML_PATH_KEY_BYTES
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if simple {
        return key.to_owned();
    }
    let cut = crate::text::cut(key, YAML_PATH_KEY_BYTES);
    let ellipsis = if cut.len() < key.len() { "…" } else { "" };
    format!("{cut:?}{ellipsis}")
}

// ---------------------------------------------------------------------------
// the loader: bounds, gate, deserialisation, and errors naming file, line
// and field

/// A refused YAML file (or request body): the file, the line (1-based,
/// when known), the field's path (`slos[0].target`; empty when the
/// problem is the whole text) and why. Displayed `file: line N: path:
/// message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FileError {
    /// The file, as the caller named it.
    pub file: String,
    pub line: Option<usize>,
    pub path: String,
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ": line {line}")?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl FileError {
    /// An error in `file` at `path`, on no particular line.
    pub fn new(file: &str, path: impl Into<String>, message: impl Into<String>) -> FileError {
        FileError {
            file: file.to_owned(),
            line: None,
            path: path.into(),
            message: message.into(),
        }
    }

    /// An error at `path` of `text` (found after parsing), on the line
    /// [`line_of`] finds for it.
    pub fn at_path(
        file: &str,
        text: &str,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> FileError {
        let path = path.into();
        FileError {
            line: line_of(text, &path),
            ..FileError::new(file, path, message)
        }
    }

    /// The gate's refusal ([`check`]) as a file error.
    pub fn refused(file: &str, refusal: &Refusal) -> FileError {
        FileError {
            file: file.to_owned(),
            line: Some(refusal.line),
            path: refusal.path.clone(),
            message: refusal.problem.to_string(),
        }
    }

    /// A serde_norway error, with the path serde_path_to_error followed:
    /// its line, the path (`prefix` first), and the message without the
    /// position and path serde_norway writes into it. An unknown key is
    /// reported at its mapping, the message naming it and the keys
    /// expected.
    pub fn deserializing(
        file: &str,
        prefix: &str,
        error: &serde_path_to_error::Error<serde_norway::Error>,
    ) -> FileError {
        let inner = error.inner();
        let line = inner.location().map(|location| location.line());
        let mut message = inner.to_string();
        if let Some(location) = inner.location() {
            let at = format!(" at line {} column {}", location.line(), location.column());
            if let Some(start) = message.find(&at) {
                message.replace_range(start..start + at.len(), "");
            }
        }
        let mut segments: Vec<&serde_path_to_error::Segment> = error.path().iter().collect();
        // serde_norway prefixes its own path ("slos[0].target: …"); drop it
        // (only when it is that path: a message may hold ": " of its own).
        let path_text = error.path().to_string();
        if let Some((head, tail)) = message.split_once(": ") {
            if !head.is_empty() && path_text.starts_with(head) {
                message = tail.to_owned();
            }
        }
        if let Some(rest) = message.strip_prefix("unknown field `") {
            // The path names the unknown key itself: report its mapping.
            segments.pop();
            if let Some((key, tail)) = rest.split_once('`') {
                let tail = tail.trim_start_matches(',').trim().replace('`', "");
                message = if tail.is_empty() {
                    format!("unknown field {key:?}")
                } else {
                    format!("unknown field {key:?} ({tail})")
                };
            }
        }
        message = message.replace('`', "");
        let mut path = String::from(prefix);
        for segment in segments {
            match segment {
                serde_path_to_error::Segment::Seq { index } => {
                    path.push_str(&format!("[{index}]"));
                }
                serde_path_to_error::Segment::Map { key }
                | serde_path_to_error::Segment::Enum { variant: key } => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                }
                serde_path_to_error::Segment::Unknown => {}
            }
        }
        FileError {
            file: file.to_owned(),
            line,
            path,
            message,
        }
    }
}

/// Loads one YAML document of `file`: refuses a text over `max_bytes`,
/// passes it through the gate ([`check`]), then deserialises it, every
/// refusal a [`FileError`] naming its line and field.
pub fn load<T: serde::de::DeserializeOwned>(
    file: &str,
    text: &str,
    max_bytes: usize,
) -> Result<T, FileError> {
    gate(file, text, max_bytes)?;
    let deserializer = serde_norway::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer)
        .map_err(|error| FileError::deserializing(file, "", &error))
}

/// The checks [`load`] makes before deserialising: the size bound and the
/// gate ([`check`]); for a caller that deserialises on its own (several
/// documents in one text).
pub fn gate(file: &str, text: &str, max_bytes: usize) -> Result<(), FileError> {
    if text.len() > max_bytes {
        return Err(FileError::new(
            file,
            "",
            format!("{} bytes, larger than {max_bytes} bytes", text.len()),
        ));
    }
    check(text).map_err(|refusal| FileError::refused(file, &refusal))
}

/// One step of a field's path.
#[derive(Debug, PartialEq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// `document[1].a.b[0]` → document 1 and its segments.
fn segments(path: &str) -> (usize, Vec<Segment>) {
    let mut out = Vec::new();
    for part in path.split('.').filter(|part| !part.is_empty()) {
        let mut pieces = part.split('[');
        if let Some(key) = pieces.next().filter(|key| !key.is_empty()) {
            out.push(Segment::Key(key.to_owned()));
        }
        for piece in pieces {
            if let Ok(index) = piece.trim_end_matches(']').parse() {
                out.push(Segment::Index(index));
            }
        }
    }
    match out.as_slice() {
        [Segment::Key(first), Segment::Index(document), ..] if first == "document" => {
            let document = *document;
            out.drain(..2);
            (document, out)
        }
        _ => (0, out),
    }
}

/// An open collection on the way through the text.
struct Open {
    /// Whether this collection is the node at the path's first `depth`
    /// segments.
    on_path: bool,
    depth: usize,
    kind: OpenKind,
}

enum OpenKind {
    /// The last key read (`None` for a key that is not a scalar) and its
    /// line, and whether the next node is its value.
    Mapping {
        key: Option<String>,
        key_line: usize,
        in_value: bool,
    },
    Sequence {
        index: usize,
    },
}

/// The line (1-based) where the field at `path` is written
/// (`freeze_windows[1].until`, `document[1].spec.objectives[0]`; a key's
/// own line for a mapping's value), or of the deepest field on the way to
/// it that exists; `None` when not even the first segment does (or the
/// text is not YAML up to it).
pub fn line_of(text: &str, path: &str) -> Option<usize> {
    let (document, target) = segments(path);
    let mut best: Option<(usize, usize)> = None;
    let mut open: Vec<Open> = Vec::new();
    let mut documents = 0usize;
    let mut this_document = false;
    for item in Parser::new_from_str(text) {
        let Ok((event, span)) = item else {
            break;
        };
        let line = span.start.line();
        let begins = match &event {
            Event::DocumentStart(_) => {
                this_document = documents == document;
                documents += 1;
                open.clear();
                None
            }
            Event::DocumentEnd if this_document => break,
            Event::Scalar(value, ..) => Some(Some(value.as_ref())),
            Event::SequenceStart(..) | Event::MappingStart(..) | Event::Alias(_) => Some(None),
            Event::SequenceEnd | Event::MappingEnd => {
                open.pop();
                None
            }
            _ => None,
        };
        let Some(scalar) = begins else {
            continue;
        };
        // Where the node stands: its depth on the path, and its line.
        let (on_path, depth, node_line) = match open.last_mut() {
            None => (this_document, 0, line),
            Some(parent) => {
                let (parent_on_path, parent_depth) = (parent.on_path, parent.depth);
                let at =
                    |segment: Segment| parent_on_path && target.get(parent_depth) == Some(&segment);
                match &mut parent.kind {
                    OpenKind::Mapping {
                        key,
                        key_line,
                        in_value,
                    } if !*in_value => {
                        *key = scalar.map(str::to_owned);
                        *key_line = line;
                        *in_value = true;
                        if scalar.is_some() {
                            continue;
                        }
                        // A collection as a key: never on the path.
                        (false, 0, line)
                    }
                    OpenKind::Mapping {
                        key,
                        key_line,
                        in_value,
                    } => {
                        *in_value = false;
                        let on = key.clone().is_some_and(|key| at(Segment::Key(key)));
                        (on, parent_depth + 1, *key_line)
                    }
                    OpenKind::Sequence { index } => {
                        let segment = Segment::Index(*index);
                        *index += 1;
                        (at(segment), parent_depth + 1, line)
                    }
                }
            }
        };
        if on_path && depth > 0 && best.is_none_or(|(deepest, _)| depth > deepest) {
            best = Some((depth, node_line));
        }
        let kind = match event {
            Event::SequenceStart(..) => OpenKind::Sequence { index: 0 },
            Event::MappingStart(..) => OpenKind::Mapping {
                key: None,
                key_line: line,
                in_value: false,
            },
            _ => continue,
        };
        open.push(Open {
            on_path,
            depth,
            kind,
        });
    }
    best.map(|(_, line)| line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(text: &str) -> Refusal {
        check(text).expect_err("refused")
    }

    #[test]
    fn plain_documents_pass() {
        let text = "domain: d\ndescriptors:\n  - key: k\n    value: \"v\"\n    rate_limit: {unit: second, requests_per_unit: !!int 5}\n---\ndomain: e\n";
        assert_eq!(check(text), Ok(()));
    }

    #[test]
    fn an_alias_is_refused_with_its_path_and_line() {
        let text = "domain: d\ndescriptors:\n  - key: &k a\n    value: b\n";
        let refused = refusal(text);
        assert_eq!(refused.problem, Problem::Anchor);
        assert_eq!(refused.path, "descriptors[0].key");
        assert_eq!(refused.line, 3);
        let text = "a: x\nb: *k\n";
        let refused = refusal(text);
        assert_eq!(refused.problem, Problem::Alias);
        assert_eq!(refused.path, "b");
        assert_eq!(refused.line, 2);
    }

    #[test]
    fn tags_outside_the_core_schema_are_refused() {
        let refused = refusal("domain: !!binary aGVsbG8=\n");
        assert_eq!(refused.problem, Problem::Tag("!!binary".to_owned()));
        assert_eq!(refused.path, "domain");
        let refused = refusal("domain: x\nlist: !custom [1]\n");
        assert_eq!(refused.problem, Problem::Tag("!custom".to_owned()));
        assert_eq!(refused.path, "list");
        assert_eq!(check("a: !!str x\nb: !!int 1\n"), Ok(()));
    }

    #[test]
    fn depth_and_node_count_are_bounded() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let refused = refusal(&deep);
        assert_eq!(
            refused.problem,
            Problem::TooDeep {
                limit: YAML_MAX_DEPTH
            }
        );
        let many = Bounds {
            max_depth: 8,
            max_nodes: 10,
        };
        let refused = check_with("[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]", many).expect_err("refused");
        assert_eq!(refused.problem, Problem::TooManyNodes { limit: 10 });
        assert_eq!(refused.path, "[9]");
        assert_eq!(check_with("[1, 2, 3, 4, 5, 6, 7, 8, 9]", many), Ok(()));
    }

    #[test]
    fn nul_is_refused_raw_or_escaped() {
        let refused = refusal("domain: \"a\\0b\"\n");
        assert_eq!(refused.problem, Problem::Nul);
        assert_eq!(refused.path, "domain");
        let refused = refusal("a: 1\ndomain: a\0b\n");
        assert_eq!(refused.problem, Problem::Nul);
        assert_eq!((refused.line, refused.column), (2, 10));
    }

    #[test]
    fn later_documents_are_named() {
        let refused = refusal("a: 1\n---\nb: [*x]\n");
        assert_eq!(refused.path, "document[1].b[0]");
        assert!(refused.to_string().contains("line 3"), "{refused}");
    }

    #[test]
    fn fields_are_found_on_their_lines() {
        let text = "a: 1\nlist:\n  - x: 1\n    y:\n      z: 2\n  - x: 3\n---\nb: 4\n";
        assert_eq!(line_of(text, "a"), Some(1));
        assert_eq!(line_of(text, "list"), Some(2));
        assert_eq!(line_of(text, "list[0].y.z"), Some(5));
        assert_eq!(line_of(text, "list[1].x"), Some(6));
        assert_eq!(
            line_of(text, "list[1].missing"),
            Some(6),
            "the deepest that exists"
        );
        assert_eq!(line_of(text, "nothing"), None);
        assert_eq!(line_of(text, "document[1].b"), Some(8));
        assert_eq!(line_of(text, "b"), None, "b is in the second document");
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        items: Vec<Item>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        size: u32,
    }

    #[test]
    fn the_loader_names_file_line_and_field() {
        let error =
            load::<Doc>("f.yaml", "name: n\nitems:\n  - size: -1\n", 1024).expect_err("refused");
        assert_eq!(error.line, Some(3));
        assert_eq!(error.path, "items[0].size");
        assert!(
            error
                .to_string()
                .starts_with("f.yaml: line 3: items[0].size: "),
            "{error}"
        );
        let error =
            load::<Doc>("f.yaml", "name: n\nitems: []\nsize: 1\n", 1024).expect_err("refused");
        assert_eq!(error.line, Some(3));
        assert!(
            error.message.starts_with("unknown field \"size\""),
            "{error}"
        );
        let error = load::<Doc>("f.yaml", "name: &a n\n", 1024).expect_err("refused");
        assert_eq!((error.line, error.path.as_str()), (Some(1), "name"));
        let error = load::<Doc>("f.yaml", "name: n\n", 4).expect_err("refused");
        assert_eq!(error.to_string(), "f.yaml: 8 bytes, larger than 4 bytes");
        let error = FileError::at_path("f.yaml", "name: n\nitems: []\n", "items", "empty");
        assert_eq!(error.to_string(), "f.yaml: line 2: items: empty");
    }

    #[test]
    fn syntax_errors_are_refusals() {
        let refused = refusal("a: [1, 2\n");
        assert!(matches!(refused.problem, Problem::Syntax(_)), "{refused:?}");
    }
}
