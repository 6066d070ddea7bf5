//! From TOML text to [`RawConfig`], with *every* type error and unknown key reported in an
//! admin's words, not only the first one serde meets.
//!
//! serde stops at the first error. So the text is parsed into a TOML table first (a
//! syntax error is reported as such, with its line), then deserialised into the raw
//! structs again and again: each error, located by `serde_path_to_error`, is put into
//! words, its key removed from the table, and the next attempt goes on. The structs in
//! [`super::raw`] stay the one description of the file's keys; nothing here repeats them.

use serde_path_to_error::Segment;

use super::raw::RawConfig;

/// A problem found while reading, and the key it removed (so that validation does not
/// report that key again as missing).
#[derive(Debug)]
pub struct ReadProblem {
    /// `mailbox "support"`, `agent #2`, `smtp`, or empty for the top level.
    pub ctx: String,
    pub key: String,
    pub text: String,
}

/// At most this many keys are removed before giving up (a file of nothing but errors).
const MAX_ROUNDS: usize = 500;

/// The raw configuration with every bad key left out, and what was wrong; or, for a file
/// that is not TOML at all, the syntax error.
pub fn read(text: &str) -> Result<(RawConfig, Vec<ReadProblem>), String> {
    read_as(text)
}

/// [`read`] for another file of raw structs (the `[triage] rules_file`).
pub fn read_as<T: serde::de::DeserializeOwned>(
    text: &str,
) -> Result<(T, Vec<ReadProblem>), String> {
    let mut table: toml::Table = toml::from_str(text)
        .map_err(|e| format!("the file is not valid TOML: {}", e.to_string().trim()))?;
    let mut problems = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let value = toml::Value::Table(table.clone());
        match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(raw) => return Ok((raw, problems)),
            Err(e) => {
                let mut path: Vec<Segment> = e.path().iter().cloned().collect();
                // toml adds "\nin `a.b`" lines of its own; the path says where.
                let message = e.into_inner().to_string();
                let message = message
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                // An unknown key is named in the message; the path may stop at its table.
                if let Some(unknown) = unknown_field(&message)
                    && !matches!(path.last(), Some(Segment::Map { key }) if *key == unknown)
                {
                    path.push(Segment::Map { key: unknown });
                }
                let problem = describe(&table, &path, &message);
                if !remove(&mut table, &path) {
                    problems.push(problem);
                    return Err(problems
                        .iter()
                        .map(ReadProblem::to_string)
                        .collect::<Vec<_>>()
                        .join("; "));
                }
                problems.push(problem);
            }
        }
    }
    Err("too many problems in the configuration to go on".to_string())
}

impl std::fmt::Display for ReadProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.ctx.is_empty() {
            write!(f, "{}", self.text)
        } else {
            write!(f, "{}: {}", self.ctx, self.text)
        }
    }
}

/// `unknown field `prot`, expected ...` → `prot`.
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_string())
}

/// The keys serde expected, from `..., expected one of `a`, `b`` or `expected `a``.
fn expected_keys(message: &str) -> Vec<String> {
    let Some((_, list)) = message.split_once("expected ") else {
        return Vec::new();
    };
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// Where a path points, as the validation messages name it, and the key.
fn place(table: &toml::Table, path: &[Segment]) -> (String, String) {
    let key = match path.last() {
        Some(Segment::Map { key }) => key.clone(),
        Some(Segment::Seq { index }) => format!("item {}", index + 1),
        _ => String::new(),
    };
    let section = match path.first() {
        Some(Segment::Map { key }) => key.as_str(),
        _ => "",
    };
    if path.len() < 2 {
        return (String::new(), key);
    }
    let ctx = match (section, path.get(1)) {
        ("mailbox", Some(Segment::Seq { index })) => {
            let name = table
                .get("mailbox")
                .and_then(|m| m.as_array())
                .and_then(|a| a.get(*index))
                .and_then(|m| m.get("name"))
                .and_then(|n| n.as_str())
                .map_or_else(|| format!("#{}", index + 1), str::to_string);
            format!("mailbox {name:?}")
        }
        ("agent", Some(Segment::Seq { index })) => format!("agent #{}", index + 1),
        ("rule", Some(Segment::Seq { index })) => table
            .get("rule")
            .and_then(|m| m.as_array())
            .and_then(|a| a.get(*index))
            .and_then(|m| m.get("name"))
            .and_then(|n| n.as_str())
            .filter(|n| !n.trim().is_empty())
            .map_or_else(|| format!("rule #{}", index + 1), |n| format!("rule {n:?}")),
        ("channel", Some(Segment::Map { key: kind })) => match path.get(2) {
            Some(Segment::Seq { index }) if path.len() > 3 => {
                let account = table
                    .get("channel")
                    .and_then(|c| c.get(kind))
                    .and_then(|m| m.as_array())
                    .and_then(|a| a.get(*index))
                    .and_then(|m| m.get("account"))
                    .and_then(|n| n.as_str())
                    .filter(|n| !n.trim().is_empty())
                    .map_or_else(|| format!("#{}", index + 1), |n| format!("{n:?}"));
                format!("channel.{kind} {account}")
            }
            _ => "channel".to_string(),
        },
        (s, _) => s.to_string(),
    };
    // A list's item: name the list key, not "item N".
    let key = match (
        path.last(),
        path.len().checked_sub(2).and_then(|i| path.get(i)),
    ) {
        (Some(Segment::Seq { index }), Some(Segment::Map { key: list })) if path.len() > 2 => {
            format!("{list} (item {})", index + 1)
        }
        _ => key,
    };
    (ctx, key)
}

fn describe(table: &toml::Table, path: &[Segment], message: &str) -> ReadProblem {
    let (ctx, key) = place(table, path);
    let text = if let Some(unknown) = unknown_field(message) {
        let options = expected_keys(message);
        let best = options
            .iter()
            .map(|o| (strsim::jaro_winkler(&unknown, o), o))
            .filter(|(score, _)| *score >= 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, o)| o.clone());
        let top_level = ctx.is_empty();
        match (top_level, best) {
            (true, Some(b)) => format!("unknown section [{unknown}]; did you mean [{b}]?"),
            (true, None) => format!(
                "unknown section [{unknown}]; the sections are {}",
                options
                    .iter()
                    .map(|o| format!("[{o}]"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            (false, Some(b)) => format!("unknown key {unknown:?}; did you mean {b:?}?"),
            (false, None) => format!(
                "unknown key {unknown:?}; the keys here are {}",
                options.join(", ")
            ),
        }
    } else if let Some(rest) = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
    {
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        format!(
            "{key} must be {}, not {}",
            expected_words(expected),
            found_words(found)
        )
    } else {
        format!("{key}: {message}")
    };
    ReadProblem { ctx, key, text }
}

fn expected_words(expected: &str) -> String {
    match expected.trim() {
        "i64" | "i32" | "i16" | "i8" => "a number".into(),
        "u64" | "u32" | "u16" | "u8" | "usize" => "a whole number, 0 or more".into(),
        "a boolean" => "true or false".into(),
        "a string" => "text in quotes".into(),
        "a sequence" => "a list in brackets, like [\"a\", \"b\"]".into(),
        e if e.starts_with("struct ") => "a section of keys".into(),
        e => e.to_string(),
    }
}

fn found_words(found: &str) -> String {
    let found = found.trim();
    let quoted = |s: &str| s.trim_matches('`').to_string();
    if let Some(s) = found.strip_prefix("string ") {
        format!("the text {s}")
    } else if let Some(n) = found.strip_prefix("integer ") {
        format!("the number {}", quoted(n))
    } else if let Some(n) = found.strip_prefix("floating point ") {
        format!("the number {}", quoted(n))
    } else if let Some(b) = found.strip_prefix("boolean ") {
        quoted(b)
    } else if found == "sequence" {
        "a list".into()
    } else if found == "map" {
        "a section".into()
    } else {
        found.to_string()
    }
}

/// Removes the key `path` ends in (the nearest map key); false when nothing was removed.
fn remove(table: &mut toml::Table, path: &[Segment]) -> bool {
    let Some(last_map) = path.iter().rposition(|s| matches!(s, Segment::Map { .. })) else {
        return false;
    };
    let Some(Segment::Map { key }) = path.get(last_map) else {
        return false;
    };
    let Some(parent) = path.get(..last_map) else {
        return false;
    };
    let mut here: &mut toml::Table = table;
    let mut i = 0;
    while let Some(seg) = parent.get(i) {
        let next = match seg {
            Segment::Map { key } => here.get_mut(key),
            _ => return false,
        };
        here = match (next, parent.get(i + 1)) {
            (Some(toml::Value::Table(t)), _) => {
                i += 1;
                t
            }
            (Some(toml::Value::Array(a)), Some(Segment::Seq { index })) => {
                match a.get_mut(*index) {
                    Some(toml::Value::Table(t)) => {
                        i += 2;
                        t
                    }
                    _ => return false,
                }
            }
            _ => return false,
        };
    }
    here.remove(key).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        read(text)
            .unwrap()
            .1
            .iter()
            .map(ReadProblem::to_string)
            .collect()
    }

    #[test]
    fn type_errors_and_unknown_keys_are_all_reported_in_words() {
        let p = problems(
            r#"
[[mailbox]]
name = "support"
host = "imap.example.com"
port = "10143"
prot = 5

[smtp]
host = "smtp.example.com"
port = 25
rate_per_minute = -3

[smpt]
host = "x"

[autoreply]
enabled = "yes"
"#,
        );
        assert!(
            p.contains(
                &"mailbox \"support\": port must be a number, not the text \"10143\"".to_string()
            ),
            "{p:#?}"
        );
        assert!(
            p.iter().any(|x| x
                .starts_with("mailbox \"support\": unknown key \"prot\"; did you mean \"port\"")),
            "{p:#?}"
        );
        assert!(
            p.contains(&"unknown section [smpt]; did you mean [smtp]?".to_string()),
            "{p:#?}"
        );
        assert!(
            p.contains(
                &"autoreply: enabled must be true or false, not the text \"yes\"".to_string()
            ),
            "{p:#?}"
        );
        assert!(
            p.iter()
                .any(|x| x.starts_with("smtp: rate_per_minute must be a whole number")),
            "{p:#?}"
        );
        assert_eq!(p.len(), 5, "{p:#?}");
    }

    #[test]
    fn a_syntax_error_is_one_problem_with_its_line() {
        let e = read("[smtp]\nhost = \n").unwrap_err();
        assert!(e.contains("not valid TOML") && e.contains("line 2"), "{e}");
    }
}
