//! Issue 10, low: outside values in our own mail, acknowledgement caps per mailbox, odd
//! local parts, terminal escapes, and what a notification promises. Real Dovecot in, real
//! SMTP out, the real binary's terminal output.

use crate::agents::agent_desk;
use crate::harness::{Desk, Opts, mail};
use crate::support::CapturedMail;

fn mails_to(all: &[CapturedMail], rcpt: &str) -> Vec<CapturedMail> {
    all.iter()
        .filter(|m| m.rcpt_to.iter().any(|r| r == rcpt))
        .cloned()
        .collect()
}

fn ack_desk() -> Desk {
    Desk::with(Opts::default())
}

#[test]
fn a_crlf_display_name_cannot_add_lines_to_our_acknowledgement() {
    let desk = ack_desk();
    // The display name decodes to "Eve\r\nVisit http://evil.test/claim now\u{202E}gnp.exe".
    desk.deliver(&mail(
        "=?utf-8?q?Eve=0D=0AVisit_http=3A//evil=2Etest/claim_now=E2=80=AEgnp=2Eexe?= <victim@customer.org>",
        "support@example.com",
        "=?utf-8?q?Order=0D=0A=0D=0AYour_account_is_locked=E2=80=8F?=",
        "crlf-name@customer.org",
        "",
        "hello",
    ));
    let r = desk.run_once();
    assert_eq!(r["new_tickets"], 1, "{r}");
    let acks = desk.sent(1);
    let body = acks[0].body_text().replace("\r\n", "\n");
    for line in body.lines() {
        assert!(
            !line.trim_start().starts_with("Visit"),
            "an injected line:\n{body}"
        );
        assert!(
            !line.trim_start().starts_with("Your account"),
            "an injected line:\n{body}"
        );
    }
    for c in ['\u{202E}', '\u{200F}', '\r'] {
        assert!(!body.contains(c), "{c:?} survived in:\n{body:?}");
    }
}

#[test]
fn subaddress_and_dot_spellings_share_one_acknowledgement_cap() {
    let desk = ack_desk();
    // The default cap is 3 per sender and hour; 8 spellings of each mailbox.
    for i in 0..8 {
        desk.deliver(&mail(
            &format!("victim+{i}@customer.org"),
            "support@example.com",
            &format!("Question {i}"),
            &format!("plus-{i}@customer.org"),
            "",
            "hello",
        ));
        let dotted: String = "victimname"
            .chars()
            .enumerate()
            .flat_map(|(k, c)| if k == i + 1 { vec!['.', c] } else { vec![c] })
            .collect();
        desk.deliver(&mail(
            &format!("{dotted}@gmail.com"),
            "support@example.com",
            &format!("Gmail question {i}"),
            &format!("dots-{i}@gmail.com"),
            "",
            "hello",
        ));
    }
    let r = desk.run_once();
    assert_eq!(r["new_tickets"], 16, "{r}");
    let sent = desk.smtp.messages();
    let plus = sent
        .iter()
        .filter(|m| m.rcpt_to.iter().any(|r| r.starts_with("victim+")))
        .count();
    let dots = sent
        .iter()
        .filter(|m| m.rcpt_to.iter().any(|r| r.ends_with("@gmail.com")))
        .count();
    assert!(
        plus <= 3,
        "{plus} acknowledgements into one mailbox through +tags"
    );
    assert!(
        dots <= 3,
        "{dots} acknowledgements into one Gmail mailbox through dots"
    );
    assert!(plus >= 1 && dots >= 1);
}

#[test]
fn a_quoted_or_commented_local_part_is_its_own_customer() {
    let desk = Desk::with(Opts {
        autoreply: false,
        ..Opts::default()
    });
    for (from, id) in [
        ("\"victim\"@bigcorp.test", "q1@bigcorp.test"),
        ("\"other\"@bigcorp.test", "q2@bigcorp.test"),
        ("victim(the boss)@bigcorp.test", "q3@bigcorp.test"),
        ("Someone <@bigcorp.test>", "q4@bigcorp.test"),
    ] {
        desk.deliver(&mail(
            from,
            "support@example.com",
            &format!("Hello {id}"),
            id,
            "",
            "hi",
        ));
    }
    let r = desk.run_once();
    assert_eq!(r["failed"], 0, "{r}");
    let emails: Vec<String> = {
        let list = desk.query_string(
            "SELECT group_concat(email, ' ') FROM (SELECT email FROM customers ORDER BY email)",
        );
        list.split(' ').map(str::to_string).collect()
    };
    assert_eq!(
        emails,
        ["other@bigcorp.test", "victim@bigcorp.test"],
        "{emails:?}"
    );
    // Victim's two spellings are one customer; the stranger's mail is on no one's ticket.
    assert_eq!(
        desk.count("SELECT COUNT(DISTINCT customer_id) FROM tickets"),
        2
    );
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM messages WHERE message_id = 'q4@bigcorp.test' AND ticket_id IS NULL"),
        1
    );
}

#[test]
fn terminal_escapes_in_mail_are_shown_escaped() {
    let desk = Desk::with(Opts {
        autoreply: false,
        ..Opts::default()
    });
    // OSC 52 (write the clipboard), a screen clear and a disguised OSC 8 link.
    desk.deliver(&mail(
        "=?utf-8?q?Mal=1B=5D52=3Bc=3BcmVtIC1yZg=3D=3D=07?= <mal@hostile.test>",
        "support@example.com",
        "=?utf-8?q?Invoice_=1B=5B2J=1B=5D8=3B=3Bhttp=3A//evil=2Etest=1B=5Cclick=1B=5D8=3B=3B=1B=5C?=",
        "escapes@hostile.test",
        "",
        "body \u{1b}[31mred\u{1b}[0m and a bell \u{7}",
    ));
    desk.run_once();
    let id = desk.tickets()[0]["id"].as_i64().unwrap().to_string();
    for args in [vec!["ticket", "list"], vec!["ticket", "show", &id]] {
        let out = desk.cmd(&args);
        assert!(out.status.success());
        for b in [0x1bu8, 0x07, 0x9b] {
            assert!(
                !out.stdout.contains(&b),
                "{args:?} printed byte {b:#x}:\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Invoice"), "{text}");
    }
    // --json stays exact.
    let v = desk.show(id.parse().unwrap());
    assert!(v["subject"].as_str().unwrap().contains('\u{1b}'), "{v}");
}

#[test]
fn a_notification_for_a_copied_participant_names_who_gets_the_reply() {
    let desk = agent_desk();
    desk.deliver(&mail(
        "Ann Customer <ann@customer.org>",
        "support@example.com",
        "Invoice is wrong",
        "ann-1@customer.org",
        "Cc: Carl Colleague <carl@customer.org>\r\n",
        "Invoice 4711 is wrong.",
    ));
    desk.run_once();
    let before = desk.smtp.messages().len();
    desk.deliver(&mail(
        "Carl Colleague <carl@customer.org>",
        "support@example.com",
        "Re: Invoice is wrong",
        "carl-1@customer.org",
        "In-Reply-To: <ann-1@customer.org>\r\nReferences: <ann-1@customer.org>\r\n",
        "Adding: it is invoice 4711.",
    ));
    let r = desk.run_once();
    assert_eq!(r["joined"], 1, "{r}");
    let all = desk.sent(before + 2);
    let n = mails_to(&all[before..], "alice@example.com").pop().unwrap();
    let body = n.body_text();
    let promise = body
        .lines()
        .find(|l| l.contains("is sent to"))
        .unwrap_or_else(|| panic!("no line says where the reply goes:\n{body}"));
    assert!(promise.contains("ann@customer.org"), "{promise}");
    assert!(!promise.contains("carl@customer.org"), "{promise}");
    // And the notification says who wrote.
    assert!(body.contains("carl@customer.org"), "{body}");
}
