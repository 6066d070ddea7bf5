//! Issue 10, critical: a stranger must not take over someone else's ticket through
//! Message-ID and References. Each test is the attack as an outsider would mount it, through
//! the real Dovecot, the real binary and the real SMTP server, and checks that the victim's
//! ticket keeps its customer, its status and its answers.

use serde_json::Value;

use crate::agents::{agent_desk, alice_reply, token_of};
use crate::harness::{Desk, mail};
use crate::support::CapturedMail;

const MALLORY: &str = "Mallory <mallory@evil.test>";
const ANN: &str = "Ann Customer <ann@customer.org>";

fn mails_to(all: &[CapturedMail], rcpt: &str) -> Vec<CapturedMail> {
    all.iter()
        .filter(|m| m.rcpt_to.iter().any(|r| r == rcpt))
        .cloned()
        .collect()
}

/// Delivers one customer mail, runs a pass and returns the id of the ticket it opened.
fn open(desk: &Desk, from: &str, subject: &str, id: &str, body: &str) -> i64 {
    let before: Vec<i64> = if desk.db_path().exists() {
        desk.tickets()
            .iter()
            .map(|t| t["id"].as_i64().unwrap())
            .collect()
    } else {
        Vec::new()
    };
    desk.deliver(&mail(from, "support@example.com", subject, id, "", body));
    let r = desk.run_once();
    assert_eq!(r["new_tickets"], 1, "{r}");
    desk.tickets()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .find(|t| !before.contains(t))
        .unwrap()
}

/// The newest notification to alice about ticket `id`.
fn alice_notification(desk: &Desk, id: i64) -> CapturedMail {
    mails_to(&desk.smtp.messages(), "alice@example.com")
        .into_iter()
        .rev()
        .find(|m| m.subject().contains(&format!("[#{id}]")))
        .unwrap_or_else(|| panic!("no notification about #{id} to alice"))
}

/// The message on ticket `id` whose Message-ID is `message_id`, if it is there.
fn message_on(desk: &Desk, id: i64, message_id: &str) -> Option<Value> {
    desk.messages(id)
        .into_iter()
        .find(|m| m["message_id"].as_str() == Some(message_id))
}

/// The victim's ticket after an attack: still Ann's, open, not merged.
fn assert_still_anns(desk: &Desk, id: i64) {
    let t = desk.show(id);
    assert_eq!(t["customer"]["email"], "ann@customer.org", "{t}");
    assert!(t["merged_into"].is_null(), "ticket #{id} was merged: {t}");
}

/// Alice answers Ann on ticket `id` with a secret; it must reach Ann and nobody else.
fn alice_answers_only_ann(desk: &Desk, id: i64, reply_id: &str) {
    let n = alice_notification(desk, id);
    let before = desk.smtp.messages().len();
    desk.deliver(&alice_reply(
        &token_of(&n),
        id,
        &n,
        reply_id,
        "#quiet\nYour temporary password is Hunter-2-secret.",
    ));
    let r = desk.run_once();
    assert_eq!(r["failed"], 0, "{r}");
    let all = desk.sent(before + 1);
    let secret: Vec<&CapturedMail> = all
        .iter()
        .filter(|m| m.body_text().contains("Hunter-2-secret"))
        .collect();
    assert_eq!(secret.len(), 1, "{secret:?}");
    assert_eq!(
        secret[0].rcpt_to,
        ["ann@customer.org"],
        "the answer went astray"
    );
    assert!(
        mails_to(&all, "mallory@evil.test")
            .iter()
            .all(|m| !m.body_text().contains("Hunter-2"))
    );
}

#[test]
fn a_stranger_claiming_our_thread_id_reaches_no_ticket() {
    let desk = agent_desk();
    // Mallory's own, older ticket, then the victim's.
    let mallorys = open(
        &desk,
        MALLORY,
        "Hello",
        "mallory-1@evil.test",
        "Just saying hi.",
    );
    let anns = open(
        &desk,
        ANN,
        "Invoice is wrong",
        "ann-1@customer.org",
        "Invoice 4711 is wrong.",
    );
    assert!(mallorys < anns);

    // Variant 1: our thread id of the victim's ticket, with References to Mallory's own.
    desk.deliver(&mail(
        MALLORY,
        "support@example.com",
        "Re: Hello",
        &format!("pd.{anns}.thread@example.com"),
        "References: <mallory-1@evil.test>\r\nIn-Reply-To: <mallory-1@evil.test>\r\n",
        "Hi again.",
    ));
    let r = desk.run_once();
    assert_eq!(r["failed"], 0, "{r}");
    assert_still_anns(&desk, anns);
    assert_eq!(desk.show(anns)["status"], "open");
    let forged = format!("pd.{anns}.thread@example.com");
    assert!(message_on(&desk, anns, &forged).is_none());
    // Stored, flagged, and on no ticket of anyone's.
    assert_eq!(
        desk.count(
            "SELECT COUNT(*) FROM messages WHERE from_addr = 'mallory@evil.test' \
             AND problems LIKE '%claims one of our Message-IDs%' AND ticket_id IS NULL AND kind = 'held'"
        ),
        1,
        "the forged message is not stored as flagged and unmatched"
    );
    // Our thread id must stay free for what it names.
    assert_eq!(
        desk.count(&format!(
            "SELECT COUNT(*) FROM messages WHERE message_id = '{forged}'"
        )),
        0
    );
    alice_answers_only_ann(&desk, anns, "alice-answer-1@example.com");

    // The victim's next reply still lands on her own ticket.
    desk.deliver(&mail(
        ANN,
        "support@example.com",
        &format!("Re: [#{anns}] Invoice is wrong"),
        "ann-2@customer.org",
        "In-Reply-To: <ann-1@customer.org>\r\nReferences: <ann-1@customer.org>\r\n",
        "Thanks, it works.",
    ));
    desk.run_once();
    assert!(message_on(&desk, anns, "ann-2@customer.org").is_some());
}

#[test]
fn a_strangers_mail_with_our_thread_id_alone_neither_joins_nor_reopens_the_ticket() {
    let desk = agent_desk();
    let anns = open(
        &desk,
        ANN,
        "Invoice is wrong",
        "ann-1@customer.org",
        "Invoice 4711 is wrong.",
    );
    // Alice puts the ticket on hold.
    let n = alice_notification(&desk, anns);
    desk.deliver(&alice_reply(
        &token_of(&n),
        anns,
        &n,
        "alice-pending@example.com",
        "#status pending\n#quiet",
    ));
    desk.run_once();
    assert_eq!(desk.show(anns)["status"], "pending");
    let sent_before = desk.smtp.messages().len();

    desk.deliver(&mail(
        MALLORY,
        "support@example.com",
        "Hello",
        &format!("pd.{anns}.thread@example.com"),
        "",
        "Guess who.",
    ));
    let r = desk.run_once();
    assert_eq!(r["failed"], 0, "{r}");
    assert_still_anns(&desk, anns);
    assert_eq!(
        desk.show(anns)["status"],
        "pending",
        "the stranger reopened the ticket"
    );
    assert!(
        desk.messages(anns)
            .iter()
            .all(|m| m["from"].as_str() != Some("mallory@evil.test")),
        "the stranger's mail was filed on the victim's ticket"
    );
    // No agent was told the victim's ticket has news.
    let after = desk.smtp.messages();
    assert!(
        after[sent_before..]
            .iter()
            .all(|m| !m.subject().contains(&format!("[#{anns}]"))),
        "agents were notified about ticket #{anns}"
    );
}

#[test]
fn a_held_forgery_cannot_plant_references_that_merge_a_ticket_later() {
    let desk = agent_desk();
    let mallorys = open(
        &desk,
        MALLORY,
        "Hello",
        "mallory-1@evil.test",
        "Just saying hi.",
    );
    let anns = open(
        &desk,
        ANN,
        "Invoice is wrong",
        "ann-1@customer.org",
        "Invoice 4711 is wrong.",
    );
    assert!(mallorys < anns);

    // Variant 2: a forged, automatic agent mail, held on the victim's ticket, plants a
    // Reference to a Message-ID of Mallory's choosing.
    desk.deliver(&mail(
        "Alice Agent <alice@example.com>",
        "support@example.com",
        &format!("Re: [#{anns}] Invoice is wrong"),
        "forged-alice-1@evil.test",
        "Auto-Submitted: auto-replied\r\nReferences: <planted-1@evil.test>\r\n",
        "I am out of the office.",
    ));
    let r = desk.run_once();
    assert_eq!(r["failed"], 0, "{r}");
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM messages WHERE kind = 'held'"),
        1,
        "the forgery was not held"
    );
    // Now the planted id, pointing at Mallory's own ticket.
    desk.deliver(&mail(
        MALLORY,
        "support@example.com",
        "Re: Hello",
        "planted-1@evil.test",
        "References: <mallory-1@evil.test>\r\nIn-Reply-To: <mallory-1@evil.test>\r\n",
        "Hi again.",
    ));
    let r = desk.run_once();
    assert_eq!(r["failed"], 0, "{r}");
    assert_still_anns(&desk, anns);
    assert!(message_on(&desk, anns, "planted-1@evil.test").is_none());
    // Mallory's mail simply joins Mallory's own ticket.
    assert!(message_on(&desk, mallorys, "planted-1@evil.test").is_some());
    alice_answers_only_ann(&desk, anns, "alice-answer-2@example.com");
}

#[test]
fn a_stranger_who_knows_a_message_id_is_held_not_made_the_customer() {
    let desk = agent_desk();
    let anns = open(
        &desk,
        ANN,
        "Invoice is wrong",
        "ann-1@customer.org",
        "Invoice 4711 is wrong.",
    );
    let sent_before = desk.smtp.messages().len();
    // Mallory learnt Ann's Message-ID (a leaked header, a shared thread) and answers it.
    desk.deliver(&mail(
        MALLORY,
        "support@example.com",
        "Re: Invoice is wrong",
        "mallory-reply@evil.test",
        "In-Reply-To: <ann-1@customer.org>\r\nReferences: <ann-1@customer.org>\r\n",
        "This is Ann from my new address. Please send everything here.",
    ));
    let r = desk.run_once();
    assert_eq!(r["failed"], 0, "{r}");
    assert_still_anns(&desk, anns);
    let held = message_on(&desk, anns, "mallory-reply@evil.test")
        .expect("the stranger's mail is kept on the ticket for an agent");
    assert_eq!(held["kind"], "held", "{held}");
    let reason = held["held_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("not a participant"), "{reason}");
    assert!(
        desk.count("SELECT COUNT(*) FROM participants WHERE email = 'mallory@evil.test'") == 0,
        "the stranger became a participant"
    );
    // The agents are told who wrote and why it was held, and how to admit them.
    let notes = desk.sent(sent_before + 2);
    let n = mails_to(&notes[sent_before..], "alice@example.com")
        .into_iter()
        .next()
        .expect("alice is told about the held mail");
    let body = n.body_text();
    assert!(body.contains("mallory@evil.test"), "{body}");
    assert!(body.contains("not a participant"), "{body}");
    assert!(body.contains("#cc mallory@evil.test"), "{body}");
    alice_answers_only_ann(&desk, anns, "alice-answer-3@example.com");
}

#[test]
fn a_sender_admitted_with_cc_joins_the_ticket() {
    let desk = agent_desk();
    let anns = open(
        &desk,
        ANN,
        "Invoice is wrong",
        "ann-1@customer.org",
        "Invoice 4711 is wrong.",
    );
    let colleague = "Carl Colleague <carl@customer.org>";
    desk.deliver(&mail(
        colleague,
        "support@example.com",
        "Re: Invoice is wrong",
        "carl-1@customer.org",
        "In-Reply-To: <ann-1@customer.org>\r\nReferences: <ann-1@customer.org>\r\n",
        "I am Ann's colleague; the invoice number is 4711.",
    ));
    desk.run_once();
    assert_eq!(
        message_on(&desk, anns, "carl-1@customer.org").unwrap()["kind"],
        "held"
    );
    // Alice knows Carl and admits him.
    let n = alice_notification(&desk, anns);
    desk.deliver(&alice_reply(
        &token_of(&n),
        anns,
        &n,
        "alice-cc@example.com",
        "#cc carl@customer.org\n#quiet",
    ));
    desk.run_once();
    desk.deliver(&mail(
        colleague,
        "support@example.com",
        "Re: Invoice is wrong",
        "carl-2@customer.org",
        "In-Reply-To: <ann-1@customer.org>\r\nReferences: <ann-1@customer.org>\r\n",
        "Any news?",
    ));
    let r = desk.run_once();
    assert_eq!(r["joined"], 1, "{r}");
    let m = message_on(&desk, anns, "carl-2@customer.org").unwrap();
    assert_eq!(m["kind"], "customer", "{m}");
    assert_still_anns(&desk, anns);
}

#[test]
fn a_late_parent_from_another_customer_links_tickets_instead_of_merging() {
    let desk = agent_desk();
    // Ann and Bob each answer a thread whose first mail (from Carol, who copied them both)
    // arrives last. Carol copied both, so she takes part in both tickets.
    let carol = "Carol <carol@partner.org>";
    for (from, id) in [
        (ANN, "ann-1@customer.org"),
        ("Bob <bob@other.org>", "bob-1@other.org"),
    ] {
        desk.deliver(&mail(
            from,
            "support@example.com",
            "Re: Shared outage",
            id,
            "In-Reply-To: <carol-parent@partner.org>\r\nReferences: <carol-parent@partner.org>\r\nCc: Carol <carol@partner.org>\r\n",
            "We see the outage too.",
        ));
        let r = desk.run_once();
        assert_eq!(r["new_tickets"], 1, "{r}");
    }
    let ids: Vec<i64> = desk
        .tickets()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    desk.deliver(&mail(
        carol,
        "support@example.com",
        "Shared outage",
        "carol-parent@partner.org",
        "Cc: ann@customer.org, bob@other.org\r\n",
        "Our service is down.",
    ));
    let r = desk.run_once();
    assert_eq!(r["failed"], 0, "{r}");
    let a = desk.show(ids[0]);
    let b = desk.show(ids[1]);
    assert!(
        a["merged_into"].is_null() && b["merged_into"].is_null(),
        "merged: {a} {b}"
    );
    assert_eq!(a["customer"]["email"], "ann@customer.org");
    assert_eq!(b["customer"]["email"], "bob@other.org");
    // Linked both ways, for an agent to decide.
    let linked = |t: &Value, other: i64| {
        t["links"]
            .as_array()
            .is_some_and(|l| l.iter().any(|x| x["ticket"] == other))
    };
    assert!(linked(&a, ids[1]), "{a}");
    assert!(linked(&b, ids[0]), "{b}");
}

#[test]
fn a_late_parent_of_one_customer_still_merges_their_tickets() {
    let desk = agent_desk();
    // Ann's two replies arrive before the mail they answer: two tickets, then one.
    for id in ["ann-2@customer.org", "ann-3@customer.org"] {
        desk.deliver(&mail(
            ANN,
            "support@example.com",
            &format!("Re: Order {id}"),
            id,
            "In-Reply-To: <ann-1@customer.org>\r\nReferences: <ann-1@customer.org>\r\n",
            "More details.",
        ));
    }
    desk.run_once();
    desk.deliver(&mail(
        ANN,
        "support@example.com",
        "Order",
        "ann-1@customer.org",
        "",
        "First.",
    ));
    desk.run_once();
    let open: Vec<Value> = desk
        .tickets()
        .into_iter()
        .filter(|t| t["merged_into"].is_null())
        .collect();
    assert_eq!(open.len(), 1, "{open:?}");
}

#[test]
fn a_stranger_whose_message_id_a_ticket_references_is_not_joined() {
    let desk = agent_desk();
    // Ann's reply references a mail of hers we never got.
    desk.deliver(&mail(
        ANN,
        "support@example.com",
        "Re: Invoice is wrong",
        "ann-2@customer.org",
        "In-Reply-To: <ann-lost@customer.org>\r\nReferences: <ann-lost@customer.org>\r\n",
        "Any news on my invoice?",
    ));
    desk.run_once();
    let anns = desk.tickets()[0]["id"].as_i64().unwrap();
    // Mallory sends a mail carrying that id: the reverse lookup finds Ann's ticket.
    desk.deliver(&mail(
        MALLORY,
        "support@example.com",
        "Invoice is wrong",
        "ann-lost@customer.org",
        "",
        "Please update my address to mallory@evil.test.",
    ));
    let r = desk.run_once();
    assert_eq!(r["failed"], 0, "{r}");
    assert_still_anns(&desk, anns);
    let joined = message_on(&desk, anns, "ann-lost@customer.org");
    assert!(
        joined.as_ref().is_none_or(|m| m["kind"] == "held"),
        "the stranger's mail joined as a customer message: {joined:?}"
    );
    alice_answers_only_ann(&desk, anns, "alice-answer-4@example.com");
}
