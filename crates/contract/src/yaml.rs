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
    fn syntax_errors_are_refusals() {
        let refused = refusal("a: [1, 2\n");
        assert!(matches!(refused.problem, Problem::Syntax(_)), "{refused:?}");
    }
}
