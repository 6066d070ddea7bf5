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
            let tri = crate::store::triage::get_triage(&mut conn, *id)
                .await?
                .unwrap_or_default();
            let signals = crate::store::triage::message_signals(&mut conn, *id).await?;
            let alerts = crate::store::triage::alerts_of(&mut conn, *id).await?;
            let notices = crate::store::triage::sla_notices(&mut conn, *id).await?;
            let bot_state = crate::store::kb::bot_states(&mut conn, &[*id])
                .await?
                .remove(id)
                .unwrap_or_default();
            let bot_title = match bot_state.article {
                Some(a) => crate::store::kb::get_article(&mut conn, a)
                    .await?
                    .map(|a| a.title),
                None => None,
            };
            let now = crate::clock::Clock::now(&crate::clock::SystemClock);
            let timers = match crate::store::triage::open_ticket(&mut conn, *id).await? {
                Some(t) => crate::watch::timers(&cfg, &mut conn, &t, now).await?,
                None => Vec::new(),
            };
            let sla = tri.sla_policy.as_ref().map(|policy| {
                serde_json::json!({
                    "policy": policy,
                    "timers": timers,
                    "breaches": timers.iter().filter(|t| t.breached).map(|t| t.target.as_str()).collect::<Vec<_>>(),
                    "notices": notices.iter().map(|(target, kind, cycle, sent)| serde_json::json!({
                        "target": target, "kind": kind, "cycle": cycle, "sent_at": sent,
                    })).collect::<Vec<_>>(),
                })
            });
            let problem = crate::store::problems::problem_of(&mut conn, ticket.id).await?;
            let reports = crate::store::problems::reports_of(&mut conn, ticket.id).await?;
            let rating = crate::store::analytics::find_rating(&mut conn, ticket.id).await?;
            if *json {
                let mut v = serde_json::to_value(&ticket)?;
                let mut msgs_v = serde_json::to_value(&msgs)?;
                if let Some(list) = msgs_v.as_array_mut() {
                    for m in list.iter_mut() {
                        let row = m.get("id").and_then(serde_json::Value::as_i64).unwrap_or(0);
                        let (fired, language, sentiment) =
                            signals.get(&row).cloned().unwrap_or_default();
                        if let Some(o) = m.as_object_mut() {
                            o.insert("rules_fired".into(), serde_json::json!(fired));
                            o.insert("language".into(), serde_json::json!(language));
                            o.insert("sentiment".into(), serde_json::json!(sentiment));
                        }
                    }
                }
                if let Some(o) = v.as_object_mut() {
                    o.insert("links".into(), serde_json::to_value(&links)?);
                    o.insert("category".into(), serde_json::json!(tri.category));
                    o.insert("team".into(), serde_json::json!(tri.team));
                    o.insert(
                        "forced_human".into(),
                        serde_json::json!(tri.forced_human.is_some()),
                    );
                    o.insert(
                        "forced_human_match".into(),
                        serde_json::json!(tri.forced_human),
                    );
                    o.insert("sla".into(), serde_json::json!(sla));
                    o.insert(
                        "bot".into(),
                        match bot_state.article {
                            Some(article) => serde_json::json!({
                                "article": article,
                                "title": bot_title,
                                "score": bot_state.score,
                                "at": bot_state.at,
                            }),
                            None => serde_json::Value::Null,
                        },
                    );
                    o.insert(
                        "handoff".into(),
                        match &bot_state.handoff {
                            Some(reason) => serde_json::json!({
                                "reason": reason,
                                "at": bot_state.handoff_at,
                            }),
                            None => serde_json::Value::Null,
                        },
                    );
                    o.insert(
                        "predicted_category".into(),
                        serde_json::json!(bot_state.predicted_category),
                    );
                    o.insert("alerts".into(), serde_json::to_value(&alerts)?);
                    o.insert("problem".into(), serde_json::json!(problem));
                    o.insert("reports".into(), serde_json::to_value(&reports)?);
                    o.insert(
                        "rating".into(),
                        match &rating {
                            Some((score, source, comment, at)) => serde_json::json!({
                                "score": score, "source": source, "comment": comment, "at": at,
                            }),
                            None => serde_json::Value::Null,
                        },
                    );
                    o.insert("messages".into(), msgs_v);
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
                if tri.category.is_some() || tri.team.is_some() {
                    println!(
                        "Category {}, team {}",
                        term_line(tri.category.as_deref().unwrap_or("(none)")),
                        term_line(tri.team.as_deref().unwrap_or("(none)"))
                    );
                }
                if let Some(f) = &tri.forced_human {
                    println!("FORCED TO A HUMAN: {}", term_line(&f.to_string()));
                }
                if let Some((score, source, comment, at)) = &rating {
                    println!(
                        "Rated {score} of 5 by the customer ({source}, {at}){}",
                        comment
                            .as_deref()
                            .map(|c| format!(": {}", term_line(c)))
                            .unwrap_or_default()
                    );
                }
                if let Some(article) = bot_state.article {
                    println!(
                        "Answered by the bot with article {article} ({}), score {:.2}",
                        term_line(bot_title.as_deref().unwrap_or("?")),
                        bot_state.score.unwrap_or(0.0)
                    );
                }
                if let Some(reason) = &bot_state.handoff {
                    println!("Handed off to a person: {}", term_line(reason));
                }
                for t in &timers {
                    println!(
                        "SLA {}: due {}{}{}",
                        t.target,
                        t.due.map_or("(paused)".to_string(), |d| d.to_rfc3339()),
                        if t.met.is_some() { ", met" } else { "" },
                        if t.breached { ", BREACHED" } else { "" }
                    );
                }
                for a in &alerts {
                    println!(
                        "Red alert {} ({}): report due {}{}",
                        a.id,
                        term_line(&a.reason),
                        a.report_due,
                        a.report_at
                            .as_ref()
                            .map(|r| format!(
                                ", reported {r} by {}",
                                a.report_by.as_deref().unwrap_or("?")
                            ))
                            .unwrap_or_else(|| ", NO REPORT YET".into())
                    );
                }
                if !ticket.tags.is_empty() {
                    println!("Tags: {}", term_line(&ticket.tags.join(", ")));
                }
                for l in &links {
                    println!("Linked to #{}: {}", l.ticket, term_line(&l.reason));
                }
                if let Some(p) = problem {
                    println!("A report of problem #{p}");
                }
                if !reports.is_empty() {
                    println!("The problem of {} report(s):", reports.len());
                    for r in &reports {
                        println!(
                            "  #{} {} by {} from {}: {}",
                            r.ticket_id,
                            r.status,
                            r.channel.as_deref().unwrap_or("email"),
                            term_line(&r.customer),
                            term_line(&r.subject)
                        );
                    }
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
