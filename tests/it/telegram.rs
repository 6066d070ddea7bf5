//! Issue 15: the Telegram bridge with the real daemon, against a local Bot API server
//! (`support::telegram`) and, for the agents' side, real Dovecot and a real SMTP server.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::agents::{AGENT_CONFIG, alice_reply, mails_to, token_of};
use crate::harness::{Desk, Opts, RunningDaemon, eventually};
use crate::support::telegram::{FakeTelegram, Fault, TOKEN};

const ANN: i64 = 5_550_001;

fn telegram_desk(tg: &FakeTelegram, extra_bot_lines: &str) -> Desk {
    let extra = format!(
        "{AGENT_CONFIG}\n[admin]\nemail = \"admin@example.com\"\n\n[[channel.telegram]]\naccount = \"shop_bot\"\ntoken = \"{TOKEN}\"\napi_base = \"{}\"\npoll_timeout_secs = 1\n{extra_bot_lines}",
        tg.api_base()
    );
    Desk::with(Opts {
        autoreply: false,
        notify: true,
        extra: Box::leak(extra.into_boxed_str()),
        ..Opts::default()
    })
}

/// The tickets once `n` exist.
fn wait_tickets(desk: &Desk, n: usize, d: &RunningDaemon) -> Vec<Value> {
    let ok = eventually(Duration::from_secs(30), || {
        desk.try_count("SELECT COUNT(*) FROM tickets")
            .is_some_and(|c| c >= n as i64)
    });
    assert!(ok, "expected {n} ticket(s):\n{}", d.log_text());
    desk.tickets()
}

fn notification(desk: &Desk, ticket: i64) -> crate::support::CapturedMail {
    let mut found = None;
    let ok = eventually(Duration::from_secs(30), || {
        found = mails_to(&desk.smtp.messages(), "alice@example.com")
            .into_iter()
            .find(|m| m.subject().contains(&format!("[#{ticket}]")));
        found.is_some()
    });
    assert!(ok, "no notification to alice for ticket #{ticket}");
    found.unwrap()
}

#[test]
fn a_chat_message_opens_a_ticket_the_mail_answer_reaches_the_chat_and_a_restart_duplicates_nothing()
{
    let tg = FakeTelegram::start();
    let desk = telegram_desk(&tg, "");
    let asked = tg.customer_writes(ANN, "Ann", "My order 4471 never arrived. Where is it?");
    let mut d = desk.spawn_daemon(&[]);
    let tickets = wait_tickets(&desk, 1, &d);
    let ticket = tickets[0]["id"].as_i64().unwrap();
    let shown = desk.show(ticket);
    let m = &shown["messages"][0];
    assert_eq!(m["channel"], "telegram", "{shown:#}");
    assert_eq!(m["account"], "shop_bot");
    assert_eq!(m["external_id"], format!("{ANN}:{asked}"));
    assert_eq!(m["conversation"], ANN.to_string());
    assert!(
        m["body_text"].as_str().unwrap().contains("order 4471"),
        "{m:#}"
    );

    // Offsets: the first poll confirms nothing; once the page is stored the next carries
    // the offset past it, and Telegram forgets the update.
    let ok = eventually(Duration::from_secs(20), || tg.unconfirmed() == 0);
    assert!(
        ok,
        "the stored update was never confirmed:\n{}",
        d.log_text()
    );
    let polls = tg.calls("getUpdates");
    assert!(polls[0].params.get("offset").is_none(), "{:?}", polls[0]);
    assert_eq!(polls[0].params["allowed_updates"], json!(["message"]));
    assert_eq!(polls[0].params["timeout"], 1);
    let update_id = polls
        .iter()
        .find_map(|c| c.params.get("offset").and_then(Value::as_i64))
        .expect("no poll carried an offset");
    assert_eq!(
        desk.query_string(
            "SELECT cursor FROM channel_cursors WHERE channel = 'telegram' AND account = 'shop_bot'"
        ),
        update_id.to_string()
    );

    // The agent answers by mail; the answer goes into the chat, as a reply to Ann's message.
    let n = notification(&desk, ticket);
    desk.deliver(&alice_reply(
        &token_of(&n),
        ticket,
        &n,
        "alice-tg-1@example.com",
        "Hello Ann, your parcel left our warehouse today.",
    ));
    let ok = eventually(Duration::from_secs(30), || !tg.sent().is_empty());
    assert!(ok, "nothing reached the chat:\n{}", d.log_text());
    let sent = tg.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].chat_id, ANN);
    assert_eq!(sent[0].reply_to, Some(asked));
    assert!(
        sent[0].text.contains("parcel left our warehouse"),
        "{sent:?}"
    );

    // The customer writes again: same ticket (the conversation's open ticket).
    tg.customer_writes(ANN, "Ann", "Thanks! And the invoice?");
    let ok = eventually(Duration::from_secs(30), || desk.messages(ticket).len() >= 3);
    assert!(ok, "the second message did not join:\n{}", d.log_text());
    d.terminate();

    // A restart after every confirmation was lost: Telegram hands everything out again,
    // and nothing is stored twice, nor sent twice.
    tg.forget_confirmations();
    let marker = tg.customer_writes(ANN + 1, "Bo", "A new question after the restart");
    let d2 = desk.spawn_daemon(&[]);
    let tickets = wait_tickets(&desk, 2, &d2);
    let ok = eventually(Duration::from_secs(20), || tg.unconfirmed() == 0);
    assert!(ok, "{}", d2.log_text());
    assert_eq!(tickets.len(), 2, "{tickets:#?}");
    assert_eq!(
        desk.count(
            "SELECT COUNT(*) FROM messages WHERE channel = 'telegram' AND direction = 'inbound'"
        ),
        3
    );
    assert!(
        desk.count(&format!(
            "SELECT COUNT(*) FROM messages WHERE external_id = '{}:{marker}'",
            ANN + 1
        )) == 1
    );
    assert_eq!(tg.sent().len(), 1, "an answer went out twice");
    let out = desk.cmd(&["channels", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["channels"][0]["messages_in"], 3, "{v:#}");
    assert_eq!(v["channels"][0]["sent"], 1, "{v:#}");
    assert_eq!(v["channels"][0]["failed"], 0, "{v:#}");
}

#[test]
fn documents_and_photos_come_through_get_file_and_are_kept_with_the_message() {
    let tg = FakeTelegram::start();
    let desk = telegram_desk(&tg, "");
    let pdf = b"%PDF-1.4 invoice 4471".to_vec();
    let doc = tg.add_file("documents/file_1.pdf", &pdf);
    let big = tg.add_file("photos/file_2.jpg", &[0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3]);
    let small = tg.add_file("photos/file_3.jpg", &[0xFF, 0xD8]);
    tg.customer_message(
        ANN,
        "Ann",
        json!({
            "caption": "The invoice and a photo of the box",
            "document": {"file_id": doc, "file_unique_id": "u1", "file_name": "invoice.pdf",
                         "mime_type": "application/pdf", "file_size": pdf.len()},
            "photo": [{"file_id": small, "file_unique_id": "u3", "width": 90, "height": 90},
                      {"file_id": big, "file_unique_id": "u2", "width": 800, "height": 600}]
        }),
    );
    let d = desk.spawn_daemon(&[]);
    let tickets = wait_tickets(&desk, 1, &d);
    let m = &desk.messages(tickets[0]["id"].as_i64().unwrap())[0];
    let names: Vec<&str> = m["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["filename"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{m:#}");
    assert_eq!(names[0], "invoice.pdf");
    assert_eq!(m["attachments"][0]["size"], pdf.len());
    assert_eq!(
        m["attachments"][1]["size"], 7,
        "the largest photo size is kept"
    );
    let fetched: Vec<String> = tg
        .calls("getFile")
        .iter()
        .map(|c| c.params["file_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(fetched, [doc, big]);
    // The raw record keeps the update and the bytes.
    let raw = desk.cmd(&["message", "raw", &m["id"].as_i64().unwrap().to_string()]);
    let raw: Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(
        raw["update"]["message"]["document"]["file_name"],
        "invoice.pdf"
    );
    assert_eq!(
        raw["files"][0]["data_base64"],
        base64_of(&pdf),
        "the document's bytes are not in the raw record"
    );
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[test]
fn retry_after_on_429_is_honoured_for_polls_and_sends_and_the_answer_goes_out_once() {
    let tg = FakeTelegram::start();
    let desk = telegram_desk(&tg, "");
    tg.fault("getUpdates", Fault::RetryAfter(3));
    tg.customer_writes(ANN, "Ann", "Is the shop open on Sunday?");
    let d = desk.spawn_daemon(&[]);
    let tickets = wait_tickets(&desk, 1, &d);
    let polls = tg.calls("getUpdates");
    assert!(polls.len() >= 2);
    let waited = polls[1].at.duration_since(polls[0].at);
    assert!(
        waited >= Duration::from_millis(2900),
        "polled again {waited:?} after a retry_after of 3 s"
    );

    let ticket = tickets[0]["id"].as_i64().unwrap();
    tg.fault("sendMessage", Fault::RetryAfter(2));
    let n = notification(&desk, ticket);
    desk.deliver(&alice_reply(
        &token_of(&n),
        ticket,
        &n,
        "alice-tg-2@example.com",
        "Yes, from 10 to 16.",
    ));
    let ok = eventually(Duration::from_secs(40), || !tg.sent().is_empty());
    assert!(ok, "the answer never went out:\n{}", d.log_text());
    let sends = tg.calls("sendMessage");
    assert_eq!(sends.len(), 2, "one refused with 429, one accepted");
    assert!(sends[1].at.duration_since(sends[0].at) >= Duration::from_millis(1900));
    assert_eq!(tg.sent().len(), 1);
}

#[test]
fn bad_answers_from_the_platform_are_survived_and_named() {
    let tg = FakeTelegram::start();
    let desk = telegram_desk(&tg, "");
    tg.fault("getUpdates", Fault::Body(b"{\"ok\": tru".to_vec()));
    tg.fault("getUpdates", Fault::Body(b"\xff\xfe not utf-8".to_vec()));
    tg.fault("getUpdates", Fault::Status(502));
    let mut huge = b"{\"ok\":true,\"result\":[{\"update_id\":1,\"message\":{\"message_id\":1,\"chat\":{\"id\":7},\"text\":\"".to_vec();
    huge.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
    huge.extend(b"\"}}]}");
    tg.fault("getUpdates", Fault::Body(huge));
    // Unknown update types and a message of a broken shape, between two good ones.
    tg.customer_writes(ANN, "Ann", "first good message");
    tg.push_update(json!({"callback_query": {"id": "1", "data": "x"}}));
    tg.push_update(json!({"brand_new_update_type_2030": {"whatever": [1, 2]}}));
    tg.push_update(json!({"message": {"message_id": "not a number", "chat": {"id": 9}}}));
    tg.push_update(json!({"message": {"message_id": 3, "chat": {"id": 10}, "from": {"id": 10, "is_bot": true, "first_name": "OtherBot"}, "text": "I am a bot"}}));
    tg.customer_writes(ANN + 7, "Cy", "second good message");
    let d = desk.spawn_daemon(&[]);
    let tickets = wait_tickets(&desk, 2, &d);
    let ok = eventually(Duration::from_secs(30), || tg.unconfirmed() == 0);
    assert!(ok, "{}", d.log_text());
    let log = d.log_text();
    for needle in [
        "not JSON",
        "not UTF-8",
        "502",
        "callback_query",
        "brand_new_update_type_2030",
        "message_id",
        "from a bot",
    ] {
        assert!(
            log.contains(needle),
            "{needle:?} missing from the log:\n{log}"
        );
    }
    // The 10 MB message went in, its text cut to the text limit, and the daemon runs on.
    assert_eq!(tickets.len(), 3, "{tickets:#?}");
    assert!(
        desk.count("SELECT MAX(LENGTH(body_text)) FROM messages WHERE channel = 'telegram'")
            < 10 * 1024 * 1024
    );
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM messages WHERE body_text = 'I am a bot'"),
        0
    );
    // A platform that hangs is survived too: the poll times out and the next one works.
    tg.fault("getUpdates", Fault::Hang(Duration::from_secs(25)));
    tg.customer_writes(ANN + 8, "Di", "after the hang");
    let ok = eventually(Duration::from_secs(60), || {
        desk.count("SELECT COUNT(*) FROM tickets") >= 4
    });
    assert!(ok, "nothing came in after a hang:\n{}", d.log_text());
}

#[test]
fn a_cursor_from_the_future_loses_nothing() {
    let tg = FakeTelegram::start();
    let desk = telegram_desk(&tg, "");
    // A first run creates the database; then the stored cursor is set far ahead.
    tg.customer_writes(ANN, "Ann", "before");
    let mut d = desk.spawn_daemon(&[]);
    wait_tickets(&desk, 1, &d);
    let ok = eventually(Duration::from_secs(20), || tg.unconfirmed() == 0);
    assert!(ok);
    d.terminate();
    desk.execute("UPDATE channel_cursors SET cursor = '999999999' WHERE channel = 'telegram'");
    tg.customer_writes(ANN + 1, "Bo", "written while the cursor was in the future");
    let d = desk.spawn_daemon(&[]);
    let tickets = wait_tickets(&desk, 2, &d);
    assert_eq!(tickets.len(), 2);
    let ok = eventually(Duration::from_secs(10), || {
        d.log_text().contains("below the stored offset 999999999")
    });
    assert!(ok, "{}", d.log_text());
    // No poll ever sent the future offset (that would have confirmed, and lost, updates).
    assert!(
        tg.calls("getUpdates")
            .iter()
            .all(|c| c.params.get("offset") != Some(&json!(999_999_999))),
    );
}

#[test]
fn a_revoked_token_disables_the_bot_and_alerts_the_admin_once() {
    let tg = FakeTelegram::start();
    let desk = telegram_desk(&tg, "");
    tg.customer_writes(ANN, "Ann", "hello");
    let mut d = desk.spawn_daemon(&[]);
    wait_tickets(&desk, 1, &d);
    tg.revoke();
    let mut alert = None;
    let ok = eventually(Duration::from_secs(30), || {
        alert = mails_to(&desk.smtp.messages(), "admin@example.com")
            .into_iter()
            .find(|m| m.subject().contains("shop_bot"));
        alert.is_some()
    });
    assert!(ok, "no alert to the admin:\n{}", d.log_text());
    let body = alert.unwrap().body_text();
    assert!(body.contains("disabled"), "{body}");
    assert!(!body.contains(TOKEN), "the alert shows the token");
    assert!(!d.log_text().contains(TOKEN), "the log shows the token");
    let polls = tg.calls("getUpdates").len();
    // The daemon runs on: mail still comes in.
    desk.deliver(&crate::harness::mail(
        "Eve <eve@customer.org>",
        "support@example.com",
        "Still there?",
        "eve-1@customer.org",
        "",
        "Mail still works.",
    ));
    wait_tickets(&desk, 2, &d);
    assert_eq!(
        tg.calls("getUpdates").len(),
        polls,
        "the disabled bot kept polling"
    );
    d.terminate();
    // A restart with the same token: still disabled, no second alert.
    let d2 = desk.spawn_daemon(&[]);
    let ok = eventually(Duration::from_secs(20), || {
        d2.log_text().contains("is disabled")
    });
    assert!(ok, "{}", d2.log_text());
    assert_eq!(tg.calls("getUpdates").len(), polls);
    assert_eq!(
        mails_to(&desk.smtp.messages(), "admin@example.com")
            .iter()
            .filter(|m| m.subject().contains("shop_bot"))
            .count(),
        1
    );
    assert!(
        desk.query_string("SELECT disabled_reason FROM channel_cursors WHERE channel = 'telegram'")
            .contains("401")
    );
    // `postdesk channels` shows it, in words and as JSON.
    let out = desk.cmd(&["channels", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let bot = &v["channels"][0];
    assert_eq!(bot["channel"], "telegram", "{v:#}");
    assert_eq!(bot["account"], "shop_bot");
    assert_eq!(bot["configured"], true);
    assert_eq!(bot["mode"], "long poll");
    assert!(
        bot["disabled_reason"].as_str().unwrap().contains("401"),
        "{v:#}"
    );
    let text = String::from_utf8(desk.cmd(&["channels"]).stdout).unwrap();
    assert!(
        text.contains("telegram shop_bot (long poll)") && text.contains("DISABLED since"),
        "{text}"
    );
}

#[test]
fn a_send_that_got_no_answer_is_parked_for_the_agent_not_resent() {
    let tg = FakeTelegram::start();
    let desk = telegram_desk(&tg, "");
    tg.customer_writes(ANN, "Ann", "Can I change my delivery address?");
    let d = desk.spawn_daemon(&[]);
    let tickets = wait_tickets(&desk, 1, &d);
    let ticket = tickets[0]["id"].as_i64().unwrap();
    tg.fault("sendMessage", Fault::DoThenDrop);
    let n = notification(&desk, ticket);
    desk.deliver(&alice_reply(
        &token_of(&n),
        ticket,
        &n,
        "alice-tg-3@example.com",
        "Yes, tell me the new address.",
    ));
    let mut notice = None;
    let start = Instant::now();
    let ok = eventually(Duration::from_secs(40), || {
        notice = mails_to(&desk.smtp.messages(), "alice@example.com")
            .into_iter()
            .find(|m| m.body_text().contains("may or may not have reached"));
        notice.is_some()
    });
    assert!(ok, "no notice of the parked answer:\n{}", d.log_text());
    assert!(start.elapsed() < Duration::from_secs(40));
    // It did reach the chat once, and it is not sent again.
    assert_eq!(tg.sent().len(), 1);
    assert_eq!(tg.calls("sendMessage").len(), 1);
    assert!(
        desk.query_string("SELECT last_error FROM outbox WHERE channel = 'telegram'")
            .starts_with("parked")
    );
}

#[test]
fn after_link_a_customer_s_mail_and_telegram_share_one_ticket_and_via_email_answers_by_mail() {
    let tg = FakeTelegram::start();
    let desk = telegram_desk(&tg, "");
    let d = desk.spawn_daemon(&[]);
    desk.deliver(&crate::harness::mail(
        "Ann Example <ann@customer.org>",
        "support@example.com",
        "Order 4471 never arrived",
        "ann-mail-1@customer.org",
        "",
        "Hello, my order 4471 never arrived.",
    ));
    let by_mail = wait_tickets(&desk, 1, &d)[0]["id"].as_i64().unwrap();
    tg.customer_writes(ANN, "Ann", "Hi, Ann here, about order 4471");
    let tickets = wait_tickets(&desk, 2, &d);
    let by_chat = tickets[1]["id"].as_i64().unwrap();
    assert_ne!(
        by_mail, by_chat,
        "a chat sender is nobody's customer until linked"
    );

    // Names and handles are never enough: only the agent's #link joins them.
    let n = notification(&desk, by_chat);
    desk.deliver(&alice_reply(
        &token_of(&n),
        by_chat,
        &n,
        "alice-link-1@example.com",
        "#link ann@customer.org",
    ));
    let ok = eventually(Duration::from_secs(30), || {
        desk.show(by_chat)["merged_into"] == json!(by_mail)
    });
    assert!(
        ok,
        "#link did not join the chat to the mail ticket:\n{}",
        d.log_text()
    );
    let out = desk.cmd(&["customer", "show", "ann@customer.org", "--json"]);
    let profile: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        profile["identities"][0]["identity"],
        format!("telegram:shop_bot:{ANN}"),
        "{profile:#}"
    );
    assert_eq!(profile["identities"][0]["signal"], "agent");
    assert_eq!(profile["identities"][0]["linked_by"], "alice");

    // Ann writes on Telegram again: the same ticket as her mail.
    let asked = tg.customer_writes(ANN, "Ann", "Any news about my parcel?");
    let ok = eventually(Duration::from_secs(30), || {
        desk.messages(by_mail)
            .iter()
            .any(|m| m["body_text"].as_str().unwrap_or("").contains("Any news"))
    });
    assert!(
        ok,
        "the linked chat did not land on the mail ticket:\n{}",
        d.log_text()
    );
    assert_eq!(desk.tickets().len(), 2, "no third ticket");

    // The answer goes to Telegram, where she wrote last...
    let n = notification(&desk, by_mail);
    let token = token_of(&n);
    desk.deliver(&alice_reply(
        &token,
        by_mail,
        &n,
        "alice-link-2@example.com",
        "Your parcel is with the courier now.",
    ));
    let ok = eventually(Duration::from_secs(30), || !tg.sent().is_empty());
    assert!(ok, "nothing reached Telegram:\n{}", d.log_text());
    assert_eq!(tg.sent()[0].chat_id, ANN);
    assert_eq!(tg.sent()[0].reply_to, Some(asked));
    let mails_to_ann = || mails_to(&desk.smtp.messages(), "ann@customer.org");
    let before = mails_to_ann().len();

    // ...and #via email sends the next one by mail instead.
    desk.deliver(&alice_reply(
        &token,
        by_mail,
        &n,
        "alice-link-3@example.com",
        "#via email\nThe tracking number is ZX-4471.",
    ));
    let ok = eventually(Duration::from_secs(30), || {
        mails_to_ann()
            .iter()
            .any(|m| m.body_text().contains("ZX-4471"))
    });
    assert!(ok, "#via email sent no mail to Ann:\n{}", d.log_text());
    assert!(mails_to_ann().len() > before);
    assert_eq!(tg.sent().len(), 1, "#via email also went to Telegram");
}

#[test]
fn in_webhook_mode_the_url_is_registered_and_each_bad_delivery_gets_its_status() {
    use crate::support::relay::{self, free_port};
    let tg = FakeTelegram::start();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/channels/telegram/shop_bot/webhook");
    let desk = telegram_desk(
        &tg,
        &format!(
            "webhook_url = \"{url}\"\nwebhook_secret = \"s3cret-token_1\"\nmax_body_mb = 1\n\n[http]\nlisten = \"127.0.0.1:{port}\"\n"
        ),
    );
    let d = desk.spawn_daemon(&[]);
    let ok = eventually(Duration::from_secs(30), || {
        !tg.calls("setWebhook").is_empty()
    });
    assert!(ok, "setWebhook was never called:\n{}", d.log_text());
    let set = &tg.calls("setWebhook")[0].params;
    assert_eq!(set["url"], url);
    assert_eq!(set["secret_token"], "s3cret-token_1");
    assert!(
        tg.calls("getUpdates").is_empty(),
        "a webhook bot must not poll"
    );

    let post = |secret: Option<&str>, body: &[u8]| {
        let headers: Vec<(&str, String)> = secret
            .map(|s| vec![("X-Telegram-Bot-Api-Secret-Token", s.to_string())])
            .unwrap_or_default();
        relay::request(
            port,
            "POST",
            "/channels/telegram/shop_bot/webhook",
            &headers,
            body,
        )
        .unwrap()
    };
    let update = |id: i64, text: &str| {
        serde_json::to_vec(&json!({"update_id": id, "message": {"message_id": id, "date": 1796000000,
            "chat": {"id": ANN, "type": "private"}, "from": {"id": ANN, "is_bot": false, "first_name": "Ann"},
            "text": text}}))
        .unwrap()
    };
    let good = update(1, "Hello from the webhook");
    let r = post(None, &good);
    assert_eq!(r.status, 401, "{}", r.body);
    let r = post(Some("wrong"), &good);
    assert_eq!(r.status, 401, "{}", r.body);
    let r = post(Some("s3cret-token_1"), b"{\"update_id\": 2, \"message\": ");
    assert_eq!(r.status, 400);
    assert!(r.body.contains("not JSON"), "{}", r.body);
    let r = post(Some("s3cret-token_1"), b"\xff\xfe\x00");
    assert_eq!(r.status, 400);
    assert!(r.body.contains("not UTF-8"), "{}", r.body);
    let huge = vec![b' '; 10 * 1024 * 1024];
    let r = post(Some("s3cret-token_1"), &huge);
    assert_eq!(r.status, 413, "{}", r.body);
    let r = post(
        Some("s3cret-token_1"),
        br#"{"update_id": 3, "poll": {"id": "1", "question": "?"}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("skipped"), "{}", r.body);
    let r = post(Some("wrong"), b"not even json");
    assert_eq!(
        r.status, 401,
        "the secret is checked before the body is read"
    );

    let r = post(Some("s3cret-token_1"), &good);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("stored"), "{}", r.body);
    // Telegram sends an update again when it did not see the 200: stored once.
    let r = post(Some("s3cret-token_1"), &good);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("already stored"), "{}", r.body);
    let tickets = wait_tickets(&desk, 1, &d);
    assert_eq!(tickets.len(), 1);
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM messages WHERE channel = 'telegram'"),
        1
    );
}

/// The outage rule for the similar-issues test: every complaint about it gets one category.
const OUTAGE_RULE: &str = r#"
[[rule]]
name = "outage"
when.any_keywords = ["down", "outage", "log in"]
set.category = "outage"

[[rule]]
name = "refund"
when.any_keywords = ["refund"]
set.category = "refund"
"#;

/// The first mail to `rcpt` whose subject holds all of `subject_parts` and whose body
/// holds `body_part`, within 30 s.
fn mail_with(
    desk: &Desk,
    rcpt: &str,
    subject_parts: &[&str],
    body_part: &str,
) -> Option<crate::support::CapturedMail> {
    let mut found = None;
    eventually(Duration::from_secs(30), || {
        found = mails_to(&desk.smtp.messages(), rcpt).into_iter().find(|m| {
            subject_parts.iter().all(|p| m.subject().contains(p))
                && m.body_text().contains(body_part)
        });
        found.is_some()
    });
    found
}

#[test]
fn a_telegram_complaint_and_two_mails_about_one_outage_are_listed_grouped_and_answered_at_once() {
    let tg = FakeTelegram::start();
    let desk = telegram_desk(&tg, OUTAGE_RULE);
    let d = desk.spawn_daemon(&[]);
    let customer_mail = |from: &str, subject: &str, id: &str, body: &str| {
        crate::harness::mail(from, "support@example.com", subject, id, "", body)
    };

    // An unrelated ticket first: another category, never listed.
    desk.deliver(&customer_mail(
        "Dan <dan@customer.org>",
        "Refund please",
        "dan-1@customer.org",
        "I want a refund for order 5512; the website says it is down for returns.",
    ));
    let refund = wait_tickets(&desk, 1, &d)[0]["id"].as_i64().unwrap();
    tg.customer_writes(
        ANN,
        "Ann",
        "The website is down, I cannot log in since this morning",
    );
    let by_chat = wait_tickets(&desk, 2, &d)[1]["id"].as_i64().unwrap();
    desk.deliver(&customer_mail(
        "Bob <bob@customer.org>",
        "Website down",
        "bob-1@customer.org",
        "Your website is down and I cannot log in at all.",
    ));
    let bob = wait_tickets(&desk, 3, &d)[2]["id"].as_i64().unwrap();
    desk.deliver(&customer_mail(
        "Cleo <cleo@customer.org>",
        "Site outage?",
        "cleo-1@customer.org",
        "Is the website down? I cannot log in to my account since 9am.",
    ));
    let cleo = wait_tickets(&desk, 4, &d)[3]["id"].as_i64().unwrap();
    assert_eq!(desk.show(cleo)["category"], "outage");

    // The third complaint's notification lists the other two, with their channels, and
    // the line that groups them; the refund ticket is not among them.
    let n = notification(&desk, cleo);
    let body = n.body_text();
    assert!(body.contains("SIMILAR OPEN TICKETS"), "{body}");
    assert!(body.contains(&format!("#{by_chat} by telegram")), "{body}");
    assert!(body.contains(&format!("#{bob} by email")), "{body}");
    assert!(!body.contains(&format!("#{refund} by")), "{body}");
    assert!(body.contains("Latest answer: (none yet)"), "{body}");
    assert!(body.contains(&format!("#problem {by_chat}")), "{body}");

    // Grouped: the mails become reports of the chat ticket.
    for (ticket, id) in [
        (cleo, "alice-pr-1@example.com"),
        (bob, "alice-pr-2@example.com"),
    ] {
        let n = notification(&desk, ticket);
        desk.deliver(&alice_reply(
            &token_of(&n),
            ticket,
            &n,
            id,
            &format!("#problem {by_chat}"),
        ));
    }
    let ok = eventually(Duration::from_secs(30), || {
        desk.show(by_chat)["reports"]
            .as_array()
            .is_some_and(|r| r.len() == 2)
    });
    assert!(ok, "the reports were not linked:\n{}", d.log_text());
    let problem = desk.show(by_chat);
    let reports: Vec<i64> = problem["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ticket_id"].as_i64().unwrap())
        .collect();
    assert!(
        reports.contains(&bob) && reports.contains(&cleo),
        "{problem:#}"
    );
    assert_eq!(desk.show(bob)["problem"], json!(by_chat));

    // One answer on the problem goes to its customer (Telegram); the receipt offers the
    // rest, with one line to confirm.
    let n = notification(&desk, by_chat);
    desk.deliver(&alice_reply(
        &token_of(&n),
        by_chat,
        &n,
        "alice-pr-3@example.com",
        "We found the fault: the website is back up. Sorry for the trouble.",
    ));
    let ok = eventually(Duration::from_secs(30), || tg.sent().len() == 1);
    assert!(ok, "the answer did not reach Telegram:\n{}", d.log_text());
    let receipt = mail_with(
        &desk,
        "alice@example.com",
        &[&format!("[#{by_chat}]"), "Receipt"],
        "#problem send",
    )
    .unwrap_or_else(|| panic!("no receipt offering the reports:\n{}", d.log_text()));
    let text = receipt.body_text();
    let line = text
        .lines()
        .find_map(|l| l.split("the line: ").nth(1))
        .unwrap_or_else(|| panic!("{text}"))
        .trim()
        .to_string();
    assert!(line.starts_with("#problem send "), "{line}");
    let customers_mail = |rcpt: &str| {
        mails_to(&desk.smtp.messages(), rcpt)
            .iter()
            .filter(|m| m.body_text().contains("website is back up"))
            .count()
    };
    assert_eq!(
        customers_mail("bob@customer.org"),
        0,
        "sent before the confirmation"
    );

    // The confirmation: both mail customers get the same answer, once, by mail.
    desk.deliver(&alice_reply(
        &token_of(&receipt),
        by_chat,
        &receipt,
        "alice-pr-4@example.com",
        &line,
    ));
    let ok = eventually(Duration::from_secs(30), || {
        customers_mail("bob@customer.org") == 1 && customers_mail("cleo@customer.org") == 1
    });
    assert!(
        ok,
        "the answer did not reach the reports:\n{}",
        d.log_text()
    );
    for t in [bob, cleo] {
        assert!(
            desk.messages(t).iter().any(|m| m["kind"] == "agent_reply"
                && m["body_text"].as_str().unwrap_or("").contains("back up")),
            "ticket #{t} does not record the answer"
        );
    }
    let receipt2 = mail_with(
        &desk,
        "alice@example.com",
        &[&format!("[#{by_chat}]")],
        &format!("#{bob} by email"),
    )
    .unwrap_or_else(|| panic!("no receipt naming where it went:\n{}", d.log_text()));
    assert!(receipt2.body_text().contains(&format!("#{cleo} by email")));

    // The same line again reaches nobody twice; Telegram got the answer once.
    desk.deliver(&alice_reply(
        &token_of(&receipt),
        by_chat,
        &receipt,
        "alice-pr-5@example.com",
        &line,
    ));
    let again = mail_with(
        &desk,
        "alice@example.com",
        &[&format!("[#{by_chat}]")],
        "already sent",
    );
    assert!(again.is_some(), "{}", d.log_text());
    assert_eq!(customers_mail("bob@customer.org"), 1);
    assert_eq!(customers_mail("cleo@customer.org"), 1);
    assert_eq!(tg.sent().len(), 1, "{:?}", tg.sent());
    assert_eq!(customers_mail("dan@customer.org"), 0);
}

#[test]
fn a_reply_to_one_of_our_answers_joins_that_answer_s_ticket_before_the_conversation_s() {
    let tg = FakeTelegram::start();
    let desk = telegram_desk(&tg, "");
    let d = desk.spawn_daemon(&[]);
    tg.customer_writes(ANN, "Ann", "My order 4471 never arrived");
    let first = wait_tickets(&desk, 1, &d)[0]["id"].as_i64().unwrap();
    let n = notification(&desk, first);
    let token = token_of(&n);
    desk.deliver(&alice_reply(
        &token,
        first,
        &n,
        "alice-r1-1@example.com",
        "#close\nIt left our warehouse today.",
    ));
    let ok = eventually(Duration::from_secs(30), || {
        desk.try_count("SELECT COUNT(*) FROM chat_sent") == Some(1)
    });
    assert!(ok, "our sent message was not recorded:\n{}", d.log_text());
    let answer_one = tg.sent()[0].message_id;
    assert_eq!(desk.show(first)["status"], "closed");

    // A new question in the same chat: a new ticket (the chat's one is closed), answered.
    tg.customer_writes(ANN, "Ann", "Another thing: my invoice is wrong");
    let second = wait_tickets(&desk, 2, &d)[1]["id"].as_i64().unwrap();
    let n2 = notification(&desk, second);
    desk.deliver(&alice_reply(
        &token_of(&n2),
        second,
        &n2,
        "alice-r1-2@example.com",
        "We will send a corrected invoice.",
    ));
    let ok = eventually(Duration::from_secs(30), || {
        desk.try_count("SELECT COUNT(*) FROM chat_sent") == Some(2)
    });
    assert!(ok, "{}", d.log_text());
    let answer_two = tg.sent()[1].message_id;

    // Ann answers the first answer: it belongs to the first ticket (closed, so a follow-up
    // linked to it opens), not to the chat's latest ticket.
    tg.customer_message(
        ANN,
        "Ann",
        json!({"text": "The parcel still has not come", "reply_to_message": {"message_id": answer_one}}),
    );
    let third = wait_tickets(&desk, 3, &d)[2]["id"].as_i64().unwrap();
    let shown = desk.show(third);
    assert_eq!(shown["linked_ticket_id"], json!(first), "{shown:#}");
    assert!(
        !desk.messages(second).iter().any(|m| m["body_text"]
            .as_str()
            .unwrap_or("")
            .contains("still has not")),
        "the reply joined the chat's latest ticket"
    );

    // And the second answer's reply joins the second ticket, though the chat's latest
    // ticket is now the third.
    tg.customer_message(
        ANN,
        "Ann",
        json!({"text": "Thanks for the invoice", "reply_to_message": {"message_id": answer_two}}),
    );
    let ok = eventually(Duration::from_secs(30), || {
        desk.messages(second).iter().any(|m| {
            m["body_text"]
                .as_str()
                .unwrap_or("")
                .contains("Thanks for the invoice")
                && m["match_reason"] == "chat_reply"
        })
    });
    assert!(
        ok,
        "the reply did not join its answer's ticket:\n{}",
        d.log_text()
    );
    assert_eq!(desk.tickets().len(), 3);

    // A reply naming an id we never sent threads by the conversation, as before: to the
    // ticket of the chat's latest message, now the second.
    tg.customer_message(
        ANN,
        "Ann",
        json!({"text": "Replying to something odd", "reply_to_message": {"message_id": 424242}}),
    );
    let ok = eventually(Duration::from_secs(30), || {
        desk.messages(second).iter().any(|m| {
            m["body_text"]
                .as_str()
                .unwrap_or("")
                .contains("something odd")
                && m["match_reason"] == "conversation"
        })
    });
    assert!(ok, "{}", d.log_text());
}

#[test]
fn a_code_mailed_to_the_address_and_sent_back_in_the_chat_links_it_and_nothing_else_does() {
    let tg = FakeTelegram::start();
    let desk = telegram_desk(&tg, "");
    let d = desk.spawn_daemon(&[]);
    let chat_says = |needle: &str| {
        let needle = needle.to_string();
        let ok = eventually(Duration::from_secs(30), || {
            tg.sent().iter().any(|s| s.text.contains(&needle))
        });
        assert!(
            ok,
            "the chat never got {needle:?}: {:?}\n{}",
            tg.sent(),
            d.log_text()
        );
    };
    // Before any request, a code means nothing.
    tg.customer_writes(ANN, "Ann", "/link 123456");
    chat_says("No code is waiting");

    tg.customer_writes(ANN, "Ann", "/link ann@customer.org");
    chat_says("We mailed a code to a•••@customer.org");
    let mut mail = None;
    let ok = eventually(Duration::from_secs(30), || {
        mail = mails_to(&desk.smtp.messages(), "ann@customer.org")
            .into_iter()
            .next();
        mail.is_some()
    });
    assert!(ok, "no code mailed:\n{}", d.log_text());
    let body = mail.unwrap().body_text();
    let code: String = body
        .split("/link ")
        .nth(1)
        .unwrap_or_else(|| panic!("{body}"))
        .chars()
        .take(6)
        .collect();
    assert!(
        code.bytes().all(|b| b.is_ascii_digit()) && code.len() == 6,
        "{body}"
    );
    assert!(
        body.contains("Telegram") && body.contains("\"Ann\""),
        "{body}"
    );
    // The code is in no stored message of ours.
    assert_eq!(
        desk.count(&format!(
            "SELECT COUNT(*) FROM messages WHERE direction = 'outbound' AND body_text LIKE '%{code}%'"
        )),
        0
    );

    // Someone else sending Ann's code gets nowhere: it counts only from Ann's chat.
    tg.customer_writes(ANN + 7, "Mallory", &format!("/link {code}"));
    let wrong = if code == "000000" { "000001" } else { "000000" };
    tg.customer_writes(ANN, "Ann", &format!("/link {wrong}"));
    chat_says("That code is wrong. 4 tries left.");
    assert!(
        tg.sent()
            .iter()
            .filter(|s| s.chat_id == ANN + 7)
            .all(|s| s.text.contains("No code is waiting")),
        "{:?}",
        tg.sent()
    );

    tg.customer_writes(ANN, "Ann", &format!("/link {code}"));
    chat_says("this chat is now linked to a•••@customer.org");
    let out = desk.cmd(&["customer", "show", "ann@customer.org", "--json"]);
    let profile: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        profile["identities"][0]["identity"],
        format!("telegram:shop_bot:{ANN}"),
        "{profile:#}"
    );
    assert_eq!(profile["identities"][0]["signal"], "code");
    // Mallory is nobody's.
    let out = desk.cmd(&[
        "customer",
        "show",
        &format!("telegram:shop_bot:{}", ANN + 7),
        "--json",
    ]);
    let mallory: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(mallory["identities"], json!([]), "{mallory:#}");

    // The used code does not work twice; the chat is linked already.
    tg.customer_writes(ANN, "Ann", &format!("/link {code}"));
    chat_says("already linked");
}

#[test]
fn a_phone_number_telegram_verified_links_the_chat_to_the_customer_with_that_number() {
    let tg = FakeTelegram::start();
    let desk = telegram_desk(&tg, "");
    let csv = desk.dir.path().join("customers.csv");
    std::fs::write(
        &csv,
        "email,name,phone\nann@customer.org,Ann Example,+49 151 1234-5678\nbo@customer.org,Bo,+44 20 7946 0000\n",
    )
    .unwrap();
    let out = desk.cmd(&["customer", "import", csv.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = desk.spawn_daemon(&[]);

    // Someone else's contact card with Ann's number proves nothing: it is not their own.
    tg.customer_message(
        ANN + 7,
        "Mallory",
        json!({"contact": {"phone_number": "4915112345678", "first_name": "Ann", "user_id": ANN}}),
    );
    // Ann shares her own contact card: Telegram vouches for the number.
    tg.customer_message(
        ANN,
        "Ann",
        json!({"contact": {"phone_number": "4915112345678", "first_name": "Ann", "user_id": ANN}}),
    );
    let ok = eventually(Duration::from_secs(30), || {
        tg.sent()
            .iter()
            .any(|s| s.chat_id == ANN && s.text.contains("your number matches a•••@customer.org"))
    });
    assert!(ok, "{:?}\n{}", tg.sent(), d.log_text());
    let out = desk.cmd(&["customer", "show", "ann@customer.org", "--json"]);
    let profile: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(profile["phone"], "+4915112345678", "{profile:#}");
    assert_eq!(
        profile["identities"][0]["identity"],
        format!("telegram:shop_bot:{ANN}"),
        "{profile:#}"
    );
    assert_eq!(profile["identities"][0]["signal"], "phone");
    assert_eq!(profile["identities"].as_array().unwrap().len(), 1);
    assert!(
        tg.sent().iter().all(|s| s.chat_id != ANN + 7),
        "Mallory's card got an answer: {:?}",
        tg.sent()
    );
    let out = desk.cmd(&[
        "customer",
        "show",
        &format!("telegram:shop_bot:{}", ANN + 7),
        "--json",
    ]);
    let mallory: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(mallory["identities"], json!([]), "{mallory:#}");
}

#[test]
fn once_linked_by_code_a_chat_whose_ticket_is_closed_joins_the_customer_s_open_mail_ticket() {
    let tg = FakeTelegram::start();
    let desk = telegram_desk(&tg, "");
    let d = desk.spawn_daemon(&[]);
    desk.deliver(&crate::harness::mail(
        "Ann Example <ann@customer.org>",
        "support@example.com",
        "Order 4471 never arrived",
        "ann-rule3-1@customer.org",
        "",
        "Hello, my order 4471 never arrived.",
    ));
    let by_mail = wait_tickets(&desk, 1, &d)[0]["id"].as_i64().unwrap();
    tg.customer_writes(ANN, "Ann", "/link ann@customer.org");
    let by_chat = wait_tickets(&desk, 2, &d)[1]["id"].as_i64().unwrap();
    let mut code_mail = None;
    let ok = eventually(Duration::from_secs(30), || {
        code_mail = mails_to(&desk.smtp.messages(), "ann@customer.org")
            .into_iter()
            .find(|m| m.body_text().contains("/link "));
        code_mail.is_some()
    });
    assert!(ok, "no code mailed:\n{}", d.log_text());
    let body = code_mail.unwrap().body_text();
    let code: String = body
        .split("/link ")
        .nth(1)
        .unwrap()
        .chars()
        .take(6)
        .collect();
    tg.customer_writes(ANN, "Ann", &format!("/link {code}"));
    let ok = eventually(Duration::from_secs(30), || {
        tg.sent().iter().any(|s| s.text.contains("now linked"))
    });
    assert!(ok, "{:?}\n{}", tg.sent(), d.log_text());

    // The chat's own ticket is closed; Ann writes in the chat again.
    let n = notification(&desk, by_chat);
    desk.deliver(&alice_reply(
        &token_of(&n),
        by_chat,
        &n,
        "alice-rule3-1@example.com",
        "#close",
    ));
    let ok = eventually(Duration::from_secs(30), || {
        desk.show(by_chat)["status"] == "closed"
    });
    assert!(ok, "{}", d.log_text());
    tg.customer_writes(ANN, "Ann", "Any news about order 4471?");
    let ok = eventually(Duration::from_secs(30), || {
        desk.messages(by_mail).iter().any(|m| {
            m["body_text"].as_str().unwrap_or("").contains("Any news")
                && m["match_reason"] == "linked_customer"
        })
    });
    assert!(
        ok,
        "the chat did not join the open mail ticket:\n{:#?}\n{}",
        desk.tickets(),
        d.log_text()
    );
    assert_eq!(desk.tickets().len(), 2, "no new ticket");
}
