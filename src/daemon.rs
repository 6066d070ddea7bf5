//! The daemon: opens the database under the single-instance lock, spawns one loop per
//! mailbox folder and the outbox worker, and shuts them down on cancellation.
//!
//! Shutdown (SIGTERM) cancels the token; every loop finishes the transaction in flight
//! (a batch is committed and its server actions done before the loop looks at the token
//! again), then returns. The supervisor logs which task ended and why.

use std::sync::Arc;

use crate::channels::json;
use anyhow::{Context, Result};
use tokio_util::sync::CancellationToken;

use crate::channels::email::imap::{self, SyncStats};
use crate::clock::{Clock, SystemClock, db_time};
use crate::config::Config;
use crate::intake::pipeline::Pipeline;
use crate::lock::{self, InstanceLock};
use crate::outbound::templates::Templates;
use crate::outbound::worker::{FlushStats, Outbox};
use crate::store::Store;

pub struct Daemon {
    pub cfg: Arc<Config>,
    pub store: Store,
    pub pipeline: Arc<Pipeline>,
    pub outbox: Arc<Outbox>,
    /// The knowledge base's search index, when the bot is on.
    pub kb: Option<Arc<crate::kb::index::KbIndex>>,
    _lock: InstanceLock,
}

/// How often the daemon looks for held-message notices the hourly cap held back.
const HELD_DIGEST_EVERY: std::time::Duration = std::time::Duration::from_secs(300);
/// How often the search index follower looks for article changes when nothing woke it.
const KB_FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_secs(2);
/// How often SLA timers, alert reports and digests are checked.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

/// Queues the held-message notices the hourly cap held back (see
/// `agent::send_held_digests`), in one transaction.
async fn held_digests(store: &Store, pipeline: &Pipeline) -> Result<usize> {
    let mut tx = store.begin_write().await?;
    let n = crate::agent::send_held_digests(pipeline, &mut tx, pipeline.clock().now()).await?;
    tx.commit().await?;
    if n > 0 {
        tracing::info!("Queued {n} held-message digest(s).");
    }
    Ok(n)
}

/// When the last summary of unfiled messages went to the admin.
const PROBLEMS_SUMMARY_SETTING: &str = "problems_summary_at";
/// At most one summary per this long.
const PROBLEMS_SUMMARY_EVERY: chrono::Duration = chrono::Duration::hours(24);

/// Queues the admin's summary of messages that could not be filed (unprocessable,
/// rejected, held) since the last one, at most once a day and only when there are any.
/// Without `[admin] email` nothing is sent. True when one was queued.
async fn problems_summary(store: &Store, pipeline: &Pipeline) -> Result<bool> {
    let cfg = pipeline.config();
    let Some(admin) = cfg.admin_email.as_deref() else {
        return Ok(false);
    };
    let now = pipeline.clock().now();
    let mut tx = store.begin_write().await?;
    let last = crate::store::find_setting(&mut tx, PROBLEMS_SUMMARY_SETTING).await?;
    if let Some(last) = last.as_deref()
        && last > db_time(now - PROBLEMS_SUMMARY_EVERY).as_str()
    {
        return Ok(false);
    }
    let since = last.unwrap_or_else(|| db_time(now - PROBLEMS_SUMMARY_EVERY));
    let found =
        crate::store::messages::list_recent_views(&mut tx, true, Some(&since), 1000).await?;
    if found.is_empty() {
        return Ok(false);
    }
    let entries: Vec<crate::channels::email::compose::ProblemEntry<'_>> = found
        .iter()
        .rev()
        .map(|m| crate::channels::email::compose::ProblemEntry {
            row: m.id,
            at: &m.created_at,
            kind: &m.kind,
            ticket: m.ticket,
            from: m.from.as_deref(),
            subject: &m.subject,
            why: m
                .held_reason
                .as_deref()
                .or(m.problems.first().map(String::as_str)),
        })
        .collect();
    let mail = crate::channels::email::compose::problems_summary(
        cfg,
        pipeline.templates(),
        admin,
        since.get(..19).unwrap_or(&since),
        &entries,
    )?;
    let now_s = db_time(now);
    crate::store::outbox::insert_outbox(
        &mut tx,
        &crate::store::outbox::NewOutbox {
            message_row: None,
            ticket_id: None,
            kind: "problems_summary",
            message_id: &mail.message_id,
            mail_from: &cfg.smtp.from.address,
            rcpt_to: &mail.to,
            raw: &mail.raw,
            now: &now_s,
        },
    )
    .await?;
    crate::store::put_setting(&mut tx, PROBLEMS_SUMMARY_SETTING, &now_s).await?;
    tx.commit().await?;
    tracing::info!(
        "Queued the summary of {} unfiled message(s) for {admin}.",
        entries.len()
    );
    Ok(true)
}

/// The periodic chores: held-message digests and the admin's daily summary. Each is its
/// own transaction; an error in one is logged and does not stop the other. The number of
/// mails queued.
async fn housekeeping(store: &Store, pipeline: &Pipeline) -> usize {
    let mut queued = 0;
    match held_digests(store, pipeline).await {
        Ok(n) => queued += n,
        Err(e) => tracing::error!("Held-message digests: {e:#}"),
    }
    match problems_summary(store, pipeline).await {
        Ok(true) => queued += 1,
        Ok(false) => {}
        Err(e) => tracing::error!("Summary of unfiled messages: {e:#}"),
    }
    // SLA warnings and breaches, overdue alert reports, daily digests.
    queued += crate::watch::tick(store, pipeline).await.total();
    queued
}

/// What `run --once` did.
#[derive(Debug, Default, serde::Serialize)]
pub struct OnceReport {
    pub fetched: usize,
    pub new_tickets: usize,
    pub joined: usize,
    pub duplicates: usize,
    pub other: usize,
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
    pub mailbox_errors: Vec<String>,
    /// Peak resident memory of the process, KiB (Linux only).
    pub peak_rss_kib: Option<u64>,
}

impl Daemon {
    /// Takes the lock, opens and migrates the database, loads templates.
    pub async fn open(cfg: Config) -> Result<Daemon> {
        let lock = lock::acquire(&cfg.database_path)?;
        let store = Store::open(&cfg.database_path)
            .await
            .with_context(|| format!("Opening database {}", cfg.database_path.display()))?;
        let templates = Arc::new(Templates::load(cfg.templates_dir.as_deref())?);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let cfg = Arc::new(cfg);
        // The answer bot's search index: a cache of the articles, rebuilt when it does not
        // match the database. Without it the daemon still runs; the bot stays silent.
        let kb = if cfg.bot.enabled {
            match crate::kb::sync::open_index(&cfg, &store).await {
                Ok(index) => Some(index),
                Err(e) => {
                    tracing::error!("The answer bot is off: {e:#}");
                    None
                }
            }
        } else {
            None
        };
        let pipeline = Arc::new(
            Pipeline::open(cfg.clone(), templates, clock.clone(), &store)
                .await?
                .with_kb(kb.clone()),
        );
        let outbox = Arc::new(
            Outbox::new(store.clone(), &cfg.smtp, clock)?
                .with_json_channels(&cfg.json_channels)?
                .with_telegram(&cfg.telegram_channels)?
                .with_matrix(&cfg.matrix_channels)
                .with_notices(cfg.clone(), pipeline.templates_arc()),
        );
        Ok(Daemon {
            cfg,
            store,
            pipeline,
            outbox,
            kb,
            _lock: lock,
        })
    }

    /// Brings the search index up to date with the article events (one pass).
    /// Spawns an event-log follower (`events::follow_loop`) under `name`.
    fn spawn_follower(
        &self,
        tasks: &mut tokio::task::JoinSet<String>,
        handler: Arc<dyn crate::events::Handler>,
        name: &'static str,
        cancel: &CancellationToken,
    ) {
        let fut = crate::events::follow_loop(
            self.store.clone(),
            Arc::new(SystemClock),
            handler,
            Arc::new(tokio::sync::Notify::new()),
            KB_FOLLOW_EVERY,
            cancel.clone(),
        );
        tasks.spawn(async move {
            fut.await;
            name.to_string()
        });
    }

    async fn follow_kb_once(&self) {
        let Some(index) = &self.kb else { return };
        let follower = crate::kb::sync::IndexFollower {
            index: Arc::clone(index),
        };
        loop {
            match crate::events::follow_once(&self.store, &SystemClock, &follower).await {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::error!("{e:#}");
                    break;
                }
            }
        }
    }

    /// One full cycle: sync every mailbox folder, then flush the outbox.
    pub async fn run_once(&self, cancel: &CancellationToken) -> Result<OnceReport> {
        let mut report = OnceReport::default();
        self.follow_kb_once().await;
        for mb in &self.cfg.mailboxes {
            match imap::sync_mailbox_once(&self.store, &self.pipeline, mb, cancel).await {
                Ok(SyncStats {
                    fetched,
                    new_tickets,
                    joined,
                    duplicates,
                    other,
                }) => {
                    report.fetched += fetched;
                    report.new_tickets += new_tickets;
                    report.joined += joined;
                    report.duplicates += duplicates;
                    report.other += other;
                }
                Err(e) => {
                    tracing::error!("Mailbox {:?}: {e:#}", mb.name);
                    report
                        .mailbox_errors
                        .push(format!("mailbox {:?}: {e:#}", mb.name));
                }
            }
        }
        // Each relay feed once: pages until one comes back empty.
        for account in self
            .cfg
            .json_channels
            .iter()
            .filter(|a| a.feed_url.is_some())
        {
            match self.poll_feed_until_empty(account).await {
                Ok(n) => report.fetched += n,
                Err(e) => {
                    tracing::error!("JSON channel {:?}: {e:#}", account.account);
                    report
                        .mailbox_errors
                        .push(format!("json channel {:?}: {e:#}", account.account));
                }
            }
        }
        // Each polled Telegram bot once, without waiting: pages until one comes back empty.
        // (A bot in webhook mode is sent its updates by Telegram.)
        for bot in self
            .cfg
            .telegram_channels
            .iter()
            .filter(|b| b.webhook_url.is_none())
        {
            match self.poll_telegram_until_empty(bot).await {
                Ok(n) => report.fetched += n,
                Err(e) => {
                    tracing::error!("Telegram bot {:?}: {e:#}", bot.account);
                    report
                        .mailbox_errors
                        .push(format!("telegram bot {:?}: {e:#}", bot.account));
                }
            }
        }
        // Each Matrix account once: one sync without waiting.
        for account in &self.cfg.matrix_channels {
            use crate::channels::matrix::source;
            let once = async {
                if let Some(reason) = source::is_disabled(&self.store, account).await? {
                    anyhow::bail!("disabled: {reason}");
                }
                let session = source::connect(account).await?;
                source::sync_once(
                    &self.store,
                    &self.pipeline,
                    account,
                    &session,
                    std::time::Duration::ZERO,
                )
                .await
            };
            match once.await {
                Ok(n) => report.fetched += n,
                Err(e) => {
                    tracing::error!("Matrix account {:?}: {e:#}", account.account);
                    report
                        .mailbox_errors
                        .push(format!("matrix account {:?}: {e:#}", account.account));
                }
            }
        }
        housekeeping(&self.store, &self.pipeline).await;
        let FlushStats {
            sent,
            retrying,
            failed,
        } = self.outbox.flush(cancel).await?;
        report.sent = sent;
        report.retrying = retrying;
        report.failed = failed;
        report.peak_rss_kib = crate::peak_rss_kib();
        Ok(report)
    }

    async fn poll_feed_until_empty(
        &self,
        account: &crate::config::JsonChannelConfig,
    ) -> Result<usize> {
        let Some(url) = &account.feed_url else {
            return Ok(0);
        };
        let http = crate::channels::json::client::http_client()?;
        let mut total = 0;
        // A relay that never runs dry must not keep `--once` going for ever.
        for _ in 0..100 {
            let n =
                json::source::poll_once(&self.store, &self.pipeline, account, url, &http).await?;
            total += n;
            if n == 0 {
                break;
            }
        }
        Ok(total)
    }

    async fn poll_telegram_until_empty(
        &self,
        bot: &crate::config::TelegramChannelConfig,
    ) -> Result<usize> {
        use crate::channels::telegram::{client, source};
        if let Some(reason) = source::is_disabled(&self.store, bot).await? {
            anyhow::bail!("disabled: {reason}");
        }
        let api = client::Api::new(bot)?;
        let once = crate::config::TelegramChannelConfig {
            poll_timeout: std::time::Duration::ZERO,
            ..bot.clone()
        };
        let mut state = source::PollState::default();
        let mut total = 0;
        for _ in 0..100 {
            match source::poll_once(&self.store, &self.pipeline, &once, &api, &mut state).await {
                Ok(stats) => {
                    total += stats.updates;
                    if stats.updates == 0 {
                        break;
                    }
                }
                Err(e) => {
                    if let Some(client::ApiError::Unauthorized(why)) = e.downcast_ref() {
                        source::disable_and_alert(&self.store, &self.pipeline, bot, why).await?;
                    }
                    return Err(e);
                }
            }
        }
        // Confirm the last page to Telegram (an empty, immediate poll carries the offset).
        if let Some(offset) = state.offset {
            api.get_updates(Some(offset), std::time::Duration::ZERO, 1)
                .await
                .map_err(anyhow::Error::from)
                .map(|_| ())
                .or_else(|e| {
                    tracing::warn!(
                        "Telegram bot {:?}: confirming the offset: {e:#}",
                        bot.account
                    );
                    Ok::<(), anyhow::Error>(())
                })?;
        }
        Ok(total)
    }

    /// Runs until `cancel` fires. `ready` is called once every loop has been started.
    pub async fn run(&self, cancel: CancellationToken, ready: impl FnOnce()) -> Result<()> {
        let wake = Arc::new(tokio::sync::Notify::new());
        // Counters count from the daemon's start.
        crate::web::metrics::handle();
        let mut tasks = tokio::task::JoinSet::new();
        if let Some(http) = &self.cfg.http {
            let listener = tokio::net::TcpListener::bind(http.listen)
                .await
                .with_context(|| format!("HTTP listener on {}", http.listen))?;
            let backend = Arc::new(json::source::StoreBackend {
                store: self.store.clone(),
                pipeline: self.pipeline.clone(),
                wake_outbox: wake.clone(),
            });
            let app = json::http::router(backend, &self.cfg.json_channels)
                .merge(crate::channels::telegram::webhook::router(
                    self.store.clone(),
                    self.pipeline.clone(),
                    &self.cfg.telegram_channels,
                    wake.clone(),
                )?)
                .merge(crate::web::rate::router(
                    self.store.clone(),
                    Arc::new(SystemClock),
                ))
                .merge(crate::web::metrics::router(
                    self.store.clone(),
                    http.metrics_token.clone(),
                ))
                .merge(crate::web::dashboard::router(
                    self.store.clone(),
                    Arc::clone(&self.cfg),
                    Arc::new(SystemClock),
                ));
            let cancel = cancel.clone();
            tracing::info!(
                "HTTP listener on {} (/healthz, /metrics, /rate, JSON channel).",
                http.listen
            );
            tasks.spawn(async move {
                let shutdown = cancel.clone();
                // Peers' addresses: /metrics answers loopback without a token.
                let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
                if let Err(e) = axum::serve(listener, app)
                    .with_graceful_shutdown(async move { shutdown.cancelled().await })
                    .await
                {
                    tracing::error!("HTTP listener: {e:#}");
                }
                "HTTP listener".to_string()
            });
        }
        for account in self
            .cfg
            .json_channels
            .iter()
            .filter(|a| a.feed_url.is_some())
        {
            let name = format!("JSON channel {:?} feed", account.account);
            let fut = json::source::feed_loop(
                self.store.clone(),
                self.pipeline.clone(),
                account.clone(),
                cancel.clone(),
                wake.clone(),
            );
            tasks.spawn(async move {
                fut.await;
                name
            });
        }
        for bot in self
            .cfg
            .telegram_channels
            .iter()
            .filter(|b| b.webhook_url.is_some())
        {
            // Ends once Telegram took the URL, which is no failure: not supervised.
            tokio::spawn(crate::channels::telegram::webhook::register_loop(
                self.store.clone(),
                self.pipeline.clone(),
                bot.clone(),
                cancel.clone(),
                wake.clone(),
            ));
        }
        for account in &self.cfg.matrix_channels {
            let name = format!("Matrix account {:?}", account.account);
            let fut = crate::channels::matrix::source::sync_loop(
                self.store.clone(),
                self.pipeline.clone(),
                account.clone(),
                cancel.clone(),
                wake.clone(),
            );
            tasks.spawn(async move {
                fut.await;
                name
            });
        }
        for bot in self
            .cfg
            .telegram_channels
            .iter()
            .filter(|b| b.webhook_url.is_none())
        {
            let name = format!("Telegram bot {:?}", bot.account);
            let fut = crate::channels::telegram::source::poll_loop(
                self.store.clone(),
                self.pipeline.clone(),
                bot.clone(),
                cancel.clone(),
                wake.clone(),
            );
            tasks.spawn(async move {
                fut.await;
                name
            });
        }
        for mb in &self.cfg.mailboxes {
            for folder in &mb.folders {
                let name = format!("mailbox {:?} folder {folder:?}", mb.name);
                let fut = imap::folder_loop(
                    self.store.clone(),
                    self.pipeline.clone(),
                    mb.clone(),
                    folder.clone(),
                    cancel.clone(),
                    wake.clone(),
                );
                tasks.spawn(async move {
                    fut.await;
                    name
                });
            }
        }
        if !self.cfg.telegram_channels.is_empty()
            || !self.cfg.matrix_channels.is_empty()
            || !self.cfg.json_channels.is_empty()
        {
            // `/link` in a chat: the one-time code linker follows new chat messages.
            match self.store.pool().acquire().await {
                Ok(mut conn) => {
                    let now = crate::clock::db_time(self.pipeline.clock().now());
                    if let Err(e) = crate::store::events::start_at_newest(
                        &mut conn,
                        crate::channels::link::FOLLOWER,
                        &now,
                    )
                    .await
                    {
                        tracing::warn!("The chat link follower's cursor: {e:#}");
                    }
                }
                Err(e) => tracing::warn!("The chat link follower's cursor: {e:#}"),
            }
            let follower = Arc::new(crate::channels::link::CodeLinker::new(
                Arc::clone(&self.pipeline),
                Some(wake.clone()),
            ));
            self.spawn_follower(&mut tasks, follower, "chat link follower", &cancel);
        }
        {
            // Every ticket change reaches the analytics figures through the event log.
            let follower = Arc::new(crate::analytics::follower::FactsFollower {
                config: Arc::clone(&self.cfg),
            });
            self.spawn_follower(&mut tasks, follower, "analytics follower", &cancel);
        }
        if let Some(index) = &self.kb {
            // Article writes (the CLI, `#kb approve`) reach the index through the event log.
            let follower = Arc::new(crate::kb::sync::IndexFollower {
                index: Arc::clone(index),
            });
            self.spawn_follower(&mut tasks, follower, "search index follower", &cancel);
        }
        {
            let outbox = self.outbox.clone();
            let cancel = cancel.clone();
            let wake = wake.clone();
            tasks.spawn(async move {
                outbox.run_loop(wake, cancel).await;
                "outbox worker".to_string()
            });
        }
        {
            // Housekeeping every few minutes: the held notices the hourly cap held back,
            // and the admin's daily summary of unfiled messages. Short transactions; an
            // error is logged and retried on the next pass.
            let (store, pipeline) = (self.store.clone(), self.pipeline.clone());
            let cancel = cancel.clone();
            let wake = wake.clone();
            tasks.spawn(async move {
                loop {
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(HELD_DIGEST_EVERY) => {}
                    }
                    if housekeeping(&store, &pipeline).await > 0 {
                        wake.notify_one();
                    }
                }
                "housekeeping (held digests, admin summary)".to_string()
            });
        }
        {
            // The clock's triage chores (`watch`): SLA warnings and breaches, overdue red
            // alert reports, daily digests. Each notice is claimed once in the database.
            let (store, pipeline) = (self.store.clone(), self.pipeline.clone());
            let cancel = cancel.clone();
            let wake = wake.clone();
            tasks.spawn(async move {
                loop {
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(WATCH_EVERY) => {}
                    }
                    if crate::watch::tick(&store, &pipeline).await.total() > 0 {
                        wake.notify_one();
                    }
                }
                "watch (SLA timers, red alerts, digests)".to_string()
            });
        }
        tracing::info!(
            "postdesk running: {} mailbox(es), database {}.",
            self.cfg.mailboxes.len(),
            self.cfg.database_path.display()
        );
        ready();
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(name) if cancel.is_cancelled() => tracing::debug!("Task ended: {name}."),
                Ok(name) => tracing::error!("Task ended unexpectedly: {name}."),
                Err(e) => tracing::error!("Task panicked or was aborted: {e}"),
            }
        }
        self.store.close().await;
        tracing::info!("postdesk stopped cleanly.");
        Ok(())
    }
}
