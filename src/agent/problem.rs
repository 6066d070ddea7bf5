//! `#problem`: reports of one problem grouped under a problem ticket, and one answer that
//! reaches all of them, each on its own channel.
//!
//! - `#problem N` (on ticket T): T is a report of problem ticket N. Problems do not nest:
//!   if N is itself a report, T joins N's problem; if T was a problem, its reports move to
//!   N. New tickets' notifications list similar open tickets and end with this line, ready
//!   to paste.
//! - `#problem none`: T is no longer a report.
//! - An agent's answer on a problem ticket goes to that ticket's customer as usual, and
//!   the receipt lists the reports with their channels and ends with one line,
//!   `#problem send M` (M is the stored answer's number). Replying to the receipt with that
//!   line sends the same text to every report's customer on the channel they last wrote
//!   from (mail, Telegram, Matrix, JSON), records it on each report, and says where it
//!   went. The confirmation is deliberate: a problem can hold dozens of tickets of
//!   different customers, and one careless answer must not reach them all.
//! - Each (answer, report) pair is sent once (`problem_sends`): the line sent twice, or a
//!   report linked later and the line sent again, reaches each customer once. Closed
//!   reports are left out.
//!
//! Decisions: these are not undoable with `#undo` (links are not ticket fields); each gives
//! one receipt line, applied or rejected.

use anyhow::Result;

use super::Identity;
use super::act::{customer_side, queue_mail_answer, queue_on_channel};
use crate::channels::email::compose;
use crate::commands::parse::{Command, ProblemCommand};
use crate::domain::{Channel, MessageKind, TicketId};
use crate::intake::Services;
use crate::store::Conn;
use crate::store::problems::{self, Report};
use crate::store::tickets;

/// Reports named one by one in a receipt; the rest are counted.
const LISTED: usize = 10;

/// What the commands did: receipt lines.
#[derive(Debug, Default)]
pub(super) struct ProblemReport {
    pub applied: Vec<String>,
    pub rejected: Vec<(String, String)>,
}

/// Runs the `#problem` command among `commands` on ticket `ticket`.
pub(super) async fn run(
    pl: &Services,
    conn: &mut Conn,
    ticket: TicketId,
    identity: &Identity,
    commands: &[(usize, String, Command)],
    now: &str,
) -> Result<ProblemReport> {
    let mut report = ProblemReport::default();
    for (_, line, command) in commands {
        let Command::Problem(p) = command else {
            continue;
        };
        let outcome = match p {
            ProblemCommand::Join(n) => join(conn, ticket, *n, &identity.name, now).await?,
            ProblemCommand::Leave => match problems::unlink(conn, ticket).await? {
                Some(p) => Ok(format!("this ticket is no longer a report of problem #{p}")),
                None => Err("this ticket is no report of a problem".to_string()),
            },
            ProblemCommand::Send(answer) => send(pl, conn, ticket, identity, *answer, now).await?,
        };
        match outcome {
            Ok(what) => report.applied.push(format!("{line}: {what}")),
            Err(why) => report.rejected.push((line.clone(), why)),
        }
    }
    Ok(report)
}

type Outcome = std::result::Result<String, String>;

async fn join(
    conn: &mut Conn,
    ticket: TicketId,
    n: TicketId,
    agent: &str,
    now: &str,
) -> Result<Outcome> {
    // find_ticket follows merges: #n may live on in another ticket.
    let Some(target) = tickets::find_ticket(conn, n).await? else {
        return Ok(Err(format!("there is no ticket #{n}")));
    };
    let problem = problems::problem_of(conn, target.id)
        .await?
        .unwrap_or(target.id);
    if problem == ticket {
        return Ok(Err(format!(
            "#{n} is this ticket or one of its reports; name the problem ticket on a report"
        )));
    }
    let moved = problems::link(conn, ticket, problem, agent, now).await?;
    let count = problems::reports_of(conn, problem).await?.len();
    let mut what = format!("this ticket is a report of problem #{problem} ({count} reports)");
    if problem != target.id {
        what.push_str(&format!("; #{n} is itself a report of #{problem}"));
    }
    if moved > 0 {
        what.push_str(&format!("; its {moved} reports moved there too"));
    }
    tracing::info!("Ticket #{ticket}: a report of problem #{problem} ({agent})");
    Ok(Ok(what))
}

/// The receipt line for an answer just sent on problem ticket `ticket`: who else it could
/// reach, and the line that sends it. `None` when the ticket has no reports.
pub(super) async fn send_hint(
    conn: &mut Conn,
    ticket: TicketId,
    answer: i64,
) -> Result<Option<String>> {
    let reports: Vec<Report> = problems::reports_of(conn, ticket)
        .await?
        .into_iter()
        .filter(|r| r.status != "closed")
        .collect();
    if reports.is_empty() {
        return Ok(None);
    }
    Ok(Some(format!(
        "this ticket is the problem of {} open report(s): {}. To send them this answer too, each on its own channel, reply to this receipt with the line: #problem send {answer}",
        reports.len(),
        listing(&reports)
    )))
}

fn listing(reports: &[Report]) -> String {
    let mut parts: Vec<String> = reports
        .iter()
        .take(LISTED)
        .map(|r| {
            format!(
                "#{} ({} by {})",
                r.ticket_id,
                compose::plain_line(&r.customer, 80),
                r.channel.as_deref().unwrap_or("email")
            )
        })
        .collect();
    if reports.len() > LISTED {
        parts.push(format!("and {} more", reports.len() - LISTED));
    }
    parts.join(", ")
}

async fn send(
    pl: &Services,
    conn: &mut Conn,
    ticket: TicketId,
    identity: &Identity,
    answer: i64,
    now: &str,
) -> Result<Outcome> {
    let Some(text) = problems::answer_text(conn, ticket, answer).await? else {
        return Ok(Err(format!(
            "{answer} is no agent answer on this ticket; the receipt of the answer gives its number"
        )));
    };
    let text = text.trim().to_string();
    if text.is_empty() {
        return Ok(Err(format!("answer {answer} has no text")));
    }
    let reports = problems::reports_of(conn, ticket).await?;
    if reports.is_empty() {
        return Ok(Err(
            "this ticket has no reports; link them with #problem N on each".into(),
        ));
    }
    let (mut sent, mut skipped, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for r in &reports {
        if r.status == "closed" {
            skipped.push(format!("#{} (closed)", r.ticket_id));
            continue;
        }
        if !problems::claim_send(conn, answer, r.ticket_id, &identity.name, now).await? {
            skipped.push(format!("#{} (already sent)", r.ticket_id));
            continue;
        }
        match deliver(pl, conn, r.ticket_id, &identity.display_name, &text, now).await {
            Ok(channel) => {
                crate::store::triage::record_first_human(conn, r.ticket_id, now).await?;
                tickets::set_updated_at(conn, r.ticket_id, now).await?;
                sent.push(format!("#{} by {channel}", r.ticket_id));
            }
            Err(e) => {
                // Not sent: the line may try again.
                problems::unclaim_send(conn, answer, r.ticket_id).await?;
                failed.push(format!("#{} ({e:#})", r.ticket_id));
            }
        }
    }
    tracing::info!(
        "Problem #{ticket}: answer {answer} sent to {} report(s) by {}",
        sent.len(),
        identity.name
    );
    if sent.is_empty() && failed.is_empty() {
        return Ok(Err(format!("nothing sent: {}", skipped.join(", "))));
    }
    let mut what = format!(
        "answer {answer} sent to {}",
        if sent.is_empty() {
            "nobody".to_string()
        } else {
            sent.join(", ")
        }
    );
    if !skipped.is_empty() {
        what.push_str(&format!("; not to {}", skipped.join(", ")));
    }
    if !failed.is_empty() {
        what.push_str(&format!("; FAILED for {}", failed.join(", ")));
    }
    Ok(Ok(what))
}

/// Queues `text` for ticket `ticket`'s customer on the channel they last wrote from, and
/// records it on the ticket. Returns the channel.
async fn deliver(
    pl: &Services,
    conn: &mut Conn,
    ticket: TicketId,
    agent_name: &str,
    text: &str,
    now: &str,
) -> Result<Channel> {
    let t = tickets::find_ticket(conn, ticket)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the ticket vanished"))?;
    let side = customer_side(conn, t.id).await?;
    if side.ctx.channel != Channel::Email {
        queue_on_channel(pl, conn, &t, &side.ctx, text, MessageKind::AgentReply, now).await?;
        return Ok(side.ctx.channel);
    }
    queue_mail_answer(pl, conn, &t, &side, agent_name, text, &[], None, now).await??;
    Ok(Channel::Email)
}
