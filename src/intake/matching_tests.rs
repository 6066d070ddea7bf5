//! The threading rules on hand-built snapshots: every rule, its reason, and the guards
//! that keep strangers out. No database.

use super::*;
use crate::domain::Direction;

const OWN: &str = "support@example.com";
const ALICE: &str = "alice@example.org";
const BOB: &str = "bob@example.net";
const MALLORY: &str = "mallory@evil.test";
const NOW: &str = "2026-12-07T12:00:00.000000Z";
const WINDOW_START: &str = "2026-11-30T12:00:00.000000Z";

fn own() -> Vec<String> {
    vec![OWN.to_string()]
}

fn mailbox(address: &str) -> Mailbox {
    Mailbox {
        name: None,
        address: address.to_string(),
    }
}

/// A snapshot with ticket 1 (Alice's, token `tok1`, subject "printer jam") and ticket 2
/// (Bob's, token `tok2`), each holding one customer message.
fn snapshot() -> Snapshot {
    let mut s = Snapshot {
        since_subject: WINDOW_START.to_string(),
        ..Snapshot::default()
    };
    add_ticket(&mut s, 1, 10, "tok1", "printer jam", Status::Open);
    add_ticket(&mut s, 2, 20, "tok2", "invoice", Status::Open);
    add_message(&mut s, "a1@example.org", 1, true);
    add_message(&mut s, "b1@example.net", 2, true);
    s.participants.insert((1, ALICE.to_string()));
    s.participants.insert((2, BOB.to_string()));
    s
}

fn add_ticket(
    s: &mut Snapshot,
    id: TicketId,
    customer: i64,
    token: &str,
    subject: &str,
    status: Status,
) {
    s.tickets.insert(
        id,
        TicketState {
            t: KnownTicket {
                id,
                status,
                customer_id: customer,
                token: token.to_string(),
                subject: subject.to_string(),
                subject_key: subject::normalize_subject(subject),
                updated_at: NOW.to_string(),
                merged_into: None,
            },
            dirty: false,
            new: false,
            was: status,
        },
    );
    s.tokens.insert(token.to_string(), id);
    s.by_subject
        .entry((customer, subject::normalize_subject(subject)))
        .or_default()
        .push(id);
}

fn add_message(s: &mut Snapshot, id: &str, ticket: TicketId, threads: bool) {
    s.messages.insert(
        id.to_string(),
        KnownMessage {
            row: s.messages.len() as i64 + 1,
            ticket: Some(ticket),
            body_sha256: String::new(),
            direction: Direction::Inbound,
            threads,
        },
    );
}

fn mail(from: &str, subject: &str) -> Inbound {
    Inbound {
        message_id: format!("new.{}@{}", subject.len(), from),
        from: Some(mailbox(from)),
        subject: subject.to_string(),
        to: vec![mailbox(OWN)],
        ..Inbound::default()
    }
}

fn decide(s: &Snapshot, p: &Inbound, customer: Option<i64>) -> Decision {
    let from = p.from.clone().unwrap_or_else(|| mailbox("nobody@invalid"));
    s.find_ticket(p, &p.message_id, &from, customer, &own())
}

#[test]
fn a_fresh_message_matches_nothing() {
    let s = snapshot();
    let d = decide(&s, &mail(ALICE, "a brand new question"), Some(10));
    assert_eq!(d.found, Found::Nothing);
    assert!(d.merges.is_empty() && d.links.is_empty());
}

#[test]
fn a_reply_token_in_a_recipient_finds_its_ticket() {
    let s = snapshot();
    let mut p = mail("someone@else.test", "whatever");
    p.to = vec![mailbox("support+tok2@example.com")];
    assert_eq!(
        decide(&s, &p, None).found,
        Found::Ticket(2, MatchReason::ReplyToken)
    );
}

#[test]
fn a_token_on_another_domain_is_no_token_of_ours() {
    let s = snapshot();
    let mut p = mail(ALICE, "whatever");
    p.to = vec![mailbox("support+tok2@elsewhere.test")];
    assert_eq!(decide(&s, &p, Some(10)).found, Found::Nothing);
}

#[test]
fn a_token_of_a_merged_ticket_leads_to_where_it_went() {
    let mut s = snapshot();
    if let Some(t) = s.tickets.get_mut(&2) {
        t.t.merged_into = Some(1);
    }
    let mut p = mail(BOB, "whatever");
    p.to = vec![mailbox("support+tok2@example.com")];
    assert_eq!(
        decide(&s, &p, Some(20)).found,
        Found::Ticket(1, MatchReason::ReplyToken)
    );
}

#[test]
fn references_from_a_participant_join_the_ticket() {
    let s = snapshot();
    let mut p = mail(ALICE, "Re: printer jam");
    p.references = vec!["a1@example.org".into()];
    assert_eq!(
        decide(&s, &p, Some(10)).found,
        Found::Ticket(1, MatchReason::References)
    );
}

#[test]
fn references_from_a_stranger_are_held_on_the_ticket_they_name() {
    let s = snapshot();
    let mut p = mail(MALLORY, "Re: printer jam");
    p.references = vec!["a1@example.org".into()];
    match decide(&s, &p, None).found {
        Found::Held {
            ticket,
            reason,
            why,
        } => {
            assert_eq!((ticket, reason), (1, MatchReason::References));
            assert!(why.contains(MALLORY) && why.contains("#cc"), "{why}");
        }
        other => panic!("expected held, got {other:?}"),
    }
}

#[test]
fn a_held_messages_id_leads_nowhere() {
    let mut s = snapshot();
    add_message(&mut s, "forged@evil.test", 1, false);
    let mut p = mail(ALICE, "hello");
    p.references = vec!["forged@evil.test".into()];
    assert_eq!(decide(&s, &p, Some(10)).found, Found::Nothing);
}

#[test]
fn a_late_parent_is_found_by_the_customer_reply_that_referenced_it() {
    let mut s = snapshot();
    s.referencing
        .entry("parent@example.org".into())
        .or_default()
        .insert(1);
    let mut p = mail(ALICE, "printer jam");
    p.message_id = "parent@example.org".into();
    assert_eq!(
        decide(&s, &p, Some(10)).found,
        Found::Ticket(1, MatchReason::ReferencedBy)
    );
}

#[test]
fn a_stranger_whose_id_a_ticket_references_is_not_joined_and_not_held() {
    let mut s = snapshot();
    s.referencing
        .entry("parent@evil.test".into())
        .or_default()
        .insert(1);
    let mut p = mail(MALLORY, "anything");
    p.message_id = "parent@evil.test".into();
    assert_eq!(decide(&s, &p, None).found, Found::Nothing);
}

#[test]
fn a_late_parent_of_two_tickets_of_one_customer_merges_them_into_the_older() {
    let mut s = snapshot();
    add_ticket(&mut s, 3, 10, "tok3", "printer jam again", Status::Open);
    add_message(&mut s, "a2@example.org", 3, true);
    s.participants.insert((3, ALICE.to_string()));
    let mut p = mail(ALICE, "Re: printer jam");
    p.references = vec!["a1@example.org".into(), "a2@example.org".into()];
    let d = decide(&s, &p, Some(10));
    assert_eq!(d.found, Found::Ticket(1, MatchReason::References));
    assert_eq!(d.merges, vec![3]);
    assert!(d.links.is_empty());
}

#[test]
fn a_message_joining_two_customers_tickets_links_them_and_merges_nothing() {
    let mut s = snapshot();
    // Alice was copied on Bob's ticket.
    s.participants.insert((2, ALICE.to_string()));
    let mut p = mail(ALICE, "Re: both");
    p.references = vec!["a1@example.org".into(), "b1@example.net".into()];
    let d = decide(&s, &p, Some(10));
    assert_eq!(d.found, Found::Ticket(1, MatchReason::References));
    assert!(d.merges.is_empty());
    assert_eq!(d.links.len(), 1);
    assert_eq!(d.links.first().map(|l| l.with), Some(2));
}

#[test]
fn a_closed_ticket_is_still_found_so_the_unit_can_open_a_linked_one() {
    let mut s = snapshot();
    if let Some(t) = s.tickets.get_mut(&1) {
        t.t.status = Status::Closed;
    }
    let mut p = mail(ALICE, "Re: printer jam");
    p.references = vec!["a1@example.org".into()];
    assert_eq!(
        decide(&s, &p, Some(10)).found,
        Found::Ticket(1, MatchReason::References)
    );
}

#[test]
fn a_sibling_sharing_an_unseen_parent_joins_from_a_participant_only() {
    let mut s = snapshot();
    s.referencing
        .entry("unseen-root@example.org".into())
        .or_default()
        .insert(1);
    let mut p = mail(ALICE, "Re: printer jam");
    p.message_id = "sibling@example.org".into();
    p.references = vec!["unseen-root@example.org".into()];
    assert_eq!(
        decide(&s, &p, Some(10)).found,
        Found::Ticket(1, MatchReason::SharedReference)
    );
    let mut q = p.clone();
    q.from = Some(mailbox(MALLORY));
    assert_eq!(decide(&s, &q, None).found, Found::Nothing);
}

#[test]
fn a_subject_tag_counts_only_from_a_participant() {
    let s = snapshot();
    let p = mail(BOB, "[#2] about my invoice");
    assert_eq!(
        decide(&s, &p, Some(20)).found,
        Found::Ticket(2, MatchReason::SubjectTag)
    );
    let q = mail(MALLORY, "[#2] about my invoice");
    assert_eq!(decide(&s, &q, None).found, Found::Nothing);
}

#[test]
fn the_same_subject_from_the_same_customer_within_the_window_joins() {
    let s = snapshot();
    assert_eq!(
        decide(&s, &mail(ALICE, "Re: Printer jam"), Some(10)).found,
        Found::Ticket(1, MatchReason::SubjectSender)
    );
    // Another customer with the same subject opens their own ticket.
    assert_eq!(
        decide(&s, &mail(BOB, "printer jam"), Some(20)).found,
        Found::Nothing
    );
}

#[test]
fn the_subject_rule_skips_closed_tickets_and_those_outside_the_window() {
    let mut s = snapshot();
    if let Some(t) = s.tickets.get_mut(&1) {
        t.t.status = Status::Closed;
    }
    assert_eq!(
        decide(&s, &mail(ALICE, "printer jam"), Some(10)).found,
        Found::Nothing
    );
    let mut s = snapshot();
    if let Some(t) = s.tickets.get_mut(&1) {
        t.t.updated_at = "2026-11-01T00:00:00.000000Z".into();
    }
    assert_eq!(
        decide(&s, &mail(ALICE, "printer jam"), Some(10)).found,
        Found::Nothing
    );
}

#[test]
fn rules_apply_in_order_token_before_references() {
    let s = snapshot();
    let mut p = mail(ALICE, "Re: printer jam");
    p.references = vec!["a1@example.org".into()];
    p.to = vec![mailbox("support+tok2@example.com")];
    assert_eq!(
        decide(&s, &p, Some(10)).found,
        Found::Ticket(2, MatchReason::ReplyToken)
    );
}

fn chat(account: &str, conversation: &str) -> Inbound {
    Inbound {
        channel: Channel::Json,
        account: Some(account.to_string()),
        conversation: Some(conversation.to_string()),
        external_id: Some("m1".into()),
        message_id: "m1@json.invalid".into(),
        from: Some(mailbox("json:sms:+4915112345678")),
        ..Inbound::default()
    }
}

#[test]
fn a_chat_message_joins_its_conversations_ticket() {
    let mut s = snapshot();
    s.conversations
        .insert(("json".into(), "sms".into(), "c-42".into()), 2);
    assert_eq!(
        decide(&s, &chat("sms", "c-42"), Some(30)).found,
        Found::Ticket(2, MatchReason::Conversation)
    );
    // The same conversation id on another account is another conversation.
    assert_eq!(
        decide(&s, &chat("whatsapp", "c-42"), Some(30)).found,
        Found::Nothing
    );
}

#[test]
fn a_reply_to_our_sent_chat_message_beats_the_conversation_but_only_in_that_conversation() {
    let mut s = snapshot();
    s.conversations
        .insert(("json".into(), "sms".into(), "c-42".into()), 2);
    s.sent.insert(
        ("json".into(), "sms".into(), "c-42".into(), "out-7".into()),
        1,
    );
    let mut p = chat("sms", "c-42");
    p.reply_to_external = Some("out-7".into());
    assert_eq!(
        decide(&s, &p, Some(30)).found,
        Found::Ticket(1, MatchReason::ChatReply)
    );
    // A reply naming our message from another conversation is not one: the snapshot is
    // keyed by conversation, so it falls to that conversation's rule.
    let mut elsewhere = chat("sms", "c-99");
    elsewhere.reply_to_external = Some("out-7".into());
    assert_eq!(decide(&s, &elsewhere, Some(30)).found, Found::Nothing);
    // An id we never sent: the conversation decides.
    p.reply_to_external = Some("out-8".into());
    assert_eq!(
        decide(&s, &p, Some(30)).found,
        Found::Ticket(2, MatchReason::Conversation)
    );
}

#[test]
fn a_linked_sender_joins_their_customer_s_open_ticket_when_the_conversation_has_none_open() {
    let mut s = snapshot();
    add_ticket(&mut s, 3, 30, "tok3", "chat ticket", Status::Closed);
    s.conversations
        .insert(("json".into(), "sms".into(), "c-42".into()), 3);
    let identity = "json:sms:+4915112345678".to_string();
    s.linked_open.insert(identity.clone(), 1);
    // The conversation's ticket is closed: the linked customer's open ticket takes it.
    assert_eq!(
        decide(&s, &chat("sms", "c-42"), Some(10)).found,
        Found::Ticket(1, MatchReason::LinkedCustomer)
    );
    // An open conversation ticket comes first.
    s.tickets.get_mut(&3).unwrap().t.status = Status::Open;
    assert_eq!(
        decide(&s, &chat("sms", "c-42"), Some(10)).found,
        Found::Ticket(3, MatchReason::Conversation)
    );
    // Not linked, conversation closed: the closed ticket is named (a follow-up opens).
    s.tickets.get_mut(&3).unwrap().t.status = Status::Closed;
    s.linked_open.clear();
    assert_eq!(
        decide(&s, &chat("sms", "c-42"), Some(10)).found,
        Found::Ticket(3, MatchReason::Conversation)
    );
    // A linked identity's customer ticket that is closed is no place to join.
    s.linked_open.insert(identity, 3);
    assert_eq!(
        decide(&s, &chat("sms", "c-99"), Some(10)).found,
        Found::Nothing
    );
}

#[test]
fn a_chat_message_is_matched_by_its_conversation_alone() {
    let s = snapshot();
    // Text that would be a subject tag, a token recipient or a same-subject match in mail.
    let mut p = chat("sms", "new-conv");
    p.subject = "[#1] printer jam".into();
    p.to = vec![mailbox("support+tok1@example.com")];
    p.references = vec!["a1@example.org".into()];
    assert_eq!(decide(&s, &p, Some(10)).found, Found::Nothing);
}

#[test]
fn mail_never_matches_by_conversation() {
    let mut s = snapshot();
    s.conversations
        .insert(("email".into(), "sms".into(), "c-42".into()), 2);
    let mut p = mail(MALLORY, "hello");
    p.account = Some("sms".into());
    p.conversation = Some("c-42".into());
    assert_eq!(decide(&s, &p, None).found, Found::Nothing);
}
