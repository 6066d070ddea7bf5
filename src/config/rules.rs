//! `[[rule]]` and `[triage]` (issue 13): raw TOML to a compiled [`RuleSet`], every
//! problem named by its rule and key (`rule "refund": set.priority "hgih" is not one of
//! low, normal, high, urgent`).
//!
//! A rule, as written in the configuration (see `config/postdesk.example.toml`):
//!
//! ```toml
//! [[rule]]
//! name = "refund"                       # required, unique
//! when.any_keywords = ["refund", "money back", "退款"]
//! set.category = "refund"
//! set.priority = "high"                 # low | normal | high | urgent
//! route.team = "billing"
//! suggest_macros = ["refund-policy"]
//! ```
//!
//! Other keys: `set.tags = [..]`, `route.agent`, `sla = "policy"`, `forced_human`,
//! `suppress_ack`, `no_bot`, `stop` (true/false). `when` keys (all must hold):
//! `any_keywords`, `all_keywords`, `header = { name, regex }`, `headers = [{..}, ..]`,
//! `sender`, `sender_domain`, `channel`, `account`, `language`, `tier` (a string or a
//! list each), `sentiment_below`, `sentiment_above` (-1..1), `first_message`, and
//! `all = [{..}]`, `any = [{..}]`, `not = {..}` nested at most
//! [`crate::rules::conditions::MAX_DEPTH`] levels.
//!
//! `[triage]`: `rules_file` (more `[[rule]]`s, after the configuration file's own, path
//! relative to the configuration file), `forced_human_terms`, `forced_human_patterns`,
//! `sentiment_zh_lexicon` (a file replacing the shipped Chinese lexicon),
//! `negative_alert_below` (default -0.6).

use std::path::Path;
use std::str::FromStr;

use regex::RegexBuilder;

use super::raw::{RawCond, RawRule, RawRulesFile, RawTriage};
use crate::domain::{Channel, Priority};
use crate::rules::conditions::MAX_DEPTH;
use crate::rules::forced::{DEFAULT_FORCED_HUMAN, one_line};
use crate::rules::{
    Actions, Cond, DEFAULT_NEGATIVE_ALERT_BELOW, ForcedList, HeaderCond, Keyword, Rule, RuleSet,
    ZhLexicon,
};

/// Names that rules may refer to. An empty `teams` or `slas` list is not checked (those
/// sections may not be configured at all); `agents` always is.
#[derive(Debug, Clone, Copy, Default)]
pub struct Known<'a> {
    pub teams: &'a [String],
    pub agents: &'a [String],
    pub slas: &'a [String],
}

/// Compiled size limit of one header regex.
const REGEX_SIZE_LIMIT: usize = 4 * 1024 * 1024;

/// Compiles the configuration's rules, then the `rules_file`'s, and the `[triage]`
/// options; problems go to `problems` (the returned set then holds what was valid).
pub fn compile(
    rules: Vec<RawRule>,
    triage: Option<RawTriage>,
    base: &Path,
    known: &Known<'_>,
    problems: &mut Vec<String>,
) -> RuleSet {
    let triage = triage.unwrap_or(RawTriage {
        rules_file: None,
        forced_human_terms: None,
        forced_human_patterns: None,
        sentiment_zh_lexicon: None,
        negative_alert_below: None,
    });
    let mut names: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for (i, r) in rules.into_iter().enumerate() {
        if let Some(rule) = compile_rule(r, i, "", known, &mut names, problems) {
            out.push(rule);
        }
    }
    if let Some(file) = triage
        .rules_file
        .as_deref()
        .filter(|f| !f.trim().is_empty())
    {
        let path = super::resolve(base, file);
        let shown = path.display().to_string();
        match std::fs::read_to_string(&path) {
            Err(e) => problems.push(format!("triage: rules_file {shown}: {e}")),
            Ok(text) => match super::read::read_as::<RawRulesFile>(&text) {
                Err(e) => problems.push(format!("{shown}: {e}")),
                Ok((raw, read_problems)) => {
                    problems.extend(read_problems.iter().map(|p| format!("{shown}: {p}")));
                    let prefix = format!("{shown}: ");
                    for (i, r) in raw.rule.into_iter().enumerate() {
                        if let Some(rule) = compile_rule(r, i, &prefix, known, &mut names, problems)
                        {
                            out.push(rule);
                        }
                    }
                }
            },
        }
    }
    let forced = match ForcedList::parse(
        DEFAULT_FORCED_HUMAN,
        triage.forced_human_terms.as_deref().unwrap_or_default(),
        triage.forced_human_patterns.as_deref().unwrap_or_default(),
    ) {
        Ok(f) => f,
        Err(e) => {
            problems.extend(e);
            ForcedList::default()
        }
    };
    let zh = match triage.sentiment_zh_lexicon.as_deref() {
        None => ZhLexicon::default(),
        Some(p) => {
            let path = super::resolve(base, p);
            let shown = path.display().to_string();
            let parsed = std::fs::read_to_string(&path)
                .map_err(|e| vec![e.to_string()])
                .and_then(|t| ZhLexicon::parse(&t));
            match parsed {
                Ok(z) => z,
                Err(e) => {
                    problems.extend(
                        e.into_iter()
                            .map(|e| format!("triage: sentiment_zh_lexicon {shown}: {e}")),
                    );
                    ZhLexicon::default()
                }
            }
        }
    };
    let threshold = match triage.negative_alert_below {
        None => DEFAULT_NEGATIVE_ALERT_BELOW,
        Some(x) if x.is_finite() && (-1.0..=1.0).contains(&x) => x,
        Some(x) => {
            problems.push(format!(
                "triage: negative_alert_below must be between -1 and 1, not {x}"
            ));
            DEFAULT_NEGATIVE_ALERT_BELOW
        }
    };
    RuleSet::new(out, forced, zh, threshold)
}

/// The closest of `options` to `name`, when close enough to suggest.
fn did_you_mean(name: &str, options: &[String]) -> String {
    options
        .iter()
        .map(|o| {
            (
                strsim::jaro_winkler(&name.to_lowercase(), &o.to_lowercase()),
                o,
            )
        })
        .filter(|(s, _)| *s >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, o)| format!("; did you mean {o:?}?"))
        .unwrap_or_default()
}

fn compile_rule(
    r: RawRule,
    index: usize,
    prefix: &str,
    known: &Known<'_>,
    names: &mut Vec<String>,
    problems: &mut Vec<String>,
) -> Option<Rule> {
    let before = problems.len();
    let name = r.name.unwrap_or_default().trim().to_string();
    let ctx = if name.is_empty() {
        problems.push(format!("{prefix}rule #{}: name is required", index + 1));
        format!("{prefix}rule #{}", index + 1)
    } else {
        format!("{prefix}rule {name:?}")
    };
    if !name.is_empty() {
        if names.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
            problems.push(format!("{ctx}: name is used by two rules"));
        }
        names.push(name.clone());
    }
    let mut p = |msg: String| problems.push(format!("{ctx}: {msg}"));

    let when = r.when.map(|w| cond_table(w, "when", 1, &mut p));
    let mut actions = Actions::default();
    if let Some(set) = r.set {
        actions.category = non_empty(set.category, "set.category", &mut p);
        actions.tags = list(set.tags, "set.tags", &mut p);
        if let Some(pr) = set.priority {
            match Priority::from_str(&pr) {
                Ok(v) => actions.priority = Some(v),
                Err(_) => p(format!(
                    "set.priority {pr:?} is not one of low, normal, high, urgent"
                )),
            }
        }
    }
    if let Some(route) = r.route {
        actions.team = non_empty(route.team, "route.team", &mut p);
        if let Some(t) = &actions.team
            && !known.teams.is_empty()
            && !known.teams.iter().any(|k| k == t)
        {
            p(format!(
                "route.team {t:?} is not a configured team{}",
                did_you_mean(t, known.teams)
            ));
        }
        actions.agent = non_empty(route.agent, "route.agent", &mut p);
        if let Some(a) = &actions.agent
            && !known.agents.iter().any(|k| k.eq_ignore_ascii_case(a))
        {
            p(format!(
                "route.agent {a:?} is not a configured [[agent]]{}",
                did_you_mean(a, known.agents)
            ));
        }
    }
    actions.sla = non_empty(r.sla, "sla", &mut p);
    if let Some(s) = &actions.sla
        && !known.slas.is_empty()
        && !known.slas.iter().any(|k| k == s)
    {
        p(format!(
            "sla {s:?} is not a configured SLA policy{}",
            did_you_mean(s, known.slas)
        ));
    }
    actions.forced_human = r.forced_human.unwrap_or(false);
    actions.suppress_ack = r.suppress_ack.unwrap_or(false);
    actions.no_bot = r.no_bot.unwrap_or(false);
    actions.suggest_macros = list(r.suggest_macros, "suggest_macros", &mut p);
    actions.stop = r.stop.unwrap_or(false);

    (problems.len() == before).then_some(Rule {
        name,
        when,
        actions,
    })
}

fn non_empty(v: Option<String>, key: &str, p: &mut dyn FnMut(String)) -> Option<String> {
    let v = v?.trim().to_string();
    if v.is_empty() {
        p(format!("{key} is empty"));
        return None;
    }
    Some(v)
}

/// A list of non-empty strings, trimmed; each empty item is a problem.
fn list(v: Option<Vec<String>>, key: &str, p: &mut dyn FnMut(String)) -> Vec<String> {
    let mut out = Vec::new();
    for (i, x) in v.unwrap_or_default().into_iter().enumerate() {
        let x = x.trim().to_string();
        if x.is_empty() {
            p(format!("{key} (item {}) is empty", i + 1));
        } else {
            out.push(x);
        }
    }
    out
}

/// A non-empty list (an empty one is a problem: it could never match).
fn values(v: Vec<String>, key: &str, p: &mut dyn FnMut(String)) -> Vec<String> {
    if v.is_empty() {
        p(format!("{key} is an empty list"));
    }
    list(Some(v), key, p)
}

/// One `when`-style table: an [`Cond::All`] of its keys. `depth` is 1 for `when` itself.
fn cond_table(c: RawCond, path: &str, depth: usize, p: &mut dyn FnMut(String)) -> Cond {
    let mut all = Vec::new();
    if depth > MAX_DEPTH {
        p(format!(
            "{path}: conditions are nested deeper than {MAX_DEPTH} levels"
        ));
        return Cond::All(all);
    }
    let key = |k: &str| format!("{path}.{k}");
    for (k, v, any) in [
        ("any_keywords", c.any_keywords, true),
        ("all_keywords", c.all_keywords, false),
    ] {
        let Some(v) = v else { continue };
        if v.is_empty() {
            p(format!("{} is an empty list", key(k)));
        }
        let mut kws = Vec::new();
        for (i, s) in v.into_iter().enumerate() {
            if s.trim().is_empty() {
                p(format!("{} (item {}) is empty", key(k), i + 1));
            } else if s.trim_end_matches('*').trim().is_empty() {
                p(format!("{} (item {}) is only a *", key(k), i + 1));
            } else {
                kws.push(Keyword::new(s));
            }
        }
        all.push(if any {
            Cond::AnyKeywords(kws)
        } else {
            Cond::AllKeywords(kws)
        });
    }
    let mut headers: Vec<(String, _)> = Vec::new();
    if let Some(h) = c.header {
        headers.push((key("header"), h));
    }
    for (i, h) in c.headers.unwrap_or_default().into_iter().enumerate() {
        headers.push((format!("{} (item {})", key("headers"), i + 1), h));
    }
    for (k, h) in headers {
        let name = h.name.unwrap_or_default().trim().to_lowercase();
        if name.is_empty() || name.contains(':') || name.chars().any(char::is_whitespace) {
            p(format!(
                "{k}: name must be a header name, like \"X-Mailer\""
            ));
        }
        match h.regex {
            None => p(format!("{k}: regex is required")),
            Some(re) => match RegexBuilder::new(&re).size_limit(REGEX_SIZE_LIMIT).build() {
                Ok(regex) => all.push(Cond::Header(HeaderCond { name, regex })),
                Err(e) => p(format!(
                    "{k}: regex {re:?} is not valid: {}",
                    one_line(&e.to_string())
                )),
            },
        }
    }
    if let Some(v) = c.sender {
        let v: Vec<String> = values(v.into_vec(), &key("sender"), p)
            .into_iter()
            .map(|s| s.to_lowercase())
            .collect();
        for s in &v {
            if !super::valid_email(s) {
                p(format!("{}: {s:?} is not an email address", key("sender")));
            }
        }
        all.push(Cond::Sender(v));
    }
    if let Some(v) = c.sender_domain {
        let v: Vec<String> = values(v.into_vec(), &key("sender_domain"), p)
            .into_iter()
            .map(|s| s.trim_start_matches(['@', '.']).to_lowercase())
            .collect();
        for d in &v {
            if d.is_empty() || d.contains('@') || d.chars().any(char::is_whitespace) {
                p(format!(
                    "{}: {d:?} is not a domain, like \"example.com\"",
                    key("sender_domain")
                ));
            }
        }
        all.push(Cond::SenderDomain(v));
    }
    if let Some(v) = c.channel {
        let v: Vec<String> = values(v.into_vec(), &key("channel"), p)
            .into_iter()
            .map(|s| s.to_lowercase())
            .collect();
        let known: Vec<String> = Channel::ALL.iter().map(|c| c.to_string()).collect();
        for ch in &v {
            if !known.contains(ch) {
                p(format!(
                    "{}: {ch:?} is not one of {}{}",
                    key("channel"),
                    known.join(", "),
                    did_you_mean(ch, &known)
                ));
            }
        }
        all.push(Cond::Channel(v));
    }
    if let Some(v) = c.account {
        all.push(Cond::Account(values(v.into_vec(), &key("account"), p)));
    }
    if let Some(v) = c.language {
        let v: Vec<String> = values(v.into_vec(), &key("language"), p)
            .into_iter()
            .map(|s| s.to_lowercase())
            .collect();
        for l in &v {
            if l.len() != 2 || !l.chars().all(|c| c.is_ascii_lowercase()) {
                p(format!(
                    "{}: {l:?} is not a two-letter ISO 639-1 code, like \"en\" or \"zh\"",
                    key("language")
                ));
            }
        }
        all.push(Cond::Language(v));
    }
    if let Some(v) = c.tier {
        all.push(Cond::Tier(values(v.into_vec(), &key("tier"), p)));
    }
    for (k, v, below) in [
        ("sentiment_below", c.sentiment_below, true),
        ("sentiment_above", c.sentiment_above, false),
    ] {
        let Some(x) = v else { continue };
        if !x.is_finite() || !(-1.0..=1.0).contains(&x) {
            p(format!("{} must be between -1 and 1, not {x}", key(k)));
        }
        all.push(if below {
            Cond::SentimentBelow(x)
        } else {
            Cond::SentimentAbove(x)
        });
    }
    if let Some(b) = c.first_message {
        all.push(Cond::FirstMessage(b));
    }
    for (k, v, any) in [("all", c.all, false), ("any", c.any, true)] {
        let Some(v) = v else { continue };
        if v.is_empty() {
            p(format!("{} is an empty list", key(k)));
        }
        let subs: Vec<Cond> = v
            .into_iter()
            .enumerate()
            .map(|(i, t)| cond_table(t, &format!("{} (item {})", key(k), i + 1), depth + 1, p))
            .collect();
        all.push(if any {
            Cond::Any(subs)
        } else {
            Cond::All(subs)
        });
    }
    if let Some(n) = c.not {
        all.push(Cond::Not(Box::new(cond_table(
            *n,
            &key("not"),
            depth + 1,
            p,
        ))));
    }
    Cond::All(all)
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
