//! Issue 11, an agent's day through a real mail client: what reaches the customer is what
//! the agent sent, once; answering takes the ticket; receipts and subjects say what
//! happened. Real Dovecot in, real SMTP out.

use std::time::Duration;

use mail_parser::MimeHeaders as _;

use crate::agents::{agent_desk, alice_reply, mails_to, open_ticket, ticket, token_of};
use crate::harness::mail;

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
    // ticket list counts what people wrote apart from postdesk's own mail.
    let listed = desk.tickets();
    let t = listed.iter().find(|t| t["id"] == id).unwrap();
    assert_eq!(t["customer_messages"], 1, "{t}");
    assert_eq!(t["agent_messages"], 1, "{t}");
    // alice's and bob's notifications and alice's receipt; the answer itself is the agent's.
    assert_eq!(t["automatic_messages"], 3, "{t}");
    assert!(t["message_count"].as_i64().unwrap() >= 5, "{t}");
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

#[test]
fn an_agents_attachments_and_flowed_text_reach_the_customer_as_sent() {
    use base64::Engine as _;
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    let token = token_of(&n);
    let parent = crate::harness::message_id_of(&n.data);
    let b64 = |bytes: &[u8]| {
        let s = base64::engine::general_purpose::STANDARD.encode(bytes);
        s.as_bytes()
            .chunks(76)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("\r\n")
    };
    let pdf = b"%PDF-1.4\n% a tiny invoice\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n".to_vec();
    let big = vec![b'x'; 11 * 1024 * 1024];
    let raw = format!(
        "{auth}From: Alice Agent <alice@example.com>\r\nTo: support+{token}@example.com\r\n\
         Subject: Re: [#{id}] Invoice is wrong\r\nMessage-ID: <att-1@example.com>\r\n\
         In-Reply-To: <{parent}>\r\nReferences: <{parent}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=utf-8; format=flowed\r\n\r\n\
         The corrected invoice is attached; the double \r\ncharge is refunded today.\r\n\r\n\
         --b1\r\nContent-Type: application/pdf; name=\"invoice-4711.pdf\"\r\n\
         Content-Disposition: attachment; filename=\"invoice-4711.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{pdf}\r\n\
         --b1\r\nContent-Type: application/octet-stream; name=\"huge.bin\"\r\n\
         Content-Disposition: attachment; filename=\"huge.bin\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{big}\r\n\
         --b1\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n\
         From: support@example.com\r\nSubject: [#{id}] internal\r\n\r\n\
         ##- Please type your reply above this line -##\r\ninternal notes\r\n\
         --b1--\r\n",
        auth = crate::agents::AUTH_PASS,
        pdf = b64(&pdf),
        big = b64(&big),
    );
    desk.deliver(raw.as_bytes());
    let r = desk.run_once();
    assert_eq!(r["failed"], 0, "{r}");
    std::thread::sleep(Duration::from_millis(500));
    let all = desk.smtp.messages();
    let to_ann = mails_to(&all, "ann@customer.org");
    assert_eq!(to_ann.len(), 1, "{to_ann:?}");
    let p = to_ann[0].parsed();
    let names: Vec<String> = p
        .attachments()
        .map(|a| a.attachment_name().unwrap_or("?").to_string())
        .collect();
    assert_eq!(
        names,
        vec!["invoice-4711.pdf".to_string()],
        "only the PDF goes"
    );
    let sent_pdf = p.attachments().next().unwrap();
    assert_eq!(
        sent_pdf.contents(),
        &pdf[..],
        "the PDF arrives byte for byte"
    );
    let text = p.body_text(0).unwrap();
    assert!(
        text.contains("the double charge is refunded today."),
        "flowed lines rejoined: {text}"
    );
    assert!(!text.contains("internal notes"));
    let receipt = mails_to(&all, "alice@example.com")
        .into_iter()
        .find(|m| m.subject().contains("Receipt"))
        .expect("the receipt names what was not sent");
    let body = receipt.body_text();
    assert!(
        body.contains("huge.bin") && body.contains("MB limit"),
        "{body}"
    );
    assert!(
        body.contains("attached mail may hold internal text"),
        "{body}"
    );
}
