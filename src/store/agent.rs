//! What agents do to tickets (issue 3): the agent token keyring, the command log that
//! `#undo` reads, internal collaborators (`#invite`), copied customer addresses (`#cc`),
//! and the ticket fields commands set (assignee, priority, tags).
//!
//! SQL only: deciding what a command means is `commands::plan`'s job. Addresses are
//! stored as given; callers pass them normalised (lowercased), like `participants`.

use serde::{Deserialize, Serialize};
use sqlx::{Row, SqliteConnection};

use super::events::{self, NewEvent};
use super::{Result, StoreError, find_setting, put_setting};
use crate::agent::token::Keyring;
use crate::domain::{EventKind, Priority, Status, TicketId};

/// The settings key holding the keyring, in [`Keyring::to_storage`] form.
pub const KEYRING_SETTING: &str = "agent_token_keyring";

/// The agent token keyring; generated and stored on first use. If two processes race to
/// create it, the first write wins and both return that keyring.
///
/// A stored value that cannot be read is an error, never silently replaced: replacing it
/// would invalidate every agent token in circulation and hide the damage.
pub async fn load_or_create_keyring(conn: &mut SqliteConnection) -> Result<Keyring> {
    if find_setting(conn, KEYRING_SETTING).await?.is_none() {
        sqlx::query("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING")
            .bind(KEYRING_SETTING)
            .bind(Keyring::generate().to_storage())
            .execute(&mut *conn)
            .await?;
    }
    let stored = find_setting(conn, KEYRING_SETTING)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("setting {KEYRING_SETTING}")))?;
    // The error names the problem, never the stored secret (`from_storage` sees to that).
    Keyring::from_storage(&stored).map_err(|e| StoreError::Db(sqlx::Error::Decode(Box::new(e))))
}

/// Stores the keyring, replacing the old one (after `rotate` or `retire`).
pub async fn save_keyring(conn: &mut SqliteConnection, keyring: &Keyring) -> Result<()> {
    put_setting(conn, KEYRING_SETTING, &keyring.to_storage()).await
}

/// The fields of a ticket that commands read and change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketState {
    pub id: TicketId,
    pub status: Status,
    pub priority: Priority,
    pub assignee: Option<String>,
    pub merged_into: Option<TicketId>,
    /// The customer's address.
    pub customer_email: String,
    pub category: Option<String>,
    pub team: Option<String>,
}

/// The ticket's own row (merges are *not* followed, unlike `tickets::find_ticket`).
pub async fn find_ticket_state(
    conn: &mut SqliteConnection,
    id: TicketId,
) -> Result<Option<TicketState>> {
    let row = sqlx::query(
        "SELECT t.id, t.status, t.priority, t.assignee, t.merged_into, c.email, t.category, \
         t.team FROM tickets t JOIN customers c ON c.id = t.customer_id WHERE t.id = ?",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let status: String = r.try_get("status")?;
    let priority: String = r.try_get("priority")?;
    Ok(Some(TicketState {
        id: r.try_get("id")?,
        // The CHECK constraints allow only these words; the fallbacks are never taken.
        status: status.parse().unwrap_or(Status::Open),
        priority: priority.parse().unwrap_or(Priority::Normal),
        assignee: r.try_get("assignee")?,
        merged_into: r.try_get("merged_into")?,
        customer_email: r.try_get("email")?,
        category: r.try_get("category")?,
        team: r.try_get("team")?,
    }))
}

/// Sets (or clears) the assignee. Does not touch `updated_at`: the caller does, once.
/// The agent a ticket is assigned to, if any.
pub async fn find_assignee(
    conn: &mut SqliteConnection,
    ticket: TicketId,
) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar::<_, Option<String>>("SELECT assignee FROM tickets WHERE id = ?")
            .bind(ticket)
            .fetch_optional(conn)
            .await?
            .flatten(),
    )
}

pub async fn set_assignee(
    conn: &mut SqliteConnection,
    ticket: TicketId,
    assignee: Option<&str>,
    now: &str,
) -> Result<()> {
    let before: Option<String> = sqlx::query_scalar("SELECT assignee FROM tickets WHERE id = ?")
        .bind(ticket)
        .fetch_optional(&mut *conn)
        .await?
        .flatten();
    sqlx::query("UPDATE tickets SET assignee = ? WHERE id = ?")
        .bind(assignee)
        .bind(ticket)
        .execute(&mut *conn)
        .await?;
    if before.as_deref() != assignee {
        let data = serde_json::json!({"from": before, "to": assignee});
        events::append(
            conn,
            NewEvent::new(EventKind::AssigneeChanged, ticket, data),
            now,
        )
        .await?;
    }
    Ok(())
}

/// Sets the priority. Does not touch `updated_at`: the caller does, once.
pub async fn set_priority(
    conn: &mut SqliteConnection,
    ticket: TicketId,
    priority: Priority,
    now: &str,
) -> Result<()> {
    let before: Option<String> = sqlx::query_scalar("SELECT priority FROM tickets WHERE id = ?")
        .bind(ticket)
        .fetch_optional(&mut *conn)
        .await?;
    sqlx::query("UPDATE tickets SET priority = ? WHERE id = ?")
        .bind(priority.as_str())
        .bind(ticket)
        .execute(&mut *conn)
        .await?;
    if before.as_deref() != Some(priority.as_str()) {
        let data = serde_json::json!({"from": before, "to": priority.as_str()});
        events::append(
            conn,
            NewEvent::new(EventKind::PriorityChanged, ticket, data),
            now,
        )
        .await?;
    }
    Ok(())
}

/// The ticket's tags, sorted.
pub async fn list_tags(conn: &mut SqliteConnection, ticket: TicketId) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar::<_, String>(
        "SELECT tag FROM ticket_tags WHERE ticket_id = ? ORDER BY tag",
    )
    .bind(ticket)
    .fetch_all(conn)
    .await?)
}

/// Adds a tag; true if it was not there before.
pub async fn add_tag(conn: &mut SqliteConnection, ticket: TicketId, tag: &str) -> Result<bool> {
    let done = sqlx::query("INSERT OR IGNORE INTO ticket_tags (ticket_id, tag) VALUES (?, ?)")
        .bind(ticket)
        .bind(tag)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Removes a tag; true if it was there.
pub async fn remove_tag(conn: &mut SqliteConnection, ticket: TicketId, tag: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM ticket_tags WHERE ticket_id = ? AND tag = ?")
        .bind(ticket)
        .bind(tag)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// The role of `email` among the ticket's participants (compared case-insensitively).
pub async fn find_participant_role(
    conn: &mut SqliteConnection,
    ticket: TicketId,
    email: &str,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar::<_, String>(
        "SELECT role FROM participants WHERE ticket_id = ? AND lower(email) = lower(?) LIMIT 1",
    )
    .bind(ticket)
    .bind(email)
    .fetch_optional(conn)
    .await?)
}

/// The ticket's participants as (email, role), by email.
pub async fn list_participants(
    conn: &mut SqliteConnection,
    ticket: TicketId,
) -> Result<Vec<(String, String)>> {
    Ok(sqlx::query_as::<_, (String, String)>(
        "SELECT email, role FROM participants WHERE ticket_id = ? ORDER BY email",
    )
    .bind(ticket)
    .fetch_all(conn)
    .await?)
}

/// Removes a participant, but only while it still has `role`; true if a row went.
pub async fn remove_participant(
    conn: &mut SqliteConnection,
    ticket: TicketId,
    email: &str,
    role: &str,
) -> Result<bool> {
    let done =
        sqlx::query("DELETE FROM participants WHERE ticket_id = ? AND email = ? AND role = ?")
            .bind(ticket)
            .bind(email)
            .bind(role)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() > 0)
}

/// The two per-ticket address lists, which share their shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum People {
    Collaborators,
    Cc,
}

impl People {
    fn table(self) -> &'static str {
        match self {
            People::Collaborators => "ticket_collaborators",
            People::Cc => "ticket_cc",
        }
    }
}

async fn add_person(
    conn: &mut SqliteConnection,
    list: People,
    ticket: TicketId,
    email: &str,
    added_by: &str,
    now: &str,
) -> Result<bool> {
    // The table name is one of two constants, never input.
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT OR IGNORE INTO {} (ticket_id, email, added_by, created_at) VALUES (?, ?, ?, ?)",
        list.table()
    ));
    let done = sqlx::query(sql)
        .bind(ticket)
        .bind(email)
        .bind(added_by)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

async fn remove_person(
    conn: &mut SqliteConnection,
    list: People,
    ticket: TicketId,
    email: &str,
) -> Result<bool> {
    let sql = sqlx::AssertSqlSafe(format!(
        "DELETE FROM {} WHERE ticket_id = ? AND email = ?",
        list.table()
    ));
    let done = sqlx::query(sql)
        .bind(ticket)
        .bind(email)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

async fn list_people(
    conn: &mut SqliteConnection,
    list: People,
    ticket: TicketId,
) -> Result<Vec<String>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT email FROM {} WHERE ticket_id = ? ORDER BY email",
        list.table()
    ));
    Ok(sqlx::query_scalar::<_, String>(sql)
        .bind(ticket)
        .fetch_all(conn)
        .await?)
}

async fn is_person(
    conn: &mut SqliteConnection,
    list: People,
    ticket: TicketId,
    email: &str,
) -> Result<bool> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM {} WHERE ticket_id = ? AND lower(email) = lower(?)",
        list.table()
    ));
    Ok(sqlx::query_scalar::<_, i64>(sql)
        .bind(ticket)
        .bind(email)
        .fetch_one(conn)
        .await?
        > 0)
}

/// Adds an internal collaborator; true if they were not one already.
pub async fn add_collaborator(
    conn: &mut SqliteConnection,
    ticket: TicketId,
    email: &str,
    added_by: &str,
    now: &str,
) -> Result<bool> {
    add_person(conn, People::Collaborators, ticket, email, added_by, now).await
}

/// Removes a collaborator; true if they were one.
pub async fn remove_collaborator(
    conn: &mut SqliteConnection,
    ticket: TicketId,
    email: &str,
) -> Result<bool> {
    remove_person(conn, People::Collaborators, ticket, email).await
}

/// The ticket's collaborators' addresses, sorted.
pub async fn list_collaborators(
    conn: &mut SqliteConnection,
    ticket: TicketId,
) -> Result<Vec<String>> {
    list_people(conn, People::Collaborators, ticket).await
}

/// Whether `email` is a collaborator on the ticket (case-insensitive).
pub async fn is_collaborator(
    conn: &mut SqliteConnection,
    ticket: TicketId,
    email: &str,
) -> Result<bool> {
    is_person(conn, People::Collaborators, ticket, email).await
}

/// Adds a copied customer address to `ticket_cc` only (the caller adds the participant);
/// true if it was not there already.
pub async fn add_cc(
    conn: &mut SqliteConnection,
    ticket: TicketId,
    email: &str,
    added_by: &str,
    now: &str,
) -> Result<bool> {
    add_person(conn, People::Cc, ticket, email, added_by, now).await
}

/// Removes a copied address from `ticket_cc`; true if it was there.
pub async fn remove_cc(conn: &mut SqliteConnection, ticket: TicketId, email: &str) -> Result<bool> {
    remove_person(conn, People::Cc, ticket, email).await
}

/// The addresses copied on replies to the customer, sorted.
pub async fn list_cc(conn: &mut SqliteConnection, ticket: TicketId) -> Result<Vec<String>> {
    list_people(conn, People::Cc, ticket).await
}

/// Whether `email` is copied on the ticket (case-insensitive).
pub async fn is_cc(conn: &mut SqliteConnection, ticket: TicketId, email: &str) -> Result<bool> {
    is_person(conn, People::Cc, ticket, email).await
}

/// Moves collaborators and copied addresses of `from` to `into`, for a merge.
/// `tickets::merge_ticket` moves participants and tags but predates these tables.
pub async fn move_people(
    conn: &mut SqliteConnection,
    into: TicketId,
    from: TicketId,
) -> Result<()> {
    if into == from {
        return Ok(());
    }
    for list in [People::Collaborators, People::Cc] {
        let table = list.table();
        for sql in [
            format!(
                "INSERT OR IGNORE INTO {table} (ticket_id, email, added_by, created_at) \
                 SELECT ?1, email, added_by, created_at FROM {table} WHERE ticket_id = ?2"
            ),
            format!("DELETE FROM {table} WHERE ticket_id = ?2"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(into)
                .bind(from)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// A field a command set changed: the value before and the value it set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change<T> {
    pub before: T,
    pub after: T,
}

/// What `#undo` needs to revert one command set: only what the set actually changed.
/// Stored as JSON in `command_log.undo`; every field is optional in the JSON so that
/// later versions can add fields without breaking old rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UndoState {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignee: Option<Change<Option<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Change<Status>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Change<Priority>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<Change<Option<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<Change<Option<String>>>,
    /// Tags the set added (they were absent before).
    pub tags_added: Vec<String>,
    /// Tags the set removed (they were present before).
    pub tags_removed: Vec<String>,
    /// Addresses the set added to `ticket_cc`.
    pub cc_added: Vec<String>,
    /// Addresses the set added to `participants` (role `cc`).
    pub participants_added: Vec<String>,
    /// Addresses the set added to `ticket_collaborators`.
    pub invited: Vec<String>,
    /// The ticket this one was merged into by the set; such a set cannot be undone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<TicketId>,
}

impl UndoState {
    /// True when the set changed nothing.
    pub fn is_empty(&self) -> bool {
        *self == UndoState::default()
    }
}

/// A new `command_log` row.
#[derive(Debug, Clone)]
pub struct NewCommandLog<'a> {
    pub ticket_id: TicketId,
    pub agent: &'a str,
    pub message_row: Option<i64>,
    /// The applied commands, one string each.
    pub commands: &'a [String],
    pub undo: &'a UndoState,
    pub now: &'a str,
}

/// Records an applied command set; returns the row id.
pub async fn insert_command_log(
    conn: &mut SqliteConnection,
    new: &NewCommandLog<'_>,
) -> Result<i64> {
    let commands = serde_json::to_string(new.commands)
        .map_err(|e| StoreError::Db(sqlx::Error::Encode(Box::new(e))))?;
    let undo = serde_json::to_string(new.undo)
        .map_err(|e| StoreError::Db(sqlx::Error::Encode(Box::new(e))))?;
    Ok(sqlx::query_scalar::<_, i64>(
        "INSERT INTO command_log (ticket_id, agent, message_row, commands, undo, created_at) \
         VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(new.ticket_id)
    .bind(new.agent)
    .bind(new.message_row)
    .bind(commands)
    .bind(undo)
    .bind(new.now)
    .fetch_one(conn)
    .await?)
}

/// A `command_log` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLogEntry {
    pub id: i64,
    pub ticket_id: TicketId,
    pub agent: String,
    pub message_row: Option<i64>,
    pub commands: Vec<String>,
    /// None when the stored JSON cannot be read (then the set cannot be undone).
    pub undo: Option<UndoState>,
    pub undone_at: Option<String>,
    pub created_at: String,
}

const LOG_COLUMNS: &str =
    "l.id, l.ticket_id, l.agent, l.message_row, l.commands, l.undo, l.undone_at, l.created_at";

fn log_entry(r: &sqlx::sqlite::SqliteRow) -> Result<CommandLogEntry> {
    let commands: String = r.try_get("commands")?;
    let undo: String = r.try_get("undo")?;
    Ok(CommandLogEntry {
        id: r.try_get("id")?,
        ticket_id: r.try_get("ticket_id")?,
        agent: r.try_get("agent")?,
        message_row: r.try_get("message_row")?,
        commands: serde_json::from_str(&commands).unwrap_or_default(),
        undo: serde_json::from_str(&undo).ok(),
        undone_at: r.try_get("undone_at")?,
        created_at: r.try_get("created_at")?,
    })
}

/// The agent's newest command set that is not undone yet, on `ticket` or on any ticket
/// merged into it (directly or through a chain of merges). Sets on merged tickets are
/// included so that `#undo` after a `#merge` finds the merge and refuses, instead of
/// silently undoing something older.
pub async fn find_last_undoable(
    conn: &mut SqliteConnection,
    ticket: TicketId,
    agent: &str,
) -> Result<Option<CommandLogEntry>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "WITH RECURSIVE family(id) AS ( \
             SELECT ?1 UNION SELECT t.id FROM tickets t JOIN family f ON t.merged_into = f.id \
         ) \
         SELECT {LOG_COLUMNS} FROM command_log l \
         WHERE l.ticket_id IN (SELECT id FROM family) AND l.agent = ?2 AND l.undone_at IS NULL \
         ORDER BY l.id DESC LIMIT 1"
    ));
    let row = sqlx::query(sql)
        .bind(ticket)
        .bind(agent)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(log_entry).transpose()
}

/// Marks a command set as undone.
pub async fn mark_undone(conn: &mut SqliteConnection, id: i64, now: &str) -> Result<()> {
    let done =
        sqlx::query("UPDATE command_log SET undone_at = ? WHERE id = ? AND undone_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(conn)
            .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!(
            "command set {id} that is not undone"
        )));
    }
    Ok(())
}

/// Every command set applied to the ticket, oldest first.
pub async fn list_command_log(
    conn: &mut SqliteConnection,
    ticket: TicketId,
) -> Result<Vec<CommandLogEntry>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {LOG_COLUMNS} FROM command_log l WHERE l.ticket_id = ? ORDER BY l.id"
    ));
    let rows = sqlx::query(sql).bind(ticket).fetch_all(conn).await?;
    rows.iter().map(log_entry).collect()
}

/// Links a command_log entry to the message that carried the commands.
pub async fn set_command_log_message(
    conn: &mut SqliteConnection,
    log: i64,
    row: i64,
) -> Result<()> {
    sqlx::query("UPDATE command_log SET message_row = ? WHERE id = ?")
        .bind(row)
        .bind(log)
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::token::{mint, verify};
    use crate::store::Store;
    use crate::store::tickets::{NewTicket, insert_ticket, upsert_customer};

    const T0: &str = "2026-01-01T00:00:00.000000Z";

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        (dir, store)
    }

    async fn ticket(conn: &mut SqliteConnection, token: &str) -> TicketId {
        let cid = upsert_customer(conn, "cust@example.org", None, T0)
            .await
            .unwrap();
        insert_ticket(
            conn,
            &NewTicket {
                subject: "Help",
                subject_key: "help",
                customer_id: cid,
                token,
                linked_ticket_id: None,
                now: T0,
            },
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn keyring_is_created_once_and_reloaded_identically() {
        let (dir, store) = store().await;
        let mut c = store.pool().acquire().await.unwrap();
        assert_eq!(find_setting(&mut c, KEYRING_SETTING).await.unwrap(), None);
        let first = load_or_create_keyring(&mut c).await.unwrap();
        let stored = find_setting(&mut c, KEYRING_SETTING).await.unwrap();
        assert_eq!(stored, Some(first.to_storage()));
        let again = load_or_create_keyring(&mut c).await.unwrap();
        assert_eq!(again, first, "a second load must not generate a new key");
        drop(c);
        store.close().await;

        // After a restart the same keyring verifies tokens minted before it.
        let token = mint(&first, 7, 1, 2_000_000_000).unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let mut c = store.pool().acquire().await.unwrap();
        let reloaded = load_or_create_keyring(&mut c).await.unwrap();
        assert_eq!(reloaded, first);
        assert_eq!(verify(&reloaded, &token, 1_000).unwrap().ticket, 7);
    }

    #[tokio::test]
    async fn saved_rotation_is_what_loads_next() {
        let (_dir, store) = store().await;
        let mut c = store.pool().acquire().await.unwrap();
        let mut ring = load_or_create_keyring(&mut c).await.unwrap();
        ring.rotate().unwrap();
        save_keyring(&mut c, &ring).await.unwrap();
        let loaded = load_or_create_keyring(&mut c).await.unwrap();
        assert_eq!(loaded, ring);
        assert_eq!(loaded.versions(), [1, 2]);
        assert_eq!(loaded.current_version(), 2);
    }

    #[tokio::test]
    async fn unreadable_keyring_is_an_error_and_is_not_replaced() {
        let (_dir, store) = store().await;
        let mut c = store.pool().acquire().await.unwrap();
        put_setting(&mut c, KEYRING_SETTING, "current=1;v1=abcd")
            .await
            .unwrap();
        let err = load_or_create_keyring(&mut c).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Db(sqlx::Error::Decode(_))),
            "{err}"
        );
        assert!(!err.to_string().contains("abcd"), "{err}");
        assert_eq!(
            find_setting(&mut c, KEYRING_SETTING)
                .await
                .unwrap()
                .as_deref(),
            Some("current=1;v1=abcd")
        );
    }

    #[tokio::test]
    async fn people_lists_add_remove_and_move() {
        let (_dir, store) = store().await;
        let mut c = store.pool().acquire().await.unwrap();
        let a = ticket(&mut c, "a").await;
        let b = ticket(&mut c, "b").await;
        assert!(
            add_cc(&mut c, a, "y@example.org", "alice", T0)
                .await
                .unwrap()
        );
        assert!(
            add_cc(&mut c, a, "x@example.org", "alice", T0)
                .await
                .unwrap()
        );
        assert!(!add_cc(&mut c, a, "x@example.org", "bob", T0).await.unwrap());
        assert!(
            add_collaborator(&mut c, a, "legal@example.com", "alice", T0)
                .await
                .unwrap()
        );
        assert_eq!(
            list_cc(&mut c, a).await.unwrap(),
            ["x@example.org", "y@example.org"]
        );
        assert!(is_cc(&mut c, a, "X@Example.org").await.unwrap());
        assert!(!is_cc(&mut c, b, "x@example.org").await.unwrap());
        assert!(
            is_collaborator(&mut c, a, "legal@example.com")
                .await
                .unwrap()
        );
        assert!(!is_collaborator(&mut c, a, "x@example.org").await.unwrap());

        // A merge target that already has one of the addresses keeps one row.
        add_cc(&mut c, b, "x@example.org", "bob", T0).await.unwrap();
        move_people(&mut c, b, a).await.unwrap();
        assert!(list_cc(&mut c, a).await.unwrap().is_empty());
        assert!(list_collaborators(&mut c, a).await.unwrap().is_empty());
        assert_eq!(
            list_cc(&mut c, b).await.unwrap(),
            ["x@example.org", "y@example.org"]
        );
        assert_eq!(
            list_collaborators(&mut c, b).await.unwrap(),
            ["legal@example.com"]
        );

        assert!(remove_cc(&mut c, b, "y@example.org").await.unwrap());
        assert!(!remove_cc(&mut c, b, "y@example.org").await.unwrap());
        assert!(
            remove_collaborator(&mut c, b, "legal@example.com")
                .await
                .unwrap()
        );
        assert_eq!(list_cc(&mut c, b).await.unwrap(), ["x@example.org"]);
        assert!(list_collaborators(&mut c, b).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn remove_participant_only_with_the_given_role() {
        let (_dir, store) = store().await;
        let mut c = store.pool().acquire().await.unwrap();
        let t = ticket(&mut c, "a").await;
        crate::store::tickets::add_participant(&mut c, t, "cust@example.org", "customer")
            .await
            .unwrap();
        assert_eq!(
            find_participant_role(&mut c, t, "CUST@example.org")
                .await
                .unwrap()
                .as_deref(),
            Some("customer")
        );
        assert!(
            !remove_participant(&mut c, t, "cust@example.org", "cc")
                .await
                .unwrap()
        );
        assert!(
            remove_participant(&mut c, t, "cust@example.org", "customer")
                .await
                .unwrap()
        );
        assert_eq!(
            find_participant_role(&mut c, t, "cust@example.org")
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn command_log_round_trip_and_undo_order() {
        let (_dir, store) = store().await;
        let mut c = store.pool().acquire().await.unwrap();
        let t = ticket(&mut c, "a").await;
        let undo = UndoState {
            status: Some(Change {
                before: Status::Open,
                after: Status::Pending,
            }),
            assignee: Some(Change {
                before: None,
                after: Some("alice".into()),
            }),
            tags_added: vec!["billing".into()],
            ..UndoState::default()
        };
        assert!(!undo.is_empty());
        assert!(UndoState::default().is_empty());
        let commands = vec!["#status pending".to_string(), "#assign me".to_string()];
        let new = |agent, now| NewCommandLog {
            ticket_id: t,
            agent,
            message_row: None,
            commands: &commands,
            undo: &undo,
            now,
        };
        let first = insert_command_log(&mut c, &new("alice", T0)).await.unwrap();
        let second = insert_command_log(&mut c, &new("alice", "2026-01-02T00:00:00Z"))
            .await
            .unwrap();
        insert_command_log(&mut c, &new("bob", T0)).await.unwrap();

        let last = find_last_undoable(&mut c, t, "alice")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(last.id, second);
        assert_eq!(last.commands, commands);
        assert_eq!(last.undo.as_ref(), Some(&undo));
        assert_eq!(last.undone_at, None);

        mark_undone(&mut c, second, "2026-01-03T00:00:00Z")
            .await
            .unwrap();
        assert!(matches!(
            mark_undone(&mut c, second, "2026-01-03T00:00:00Z").await,
            Err(StoreError::NotFound(_))
        ));
        let last = find_last_undoable(&mut c, t, "alice")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(last.id, first);
        mark_undone(&mut c, first, "2026-01-03T00:00:00Z")
            .await
            .unwrap();
        assert_eq!(find_last_undoable(&mut c, t, "alice").await.unwrap(), None);
        assert!(
            find_last_undoable(&mut c, t, "bob")
                .await
                .unwrap()
                .is_some()
        );

        let all = list_command_log(&mut c, t).await.unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[1].undone_at.as_deref(), Some("2026-01-03T00:00:00Z"));
    }

    #[tokio::test]
    async fn undo_state_json_is_compact_and_tolerates_missing_fields() {
        let undo = UndoState {
            priority: Some(Change {
                before: Priority::Normal,
                after: Priority::High,
            }),
            ..UndoState::default()
        };
        let json = serde_json::to_string(&undo).unwrap();
        assert!(
            json.contains(r#""priority":{"before":"normal","after":"high"}"#),
            "{json}"
        );
        assert!(!json.contains("status"), "{json}");
        // A row written by a version that knew fewer fields still reads.
        let old: UndoState = serde_json::from_str(r#"{"tags_added":["x"]}"#).unwrap();
        assert_eq!(old.tags_added, ["x"]);
        assert_eq!(old.status, None);
    }

    #[tokio::test]
    async fn unreadable_undo_json_reads_as_none() {
        let (_dir, store) = store().await;
        let mut c = store.pool().acquire().await.unwrap();
        let t = ticket(&mut c, "a").await;
        sqlx::query(
            "INSERT INTO command_log (ticket_id, agent, commands, undo, created_at) \
             VALUES (?, 'alice', '[]', 'not json', ?)",
        )
        .bind(t)
        .bind(T0)
        .execute(&mut *c)
        .await
        .unwrap();
        let e = find_last_undoable(&mut c, t, "alice")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(e.undo, None);
    }

    #[tokio::test]
    async fn messages_have_held_reason_and_agent_columns() {
        let (_dir, store) = store().await;
        let mut c = store.pool().acquire().await.unwrap();
        sqlx::query(
            "INSERT INTO messages (message_id, direction, kind, match_reason, created_at, \
             held_reason, agent) VALUES ('m@x', 'inbound', 'agent_reply', 'none', ?, \
             'DKIM failed', 'alice')",
        )
        .bind(T0)
        .execute(&mut *c)
        .await
        .unwrap();
        let (held, agent): (Option<String>, Option<String>) =
            sqlx::query_as("SELECT held_reason, agent FROM messages WHERE message_id = 'm@x'")
                .fetch_one(&mut *c)
                .await
                .unwrap();
        assert_eq!(held.as_deref(), Some("DKIM failed"));
        assert_eq!(agent.as_deref(), Some("alice"));
        // STRICT: the new tables refuse a wrongly typed value.
        let t = ticket(&mut c, "a").await;
        let bad = sqlx::query(
            "INSERT INTO ticket_cc (ticket_id, email, added_by, created_at) VALUES (?, X'00', 'a', ?)",
        )
        .bind(t)
        .bind(T0)
        .execute(&mut *c)
        .await;
        let err = bad.unwrap_err().to_string();
        assert!(
            err.contains("cannot store BLOB value in TEXT column"),
            "{err}"
        );
    }
}
