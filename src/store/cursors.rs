//! Channel sources' durable cursors (`channel_cursors`): where a relay's feed continues,
//! advanced in the transaction that stores the messages it brought, and the last good
//! poll for `/healthz`; and an account the platform refused, disabled until its
//! credentials change.

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

/// Disables (channel, account): the platform refused the credentials whose fingerprint
/// is `token_fp`. True when it was not disabled for them already (the admin is told once).
pub async fn disable(
    conn: &mut SqliteConnection,
    channel: Channel,
    account: &str,
    reason: &str,
    token_fp: &str,
    now: &str,
) -> Result<bool> {
    let before = find_disabled(&mut *conn, channel, account).await?;
    sqlx::query(
        "INSERT INTO channel_cursors (channel, account, last_error, disabled_at, disabled_reason, disabled_token) \
         VALUES (?1, ?2, ?3, ?4, ?3, ?5) \
         ON CONFLICT(channel, account) DO UPDATE SET \
             last_error = ?3, disabled_at = ?4, disabled_reason = ?3, disabled_token = ?5",
    )
    .bind(channel.as_str())
    .bind(account)
    .bind(reason)
    .bind(now)
    .bind(token_fp)
    .execute(conn)
    .await?;
    Ok(before.is_none_or(|d| d.token_fp != token_fp))
}

/// Why and since when an account is disabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disabled {
    pub at: String,
    pub reason: String,
    /// The fingerprint of the credentials that were refused.
    pub token_fp: String,
}

/// The account's disablement, if it is disabled.
pub async fn find_disabled(
    conn: &mut SqliteConnection,
    channel: Channel,
    account: &str,
) -> Result<Option<Disabled>> {
    let row: Option<(Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT disabled_at, disabled_reason, disabled_token FROM channel_cursors \
         WHERE channel = ? AND account = ?",
    )
    .bind(channel.as_str())
    .bind(account)
    .fetch_optional(conn)
    .await?;
    Ok(match row {
        Some((Some(at), reason, token)) => Some(Disabled {
            at,
            reason: reason.unwrap_or_default(),
            token_fp: token.unwrap_or_default(),
        }),
        _ => None,
    })
}

/// Enables the account again (its credentials changed).
pub async fn enable(conn: &mut SqliteConnection, channel: Channel, account: &str) -> Result<()> {
    sqlx::query(
        "UPDATE channel_cursors SET disabled_at = NULL, disabled_reason = NULL, disabled_token = NULL \
         WHERE channel = ? AND account = ?",
    )
    .bind(channel.as_str())
    .bind(account)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether the database answers at all.
pub async fn ping(conn: &mut SqliteConnection) -> Result<()> {
    sqlx::query("SELECT 1").execute(conn).await?;
    Ok(())
}

/// What `postdesk channels` shows of one channel account.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ChannelState {
    pub channel: String,
    pub account: String,
    pub cursor: Option<String>,
    pub last_ok_at: Option<String>,
    pub last_error: Option<String>,
    pub disabled_at: Option<String>,
    pub disabled_reason: Option<String>,
    /// Customer messages received.
    pub messages_in: i64,
    /// Outbox rows by status.
    pub sent: i64,
    pub pending: i64,
    pub failed: i64,
}

/// Every chat channel account the database knows (a cursor, messages or outbox rows),
/// by channel and account.
pub async fn channel_states(conn: &mut SqliteConnection) -> Result<Vec<ChannelState>> {
    use std::collections::BTreeMap;
    let mut out: BTreeMap<(String, String), ChannelState> = BTreeMap::new();
    type CursorRow = (
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<CursorRow> = sqlx::query_as(
        "SELECT channel, account, cursor, last_ok_at, last_error, disabled_at, disabled_reason \
         FROM channel_cursors WHERE channel <> 'email'",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (channel, account, cursor, ok, err, dis_at, dis_why) in rows {
        out.insert(
            (channel.clone(), account.clone()),
            ChannelState {
                channel,
                account,
                cursor,
                last_ok_at: ok,
                last_error: err,
                disabled_at: dis_at,
                disabled_reason: dis_why,
                ..ChannelState::default()
            },
        );
    }
    let entry = |out: &mut BTreeMap<(String, String), ChannelState>, c: &str, a: &str| {
        out.entry((c.to_string(), a.to_string()))
            .or_insert_with(|| ChannelState {
                channel: c.to_string(),
                account: a.to_string(),
                ..ChannelState::default()
            })
            .clone()
    };
    let counts: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT channel, account, COUNT(*) FROM messages WHERE channel <> 'email' \
         AND account IS NOT NULL AND direction = 'inbound' AND kind = 'customer' GROUP BY 1, 2",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (c, a, n) in counts {
        let mut s = entry(&mut out, &c, &a);
        s.messages_in = n;
        out.insert((c, a), s);
    }
    let outbox: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT channel, account, status, COUNT(*) FROM outbox WHERE channel <> 'email' \
         AND account IS NOT NULL GROUP BY 1, 2, 3",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (c, a, status, n) in outbox {
        let mut s = entry(&mut out, &c, &a);
        match status.as_str() {
            "sent" => s.sent += n,
            "pending" => s.pending += n,
            _ => s.failed += n,
        }
        out.insert((c, a), s);
    }
    Ok(out.into_values().collect())
}
