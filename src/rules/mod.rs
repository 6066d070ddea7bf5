//! Triage, pure: what a new customer message is about, how urgent, where it goes, and
//! whether a person must see it before any bot does. No I/O, no database, no clock.
//!
//! Two steps per message:
//! 1. [`RuleSet::signals`] reads the text once: its language ([`language`]), its
//!    sentiment in [-1, 1] ([`sentiment`]) and a forced-human match ([`forced`]).
//! 2. [`RuleSet::evaluate`] runs the configured `[[rule]]`s over the message's
//!    [`Facts`] and those signals, in file order, into one [`Verdict`].
//!
//! How rules combine (like a firewall's rule list):
//! - a rule fires when every condition in its `when` holds (no `when`: always);
//! - the **first** rule that sets `category`, `priority`, `team`, `agent` or `sla` wins
//!   that field; later rules cannot override it;
//! - `tags` and `suggest_macros` accumulate (each value once, in order); `forced_human`,
//!   `suppress_ack` and `no_bot` are sticky once a fired rule sets them;
//! - a fired rule with `stop = true` ends evaluation;
//! - a forced-human match (from the signals, or from a fired rule with
//!   `forced_human = true`) raises the priority to at least `high` and sets `no_bot`.
//!
//! Keywords of all rules are compiled into one automaton, run once per message; the
//! header block of the raw message is parsed only when a header condition is reached.
//! Bounds against hostile mail: keywords and forced-human entries see the first
//! [`keywords::MAX_SCAN_BYTES`] of subject and text, sentiment the first
//! [`sentiment::SAMPLE_BYTES`], language the first [`language::SAMPLE_BYTES`], header
//! conditions the first [`headers::MAX_HEADERS`] headers within
//! [`headers::MAX_HEADER_BYTES`].

pub mod calendar;
pub mod conditions;
pub mod forced;
pub mod headers;
pub mod keywords;
pub mod language;
pub mod routing;
pub mod sentiment;
pub mod sla;
// (calendar, sla and routing join here.)

use std::cell::OnceCell;
use std::collections::HashMap;

use serde::Serialize;

use crate::domain::Priority;

pub use conditions::{Cond, HeaderCond, Keyword};
pub use forced::{ForcedList, ForcedMatch};
pub use sentiment::ZhLexicon;

/// The default for `[triage] negative_alert_below`: sentiment below this is "strongly
/// negative" (a red alert on a public channel; distress with an account or money word).
pub const DEFAULT_NEGATIVE_ALERT_BELOW: f64 = -0.6;

/// What a fired rule does. Unset fields do nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Actions {
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub priority: Option<Priority>,
    pub team: Option<String>,
    pub agent: Option<String>,
    pub sla: Option<String>,
    pub forced_human: bool,
    pub suppress_ack: bool,
    pub no_bot: bool,
    pub suggest_macros: Vec<String>,
    pub stop: bool,
}

/// One `[[rule]]`.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    /// None: the rule always fires.
    pub when: Option<Cond>,
    pub actions: Actions,
}

/// The facts about one message that rules may test.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub subject: &'a str,
    /// The customer's new text (quoted history already removed by the caller).
    pub text: &'a str,
    /// The raw message, for header conditions (None for chat channels).
    pub raw: Option<&'a [u8]>,
    /// The sender's address, lower-case.
    pub sender: &'a str,
    pub channel: &'a str,
    pub account: Option<&'a str>,
    /// The customer's tier ("standard", "vip"...), when known.
    pub tier: Option<&'a str>,
    /// The message opens its ticket.
    pub first_message: bool,
}

/// What the text itself says, computed once per message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Signals {
    /// ISO 639-1 code, when the language can be told.
    pub language: Option<&'static str>,
    /// In [-1, 1]; 0 for neutral or unknown.
    pub sentiment: f64,
    pub forced: Option<ForcedMatch>,
}

/// The outcome of triage for one message.
#[derive(Default, Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub priority: Option<Priority>,
    pub team: Option<String>,
    pub agent: Option<String>,
    pub sla: Option<String>,
    /// Why a person must handle this: the signals' match, else topic `rule` with the
    /// first forced rule's name as `term`.
    pub forced_human: Option<ForcedMatch>,
    pub suppress_ack: bool,
    pub no_bot: bool,
    pub suggest_macros: Vec<String>,
    /// The names of the rules that fired, in order.
    pub rules_fired: Vec<String>,
}

/// Order of urgency (the domain enum has no `Ord`).
pub fn priority_rank(p: Priority) -> u8 {
    match p {
        Priority::Low => 0,
        Priority::Normal => 1,
        Priority::High => 2,
        Priority::Urgent => 3,
    }
}

impl Verdict {
    /// Whether this message needs someone now: urgent priority, a forced-human match, or
    /// strongly negative sentiment (below `threshold`, see
    /// [`RuleSet::negative_alert_below`]) on a public channel (anything but email).
    pub fn is_red_alert(&self, signals: &Signals, public_channel: bool, threshold: f64) -> bool {
        self.priority == Some(Priority::Urgent)
            || self.forced_human.is_some()
            || (public_channel && signals.sentiment < threshold)
    }
}

/// The compiled rules, forced-human list and sentiment lexicon.
#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Vec<Rule>,
    keywords: keywords::KeywordIndex,
    forced: ForcedList,
    zh: ZhLexicon,
    negative_alert_below: f64,
    needs_headers: bool,
    needs_keywords: bool,
}

impl Default for RuleSet {
    /// No rules; the shipped forced-human list and lexicon.
    fn default() -> Self {
        RuleSet::new(
            Vec::new(),
            ForcedList::default(),
            ZhLexicon::default(),
            DEFAULT_NEGATIVE_ALERT_BELOW,
        )
    }
}

impl RuleSet {
    /// Compiles `rules` (in evaluation order): every keyword of every rule goes into one
    /// automaton, each [`Keyword`] gets its id there.
    pub fn new(
        mut rules: Vec<Rule>,
        forced: ForcedList,
        zh: ZhLexicon,
        negative_alert_below: f64,
    ) -> RuleSet {
        let mut ids: HashMap<String, usize> = HashMap::new();
        let mut texts: Vec<String> = Vec::new();
        let mut needs_headers = false;
        for rule in &mut rules {
            if let Some(c) = &mut rule.when {
                c.visit_mut(&mut |c| match c {
                    Cond::AnyKeywords(ks) | Cond::AllKeywords(ks) => {
                        for k in ks {
                            let text = keywords::normalise(&k.text);
                            k.id = *ids.entry(text.clone()).or_insert_with(|| {
                                texts.push(text);
                                texts.len() - 1
                            });
                        }
                    }
                    Cond::Header(_) => needs_headers = true,
                    _ => {}
                });
            }
        }
        RuleSet {
            rules,
            needs_keywords: !texts.is_empty(),
            keywords: keywords::KeywordIndex::new(&texts),
            forced,
            zh,
            negative_alert_below,
            needs_headers,
        }
    }

    /// The number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules, in evaluation order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The categories the rules can set, distinct, in rule order.
    pub fn categories(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in self
            .rules
            .iter()
            .filter_map(|r| r.actions.category.as_ref())
        {
            if !out.contains(c) {
                out.push(c.clone());
            }
        }
        out
    }

    /// Whether some rule tests a header (so the caller should pass `Facts::raw`).
    pub fn needs_headers(&self) -> bool {
        self.needs_headers
    }

    /// `[triage] negative_alert_below`.
    pub fn negative_alert_below(&self) -> f64 {
        self.negative_alert_below
    }

    /// Language, sentiment and forced-human match of a message's subject and new text.
    pub fn signals(&self, subject: &str, text: &str) -> Signals {
        let language = language::detect(text).or_else(|| language::detect(subject));
        let both = format!(
            "{}\n{}",
            language::head(subject, 1024),
            language::head(text, sentiment::SAMPLE_BYTES)
        );
        let sentiment = sentiment::score(&both, &self.zh);
        let forced = self
            .forced
            .check(subject, text, sentiment, self.negative_alert_below);
        Signals {
            language,
            sentiment,
            forced,
        }
    }

    /// Runs the rules over one message (see the module doc for how they combine).
    pub fn evaluate(&self, facts: &Facts<'_>, signals: &Signals) -> Verdict {
        let hits = if self.needs_keywords {
            self.keywords.scan(&[facts.subject, facts.text])
        } else {
            keywords::Hits::default()
        };
        let ctx = conditions::Ctx {
            facts,
            signals,
            hits: &hits,
            headers: OnceCell::new(),
        };
        let mut v = Verdict::default();
        let mut rule_forced: Option<&str> = None;
        for rule in &self.rules {
            if !rule.when.as_ref().is_none_or(|c| c.holds(&ctx)) {
                continue;
            }
            let a = &rule.actions;
            v.rules_fired.push(rule.name.clone());
            set_once(&mut v.category, &a.category);
            set_once(&mut v.team, &a.team);
            set_once(&mut v.agent, &a.agent);
            set_once(&mut v.sla, &a.sla);
            if v.priority.is_none() {
                v.priority = a.priority;
            }
            add_each(&mut v.tags, &a.tags);
            add_each(&mut v.suggest_macros, &a.suggest_macros);
            v.suppress_ack |= a.suppress_ack;
            v.no_bot |= a.no_bot;
            if a.forced_human && rule_forced.is_none() {
                rule_forced = Some(&rule.name);
            }
            if a.stop {
                break;
            }
        }
        v.forced_human = signals.forced.clone().or_else(|| {
            rule_forced.map(|name| ForcedMatch {
                topic: "rule",
                term: name.to_string(),
            })
        });
        if v.forced_human.is_some() {
            v.no_bot = true;
            if v.priority
                .is_none_or(|p| priority_rank(p) < priority_rank(Priority::High))
            {
                v.priority = Some(Priority::High);
            }
        }
        v
    }
}

fn set_once(field: &mut Option<String>, value: &Option<String>) {
    if field.is_none() {
        field.clone_from(value);
    }
}

fn add_each(list: &mut Vec<String>, values: &[String]) {
    for x in values {
        if !list.contains(x) {
            list.push(x.clone());
        }
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
