//! `postdesk feedback list [--since 30d]`: what agents said with `#feedback`, newest last.

use std::path::Path;

use anyhow::{Result, anyhow};

use super::{term_line, term_text};
use crate::clock::{Clock, SystemClock, db_time};
use crate::store::Store;
use crate::store::feedback;

#[derive(Debug, clap::Subcommand)]
pub enum FeedbackCommand {
    /// List agents' feedback.
    List {
        /// How far back: a duration like 30d, 12h or 1d12h.
        #[arg(long, default_value = "30d")]
        since: String,
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn execute(config: &Path, cmd: &FeedbackCommand) -> Result<bool> {
    let FeedbackCommand::List { since, json } = cmd;
    let secs =
        crate::rules::calendar::parse_duration(since).map_err(|e| anyhow!("--since: {e}"))?;
    let cfg = super::load_config_for_admin(config)?;
    let store = Store::open_existing(&cfg.database_path).await?;
    let mut conn = store.pool().acquire().await?;
    let now = SystemClock.now();
    let from = db_time(now - chrono::Duration::seconds(secs));
    // A little past now: feedback given this very second is listed.
    let until = db_time(now + chrono::Duration::seconds(1));
    let list = feedback::list_feedback(&mut conn, &from, &until).await?;
    if *json {
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else if list.is_empty() {
        println!("No feedback in the last {}.", term_line(since));
    } else {
        for f in &list {
            let ticket = f.ticket_id.map_or(String::new(), |t| format!(" #{t}"));
            println!(
                "{}  {}{ticket}  [{}]\n    {}",
                f.created_at.get(..16).unwrap_or_default(),
                term_line(&f.agent),
                term_line(&f.theme),
                term_text(&f.text)
            );
        }
    }
    Ok(true)
}
