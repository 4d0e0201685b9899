//! A unified line diff whose time grows as `n log n` with the texts' lines,
//! whatever they hold.
//!
//! A Myers diff (what `similar::TextDiff` runs, alone or under patience)
//! takes time proportional to the lines times the edit distance: replacing
//! a config of 8,000 descriptors by another took seconds, and 32,000
//! minutes (issue 15). Here:
//!
//! 1. the common leading and trailing lines are equal (linear);
//! 2. in between, the lines that occur exactly once in each text and in the
//!    same order in both (the longest increasing run of their positions,
//!    `n log n`) are anchors, as in a patience diff; each anchor is widened
//!    over the equal lines around it;
//! 3. each stretch between two anchors is diffed line by line (Myers) when
//!    it holds at most [`DIFF_MYERS_MAX_LINES`] lines, so that step costs at
//!    most that many times the stretch's lines; a longer stretch is shown as
//!    replaced whole.
//!
//! The output is the usual unified diff, three lines of context, with
//! `--- old` / `+++ new` headers; empty when the texts are equal.

use crate::limits::DIFF_MYERS_MAX_LINES;
use similar::algorithms::{myers, Capture, DiffHook, Replace};
use similar::udiff::UnifiedHunkHeader;
use similar::DiffOp;
use std::collections::HashMap;
use std::ops::Range;

/// Lines of context around each change.
const CONTEXT_LINES: usize = 3;

/// The unified diff of `old` and `new` by lines, headed `--- old_name` and
/// `+++ new_name`; empty when they are equal.
pub fn unified(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    let old_lines: Vec<&str> = old.split_inclusive('\n').collect();
    let new_lines: Vec<&str> = new.split_inclusive('\n').collect();
    let ops = line_ops(&old_lines, &new_lines);
    if ops.iter().all(|op| matches!(op, DiffOp::Equal { .. })) {
        return String::new();
    }
    let mut out = format!("--- {old_name}\n+++ {new_name}\n");
    for group in similar::group_diff_ops(ops, CONTEXT_LINES) {
        if group.is_empty() {
            continue;
        }
        out.push_str(&UnifiedHunkHeader::new(&group).to_string());
        out.push('\n');
        for op in &group {
            let (old_range, new_range) = (op.old_range(), op.new_range());
            match op {
                DiffOp::Equal { .. } => write_lines(&mut out, ' ', &old_lines[old_range]),
                DiffOp::Delete { .. } => write_lines(&mut out, '-', &old_lines[old_range]),
                DiffOp::Insert { .. } => write_lines(&mut out, '+', &new_lines[new_range]),
                DiffOp::Replace { .. } => {
                    write_lines(&mut out, '-', &old_lines[old_range]);
                    write_lines(&mut out, '+', &new_lines[new_range]);
                }
            }
        }
    }
    out
}

fn write_lines(out: &mut String, tag: char, lines: &[&str]) {
    for line in lines {
        out.push(tag);
        out.push_str(line);
        if !line.ends_with('\n') {
            out.push_str("\n\\ No newline at end of file\n");
        }
    }
}

/// The operations turning `old` into `new`, in order, adjacent equal runs
/// merged.
fn line_ops(old: &[&str], new: &[&str]) -> Vec<DiffOp> {
    let mut capture = Capture::new();
    diff_range(&mut capture, old, 0..old.len(), new, 0..new.len(), true);
    merge_equal(capture.into_ops())
}

/// Diffs `old[old_range]` against `new[new_range]` into `hook`; with
/// `anchored`, through unique-line anchors first (one level only, so the
/// whole stays `n log n`).
fn diff_range(
    hook: &mut Capture,
    old: &[&str],
    old_range: Range<usize>,
    new: &[&str],
    new_range: Range<usize>,
    anchored: bool,
) {
    let (mut old_start, mut new_start) = (old_range.start, new_range.start);
    let (mut old_end, mut new_end) = (old_range.end, new_range.end);
    let prefix = common_prefix(old, old_start..old_end, new, new_start..new_end);
    if prefix > 0 {
        equal(hook, old_start, new_start, prefix);
        old_start += prefix;
        new_start += prefix;
    }
    let suffix = common_suffix(old, old_start..old_end, new, new_start..new_end);
    old_end -= suffix;
    new_end -= suffix;

    let (old_len, new_len) = (old_end - old_start, new_end - new_start);
    if old_len == 0 && new_len > 0 {
        insert(hook, old_start, new_start, new_len);
    } else if new_len == 0 && old_len > 0 {
        delete(hook, old_start, old_len, new_start);
    } else if old_len + new_len <= DIFF_MYERS_MAX_LINES {
        if old_len > 0 {
            // Through `Replace`, as `similar::TextDiff` does: a deletion
            // next to an insertion is one replacement (`-` lines, then `+`).
            let mut replace = Replace::new(Capture::new());
            let _ = myers::diff(
                &mut replace,
                old,
                old_start..old_end,
                new,
                new_start..new_end,
            );
            for op in replace.into_inner().into_ops() {
                let _ = match op {
                    DiffOp::Equal {
                        old_index,
                        new_index,
                        len,
                    } => hook.equal(old_index, new_index, len),
                    DiffOp::Delete {
                        old_index,
                        old_len,
                        new_index,
                    } => hook.delete(old_index, old_len, new_index),
                    DiffOp::Insert {
                        old_index,
                        new_index,
                        new_len,
                    } => hook.insert(old_index, new_index, new_len),
                    DiffOp::Replace {
                        old_index,
                        old_len,
                        new_index,
                        new_len,
                    } => hook.replace(old_index, old_len, new_index, new_len),
                };
            }
        }
    } else if anchored {
        let anchors = anchors(old, old_start..old_end, new, new_start..new_end);
        let (mut old_at, mut new_at) = (old_start, new_start);
        for (old_anchor, new_anchor) in anchors {
            // An anchor already covered by the previous one's widening.
            if old_anchor < old_at || new_anchor < new_at {
                continue;
            }
            diff_range(
                hook,
                old,
                old_at..old_anchor,
                new,
                new_at..new_anchor,
                false,
            );
            let run = common_prefix(old, old_anchor..old_end, new, new_anchor..new_end);
            equal(hook, old_anchor, new_anchor, run);
            old_at = old_anchor + run;
            new_at = new_anchor + run;
        }
        diff_range(hook, old, old_at..old_end, new, new_at..new_end, false);
    } else {
        let _ = hook.replace(old_start, old_len, new_start, new_len);
    }

    if suffix > 0 {
        equal(hook, old_end, new_end, suffix);
    }
}

fn equal(hook: &mut Capture, old_index: usize, new_index: usize, len: usize) {
    if len > 0 {
        let _ = hook.equal(old_index, new_index, len);
    }
}

fn insert(hook: &mut Capture, old_index: usize, new_index: usize, len: usize) {
    let _ = hook.insert(old_index, new_index, len);
}

fn delete(hook: &mut Capture, old_index: usize, len: usize, new_index: usize) {
    let _ = hook.delete(old_index, len, new_index);
}

fn common_prefix(
    old: &[&str],
    old_range: Range<usize>,
    new: &[&str],
    new_range: Range<usize>,
) -> usize {
    equal_run(old[old_range].iter(), new[new_range].iter())
}

fn common_suffix(
    old: &[&str],
    old_range: Range<usize>,
    new: &[&str],
    new_range: Range<usize>,
) -> usize {
    equal_run(old[old_range].iter().rev(), new[new_range].iter().rev())
}

/// How many lines the two sequences share before they first differ.
fn equal_run<'a>(
    old: impl Iterator<Item = &'a &'a str>,
    new: impl Iterator<Item = &'a &'a str>,
) -> usize {
    old.zip(new).take_while(|(a, b)| a == b).count()
}

/// The lines occurring exactly once in each range, paired, keeping the
/// longest chain whose positions increase in both (patience sorting:
/// `k log k` for `k` such lines).
fn anchors(
    old: &[&str],
    old_range: Range<usize>,
    new: &[&str],
    new_range: Range<usize>,
) -> Vec<(usize, usize)> {
    // line -> (times in old, its position there, times in new, its position there)
    let mut seen: HashMap<&str, (u32, usize, u32, usize)> = HashMap::new();
    for index in old_range.clone() {
        let entry = seen.entry(old[index]).or_insert((0, index, 0, 0));
        entry.0 = entry.0.saturating_add(1);
    }
    for index in new_range {
        if let Some(entry) = seen.get_mut(new[index]) {
            entry.2 = entry.2.saturating_add(1);
            entry.3 = index;
        }
    }
    // Pairs in the old text's order; their new positions' longest
    // increasing subsequence is the anchor chain.
    let pairs: Vec<(usize, usize)> = old_range
        .filter_map(|index| match seen.get(old[index]) {
            Some(&(1, old_at, 1, new_at)) if old_at == index => Some((old_at, new_at)),
            _ => None,
        })
        .collect();
    // tails[k]: the pair ending the best chain of length k + 1 found so far
    // (its index in `pairs`); previous[i]: the pair before i in its chain.
    let mut tails: Vec<usize> = Vec::new();
    let mut previous: Vec<Option<usize>> = vec![None; pairs.len()];
    for (index, &(_, new_at)) in pairs.iter().enumerate() {
        let place = tails.partition_point(|&tail| pairs[tail].1 < new_at);
        previous[index] = place.checked_sub(1).map(|before| tails[before]);
        if place == tails.len() {
            tails.push(index);
        } else {
            tails[place] = index;
        }
    }
    let mut chain = Vec::with_capacity(tails.len());
    let mut at = tails.last().copied();
    while let Some(index) = at {
        chain.push(pairs[index]);
        at = previous[index];
    }
    chain.reverse();
    chain
}

/// Joins adjacent equal runs (the anchors' widening and the trimmed ends
/// can leave them side by side), so context is grouped as one run.
fn merge_equal(ops: Vec<DiffOp>) -> Vec<DiffOp> {
    let mut merged: Vec<DiffOp> = Vec::with_capacity(ops.len());
    for op in ops {
        if let (Some(DiffOp::Equal { len: run, .. }), DiffOp::Equal { len, .. }) =
            (merged.last_mut(), op)
        {
            *run += len;
            continue;
        }
        merged.push(op);
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Applies the diff's operations to `old`: must give `new` back.
    fn rebuilt(old: &str, new: &str) -> String {
        let old_lines: Vec<&str> = old.split_inclusive('\n').collect();
        let new_lines: Vec<&str> = new.split_inclusive('\n').collect();
        let mut out = String::new();
        let (mut old_at, mut new_at) = (0, 0);
        for op in line_ops(&old_lines, &new_lines) {
            assert_eq!(op.old_range().start, old_at, "{op:?}");
            assert_eq!(op.new_range().start, new_at, "{op:?}");
            if let DiffOp::Equal { .. } = op {
                assert_eq!(old_lines[op.old_range()], new_lines[op.new_range()]);
            }
            for line in &new_lines[op.new_range()] {
                out.push_str(line);
            }
            old_at = op.old_range().end;
            new_at = op.new_range().end;
        }
        assert_eq!((old_at, new_at), (old_lines.len(), new_lines.len()));
        out
    }

    #[test]
    fn matches_similars_unified_diff_on_small_texts() {
        for (old, new) in [
            ("a: 1\nb: 2\n", "a: 1\nb: 3\n"),
            (
                "a\nb\nc\nd\ne\nf\ng\nh\ni\n",
                "a\nb\nX\nd\ne\nf\ng\nh\nY\ni\n",
            ),
            ("x\n", "x"),
            ("", "a\nb\n"),
            ("a\nb\n", ""),
            ("one\ntwo\nthree\n", "zero\none\nthree\nfour\n"),
        ] {
            let expected = similar::TextDiff::from_lines(old, new)
                .unified_diff()
                .context_radius(CONTEXT_LINES)
                .header("version 1", "proposed")
                .to_string();
            assert_eq!(
                unified(old, new, "version 1", "proposed"),
                expected,
                "{old:?} → {new:?}"
            );
        }
        assert_eq!(unified("x\n", "x\n", "a", "b"), "");
    }

    /// Two configs of `count` descriptors sharing nothing but structure.
    fn configs(count: usize) -> (String, String) {
        let make = |prefix: &str| {
            (0..count)
                .map(|i| format!("- key: tenant\n  value: {prefix}{i}\n  rate_limit:\n    unit: second\n    requests_per_unit: {}\n", i % 7))
                .collect::<String>()
        };
        (make("a"), make("b"))
    }

    #[test]
    fn large_texts_are_diffed_exactly_without_myers_over_the_whole() {
        let (old, new) = configs(20_000);
        assert_eq!(rebuilt(&old, &new), new);
        // Interleaved edits: every tenth descriptor changed, some removed,
        // some added; anchors keep the rest as context.
        let mut edited = String::new();
        for (i, chunk) in old.split_inclusive("- key").enumerate() {
            match i % 10 {
                3 => edited.push_str(&chunk.replace("second", "minute")),
                5 => {}
                7 => {
                    edited.push_str(chunk);
                    edited.push_str(&format!(" extra\n  value: new{i}\n- key"));
                }
                _ => edited.push_str(chunk),
            }
        }
        assert_eq!(rebuilt(&old, &edited), edited);
        let text = unified(&old, &edited, "old", "new");
        assert!(
            text.contains("-    unit: second\n+    unit: minute\n"),
            "{}",
            &text[..400]
        );
        // A line changed in the middle keeps a small diff.
        let one = old.replacen("value: a10000\n", "value: a10000x\n", 1);
        let text = unified(&old, &one, "old", "new");
        assert_eq!(
            text.lines().filter(|l| l.starts_with(['-', '+'])).count(),
            4,
            "{text}"
        );
    }

    #[test]
    fn stretches_without_anchors_are_replaced_whole() {
        // Repeated lines only: no line is unique, nothing anchors.
        let old = "x\ny\n".repeat(DIFF_MYERS_MAX_LINES);
        let new = "y\nx\n".repeat(DIFF_MYERS_MAX_LINES);
        assert_eq!(rebuilt(&old, &new), new);
        assert_eq!(rebuilt(&new, &old), old);
        assert_eq!(rebuilt("", &new), new);
        assert_eq!(rebuilt(&old, ""), "");
    }
}
