//! The unit of work of batch ingest: load what a batch of messages needs to know in a few
//! set-based queries, decide every message in memory (in arrival order, each decision
//! seeing the ones before it), then write everything with a few multi-row statements.
//!
//! The decisions are the documented threading rules (see `Pipeline`): reply token,
//! References/In-Reply-To (either direction, merging tickets a late parent joins), shared
//! reference from a participant, `[#N]` from a participant, same subject and sender within
//! the window, else a new ticket; closed tickets spawn a linked ticket, resolved ones
//! reopen unless the reply is a courtesy. Nothing here touches the database between
//! [`Unit::load`] and [`Unit::flush`].
//!
//! Besides the customer's acknowledgement, a customer message queues a notification to
//! each agent concerned (issue 3): the assignee (every agent when nobody, or nobody we
//! know, is assigned) and the ticket's invited collaborators. What a notification says
//! about the ticket and the customer is loaded with the rest, and only when notifications
//! are on and agents are configured.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::store::Conn;
use anyhow::{Context, Result};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use rand::RngCore;

use crate::agent::token;
use crate::channels::email::compose::{self, AckInput, NotifyEvent, NotifyInput};
use crate::channels::email::loops::{autoreply_suppression, looks_like_legacy_bounce};
use crate::channels::email::parse::{Inbound, MAX_TEXT_BYTES, clean_text};
use crate::clock::db_time;
use crate::config::Config;
use crate::domain::EventKind;
use crate::domain::address::{Mailbox, mailbox_key, reply_token, split_plus, token_address};
use crate::domain::{Channel, Direction, MatchReason, MessageKind, Status, TicketId};
use crate::intake::{Item, Outcome, Services, Source};
use crate::store::bulk::{self, CustomerProfile, KnownMessage, KnownTicket, TicketDetails};
use crate::store::events::{self, NewEvent};
use crate::store::rawstore::RawStore;
use crate::store::{agent, ids, tickets};
use crate::threading::{courtesy, subject};

use super::matching::{Found, Snapshot, TicketState, conversation_key};

/// Addresses of a customer's To and Cc that become participants of the ticket, at most.
pub const MAX_COPIED_PARTICIPANTS: usize = 20;

/// What agent notifications need beyond threading; loaded only when they are on.
struct NotifyContext {
    /// Priority, assignee, tags, collaborators of every ticket in memory (new ones have
    /// none, so they are absent).
    details: HashMap<TicketId, TicketDetails>,
    /// Language, tier and ticket counts of the batch's known customers; the counts leave
    /// out the tickets in memory, which [`Unit::ticket_counts`] counts as they stand.
    profiles: HashMap<i64, CustomerProfile>,
    /// Company, plan, notes of the same customers (`store::profiles`, one statement).
    extras: HashMap<i64, crate::store::profiles::NotifyProfile>,
    /// The tickets in memory, by customer.
    by_customer: HashMap<i64, Vec<TicketId>>,
}

/// Longest stretch of a message given to language detection: enough for whatlang's
/// trigrams to settle, and bounded work on a huge message.
const LANGUAGE_SAMPLE_BYTES: usize = 2048;

/// Red alert mails one customer's messages may cause per hour: a stranger who writes
/// "lawsuit" a hundred times must not bury the on-call list. The alerts themselves are
/// all recorded, and the tickets stay forced to a human.
pub const MAX_ALERT_MAILS_PER_HOUR: i64 = 3;
/// How sure the classifier must be (posterior) for its category to stand where no rule
/// gave one.
pub const CLASSIFIER_MIN: f64 = 0.6;

/// RFC 5321 §4.5.3.1.1: the most octets a local part may have.
const MAX_LOCAL_PART: usize = 64;

pub struct Unit<'a> {
    /// Our own addresses (loop protection, reply tokens).
    own: Vec<String>,
    /// The domains our Message-IDs may carry (`pd.*@domain`): no outside mail may claim one.
    own_domains: Vec<String>,
    now: DateTime<Utc>,
    now_s: String,
    next: ids::MaxIds,
    /// What the threading rules look at (`matching`), kept current as the batch is decided.
    snap: Snapshot,
    customers: HashMap<String, (i64, bool)>,
    raw_ids: HashMap<String, i64>,
    bouncing: HashSet<String>,
    acks_last_hour: HashMap<String, i64>,
    /// Our outbound mail by Message-ID: its ticket and recipients (for reports).
    outbox_tickets: HashMap<String, (Option<TicketId>, Vec<String>)>,
    /// `None` when notifications are off or no agent is configured.
    notify: Option<NotifyContext>,
    // Writes, in flush order.
    raw_rows: Vec<bulk::RawRow<'a>>,
    customer_rows: Vec<bulk::CustomerRow>,
    customer_names: Vec<(i64, String)>,
    ticket_rows: Vec<bulk::NewTicketRow>,
    message_rows: Vec<bulk::MessageRow>,
    ref_rows: Vec<(i64, String)>,
    source_rows: Vec<bulk::SourceRow<'a>>,
    participant_rows: Vec<(TicketId, String, &'static str)>,
    outbox_rows: Vec<bulk::OutboxRow>,
    autoreply_rows: Vec<(String, TicketId)>,
    merges: Vec<(TicketId, TicketId)>,
    links: Vec<bulk::LinkRow>,
    bounces: Vec<(String, String)>,
    /// Triage (`intake::triage`): who is available, what it decided, what it writes.
    routing: super::triage::RoutingState,
    /// Known customers' tier and language.
    tiers: HashMap<i64, (String, Option<String>)>,
    /// Red alerts raised in the last hour per customer, kept current: past
    /// [`MAX_ALERT_MAILS_PER_HOUR`] the alert is recorded but not mailed.
    alerts_last_hour: HashMap<i64, i64>,
    /// (priority, category, forced-human) of the known tickets, kept current.
    ticket_triage: HashMap<TicketId, (crate::domain::Priority, Option<String>, bool)>,
    /// The events of what triage decided for new tickets.
    triage_events: Vec<NewEvent>,
    triaged: HashMap<TicketId, super::triage::Triaged>,
    triage_writes: crate::store::triage::TriageWrites,
    /// The answer bot's view of the batch (`intake::bot`); `None` when it is off.
    bot: Option<super::bot::BotContext>,
    /// The `#wrong`-trained classifier, when there are corrections.
    classifier: Option<std::sync::Arc<crate::kb::classifier::Model>>,
    /// The bot's changes to known tickets (handoffs, deflections).
    bot_writes: Vec<crate::store::kb::BotWrite>,
    /// The handoff summary of a ticket, for the notification that follows it.
    handoffs: HashMap<TicketId, serde_json::Value>,
    /// New tickets' analyzed terms (`kb::similar`), written with them; empty when the
    /// similar-ticket window is zero.
    term_rows: Vec<(TicketId, String)>,
    /// Satisfaction ratings read from replies to resolved tickets: (ticket, score, comment).
    rating_rows: Vec<(TicketId, i64, String)>,
    /// Recent open tickets to list as similar in a new ticket's notification (the batch's
    /// new tickets join it as they are decided); `None` when nothing is listed.
    similar: Option<SimilarContext>,
}

/// The pool a new ticket is compared with, and its document frequencies.
struct SimilarContext {
    pool: Vec<(crate::store::problems::PoolTicket, Vec<String>)>,
    idf: crate::kb::similar::Pool,
    /// The new tickets' terms, by ticket.
    terms: HashMap<TicketId, Vec<String>>,
}

/// Most recent open tickets a new one is compared with.
pub const SIMILAR_POOL: i64 = 500;
/// Similar tickets listed in a notification, at most.
pub const SIMILAR_LISTED: usize = 5;

/// What the answer bot did with a customer message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BotStep {
    /// Nothing: the bot is off, may not answer, or had nothing to do with the ticket.
    Nothing,
    /// It answered a new ticket: no acknowledgement, no agent notification.
    Answered,
    /// A person takes over: the notification carries the summary.
    Handoff,
    /// The customer thanked the bot: the ticket is resolved without a human.
    Deflected,
}

/// Where a message goes whose own Message-ID claims to be one of ours: it must not occupy
/// (or be found under) that id.
fn claimed_id(message_id: &str, body_sha256: &str) -> String {
    format!(
        "{message_id}#claimed-{}",
        body_sha256.get(..16).unwrap_or(body_sha256)
    )
}

/// Where a message goes whose Message-ID is already taken by different content.
fn reused_id(message_id: &str, body_sha256: &str) -> String {
    format!(
        "{message_id}#{}",
        body_sha256.get(..16).unwrap_or(body_sha256)
    )
}

fn addresses_json(list: &[Mailbox]) -> String {
    let v: Vec<&str> = list.iter().map(|m| m.address.as_str()).collect();
    serde_json::to_string(&v).unwrap_or_else(|_| "[]".to_string())
}

impl<'a> Unit<'a> {
    /// Loads everything the batch's decisions can depend on.
    pub async fn load(
        conn: &mut Conn,
        p: &Services,
        items: &[Item<'a>],
        now: DateTime<Utc>,
    ) -> Result<Unit<'a>> {
        let cfg = p.config();
        let window = ChronoDuration::from_std(cfg.threading.subject_window)
            .unwrap_or_else(|_| ChronoDuration::days(7));
        let since_subject = db_time(now - window);

        // Every Message-ID the batch mentions: its own, its references, report originals.
        let mut ids: Vec<String> = Vec::new();
        let mut tokens: Vec<String> = Vec::new();
        let mut tags: Vec<i64> = Vec::new();
        let mut emails: Vec<String> = Vec::new();
        // (sender, subject key) of each message, for the subject rule.
        let mut sender_keys: Vec<(String, String)> = Vec::new();
        let mut shas: Vec<String> = Vec::new();
        let mut originals: Vec<String> = Vec::new();
        let own = cfg.own_addresses();
        let own_domains = cfg.own_message_id_domains();
        for it in items {
            let pm = it.parsed;
            ids.push(pm.message_id.clone());
            if compose::is_own_message_id_of(&pm.message_id, &own_domains) {
                ids.push(claimed_id(&pm.message_id, &pm.body_sha256));
            }
            ids.extend(pm.references.iter().cloned());
            if let Some(r) = &pm.report
                && let Some(o) = &r.original_message_id
            {
                ids.push(o.clone());
                originals.push(o.clone());
            }
            for rcpt in pm.all_recipients() {
                if let Some(t) = reply_token(rcpt, &own) {
                    tokens.push(t.to_string());
                }
            }
            tags.extend(subject::ticket_tags(&pm.subject));
            if let Some(f) = &pm.from {
                emails.push(f.address.clone());
                sender_keys.push((f.address.clone(), subject::normalize_subject(&pm.subject)));
            }
            shas.push(pm.raw_sha256.clone());
        }
        ids.sort();
        ids.dedup();
        emails.sort();
        emails.dedup();

        let next = ids::max_ids(conn).await?;
        let mut messages = bulk::messages_by_ids(conn, &ids).await?;
        // A Message-ID reused with other content is stored under another id (see decide).
        // Only a message whose id is taken, here or earlier in the batch, can need it.
        let mut seen = HashSet::new();
        let reused: Vec<String> = items
            .iter()
            .filter(|it| {
                let id = &it.parsed.message_id;
                !seen.insert(id.as_str()) || messages.contains_key(id)
            })
            .map(|it| reused_id(&it.parsed.message_id, &it.parsed.body_sha256))
            .collect();
        if !reused.is_empty() {
            messages.extend(bulk::messages_by_ids(conn, &reused).await?);
        }
        let mut referencing: HashMap<String, BTreeSet<TicketId>> = HashMap::new();
        for (r, t) in bulk::tickets_referencing(conn, &ids).await? {
            referencing.entry(r).or_default().insert(t);
        }
        let customers = bulk::customers_by_email(conn, &emails).await?;
        let mut conversation_keys: Vec<(String, String, String)> = items
            .iter()
            .filter_map(|it| conversation_key(it.parsed))
            .collect();
        conversation_keys.sort();
        conversation_keys.dedup();
        let conversations = bulk::conversation_tickets(conn, &conversation_keys).await?;
        let mut sent_keys: Vec<crate::store::outbox::ChatSentKey> = items
            .iter()
            .filter_map(|it| super::matching::sent_key(it.parsed))
            .collect();
        sent_keys.sort();
        sent_keys.dedup();
        let sent: HashMap<_, _> = crate::store::outbox::chat_sent_tickets(conn, &sent_keys)
            .await?
            .into_iter()
            .collect();

        // Tickets: those the known messages live on, tags, tokens, then merge targets.
        let mut want: Vec<i64> = messages.values().filter_map(|m| m.ticket).collect();
        want.extend(referencing.values().flatten().copied());
        want.extend(tags.iter().copied());
        want.extend(conversations.values().copied());
        want.extend(sent.values().copied());
        // Chat senders linked to a customer, and that customer's recent open ticket.
        let identities: Vec<String> = items
            .iter()
            .filter(|it| it.parsed.channel != Channel::Email)
            .filter_map(|it| it.parsed.from.as_ref().map(|f| f.address.clone()))
            .collect();
        let link_since = db_time(
            now - ChronoDuration::from_std(cfg.threading.link_window)
                .unwrap_or_else(|_| ChronoDuration::days(7)),
        );
        let linked_open: HashMap<String, TicketId> =
            crate::store::profiles::linked_open_tickets(conn, &identities, &link_since)
                .await?
                .into_iter()
                .collect();
        want.extend(linked_open.values().copied());
        let mut tickets: HashMap<TicketId, TicketState> = HashMap::new();
        let mut token_map = HashMap::new();
        let mut first = true;
        while first || !want.is_empty() {
            let found =
                bulk::tickets_by_ids_or_tokens(conn, &want, if first { &tokens } else { &[] })
                    .await?;
            first = false;
            want.clear();
            for t in found {
                if let Some(m) = t.merged_into
                    && !tickets.contains_key(&m)
                {
                    want.push(m);
                }
                token_map.insert(t.token.clone(), t.id);
                tickets.insert(
                    t.id,
                    TicketState {
                        was: t.status,
                        t,
                        dirty: false,
                        new: false,
                    },
                );
            }
            want.retain(|id| !tickets.contains_key(id));
        }
        let customer_ids: Vec<i64> = customers.values().map(|(id, _)| *id).collect();
        let mut by_subject: HashMap<(i64, String), Vec<TicketId>> = HashMap::new();
        if !cfg.threading.subject_window.is_zero() {
            let mut pairs: Vec<(i64, String)> = sender_keys
                .into_iter()
                .filter_map(|(email, key)| customers.get(&email).map(|(id, _)| (*id, key)))
                .collect();
            pairs.sort();
            pairs.dedup();
            for t in bulk::subject_candidates(conn, &pairs, &since_subject).await? {
                by_subject
                    .entry((t.customer_id, t.subject_key.clone()))
                    .or_default()
                    .push(t.id);
                token_map.insert(t.token.clone(), t.id);
                tickets.entry(t.id).or_insert(TicketState {
                    was: t.status,
                    t,
                    dirty: false,
                    new: false,
                });
            }
        }
        let ticket_ids: Vec<i64> = tickets.keys().copied().collect();
        let participants: HashSet<(TicketId, String)> = bulk::participants_of(conn, &ticket_ids)
            .await?
            .into_iter()
            .collect();
        let raw_ids = bulk::raw_ids_by_sha(conn, &shas).await?;
        let bouncing: HashSet<String> = bulk::bouncing_among(conn, &emails)
            .await?
            .into_iter()
            .collect();
        // The acknowledgement cap counts per mailbox, whatever the spelling.
        let mut ack_keys: Vec<String> = emails.iter().map(|e| mailbox_key(e)).collect();
        ack_keys.sort();
        ack_keys.dedup();
        let acks_last_hour =
            bulk::autoreply_counts_since(conn, &ack_keys, &db_time(now - ChronoDuration::hours(1)))
                .await?;
        let outbox_tickets = bulk::outbox_tickets(conn, &originals).await?;
        let routing = if cfg.teams.is_empty() {
            super::triage::RoutingState::default()
        } else {
            super::triage::RoutingState {
                away: crate::store::triage::away_agents(conn).await?,
                open_counts: crate::store::triage::open_counts(conn).await?,
                cursors: crate::store::triage::team_cursors(conn).await?,
            }
        };
        let tiers = crate::store::triage::tiers_of(conn, &customer_ids).await?;
        let ticket_triage = crate::store::triage::ticket_triage_of(conn, &ticket_ids).await?;
        let bot = super::bot::BotContext::load(conn, p, items, &ticket_ids).await?;
        let classifier = p.classifier(conn).await?;
        let alerts_last_hour = crate::store::triage::alerts_since(
            conn,
            &customer_ids,
            &db_time(now - ChronoDuration::hours(1)),
        )
        .await?;
        let notify = if cfg.notify_enabled && !cfg.agents.is_empty() {
            let mut by_customer: HashMap<i64, Vec<TicketId>> = HashMap::new();
            for s in tickets.values() {
                by_customer.entry(s.t.customer_id).or_default().push(s.t.id);
            }
            // Senders, and the customers of the tickets they may write on.
            let mut profile_ids = customer_ids.clone();
            profile_ids.extend(by_customer.keys().copied());
            profile_ids.sort_unstable();
            profile_ids.dedup();
            Some(NotifyContext {
                details: bulk::ticket_details(conn, &ticket_ids).await?,
                profiles: bulk::customer_profiles(conn, &profile_ids, &ticket_ids).await?,
                extras: crate::store::profiles::notify_profiles(conn, &profile_ids).await?,
                by_customer,
            })
        } else {
            None
        };

        let similar = if notify.is_some() && !cfg.threading.similar_window.is_zero() {
            let since = now
                - ChronoDuration::from_std(cfg.threading.similar_window)
                    .unwrap_or_else(|_| ChronoDuration::hours(72));
            let rows =
                crate::store::problems::similar_pool(conn, &db_time(since), SIMILAR_POOL).await?;
            let mut idf = crate::kb::similar::Pool::default();
            let pool = rows
                .into_iter()
                .map(|r| {
                    let terms: Vec<String> = r.terms.split(' ').map(str::to_string).collect();
                    idf.add(&terms);
                    (r, terms)
                })
                .collect();
            Some(SimilarContext {
                pool,
                idf,
                terms: HashMap::new(),
            })
        } else {
            None
        };

        Ok(Unit {
            own,
            own_domains,
            now,
            now_s: db_time(now),
            next,
            snap: Snapshot {
                since_subject,
                messages,
                referencing,
                tickets,
                tokens: token_map,
                participants,
                by_subject,
                conversations,
                sent,
                linked_open,
            },
            customers,
            raw_ids,
            bouncing,
            acks_last_hour,
            outbox_tickets,
            notify,
            raw_rows: Vec::new(),
            customer_rows: Vec::new(),
            customer_names: Vec::new(),
            ticket_rows: Vec::new(),
            message_rows: Vec::new(),
            ref_rows: Vec::new(),
            source_rows: Vec::new(),
            participant_rows: Vec::new(),
            outbox_rows: Vec::new(),
            autoreply_rows: Vec::new(),
            merges: Vec::new(),
            links: Vec::new(),
            bounces: Vec::new(),
            routing,
            tiers,
            ticket_triage,
            alerts_last_hour,
            triage_events: Vec::new(),
            triaged: HashMap::new(),
            triage_writes: Default::default(),
            bot,
            classifier,
            bot_writes: Vec::new(),
            handoffs: HashMap::new(),
            term_rows: Vec::new(),
            rating_rows: Vec::new(),
            similar,
        })
    }

    /// Writes everything decided, in foreign-key order. The new raw bytes go to the
    /// segment files on a blocking thread while the SQL runs, and are on disk (synced)
    /// before this returns, so before the caller's COMMIT.
    pub async fn flush(self, conn: &mut Conn, raw: &RawStore) -> Result<()> {
        let now = &self.now_s;
        let pending: Vec<(&[u8], &str)> = self
            .raw_rows
            .iter()
            .map(|r| (r.data, r.sha256.as_str()))
            .collect();
        let (locs, staged) = raw.stage(&pending)?;
        let write = staged.spawn();
        bulk::insert_raw_rows(conn, &self.raw_rows, &locs, now).await?;
        bulk::insert_customers(conn, &self.customer_rows, now).await?;
        bulk::set_customer_names(conn, &self.customer_names).await?;
        bulk::insert_tickets(conn, &self.ticket_rows, now).await?;
        bulk::insert_messages(conn, &self.message_rows, now).await?;
        bulk::insert_refs(conn, &self.ref_rows).await?;
        bulk::insert_sources(conn, &self.source_rows, now).await?;
        bulk::insert_participants(conn, &self.participant_rows).await?;
        bulk::insert_outbox(conn, &self.outbox_rows, now).await?;
        bulk::insert_autoreply_log(conn, &self.autoreply_rows, now).await?;
        crate::store::problems::insert_terms(conn, &self.term_rows).await?;
        crate::store::analytics::put_ratings(conn, &self.rating_rows, "reply", now).await?;
        let updates: Vec<(TicketId, Status)> = self
            .snap
            .tickets
            .values()
            .filter(|s| s.dirty && !s.new)
            .map(|s| (s.t.id, s.t.status))
            .collect();
        bulk::update_tickets(conn, &updates, now).await?;
        for (into, from) in &self.merges {
            tickets::merge_ticket(conn, *into, *from, now).await?;
            // merge_ticket predates collaborators and copied addresses; without this a
            // merge would drop them (and the notifications decided above would disagree
            // with the database).
            agent::move_people(conn, *into, *from).await?;
        }
        bulk::insert_links(conn, &self.links, now).await?;
        events::insert_events(conn, &self.events(), now).await?;
        if !self.triage_writes.is_empty() {
            crate::store::triage::write_batch(conn, &self.triage_writes, now).await?;
        }
        crate::store::kb::write_bot(conn, &self.bot_writes, now).await?;
        for (addr, status) in &self.bounces {
            tickets::mark_bouncing(conn, addr, status, now).await?;
        }
        write
            .finish()
            .await
            .context("Writing raw messages to their segment")?;
        Ok(())
    }

    /// The events of everything this unit writes, in the order it happened per ticket:
    /// tickets created, messages added, status changes and links (merges write their own,
    /// in `tickets::merge_ticket`).
    fn events(&self) -> Vec<NewEvent> {
        let mut out = Vec::with_capacity(self.ticket_rows.len() + self.message_rows.len());
        for t in &self.ticket_rows {
            let linked = t
                .linked_ticket_id
                .map_or("null".to_string(), |l| l.to_string());
            out.push(NewEvent::with_data(
                EventKind::TicketCreated,
                t.id,
                format!(
                    r#"{{"customer_id":{},"linked_to":{linked}}}"#,
                    t.customer_id
                ),
            ));
        }
        for m in &self.message_rows {
            if let Some(t) = m.ticket_id {
                out.push(NewEvent::message_added(
                    t,
                    m.id,
                    m.direction,
                    m.kind,
                    m.channel,
                ));
            }
        }
        let mut changed: Vec<&TicketState> = self
            .snap
            .tickets
            .values()
            .filter(|s| !s.new && s.t.status != s.was)
            .collect();
        changed.sort_by_key(|s| s.t.id);
        for s in changed {
            out.push(NewEvent::new(
                EventKind::StatusChanged,
                s.t.id,
                serde_json::json!({"from": s.was.as_str(), "to": s.t.status.as_str()}),
            ));
        }
        for l in &self.links {
            out.push(NewEvent::new(
                EventKind::TicketsLinked,
                l.a,
                serde_json::json!({"linked": l.b}),
            ));
        }
        out.extend(self.triage_events.iter().cloned());
        out
    }

    fn add_participant(&mut self, ticket: TicketId, email: &str, role: &'static str) {
        if self.snap.participants.insert((ticket, email.to_string())) {
            self.participant_rows
                .push((ticket, email.to_string(), role));
        }
    }

    fn touch(&mut self, ticket: TicketId) {
        if let Some(s) = self.snap.tickets.get_mut(&ticket) {
            s.t.updated_at = self.now_s.clone();
            s.dirty = true;
            // A ticket touched now is inside the subject window even if it was not when
            // the batch was loaded.
            let key = (s.t.customer_id, s.t.subject_key.clone());
            if !key.1.is_empty() {
                let list = self.snap.by_subject.entry(key).or_default();
                if !list.contains(&ticket) {
                    list.push(ticket);
                }
            }
        }
    }

    fn raw_id(&mut self, p: &Inbound, raw: &'a [u8], size: usize) -> i64 {
        if let Some(id) = self.raw_ids.get(&p.raw_sha256) {
            return *id;
        }
        self.next.raw += 1;
        let id = self.next.raw;
        self.raw_ids.insert(p.raw_sha256.clone(), id);
        self.raw_rows.push(bulk::RawRow {
            id,
            sha256: p.raw_sha256.clone(),
            size: size as i64,
            truncated: raw.len() < size,
            data: raw,
        });
        id
    }

    fn record_source(&mut self, source: Option<Source<'a>>, row: i64) {
        if let Some(s) = source {
            self.source_rows.push(bulk::SourceRow {
                mailbox: s.mailbox,
                folder: s.folder,
                uidvalidity: s.uidvalidity,
                uid: s.uid,
                message_row: row,
            });
        }
    }

    /// Merges ticket `from` into `into` in memory; the database follows at flush.
    fn merge(&mut self, into: TicketId, from: TicketId) {
        for m in self
            .message_rows
            .iter_mut()
            .filter(|m| m.ticket_id == Some(from))
        {
            m.ticket_id = Some(into);
        }
        for o in self
            .outbox_rows
            .iter_mut()
            .filter(|o| o.ticket_id == Some(from))
        {
            o.ticket_id = Some(into);
        }
        for a in self.autoreply_rows.iter_mut().filter(|a| a.1 == from) {
            a.1 = into;
        }
        for m in self
            .snap
            .messages
            .values_mut()
            .filter(|m| m.ticket == Some(from))
        {
            m.ticket = Some(into);
        }
        for set in self.snap.referencing.values_mut() {
            if set.remove(&from) {
                set.insert(into);
            }
        }
        let moved: Vec<(String, &'static str)> = self
            .participant_rows
            .iter()
            .filter(|(t, _, _)| *t == from)
            .map(|(_, e, r)| (e.clone(), *r))
            .collect();
        let existing: Vec<String> = self
            .snap
            .participants
            .iter()
            .filter(|(t, _)| *t == from)
            .map(|(_, e)| e.clone())
            .collect();
        for e in existing {
            self.snap.participants.insert((into, e));
        }
        for (e, r) in moved {
            self.add_participant(into, &e, r);
        }
        if let Some(s) = self.snap.tickets.get_mut(&from) {
            s.t.merged_into = Some(into);
            s.t.status = Status::Closed;
        }
        // Tags and collaborators follow the merge (merge_ticket and move_people at flush).
        if let Some(ctx) = self.notify.as_mut()
            && let Some(gone) = ctx.details.remove(&from)
        {
            let kept = ctx.details.entry(into).or_default();
            for (list, more) in [
                (&mut kept.tags, gone.tags),
                (&mut kept.collaborators, gone.collaborators),
            ] {
                list.extend(more);
                list.sort();
                list.dedup();
            }
        }
        self.touch(into);
        self.merges.push((into, from));
    }

    /// Records an inbound message. The References of held and unprocessable messages are
    /// not stored for threading, and only customers' mail can be found by a later message
    /// it references (the reverse lookup).
    #[allow(clippy::too_many_arguments)]
    fn push_message(
        &mut self,
        p: &Inbound,
        message_id: &str,
        raw_id: Option<i64>,
        ticket: Option<TicketId>,
        kind: MessageKind,
        reason: MatchReason,
        problems: &[String],
        held_reason: Option<String>,
    ) -> i64 {
        let threads = !bulk::NON_THREADING_KINDS.contains(&kind.as_str());
        let customer_mail = matches!(kind, MessageKind::Customer | MessageKind::AutoSubmitted);
        self.next.message += 1;
        let row = self.next.message;
        self.message_rows.push(bulk::MessageRow {
            id: row,
            ticket_id: ticket,
            raw_id,
            message_id: message_id.to_string(),
            synthetic_id: p.synthetic_id,
            body_sha256: p.body_sha256.clone(),
            direction: Direction::Inbound.as_str(),
            kind: kind.as_str(),
            from_addr: p.from.as_ref().map(|f| f.address.clone()),
            from_name: p.from.as_ref().and_then(|f| f.name.clone()),
            to_json: addresses_json(&p.to),
            cc_json: addresses_json(&p.cc),
            subject: p.subject.clone(),
            body_text: p.body_text.clone(),
            match_reason: reason.as_str(),
            problems_json: serde_json::to_string(problems).unwrap_or_else(|_| "[]".into()),
            attachments_json: serde_json::to_string(&p.attachments).unwrap_or_else(|_| "[]".into()),
            date_header: p.date,
            held_reason,
            channel: p.channel.as_str(),
            account: p.account.clone(),
            external_id: p.external_id.clone(),
            conversation: p.conversation.clone(),
            rules_fired: None,
            language: None,
            sentiment: None,
            verified_phone: p.verified_phone.clone(),
        });
        if threads && let (Some(t), Some(key)) = (ticket, conversation_key(p)) {
            self.snap.conversations.insert(key, t);
        }
        self.snap.messages.insert(
            message_id.to_string(),
            KnownMessage {
                row,
                ticket,
                body_sha256: p.body_sha256.clone(),
                direction: Direction::Inbound,
                threads,
            },
        );
        if threads {
            for r in &p.references {
                self.ref_rows.push((row, r.clone()));
                if let (Some(t), true) = (ticket, customer_mail) {
                    self.snap
                        .referencing
                        .entry(r.clone())
                        .or_default()
                        .insert(t);
                }
            }
        }
        row
    }

    /// Decides one message. Never touches the database.
    pub fn decide(&mut self, pl: &Services, it: &Item<'a>) -> Result<Outcome> {
        let p = it.parsed;
        // 1. Dedup: the same Message-ID with the same body is a copy; our own outbound
        // mail coming back is one too.
        let mut message_id = p.message_id.clone();
        if let Some(existing) = self.snap.messages.get(&message_id) {
            // A channel's external id names one message whatever its content: a relay's
            // retry is a copy.
            if existing.body_sha256 == p.body_sha256
                || existing.direction == Direction::Outbound
                || p.channel != Channel::Email
            {
                let row = existing.row;
                self.record_source(it.source, row);
                return Ok(Outcome::Duplicate { row });
            }
            // Same Message-ID, different content: a broken or hostile sender. Keep both.
            message_id = reused_id(&message_id, &p.body_sha256);
            if let Some(existing) = self.snap.messages.get(&message_id) {
                let row = existing.row;
                self.record_source(it.source, row);
                return Ok(Outcome::Duplicate { row });
            }
            tracing::warn!(
                "Message-ID <{}> reused with different content; storing the new one as <{message_id}>",
                p.message_id
            );
        }
        let raw_id = self.raw_id(p, it.raw, it.raw.len());
        let mut problems = p.problems.clone();

        // 2. Only we write `pd.*@<our domain>` Message-IDs, and our own mail coming back
        // was taken as a copy above. Anything else claiming one is forged (our thread
        // roots name tickets): kept, flagged, and matched by nothing, bounces included.
        if compose::is_own_message_id_of(&p.message_id, &self.own_domains) {
            let stored = claimed_id(&p.message_id, &p.body_sha256);
            if let Some(existing) = self.snap.messages.get(&stored) {
                let row = existing.row;
                self.record_source(it.source, row);
                return Ok(Outcome::Duplicate { row });
            }
            problems.push(format!(
                "claims one of our Message-IDs (<{}>); stored under another id and matched by nothing",
                p.message_id
            ));
            tracing::warn!(
                "Message <{}> from {} claims one of our Message-IDs; held, on no ticket",
                p.message_id,
                p.from.as_ref().map_or("(no From)", |f| f.address.as_str())
            );
            let row = self.push_message(
                p,
                &stored,
                Some(raw_id),
                None,
                MessageKind::Held,
                MatchReason::None,
                &problems,
                Some("its Message-ID claims to be one of ours; mail from outside never may".into()),
            );
            self.record_source(it.source, row);
            return Ok(Outcome::Held { row, ticket: None });
        }

        // 3. Bounces and other reports never open tickets.
        if p.report.is_some() || looks_like_legacy_bounce(p) {
            return Ok(self.decide_report(it, &message_id, raw_id, problems));
        }

        let Some(from) = p.from.clone() else {
            problems.push("no From address".to_string());
            let row = self.push_message(
                p,
                &message_id,
                Some(raw_id),
                None,
                MessageKind::Unprocessable,
                MatchReason::None,
                &problems,
                None,
            );
            self.record_source(it.source, row);
            return Ok(Outcome::Unprocessable { row });
        };
        if p.from_count > 1 {
            problems.push(format!(
                "{} From addresses; the first one is used",
                p.from_count
            ));
        }
        let cfg = pl.config();
        let own = std::mem::take(&mut self.own);
        let suppression = autoreply_suppression(p, &own, &cfg.message_id_domain);
        let kind = if p
            .auto
            .auto_submitted
            .as_deref()
            .is_some_and(|v| !v.starts_with("no"))
            || p.auto.x_autoreply
        {
            MessageKind::AutoSubmitted
        } else {
            MessageKind::Customer
        };

        let known_customer = self.customers.get(&from.address).map(|(id, _)| *id);
        let decision = self
            .snap
            .find_ticket(p, &message_id, &from, known_customer, &own);
        if let Found::Ticket(survivor, _) = decision.found {
            for t in decision.merges {
                self.merge(survivor, t);
            }
            for l in decision.links {
                self.links.push(bulk::LinkRow {
                    a: survivor,
                    b: l.with,
                    reason: l.reason,
                    message_row: 0,
                });
            }
        }
        let found = decision.found;
        if let Found::Held {
            ticket,
            reason,
            why,
        } = found
        {
            let from_us = own.contains(&from.address)
                || split_plus(&from.address).is_some_and(|(base, _)| own.contains(&base));
            self.own = own;
            tracing::warn!(
                "Ticket #{ticket}: message <{message_id}> from {} held: {why}",
                from.address
            );
            let row = self.push_message(
                p,
                &message_id,
                Some(raw_id),
                Some(ticket),
                MessageKind::Held,
                reason,
                &problems,
                Some(why.clone()),
            );
            self.record_source(it.source, row);
            // Mail from our own address is a loop or a forgery: nobody is told.
            if self.notify.is_some() && !from_us {
                self.notify_agents(
                    pl,
                    p,
                    &message_id,
                    &from,
                    ticket,
                    reason,
                    NotifyEvent::HeldStranger,
                    Some(&why),
                    known_customer.unwrap_or(-1),
                )?;
            }
            return Ok(Outcome::Held {
                row,
                ticket: Some(ticket),
            });
        }
        let customer_id = self.customer(&from, p.sender_email.as_deref());

        let (ticket, reason, is_new) = match found {
            Found::Ticket(t, reason)
                if self
                    .snap
                    .tickets
                    .get(&t)
                    .is_some_and(|s| s.t.status == Status::Closed) =>
            {
                let id = self.open_ticket(p, customer_id, Some(t));
                tracing::info!(
                    "Ticket #{id}: reply to closed ticket #{t} (matched by {reason}) opens a new ticket"
                );
                (id, MatchReason::NewTicketAfterClosed, true)
            }
            Found::Ticket(t, reason) => {
                if kind == MessageKind::Customer {
                    self.reopen_if_needed(t, p);
                }
                self.touch(t);
                (t, reason, false)
            }
            Found::Held { .. } | Found::Nothing => (
                self.open_ticket(p, customer_id, None),
                MatchReason::NewTicket,
                true,
            ),
        };

        let row = self.push_message(
            p,
            &message_id,
            Some(raw_id),
            Some(ticket),
            kind,
            reason,
            &problems,
            None,
        );
        for l in self.links.iter_mut().filter(|l| l.message_row == 0) {
            l.message_row = row;
        }
        self.record_source(it.source, row);
        self.add_participant(
            ticket,
            &from.address,
            if is_new { "customer" } else { "participant" },
        );
        // A header of thousands of addresses must not make thousands of participants.
        for m in p.cc.iter().chain(p.to.iter()).take(MAX_COPIED_PARTICIPANTS) {
            let ours = own.contains(&m.address)
                || split_plus(&m.address).is_some_and(|(base, _)| own.contains(&base));
            if !ours {
                self.add_participant(ticket, &m.address, "cc");
            }
        }
        let sender_is_ours = own.contains(&from.address)
            || split_plus(&from.address).is_some_and(|(base, _)| own.contains(&base));
        self.own = own;
        if kind == MessageKind::Customer && !sender_is_ours {
            self.triage(pl, p, it.raw, ticket, row, is_new, customer_id)?;
        }
        let bot_step = if kind == MessageKind::Customer && !sender_is_ours {
            self.bot_step(
                pl,
                p,
                &message_id,
                &from,
                ticket,
                is_new,
                suppression.is_none(),
            )?
        } else {
            BotStep::Nothing
        };
        let bot_quiet = matches!(bot_step, BotStep::Answered | BotStep::Deflected);
        if kind == MessageKind::Customer && self.notify.is_some() && !bot_quiet {
            if sender_is_ours {
                tracing::info!(
                    "Ticket #{ticket}: no agent notification because the sender {} is our own address",
                    from.address
                );
            } else {
                let event = if is_new {
                    NotifyEvent::NewTicket
                } else {
                    NotifyEvent::CustomerReply
                };
                self.notify_agents(
                    pl,
                    p,
                    &message_id,
                    &from,
                    ticket,
                    reason,
                    event,
                    None,
                    customer_id,
                )?;
            }
        }
        if !is_new {
            return Ok(Outcome::Joined {
                ticket,
                row,
                reason,
            });
        }
        let quiet = self.triaged.get(&ticket).and_then(|t| {
            if bot_step == BotStep::Answered {
                Some("the answer bot answered it".to_string())
            } else if let Some((topic, _)) = &t.forced {
                Some(format!("the ticket is forced to a human ({topic})"))
            } else if t.verdict.suppress_ack {
                Some(format!(
                    "rule {} suppresses it",
                    t.verdict.rules_fired.last().map_or("?", String::as_str)
                ))
            } else {
                None
            }
        });
        let acknowledged = match quiet {
            Some(why) => {
                tracing::info!("Ticket #{ticket}: no acknowledgement because {why}");
                false
            }
            None => self.maybe_acknowledge(pl, p, &message_id, &from, ticket, suppression)?,
        };
        Ok(Outcome::NewTicket {
            ticket,
            row,
            acknowledged,
        })
    }

    /// The answer bot on one customer message (after triage). On a new ticket it answers
    /// from the knowledge base when the best published article in the customer's language
    /// clears both bars and nothing forbids it (forced-human, a rule's `no_bot`, automated
    /// or bulk mail, a bouncing address, the per-sender cap); else it records why a person
    /// takes it. On a ticket it answered, the customer's reply hands it to a person
    /// (asked, not helped, wrote again) or, a plain thank-you, resolves it.
    #[allow(clippy::too_many_arguments)]
    fn bot_step(
        &mut self,
        pl: &Services,
        p: &Inbound,
        message_id: &str,
        from: &Mailbox,
        ticket: TicketId,
        is_new: bool,
        not_automated: bool,
    ) -> Result<BotStep> {
        use crate::kb::bot::Decision;
        let cfg = pl.config();
        let Some(ctx) = &self.bot else {
            return Ok(BotStep::Nothing);
        };
        let triaged = self.triaged.get(&ticket);
        let (category, language, sentiment) = (
            triaged.and_then(|t| t.verdict.category.clone()),
            triaged.and_then(|t| t.signals_language),
            triaged.map(|t| t.sentiment),
        );
        if !is_new {
            let Some(state) = ctx.states.get(&ticket) else {
                return Ok(BotStep::Nothing);
            };
            let Some(article) = state.article.filter(|_| state.handoff.is_none()) else {
                return Ok(BotStep::Nothing);
            };
            let text = crate::channels::email::quote::new_text(&p.body_text);
            let reason = super::bot::follow_up_reason(text, &ctx.handoff_words);
            let title = ctx.articles.get(&article).map(|a| a.title.clone());
            let asked = ctx.asked.get(&ticket).map(|t| head(t, 1500).to_string());
            let score = state.score;
            let history = ctx.history.get(&from.address).cloned();
            let Some(reason) = reason else {
                tracing::info!(
                    "Ticket #{ticket}: the customer thanked the bot; resolved without a human"
                );
                if let Some(s) = self.snap.tickets.get_mut(&ticket) {
                    s.t.status = Status::Resolved;
                    s.dirty = true;
                }
                self.bot_writes
                    .push(crate::store::kb::BotWrite::Deflected { ticket });
                if let Some(ctx) = self.bot.as_mut()
                    && let Some(st) = ctx.states.get_mut(&ticket)
                {
                    st.handoff = Some("deflected".into());
                }
                return Ok(BotStep::Deflected);
            };
            tracing::info!("Ticket #{ticket}: handed to a person ({reason})");
            self.bot_writes.push(crate::store::kb::BotWrite::Handoff {
                ticket,
                reason: reason.to_string(),
            });
            if let Some(ctx) = self.bot.as_mut()
                && let Some(st) = ctx.states.get_mut(&ticket)
            {
                st.handoff = Some(reason.to_string());
            }
            let category =
                category.or_else(|| self.ticket_triage.get(&ticket).and_then(|t| t.1.clone()));
            self.handoffs.insert(
                ticket,
                handoff_summary(
                    history.as_ref(),
                    ticket,
                    reason,
                    asked,
                    Some((article, title, score.map(|s| s as f32))),
                    None,
                    category,
                    language,
                    sentiment,
                ),
            );
            return Ok(BotStep::Handoff);
        }
        let Some(t) = triaged else {
            return Ok(BotStep::Nothing);
        };
        if !not_automated || p.channel != Channel::Email {
            return Ok(BotStep::Nothing);
        }
        if let Some((topic, _)) = &t.forced {
            tracing::info!("Ticket #{ticket}: the bot stays silent: forced to a human ({topic})");
            return Ok(BotStep::Nothing);
        }
        if t.verdict.no_bot {
            tracing::info!("Ticket #{ticket}: the bot stays silent: a rule says no_bot");
            return Ok(BotStep::Nothing);
        }
        let Some(c) = ctx.candidates.get(&p.message_id) else {
            return Ok(BotStep::Nothing);
        };
        let candidate_language = c.language;
        let (article, score, margin) = match c.decision.clone() {
            Decision::Answer {
                article,
                score,
                margin,
            } => (article, score, margin),
            Decision::Handoff { reason, best } => {
                let best = best.map(|(id, score)| {
                    (
                        id,
                        ctx.articles.get(&id).map(|a| a.title.clone()),
                        Some(score),
                    )
                });
                if let Some(r) = self.ticket_rows.iter_mut().rev().find(|r| r.id == ticket) {
                    r.handoff = Some(reason.to_string());
                }
                self.triage_events.push(NewEvent::new(
                    EventKind::BotHandoff,
                    ticket,
                    serde_json::json!({ "reason": reason, "best": best.as_ref().map(|b| b.0) }),
                ));
                self.handoffs.insert(
                    ticket,
                    handoff_summary(
                        ctx.history.get(&from.address),
                        ticket,
                        reason,
                        None,
                        None,
                        best,
                        t.verdict.category.clone(),
                        language.or(candidate_language),
                        sentiment,
                    ),
                );
                return Ok(BotStep::Handoff);
            }
        };
        let Some(a) = ctx.articles.get(&article).cloned() else {
            return Ok(BotStep::Nothing);
        };
        let files = ctx.files.get(&article).cloned().unwrap_or_default();
        if self.bouncing.contains(&from.address) {
            tracing::info!(
                "Ticket #{ticket}: the bot stays silent: {} bounces",
                from.address
            );
            return Ok(BotStep::Nothing);
        }
        let key = mailbox_key(&from.address);
        let sent = self.acks_last_hour.get(&key).copied().unwrap_or(0);
        if sent >= i64::from(cfg.autoreply.max_per_sender_per_hour) || !pl.ack_allowed(&key) {
            tracing::warn!(
                "Ticket #{ticket}: the bot stays silent: {} reached the automatic mail cap",
                from.address
            );
            return Ok(BotStep::Nothing);
        }
        let Some(state) = self.snap.tickets.get(&ticket) else {
            return Ok(BotStep::Nothing);
        };
        let tier = self
            .tiers
            .get(&self.customers.get(&from.address).map_or(-1, |c| c.0))
            .map_or_else(|| "standard".to_string(), |t| t.0.clone());
        let text = crate::kb::article::plain_text(&a.body);
        let composed = compose::bot_answer(
            cfg,
            pl.templates(),
            &compose::BotAnswerInput {
                ticket_id: ticket,
                ticket_subject: &state.t.subject,
                token: &state.t.token,
                customer: from,
                in_reply_to: (!p.synthetic_id).then_some(message_id),
                references: &p.references,
                language: &a.language,
                tier: &tier,
                article_id: a.id,
                article_title: &a.title,
                article_text: &text,
                links: &a.links,
                attachments: &files,
                score,
                channel: Some(p.channel.as_str()),
                now: &self.now_s,
            },
        );
        let composed = match composed {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("Ticket #{ticket}: the bot's answer cannot be composed: {e:#}");
                return Ok(BotStep::Nothing);
            }
        };
        let mut refs = p.references.clone();
        if !p.synthetic_id {
            refs.push(message_id.to_string());
        }
        self.queue_outbound(cfg, ticket, MessageKind::AutoReply, composed, refs)?;
        self.autoreply_rows.push((key.clone(), ticket));
        *self.acks_last_hour.entry(key).or_insert(0) += 1;
        if let Some(r) = self.ticket_rows.iter_mut().rev().find(|r| r.id == ticket) {
            r.status = Status::Pending;
            r.bot = Some((article, score));
        }
        if let Some(s) = self.snap.tickets.get_mut(&ticket) {
            s.t.status = Status::Pending;
            s.was = Status::Pending;
        }
        if let Some(ctx) = self.bot.as_mut() {
            ctx.states.insert(
                ticket,
                crate::store::kb::BotState {
                    article: Some(article),
                    score: Some(f64::from(score)),
                    at: Some(self.now_s.clone()),
                    ..Default::default()
                },
            );
            ctx.asked.insert(
                ticket,
                super::bot::question_text(
                    &p.subject,
                    crate::channels::email::quote::new_text(&p.body_text),
                ),
            );
        }
        self.triage_events.push(NewEvent::new(
            EventKind::BotAnswered,
            ticket,
            serde_json::json!({ "article": article, "score": score, "margin": margin, "language": a.language }),
        ));
        tracing::info!(
            "Ticket #{ticket}: the bot answered with article {article} (score {score:.2})"
        );
        Ok(BotStep::Answered)
    }

    /// Triage of one customer message (`intake::triage`), and the red alert's mail.
    #[allow(clippy::too_many_arguments)]
    fn triage(
        &mut self,
        pl: &Services,
        p: &Inbound,
        raw: &[u8],
        ticket: TicketId,
        row: i64,
        is_new: bool,
        customer_id: i64,
    ) -> Result<()> {
        let cfg = pl.config();
        let tier = self.tiers.get(&customer_id).map(|(t, _)| t.clone());
        let already_forced = self
            .ticket_rows
            .iter()
            .rev()
            .find(|r| r.id == ticket)
            .map_or_else(
                || self.ticket_triage.get(&ticket).is_some_and(|s| s.2),
                |r| r.forced_human.is_some(),
            );
        let alerts_before = self.triage_writes.alerts.len();
        let t = super::triage::triage(
            cfg,
            &mut self.routing,
            &mut self.triage_writes,
            p,
            &super::triage::Ask {
                signals: None,
                ticket,
                already_forced,
                is_new,
                tier: tier.as_deref(),
                raw,
                now: self.now,
            },
        );
        self.record_triage(ticket, row, is_new, customer_id, &t);
        if is_new {
            self.classify(p, ticket);
            if !cfg.threading.similar_window.is_zero() {
                self.record_terms(p, ticket, customer_id);
            }
        }
        let raised = self.triage_writes.alerts.len() > alerts_before;
        let mailed_last_hour = self.alerts_last_hour.entry(customer_id).or_insert(0);
        if raised {
            *mailed_last_hour += 1;
        }
        let over_cap = *mailed_last_hour > MAX_ALERT_MAILS_PER_HOUR;
        if raised && over_cap {
            tracing::warn!(
                "Ticket #{ticket}: red alert recorded, not mailed: this customer raised more than {MAX_ALERT_MAILS_PER_HOUR} in the last hour"
            );
        }
        if raised && !over_cap && !cfg.alerts.on_call.is_empty() {
            let subject = self
                .snap
                .tickets
                .get(&ticket)
                .map(|s| s.t.subject.clone())
                .unwrap_or_default();
            let due = self
                .triage_writes
                .alerts
                .last()
                .map(|a| {
                    a.report_due
                        .get(..16)
                        .unwrap_or(&a.report_due)
                        .replace('T', " ")
                })
                .unwrap_or_default();
            let excerpt = compose::neutralised(
                head(crate::channels::email::quote::new_text(&p.body_text), 1500),
                1500,
            );
            let composed = compose::internal_mail(
                cfg,
                pl.templates(),
                &compose::InternalMail {
                    template: "alert",
                    ticket: Some(ticket),
                    to: &cfg.alerts.on_call,
                    data: serde_json::json!({
                        "reason": t.red_alert,
                        "term": t.forced.as_ref().map(|(_, term)| compose::neutralised(term, 200)),
                        "report_due": format!("{due} UTC"),
                        "excerpt": excerpt,
                        "ticket": {
                            "id": ticket,
                            "subject": compose::plain_line(&subject, 200),
                            "customer": p.from.as_ref().map(|f| compose::plain_line(&f.address, 200)),
                            "priority": t.priority.unwrap_or(crate::domain::Priority::Normal).as_str(),
                            "category": t.verdict.category,
                            "team": t.team,
                            "assignee": t.assignee,
                        },
                    }),
                    urgent: true,
                },
            );
            match composed {
                Ok(c) => {
                    let root = compose::thread_root_id(ticket, &cfg.message_id_domain);
                    self.queue_outbound(cfg, ticket, MessageKind::Notification, c, vec![root])?;
                }
                Err(e) => tracing::error!(
                    "Ticket #{ticket}: the red alert mail cannot be composed: {e:#}"
                ),
            }
        }
        self.triaged.insert(ticket, t);
        Ok(())
    }

    /// Puts what triage decided on the rows it belongs to: the message's signals, a new
    /// ticket's fields and their events, the customer's language.
    /// The classifier's category for a new ticket's first message, kept beside the rules':
    /// stored as `predicted_category` (what `#wrong` corrects), and the ticket's category
    /// when no rule gave one and the classifier is at least [`CLASSIFIER_MIN`] sure.
    fn classify(&mut self, p: &Inbound, ticket: TicketId) {
        let Some(model) = &self.classifier else {
            return;
        };
        let text = crate::kb::bot::question_text(
            &p.subject,
            crate::channels::email::quote::new_text(&p.body_text),
        );
        let Some((category, confidence)) = model.predict(&text) else {
            return;
        };
        let Some(r) = self.ticket_rows.iter_mut().rev().find(|r| r.id == ticket) else {
            return;
        };
        if r.category.is_none() && confidence >= CLASSIFIER_MIN {
            tracing::info!(
                "Ticket #{ticket}: category {category} from the classifier ({confidence:.2})"
            );
            r.category = Some(category.clone());
        }
        r.predicted_category = Some(category);
    }

    /// A new ticket's terms: written with it, and, when similar tickets are listed, added
    /// to the pool so that the batch's later tickets meet it.
    fn record_terms(&mut self, p: &Inbound, ticket: TicketId, customer_id: i64) {
        let terms = crate::kb::similar::terms(
            &p.subject,
            crate::channels::email::quote::new_text(&p.body_text),
        );
        if terms.is_empty() {
            return;
        }
        self.term_rows.push((ticket, terms.join(" ")));
        let Some(ctx) = &mut self.similar else {
            return;
        };
        let row = self.ticket_rows.iter().rev().find(|r| r.id == ticket);
        ctx.idf.add(&terms);
        ctx.terms.insert(ticket, terms.clone());
        ctx.pool.push((
            crate::store::problems::PoolTicket {
                id: ticket,
                customer_id,
                customer: p
                    .from
                    .as_ref()
                    .map(|f| f.address.clone())
                    .unwrap_or_default(),
                subject: row.map(|r| r.subject.clone()).unwrap_or_default(),
                category: row.and_then(|r| r.category.clone()),
                status: Status::Open.as_str().to_string(),
                terms: String::new(),
                channel: Some(p.channel.as_str().to_string()),
                problem: None,
                latest_answer: None,
            },
            terms,
        ));
    }

    /// The open tickets that look like the same problem as new ticket `ticket`: the same
    /// category, another customer or channel, similar enough; most similar first.
    fn similar_to(&self, cfg: &Config, ticket: TicketId) -> Vec<compose::SimilarTicket> {
        let Some(ctx) = &self.similar else {
            return Vec::new();
        };
        let Some((me, terms)) = ctx.pool.iter().rev().find(|(t, _)| t.id == ticket) else {
            return Vec::new();
        };
        let Some(category) = self
            .ticket_rows
            .iter()
            .rev()
            .find(|r| r.id == ticket)
            .and_then(|r| r.category.as_deref())
        else {
            return Vec::new();
        };
        let mut out: Vec<compose::SimilarTicket> = ctx
            .pool
            .iter()
            .filter(|(t, _)| {
                t.id != ticket
                    && self
                        .snap
                        .tickets
                        .get(&t.id)
                        .is_none_or(|s| s.t.merged_into.is_none())
            })
            .filter(|(t, _)| t.customer_id != me.customer_id || t.channel != me.channel)
            .filter(|(t, _)| {
                // A ticket of this batch may have got its category after it joined the pool.
                let cat = self
                    .ticket_rows
                    .iter()
                    .rev()
                    .find(|r| r.id == t.id)
                    .map_or(t.category.as_deref(), |r| r.category.as_deref());
                cat == Some(category)
            })
            .filter_map(|(t, other)| {
                let score = ctx.idf.score(terms, other);
                (score >= cfg.threading.similar_min_score).then(|| compose::SimilarTicket {
                    id: t.id,
                    subject: t.subject.clone(),
                    customer: t.customer.clone(),
                    channel: t.channel.clone().unwrap_or_else(|| "email".into()),
                    status: t.status.clone(),
                    score,
                    problem: t.problem,
                    latest_answer: t.latest_answer.clone(),
                })
            })
            .collect();
        out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        out.truncate(SIMILAR_LISTED);
        out
    }

    fn record_triage(
        &mut self,
        ticket: TicketId,
        row: i64,
        is_new: bool,
        customer: i64,
        t: &super::triage::Triaged,
    ) {
        let language = t.signals_language.map(str::to_string);
        if let Some(m) = self.message_rows.iter_mut().rev().find(|m| m.id == row) {
            m.rules_fired =
                Some(serde_json::to_string(&t.verdict.rules_fired).unwrap_or_else(|_| "[]".into()));
            m.language = language.clone();
            m.sentiment = Some(t.sentiment);
        }
        if let Some(lang) = language {
            if let Some(c) = self
                .customer_rows
                .iter_mut()
                .rev()
                .find(|c| c.id == customer)
            {
                c.language = Some(lang);
            } else if let Some(known) = self.tiers.get_mut(&customer)
                && known.1.as_deref() != Some(lang.as_str())
            {
                known.1 = Some(lang.clone());
                self.triage_writes.languages.push((customer, lang));
            }
        }
        if !is_new {
            self.follow_up_triage(ticket, t);
            return;
        }
        let Some(r) = self.ticket_rows.iter_mut().rev().find(|r| r.id == ticket) else {
            return;
        };
        r.priority = t.priority.unwrap_or(crate::domain::Priority::Normal);
        r.assignee = t.assignee.clone();
        r.category = t.verdict.category.clone();
        r.team = t.team.clone();
        r.forced_human = t.forced_json.clone();
        r.sla_policy = t.sla.clone();
        self.triage_events.push(NewEvent::new(
            EventKind::Triaged,
            ticket,
            serde_json::json!({
                "category": t.verdict.category, "team": t.team, "assignee": t.assignee,
                "priority": r.priority.as_str(), "sla": t.sla, "rules": t.verdict.rules_fired,
            }),
        ));
        if let Some(a) = &t.assignee {
            self.triage_events.push(NewEvent::new(
                EventKind::AssigneeChanged,
                ticket,
                serde_json::json!({"from": null, "to": a}),
            ));
        }
        if let Some((topic, term)) = &t.forced {
            tracing::warn!("Ticket #{ticket}: forced to a human ({topic}: {term:?})");
            self.triage_events.push(NewEvent::new(
                EventKind::ForcedHuman,
                ticket,
                serde_json::json!({"topic": topic, "term": term}),
            ));
        }
    }

    /// What a follow-up message adds to its ticket: a category where there is none, a
    /// higher priority, the forced-human mark. Only what changes is written.
    fn follow_up_triage(&mut self, ticket: TicketId, t: &super::triage::Triaged) {
        use crate::store::triage::{TicketTriageRow, rank};
        let newly_forced = |was: bool| (!was).then(|| t.forced_json.clone()).flatten();
        // A ticket this batch opened: its row is still in memory.
        if let Some(r) = self.ticket_rows.iter_mut().rev().find(|r| r.id == ticket) {
            if r.category.is_none() {
                r.category = t.verdict.category.clone();
            }
            if let Some(p) = t.priority.filter(|p| rank(*p) > rank(r.priority)) {
                r.priority = p;
            }
            if let Some(f) = newly_forced(r.forced_human.is_some()) {
                r.forced_human = Some(f);
                if let Some((topic, term)) = &t.forced {
                    tracing::warn!("Ticket #{ticket}: forced to a human ({topic}: {term:?})");
                    self.triage_events.push(NewEvent::new(
                        EventKind::ForcedHuman,
                        ticket,
                        serde_json::json!({"topic": topic, "term": term}),
                    ));
                }
            }
            return;
        }
        let Some(state) = self.ticket_triage.get_mut(&ticket) else {
            return;
        };
        let category = t.verdict.category.clone().filter(|_| state.1.is_none());
        let priority = t.priority.filter(|p| rank(*p) > rank(state.0));
        let forced = newly_forced(state.2);
        if category.is_none() && priority.is_none() && forced.is_none() {
            return;
        }
        if let Some(c) = &category {
            state.1 = Some(c.clone());
        }
        if let Some(p) = priority {
            state.0 = p;
        }
        if forced.is_some() {
            state.2 = true;
            if let Some((topic, term)) = &t.forced {
                tracing::warn!("Ticket #{ticket}: forced to a human ({topic}: {term:?})");
            }
        }
        self.triage_writes.tickets.push(TicketTriageRow {
            id: ticket,
            category,
            priority,
            forced_human: forced,
        });
    }

    fn customer(&mut self, from: &Mailbox, given_email: Option<&str>) -> i64 {
        if let Some((id, has_name)) = self.customers.get(&from.address).copied() {
            if !has_name && let Some(n) = &from.name {
                self.customer_names.push((id, n.clone()));
                self.customers.insert(from.address.clone(), (id, true));
            }
            return id;
        }
        self.next.customer += 1;
        let id = self.next.customer;
        self.customers
            .insert(from.address.clone(), (id, from.name.is_some()));
        self.customer_rows.push(bulk::CustomerRow {
            id,
            email: from.address.clone(),
            name: from.name.clone(),
            given_email: given_email.map(str::to_string),
            language: None,
        });
        id
    }

    fn open_ticket(&mut self, p: &Inbound, customer_id: i64, linked: Option<TicketId>) -> TicketId {
        // Our own old tags leave: a reply to a closed ticket #1 is not "[#5] [#1] ...".
        let (stripped, _) =
            subject::strip_reply_prefixes(&subject::without_ticket_tags(&p.subject));
        let mut display = clean_text(stripped.trim(), 1000);
        if display.is_empty() {
            display = "(no subject)".to_string();
        }
        // Only mail threads by subject.
        let key = if p.channel == Channel::Email {
            subject::normalize_subject(&p.subject)
        } else {
            String::new()
        };
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        self.next.ticket += 1;
        let id = self.next.ticket;
        self.ticket_rows.push(bulk::NewTicketRow {
            id,
            subject: display.clone(),
            subject_key: key.clone(),
            customer_id,
            token: token.clone(),
            linked_ticket_id: linked,
            priority: crate::domain::Priority::Normal,
            assignee: None,
            category: None,
            team: None,
            forced_human: None,
            sla_policy: None,
            status: Status::Open,
            bot: None,
            handoff: None,
            predicted_category: None,
        });
        self.snap.tokens.insert(token.clone(), id);
        if !key.is_empty() {
            self.snap
                .by_subject
                .entry((customer_id, key.clone()))
                .or_default()
                .push(id);
        }
        self.snap.tickets.insert(
            id,
            TicketState {
                t: KnownTicket {
                    id,
                    status: Status::Open,
                    customer_id,
                    token,
                    subject: display,
                    subject_key: key,
                    updated_at: self.now_s.clone(),
                    merged_into: None,
                },
                dirty: false,
                new: true,
                was: Status::Open,
            },
        );
        if let Some(ctx) = self.notify.as_mut() {
            ctx.by_customer.entry(customer_id).or_default().push(id);
        }
        id
    }

    fn reopen_if_needed(&mut self, ticket: TicketId, p: &Inbound) {
        let Some(s) = self.snap.tickets.get_mut(&ticket) else {
            return;
        };
        let new_status = match s.t.status {
            Status::Resolved => {
                let new_text = crate::channels::email::quote::new_text(&p.body_text);
                if let Some(r) = crate::threading::rating::rating(new_text) {
                    tracing::info!(
                        "Ticket #{ticket}: the customer rated it {} of 5; it stays resolved",
                        r.score
                    );
                    self.triage_events.push(NewEvent::new(
                        EventKind::TicketRated,
                        ticket,
                        serde_json::json!({"score": r.score, "source": "reply"}),
                    ));
                    self.rating_rows.push((ticket, r.score, r.comment));
                    None
                } else if courtesy::is_courtesy_reply(new_text) {
                    tracing::info!("Ticket #{ticket}: courtesy reply recorded without reopening");
                    None
                } else {
                    Some(Status::Open)
                }
            }
            Status::Pending => Some(Status::Open),
            Status::Open | Status::Closed => None,
        };
        if let Some(n) = new_status {
            tracing::info!(
                "Ticket #{ticket}: {} -> {n} on a customer reply",
                s.t.status
            );
            s.t.status = n;
            s.dirty = true;
        }
    }

    fn decide_report(
        &mut self,
        it: &Item<'a>,
        message_id: &str,
        raw_id: i64,
        mut problems: Vec<String>,
    ) -> Outcome {
        let p = it.parsed;
        let report = p.report.clone().unwrap_or_default();
        let is_bounce = p.report.is_none() || report.report_type == "delivery-status";
        let (kind, reason) = if is_bounce {
            (MessageKind::Bounce, MatchReason::Bounce)
        } else {
            (MessageKind::Report, MatchReason::Report)
        };
        let mut ticket = None;
        let mut sent_to: Vec<String> = Vec::new();
        if let Some(orig) = report.original_message_id.as_deref() {
            if let Some((t, rcpt)) = self.outbox_tickets.get(orig) {
                ticket = *t;
                sent_to = rcpt.clone();
            }
            if ticket.is_none() {
                ticket = self
                    .snap
                    .messages
                    .get(orig)
                    .filter(|m| m.threads)
                    .and_then(|m| m.ticket);
            }
        }
        if ticket.is_none() {
            // Legacy bounces often thread by References.
            ticket = p.references.iter().rev().find_map(|r| {
                self.snap
                    .messages
                    .get(r)
                    .filter(|m| m.threads)
                    .and_then(|m| m.ticket)
            });
        }
        let ticket = ticket.and_then(|t| self.snap.resolve(t));
        // Only a report about mail we sent to that address marks it as bouncing: a forged
        // "delivery failure" naming someone else must not silence our mail to them.
        for (addr, status) in &report.failed {
            if sent_to.contains(addr) {
                tracing::warn!("Address {addr} bounced with status {status}");
                self.bouncing.insert(addr.clone());
                self.bounces.push((addr.clone(), status.clone()));
            } else {
                problems.push(format!(
                    "reports {addr} failed, but we sent it no such mail"
                ));
            }
        }
        if ticket.is_none() {
            problems.push(format!("{kind} for a message we do not know"));
        }
        let row = self.push_message(
            p,
            message_id,
            Some(raw_id),
            ticket,
            kind,
            reason,
            &problems,
            None,
        );
        self.record_source(it.source, row);
        Outcome::Bounce { row, ticket }
    }

    /// Queues a composed mail of ours on `ticket`: its message row (known at once to the
    /// rest of the batch, so a reply to it threads), its references and its outbox row.
    fn queue_outbound(
        &mut self,
        cfg: &Config,
        ticket: TicketId,
        kind: MessageKind,
        composed: compose::Composed,
        refs: Vec<String>,
    ) -> Result<()> {
        self.next.message += 1;
        let row = self.next.message;
        let to_json = serde_json::to_string(&composed.to)?;
        self.message_rows.push(bulk::MessageRow {
            id: row,
            ticket_id: Some(ticket),
            raw_id: None,
            message_id: composed.message_id.clone(),
            synthetic_id: false,
            body_sha256: String::new(),
            direction: Direction::Outbound.as_str(),
            kind: kind.as_str(),
            from_addr: Some(cfg.smtp.from.address.clone()),
            from_name: cfg.smtp.from.name.clone(),
            to_json: to_json.clone(),
            cc_json: "[]".into(),
            subject: composed.subject.clone(),
            body_text: clean_text(&composed.body, MAX_TEXT_BYTES),
            match_reason: MatchReason::Outbound.as_str(),
            problems_json: "[]".into(),
            attachments_json: "[]".into(),
            date_header: Some(self.now.timestamp()),
            held_reason: None,
            channel: Channel::Email.as_str(),
            account: None,
            external_id: None,
            conversation: None,
            rules_fired: None,
            language: None,
            sentiment: None,
            verified_phone: None,
        });
        self.snap.messages.insert(
            composed.message_id.clone(),
            KnownMessage {
                row,
                ticket: Some(ticket),
                body_sha256: String::new(),
                direction: Direction::Outbound,
                threads: true,
            },
        );
        // Stored, but never a reverse-lookup candidate (see `bulk::tickets_referencing`).
        for r in refs {
            self.ref_rows.push((row, r));
        }
        self.outbox_rows.push(bulk::OutboxRow {
            message_row: Some(row),
            ticket_id: Some(ticket),
            kind: kind.as_str(),
            channel: Channel::Email.as_str(),
            account: None,
            payload: None,
            message_id: composed.message_id,
            mail_from: cfg.smtp.from.address.clone(),
            rcpt_json: to_json,
            raw: composed.raw,
        });
        Ok(())
    }

    fn maybe_acknowledge(
        &mut self,
        pl: &Services,
        p: &Inbound,
        message_id: &str,
        from: &Mailbox,
        ticket: TicketId,
        suppression: Option<String>,
    ) -> Result<bool> {
        let cfg = pl.config();
        // The acknowledgement is a mail; a chat sender has no mailbox to receive it.
        if !cfg.autoreply.enabled || p.channel != Channel::Email {
            return Ok(false);
        }
        if let Some(why) = suppression {
            tracing::info!("Ticket #{ticket}: no acknowledgement because {why}");
            return Ok(false);
        }
        if self.bouncing.contains(&from.address) {
            tracing::info!(
                "Ticket #{ticket}: no acknowledgement because {} bounces",
                from.address
            );
            return Ok(false);
        }
        let key = mailbox_key(&from.address);
        let sent = self.acks_last_hour.get(&key).copied().unwrap_or(0);
        if sent >= i64::from(cfg.autoreply.max_per_sender_per_hour) || !pl.ack_allowed(&key) {
            tracing::warn!(
                "Ticket #{ticket}: no acknowledgement because {} reached the cap of {} per hour",
                from.address,
                cfg.autoreply.max_per_sender_per_hour
            );
            return Ok(false);
        }
        let Some(t) = self.snap.tickets.get(&ticket) else {
            return Ok(false);
        };
        // The acknowledgement's variant (issue 14): language and mood from this message's
        // triage, else the customer's stored language; tier as stored.
        let triaged = self.triaged.get(&ticket);
        let known = self.tiers.get(&t.t.customer_id);
        let composed = compose::acknowledgement(
            cfg,
            pl.templates(),
            &AckInput {
                ticket_id: ticket,
                ticket_subject: &t.t.subject,
                token: &t.t.token,
                customer: from,
                in_reply_to: (!p.synthetic_id).then_some(message_id),
                references: &p.references,
                language: triaged
                    .and_then(|t| t.signals_language)
                    .or_else(|| known.and_then(|k| k.1.as_deref())),
                tier: known.map(|k| k.0.as_str()),
                channel: Some(p.channel.as_str()),
                mood: triaged.and_then(|t| {
                    crate::outbound::templates::mood_of(
                        t.sentiment,
                        cfg.rules.negative_alert_below(),
                    )
                }),
                now: &self.now_s,
            },
        );
        // An address mail-parser accepts but lettre refuses (e.g. `a..b@example.jp`) must
        // not cost the message its ticket: it just gets no acknowledgement.
        let composed = match composed {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(
                    "Ticket #{ticket}: no acknowledgement, it cannot be composed: {e:#}"
                );
                return Ok(false);
            }
        };
        let mut refs = p.references.clone();
        if !p.synthetic_id {
            refs.push(message_id.to_string());
        }
        self.queue_outbound(cfg, ticket, MessageKind::AutoReply, composed, refs)?;
        self.autoreply_rows.push((key.clone(), ticket));
        *self.acks_last_hour.entry(key).or_insert(0) += 1;
        Ok(true)
    }

    /// The customer's open (`open`, `pending`) and past (`resolved`, `closed`) tickets as
    /// they stand now, this batch's changes included: the database counts of the tickets
    /// not in memory plus the ones in memory, merged-away tickets left out.
    fn ticket_counts(&self, customer: i64) -> (i64, i64) {
        let Some(ctx) = &self.notify else {
            return (0, 0);
        };
        let (mut open, mut past) = ctx
            .profiles
            .get(&customer)
            .map(|p| (p.open_tickets, p.past_tickets))
            .unwrap_or((0, 0));
        for id in ctx.by_customer.get(&customer).into_iter().flatten() {
            match self.snap.tickets.get(id) {
                Some(s) if s.t.merged_into.is_none() => match s.t.status {
                    Status::Open | Status::Pending => open += 1,
                    Status::Resolved | Status::Closed => past += 1,
                },
                _ => {}
            }
        }
        (open, past)
    }

    /// Queues a notification of a customer message on `ticket` to each agent concerned
    /// (see [`notify_recipients`]). Unlike the acknowledgement it is neither capped nor
    /// suppressed by RFC 3834 signals: it goes to our agents, not back to the sender. A
    /// recipient whose token or mail cannot be made is skipped with a warning; that never
    /// costs the message its ticket.
    /// `event` says what happened; `held` is why the message was held, for
    /// [`NotifyEvent::HeldStranger`]. The context block describes the ticket's customer,
    /// who also receives the agent's reply, whoever wrote the message (`from`).
    #[allow(clippy::too_many_arguments)]
    fn notify_agents(
        &mut self,
        pl: &Services,
        p: &Inbound,
        message_id: &str,
        from: &Mailbox,
        ticket: TicketId,
        reason: MatchReason,
        event: NotifyEvent,
        held: Option<&str>,
        sender_customer: i64,
    ) -> Result<()> {
        let cfg = pl.config();
        let Some(ctx) = &self.notify else {
            return Ok(());
        };
        let Some(state) = self.snap.tickets.get(&ticket) else {
            return Ok(());
        };
        let mut details = ctx.details.get(&ticket).cloned().unwrap_or_default();
        let triaged = self.triaged.get(&ticket);
        if let Some(t) = triaged.filter(|_| event == NotifyEvent::NewTicket) {
            if let Some(p) = t.priority {
                details.priority = p;
            }
            if t.assignee.is_some() {
                details.assignee = t.assignee.clone();
            }
            for tag in &t.verdict.tags {
                if !details.tags.contains(tag) {
                    details.tags.push(tag.clone());
                }
            }
        }
        let category = triaged.and_then(|t| t.verdict.category.clone());
        let macros: Vec<String> = triaged
            .map(|t| t.verdict.suggest_macros.clone())
            .unwrap_or_default();
        let forced = triaged.and_then(|t| t.forced.as_ref().map(|(topic, _)| topic.clone()));
        let team = triaged.and_then(|t| t.team.clone());
        let new_ticket = event == NotifyEvent::NewTicket;
        let sla_due = triaged
            .filter(|_| new_ticket)
            .and_then(|t| t.first_response_due)
            .map(|d| format!("{} (first response)", d.format("%Y-%m-%d %H:%M UTC")));
        let routing_note = triaged
            .filter(|_| new_ticket)
            .and_then(|t| t.routing_note.clone());
        let similar = if new_ticket {
            self.similar_to(cfg, ticket)
        } else {
            Vec::new()
        };
        let customer_id = state.t.customer_id;
        let profile = ctx.profiles.get(&customer_id).cloned();
        let customer = match &profile {
            Some(pr) if customer_id != sender_customer => Mailbox {
                name: pr.name.clone(),
                address: pr.email.clone(),
            },
            _ => from.clone(),
        };
        let (subject, status) = (state.t.subject.clone(), state.t.status);
        let sender = from.address.to_lowercase();
        let recipients = notify_recipients(cfg, &details, &sender, ticket);
        if recipients.is_empty() {
            return Ok(());
        }
        // The event says what happened, whoever is told: an invited collaborator writing
        // is the one case where it is not the customer.
        let event = if event != NotifyEvent::HeldStranger && details.collaborators.contains(&sender)
        {
            NotifyEvent::Collaborator
        } else {
            event
        };
        let (open_tickets, past_tickets) = self.ticket_counts(customer_id);
        let (stored_language, tier) = match profile {
            Some(p) => (p.language, p.tier),
            None => (None, "standard".to_string()),
        };
        let stored = ctx.extras.get(&customer_id);
        // The language a person set, else the one triage detected in this message, else
        // the profile's, else a guess.
        let set_language = stored_language
            .clone()
            .filter(|_| stored.is_some_and(|s| s.language_set));
        let language = set_language
            .or_else(|| triaged.and_then(|t| t.signals_language.map(str::to_string)))
            .or(stored_language)
            .or_else(|| detect_language(&p.body_text).map(str::to_string));
        let templates = pl.templates();
        let customer_extra = compose::CustomerExtra {
            company: stored.and_then(|s| s.company.clone()),
            plan: stored.and_then(|s| s.plan.clone()),
            notes: stored.map(|s| s.notes.clone()).unwrap_or_default(),
            plan_prompt: crate::profile::plan_prompt(&tier, |name| {
                templates.macro_names().iter().any(|m| m == name)
            }),
        };
        let ttl = i64::try_from(cfg.security.token_ttl.as_secs()).unwrap_or(i64::MAX);
        let expires = self.now.timestamp().saturating_add(ttl);
        let root = compose::thread_root_id(ticket, &cfg.message_id_domain);
        for agent in &recipients {
            let tok = match token::mint(
                pl.keyring(),
                ticket,
                token::identity_id(&agent.address),
                expires,
            ) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(
                        "Ticket #{ticket}: no notification to {}, its reply token cannot be minted: {e}",
                        agent.address
                    );
                    continue;
                }
            };
            // The token module keeps `support+token` within RFC 5321's 64 octets; a longer
            // base local part is ours to check.
            let reply_to = token_address(&cfg.primary_address(), &tok);
            let local = reply_to
                .rsplit_once('@')
                .map_or(reply_to.as_str(), |(l, _)| l);
            if local.len() > MAX_LOCAL_PART {
                tracing::warn!(
                    "Ticket #{ticket}: no notification to {}, its Reply-To {reply_to} has a local part over {MAX_LOCAL_PART} octets",
                    agent.address
                );
                continue;
            }
            let composed = compose::agent_notification(
                cfg,
                pl.templates(),
                &NotifyInput {
                    ticket_id: ticket,
                    ticket_subject: &subject,
                    status,
                    priority: details.priority,
                    tags: &details.tags,
                    assignee: details.assignee.as_deref(),
                    agent,
                    reply_token: &tok,
                    customer: &customer,
                    sender: from,
                    held_reason: held,
                    customer_language: language.as_deref(),
                    customer_tier: &tier,
                    customer_extra: &customer_extra,
                    open_tickets,
                    past_tickets,
                    match_reason: reason.as_str(),
                    sla_due: sla_due.as_deref(),
                    routing_note: routing_note.as_deref(),
                    category: category.as_deref(),
                    team: team.as_deref(),
                    forced_human: forced.as_deref(),
                    suggested_macros: &macros,
                    handoff: self.handoffs.get(&ticket),
                    similar: &similar,
                    event,
                    message_text: &p.body_text,
                    customer_message_id: (!p.synthetic_id).then_some(message_id),
                },
            );
            let composed = match composed {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(
                        "Ticket #{ticket}: no notification to {}, it cannot be composed: {e:#}",
                        agent.address
                    );
                    continue;
                }
            };
            self.push_notification(cfg, ticket, composed, &root)?;
        }
        Ok(())
    }

    /// Records a composed notification: its message row (threaded under the ticket's
    /// agent thread root, so a reply naming the root or the notification finds the
    /// ticket) and its outbox row. The agent does not become a participant: their mail
    /// must never be taken for the customer's.
    fn push_notification(
        &mut self,
        cfg: &Config,
        ticket: TicketId,
        composed: compose::Composed,
        root: &str,
    ) -> Result<()> {
        self.queue_outbound(
            cfg,
            ticket,
            MessageKind::Notification,
            composed,
            vec![root.to_string()],
        )
    }
}

/// Who is told about a customer message on a ticket: the assigned agent, or every agent
/// when nobody (or nobody configured) is assigned, then the invited collaborators; each
/// address once, and never `sender` (lower-cased), who wrote the message.
fn notify_recipients(
    cfg: &Config,
    details: &TicketDetails,
    sender: &str,
    ticket: TicketId,
) -> Vec<Mailbox> {
    let assigned = details.assignee.as_deref().and_then(|name| {
        let name = name.trim().to_lowercase();
        cfg.agents.iter().find(|a| a.name.to_lowercase() == name)
    });
    if let (Some(name), None) = (&details.assignee, assigned) {
        tracing::info!(
            "Ticket #{ticket}: assignee {name:?} is not a configured agent; notifying every agent"
        );
    }
    let agents: Vec<&crate::config::AgentConfig> = match assigned {
        Some(a) => vec![a],
        None => cfg.agents.iter().collect(),
    };
    let mut seen: HashSet<String> = HashSet::from([sender.to_string()]);
    let mut out = Vec::new();
    for a in agents {
        if seen.insert(a.email.to_lowercase()) {
            out.push(Mailbox {
                name: Some(a.name.clone()),
                address: a.email.clone(),
            });
        }
    }
    for c in &details.collaborators {
        if seen.insert(c.to_lowercase()) {
            out.push(Mailbox {
                name: cfg.agent_by_email(c).map(|a| a.name.clone()),
                address: c.clone(),
            });
        }
    }
    out
}

/// The first `max` bytes of `s`, cut at a character boundary.
fn head(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

/// The language of a message for a notification that triage did not read (held mail):
/// `rules::language` on its new text.
fn detect_language(body: &str) -> Option<&'static str> {
    let new = crate::channels::email::quote::new_text(head(body, 8 * LANGUAGE_SAMPLE_BYTES));
    crate::rules::language::detect(if new.is_empty() { body } else { new })
}

/// The summary an agent gets when the bot hands a ticket over: why, what the customer
/// asked, what the bot answered (or its best guess) and how sure it was, and what triage
/// read. Every key is present (null when unknown), so templates can test each one.
#[allow(clippy::too_many_arguments)]
fn handoff_summary(
    history: Option<&crate::store::kb::History>,
    ticket: TicketId,
    reason: &str,
    asked: Option<String>,
    answered: Option<(i64, Option<String>, Option<f32>)>,
    best_guess: Option<(i64, Option<String>, Option<f32>)>,
    category: Option<String>,
    language: Option<&str>,
    sentiment: Option<f64>,
) -> serde_json::Value {
    let why = match reason {
        "asked_for_human" => "the customer asked for a person",
        "not_helped" => "the customer says the bot's answer did not help",
        "wrote_again" => "the customer wrote again after the bot's answer",
        "low_confidence" => "the bot found no article it was sure enough of",
        "ambiguous" => "two articles were about as likely; the bot did not guess",
        "no_article" => "no published article in the customer's language matches",
        _ => "the bot did not answer",
    };
    let article = |a: Option<(i64, Option<String>, Option<f32>)>| {
        a.map(|(id, title, score)| {
            serde_json::json!({
                "id": id,
                "title": title.map(|t| compose::plain_line(&t, 200)),
                "score": score.map(|s| format!("{s:.2}")),
            })
        })
    };
    // Earlier tickets than this one: the agent need not ask what happened before.
    let history = history
        .map(|h| {
            let earlier: Vec<_> = h.recent.iter().filter(|r| r.0 != ticket).collect();
            let this = h.recent.iter().find(|r| r.0 == ticket);
            let before = h.tickets - i64::from(this.is_some());
            let open = h.open - i64::from(this.is_some_and(|r| r.2 == "open" || r.2 == "pending"));
            serde_json::json!({
                "tickets": before,
                "open": open,
                "since": h.since.as_deref().map(|s| s.get(..10).unwrap_or(s)),
                "recent": earlier.iter().map(|(id, subject, status, at)| serde_json::json!({
                    "id": id,
                    "subject": compose::plain_line(subject, 120),
                    "status": status,
                    "date": at.get(..10).unwrap_or(at),
                })).collect::<Vec<_>>(),
            })
        })
        .filter(|h| h["tickets"].as_i64().unwrap_or(0) > 0);
    serde_json::json!({
        "reason": reason,
        "why": why,
        "history": history,
        "asked": asked.map(|a| compose::neutralised(&a, 1500)),
        "answered": article(answered),
        "best_guess": article(best_guess),
        "category": category,
        "language": language,
        "sentiment": sentiment.map(|s| format!("{s:.2}")),
    })
}
