//! Issue 11, an agent's day through a real mail client: what reaches the customer is what
//! the agent sent, once; answering takes the ticket; receipts and subjects say what
//! happened. Real Dovecot in, real SMTP out.

use std::time::Duration;

use crate::agents::{agent_desk, alice_reply, open_ticket, ticket, token_of};
use crate::harness::mail;
use crate::support::CapturedMail;

fn mails_to(all: &[CapturedMail], rcpt: &str) -> Vec<CapturedMail> {
    all.iter()
        .filter(|m| m.rcpt_to.iter().any(|r| r == rcpt))
        .cloned()
        .collect()
}

#[test]
fn the_same_answer_sent_twice_within_a_minute_reaches_the_customer_once() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    let token = token_of(&n);
    let text = "Hi Ann,\n\nthe double charge is refunded today.\n\nBest,\nAlice";
    desk.deliver(&alice_reply(&token, id, &n, "dup-1@example.com", text));
    // A client retry: new Message-ID, same text.
    desk.deliver(&alice_reply(&token, id, &n, "dup-2@example.com", text));
    desk.run_once();
    std::thread::sleep(Duration::from_millis(500));
    let all = desk.smtp.messages();
    let to_ann = mails_to(&all, "ann@customer.org");
    assert_eq!(to_ann.len(), 1, "{to_ann:?}");
    let body = to_ann[0].body_text();
    assert_eq!(body.matches("Alice").count(), 1, "signed once:\n{body}");
    assert!(!body.contains("Hello"), "greeted once:\n{body}");
    let receipts: Vec<_> = mails_to(&all, "alice@example.com")
        .into_iter()
        .filter(|m| m.subject().contains("Receipt") && m.subject().contains("not sent twice"))
        .collect();
    assert_eq!(receipts.len(), 1, "a receipt says the double was not sent");
    assert!(receipts[0].body_text().contains("NOT sent again"));
}

#[test]
fn an_agent_who_answers_an_unassigned_ticket_takes_it() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    assert!(ticket(&desk, id)["assignee"].is_null());
    let token = token_of(&n);
    desk.deliver(&alice_reply(
        &token,
        id,
        &n,
        "take-1@example.com",
        "#priority high\n\nWe are on it.",
    ));
    desk.run_once();
    assert_eq!(ticket(&desk, id)["assignee"], "alice");
    let all = desk.smtp.messages();
    let receipt = mails_to(&all, "alice@example.com")
        .into_iter()
        .find(|m| m.subject().contains("Receipt"))
        .expect("a receipt");
    // The receipt's subject names what changed, the body the automatic assignment.
    let subject = receipt.subject();
    assert!(
        subject.contains("sent to the customer") && subject.contains("#priority high"),
        "{subject}"
    );
    assert!(
        receipt.body_text().contains("automatic"),
        "{}",
        receipt.body_text()
    );
    // The customer writes again: only alice is notified now, not bob.
    let before = mails_to(&desk.smtp.messages(), "bob@example.com").len();
    desk.deliver(&mail(
        "Ann Customer <ann@customer.org>",
        "support@example.com",
        &format!("Re: [#{id}] Invoice is wrong"),
        "ann-2@customer.org",
        "",
        "Thanks, waiting.",
    ));
    desk.run_once();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        mails_to(&desk.smtp.messages(), "bob@example.com").len(),
        before,
        "bob is no longer notified"
    );
}

#[test]
fn a_note_does_not_take_the_ticket() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    let token = token_of(&n);
    desk.deliver(&alice_reply(
        &token,
        id,
        &n,
        "note-1@example.com",
        "#note\nchecking with billing",
    ));
    desk.run_once();
    assert!(ticket(&desk, id)["assignee"].is_null());
}

#[test]
fn a_reply_to_a_closed_ticket_opens_one_without_the_old_tag() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    let token = token_of(&n);
    desk.deliver(&alice_reply(
        &token,
        id,
        &n,
        "close-1@example.com",
        "#status closed",
    ));
    desk.run_once();
    assert_eq!(ticket(&desk, id)["status"], "closed");
    desk.deliver(&mail(
        "Ann Customer <ann@customer.org>",
        "support@example.com",
        &format!("Re: [#{id}] Invoice is wrong"),
        "ann-late@customer.org",
        "",
        "One more question about it.",
    ));
    desk.run_once();
    let tickets = desk.tickets();
    let newest = tickets.last().unwrap();
    assert_ne!(newest["id"].as_i64().unwrap(), id, "{tickets:?}");
    assert_eq!(newest["subject"], "Invoice is wrong", "{newest}");
}
