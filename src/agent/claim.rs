//! Claim and verify: whether a message is an agent's at all, which ticket it is about (its
//! reply token, or `[#N]` on the commands address), which agent it claims to be, and
//! whether it proves it (the trusted server's Authentication-Results or local DKIM, via
//! `authres`; the token's HMAC, via `token`). Nothing here writes.

use super::*;

/// Reads the claim: token, commands address, identity and ticket.
pub(super) async fn claim(
    pl: &Services,
    conn: &mut Conn,
    p: &Inbound,
    now: DateTime<Utc>,
) -> Result<Claim> {
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
            // No ticket: agent-wide commands only (`#away`, `#back`); the rest are
            // refused there, saying to name the ticket with [#N].
            [] => {}
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

pub(super) fn agent_identity(a: &crate::config::AgentConfig) -> Identity {
    Identity {
        name: a.name.clone(),
        display_name: a.display_name.clone(),
        email: a.email.clone(),
        collaborator: false,
    }
}

/// The agent or collaborator of `ticket` whose identity id is `id`.
pub(super) async fn identity_for(
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
pub(super) async fn threaded_ticket(
    pl: &Services,
    conn: &mut Conn,
    p: &Inbound,
) -> Result<Option<TicketId>> {
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
pub(super) fn own_id_ticket(id: &str, domain: &str) -> Option<TicketId> {
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
pub(super) fn is_automatic(p: &Inbound) -> bool {
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
pub(super) fn from_fields(raw: &[u8]) -> usize {
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
pub(super) async fn check_sender(
    pl: &Services,
    raw: &[u8],
    p: &Inbound,
    c: &mut Claim,
    automatic: bool,
) {
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
pub(super) async fn authenticate(
    pl: &Services,
    raw: &[u8],
    from_domain: &str,
) -> Result<(), String> {
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
