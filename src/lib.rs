//! # postdesk: a mail-first helpdesk daemon
//!
//! The path of one message through the rooms, and which module owns each step. Everything
//! in a message is written by strangers; `SECURITY.md` says what is trusted and why.
//!
//! 1. **A channel brings it in** (`channels`). Each channel is a folder that speaks one
//!    protocol, keeps its own durable cursor, and hands [`domain::inbound::Inbound`]
//!    messages (channel, account, external id, conversation, sender, time, subject, text,
//!    attachments, threading hints, loop signals) and their raw bytes to intake.
//!    - `channels::email`: one task per mailbox folder speaks IMAP (`imap`, IDLE), compares
//!      UIDVALIDITY (RFC 9051 §2.3.1.1), fetches every UID above the stored watermark with
//!      `BODY.PEEK[]`, and records the UID being decided (`inflight`) so that a message that
//!      kills the process twice, the second time alone, is quarantined. Maildir and mbox
//!      (`import`) feed the same intake. `parse` turns bytes into an `Inbound`: normalised
//!      Message-ID, threading headers, addresses (`domain::address`), decoded subject, text
//!      (HTML rewritten and rendered within bounds by `html`, `format=flowed` rejoined,
//!      unlabelled 8-bit decoded by `charset`), loop and bounce signals (`loops`, RFC
//!      3834). Parsing never fails; the raw bytes are always kept.
//!    - `channels::json`: relays (SMS, WhatsApp, web forms...) push signed JSON to the HTTP
//!      listener (`http`: account, size, HMAC signature, replay, then `wire` parsing, each
//!      refusal in words with its field) or are polled (`source::feed_loop`, the feed's
//!      cursor committed with the messages it brought). A sender is an identity of its own,
//!      `json:<account>:<sender>`; the external id makes retries copies.
//!    - `channels::telegram`: one `getUpdates` long poll per bot (`source`); a page's
//!      messages (documents and photos fetched with `getFile`) and the next offset commit
//!      together, and only the following poll confirms the page to Telegram. The first
//!      poll of a process sends no offset, so a cursor ahead of the server's loses
//!      nothing. A refused token disables the bot and mails the admins.
//!    - `channels::matrix`: one `/sync` long poll per account (`source`): invitations
//!      joined, limited timelines backfilled, images and files downloaded through the
//!      authenticated media API, the sync's messages and its `next_batch` committed
//!      together; the first run starts from now.
//!    - `channels::chat` is what the chat channels share: the channel-neutral
//!      `ChatMessage`, its identity and Message-ID, and `ingest` through intake. A reply
//!      to one of our sent chat messages (their ids are recorded in `chat_sent` when the
//!      platform accepts them) joins that message's ticket before the conversation's.
//!      `channels::link` follows the event log for `/link ann@example.com` in a chat: it
//!      mails a one-time code to the address, and the code sent back in the same chat
//!      links the identity to that customer; a Telegram contact card of the sender's own
//!      (its number verified by Telegram) links it to the customer with that phone.
//! 2. **Intake decides it** (`intake`). A batch from any source is one unit of work
//!    (`intake::unit`): a few set-based queries load a [`intake::matching::Snapshot`] of
//!    everything the batch can touch, each message is decided in memory in arrival order,
//!    and the result is a few multi-row writes. Which ticket a message belongs to, and why,
//!    is the pure function `Snapshot::find_ticket` (`intake::matching`): for chat channels
//!    a reply to one of our sent messages, then the conversation; for mail the reply
//!    token, References/In-Reply-To in either direction *from a sender who takes part in
//!    the ticket*, `[#N]` from a participant, same subject from the same customer within a
//!    window. A message reaching a ticket only through headers is held;
//!    tickets of different customers are linked, never merged; the reason is recorded on
//!    the message. Subjects and courtesy replies are read by the pure `threading`.
//!    **Triage** (`intake::triage`) then reads each customer message with the pure
//!    `rules`: language, sentiment and the forced-human list (`rules::forced`), the
//!    `[[rule]]`s (category, tags, priority, team or agent, SLA policy, macros), routing by
//!    the team's strategy among available agents (`rules::routing`), and the SLA policy
//!    (`rules::sla`). A forced-human match silences every automatic answer for good and
//!    raises a red alert mailed to the on-call list; all of it commits with the message.
//!    **The answer bot** (`intake::bot`, deciding with the pure `kb::bot`) then looks at a
//!    new email ticket that no forced-human rule or `no_bot` holds and that is not
//!    automated, bulk or an agent's: it searches the knowledge base's index (`kb::index`,
//!    tantivy with jieba, a cache of the `kb_articles` table kept current by
//!    `kb::sync`'s event follower) for published articles in the customer's language. A
//!    confident answer (score and margin over the second, both configured) is composed
//!    from the article through a template and the ticket waits on the customer; anything
//!    else, and a later "人工"/"human"/"did not help"/new question, hands the ticket to a
//!    person whose notification carries the summary (asked, answered, score, category,
//!    language, sentiment, history). Beside the rules, `kb::classifier` (trained by agents'
//!    `#wrong`) predicts each new ticket's category, used where no rule set one. Each new
//!    ticket's opening message is also cut into terms (`kb::similar`, kept in
//!    `ticket_terms`), and its notification lists the open tickets of the same category
//!    that score as similar, with their channels and latest answers.
//! 3. **Agents' mail** (`agent`) is claimed by its token (`agent::token`), verified
//!    (`agent::authres`: the trusted server's Authentication-Results, or local DKIM), read
//!    (`channels::email::quote` cuts at our marker line; `commands::parse`), then acted on
//!    (`commands::apply`; an unassigned ticket goes to the agent who answers; the text goes
//!    to the customer once, on the channel they last wrote from) or held with a capped
//!    notice. `agent::kb` runs `#kb` (propose the answer as a draft, admins approve or
//!    reject, request, search) and `#wrong` (a correction that trains `kb::classifier`).
//!    `#link <email>` links a chat sender's identity to that customer (profiles and
//!    history become one; the chat ticket joins their open ticket) and `#via <channel>`
//!    sends one answer on another channel than the customer's latest. `agent::problem`
//!    runs `#problem N` (this ticket is a report of problem N; a new ticket's notification
//!    lists similar open tickets, same category and text similar by `kb::similar`, with
//!    that line ready) and `#problem send M`, the receipt's confirmation line that sends a
//!    problem's answer M to every report on its own channel, once each.
//!    `#profile note|tier|lang` changes the ticket's customer (`store::profiles`; the notes
//!    and a tier's dedicated-service-plan prompt, `profile::plan_prompt`, show in every
//!    later notification) and `#feedback` records a pain point, themed by the pure
//!    `profile::feedback_theme`, for the admins' monthly report.
//! 4. **The store commits it** (`store`, the only module that names the database driver).
//!    The raw bytes, the messages, the ticket changes, the outbox rows they cause
//!    (acknowledgements and agents' mail composed by `channels::email::compose` from
//!    `templates/`, answers for other channels as JSON payloads), the source's cursor (UID
//!    watermark, feed cursor) and an **event** per change (`store::events`) commit in one
//!    transaction. Row ids come from `store::ids`. A failing batch is replayed message by
//!    message under savepoints; a bad message costs only itself. Server-side actions
//!    (flag, move) run only after COMMIT, from a durable queue.
//! 5. **Events are followed** (`events`): workers read the event log from their own durable
//!    cursor, moved in the transaction of their handling (`postdesk events` lists it).
//!    `analytics::follower` recomputes each touched ticket's figures (`ticket_facts`:
//!    response and resolution times in business seconds, reopenings, SLA breaches, the
//!    bot's part, the rating) from its timeline with the pure `analytics::facts`, and the
//!    daily rollups of every day the batch touched (`stats_daily`, `stats_arrivals`);
//!    `postdesk stats` and `export` sum a period per team, agent, category, channel or
//!    tier, whole days from the rollups and the ends from the facts (`analytics::report`,
//!    `analytics::figures`). The clock's `watch` sends leads the weekly digest
//!    (`analytics::digest`: text, HTML and PNG charts drawn by `analytics::charts`).
//!    A customer's reply to a resolved ticket that begins with 1-5 is a rating
//!    (`threading::rating`; the ticket stays resolved), as is the button behind a signed
//!    `/rate/` link (`web::rate`); `web::metrics` serves Prometheus' `/metrics`, and
//!    `web::dashboard` the agents' dashboard (`/login` with an argon2 password set by
//!    `postdesk agent password` or a one-time `postdesk agent link`, a `SameSite=Strict`
//!    session cookie, tiles, charts, agent table and red alerts refreshed through
//!    server-sent events when the analytics follower moves on).
//! 6. **Outbound sends** (`outbound::worker`): each outbox row names its channel and the
//!    worker dispatches it to that channel's transport: SMTP with lettre for email (4xx
//!    and timeouts retried with backoff, 5xx final, the same Message-ID on every attempt), a
//!    signed POST for a JSON account with a `deliver_url` (the outbox id as idempotency
//!    key, 5xx retried, 4xx final); a pulling relay reads and acknowledges its rows over
//!    HTTP instead; `sendMessage` for Telegram (`channels::telegram::send`: a reply to the
//!    customer's message, in parts with their progress recorded, paced per bot and per
//!    chat, `retry_after` honoured, and a send that got no answer parked for the agent,
//!    never resent blindly); `m.room.message` for Matrix (`channels::matrix::send`, the
//!    outbox id as transaction id, so a retry is the same event). A global rate limit
//!    (governor) paces mail.
//!
//! Triage is the pure `rules`: the text's signals (language, sentiment, forced-human
//! topics such as account takeover or self-harm) and the configured `[[rule]]`s give a
//! message its category, priority, team, SLA and whether a person must see it first.
//!
//! `watch` runs from the clock: SLA warnings and breaches (business calendars, paused
//! while pending), overdue red-alert reports escalated to the lead, daily digests, and the
//! admins' monthly report (`profile::report`: feedback by theme, KB requests, the bot's
//! corrections, forced-human matches); each notice is claimed once in the database, so
//! restarts never repeat one.
//!
//! `daemon` supervises the long-running loops (folders, feeds, the HTTP listener with
//! `/healthz`, the outbox, housekeeping), holds the single-instance lock and handles
//! SIGTERM; `cli` holds one file per subcommand (text views escape terminal controls);
//! `config` reads the TOML file (every problem at once, in words) and validates it, secrets
//! included. `domain` holds the plain types every room shares and depends on none of them.
//! The benchmark corpus lives in `benches/`, outside the library.

pub mod agent;
pub mod analytics;
pub mod channels;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod domain;
pub mod events;
pub mod intake;
pub mod kb;
pub mod lock;
pub mod outbound;
pub mod profile;
pub mod rules;
pub mod store;
pub mod threading;
pub mod watch;
pub mod web;

/// Peak resident memory of this process in KiB (VmHWM), where the platform tells it.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
