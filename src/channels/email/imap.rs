//! IMAP: connect (plain, STARTTLS or TLS), sync a folder by UIDVALIDITY and UID watermark,
//! and wait for new mail with IDLE (RFC 2177) or by polling.
//!
//! Progress is never inferred from `\Seen` or dates: every UID above the stored watermark
//! is fetched with `BODY.PEEK[]` (which does not set `\Seen`), committed together with the
//! new watermark, and only then is the server touched (flag or move), from the durable
//! `pending_actions` queue. A UIDVALIDITY change (RFC 9051 §2.3.1.1) resets the watermark:
//! the whole folder is fetched again and dedup absorbs what is already stored.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use crate::store::Conn;
use anyhow::{Context, Result, anyhow, bail};
use async_imap::Session;
use async_imap::extensions::idle::IdleResponse;
use futures::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::channels::email::inflight::{self, InFlight};
use crate::clock::db_time;
use crate::config::{AfterIngest, MailboxConfig, Security};
use crate::intake::pipeline::Pipeline;
use crate::intake::{BatchItem, Outcome, Source};
use crate::store::{Store, imap_state};
use crate::{channels::email::parse, intake::BATCH_BYTES};

/// A plain or TLS connection, so that one session type serves every security mode.
pub enum ImapStream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl fmt::Debug for ImapStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImapStream::Plain(_) => f.write_str("ImapStream::Plain"),
            ImapStream::Tls(_) => f.write_str("ImapStream::Tls"),
        }
    }
}

impl AsyncRead for ImapStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ImapStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

pub type ImapSession = Session<ImapStream>;

/// Bound on one IMAP command/response exchange (a fetch of one batch included).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a shutdown waits for the server before dropping the connection.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// TCP keepalive, so a half-open connection (a network partition during IDLE) is noticed
/// in about two minutes instead of at the next IDLE re-issue.
const KEEPALIVE_TIME: Duration = Duration::from_secs(60);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// A TLS connector trusting the public web roots plus, if given, the CA certificates in
/// `ca_file` (PEM), for servers with a private CA.
pub fn tls_connector(ca_file: Option<&std::path::Path>) -> Result<tokio_rustls::TlsConnector> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .with_context(|| format!("Reading {}", path.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("Parsing {}", path.display()))?;
        for c in certs {
            roots
                .add(c)
                .with_context(|| format!("Adding a CA certificate from {}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

async fn tls_wrap(
    tcp: TcpStream,
    host: &str,
    ca_file: Option<&std::path::Path>,
    limit: Duration,
) -> Result<ImapStream> {
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .with_context(|| format!("{host:?} is not a valid TLS server name"))?;
    // Bounded: a server that accepts TCP and then says nothing must not stall the loop.
    let tls = tokio::time::timeout(limit, tls_connector(ca_file)?.connect(name, tcp))
        .await
        .map_err(|_| anyhow!("TLS handshake with {host} timed out"))?
        .with_context(|| format!("TLS handshake with {host}"))?;
    Ok(ImapStream::Tls(Box::new(tls)))
}

/// Connects and logs in.
pub async fn connect(mb: &MailboxConfig) -> Result<ImapSession> {
    // Every step of connecting is bounded by the mailbox's timeout_secs.
    let limit = mb.timeout;
    let tcp = tokio::time::timeout(limit, TcpStream::connect((mb.host.as_str(), mb.port)))
        .await
        .map_err(|_| anyhow!("Connecting to {}:{} timed out", mb.host, mb.port))?
        .with_context(|| format!("Connecting to {}:{}", mb.host, mb.port))?;
    tcp.set_nodelay(true).ok();
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_TIME)
        .with_interval(KEEPALIVE_INTERVAL);
    if let Err(e) = socket2::SockRef::from(&tcp).set_tcp_keepalive(&keepalive) {
        tracing::debug!("Mailbox {:?}: cannot set TCP keepalive: {e}", mb.name);
    }
    let stream = match mb.security {
        Security::Tls => tls_wrap(tcp, &mb.host, mb.tls_ca_file.as_deref(), limit).await?,
        Security::Plain | Security::StartTls => ImapStream::Plain(tcp),
    };
    let mut client = async_imap::Client::new(stream);
    let greeting = tokio::time::timeout(limit, client.read_response())
        .await
        .map_err(|_| anyhow!("No IMAP greeting from {}:{}", mb.host, mb.port))?
        .context("Reading the IMAP greeting")?;
    if greeting.is_none() {
        bail!(
            "{}:{} closed the connection before greeting",
            mb.host,
            mb.port
        );
    }
    if mb.security == Security::StartTls {
        tokio::time::timeout(limit, client.run_command_and_check_ok("STARTTLS", None))
            .await
            .map_err(|_| anyhow!("STARTTLS timed out"))?
            .context("STARTTLS refused by the server")?;
        let ImapStream::Plain(tcp) = client.into_inner() else {
            bail!("STARTTLS on a connection that is already TLS");
        };
        client = async_imap::Client::new(
            tls_wrap(tcp, &mb.host, mb.tls_ca_file.as_deref(), limit).await?,
        );
    }
    let session = tokio::time::timeout(limit, client.login(&mb.username, mb.password.expose()))
        .await
        .map_err(|_| anyhow!("LOGIN timed out"))?
        .map_err(|(e, _)| anyhow!("LOGIN as {:?} failed: {e}", mb.username))?;
    Ok(session)
}

/// Compresses sorted UIDs into an IMAP sequence set: `1:5,9,12:14`.
pub fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut iter = uids.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end.wrapping_add(1))) {
            end += 1;
            iter.next();
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
    }
    out
}

/// What one sync of a folder did.
#[derive(Debug, Default, Clone, Copy)]
pub struct SyncStats {
    pub fetched: usize,
    pub new_tickets: usize,
    pub joined: usize,
    pub duplicates: usize,
    pub other: usize,
}

/// Test hook: `POSTDESK_FAULT=crash-after-commit` aborts the process right after the first
/// COMMIT of a batch, before the server is touched, to prove that a crash there loses and
/// duplicates nothing. Read once; unset in production.
fn crash_after_commit() -> bool {
    static FLAG: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FLAG.get_or_init(|| std::env::var("POSTDESK_FAULT").is_ok_and(|v| v == "crash-after-commit"))
}

async fn timed<T, F: std::future::Future<Output = T>>(what: &str, f: F) -> Result<T> {
    tokio::time::timeout(COMMAND_TIMEOUT, f)
        .await
        .map_err(|_| anyhow!("{what} timed out after {}s", COMMAND_TIMEOUT.as_secs()))
}

/// Applies the server-side actions owed for this folder, then forgets them.
async fn apply_pending_actions(
    session: &mut ImapSession,
    store: &Store,
    mb: &MailboxConfig,
    folder: &str,
    uidvalidity: u32,
    caps: ServerCaps,
) -> Result<()> {
    let mut conn = store.pool().acquire().await?;
    let pending = imap_state::list_pending_actions(&mut conn, &mb.name, folder).await?;
    drop(conn);
    if pending.is_empty() {
        return Ok(());
    }
    type Groups = std::collections::BTreeMap<(String, String), (Vec<u32>, Vec<i64>)>;
    let mut groups: Groups = Default::default();
    let mut stale = Vec::new();
    for a in &pending {
        if a.uidvalidity != uidvalidity || !matches!(a.action.as_str(), "flag" | "move") {
            stale.push(a.id);
            continue;
        }
        let g = groups
            .entry((a.action.clone(), a.argument.clone()))
            .or_default();
        g.0.push(a.uid);
        g.1.push(a.id);
    }
    if !stale.is_empty() {
        tracing::warn!(
            "Mailbox {:?} folder {folder:?}: {} pending server actions dropped (UIDVALIDITY changed)",
            mb.name,
            stale.len()
        );
        forget_actions(store, &stale).await?;
    }
    // A failing action (a missing target folder, a read-only mailbox) is logged and stays
    // pending for the next round; it never stops the folder from being synced.
    for ((action, argument), (mut uids, ids)) in groups {
        uids.sort_unstable();
        let set = uid_set(&uids);
        let done = if action == "flag" {
            store_flags(session, &set, &format!("+FLAGS.SILENT ({argument})")).await
        } else if caps.moves {
            timed("UID MOVE", session.uid_mv(&set, &argument))
                .await
                .and_then(|r| r.context("UID MOVE"))
        } else {
            // No MOVE (RFC 6851): COPY, then mark deleted, then expunge just these UIDs
            // where UIDPLUS (RFC 4315) allows it. The action is forgotten as soon as the
            // COPY succeeded, so a later failure never copies the messages twice.
            match timed("UID COPY", session.uid_copy(&set, &argument))
                .await
                .and_then(|r| r.context("UID COPY"))
            {
                Ok(()) => {
                    forget_actions(store, &ids).await?;
                    let mut r = store_flags(session, &set, "+FLAGS.SILENT (\\Deleted)").await;
                    if r.is_ok() && caps.uidplus {
                        r = match timed("UID EXPUNGE", session.uid_expunge(&set)).await {
                            Ok(Ok(stream)) => timed("UID EXPUNGE", stream.try_collect::<Vec<_>>())
                                .await
                                .and_then(|r| r.context("UID EXPUNGE"))
                                .map(|_| ()),
                            Ok(Err(e)) => Err(anyhow!(e).context("UID EXPUNGE")),
                            Err(e) => Err(e),
                        };
                    }
                    if let Err(e) = r {
                        tracing::error!(
                            "Mailbox {:?} folder {folder:?}: UIDs {set} were copied to {argument:?} but not removed: {e:#}",
                            mb.name
                        );
                    }
                    continue;
                }
                Err(e) => Err(e),
            }
        };
        match done {
            Ok(()) => {
                tracing::debug!(
                    "Mailbox {:?} folder {folder:?}: {action} {argument:?} done for UIDs {set}",
                    mb.name
                );
                forget_actions(store, &ids).await?;
            }
            Err(e) => tracing::error!(
                "Mailbox {:?} folder {folder:?}: {action} {argument:?} failed for UIDs {set}, will retry: {e:#}",
                mb.name
            ),
        }
    }
    Ok(())
}

async fn store_flags(session: &mut ImapSession, set: &str, what: &str) -> Result<()> {
    let stream = timed("UID STORE", session.uid_store(set, what))
        .await?
        .context("UID STORE")?;
    timed("UID STORE", stream.try_collect::<Vec<_>>())
        .await?
        .context("UID STORE")?;
    Ok(())
}

async fn forget_actions(store: &Store, ids: &[i64]) -> Result<()> {
    let mut tx = store.begin_write().await?;
    imap_state::delete_pending_actions(&mut tx, ids).await?;
    tx.commit().await?;
    Ok(())
}

/// What the server can do that the sync cares about.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerCaps {
    pub idle: bool,
    pub moves: bool,
    pub uidplus: bool,
}

impl ServerCaps {
    async fn query(session: &mut ImapSession) -> Result<ServerCaps> {
        let caps = timed("CAPABILITY", session.capabilities()).await??;
        Ok(ServerCaps {
            idle: caps.has_str("IDLE"),
            moves: caps.has_str("MOVE"),
            uidplus: caps.has_str("UIDPLUS"),
        })
    }
}

/// Brings the database up to date with one folder. Checks `cancel` between batches: a
/// batch in flight always finishes (commit and server actions) before returning.
///
/// Poison mail: which message is being parsed and decided is kept in the folder's
/// in-flight record (`inflight`). When a previous run died with messages in flight, they
/// are synced again one at a time first (careful mode); a message that was in flight in
/// careful mode when the process died again is quarantined and skipped from then on.
pub async fn sync_folder(
    session: &mut ImapSession,
    store: &Store,
    pipeline: &Pipeline,
    mb: &MailboxConfig,
    folder: &str,
    caps: ServerCaps,
    cancel: &CancellationToken,
) -> Result<SyncStats> {
    let selected = timed("SELECT", session.select(folder))
        .await?
        .with_context(|| format!("SELECT {folder:?}"))?;
    let uidvalidity = selected
        .uid_validity
        .ok_or_else(|| anyhow!("Server sent no UIDVALIDITY for {folder:?}"))?;

    // Finish what a previous run committed but could not do on the server.
    apply_pending_actions(session, store, mb, folder, uidvalidity, caps).await?;

    let (inflight, left) = InFlight::open(&store.inflight_dir(), &mb.name, folder)
        .with_context(|| format!("Opening the in-flight record of {folder:?}"))?;
    let inflight = Arc::new(inflight);
    let result = sync_folder_inner(
        session,
        store,
        pipeline,
        mb,
        folder,
        caps,
        cancel,
        uidvalidity,
        &inflight,
        left,
    )
    .await;
    // Returning, with success or an error, is an ordinary end: nothing is in flight (but
    // suspects of an earlier crash not yet dealt with stay recorded). Only a process that
    // dies (or a task that panics) leaves the record behind.
    inflight.finish();
    result
}

#[allow(clippy::too_many_arguments)]
async fn sync_folder_inner(
    session: &mut ImapSession,
    store: &Store,
    pipeline: &Pipeline,
    mb: &MailboxConfig,
    folder: &str,
    caps: ServerCaps,
    cancel: &CancellationToken,
    uidvalidity: u32,
    inflight: &Arc<InFlight>,
    left: Option<inflight::Record>,
) -> Result<SyncStats> {
    let mut stats = SyncStats::default();
    let mut conn = store.pool().acquire().await?;
    let state = imap_state::find_folder_state(&mut conn, &mb.name, folder).await?;
    let mut quarantined =
        imap_state::list_quarantined(&mut conn, &mb.name, folder, uidvalidity).await?;
    drop(conn);
    let mut last_uid = match state {
        Some(s) if s.uidvalidity == uidvalidity => s.last_uid,
        Some(s) => {
            tracing::warn!(
                "Mailbox {:?} folder {folder:?}: UIDVALIDITY changed from {} to {uidvalidity}; \
                 re-syncing the whole folder (already stored messages are deduplicated)",
                mb.name,
                s.uidvalidity
            );
            0
        }
        None => 0,
    };

    // What a previous run left in flight when it died.
    let mut careful_until = 0u32;
    let mut suspects: Vec<u32> = Vec::new();
    if let Some(r) = left.filter(|r| r.uidvalidity == uidvalidity) {
        suspects = r
            .suspects()
            .into_iter()
            .filter(|u| *u > last_uid && !quarantined.contains(u))
            .collect();
        if r.careful {
            for uid in std::mem::take(&mut suspects) {
                quarantine(session, store, pipeline, mb, folder, uidvalidity, uid).await?;
                quarantined.push(uid);
                stats.other += 1;
            }
        } else if let Some(max) = suspects.iter().max() {
            tracing::warn!(
                "Mailbox {:?} folder {folder:?}: the last run stopped while processing UID {}; \
                 syncing up to UID {max} one message at a time, each of them alone",
                mb.name,
                uid_set(&suspects)
            );
            careful_until = *max;
        }
    }
    if careful_until == 0 {
        inflight.settle();
        inflight.begin(uidvalidity, false);
    }

    let found = timed(
        "UID SEARCH",
        session.uid_search(format!("UID {}:*", last_uid.saturating_add(1))),
    )
    .await?
    .context("UID SEARCH")?;
    // `n:*` always matches the highest UID even when it is below n (RFC 9051 §6.4.8).
    let mut uids: Vec<u32> = found
        .into_iter()
        .filter(|u| *u > last_uid && !quarantined.contains(u))
        .collect();
    uids.sort_unstable();
    if uids.is_empty() {
        // Whatever was suspect is gone from the folder (or quarantined).
        inflight.settle();
        if state.is_none() || state.is_some_and(|s| s.uidvalidity != uidvalidity) {
            let mut tx = store.begin_write().await?;
            let now = db_time(chrono::Utc::now());
            imap_state::put_folder_state(
                &mut tx,
                &mb.name,
                folder,
                imap_state::FolderState {
                    uidvalidity,
                    last_uid,
                },
                &now,
            )
            .await?;
            tx.commit().await?;
        }
        return Ok(stats);
    }

    let max = pipeline.config().ingest.max_message_bytes as u64;

    // Careful mode: the suspects of a crash and everything before them, one message per
    // transaction, nothing fetched ahead, so that the record names exactly one message;
    // a suspect marked as such and worked on with no other folder's pass running.
    let careful = uids.partition_point(|u| *u <= careful_until);
    if careful > 0 {
        for uid in uids.get(..careful).unwrap_or(&[]).to_vec() {
            if cancel.is_cancelled() {
                return Ok(stats);
            }
            let suspect = suspects.contains(&uid);
            let (_alone, _shared) = if suspect {
                (Some(inflight::alone().await), None)
            } else {
                (None, Some(inflight::shared().await))
            };
            let mut writer = store.writer().await?;
            inflight.begin(uidvalidity, suspect);
            let (parsed, _) = fetch_chunk(session, &[uid], 1, max, inflight).await?;
            commit_chunk(
                &mut writer,
                pipeline,
                mb,
                folder,
                uidvalidity,
                &[uid],
                &parsed,
                &mut last_uid,
                &mut stats,
                inflight,
            )
            .await?;
            inflight.clear();
            apply_pending_actions(session, store, mb, folder, uidvalidity, caps).await?;
        }
        tracing::info!(
            "Mailbox {:?} folder {folder:?}: careful sync up to UID {careful_until} done; back to batches",
            mb.name
        );
    }
    inflight.settle();
    inflight.begin(uidvalidity, false);
    let uids = uids.get(careful..).unwrap_or(&[]);
    let _shared = inflight::shared().await;
    let mut writer = store.writer().await?;

    // Batch k commits while batch k+1 is fetched and parsed: the IMAP round trips and the
    // parser overlap with SQLite. The server is still only touched (flag/move) for a batch
    // after its own COMMIT. A batch holds at most `batch_size` messages and closes early at
    // BATCH_BYTES, so memory stays bounded whatever the sizes.
    let batch = mb.batch_size.max(1);
    let mut pos = 0usize;
    let mut ready = if cancel.is_cancelled() || uids.is_empty() {
        None
    } else {
        Some(fetch_chunk(session, uids, batch, max, inflight).await?)
    };
    while let Some((parsed, taken)) = ready.take() {
        let chunk = uids.get(pos..pos + taken).unwrap_or(&[]);
        let rest = uids
            .get(pos + taken..)
            .filter(|r| !r.is_empty() && !cancel.is_cancelled());
        let (committed, fetched) = tokio::join!(
            commit_chunk(
                &mut writer,
                pipeline,
                mb,
                folder,
                uidvalidity,
                chunk,
                &parsed,
                &mut last_uid,
                &mut stats,
                inflight,
            ),
            async {
                match rest {
                    Some(r) => fetch_chunk(session, r, batch, max, inflight)
                        .await
                        .map(Some),
                    None => Ok(None),
                }
            }
        );
        pos += taken;
        committed?;
        if crash_after_commit() {
            tracing::error!(
                "POSTDESK_FAULT=crash-after-commit: aborting after COMMIT, before touching the server"
            );
            std::process::abort();
        }
        ready = fetched?;
        apply_pending_actions(session, store, mb, folder, uidvalidity, caps).await?;
    }
    Ok(stats)
}

/// Stores message `uid` as quarantined: its raw bytes (only its header when it is over the
/// size cap) as an unprocessable message, never parsed, and the UID in `quarantine` so
/// that no later sync touches it. It stays on the server, unflagged.
#[allow(clippy::too_many_arguments)]
async fn quarantine(
    session: &mut ImapSession,
    store: &Store,
    pipeline: &Pipeline,
    mb: &MailboxConfig,
    folder: &str,
    uidvalidity: u32,
    uid: u32,
) -> Result<()> {
    let reason = format!(
        "quarantined: postdesk stopped twice while processing this message (mailbox {:?} folder {folder:?} UID {uid}), \
         the second time with nothing else in flight; it is kept as it arrived, never parsed again, and left on the server",
        mb.name
    );
    tracing::error!(
        "Mailbox {:?} folder {folder:?}: UID {uid} quarantined: the process died twice while processing it",
        mb.name
    );
    let max = u64::try_from(pipeline.config().ingest.max_message_bytes).unwrap_or(u64::MAX);
    let size = {
        let stream = timed(
            "UID FETCH",
            session.uid_fetch(uid.to_string(), "(UID RFC822.SIZE)"),
        )
        .await?
        .context("UID FETCH size")?;
        let fetches: Vec<_> = timed("UID FETCH", stream.try_collect::<Vec<_>>())
            .await?
            .context("UID FETCH size")?;
        fetches
            .iter()
            .find(|f| f.uid == Some(uid))
            .and_then(|f| f.size)
    };
    let raw = match size {
        None => None,
        Some(size) => {
            let what = if u64::from(size) > max {
                "(UID BODY.PEEK[HEADER])"
            } else {
                "(UID BODY.PEEK[])"
            };
            let stream = timed("UID FETCH", session.uid_fetch(uid.to_string(), what))
                .await?
                .context("UID FETCH quarantined")?;
            let fetches: Vec<_> = timed("UID FETCH", stream.try_collect::<Vec<_>>())
                .await?
                .context("UID FETCH quarantined")?;
            fetches
                .iter()
                .find(|f| f.uid == Some(uid))
                .and_then(|f| f.body().or_else(|| f.header()).map(<[u8]>::to_vec))
        }
    };
    let now = db_time(chrono::Utc::now());
    let mut tx = store.begin_write().await?;
    let row = match &raw {
        Some(raw) => {
            let source = Source {
                mailbox: &mb.name,
                folder,
                uidvalidity,
                uid,
            };
            match pipeline
                .store_unprocessable(&mut tx, raw, &reason, Some(source))
                .await?
            {
                Outcome::Unprocessable { row } | Outcome::Duplicate { row } => Some(row),
                _ => None,
            }
        }
        None => {
            tracing::info!("UID {uid} is gone from the server; nothing to keep.");
            None
        }
    };
    imap_state::insert_quarantine(
        &mut tx,
        &mb.name,
        folder,
        uidvalidity,
        uid,
        row,
        &reason,
        &now,
    )
    .await?;
    tx.commit()
        .await
        .context("COMMIT of a quarantined message")?;
    Ok(())
}

type FetchedChunk = Vec<(u32, Vec<u8>, u64, Option<parse::Inbound>)>;

/// Fetches the next batch from the front of `uids`: the sizes of up to `batch` messages
/// first, then as many of them as fit in BATCH_BYTES (at least one), so an oversize message
/// is never downloaded whole (only its header). Parses them on a blocking thread. Returns
/// the batch and how many UIDs of `uids` it covers.
async fn fetch_chunk(
    session: &mut ImapSession,
    uids: &[u32],
    batch: usize,
    max: u64,
    inflight: &Arc<InFlight>,
) -> Result<(FetchedChunk, usize)> {
    let window = uids.get(..batch.min(uids.len())).unwrap_or(uids);
    let sizes: Vec<(u32, u32)> = {
        let stream = timed(
            "UID FETCH",
            session.uid_fetch(uid_set(window), "(UID RFC822.SIZE)"),
        )
        .await?
        .context("UID FETCH sizes")?;
        let fetches: Vec<_> = timed("UID FETCH", stream.try_collect::<Vec<_>>())
            .await?
            .context("UID FETCH sizes")?;
        fetches
            .iter()
            .filter_map(|f| Some((f.uid?, f.size.unwrap_or(0))))
            .collect()
    };
    let by_uid: std::collections::HashMap<u32, u64> =
        sizes.iter().map(|(u, s)| (*u, u64::from(*s))).collect();
    let size_of = |uid: u32| by_uid.get(&uid).copied().unwrap_or(0);
    let mut taken = 0usize;
    let mut bytes = 0u64;
    for uid in window {
        let s = size_of(*uid);
        // An oversize message costs only its header.
        bytes += if s > max { 0 } else { s };
        taken += 1;
        if bytes >= BATCH_BYTES as u64 {
            break;
        }
    }
    let chunk = window.get(..taken).unwrap_or(window);
    let sizes: Vec<(u32, u32)> = sizes
        .into_iter()
        .filter(|(u, _)| chunk.binary_search(u).is_ok())
        .collect();
    type UidSizes = Vec<(u32, u32)>;
    let (big, small): (UidSizes, UidSizes) =
        sizes.into_iter().partition(|(_, s)| u64::from(*s) > max);
    let mut bodies: Vec<(u32, Vec<u8>, u64)> = Vec::with_capacity(chunk.len());
    if !small.is_empty() {
        let mut small_uids: Vec<u32> = small.iter().map(|(u, _)| *u).collect();
        small_uids.sort_unstable();
        let stream = timed(
            "UID FETCH",
            session.uid_fetch(uid_set(&small_uids), "(UID BODY.PEEK[])"),
        )
        .await?
        .context("UID FETCH bodies")?;
        // Copy each body out as it arrives and drop the response buffer at once, so a
        // batch is held once in memory, not twice.
        let mut stream = std::pin::pin!(stream);
        timed("UID FETCH", async {
            while let Some(f) = stream.try_next().await? {
                if let (Some(uid), Some(body)) = (f.uid, f.body()) {
                    bodies.push((uid, body.to_vec(), body.len() as u64));
                }
            }
            Ok::<_, async_imap::error::Error>(())
        })
        .await?
        .context("UID FETCH bodies")?;
    }
    for (uid, size) in &big {
        let stream = timed(
            "UID FETCH",
            session.uid_fetch(uid.to_string(), "(UID BODY.PEEK[HEADER])"),
        )
        .await?
        .context("UID FETCH header")?;
        let fetches: Vec<_> = timed("UID FETCH", stream.try_collect::<Vec<_>>())
            .await?
            .context("UID FETCH header")?;
        let head = fetches
            .iter()
            .find_map(|f| f.header().map(<[u8]>::to_vec))
            .unwrap_or_default();
        bodies.push((*uid, head, u64::from(*size)));
    }
    bodies.sort_by_key(|(u, _, _)| *u);
    // A UID the FETCH did not answer is skipped only when the server confirms it is gone
    // (expunged by someone between SEARCH and FETCH). Otherwise the batch fails and is
    // fetched again after a reconnect: the watermark must never pass a message we lack.
    let missing: Vec<u32> = chunk
        .iter()
        .copied()
        .filter(|u| bodies.binary_search_by_key(u, |(b, _, _)| *b).is_err())
        .collect();
    if !missing.is_empty() {
        let set = uid_set(&missing);
        let still = timed("UID SEARCH", session.uid_search(format!("UID {set}")))
            .await?
            .context("UID SEARCH for unanswered UIDs")?;
        let still: Vec<u32> = still.into_iter().filter(|u| missing.contains(u)).collect();
        if !still.is_empty() {
            bail!(
                "the server answered no body for UIDs {} that still exist; fetching them again",
                uid_set(&still)
            );
        }
        tracing::info!("UIDs {set} were expunged before they could be fetched; skipped.");
    }

    // Parse on a blocking thread: CPU work off the async runtime. Each message is recorded
    // as in flight while it is parsed (the poison-mail quarantine).
    let watch = Arc::clone(inflight);
    let parsed: Vec<(u32, Vec<u8>, u64, Option<parse::Inbound>)> =
        tokio::task::spawn_blocking(move || {
            let out = bodies
                .into_iter()
                .map(|(uid, raw, size)| {
                    let whole = raw.len() as u64 == size;
                    if whole {
                        watch.parsing(uid);
                    }
                    let p = whole.then(|| parse::parse(&raw));
                    (uid, raw, size, p)
                })
                .collect();
            watch.parsing(0);
            out
        })
        .await
        .context("Parser thread")?;

    Ok((parsed, taken))
}

/// Commits one fetched batch: messages, outcomes, server actions owed and the watermark,
/// in one transaction.
#[allow(clippy::too_many_arguments)]
async fn commit_chunk(
    writer: &mut Conn,
    pipeline: &Pipeline,
    mb: &MailboxConfig,
    folder: &str,
    uidvalidity: u32,
    chunk: &[u32],
    parsed: &FetchedChunk,
    last_uid: &mut u32,
    stats: &mut SyncStats,
    inflight: &InFlight,
) -> Result<()> {
    let mut tx = crate::store::begin_write_on(writer).await?;
    let now = db_time(chrono::Utc::now());
    let items: Vec<BatchItem<'_>> = parsed
        .iter()
        .map(|(uid, raw, size, p)| BatchItem {
            raw,
            size: *size,
            parsed: p.as_ref(),
            source: Some(Source {
                mailbox: &mb.name,
                folder,
                uidvalidity,
                uid: *uid,
            }),
        })
        .collect();
    let outcomes = pipeline
        .ingest_many_watched(&mut tx, &items, Some(inflight))
        .await?;
    let mut actionable = Vec::with_capacity(outcomes.len());
    for ((uid, _, _, _), outcome) in parsed.iter().zip(&outcomes) {
        match outcome {
            Outcome::NewTicket { .. } => stats.new_tickets += 1,
            Outcome::Joined { .. } => stats.joined += 1,
            Outcome::Duplicate { .. } => stats.duplicates += 1,
            _ => stats.other += 1,
        }
        if outcome.allows_server_action() {
            actionable.push(*uid);
        }
    }
    let action = match &mb.after_ingest {
        AfterIngest::Keep => None,
        AfterIngest::Flag(f) => Some(("flag", f)),
        AfterIngest::Move(to) => Some(("move", to)),
    };
    if let Some((action, argument)) = action {
        imap_state::insert_pending_actions(
            &mut tx,
            &mb.name,
            folder,
            uidvalidity,
            &actionable,
            action,
            argument,
            &now,
        )
        .await?;
    }
    let mut new_last = *last_uid;
    if let Some(max_uid) = chunk.last() {
        new_last = (*max_uid).max(new_last);
    }
    imap_state::put_folder_state(
        &mut tx,
        &mb.name,
        folder,
        imap_state::FolderState {
            uidvalidity,
            last_uid: new_last,
        },
        &now,
    )
    .await?;
    tx.commit().await.context("COMMIT of a batch")?;
    *last_uid = new_last;
    stats.fetched += parsed.len();
    metrics::counter!("postdesk_ingested_messages_total", "source" => format!("imap:{}", mb.name))
        .increment(parsed.len() as u64);
    tracing::info!(
        "Mailbox {:?} folder {folder:?}: committed {} messages (UID {}-{}).",
        mb.name,
        parsed.len(),
        chunk.first().copied().unwrap_or(0),
        new_last
    );
    Ok(())
}

/// One full pass over every folder of a mailbox: connect, sync each folder, log out.
pub async fn sync_mailbox_once(
    store: &Store,
    pipeline: &Pipeline,
    mb: &MailboxConfig,
    cancel: &CancellationToken,
) -> Result<SyncStats> {
    let mut session = connect(mb).await?;
    let caps = ServerCaps::query(&mut session).await?;
    let mut total = SyncStats::default();
    for folder in &mb.folders {
        let s = sync_folder(&mut session, store, pipeline, mb, folder, caps, cancel)
            .await
            .with_context(|| format!("Mailbox {:?} folder {folder:?}", mb.name))?;
        total.fetched += s.fetched;
        total.new_tickets += s.new_tickets;
        total.joined += s.joined;
        total.duplicates += s.duplicates;
        total.other += s.other;
    }
    timed("LOGOUT", session.logout()).await.ok();
    Ok(total)
}

/// Reconnect delay after `failures` consecutive failures: 1 s doubling to 5 minutes, with
/// up to 25% jitter so that several mailboxes do not hammer a server in step.
pub fn backoff(failures: u32) -> Duration {
    let base = 1u64 << failures.min(9);
    let secs = base.min(300);
    let jitter = rand::random::<u64>() % (secs * 250 + 1);
    Duration::from_millis(secs * 1000 + jitter)
}

/// Watches one folder for ever: sync, then IDLE (re-issued before 29 minutes, RFC 2177)
/// or poll; reconnect with backoff on any error and reconcile after every reconnect.
pub async fn folder_loop(
    store: Store,
    pipeline: Arc<Pipeline>,
    mb: MailboxConfig,
    folder: String,
    cancel: CancellationToken,
    wake_outbox: Arc<tokio::sync::Notify>,
) {
    let failures = Arc::new(std::sync::atomic::AtomicU32::new(0));
    while !cancel.is_cancelled() {
        // Each connection runs in its own task, so that even a panic (a bug) only costs a
        // reconnect: the loop itself never dies while the daemon runs.
        let attempt = {
            let (store, pipeline, mb, folder) =
                (store.clone(), pipeline.clone(), mb.clone(), folder.clone());
            let (cancel, wake, failures) = (cancel.clone(), wake_outbox.clone(), failures.clone());
            tokio::spawn(async move {
                watch(&store, &pipeline, &mb, &folder, &cancel, &wake, &failures).await
            })
            .await
        };
        let err = match attempt {
            Ok(Ok(())) => break,
            Ok(Err(e)) => format!("{e:#}"),
            Err(join) => format!("the connection task failed: {join}"),
        };
        if cancel.is_cancelled() {
            // Our own shutdown closed it: no failure, and nothing to reconnect.
            tracing::debug!(
                "Mailbox {:?} folder {folder:?}: {err} (while shutting down)",
                mb.name
            );
            break;
        }
        let n = failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .saturating_add(1);
        let delay = backoff(n);
        tracing::error!(
            "Mailbox {:?} folder {folder:?}: {err}; reconnecting in {:.1}s",
            mb.name,
            delay.as_secs_f32()
        );
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
        }
    }
    tracing::info!("Mailbox {:?} folder {folder:?}: stopped.", mb.name);
}

/// Records a good sync of the folder for `/healthz` (source `email:<mailbox>/<folder>`). A
/// failure to record is logged and changes nothing else.
async fn note_poll(store: &Store, pipeline: &Pipeline, mb: &MailboxConfig, folder: &str) {
    let name = format!("{}/{folder}", mb.name);
    let now = crate::clock::db_time(pipeline.clock().now());
    let result = async {
        let mut tx = store.begin_write().await?;
        crate::store::cursors::record_poll(
            &mut tx,
            crate::domain::Channel::Email,
            &name,
            None,
            &now,
        )
        .await?;
        tx.commit().await?;
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(
            "Mailbox {:?} folder {folder:?}: could not record the poll: {e:#}",
            mb.name
        );
    }
}

async fn watch(
    store: &Store,
    pipeline: &Pipeline,
    mb: &MailboxConfig,
    folder: &str,
    cancel: &CancellationToken,
    wake_outbox: &tokio::sync::Notify,
    failures: &std::sync::atomic::AtomicU32,
) -> Result<()> {
    let mut session = tokio::select! {
        s = connect(mb) => s?,
        _ = cancel.cancelled() => return Ok(()),
    };
    let caps = ServerCaps::query(&mut session).await?;
    tracing::info!(
        "Mailbox {:?} folder {folder:?}: connected to {}:{} ({}).",
        mb.name,
        mb.host,
        mb.port,
        if caps.idle { "IDLE" } else { "polling" }
    );
    loop {
        let stats = sync_folder(&mut session, store, pipeline, mb, folder, caps, cancel).await?;
        failures.store(0, std::sync::atomic::Ordering::Relaxed);
        note_poll(store, pipeline, mb, folder).await;
        if stats.fetched > 0 {
            wake_outbox.notify_one();
        }
        if cancel.is_cancelled() {
            timed("LOGOUT", session.logout()).await.ok();
            return Ok(());
        }
        // New mail announced while we were syncing (an unsolicited EXISTS) would not be
        // announced again once IDLE starts: sync once more first.
        let mut announced = false;
        while let Ok(r) = session.unsolicited_responses.try_recv() {
            announced |= matches!(
                r,
                async_imap::types::UnsolicitedResponse::Exists(_)
                    | async_imap::types::UnsolicitedResponse::Recent(_)
            );
        }
        if announced && stats.fetched > 0 {
            continue;
        }
        if caps.idle {
            let mut idle = session.idle();
            tokio::select! {
                r = timed("IDLE", idle.init()) => r?.context("IDLE")?,
                _ = cancel.cancelled() => return Ok(()),
            }
            let (wait, stop) = idle.wait_with_timeout(mb.idle_timeout);
            let result = tokio::select! {
                r = wait => Some(r),
                _ = cancel.cancelled() => None,
            };
            drop(stop);
            match result {
                Some(Ok(IdleResponse::NewData(_))) => {
                    tracing::debug!(
                        "Mailbox {:?} folder {folder:?}: IDLE reports new data.",
                        mb.name
                    )
                }
                Some(Ok(IdleResponse::Timeout)) => {
                    tracing::debug!("Mailbox {:?} folder {folder:?}: re-issuing IDLE.", mb.name)
                }
                Some(Ok(IdleResponse::ManualInterrupt)) => {}
                None => {
                    // Shutting down: end IDLE politely, but never wait long for a server
                    // that stopped answering; nothing is in flight here.
                    let _ = tokio::time::timeout(SHUTDOWN_GRACE, idle.done()).await;
                    return Ok(());
                }
                Some(Err(e)) => return Err(anyhow!(e).context("IDLE")),
            }
            session = timed("DONE", idle.done()).await?.context("Ending IDLE")?;
        } else {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = tokio::time::sleep(mb.poll_interval) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_are_compressed() {
        assert_eq!(uid_set(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(uid_set(&[4]), "4");
        assert_eq!(uid_set(&[]), "");
        assert_eq!(
            uid_set(&[u32::MAX - 1, u32::MAX]),
            format!("{}:{}", u32::MAX - 1, u32::MAX)
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) >= Duration::from_secs(2));
        assert!(backoff(1) < Duration::from_secs(3));
        assert!(backoff(30) >= Duration::from_secs(300));
        assert!(backoff(30) <= Duration::from_secs(375));
    }
}
