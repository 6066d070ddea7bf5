//! `postdesk import maildir|mbox PATH`: bulk import with a progress bar.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;

use crate::channels::email::import::{ImportSource, import};
use crate::clock::SystemClock;
use crate::intake::pipeline::Pipeline;
use crate::outbound::templates::Templates;
use crate::store::Store;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Maildir,
    Mbox,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// What PATH is.
    pub format: Format,
    /// The Maildir directory or mbox file.
    pub path: PathBuf,
    /// Queue acknowledgements for new tickets (off by default: imported mail is history).
    #[arg(long)]
    pub acknowledge: bool,
    /// Queue notifications to agents (off by default: imported mail is history).
    #[arg(long)]
    pub notify: bool,
    /// Messages per transaction.
    #[arg(long, default_value_t = 250)]
    pub batch_size: usize,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn execute(config: &Path, args: &Args) -> Result<bool> {
    let mut cfg = super::load_config_for_admin(config)?;
    if !args.notify {
        cfg.notify_enabled = false;
    }
    if !args.acknowledge {
        cfg.autoreply.enabled = false;
    }
    let _lock = crate::lock::acquire(&cfg.database_path)?;
    let store = Store::open(&cfg.database_path).await?;
    let templates = Arc::new(Templates::load(cfg.templates_dir.as_deref())?);
    let pipeline =
        Arc::new(Pipeline::open(Arc::new(cfg), templates, Arc::new(SystemClock), &store).await?);
    let source = match args.format {
        Format::Maildir => ImportSource::Maildir(args.path.clone()),
        Format::Mbox => ImportSource::Mbox(args.path.clone()),
    };
    let started = std::time::Instant::now();
    let progress = std::io::stderr().is_terminal() && !args.json;
    let stats = import(&store, pipeline, source, args.batch_size.max(1), progress).await?;
    store.close().await;
    let secs = started.elapsed().as_secs_f64();
    if args.json {
        println!(
            "{}",
            serde_json::json!({"stats": stats, "seconds": secs, "peak_rss_kib": crate::peak_rss_kib()})
        );
    } else {
        let rate = if secs > 0.0 {
            (stats.messages as f64 / secs).round()
        } else {
            0.0
        };
        let what = match args.format {
            Format::Maildir => format!("the Maildir {}", args.path.display()),
            Format::Mbox => format!("the mbox {}", args.path.display()),
        };
        let mut parts = vec![
            format!("{} new tickets", stats.new_tickets),
            format!("{} joined existing tickets", stats.joined),
        ];
        for (n, words) in [
            (stats.duplicates, "already stored (duplicates)"),
            (stats.bounces, "bounces or reports"),
            (stats.agent_mail, "agents' mail"),
            (stats.held, "held"),
            (
                stats.unprocessable,
                "unprocessable (see the log above, or message list --problems)",
            ),
            (stats.rejected, "over the size limit"),
            (stats.unreadable_files, "files that could not be read"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {words}"));
            }
        }
        println!(
            "Imported {} messages from {what} in {secs:.1} s ({rate:.0} messages/s): {}.",
            stats.messages,
            parts.join(", ")
        );
    }
    Ok(true)
}
