//! Expressions and templates: CEL over `vars` and `ticket`, and the small
//! templating of `propose` parameters and texts.
//!
//! - `when:` of a branch is a CEL expression that must answer a bool.
//! - In a string, `{{ EXPR }}` is a CEL expression and `${name}` is the
//!   variable `name` (short for `{{ vars.name }}`). A string that is one
//!   `{{ EXPR }}` or `${name}` and nothing else takes the value's type (a
//!   number stays a number); otherwise each part is rendered into the
//!   string.
//!
//! Numbers in variables are CEL ints when they are whole and fit an `i64`,
//! doubles otherwise: `vars.limit * 2` works on a quota, `double(x) * 1.5`
//! mixes. Whole doubles come back out as JSON integers, so
//! `{{ vars.used_ratio * 100.0 }}` may fill an integer parameter.

use cel::objects::{Key, Map};
use cel::{Context, Env, Program, Value as Cel};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

/// The longest expression, in characters.
pub const MAX_EXPR_CHARS: usize = 1024;
/// The deepest JSON nesting converted into CEL values (service documents
/// are four levels deep); deeper values become null.
pub const MAX_JSON_DEPTH: usize = 16;
/// The longest rendered string, in bytes.
pub const MAX_RENDERED_BYTES: usize = 64 * 1024;

fn env() -> Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    Arc::clone(ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        // The strings extension (`split`, `indexOf`, …) declares names the
        // stdlib does not; failing to add it only loses those functions.
        let _ = env.add_extension(cel::extensions::strings);
        // The math extension (`math.greatest`, `math.least`, `math.ceil`,
        // …), for sizing a change from what was observed.
        let _ = env.add_extension(cel::extensions::math);
        Arc::new(env)
    }))
}

/// A compiled CEL expression and its text.
#[derive(Debug, Clone)]
pub struct Expr {
    text: String,
    program: Arc<Program>,
}

impl Expr {
    /// Compiles `text`; the error says where it fails.
    pub fn compile(text: &str) -> Result<Expr, String> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err("an expression must not be empty".into());
        }
        if trimmed.chars().count() > MAX_EXPR_CHARS {
            return Err(format!(
                "an expression longer than {MAX_EXPR_CHARS} characters"
            ));
        }
        let program = env().compile(trimmed).map_err(|errors| {
            let detail = errors.to_string().replace('\n', " | ");
            let detail = detail
                .trim_start_matches("ERROR: ")
                .trim_start_matches("<input>:");
            let detail = detail.split(" | ").next().unwrap_or_default().trim();
            format!("{trimmed:?} is not a valid CEL expression (at {detail})")
        })?;
        Ok(Expr {
            text: trimmed.to_owned(),
            program: Arc::new(program),
        })
    }

    /// The expression as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The names `vars.NAME` / `vars["NAME"]` the expression reads.
    pub fn var_names(&self) -> BTreeSet<String> {
        var_names(&self.text)
    }

    /// Runs the program over `vars` and `ticket`.
    fn execute(&self, scope: &Scope<'_>) -> Result<Cel, String> {
        let mut context = Context::with_env(env());
        context.add_variable_from_value("vars", vars_to_cel(scope.vars));
        context.add_variable_from_value("ticket", json_to_cel(scope.ticket, 0));
        self.program
            .execute(&context)
            .map_err(|error| format!("{:?} failed: {error}", self.text))
    }

    /// Evaluates over `vars` and `ticket`, answering JSON.
    pub fn eval(&self, scope: &Scope<'_>) -> Result<Value, String> {
        cel_to_json(&self.execute(scope)?)
            .map_err(|error| format!("{:?} answered {error}", self.text))
    }

    /// Evaluates to a value to keep (a `set` step): numbers keep their
    /// kind, so a double that happens to be whole stays a double.
    pub fn eval_value(&self, scope: &Scope<'_>) -> Result<Value, String> {
        cel_to_json_as(&self.execute(scope)?, false)
            .map_err(|error| format!("{:?} answered {error}", self.text))
    }

    /// Evaluates a condition: anything but a bool is an error.
    pub fn eval_bool(&self, scope: &Scope<'_>) -> Result<bool, String> {
        match self.eval(scope)? {
            Value::Bool(result) => Ok(result),
            other => Err(format!(
                "{:?} answered {}, not a bool",
                self.text,
                kind_of(&other)
            )),
        }
    }
}

/// What expressions see.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub vars: &'a BTreeMap<String, Value>,
    pub ticket: &'a Value,
}

fn var_names(text: &str) -> BTreeSet<String> {
    // A string literal may mention `vars.` too; reading too much only makes
    // validation stricter about names that must exist anyway.
    static PATTERN: OnceLock<regex::Regex> = OnceLock::new();
    let pattern = PATTERN.get_or_init(|| {
        regex::Regex::new(
            r#"\bvars\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*["']([^"']+)["']\s*\])"#,
        )
        .expect("a valid pattern")
    });
    pattern
        .captures_iter(text)
        .filter_map(|caps| caps.get(1).or_else(|| caps.get(2)))
        .map(|name| name.as_str().to_owned())
        .collect()
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

fn vars_to_cel(vars: &BTreeMap<String, Value>) -> Cel {
    let map: HashMap<Key, Cel> = vars
        .iter()
        .map(|(name, value)| (Key::from(name.clone()), json_to_cel(value, 1)))
        .collect();
    Cel::Map(Map::from(map))
}

/// Converts JSON to CEL (bounded depth): whole numbers that fit an `i64`
/// become ints, other numbers doubles.
pub fn json_to_cel(value: &Value, depth: usize) -> Cel {
    if depth > MAX_JSON_DEPTH {
        return Cel::Null;
    }
    match value {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(number) => match number.as_i64() {
            Some(int) => Cel::Int(int),
            None => Cel::Float(number.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Cel::String(Arc::new(s.clone())),
        Value::Array(items) => Cel::List(Arc::new(
            items
                .iter()
                .map(|item| json_to_cel(item, depth + 1))
                .collect(),
        )),
        Value::Object(object) => {
            let map: HashMap<Key, Cel> = object
                .iter()
                .map(|(key, item)| (Key::from(key.clone()), json_to_cel(item, depth + 1)))
                .collect();
            Cel::Map(Map::from(map))
        }
    }
}

/// The largest magnitude a double keeps every whole number exactly.
const EXACT_DOUBLE: f64 = 9_007_199_254_740_992.0;

fn cel_to_json(value: &Cel) -> Result<Value, String> {
    cel_to_json_as(value, true)
}

/// CEL to JSON; a whole double becomes an integer when `whole_as_int`
/// (so a computed quota fits a schema's integer), else stays a double.
fn cel_to_json_as(value: &Cel, whole_as_int: bool) -> Result<Value, String> {
    Ok(match value {
        Cel::Null => Value::Null,
        Cel::Bool(b) => Value::Bool(*b),
        Cel::Int(int) => Value::from(*int),
        Cel::UInt(uint) => Value::from(*uint),
        Cel::Float(float) => {
            if !float.is_finite() {
                return Err(format!("{float}, not a finite number"));
            }
            if whole_as_int && float.fract() == 0.0 && float.abs() <= EXACT_DOUBLE {
                // Whole and exact: an integer (checked above).
                Value::from(*float as i64)
            } else {
                serde_json::Number::from_f64(*float)
                    .map(Value::Number)
                    .ok_or_else(|| format!("{float}, not a JSON number"))?
            }
        }
        Cel::String(s) => Value::String(s.as_str().to_owned()),
        Cel::List(items) => Value::Array(
            items
                .iter()
                .map(|item| cel_to_json_as(item, whole_as_int))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Cel::Map(map) => {
            let mut object = serde_json::Map::new();
            for (key, item) in map.map.iter() {
                let key = match key {
                    Key::String(s) => s.as_str().to_owned(),
                    Key::Int(i) => i.to_string(),
                    Key::Uint(u) => u.to_string(),
                    Key::Bool(b) => b.to_string(),
                };
                object.insert(key, cel_to_json_as(item, whole_as_int)?);
            }
            Value::Object(object)
        }
        other => return Err(format!("a value of type {other:?} JSON cannot hold")),
    })
}

/// One piece of a templated string: text, or an expression rendered into it.
#[derive(Debug, Clone)]
pub enum Part {
    Text(String),
    Expr(Expr),
}

/// One leaf of a [`Template`] ([`Template::leaves`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Leaf {
    /// A value written in the runbook.
    Literal(Value),
    /// A template, with the variables it reads.
    Templated(BTreeSet<String>),
}

/// A JSON value whose strings may hold `{{ EXPR }}` and `${name}`.
#[derive(Debug, Clone)]
pub enum Template {
    /// No template anywhere below.
    Literal(Value),
    /// A string that is exactly one `{{ EXPR }}`: the expression's value.
    Whole(Expr),
    /// A string with text and expressions, rendered to a string.
    Parts(Vec<Part>),
    Array(Vec<Template>),
    Object(Vec<(String, Template)>),
}

impl Template {
    /// Parses every string in `value`. The error names the path
    /// (`.requests_per_unit`, `[0].value`) below `value`.
    pub fn parse(value: &Value) -> Result<Template, (String, String)> {
        match value {
            Value::String(text) => parse_string(text).map_err(|message| (String::new(), message)),
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    out.push(
                        Template::parse(item)
                            .map_err(|(path, message)| (format!("[{index}]{path}"), message))?,
                    );
                }
                Ok(if out.iter().all(|t| matches!(t, Template::Literal(_))) {
                    Template::Literal(value.clone())
                } else {
                    Template::Array(out)
                })
            }
            Value::Object(object) => {
                let mut out = Vec::with_capacity(object.len());
                for (key, item) in object {
                    out.push((
                        key.clone(),
                        Template::parse(item)
                            .map_err(|(path, message)| (format!(".{key}{path}"), message))?,
                    ));
                }
                Ok(
                    if out.iter().all(|(_, t)| matches!(t, Template::Literal(_))) {
                        Template::Literal(value.clone())
                    } else {
                        Template::Object(out)
                    },
                )
            }
            other => Ok(Template::Literal(other.clone())),
        }
    }

    /// Parses a text field (a rationale, a question, a reason).
    pub fn parse_text(text: &str) -> Result<Template, String> {
        parse_string(text)
    }

    /// Every variable name the template reads.
    pub fn var_names(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        self.collect(&mut names);
        names
    }

    fn collect(&self, names: &mut BTreeSet<String>) {
        match self {
            Template::Literal(_) => {}
            Template::Whole(expr) => names.extend(expr.var_names()),
            Template::Parts(parts) => {
                for part in parts {
                    if let Part::Expr(expr) = part {
                        names.extend(expr.var_names());
                    }
                }
            }
            Template::Array(items) => items.iter().for_each(|item| item.collect(names)),
            Template::Object(fields) => fields.iter().for_each(|(_, item)| item.collect(names)),
        }
    }

    /// Every leaf with its JSON pointer: a literal's scalars (and empty
    /// containers) with their value, each template with the variables it
    /// reads.
    pub fn leaves(&self) -> Vec<(String, Leaf)> {
        fn literal(at: String, value: &Value, out: &mut Vec<(String, Leaf)>) {
            match value {
                Value::Array(items) if !items.is_empty() => {
                    for (index, item) in items.iter().enumerate() {
                        literal(format!("{at}/{index}"), item, out);
                    }
                }
                Value::Object(fields) if !fields.is_empty() => {
                    for (key, item) in fields {
                        let escaped = key.replace('~', "~0").replace('/', "~1");
                        literal(format!("{at}/{escaped}"), item, out);
                    }
                }
                other => out.push((at, Leaf::Literal(other.clone()))),
            }
        }
        fn walk(template: &Template, at: String, out: &mut Vec<(String, Leaf)>) {
            match template {
                Template::Literal(value) => literal(at, value, out),
                Template::Whole(_) | Template::Parts(_) => {
                    out.push((at, Leaf::Templated(template.var_names())))
                }
                Template::Array(items) => {
                    for (index, item) in items.iter().enumerate() {
                        walk(item, format!("{at}/{index}"), out);
                    }
                }
                Template::Object(fields) => {
                    for (key, item) in fields {
                        let escaped = key.replace('~', "~0").replace('/', "~1");
                        walk(item, format!("{at}/{escaped}"), out);
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(self, String::new(), &mut out);
        out
    }

    /// The JSON pointers (RFC 6901) of every templated value, for
    /// validation that skips what only the run knows.
    pub fn templated_pointers(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.pointers(String::new(), &mut out);
        out
    }

    fn pointers(&self, at: String, out: &mut Vec<String>) {
        match self {
            Template::Literal(_) => {}
            Template::Whole(_) | Template::Parts(_) => out.push(at),
            Template::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    item.pointers(format!("{at}/{index}"), out);
                }
            }
            Template::Object(fields) => {
                for (key, item) in fields {
                    let escaped = key.replace('~', "~0").replace('/', "~1");
                    item.pointers(format!("{at}/{escaped}"), out);
                }
            }
        }
    }

    /// The value with templated strings replaced by `placeholder`
    /// (validation at load).
    pub fn skeleton(&self) -> Value {
        match self {
            Template::Literal(value) => value.clone(),
            Template::Whole(expr) => Value::String(format!("{{{{ {} }}}}", expr.text())),
            Template::Parts(_) => Value::String("(templated)".into()),
            Template::Array(items) => Value::Array(items.iter().map(Template::skeleton).collect()),
            Template::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(key, item)| (key.clone(), item.skeleton()))
                    .collect(),
            ),
        }
    }

    /// Renders with the run's variables.
    pub fn render(&self, scope: &Scope<'_>) -> Result<Value, String> {
        match self {
            Template::Literal(value) => Ok(value.clone()),
            Template::Whole(expr) => expr.eval(scope),
            Template::Parts(parts) => {
                let mut out = String::new();
                for part in parts {
                    match part {
                        Part::Text(text) => out.push_str(text),
                        Part::Expr(expr) => match expr.eval(scope)? {
                            Value::String(s) => out.push_str(&s),
                            Value::Number(n) => out.push_str(&n.to_string()),
                            Value::Bool(b) => out.push_str(&b.to_string()),
                            other => {
                                return Err(format!(
                                    "{:?} answered {}, which cannot go into text",
                                    expr.text(),
                                    kind_of(&other)
                                ))
                            }
                        },
                    }
                    if out.len() > MAX_RENDERED_BYTES {
                        return Err(format!(
                            "rendered text longer than {MAX_RENDERED_BYTES} bytes"
                        ));
                    }
                }
                Ok(Value::String(out))
            }
            Template::Array(items) => Ok(Value::Array(
                items
                    .iter()
                    .map(|item| item.render(scope))
                    .collect::<Result<_, _>>()?,
            )),
            Template::Object(fields) => {
                let mut object = serde_json::Map::new();
                for (key, item) in fields {
                    object.insert(key.clone(), item.render(scope)?);
                }
                Ok(Value::Object(object))
            }
        }
    }

    /// Renders a text template to a string.
    pub fn render_text(&self, scope: &Scope<'_>) -> Result<String, String> {
        match self.render(scope)? {
            Value::String(text) => Ok(text),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            other => Err(format!("answered {}, not text", kind_of(&other))),
        }
    }
}

fn parse_string(text: &str) -> Result<Template, String> {
    let mut parts = Vec::new();
    let mut rest = text;
    let mut literal = String::new();
    loop {
        let braces = rest.find("{{");
        let dollar = rest.find("${");
        let (start, is_braces) = match (braces, dollar) {
            (None, None) => break,
            (Some(b), Some(d)) if d < b => (d, false),
            (Some(b), _) => (b, true),
            (None, Some(d)) => (d, false),
        };
        literal.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let close = if is_braces { "}}" } else { "}" };
        let Some(end) = after.find(close) else {
            return Err(format!(
                "{:?} opens {} without a closing {close}",
                text,
                if is_braces { "{{" } else { "${" }
            ));
        };
        let inner = after[..end].trim();
        let expr = if is_braces {
            Expr::compile(inner)?
        } else {
            if !is_identifier(inner) {
                return Err(format!(
                    "${{{inner}}} in {text:?} is not a variable name (write {{{{ EXPR }}}} for expressions)"
                ));
            }
            Expr::compile(&format!("vars.{inner}"))?
        };
        if !literal.is_empty() {
            parts.push(Part::Text(std::mem::take(&mut literal)));
        }
        parts.push(Part::Expr(expr));
        rest = &after[end + close.len()..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        parts.push(Part::Text(literal));
    }
    Ok(match parts.as_slice() {
        [] => Template::Literal(Value::String(String::new())),
        [Part::Text(_)] => Template::Literal(Value::String(text.to_owned())),
        [Part::Expr(expr)] => Template::Whole(expr.clone()),
        _ => Template::Parts(parts),
    })
}

/// A variable or step name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope_eval(text: &str, vars: Value) -> Result<Value, String> {
        let vars: BTreeMap<String, Value> = serde_json::from_value(vars).unwrap();
        let ticket = json!({"context": {"slo": "latency"}});
        Template::parse(&Value::String(text.into()))
            .map_err(|(_, m)| m)?
            .render(&Scope {
                vars: &vars,
                ticket: &ticket,
            })
    }

    #[test]
    fn whole_templates_keep_their_type() {
        assert_eq!(
            scope_eval("{{ vars.limit * 2 }}", json!({"limit": 100})),
            Ok(json!(200))
        );
        assert_eq!(
            scope_eval("{{ double(vars.limit) * 1.5 }}", json!({"limit": 100})),
            Ok(json!(150))
        );
        assert_eq!(
            scope_eval("{{ vars.r * 2.0 }}", json!({"r": 0.25})),
            Ok(json!(0.5))
        );
    }

    #[test]
    fn parts_render_to_text() {
        assert_eq!(
            scope_eval(
                "surge_${tenant}_{{ vars.n + 1 }}",
                json!({"tenant": "acme", "n": 1})
            ),
            Ok(json!("surge_acme_2"))
        );
        assert_eq!(
            scope_eval("{{ ticket.context.slo }}!", json!({})),
            Ok(json!("latency!"))
        );
        assert!(scope_eval("${missing}", json!({})).is_err());
        assert!(scope_eval("x {{ vars.m }}", json!({"m": {"a": 1}})).is_err());
    }

    #[test]
    fn strings_extension_and_macros_work() {
        assert_eq!(
            scope_eval(
                "{{ vars.key.split('tenant=')[1].split('#')[0].split('|')[0] }}",
                json!({"key": "api|tenant=acme|path=/x#tenant_per_second"})
            ),
            Ok(json!("acme"))
        );
        assert_eq!(
            scope_eval(
                "{{ vars.limits.filter(l, l.name == 'b')[0].rpu }}",
                json!({"limits": [{"name": "a", "rpu": 1}, {"name": "b", "rpu": 2}]})
            ),
            Ok(json!(2))
        );
    }

    #[test]
    fn bad_templates_are_refused() {
        assert!(Template::parse_text("{{ vars.x ").is_err());
        assert!(Template::parse_text("${a.b}").is_err());
        assert!(Template::parse_text("{{ 1 + }}").is_err());
    }

    #[test]
    fn var_names_are_found() {
        let expr = Expr::compile("vars.a > 1 && vars['b'] == 'x' && ticket.c").unwrap();
        assert_eq!(
            expr.var_names().into_iter().collect::<Vec<_>>(),
            vec!["a".to_owned(), "b".to_owned()]
        );
    }
}
