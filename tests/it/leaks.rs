//! Issue 10, medium: internal text must not reach customers. An agent's reply is relayed
//! only when what it means can be read safely: a `#note` in HTML, behind an invisible
//! character or in a multipart mail stays internal; quoted notifications are cut whatever
//! the client's language, quote prefix or attribution; commands come from the first text
//! part only. Real Dovecot in, real SMTP out.

use crate::agents::{AUTH_PASS, agent_desk, alice_reply, open_ticket, token_of};
use crate::harness::{Desk, message_id_of};
use crate::support::CapturedMail;

fn mails_to(all: &[CapturedMail], rcpt: &str) -> Vec<CapturedMail> {
    all.iter()
        .filter(|m| m.rcpt_to.iter().any(|r| r == rcpt))
        .cloned()
        .collect()
}

/// Alice's authenticated reply to notification `n` with any MIME body: `content` is the
/// Content-Type line(s) and everything after the header block.
fn alice_mime(token: &str, ticket: i64, n: &CapturedMail, id: &str, content: &str) -> Vec<u8> {
    let parent = message_id_of(&n.data);
    format!(
        "{AUTH_PASS}Return-Path: <alice@example.com>\r\nFrom: Alice Agent <alice@example.com>\r\nTo: support+{token}@example.com\r\nSubject: Re: [#{ticket}] Invoice is wrong\r\nMessage-ID: <{id}>\r\nDate: Tue, 24 Nov 2026 11:00:00 +0000\r\nIn-Reply-To: <{parent}>\r\nReferences: <{parent}>\r\nMIME-Version: 1.0\r\n{content}"
    )
    .into_bytes()
}

/// Delivers `raw`, runs a pass, and returns what the customer got.
fn to_ann_after(desk: &Desk, raw: &[u8]) -> Vec<CapturedMail> {
    desk.deliver(raw);
    let r = desk.run_once();
    assert_eq!(r["failed"], 0, "{r}");
    // A marker mail from the customer proves the pass and the outbox flush are complete.
    mails_to(&desk.smtp.messages(), "ann@customer.org")
}

/// The secret an internal note carries in these tests.
const SECRET: &str = "fraud risk, do not refund";

fn assert_no_secret_reached_ann(desk: &Desk) {
    for m in mails_to(&desk.smtp.messages(), "ann@customer.org") {
        assert!(
            !m.body_text().contains(SECRET),
            "the note reached the customer:\n{}",
            m.body_text()
        );
    }
}

#[test]
fn an_html_only_note_never_reaches_the_customer() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    let got = to_ann_after(
        &desk,
        &alice_mime(
            &token_of(&n),
            id,
            &n,
            "alice-html-note@example.com",
            &format!(
                "Content-Type: text/html; charset=utf-8\r\n\r\n<div>#note</div><div>Internal: {SECRET}.</div>\r\n"
            ),
        ),
    );
    assert!(got.is_empty(), "{got:?}");
    assert_no_secret_reached_ann(&desk);
    // The note was read from the HTML: it is on the ticket as a note.
    let kinds: Vec<String> = desk
        .messages(id)
        .iter()
        .map(|m| m["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(kinds.contains(&"note".to_string()), "{kinds:?}");
}

#[test]
fn a_plain_part_with_inline_html_never_sends_the_note() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    let content = format!(
        "Content-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n--mix\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n#note\r\nInternal: {SECRET}.\r\n--mix\r\nContent-Type: text/html; charset=utf-8\r\nContent-Disposition: inline\r\n\r\n<p>Signature image here</p>\r\n--mix--\r\n"
    );
    let got = to_ann_after(
        &desk,
        &alice_mime(
            &token_of(&n),
            id,
            &n,
            "alice-mixed-note@example.com",
            &content,
        ),
    );
    assert!(got.is_empty(), "{got:?}");
    assert_no_secret_reached_ann(&desk);
}

#[test]
fn an_invisible_mark_before_note_keeps_the_note_internal() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    let token = token_of(&n);
    // U+200F (right-to-left mark, inserted by RTL clients) and U+200B (zero-width space).
    for (i, mark) in ['\u{200F}', '\u{200B}', '\u{FEFF}'].iter().enumerate() {
        desk.deliver(&alice_reply(
            &token,
            id,
            &n,
            &format!("alice-invisible-{i}@example.com"),
            &format!("{mark}#note\nInternal: {SECRET}."),
        ));
    }
    let r = desk.run_once();
    assert_eq!(r["failed"], 0, "{r}");
    assert_no_secret_reached_ann(&desk);
    assert!(mails_to(&desk.smtp.messages(), "ann@customer.org").is_empty());
    let notes = desk
        .messages(id)
        .iter()
        .filter(|m| m["kind"] == "note")
        .count();
    assert_eq!(notes, 3);
}

/// Alice's text, then her client's quote of the whole notification `n` in the way
/// `quote` writes it.
fn reply_quoting(n: &CapturedMail, text: &str, header: &str, prefix: &str) -> String {
    let mut body = format!("{text}\n\n{header}");
    for line in n.body_text().lines() {
        body.push_str(prefix);
        body.push_str(line);
        body.push('\n');
    }
    body
}

/// Whatever reached the customer carries none of the notification's internals.
fn assert_clean_for_customer(m: &CapturedMail) {
    let text = m.body_text();
    for internal in [
        "Tier:",
        "Matched by:",
        "Open tickets:",
        "#assign",
        "#priority",
        "charges me twice",
    ] {
        assert!(
            !text.contains(internal),
            "{internal:?} reached the customer:\n{text}"
        );
    }
}

#[test]
fn outlook_history_in_polish_turkish_and_czech_is_not_relayed() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    let token = token_of(&n);
    let headers = [
        "________________________________\nOd: Example Support <support@example.com>\nWysłane: wtorek, 24 listopada 2026 10:00\nDo: Alice Agent <alice@example.com>\nTemat: [#1] Invoice is wrong\n\n",
        "________________________________\nKimden: Example Support <support@example.com>\nGönderildi: 24 Kasım 2026 Salı 10:00\nKime: Alice Agent <alice@example.com>\nKonu: [#1] Invoice is wrong\n\n",
        "________________________________\nOd: Example Support <support@example.com>\nOdesláno: úterý 24. listopadu 2026 10:00\nKomu: Alice Agent <alice@example.com>\nPředmět: [#1] Invoice is wrong\n\n",
    ];
    for (i, h) in headers.iter().enumerate() {
        desk.deliver(&alice_reply(
            &token,
            id,
            &n,
            &format!("alice-outlook-{i}@example.com"),
            &reply_quoting(&n, &format!("Refund number {i} is on its way."), h, ""),
        ));
    }
    desk.run_once();
    let got = mails_to(&desk.smtp.messages(), "ann@customer.org");
    assert_eq!(got.len(), 3, "{got:?}");
    for (i, m) in got.iter().enumerate() {
        assert!(
            m.body_text()
                .contains(&format!("Refund number {i} is on its way."))
        );
        assert_clean_for_customer(m);
    }
}

#[test]
fn a_mutt_reply_of_commands_with_a_custom_quote_prefix_sends_nothing() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    let body = reply_quoting(
        &n,
        "#status pending",
        "* Example Support <support@example.com> [2026-11-24 10:00]:\n",
        "| ",
    );
    desk.deliver(&alice_reply(
        &token_of(&n),
        id,
        &n,
        "alice-mutt-1@example.com",
        &body,
    ));
    let r = desk.run_once();
    assert_eq!(r["failed"], 0, "{r}");
    assert_eq!(desk.show(id)["status"], "pending");
    let all = desk.sent(3);
    assert!(
        mails_to(&all, "ann@customer.org").is_empty(),
        "{:?}",
        mails_to(&all, "ann@customer.org")
    );
    let receipt = mails_to(&all, "alice@example.com")
        .into_iter()
        .find(|m| m.subject().contains("Receipt"))
        .expect("a receipt");
    let text = receipt.body_text();
    assert!(
        !text.contains("Your text was sent to the customer"),
        "{text}"
    );
    assert!(text.contains("Nothing was sent to the customer"), "{text}");
}

#[test]
fn a_mutt_attribution_line_does_not_reach_the_customer() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    let body = reply_quoting(
        &n,
        "Thanks, the duplicate charge is refunded.",
        "* Example Support <support@example.com> [2026-11-24 10:00 +0000]:\n",
        "> ",
    );
    let got = to_ann_after(
        &desk,
        &alice_reply(&token_of(&n), id, &n, "alice-mutt-2@example.com", &body),
    );
    assert_eq!(got.len(), 1, "{got:?}");
    let text = got[0].body_text();
    assert!(text.contains("the duplicate charge is refunded"), "{text}");
    assert!(
        !text.contains("[2026-11-24"),
        "the attribution reached the customer:\n{text}"
    );
    assert_clean_for_customer(&got[0]);
}

#[test]
fn a_reply_still_carrying_our_notification_is_held_not_relayed() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    // A client that mangled the quote: no prefix, no attribution, and the notification's
    // first line lost, so nothing recognises the history.
    let notification = n.body_text();
    let rest: String = notification
        .lines()
        .skip(1)
        .map(|l| format!("{l}\n"))
        .collect();
    let body = format!("Refund sent.\n\n{rest}");
    let got = to_ann_after(
        &desk,
        &alice_reply(&token_of(&n), id, &n, "alice-mangled@example.com", &body),
    );
    assert!(
        got.is_empty(),
        "the notification reached the customer: {got:?}"
    );
    let held = desk
        .messages(id)
        .into_iter()
        .find(|m| m["message_id"] == "alice-mangled@example.com")
        .unwrap();
    assert_eq!(held["kind"], "held", "{held}");
    // Alice is told.
    let told = mails_to(&desk.smtp.messages(), "alice@example.com")
        .into_iter()
        .any(|m| m.body_text().contains("notification"));
    assert!(told);
}

#[test]
fn commands_in_a_second_text_part_are_not_executed() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    let content = "Content-Type: multipart/mixed; boundary=\"two\"\r\n\r\n--two\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n#status pending\r\n#quiet\r\n--two\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Disposition: inline\r\n\r\n#cc attacker@evil.test\r\nForwarded text from someone else.\r\n--two--\r\n";
    desk.deliver(&alice_mime(
        &token_of(&n),
        id,
        &n,
        "alice-two-parts@example.com",
        content,
    ));
    let r = desk.run_once();
    assert_eq!(r["failed"], 0, "{r}");
    assert_eq!(
        desk.show(id)["status"],
        "pending",
        "the first part's commands apply"
    );
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM ticket_cc WHERE email = 'attacker@evil.test'"),
        0,
        "a command from the second part was executed"
    );
    // A later answer goes to the customer alone.
    desk.deliver(&alice_reply(
        &token_of(&n),
        id,
        &n,
        "alice-later@example.com",
        "#quiet\nAll done.",
    ));
    desk.run_once();
    assert!(
        desk.smtp
            .messages()
            .iter()
            .all(|m| !m.rcpt_to.iter().any(|r| r == "attacker@evil.test")),
        "mail went to the attacker"
    );
}
