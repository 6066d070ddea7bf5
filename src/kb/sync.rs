//! Keeping the search index a faithful cache of the database.
//!
//! The daemon opens the index under the state directory (`[bot] index_dir`, by default
//! `kb-index` beside the database) and rebuilds it from `kb_articles` when it was just
//! created, could not be read, or holds another number of articles than the table. After
//! that, [`IndexFollower`] follows the event log: every article write appends a
//! `kb_article_changed` event in its own transaction, and the follower re-reads that
//! article and upserts (or, when it is gone, removes) it. Upserts are idempotent, so a
//! crash between the index's commit and the cursor's only replays harmless work.
//!
//! Commands run beside the daemon (`postdesk kb search`) cannot take the index's writer
//! lock while the daemon holds it; they search a copy built in memory from the database.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use futures::future::BoxFuture;

use super::index::KbIndex;
use crate::config::Config;
use crate::events::Handler;
use crate::store::events::Event;
use crate::store::{Conn, Store, kb};

/// The follower's cursor name.
pub const FOLLOWER: &str = "kb-index";

/// Where the index lives for `cfg`.
pub fn index_dir(cfg: &Config) -> PathBuf {
    cfg.bot.index_dir.clone().unwrap_or_else(|| {
        cfg.database_path
            .parent()
            .map(|p| p.join("kb-index"))
            .unwrap_or_else(|| PathBuf::from("kb-index"))
    })
}

/// Opens the on-disk index and makes it match the database; the cursor of the follower is
/// moved to the newest event after a rebuild, since the rebuild already holds everything.
pub async fn open_index(cfg: &Config, store: &Store) -> Result<Arc<KbIndex>> {
    let dir = index_dir(cfg);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("Creating the search index directory {}", dir.display()))?;
    let index = KbIndex::open(&dir)
        .with_context(|| format!("Opening the search index in {}", dir.display()))?;
    let mut conn = store.pool().acquire().await?;
    let in_db: i64 = kb::count_articles(&mut conn).await?;
    if index.was_recreated() || index.len() != in_db as u64 {
        rebuild(&index, &mut conn).await?;
        let last = crate::store::events::last_id(&mut conn).await?;
        let now = crate::clock::db_time(chrono::Utc::now());
        crate::store::events::set_cursor(&mut conn, FOLLOWER, last, &now).await?;
        tracing::info!("Search index rebuilt: {in_db} article(s).");
    }
    Ok(Arc::new(index))
}

/// An index for a command run beside the daemon: the on-disk one brought up to date when
/// it can be opened, else a copy built in memory from the database.
pub async fn index_for_command(cfg: &Config, store: &Store) -> Result<Arc<KbIndex>> {
    match open_index(cfg, store).await {
        Ok(index) => {
            let follower = IndexFollower {
                index: Arc::clone(&index),
            };
            let clock = crate::clock::SystemClock;
            while crate::events::follow_once(store, &clock, &follower).await? > 0 {}
            Ok(index)
        }
        Err(e) => {
            tracing::debug!("Searching a copy of the index in memory: {e:#}");
            let index = KbIndex::in_memory()?;
            let mut conn = store.pool().acquire().await?;
            rebuild(&index, &mut conn).await?;
            Ok(Arc::new(index))
        }
    }
}

/// Replaces the index's content with every article of the database.
pub async fn rebuild(index: &KbIndex, conn: &mut Conn) -> Result<()> {
    let all = kb::all_for_index(conn).await?;
    index.rebuild(&all)
}

/// Follows `kb_article_changed` events into the index.
pub struct IndexFollower {
    pub index: Arc<KbIndex>,
}

impl Handler for IndexFollower {
    fn name(&self) -> &'static str {
        FOLLOWER
    }

    fn handle<'a>(&'a self, conn: &'a mut Conn, events: &'a [Event]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut ids: Vec<i64> = events
                .iter()
                .filter(|e| e.kind == crate::domain::EventKind::KbArticleChanged.as_str())
                .filter_map(|e| {
                    serde_json::from_str::<serde_json::Value>(&e.data)
                        .ok()
                        .and_then(|v| v.get("article").and_then(serde_json::Value::as_i64))
                })
                .collect();
            ids.sort_unstable();
            ids.dedup();
            for id in ids {
                match kb::get_article(conn, id).await? {
                    Some(a) => self.index.upsert(&a.indexed())?,
                    None => self.index.remove(id)?,
                }
            }
            Ok(())
        })
    }
}
