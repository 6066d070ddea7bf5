//! Channel sources' durable cursors (`channel_cursors`): where a relay's feed continues,
//! advanced in the transaction that stores the messages it brought, and the last good
//! poll for `/healthz`.

use sqlx::SqliteConnection;

use super::Result;
use crate::domain::Channel;

/// The stored cursor of (channel, account), if any.
pub async fn find_cursor(
    conn: &mut SqliteConnection,
    channel: Channel,
    account: &str,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar::<_, Option<String>>(
        "SELECT cursor FROM channel_cursors WHERE channel = ? AND account = ?",
    )
    .bind(channel.as_str())
    .bind(account)
    .fetch_optional(conn)
    .await?
    .flatten())
}

/// Records a successful poll; `cursor` (when the source gave one) replaces the old one.
pub async fn record_poll(
    conn: &mut SqliteConnection,
    channel: Channel,
    account: &str,
    cursor: Option<&str>,
    now: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO channel_cursors (channel, account, cursor, last_ok_at, last_error) \
         VALUES (?1, ?2, ?3, ?4, NULL) \
         ON CONFLICT(channel, account) DO UPDATE SET \
             cursor = COALESCE(?3, cursor), last_ok_at = ?4, last_error = NULL",
    )
    .bind(channel.as_str())
    .bind(account)
    .bind(cursor)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a failed poll (the cursor stays).
pub async fn record_poll_error(
    conn: &mut SqliteConnection,
    channel: Channel,
    account: &str,
    error: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO channel_cursors (channel, account, last_error) VALUES (?1, ?2, ?3) \
         ON CONFLICT(channel, account) DO UPDATE SET last_error = ?3",
    )
    .bind(channel.as_str())
    .bind(account)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}

/// Every source's last good poll: (channel, account, last_ok_at).
pub async fn list_polls(
    conn: &mut SqliteConnection,
) -> Result<Vec<(String, String, Option<String>)>> {
    Ok(
        sqlx::query_as("SELECT channel, account, last_ok_at FROM channel_cursors ORDER BY 1, 2")
            .fetch_all(conn)
            .await?,
    )
}

/// Whether the database answers at all.
pub async fn ping(conn: &mut SqliteConnection) -> Result<()> {
    sqlx::query("SELECT 1").execute(conn).await?;
    Ok(())
}
