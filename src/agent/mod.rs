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

pub mod authres;
pub mod token;

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
    Ok(Some(Outcome::AgentMail { ticket, row }))
}

/// Removes `#release` from the reply's commands: (the line, the message number if given).
fn take_release(reply: &mut ParsedReply) -> Option<(String, Option<i64>)> {
    let pos = reply
        .commands
        .iter()
        .position(|(_, _, c)| matches!(c, parse::Command::Release(_)))?;
    let (_, line, c) = reply.commands.remove(pos);
    match c {
        parse::Command::Release(n) => Some((line, n)),
        _ => None,
    }
}

/// `#release [N]` from an authenticated agent: acts on a message held as theirs, as if it
/// had been accepted (its commands applied, its text relayed, its receipt sent), unless
/// the customer was among its recipients, who then already has the text: only its
/// commands apply. Without N, the held notice the reply answers names the message.
/// `Ok(Err(why))` when it cannot be released; the receipt says why.
#[allow(clippy::too_many_arguments)]
async fn release(
    pl: &Services,
    conn: &mut Conn,
    it: &Item<'_>,
    ticket: TicketId,
    identity: &Identity,
    claim: &Claim,
    which: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Result<(), String>> {
    let p = it.parsed;
    let domain = &pl.config().message_id_domain;
    let row = which.or_else(|| {
        p.in_reply_to
            .iter()
            .chain(p.references.iter().rev())
            .find_map(|id| compose::held_row_of_notice(id, domain))
    });
    let Some(row) = row else {
        return Ok(Err(
            "reply to the held notice, or name the held message: #release N".to_string(),
        ));
    };
    let Some(h) = held_store::find_message(conn, row).await? else {
        return Ok(Err(format!("there is no message #{row}")));
    };
    if h.kind != "held" {
        return Ok(Err(format!("message #{row} is not held (any more)")));
    }
    // Both the agent it was held as and the address it came from must be the releaser's:
    // nobody releases mail that merely names them.
    let from_releaser = h
        .from_addr
        .as_deref()
        .is_some_and(|f| f.eq_ignore_ascii_case(&identity.email));
    if identity.collaborator || h.agent.as_deref() != Some(identity.name.as_str()) || !from_releaser
    {
        return Ok(Err(format!(
            "message #{row} did not claim to come from you; only the agent it names can release it"
        )));
    }
    let here = tickets::find_ticket(conn, ticket).await?.map(|t| t.id);
    let Some(there) = h.ticket else {
        return Ok(Err(format!("message #{row} is on no ticket")));
    };
    if tickets::find_ticket(conn, there).await?.map(|t| t.id) != here {
        return Ok(Err(format!(
            "message #{row} is held on ticket #{there}; release it from a reply about that ticket"
        )));
    }
    let Some(raw) = messages::message_raw(conn, pl.raw(), row).await? else {
        return Ok(Err(format!("the bytes of message #{row} are not stored")));
    };
    let parsed = crate::channels::email::parse::parse(&raw);
    let mut read = match read_reply(&parsed, false) {
        Ok(r) => r,
        Err(why) => {
            return Ok(Err(format!(
                "message #{row} still cannot be acted on: {why}"
            )));
        }
    };
    let side = customer_side(conn, there).await?;
    let customer_had_it = side
        .to
        .first()
        .is_some_and(|c| h.recipients.contains(&c.address.to_lowercase()));
    if customer_had_it {
        // The customer has the text from the agent's own mail; send nothing twice.
        read.reply.body.clear();
        read.reply
            .commands
            .retain(|(_, _, c)| !matches!(c, parse::Command::Macro(_)));
        read.elsewhere.push((
            "(your text)".to_string(),
            "not sent again: the customer was among the recipients of your mail and already has it"
                .to_string(),
        ));
    }
    let held_item = Item {
        raw: &raw,
        parsed: &parsed,
        source: None,
    };
    tracing::info!(
        "Ticket #{there}: held message #{row} released by {}",
        identity.email
    );
    act(
        pl,
        conn,
        &held_item,
        ticket,
        identity,
        claim,
        read,
        Some(row),
        now,
    )
    .await?;
    Ok(Ok(()))
}

/// An agent's reply as read for acting: commands and text from the new text of the first
/// text part (HTML rendered to text when that part is HTML), and what other text parts
/// hold that looks like commands (never executed).
struct ReadReply<'a> {
    new_text: &'a str,
    reply: ParsedReply,
    /// (line, why) for command lines outside the first text part.
    elsewhere: Vec<(String, String)>,
}

/// Reads `p` for [`act`], or says why it must be held instead: when its intent to keep
/// something internal (`#note`) cannot be read safely, or when the text for the customer
/// still holds our own notification. When in doubt, hold: a held reply costs the agent a
/// second try, a relayed note can cost the customer's trust.
fn read_reply(p: &Inbound, collaborator: bool) -> Result<ReadReply<'_>, String> {
    let new_text = quote::new_text(p.first_text());
    let reply = parse::parse_reply(new_text);
    let rest = p
        .body_text
        .get(p.first_text_len.min(p.body_text.len())..)
        .unwrap_or_default();
    let others = parse::parse_reply(quote::new_text(rest));
    let mut elsewhere: Vec<(String, String)> = Vec::new();
    let why = "in a second text part: commands are read from the first text part only";
    for (_, line, _) in &others.commands {
        elsewhere.push((line.clone(), why.to_string()));
    }
    for (_, line, _) in &others.rejected {
        elsewhere.push((line.clone(), why.to_string()));
    }
    for (_, line) in &others.ignored {
        elsewhere.push((line.clone(), why.to_string()));
    }
    if collaborator {
        // A collaborator's reply is always an internal note.
        return Ok(ReadReply {
            new_text,
            reply,
            elsewhere,
        });
    }
    let note_elsewhere = others.is_note() || others.has_unread_note();
    if (reply.has_unread_note() || note_elsewhere) && !reply.is_note() {
        return Err(
            "it has a #note line where commands are not read (below your text, or in another part of the mail); \
             nothing was sent to the customer. To write an internal note, put #note on the first line of your reply"
                .to_string(),
        );
    }
    if crate::domain::has_agent_mail_marker(&reply.body) {
        return Err(
            "the text for the customer still holds lines of our notification (quoted history that could not be cut); \
             nothing was sent to the customer. Reply again with your answer above the quoted part"
                .to_string(),
        );
    }
    Ok(ReadReply {
        new_text,
        reply,
        elsewhere,
    })
}

/// Reads the claim: token, commands address, identity and ticket.
async fn claim(pl: &Services, conn: &mut Conn, p: &Inbound, now: DateTime<Utc>) -> Result<Claim> {
    let cfg = pl.config();
    let own = cfg.own_addresses();
    let mut c = Claim::default();
    let from_agent = p.from.as_ref().and_then(|f| cfg.agent_by_email(&f.address));

    // The ticket the threading headers or the subject point at.
    let threaded = threaded_ticket(pl, conn, p).await?;

    let tokens: Vec<&str> = p
        .all_recipients()
        .filter_map(|r| reply_token(r, &own))
        .filter(|t| token::looks_like_agent_token(t))
        .collect();
    if let Some(tok) = tokens.first() {
        c.via_token = true;
        match token::verify(pl.keyring(), tok, now.timestamp()) {
            Ok(t) => {
                c.ticket = Some(t.ticket);
                c.identity = identity_for(pl, conn, t.ticket, t.agent).await?;
                if c.identity.is_none() {
                    c.reasons
                        .push("the reply token names nobody who is an agent or collaborator of this ticket".to_string());
                }
                if let Some(other) = threaded
                    && tickets::find_ticket(conn, other).await?.map(|r| r.id)
                        != tickets::find_ticket(conn, t.ticket).await?.map(|r| r.id)
                {
                    c.reasons.push(format!(
                        "the reply token is for ticket #{} but the message replies to ticket #{other}",
                        t.ticket
                    ));
                }
            }
            Err(e) => {
                c.ticket = threaded;
                c.identity = from_agent.map(agent_identity);
                c.reasons.push(format!("reply token refused: {e}"));
            }
        }
        if tokens.len() > 1 {
            c.reasons
                .push("the message is addressed to more than one reply token".to_string());
        }
        return Ok(c);
    }
    let to_commands = cfg.commands_address.as_deref().is_some_and(|addr| {
        p.all_recipients()
            .any(|r| r.eq_ignore_ascii_case(addr) || split_plus(r).is_some_and(|(b, _)| b == addr))
    });
    c.identity = from_agent.map(agent_identity);
    if to_commands {
        c.via_commands_address = true;
        let tags = subject::ticket_tags(&p.subject);
        match tags.as_slice() {
            [one] => c.ticket = Some(*one),
            [] => c
                .reasons
                .push("mail to the commands address needs [#N] in the subject".to_string()),
            _ => c.reasons.push(
                "the subject names more than one ticket; write one [#N] per mail".to_string(),
            ),
        }
        if c.identity.is_none() {
            c.reasons
                .push("the From address is not a configured agent".to_string());
        }
        return Ok(c);
    }
    // An agent's From without a token: agent mail only when it points at a ticket.
    c.ticket = threaded;
    if c.ticket.is_some() {
        c.reasons.push(
            "no reply token: reply to the latest notification, or write to the commands address"
                .to_string(),
        );
    }
    Ok(c)
}

fn agent_identity(a: &crate::config::AgentConfig) -> Identity {
    Identity {
        name: a.name.clone(),
        display_name: a.display_name.clone(),
        email: a.email.clone(),
        collaborator: false,
    }
}

/// The agent or collaborator of `ticket` whose identity id is `id`.
async fn identity_for(
    pl: &Services,
    conn: &mut Conn,
    ticket: TicketId,
    id: u32,
) -> Result<Option<Identity>> {
    if let Some(a) = pl
        .config()
        .agents
        .iter()
        .find(|a| token::identity_id(&a.email) == id)
    {
        return Ok(Some(agent_identity(a)));
    }
    let live = tickets::find_ticket(conn, ticket)
        .await?
        .map(|t| t.id)
        .unwrap_or(ticket);
    for t in [ticket, live] {
        for email in agent_store::list_collaborators(conn, t).await? {
            if token::identity_id(&email) == id {
                return Ok(Some(Identity {
                    name: email.clone(),
                    display_name: email.clone(),
                    email,
                    collaborator: true,
                }));
            }
        }
    }
    Ok(None)
}

/// The ticket `p`'s In-Reply-To/References (ours, or any stored message) or its single
/// `[#N]` point at.
async fn threaded_ticket(pl: &Services, conn: &mut Conn, p: &Inbound) -> Result<Option<TicketId>> {
    let cfg = pl.config();
    let domain = &cfg.message_id_domain;
    // A customer's reply address (`support+<ticket token>@`, the acknowledgement's
    // Reply-To) names its ticket as surely as an agent token does.
    let own = cfg.own_addresses();
    for r in p.all_recipients() {
        if let Some(tok) = reply_token(r, &own).filter(|t| !token::looks_like_agent_token(t))
            && let Some(t) = tickets::find_ticket_by_token(conn, tok).await?
        {
            return Ok(Some(t.id));
        }
    }
    for id in p.in_reply_to.iter().chain(p.references.iter().rev()) {
        if let Some(t) = own_id_ticket(id, domain) {
            return Ok(Some(t));
        }
        if let Some(m) = messages::find_by_message_id(conn, id).await?
            && m.threads
            && let Some(t) = m.ticket_id
        {
            return Ok(Some(t));
        }
    }
    Ok(match subject::ticket_tags(&p.subject).as_slice() {
        [one] => Some(*one),
        _ => None,
    })
}

/// The ticket number inside one of our own Message-IDs (`pd.<N>.<...>@<domain>`).
fn own_id_ticket(id: &str, domain: &str) -> Option<TicketId> {
    if !compose::is_own_message_id(id, domain) {
        return None;
    }
    id.strip_prefix(compose::OWN_ID_PREFIX)?
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// Automatic mail by any RFC 3834 sign: Auto-Submitted other than `no`, X-Autoreply and
/// friends, `Precedence: bulk/junk/list`, a null Return-Path (vacation(1) sends those),
/// or a report or bounce.
fn is_automatic(p: &Inbound) -> bool {
    p.auto.auto_submitted.as_deref().is_some_and(|v| {
        !v.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .eq_ignore_ascii_case("no")
    }) || p.auto.x_autoreply
        || p.auto.feedback_report
        || p.auto.return_path_null
        || p.auto
            .precedence
            .as_deref()
            .map(|v| v.trim().to_ascii_lowercase())
            .is_some_and(|v| matches!(v.as_str(), "bulk" | "junk" | "list"))
        || p.report.is_some()
        || crate::channels::email::loops::looks_like_legacy_bounce(p)
}

/// The number of `From` header fields in the header block of `raw`, parsable or not
/// (RFC 5322 allows exactly one).
fn from_fields(raw: &[u8]) -> usize {
    let mut n = 0;
    for line in raw.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        let name = line
            .iter()
            .position(|b| *b == b':')
            .and_then(|i| line.get(..i));
        if !continuation && name.is_some_and(|n| n.trim_ascii().eq_ignore_ascii_case(b"from")) {
            n += 1;
        }
    }
    n
}

/// Checks 2, 3 and 4; adds a reason per failure.
async fn check_sender(pl: &Services, raw: &[u8], p: &Inbound, c: &mut Claim, automatic: bool) {
    let cfg = pl.config();
    if automatic {
        c.reasons.push(
            "it is an automatic message (Auto-Submitted, an out-of-office or a bounce)".to_string(),
        );
    }
    let Some(identity) = &c.identity else {
        if c.reasons.is_empty() {
            c.reasons
                .push("the sender is not a configured agent".to_string());
        }
        return;
    };
    let fields = from_fields(raw);
    if p.from_count != 1 || fields != 1 {
        c.reasons.push(format!(
            "it has {} From addresses in {fields} From headers; exactly one is required",
            p.from_count
        ));
    }
    let from = p.from.as_ref();
    if !from.is_some_and(|f| f.address.eq_ignore_ascii_case(&identity.email)) {
        c.reasons.push(format!(
            "From is {} but the token belongs to {}",
            from.map(|f| f.address.as_str()).unwrap_or("missing"),
            identity.email
        ));
        return;
    }
    if let Some(sender) = &p.sender
        && !sender.address.eq_ignore_ascii_case(&identity.email)
    {
        c.reasons.push(format!(
            "its Sender header ({}) is not the agent's address",
            sender.address
        ));
    }
    if cfg.security.require_authenticated_sender || c.via_commands_address {
        let domain = identity
            .email
            .rsplit_once('@')
            .map(|(_, d)| d)
            .unwrap_or("");
        if let Err(why) = authenticate(pl, raw, domain).await {
            c.reasons
                .push(format!("the sender is not authenticated: {why}"));
        }
    }
}

/// DKIM/DMARC evidence: the trusted Authentication-Results first, then local DKIM.
async fn authenticate(pl: &Services, raw: &[u8], from_domain: &str) -> Result<(), String> {
    let cfg = pl.config();
    let mut why: Vec<String> = Vec::new();
    match cfg.security.trusted_authserv_id.as_deref() {
        Some(id) => match authres::check_auth_results(raw, id, from_domain) {
            Ok(_) => return Ok(()),
            Err(e) => why.push(e.to_string()),
        },
        None => why.push(AuthFailure::NoTrustedHeader.to_string() + " (none is configured)"),
    }
    if let Some(v) = pl.dkim() {
        match v.verify_budgeted(raw, from_domain).await {
            Ok(_) => return Ok(()),
            Err(e) => why.push(format!("local DKIM: {e}")),
        }
    }
    Err(why.join("; "))
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

/// Queues an agent's answer on the channel the customer last wrote from: an outbound
/// message row and an outbox row whose payload the channel's transport sends.
async fn queue_on_channel(
    pl: &Services,
    conn: &mut Conn,
    t: &tickets::TicketRow,
    ctx: &messages::ReplyContext,
    text: &str,
    now: &str,
) -> Result<()> {
    let (Some(account), Some(conversation)) = (&ctx.account, &ctx.conversation) else {
        anyhow::bail!("the customer's latest message names no channel account or conversation");
    };
    let prefix = format!("{}:{account}:", ctx.channel);
    let recipient = ctx.customer.strip_prefix(&prefix).unwrap_or(&ctx.customer);
    let message_id = compose::new_message_id(t.id, &pl.config().message_id_domain);
    let body = clean_text(text, MAX_TEXT_BYTES);
    let row = messages::insert_message(
        conn,
        &messages::NewMessage {
            ticket_id: Some(t.id),
            raw_id: None,
            message_id: &message_id,
            synthetic_id: false,
            body_sha256: "",
            direction: Direction::Outbound,
            kind: MessageKind::AgentReply,
            from_addr: None,
            from_name: None,
            to_json: &serde_json::to_string(&[&ctx.customer])?,
            cc_json: "[]",
            subject: "",
            body_text: &body,
            channel: ctx.channel,
            match_reason: MatchReason::Outbound,
            problems_json: "[]",
            attachments_json: "[]",
            date_header: Some(pl.clock().now().timestamp()),
            now,
        },
    )
    .await?;
    let payload = serde_json::json!({
        "ticket_id": t.id,
        "conversation_id": conversation,
        "recipient": recipient,
        "text": body,
    });
    outbox::insert_channel_outbox(
        conn,
        row,
        t.id,
        ctx.channel,
        account,
        &message_id,
        &payload,
        now,
    )
    .await?;
    tracing::info!(
        "Ticket #{}: answer queued on the {} channel, account {account:?}, conversation {conversation:?}",
        t.id,
        ctx.channel
    );
    Ok(())
}

/// Keeps a message that failed the checks and tells the real agent.
async fn hold(
    pl: &Services,
    conn: &mut Conn,
    it: &Item<'_>,
    claim: &Claim,
    ticket: Option<TicketId>,
    automatic: bool,
    now: DateTime<Utc>,
) -> Result<i64> {
    let p = it.parsed;
    let now_s = db_time(now);
    let now_s = now_s.as_str();
    let reasons = if claim.reasons.is_empty() {
        vec!["the message could not be attributed to an agent".to_string()]
    } else {
        claim.reasons.clone()
    };
    let reason_text = reasons.join("; ");
    tracing::warn!(
        "Held message <{}> claiming to be from {} on ticket {}: {reason_text}",
        p.message_id,
        claim
            .identity
            .as_ref()
            .map(|i| i.email.as_str())
            .unwrap_or("an agent"),
        ticket
            .map(|t| format!("#{t}"))
            .unwrap_or_else(|| "(none)".into()),
    );
    let row = store_inbound(
        conn,
        pl,
        it,
        ticket,
        MessageKind::Held,
        if claim.via_token {
            MatchReason::ReplyToken
        } else {
            MatchReason::References
        },
        &p.body_text,
        now_s,
    )
    .await?;
    messages::set_agent_columns(
        conn,
        row,
        claim.identity.as_ref().map(|i| i.name.as_str()),
        Some(&reason_text),
    )
    .await?;
    let Some(identity) = &claim.identity else {
        return Ok(row);
    };
    if automatic || identity.collaborator || ticket.is_none() {
        // Never announced, not even in a digest: robots must not talk to each other, and
        // a notice needs a ticket to thread on (the log has it).
        held_store::mark_announced(conn, &[row]).await?;
        return Ok(row);
    }
    if !notify_held(pl, conn, identity, row, now).await? {
        tracing::info!(
            "No held notice to {} for message #{row}: one went out within the hour; the next one lists it",
            identity.email
        );
    }
    Ok(row)
}

/// At most one held notice per agent and hour: a forger's flood must not become a mail
/// bomb (or a phishing relay) from our own address.
const HELD_NOTICE_INTERVAL_SECS: i64 = 3600;

/// Tells `agent` that message `row` was held as theirs, with every other message held as
/// theirs since their last notice listed below it. Returns false (and sends nothing) when
/// a notice went to them within [`HELD_NOTICE_INTERVAL_SECS`], or the message is no
/// longer held.
async fn notify_held(
    pl: &Services,
    conn: &mut Conn,
    agent: &Identity,
    row: i64,
    now: DateTime<Utc>,
) -> Result<bool> {
    let cfg = pl.config();
    let now_s = db_time(now);
    let Some(h) = held_store::find_message(conn, row).await? else {
        return Ok(false);
    };
    let Some(t) = (match h.ticket {
        Some(id) if h.kind == "held" => tickets::find_ticket(conn, id).await?,
        _ => None,
    }) else {
        return Ok(false);
    };
    let last = held_store::last_notice_at(conn, &agent.email).await?;
    let cap_start = db_time(now - chrono::Duration::seconds(HELD_NOTICE_INTERVAL_SECS));
    if last.as_deref().is_some_and(|l| l > cap_start.as_str()) {
        return Ok(false);
    }
    let week_ago = db_time(now - chrono::Duration::days(7));
    let earlier = held_store::list_unannounced(conn, &agent.name, &week_ago, row).await?;
    let side = customer_side(conn, t.id).await?;
    let customer_had_it = side
        .to
        .first()
        .is_some_and(|c| h.recipients.contains(&c.address.to_lowercase()));
    let reasons: Vec<String> = h
        .held_reason
        .split("; ")
        .filter(|r| !r.trim().is_empty())
        .map(str::to_string)
        .collect();
    let expires =
        now.timestamp() + i64::try_from(cfg.security.token_ttl.as_secs()).unwrap_or(i64::MAX / 2);
    let tok = token::mint(
        pl.keyring(),
        t.id,
        token::identity_id(&agent.email),
        expires,
    )
    .context("Minting a reply token")?;
    let notice = compose::held_notice(
        cfg,
        pl.templates(),
        &compose::HeldInput {
            ticket_id: t.id,
            ticket_subject: &t.subject,
            agent: &Mailbox {
                name: Some(agent.name.clone()),
                address: agent.email.clone(),
            },
            reply_token: &tok,
            reasons: &reasons,
            held_row: h.row,
            from_is_agent: h
                .from_addr
                .as_deref()
                .is_some_and(|f| f.eq_ignore_ascii_case(&agent.email)),
            subject: &h.subject,
            customer_had_it,
            earlier: &earlier,
        },
    );
    match notice {
        Ok(c) => {
            let root = compose::thread_root_id(t.id, &cfg.message_id_domain);
            queue(pl, conn, t.id, MessageKind::HeldNotice, &c, &[root], &now_s).await?;
            // Only what the notice lists is announced; the rest waits for the next one.
            let mut told: Vec<i64> = earlier
                .iter()
                .take(compose::MAX_LIST_ENTRIES)
                .map(|(r, ..)| *r)
                .collect();
            told.push(h.row);
            held_store::mark_announced(conn, &told).await?;
            Ok(true)
        }
        Err(e) => {
            tracing::warn!(
                "Ticket #{}: no held notice, it cannot be composed: {e:#}",
                t.id
            );
            Ok(false)
        }
    }
}

/// Sends each agent the held notice they are owed: messages held as theirs that no
/// notice announced yet (the hourly cap held them back), once the hour since their last
/// notice has passed. The daemon calls it every few minutes; `run --once` at its end.
/// Returns how many notices were queued.
pub async fn send_held_digests(
    pl: &Services,
    conn: &mut Conn,
    now: DateTime<Utc>,
) -> Result<usize> {
    let mut sent = 0;
    let week_ago = db_time(now - chrono::Duration::days(7));
    for a in &pl.config().agents {
        let pending = held_store::list_unannounced(conn, &a.name, &week_ago, -1).await?;
        let Some((newest, ..)) = pending.last() else {
            continue;
        };
        if notify_held(pl, conn, &agent_identity(a), *newest, now).await? {
            sent += 1;
        }
    }
    Ok(sent)
}

/// The customer's side of a ticket: address, name, Cc'd addresses, the Message-ID to
/// answer and the References to carry.
struct CustomerSide {
    to: Vec<Mailbox>,
    in_reply_to: Option<String>,
    references: Vec<String>,
    /// Where the customer last wrote from: an answer goes back there.
    ctx: messages::ReplyContext,
}

async fn customer_side(conn: &mut Conn, ticket: TicketId) -> Result<CustomerSide> {
    let ctx = messages::get_reply_context(conn, ticket)
        .await
        .context("Reading the ticket's customer")?;
    let mut to = vec![Mailbox {
        address: ctx.customer.clone(),
        name: ctx.customer_name.clone(),
    }];
    for cc in agent_store::list_cc(conn, ticket).await? {
        to.push(Mailbox {
            name: None,
            address: cc,
        });
    }
    Ok(CustomerSide {
        to,
        in_reply_to: ctx.last_customer_mail.clone(),
        references: ctx.references.clone(),
        ctx,
    })
}

/// An agent's attachments relayed to the customer, in all at most this many bytes...
const MAX_RELAYED_BYTES: usize = 10 * 1024 * 1024;
/// ...and at most this many files.
const MAX_RELAYED_FILES: usize = 20;

/// The agent's attachments that go to the customer with the text; each refused one is
/// named (with why) among the receipt's rejected lines.
fn relayable_attachments(
    raw: &[u8],
    refused: &mut Vec<(String, String)>,
) -> Vec<compose::OutAttachment> {
    let mut out = Vec::new();
    let mut total = 0usize;
    for a in crate::channels::email::parse::attachments_of(raw) {
        let name = format!("attachment {:?}", a.filename);
        let ct = a.content_type.to_ascii_lowercase();
        // A forwarded mail may be our notification: internal text never goes out.
        let internal = ct.starts_with("message/")
            || ((ct.starts_with("text/") || ct == "application/octet-stream")
                && crate::domain::has_agent_mail_marker(&String::from_utf8_lossy(&a.bytes)));
        if internal {
            refused.push((
                name,
                "not sent: an attached mail may hold internal text (our notification); \
                 send the file itself instead"
                    .to_string(),
            ));
        } else if out.len() >= MAX_RELAYED_FILES {
            refused.push((
                name,
                format!("not sent: at most {MAX_RELAYED_FILES} files go with one reply"),
            ));
        } else if total + a.bytes.len() > MAX_RELAYED_BYTES {
            refused.push((
                name,
                format!(
                    "not sent: {:.1} MB would pass the {} MB limit for a reply's attachments; \
                     share a link instead",
                    a.bytes.len() as f64 / 1_048_576.0,
                    MAX_RELAYED_BYTES / 1_048_576
                ),
            ));
        } else {
            total += a.bytes.len();
            out.push(compose::OutAttachment {
                filename: a.filename,
                content_type: a.content_type,
                bytes: a.bytes,
            });
        }
    }
    out
}

/// How long the same text on the same ticket counts as a double send.
const DUPLICATE_REPLY_SECS: i64 = 60;

/// The reply will answer the customer: an agent's text or macro, no `#note`, and no
/// `#assign` of its own.
fn answers_customer(identity: &Identity, reply: &ParsedReply) -> bool {
    use crate::commands::parse::Command;
    !identity.collaborator
        && !reply
            .commands
            .iter()
            .any(|(_, _, c)| matches!(c, Command::Note | Command::Assign(_)))
        && (!reply.body.trim().is_empty()
            || reply
                .commands
                .iter()
                .any(|(_, _, c)| matches!(c, Command::Macro(_))))
}

/// The checks passed: run the commands, relay the text, send the receipt.
#[allow(clippy::too_many_arguments)]
async fn act(
    pl: &Services,
    conn: &mut Conn,
    it: &Item<'_>,
    ticket: TicketId,
    identity: &Identity,
    claim: &Claim,
    read: ReadReply<'_>,
    released: Option<i64>,
    now: DateTime<Utc>,
) -> Result<i64> {
    let cfg = pl.config();
    let p = it.parsed;
    let now_s = db_time(now);
    let ReadReply {
        new_text,
        mut reply,
        elsewhere,
    } = read;
    let mut extra_rejected: Vec<(String, String)> = elsewhere;
    if identity.collaborator {
        for (_, line, c) in std::mem::take(&mut reply.commands) {
            if c == crate::commands::parse::Command::Note {
                continue;
            }
            extra_rejected.push((line, "collaborators can add notes only".to_string()));
        }
    }
    // Auto-assign: an agent who answers an unassigned ticket takes it, so the others stop
    // being notified about it. An explicit #assign, a #note or a collaborator does not.
    let mut auto_assigned = false;
    if cfg.auto_assign && answers_customer(identity, &reply) {
        let unassigned = agent_store::find_ticket_state(conn, ticket)
            .await?
            .is_some_and(|s| s.assignee.is_none() && s.merged_into.is_none());
        if unassigned {
            auto_assigned = true;
            reply.commands.push((
                0,
                "#assign me (automatic: you answered an unassigned ticket)".to_string(),
                crate::commands::parse::Command::Assign(crate::commands::parse::AssignTarget::Me),
            ));
        }
    }
    let agents: Vec<(String, String)> = cfg
        .agents
        .iter()
        .map(|a| (a.name.clone(), a.email.clone()))
        .collect();
    let templates = pl.templates();
    let macro_exists = |name: &str| templates.macro_names().iter().any(|m| m == name);
    let mut report = apply::apply(
        conn,
        &ApplyContext {
            ticket_id: ticket,
            agent: &identity.name,
            agents: &agents,
            message_row: None,
            now: &now_s,
            macro_exists: &macro_exists,
        },
        &reply.commands,
    )
    .await?;
    if auto_assigned {
        for a in report
            .applied
            .iter_mut()
            .filter(|a| a.starts_with("#assign me:"))
        {
            *a = a.replacen(
                "#assign me:",
                "#assign me (automatic: you answered an unassigned ticket):",
                1,
            );
        }
    }
    let note = report.note || identity.collaborator;
    let t = tickets::find_ticket(conn, ticket)
        .await?
        .context("The ticket vanished")?;

    // The text for the customer: the body, then any macros.
    let side = customer_side(conn, t.id).await?;
    let customer = side.to.first().cloned().unwrap_or(Mailbox {
        name: None,
        address: String::new(),
    });
    let mut text = reply.body.trim().to_string();
    for name in &report.macros {
        let data = compose::macro_data(cfg, t.id, &t.subject, &customer, &identity.display_name);
        match templates.render_macro(name, &data) {
            Ok(Some(m)) => {
                if !text.is_empty() {
                    text.push_str("\n\n");
                }
                text.push_str(m.trim());
            }
            Ok(None) => extra_rejected.push((format!("#macro {name}"), "no such macro".into())),
            Err(e) => extra_rejected.push((format!("#macro {name}"), format!("{e:#}"))),
        }
    }
    let mut relay = !text.is_empty() && !note && report.merged_into.is_none();
    // A double send (or a client's retry with a new Message-ID) of the same text within
    // a minute reaches the customer once; the receipt says so.
    let already_sent = if relay {
        messages::find_same_agent_reply_since(
            conn,
            ticket,
            &text,
            &db_time(now - chrono::Duration::seconds(DUPLICATE_REPLY_SECS)),
        )
        .await?
    } else {
        None
    };
    if already_sent.is_some() {
        relay = false;
    }
    let kind = if note {
        MessageKind::Note
    } else if relay {
        MessageKind::AgentReply
    } else {
        MessageKind::Command
    };
    let stored_text = if text.is_empty() { new_text } else { &text };
    let row = match released {
        // `#release`: the held message itself becomes what it now is.
        Some(row) => {
            held_store::mark_released(
                conn,
                row,
                kind.as_str(),
                stored_text,
                &identity.name,
                &format!("held, then released by {} at {now_s}", identity.name),
            )
            .await?;
            row
        }
        None => {
            store_inbound(
                conn,
                pl,
                it,
                Some(t.id),
                kind,
                if claim.via_token {
                    MatchReason::ReplyToken
                } else {
                    MatchReason::SubjectTag
                },
                stored_text,
                &now_s,
            )
            .await?
        }
    };
    messages::set_agent_columns(conn, row, Some(&identity.name), None).await?;
    if let Some(log) = report.command_log_id {
        agent_store::set_command_log_message(conn, log, row).await?;
    }
    tickets::set_updated_at(conn, t.id, &now_s).await?;

    let mut outcome = if note {
        ReplyOutcome::InternalNote
    } else if let Some(earlier) = already_sent {
        ReplyOutcome::AlreadySent(earlier)
    } else {
        ReplyOutcome::NothingSent
    };
    if relay && side.ctx.channel != Channel::Email {
        // The customer last wrote from a chat channel: the answer goes back there, as text.
        if !crate::channels::email::parse::attachments_of(it.raw).is_empty() {
            extra_rejected.push((
                "(your attachments)".into(),
                format!(
                    "the customer writes from the {} channel, which carries text only; they were not sent",
                    side.ctx.channel
                ),
            ));
        }
        match queue_on_channel(pl, conn, &t, &side.ctx, &text, &now_s).await {
            Ok(()) => outcome = ReplyOutcome::SentToCustomer,
            Err(e) => extra_rejected.push((
                "(your text)".into(),
                format!("it could not be sent to the customer: {e:#}"),
            )),
        }
    } else if relay {
        let attachments = relayable_attachments(it.raw, &mut extra_rejected);
        let composed = compose::customer_reply(
            cfg,
            templates,
            &compose::ReplyInput {
                ticket_id: t.id,
                ticket_subject: &t.subject,
                customer_token: &t.token,
                to: &side.to,
                agent_name: &identity.display_name,
                body_text: &text,
                in_reply_to: side.in_reply_to.as_deref(),
                references: &side.references,
                attachments: &attachments,
            },
        );
        match composed {
            Ok(c) => {
                queue(
                    pl,
                    conn,
                    t.id,
                    MessageKind::AgentReply,
                    &c,
                    &side.references,
                    &now_s,
                )
                .await?;
                outcome = ReplyOutcome::SentToCustomer;
            }
            Err(e) => extra_rejected.push((
                "(your text)".into(),
                format!("it could not be sent to the customer: {e:#}"),
            )),
        }
    }

    // The receipt: unless #quiet and all went well, whenever there were commands.
    let mut rejected = report.rejected.clone();
    rejected.extend(
        reply
            .rejected
            .iter()
            .map(|(_, line, why)| (line.clone(), why.clone())),
    );
    rejected.extend(extra_rejected);
    let ignored: Vec<String> = reply.ignored.iter().map(|(_, l)| l.clone()).collect();
    // An automatic #assign alone is no reason for a receipt.
    let anything = !rejected.is_empty()
        || !ignored.is_empty()
        || report.help
        || reply.commands.len() > usize::from(auto_assigned)
        || already_sent.is_some();
    let quiet_ok = report.quiet
        && rejected.is_empty()
        && ignored.is_empty()
        && !report.help
        && already_sent.is_none();
    if anything && !quiet_ok {
        let expires = now.timestamp()
            + i64::try_from(cfg.security.token_ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let tok = token::mint(
            pl.keyring(),
            t.id,
            token::identity_id(&identity.email),
            expires,
        )
        .context("Minting a reply token")?;
        let receipt = compose::receipt(
            cfg,
            templates,
            &compose::ReceiptInput {
                ticket_id: t.id,
                ticket_subject: &t.subject,
                agent: &Mailbox {
                    name: Some(identity.name.clone()),
                    address: identity.email.clone(),
                },
                reply_token: &tok,
                applied: &report.applied,
                rejected: &rejected,
                ignored: &ignored,
                outcome,
                help: report.help,
                in_reply_to: (!p.synthetic_id).then_some(p.message_id.as_str()),
            },
        );
        match receipt {
            Ok(c) => {
                let root = compose::thread_root_id(t.id, &cfg.message_id_domain);
                queue(pl, conn, t.id, MessageKind::Receipt, &c, &[root], &now_s).await?;
            }
            Err(e) => tracing::warn!("Ticket #{}: no receipt, it cannot be composed: {e:#}", t.id),
        }
    }
    tracing::info!(
        "Ticket #{}: {} from {} ({} applied, {} rejected)",
        t.id,
        kind.as_str(),
        identity.email,
        report.applied.len(),
        rejected.len()
    );
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
