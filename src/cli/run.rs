//! `postdesk run [--once]`: the daemon, or one full cycle for cron and tests.

use std::path::Path;

use anyhow::Result;
use tokio_util::sync::CancellationToken;

use crate::daemon::Daemon;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Do one full cycle (sync every mailbox, flush the outbox) and exit.
    #[arg(long)]
    pub once: bool,
    /// With --once: print the cycle's report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Cancels `token` on SIGTERM or Ctrl-C.
///
/// The handlers are installed before this returns, not inside the spawned task: a task
/// may not have run yet when the daemon reports READY=1, and a SIGTERM in that gap would
/// kill the process with the default action instead of stopping it cleanly.
fn spawn_signal_handler(token: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (mut term, mut int) = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(t), Ok(i)) => (t, i),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!("Cannot listen for SIGTERM and SIGINT: {e}");
                return;
            }
        };
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received: finishing the work in flight."),
                _ = int.recv() => tracing::info!("Interrupt received: finishing the work in flight."),
            }
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
            token.cancel();
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        token.cancel();
    });
}

pub async fn execute(config: &Path, args: &Args) -> Result<bool> {
    let cfg = super::load_config(config)?;
    let daemon = Daemon::open(cfg).await?;
    let cancel = CancellationToken::new();
    spawn_signal_handler(cancel.clone());
    if args.once {
        let report = daemon.run_once(&cancel).await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!(
                "fetched {}, new tickets {}, joined {}, duplicates {}, other {}; sent {}, retrying {}, failed {}",
                report.fetched,
                report.new_tickets,
                report.joined,
                report.duplicates,
                report.other,
                report.sent,
                report.retrying,
                report.failed
            );
            for e in &report.mailbox_errors {
                eprintln!("error: {e}");
            }
        }
        daemon.store.close().await;
        return Ok(report.mailbox_errors.is_empty());
    }
    daemon
        .run(cancel, || {
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
        })
        .await?;
    Ok(true)
}
