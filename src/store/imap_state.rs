//! IMAP progress: per-folder UIDVALIDITY and UID watermark, where each copy of a message was
//! seen, and the queue of server-side actions owed for committed messages.

use sqlx::SqliteConnection;

use super::Result;

/// A folder's stored progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderState {
    pub uidvalidity: u32,
    pub last_uid: u32,
}

pub async fn find_folder_state(
    conn: &mut SqliteConnection,
    mailbox: &str,
    folder: &str,
) -> Result<Option<FolderState>> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT uidvalidity, last_uid FROM folder_state WHERE mailbox = ? AND folder = ?",
    )
    .bind(mailbox)
    .bind(folder)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(v, u)| FolderState {
        uidvalidity: v as u32,
        last_uid: u as u32,
    }))
}

/// Sets the folder's watermark. Called inside the transaction that stores the messages up
/// to `last_uid`, so progress and data commit together.
pub async fn put_folder_state(
    conn: &mut SqliteConnection,
    mailbox: &str,
    folder: &str,
    state: FolderState,
    now: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO folder_state (mailbox, folder, uidvalidity, last_uid, updated_at) \
         VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT(mailbox, folder) DO UPDATE SET uidvalidity = excluded.uidvalidity, \
         last_uid = excluded.last_uid, updated_at = excluded.updated_at",
    )
    .bind(mailbox)
    .bind(folder)
    .bind(i64::from(state.uidvalidity))
    .bind(i64::from(state.last_uid))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records that the copy at (mailbox, folder, uidvalidity, uid) is message `message_row`.
pub async fn insert_source(
    conn: &mut SqliteConnection,
    mailbox: &str,
    folder: &str,
    uidvalidity: u32,
    uid: u32,
    message_row: i64,
    now: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT OR IGNORE INTO message_sources \
         (mailbox, folder, uidvalidity, uid, message_row, created_at) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(mailbox)
    .bind(folder)
    .bind(i64::from(uidvalidity))
    .bind(i64::from(uid))
    .bind(message_row)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A server-side action owed for a committed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAction {
    pub id: i64,
    pub uidvalidity: u32,
    pub uid: u32,
    pub action: String,
    pub argument: String,
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_pending_action(
    conn: &mut SqliteConnection,
    mailbox: &str,
    folder: &str,
    uidvalidity: u32,
    uid: u32,
    action: &str,
    argument: &str,
    now: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO pending_actions (mailbox, folder, uidvalidity, uid, action, argument, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(mailbox)
    .bind(folder)
    .bind(i64::from(uidvalidity))
    .bind(i64::from(uid))
    .bind(action)
    .bind(argument)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The same action for many UIDs of one folder, in one statement per chunk.
#[allow(clippy::too_many_arguments)]
pub async fn insert_pending_actions(
    conn: &mut SqliteConnection,
    mailbox: &str,
    folder: &str,
    uidvalidity: u32,
    uids: &[u32],
    action: &str,
    argument: &str,
    now: &str,
) -> Result<()> {
    for chunk in uids.chunks(4000) {
        let mut qb: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new(
            "INSERT INTO pending_actions (mailbox, folder, uidvalidity, uid, action, argument, created_at) ",
        );
        qb.push_values(chunk, |mut b, uid| {
            b.push_bind(mailbox.to_string())
                .push_bind(folder.to_string())
                .push_bind(i64::from(uidvalidity))
                .push_bind(i64::from(*uid))
                .push_bind(action.to_string())
                .push_bind(argument.to_string())
                .push_bind(now.to_string());
        });
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

pub async fn list_pending_actions(
    conn: &mut SqliteConnection,
    mailbox: &str,
    folder: &str,
) -> Result<Vec<PendingAction>> {
    let rows: Vec<(i64, i64, i64, String, String)> = sqlx::query_as(
        "SELECT id, uidvalidity, uid, action, argument FROM pending_actions \
         WHERE mailbox = ? AND folder = ? ORDER BY id",
    )
    .bind(mailbox)
    .bind(folder)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, v, u, action, argument)| PendingAction {
            id,
            uidvalidity: v as u32,
            uid: u as u32,
            action,
            argument,
        })
        .collect())
}

pub async fn delete_pending_actions(conn: &mut SqliteConnection, ids: &[i64]) -> Result<()> {
    for id in ids {
        sqlx::query("DELETE FROM pending_actions WHERE id = ?")
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The quarantined UIDs of a folder under `uidvalidity` (see `channels::email::inflight`).
pub async fn list_quarantined(
    conn: &mut SqliteConnection,
    mailbox: &str,
    folder: &str,
    uidvalidity: u32,
) -> Result<Vec<u32>> {
    let rows: Vec<i64> = sqlx::query_scalar(
        "SELECT uid FROM quarantine WHERE mailbox = ? AND folder = ? AND uidvalidity = ? ORDER BY uid",
    )
    .bind(mailbox)
    .bind(folder)
    .bind(i64::from(uidvalidity))
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|u| u32::try_from(u).ok())
        .collect())
}

/// Records that `uid` is quarantined, stored as `message_row` (none when the server no
/// longer had it).
#[allow(clippy::too_many_arguments)]
pub async fn insert_quarantine(
    conn: &mut SqliteConnection,
    mailbox: &str,
    folder: &str,
    uidvalidity: u32,
    uid: u32,
    message_row: Option<i64>,
    reason: &str,
    now: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT OR IGNORE INTO quarantine (mailbox, folder, uidvalidity, uid, message_row, reason, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(mailbox)
    .bind(folder)
    .bind(i64::from(uidvalidity))
    .bind(i64::from(uid))
    .bind(message_row)
    .bind(reason)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}
