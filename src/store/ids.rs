//! Row ids: the one place that hands them out.
//!
//! A unit of work numbers its own rows before writing them (so that a message, its
//! references, its outbox row and its events can point at each other in one multi-row
//! statement each), and the row-at-a-time writers take their id from here too. On SQLite
//! the next id is `MAX(id) + 1`, which is safe because every write runs under the single
//! write lock (`BEGIN IMMEDIATE`): nobody else inserts between the read and the write. A
//! backend with concurrent writers implements these two functions with sequences
//! (`nextval`, reserving a block with `setval`).

use sqlx::SqliteConnection;

use super::Result;

/// The highest row id of each table a unit of work numbers itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct MaxIds {
    pub ticket: i64,
    pub message: i64,
    pub customer: i64,
    pub raw: i64,
    pub event: i64,
}

/// The highest id in use of every numbered table (the batch allocates upward from them).
pub async fn max_ids(conn: &mut SqliteConnection) -> Result<MaxIds> {
    let (ticket, message, customer, raw, event): (i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT COALESCE(MAX(id), 0) FROM tickets), \
                (SELECT COALESCE(MAX(id), 0) FROM messages), \
                (SELECT COALESCE(MAX(id), 0) FROM customers), \
                (SELECT COALESCE(MAX(id), 0) FROM raw_messages), \
                (SELECT COALESCE(MAX(id), 0) FROM events)",
    )
    .fetch_one(conn)
    .await?;
    Ok(MaxIds {
        ticket,
        message,
        customer,
        raw,
        event,
    })
}

/// A numbered table.
#[derive(Debug, Clone, Copy)]
pub enum Table {
    Messages,
    Raw,
    Events,
}

/// The next free id of `table`, for a writer that adds one row.
pub async fn next_id(conn: &mut SqliteConnection, table: Table) -> Result<i64> {
    let sql = match table {
        Table::Messages => "SELECT COALESCE(MAX(id), 0) + 1 FROM messages",
        Table::Raw => "SELECT COALESCE(MAX(id), 0) + 1 FROM raw_messages",
        Table::Events => "SELECT COALESCE(MAX(id), 0) + 1 FROM events",
    };
    Ok(sqlx::query_scalar(sql).fetch_one(conn).await?)
}
