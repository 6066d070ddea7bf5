//! Set-based SQL for batch ingest: a handful of statements per batch instead of a dozen per
//! message.
//!
//! On this kind of machine each statement costs a round trip to sqlx's SQLite worker
//! thread (tens of microseconds when the two threads sit on different CPUs), which made
//! per-message SQL the bottleneck. Lookups bind one JSON array and use `json_each`, so the
//! SQL text is fixed; inserts use multi-row `VALUES` built by sqlx's `QueryBuilder` (only
//! placeholders are generated, never data), chunked below SQLite's parameter limit.

use std::collections::HashMap;

use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::Result;
use super::rawstore::RawLoc;
use crate::domain::{Direction, Priority, Status, TicketId};

/// Keeps every multi-row statement below SQLite's default limit of 32766 parameters.
const MAX_PARAMS: usize = 30_000;

fn json_list<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    let v: Vec<String> = items.into_iter().map(|s| s.as_ref().to_string()).collect();
    serde_json::to_string(&v).unwrap_or_else(|_| "[]".to_string())
}

fn json_ids(items: impl IntoIterator<Item = i64>) -> String {
    let v: Vec<i64> = items.into_iter().collect();
    serde_json::to_string(&v).unwrap_or_else(|_| "[]".to_string())
}

/// Runs a lookup whose single result is `json_group_array(json_array(...))` and decodes
/// its rows.
///
/// sqlx hands every result row from its worker thread to ours through a channel, and the
/// two threads wake each other for nearly every row. A batch's lookups return hundreds of
/// rows, so those wake-ups cost more than the lookups; one JSON text is one hand-over.
async fn json_rows<T: serde::de::DeserializeOwned>(
    conn: &mut SqliteConnection,
    query: sqlx::query::QueryScalar<'_, Sqlite, String, sqlx::sqlite::SqliteArguments>,
) -> Result<Vec<T>> {
    let json = query.fetch_one(conn).await?;
    serde_json::from_str(&json).map_err(|e| sqlx::Error::Decode(Box::new(e)).into())
}

pub use crate::domain::known::{KnownMessage, KnownTicket};

/// Message kinds whose Message-ID and References never take part in threading.
pub const NON_THREADING_KINDS: &[&str] = &["held", "unprocessable", "rejected"];

pub async fn messages_by_ids(
    conn: &mut SqliteConnection,
    ids: &[String],
) -> Result<HashMap<String, KnownMessage>> {
    let rows: Vec<(i64, String, Option<i64>, String, String, String)> = json_rows(
        conn,
        sqlx::query_scalar(
            "SELECT json_group_array(json_array(id, message_id, ticket_id, body_sha256, direction, kind)) \
             FROM messages WHERE message_id IN (SELECT value FROM json_each(?))",
        )
        .bind(json_list(ids)),
    )
    .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for (row, message_id, ticket, body_sha256, dir, kind) in rows {
        out.insert(
            message_id,
            KnownMessage {
                row,
                ticket,
                body_sha256,
                direction: dir.parse().unwrap_or(Direction::Inbound),
                threads: !NON_THREADING_KINDS.contains(&kind.as_str()),
            },
        );
    }
    Ok(out)
}

/// For each of `ids`: the tickets holding a customer's message whose References name it.
///
/// Only customers' mail counts (RFC 5322's reverse lookup: a reply that arrived before its
/// parent). Our own mail, agents' mail and held mail reference our thread roots and
/// whatever a forger wrote; a new message claiming one of those ids must not be pulled
/// into their tickets.
pub async fn tickets_referencing(
    conn: &mut SqliteConnection,
    ids: &[String],
) -> Result<Vec<(String, TicketId)>> {
    json_rows(
        conn,
        sqlx::query_scalar(
            "SELECT json_group_array(json_array(ref_id, ticket_id)) FROM \
             (SELECT DISTINCT r.ref_id, m.ticket_id FROM json_each(?) j \
              CROSS JOIN message_refs r ON r.ref_id = j.value \
              CROSS JOIN messages m ON m.id = r.message_row \
              WHERE m.ticket_id IS NOT NULL AND m.direction = 'inbound' \
              AND m.kind IN ('customer', 'auto_submitted'))",
        )
        .bind(json_list(ids)),
    )
    .await
}

pub async fn customers_by_email(
    conn: &mut SqliteConnection,
    emails: &[String],
) -> Result<HashMap<String, (i64, bool)>> {
    let rows: Vec<(String, i64, Option<String>)> = json_rows(
        conn,
        sqlx::query_scalar(
            // A linked chat identity stands for the customer it was linked to.
            "SELECT json_group_array(json_array(k, id, name)) FROM ( \
               SELECT c.email AS k, c.id, c.name FROM customers c \
                 WHERE c.email IN (SELECT value FROM json_each(?1)) \
                 AND c.email NOT IN (SELECT identity FROM customer_links) \
               UNION ALL \
               SELECT l.identity AS k, c.id, c.name FROM customer_links l \
                 JOIN customers c ON c.id = l.customer_id \
                 WHERE l.identity IN (SELECT value FROM json_each(?1)))",
        )
        .bind(json_list(emails)),
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|(e, id, name)| (e, (id, name.is_some())))
        .collect())
}

/// A ticket row as [`TICKET_JSON`] encodes it.
type TicketTuple = (
    i64,
    String,
    i64,
    String,
    String,
    String,
    String,
    Option<i64>,
);

fn known_ticket(
    (id, status, customer_id, token, subject, subject_key, updated_at, merged_into): TicketTuple,
) -> KnownTicket {
    KnownTicket {
        id,
        status: status.parse().unwrap_or(Status::Open),
        customer_id,
        token,
        subject,
        subject_key,
        updated_at,
        merged_into,
    }
}

/// The columns of a [`TicketTuple`], for `json_group_array`.
const TICKET_JSON: &str = "json_array(t.id, t.status, t.customer_id, t.token, t.subject, \
     t.subject_key, t.updated_at, t.merged_into)";

/// Tickets by id or by customer reply token.
pub async fn tickets_by_ids_or_tokens(
    conn: &mut SqliteConnection,
    ids: &[i64],
    tokens: &[String],
) -> Result<Vec<KnownTicket>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT json_group_array({TICKET_JSON}) FROM tickets t \
         WHERE t.id IN (SELECT value FROM json_each(?1)) \
         OR t.token IN (SELECT value FROM json_each(?2))"
    ));
    let rows: Vec<TicketTuple> = json_rows(
        conn,
        sqlx::query_scalar(sql)
            .bind(json_ids(ids.iter().copied()))
            .bind(json_list(tokens)),
    )
    .await?;
    Ok(rows.into_iter().map(known_ticket).collect())
}

/// What an agent notification says about a ticket besides its subject and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketDetails {
    pub priority: Priority,
    /// The assigned agent's configured name, as `#assign` stored it.
    pub assignee: Option<String>,
    /// Sorted.
    pub tags: Vec<String>,
    /// Invited collaborators' addresses, lower-cased and sorted.
    pub collaborators: Vec<String>,
}

impl Default for TicketDetails {
    /// A ticket as `insert_tickets` writes it.
    fn default() -> Self {
        TicketDetails {
            priority: Priority::Normal,
            assignee: None,
            tags: Vec::new(),
            collaborators: Vec::new(),
        }
    }
}

/// Id, priority, assignee, tags and collaborators, as [`ticket_details`] encodes them.
type DetailsTuple = (i64, String, Option<String>, Vec<String>, Vec<String>);

/// Priority, assignee, tags and collaborators of these tickets, in one statement.
pub async fn ticket_details(
    conn: &mut SqliteConnection,
    ids: &[i64],
) -> Result<HashMap<TicketId, TicketDetails>> {
    // json() marks the inner arrays as JSON, so json_array nests them instead of quoting.
    let rows: Vec<DetailsTuple> = json_rows(
        conn,
        sqlx::query_scalar(
            "SELECT json_group_array(json_array(t.id, t.priority, t.assignee, \
                 json((SELECT json_group_array(tag) FROM ticket_tags WHERE ticket_id = t.id)), \
                 json((SELECT json_group_array(lower(email)) FROM ticket_collaborators \
                       WHERE ticket_id = t.id)))) \
             FROM tickets t WHERE t.id IN (SELECT value FROM json_each(?))",
        )
        .bind(json_ids(ids.iter().copied())),
    )
    .await?;
    let list = |mut v: Vec<String>| -> Vec<String> {
        v.sort();
        v.dedup();
        v
    };
    Ok(rows
        .into_iter()
        .map(|(id, priority, assignee, tags, collaborators)| {
            let details = TicketDetails {
                priority: priority.parse().unwrap_or(Priority::Normal),
                assignee: assignee.filter(|a| !a.trim().is_empty()),
                tags: list(tags),
                collaborators: list(collaborators),
            };
            (id, details)
        })
        .collect())
}

/// What an agent notification says about a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerProfile {
    pub email: String,
    pub name: Option<String>,
    pub language: Option<String>,
    pub tier: String,
    /// Tickets in `open` or `pending`, not counting the ones the caller excluded.
    pub open_tickets: i64,
    /// Tickets in `resolved` or `closed` (merged-away ones are not tickets of their own),
    /// not counting the ones the caller excluded.
    pub past_tickets: i64,
}

/// Language, tier and ticket counts of these customers, in one statement. Tickets in
/// `except` are left out of the counts: the caller holds them in memory and counts them
/// as they stand after its own changes.
pub async fn customer_profiles(
    conn: &mut SqliteConnection,
    customers: &[i64],
    except: &[i64],
) -> Result<HashMap<i64, CustomerProfile>> {
    type Row = (
        i64,
        String,
        Option<String>,
        Option<String>,
        String,
        i64,
        i64,
    );
    let rows: Vec<Row> = json_rows(
        conn,
        sqlx::query_scalar(
            "SELECT json_group_array(json_array(id, email, name, language, tier, open, past)) FROM \
             (SELECT c.id, c.email, c.name, c.language, c.tier, \
                 COALESCE(SUM(t.status IN ('open', 'pending')), 0) AS open, \
                 COALESCE(SUM(t.status IN ('resolved', 'closed')), 0) AS past \
              FROM customers c \
              LEFT JOIN tickets t ON t.customer_id = c.id AND t.merged_into IS NULL \
                  AND t.id NOT IN (SELECT value FROM json_each(?2)) \
              WHERE c.id IN (SELECT value FROM json_each(?1)) \
              GROUP BY c.id)",
        )
        .bind(json_ids(customers.iter().copied()))
        .bind(json_ids(except.iter().copied())),
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, email, name, language, tier, open_tickets, past_tickets)| {
                let profile = CustomerProfile {
                    email,
                    name,
                    language: language.filter(|l| !l.trim().is_empty()),
                    tier,
                    open_tickets,
                    past_tickets,
                };
                (id, profile)
            },
        )
        .collect())
}

/// Open tickets matching one of these (customer, subject key) pairs, updated since `since`.
///
/// Pairs, not two lists: `customer IN (...) AND key IN (...)` probes the index for every
/// combination, a quarter of a million probes for a batch of 500.
pub async fn subject_candidates(
    conn: &mut SqliteConnection,
    pairs: &[(i64, String)],
    since: &str,
) -> Result<Vec<KnownTicket>> {
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let json = serde_json::to_string(pairs).unwrap_or_else(|_| "[]".to_string());
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT json_group_array({TICKET_JSON}) FROM tickets t WHERE t.id IN \
         (SELECT t.id FROM json_each(?1) j CROSS JOIN tickets t \
          WHERE t.customer_id = j.value ->> 0 AND t.subject_key = j.value ->> 1 \
            AND t.updated_at >= ?2 AND t.status != 'closed' AND t.merged_into IS NULL)"
    ));
    let rows: Vec<TicketTuple> =
        json_rows(conn, sqlx::query_scalar(sql).bind(json).bind(since)).await?;
    Ok(rows.into_iter().map(known_ticket).collect())
}

/// Who takes part in each of these tickets: their participants (the customer, addresses
/// copied on the conversation or admitted with `#cc`) and invited collaborators,
/// lower-cased.
pub async fn participants_of(
    conn: &mut SqliteConnection,
    tickets: &[i64],
) -> Result<Vec<(TicketId, String)>> {
    json_rows(
        conn,
        sqlx::query_scalar(
            "SELECT json_group_array(json_array(ticket_id, email)) FROM \
             (SELECT ticket_id, email FROM participants \
                  WHERE ticket_id IN (SELECT value FROM json_each(?1)) \
              UNION SELECT ticket_id, lower(email) FROM ticket_collaborators \
                  WHERE ticket_id IN (SELECT value FROM json_each(?1)))",
        )
        .bind(json_ids(tickets.iter().copied())),
    )
    .await
}

pub async fn raw_ids_by_sha(
    conn: &mut SqliteConnection,
    shas: &[String],
) -> Result<HashMap<String, i64>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT sha256, id FROM raw_messages WHERE sha256 IN (SELECT value FROM json_each(?))",
    )
    .bind(json_list(shas))
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().collect())
}

pub async fn bouncing_among(conn: &mut SqliteConnection, emails: &[String]) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT email FROM address_status WHERE bouncing = 1 \
         AND email IN (SELECT value FROM json_each(?))",
    )
    .bind(json_list(emails))
    .fetch_all(conn)
    .await?)
}

pub async fn autoreply_counts_since(
    conn: &mut SqliteConnection,
    emails: &[String],
    since: &str,
) -> Result<HashMap<String, i64>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT recipient, COUNT(*) FROM autoreply_log \
         WHERE recipient IN (SELECT value FROM json_each(?)) AND created_at >= ? GROUP BY recipient",
    )
    .bind(json_list(emails))
    .bind(since)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Outbox rows by Message-ID: their ticket and recipients.
pub async fn outbox_tickets(
    conn: &mut SqliteConnection,
    ids: &[String],
) -> Result<HashMap<String, (Option<TicketId>, Vec<String>)>> {
    let rows: Vec<(String, Option<i64>, String)> = sqlx::query_as(
        "SELECT message_id, ticket_id, rcpt_to FROM outbox \
         WHERE message_id IN (SELECT value FROM json_each(?))",
    )
    .bind(json_list(ids))
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(m, t, r)| (m, (t, serde_json::from_str(&r).unwrap_or_default())))
        .collect())
}

// ---- inserts -------------------------------------------------------------------------

pub struct RawRow<'a> {
    pub id: i64,
    pub sha256: String,
    pub size: i64,
    pub truncated: bool,
    pub data: &'a [u8],
}

pub struct CustomerRow {
    pub id: i64,
    /// The identity key: an email address, or `channel:account:sender` for a chat identity.
    pub email: String,
    pub name: Option<String>,
    /// The email address a channel says the sender has: recorded, never trusted to merge.
    pub given_email: Option<String>,
    /// The language of their message, as triage detected it.
    pub language: Option<String>,
}

pub struct NewTicketRow {
    pub id: TicketId,
    pub subject: String,
    pub subject_key: String,
    pub customer_id: i64,
    pub token: String,
    pub linked_ticket_id: Option<TicketId>,
    /// What triage decided (issue 13); `Normal` and `None` without it.
    pub priority: Priority,
    pub assignee: Option<String>,
    pub category: Option<String>,
    pub team: Option<String>,
    /// JSON `{"topic": .., "term": ..}`.
    pub forced_human: Option<String>,
    pub sla_policy: Option<String>,
    /// `Open`, or `Pending` when the answer bot answered it (issue 14).
    pub status: crate::domain::Status,
    /// The bot's answer (article, normalised score) and why a person took over.
    pub bot: Option<(i64, f32)>,
    pub handoff: Option<String>,
    /// The classifier's category for the first message (`#wrong` corrects it).
    pub predicted_category: Option<String>,
}

pub struct MessageRow {
    pub id: i64,
    pub ticket_id: Option<TicketId>,
    pub raw_id: Option<i64>,
    pub message_id: String,
    pub synthetic_id: bool,
    pub body_sha256: String,
    pub direction: &'static str,
    pub kind: &'static str,
    pub from_addr: Option<String>,
    pub from_name: Option<String>,
    pub to_json: String,
    pub cc_json: String,
    pub subject: String,
    pub body_text: String,
    pub match_reason: &'static str,
    pub problems_json: String,
    pub attachments_json: String,
    pub date_header: Option<i64>,
    /// Why the message was held (kind `held`).
    pub held_reason: Option<String>,
    pub channel: &'static str,
    /// Channel account, external id and conversation (channels other than email).
    pub account: Option<String>,
    pub external_id: Option<String>,
    pub conversation: Option<String>,
    /// Triage's reading of a customer message (issue 13): the rules that fired (JSON
    /// array), the detected language and the sentiment score.
    pub rules_fired: Option<String>,
    pub language: Option<String>,
    pub sentiment: Option<f64>,
    /// The phone number the platform verified for the sender (chat channels).
    pub verified_phone: Option<String>,
}

pub struct SourceRow<'a> {
    pub mailbox: &'a str,
    pub folder: &'a str,
    pub uidvalidity: u32,
    pub uid: u32,
    pub message_row: i64,
}

pub struct OutboxRow {
    pub message_row: Option<i64>,
    pub ticket_id: Option<TicketId>,
    pub kind: &'static str,
    pub message_id: String,
    /// The transport that carries it, and for channels other than email the account and
    /// the JSON payload that transport understands (`mail_from`, `rcpt_json` and `raw`
    /// are email's payload).
    pub channel: &'static str,
    pub account: Option<String>,
    pub payload: Option<String>,
    pub mail_from: String,
    pub rcpt_json: String,
    pub raw: Vec<u8>,
}

/// One multi-row `INSERT` per chunk of `rows`: `head` is the statement up to `VALUES`,
/// `cols` the number of values `bind` pushes per row, so chunks stay under the limit.
pub(super) async fn insert_rows<T>(
    conn: &mut SqliteConnection,
    head: &'static str,
    cols: usize,
    rows: &[T],
    mut bind: impl FnMut(&mut sqlx::query_builder::Separated<'_, Sqlite, &'static str>, &T),
) -> Result<()> {
    for chunk in rows.chunks((MAX_PARAMS / cols.max(1)).max(1)) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(head);
        qb.push_values(chunk, |mut b, row| bind(&mut b, row));
        // Not cached: the SQL differs with the row count, and a cache of big multi-row
        // statements costs megabytes for little gain.
        qb.build().persistent(false).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Rows for raw bytes already staged in the segment files at `locs` (one per row).
pub async fn insert_raw_rows(
    conn: &mut SqliteConnection,
    rows: &[RawRow<'_>],
    locs: &[RawLoc],
    now: &str,
) -> Result<()> {
    let now = now.to_string();
    let rows: Vec<(&RawRow<'_>, &RawLoc)> = rows.iter().zip(locs).collect();
    insert_rows(
        conn,
        "INSERT INTO raw_messages (id, sha256, size, truncated, data, seg, seg_offset, seg_len, created_at) ",
        8,
        &rows,
        |b, (r, loc)| {
            b.push_bind(r.id)
                .push_bind(r.sha256.clone())
                .push_bind(r.size)
                .push_bind(i64::from(r.truncated))
                .push("X''")
                .push_bind(loc.seg)
                .push_bind(loc.offset)
                .push_bind(loc.len)
                .push_bind(now.clone());
        },
    )
    .await
}

pub async fn insert_customers(
    conn: &mut SqliteConnection,
    rows: &[CustomerRow],
    now: &str,
) -> Result<()> {
    let now = now.to_string();
    insert_rows(
        conn,
        "INSERT INTO customers (id, email, name, created_at, given_email, language) ",
        6,
        rows,
        |b, r| {
            b.push_bind(r.id)
                .push_bind(r.email.clone())
                .push_bind(r.name.clone())
                .push_bind(now.clone())
                .push_bind(r.given_email.clone())
                .push_bind(r.language.clone());
        },
    )
    .await
}

/// For each (channel, account, conversation): the ticket of its latest message that may
/// lead a reply (held and unprocessable messages never do).
pub async fn conversation_tickets(
    conn: &mut SqliteConnection,
    keys: &[(String, String, String)],
) -> Result<HashMap<(String, String, String), TicketId>> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let json: Vec<[&str; 3]> = keys
        .iter()
        .map(|(c, a, v)| [c.as_str(), a.as_str(), v.as_str()])
        .collect();
    let rows: Vec<(String, String, String, TicketId)> = json_rows(
        conn,
        sqlx::query_scalar(
            "SELECT json_group_array(json_array(c, a, v, t)) FROM ( \
                 SELECT k.value ->> 0 AS c, k.value ->> 1 AS a, k.value ->> 2 AS v, \
                     (SELECT m.ticket_id FROM messages m \
                      WHERE m.channel = k.value ->> 0 AND m.account = k.value ->> 1 \
                        AND m.conversation = k.value ->> 2 AND m.ticket_id IS NOT NULL \
                        AND m.kind NOT IN ('held', 'unprocessable', 'rejected') \
                      ORDER BY m.id DESC LIMIT 1) AS t \
                 FROM json_each(?) k) WHERE t IS NOT NULL",
        )
        .bind(serde_json::to_string(&json).unwrap_or_else(|_| "[]".into())),
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|(c, a, v, t)| ((c, a, v), t))
        .collect())
}

pub async fn set_customer_names(conn: &mut SqliteConnection, rows: &[(i64, String)]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let json: Vec<serde_json::Value> = rows
        .iter()
        .map(|(id, name)| serde_json::json!({"id": id, "name": name}))
        .collect();
    sqlx::query(
        "UPDATE customers SET name = j.value ->> 'name' FROM json_each(?) j \
         WHERE customers.id = j.value ->> 'id' AND customers.name IS NULL",
    )
    .bind(serde_json::Value::Array(json).to_string())
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn insert_tickets(
    conn: &mut SqliteConnection,
    rows: &[NewTicketRow],
    now: &str,
) -> Result<()> {
    let now = now.to_string();
    insert_rows(
        conn,
        "INSERT INTO tickets (id, subject, subject_key, status, priority, customer_id, token, \
             linked_ticket_id, created_at, updated_at, assignee, category, team, forced_human, \
             sla_policy, bot_article, bot_score, bot_at, handoff, handoff_at, predicted_category) ",
        21,
        rows,
        |b, r| {
            b.push_bind(r.id)
                .push_bind(r.subject.clone())
                .push_bind(r.subject_key.clone())
                .push_bind(r.status.as_str())
                .push_bind(r.priority.as_str())
                .push_bind(r.customer_id)
                .push_bind(r.token.clone())
                .push_bind(r.linked_ticket_id)
                .push_bind(now.clone())
                .push_bind(now.clone())
                .push_bind(r.assignee.clone())
                .push_bind(r.category.clone())
                .push_bind(r.team.clone())
                .push_bind(r.forced_human.clone())
                .push_bind(r.sla_policy.clone())
                .push_bind(r.bot.map(|b| b.0))
                .push_bind(r.bot.map(|b| f64::from(b.1)))
                .push_bind(r.bot.map(|_| now.clone()))
                .push_bind(r.handoff.clone())
                .push_bind(r.handoff.as_ref().map(|_| now.clone()))
                .push_bind(r.predicted_category.clone());
        },
    )
    .await
}

pub async fn insert_messages(
    conn: &mut SqliteConnection,
    rows: &[MessageRow],
    now: &str,
) -> Result<()> {
    let now = now.to_string();
    insert_rows(conn, "INSERT INTO messages (id, ticket_id, raw_id, message_id, synthetic_id, body_sha256, \
             direction, kind, from_addr, from_name, to_addrs, cc_addrs, subject, body_text, channel, \
             match_reason, problems, attachments, date_header, created_at, held_reason, account, external_id, \
             conversation, rules_fired, language, sentiment, verified_phone) ", 28, rows, |b, r| {
        b.push_bind(r.id)
            .push_bind(r.ticket_id)
            .push_bind(r.raw_id)
            .push_bind(r.message_id.clone())
            .push_bind(i64::from(r.synthetic_id))
            .push_bind(r.body_sha256.clone())
            .push_bind(r.direction)
            .push_bind(r.kind)
            .push_bind(r.from_addr.clone())
            .push_bind(r.from_name.clone())
            .push_bind(r.to_json.clone())
            .push_bind(r.cc_json.clone())
            .push_bind(r.subject.clone())
            .push_bind(r.body_text.clone())
            .push_bind(r.channel)
            .push_bind(r.match_reason)
            .push_bind(r.problems_json.clone())
            .push_bind(r.attachments_json.clone())
            .push_bind(r.date_header)
            .push_bind(now.clone())
            .push_bind(r.held_reason.clone())
            .push_bind(r.account.clone())
            .push_bind(r.external_id.clone())
            .push_bind(r.conversation.clone())
            .push_bind(r.rules_fired.clone())
            .push_bind(r.language.clone())
            .push_bind(r.sentiment)
            .push_bind(r.verified_phone.clone());
    })
    .await
}

pub async fn insert_refs(conn: &mut SqliteConnection, rows: &[(i64, String)]) -> Result<()> {
    insert_rows(
        conn,
        "INSERT OR IGNORE INTO message_refs (message_row, ref_id) ",
        2,
        rows,
        |b, (row, r)| {
            b.push_bind(*row).push_bind(r.clone());
        },
    )
    .await
}

pub async fn insert_sources(
    conn: &mut SqliteConnection,
    rows: &[SourceRow<'_>],
    now: &str,
) -> Result<()> {
    let now = now.to_string();
    insert_rows(conn, "INSERT OR IGNORE INTO message_sources (mailbox, folder, uidvalidity, uid, message_row, created_at) ", 6, rows, |b, r| {
        b.push_bind(r.mailbox.to_string())
            .push_bind(r.folder.to_string())
            .push_bind(i64::from(r.uidvalidity))
            .push_bind(i64::from(r.uid))
            .push_bind(r.message_row)
            .push_bind(now.clone());
    })
    .await
}

pub async fn insert_participants(
    conn: &mut SqliteConnection,
    rows: &[(TicketId, String, &'static str)],
) -> Result<()> {
    insert_rows(
        conn,
        "INSERT OR IGNORE INTO participants (ticket_id, email, role) ",
        3,
        rows,
        |b, (t, e, role)| {
            b.push_bind(*t).push_bind(e.clone()).push_bind(*role);
        },
    )
    .await
}

pub async fn insert_outbox(
    conn: &mut SqliteConnection,
    rows: &[OutboxRow],
    now: &str,
) -> Result<()> {
    let now = now.to_string();
    insert_rows(
        conn,
        "INSERT INTO outbox (message_row, ticket_id, kind, message_id, mail_from, rcpt_to, raw, \
             next_attempt_at, created_at, channel, account, payload) ",
        12,
        rows,
        |b, r| {
            b.push_bind(r.message_row)
                .push_bind(r.ticket_id)
                .push_bind(r.kind)
                .push_bind(r.message_id.clone())
                .push_bind(r.mail_from.clone())
                .push_bind(r.rcpt_json.clone())
                .push_bind(r.raw.clone())
                .push_bind(now.clone())
                .push_bind(now.clone())
                .push_bind(r.channel)
                .push_bind(r.account.clone())
                .push_bind(r.payload.clone());
        },
    )
    .await
}

pub async fn insert_autoreply_log(
    conn: &mut SqliteConnection,
    rows: &[(String, TicketId)],
    now: &str,
) -> Result<()> {
    let now = now.to_string();
    insert_rows(
        conn,
        "INSERT INTO autoreply_log (recipient, ticket_id, created_at) ",
        3,
        rows,
        |b, (r, t)| {
            b.push_bind(r.clone()).push_bind(*t).push_bind(now.clone());
        },
    )
    .await
}

/// Sets status and updated_at of existing tickets in one statement.
pub async fn update_tickets(
    conn: &mut SqliteConnection,
    rows: &[(TicketId, Status)],
    now: &str,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let json: Vec<serde_json::Value> = rows
        .iter()
        .map(|(id, s)| serde_json::json!({"id": id, "status": s.as_str()}))
        .collect();
    sqlx::query(
        "UPDATE tickets SET status = j.value ->> 'status', updated_at = ?2 \
         FROM json_each(?1) j WHERE tickets.id = j.value ->> 'id'",
    )
    .bind(serde_json::Value::Array(json).to_string())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A link between two tickets of different customers that one message connects.
pub struct LinkRow {
    pub a: TicketId,
    pub b: TicketId,
    pub reason: String,
    pub message_row: i64,
}

/// Records links (each pair once, lower id first; a pair already linked stays as it was).
pub async fn insert_links(conn: &mut SqliteConnection, rows: &[LinkRow], now: &str) -> Result<()> {
    for r in rows {
        let (lo, hi) = (r.a.min(r.b), r.a.max(r.b));
        if lo == hi {
            continue;
        }
        sqlx::query(
            "INSERT OR IGNORE INTO ticket_links (ticket_id, linked_id, reason, message_row, created_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(lo)
        .bind(hi)
        .bind(&r.reason)
        .bind(r.message_row)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[tokio::test]
    async fn json_rows_carry_hostile_text_and_extreme_numbers_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let mut conn = store.pool().acquire().await.unwrap();
        // NUL, quotes, backslashes, control characters, line separators, CJK and emoji.
        let text = "a\0b\"c\\d\u{1}\r\n\u{2028}回复：谢谢 😀 ]],[\"";
        let rows: Vec<(i64, String, Option<String>, i64)> = json_rows(
            &mut conn,
            sqlx::query_scalar(
                "SELECT json_group_array(json_array(?1, ?2, NULL, ?3)) \
                 FROM (SELECT 1 UNION ALL SELECT 2)",
            )
            .bind(i64::MAX)
            .bind(text)
            .bind(i64::MIN),
        )
        .await
        .unwrap();
        let want = (i64::MAX, text.to_string(), None, i64::MIN);
        assert_eq!(rows, vec![want.clone(), want]);
        // No rows is an empty list, not an error.
        let none: Vec<(i64,)> = json_rows(
            &mut conn,
            sqlx::query_scalar("SELECT json_group_array(json_array(1)) WHERE 0"),
        )
        .await
        .unwrap();
        assert!(none.is_empty());
        // A shape that does not match is a decode error, not a panic or a wrong value.
        let bad: Result<Vec<(i64, i64)>> = json_rows(
            &mut conn,
            sqlx::query_scalar("SELECT json_group_array(json_array('x', 1))"),
        )
        .await;
        assert!(bad.is_err());
    }
}
