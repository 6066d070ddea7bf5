//! Which ticket a message belongs to, and why: the threading rules as a pure function
//! over a [`Snapshot`] of what the database knows (loaded in bulk by `unit::Unit::load`,
//! kept current by the unit as it decides a batch). No I/O: the tests build snapshots by
//! hand.
//!
//! The rules, in order (the first that applies wins; the reason is recorded on the message):
//! 0. channels other than email: the same account and conversation mean the same ticket;
//! 1. a reply token in a recipient address (`support+<token>@`);
//! 2. In-Reply-To/References naming a stored message, or a stored customer message
//!    referencing this one, *on a ticket the sender takes part in*; a message that reaches
//!    tickets only through headers is held; tickets of one customer it joins are merged,
//!    of different customers linked;
//!    ... or a sibling sharing a parent we never saw, from a participant;
//! 3. a `[#N]` subject tag from a participant of N;
//! 4. the same normalised subject from the same customer within the window.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::domain::address::{Mailbox, reply_token};
use crate::domain::inbound::Inbound;
use crate::domain::known::{KnownMessage, KnownTicket};
use crate::domain::{Channel, MatchReason, Status, TicketId};
use crate::threading::subject;

/// Where the threading rules put a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Ticket(TicketId, MatchReason),
    /// Only threading headers lead to `ticket`, and the sender takes no part in it: the
    /// message is kept there for an agent, held, and changes nothing.
    Held {
        ticket: TicketId,
        reason: MatchReason,
        why: String,
    },
    /// No rule applies: a new conversation.
    Nothing,
}

#[derive(Debug, Clone)]
pub struct TicketState {
    pub t: KnownTicket,
    /// Status or updated_at changed by this batch (existing tickets only).
    pub dirty: bool,
    pub new: bool,
    /// The status as loaded (for the `status_changed` event).
    pub was: Status,
}

/// What the rules look at: every stored message, ticket and participant a batch can
/// reach, and what the batch decided so far.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Tickets touched since this time (`db_time`) count for the subject rule.
    pub since_subject: String,
    /// Stored messages by Message-ID.
    pub messages: HashMap<String, KnownMessage>,
    /// ref_id → tickets holding a customer message that references it.
    pub referencing: HashMap<String, BTreeSet<TicketId>>,
    pub tickets: HashMap<TicketId, TicketState>,
    /// Reply token → ticket.
    pub tokens: HashMap<String, TicketId>,
    /// (ticket, address) of everyone who takes part in a ticket.
    pub participants: HashSet<(TicketId, String)>,
    /// (customer, subject key) → candidate tickets.
    pub by_subject: HashMap<(i64, String), Vec<TicketId>>,
    /// (channel, account, conversation) → the ticket of its latest message.
    pub conversations: HashMap<(String, String, String), TicketId>,
    /// Our sent chat messages that the batch's messages answer: (channel, account,
    /// conversation, external id) → their ticket.
    pub sent: HashMap<crate::domain::inbound::ChatSentKey, TicketId>,
    /// Linked chat identities (`telegram:shop_bot:42`) → their customer's open ticket
    /// updated within `[threading] link_window_days`, the newest.
    pub linked_open: HashMap<String, TicketId>,
}

/// A link the rules ask for: the message also belongs to ticket `with`, another
/// customer's, which it must not merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub with: TicketId,
    pub reason: String,
}

/// What the rules decided for one message: where it goes, and for a late parent, the
/// tickets of the same customer to merge into the chosen one and those of others to link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub found: Found,
    pub merges: Vec<TicketId>,
    pub links: Vec<Link>,
}

impl Decision {
    fn only(found: Found) -> Decision {
        Decision {
            found,
            merges: Vec::new(),
            links: Vec::new(),
        }
    }
}

/// The (channel, account, conversation) a message belongs to, when its channel has them.
pub fn conversation_key(p: &Inbound) -> Option<(String, String, String)> {
    match (&p.account, &p.conversation) {
        (Some(a), Some(c)) if p.channel != Channel::Email => {
            Some((p.channel.as_str().to_string(), a.clone(), c.clone()))
        }
        _ => None,
    }
}

/// The key of the sent chat message `p` answers, if it answers one.
pub fn sent_key(p: &Inbound) -> Option<crate::domain::inbound::ChatSentKey> {
    let (channel, account, conversation) = conversation_key(p)?;
    let id = p.reply_to_external.clone()?;
    Some((channel, account, conversation, id))
}

impl Snapshot {
    /// The ticket `id` stands for now: merged tickets lead to where they went.
    pub fn resolve(&self, mut id: TicketId) -> Option<TicketId> {
        for _ in 0..16 {
            let s = self.tickets.get(&id)?;
            match s.t.merged_into {
                Some(n) if n != id => id = n,
                _ => return Some(id),
            }
        }
        None
    }

    pub fn is_participant(&self, ticket: TicketId, email: &str) -> bool {
        self.participants.contains(&(ticket, email.to_string()))
    }

    /// The documented threading rules, in order. `customer` is the sender's customer
    /// record, when there is one.
    ///
    /// Rule 2 (In-Reply-To/References, either direction) trusts nobody's headers: a
    /// ticket it reaches counts only when the sender takes part in it (the customer, an
    /// address copied on the conversation, or one an agent admitted with `#cc`). A
    /// message that reaches tickets only through headers is held on the first of them.
    /// Tickets of one customer that a message joins are merged (a late parent); tickets of
    /// different customers are linked for an agent to decide, never merged.
    pub fn find_ticket(
        &self,
        p: &Inbound,
        message_id: &str,
        from: &Mailbox,
        customer: Option<i64>,
        own: &[String],
    ) -> Decision {
        let mut merges: Vec<TicketId> = Vec::new();
        let mut links: Vec<Link> = Vec::new();
        // 0. Other channels thread by a reply to one of our messages in the same
        // conversation, else by the conversation: they have no recipients, headers or
        // subjects that could name a ticket.
        if p.channel != Channel::Email {
            if let Some(t) = sent_key(p)
                .and_then(|k| self.sent.get(&k).copied())
                .and_then(|t| self.resolve(t))
            {
                return Decision::only(Found::Ticket(t, MatchReason::ChatReply));
            }
            let conversation = conversation_key(p)
                .and_then(|k| self.conversations.get(&k).copied())
                .and_then(|t| self.resolve(t));
            let open = |t: &TicketId| {
                self.tickets
                    .get(t)
                    .is_some_and(|s| s.t.status != Status::Closed)
            };
            if let Some(t) = conversation.filter(open) {
                return Decision::only(Found::Ticket(t, MatchReason::Conversation));
            }
            // 3. A linked identity: their customer's open ticket, recently updated.
            if let Some(t) = self
                .linked_open
                .get(&from.address)
                .and_then(|t| self.resolve(*t))
                .filter(open)
            {
                return Decision::only(Found::Ticket(t, MatchReason::LinkedCustomer));
            }
            // The conversation's closed ticket: a new one follows it.
            return Decision::only(conversation.map_or(Found::Nothing, |t| {
                Found::Ticket(t, MatchReason::Conversation)
            }));
        }
        // 1. A reply token in a recipient address.
        for rcpt in p.all_recipients() {
            if let Some(token) = reply_token(rcpt, own)
                && let Some(t) = self.tokens.get(token).and_then(|t| self.resolve(*t))
            {
                return Decision::only(Found::Ticket(t, MatchReason::ReplyToken));
            }
        }
        // 2. References / In-Reply-To matching any stored message (newest first), or stored
        // customer replies referencing this message.
        let mut thread: Vec<(TicketId, bool)> = Vec::new();
        for r in p.references.iter().rev() {
            if let Some(t) = self
                .messages
                .get(r)
                .filter(|m| m.threads)
                .and_then(|m| m.ticket)
                .and_then(|t| self.resolve(t))
                && !thread.iter().any(|(x, _)| *x == t)
            {
                thread.push((t, true));
            }
        }
        let referencing: Vec<TicketId> = self
            .referencing
            .get(message_id)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        for t in referencing {
            if let Some(t) = self.resolve(t)
                && !thread.iter().any(|(x, _)| *x == t)
            {
                thread.push((t, false));
            }
        }
        if !thread.is_empty() {
            let reason_of = |via_refs: bool| {
                if via_refs {
                    MatchReason::References
                } else {
                    MatchReason::ReferencedBy
                }
            };
            type Side = Vec<(TicketId, bool)>;
            let (mine, foreign): (Side, Side) = thread
                .iter()
                .copied()
                .partition(|(t, _)| self.is_participant(*t, &from.address));
            // The sender's own headers claim a ticket they take no part in: held there. A
            // ticket that merely references this message (the reverse lookup) is no claim
            // of the sender's, and is ignored.
            let claimed: Vec<(TicketId, bool)> = foreign
                .iter()
                .copied()
                .filter(|(_, via_refs)| *via_refs)
                .collect();
            if mine.is_empty()
                && let Some((t, via_refs)) = claimed
                    .iter()
                    .copied()
                    .find(|(t, _)| self.is_open_or_resolved(*t))
                    .or_else(|| claimed.first().copied())
            {
                return Decision::only(Found::Held {
                    ticket: t,
                    reason: reason_of(via_refs),
                    why: format!(
                        "{} is not a participant of ticket #{t}; the message reached it only through its threading headers. \
                         If you know the sender, reply with #cc {} to admit them",
                        from.address, from.address
                    ),
                });
            }
            for (t, _) in &foreign {
                tracing::info!(
                    "Message <{message_id}> also points at ticket #{t}, where {} takes no part; ignored there",
                    from.address
                );
            }
            let open: Vec<(TicketId, bool)> = mine
                .iter()
                .copied()
                .filter(|(t, _)| self.is_open_or_resolved(*t))
                .collect();
            let chosen = open
                .iter()
                .min_by_key(|(t, _)| *t)
                .copied()
                .or_else(|| mine.first().copied());
            if let Some((survivor, via_refs)) = chosen {
                let owner = self.tickets.get(&survivor).map(|s| s.t.customer_id);
                for (t, _) in &open {
                    if *t == survivor {
                        continue;
                    }
                    if self.tickets.get(t).map(|s| s.t.customer_id) == owner {
                        tracing::info!(
                            "Ticket #{t} merged into #{survivor}: message <{message_id}> joins their threads"
                        );
                        merges.push(*t);
                    } else {
                        tracing::info!(
                            "Ticket #{t} linked to #{survivor}: message <{message_id}> joins the threads of two customers"
                        );
                        links.push(Link {
                            with: *t,
                            reason: format!(
                                "message <{message_id}> from {} belongs to both threads",
                                from.address
                            ),
                        });
                    }
                }
                return Decision {
                    found: Found::Ticket(survivor, reason_of(via_refs)),
                    merges,
                    links,
                };
            }
        }
        // ...or a sibling sharing a parent we never saw, from a participant of that ticket.
        for r in &p.references {
            let cands: Vec<TicketId> = self
                .referencing
                .get(r)
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default();
            for t in cands {
                if let Some(t) = self.resolve(t)
                    && self.is_participant(t, &from.address)
                {
                    return Decision::only(Found::Ticket(t, MatchReason::SharedReference));
                }
            }
        }
        // 3. A subject tag [#N], only from a participant of ticket N.
        for n in subject::ticket_tags(&p.subject) {
            if let Some(t) = self.resolve(n) {
                if self.is_participant(t, &from.address) {
                    return Decision::only(Found::Ticket(t, MatchReason::SubjectTag));
                }
                tracing::info!(
                    "Subject tag [#{n}] from {} ignored: not a participant of ticket #{n}",
                    from.address
                );
            }
        }
        // 4. Same normalised subject from the same sender within the window.
        let key = subject::normalize_subject(&p.subject);
        if let Some(customer) = customer
            && !key.is_empty()
        {
            let best = self
                .by_subject
                .get(&(customer, key))
                .into_iter()
                .flatten()
                .filter(|t| {
                    self.tickets.get(t).is_some_and(|s| {
                        s.t.status != Status::Closed
                            && s.t.merged_into.is_none()
                            && s.t.updated_at >= self.since_subject
                    })
                })
                .max()
                .copied();
            if let Some(t) = best {
                return Decision::only(Found::Ticket(t, MatchReason::SubjectSender));
            }
        }
        Decision::only(Found::Nothing)
    }

    pub fn is_open_or_resolved(&self, t: TicketId) -> bool {
        self.tickets
            .get(&t)
            .is_some_and(|s| s.t.status != Status::Closed)
    }
}

#[cfg(test)]
#[path = "matching_tests.rs"]
mod tests;
