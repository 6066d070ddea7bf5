//! `agent_passwords` and `web_sessions`: who may open the dashboard.
//!
//! Passwords are argon2id PHC strings made by `web::auth`; sessions are kept by the
//! SHA-256 of their token, so a copy of the database opens no session.

use sqlx::SqliteConnection;

use super::Result;

/// Sets (or replaces) an agent's password hash; a new password ends their sessions.
pub async fn put_password(
    conn: &mut SqliteConnection,
    agent: &str,
    hash: &str,
    now: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO agent_passwords (agent, hash, set_at) VALUES (?, ?, ?) \
         ON CONFLICT (agent) DO UPDATE SET hash = excluded.hash, set_at = excluded.set_at",
    )
    .bind(agent)
    .bind(hash)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM web_sessions WHERE agent = ?")
        .bind(agent)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// An agent's password hash, if one is set.
pub async fn find_password(conn: &mut SqliteConnection, agent: &str) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT hash FROM agent_passwords WHERE agent = ?")
            .bind(agent)
            .fetch_optional(conn)
            .await?,
    )
}

/// Records a session.
pub async fn insert_session(
    conn: &mut SqliteConnection,
    token_sha256: &str,
    agent: &str,
    now: &str,
    expires: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO web_sessions (token_sha256, agent, created_at, expires_at) VALUES (?, ?, ?, ?)",
    )
    .bind(token_sha256)
    .bind(agent)
    .bind(now)
    .bind(expires)
    .execute(conn)
    .await?;
    Ok(())
}

/// The agent of a session that has not expired at `now`.
pub async fn find_session(
    conn: &mut SqliteConnection,
    token_sha256: &str,
    now: &str,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT agent FROM web_sessions WHERE token_sha256 = ? AND expires_at > ?",
    )
    .bind(token_sha256)
    .bind(now)
    .fetch_optional(conn)
    .await?)
}

/// Ends a session, and every expired one.
pub async fn delete_session(
    conn: &mut SqliteConnection,
    token_sha256: &str,
    now: &str,
) -> Result<()> {
    sqlx::query("DELETE FROM web_sessions WHERE token_sha256 = ? OR expires_at <= ?")
        .bind(token_sha256)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// A live session as `postdesk agent sessions` lists it (never its token).
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct SessionRow {
    pub agent: String,
    pub created_at: String,
    pub expires_at: String,
}

/// The sessions alive at `now`, oldest first; with `agent`, only theirs.
pub async fn list_sessions(
    conn: &mut SqliteConnection,
    agent: Option<&str>,
    now: &str,
) -> Result<Vec<SessionRow>> {
    Ok(sqlx::query_as(
        "SELECT agent, created_at, expires_at FROM web_sessions \
         WHERE expires_at > ? AND (? IS NULL OR agent = ?) ORDER BY created_at, agent",
    )
    .bind(now)
    .bind(agent)
    .bind(agent)
    .fetch_all(conn)
    .await?)
}

/// Ends every session of `agent`; returns how many were alive or not.
pub async fn delete_agent_sessions(conn: &mut SqliteConnection, agent: &str) -> Result<u64> {
    Ok(sqlx::query("DELETE FROM web_sessions WHERE agent = ?")
        .bind(agent)
        .execute(conn)
        .await?
        .rows_affected())
}

/// Records a one-time login link.
pub async fn insert_login_link(
    conn: &mut SqliteConnection,
    token_sha256: &str,
    agent: &str,
    now: &str,
    expires: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO login_links (token_sha256, agent, created_at, expires_at) VALUES (?, ?, ?, ?)",
    )
    .bind(token_sha256)
    .bind(agent)
    .bind(now)
    .bind(expires)
    .execute(conn)
    .await?;
    Ok(())
}

/// Uses up a login link: its agent when it was there and alive at `now`. The link is
/// gone afterwards either way, and so are the expired ones.
pub async fn take_login_link(
    conn: &mut SqliteConnection,
    token_sha256: &str,
    now: &str,
) -> Result<Option<String>> {
    let agent: Option<String> = sqlx::query_scalar(
        "DELETE FROM login_links WHERE token_sha256 = ? RETURNING CASE WHEN expires_at > ? THEN agent END",
    )
    .bind(token_sha256)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?
    .flatten();
    sqlx::query("DELETE FROM login_links WHERE expires_at <= ?")
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(agent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sessions_are_listed_while_alive_and_ended_per_agent() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("t.db"))
            .await
            .unwrap();
        let mut tx = store.begin_write().await.unwrap();
        let t0 = "2026-12-01T10:00:00.000000Z";
        insert_session(&mut tx, "a1", "alice", t0, "2026-12-01T22:00:00.000000Z")
            .await
            .unwrap();
        insert_session(&mut tx, "a2", "alice", t0, "2026-12-01T11:00:00.000000Z")
            .await
            .unwrap();
        insert_session(&mut tx, "b1", "bob", t0, "2026-12-01T22:00:00.000000Z")
            .await
            .unwrap();
        let at_noon = "2026-12-01T12:00:00.000000Z";
        let all = list_sessions(&mut tx, None, at_noon).await.unwrap();
        assert_eq!(
            all.iter().map(|s| s.agent.as_str()).collect::<Vec<_>>(),
            ["alice", "bob"],
            "the session that expired at 11:00 is not listed"
        );
        assert_eq!(
            list_sessions(&mut tx, Some("bob"), at_noon)
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(delete_agent_sessions(&mut tx, "alice").await.unwrap(), 2);
        assert_eq!(find_session(&mut tx, "a1", at_noon).await.unwrap(), None);
        assert_eq!(
            find_session(&mut tx, "b1", at_noon)
                .await
                .unwrap()
                .as_deref(),
            Some("bob"),
            "bob's session stays"
        );
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn a_login_link_works_once_and_not_after_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("t.db"))
            .await
            .unwrap();
        let mut tx = store.begin_write().await.unwrap();
        let t0 = "2026-12-01T10:00:00.000000Z";
        let t15 = "2026-12-01T10:15:00.000000Z";
        insert_login_link(&mut tx, "l1", "alice", t0, t15)
            .await
            .unwrap();
        insert_login_link(&mut tx, "l2", "bob", t0, t15)
            .await
            .unwrap();
        let t5 = "2026-12-01T10:05:00.000000Z";
        assert_eq!(
            take_login_link(&mut tx, "l1", t5).await.unwrap().as_deref(),
            Some("alice")
        );
        assert_eq!(
            take_login_link(&mut tx, "l1", t5).await.unwrap(),
            None,
            "used once"
        );
        assert_eq!(take_login_link(&mut tx, "nope", t5).await.unwrap(), None);
        assert_eq!(
            take_login_link(&mut tx, "l2", t15).await.unwrap(),
            None,
            "expired"
        );
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM login_links")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(left, 0);
        tx.commit().await.unwrap();
    }
}
