//! Applies the commands of one authenticated agent reply to its ticket: loads what
//! `commands::plan` needs ([`load`]), plans, and writes the plan ([`write`]), recording
//! what changed in `command_log` so that `#undo` can revert it.
//!
//! What each command means is decided by `commands::plan` (pure, with the rules); the text
//! rules are `commands::parse`'s, the SQL is `store::agent`'s and `store::tickets`'s. This
//! module does not authenticate (the caller passes the authenticated agent), does not
//! begin or commit a transaction (the caller runs [`apply`] inside its own, with the
//! message it stores, so the snapshot cannot go stale between [`load`] and [`write`]) and
//! sends no mail (the receipt is built by the caller from the [`ApplyReport`]).

use crate::commands::parse::{Command, ProfileChange};
use crate::commands::plan::{self, Actor, Plan, Snapshot, TransferRoute, Write};
use crate::domain::TicketId;
use crate::store::Conn as SqliteConnection;
use crate::store::agent::{self, NewCommandLog, TicketState};
use crate::store::{Result, StoreError, feedback, profiles, tickets, triage};

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
    /// The reply's text below its commands (a `#report` without text is this).
    pub body: &'a str,
    /// Where `#transfer` goes, when the reply has one (the caller routes it).
    pub transfer: Option<Result<TransferRoute, String>>,
    /// The categories of the configured rules, for the theme of `#feedback`.
    pub categories: &'a [String],
    /// `#link` joins the open ticket of the linked customer updated at or after this
    /// database time (now less `[threading] link_window_days`).
    pub link_since: &'a str,
}

impl ApplyContext<'_> {
    /// The part of the context that planning needs.
    pub fn actor(&self) -> Actor<'_> {
        Actor {
            agent: self.agent,
            agents: self.agents,
            macro_exists: self.macro_exists,
            has_body: !self.body.trim().is_empty(),
        }
    }
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
    /// `#via`: the channel this reply goes out on.
    pub via: Option<crate::domain::Channel>,
}

/// Applies one reply's commands (in the form `commands::parse::ParsedReply::commands`
/// gives them) to `ctx.ticket_id`: [`load`], `commands::plan::plan`, [`write`]. Problems
/// with a command are rejections in the report; an `Err` is a database failure (or a
/// ticket that does not exist), after which the caller rolls back.
pub async fn apply(
    conn: &mut SqliteConnection,
    ctx: &ApplyContext<'_>,
    commands: &[(usize, String, Command)],
) -> Result<ApplyReport> {
    let snapshot = load(conn, ctx, commands).await?;
    let plan = plan::plan(&snapshot, &ctx.actor(), commands);
    write(conn, ctx, &plan).await
}

/// Reads what planning `commands` on `ctx.ticket_id` needs: the ticket's state, tags and
/// people, and, only when the commands ask for them, the agent's last undoable set and
/// where `#merge N` leads.
pub async fn load(
    conn: &mut SqliteConnection,
    ctx: &ApplyContext<'_>,
    commands: &[(usize, String, Command)],
) -> Result<Snapshot> {
    let ticket = get_state(conn, ctx.ticket_id).await?;
    let id = ticket.id;
    let mut snapshot = Snapshot::new(ticket);
    snapshot.tags = agent::list_tags(conn, id).await?;
    snapshot.cc = agent::list_cc(conn, id).await?;
    snapshot.collaborators = agent::list_collaborators(conn, id).await?;
    snapshot.participants = agent::list_participants(conn, id).await?;
    if commands.iter().any(|(_, _, c)| *c == Command::Undo) {
        snapshot.last_undoable = agent::find_last_undoable(conn, id, ctx.agent).await?;
    }
    if let Some(n) = commands.iter().find_map(|(_, _, c)| match c {
        Command::Merge(n) => Some(*n),
        _ => None,
    }) {
        // find_ticket follows merges: #n may now live on in another ticket.
        let target = tickets::find_ticket(conn, n)
            .await?
            .map(|t| (t.id, t.status));
        snapshot.merge_target = Some((n, target));
    }
    snapshot.transfer = ctx.transfer.clone();
    if commands
        .iter()
        .any(|(_, _, c)| matches!(c, Command::Report(_)))
    {
        snapshot.open_alert = triage::open_alert(conn, id).await?.map(|a| a.id);
    }
    if commands
        .iter()
        .any(|(_, _, c)| matches!(c, Command::Away | Command::Back))
    {
        snapshot.away = triage::away_agents(conn).await?.contains(ctx.agent);
    }
    let link = commands.iter().find_map(|(_, _, c)| match c {
        Command::Link(email) => Some(email.clone()),
        _ => None,
    });
    if let Some(email) = &link {
        snapshot.link_ticket = profiles::find_open_ticket_of(conn, email, ctx.link_since).await?;
    }
    if link.is_some()
        || commands
            .iter()
            .any(|(_, _, c)| matches!(c, Command::Profile(_)))
    {
        let (id, email, tier, language) = profiles::customer_of_ticket(conn, id).await?;
        snapshot.customer = Some(plan::CustomerFacts {
            id,
            email,
            tier,
            language,
        });
    }
    if commands
        .iter()
        .any(|(_, _, c)| matches!(c, Command::Feedback(_)))
    {
        snapshot.categories = ctx.categories.to_vec();
    }
    Ok(snapshot)
}

/// Writes `plan` and, when it changed anything, its `command_log` row.
pub async fn write(
    conn: &mut SqliteConnection,
    ctx: &ApplyContext<'_>,
    plan: &Plan,
) -> Result<ApplyReport> {
    let id = plan.ticket;
    let (agent_name, now) = (ctx.agent, ctx.now);
    for w in &plan.writes {
        match w {
            Write::Assignee(a) => agent::set_assignee(conn, id, a.as_deref(), now).await?,
            Write::Status(s) => tickets::set_status(conn, id, *s, now).await?,
            Write::Priority(p) => agent::set_priority(conn, id, *p, now).await?,
            Write::AddTag(t) => {
                agent::add_tag(conn, id, t).await?;
            }
            Write::RemoveTag(t) => {
                agent::remove_tag(conn, id, t).await?;
            }
            Write::AddCollaborator(e) => {
                agent::add_collaborator(conn, id, e, agent_name, now).await?;
            }
            Write::RemoveCollaborator(e) => {
                agent::remove_collaborator(conn, id, e).await?;
            }
            Write::AddCc(e) => {
                agent::add_cc(conn, id, e, agent_name, now).await?;
            }
            Write::RemoveCc(e) => {
                agent::remove_cc(conn, id, e).await?;
            }
            Write::AddCcParticipant(e) => tickets::add_participant(conn, id, e, "cc").await?,
            Write::RemoveCcParticipant(e) => {
                agent::remove_participant(conn, id, e, "cc").await?;
            }
            Write::MergeInto(into) => {
                agent::move_people(conn, *into, id).await?;
                tickets::merge_ticket(conn, *into, id, now).await?;
            }
            Write::Category(c) => triage::set_category(conn, id, c.as_deref(), now).await?,
            Write::Team(t) => triage::set_team(conn, id, t.as_deref(), now).await?,
            Write::TeamCursor { team, agent } => {
                triage::set_team_cursor(conn, team, agent, now).await?;
            }
            Write::Report { alert, text } => {
                let text = text.as_deref().unwrap_or(ctx.body).trim();
                if let Some(a) = triage::open_alert(conn, id)
                    .await?
                    .filter(|a| a.id == *alert)
                {
                    triage::record_report(conn, &a, agent_name, text, now).await?;
                }
            }
            Write::Away(away) => {
                triage::set_away(conn, agent_name, *away, now).await?;
            }
            Write::Link { customer, email } => {
                profiles::link_identity(
                    conn,
                    *customer,
                    email,
                    "agent",
                    Some(agent_name),
                    Some(id),
                    now,
                )
                .await?;
            }
            Write::Profile { customer, change } => match change {
                ProfileChange::Note(text) => {
                    profiles::add_note(conn, *customer, agent_name, Some(id), text, now).await?;
                }
                ProfileChange::Tier(t) => {
                    profiles::set_tier(conn, *customer, t, Some(id), now).await?;
                }
                ProfileChange::Lang(l) => {
                    profiles::set_language(conn, *customer, l, Some(id), now).await?;
                }
            },
            Write::Feedback { text, theme } => {
                feedback::add_feedback(conn, agent_name, Some(id), text, theme, now).await?;
            }
            Write::MarkUndone(row) => agent::mark_undone(conn, *row, now).await?,
            Write::Touch => tickets::touch_ticket(conn, id, now).await?,
        }
    }
    let command_log_id = if plan.changes.is_empty() {
        None
    } else {
        Some(
            agent::insert_command_log(
                conn,
                &NewCommandLog {
                    ticket_id: id,
                    agent: agent_name,
                    message_row: ctx.message_row,
                    commands: &plan.changed,
                    undo: &plan.changes,
                    now,
                },
            )
            .await?,
        )
    };
    Ok(ApplyReport {
        applied: plan.applied.clone(),
        rejected: plan.rejected.clone(),
        note: plan.note,
        quiet: plan.quiet,
        help: plan.help,
        macros: plan.macros.clone(),
        merged_into: plan.merged_into,
        command_log_id,
        via: plan.via,
    })
}

async fn get_state(conn: &mut SqliteConnection, id: TicketId) -> Result<TicketState> {
    agent::find_ticket_state(conn, id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("ticket {id}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::parse::parse_reply;
    use crate::domain::{Priority, Status};
    use crate::store::Store;
    use crate::store::agent::Change;
    use crate::store::tickets::{NewTicket, get_ticket_view, insert_ticket, upsert_customer};

    const T0: &str = "2026-01-01T00:00:00.000000Z";

    struct Env {
        _dir: tempfile::TempDir,
        store: Store,
        agents: Vec<(String, String)>,
        macros: Vec<&'static str>,
        /// Each reply gets a later timestamp.
        clock: std::cell::Cell<u32>,
        categories: Vec<String>,
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
            categories: vec!["refund".into()],
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
                body: parsed.body.as_str(),
                transfer: None,
                categories: &self.categories,
                link_since: "",
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
