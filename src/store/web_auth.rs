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
