//! Applies the commands of one authenticated agent reply to its ticket, and records what
//! changed so that `#undo` can revert it.
//!
//! Owns the meaning of each command against the database; the text rules are
//! `commands::parse`'s, the SQL is `store::agent`'s and `store::tickets`'s. It does not
//! authenticate (the caller passes the authenticated agent), does not begin or commit a
//! transaction (the caller runs [`apply`] inside its own, with the message it stores) and
//! sends no mail (the receipt is built by the caller from the [`ApplyReport`]).
//!
//! # Decisions
//!
//! - **Each command stands alone.** Valid commands are applied, invalid ones are rejected
//!   one by one with a reason; a rejection never undoes the rest of the reply. A command
//!   that would change nothing (`#status pending` on a pending ticket, `#invite` of a
//!   collaborator) is applied with a line saying so.
//! - **Order.** `#undo` runs first, wherever it stands; then the other commands in line
//!   order; `#merge` last, so everything else lands on this ticket before it moves.
//! - **`#assign`**: `me` is the acting agent, `none` unassigns, anything else must be a
//!   configured agent's name, or else its address, compared case-insensitively ("no agent
//!   named X" otherwise). The configured spelling of the name is stored.
//! - **`#tag`**: adding a tag that is there or removing one that is not is fine and said so.
//! - **Internal and customer-side addresses never mix on a ticket**, because collaborators
//!   see internal notes and copied addresses get replies meant for the customer:
//!   - `#invite` refuses the customer, copied addresses (`ticket_cc`) and any participant
//!     whose role is not `agent` or `collaborator` (someone the customer copied). It adds
//!     to `ticket_collaborators` only, not to `participants`, so the threading never takes
//!     a collaborator for a customer. Inviting a collaborator again: "already invited".
//!   - `#cc` refuses configured agent addresses and collaborators. It adds to `ticket_cc`
//!     and, if the address is not a participant yet, to `participants` with role `cc`.
//!     The customer's own address and an address already copied: nothing to do, said so.
//! - **`#merge N`** merges *this* ticket into N with `store::tickets::merge_ticket`
//!   (messages, participants and tags move, this ticket is closed and its token and
//!   number lead to N); collaborators and copied addresses move too. If N was itself
//!   merged, the merge follows it to the ticket N now lives in (as the number `#N` does
//!   everywhere else) and the receipt says so. Rejected: N does not exist, N is this
//!   ticket or was merged into it, or the ticket N leads to is closed (the conversation
//!   would land where customer replies start new tickets; reopen it first). Assignee,
//!   status and priority given in the same reply stay with this ticket, which the merge
//!   then closes.
//! - **`#macro`** is checked with the caller's `macro_exists`; valid names are returned in
//!   [`ApplyReport::macros`] for the caller to insert. `#note`, `#quiet` and `#help` set
//!   flags in the report. None of them changes the ticket.
//! - **A ticket already merged away** (the caller should have followed the merge) takes
//!   no state-changing command: each is rejected, naming the ticket to write to.
//! - **Command log.** Everything one reply changed is one `command_log` row holding, per
//!   field, only what changed: assignee/status/priority as (before, after), tags added
//!   and removed, cc, participant and collaborator rows added, and the merge target. Its
//!   `commands` are the changing commands written out canonically (`#tag billing -spam`).
//!   A reply that changed nothing (flags, macros, no-ops, rejections only) writes no row.
//! - **`#undo`** reverts the acting agent's newest set on this ticket that is not undone
//!   yet, and marks it undone; a second `#undo` reverts the set before that, and so on.
//!   The undo itself writes no log row (there is no redo). It reverts only what the set
//!   changed: a field is put back only while it still holds the value the set gave it
//!   (someone else's later change wins and the receipt says so); tags are reverted as a
//!   difference (tags others added since stay); added cc/participant/collaborator rows
//!   are removed. A set that merged, or any set on a ticket since merged into this one,
//!   cannot be undone: the merge is a barrier, and `#undo` says so rather than reach past
//!   it. No set: "nothing to undo". If the reply has other commands, they are applied
//!   after the undo as a new set, with its own log row.
//! - `tickets.updated_at` moves to `now` when anything changed.

use crate::commands::parse::{AssignTarget, Command};
use crate::domain::address::normalize_address;
use crate::domain::{Status, TicketId};
use crate::store::Conn as SqliteConnection;
use crate::store::agent::{self, Change, NewCommandLog, TicketState, UndoState};
use crate::store::{Result, StoreError, tickets};

/// Who acts on which ticket, and what the caller knows that the database does not.
pub struct ApplyContext<'a> {
    /// The ticket the reply was routed to.
    pub ticket_id: TicketId,
    /// The configured name of the authenticated agent who sent the reply.
    pub agent: &'a str,
    /// Every configured agent: (name, address).
    pub agents: &'a [(String, String)],
    /// The stored row of the agent's message, if it was stored.
    pub message_row: Option<i64>,
    /// The current time as stored in the database (RFC 3339, UTC).
    pub now: &'a str,
    /// Whether a macro template of this name exists.
    pub macro_exists: &'a (dyn Fn(&str) -> bool + Sync),
}

/// What happened to each command, for the receipt and for the caller's next steps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// One line per applied command: `#status pending: status is now pending`.
    pub applied: Vec<String>,
    /// (the line as written, why it was not applied).
    pub rejected: Vec<(String, String)>,
    /// `#note`: the reply is internal; nothing reaches the customer.
    pub note: bool,
    /// `#quiet`: no receipt unless something was rejected.
    pub quiet: bool,
    /// `#help`: send the cheat sheet.
    pub help: bool,
    /// Macros to insert, in order, all known to exist.
    pub macros: Vec<String>,
    /// The ticket this one was merged into.
    pub merged_into: Option<TicketId>,
    /// The `command_log` row of this reply's changes, if it changed anything.
    pub command_log_id: Option<i64>,
}

/// The result of one command.
enum Outcome {
    /// Applied and changed the ticket.
    Changed(String),
    /// Applied, nothing to change.
    Unchanged(String),
    Rejected(String),
}

/// Applies one reply's commands (in the form `commands::parse::ParsedReply::commands`
/// gives them) to `ctx.ticket_id`, by the rules in the module documentation. Problems with
/// a command are rejections in the report; an `Err` is a database failure, after which
/// the caller rolls back.
pub async fn apply(
    conn: &mut SqliteConnection,
    ctx: &ApplyContext<'_>,
    commands: &[(usize, String, Command)],
) -> Result<ApplyReport> {
    let mut report = ApplyReport::default();
    let mut state = get_state(conn, ctx.ticket_id).await?;

    if let Some((_, line, _)) = commands.iter().find(|(_, _, c)| *c == Command::Undo) {
        let outcome = match state.merged_into {
            Some(into) => Outcome::Rejected(merged_away(state.id, into)),
            None => undo_last(conn, ctx, &state).await?,
        };
        push(&mut report, "#undo", line, outcome);
        state = get_state(conn, ctx.ticket_id).await?;
    }

    let mut undo = UndoState::default();
    let mut changed: Vec<String> = Vec::new();
    let mut merge: Option<(&String, TicketId)> = None;
    for (_, line, command) in commands {
        let text = command_text(command);
        let outcome = match command {
            Command::Undo => continue,
            Command::Merge(n) => {
                // The parser lets one #merge through; keep the first all the same.
                if merge.is_none() {
                    merge = Some((line, *n));
                }
                continue;
            }
            Command::Note => {
                report.note = true;
                Outcome::Unchanged(
                    "this reply is an internal note; the customer does not get it".into(),
                )
            }
            Command::Quiet => {
                report.quiet = true;
                Outcome::Unchanged("no receipt unless something fails".into())
            }
            Command::Help => {
                report.help = true;
                Outcome::Unchanged("the command list is on its way".into())
            }
            // Done by the caller, which owns the held message.
            Command::Release(_) => continue,
            Command::Macro(name) => {
                if (ctx.macro_exists)(name) {
                    report.macros.push(name.clone());
                    Outcome::Unchanged(format!("macro {name} inserted"))
                } else {
                    Outcome::Rejected(format!("no macro named {name}"))
                }
            }
            Command::Assign(_)
            | Command::Status(_)
            | Command::Priority(_)
            | Command::Tag { .. }
            | Command::Invite(_)
            | Command::Cc(_)
                if let Some(into) = state.merged_into =>
            {
                Outcome::Rejected(merged_away(state.id, into))
            }
            Command::Assign(target) => assign(conn, ctx, &mut state, &mut undo, target).await?,
            Command::Status(s) => {
                if state.status == *s {
                    Outcome::Unchanged(format!("status was already {s}"))
                } else {
                    tickets::set_status(conn, state.id, *s, ctx.now).await?;
                    record(&mut undo.status, state.status, *s);
                    state.status = *s;
                    Outcome::Changed(format!("status is now {s}"))
                }
            }
            Command::Priority(p) => {
                if state.priority == *p {
                    Outcome::Unchanged(format!("priority was already {p}"))
                } else {
                    agent::set_priority(conn, state.id, *p, ctx.now).await?;
                    record(&mut undo.priority, state.priority, *p);
                    state.priority = *p;
                    Outcome::Changed(format!("priority is now {p}"))
                }
            }
            Command::Tag { add, remove } => tag(conn, state.id, &mut undo, add, remove).await?,
            Command::Invite(email) => invite(conn, ctx, &state, &mut undo, email).await?,
            Command::Cc(email) => cc(conn, ctx, &state, &mut undo, email).await?,
        };
        if matches!(outcome, Outcome::Changed(_)) {
            changed.push(text.clone());
        }
        push(&mut report, &text, line, outcome);
    }

    if let Some((line, n)) = merge {
        let text = format!("#merge {n}");
        let outcome = match state.merged_into {
            Some(into) => Outcome::Rejected(merged_away(state.id, into)),
            None => merge_into(conn, ctx, &state, &mut undo, n).await?,
        };
        if let Outcome::Changed(_) = outcome {
            changed.push(text.clone());
            report.merged_into = undo.merged_into;
        }
        push(&mut report, &text, line, outcome);
    }

    if !undo.is_empty() {
        tickets::touch_ticket(conn, state.id, ctx.now).await?;
        let id = agent::insert_command_log(
            conn,
            &NewCommandLog {
                ticket_id: state.id,
                agent: ctx.agent,
                message_row: ctx.message_row,
                commands: &changed,
                undo: &undo,
                now: ctx.now,
            },
        )
        .await?;
        report.command_log_id = Some(id);
    }
    Ok(report)
}

async fn get_state(conn: &mut SqliteConnection, id: TicketId) -> Result<TicketState> {
    agent::find_ticket_state(conn, id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("ticket {id}")))
}

fn push(report: &mut ApplyReport, text: &str, line: &str, outcome: Outcome) {
    match outcome {
        Outcome::Changed(what) | Outcome::Unchanged(what) => {
            report.applied.push(format!("{text}: {what}"));
        }
        Outcome::Rejected(why) => report.rejected.push((line.to_string(), why)),
    }
}

fn merged_away(id: TicketId, into: TicketId) -> String {
    format!("ticket #{id} was merged into #{into}; send commands to #{into}")
}

/// Notes a field change, keeping the earliest `before` if the field changed twice.
fn record<T: Clone>(slot: &mut Option<Change<T>>, before: T, after: T) {
    let before = slot.take().map_or(before, |c| c.before);
    *slot = Some(Change { before, after });
}

/// The command written out canonically, as the receipt and the command log show it.
fn command_text(command: &Command) -> String {
    match command {
        Command::Assign(AssignTarget::Agent(name)) => format!("#assign {name}"),
        Command::Assign(AssignTarget::Me) => "#assign me".into(),
        Command::Assign(AssignTarget::Nobody) => "#assign none".into(),
        Command::Status(s) => format!("#status {s}"),
        Command::Priority(p) => format!("#priority {p}"),
        Command::Tag { add, remove } => {
            let mut out = String::from("#tag");
            for t in add {
                out.push(' ');
                out.push_str(t);
            }
            for t in remove {
                out.push_str(" -");
                out.push_str(t);
            }
            out
        }
        Command::Invite(email) => format!("#invite {email}"),
        Command::Cc(email) => format!("#cc {email}"),
        Command::Merge(n) => format!("#merge {n}"),
        Command::Macro(name) => format!("#macro {name}"),
        Command::Release(Some(n)) => format!("#release {n}"),
        Command::Note | Command::Undo | Command::Help | Command::Quiet | Command::Release(None) => {
            format!("#{}", command.name())
        }
    }
}

async fn assign(
    conn: &mut SqliteConnection,
    ctx: &ApplyContext<'_>,
    state: &mut TicketState,
    undo: &mut UndoState,
    target: &AssignTarget,
) -> Result<Outcome> {
    let assignee = match target {
        AssignTarget::Me => Some(ctx.agent.to_string()),
        AssignTarget::Nobody => None,
        AssignTarget::Agent(typed) => {
            let wanted = typed.to_lowercase();
            let found = ctx
                .agents
                .iter()
                .find(|(name, _)| name.to_lowercase() == wanted)
                .or_else(|| {
                    ctx.agents
                        .iter()
                        .find(|(_, email)| email.to_lowercase() == wanted)
                });
            match found {
                Some((name, _)) => Some(name.clone()),
                None => return Ok(Outcome::Rejected(format!("no agent named {typed}"))),
            }
        }
    };
    if state.assignee == assignee {
        return Ok(Outcome::Unchanged(match &assignee {
            Some(name) => format!("already assigned to {name}"),
            None => "already unassigned".into(),
        }));
    }
    agent::set_assignee(conn, state.id, assignee.as_deref(), ctx.now).await?;
    record(&mut undo.assignee, state.assignee.clone(), assignee.clone());
    let what = match &assignee {
        Some(name) => format!("assigned to {name}"),
        None => "unassigned".into(),
    };
    state.assignee = assignee;
    Ok(Outcome::Changed(what))
}

/// Records that `t` changed one way for `#undo`, unless an earlier line of the same reply
/// changed it the other way: then the two cancel out.
fn record_change(this_way: &mut Vec<String>, other_way: &mut Vec<String>, t: &str) {
    if let Some(i) = other_way.iter().position(|x| x == t) {
        other_way.remove(i);
    } else {
        this_way.push(t.to_string());
    }
}

async fn tag(
    conn: &mut SqliteConnection,
    ticket: TicketId,
    undo: &mut UndoState,
    add: &[String],
    remove: &[String],
) -> Result<Outcome> {
    let mut parts = Vec::new();
    let mut any = false;
    for t in add {
        if agent::add_tag(conn, ticket, t).await? {
            record_change(&mut undo.tags_added, &mut undo.tags_removed, t);
            any = true;
            parts.push(format!("added {t}"));
        } else {
            parts.push(format!("{t} was already set"));
        }
    }
    for t in remove {
        if agent::remove_tag(conn, ticket, t).await? {
            record_change(&mut undo.tags_removed, &mut undo.tags_added, t);
            any = true;
            parts.push(format!("removed {t}"));
        } else {
            parts.push(format!("{t} was not set"));
        }
    }
    let what = parts.join("; ");
    Ok(if any {
        Outcome::Changed(what)
    } else {
        Outcome::Unchanged(what)
    })
}

/// Participant roles an internal collaborator may also have.
const INTERNAL_ROLES: &[&str] = &["agent", "collaborator"];

async fn invite(
    conn: &mut SqliteConnection,
    ctx: &ApplyContext<'_>,
    state: &TicketState,
    undo: &mut UndoState,
    email: &str,
) -> Result<Outcome> {
    let email = normalize_address(email);
    // Collaborators read internal notes: no customer-side address may become one.
    if email == normalize_address(&state.customer_email) {
        return Ok(Outcome::Rejected(format!(
            "{email} is this ticket's customer; collaborators see internal notes"
        )));
    }
    if agent::is_cc(conn, state.id, &email).await? {
        return Ok(Outcome::Rejected(format!(
            "{email} is copied on this ticket as a customer address; collaborators see internal notes"
        )));
    }
    if let Some(role) = agent::find_participant_role(conn, state.id, &email).await?
        && !INTERNAL_ROLES.contains(&role.as_str())
    {
        return Ok(Outcome::Rejected(format!(
            "{email} takes part in this ticket on the customer's side ({role}); collaborators see internal notes"
        )));
    }
    if agent::is_collaborator(conn, state.id, &email).await? {
        return Ok(Outcome::Unchanged(format!("{email} was already invited")));
    }
    agent::add_collaborator(conn, state.id, &email, ctx.agent, ctx.now).await?;
    undo.invited.push(email.clone());
    Ok(Outcome::Changed(format!(
        "{email} invited as a collaborator"
    )))
}

async fn cc(
    conn: &mut SqliteConnection,
    ctx: &ApplyContext<'_>,
    state: &TicketState,
    undo: &mut UndoState,
    email: &str,
) -> Result<Outcome> {
    let email = normalize_address(email);
    if let Some((name, _)) = ctx
        .agents
        .iter()
        .find(|(_, a)| normalize_address(a) == email)
    {
        return Ok(Outcome::Rejected(format!(
            "{email} is agent {name}'s address; use #invite for colleagues"
        )));
    }
    if agent::is_collaborator(conn, state.id, &email).await? {
        return Ok(Outcome::Rejected(format!(
            "{email} is an internal collaborator on this ticket; it cannot also be copied as a customer address"
        )));
    }
    if email == normalize_address(&state.customer_email) {
        return Ok(Outcome::Unchanged(format!(
            "{email} is this ticket's customer and gets every reply already"
        )));
    }
    if agent::is_cc(conn, state.id, &email).await? {
        return Ok(Outcome::Unchanged(format!("{email} was already copied")));
    }
    agent::add_cc(conn, state.id, &email, ctx.agent, ctx.now).await?;
    undo.cc_added.push(email.clone());
    if agent::find_participant_role(conn, state.id, &email)
        .await?
        .is_none()
    {
        tickets::add_participant(conn, state.id, &email, "cc").await?;
        undo.participants_added.push(email.clone());
    }
    Ok(Outcome::Changed(format!(
        "{email} is now copied on replies to the customer"
    )))
}

async fn merge_into(
    conn: &mut SqliteConnection,
    ctx: &ApplyContext<'_>,
    state: &TicketState,
    undo: &mut UndoState,
    n: TicketId,
) -> Result<Outcome> {
    if n == state.id {
        return Ok(Outcome::Rejected(
            "a ticket cannot be merged into itself".into(),
        ));
    }
    // find_ticket follows merges: #n may now live on in another ticket.
    let Some(target) = tickets::find_ticket(conn, n).await? else {
        return Ok(Outcome::Rejected(format!("no ticket #{n}")));
    };
    if target.id == state.id {
        return Ok(Outcome::Rejected(format!(
            "ticket #{n} was merged into this ticket already"
        )));
    }
    let via = if target.id == n {
        String::new()
    } else {
        format!(" (#{n} had been merged into #{})", target.id)
    };
    if target.status == Status::Closed {
        return Ok(Outcome::Rejected(format!(
            "ticket #{}{via} is closed; reopen it before merging into it",
            target.id
        )));
    }
    agent::move_people(conn, target.id, state.id).await?;
    tickets::merge_ticket(conn, target.id, state.id, ctx.now).await?;
    undo.merged_into = Some(target.id);
    Ok(Outcome::Changed(format!(
        "merged into #{}{via}; this ticket is closed and its messages, participants, tags, cc and collaborators moved there",
        target.id
    )))
}

/// Reverts the agent's newest undoable set on this ticket.
async fn undo_last(
    conn: &mut SqliteConnection,
    ctx: &ApplyContext<'_>,
    state: &TicketState,
) -> Result<Outcome> {
    let Some(entry) = agent::find_last_undoable(conn, state.id, ctx.agent).await? else {
        return Ok(Outcome::Rejected("nothing to undo".into()));
    };
    let what = if entry.commands.is_empty() {
        format!("your commands of {}", entry.created_at)
    } else {
        format!("{} (of {})", entry.commands.join(", "), entry.created_at)
    };
    let Some(set) = entry.undo else {
        return Ok(Outcome::Rejected(format!(
            "{what} cannot be undone: the record of the state before is unreadable"
        )));
    };
    if let Some(into) = set.merged_into {
        return Ok(Outcome::Rejected(format!(
            "{what} merged ticket #{} into #{into}; a merge cannot be undone",
            entry.ticket_id
        )));
    }
    if entry.ticket_id != state.id {
        return Ok(Outcome::Rejected(format!(
            "{what} applied to ticket #{}, which has since been merged into this one; \
             commands before a merge cannot be undone",
            entry.ticket_id
        )));
    }

    // Put a field back only while it still holds what the set gave it.
    let mut kept = Vec::new();
    if let Some(c) = &set.assignee {
        if state.assignee == c.after {
            agent::set_assignee(conn, state.id, c.before.as_deref(), ctx.now).await?;
        } else {
            let now = state.assignee.as_deref().unwrap_or("nobody");
            kept.push(format!("assignee stays {now} (changed since)"));
        }
    }
    if let Some(c) = &set.status {
        if state.status == c.after {
            tickets::set_status(conn, state.id, c.before, ctx.now).await?;
        } else {
            kept.push(format!("status stays {} (changed since)", state.status));
        }
    }
    if let Some(c) = &set.priority {
        if state.priority == c.after {
            agent::set_priority(conn, state.id, c.before, ctx.now).await?;
        } else {
            kept.push(format!("priority stays {} (changed since)", state.priority));
        }
    }
    for t in &set.tags_added {
        agent::remove_tag(conn, state.id, t).await?;
    }
    for t in &set.tags_removed {
        agent::add_tag(conn, state.id, t).await?;
    }
    for e in &set.cc_added {
        agent::remove_cc(conn, state.id, e).await?;
    }
    for e in &set.participants_added {
        agent::remove_participant(conn, state.id, e, "cc").await?;
    }
    for e in &set.invited {
        agent::remove_collaborator(conn, state.id, e).await?;
    }
    agent::mark_undone(conn, entry.id, ctx.now).await?;
    tickets::touch_ticket(conn, state.id, ctx.now).await?;
    let mut out = format!("reverted {what}");
    if !kept.is_empty() {
        out.push_str("; ");
        out.push_str(&kept.join("; "));
    }
    Ok(Outcome::Changed(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::parse::parse_reply;
    use crate::domain::Priority;
    use crate::store::Store;
    use crate::store::tickets::{NewTicket, get_ticket_view, insert_ticket, upsert_customer};

    const T0: &str = "2026-01-01T00:00:00.000000Z";

    struct Env {
        _dir: tempfile::TempDir,
        store: Store,
        agents: Vec<(String, String)>,
        macros: Vec<&'static str>,
        /// Each reply gets a later timestamp.
        clock: std::cell::Cell<u32>,
    }

    async fn env() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        Env {
            _dir: dir,
            store,
            agents: vec![
                ("alice".into(), "alice@example.com".into()),
                ("Bob".into(), "bob@example.com".into()),
            ],
            macros: vec!["refund-policy"],
            clock: std::cell::Cell::new(0),
        }
    }

    impl Env {
        /// A new open ticket of `customer`.
        async fn ticket(&self, customer: &str) -> TicketId {
            let mut c = self.store.pool().acquire().await.unwrap();
            let cid = upsert_customer(&mut c, customer, None, T0).await.unwrap();
            let token = format!("{:032x}", rand::random::<u128>());
            insert_ticket(
                &mut c,
                &NewTicket {
                    subject: "Help",
                    subject_key: "help",
                    customer_id: cid,
                    token: &token,
                    linked_ticket_id: None,
                    now: T0,
                },
            )
            .await
            .unwrap()
        }

        /// Parses `text` as `agent`'s reply to `ticket` and applies it in one transaction.
        async fn reply(&self, agent: &str, ticket: TicketId, text: &str) -> ApplyReport {
            let parsed = parse_reply(text);
            assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
            self.clock.set(self.clock.get() + 1);
            let now = format!("2026-01-02T00:00:{:02}.000000Z", self.clock.get());
            let macros = self.macros.clone();
            let exists = move |name: &str| macros.contains(&name);
            let ctx = ApplyContext {
                ticket_id: ticket,
                agent,
                agents: &self.agents,
                message_row: None,
                now: &now,
                macro_exists: &exists,
            };
            let mut tx = self.store.begin_write().await.unwrap();
            let report = apply(&mut tx, &ctx, &parsed.commands).await.unwrap();
            tx.commit().await.unwrap();
            report
        }

        async fn conn(&self) -> crate::store::PoolConn {
            self.store.pool().acquire().await.unwrap()
        }

        async fn state(&self, ticket: TicketId) -> TicketState {
            get_state(&mut *self.conn().await, ticket).await.unwrap()
        }

        async fn tags(&self, ticket: TicketId) -> Vec<String> {
            agent::list_tags(&mut *self.conn().await, ticket)
                .await
                .unwrap()
        }

        async fn log(&self, ticket: TicketId) -> Vec<agent::CommandLogEntry> {
            agent::list_command_log(&mut *self.conn().await, ticket)
                .await
                .unwrap()
        }

        async fn participant_role(&self, ticket: TicketId, email: &str) -> Option<String> {
            agent::find_participant_role(&mut *self.conn().await, ticket, email)
                .await
                .unwrap()
        }

        async fn add_participant(&self, ticket: TicketId, email: &str, role: &str) {
            tickets::add_participant(&mut *self.conn().await, ticket, email, role)
                .await
                .unwrap();
        }
    }

    fn reasons(r: &ApplyReport) -> Vec<&str> {
        r.rejected.iter().map(|(_, why)| why.as_str()).collect()
    }

    #[tokio::test]
    async fn assign_me_by_name_by_address_and_none() {
        let e = env().await;
        let t = e.ticket("cust@example.org").await;

        let r = e.reply("alice", t, "#assign me").await;
        assert_eq!(r.applied, ["#assign me: assigned to alice"]);
        assert_eq!(e.state(t).await.assignee.as_deref(), Some("alice"));

        // Case-insensitive; the configured spelling is stored.
        let r = e.reply("alice", t, "#assign BOB").await;
        assert!(r.rejected.is_empty(), "{r:?}");
        assert_eq!(e.state(t).await.assignee.as_deref(), Some("Bob"));

        let r = e.reply("alice", t, "#assign alice@example.com").await;
        assert!(r.rejected.is_empty(), "{r:?}");
        assert_eq!(e.state(t).await.assignee.as_deref(), Some("alice"));

        let r = e.reply("alice", t, "#assign alice").await;
        assert_eq!(r.applied, ["#assign alice: already assigned to alice"]);
        assert_eq!(r.command_log_id, None, "a no-op writes no log row");

        let r = e.reply("alice", t, "#assign none").await;
        assert_eq!(r.applied, ["#assign none: unassigned"]);
        assert_eq!(e.state(t).await.assignee, None);
        assert_eq!(e.log(t).await.len(), 4);
    }

    #[tokio::test]
    async fn unknown_agent_is_rejected_and_changes_nothing() {
        let e = env().await;
        let t = e.ticket("cust@example.org").await;
        e.reply("alice", t, "#assign me").await;
        let r = e.reply("alice", t, "#assign carol\n#priority high").await;
        assert_eq!(
            r.rejected,
            [(
                "#assign carol".to_string(),
                "no agent named carol".to_string()
            )]
        );
        // The valid command on the next line is applied all the same.
        assert_eq!(r.applied, ["#priority high: priority is now high"]);
        let s = e.state(t).await;
        assert_eq!(s.assignee.as_deref(), Some("alice"));
        assert_eq!(s.priority, Priority::High);
    }

    #[tokio::test]
    async fn status_and_priority_change_log_and_touch_the_ticket() {
        let e = env().await;
        let t = e.ticket("cust@example.org").await;
        let r = e
            .reply("alice", t, "#status pending\n#priority urgent")
            .await;
        assert_eq!(
            r.applied,
            [
                "#status pending: status is now pending",
                "#priority urgent: priority is now urgent"
            ]
        );
        let s = e.state(t).await;
        assert_eq!((s.status, s.priority), (Status::Pending, Priority::Urgent));
        let view = get_ticket_view(&mut *e.conn().await, t).await.unwrap();
        assert_eq!(view.updated_at, "2026-01-02T00:00:01.000000Z");

        let log = e.log(t).await;
        assert_eq!(log.len(), 1);
        assert_eq!(Some(log[0].id), r.command_log_id);
        assert_eq!(log[0].agent, "alice");
        assert_eq!(log[0].commands, ["#status pending", "#priority urgent"]);
        let undo = log[0].undo.clone().unwrap();
        assert_eq!(
            undo.status,
            Some(Change {
                before: Status::Open,
                after: Status::Pending
            })
        );
        assert_eq!(
            undo.priority,
            Some(Change {
                before: Priority::Normal,
                after: Priority::Urgent
            })
        );
        assert_eq!(undo.assignee, None, "untouched fields are not recorded");

        let r = e.reply("alice", t, "#close").await;
        assert_eq!(r.applied, ["#status closed: status is now closed"]);
        let r = e.reply("alice", t, "#status closed").await;
        assert_eq!(r.applied, ["#status closed: status was already closed"]);
        assert_eq!(r.command_log_id, None);
    }

    #[tokio::test]
    async fn tags_are_added_and_removed_absent_ones_are_reported() {
        let e = env().await;
        let t = e.ticket("cust@example.org").await;
        let r = e.reply("alice", t, "#tag billing vip").await;
        assert_eq!(r.applied, ["#tag billing vip: added billing; added vip"]);
        let r = e.reply("alice", t, "#tag -vip -spam billing").await;
        assert_eq!(
            r.applied,
            ["#tag billing -vip -spam: billing was already set; removed vip; spam was not set"]
        );
        assert!(r.rejected.is_empty());
        assert_eq!(e.tags(t).await, ["billing"]);
        let undo = e.log(t).await[1].undo.clone().unwrap();
        assert_eq!(undo.tags_removed, ["vip"], "only real changes are recorded");
        assert!(undo.tags_added.is_empty());

        let r = e.reply("alice", t, "#tag -nothing").await;
        assert!(r.rejected.is_empty());
        assert_eq!(r.command_log_id, None);
    }

    #[tokio::test]
    async fn tag_lines_that_cancel_out_record_nothing() {
        let e = env().await;
        let t = e.ticket("cust@example.org").await;
        e.reply("alice", t, "#tag x").await;
        let r = e
            .reply("alice", t, "#tag -x\n#tag x\n#tag y\n#tag -y")
            .await;
        assert_eq!(r.applied.len(), 4, "{r:?}");
        assert_eq!(r.command_log_id, None, "no net change, no row");
        assert_eq!(e.tags(t).await, ["x"]);
        // #undo reaches the set that really added x.
        e.reply("alice", t, "#undo").await;
        assert!(e.tags(t).await.is_empty());
    }

    #[tokio::test]
    async fn invite_adds_a_collaborator_but_never_a_customer_side_address() {
        let e = env().await;
        let t = e.ticket("cust@example.org").await;
        e.add_participant(t, "cust@example.org", "customer").await;
        e.add_participant(t, "boss@example.org", "cc").await;

        let r = e.reply("alice", t, "#invite Legal@Example.COM").await;
        assert_eq!(
            r.applied,
            ["#invite Legal@example.com: legal@example.com invited as a collaborator"]
        );
        let mut c = e.conn().await;
        assert_eq!(
            agent::list_collaborators(&mut c, t).await.unwrap(),
            ["legal@example.com"]
        );
        drop(c);
        assert_eq!(
            e.participant_role(t, "legal@example.com").await,
            None,
            "collaborators are not participants"
        );

        let r = e.reply("alice", t, "#invite legal@example.com").await;
        assert_eq!(
            r.applied,
            ["#invite legal@example.com: legal@example.com was already invited"]
        );
        assert_eq!(r.command_log_id, None);

        let r = e
            .reply("alice", t, "#invite cust@example.org boss@example.org")
            .await;
        assert!(r.applied.is_empty(), "{r:?}");
        let why = reasons(&r);
        assert!(why[0].contains("this ticket's customer"), "{why:?}");
        assert!(why[1].contains("customer's side (cc)"), "{why:?}");

        e.reply("alice", t, "#cc other@example.org").await;
        let r = e.reply("alice", t, "#invite other@example.org").await;
        assert!(reasons(&r)[0].contains("copied on this ticket"), "{r:?}");
        let mut c = e.conn().await;
        assert_eq!(agent::list_collaborators(&mut c, t).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn cc_adds_the_address_and_a_participant() {
        let e = env().await;
        let t = e.ticket("cust@example.org").await;
        e.add_participant(t, "cust@example.org", "customer").await;
        e.add_participant(t, "known@example.org", "participant")
            .await;

        let r = e
            .reply("alice", t, "#cc wife@example.org known@example.org")
            .await;
        assert_eq!(r.applied.len(), 2, "{r:?}");
        let mut c = e.conn().await;
        assert_eq!(
            agent::list_cc(&mut c, t).await.unwrap(),
            ["known@example.org", "wife@example.org"]
        );
        drop(c);
        assert_eq!(
            e.participant_role(t, "wife@example.org").await.as_deref(),
            Some("cc")
        );
        assert_eq!(
            e.participant_role(t, "known@example.org").await.as_deref(),
            Some("participant"),
            "an existing participant keeps its role"
        );
        let undo = e.log(t).await[0].undo.clone().unwrap();
        assert_eq!(undo.cc_added, ["wife@example.org", "known@example.org"]);
        assert_eq!(undo.participants_added, ["wife@example.org"]);

        let r = e
            .reply("alice", t, "#cc wife@example.org cust@example.org")
            .await;
        assert!(r.rejected.is_empty());
        assert!(r.applied[0].ends_with("was already copied"), "{r:?}");
        assert!(r.applied[1].ends_with("gets every reply already"), "{r:?}");
        assert_eq!(r.command_log_id, None);

        e.reply("alice", t, "#invite helper@example.com").await;
        let r = e
            .reply("alice", t, "#cc bob@example.com helper@example.com")
            .await;
        let why = reasons(&r);
        assert!(why[0].contains("agent Bob's address"), "{why:?}");
        assert!(why[1].contains("internal collaborator"), "{why:?}");
        let mut c = e.conn().await;
        assert_eq!(agent::list_cc(&mut c, t).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn macros_note_quiet_and_help_are_flags_without_a_log_row() {
        let e = env().await;
        let t = e.ticket("cust@example.org").await;
        let r = e
            .reply(
                "alice",
                t,
                "#note\n#quiet\n#help\n#macro refund-policy\n#macro nope\nText",
            )
            .await;
        assert!(r.note && r.quiet && r.help);
        assert_eq!(r.macros, ["refund-policy"]);
        assert_eq!(
            r.rejected,
            [("#macro nope".to_string(), "no macro named nope".to_string())]
        );
        assert_eq!(r.applied.len(), 4);
        assert_eq!(r.command_log_id, None);
        assert!(e.log(t).await.is_empty());

        let r = e.reply("alice", t, "#status pending").await;
        assert!(!r.note && !r.quiet && !r.help && r.macros.is_empty());
    }

    #[tokio::test]
    async fn merge_moves_everything_and_closes_this_ticket() {
        let e = env().await;
        let a = e.ticket("cust@example.org").await;
        let b = e.ticket("cust@example.org").await;
        e.add_participant(a, "cust@example.org", "customer").await;
        let r = e
            .reply(
                "alice",
                a,
                "#merge 2\n#tag billing\n#cc wife@example.org\n#invite legal@example.com",
            )
            .await;
        assert!(r.rejected.is_empty(), "{r:?}");
        assert_eq!(r.merged_into, Some(b));
        // Merge is applied last, whatever its line.
        assert!(
            r.applied[3].starts_with("#merge 2: merged into #2"),
            "{r:?}"
        );

        let s = e.state(a).await;
        assert_eq!((s.status, s.merged_into), (Status::Closed, Some(b)));
        assert_eq!(e.tags(b).await, ["billing"]);
        assert!(e.tags(a).await.is_empty());
        let mut c = e.conn().await;
        assert_eq!(
            agent::list_cc(&mut c, b).await.unwrap(),
            ["wife@example.org"]
        );
        assert!(agent::list_cc(&mut c, a).await.unwrap().is_empty());
        assert_eq!(
            agent::list_collaborators(&mut c, b).await.unwrap(),
            ["legal@example.com"]
        );
        drop(c);
        assert_eq!(
            e.participant_role(b, "wife@example.org").await.as_deref(),
            Some("cc")
        );
        let log = e.log(a).await;
        assert_eq!(log.len(), 1, "one row for the whole reply");
        assert_eq!(log[0].undo.as_ref().unwrap().merged_into, Some(b));
        assert!(log[0].commands.contains(&"#merge 2".to_string()));

        // The merged ticket takes no more state-changing commands.
        let r = e.reply("alice", a, "#status open\n#help").await;
        assert_eq!(
            reasons(&r),
            ["ticket #1 was merged into #2; send commands to #2"]
        );
        assert!(r.help);
        assert_eq!(e.state(a).await.status, Status::Closed);
    }

    #[tokio::test]
    async fn bad_merge_targets_are_rejected() {
        let e = env().await;
        let a = e.ticket("cust@example.org").await;
        let closed = e.ticket("cust@example.org").await;
        e.reply("alice", closed, "#close").await;

        for (text, reason) in [
            ("#merge 99", "no ticket #99".to_string()),
            (
                "#merge 1",
                "a ticket cannot be merged into itself".to_string(),
            ),
            (
                "#merge 2",
                "ticket #2 is closed; reopen it before merging into it".to_string(),
            ),
        ] {
            let r = e.reply("alice", a, text).await;
            assert_eq!(r.rejected, [(text.to_string(), reason)]);
            assert_eq!(r.merged_into, None);
            assert_eq!(r.command_log_id, None);
        }
        assert_eq!(e.state(a).await.merged_into, None);

        // Ticket 3 merged into 1: "#merge 3" from 1 would merge 1 into itself.
        let c = e.ticket("cust@example.org").await;
        e.reply("alice", c, "#merge 1").await;
        let r = e.reply("alice", a, "#merge 3").await;
        assert_eq!(
            reasons(&r),
            ["ticket #3 was merged into this ticket already"]
        );
        assert_eq!(e.state(a).await.merged_into, None);
    }

    #[tokio::test]
    async fn merge_into_a_merged_ticket_follows_it() {
        let e = env().await;
        let a = e.ticket("cust@example.org").await;
        let b = e.ticket("cust@example.org").await;
        let c = e.ticket("cust@example.org").await;
        e.reply("alice", b, "#merge 3").await;
        let r = e.reply("alice", a, "#merge 2").await;
        assert!(r.rejected.is_empty(), "{r:?}");
        assert_eq!(r.merged_into, Some(c));
        assert!(
            r.applied[0].contains("(#2 had been merged into #3)"),
            "{r:?}"
        );
        assert_eq!(e.state(a).await.merged_into, Some(c));
    }

    #[tokio::test]
    async fn undo_restores_every_field_of_a_multi_command_set() {
        let e = env().await;
        let t = e.ticket("cust@example.org").await;
        e.add_participant(t, "cust@example.org", "customer").await;
        e.reply("Bob", t, "#assign me\n#tag vip spam\n#priority low")
            .await;
        let before = e.state(t).await;

        let r = e
            .reply(
                "alice",
                t,
                "#assign me\n#status pending\n#priority urgent\n#tag billing -spam\n\
                 #cc wife@example.org\n#invite legal@example.com",
            )
            .await;
        assert!(r.rejected.is_empty(), "{r:?}");
        assert_eq!(e.tags(t).await, ["billing", "vip"]);

        let r = e.reply("alice", t, "#undo").await;
        assert!(r.rejected.is_empty(), "{r:?}");
        assert!(r.applied[0].starts_with("#undo: reverted #assign me, #status pending"));
        assert_eq!(r.command_log_id, None, "an undo alone writes no new row");

        let after = e.state(t).await;
        assert_eq!(after, before);
        assert_eq!(after.assignee.as_deref(), Some("Bob"));
        assert_eq!(after.priority, Priority::Low);
        assert_eq!(e.tags(t).await, ["spam", "vip"]);
        let mut c = e.conn().await;
        assert!(agent::list_cc(&mut c, t).await.unwrap().is_empty());
        assert!(
            agent::list_collaborators(&mut c, t)
                .await
                .unwrap()
                .is_empty()
        );
        drop(c);
        assert_eq!(e.participant_role(t, "wife@example.org").await, None);
        assert_eq!(
            e.participant_role(t, "cust@example.org").await.as_deref(),
            Some("customer")
        );
        let log = e.log(t).await;
        assert_eq!(
            log[1].undone_at.as_deref(),
            Some("2026-01-02T00:00:03.000000Z")
        );
        assert_eq!(log[0].undone_at, None, "Bob's set is not alice's to undo");
    }

    #[tokio::test]
    async fn undo_twice_reverts_the_set_before_then_nothing() {
        let e = env().await;
        let t = e.ticket("cust@example.org").await;
        e.reply("alice", t, "#status pending").await;
        e.reply("alice", t, "#priority high").await;
        // Another agent's set in between is not alice's to undo.
        e.reply("Bob", t, "#tag bob").await;

        let r = e.reply("alice", t, "#undo").await;
        assert!(r.applied[0].contains("#priority high"), "{r:?}");
        let s = e.state(t).await;
        assert_eq!((s.status, s.priority), (Status::Pending, Priority::Normal));

        let r = e.reply("alice", t, "#undo").await;
        assert!(r.applied[0].contains("#status pending"), "{r:?}");
        let s = e.state(t).await;
        assert_eq!((s.status, s.priority), (Status::Open, Priority::Normal));
        assert_eq!(e.tags(t).await, ["bob"]);

        let r = e.reply("alice", t, "#undo").await;
        assert_eq!(
            r.rejected,
            [("#undo".to_string(), "nothing to undo".to_string())]
        );
        assert!(r.applied.is_empty());
    }

    #[tokio::test]
    async fn nothing_to_undo_on_a_fresh_ticket() {
        let e = env().await;
        let t = e.ticket("cust@example.org").await;
        let other = e.ticket("cust@example.org").await;
        e.reply("alice", other, "#status pending").await;
        let r = e.reply("alice", t, "#undo").await;
        assert_eq!(reasons(&r), ["nothing to undo"]);
        assert_eq!(e.state(other).await.status, Status::Pending);
    }

    #[tokio::test]
    async fn undo_leaves_a_field_someone_changed_since() {
        let e = env().await;
        let t = e.ticket("cust@example.org").await;
        e.reply("alice", t, "#status pending\n#priority high").await;
        e.reply("Bob", t, "#status resolved").await;
        let r = e.reply("alice", t, "#undo").await;
        assert!(
            r.applied[0].contains("status stays resolved (changed since)"),
            "{r:?}"
        );
        let s = e.state(t).await;
        assert_eq!((s.status, s.priority), (Status::Resolved, Priority::Normal));
    }

    #[tokio::test]
    async fn undo_runs_first_and_the_rest_is_a_new_set() {
        let e = env().await;
        let t = e.ticket("cust@example.org").await;
        e.reply("alice", t, "#status pending").await;
        // #undo on the last line still runs before #priority.
        let r = e.reply("alice", t, "#priority urgent\n#undo").await;
        assert!(
            r.applied[0].starts_with("#undo: reverted #status pending"),
            "{r:?}"
        );
        assert_eq!(r.applied[1], "#priority urgent: priority is now urgent");
        let log = e.log(t).await;
        assert_eq!(log.len(), 2);
        assert!(log[0].undone_at.is_some());
        assert_eq!(Some(log[1].id), r.command_log_id);
        assert_eq!(log[1].commands, ["#priority urgent"]);

        // The next undo reverts the new set, not the undone one again.
        e.reply("alice", t, "#undo").await;
        let s = e.state(t).await;
        assert_eq!((s.status, s.priority), (Status::Open, Priority::Normal));
        let r = e.reply("alice", t, "#undo").await;
        assert_eq!(reasons(&r), ["nothing to undo"]);
    }

    #[tokio::test]
    async fn a_merge_cannot_be_undone() {
        let e = env().await;
        let a = e.ticket("cust@example.org").await;
        let b = e.ticket("cust@example.org").await;
        e.reply("alice", b, "#priority high").await;
        e.reply("alice", a, "#tag x\n#merge 2").await;
        // The agent's next reply reaches ticket 2 (the caller follows the merge).
        let r = e.reply("alice", b, "#undo").await;
        let why = reasons(&r);
        assert_eq!(why.len(), 1);
        assert!(
            why[0].contains("merged ticket #1 into #2; a merge cannot be undone"),
            "{why:?}"
        );
        // Nothing was reverted, neither the merge nor the set before it.
        assert_eq!(e.state(a).await.merged_into, Some(b));
        assert_eq!(e.state(b).await.priority, Priority::High);
        assert_eq!(e.tags(b).await, ["x"]);
        assert!(e.log(a).await[0].undone_at.is_none());
        assert!(e.log(b).await[0].undone_at.is_none());
    }

    #[tokio::test]
    async fn a_set_on_a_ticket_merged_since_cannot_be_undone() {
        let e = env().await;
        let a = e.ticket("cust@example.org").await;
        let b = e.ticket("cust@example.org").await;
        e.reply("Bob", a, "#status pending").await;
        e.reply("alice", a, "#merge 2").await;
        let r = e.reply("Bob", b, "#undo").await;
        assert!(
            reasons(&r)[0].contains("applied to ticket #1, which has since been merged"),
            "{r:?}"
        );
        assert!(e.log(a).await[0].undone_at.is_none());
    }
}
