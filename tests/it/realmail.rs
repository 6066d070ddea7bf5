//! Issue 11: real-world mail that came out wrong. Real Dovecot in, real SMTP out.

use crate::harness::Desk;

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
