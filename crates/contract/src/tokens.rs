//! Bearer tokens with scopes (docs/adr/0004-access-control.md), once for
//! every API Floodgate serves: the service and the harness differ only in
//! their scope sets, so the parser, the bounds, the constant-time lookup
//! and the reading of `Authorization` live here, generic over a
//! [`ScopeSet`].
//!
//! Two sources, both naming what is wrong and where:
//!
//! - a tokens file: one `SCOPE NAME TOKEN` per line, blank lines and `#`
//!   comments (whole-line or trailing) ignored ([`Tokens::parse_file`]);
//! - a variable: `scope:name:token` entries separated by commas
//!   ([`Tokens::parse_env`]).
//!
//! Names are 1 to [`MAX_TOKEN_NAME_BYTES`] of `A-Z a-z 0-9 - _ . @`;
//! secrets [`MIN_TOKEN_BYTES`] to [`MAX_TOKEN_BYTES`] of RFC 6750's
//! `b64token` alphabet (no `:`, `,` or `#`, so neither form needs
//! escaping); both unique; at most [`MAX_TOKENS`].

use std::fmt;

/// Tokens one server accepts. More is a misconfiguration (tokens are per
/// operator, agent or alert source, not per request), and every check
/// compares the presented token with all of them.
pub const MAX_TOKENS: usize = 1024;
/// Bytes in a token name (it is recorded as the actor of what it does).
pub const MAX_TOKEN_NAME_BYTES: usize = 64;
/// The shortest token accepted: 16 characters of the allowed alphabet
/// carry at least 96 bits when generated at random (e.g. `openssl rand
/// -base64 24`).
pub const MIN_TOKEN_BYTES: usize = 16;
/// The longest token accepted, configured or presented. Comparisons run
/// over this many bytes whatever the lengths, so their time says nothing
/// about a configured token.
pub const MAX_TOKEN_BYTES: usize = 256;
/// Lines in a tokens file (comments included).
pub const MAX_TOKEN_FILE_LINES: usize = 10_000;

/// The scopes of one API: what its tokens may grant.
pub trait ScopeSet: Copy + Eq + fmt::Debug + fmt::Display + Send + Sync + 'static {
    /// Every scope, in the order the docs list them.
    const ALL: &'static [Self];

    /// The name a tokens file uses.
    fn as_str(self) -> &'static str;

    /// Whether a token of this scope may do what `needed` requires.
    fn grants(self, needed: Self) -> bool;

    fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|scope| scope.as_str() == text)
    }
}

/// Why a tokens source was refused: the source (file name or variable),
/// the line or entry, and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokensError {
    pub source_name: String,
    /// 1-based line (file) or entry (variable); 0 for the source as a whole.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for TokensError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.source_name, self.line, self.message)
    }
}

impl std::error::Error for TokensError {}

/// One configured token.
#[derive(Clone)]
pub struct Token<S> {
    pub scope: S,
    /// Who holds it; recorded as the actor of what it does.
    pub name: String,
    secret: Vec<u8>,
}

impl<S: fmt::Debug> fmt::Debug for Token<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("scope", &self.scope)
            .field("name", &self.name)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The tokens a server accepts; empty means access control is off.
#[derive(Debug, Clone)]
pub struct Tokens<S> {
    tokens: Vec<Token<S>>,
}

impl<S> Default for Tokens<S> {
    fn default() -> Self {
        Tokens { tokens: Vec::new() }
    }
}

fn valid_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@')
}

/// RFC 6750's `b64token` alphabet.
fn valid_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

impl<S: ScopeSet> Tokens<S> {
    /// Parses a tokens file: one `SCOPE NAME TOKEN` per line; blank lines
    /// and `#` comments (whole-line or trailing) ignored. Errors name the
    /// source and line.
    pub fn parse_file(source_name: &str, text: &str) -> Result<Tokens<S>, TokensError> {
        let mut tokens = Tokens::default();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let error = |message: String| TokensError {
                source_name: source_name.to_owned(),
                line: number,
                message,
            };
            if number > MAX_TOKEN_FILE_LINES {
                return Err(error(format!("more than {MAX_TOKEN_FILE_LINES} lines")));
            }
            // `#` is in no scope, name or token, so it always starts a comment.
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [scope, name, secret] = fields[..] else {
                return Err(error(format!(
                    "expected `SCOPE NAME TOKEN`, found {} field(s)",
                    fields.len()
                )));
            };
            tokens.add(scope, name, secret).map_err(error)?;
        }
        Ok(tokens)
    }

    /// Parses the variable's form: `scope:name:token` entries separated by
    /// commas (blank entries ignored). Errors name the entry.
    pub fn parse_env(source_name: &str, value: &str) -> Result<Tokens<S>, TokensError> {
        let mut tokens = Tokens::default();
        for (index, entry) in value.split(',').enumerate() {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let error = |message: String| TokensError {
                source_name: source_name.to_owned(),
                line: index + 1,
                message,
            };
            let fields: Vec<&str> = entry.split(':').collect();
            let [scope, name, secret] = fields[..] else {
                return Err(error(format!(
                    "expected `scope:name:token`, found {} field(s)",
                    fields.len()
                )));
            };
            tokens.add(scope, name, secret).map_err(error)?;
        }
        Ok(tokens)
    }

    /// Adds the tokens of another source; names and tokens must stay unique.
    pub fn merge(mut self, other: Tokens<S>, other_source: &str) -> Result<Tokens<S>, TokensError> {
        for token in other.tokens {
            let name = token.name.clone();
            self.push(token).map_err(|message| TokensError {
                source_name: other_source.to_owned(),
                line: 0,
                message: format!("token {name}: {message}"),
            })?;
        }
        Ok(self)
    }

    fn add(&mut self, scope: &str, name: &str, secret: &str) -> Result<(), String> {
        let scope = S::parse(scope).ok_or_else(|| {
            let known: Vec<&str> = S::ALL.iter().map(|scope| scope.as_str()).collect();
            format!(
                "unknown scope \"{scope}\" (expected one of {})",
                known.join(", ")
            )
        })?;
        if name.is_empty()
            || name.len() > MAX_TOKEN_NAME_BYTES
            || !name.chars().all(valid_name_char)
        {
            return Err(format!(
                "token name \"{name}\": 1 to {MAX_TOKEN_NAME_BYTES} characters of A-Z a-z 0-9 - _ . @"
            ));
        }
        if secret.len() < MIN_TOKEN_BYTES || secret.len() > MAX_TOKEN_BYTES {
            return Err(format!(
                "token of {name}: {} characters; must be {MIN_TOKEN_BYTES} to {MAX_TOKEN_BYTES}",
                secret.len()
            ));
        }
        if !secret.bytes().all(valid_token_byte) {
            return Err(format!(
                "token of {name}: only A-Z a-z 0-9 - . _ ~ + / = are allowed"
            ));
        }
        self.push(Token {
            scope,
            name: name.to_owned(),
            secret: secret.as_bytes().to_vec(),
        })
    }

    fn push(&mut self, token: Token<S>) -> Result<(), String> {
        if self.tokens.len() >= MAX_TOKENS {
            return Err(format!("more than {MAX_TOKENS} tokens"));
        }
        if self.tokens.iter().any(|other| other.name == token.name) {
            return Err(format!("duplicate token name \"{}\"", token.name));
        }
        if self.tokens.iter().any(|other| other.secret == token.secret) {
            return Err(format!(
                "token of {} is the same as another token's",
                token.name
            ));
        }
        self.tokens.push(token);
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// The names and scopes (never the secrets).
    pub fn names(&self) -> impl Iterator<Item = (&str, S)> {
        self.tokens
            .iter()
            .map(|token| (token.name.as_str(), token.scope))
    }

    /// The token equal to `presented`, compared in constant time: every
    /// configured token is compared over [`MAX_TOKEN_BYTES`] bytes, so the
    /// time taken depends on neither the tokens' contents nor their lengths
    /// nor which one matched.
    pub fn authenticate(&self, presented: &[u8]) -> Option<&Token<S>> {
        if presented.len() > MAX_TOKEN_BYTES {
            return None;
        }
        let mut found = None;
        for token in &self.tokens {
            if constant_time_eq(&token.secret, presented) {
                found = Some(token);
            }
        }
        found
    }
}

/// Equality of two byte strings of at most [`MAX_TOKEN_BYTES`], in time
/// independent of their contents and lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // Lengths are at most MAX_TOKEN_BYTES, so the difference fits; any
    // difference makes the result non-zero.
    let mut difference = (a.len() ^ b.len()) as u64;
    for index in 0..MAX_TOKEN_BYTES {
        let x = a.get(index).copied().unwrap_or(0);
        let y = b.get(index).copied().unwrap_or(0);
        difference |= u64::from(x ^ y);
    }
    std::hint::black_box(difference) == 0
}

/// What a request's `Authorization` headers present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    /// No header, or one whose scheme is not `Bearer`.
    Missing,
    /// More than one header: ambiguous (which one counts depends on the
    /// hop reading them), so refused, never the first taken.
    Repeated,
    /// A bearer token.
    Bearer(&'a [u8]),
}

impl<'a> Presented<'a> {
    /// Reads the values of every `Authorization` header of a request: the
    /// scheme matched in any case (`bearer`, `BEARER`) and spaces around
    /// the token ignored (RFC 7235).
    pub fn of(mut values: impl Iterator<Item = &'a [u8]>) -> Presented<'a> {
        let Some(first) = values.next() else {
            return Presented::Missing;
        };
        if values.next().is_some() {
            return Presented::Repeated;
        }
        match first.split_at_checked(7) {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case(b"bearer ") => {
                Presented::Bearer(rest.trim_ascii())
            }
            _ => Presented::Missing,
        }
    }

    /// Why a request presenting this found no token: the message of a 401.
    pub fn refusal(self) -> &'static str {
        match self {
            Presented::Missing => "missing `Authorization: Bearer TOKEN` header",
            Presented::Repeated => "more than one Authorization header",
            Presented::Bearer(_) => "unknown bearer token",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbb";

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Test {
        Read,
        Admin,
    }

    impl fmt::Display for Test {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.as_str())
        }
    }

    impl ScopeSet for Test {
        const ALL: &'static [Test] = &[Test::Read, Test::Admin];
        fn as_str(self) -> &'static str {
            match self {
                Test::Read => "read",
                Test::Admin => "admin",
            }
        }
        fn grants(self, needed: Test) -> bool {
            self == Test::Admin || needed == Test::Read
        }
    }

    #[test]
    fn files_parse_with_comments_and_errors_name_the_line() {
        let tokens: Tokens<Test> = Tokens::parse_file(
            "tokens.txt",
            &format!("# who\nread viewer {A}\n\nadmin ops {B} # on call\n"),
        )
        .expect("valid");
        assert_eq!(
            tokens.names().collect::<Vec<_>>(),
            [("viewer", Test::Read), ("ops", Test::Admin)]
        );
        for (text, expected) in [
            (
                format!("check x {A}"),
                "tokens.txt:1: unknown scope \"check\" (expected one of read, admin)",
            ),
            (
                "read x short".to_owned(),
                "tokens.txt:1: token of x: 5 characters",
            ),
            (
                format!("read x {A}\nread x {B}"),
                "tokens.txt:2: duplicate token name",
            ),
            (
                format!("read x {A}\nread y {A}"),
                "tokens.txt:2: token of y is the same",
            ),
            (
                format!("\nread {A}"),
                "tokens.txt:2: expected `SCOPE NAME TOKEN`",
            ),
            (
                format!("read bad/name {A}"),
                "tokens.txt:1: token name \"bad/name\"",
            ),
            (format!("read x {A}:"), "tokens.txt:1: token of x: only A-Z"),
        ] {
            let error = Tokens::<Test>::parse_file("tokens.txt", &text).expect_err(&text);
            assert!(error.to_string().starts_with(expected), "{error}");
        }
        let long = "#\n".repeat(MAX_TOKEN_FILE_LINES + 1);
        let error = Tokens::<Test>::parse_file("f", &long).expect_err("too long");
        assert_eq!(error.line, MAX_TOKEN_FILE_LINES + 1);
        assert_eq!(
            error.message,
            format!("more than {MAX_TOKEN_FILE_LINES} lines")
        );
    }

    #[test]
    fn the_variable_form_parses_and_merging_keeps_names_unique() {
        let env: Tokens<Test> =
            Tokens::parse_env("FLOODGATE_TOKENS", &format!(" read:viewer:{A} ,,")).expect("valid");
        assert_eq!(env.len(), 1);
        let error = Tokens::<Test>::parse_env("V", &format!("read:x:{A},read:{B}"))
            .expect_err("two fields");
        assert_eq!(
            error.to_string(),
            "V:2: expected `scope:name:token`, found 2 field(s)"
        );
        let file: Tokens<Test> =
            Tokens::parse_file("f", &format!("admin viewer {B}")).expect("valid");
        let error = file.merge(env, "V").expect_err("same name");
        assert_eq!(
            error.to_string(),
            "V:0: token viewer: duplicate token name \"viewer\""
        );
    }

    #[test]
    fn authenticate_finds_exactly_the_equal_token() {
        let tokens: Tokens<Test> =
            Tokens::parse_file("f", &format!("read a {A}\nadmin b {B}")).expect("valid");
        let name = |secret: &[u8]| tokens.authenticate(secret).map(|t| t.name.clone());
        assert_eq!(name(A.as_bytes()).as_deref(), Some("a"));
        assert_eq!(name(B.as_bytes()).as_deref(), Some("b"));
        assert_eq!(name(&A.as_bytes()[1..]), None);
        assert_eq!(name(format!("{A}a").as_bytes()), None);
        assert_eq!(name(b""), None);
        assert_eq!(name(&[b'a'; MAX_TOKEN_BYTES + 1]), None);
        assert!(!format!("{:?}", tokens).contains(A), "secrets are redacted");
    }

    #[test]
    fn authorization_headers_are_read_as_bearer_tokens() {
        let of = |values: &[&'static str]| Presented::of(values.iter().map(|v| v.as_bytes()));
        assert_eq!(of(&[]), Presented::Missing);
        assert_eq!(of(&["Basic abc"]), Presented::Missing);
        assert_eq!(of(&["Bearer"]), Presented::Missing);
        assert_eq!(of(&["bEaReR  tok  "]), Presented::Bearer(b"tok"));
        assert_eq!(of(&["Bearer a", "Bearer b"]), Presented::Repeated);
        assert_eq!(
            of(&["Bearer a", "Bearer b"]).refusal(),
            "more than one Authorization header"
        );
    }
}
