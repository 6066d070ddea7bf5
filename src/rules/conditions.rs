//! The conditions of a rule's `when` table, and how each is tested.

use std::cell::OnceCell;

use regex::Regex;

use super::keywords::Hits;
use super::{Facts, Signals};

/// The deepest nesting of `all`/`any`/`not` a configuration may use.
pub const MAX_DEPTH: usize = 8;

/// A keyword as written in a rule; `id` is its place in the rule set's automaton,
/// assigned by [`super::RuleSet::new`].
#[derive(Debug, Clone, PartialEq)]
pub struct Keyword {
    pub text: String,
    pub id: usize,
}

impl Keyword {
    pub fn new(text: impl Into<String>) -> Keyword {
        Keyword {
            text: text.into(),
            id: usize::MAX,
        }
    }
}

/// `header = { name = "X-Mailer", regex = "..." }`: some header of that name (any case)
/// has a value the regex finds a match in. The regex is used as written (add `(?i)` for
/// case-insensitive).
#[derive(Debug, Clone)]
pub struct HeaderCond {
    /// Lower-case.
    pub name: String,
    pub regex: Regex,
}

/// One condition. A `when` table with several keys is an [`Cond::All`] of them.
#[derive(Debug, Clone)]
pub enum Cond {
    /// Some keyword occurs in the subject or text (see [`super::keywords`]).
    AnyKeywords(Vec<Keyword>),
    /// Every keyword occurs.
    AllKeywords(Vec<Keyword>),
    Header(HeaderCond),
    /// The sender is one of these addresses (lower-case).
    Sender(Vec<String>),
    /// The sender's domain is one of these, or a subdomain of one (lower-case).
    SenderDomain(Vec<String>),
    /// The channel is one of these (lower-case).
    Channel(Vec<String>),
    /// The account is one of these (any case); no account never matches.
    Account(Vec<String>),
    /// The detected language is one of these ISO 639-1 codes (lower-case).
    Language(Vec<String>),
    /// The customer's tier is one of these (any case); an unknown tier never matches.
    Tier(Vec<String>),
    /// Sentiment strictly below.
    SentimentBelow(f64),
    /// Sentiment strictly above.
    SentimentAbove(f64),
    FirstMessage(bool),
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
}

/// What a condition is tested against.
pub(crate) struct Ctx<'a, 'f> {
    pub facts: &'a Facts<'f>,
    pub signals: &'a Signals,
    pub hits: &'a Hits,
    /// Parsed on first use.
    pub headers: OnceCell<Vec<(String, String)>>,
}

impl Ctx<'_, '_> {
    fn headers(&self) -> &[(String, String)] {
        self.headers.get_or_init(|| {
            self.facts
                .raw
                .map(super::headers::parse)
                .unwrap_or_default()
        })
    }
}

fn one_of(list: &[String], value: &str) -> bool {
    list.iter().any(|x| x.eq_ignore_ascii_case(value))
}

impl Cond {
    pub(crate) fn holds(&self, ctx: &Ctx<'_, '_>) -> bool {
        let f = ctx.facts;
        match self {
            Cond::AnyKeywords(ks) => ks.iter().any(|k| ctx.hits.contains(k.id)),
            Cond::AllKeywords(ks) => ks.iter().all(|k| ctx.hits.contains(k.id)),
            Cond::Header(h) => ctx
                .headers()
                .iter()
                .any(|(n, v)| n.eq_ignore_ascii_case(&h.name) && h.regex.is_match(v)),
            Cond::Sender(list) => one_of(list, f.sender.trim()),
            Cond::SenderDomain(list) => {
                let domain = f
                    .sender
                    .rsplit_once('@')
                    .map_or("", |(_, d)| d)
                    .trim()
                    .trim_end_matches('.')
                    .to_lowercase();
                !domain.is_empty()
                    && list.iter().any(|d| {
                        domain == *d
                            || domain
                                .strip_suffix(d.as_str())
                                .is_some_and(|rest| rest.ends_with('.'))
                    })
            }
            Cond::Channel(list) => one_of(list, f.channel),
            Cond::Account(list) => f.account.is_some_and(|a| one_of(list, a)),
            Cond::Language(list) => ctx.signals.language.is_some_and(|l| one_of(list, l)),
            Cond::Tier(list) => f.tier.is_some_and(|t| one_of(list, t)),
            Cond::SentimentBelow(x) => ctx.signals.sentiment < *x,
            Cond::SentimentAbove(x) => ctx.signals.sentiment > *x,
            Cond::FirstMessage(b) => f.first_message == *b,
            Cond::All(cs) => cs.iter().all(|c| c.holds(ctx)),
            Cond::Any(cs) => cs.iter().any(|c| c.holds(ctx)),
            Cond::Not(c) => !c.holds(ctx),
        }
    }

    /// Calls `f` on this condition and every one nested in it.
    pub fn visit_mut(&mut self, f: &mut dyn FnMut(&mut Cond)) {
        f(self);
        match self {
            Cond::All(cs) | Cond::Any(cs) => {
                for c in cs {
                    c.visit_mut(f);
                }
            }
            Cond::Not(c) => c.visit_mut(f),
            _ => {}
        }
    }
}
