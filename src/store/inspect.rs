//! Test-only raw SQL, for unit tests elsewhere in the crate that assert on what was
//! written (the integration tests have their own). Compiled only with `cfg(test)`, so the
//! rule holds that nothing outside `store` names sqlx.

use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, FromRow, Sqlite, SqlitePool};

/// The single value `sql` selects.
pub async fn one<T>(pool: &SqlitePool, sql: &str) -> T
where
    T: for<'r> sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite> + Send + Unpin,
{
    sqlx::query_scalar::<_, T>(AssertSqlSafe(sql.to_string()))
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The single row `sql` selects.
pub async fn row<T>(pool: &SqlitePool, sql: &str) -> T
where
    T: for<'r> FromRow<'r, SqliteRow> + Send + Unpin,
{
    sqlx::query_as::<_, T>(AssertSqlSafe(sql.to_string()))
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Every row `sql` selects.
pub async fn all<T>(pool: &SqlitePool, sql: &str) -> Vec<T>
where
    T: for<'r> FromRow<'r, SqliteRow> + Send + Unpin,
{
    sqlx::query_as::<_, T>(AssertSqlSafe(sql.to_string()))
        .fetch_all(pool)
        .await
        .unwrap()
}

/// How many rows `sql` returns (e.g. `PRAGMA foreign_key_check`).
pub async fn count_rows(pool: &SqlitePool, sql: &str) -> usize {
    sqlx::query(AssertSqlSafe(sql.to_string()))
        .fetch_all(pool)
        .await
        .unwrap()
        .len()
}

pub async fn execute(pool: &SqlitePool, sql: &str) {
    sqlx::query(AssertSqlSafe(sql.to_string()))
        .execute(pool)
        .await
        .unwrap();
}

/// `sql` with its `?` (or `?1`, `?2`...) placeholders replaced by `values` as quoted SQL
/// strings: test data only.
pub fn bound(sql: &str, values: &[&String]) -> String {
    let quoted: Vec<String> = values
        .iter()
        .map(|v| format!("'{}'", v.replace('\'', "''")))
        .collect();
    if sql.contains("?1") {
        let mut out = sql.to_string();
        for (i, q) in quoted.iter().enumerate().rev() {
            out = out.replace(&format!("?{}", i + 1), q);
        }
        return out;
    }
    let mut out = String::new();
    let mut it = quoted.iter();
    for c in sql.chars() {
        match (c, c == '?') {
            (_, true) => out.push_str(it.next().map_or("?", String::as_str)),
            (c, false) => out.push(c),
        }
    }
    out
}
