//! The answer bot's part of intake: what it knows when a batch is decided.
//!
//! The unit of work decides in memory, so everything the bot may need is loaded with the
//! batch ([`BotContext::load`]): for each message that could open a ticket, the search
//! of the knowledge base in the message's language and the pure decision
//! (`kb::bot::decide`), with the answering article and its files; for the batch's known
//! tickets, what the bot did on them before (its answer, a handoff), and what the
//! customer first asked. Whether the bot may answer at all (forced-human, `no_bot`,
//! automated mail, agents' mail) is decided in the unit after triage, because only then
//! is it known.

use std::collections::HashMap;

use anyhow::Result;

use crate::channels::email::compose::OutAttachment;
use crate::domain::{Channel, TicketId};
use crate::intake::{Item, Services};
use crate::kb::bot::{self, Decision, Thresholds};
use crate::kb::index::{Hit, Query};
use crate::store::Conn;
use crate::store::kb::{self, Article, BotState};

/// Files sent with an answer, at most this many bytes together; past it, the answer
/// names them and links nothing (the customer can ask a person).
pub const MAX_ANSWER_ATTACHMENTS: usize = 5 * 1024 * 1024;

/// Candidates searched per question: enough for the margin over the second.
const CANDIDATES: usize = 5;

/// The search result for one message.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The language searched in (the message's).
    pub language: &'static str,
    pub decision: Decision,
    pub hits: Vec<Hit>,
}

/// What the bot knows for one batch.
#[derive(Debug)]
pub struct BotContext {
    /// By the message's Message-ID (as parsed).
    pub candidates: HashMap<String, Candidate>,
    /// Articles the batch may send or name (answers, best guesses, earlier answers).
    pub articles: HashMap<i64, Article>,
    /// The files of the articles that may be sent.
    pub files: HashMap<i64, Vec<OutAttachment>>,
    /// What the bot did on the batch's known tickets, kept current as the batch goes.
    pub states: HashMap<TicketId, BotState>,
    /// The first customer text of the known tickets the bot answered.
    pub asked: HashMap<TicketId, String>,
    pub thresholds: Thresholds,
    pub handoff_words: Vec<String>,
    /// The customer's earlier tickets, newest first, by address as stored: the
    /// handoff summary's history, so the agent need not ask.
    pub history: HashMap<String, kb::History>,
}

impl BotContext {
    /// Loads the bot's view of `items`; `None` when the bot is off (no index, disabled).
    pub async fn load(
        conn: &mut Conn,
        pl: &Services,
        items: &[Item<'_>],
        ticket_ids: &[TicketId],
    ) -> Result<Option<BotContext>> {
        let cfg = pl.config();
        let Some(index) = pl.kb() else {
            return Ok(None);
        };
        // An empty knowledge base is no bot: every ticket would be a "handoff".
        if !cfg.bot.enabled || index.is_empty() {
            return Ok(None);
        }
        let thresholds = Thresholds {
            min_score: cfg.bot.min_score,
            min_margin: cfg.bot.min_margin,
        };
        let own = cfg.own_addresses();
        let agents: Vec<String> = cfg.agents.iter().map(|a| a.email.to_lowercase()).collect();
        let mut ctx = BotContext {
            candidates: HashMap::new(),
            articles: HashMap::new(),
            files: HashMap::new(),
            states: HashMap::new(),
            asked: HashMap::new(),
            thresholds,
            handoff_words: cfg.bot.handoff_words.clone(),
            history: HashMap::new(),
        };
        let mut senders: Vec<String> = Vec::new();
        let mut wanted: Vec<i64> = Vec::new();
        for it in items {
            let p = it.parsed;
            let Some(from) = &p.from else { continue };
            let from = from.address.to_lowercase();
            if p.channel != Channel::Email
                || p.report.is_some()
                || own.contains(&from)
                || agents.contains(&from)
                || p.auto.x_autoreply
            {
                continue;
            }
            // As the customers table keys them (the unit's `customers` map does too).
            if let Some(f) = &p.from {
                senders.push(f.address.clone());
            }
            let text = crate::channels::email::quote::new_text(&p.body_text);
            let question = question_text(&p.subject, text);
            let Some(language) = crate::rules::language::detect(&question) else {
                continue;
            };
            let hits = index.search(&Query {
                text: &question,
                language: Some(language),
                published_only: true,
                limit: CANDIDATES,
            })?;
            let decision = bot::decide(&hits, &thresholds);
            match &decision {
                Decision::Answer { article, .. } => wanted.push(*article),
                Decision::Handoff {
                    best: Some((id, _)),
                    ..
                } => wanted.push(*id),
                Decision::Handoff { .. } => {}
            }
            ctx.candidates.insert(
                p.message_id.clone(),
                Candidate {
                    language,
                    decision,
                    hits,
                },
            );
        }
        ctx.states = kb::bot_states(conn, ticket_ids).await?;
        senders.sort();
        senders.dedup();
        ctx.history = kb::histories(conn, &senders).await?;
        for (ticket, state) in &ctx.states {
            if let Some(a) = state.article {
                wanted.push(a);
                if state.handoff.is_none()
                    && let Some((_, text, _)) = kb::first_customer_text(conn, *ticket).await?
                {
                    ctx.asked.insert(*ticket, text);
                }
            }
        }
        wanted.sort_unstable();
        wanted.dedup();
        for a in kb::articles_by_ids(conn, &wanted).await? {
            ctx.articles.insert(a.id, a);
        }
        let answers: Vec<i64> = ctx
            .candidates
            .values()
            .filter_map(|c| match c.decision {
                Decision::Answer { article, .. } => Some(article),
                Decision::Handoff { .. } => None,
            })
            .collect();
        for id in answers {
            if ctx.files.contains_key(&id) {
                continue;
            }
            let mut total = 0usize;
            let mut files = Vec::new();
            for (name, content_type, bytes) in kb::file_data(conn, id).await? {
                total += bytes.len();
                if total > MAX_ANSWER_ATTACHMENTS {
                    break;
                }
                files.push(OutAttachment {
                    filename: name,
                    content_type,
                    bytes,
                });
            }
            ctx.files.insert(id, files);
        }
        Ok(Some(ctx))
    }
}

/// What is searched for a message: its subject without reply prefixes or ticket tags,
/// then its new text (quotes already cut).
pub fn question_text(subject: &str, text: &str) -> String {
    let subject = crate::threading::subject::without_ticket_tags(subject);
    let (subject, _) = crate::threading::subject::strip_reply_prefixes(&subject);
    format!("{}\n{}", subject.trim(), text.trim())
}

/// Why a person takes over a ticket the bot answered, from the customer's reply; `None`
/// for a plain thank-you (the answer helped: the ticket is resolved without a human).
pub fn follow_up_reason(text: &str, handoff_words: &[String]) -> Option<&'static str> {
    if bot::asks_for_human(text, handoff_words) {
        Some("asked_for_human")
    } else if bot::says_not_helped(text) {
        Some("not_helped")
    } else if crate::threading::courtesy::is_courtesy_reply(text) {
        None
    } else {
        Some("wrote_again")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words() -> Vec<String> {
        ["human", "agent", "人工", "转人工"]
            .iter()
            .map(|w| w.to_string())
            .collect()
    }

    #[test]
    fn a_reply_to_the_bot_hands_off_unless_it_only_thanks() {
        assert_eq!(follow_up_reason("人工", &words()), Some("asked_for_human"));
        assert_eq!(
            follow_up_reason("I want to talk to a human please", &words()),
            Some("asked_for_human")
        );
        assert_eq!(
            follow_up_reason(
                "That did not help, my card was still charged twice.",
                &words()
            ),
            Some("not_helped")
        );
        assert_eq!(
            follow_up_reason("Also, can I change the delivery address?", &words()),
            Some("wrote_again")
        );
        assert_eq!(follow_up_reason("Thanks!", &words()), None);
    }
}
