//! Issue 11: real-world mail that came out wrong. Real Dovecot in, real SMTP out.

use crate::harness::{Desk, Opts};

fn legacy(text: &str, charset: &str) -> Vec<u8> {
    let enc = encoding_rs::Encoding::for_label(charset.as_bytes()).unwrap();
    enc.encode(text).0.into_owned()
}

/// A plain mail, with `return_path` as its first header when given.
fn plain(return_path: Option<&str>, from: &str, subject: &str, id: &str) -> Vec<u8> {
    let rp = return_path.map_or(String::new(), |r| format!("Return-Path: {r}\r\n"));
    format!(
        "{rp}From: {from}\r\nTo: support@example.com\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\
         Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n\r\nHello, a question.\r\n"
    )
    .into_bytes()
}

#[test]
fn a_mail_without_return_path_is_acknowledged_and_a_null_one_is_not() {
    let desk = Desk::start();
    desk.deliver(&plain(
        None,
        "ann@customer.org",
        "Dropped in",
        "norp@customer.org",
    ));
    desk.deliver(&plain(
        Some("<>"),
        "bob@customer.org",
        "Null sender",
        "nullrp@customer.org",
    ));
    let r = desk.run_once();
    assert_eq!(r["new_tickets"], 2, "{r}");
    let sent = desk.sent(1);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let sent_all = desk.smtp.messages();
    assert_eq!(sent_all.len(), 1, "exactly one acknowledgement: {sent:?}");
    assert_eq!(sent_all[0].rcpt_to, vec!["ann@customer.org".to_string()]);
}

#[test]
fn legacy_cjk_subjects_and_an_unlabelled_gbk_body_reach_the_ticket_decoded() {
    let desk = Desk::start();
    let cases = [
        ("关于我的订单退款问题", "gb2312", "li@example.cn"),
        ("關於我的訂單退款問題", "big5", "chen@example.com.tw"),
        (
            "注文の返金についてのお問い合わせ",
            "shift_jis",
            "yamada@example.co.jp",
        ),
    ];
    for (i, (subject, charset, from)) in cases.iter().enumerate() {
        let mut raw = format!("From: {from}\r\nTo: support@example.com\r\nSubject: ").into_bytes();
        raw.extend(legacy(subject, charset));
        raw.extend(
            format!("\r\nMessage-ID: <cjk{i}@x.test>\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n\r\nhello\r\n")
                .as_bytes(),
        );
        desk.deliver(&raw);
    }
    let body = "您好，我上周购买的商品一直没有发货，请帮我查询一下物流信息。谢谢！";
    let mut raw = b"From: wang@example.cn\r\nTo: support@example.com\r\nSubject: order\r\nMessage-ID: <gbkbody@x.test>\r\nContent-Type: text/plain\r\n\r\n".to_vec();
    raw.extend(legacy(body, "gbk"));
    raw.extend(b"\r\n");
    desk.deliver(&raw);
    let r = desk.run_once();
    assert_eq!(r["new_tickets"], 4, "{r}");
    let tickets = desk.tickets();
    for (subject, charset, _) in &cases {
        assert!(
            tickets.iter().any(|t| t["subject"] == *subject),
            "{charset}: {subject} not among {tickets:?}"
        );
    }
    let gbk = tickets.iter().find(|t| t["subject"] == "order").unwrap();
    let messages = desk.messages(gbk["id"].as_i64().unwrap());
    let m = &messages[0];
    assert!(
        m["body_text"].as_str().unwrap().contains(body),
        "{}",
        m["body_text"]
    );
    assert!(
        m["problems"].to_string().contains("guessed as GBK"),
        "the guess is recorded: {}",
        m["problems"]
    );
}

#[test]
fn an_address_only_display_name_and_a_missing_from_still_make_tickets() {
    let desk = Desk::start();
    desk.deliver(
        b"From: \"finances8@loans.example\"\r\nTo: support@example.com\r\nSubject: Loan offer\r\nMessage-ID: <addr-name@loans.example>\r\n\r\nhi\r\n",
    );
    desk.deliver(
        b"From: Just A Name\r\nReply-To: Ann <ann@customer.org>\r\nTo: support@example.com\r\nSubject: No address\r\nMessage-ID: <noaddr@customer.org>\r\n\r\nhi\r\n",
    );
    let r = desk.run_once();
    assert_eq!(r["new_tickets"], 2, "{r}");
    assert_eq!(r["unprocessable"].as_i64().unwrap_or(0), 0, "{r}");
    let tickets = desk.tickets();
    let loan = tickets
        .iter()
        .find(|t| t["subject"] == "Loan offer")
        .unwrap();
    assert_eq!(
        loan["customer"]["email"], "finances8@loans.example",
        "{loan}"
    );
    let ann = tickets
        .iter()
        .find(|t| t["subject"] == "No address")
        .unwrap();
    assert_eq!(ann["customer"]["email"], "ann@customer.org", "{ann}");
    let m = &desk.messages(ann["id"].as_i64().unwrap())[0];
    assert!(
        m["problems"].to_string().contains("taken from Reply-To"),
        "the fallback is recorded: {}",
        m["problems"]
    );
}

#[test]
fn unfiled_messages_are_listed_with_reasons_and_summarised_to_the_admin_once_a_day() {
    let desk = Desk::with(Opts {
        extra: "[admin]\nemail = \"ops@example.com\"\n",
        max_message_mb: 1,
        ..Opts::default()
    });
    // No address anywhere: unprocessable. Over the size limit: rejected.
    desk.deliver(
        b"From: Nobody At All\r\nTo: support@example.com\r\nSubject: who am I\r\nMessage-ID: <nobody@x.test>\r\n\r\nhi\r\n",
    );
    let mut big = plain(
        Some("<big@customer.org>"),
        "big@customer.org",
        "Huge",
        "big@customer.org",
    );
    big.extend(std::iter::repeat_n(b'a', 1_200_000));
    desk.deliver(&big);
    desk.deliver(&plain(
        None,
        "ann@customer.org",
        "Fine",
        "fine@customer.org",
    ));
    let r = desk.run_once();
    assert_eq!(r["new_tickets"], 1, "{r}");

    let out = desk.cmd(&["message", "list", "--problems", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["rejected", "unprocessable"], "{list:#}");
    for m in list.as_array().unwrap() {
        assert!(
            !m["problems"].as_array().unwrap().is_empty(),
            "a reason for each: {m:#}"
        );
    }
    let text = desk.cmd(&["message", "list", "--problems"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("why: "), "{text}");

    // The admin's summary: one mail naming both, nothing to the customers about them.
    let sent = desk.sent(2);
    let summaries: Vec<_> = sent
        .iter()
        .filter(|m| m.rcpt_to == vec!["ops@example.com".to_string()])
        .collect();
    assert_eq!(summaries.len(), 1, "{sent:?}");
    let body = summaries[0].body_text();
    assert!(body.contains("2 message(s)"), "{body}");
    assert!(
        body.contains("rejected") && body.contains("unprocessable"),
        "{body}"
    );
    // A second pass the same day sends no second summary, even with a new problem.
    desk.deliver(
        b"From: Nobody Else\r\nTo: support@example.com\r\nSubject: again\r\nMessage-ID: <nobody2@x.test>\r\n\r\nhi\r\n",
    );
    desk.run_once();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let to_admin = desk
        .smtp
        .messages()
        .iter()
        .filter(|m| m.rcpt_to == vec!["ops@example.com".to_string()])
        .count();
    assert_eq!(to_admin, 1, "at most one summary a day");
}
