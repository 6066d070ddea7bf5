//! `postdesk message raw ID`: a message's bytes exactly as they arrived (or, for our own
//! mail, as they were queued), for forwarding, forensics or re-import. `postdesk message
//! list [--problems]`: the newest messages, or those that could not be filed as they came
//! (unprocessable, rejected, held), each with why.

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
    /// List the newest messages, each with its problems.
    List {
        /// Only messages that could not be filed as they came: unprocessable, rejected
        /// (over the size limit) and held, with the reason.
        #[arg(long)]
        problems: bool,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Print as JSON (the same fields as the messages of `ticket show --json`).
        #[arg(long)]
        json: bool,
    },
}

pub async fn execute(config: &Path, cmd: &MessageCommand) -> Result<bool> {
    let cfg = super::load_config_for_admin(config)?;
    let store = Store::open_existing(&cfg.database_path).await?;
    let mut conn = store.pool().acquire().await?;
    let (message, output) = match cmd {
        MessageCommand::Raw { message, output } => (message, output),
        MessageCommand::List {
            problems,
            limit,
            json,
        } => {
            let list = messages::list_recent_views(&mut conn, *problems, None, *limit).await?;
            drop(conn);
            store.close().await;
            print_list(&list, *problems, *json)?;
            return Ok(true);
        }
    };
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

fn print_list(list: &[messages::MessageView], problems: bool, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(list)?);
        return Ok(());
    }
    if list.is_empty() {
        println!(
            "{}",
            if problems {
                "No unprocessable, rejected or held messages."
            } else {
                "No messages."
            }
        );
        return Ok(());
    }
    println!(
        "{:>7}  {:<20}  {:<13}  {:>6}  {:<30}  SUBJECT",
        "ID", "STORED", "KIND", "TICKET", "FROM"
    );
    for m in list {
        let subject: String = super::term_line(&m.subject).chars().take(50).collect();
        println!(
            "{:>7}  {:<20}  {:<13}  {:>6}  {:<30}  {subject}",
            m.id,
            m.created_at.get(..19).unwrap_or(&m.created_at),
            m.kind,
            m.ticket.map_or("-".to_string(), |t| format!("#{t}")),
            super::term_line(m.from.as_deref().unwrap_or("?")),
        );
        for why in m.held_reason.iter().chain(m.problems.iter()) {
            println!("{:>9}why: {}", "", super::term_line(why));
        }
    }
    Ok(())
}
