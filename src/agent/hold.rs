//! Hold: a message that claimed to be an agent's and failed a check is kept on the ticket,
//! never executed nor relayed, and the real agent is told, at most once an hour (then in
//! a digest).

use super::*;

/// Keeps a message that failed the checks and tells the real agent.
pub(super) async fn hold(
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
pub(super) const HELD_NOTICE_INTERVAL_SECS: i64 = 3600;

/// Tells `agent` that message `row` was held as theirs, with every other message held as
/// theirs since their last notice listed below it. Returns false (and sends nothing) when
/// a notice went to them within [`HELD_NOTICE_INTERVAL_SECS`], or the message is no
/// longer held.
pub(super) async fn notify_held(
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
