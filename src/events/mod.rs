//! Post-commit events and the workers that follow them.
//!
//! Every change to a ticket writes an event in the transaction that makes the change
//! (`store::events`; the unit of work in bulk, agents' commands row by row). A worker
//! follows the table from its own durable cursor: it reads the events after the cursor,
//! handles them, and moves the cursor **in the same transaction** as whatever its handling
//! writes. A crash rolls both back, so the worker sees every committed event exactly once
//! and never one that rolled back. Triage, the bot, SLA timers, analytics and the bridges
//! hang off this.
//!
//! This module owns the following, not the handling: a [`Handler`] says what to do.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, db_time};
use crate::store::events::{self, Event};
use crate::store::{Conn, Store};

/// Events handed to a handler at once, at most.
pub const BATCH: i64 = 500;

/// What a follower does with events.
pub trait Handler: Send + Sync {
    /// The cursor's name: unique per worker, kept across restarts.
    fn name(&self) -> &'static str;
    /// Handles `events` (in id order) inside the follower's transaction `conn`; an error
    /// rolls back this batch and its cursor, and the batch is offered again later.
    fn handle<'a>(&'a self, conn: &'a mut Conn, events: &'a [Event]) -> BoxFuture<'a, Result<()>>;
    /// Called after a handled batch committed (to wake whoever reads what it wrote).
    fn committed(&self) {}
}

/// Handles the next batch after `handler`'s cursor; the number of events handled.
pub async fn follow_once(store: &Store, clock: &dyn Clock, handler: &dyn Handler) -> Result<usize> {
    let mut tx = store.begin_write().await?;
    let after = events::cursor(&mut tx, handler.name()).await?;
    let batch = events::list_after(&mut tx, after, BATCH).await?;
    let Some(last) = batch.last().map(|e| e.id) else {
        return Ok(0);
    };
    handler.handle(&mut tx, &batch).await.with_context(|| {
        format!(
            "Event worker {:?}: events {}-{last}",
            handler.name(),
            after + 1
        )
    })?;
    events::set_cursor(&mut tx, handler.name(), last, &db_time(clock.now())).await?;
    tx.commit().await?;
    handler.committed();
    Ok(batch.len())
}

/// How many events `name` has not handled yet (its lag).
pub async fn lag(store: &Store, name: &str) -> Result<i64> {
    let mut conn = store.pool().acquire().await?;
    let after = events::cursor(&mut conn, name).await?;
    Ok(events::last_id(&mut conn).await? - after)
}

/// Follows until cancelled: drains what is there, then waits for `wake` (the ingest paths
/// notify it) or `idle`. A failing batch is logged and retried after a pause; the loop
/// never dies of one.
pub async fn follow_loop(
    store: Store,
    clock: Arc<dyn Clock>,
    handler: Arc<dyn Handler>,
    wake: Arc<tokio::sync::Notify>,
    idle: Duration,
    cancel: CancellationToken,
) {
    loop {
        let wait = match follow_once(&store, clock.as_ref(), handler.as_ref()).await {
            Ok(n) if n as i64 >= BATCH => Duration::ZERO,
            Ok(_) => idle,
            Err(e) => {
                tracing::error!("{e:#}");
                idle.max(Duration::from_secs(5))
            }
        };
        if wait.is_zero() {
            continue;
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::clock::FixedClock;
    use crate::domain::EventKind;
    use crate::store::events::NewEvent;

    /// Records what it saw; fails once when told to.
    struct Recorder {
        seen: Mutex<Vec<i64>>,
        fail_next: Mutex<bool>,
    }

    impl Handler for Recorder {
        fn name(&self) -> &'static str {
            "recorder"
        }
        fn handle<'a>(
            &'a self,
            _conn: &'a mut Conn,
            events: &'a [Event],
        ) -> BoxFuture<'a, Result<()>> {
            Box::pin(async move {
                if std::mem::take(&mut *self.fail_next.lock().unwrap()) {
                    anyhow::bail!("injected failure");
                }
                self.seen
                    .lock()
                    .unwrap()
                    .extend(events.iter().map(|e| e.id));
                Ok(())
            })
        }
    }

    async fn append(store: &Store, n: usize) {
        let mut tx = store.begin_write().await.unwrap();
        for i in 0..n {
            events::append(
                &mut tx,
                NewEvent::new(EventKind::MessageAdded, 1, serde_json::json!({"i": i})),
                "2026-12-07T00:00:00.000000Z",
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn a_follower_sees_every_committed_event_once_and_resumes_from_its_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.sqlite")).await.unwrap();
        let clock = FixedClock("2026-12-07T00:00:00Z".parse().unwrap());
        let r = Recorder {
            seen: Mutex::new(Vec::new()),
            fail_next: Mutex::new(false),
        };
        append(&store, 3).await;
        // An event that rolls back is never seen.
        {
            let mut tx = store.begin_write().await.unwrap();
            events::append(
                &mut tx,
                NewEvent::new(EventKind::StatusChanged, 1, serde_json::json!({})),
                "x",
            )
            .await
            .unwrap();
            tx.rollback().await.unwrap();
        }
        assert_eq!(follow_once(&store, &clock, &r).await.unwrap(), 3);
        assert_eq!(follow_once(&store, &clock, &r).await.unwrap(), 0);
        append(&store, 2).await;
        assert_eq!(lag(&store, "recorder").await.unwrap(), 2);
        // A failing batch moves nothing; the retry gets the same events.
        *r.fail_next.lock().unwrap() = true;
        assert!(follow_once(&store, &clock, &r).await.is_err());
        assert_eq!(lag(&store, "recorder").await.unwrap(), 2);
        assert_eq!(follow_once(&store, &clock, &r).await.unwrap(), 2);
        assert_eq!(*r.seen.lock().unwrap(), vec![1, 2, 3, 4, 5]);
        assert_eq!(lag(&store, "recorder").await.unwrap(), 0);
    }
}
