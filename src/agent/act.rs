//! Act: what an authenticated agent's mail does. Its new text is read (cut at our marker
//! line), its commands planned and applied (`commands`), `#release` lets a held message
//! through, and the text goes to the customer once, on the channel they last wrote from
//! (mail with attachments, or a channel's payload), with a receipt when there were
//! commands.

use super::*;

/// Removes `#release` from the reply's commands: (the line, the message number if given).
pub(super) fn take_release(reply: &mut ParsedReply) -> Option<(String, Option<i64>)> {
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
pub(super) async fn release(
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
pub(super) struct ReadReply<'a> {
    pub(super) new_text: &'a str,
    pub(super) reply: ParsedReply,
    /// (line, why) for command lines outside the first text part.
    pub(super) elsewhere: Vec<(String, String)>,
}

/// Reads `p` for [`act`], or says why it must be held instead: when its intent to keep
/// something internal (`#note`) cannot be read safely, or when the text for the customer
/// still holds our own notification. When in doubt, hold: a held reply costs the agent a
/// second try, a relayed note can cost the customer's trust.
pub(super) fn read_reply(p: &Inbound, collaborator: bool) -> Result<ReadReply<'_>, String> {
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

/// Queues an answer (an agent's, or an automatic one: `kind`) on the channel the customer
/// last wrote from: an outbound message row and an outbox row whose payload the channel's
/// transport sends.
pub async fn queue_on_channel(
    pl: &Services,
    conn: &mut Conn,
    t: &tickets::TicketRow,
    ctx: &messages::ReplyContext,
    text: &str,
    kind: MessageKind,
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
            kind,
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
    let mut payload = serde_json::json!({
        "ticket_id": t.id,
        "conversation_id": conversation,
        "recipient": recipient,
        "text": body,
    });
    if matches!(ctx.channel, Channel::Telegram | Channel::Matrix)
        && let Some(x) = &ctx.external_id
    {
        // A chat answer quotes the message it answers (`reply_to_message_id`).
        if let Some(o) = payload.as_object_mut() {
            o.insert("reply_to".into(), serde_json::Value::from(x.as_str()));
        }
    }
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

/// What a chat answer that resolves its ticket ends with (`threading::rating` reads the
/// reply).
const CHAT_RATING_INVITE: &str =
    "\n\nHow did we do? Reply with just a number from 1 (poor) to 5 (great).";

/// Composes an answer by mail to the ticket's customer side (threaded under their latest
/// mail, with the ticket's reply address) and queues it. `Ok(Err)`: it could not be
/// composed (the caller says so in the receipt); `Err`: the database failed.
#[allow(clippy::too_many_arguments)]
pub(super) async fn queue_mail_answer(
    pl: &Services,
    conn: &mut Conn,
    t: &tickets::TicketRow,
    side: &CustomerSide,
    agent_name: &str,
    text: &str,
    attachments: &[compose::OutAttachment],
    rating: Option<serde_json::Value>,
    now: &str,
) -> Result<std::result::Result<(), anyhow::Error>> {
    let composed = compose::customer_reply(
        pl.config(),
        pl.templates(),
        &compose::ReplyInput {
            ticket_id: t.id,
            ticket_subject: &t.subject,
            customer_token: &t.token,
            to: &side.to,
            agent_name,
            body_text: text,
            in_reply_to: side.in_reply_to.as_deref(),
            references: &side.references,
            attachments,
            rating,
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
                now,
            )
            .await?;
            Ok(Ok(()))
        }
        Err(e) => Ok(Err(e)),
    }
}

/// The customer's side of a ticket: address, name, Cc'd addresses, the Message-ID to
/// answer and the References to carry.
pub(super) struct CustomerSide {
    pub(super) to: Vec<Mailbox>,
    pub(super) in_reply_to: Option<String>,
    pub(super) references: Vec<String>,
    /// Where the customer last wrote from: an answer goes back there.
    pub(super) ctx: messages::ReplyContext,
}

pub(super) async fn customer_side(conn: &mut Conn, ticket: TicketId) -> Result<CustomerSide> {
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
pub(super) const MAX_RELAYED_BYTES: usize = 10 * 1024 * 1024;

/// ...and at most this many files.
pub(super) const MAX_RELAYED_FILES: usize = 20;

/// The agent's attachments that go to the customer with the text; each refused one is
/// named (with why) among the receipt's rejected lines.
pub(super) fn relayable_attachments(
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
pub(super) const DUPLICATE_REPLY_SECS: i64 = 60;

/// The reply will answer the customer: an agent's text or macro, no `#note`, and no
/// `#assign` of its own.
pub(super) fn answers_customer(identity: &Identity, reply: &ParsedReply) -> bool {
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
pub(super) async fn act(
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
    let transfer = match reply.commands.iter().find_map(|(_, _, c)| match c {
        crate::commands::parse::Command::Transfer(team) => Some(team.clone()),
        _ => None,
    }) {
        Some(team) => Some(super::route::transfer_route(cfg, conn, &team, now).await?),
        None => None,
    };
    let mut report = apply::apply(
        conn,
        &ApplyContext {
            ticket_id: ticket,
            agent: &identity.name,
            agents: &agents,
            message_row: None,
            now: &now_s,
            macro_exists: &macro_exists,
            body: &reply.body,
            transfer,
            categories: &cfg.rules.categories(),
            link_since: &db_time(
                now - chrono::Duration::from_std(cfg.threading.link_window)
                    .unwrap_or_else(|_| chrono::Duration::days(7)),
            ),
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
    // `#kb` and `#wrong`: the knowledge base and the classifier, with the text as written.
    let kb_report =
        super::kb::run(pl, conn, Some(t.id), identity, &reply.commands, &text, now).await?;
    report.applied.extend(kb_report.applied);
    extra_rejected.extend(kb_report.rejected);
    // `#problem`: grouping reports, and sending a problem's answer to them.
    let problem_report =
        super::problem::run(pl, conn, t.id, identity, &reply.commands, &now_s).await?;
    report.applied.extend(problem_report.applied);
    extra_rejected.extend(problem_report.rejected);
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
    // Where the answer goes: the channel the customer last wrote from, or `#via`'s.
    let mut route = side.ctx.clone();
    if let Some(via) = report.via.filter(|v| *v != side.ctx.channel) {
        let refused = if via == Channel::Email {
            route.channel = Channel::Email;
            Channel::of_identity(&side.ctx.customer)
                .is_some()
                .then(|| "the customer has no email address yet; #link one first".to_string())
        } else {
            match messages::find_latest_on_channel(conn, t.id, via).await? {
                Some((account, conversation, external_id)) => {
                    route.channel = via;
                    route.account = account;
                    route.conversation = conversation;
                    route.external_id = external_id;
                    None
                }
                None => Some(format!(
                    "the customer never wrote from {via} on this ticket; nothing was sent"
                )),
            }
        };
        if let Some(why) = refused {
            extra_rejected.push((format!("#via {via}"), why));
            relay = false;
        }
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
    if relay && route.channel != Channel::Email {
        // The customer last wrote from a chat channel: the answer goes back there, as text.
        if !crate::channels::email::parse::attachments_of(it.raw).is_empty() {
            extra_rejected.push((
                "(your attachments)".into(),
                format!(
                    "the customer writes from the {} channel, which carries text only; they were not sent",
                    route.channel
                ),
            ));
        }
        let mut text = text.clone();
        if t.status == crate::domain::Status::Resolved {
            text.push_str(CHAT_RATING_INVITE);
        }
        match queue_on_channel(pl, conn, &t, &route, &text, MessageKind::AgentReply, &now_s).await {
            Ok(()) => outcome = ReplyOutcome::SentToCustomer,
            Err(e) => extra_rejected.push((
                "(your text)".into(),
                format!("it could not be sent to the customer: {e:#}"),
            )),
        }
    } else if relay {
        let attachments = relayable_attachments(it.raw, &mut extra_rejected);
        // An answer that resolves the ticket invites a rating.
        let rating = if t.status == crate::domain::Status::Resolved {
            let key = crate::store::analytics::rating_key(conn).await?;
            let base = cfg.http.as_ref().and_then(|h| h.public_url.as_deref());
            Some(crate::analytics::rating::invitation(base, &key, t.id))
        } else {
            None
        };
        match queue_mail_answer(
            pl,
            conn,
            &t,
            &side,
            &identity.display_name,
            &text,
            &attachments,
            rating,
            &now_s,
        )
        .await?
        {
            Ok(()) => outcome = ReplyOutcome::SentToCustomer,
            Err(e) => extra_rejected.push((
                "(your text)".into(),
                format!("it could not be sent to the customer: {e:#}"),
            )),
        }
    }

    // An answer on a problem ticket may go to its reports too: the receipt says how.
    let mut problem_hint = false;
    if matches!(outcome, ReplyOutcome::SentToCustomer) {
        crate::store::triage::record_first_human(conn, t.id, &now_s).await?;
        if let Some(line) = super::problem::send_hint(conn, t.id, row).await? {
            report.applied.push(line);
            problem_hint = true;
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
        || already_sent.is_some()
        || problem_hint;
    let quiet_ok = report.quiet
        && rejected.is_empty()
        && ignored.is_empty()
        && !report.help
        && already_sent.is_none()
        && !problem_hint;
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
