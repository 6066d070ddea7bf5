//! Messages, their raw bytes and their threading references.

use serde::Serialize;
use sqlx::{Row, SqliteConnection};

use super::rawstore::{RawLoc, RawStore};
use super::{Result, StoreError, bulk, events, ids};
use crate::domain::{Channel, Direction, MatchReason, MessageKind, TicketId};

/// Stores raw bytes once per content hash; returns the row id (existing or new). New bytes
/// go to the segment files and are on disk before this returns, hence before COMMIT.
pub async fn insert_raw(
    conn: &mut SqliteConnection,
    raw: &RawStore,
    sha256: &str,
    data: &[u8],
    original_size: usize,
    now: &str,
) -> Result<i64> {
    if let Some(id) = sqlx::query_scalar::<_, i64>("SELECT id FROM raw_messages WHERE sha256 = ?")
        .bind(sha256)
        .fetch_optional(&mut *conn)
        .await?
    {
        return Ok(id);
    }
    let loc = raw
        .append(&[(data, sha256)])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::Conflict("the raw store wrote nothing".into()))?;
    // The unit of work's statement, with an id from the one allocator.
    let id = ids::next_id(conn, ids::Table::Raw).await?;
    let row = bulk::RawRow {
        id,
        sha256: sha256.to_string(),
        size: original_size as i64,
        truncated: data.len() < original_size,
        data,
    };
    bulk::insert_raw_rows(
        conn,
        std::slice::from_ref(&row),
        std::slice::from_ref(&loc),
        now,
    )
    .await?;
    Ok(id)
}

/// The stored bytes of raw row `id` (a truncated message's kept head), from its segment or,
/// for rows older than the segment files, from the database.
pub async fn raw_bytes(conn: &mut SqliteConnection, raw: &RawStore, id: i64) -> Result<Vec<u8>> {
    let (data, seg, offset, len): (Vec<u8>, Option<i64>, Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT data, seg, seg_offset, seg_len FROM raw_messages WHERE id = ?")
            .bind(id)
            .fetch_optional(conn)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("raw message {id}")))?;
    match (seg, offset, len) {
        (Some(seg), Some(offset), Some(len)) => Ok(raw.read(RawLoc { seg, offset, len })?),
        _ => Ok(data),
    }
}

/// The stored bytes of the message in row `message_row`, if it has any.
pub async fn message_raw(
    conn: &mut SqliteConnection,
    raw: &RawStore,
    message_row: i64,
) -> Result<Option<Vec<u8>>> {
    let raw_id: Option<Option<i64>> =
        sqlx::query_scalar("SELECT raw_id FROM messages WHERE id = ?")
            .bind(message_row)
            .fetch_optional(&mut *conn)
            .await?;
    match raw_id {
        None => Err(StoreError::NotFound(format!("message {message_row}"))),
        Some(None) => Ok(None),
        Some(Some(id)) => Ok(Some(raw_bytes(conn, raw, id).await?)),
    }
}

/// The bytes of a message named by its row number or its Message-ID (angle brackets and
/// case do not matter): what arrived for inbound mail, what was queued for our own.
pub async fn raw_of(conn: &mut SqliteConnection, raw: &RawStore, which: &str) -> Result<Vec<u8>> {
    let which = which.trim();
    let row: Option<i64> = match which.parse::<i64>() {
        Ok(n) => Some(n),
        Err(_) => {
            let id = which
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_lowercase();
            sqlx::query_scalar("SELECT id FROM messages WHERE message_id = ?")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
        }
    };
    let Some(row) = row else {
        return Err(StoreError::NotFound(format!("no message {which}")));
    };
    match message_raw(conn, raw, row).await {
        Ok(Some(bytes)) => return Ok(bytes),
        Ok(None) => {}
        Err(StoreError::NotFound(_)) => {
            return Err(StoreError::NotFound(format!("no message {which}")));
        }
        Err(e) => return Err(e),
    }
    sqlx::query_scalar::<_, Vec<u8>>(
        "SELECT raw FROM outbox WHERE message_row = ? ORDER BY id LIMIT 1",
    )
    .bind(row)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("message {which} has no stored bytes")))
}

/// A stored message, as far as dedup and threading need it.
#[derive(Debug, Clone)]
pub struct MessageRef {
    pub row: i64,
    pub ticket_id: Option<TicketId>,
    pub body_sha256: String,
    pub direction: Direction,
    /// May lead a reply to its ticket (see `bulk::NON_THREADING_KINDS`).
    pub threads: bool,
}

fn message_ref(r: &sqlx::sqlite::SqliteRow) -> Result<MessageRef> {
    let dir: String = r.try_get("direction")?;
    Ok(MessageRef {
        row: r.try_get("id")?,
        ticket_id: r.try_get("ticket_id")?,
        body_sha256: r.try_get("body_sha256")?,
        direction: dir.parse().unwrap_or(Direction::Inbound),
        threads: !super::bulk::NON_THREADING_KINDS
            .contains(&r.try_get::<String, _>("kind")?.as_str()),
    })
}

pub async fn find_by_message_id(
    conn: &mut SqliteConnection,
    message_id: &str,
) -> Result<Option<MessageRef>> {
    let row = sqlx::query(
        "SELECT id, ticket_id, body_sha256, direction, kind FROM messages WHERE message_id = ?",
    )
    .bind(message_id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(message_ref).transpose()
}

/// Fields of a new message row.
pub struct NewMessage<'a> {
    pub ticket_id: Option<TicketId>,
    pub raw_id: Option<i64>,
    pub message_id: &'a str,
    pub synthetic_id: bool,
    pub body_sha256: &'a str,
    pub direction: Direction,
    pub kind: MessageKind,
    pub from_addr: Option<&'a str>,
    pub from_name: Option<&'a str>,
    pub to_json: &'a str,
    pub cc_json: &'a str,
    pub subject: &'a str,
    pub body_text: &'a str,
    pub channel: Channel,
    pub match_reason: MatchReason,
    pub problems_json: &'a str,
    pub attachments_json: &'a str,
    pub date_header: Option<i64>,
    pub now: &'a str,
}

/// Adds one message row: the same statement as a unit of work's rows
/// ([`bulk::insert_messages`]), with its id from [`ids::next_id`].
pub async fn insert_message(conn: &mut SqliteConnection, m: &NewMessage<'_>) -> Result<i64> {
    let id = ids::next_id(conn, ids::Table::Messages).await?;
    let row = bulk::MessageRow {
        id,
        ticket_id: m.ticket_id,
        raw_id: m.raw_id,
        message_id: m.message_id.to_string(),
        synthetic_id: m.synthetic_id,
        body_sha256: m.body_sha256.to_string(),
        direction: m.direction.as_str(),
        kind: m.kind.as_str(),
        from_addr: m.from_addr.map(str::to_string),
        from_name: m.from_name.map(str::to_string),
        to_json: m.to_json.to_string(),
        cc_json: m.cc_json.to_string(),
        subject: m.subject.to_string(),
        body_text: m.body_text.to_string(),
        match_reason: m.match_reason.as_str(),
        problems_json: m.problems_json.to_string(),
        attachments_json: m.attachments_json.to_string(),
        date_header: m.date_header,
        held_reason: None,
        channel: m.channel.as_str(),
        account: None,
        external_id: None,
        conversation: None,
        rules_fired: None,
        language: None,
        sentiment: None,
        verified_phone: None,
    };
    bulk::insert_messages(conn, std::slice::from_ref(&row), m.now)
        .await
        .map_err(|e| match e {
            StoreError::Db(e) => StoreError::from_sqlx(e, "message"),
            other => other,
        })?;
    // Its event, as the unit of work writes for its own rows.
    if let Some(t) = m.ticket_id {
        let e = events::NewEvent::message_added(
            t,
            id,
            m.direction.as_str(),
            m.kind.as_str(),
            m.channel.as_str(),
        );
        events::append(conn, e, m.now).await?;
    }
    Ok(id)
}

/// The references of one message (the unit of work's statement).
pub async fn insert_refs(conn: &mut SqliteConnection, row: i64, refs: &[String]) -> Result<()> {
    let rows: Vec<(i64, String)> = refs.iter().map(|r| (row, r.clone())).collect();
    bulk::insert_refs(conn, &rows).await
}

/// Moves messages that were stored without a ticket onto one (not used for customer mail,
/// which always has a ticket; kept for bounces attached later).
pub async fn set_message_ticket(
    conn: &mut SqliteConnection,
    row: i64,
    ticket: TicketId,
) -> Result<()> {
    sqlx::query("UPDATE messages SET ticket_id = ? WHERE id = ?")
        .bind(ticket)
        .bind(row)
        .execute(conn)
        .await?;
    Ok(())
}

/// A message as shown by `ticket show`.
#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    pub id: i64,
    /// The ticket it is filed on, if any.
    pub ticket: Option<TicketId>,
    pub message_id: String,
    pub direction: String,
    pub kind: String,
    pub from: Option<String>,
    pub from_name: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub body_text: String,
    pub channel: String,
    /// Channel account, the channel's id of the message and its conversation (channels
    /// other than email).
    pub account: Option<String>,
    pub external_id: Option<String>,
    pub conversation: Option<String>,
    pub match_reason: String,
    pub problems: Vec<String>,
    pub attachments: serde_json::Value,
    pub created_at: String,
    /// Delivery state of outbound mail: pending, sent or failed.
    pub delivery: Option<String>,
    /// The agent who wrote it (agents' replies, notes, commands) or claimed to (held).
    pub agent: Option<String>,
    /// Why a message that claimed to be an agent's was held.
    pub held_reason: Option<String>,
}

fn json_list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

const VIEW_COLUMNS: &str = "SELECT m.id, m.ticket_id, m.message_id, m.direction, m.kind, \
     m.from_addr, m.from_name, m.to_addrs, m.cc_addrs, m.subject, m.body_text, m.channel, \
     m.match_reason, m.problems, m.attachments, m.created_at, m.agent, m.held_reason, \
     m.account, m.external_id, m.conversation, (SELECT o.status FROM outbox o WHERE o.message_row = m.id) AS delivery FROM messages m";

/// Kinds of messages that could not be filed as they came: `message list --problems`.
pub const PROBLEM_KINDS: &[&str] = &["unprocessable", "rejected", "held"];

pub async fn list_message_views(
    conn: &mut SqliteConnection,
    ticket: TicketId,
) -> Result<Vec<MessageView>> {
    // Only constants are formatted in: the values are bound.
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{VIEW_COLUMNS} WHERE m.ticket_id = ? ORDER BY m.id"
    )))
    .bind(ticket)
    .fetch_all(conn)
    .await?;
    views(&rows)
}

/// The newest messages, at most `limit`; only [`PROBLEM_KINDS`] when `problems`, and
/// only those stored at or after `since` (a database time) when given.
pub async fn list_recent_views(
    conn: &mut SqliteConnection,
    problems: bool,
    since: Option<&str>,
    limit: i64,
) -> Result<Vec<MessageView>> {
    let kinds = if problems {
        let list: Vec<String> = PROBLEM_KINDS.iter().map(|k| format!("'{k}'")).collect();
        format!("m.kind IN ({})", list.join(", "))
    } else {
        "1 = 1".to_string()
    };
    // Only constants are formatted in: the values are bound.
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{VIEW_COLUMNS} WHERE {kinds} AND m.created_at >= ? ORDER BY m.id DESC LIMIT ?"
    )))
    .bind(since.unwrap_or(""))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    views(&rows)
}

fn views(rows: &[sqlx::sqlite::SqliteRow]) -> Result<Vec<MessageView>> {
    rows.iter()
        .map(|r| {
            let to: String = r.try_get("to_addrs")?;
            let cc: String = r.try_get("cc_addrs")?;
            let problems: String = r.try_get("problems")?;
            let attachments: String = r.try_get("attachments")?;
            Ok(MessageView {
                id: r.try_get("id")?,
                ticket: r.try_get("ticket_id")?,
                message_id: r.try_get("message_id")?,
                direction: r.try_get("direction")?,
                kind: r.try_get("kind")?,
                from: r.try_get("from_addr")?,
                from_name: r.try_get("from_name")?,
                to: json_list(&to),
                cc: json_list(&cc),
                subject: r.try_get("subject")?,
                body_text: r.try_get("body_text")?,
                channel: r.try_get("channel")?,
                account: r.try_get("account")?,
                external_id: r.try_get("external_id")?,
                conversation: r.try_get("conversation")?,
                match_reason: r.try_get("match_reason")?,
                problems: json_list(&problems),
                attachments: serde_json::from_str(&attachments).unwrap_or(serde_json::Value::Null),
                created_at: r.try_get("created_at")?,
                delivery: r.try_get("delivery")?,
                agent: r.try_get("agent")?,
                held_reason: r.try_get("held_reason")?,
            })
        })
        .collect()
}

/// Messages stored without a ticket (unprocessable, rejected, unattached bounces).
pub async fn count_unattached(conn: &mut SqliteConnection) -> Result<i64> {
    Ok(
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM messages WHERE ticket_id IS NULL")
            .fetch_one(conn)
            .await?,
    )
}

/// What an answer to a ticket's customer needs: who they are, the Message-IDs of the
/// conversation (for In-Reply-To and References) and where they last wrote from.
#[derive(Debug, Clone)]
pub struct ReplyContext {
    /// The customer's identity key (an email address, or `channel:account:sender`).
    pub customer: String,
    pub customer_name: Option<String>,
    /// Message-IDs of the customer's and our replies, oldest first (not synthetic ones).
    pub references: Vec<String>,
    /// The customer's latest mail, to answer.
    pub last_customer_mail: Option<String>,
    /// The channel, account and conversation of the customer's latest message.
    pub channel: Channel,
    pub account: Option<String>,
    pub conversation: Option<String>,
    /// The channel's id of the customer's latest message (what a chat answer replies to).
    pub external_id: Option<String>,
}

pub async fn get_reply_context(
    conn: &mut SqliteConnection,
    ticket: TicketId,
) -> Result<ReplyContext> {
    let (customer, customer_name): (String, Option<String>) = sqlx::query_as(
        "SELECT c.email, c.name FROM tickets t JOIN customers c ON c.id = t.customer_id WHERE t.id = ?",
    )
    .bind(ticket)
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| StoreError::from_sqlx(e, "ticket"))?;
    let references: Vec<String> = sqlx::query_scalar(
        "SELECT message_id FROM messages WHERE ticket_id = ? AND synthetic_id = 0 \
         AND kind IN ('customer', 'agent_reply', 'auto_reply') AND channel = 'email' ORDER BY id",
    )
    .bind(ticket)
    .fetch_all(&mut *conn)
    .await?;
    let last_customer_mail: Option<String> = sqlx::query_scalar(
        "SELECT message_id FROM messages WHERE ticket_id = ? AND synthetic_id = 0 \
         AND kind = 'customer' AND channel = 'email' ORDER BY id DESC LIMIT 1",
    )
    .bind(ticket)
    .fetch_optional(&mut *conn)
    .await?;
    type Latest = (String, Option<String>, Option<String>, Option<String>);
    let latest: Option<Latest> = sqlx::query_as(
        "SELECT channel, account, conversation, external_id FROM messages WHERE ticket_id = ? \
         AND kind = 'customer' ORDER BY id DESC LIMIT 1",
    )
    .bind(ticket)
    .fetch_optional(&mut *conn)
    .await?;
    let (channel, account, conversation, external_id) = match latest {
        Some((c, a, v, x)) => (c.parse().unwrap_or_default(), a, v, x),
        None => (Channel::Email, None, None, None),
    };
    Ok(ReplyContext {
        customer,
        customer_name,
        references,
        last_customer_mail,
        channel,
        account,
        conversation,
        external_id,
    })
}

/// The account, conversation and external id of the customer's latest message on
/// `channel` in `ticket` (`#via`), if they ever wrote from it there.
pub async fn find_latest_on_channel(
    conn: &mut SqliteConnection,
    ticket: TicketId,
    channel: Channel,
) -> Result<Option<(Option<String>, Option<String>, Option<String>)>> {
    Ok(sqlx::query_as(
        "SELECT account, conversation, external_id FROM messages WHERE ticket_id = ? \
         AND kind = 'customer' AND channel = ? ORDER BY id DESC LIMIT 1",
    )
    .bind(ticket)
    .bind(channel.as_str())
    .fetch_optional(conn)
    .await?)
}

/// The ticket message `row` is on, if any.
pub async fn find_ticket_of_row(conn: &mut SqliteConnection, row: i64) -> Result<Option<TicketId>> {
    Ok(
        sqlx::query_scalar::<_, Option<TicketId>>("SELECT ticket_id FROM messages WHERE id = ?")
            .bind(row)
            .fetch_optional(conn)
            .await?
            .flatten(),
    )
}

/// Who wrote a message (agents' mail) and why it was held.
pub async fn set_agent_columns(
    conn: &mut SqliteConnection,
    row: i64,
    agent: Option<&str>,
    held_reason: Option<&str>,
) -> Result<()> {
    sqlx::query("UPDATE messages SET agent = ?, held_reason = ? WHERE id = ?")
        .bind(agent)
        .bind(held_reason)
        .bind(row)
        .execute(conn)
        .await?;
    Ok(())
}

/// The agent reply on `ticket` with exactly this text stored at or after `since`, if any
/// (a double send).
pub async fn find_same_agent_reply_since(
    conn: &mut SqliteConnection,
    ticket: TicketId,
    text: &str,
    since: &str,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar::<_, i64>(
        "SELECT id FROM messages WHERE ticket_id = ? AND kind = 'agent_reply' \
         AND direction = 'inbound' AND body_text = ? AND created_at >= ? \
         ORDER BY id DESC LIMIT 1",
    )
    .bind(ticket)
    .bind(text)
    .bind(since)
    .fetch_optional(conn)
    .await?)
}

/// A message's kind and its problems (a JSON array of sentences).
pub async fn get_kind_and_problems(
    conn: &mut SqliteConnection,
    row: i64,
) -> Result<(String, Vec<String>)> {
    let (kind, problems): (String, String) =
        sqlx::query_as("SELECT kind, problems FROM messages WHERE id = ?")
            .bind(row)
            .fetch_one(conn)
            .await
            .map_err(|e| StoreError::from_sqlx(e, "message"))?;
    Ok((kind, serde_json::from_str(&problems).unwrap_or_default()))
}
