//! Bulk import of local mail (Maildir, mbox) through the same pipeline as IMAP.
//!
//! A reader thread loads and parses messages while the async side commits them in batches,
//! so parsing and SQLite use both cores. Each batch is one transaction; re-running an
//! import is harmless because dedup absorbs what is already stored.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::channels::email::parse::{self, Inbound};
use crate::intake::pipeline::Pipeline;
use crate::intake::{BatchItem, Outcome};
use crate::store::Store;

use crate::intake::BATCH_BYTES;

/// Where to read mail from.
#[derive(Debug, Clone)]
pub enum ImportSource {
    Maildir(PathBuf),
    Mbox(PathBuf),
}

/// Counts of what an import did.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct ImportStats {
    pub messages: usize,
    pub new_tickets: usize,
    pub joined: usize,
    pub duplicates: usize,
    pub bounces: usize,
    pub unprocessable: usize,
    pub rejected: usize,
    /// Authenticated agents' mail (commands, replies, notes).
    pub agent_mail: usize,
    /// Mail that claimed to be an agent's and was held.
    pub held: usize,
    pub unreadable_files: usize,
}

impl ImportStats {
    fn count(&mut self, o: &Outcome) {
        self.messages += 1;
        match o {
            Outcome::NewTicket { .. } => self.new_tickets += 1,
            Outcome::Joined { .. } => self.joined += 1,
            Outcome::Duplicate { .. } => self.duplicates += 1,
            Outcome::Bounce { .. } => self.bounces += 1,
            Outcome::Unprocessable { .. } => self.unprocessable += 1,
            Outcome::Rejected { .. } => self.rejected += 1,
            Outcome::AgentMail { .. } => self.agent_mail += 1,
            Outcome::Held { .. } => self.held += 1,
        }
    }
}

enum Item {
    /// The raw bytes, their parse (none when over the size cap), and where they came from
    /// ("file PATH" or "message N of the mbox"), for the log.
    Message(Vec<u8>, Option<Box<Inbound>>, String),
    Unreadable(String),
}

/// Imports everything from `source`. `progress` shows a bar on a terminal.
pub async fn import(
    store: &Store,
    pipeline: Arc<Pipeline>,
    source: ImportSource,
    batch_size: usize,
    progress: bool,
) -> Result<ImportStats> {
    let max = pipeline.config().ingest.max_message_bytes;
    // Enumerate first so that the progress bar knows the total.
    enum Work {
        Files(Vec<PathBuf>),
        Blobs(Vec<Vec<u8>>),
    }
    let work = match &source {
        ImportSource::Maildir(p) => Work::Files(crate::channels::email::maildir::list_messages(p)?),
        ImportSource::Mbox(p) => {
            let data = std::fs::read(p).with_context(|| format!("Reading {}", p.display()))?;
            if !crate::channels::email::mbox::looks_like_mbox(&data) {
                anyhow::bail!(
                    "{} is not an mbox file: an mbox starts with a \"From \" line, and this \
                     starts with {:?}. For a single message, put it in a Maildir (cur/ \
                     directory) and import that",
                    p.display(),
                    String::from_utf8_lossy(data.get(..40.min(data.len())).unwrap_or_default())
                );
            }
            Work::Blobs(crate::channels::email::mbox::split(&data))
        }
    };
    let total = match &work {
        Work::Files(f) => f.len(),
        Work::Blobs(b) => b.len(),
    };
    let bar = if progress {
        let b = ProgressBar::new(total as u64);
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} messages ({rate}, eta {eta})",
            )
            .map(|s| {
                // A whole number per second: "812/s", not "812.4387/s".
                s.with_key(
                    "rate",
                    |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{:.0}/s", state.per_sec());
                    },
                )
            })
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    } else {
        ProgressBar::hidden()
    };

    // The reader hands over whole parsed batches through a channel of one: while batch k
    // commits, batch k+1 is read and parsed (both cores busy), and at most three batches
    // are in memory (committing, waiting, being filled). A channel of two measured no
    // faster and took peak memory of a deep-threads import from 48 to 57 MB.
    let batch_size = batch_size.max(1);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Item>>(1);
    let reader = std::thread::spawn(move || {
        let mut batch = Vec::with_capacity(batch_size);
        let mut bytes = 0usize;
        let mut push = |item: Item, batch: &mut Vec<Item>| -> bool {
            if let Item::Message(raw, _, _) = &item {
                bytes += raw.len();
            }
            batch.push(item);
            if batch.len() < batch_size && bytes < BATCH_BYTES {
                return true;
            }
            bytes = 0;
            let full = std::mem::replace(batch, Vec::with_capacity(batch_size));
            tx.blocking_send(full).is_ok()
        };
        let parse = |raw: Vec<u8>, from: String| {
            let p = (raw.len() <= max).then(|| Box::new(parse::parse(&raw)));
            Item::Message(raw, p, from)
        };
        match work {
            Work::Files(files) => {
                for f in files {
                    let item = match std::fs::read(&f) {
                        Ok(raw) => parse(raw, format!("file {}", f.display())),
                        Err(e) => Item::Unreadable(format!("{}: {e}", f.display())),
                    };
                    if !push(item, &mut batch) {
                        return;
                    }
                }
            }
            Work::Blobs(blobs) => {
                for (i, raw) in blobs.into_iter().enumerate() {
                    if !push(
                        parse(raw, format!("message {} of the mbox", i + 1)),
                        &mut batch,
                    ) {
                        return;
                    }
                }
            }
        }
        if !batch.is_empty() {
            let _ = tx.blocking_send(batch);
        }
    });

    let mut stats = ImportStats::default();
    let mut conn = store.writer().await?;
    while let Some(batch) = rx.recv().await {
        let n = batch.len();
        let mut txn = crate::store::begin_write_on(&mut conn).await?;
        let mut items = Vec::with_capacity(n);
        let mut origins = Vec::with_capacity(n);
        for item in &batch {
            match item {
                Item::Message(raw, p, from) => {
                    items.push(BatchItem::new(raw, p.as_deref(), None));
                    origins.push(from.as_str());
                }
                Item::Unreadable(why) => {
                    tracing::error!("Cannot read {why}; skipped");
                    stats.unreadable_files += 1;
                }
            }
        }
        let outcomes = pipeline.ingest_many(&mut txn, &items).await?;
        let mut unfiled = Vec::new();
        for (o, from) in outcomes.iter().zip(&origins) {
            stats.count(o);
            if let Outcome::Unprocessable { row } | Outcome::Rejected { row } = o {
                unfiled.push((*row, *from));
            }
        }
        // Each message that could not be filed is named, with why.
        for (row, from) in unfiled {
            let (kind, why) = crate::store::messages::get_kind_and_problems(&mut txn, row).await?;
            tracing::warn!(
                "The {from} was stored as {kind} (message #{row}): {}",
                if why.is_empty() {
                    "no reason recorded".to_string()
                } else {
                    why.join("; ")
                }
            );
        }
        txn.commit().await.context("COMMIT of an import batch")?;
        bar.inc(n as u64);
        // Freeing a batch (megabytes of raw bytes, thousands of strings) is left to a
        // blocking thread, off the path that feeds SQLite.
        drop(items);
        tokio::task::spawn_blocking(move || drop(batch));
    }
    bar.finish_and_clear();
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("The reader thread panicked"))?;
    Ok(stats)
}
