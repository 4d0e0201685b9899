//! A condition: the CEL text of an invariant, its bounds, its percent
//! sugar, and its compilation. Shared by the objectives file (which
//! refuses a condition that does not compile) and the invariants
//! evaluator (which runs it): a leaf, so neither imports the other.

use cel::Program;

/// The longest CEL condition, in characters.
pub const MAX_CONDITION_CHARS: usize = 2048;
/// The most nested brackets a condition may hold (the CEL parser has its own
/// recursion limit too; this keeps errors readable).
pub const MAX_NESTING: usize = 32;
/// Compiles a condition (after percent sugar), refusing over-long or
/// over-nested text first.
pub fn compile(text: &str) -> Result<Program, String> {
    if text.trim().is_empty() {
        return Err("a condition must not be empty".into());
    }
    if text.len() > MAX_CONDITION_CHARS {
        return Err(format!(
            "a condition longer than {} characters",
            MAX_CONDITION_CHARS
        ));
    }
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(format!(
                        "a condition nested deeper than {MAX_NESTING} brackets"
                    ));
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    let source = desugar_percent(text);
    Program::compile(&source).map_err(|errors| {
        // "ERROR: <input>:1:27: Syntax error: … | source | ...^": keep the
        // position and the message, drop the drawing.
        let detail = errors.to_string().replace('\n', " | ");
        let detail = detail
            .trim_start_matches("ERROR: ")
            .trim_start_matches("<input>:");
        let detail = detail.split(" | ").next().unwrap_or_default().trim();
        format!("{text:?} is not a valid CEL expression (at {detail})")
    })
}

/// Rewrites percentage literals (`20%`, `99.9 %`) into decimals (`0.2`,
/// `0.999`) where `%` cannot be CEL's remainder operator: when it is
/// followed by the end, `)`, `]`, `,`, `&&`, `||`, `?` or `:`. String
/// literals are left alone.
pub fn desugar_percent(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut index = 0;
    let mut quote: Option<char> = None;
    while index < chars.len() {
        let c = chars[index];
        if let Some(q) = quote {
            out.push(c);
            if c == '\\' && index + 1 < chars.len() {
                out.push(chars[index + 1]);
                index += 2;
                continue;
            }
            if c == q {
                quote = None;
            }
            index += 1;
            continue;
        }
        if c == '"' || c == '\'' {
            quote = Some(c);
            out.push(c);
            index += 1;
            continue;
        }
        let starts_number = c.is_ascii_digit()
            && (index == 0
                || !(chars[index - 1].is_ascii_alphanumeric()
                    || chars[index - 1] == '_'
                    || chars[index - 1] == '.'));
        if starts_number {
            let start = index;
            let mut end = index;
            while end < chars.len() && (chars[end].is_ascii_digit() || chars[end] == '.') {
                end += 1;
            }
            let mut after = end;
            while after < chars.len() && chars[after] == ' ' {
                after += 1;
            }
            if after < chars.len() && chars[after] == '%' {
                let rest: String = chars[after + 1..].iter().collect();
                let rest = rest.trim_start();
                let terminal = rest.is_empty()
                    || rest.starts_with([')', ']', ',', '?', ':', '}'])
                    || rest.starts_with("&&")
                    || rest.starts_with("||");
                let number: String = chars[start..end].iter().collect();
                if let (true, Ok(value)) = (terminal, number.parse::<f64>()) {
                    let decimal = crate::quantity::trim_float(value / 100.0);
                    out.push_str(&if decimal.contains('.') {
                        decimal
                    } else {
                        format!("{decimal}.0")
                    });
                    index = after + 1;
                    continue;
                }
            }
            let number: String = chars[start..end].iter().collect();
            out.push_str(&number);
            index = end;
            continue;
        }
        out.push(c);
        index += 1;
    }
    out
}
