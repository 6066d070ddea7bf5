//! `postdesk message raw ID`: a message's bytes exactly as they arrived (or, for our own
//! mail, as they were queued), for forwarding, forensics or re-import.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::store::{Store, StoreError, messages};

#[derive(Debug, clap::Subcommand)]
pub enum MessageCommand {
    /// Write a message's raw bytes to standard output (or to --output).
    Raw {
        /// The message: its number (`#N` in `ticket show`) or its Message-ID.
        message: String,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

pub async fn execute(config: &Path, cmd: &MessageCommand) -> Result<bool> {
    let cfg = super::load_config(config)?;
    let store = Store::open_existing(&cfg.database_path).await?;
    let mut conn = store.pool().acquire().await?;
    let MessageCommand::Raw { message, output } = cmd;
    let found = messages::raw_of(&mut conn, store.raw(), message).await;
    drop(conn);
    store.close().await;
    let bytes = match found {
        Ok(b) => b,
        Err(StoreError::NotFound(what)) => {
            eprintln!("error: {what}");
            return Ok(false);
        }
        Err(e) => return Err(e.into()),
    };
    match output {
        Some(path) => {
            std::fs::write(path, &bytes).with_context(|| format!("Writing {}", path.display()))?
        }
        None if std::io::stdout().is_terminal() => {
            // Mail is hostile: on a terminal, its escape sequences are shown, not obeyed.
            eprintln!(
                "(standard output is a terminal: control characters are shown escaped; \
                 use --output FILE or a pipe for the exact bytes)"
            );
            let mut out = std::io::stdout().lock();
            out.write_all(super::term_text(&String::from_utf8_lossy(&bytes)).as_bytes())?;
            out.flush()?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)?;
            out.flush()?;
        }
    }
    Ok(true)
}
