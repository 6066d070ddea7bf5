//! Customer profiles (issue 14): what history says about a customer (tickets, complaints,
//! first and last contact, channels), what people said (imported attributes, agents'
//! notes, a tier or language set by hand), and the bulk import that fills them.
//!
//! A language set by a person (`language_source` `agent` or `import`) is never changed by
//! detection again: `store::triage::write_batch` writes detected languages only where
//! `language_source IS NULL`.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use sqlx::{Row, SqliteConnection};

use super::events::{self, NewEvent};
use super::{Result, StoreError};
use crate::domain::{EventKind, TicketId};

/// A message sentiment at or below this makes its ticket a complaint.
pub const COMPLAINT_SENTIMENT: f64 = -0.5;
/// Notes an agent notification shows, newest first.
pub const NOTIFY_NOTES: i64 = 5;

/// An agent's note on a customer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Note {
    pub text: String,
    pub agent: String,
    pub ticket_id: Option<TicketId>,
    pub created_at: String,
}

/// Everything known about one customer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    pub id: i64,
    pub email: String,
    pub name: Option<String>,
    /// The addresses the customer is known by: the stored one and the one they gave
    /// (`given_email`, a chat channel's customer who typed an address), distinct.
    pub addresses: Vec<String>,
    pub language: Option<String>,
    /// `agent`, `import`, or `detected` when no person set it (and `None` with no language).
    pub language_source: Option<String>,
    pub tier: String,
    pub company: Option<String>,
    pub plan: Option<String>,
    /// In international form (`profile::phone_number`): a chat platform's verified number
    /// equal to it links the chat to this customer.
    pub phone: Option<String>,
    /// Imported custom fields.
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// Newest first.
    pub notes: Vec<Note>,
    /// Tickets of their own (merged-away ones not counted).
    pub tickets: i64,
    /// Tickets with a customer message of sentiment at or below [`COMPLAINT_SENTIMENT`],
    /// or with a red alert (escalated or not).
    pub complaints: i64,
    /// Their first and last message (RFC 3339, UTC).
    pub first_contact: Option<String>,
    pub last_contact: Option<String>,
    /// The channels they wrote from, sorted.
    pub channels: Vec<String>,
    /// Average satisfaction rating; none until ratings are collected.
    pub satisfaction: Option<f64>,
    /// Chat identities linked to this customer, oldest first.
    pub identities: Vec<LinkedIdentity>,
}

/// A chat identity linked to a customer, and on what signal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkedIdentity {
    /// `telegram:shop_bot:42`.
    pub identity: String,
    /// `agent` (an agent's `#link`), `code` (a mailed one-time code sent back in chat) or
    /// `phone` (a number the platform verified).
    pub signal: String,
    pub linked_by: Option<String>,
    pub ticket_id: Option<TicketId>,
    pub linked_at: String,
}

/// One line of `customer list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomerSummary {
    pub id: i64,
    pub email: String,
    pub name: Option<String>,
    pub tier: String,
    pub company: Option<String>,
    pub plan: Option<String>,
    pub language: Option<String>,
    pub tickets: i64,
}

/// What a notification shows of a customer beyond tier and language.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NotifyProfile {
    pub company: Option<String>,
    pub plan: Option<String>,
    /// A person set the language: it wins over the language detected in a message.
    pub language_set: bool,
    /// The newest [`NOTIFY_NOTES`] notes: (text, agent, day).
    pub notes: Vec<(String, String, String)>,
}

/// The customer with this address (ASCII case-insensitive), or `NotFound`.
pub async fn customer_profile(conn: &mut SqliteConnection, email: &str) -> Result<Profile> {
    // A linked chat identity stands for the customer it was linked to.
    let linked: Option<String> = sqlx::query_scalar(
        "SELECT c.email FROM customer_links l JOIN customers c ON c.id = l.customer_id \
         WHERE l.identity = ?",
    )
    .bind(email.trim())
    .fetch_optional(&mut *conn)
    .await?;
    let email = linked.as_deref().unwrap_or(email);
    let row = sqlx::query(
        "SELECT id, email, name, given_email, language, language_source, tier, company, plan, \
         phone, attributes FROM customers WHERE email = ? COLLATE NOCASE \
         OR given_email = ? COLLATE NOCASE ORDER BY email = ? COLLATE NOCASE DESC LIMIT 1",
    )
    .bind(email.trim())
    .bind(email.trim())
    .bind(email.trim())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("customer {}", email.trim())))?;
    let id: i64 = row.try_get("id")?;
    let email: String = row.try_get("email")?;
    let mut addresses = vec![email.clone()];
    if let Some(g) = row.try_get::<Option<String>, _>("given_email")?
        && !g.eq_ignore_ascii_case(&email)
    {
        addresses.push(g);
    }
    let language: Option<String> = row.try_get("language")?;
    let source: Option<String> = row.try_get("language_source")?;
    let language_source = match (&language, source) {
        (_, Some(s)) => Some(s),
        (Some(_), None) => Some("detected".to_string()),
        (None, None) => None,
    };
    let attributes: String = row.try_get("attributes")?;
    let attributes = serde_json::from_str(&attributes).unwrap_or_default();

    let history = sqlx::query(
        "SELECT \
           (SELECT COUNT(*) FROM tickets WHERE customer_id = ?1 AND merged_into IS NULL) AS tickets, \
           (SELECT COUNT(*) FROM tickets t WHERE t.customer_id = ?1 AND t.merged_into IS NULL AND \
              (EXISTS (SELECT 1 FROM messages m WHERE m.ticket_id = t.id \
                 AND m.kind = 'customer' AND m.sentiment <= ?2) \
               OR EXISTS (SELECT 1 FROM alerts a WHERE a.ticket_id = t.id))) AS complaints, \
           (SELECT MIN(m.created_at) FROM messages m JOIN tickets t ON t.id = m.ticket_id \
              WHERE t.customer_id = ?1 AND m.kind = 'customer') AS first_contact, \
           (SELECT MAX(m.created_at) FROM messages m JOIN tickets t ON t.id = m.ticket_id \
              WHERE t.customer_id = ?1 AND m.kind = 'customer') AS last_contact, \
           (SELECT json_group_array(channel) FROM (SELECT DISTINCT m.channel FROM messages m \
              JOIN tickets t ON t.id = m.ticket_id WHERE t.customer_id = ?1 \
              AND m.kind = 'customer' ORDER BY m.channel)) AS channels",
    )
    .bind(id)
    .bind(COMPLAINT_SENTIMENT)
    .fetch_one(&mut *conn)
    .await?;
    let channels: String = history.try_get("channels")?;
    Ok(Profile {
        id,
        email,
        name: row.try_get("name")?,
        addresses,
        language,
        language_source,
        tier: row.try_get("tier")?,
        company: row.try_get("company")?,
        plan: row.try_get("plan")?,
        phone: row.try_get("phone")?,
        attributes,
        notes: list_notes(conn, id).await?,
        tickets: history.try_get("tickets")?,
        complaints: history.try_get("complaints")?,
        first_contact: history.try_get("first_contact")?,
        last_contact: history.try_get("last_contact")?,
        channels: serde_json::from_str(&channels).unwrap_or_default(),
        satisfaction: None,
        identities: list_identities(conn, id).await?,
    })
}

/// For each of `identities` that is linked to a customer: that customer's newest open or
/// pending ticket updated at or after `since` (`[threading] link_window_days`).
pub async fn linked_open_tickets(
    conn: &mut SqliteConnection,
    identities: &[String],
    since: &str,
) -> Result<Vec<(String, TicketId)>> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for identity in identities {
        if !seen.insert(identity.as_str()) {
            continue;
        }
        let t: Option<TicketId> = sqlx::query_scalar(
            "SELECT t.id FROM customer_links l JOIN tickets t ON t.customer_id = l.customer_id \
             WHERE l.identity = ? AND t.status IN ('open', 'pending') AND t.merged_into IS NULL \
             AND t.updated_at >= ? ORDER BY t.updated_at DESC, t.id DESC LIMIT 1",
        )
        .bind(identity)
        .bind(since)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(t) = t {
            out.push((identity.clone(), t));
        }
    }
    Ok(out)
}

/// The email customers (not chat identities) whose profile has phone number `phone`
/// (international form): (id, address).
pub async fn customers_with_phone(
    conn: &mut SqliteConnection,
    phone: &str,
) -> Result<Vec<(i64, String)>> {
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, email FROM customers WHERE phone = ? ORDER BY id LIMIT 10")
            .bind(phone)
            .fetch_all(conn)
            .await?;
    Ok(rows
        .into_iter()
        .filter(|(_, e)| crate::domain::Channel::of_identity(e).is_none())
        .collect())
}

/// The chat identities linked to `customer`, oldest first.
pub async fn list_identities(
    conn: &mut SqliteConnection,
    customer: i64,
) -> Result<Vec<LinkedIdentity>> {
    let rows = sqlx::query(
        "SELECT identity, signal, linked_by, ticket_id, linked_at FROM customer_links \
         WHERE customer_id = ? ORDER BY linked_at, identity",
    )
    .bind(customer)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(LinkedIdentity {
                identity: r.try_get("identity")?,
                signal: r.try_get("signal")?,
                linked_by: r.try_get("linked_by")?,
                ticket_id: r.try_get("ticket_id")?,
                linked_at: r.try_get("linked_at")?,
            })
        })
        .collect()
}

/// Links the chat customer `chat` (whose key is its identity) to the customer with
/// `email`, made if there is none: the identity is recorded with its `signal`, the chat
/// customer's tickets and notes become the other's, and what the other's profile lacks
/// (name, language, a tier above standard) is taken from it. One `profile_changed` event
/// on `ticket`. Returns the customer the identity now stands for.
#[allow(clippy::too_many_arguments)]
pub async fn link_identity(
    conn: &mut SqliteConnection,
    chat: i64,
    email: &str,
    signal: &str,
    by: Option<&str>,
    ticket: Option<TicketId>,
    now: &str,
) -> Result<i64> {
    let (identity, name, language, tier): (String, Option<String>, Option<String>, String) =
        sqlx::query_as("SELECT email, name, language, tier FROM customers WHERE id = ?")
            .bind(chat)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("customer {chat}")))?;
    let existing: Option<i64> =
        sqlx::query_scalar("SELECT id FROM customers WHERE email = ? COLLATE NOCASE")
            .bind(email)
            .fetch_optional(&mut *conn)
            .await?;
    let target = match existing {
        Some(id) => id,
        None => {
            sqlx::query_scalar(
                "INSERT INTO customers (email, name, language, tier, created_at) \
                 VALUES (?, ?, ?, ?, ?) RETURNING id",
            )
            .bind(email)
            .bind(&name)
            .bind(&language)
            .bind(&tier)
            .bind(now)
            .fetch_one(&mut *conn)
            .await?
        }
    };
    if target == chat {
        return Ok(target);
    }
    sqlx::query(
        "INSERT INTO customer_links (identity, customer_id, signal, linked_by, ticket_id, linked_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(identity) DO UPDATE SET \
         customer_id = ?2, signal = ?3, linked_by = ?4, ticket_id = ?5, linked_at = ?6",
    )
    .bind(&identity)
    .bind(target)
    .bind(signal)
    .bind(by)
    .bind(ticket)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    // Identities linked to the chat customer before follow it.
    sqlx::query("UPDATE customer_links SET customer_id = ? WHERE customer_id = ?")
        .bind(target)
        .bind(chat)
        .execute(&mut *conn)
        .await?;
    for table in ["tickets", "customer_notes"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET customer_id = ? WHERE customer_id = ?"
        )))
        .bind(target)
        .bind(chat)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query(
        "UPDATE customers SET name = COALESCE(name, ?1), language = COALESCE(language, ?2), \
         tier = CASE WHEN tier = 'standard' THEN ?3 ELSE tier END WHERE id = ?4",
    )
    .bind(&name)
    .bind(&language)
    .bind(&tier)
    .bind(target)
    .execute(&mut *conn)
    .await?;
    profile_event(
        conn,
        ticket,
        serde_json::json!({"customer": target, "linked": identity, "signal": signal, "by": by}),
        now,
    )
    .await?;
    Ok(target)
}

/// The newest open ticket of the customer with `email` updated at or after `since`, with
/// its status: where a linked conversation joins.
pub async fn find_open_ticket_of(
    conn: &mut SqliteConnection,
    email: &str,
    since: &str,
) -> Result<Option<(TicketId, crate::domain::Status)>> {
    let row: Option<(TicketId, String)> = sqlx::query_as(
        "SELECT t.id, t.status FROM tickets t JOIN customers c ON c.id = t.customer_id \
         WHERE c.email = ? COLLATE NOCASE AND t.merged_into IS NULL \
         AND t.status IN ('open', 'pending') AND t.updated_at >= ? \
         ORDER BY t.updated_at DESC, t.id DESC LIMIT 1",
    )
    .bind(email)
    .bind(since)
    .fetch_optional(conn)
    .await?;
    Ok(row.and_then(|(id, s)| s.parse().ok().map(|s| (id, s))))
}

/// A customer's notes, newest first.
pub async fn list_notes(conn: &mut SqliteConnection, customer: i64) -> Result<Vec<Note>> {
    let rows = sqlx::query(
        "SELECT text, agent, ticket_id, created_at FROM customer_notes \
         WHERE customer_id = ? ORDER BY id DESC",
    )
    .bind(customer)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Note {
                text: r.try_get("text")?,
                agent: r.try_get("agent")?,
                ticket_id: r.try_get("ticket_id")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

/// Customers, by address; only those of `tier` (any case) when given.
pub async fn customer_list(
    conn: &mut SqliteConnection,
    tier: Option<&str>,
) -> Result<Vec<CustomerSummary>> {
    let rows = sqlx::query(
        "SELECT c.id, c.email, c.name, c.tier, c.company, c.plan, c.language, \
           (SELECT COUNT(*) FROM tickets t WHERE t.customer_id = c.id AND t.merged_into IS NULL) \
             AS tickets \
         FROM customers c WHERE ?1 IS NULL OR c.tier = ?1 COLLATE NOCASE ORDER BY c.email",
    )
    .bind(tier)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(CustomerSummary {
                id: r.try_get("id")?,
                email: r.try_get("email")?,
                name: r.try_get("name")?,
                tier: r.try_get("tier")?,
                company: r.try_get("company")?,
                plan: r.try_get("plan")?,
                language: r.try_get("language")?,
                tickets: r.try_get("tickets")?,
            })
        })
        .collect()
}

/// The customer of a ticket: (id, email).
pub async fn customer_of_ticket(
    conn: &mut SqliteConnection,
    ticket: TicketId,
) -> Result<(i64, String, String, Option<String>)> {
    let r = sqlx::query(
        "SELECT c.id, c.email, c.tier, c.language FROM tickets t \
         JOIN customers c ON c.id = t.customer_id WHERE t.id = ?",
    )
    .bind(ticket)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("ticket {ticket}")))?;
    Ok((
        r.try_get("id")?,
        r.try_get("email")?,
        r.try_get("tier")?,
        r.try_get("language")?,
    ))
}

/// Adds an agent's note to a customer, with a `profile_changed` event on `ticket`.
pub async fn add_note(
    conn: &mut SqliteConnection,
    customer: i64,
    agent: &str,
    ticket: Option<TicketId>,
    text: &str,
    now: &str,
) -> Result<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO customer_notes (customer_id, agent, ticket_id, text, created_at) \
         VALUES (?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(customer)
    .bind(agent)
    .bind(ticket)
    .bind(text)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    profile_event(
        conn,
        ticket,
        serde_json::json!({"customer": customer, "note": id, "agent": agent}),
        now,
    )
    .await?;
    Ok(id)
}

/// Sets a customer's tier; returns the one before. An event on `ticket` when it changed.
pub async fn set_tier(
    conn: &mut SqliteConnection,
    customer: i64,
    tier: &str,
    ticket: Option<TicketId>,
    now: &str,
) -> Result<String> {
    let before: String = sqlx::query_scalar("SELECT tier FROM customers WHERE id = ?")
        .bind(customer)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("customer {customer}")))?;
    if before != tier {
        sqlx::query("UPDATE customers SET tier = ? WHERE id = ?")
            .bind(tier)
            .bind(customer)
            .execute(&mut *conn)
            .await?;
        let data =
            serde_json::json!({"customer": customer, "field": "tier", "from": before, "to": tier});
        profile_event(conn, ticket, data, now).await?;
    }
    Ok(before)
}

/// Sets a customer's language by hand (`language_source = 'agent'`: detection no longer
/// changes it); returns the one before. An event on `ticket` when it changed.
pub async fn set_language(
    conn: &mut SqliteConnection,
    customer: i64,
    language: &str,
    ticket: Option<TicketId>,
    now: &str,
) -> Result<Option<String>> {
    let before: Option<Option<String>> =
        sqlx::query_scalar("SELECT language FROM customers WHERE id = ?")
            .bind(customer)
            .fetch_optional(&mut *conn)
            .await?;
    let before = before.ok_or_else(|| StoreError::NotFound(format!("customer {customer}")))?;
    sqlx::query("UPDATE customers SET language = ?, language_source = 'agent' WHERE id = ?")
        .bind(language)
        .bind(customer)
        .execute(&mut *conn)
        .await?;
    if before.as_deref() != Some(language) {
        let data = serde_json::json!({"customer": customer, "field": "language", "from": before, "to": language});
        profile_event(conn, ticket, data, now).await?;
    }
    Ok(before)
}

async fn profile_event(
    conn: &mut SqliteConnection,
    ticket: Option<TicketId>,
    data: serde_json::Value,
    now: &str,
) -> Result<()> {
    let mut e = NewEvent::new(EventKind::ProfileChanged, 0, data);
    e.ticket_id = ticket;
    events::append(conn, e, now).await
}

/// Company, plan, whether a person set the language, and the newest notes of these
/// customers, in one statement.
pub async fn notify_profiles(
    conn: &mut SqliteConnection,
    customers: &[i64],
) -> Result<HashMap<i64, NotifyProfile>> {
    if customers.is_empty() {
        return Ok(HashMap::new());
    }
    let ids = serde_json::to_string(customers).unwrap_or_else(|_| "[]".into());
    let rows = sqlx::query(
        "SELECT c.id, c.company, c.plan, c.language_source IS NOT NULL AS language_set, \
           (SELECT json_group_array(json_array(text, agent, substr(created_at, 1, 10))) FROM \
              (SELECT text, agent, created_at FROM customer_notes n WHERE n.customer_id = c.id \
               ORDER BY n.id DESC LIMIT ?2)) AS notes \
         FROM customers c WHERE c.id IN (SELECT value FROM json_each(?1))",
    )
    .bind(ids)
    .bind(NOTIFY_NOTES)
    .fetch_all(conn)
    .await?;
    let mut out = HashMap::new();
    for r in rows {
        let notes: String = r.try_get("notes")?;
        out.insert(
            r.try_get("id")?,
            NotifyProfile {
                company: r.try_get("company")?,
                plan: r.try_get("plan")?,
                language_set: r.try_get("language_set")?,
                notes: serde_json::from_str(&notes).unwrap_or_default(),
            },
        );
    }
    Ok(out)
}

/// One customer of an import file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportRow {
    /// Normalised (lower case) and checked by the caller.
    pub email: String,
    pub name: Option<String>,
    pub tier: Option<String>,
    pub company: Option<String>,
    pub plan: Option<String>,
    pub language: Option<String>,
    /// Normalised by `profile::phone_number`.
    pub phone: Option<String>,
    /// Any other column, by its header.
    pub attributes: BTreeMap<String, String>,
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportCounts {
    pub created: usize,
    pub updated: usize,
}

/// Creates or updates customers by address, in the caller's transaction (the CLI runs the
/// whole file in one). A value given replaces the stored one, an empty one changes
/// nothing; custom attributes are merged into the stored ones; an imported language is
/// marked `import`, so detection leaves it alone.
pub async fn import_customers(
    conn: &mut SqliteConnection,
    rows: &[ImportRow],
    now: &str,
) -> Result<ImportCounts> {
    let mut counts = ImportCounts::default();
    for r in rows {
        let attributes = serde_json::to_string(&r.attributes).unwrap_or_else(|_| "{}".to_string());
        let existed: Option<i64> =
            sqlx::query_scalar("SELECT id FROM customers WHERE email = ? COLLATE NOCASE")
                .bind(&r.email)
                .fetch_optional(&mut *conn)
                .await?;
        match existed {
            Some(id) => {
                sqlx::query(
                    "UPDATE customers SET name = COALESCE(?, name), tier = COALESCE(?, tier), \
                     company = COALESCE(?, company), plan = COALESCE(?, plan), \
                     language = COALESCE(?, language), \
                     language_source = CASE WHEN ? IS NULL THEN language_source ELSE 'import' END, \
                     phone = COALESCE(?, phone), \
                     attributes = json_patch(attributes, ?) WHERE id = ?",
                )
                .bind(r.name.as_deref())
                .bind(r.tier.as_deref())
                .bind(r.company.as_deref())
                .bind(r.plan.as_deref())
                .bind(r.language.as_deref())
                .bind(r.language.as_deref())
                .bind(r.phone.as_deref())
                .bind(&attributes)
                .bind(id)
                .execute(&mut *conn)
                .await?;
                counts.updated += 1;
            }
            None => {
                sqlx::query(
                    "INSERT INTO customers (email, name, tier, company, plan, language, \
                     language_source, phone, attributes, created_at) \
                     VALUES (?, ?, COALESCE(?, 'standard'), ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(&r.email)
                .bind(r.name.as_deref())
                .bind(r.tier.as_deref())
                .bind(r.company.as_deref())
                .bind(r.plan.as_deref())
                .bind(r.language.as_deref())
                .bind(r.language.as_ref().map(|_| "import"))
                .bind(r.phone.as_deref())
                .bind(&attributes)
                .bind(now)
                .execute(&mut *conn)
                .await?;
                counts.created += 1;
            }
        }
    }
    Ok(counts)
}

#[cfg(test)]
#[path = "profiles_tests.rs"]
mod tests;
