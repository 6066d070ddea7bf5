//! Mail from agents: replies to notifications (sent to a per-agent, per-ticket token
//! address) and mail to the commands address. Such a message acts as the agent only when
//! every check holds; anything else that claims to be an agent is kept on the ticket as a
//! held message, never executed and never relayed, and the real agent is told.
//!
//! The checks, in the words of the issue:
//! 1. it reaches a valid, unexpired token address for that ticket and agent (or the
//!    commands address, with `[#N]` in the subject); threading headers that point at
//!    another ticket than the token's are a conflict, not a hint;
//! 2. it has exactly one From mailbox, the agent's configured address, and no Sender that
//!    says otherwise;
//! 3. with `[security] require_authenticated_sender` (always, for the commands address,
//!    which has no secret in it) it shows DKIM or DMARC pass aligned with the From domain,
//!    from the topmost Authentication-Results of `trusted_authserv_id` or verified here;
//! 4. it is not automatic (Auto-Submitted, X-Autoreply, a report or bounce);
//! 5. its Message-ID is new: a replay is a duplicate and has no second effect.
//!
//! Commands are read from the new text of the first text part only (an HTML part is
//! rendered to text first): quoted history, forwarded parts and signatures are cut first
//! (`quote`, which always cuts at our own mail's marker line), attachments are never
//! text, and command lines in further text parts are never executed (the receipt lists
//! them). A reply whose `#note` cannot be read safely (a `#note` line below the text or
//! in another part), or whose text for the customer still holds our notification's
//! marker lines, is held and the agent told: when in doubt, nothing reaches the customer.
//!
//! Decisions: an agent's mail that carries no token and is not to the commands address is
//! agent mail only when it points at a ticket (threading headers or `[#N]`); it is then
//! held ("no reply token"). Without any ticket it is ordinary mail and opens a ticket like
//! any customer's, which is how agents log a phone call. Invited collaborators reply
//! through their own tokens; their replies become internal notes and their commands are
//! rejected. Held automatic mail (an out-of-office) gets no held notice, so two robots
//! cannot talk to each other.
//!
//! The room: [`handle`] here; `claim` (which ticket and agent a message claims, and
//! whether it proves it: `authres`, `token`), `act` (read, plan and apply the commands,
//! relay the text on the customer's channel, the receipt) and `hold` (keep what failed,
//! tell the real agent, capped and digested).

mod act;
pub mod authres;
mod claim;
mod hold;
mod kb;
mod problem;
pub mod route;
pub mod token;

pub use act::queue_on_channel;
use act::*;
use claim::*;
pub use hold::send_held_digests;
use hold::*;

use crate::store::Conn;
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use crate::channels::email::compose::{self, Composed, ReplyOutcome};
use crate::channels::email::parse::{Inbound, MAX_TEXT_BYTES, clean_text};
use crate::channels::email::quote;
use crate::clock::db_time;
use crate::commands::apply::{self, ApplyContext};
use crate::commands::parse::{self, ParsedReply};
use crate::domain::address::{Mailbox, reply_token, split_plus};
use crate::domain::{Channel, Direction, MatchReason, MessageKind, TicketId};
use crate::intake::{Item, Outcome, Services};
use crate::store::{
    agent as agent_store, held as held_store, imap_state, messages, outbox, tickets,
};
use crate::threading::subject;
use authres::AuthFailure;

/// Who a message claims to be.
#[derive(Debug, Clone)]
struct Identity {
    /// The agent's configured name, or the collaborator's address.
    name: String,
    /// How they sign to customers.
    display_name: String,
    email: String,
    collaborator: bool,
}

/// What a message claims, before any check.
#[derive(Debug, Default)]
struct Claim {
    ticket: Option<TicketId>,
    identity: Option<Identity>,
    via_token: bool,
    via_commands_address: bool,
    reasons: Vec<String>,
}

/// True when `p` must take the agent path: it is addressed to an agent token or the
/// commands address, or its From is a configured agent.
pub fn is_agent_mail(pl: &Services, p: &Inbound) -> bool {
    if p.channel != Channel::Email {
        // Agents work by mail; a chat sender is a customer whatever it claims.
        return false;
    }
    let cfg = pl.config();
    let own = cfg.own_addresses();
    p.all_recipients().any(|r| {
        reply_token(r, &own).is_some_and(token::looks_like_agent_token)
            || cfg
                .commands_address
                .as_deref()
                .is_some_and(|c| c.eq_ignore_ascii_case(r))
    }) || p
        .from
        .as_ref()
        .is_some_and(|f| cfg.agent_by_email(&f.address).is_some())
}

/// Handles one agent message inside the caller's transaction. `None`: it is not agent
/// mail after all (an agent writing in without reference to a ticket) and goes the
/// customer path.
pub async fn handle(
    pl: &Services,
    conn: &mut Conn,
    it: &Item<'_>,
    now: DateTime<Utc>,
) -> Result<Option<Outcome>> {
    let p = it.parsed;
    let now_s = db_time(now);
    // 5. A replay (or a second copy) has no second effect.
    if let Some(existing) = messages::find_by_message_id(conn, &p.message_id).await? {
        record_source(conn, it, existing.row, &now_s).await?;
        return Ok(Some(Outcome::Duplicate { row: existing.row }));
    }
    let mut claim = claim(pl, conn, p, now).await?;
    if !claim.via_token && !claim.via_commands_address && claim.ticket.is_none() {
        // An agent writing in about nothing in particular (logging a phone call) opens a
        // ticket like anyone, but only as the agent: mail from an agent's address that
        // fails authentication is held wherever it arrives.
        if claim.identity.is_some() && pl.config().security.require_authenticated_sender {
            let automatic = is_automatic(p);
            check_sender(pl, it.raw, p, &mut claim, automatic).await;
            if !claim.reasons.is_empty() {
                let row = hold(pl, conn, it, &claim, None, automatic, now).await?;
                return Ok(Some(Outcome::Held { row, ticket: None }));
            }
        }
        return Ok(None);
    }
    let automatic = is_automatic(p);
    check_sender(pl, it.raw, p, &mut claim, automatic).await;

    // Agent-wide commands (`#away`, `#back`) to the commands address need no ticket.
    if claim.via_commands_address
        && claim.ticket.is_none()
        && claim.reasons.is_empty()
        && !automatic
        && let Some(identity) = claim.identity.clone().filter(|i| !i.collaborator)
    {
        let row = agent_wide(pl, conn, it, &identity, now).await?;
        return Ok(Some(Outcome::AgentMail { ticket: None, row }));
    }
    let ticket = match claim.ticket {
        Some(t) => tickets::find_ticket(conn, t).await?.map(|t| t.id),
        None => None,
    };
    if ticket.is_none() && claim.reasons.is_empty() {
        claim
            .reasons
            .push("the ticket it names does not exist".to_string());
    }
    let (Some(ticket), Some(identity), true) =
        (ticket, claim.identity.clone(), claim.reasons.is_empty())
    else {
        let row = hold(pl, conn, it, &claim, ticket, automatic, now).await?;
        return Ok(Some(Outcome::Held { row, ticket }));
    };
    // The sender is who they claim; now what they wrote must be readable safely.
    let read = match read_reply(p, identity.collaborator) {
        Ok(r) => r,
        Err(why) => {
            claim.reasons.push(why);
            let row = hold(pl, conn, it, &claim, Some(ticket), automatic, now).await?;
            return Ok(Some(Outcome::Held {
                row,
                ticket: Some(ticket),
            }));
        }
    };
    let mut read = read;
    if let Some((line, which)) = take_release(&mut read.reply)
        && let Err(why) = release(pl, conn, it, ticket, &identity, &claim, which, now).await?
    {
        read.elsewhere.push((line, why));
    }
    let row = act(pl, conn, it, ticket, &identity, &claim, read, None, now).await?;
    Ok(Some(Outcome::AgentMail {
        ticket: Some(ticket),
        row,
    }))
}

/// A verified agent's mail to the commands address naming no ticket: `#away`, `#back`
/// `#feedback` (recorded on no ticket) and the `#kb` commands that need no ticket
/// (approve, reject, request, search) apply, anything else is refused for want of a
/// ticket; the agent gets a notice saying which. Stored as a `command` message on no
/// ticket.
async fn agent_wide(
    pl: &Services,
    conn: &mut Conn,
    it: &Item<'_>,
    identity: &Identity,
    now: DateTime<Utc>,
) -> Result<i64> {
    use crate::commands::parse::Command;
    let now_s = db_time(now);
    let reply = parse::parse_reply(quote::new_text(it.parsed.first_text()));
    let mut lines: Vec<String> = Vec::new();
    for (_, line, c) in &reply.commands {
        match c {
            Command::Away | Command::Back => {
                let away = *c == Command::Away;
                let changed =
                    crate::store::triage::set_away(conn, &identity.name, away, &now_s).await?;
                lines.push(match (away, changed) {
                    (true, true) => format!("{line}: you are away; no new tickets reach you until #back"),
                    (true, false) => format!("{line}: you were already away"),
                    (false, true) => format!("{line}: welcome back; new tickets reach you again"),
                    (false, false) => format!("{line}: you were not away"),
                });
            }
            Command::Feedback(text) => {
                let theme =
                    crate::profile::feedback_theme(text, &pl.config().rules.categories());
                crate::store::feedback::add_feedback(
                    conn,
                    &identity.name,
                    None,
                    text,
                    &theme,
                    &now_s,
                )
                .await?;
                lines.push(format!(
                    "{line}: thank you; recorded under {theme} for the admins"
                ));
            }
            c if kb::is_kb(c) => {}
            _ => lines.push(format!(
                "{line}: not applied: it acts on a ticket; reply to the ticket's notification, or put [#N] in the subject"
            )),
        }
    }
    let kb_report = kb::run(pl, conn, None, identity, &reply.commands, "", now).await?;
    lines.extend(kb_report.applied);
    lines.extend(
        kb_report
            .rejected
            .into_iter()
            .map(|(line, why)| format!("{line}: not applied: {why}")),
    );
    for (_, line, why) in &reply.rejected {
        lines.push(format!("{line}: not applied: {why}"));
    }
    if lines.is_empty() {
        lines.push(
            "No command found. To the commands address, without a ticket: #away, #back, #feedback <text>, #kb approve N, #kb reject N <why>, #kb request <topic> or #kb search <words>."
                .to_string(),
        );
    }
    let row = store_inbound(
        conn,
        pl,
        it,
        None,
        MessageKind::Command,
        MatchReason::None,
        &reply.body,
        &now_s,
    )
    .await?;
    messages::set_agent_columns(conn, row, Some(&identity.name), None).await?;
    let to = vec![identity.email.clone()];
    let mail = compose::internal_mail(
        pl.config(),
        pl.templates(),
        &compose::InternalMail {
            template: "agent-notice",
            ticket: None,
            to: &to,
            data: serde_json::json!({
                "what": "your commands",
                "lines": lines.iter().map(|l| compose::neutralised(l, 300)).collect::<Vec<_>>(),
            }),
            urgent: false,
        },
    )?;
    queue_internal(pl, conn, None, MessageKind::Receipt, &mail, &now_s).await?;
    tracing::info!(
        "Agent-wide commands from {}: {}",
        identity.email,
        lines.join("; ")
    );
    Ok(row)
}

async fn record_source(conn: &mut Conn, it: &Item<'_>, row: i64, now: &str) -> Result<()> {
    if let Some(s) = it.source {
        imap_state::insert_source(conn, s.mailbox, s.folder, s.uidvalidity, s.uid, row, now)
            .await?;
    }
    Ok(())
}

/// Stores the inbound message with its raw bytes.
#[allow(clippy::too_many_arguments)]
async fn store_inbound(
    conn: &mut Conn,
    pl: &Services,
    it: &Item<'_>,
    ticket: Option<TicketId>,
    kind: MessageKind,
    reason: MatchReason,
    body_text: &str,
    now: &str,
) -> Result<i64> {
    let p = it.parsed;
    let raw_id =
        messages::insert_raw(conn, pl.raw(), &p.raw_sha256, it.raw, it.raw.len(), now).await?;
    let to: Vec<&str> = p.to.iter().map(|m| m.address.as_str()).collect();
    let cc: Vec<&str> = p.cc.iter().map(|m| m.address.as_str()).collect();
    let row = messages::insert_message(
        conn,
        &messages::NewMessage {
            ticket_id: ticket,
            raw_id: Some(raw_id),
            message_id: &p.message_id,
            synthetic_id: p.synthetic_id,
            body_sha256: &p.body_sha256,
            direction: Direction::Inbound,
            kind,
            from_addr: p.from.as_ref().map(|f| f.address.as_str()),
            from_name: p.from.as_ref().and_then(|f| f.name.as_deref()),
            to_json: &serde_json::to_string(&to)?,
            cc_json: &serde_json::to_string(&cc)?,
            subject: &p.subject,
            body_text,
            channel: Channel::Email,
            match_reason: reason,
            problems_json: &serde_json::to_string(&p.problems)?,
            attachments_json: &serde_json::to_string(&p.attachments)?,
            date_header: p.date,
            now,
        },
    )
    .await?;
    // A held message's threading headers came from someone we could not trust: they are
    // kept in the raw bytes, never where threading looks.
    if kind != MessageKind::Held {
        let mut refs = p.in_reply_to.clone();
        refs.extend(p.references.iter().cloned());
        refs.sort();
        refs.dedup();
        messages::insert_refs(conn, row, &refs).await?;
    }
    record_source(conn, it, row, now).await?;
    Ok(row)
}

/// Queues a team mail (`compose::internal_mail`): on a ticket, as an outbound message
/// of `kind` in its thread with its outbox row; without one, as an outbox row only.
pub async fn queue_internal(
    pl: &Services,
    conn: &mut Conn,
    ticket: Option<TicketId>,
    kind: MessageKind,
    c: &Composed,
    now: &str,
) -> Result<()> {
    match ticket {
        Some(t) => {
            let root = compose::thread_root_id(t, &pl.config().message_id_domain);
            queue(pl, conn, t, kind, c, &[root], now).await?;
        }
        None => {
            outbox::insert_outbox(
                conn,
                &outbox::NewOutbox {
                    message_row: None,
                    ticket_id: None,
                    kind: kind.as_str(),
                    message_id: &c.message_id,
                    mail_from: &pl.config().smtp.from.address,
                    rcpt_to: &c.to,
                    raw: &c.raw,
                    now,
                },
            )
            .await?;
        }
    }
    Ok(())
}

/// Queues `c` (to an agent or the customer) as an outbound message and an outbox row.
async fn queue(
    pl: &Services,
    conn: &mut Conn,
    ticket: TicketId,
    kind: MessageKind,
    c: &Composed,
    refs: &[String],
    now: &str,
) -> Result<i64> {
    let cfg = pl.config();
    let row = messages::insert_message(
        conn,
        &messages::NewMessage {
            ticket_id: Some(ticket),
            raw_id: None,
            message_id: &c.message_id,
            synthetic_id: false,
            body_sha256: "",
            direction: Direction::Outbound,
            kind,
            from_addr: Some(&cfg.smtp.from.address),
            from_name: cfg.smtp.from.name.as_deref(),
            to_json: &serde_json::to_string(&c.to)?,
            cc_json: "[]",
            subject: &c.subject,
            // As the unit of work stores our mail: cleaned text, dated now.
            body_text: &clean_text(&c.body, MAX_TEXT_BYTES),
            channel: Channel::Email,
            match_reason: MatchReason::Outbound,
            problems_json: "[]",
            attachments_json: "[]",
            date_header: Some(pl.clock().now().timestamp()),
            now,
        },
    )
    .await?;
    messages::insert_refs(conn, row, refs).await?;
    outbox::insert_outbox(
        conn,
        &outbox::NewOutbox {
            message_row: Some(row),
            ticket_id: Some(ticket),
            kind: kind.as_str(),
            message_id: &c.message_id,
            mail_from: &cfg.smtp.from.address,
            rcpt_to: &c.to,
            raw: &c.raw,
            now,
        },
    )
    .await?;
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_fields_counts_header_fields_not_mailboxes() {
        assert_eq!(
            from_fields(b"From: a@x\r\nTo: b@y\r\n\r\nFrom: body line\r\n"),
            1
        );
        assert_eq!(from_fields(b"From: a@x\r\nfrom: undisclosed:;\r\n\r\n"), 2);
        assert_eq!(
            from_fields(b"FROM : a@x\nSubject: hi\n from: folded\n\n"),
            1
        );
        assert_eq!(from_fields(b"Subject: no from\r\n\r\n"), 0);
    }

    #[test]
    fn own_ids_name_their_ticket() {
        assert_eq!(
            own_id_ticket("pd.42.abcdef@example.com", "example.com"),
            Some(42)
        );
        assert_eq!(
            own_id_ticket("pd.7.thread@example.com", "example.com"),
            Some(7)
        );
        assert_eq!(own_id_ticket("pd.42.abcdef@evil.org", "example.com"), None);
        assert_eq!(
            own_id_ticket("pd.x.abcdef@example.com", "example.com"),
            None
        );
        assert_eq!(own_id_ticket("42@example.com", "example.com"), None);
    }
}
