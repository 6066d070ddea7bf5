//! Keeps `ticket_facts` current: an event follower (`events::Handler`) that recomputes
//! the facts of every ticket an event batch touched, in the batch's transaction, so a
//! statistic never counts half of a change.
//!
//! A database that predates analytics starts with the cursor at 0: the first run reads the
//! whole log and builds every ticket's facts (`catch_up`, with a progress bar on the
//! command line).

use std::sync::Arc;

use anyhow::Result;
use futures::future::BoxFuture;

use super::facts::ticket_facts;
use crate::clock::Clock;
use crate::config::Config;
use crate::events::Handler;
use crate::store::events::Event;
use crate::store::{Conn, Store};

/// The follower's cursor name.
pub const FOLLOWER: &str = "analytics";

/// Recomputes the facts of the tickets events touched.
pub struct FactsFollower {
    pub config: Arc<Config>,
}

impl Handler for FactsFollower {
    fn name(&self) -> &'static str {
        FOLLOWER
    }

    fn handle<'a>(&'a self, conn: &'a mut Conn, events: &'a [Event]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut ids: Vec<i64> = events.iter().filter_map(|e| e.ticket_id).collect();
            ids.sort_unstable();
            ids.dedup();
            refresh(conn, &self.config, &ids).await?;
            Ok(())
        })
    }
}

/// Recomputes and stores the facts of `ids`; how many tickets it wrote.
pub async fn refresh(conn: &mut Conn, cfg: &Config, ids: &[i64]) -> Result<usize> {
    let states = crate::store::analytics::list_states(conn, ids).await?;
    let mut facts = Vec::with_capacity(states.len());
    for (state, policy) in &states {
        let timeline = crate::store::triage::timeline(conn, state.id).await?;
        let calendar = policy
            .as_deref()
            .and_then(|n| cfg.slas.get(n))
            .map(|p| p.calendar.as_ref());
        facts.push(ticket_facts(state, &timeline, calendar));
    }
    crate::store::analytics::replace_facts(conn, &facts).await?;
    Ok(facts.len())
}

/// The settings key that says the rollups were built from the facts (by this version).
const ROLLED: &str = "analytics_rollups_v1";

/// Builds the rollups from the facts once, for a database whose facts predate them.
pub async fn ensure_rolled(store: &Store) -> Result<()> {
    let mut tx = store.begin_write().await?;
    if crate::store::find_setting(&mut tx, ROLLED).await?.is_none() {
        let days = crate::store::analytics::roll_all(&mut tx).await?;
        crate::store::put_setting(&mut tx, ROLLED, "1").await?;
        if days > 0 {
            tracing::info!("Analytics: daily rollups built for {days} days of ticket figures.");
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Follows the log to its end now (the command line does before it reports, so figures
/// are current whether or not the daemon runs); the number of events read. A long
/// backlog shows a progress bar when `progress`.
pub async fn catch_up(
    store: &Store,
    clock: &dyn Clock,
    cfg: Arc<Config>,
    progress: bool,
) -> Result<usize> {
    let lag = crate::events::lag(store, FOLLOWER).await?;
    let bar = if progress && lag > 5 * crate::events::BATCH {
        let b = indicatif::ProgressBar::new(lag.max(0) as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} events into ticket figures (eta {eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    ensure_rolled(store).await?;
    let follower = FactsFollower { config: cfg };
    let mut total = 0;
    loop {
        let n = crate::events::follow_once(store, clock, &follower).await?;
        if n == 0 {
            break;
        }
        total += n;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    Ok(total)
}
