//! Proves the harness in `support/` against the real servers, so that a failing
//! end-to-end test points at the daemon rather than at the test rig.

// clippy's allow-*-in-tests settings cover #[test] functions, not their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::support::dovecot::DovecotOptions;
use crate::support::{CapturedMail, Dovecot, SmtpLogin, SmtpSink};

const WAIT: Duration = Duration::from_secs(10);

/// A small message. Like lettre's own messages it does not end in CRLF.
fn raw_mail(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Customer <customer@example.com>\r\n\
         To: support@example.org\r\n\
         Subject: {subject}\r\n\
         Message-ID: <{subject}@example.com>\r\n\
         Date: Mon, 3 Nov 2025 10:00:00 +0000\r\n\
         \r\n\
         {body}"
    )
    .into_bytes()
}

/// What the sink records for `raw` sent with lettre's `send_raw`: lettre ends DATA with
/// CRLF "." CRLF, and that first CRLF ends the message's last line (RFC 5321 §4.1.1.4).
fn on_the_wire(raw: &[u8]) -> Vec<u8> {
    [raw, b"\r\n"].concat()
}

/// Sends one LOGIN over a raw connection and returns the tagged reply line.
fn raw_login(port: u16, user: &str, password: &str) -> String {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("* OK"), "greeting: {line:?}");
    (&stream)
        .write_all(format!("a1 LOGIN \"{user}\" \"{password}\"\r\n").as_bytes())
        .unwrap();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line.starts_with("a1 ") {
            return line.trim_end().to_owned();
        }
    }
}

fn only(mut messages: Vec<CapturedMail>) -> CapturedMail {
    assert_eq!(
        messages.len(),
        1,
        "expected exactly one message: {messages:?}"
    );
    messages.remove(0)
}

fn transport(port: u16) -> AsyncSmtpTransport<Tokio1Executor> {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(port)
        .timeout(Some(WAIT))
        .build()
}

fn envelope(to: &str) -> Envelope {
    Envelope::new(
        Some("helpdesk@example.org".parse::<Address>().unwrap()),
        vec![to.parse::<Address>().unwrap()],
    )
    .unwrap()
}

#[test]
fn dovecot_append_then_read_back_uids_flags_and_uidvalidity() {
    let dovecot = Dovecot::start(&[("alice", "alice-secret"), ("bob", "bob-secret")]);

    assert!(raw_login(dovecot.port, "alice", "alice-secret").starts_with("a1 OK"));
    assert!(raw_login(dovecot.port, "alice", "wrong").starts_with("a1 NO"));

    let first = raw_mail("first", "Hello, I need help.");
    let second = raw_mail("second", "Still waiting.");
    let seen = dovecot.append("alice", "INBOX", &first, &["\\Seen"]);
    let unseen = dovecot.append("alice", "INBOX", &second, &[]);
    assert!(seen < unseen, "UIDs ascend: {seen} then {unseen}");
    assert_eq!(dovecot.uids("alice", "INBOX"), vec![seen, unseen]);
    assert_eq!(dovecot.flags("alice", "INBOX", seen), vec!["\\Seen"]);
    assert!(dovecot.flags("alice", "INBOX", unseen).is_empty());

    // Reading back is byte-exact and does not set \Seen (BODY.PEEK).
    assert_eq!(dovecot.find_message("alice", "INBOX", seen), Some(first));
    assert_eq!(dovecot.find_message("alice", "INBOX", unseen), Some(second));
    assert!(dovecot.flags("alice", "INBOX", unseen).is_empty());
    assert_eq!(dovecot.find_message("alice", "INBOX", unseen + 100), None);

    let validity = dovecot.uid_validity("alice", "INBOX");
    assert_ne!(validity, 0);
    assert_eq!(dovecot.uid_validity("alice", "INBOX"), validity, "stable");

    // Users are separate mailboxes.
    assert!(dovecot.uids("bob", "INBOX").is_empty());

    // append creates a missing folder; keywords and several flags survive.
    let archived = dovecot.append(
        "alice",
        "Support/Done",
        &raw_mail("archived", "Thanks!"),
        &["\\Flagged", "\\Answered", "postdesk-done"],
    );
    let mut flags = dovecot.flags("alice", "Support/Done", archived);
    flags.sort();
    assert_eq!(flags, vec!["\\Answered", "\\Flagged", "postdesk-done"]);
    dovecot.create_folder("bob", "Empty");
    dovecot.create_folder("bob", "Empty"); // idempotent
    assert!(dovecot.uids("bob", "Empty").is_empty());
    assert!(
        dovecot
            .list_folders("alice")
            .contains(&"Support/Done".to_owned())
    );
    assert!(dovecot.list_folders("bob").contains(&"Empty".to_owned()));
    assert!(
        !dovecot
            .list_folders("bob")
            .contains(&"Support/Done".to_owned())
    );

    // Maildir++ layout on disk: INBOX at the root, "Support/Done" as ".Support.Done".
    let maildir = dovecot.maildir("alice");
    assert!(maildir.join("cur").is_dir(), "{}", maildir.display());
    assert!(maildir.join(".Support.Done").is_dir());
}

#[test]
fn dovecot_reset_uid_validity_changes_it_and_keeps_messages() {
    let dovecot = Dovecot::start(&[("alice", "alice-secret")]);
    let raw = raw_mail("kept", "Please keep me.");
    let seen = dovecot.append("alice", "INBOX", &raw, &["\\Seen"]);
    let other = dovecot.append("alice", "INBOX", &raw_mail("other", "Me too."), &[]);
    let archived = dovecot.append("alice", "Archive", &raw_mail("old", "Old."), &[]);
    let before = dovecot.uid_validity("alice", "INBOX");
    let archive_before = dovecot.uid_validity("alice", "Archive");

    dovecot.reset_uid_validity("alice", "INBOX");

    let after = dovecot.uid_validity("alice", "INBOX");
    assert!(after > before, "UIDVALIDITY {before} -> {after}");
    assert_eq!(dovecot.uids("alice", "INBOX"), vec![seen, other]);
    assert_eq!(dovecot.flags("alice", "INBOX", seen), vec!["\\Seen"]);
    assert_eq!(dovecot.find_message("alice", "INBOX", seen), Some(raw));
    // Only the named folder is affected.
    assert_eq!(dovecot.uid_validity("alice", "Archive"), archive_before);
    assert_eq!(dovecot.uids("alice", "Archive"), vec![archived]);

    // A second reset moves it on again; new mail still gets fresh UIDs.
    dovecot.reset_uid_validity("alice", "INBOX");
    assert!(dovecot.uid_validity("alice", "INBOX") > after);
    let newer = dovecot.append("alice", "INBOX", &raw_mail("newer", "New."), &[]);
    assert!(newer > other);
}

#[test]
fn dovecot_restart_keeps_port_mail_uids_and_uidvalidity() {
    let mut dovecot = Dovecot::start(&[("alice", "alice-secret")]);
    let port = dovecot.port;
    let raw = raw_mail("before", "Sent before the outage.");
    let first = dovecot.append("alice", "INBOX", &raw, &["\\Seen"]);
    let uidvalidity = dovecot.uid_validity("alice", "INBOX");

    dovecot.stop();
    assert!(!dovecot.is_running());
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "Dovecot still listens on {port} after stop()"
    );
    dovecot.stop(); // stopping twice is harmless
    // Delivered behind the server's back while it is down, as a local MDA would.
    let during = raw_mail("during", "Delivered while IMAP was down.");
    let file = dovecot.write_to_maildir("alice", &during);
    assert!(
        file.starts_with(dovecot.maildir("alice").join("new")),
        "{file:?}"
    );

    dovecot.restart();
    assert!(dovecot.is_running());
    assert_eq!(dovecot.port, port);
    assert_eq!(dovecot.uid_validity("alice", "INBOX"), uidvalidity);
    let uids = dovecot.uids("alice", "INBOX");
    assert_eq!(uids.len(), 2, "{uids:?}");
    assert_eq!(uids[0], first);
    assert!(uids[1] > first, "{uids:?}");
    assert_eq!(dovecot.find_message("alice", "INBOX", first), Some(raw));
    assert_eq!(dovecot.flags("alice", "INBOX", first), vec!["\\Seen"]);
    assert_eq!(
        dovecot.find_message("alice", "INBOX", uids[1]),
        Some(during)
    );
    let after = dovecot.append("alice", "INBOX", &raw_mail("after", "Back."), &[]);
    assert!(after > uids[1]);

    // restart() on a running server stops it first.
    dovecot.restart();
    assert_eq!(dovecot.uids("alice", "INBOX"), vec![first, uids[1], after]);
}

#[test]
fn dovecot_without_idle_advertises_everything_but_idle() {
    let usual = Dovecot::start(&[("alice", "alice-secret")]);
    let usual_caps = usual.capabilities("alice");
    assert!(usual_caps.iter().any(|c| c == "IDLE"), "{usual_caps:?}");
    drop(usual);

    let dovecot = Dovecot::start_with(&[("alice", "alice-secret")], DovecotOptions { idle: false });
    let caps = dovecot.capabilities("alice");
    assert!(
        !caps.iter().any(|c| c.eq_ignore_ascii_case("IDLE")),
        "{caps:?}"
    );
    let expected: Vec<&String> = usual_caps.iter().filter(|c| *c != "IDLE").collect();
    assert_eq!(caps.iter().collect::<Vec<_>>(), expected);
    for needed in ["IMAP4rev1", "UIDPLUS", "MOVE", "LITERAL+"] {
        assert!(
            caps.iter().any(|c| c == needed),
            "{needed} missing: {caps:?}"
        );
    }
    // It is still a working server.
    let uid = dovecot.append("alice", "INBOX", &raw_mail("poll", "Polled."), &[]);
    assert_eq!(dovecot.uids("alice", "INBOX"), vec![uid]);
}

#[test]
fn dovecot_stops_when_its_handle_drops_even_on_panic() {
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let result = std::panic::catch_unwind(move || {
        let dovecot = Dovecot::start(&[("alice", "alice-secret")]);
        port_tx.send(dovecot.port).unwrap();
        panic!("test panics while Dovecot runs");
    });
    assert!(result.is_err());
    let port = port_rx.recv().unwrap();
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "Dovecot still listens on {port} after its handle dropped"
    );
}

#[tokio::test]
async fn smtp_sink_captures_a_message_sent_with_lettre() {
    let sink = SmtpSink::start();
    assert!(sink.messages().is_empty());
    let raw = "From: Helpdesk <helpdesk@example.org>\r\n\
               To: customer@example.com\r\n\
               Subject: =?utf-8?q?R=C3=A9ponse?= [#42]\r\n\
               Message-ID: <reply-42@example.org>\r\n\
               In-Reply-To: <question-42@example.com>\r\n\
               \r\n\
               Hello,\r\n\
               .leading dot survives dot-stuffing";

    transport(sink.port)
        .send_raw(&envelope("customer@example.com"), raw.as_bytes())
        .await
        .unwrap();

    let mail = only(sink.wait_for_async(1, WAIT).await);
    assert_eq!(mail.mail_from, "helpdesk@example.org");
    assert_eq!(mail.rcpt_to, vec!["customer@example.com"]);
    assert_eq!(mail.data, on_the_wire(raw.as_bytes()));
    assert!(!mail.helo.is_empty());
    assert_eq!(mail.auth, None);
    assert_eq!(mail.subject(), "Réponse [#42]");
    assert_eq!(
        mail.header("Message-ID").as_deref(),
        Some("reply-42@example.org")
    );
    assert_eq!(
        mail.header_raw("In-Reply-To").as_deref(),
        Some("<question-42@example.com>")
    );
    assert_eq!(
        mail.header("from").as_deref(),
        Some("Helpdesk <helpdesk@example.org>")
    );
    assert_eq!(mail.header("X-Missing"), None);
    assert!(
        mail.body_text().contains(".leading dot survives"),
        "{:?}",
        mail.body_text()
    );
}

#[tokio::test]
async fn smtp_sink_fail_next_gives_transient_then_permanent_errors_in_order() {
    let sink = SmtpSink::start();
    let smtp = transport(sink.port);
    let mail = raw_mail("retry", "Try again.");

    sink.fail_next(451);
    sink.fail_next(550);
    let first = smtp
        .send_raw(&envelope("customer@example.com"), &mail)
        .await
        .unwrap_err();
    assert!(first.is_transient(), "451 must be transient: {first}");
    let second = smtp
        .send_raw(&envelope("customer@example.com"), &mail)
        .await
        .unwrap_err();
    assert!(second.is_permanent(), "550 must be permanent: {second}");
    assert!(sink.messages().is_empty(), "failed sends are not accepted");
    let attempts = sink.attempts();
    let codes: Vec<u16> = attempts.iter().map(|a| a.reply_code).collect();
    assert_eq!(codes, vec![451, 550]);
    assert!(attempts.iter().all(|a| a.data == on_the_wire(&mail)));

    smtp.send_raw(&envelope("customer@example.com"), &mail)
        .await
        .unwrap();
    assert_eq!(
        only(sink.wait_for_async(1, WAIT).await).data,
        on_the_wire(&mail)
    );

    sink.fail_next_rcpt(550);
    let refused = smtp
        .send_raw(&envelope("nobody@example.com"), &mail)
        .await
        .unwrap_err();
    assert!(
        refused.is_permanent(),
        "RCPT 550 must be permanent: {refused}"
    );
    assert_eq!(sink.messages().len(), 1);
    assert_eq!(
        sink.attempts().len(),
        3,
        "RCPT-refused mail never reaches DATA"
    );
}

#[test]
fn smtp_sink_records_auth_and_stops_when_dropped() {
    let sink = SmtpSink::start();
    let port = sink.port;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let smtp = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(port)
            .credentials(lettre::transport::smtp::authentication::Credentials::new(
                "helpdesk".into(),
                "smtp-secret".into(),
            ))
            .build();
        smtp.send_raw(
            &envelope("customer@example.com"),
            &raw_mail("auth", "Authenticated."),
        )
        .await
        .unwrap();
    });
    let mail = only(sink.wait_for(1, WAIT));
    assert_eq!(
        mail.auth,
        Some(SmtpLogin {
            login: "helpdesk".into(),
            password: "smtp-secret".into(),
        })
    );

    drop(sink);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "SMTP sink still listens on {port} after its handle dropped"
    );
}
