//! Forced-human topics: messages a bot must never answer alone (account takeover, fraud,
//! legal threats, injury, self-harm, privacy requests). The defaults ship as
//! `data/forced-human.txt` (its header explains the format); `[triage]
//! forced_human_terms` and `forced_human_patterns` add entries of topic `custom`.
//!
//! Recall comes first: negation is ignored ("I was not scammed" matches) and the
//! patterns allow gaps ("someone hacked into my old account"). A message that matches
//! nothing listed but is strongly negative (below the configured threshold) and names
//! an account or money word from the `[distress]` section matches too, with topic
//! `distress`.

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use serde::Serialize;

use super::keywords::{self, KeywordIndex};

/// The shipped list.
pub const DEFAULT_FORCED_HUMAN: &str = include_str!("../../data/forced-human.txt");

/// The topics a match can have. `custom` is an entry from the configuration, `rule` a
/// rule with `forced_human = true`, `distress` the sentiment signal.
pub const TOPICS: &[&str] = &[
    "account_takeover",
    "fraud",
    "legal",
    "injury",
    "self_harm",
    "privacy",
    "custom",
    "rule",
    "distress",
];

/// The longest `term` a match reports (in characters).
const MAX_TERM_CHARS: usize = 120;
/// Compiled size limit of one pattern and of the pattern set.
const REGEX_SIZE_LIMIT: usize = 32 * 1024 * 1024;

/// Why a message must go to a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForcedMatch {
    /// One of [`TOPICS`].
    pub topic: &'static str,
    /// The text that matched (lower-cased), the rule's name for `rule`.
    pub term: String,
}

/// The compiled list.
#[derive(Debug, Clone)]
pub struct ForcedList {
    terms: KeywordIndex,
    term_topics: Vec<&'static str>,
    patterns: Vec<(&'static str, Regex)>,
    set: Option<RegexSet>,
    distress: KeywordIndex,
}

impl Default for ForcedList {
    fn default() -> Self {
        // A test keeps the shipped list valid; should it ever fail, the list is empty
        // rather than the daemon down.
        ForcedList::parse(DEFAULT_FORCED_HUMAN, &[], &[]).unwrap_or_else(|_| ForcedList {
            terms: KeywordIndex::default(),
            term_topics: Vec::new(),
            patterns: Vec::new(),
            set: None,
            distress: KeywordIndex::default(),
        })
    }
}

fn static_topic(name: &str) -> Option<&'static str> {
    TOPICS.iter().copied().find(|t| *t == name)
}

/// `\b` as an ASCII word boundary: with a Unicode one the fast regex engines give up on
/// any non-ASCII text (Chinese, accents) and the slow one runs. A letter outside ASCII
/// then counts as a boundary, which can only make a pattern match more often.
fn ascii_boundaries(pattern: &str) -> String {
    pattern.replace("\\b", "(?-u:\\b)")
}

fn compile(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(&ascii_boundaries(pattern))
        .case_insensitive(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| one_line(&e.to_string()))
}

/// A regex error on one line (they come as a multi-line picture).
pub fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

impl ForcedList {
    /// Reads the list format of `data/forced-human.txt`, plus `extra_terms` and
    /// `extra_patterns` (topic `custom`). Every problem is returned: a list line by its
    /// number, an extra by its key and position.
    pub fn parse(
        text: &str,
        extra_terms: &[String],
        extra_patterns: &[String],
    ) -> Result<ForcedList, Vec<String>> {
        let mut problems = Vec::new();
        let mut terms: Vec<String> = Vec::new();
        let mut term_topics = Vec::new();
        let mut patterns = Vec::new();
        let mut distress: Vec<String> = Vec::new();
        let mut topic: Option<&'static str> = None;
        for (n, line) in text.lines().enumerate() {
            let n = n + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                match static_topic(name.trim()) {
                    Some(t) if !matches!(t, "custom" | "rule") => topic = Some(t),
                    _ => problems.push(format!(
                        "line {n}: unknown topic [{}]; the topics are account_takeover, fraud, legal, injury, self_harm, privacy, distress",
                        name.trim()
                    )),
                }
                continue;
            }
            let Some(t) = topic else {
                problems.push(format!("line {n}: an entry before any [topic]"));
                continue;
            };
            if let Some(p) = line.strip_prefix("re:") {
                if t == "distress" {
                    problems.push(format!("line {n}: [distress] holds words, not patterns"));
                    continue;
                }
                match compile(p.trim()) {
                    Ok(re) => patterns.push((t, re)),
                    Err(e) => problems.push(format!("line {n}: bad pattern: {e}")),
                }
            } else if keywords::normalise(line)
                .trim_end_matches('*')
                .trim()
                .is_empty()
            {
                problems.push(format!("line {n}: an empty term"));
            } else if t == "distress" {
                distress.push(line.to_string());
            } else {
                terms.push(line.to_string());
                term_topics.push(t);
            }
        }
        for (i, term) in extra_terms.iter().enumerate() {
            if keywords::normalise(term)
                .trim_end_matches('*')
                .trim()
                .is_empty()
            {
                problems.push(format!(
                    "triage: forced_human_terms (item {}) is empty",
                    i + 1
                ));
            } else {
                terms.push(term.clone());
                term_topics.push("custom");
            }
        }
        for (i, p) in extra_patterns.iter().enumerate() {
            match compile(p) {
                Ok(re) => patterns.push(("custom", re)),
                Err(e) => problems.push(format!(
                    "triage: forced_human_patterns (item {}) {p:?} is not a valid regex: {e}",
                    i + 1
                )),
            }
        }
        let set = if patterns.is_empty() {
            None
        } else {
            match RegexSetBuilder::new(patterns.iter().map(|(_, re)| re.as_str().to_string()))
                .case_insensitive(true)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
            {
                Ok(s) => Some(s),
                Err(e) => {
                    problems.push(format!(
                        "the forced-human patterns together are too large: {}",
                        one_line(&e.to_string())
                    ));
                    None
                }
            }
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(ForcedList {
            terms: KeywordIndex::new(&terms),
            term_topics,
            patterns,
            set,
            distress: KeywordIndex::new(&distress),
        })
    }

    /// The first reason found to hand the message to a person: a listed term (the
    /// earliest in the text), else a pattern (in list order), else distress (sentiment
    /// below `threshold` with an account or money word).
    pub fn check(
        &self,
        subject: &str,
        text: &str,
        sentiment: f64,
        threshold: f64,
    ) -> Option<ForcedMatch> {
        let hay = keywords::prepare(&[subject, text]);
        let hits = self.terms.scan_prepared(&hay);
        if let Some(id) = hits.first {
            return Some(ForcedMatch {
                topic: self.term_topics.get(id).copied().unwrap_or("custom"),
                term: self.terms.text(id).to_string(),
            });
        }
        // Most messages match nothing: one pass to say so, the per-pattern pass only then.
        if let Some(set) = &self.set
            && set.is_match(&hay)
            && let Some(i) = set.matches(&hay).iter().next()
            && let Some((topic, re)) = self.patterns.get(i)
        {
            let term = re
                .find(&hay)
                .map(|m| m.as_str().chars().take(MAX_TERM_CHARS).collect())
                .unwrap_or_default();
            return Some(ForcedMatch { topic, term });
        }
        if sentiment < threshold {
            let hits = self.distress.scan_prepared(&hay);
            if let Some(id) = hits.first {
                return Some(ForcedMatch {
                    topic: "distress",
                    term: self.distress.text(id).to_string(),
                });
            }
        }
        None
    }
}

#[cfg(test)]
#[path = "forced_tests.rs"]
mod tests;
