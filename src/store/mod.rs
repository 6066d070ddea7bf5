//! All SQL lives here: one file per table family, migrations in `migrations/`.
//!
//! SQLite runs in WAL mode with `foreign_keys=ON`, a busy timeout and `synchronous=FULL`,
//! because a COMMIT here gates a server-side action (flagging or moving mail): once COMMIT
//! returns, the message must survive a power cut. Store functions take a
//! `&mut SqliteConnection` so that callers compose one transaction per unit of work;
//! writers open it with `BEGIN IMMEDIATE` ([`Store::begin_write`]).
//!
//! Raw message bytes live beside the database in append-only segment files
//! ([`rawstore`]), written and synced before the transaction that refers to them commits.

pub mod agent;
pub mod analytics;
pub mod bulk;
pub mod cursors;
pub mod events;
pub mod feedback;
pub mod held;
pub mod ids;
pub mod imap_state;
#[cfg(test)]
pub mod inspect;
pub mod kb;
pub mod link_codes;
pub mod messages;
pub mod outbox;
pub mod problems;
pub mod profiles;
pub mod rawstore;
pub mod tickets;
pub mod triage;
pub mod web_auth;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, SqliteConnection, Transaction};

use rawstore::RawStore;

/// Errors a caller can act on, in words a user understands.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("raw message store: {0}")]
    Raw(#[from] std::io::Error),
}

impl StoreError {
    /// Maps sqlx's RowNotFound to NotFound(`what`) and unique violations to Conflict.
    pub fn from_sqlx(e: sqlx::Error, what: &str) -> Self {
        match e {
            sqlx::Error::RowNotFound => StoreError::NotFound(what.to_string()),
            sqlx::Error::Database(ref d) if d.is_unique_violation() => {
                StoreError::Conflict(format!("{what}: {}", d.message()))
            }
            other => StoreError::Db(other),
        }
    }
}

/// A database connection or open transaction (`&mut *tx`), as every store function takes
/// it: callers outside the store name this, never the driver.
pub type Conn = sqlx::SqliteConnection;
/// An open write transaction ([`Store::begin_write`]).
pub type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;
/// A connection taken from the pool.
pub type PoolConn = sqlx::pool::PoolConnection<sqlx::Sqlite>;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/store/migrations");

/// The database handle.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    raw: Arc<RawStore>,
    path: std::path::PathBuf,
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`, and its raw
    /// message segments in `<path>-raw`.
    pub async fn open(path: &Path) -> Result<Store> {
        let opts = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30))
            // SQLite's default 4 KiB pages, stated so it cannot drift. 1, 2 and 8 KiB pages
            // measured no different on the bulk-import benchmark. Only takes effect when the
            // database is created.
            .page_size(4096)
            // 4 MiB of page cache per connection (negative = KiB): fewer re-reads of index
            // pages during bulk ingest.
            .pragma("cache_size", "-4096")
            // Statement journals (multi-row INSERTs need one) in memory, not in a temporary
            // file created and deleted per statement.
            .pragma("temp_store", "MEMORY")
            // Checkpoint every 8192 pages (32 MiB of WAL) rather than every 1000: bulk
            // ingest copies each page to the database file less often. The WAL file is
            // truncated back to 64 MiB after a checkpoint.
            .pragma("wal_autocheckpoint", "8192")
            .pragma("journal_size_limit", "67108864")
            .statement_cache_capacity(256);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .connect_with(opts)
            .await?;
        MIGRATOR.run(&pool).await?;
        let raw = Arc::new(RawStore::open(&rawstore::dir_for(path))?);
        Ok(Store {
            pool,
            raw,
            path: path.to_path_buf(),
        })
    }

    /// Opens an existing database for reading; refuses to create one.
    pub async fn open_existing(path: &Path) -> Result<Store> {
        if !path.exists() {
            return Err(StoreError::NotFound(format!(
                "database {} (has postdesk run yet?)",
                path.display()
            )));
        }
        Store::open(path).await
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Where raw message bytes are kept.
    pub fn raw(&self) -> &Arc<RawStore> {
        &self.raw
    }

    /// Where the in-flight records of the poison-mail quarantine live
    /// (`<database>-inflight/`, see `channels::email::inflight`).
    pub fn inflight_dir(&self) -> std::path::PathBuf {
        crate::channels::email::inflight::dir_for(&self.path)
    }

    /// Starts a write transaction with `BEGIN IMMEDIATE`, so that it holds the write lock
    /// from its first statement and never fails half-way with SQLITE_BUSY on upgrade.
    pub async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// A connection kept for a run of write transactions (a bulk import, a mailbox sync),
    /// so that its page cache stays warm from one batch to the next; open each transaction
    /// with [`begin_write_on`].
    pub async fn writer(&self) -> Result<PoolConnection<Sqlite>> {
        Ok(self.pool.acquire().await?)
    }

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `BEGIN IMMEDIATE` on a connection from [`Store::writer`].
pub async fn begin_write_on(conn: &mut SqliteConnection) -> Result<Transaction<'_, Sqlite>> {
    Ok(sqlx::Connection::begin_with(conn, "BEGIN IMMEDIATE").await?)
}

/// A savepoint inside the caller's transaction: commit releases it, rollback (or drop)
/// undoes what was written since.
pub async fn savepoint(conn: &mut Conn) -> Result<sqlx::Transaction<'_, sqlx::Sqlite>> {
    Ok(sqlx::Connection::begin(conn).await?)
}

/// Reads a setting.
pub async fn find_setting(conn: &mut SqliteConnection, key: &str) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar::<_, String>("SELECT value FROM settings WHERE key = ?")
            .bind(key)
            .fetch_optional(conn)
            .await?,
    )
}

/// Writes a setting, replacing any earlier value.
pub async fn put_setting(conn: &mut SqliteConnection, key: &str, value: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO settings (key, value) VALUES (?, ?) \
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value)
    .execute(conn)
    .await?;
    Ok(())
}
