//! `postdesk ticket list|show`: read-only inspection, with `--json`.

use std::path::Path;

use anyhow::Result;

use super::{term_line, term_text};
use crate::domain::{Status, TicketId};
use crate::store::{Store, StoreError, messages, tickets};

#[derive(Debug, clap::Subcommand)]
pub enum TicketCommand {
    /// List tickets, newest first.
    List {
        /// Only tickets with this status (open, pending, resolved, closed).
        #[arg(long)]
        status: Option<Status>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Print the result as JSON (stable field names, for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Show one ticket with its messages in order.
    Show {
        /// The ticket number (`#N` in subjects and `ticket list`).
        id: TicketId,
        /// Print the result as JSON (stable field names, for scripts).
        #[arg(long)]
        json: bool,
    },
}

pub async fn execute(config: &Path, cmd: &TicketCommand) -> Result<bool> {
    let cfg = super::load_config_for_admin(config)?;
    let store = Store::open_existing(&cfg.database_path).await?;
    let mut conn = store.pool().acquire().await?;
    match cmd {
        TicketCommand::List {
            status,
            limit,
            json,
        } => {
            let list = tickets::list_ticket_views(&mut conn, *status, *limit).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!("No tickets.");
            } else {
                // CUST and AGENT count what people wrote; AUTO is postdesk's own mail.
                println!(
                    "{:>6}  {:<8}  {:<6}  {:>4}  {:>5}  {:>4}  {:<30}  SUBJECT",
                    "ID", "STATUS", "PRIO", "CUST", "AGENT", "AUTO", "CUSTOMER"
                );
                for t in &list {
                    let subject: String = term_line(&t.subject).chars().take(60).collect();
                    println!(
                        "{:>6}  {:<8}  {:<6}  {:>4}  {:>5}  {:>4}  {:<30}  {subject}",
                        t.id,
                        t.status.as_str(),
                        t.priority.as_str(),
                        t.customer_messages,
                        t.agent_messages,
                        t.automatic_messages,
                        term_line(&t.customer.email)
                    );
                }
            }
        }
        TicketCommand::Show { id, json } => {
            let ticket = match tickets::get_ticket_view(&mut conn, *id).await {
                Ok(t) => t,
                Err(StoreError::NotFound(what)) => {
                    eprintln!("error: {what} does not exist");
                    return Ok(false);
                }
                Err(e) => return Err(e.into()),
            };
            let msgs = messages::list_message_views(&mut conn, *id).await?;
            let links = tickets::list_links(&mut conn, *id).await?;
            if *json {
                let mut v = serde_json::to_value(&ticket)?;
                if let Some(o) = v.as_object_mut() {
                    o.insert("links".into(), serde_json::to_value(&links)?);
                    o.insert("messages".into(), serde_json::to_value(&msgs)?);
                }
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("Ticket #{}: {}", ticket.id, term_line(&ticket.subject));
                println!(
                    "Status {}, priority {}, assignee {}, customer {}{}",
                    ticket.status,
                    ticket.priority,
                    term_line(ticket.assignee.as_deref().unwrap_or("(none)")),
                    term_line(&ticket.customer.email),
                    ticket
                        .linked_ticket_id
                        .map(|l| format!(", follows #{l}"))
                        .unwrap_or_default()
                );
                if !ticket.tags.is_empty() {
                    println!("Tags: {}", term_line(&ticket.tags.join(", ")));
                }
                for l in &links {
                    println!("Linked to #{}: {}", l.ticket, term_line(&l.reason));
                }
                println!(
                    "Created {}, updated {}",
                    ticket.created_at, ticket.updated_at
                );
                for m in &msgs {
                    println!(
                        "\n--- #{} {} {} from {} ({}) {}",
                        m.id,
                        m.direction,
                        m.kind,
                        term_line(m.from.as_deref().unwrap_or("?")),
                        m.match_reason,
                        m.created_at
                    );
                    println!("Subject: {}", term_line(&m.subject));
                    if let Some(why) = &m.held_reason {
                        println!("Held: {}", term_line(why));
                    }
                    if let Some(d) = &m.delivery {
                        println!("Delivery: {}", term_line(d));
                    }
                    println!("{}", term_text(&m.body_text));
                }
            }
        }
    }
    drop(conn);
    store.close().await;
    Ok(true)
}
