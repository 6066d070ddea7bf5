//! `plan` without a database: every command, every rejection reason, `#undo`.

use super::*;
use crate::commands::parse::parse_reply;

const CUSTOMER: &str = "cust@example.org";

fn ticket() -> TicketState {
    TicketState {
        id: 1,
        status: Status::Open,
        priority: Priority::Normal,
        assignee: None,
        merged_into: None,
        customer_email: CUSTOMER.into(),
        category: None,
        team: None,
    }
}

fn snapshot() -> Snapshot {
    Snapshot::new(ticket())
}

/// Parses `text` as `agent`'s reply and plans it against `s`.
fn run(s: &Snapshot, agent: &str, text: &str) -> Plan {
    let parsed = parse_reply(text);
    assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
    let agents = vec![
        ("alice".to_string(), "alice@example.com".to_string()),
        ("Bob".to_string(), "bob@example.com".to_string()),
    ];
    let exists = |name: &str| name == "refund-policy";
    let actor = Actor {
        agent,
        agents: &agents,
        macro_exists: &exists,
        has_body: !parsed.body.trim().is_empty(),
    };
    plan(s, &actor, &parsed.commands)
}

fn reasons(p: &Plan) -> Vec<&str> {
    p.rejected.iter().map(|(_, why)| why.as_str()).collect()
}

/// A `command_log` entry of `agent` on ticket 1 with `undo`.
fn entry(id: i64, commands: &[&str], undo: UndoState) -> CommandLogEntry {
    CommandLogEntry {
        id,
        ticket_id: 1,
        agent: "alice".into(),
        message_row: None,
        commands: commands.iter().map(|c| c.to_string()).collect(),
        undo: Some(undo),
        undone_at: None,
        created_at: "2026-01-02T00:00:01.000000Z".into(),
    }
}

#[test]
fn assign_me_by_name_by_address_none_and_unknown() {
    let s = snapshot();
    let p = run(&s, "alice", "#assign me");
    assert_eq!(p.applied, ["#assign me: assigned to alice"]);
    assert_eq!(
        p.writes,
        [Write::Assignee(Some("alice".into())), Write::Touch]
    );
    assert_eq!(
        p.changes.assignee,
        Some(Change {
            before: None,
            after: Some("alice".into())
        })
    );
    assert_eq!(p.changed, ["#assign me"]);

    // Case-insensitive; the configured spelling is planned.
    let p = run(&s, "alice", "#assign BOB");
    assert_eq!(p.writes[0], Write::Assignee(Some("Bob".into())));
    let p = run(&s, "alice", "#assign bob@example.com");
    assert_eq!(p.writes[0], Write::Assignee(Some("Bob".into())));

    let p = run(&s, "alice", "#assign carol\n#priority high");
    assert_eq!(
        p.rejected,
        [(
            "#assign carol".to_string(),
            "no agent named carol".to_string()
        )]
    );
    assert_eq!(p.applied, ["#priority high: priority is now high"]);

    let p = run(&s, "alice", "#assign none");
    assert_eq!(p.applied, ["#assign none: already unassigned"]);
    assert!(p.writes.is_empty() && p.changes.is_empty() && p.changed.is_empty());

    let mut s = snapshot();
    s.ticket.assignee = Some("alice".into());
    let p = run(&s, "alice", "#assign alice");
    assert_eq!(p.applied, ["#assign alice: already assigned to alice"]);
    assert!(p.writes.is_empty());
    let p = run(&s, "Bob", "#assign none");
    assert_eq!(p.applied, ["#assign none: unassigned"]);
    assert_eq!(p.writes, [Write::Assignee(None), Write::Touch]);
}

#[test]
fn status_and_priority_in_line_order_under_their_canonical_names() {
    let s = snapshot();
    let p = run(&s, "alice", "#priority urgent\n#close");
    assert_eq!(
        p.applied,
        [
            "#priority urgent: priority is now urgent",
            "#status closed: status is now closed"
        ]
    );
    assert_eq!(
        p.writes,
        [
            Write::Priority(Priority::Urgent),
            Write::Status(Status::Closed),
            Write::Touch
        ]
    );
    assert_eq!(p.changed, ["#priority urgent", "#status closed"]);
    assert_eq!(
        p.changes.status,
        Some(Change {
            before: Status::Open,
            after: Status::Closed
        })
    );
    assert_eq!(
        p.changes.assignee, None,
        "untouched fields are not recorded"
    );

    let p = run(&s, "alice", "#reopen\n#priority normal");
    assert_eq!(
        p.applied,
        [
            "#status open: status was already open",
            "#priority normal: priority was already normal"
        ]
    );
    assert!(p.writes.is_empty() && p.changes.is_empty());
}

#[test]
fn tags_added_removed_and_absent() {
    let mut s = snapshot();
    s.tags = vec!["billing".into(), "vip".into()];
    let p = run(&s, "alice", "#tag -vip -spam +Billing new");
    assert_eq!(
        p.applied,
        [
            "#tag billing new -vip -spam: billing was already set; added new; removed vip; spam was not set"
        ]
    );
    assert_eq!(
        p.writes,
        [
            Write::AddTag("new".into()),
            Write::RemoveTag("vip".into()),
            Write::Touch
        ]
    );
    assert_eq!(p.changes.tags_added, ["new"]);
    assert_eq!(p.changes.tags_removed, ["vip"]);

    let p = run(&s, "alice", "#tag -nothing");
    assert!(p.writes.is_empty() && p.changes.is_empty() && p.rejected.is_empty());
}

#[test]
fn tag_lines_that_cancel_out_change_nothing_to_log() {
    let mut s = snapshot();
    s.tags = vec!["x".into()];
    let p = run(&s, "alice", "#tag -x\n#tag x\n#tag y\n#tag -y");
    assert_eq!(p.applied.len(), 4);
    // Each line sees what the one before did.
    assert_eq!(
        p.writes,
        [
            Write::RemoveTag("x".into()),
            Write::AddTag("x".into()),
            Write::AddTag("y".into()),
            Write::RemoveTag("y".into())
        ]
    );
    assert!(p.changes.is_empty(), "{:?}", p.changes);
    assert!(!p.writes.contains(&Write::Touch));
}

#[test]
fn invite_never_takes_a_customer_side_address() {
    let mut s = snapshot();
    s.cc = vec!["copied@example.org".into()];
    s.participants = vec![
        (CUSTOMER.into(), "customer".into()),
        ("boss@example.org".into(), "cc".into()),
        ("carol@example.com".into(), "agent".into()),
    ];
    s.collaborators = vec!["legal@example.com".into()];
    let p = run(
        &s,
        "alice",
        "#invite Cust@Example.org boss@example.org copied@example.org\n\
         #invite Legal@Example.COM carol@example.com new@example.com",
    );
    assert_eq!(
        reasons(&p),
        [
            "cust@example.org is this ticket's customer; collaborators see internal notes",
            "boss@example.org takes part in this ticket on the customer's side (cc); collaborators see internal notes",
            "copied@example.org is copied on this ticket as a customer address; collaborators see internal notes",
        ]
    );
    assert_eq!(
        p.applied,
        [
            "#invite Legal@example.com: legal@example.com was already invited",
            "#invite carol@example.com: carol@example.com invited as a collaborator",
            "#invite new@example.com: new@example.com invited as a collaborator",
        ]
    );
    assert_eq!(
        p.writes,
        [
            Write::AddCollaborator("carol@example.com".into()),
            Write::AddCollaborator("new@example.com".into()),
            Write::Touch
        ]
    );
    assert_eq!(p.changes.invited, ["carol@example.com", "new@example.com"]);
    assert!(p.changes.participants_added.is_empty(), "not a participant");
}

#[test]
fn cc_adds_the_address_and_a_participant_but_never_an_internal_one() {
    let mut s = snapshot();
    s.participants = vec![
        (CUSTOMER.into(), "customer".into()),
        ("Known@example.org".into(), "participant".into()),
    ];
    s.cc = vec!["old@example.org".into()];
    s.collaborators = vec!["helper@example.com".into()];
    let p = run(
        &s,
        "alice",
        "#cc wife@example.org known@example.org old@example.org cust@example.org\n\
         #cc BOB@example.com helper@example.com",
    );
    assert_eq!(
        reasons(&p),
        [
            "bob@example.com is agent Bob's address; use #invite for colleagues",
            "helper@example.com is an internal collaborator on this ticket; it cannot also be copied as a customer address",
        ]
    );
    assert_eq!(
        p.applied,
        [
            "#cc wife@example.org: wife@example.org is now copied on replies to the customer",
            "#cc known@example.org: known@example.org is now copied on replies to the customer",
            "#cc old@example.org: old@example.org was already copied",
            "#cc cust@example.org: cust@example.org is this ticket's customer and gets every reply already",
        ]
    );
    // An existing participant keeps its role: no participant row for it.
    assert_eq!(
        p.writes,
        [
            Write::AddCc("wife@example.org".into()),
            Write::AddCcParticipant("wife@example.org".into()),
            Write::AddCc("known@example.org".into()),
            Write::Touch
        ]
    );
    assert_eq!(
        p.changes.cc_added,
        ["wife@example.org", "known@example.org"]
    );
    assert_eq!(p.changes.participants_added, ["wife@example.org"]);

    // What one line copied, the next cannot invite.
    let p = run(
        &s,
        "alice",
        "#cc new@example.org\n#invite other@example.org",
    );
    assert!(p.rejected.is_empty());
    let mut s2 = snapshot();
    s2.cc = vec!["new@example.org".into()];
    let p = run(&s2, "alice", "#invite new@example.org");
    assert!(reasons(&p)[0].contains("copied on this ticket"), "{p:?}");
}

#[test]
fn flags_and_macros_change_nothing() {
    let s = snapshot();
    let p = run(
        &s,
        "alice",
        "#note\n#quiet\n#help\n#macro refund-policy\n#macro nope\n#release\nText",
    );
    assert!(p.note && p.quiet && p.help);
    assert_eq!(p.macros, ["refund-policy"]);
    assert_eq!(
        p.rejected,
        [("#macro nope".to_string(), "no macro named nope".to_string())]
    );
    assert_eq!(
        p.applied,
        [
            "#note: this reply is an internal note; the customer does not get it",
            "#quiet: no receipt unless something fails",
            "#help: the command list is on its way",
            "#macro refund-policy: macro refund-policy inserted",
        ],
        "#release is the caller's"
    );
    assert!(p.writes.is_empty() && p.changes.is_empty() && p.merged_into.is_none());
}

#[test]
fn merge_comes_last_and_follows_a_merged_target() {
    let mut s = snapshot();
    s.merge_target = Some((2, Some((2, Status::Open))));
    let p = run(&s, "alice", "#merge 2\n#tag billing\n#status pending");
    assert!(p.rejected.is_empty(), "{p:?}");
    assert_eq!(p.merged_into, Some(2));
    assert!(
        p.applied[2].starts_with("#merge 2: merged into #2;"),
        "{p:?}"
    );
    assert_eq!(
        p.writes,
        [
            Write::AddTag("billing".into()),
            Write::Status(Status::Pending),
            Write::MergeInto(2),
            Write::Touch
        ]
    );
    assert_eq!(p.changes.merged_into, Some(2));
    assert_eq!(p.changed, ["#tag billing", "#status pending", "#merge 2"]);

    s.merge_target = Some((2, Some((3, Status::Pending))));
    let p = run(&s, "alice", "#merge [#2]");
    assert_eq!(p.merged_into, Some(3));
    assert!(
        p.applied[0].starts_with("#merge 2: merged into #3 (#2 had been merged into #3);"),
        "{p:?}"
    );
}

#[test]
fn bad_merge_targets_are_rejected() {
    let mut s = snapshot();
    for (target, text, reason) in [
        (Some((99, None)), "#merge 99", "no ticket #99"),
        (None, "#merge 5", "no ticket #5"),
        (
            Some((1, Some((1, Status::Open)))),
            "#merge 1",
            "a ticket cannot be merged into itself",
        ),
        (
            Some((2, Some((2, Status::Closed)))),
            "#merge 2",
            "ticket #2 is closed; reopen it before merging into it",
        ),
        (
            Some((4, Some((2, Status::Closed)))),
            "#merge 4",
            "ticket #2 (#4 had been merged into #2) is closed; reopen it before merging into it",
        ),
        (
            Some((3, Some((1, Status::Open)))),
            "#merge 3",
            "ticket #3 was merged into this ticket already",
        ),
    ] {
        s.merge_target = target;
        let p = run(&s, "alice", text);
        assert_eq!(p.rejected, [(text.to_string(), reason.to_string())]);
        assert_eq!(p.merged_into, None);
        assert!(p.writes.is_empty() && p.changes.is_empty());
    }
}

#[test]
fn a_ticket_merged_away_takes_no_state_changing_command() {
    let mut s = snapshot();
    s.ticket.merged_into = Some(2);
    s.merge_target = Some((3, Some((3, Status::Open))));
    s.last_undoable = Some(entry(7, &["#status pending"], UndoState::default()));
    let p = run(
        &s,
        "alice",
        "#status open\n#assign me\n#priority high\n#tag x\n#invite a@example.com\n\
         #cc b@example.org\n#merge 3\n#undo\n#help",
    );
    let away = "ticket #1 was merged into #2; send commands to #2";
    assert_eq!(reasons(&p), [away; 8]);
    assert_eq!(p.rejected[0].0, "#undo", "#undo is planned first");
    assert!(p.help);
    assert!(p.writes.is_empty() && p.undone.is_none());
}

#[test]
fn undo_reverts_only_what_the_set_changed() {
    let mut s = snapshot();
    s.ticket.assignee = Some("alice".into());
    s.ticket.status = Status::Pending;
    s.ticket.priority = Priority::Urgent;
    s.tags = vec!["billing".into(), "other".into()];
    s.cc = vec!["wife@example.org".into()];
    s.participants = vec![("wife@example.org".into(), "cc".into())];
    s.collaborators = vec!["legal@example.com".into()];
    s.last_undoable = Some(entry(
        7,
        &["#assign me", "#status pending"],
        UndoState {
            assignee: Some(Change {
                before: Some("Bob".into()),
                after: Some("alice".into()),
            }),
            status: Some(Change {
                before: Status::Open,
                after: Status::Pending,
            }),
            // Someone changed the priority since: it stays.
            priority: Some(Change {
                before: Priority::Low,
                after: Priority::High,
            }),
            category: None,
            team: None,
            tags_added: vec!["billing".into()],
            tags_removed: vec!["spam".into()],
            cc_added: vec!["wife@example.org".into()],
            participants_added: vec!["wife@example.org".into()],
            invited: vec!["legal@example.com".into()],
            merged_into: None,
        },
    ));
    let p = run(&s, "alice", "#undo");
    assert!(p.rejected.is_empty(), "{p:?}");
    assert_eq!(
        p.applied,
        [
            "#undo: reverted #assign me, #status pending (of 2026-01-02T00:00:01.000000Z); \
          priority stays urgent (changed since)"
        ]
    );
    assert_eq!(
        p.writes,
        [
            Write::Assignee(Some("Bob".into())),
            Write::Status(Status::Open),
            Write::RemoveTag("billing".into()),
            Write::AddTag("spam".into()),
            Write::RemoveCc("wife@example.org".into()),
            Write::RemoveCcParticipant("wife@example.org".into()),
            Write::RemoveCollaborator("legal@example.com".into()),
            Write::MarkUndone(7),
            Write::Touch,
        ]
    );
    assert_eq!(p.undone, Some(7));
    assert!(p.changes.is_empty(), "an undo alone logs nothing");
    assert!(p.changed.is_empty());
}

#[test]
fn undo_runs_first_and_the_rest_sees_its_result() {
    let mut s = snapshot();
    s.ticket.status = Status::Pending;
    s.tags = vec!["x".into()];
    s.last_undoable = Some(entry(
        7,
        &["#status pending", "#tag x"],
        UndoState {
            status: Some(Change {
                before: Status::Open,
                after: Status::Pending,
            }),
            tags_added: vec!["x".into()],
            ..UndoState::default()
        },
    ));
    // After the undo the ticket is open without x again, so both commands change it.
    let p = run(&s, "alice", "#status pending\n#tag x\n#undo");
    assert!(p.applied[0].starts_with("#undo: reverted"), "{p:?}");
    assert_eq!(p.applied[1], "#status pending: status is now pending");
    assert_eq!(p.applied[2], "#tag x: added x");
    assert_eq!(
        p.changes.status,
        Some(Change {
            before: Status::Open,
            after: Status::Pending
        })
    );
    assert_eq!(p.changes.tags_added, ["x"]);
    assert_eq!(p.changed, ["#status pending", "#tag x"]);
    assert_eq!(p.writes.last(), Some(&Write::Touch));
}

#[test]
fn undo_rejections() {
    let mut s = snapshot();
    let p = run(&s, "alice", "#undo");
    assert_eq!(
        p.rejected,
        [("#undo".to_string(), "nothing to undo".to_string())]
    );

    let merged = UndoState {
        merged_into: Some(2),
        ..UndoState::default()
    };
    s.last_undoable = Some(entry(7, &["#merge 2"], merged));
    assert_eq!(
        reasons(&run(&s, "alice", "#undo")),
        [
            "#merge 2 (of 2026-01-02T00:00:01.000000Z) merged ticket #1 into #2; a merge cannot be undone"
        ]
    );

    let mut elsewhere = entry(7, &[], UndoState::default());
    elsewhere.ticket_id = 3;
    s.last_undoable = Some(elsewhere);
    assert_eq!(
        reasons(&run(&s, "alice", "#undo")),
        [
            "your commands of 2026-01-02T00:00:01.000000Z applied to ticket #3, which has since \
          been merged into this one; commands before a merge cannot be undone"
        ]
    );

    let mut unreadable = entry(7, &["#close"], UndoState::default());
    unreadable.undo = None;
    s.last_undoable = Some(unreadable);
    let p = run(&s, "alice", "#undo\n#priority high");
    assert_eq!(
        reasons(&p),
        [
            "#close (of 2026-01-02T00:00:01.000000Z) cannot be undone: the record of the state \
          before is unreadable"
        ]
    );
    assert_eq!(p.applied, ["#priority high: priority is now high"]);
    assert!(p.undone.is_none());
    assert!(!p.writes.iter().any(|w| matches!(w, Write::MarkUndone(_))));
}

#[test]
fn category_is_set_undone_and_a_repeat_changes_nothing() {
    let mut s = snapshot();
    let p = run(&s, "alice", "#category Refund");
    assert_eq!(p.applied, ["#category refund: category is now refund"]);
    assert_eq!(
        p.writes,
        [Write::Category(Some("refund".into())), Write::Touch]
    );
    assert_eq!(p.changed, ["#category refund"]);
    s.ticket.category = Some("refund".into());
    let p = run(&s, "alice", "#category refund");
    assert_eq!(p.applied, ["#category refund: category was already refund"]);
    assert!(p.writes.is_empty(), "{:?}", p.writes);
    // #undo puts the category back while it still holds what the set gave it.
    s.last_undoable = Some(entry(
        3,
        &["#category refund"],
        UndoState {
            category: Some(Change {
                before: Some("return".into()),
                after: Some("refund".into()),
            }),
            ..UndoState::default()
        },
    ));
    let p = run(&s, "alice", "#undo");
    assert!(
        p.writes.contains(&Write::Category(Some("return".into()))),
        "{:?}",
        p.writes
    );
}

#[test]
fn transfer_routes_through_the_callers_answer_and_moves_the_cursor() {
    let mut s = snapshot();
    s.ticket.assignee = Some("alice".into());
    s.transfer = Some(Ok(TransferRoute {
        team: "billing".into(),
        assignee: Some("bob".into()),
        why_nobody: None,
    }));
    let p = run(&s, "alice", "#transfer billing");
    assert_eq!(
        p.applied,
        ["#transfer billing: transferred to billing, assigned to bob"]
    );
    assert_eq!(
        p.writes,
        [
            Write::Team(Some("billing".into())),
            Write::Assignee(Some("bob".into())),
            Write::TeamCursor {
                team: "billing".into(),
                agent: "bob".into()
            },
            Write::Touch
        ]
    );
    assert!(p.changes.team.is_some() && p.changes.assignee.is_some());
    // Nobody available: unassigned, and the receipt says why.
    s.transfer = Some(Ok(TransferRoute {
        team: "billing".into(),
        assignee: None,
        why_nobody: Some("every member is away".into()),
    }));
    let p = run(&s, "alice", "#transfer billing");
    assert!(
        p.applied[0].contains("every member is away"),
        "{:?}",
        p.applied
    );
    assert!(p.writes.contains(&Write::Assignee(None)));
    // An unknown team is refused with the caller's words.
    s.transfer = Some(Err("no team named bilin; did you mean billing?".into()));
    let p = run(&s, "alice", "#transfer bilin");
    assert_eq!(reasons(&p), ["no team named bilin; did you mean billing?"]);
    assert!(p.writes.is_empty());
}

#[test]
fn report_needs_an_open_alert_and_text_and_without_text_the_reply_is_internal() {
    let mut s = snapshot();
    let p = run(&s, "alice", "#report called them");
    assert_eq!(
        reasons(&p),
        ["this ticket has no red alert waiting for a report"]
    );
    s.open_alert = Some(9);
    let p = run(&s, "alice", "#report called them");
    assert_eq!(
        p.writes,
        [Write::Report {
            alert: 9,
            text: Some("called them".into())
        }]
    );
    assert!(
        !p.note,
        "text on the line: the body still goes to the customer"
    );
    let p = run(
        &s,
        "alice",
        "#report\n\nCalled the customer, account frozen.",
    );
    assert_eq!(
        p.writes,
        [Write::Report {
            alert: 9,
            text: None
        }]
    );
    assert!(
        p.note,
        "the body is the report: nothing reaches the customer"
    );
    let p = run(&s, "alice", "#report");
    assert_eq!(reasons(&p), ["#report needs text on its line or below it"]);
}

#[test]
fn away_and_back_write_only_when_they_change_something() {
    let mut s = snapshot();
    let p = run(&s, "alice", "#away");
    assert_eq!(p.writes, [Write::Away(true)]);
    assert!(
        p.changes.is_empty(),
        "no command log row for an agent-wide command"
    );
    s.away = true;
    let p = run(&s, "alice", "#away");
    assert!(p.writes.is_empty());
    assert_eq!(p.applied, ["#away: you were already away"]);
    let p = run(&s, "alice", "#back");
    assert_eq!(p.writes, [Write::Away(false)]);
}

fn chat_customer() -> CustomerFacts {
    CustomerFacts {
        id: 7,
        email: "telegram:shop_bot:5550001".into(),
        tier: "standard".into(),
        language: None,
    }
}

#[test]
fn link_joins_a_chat_sender_to_an_email_customer_and_their_open_ticket() {
    let mut s = snapshot();
    s.customer = Some(chat_customer());
    s.link_ticket = Some((3, Status::Open));
    let p = run(&s, "alice", "#link ann@customer.org");
    assert!(p.rejected.is_empty(), "{:?}", p.rejected);
    assert_eq!(
        p.writes,
        vec![
            Write::Link {
                customer: 7,
                email: "ann@customer.org".into()
            },
            Write::MergeInto(3),
            Write::Touch,
        ]
    );
    assert_eq!(p.merged_into, Some(3));
    assert!(
        p.applied[0].contains("joins their open ticket #3"),
        "{:?}",
        p.applied
    );
}

#[test]
fn link_without_an_open_ticket_links_only_and_an_email_customer_is_refused() {
    let mut s = snapshot();
    s.customer = Some(chat_customer());
    // A closed ticket, or this very ticket, is nowhere to join.
    for t in [Some((3, Status::Closed)), Some((1, Status::Open)), None] {
        s.link_ticket = t;
        let p = run(&s, "alice", "#link ann@customer.org");
        assert!(p.merged_into.is_none(), "{t:?}");
        assert!(matches!(p.writes[0], Write::Link { .. }));
    }
    let mut s = snapshot();
    s.customer = Some(CustomerFacts {
        email: CUSTOMER.into(),
        ..chat_customer()
    });
    let p = run(&s, "alice", "#link ann@customer.org");
    assert!(p.writes.is_empty(), "{:?}", p.writes);
    assert!(
        reasons(&p)[0].contains("writes by email"),
        "{:?}",
        p.rejected
    );
}

#[test]
fn a_matrix_sender_whose_id_has_an_at_sign_is_a_chat_identity_all_the_same() {
    let mut s = snapshot();
    s.customer = Some(CustomerFacts {
        email: "matrix:support:@ann:example.org".into(),
        ..chat_customer()
    });
    let p = run(&s, "alice", "#link ann@customer.org");
    assert!(p.rejected.is_empty(), "{:?}", p.rejected);
    assert!(matches!(p.writes[0], Write::Link { .. }));
    assert_eq!(
        crate::domain::Channel::of_identity("matrix:support:@ann:example.org"),
        Some(crate::domain::Channel::Matrix)
    );
    assert_eq!(crate::domain::Channel::of_identity("ann@example.org"), None);
    assert_eq!(crate::domain::Channel::of_identity("email:x:y"), None);
    assert_eq!(
        crate::domain::Channel::of_identity("mailto:ann@example.org"),
        None
    );
}

#[test]
fn via_names_the_channel_of_this_reply_only() {
    let p = run(&snapshot(), "alice", "#via email\nHello");
    assert_eq!(p.via, Some(crate::domain::Channel::Email));
    assert!(p.writes.is_empty());
    let p = run(&snapshot(), "alice", "#via telegram");
    assert_eq!(p.via, Some(crate::domain::Channel::Telegram));
}
