//! Bulk import of local mail (Maildir, mbox) through the same pipeline as IMAP.
//!
//! A reader thread loads and parses messages while the async side commits them in batches,
//! so parsing and SQLite use both cores. Each batch is one transaction; re-running an
//! import is harmless because dedup absorbs what is already stored.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use super::parse::{self, Parsed};
use super::pipeline::{BatchItem, Outcome, Pipeline};
use crate::store::Store;

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
        }
    }
}

enum Item {
    Message(Vec<u8>, Option<Box<Parsed>>),
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
        ImportSource::Maildir(p) => Work::Files(super::maildir::list_messages(p)?),
        ImportSource::Mbox(p) => {
            let data = std::fs::read(p).with_context(|| format!("Reading {}", p.display()))?;
            Work::Blobs(super::mbox::split(&data))
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
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} messages ({per_sec}, eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    } else {
        ProgressBar::hidden()
    };

    // The reader parses at most half a batch ahead: enough to overlap parsing with SQLite,
    // little enough to keep memory flat.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Item>((batch_size / 2).max(1));
    let reader = std::thread::spawn(move || {
        let send = |item: Item| tx.blocking_send(item).is_ok();
        match work {
            Work::Files(files) => {
                for f in files {
                    let item = match std::fs::read(&f) {
                        Ok(raw) => {
                            let p = (raw.len() <= max).then(|| Box::new(parse::parse(&raw)));
                            Item::Message(raw, p)
                        }
                        Err(e) => Item::Unreadable(format!("{}: {e}", f.display())),
                    };
                    if !send(item) {
                        return;
                    }
                }
            }
            Work::Blobs(blobs) => {
                for raw in blobs {
                    let p = (raw.len() <= max).then(|| Box::new(parse::parse(&raw)));
                    if !send(Item::Message(raw, p)) {
                        return;
                    }
                }
            }
        }
    });

    let mut stats = ImportStats::default();
    let mut batch = Vec::with_capacity(batch_size);
    loop {
        batch.clear();
        // Fill a whole batch (fewer, larger transactions) unless the reader is done.
        while batch.len() < batch_size.max(1) {
            let want = batch_size.max(1) - batch.len();
            if rx.recv_many(&mut batch, want).await == 0 {
                break;
            }
        }
        let n = batch.len();
        if n == 0 {
            break;
        }
        let mut txn = store.begin_write().await?;
        let mut items = Vec::with_capacity(batch.len());
        for item in &batch {
            match item {
                Item::Message(raw, p) => items.push(BatchItem::new(raw, p.as_deref(), None)),
                Item::Unreadable(why) => {
                    tracing::error!("Cannot read {why}; skipped");
                    stats.unreadable_files += 1;
                }
            }
        }
        for o in pipeline.ingest_many(&mut txn, &items).await? {
            stats.count(&o);
        }
        txn.commit().await.context("COMMIT of an import batch")?;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("The reader thread panicked"))?;
    Ok(stats)
}
