//! Decides what the commands of one authenticated agent reply will do to its ticket: which
//! are applied and with what result, which are rejected and why, which rows change, and
//! what `#undo` will be able to revert.
//!
//! Pure: no I/O, no clock. Everything it needs from the database (the ticket's state,
//! tags and people, the agent's last undoable command set, where `#merge N` leads) comes
//! in a [`Snapshot`] that `commands::apply` loads first; `commands::apply` then writes the
//! [`Plan`] in one go. The text rules are `commands::parse`'s and `commands::table`'s.
//!
//! # Decisions
//!
//! - **Each command stands alone.** Valid commands are applied, invalid ones are rejected
//!   one by one with a reason; a rejection never undoes the rest of the reply. A command
//!   that would change nothing (`#status pending` on a pending ticket, `#invite` of a
//!   collaborator) is applied with a line saying so.
//! - **Order.** `#undo` runs first, wherever it stands; then the other commands in line
//!   order, each seeing what the ones before it did; `#merge` last, so everything else
//!   lands on this ticket before it moves.
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
//!   - Addresses are compared as the store compares them: ASCII case-insensitively.
//! - **`#merge N`** merges *this* ticket into N (messages, participants and tags move,
//!   this ticket is closed and its token and number lead to N); collaborators and copied
//!   addresses move too. If N was itself merged, the merge follows it to the ticket N now
//!   lives in (as the number `#N` does everywhere else) and the receipt says so. Rejected:
//!   N does not exist, N is this ticket or was merged into it, or the ticket N leads to is
//!   closed (the conversation would land where customer replies start new tickets; reopen
//!   it first). Assignee, status and priority given in the same reply stay with this
//!   ticket, which the merge then closes.
//! - **`#macro`** is checked with the caller's `macro_exists`; valid names are returned in
//!   [`Plan::macros`] for the caller to insert. `#note`, `#quiet` and `#help` set flags.
//!   None of them changes the ticket. `#release` is the caller's (it owns the held
//!   message) and is skipped here.
//! - **A ticket already merged away** (the caller should have followed the merge) takes
//!   no state-changing command: each is rejected, naming the ticket to write to.
//! - **Command log.** Everything one reply changed is one `command_log` row holding, per
//!   field, only what changed ([`Plan::changes`]): assignee/status/priority as (before,
//!   after), tags added and removed (a tag added and removed again by the same reply
//!   cancels out), cc, participant and collaborator rows added, and the merge target. Its
//!   `commands` ([`Plan::changed`]) are the changing commands written out canonically
//!   (`#tag billing -spam`). A reply that changed nothing (flags, macros, no-ops,
//!   rejections only) writes no row.
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

use crate::commands::parse::{AssignTarget, Command, ProfileChange};
use crate::domain::address::normalize_address;
use crate::domain::{Priority, Status, TicketId};
use crate::store::agent::{Change, CommandLogEntry, TicketState, UndoState};

/// What [`plan`] needs to know about the ticket, read before planning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub ticket: TicketState,
    pub tags: Vec<String>,
    /// Copied customer-side addresses (`ticket_cc`).
    pub cc: Vec<String>,
    /// Internal collaborators (`ticket_collaborators`).
    pub collaborators: Vec<String>,
    /// (email, role) of every participant.
    pub participants: Vec<(String, String)>,
    /// The acting agent's newest set on this ticket (or one merged into it) that is not
    /// undone yet. Needed when the reply has `#undo`.
    pub last_undoable: Option<CommandLogEntry>,
    /// For the reply's `#merge N`: N, and the ticket N lives on in with its status (None:
    /// there is no ticket N). A `#merge` whose N is not here is rejected as "no ticket".
    pub merge_target: Option<(TicketId, Option<(TicketId, Status)>)>,
    /// For the reply's `#transfer`: where the team's strategy routes the ticket, or why
    /// there is no such team. Computed by the caller, which knows the teams and who is
    /// available.
    pub transfer: Option<Result<TransferRoute, String>>,
    /// The ticket's red alert still waiting for its report (`#report`).
    pub open_alert: Option<i64>,
    /// Whether the acting agent is away (`#away`).
    pub away: bool,
    /// For `#profile`: the ticket's customer as it stands.
    pub customer: Option<CustomerFacts>,
    /// For `#feedback`: the categories of the configured rules (its theme may be one).
    pub categories: Vec<String>,
    /// For `#link <email>`: the open ticket (and its status) of the customer with that
    /// address, updated within the threading window, other than this one: the linked
    /// conversation joins it.
    pub link_ticket: Option<(TicketId, Status)>,
}

/// What `#profile` needs to know of the ticket's customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerFacts {
    pub id: i64,
    pub email: String,
    pub tier: String,
    pub language: Option<String>,
}

/// Where `#transfer <team>` sends a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRoute {
    /// The team's configured name.
    pub team: String,
    /// The member its strategy chose; `None` when nobody is available.
    pub assignee: Option<String>,
    /// Why nobody was chosen (all away or off hours...), for the receipt.
    pub why_nobody: Option<String>,
}

impl Snapshot {
    /// A ticket with no tags, people or history.
    pub fn new(ticket: TicketState) -> Snapshot {
        Snapshot {
            ticket,
            tags: Vec::new(),
            cc: Vec::new(),
            collaborators: Vec::new(),
            participants: Vec::new(),
            last_undoable: None,
            merge_target: None,
            transfer: None,
            open_alert: None,
            away: false,
            customer: None,
            categories: Vec::new(),
            link_ticket: None,
        }
    }
}

/// Who acts, and what the caller knows that the database does not.
pub struct Actor<'a> {
    /// The configured name of the authenticated agent who sent the reply.
    pub agent: &'a str,
    /// Every configured agent: (name, address).
    pub agents: &'a [(String, String)],
    /// Whether a macro template of this name exists.
    pub macro_exists: &'a (dyn Fn(&str) -> bool + Sync),
    /// Whether the reply has text below its commands (a `#report` without text uses it).
    pub has_body: bool,
}

/// One database write, in the order [`Plan::writes`] gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Assignee(Option<String>),
    Status(Status),
    Priority(Priority),
    AddTag(String),
    RemoveTag(String),
    AddCollaborator(String),
    RemoveCollaborator(String),
    AddCc(String),
    RemoveCc(String),
    /// A `participants` row with role `cc`.
    AddCcParticipant(String),
    /// Removes the `participants` row, only while its role is still `cc`.
    RemoveCcParticipant(String),
    /// Merge this ticket into that one, collaborators and copied addresses included.
    MergeInto(TicketId),
    Category(Option<String>),
    Team(Option<String>),
    /// The team's round-robin cursor moves to this member.
    TeamCursor {
        team: String,
        agent: String,
    },
    /// The handling report of alert `alert`: this text, or (`None`) the reply's body.
    Report {
        alert: i64,
        text: Option<String>,
    },
    /// The acting agent is away (true) or back.
    Away(bool),
    /// The ticket's chat customer is the customer with this address (`#link`): the
    /// identity is linked, and profiles and tickets become that customer's.
    Link {
        customer: i64,
        email: String,
    },
    /// A change to the ticket's customer (`#profile`).
    Profile {
        customer: i64,
        change: ProfileChange,
    },
    /// `#feedback`, with its theme.
    Feedback {
        text: String,
        theme: String,
    },
    /// Mark this `command_log` row undone.
    MarkUndone(i64),
    /// Move `updated_at` to now.
    Touch,
}

/// What one reply's commands will do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The ticket the writes are for.
    pub ticket: TicketId,
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
    /// The ticket this one will be merged into.
    pub merged_into: Option<TicketId>,
    /// `#via`: the channel this reply goes out on.
    pub via: Option<crate::domain::Channel>,
    /// The `command_log` row `#undo` reverts.
    pub undone: Option<i64>,
    /// The writes, in order: the undo's first, then the commands' in line order, the
    /// merge last.
    pub writes: Vec<Write>,
    /// What the reply's commands (after the undo) change, field by field from → to:
    /// the new `command_log` row's `undo`. Empty: no row.
    pub changes: UndoState,
    /// The commands that changed something, canonically: the row's `commands`.
    pub changed: Vec<String>,
}

/// The result of one command.
#[derive(Debug)]
enum Outcome {
    /// Applied and changed the ticket.
    Changed(String),
    /// Applied, nothing to change.
    Unchanged(String),
    Rejected(String),
}

/// The ticket as the commands so far have left it.
struct Ticket {
    state: TicketState,
    tags: Vec<String>,
    cc: Vec<String>,
    collaborators: Vec<String>,
    participants: Vec<(String, String)>,
}

impl Ticket {
    fn is_cc(&self, email: &str) -> bool {
        self.cc.iter().any(|c| c.eq_ignore_ascii_case(email))
    }

    fn is_collaborator(&self, email: &str) -> bool {
        self.collaborators
            .iter()
            .any(|c| c.eq_ignore_ascii_case(email))
    }

    fn participant_role(&self, email: &str) -> Option<&str> {
        self.participants
            .iter()
            .find(|(e, _)| e.eq_ignore_ascii_case(email))
            .map(|(_, role)| role.as_str())
    }
}

/// Plans `commands` (in the form `commands::parse::ParsedReply::commands` gives them)
/// against `snapshot`, by the rules in the module documentation.
pub fn plan(snapshot: &Snapshot, actor: &Actor<'_>, commands: &[(usize, String, Command)]) -> Plan {
    let mut plan = Plan {
        ticket: snapshot.ticket.id,
        ..Plan::default()
    };
    let mut t = Ticket {
        state: snapshot.ticket.clone(),
        tags: snapshot.tags.clone(),
        cc: snapshot.cc.clone(),
        collaborators: snapshot.collaborators.clone(),
        participants: snapshot.participants.clone(),
    };

    if let Some((_, line, _)) = commands.iter().find(|(_, _, c)| *c == Command::Undo) {
        let outcome = match t.state.merged_into {
            Some(into) => Outcome::Rejected(merged_away(t.state.id, into)),
            None => undo_last(&mut plan, &mut t, snapshot.last_undoable.as_ref()),
        };
        push(&mut plan, &Command::Undo.canonical(), line, outcome);
    }

    let mut merge: Option<(&String, TicketId)> = None;
    // The open ticket `#link` joins this one to (when no `#merge` says otherwise).
    let mut link_merge: Option<TicketId> = None;
    for (_, line, command) in commands {
        let text = command.canonical();
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
                plan.note = true;
                Outcome::Unchanged(
                    "this reply is an internal note; the customer does not get it".into(),
                )
            }
            Command::Quiet => {
                plan.quiet = true;
                Outcome::Unchanged("no receipt unless something fails".into())
            }
            Command::Help => {
                plan.help = true;
                Outcome::Unchanged("the command list is on its way".into())
            }
            // Done by the caller, which owns the held message.
            Command::Release(_) => continue,
            // Done by the caller (`agent::kb`): they touch the knowledge base and the
            // classifier, not the ticket.
            Command::Kb(_) | Command::Wrong(_) | Command::Problem(_) => continue,
            Command::Via(channel) => {
                plan.via = Some(*channel);
                Outcome::Unchanged(format!("this reply goes to the customer by {channel}"))
            }
            Command::Link(email) => {
                let (outcome, join) = link(&mut plan, snapshot, email);
                if let Some(t) = join
                    && merge.is_none()
                {
                    link_merge = Some(t);
                }
                outcome
            }
            Command::Macro(name) => {
                if (actor.macro_exists)(name) {
                    plan.macros.push(name.clone());
                    Outcome::Unchanged(format!("macro {name} inserted"))
                } else {
                    Outcome::Rejected(format!("no macro named {name}"))
                }
            }
            Command::Away | Command::Back => {
                let away = *command == Command::Away;
                if snapshot.away == away {
                    Outcome::Unchanged(if away {
                        "you were already away".into()
                    } else {
                        "you were not away".into()
                    })
                } else {
                    plan.writes.push(Write::Away(away));
                    Outcome::Unchanged(if away {
                        "you are away: no new tickets until #back".into()
                    } else {
                        "welcome back: new tickets reach you again".into()
                    })
                }
            }
            Command::Report(text) => match snapshot.open_alert {
                None => {
                    Outcome::Rejected("this ticket has no red alert waiting for a report".into())
                }
                Some(_) if text.is_none() && !actor.has_body => {
                    Outcome::Rejected("#report needs text on its line or below it".into())
                }
                Some(alert) => {
                    if text.is_none() {
                        plan.note = true;
                    }
                    plan.writes.push(Write::Report {
                        alert,
                        text: text.clone(),
                    });
                    Outcome::Unchanged(format!("report recorded on red alert {alert}"))
                }
            },
            Command::Profile(change) => profile(&mut plan, snapshot.customer.as_ref(), change),
            Command::Feedback(text) => {
                let theme = crate::profile::feedback_theme(text, &snapshot.categories);
                plan.writes.push(Write::Feedback {
                    text: text.clone(),
                    theme: theme.clone(),
                });
                Outcome::Unchanged(format!("thank you; recorded under {theme} for the admins"))
            }
            Command::Assign(_)
            | Command::Status(_)
            | Command::Priority(_)
            | Command::Tag { .. }
            | Command::Invite(_)
            | Command::Cc(_)
            | Command::Category(_)
            | Command::Transfer(_)
                if let Some(into) = t.state.merged_into =>
            {
                Outcome::Rejected(merged_away(t.state.id, into))
            }
            Command::Assign(target) => assign(&mut plan, &mut t, actor, target),
            Command::Status(s) => {
                if t.state.status == *s {
                    Outcome::Unchanged(format!("status was already {s}"))
                } else {
                    plan.writes.push(Write::Status(*s));
                    record(&mut plan.changes.status, t.state.status, *s);
                    t.state.status = *s;
                    Outcome::Changed(format!("status is now {s}"))
                }
            }
            Command::Priority(p) => {
                if t.state.priority == *p {
                    Outcome::Unchanged(format!("priority was already {p}"))
                } else {
                    plan.writes.push(Write::Priority(*p));
                    record(&mut plan.changes.priority, t.state.priority, *p);
                    t.state.priority = *p;
                    Outcome::Changed(format!("priority is now {p}"))
                }
            }
            Command::Tag { add, remove } => tag(&mut plan, &mut t, add, remove),
            Command::Invite(email) => invite(&mut plan, &mut t, email),
            Command::Cc(email) => cc(&mut plan, &mut t, actor, email),
            Command::Category(c) => {
                if t.state.category.as_deref() == Some(c.as_str()) {
                    Outcome::Unchanged(format!("category was already {c}"))
                } else {
                    plan.writes.push(Write::Category(Some(c.clone())));
                    record(
                        &mut plan.changes.category,
                        t.state.category.clone(),
                        Some(c.clone()),
                    );
                    t.state.category = Some(c.clone());
                    Outcome::Changed(format!("category is now {c}"))
                }
            }
            Command::Transfer(_) => transfer(&mut plan, &mut t, snapshot.transfer.as_ref()),
        };
        if matches!(outcome, Outcome::Changed(_)) {
            plan.changed.push(text.clone());
        }
        push(&mut plan, &text, line, outcome);
    }

    if let (Some(id), None, None) = (link_merge, merge, t.state.merged_into) {
        plan.writes.push(Write::MergeInto(id));
        plan.changes.merged_into = Some(id);
        plan.merged_into = Some(id);
    }
    if let Some((line, n)) = merge {
        let text = Command::Merge(n).canonical();
        let outcome = match t.state.merged_into {
            Some(into) => Outcome::Rejected(merged_away(t.state.id, into)),
            None => merge_into(&mut plan, &t, snapshot.merge_target, n),
        };
        if let Outcome::Changed(_) = outcome {
            plan.changed.push(text.clone());
            plan.merged_into = plan.changes.merged_into;
        }
        push(&mut plan, &text, line, outcome);
    }

    if !plan.changes.is_empty() {
        plan.writes.push(Write::Touch);
    }
    plan
}

/// `#link <email>`: only a chat sender links, to an address that is not the ticket's own
/// customer; the open ticket of that customer (if any) is returned for the merge.
fn link(plan: &mut Plan, snapshot: &Snapshot, email: &str) -> (Outcome, Option<TicketId>) {
    let Some(c) = snapshot.customer.as_ref() else {
        return (
            Outcome::Rejected("this ticket's customer is not known".into()),
            None,
        );
    };
    if crate::domain::Channel::of_identity(&c.email).is_none() {
        return (
            Outcome::Rejected(format!(
                "the customer {} writes by email; #link joins a chat sender to an email customer",
                c.email
            )),
            None,
        );
    }
    plan.writes.push(Write::Link {
        customer: c.id,
        email: email.to_string(),
    });
    let join = snapshot
        .link_ticket
        .filter(|(id, status)| *id != snapshot.ticket.id && *status != Status::Closed)
        .map(|(id, _)| id);
    let what = match join {
        Some(t) => format!(
            "{} is {email} now: one profile and history; this conversation joins their open ticket #{t}",
            c.email
        ),
        None => format!("{} is {email} now: one profile and history", c.email),
    };
    (Outcome::Unchanged(what), join)
}

/// `#profile`: the change is written with its event, but it is no ticket change, so it
/// writes no `command_log` row and `#undo` does not revert it.
fn profile(plan: &mut Plan, customer: Option<&CustomerFacts>, change: &ProfileChange) -> Outcome {
    let Some(c) = customer else {
        return Outcome::Rejected("this ticket's customer is not known".into());
    };
    let write = |plan: &mut Plan| {
        plan.writes.push(Write::Profile {
            customer: c.id,
            change: change.clone(),
        });
    };
    match change {
        ProfileChange::Note(_) => {
            write(plan);
            Outcome::Unchanged(format!(
                "note added to the profile of {}; it shows in their next notifications",
                c.email
            ))
        }
        ProfileChange::Tier(t) if *t == c.tier => {
            Outcome::Unchanged(format!("{} was already tier {t}", c.email))
        }
        ProfileChange::Tier(t) => {
            write(plan);
            Outcome::Unchanged(format!("{} is now tier {t} (was {})", c.email, c.tier))
        }
        ProfileChange::Lang(l) => {
            // Written even when equal: it marks the language as set by a person.
            write(plan);
            let was = c.language.as_deref().unwrap_or("unknown");
            Outcome::Unchanged(format!(
                "language of {} is now {l} (was {was}); detection no longer changes it",
                c.email
            ))
        }
    }
}

fn push(plan: &mut Plan, text: &str, line: &str, outcome: Outcome) {
    match outcome {
        Outcome::Changed(what) | Outcome::Unchanged(what) => {
            plan.applied.push(format!("{text}: {what}"));
        }
        Outcome::Rejected(why) => plan.rejected.push((line.to_string(), why)),
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

fn assign(plan: &mut Plan, t: &mut Ticket, actor: &Actor<'_>, target: &AssignTarget) -> Outcome {
    let assignee = match target {
        AssignTarget::Me => Some(actor.agent.to_string()),
        AssignTarget::Nobody => None,
        AssignTarget::Agent(typed) => {
            let wanted = typed.to_lowercase();
            let found = actor
                .agents
                .iter()
                .find(|(name, _)| name.to_lowercase() == wanted)
                .or_else(|| {
                    actor
                        .agents
                        .iter()
                        .find(|(_, email)| email.to_lowercase() == wanted)
                });
            match found {
                Some((name, _)) => Some(name.clone()),
                None => return Outcome::Rejected(format!("no agent named {typed}")),
            }
        }
    };
    if t.state.assignee == assignee {
        return Outcome::Unchanged(match &assignee {
            Some(name) => format!("already assigned to {name}"),
            None => "already unassigned".into(),
        });
    }
    plan.writes.push(Write::Assignee(assignee.clone()));
    record(
        &mut plan.changes.assignee,
        t.state.assignee.clone(),
        assignee.clone(),
    );
    let what = match &assignee {
        Some(name) => format!("assigned to {name}"),
        None => "unassigned".into(),
    };
    t.state.assignee = assignee;
    Outcome::Changed(what)
}

/// Records that `tag` changed one way for `#undo`, unless an earlier line of the same
/// reply changed it the other way: then the two cancel out.
fn record_change(this_way: &mut Vec<String>, other_way: &mut Vec<String>, tag: &str) {
    if let Some(i) = other_way.iter().position(|x| x == tag) {
        other_way.remove(i);
    } else {
        this_way.push(tag.to_string());
    }
}

fn tag(plan: &mut Plan, t: &mut Ticket, add: &[String], remove: &[String]) -> Outcome {
    let mut parts = Vec::new();
    let mut any = false;
    let changes = &mut plan.changes;
    for tag in add {
        if t.tags.contains(tag) {
            parts.push(format!("{tag} was already set"));
        } else {
            t.tags.push(tag.clone());
            plan.writes.push(Write::AddTag(tag.clone()));
            record_change(&mut changes.tags_added, &mut changes.tags_removed, tag);
            any = true;
            parts.push(format!("added {tag}"));
        }
    }
    for tag in remove {
        if let Some(i) = t.tags.iter().position(|x| x == tag) {
            t.tags.remove(i);
            plan.writes.push(Write::RemoveTag(tag.clone()));
            record_change(&mut changes.tags_removed, &mut changes.tags_added, tag);
            any = true;
            parts.push(format!("removed {tag}"));
        } else {
            parts.push(format!("{tag} was not set"));
        }
    }
    let what = parts.join("; ");
    if any {
        Outcome::Changed(what)
    } else {
        Outcome::Unchanged(what)
    }
}

/// Participant roles an internal collaborator may also have.
const INTERNAL_ROLES: &[&str] = &["agent", "collaborator"];

fn invite(plan: &mut Plan, t: &mut Ticket, email: &str) -> Outcome {
    let email = normalize_address(email);
    // Collaborators read internal notes: no customer-side address may become one.
    if email == normalize_address(&t.state.customer_email) {
        return Outcome::Rejected(format!(
            "{email} is this ticket's customer; collaborators see internal notes"
        ));
    }
    if t.is_cc(&email) {
        return Outcome::Rejected(format!(
            "{email} is copied on this ticket as a customer address; collaborators see internal notes"
        ));
    }
    if let Some(role) = t.participant_role(&email)
        && !INTERNAL_ROLES.contains(&role)
    {
        return Outcome::Rejected(format!(
            "{email} takes part in this ticket on the customer's side ({role}); collaborators see internal notes"
        ));
    }
    if t.is_collaborator(&email) {
        return Outcome::Unchanged(format!("{email} was already invited"));
    }
    t.collaborators.push(email.clone());
    plan.writes.push(Write::AddCollaborator(email.clone()));
    plan.changes.invited.push(email.clone());
    Outcome::Changed(format!("{email} invited as a collaborator"))
}

fn cc(plan: &mut Plan, t: &mut Ticket, actor: &Actor<'_>, email: &str) -> Outcome {
    let email = normalize_address(email);
    if let Some((name, _)) = actor
        .agents
        .iter()
        .find(|(_, a)| normalize_address(a) == email)
    {
        return Outcome::Rejected(format!(
            "{email} is agent {name}'s address; use #invite for colleagues"
        ));
    }
    if t.is_collaborator(&email) {
        return Outcome::Rejected(format!(
            "{email} is an internal collaborator on this ticket; it cannot also be copied as a customer address"
        ));
    }
    if email == normalize_address(&t.state.customer_email) {
        return Outcome::Unchanged(format!(
            "{email} is this ticket's customer and gets every reply already"
        ));
    }
    if t.is_cc(&email) {
        return Outcome::Unchanged(format!("{email} was already copied"));
    }
    t.cc.push(email.clone());
    plan.writes.push(Write::AddCc(email.clone()));
    plan.changes.cc_added.push(email.clone());
    if t.participant_role(&email).is_none() {
        t.participants.push((email.clone(), "cc".to_string()));
        plan.writes.push(Write::AddCcParticipant(email.clone()));
        plan.changes.participants_added.push(email.clone());
    }
    Outcome::Changed(format!("{email} is now copied on replies to the customer"))
}

fn merge_into(
    plan: &mut Plan,
    t: &Ticket,
    target: Option<(TicketId, Option<(TicketId, Status)>)>,
    n: TicketId,
) -> Outcome {
    if n == t.state.id {
        return Outcome::Rejected("a ticket cannot be merged into itself".into());
    }
    // The snapshot followed merges: #n may now live on in another ticket.
    let Some((id, status)) = target.filter(|(m, _)| *m == n).and_then(|(_, to)| to) else {
        return Outcome::Rejected(format!("no ticket #{n}"));
    };
    if id == t.state.id {
        return Outcome::Rejected(format!("ticket #{n} was merged into this ticket already"));
    }
    let via = if id == n {
        String::new()
    } else {
        format!(" (#{n} had been merged into #{id})")
    };
    if status == Status::Closed {
        return Outcome::Rejected(format!(
            "ticket #{id}{via} is closed; reopen it before merging into it"
        ));
    }
    plan.writes.push(Write::MergeInto(id));
    plan.changes.merged_into = Some(id);
    Outcome::Changed(format!(
        "merged into #{id}{via}; this ticket is closed and its messages, participants, tags, cc and collaborators moved there"
    ))
}

/// Reverts the agent's newest undoable set on this ticket.
fn transfer(
    plan: &mut Plan,
    t: &mut Ticket,
    route: Option<&Result<TransferRoute, String>>,
) -> Outcome {
    let route = match route {
        Some(Ok(r)) => r,
        Some(Err(why)) => return Outcome::Rejected(why.clone()),
        None => return Outcome::Rejected("no team to transfer to".into()),
    };
    let team = Some(route.team.clone());
    if t.state.team != team {
        plan.writes.push(Write::Team(team.clone()));
        record(&mut plan.changes.team, t.state.team.clone(), team.clone());
        t.state.team = team;
    }
    if t.state.assignee != route.assignee {
        plan.writes.push(Write::Assignee(route.assignee.clone()));
        record(
            &mut plan.changes.assignee,
            t.state.assignee.clone(),
            route.assignee.clone(),
        );
        t.state.assignee = route.assignee.clone();
    }
    match &route.assignee {
        Some(a) => {
            plan.writes.push(Write::TeamCursor {
                team: route.team.clone(),
                agent: a.clone(),
            });
            Outcome::Changed(format!("transferred to {}, assigned to {a}", route.team))
        }
        None => Outcome::Changed(format!(
            "transferred to {}, unassigned: {}",
            route.team,
            route.why_nobody.as_deref().unwrap_or("nobody is available")
        )),
    }
}

fn undo_last(plan: &mut Plan, t: &mut Ticket, entry: Option<&CommandLogEntry>) -> Outcome {
    let Some(entry) = entry else {
        return Outcome::Rejected("nothing to undo".into());
    };
    let what = if entry.commands.is_empty() {
        format!("your commands of {}", entry.created_at)
    } else {
        format!("{} (of {})", entry.commands.join(", "), entry.created_at)
    };
    let Some(set) = &entry.undo else {
        return Outcome::Rejected(format!(
            "{what} cannot be undone: the record of the state before is unreadable"
        ));
    };
    if let Some(into) = set.merged_into {
        return Outcome::Rejected(format!(
            "{what} merged ticket #{} into #{into}; a merge cannot be undone",
            entry.ticket_id
        ));
    }
    if entry.ticket_id != t.state.id {
        return Outcome::Rejected(format!(
            "{what} applied to ticket #{}, which has since been merged into this one; \
             commands before a merge cannot be undone",
            entry.ticket_id
        ));
    }

    // Put a field back only while it still holds what the set gave it.
    let mut kept = Vec::new();
    if let Some(c) = &set.assignee {
        if t.state.assignee == c.after {
            plan.writes.push(Write::Assignee(c.before.clone()));
            t.state.assignee = c.before.clone();
        } else {
            let now = t.state.assignee.as_deref().unwrap_or("nobody");
            kept.push(format!("assignee stays {now} (changed since)"));
        }
    }
    if let Some(c) = &set.status {
        if t.state.status == c.after {
            plan.writes.push(Write::Status(c.before));
            t.state.status = c.before;
        } else {
            kept.push(format!("status stays {} (changed since)", t.state.status));
        }
    }
    if let Some(c) = &set.priority {
        if t.state.priority == c.after {
            plan.writes.push(Write::Priority(c.before));
            t.state.priority = c.before;
        } else {
            kept.push(format!(
                "priority stays {} (changed since)",
                t.state.priority
            ));
        }
    }
    if let Some(c) = &set.category {
        if t.state.category == c.after {
            plan.writes.push(Write::Category(c.before.clone()));
            t.state.category = c.before.clone();
        } else {
            kept.push("category stays (changed since)".to_string());
        }
    }
    if let Some(c) = &set.team {
        if t.state.team == c.after {
            plan.writes.push(Write::Team(c.before.clone()));
            t.state.team = c.before.clone();
        } else {
            kept.push("team stays (changed since)".to_string());
        }
    }
    // Tags as a difference, and the rows the set added; each write is harmless if the
    // row is gone already.
    for tag in &set.tags_added {
        t.tags.retain(|x| x != tag);
        plan.writes.push(Write::RemoveTag(tag.clone()));
    }
    for tag in &set.tags_removed {
        if !t.tags.contains(tag) {
            t.tags.push(tag.clone());
        }
        plan.writes.push(Write::AddTag(tag.clone()));
    }
    for e in &set.cc_added {
        t.cc.retain(|x| x != e);
        plan.writes.push(Write::RemoveCc(e.clone()));
    }
    for e in &set.participants_added {
        t.participants.retain(|(x, role)| !(x == e && role == "cc"));
        plan.writes.push(Write::RemoveCcParticipant(e.clone()));
    }
    for e in &set.invited {
        t.collaborators.retain(|x| x != e);
        plan.writes.push(Write::RemoveCollaborator(e.clone()));
    }
    plan.writes.push(Write::MarkUndone(entry.id));
    plan.writes.push(Write::Touch);
    plan.undone = Some(entry.id);
    let mut out = format!("reverted {what}");
    if !kept.is_empty() {
        out.push_str("; ");
        out.push_str(&kept.join("; "));
    }
    Outcome::Changed(out)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
