//! Cutting text to a byte bound without splitting a character: the one
//! helper every bounded string in Floodgate (event details, refused paths,
//! trajectory steps, agent observations, YAML paths) is cut with.

/// The longest prefix of `text` of at most `max_bytes` bytes that ends on a
/// character boundary.
pub fn cut(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Cuts `text` in place to at most `max_bytes` bytes, at a character
/// boundary.
pub fn cut_in_place(text: &mut String, max_bytes: usize) {
    let end = cut(text, max_bytes).len();
    text.truncate(end);
}

/// `text` when it fits in `max_bytes`; else its longest prefix that leaves
/// room for `marker`, followed by `marker` (the whole within `max_bytes`
/// unless `marker` alone is longer).
pub fn cut_marked(text: &str, max_bytes: usize, marker: &str) -> String {
    if text.len() <= max_bytes {
        return text.to_owned();
    }
    format!(
        "{}{marker}",
        cut(text, max_bytes.saturating_sub(marker.len()))
    )
}

/// [`cut_marked`] with `…` as the marker.
pub fn clip(text: &str, max_bytes: usize) -> String {
    cut_marked(text, max_bytes, "…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_never_split_a_character() {
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut("ab€cd", 3), "ab");
        assert_eq!(cut("ab€cd", 5), "ab€");
        assert_eq!(cut("é", 0), "");
        let mut text = "ab€cd".to_owned();
        cut_in_place(&mut text, 4);
        assert_eq!(text, "ab");
    }

    #[test]
    fn a_marked_cut_fits_its_bound() {
        assert_eq!(clip("ab€cd", 5), "ab…");
        assert_eq!(clip("abc", 3), "abc");
        let long = "é".repeat(100);
        let marked = cut_marked(&long, 50, "… [200 bytes, cut]");
        assert!(marked.len() <= 50, "{marked}");
        assert!(
            marked.starts_with('é') && marked.ends_with("cut]"),
            "{marked}"
        );
    }
}
