//! Issue 10, critical: one mail must not crash or stall the daemon. The HTML bombs go
//! through the running daemon (`postdesk run`, real Dovecot): it must keep running, and
//! the next mail in the same folder must be ingested. A message that still kills a worker
//! is quarantined: the test hook `POSTDESK_FAULT=abort-on-marker` aborts the process on a
//! marked message, and the restarted daemon must store it as unprocessable and go on.

use std::time::Duration;

use crate::harness::{Desk, Opts, RunningDaemon, eventually, mail};

/// Upper bound for "the next mail is ingested": a liveness bound, not a speed check.
const SOON: Duration = Duration::from_secs(30);

fn quiet_desk() -> Desk {
    Desk::with(Opts {
        autoreply: false,
        ..Opts::default()
    })
}

fn html_mail(from: &str, id: &str, html: &str) -> Vec<u8> {
    format!(
        "Return-Path: <{from}>\r\nFrom: {from}\r\nTo: support@example.com\r\nSubject: Formatted question\r\nMessage-ID: <{id}>\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n"
    )
    .into_bytes()
}

/// Whether the message is stored; false too while the daemon has not yet created or
/// migrated the database (it was a race under load: "no such table: messages").
fn stored(desk: &Desk, message_id: &str) -> bool {
    desk.try_count(&format!(
        "SELECT COUNT(*) FROM messages WHERE message_id = '{message_id}'"
    )) == Some(1)
}

/// Runs the daemon over `poison` followed by an ordinary mail, and checks that the daemon
/// survives, the ordinary mail is ingested and the poison is stored with readable text.
fn survives(poison: &[u8], poison_id: &str, text_inside: &str) {
    let desk = quiet_desk();
    desk.deliver(poison);
    desk.deliver(&mail(
        "Next Customer <next@customer.org>",
        "support@example.com",
        "Behind the bomb",
        "next-1@customer.org",
        "",
        "I am the mail behind it.",
    ));
    let mut daemon = desk.spawn_daemon(&[]);
    let ingested = eventually(SOON, || stored(&desk, "next-1@customer.org"));
    assert_running(&mut daemon);
    assert!(
        ingested,
        "the mail behind the bomb was not ingested:\n{}",
        daemon.log_text()
    );
    assert!(stored(&desk, poison_id), "the bomb itself is not stored");
    let body = desk.query_string(&format!(
        "SELECT body_text FROM messages WHERE message_id = '{poison_id}'"
    ));
    assert!(
        body.contains(text_inside),
        "{:?}",
        body.get(..200.min(body.len()))
    );
    assert!(!body.contains('<'), "markup left in the text");
}

fn assert_running(daemon: &mut RunningDaemon) {
    if let Ok(Some(status)) = daemon.child.try_wait() {
        panic!("the daemon died ({status}):\n{}", daemon.log_text());
    }
}

#[test]
fn fifty_thousand_nested_blockquotes_do_not_kill_the_daemon() {
    let html = format!("{}deepest words", "<blockquote>".repeat(50_000));
    survives(
        &html_mail("bomb@hostile.test", "blockquotes@hostile.test", &html),
        "blockquotes@hostile.test",
        "deepest words",
    );
}

#[test]
fn a_hundred_thousand_nested_list_items_do_not_kill_the_daemon() {
    let html = format!("{}innermost item", "<ul><li>".repeat(100_000));
    survives(
        &html_mail("bomb@hostile.test", "lists@hostile.test", &html),
        "lists@hostile.test",
        "innermost item",
    );
}

#[test]
fn two_hundred_thousand_nested_divs_do_not_stall_ingest() {
    // 1 MB; rendering time grew with the square of the depth (about 4 minutes here).
    let html = format!("{}bottom of the pit", "<div>".repeat(200_000));
    survives(
        &html_mail("bomb@hostile.test", "divs@hostile.test", &html),
        "divs@hostile.test",
        "bottom of the pit",
    );
}

#[test]
fn a_table_bomb_does_not_stall_ingest() {
    let html = format!("{}cell text", "<table><tr><td>".repeat(20_000));
    survives(
        &html_mail("bomb@hostile.test", "tables@hostile.test", &html),
        "tables@hostile.test",
        "cell text",
    );
}

#[test]
fn seven_hundred_thousand_empty_parts_stay_within_four_times_their_size() {
    let desk = quiet_desk();
    let mut raw = String::from(
        "Return-Path: <parts@hostile.test>\r\nFrom: parts@hostile.test\r\nTo: support@example.com\r\nSubject: Parts\r\nMessage-ID: <parts@hostile.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n",
    );
    for _ in 0..700_000 {
        raw.push_str("--b\r\nContent-Type: text/plain\r\n\r\n\r\n");
    }
    raw.push_str("--b--\r\n");
    let size = raw.len() as u64;
    let maildir = desk.dir.path().join("md");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    std::fs::write(maildir.join("new").join("1.parts:2,"), &raw).unwrap();
    let out = desk.cmd(&["import", "maildir", maildir.to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let peak = v["peak_rss_kib"].as_u64().expect("peak RSS reported") * 1024;
    // Four times the message plus what the process needs with no message at all.
    let bound = 4 * size + 64 * 1024 * 1024;
    assert!(
        peak <= bound,
        "peak RSS {} MiB for a {} MiB message (bound {} MiB)",
        peak >> 20,
        size >> 20,
        bound >> 20
    );
    assert!(stored(&desk, "parts@hostile.test"));
    // The raw bytes are kept whole.
    let back = desk.cmd(&["message", "raw", "parts@hostile.test"]);
    assert!(back.status.success());
    assert_eq!(back.stdout.len() as u64, size);
}

#[test]
fn a_message_that_kills_the_worker_is_quarantined_and_the_folder_goes_on() {
    let desk = quiet_desk();
    desk.deliver(&mail(
        "Before <before@customer.org>",
        "support@example.com",
        "Before the poison",
        "before-1@customer.org",
        "",
        "First.",
    ));
    let poison = mail(
        "Poison <poison@hostile.test>",
        "support@example.com",
        "Poison",
        "poison-1@hostile.test",
        "X-Postdesk-Test-Fault: abort\r\n",
        "This message kills whoever processes it.",
    );
    desk.deliver(&poison);
    desk.deliver(&mail(
        "After <after@customer.org>",
        "support@example.com",
        "After the poison",
        "after-1@customer.org",
        "",
        "Third.",
    ));
    let env = [("POSTDESK_FAULT", "abort-on-marker")];
    // The first run dies on the poison, as a worker would on a real killer mail.
    let mut first = desk.spawn_daemon(&env);
    let status = first.wait_exit(SOON);
    assert!(!status.success(), "the test hook did not abort the daemon");
    assert!(!stored(&desk, "after-1@customer.org"));
    // Restarted (systemd's Restart=on-failure), with the hook still armed: the suspects of
    // the crash are retried one at a time, so the poison kills the process once more,
    // alone, after the mail before it is in.
    let mut careful = desk.spawn_daemon(&env);
    let status = careful.wait_exit(SOON);
    assert!(!status.success());
    assert!(
        stored(&desk, "before-1@customer.org"),
        "{}",
        careful.log_text()
    );
    assert!(
        careful.log_count("one message at a time") >= 1,
        "{}",
        careful.log_text()
    );
    // The third start quarantines it and everything else goes in.
    let mut second = desk.spawn_daemon(&env);
    let done = eventually(SOON, || {
        stored(&desk, "before-1@customer.org") && stored(&desk, "after-1@customer.org")
    });
    assert_running(&mut second);
    assert!(done, "the folder stayed poisoned:\n{}", second.log_text());
    assert_eq!(
        desk.count(
            "SELECT COUNT(*) FROM messages WHERE kind = 'unprocessable' AND ticket_id IS NULL \
             AND problems LIKE '%quarantined%'"
        ),
        1,
        "the poison is not stored as quarantined"
    );
    assert!(
        second.log_count("quarantined") >= 1,
        "{}",
        second.log_text()
    );
    // Its bytes are kept exactly.
    let row = desk.count("SELECT id FROM messages WHERE kind = 'unprocessable'");
    let back = desk.cmd(&["message", "raw", &row.to_string()]);
    assert!(back.status.success());
    assert_eq!(back.stdout, poison);
    // And new mail keeps flowing.
    desk.deliver(&mail(
        "Later <later@customer.org>",
        "support@example.com",
        "Later",
        "later-1@customer.org",
        "",
        "Fourth.",
    ));
    assert!(
        eventually(SOON, || stored(&desk, "later-1@customer.org")),
        "{}",
        second.log_text()
    );
    assert_running(&mut second);
}
