//! Hostile input is normal input: every one of these goes through the real Dovecot and the
//! real binary, and each is stored (or rejected with a logged reason under the size cap).
//! None may crash the daemon, stop the batch, or corrupt another ticket.

use base64::Engine;

use crate::harness::{Desk, Opts, mail};

fn headers(from: &str, subject: &str, id: &str, extra: &str) -> String {
    format!(
        "Return-Path: <{from}>\r\nFrom: {from}\r\nTo: support@example.com\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n{extra}"
    )
}

fn nested_multipart(depth: usize) -> String {
    let mut body = String::from("Content-Type: text/plain\r\n\r\ninnermost text\r\n");
    for i in 0..depth {
        body = format!(
            "Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n{body}\r\n--b{i}--\r\n"
        );
    }
    body
}

fn nested_rfc822(depth: usize) -> String {
    let mut msg = String::from("Subject: core\r\nContent-Type: text/plain\r\n\r\ncore\r\n");
    for i in 0..depth {
        msg = format!("Subject: level {i}\r\nContent-Type: message/rfc822\r\n\r\n{msg}");
    }
    msg
}

#[test]
fn hostile_messages_are_stored_and_none_stops_the_batch() {
    let desk = Desk::with(Opts {
        autoreply: false,
        ..Opts::default()
    });
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();

    cases.push((
        "malformed MIME",
        format!(
            "{}Content-Type: multipart/mixed; boundary=\"never-closed\"\r\n\r\n--never-closed\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n%%%not base64%%%\r\n--never-closed\r\nContent-Type: multipart/alternative\r\n\r\nno boundary at all\r\n",
            headers("a@hostile.test", "Malformed", "malformed@hostile.test", "")
        )
        .into_bytes(),
    ));

    let attachment =
        base64::engine::general_purpose::STANDARD.encode(vec![0x5au8; 20 * 1024 * 1024]);
    let mut wrapped = String::with_capacity(attachment.len() + attachment.len() / 76 * 2);
    for chunk in attachment.as_bytes().chunks(76) {
        wrapped.push_str(std::str::from_utf8(chunk).unwrap());
        wrapped.push_str("\r\n");
    }
    cases.push((
        "20 MB attachment",
        format!(
            "{}Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nSee attached dump.\r\n--B\r\nContent-Type: application/octet-stream; name=\"dump.bin\"\r\nContent-Disposition: attachment; filename=\"dump.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{wrapped}--B--\r\n",
            headers("b@hostile.test", "Big attachment", "big@hostile.test", "")
        )
        .into_bytes(),
    ));

    cases.push((
        "100-deep multipart nesting",
        format!(
            "{}{}",
            headers("c@hostile.test", "Deep", "deep@hostile.test", ""),
            nested_multipart(100)
        )
        .into_bytes(),
    ));
    cases.push((
        "100-deep message/rfc822 nesting",
        format!(
            "{}{}",
            headers("c2@hostile.test", "Deep822", "deep822@hostile.test", ""),
            nested_rfc822(100)
        )
        .into_bytes(),
    ));

    cases.push((
        "unknown charset",
        [
            headers(
                "d@hostile.test",
                "=?x-unknown?B?SGVsbG8=?= charset",
                "charset@hostile.test",
                "Content-Type: text/plain; charset=\"x-no-such-charset-42\"\r\n",
            )
            .as_bytes(),
            b"\r\nHello \xe9\xe8 world\r\n",
        ]
        .concat(),
    ));

    let mut nul = headers(
        "e@hostile.test",
        "Nul\0bytes",
        "nul@hostile.test",
        "Content-Type: text/plain\r\n",
    )
    .into_bytes();
    nul.extend_from_slice(b"\r\nbody with \0 NUL \0 bytes\r\n");
    cases.push(("NUL bytes", nul));

    cases.push((
        "two From headers",
        "Return-Path: <f@hostile.test>\r\nFrom: f@hostile.test\r\nFrom: alice@example.com\r\nTo: support@example.com\r\nSubject: Two froms\r\nMessage-ID: <twofrom@hostile.test>\r\n\r\nwho am I\r\n".to_string()
        .into_bytes(),
    ));

    let long_subject = "x".repeat(1024 * 1024);
    cases.push((
        "1 MB subject",
        format!(
            "{}Content-Type: text/plain\r\n\r\nlong subject\r\n",
            headers("g@hostile.test", &long_subject, "longsubj@hostile.test", "")
        )
        .into_bytes(),
    ));

    // Odd but legitimate charsets decode to the right text.
    let gbk = encoding("您好，我的订单没有到。", "gbk");
    cases.push((
        "GBK body",
        [
            headers(
                "h@hostile.test",
                "=?GBK?B?tqm1pQ==?=",
                "gbk@hostile.test",
                "Content-Type: text/plain; charset=GBK\r\n",
            )
            .as_bytes(),
            b"\r\n",
            &gbk,
            b"\r\n",
        ]
        .concat(),
    ));
    let big5 = encoding("請問何時出貨", "big5");
    cases.push((
        "Big5 body",
        [
            headers(
                "i@hostile.test",
                "Big5",
                "big5@hostile.test",
                "Content-Type: text/plain; charset=big5\r\n",
            )
            .as_bytes(),
            b"\r\n",
            &big5,
            b"\r\n",
        ]
        .concat(),
    ));
    cases.push((
        "ISO-2022-JP body",
        [
            headers(
                "j@hostile.test",
                "=?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?=",
                "jis@hostile.test",
                "Content-Type: text/plain; charset=ISO-2022-JP\r\n",
            )
            .as_bytes(),
            b"\r\n\x1b$B$3$s$K$A$O\x1b(B\r\n",
        ]
        .concat(),
    ));
    // A good message after all of them must still be processed normally.
    cases.push((
        "ordinary",
        mail(
            "k@hostile.test",
            "support@example.com",
            "Ordinary",
            "ordinary@hostile.test",
            "",
            "fine",
        ),
    ));

    for (_, raw) in &cases {
        desk.deliver(raw);
    }
    let report = desk.run_once();
    assert_eq!(report["fetched"], cases.len(), "{report}");

    for (what, raw) in &cases {
        let id = crate::harness::message_id_of(raw);
        let n = desk.count(&format!(
            "SELECT COUNT(*) FROM messages m JOIN raw_messages r ON r.id = m.raw_id \
             WHERE m.message_id = '{id}' AND r.size = {}",
            raw.len()
        ));
        assert_eq!(n, 1, "{what}: stored once with its raw bytes");
    }
    // The raw bytes are kept exactly, and `message raw` gives them back (by Message-ID
    // and by number), here for the 20 MB attachment.
    let out = desk.cmd(&["message", "raw", "<big@hostile.test>"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout == cases[1].1,
        "the 20 MB message comes back byte for byte"
    );
    let row = desk.count("SELECT id FROM messages WHERE message_id = 'big@hostile.test'");
    let by_row = desk.cmd(&["message", "raw", &row.to_string()]);
    assert!(by_row.stdout == cases[1].1);
    let missing = desk.cmd(&["message", "raw", "<nobody@hostile.test>"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no message"));

    let by_id = |id: &str| -> serde_json::Value {
        let tickets = desk.tickets();
        for t in &tickets {
            for m in desk.messages(t["id"].as_i64().unwrap()) {
                if m["message_id"] == id {
                    return m;
                }
            }
        }
        panic!("no message {id}");
    };
    let big = by_id("big@hostile.test");
    assert_eq!(big["attachments"][0]["filename"], "dump.bin");
    assert_eq!(big["attachments"][0]["size"], 20 * 1024 * 1024);
    let deep = by_id("deep@hostile.test");
    assert!(
        deep["body_text"]
            .as_str()
            .unwrap()
            .contains("innermost text")
            || deep["problems"].as_array().is_some()
    );
    let two = by_id("twofrom@hostile.test");
    assert_eq!(
        two["from"], "f@hostile.test",
        "the first From is used, never the agent's"
    );
    assert!(two["problems"].to_string().contains("From"));
    let nul = by_id("nul@hostile.test");
    assert!(!nul["body_text"].as_str().unwrap().contains('\0'));
    let long = by_id("longsubj@hostile.test");
    assert!(long["subject"].as_str().unwrap().len() <= 16 * 1024);
    assert_eq!(
        by_id("gbk@hostile.test")["body_text"],
        "您好，我的订单没有到。"
    );
    assert_eq!(by_id("gbk@hostile.test")["subject"], "订单");
    assert_eq!(by_id("big5@hostile.test")["body_text"], "請問何時出貨");
    assert_eq!(by_id("jis@hostile.test")["body_text"], "こんにちは");
    assert_eq!(by_id("jis@hostile.test")["subject"], "こんにちは");
    assert_eq!(by_id("ordinary@hostile.test")["body_text"], "fine");
    // Ticket subjects are bounded even when the mail's is not.
    assert!(
        desk.tickets()
            .iter()
            .all(|t| t["subject"].as_str().unwrap().len() <= 1000)
    );
}

#[test]
fn oversize_mail_is_rejected_with_a_reason_and_left_on_the_server() {
    let desk = Desk::with(Opts {
        max_message_mb: 1,
        after_ingest: "after_ingest = \"flag\"",
        ..Opts::default()
    });
    let big = mail(
        "big@customer.org",
        "support@example.com",
        "Huge",
        "huge@customer.org",
        "",
        &"y".repeat(2 * 1024 * 1024),
    );
    let uid = desk.deliver(&big);
    let small = desk.deliver(&mail(
        "small@customer.org",
        "support@example.com",
        "Small",
        "small@customer.org",
        "",
        "ok",
    ));
    let (report, logs) = desk.run_once_logs();
    assert_eq!(report["fetched"], 2);
    assert!(logs.contains("exceeds max_message_mb"), "{logs}");
    assert_eq!(desk.count("SELECT COUNT(*) FROM messages WHERE kind = 'rejected' AND ticket_id IS NULL AND problems LIKE '%exceeds max_message_mb%'"), 1);
    // The header is kept; the real size is recorded.
    assert_eq!(desk.count("SELECT size FROM raw_messages r JOIN messages m ON m.raw_id = r.id WHERE m.kind = 'rejected'"), big.len() as i64);
    assert!(
        !desk
            .dovecot
            .flags("support", "INBOX", uid)
            .iter()
            .any(|f| f == "$Postdesk"),
        "left untouched on the server"
    );
    assert!(
        desk.dovecot
            .flags("support", "INBOX", small)
            .iter()
            .any(|f| f == "$Postdesk")
    );
    assert_eq!(desk.tickets().len(), 1);
    // Running again neither re-fetches nor duplicates it.
    let report = desk.run_once();
    assert_eq!(report["fetched"], 0);
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM messages WHERE kind = 'rejected'"),
        1
    );
}

/// Encodes text in a legacy charset with Python (the oracle), so the test does not depend
/// on the decoder it checks.
fn encoding(text: &str, charset: &str) -> Vec<u8> {
    let out = std::process::Command::new(crate::support::python())
        .args([
            "-c",
            &format!("import sys; sys.stdout.buffer.write(sys.argv[1].encode('{charset}'))"),
            text,
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}
