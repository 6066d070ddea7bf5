//! `postdesk events [--after N] [--limit N] [--json]`: the post-commit event log (ticket
//! created, message added, status/assignee/priority changed, merged, linked), oldest
//! first, and where each event worker's cursor stands.

use std::path::Path;

use anyhow::Result;

use crate::store::{Store, events};

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// Only events after this id.
    #[arg(long, default_value_t = 0)]
    after: i64,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    limit: i64,
    /// Print as JSON: `{"events": [...], "last_id": N}`.
    #[arg(long)]
    json: bool,
}

pub async fn execute(config: &Path, args: &EventsArgs) -> Result<bool> {
    let cfg = super::load_config_for_admin(config)?;
    let store = Store::open_existing(&cfg.database_path).await?;
    let mut conn = store.pool().acquire().await?;
    let list = events::list_after(&mut conn, args.after, args.limit.clamp(1, 100_000)).await?;
    let last_id = events::last_id(&mut conn).await?;
    drop(conn);
    store.close().await;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"events": list, "last_id": last_id}))?
        );
        return Ok(true);
    }
    if list.is_empty() {
        println!("No events after {} (the last is {last_id}).", args.after);
        return Ok(true);
    }
    println!(
        "{:>8}  {:<20}  {:<17}  {:>7}  {:>8}  DATA",
        "ID", "AT", "KIND", "TICKET", "MESSAGE"
    );
    for e in &list {
        println!(
            "{:>8}  {:<20}  {:<17}  {:>7}  {:>8}  {}",
            e.id,
            e.created_at.get(..19).unwrap_or(&e.created_at),
            e.kind,
            e.ticket_id.map_or("-".to_string(), |t| format!("#{t}")),
            e.message_row.map_or("-".to_string(), |m| m.to_string()),
            super::term_line(&e.data),
        );
    }
    Ok(true)
}
