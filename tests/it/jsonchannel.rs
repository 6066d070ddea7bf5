//! Issue 12: the generic JSON channel with the real daemon. A relay (a real HTTP server
//! on 127.0.0.1, `support::relay`) pushes signed messages or serves a feed; the agent
//! answers by mail as ever (real Dovecot in, real SMTP out), and the answer reaches the
//! relay as a signed POST or through the pull outbox. Signatures are checked here with
//! hmac/sha2, independently of postdesk's own code.

use std::time::Duration;

use serde_json::{Value, json};

use crate::agents::{AGENT_CONFIG, alice_reply, mails_to, token_of};
use crate::harness::{Desk, Opts, RunningDaemon, eventually};
use crate::support::relay::{self, Answer, Relay, free_port, signature, signed};

const SECRET: &str = "relay-shared-secret-for-tests-0123456789";
const PHONE: &str = "+4915112345678";

struct JsonDesk {
    desk: Desk,
    port: u16,
}

#[derive(Default)]
struct Setup<'a> {
    deliver: Option<&'a Relay>,
    feed: Option<&'a Relay>,
    max_body_mb: Option<u64>,
}

fn json_desk(s: Setup<'_>) -> JsonDesk {
    let port = free_port();
    let mut extra = AGENT_CONFIG.to_string();
    extra.push_str(&format!(
        "\n[http]\nlisten = \"127.0.0.1:{port}\"\n\n[[channel.json]]\naccount = \"sms\"\nsecret = \"{SECRET}\"\nmax_body_mb = {}\n",
        s.max_body_mb.unwrap_or(10)
    ));
    if let Some(r) = s.deliver {
        extra.push_str(&format!("deliver_url = \"{}\"\n", r.url("/out")));
    }
    if let Some(r) = s.feed {
        extra.push_str(&format!(
            "feed_url = \"{}\"\npoll_interval_secs = 1\n",
            r.url("/feed")
        ));
    }
    let desk = Desk::with(Opts {
        autoreply: false,
        notify: true,
        extra: Box::leak(extra.into_boxed_str()),
        ..Opts::default()
    });
    JsonDesk { desk, port }
}

impl JsonDesk {
    /// Starts the daemon and waits until `/healthz` answers 200.
    fn daemon(&self) -> RunningDaemon {
        self.desk.spawn_daemon_http(self.port, &[])
    }

    fn push(&self, body: &Value) -> relay::Reply {
        let bytes = serde_json::to_vec(body).unwrap();
        signed(
            self.port,
            "POST",
            "/channels/json/sms/messages",
            SECRET,
            &bytes,
        )
        .unwrap()
    }
}

fn message(external_id: &str, text: &str) -> Value {
    json!({
        "external_id": external_id,
        "conversation_id": format!("conv-{PHONE}"),
        "sender": {"id": PHONE, "name": "Sam Sender", "email": "sam@customer.org"},
        "text": text,
        "sent_at": "2026-12-07T09:30:00Z",
    })
}

fn count(desk: &Desk, sql: &str) -> i64 {
    desk.count(sql)
}

/// The notification alice got for `ticket`, once it is there.
fn notification(desk: &Desk, ticket: i64) -> crate::support::CapturedMail {
    let mut found = None;
    let ok = eventually(Duration::from_secs(30), || {
        let all = desk.smtp.messages();
        found = mails_to(&all, "alice@example.com")
            .into_iter()
            .find(|m| m.subject().contains(&format!("[#{ticket}]")));
        found.is_some()
    });
    assert!(ok, "no notification to alice for ticket #{ticket}");
    found.unwrap()
}

/// The relay's POSTs to /out.
fn deliveries(relay: &Relay) -> Vec<relay::Request> {
    relay
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.target == "/out")
        .collect()
}

fn assert_signed(r: &relay::Request) {
    let ts: i64 = r.header("X-Postdesk-Timestamp").unwrap().parse().unwrap();
    assert!((relay::unix_now() - ts).abs() < 300, "timestamp {ts}");
    assert_eq!(
        r.header("X-Postdesk-Signature").unwrap(),
        signature(SECRET, ts, &r.body),
        "the delivery's signature does not verify"
    );
}

#[test]
fn a_signed_push_opens_a_ticket_notifies_the_agent_and_a_retry_stores_nothing_twice() {
    let jd = json_desk(Setup::default());
    let _d = jd.daemon();
    let r =
        jd.push(&json!({"messages": [message("sms-1", "My parcel never arrived. Order 991.")]}));
    assert_eq!(r.status, 200, "{}", r.body);
    let answer = r.json();
    let result = &answer["results"][0];
    assert_eq!(result["external_id"], "sms-1");
    assert_eq!(result["duplicate"], false);
    let ticket = result["ticket_id"].as_i64().unwrap();

    let shown = jd.desk.show(ticket);
    let m = &shown["messages"][0];
    assert_eq!(m["channel"], "json", "{shown}");
    assert_eq!(m["external_id"], "sms-1");
    assert_eq!(m["account"], "sms");
    assert_eq!(m["match_reason"], "new_ticket");
    assert!(m["body_text"].as_str().unwrap().contains("Order 991"));
    // The sender is an identity of its own; the email the relay gave is only recorded.
    assert_eq!(
        shown["customer"]["email"],
        format!("json:sms:{PHONE}"),
        "{shown}"
    );
    assert_eq!(
        jd.desk
            .query_string("SELECT given_email FROM customers WHERE email LIKE 'json:%'"),
        "sam@customer.org"
    );
    assert_eq!(
        count(
            &jd.desk,
            "SELECT COUNT(*) FROM customers WHERE email = 'sam@customer.org'"
        ),
        0
    );

    // The post-commit events tell the same story, in order.
    let out = jd.desk.cmd(&["events", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev: Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<(String, i64)> = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["ticket_id"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds.first(),
        Some(&("ticket_created".to_string(), ticket)),
        "{ev}"
    );
    let added = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["kind"] == "message_added"
                && e["data"].as_str().unwrap().contains("\"channel\":\"json\"")
        })
        .unwrap_or_else(|| panic!("no message_added for the chat message: {ev}"));
    assert_eq!(added["ticket_id"], ticket);

    let n = notification(&jd.desk, ticket);
    assert!(n.body_text().contains("Order 991"), "{}", n.body_text());
    // No acknowledgement by mail to a chat identity, nor anything else to it.
    assert!(
        jd.desk
            .smtp
            .messages()
            .iter()
            .all(|m| m.rcpt_to.iter().all(|r| !r.contains("json:"))),
        "mail went to a chat identity"
    );

    // The relay retries (re-signed, new timestamp): same ticket, nothing stored twice.
    std::thread::sleep(Duration::from_millis(1100));
    let again =
        jd.push(&json!({"messages": [message("sms-1", "My parcel never arrived. Order 991.")]}));
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["results"][0]["duplicate"], true);
    assert_eq!(again.json()["results"][0]["ticket_id"], ticket);
    assert_eq!(
        count(
            &jd.desk,
            "SELECT COUNT(*) FROM messages WHERE external_id = 'sms-1'"
        ),
        1
    );

    // The next message of the conversation joins the ticket.
    let next = jd.push(&json!({"messages": [message("sms-2", "Any news?")]}));
    assert_eq!(next.json()["results"][0]["ticket_id"], ticket);
    let shown = jd.desk.show(ticket);
    assert_eq!(
        shown["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["direction"] == "inbound")
            .count(),
        2
    );
    assert!(
        shown["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["match_reason"] == "conversation"),
        "{shown}"
    );
}

#[test]
fn the_agents_mail_reply_reaches_the_relay_as_a_signed_post_once_after_a_500() {
    let relay = Relay::start();
    relay.then(Answer::new(500, r#"{"error":"try later"}"#));
    let jd = json_desk(Setup {
        deliver: Some(&relay),
        ..Setup::default()
    });
    let d = jd.daemon();
    let r = jd.push(&json!({"messages": [message("sms-10", "Where is my refund?")]}));
    let ticket = r.json()["results"][0]["ticket_id"].as_i64().unwrap();
    let n = notification(&jd.desk, ticket);
    let token = token_of(&n);
    jd.desk.deliver(&alice_reply(
        &token,
        ticket,
        &n,
        "alice-json-1@example.com",
        "Your refund left today, Sam.",
    ));
    let ok = eventually(Duration::from_secs(40), || deliveries(&relay).len() >= 2);
    assert!(
        ok,
        "expected a failed and a retried delivery:\n{}",
        d.log_text()
    );
    // Give a third (wrong) attempt the chance to happen before counting.
    std::thread::sleep(Duration::from_secs(2));
    let all = deliveries(&relay);
    assert_eq!(all.len(), 2, "exactly one retry after the 500: {all:?}");
    for r in &all {
        assert_signed(r);
    }
    let (first, second) = (all[0].json(), all[1].json());
    assert_eq!(first, second, "the retry must carry the same delivery");
    assert!(
        second["idempotency_key"]
            .as_str()
            .unwrap()
            .starts_with("postdesk-outbox-")
    );
    assert_eq!(second["ticket_id"], ticket);
    assert_eq!(second["conversation_id"], format!("conv-{PHONE}"));
    assert_eq!(second["recipient"], PHONE);
    assert!(
        second["text"]
            .as_str()
            .unwrap()
            .contains("Your refund left today")
    );
    assert_eq!(
        all[1].header("Idempotency-Key"),
        second["idempotency_key"].as_str()
    );
    // Not by mail: nothing went to the chat identity over SMTP.
    assert!(
        jd.desk
            .smtp
            .messages()
            .iter()
            .all(|m| m.rcpt_to.iter().all(|r| !r.contains("json:"))),
    );
    let shown = jd.desk.show(ticket);
    let out = shown["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["direction"] == "outbound" && m["channel"] == "json")
        .cloned()
        .unwrap_or_else(|| panic!("no outbound json message: {shown}"));
    assert_eq!(out["delivery"], "sent");
    let out_row = out["id"].clone();
    // Answering an unassigned ticket assigned it to alice: an event says so; and the
    // answer written row by row by the agent room has its message_added like the rest.
    let out = jd.desk.cmd(&["events", "--json"]);
    let ev: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        ev["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "message_added"
                && e["message_row"] == out_row
                && e["data"]
                    .as_str()
                    .unwrap()
                    .contains(r#""kind":"agent_reply""#)),
        "no message_added for the outbound answer #{out_row}: {ev}"
    );
    assert!(
        ev["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "assignee_changed"
                && e["ticket_id"] == ticket
                && e["data"].as_str().unwrap().contains("alice")),
        "{ev}"
    );
}

#[test]
fn a_delivery_failing_with_500_is_sent_exactly_once_by_the_next_process() {
    // No daemon: each `run --once` is a process of its own, so the retry happens after a
    // restart. The message comes from the feed, the answer goes to deliver_url.
    let relay = Relay::start();
    let mut posts = 0;
    relay.script(move |r| {
        if r.method == "POST" && r.target == "/out" {
            posts += 1;
            // The first delivery fails; every later one is accepted.
            return Some(if posts == 1 {
                Answer::new(503, "{}")
            } else {
                Answer::new(200, "{}")
            });
        }
        (r.method == "GET" && r.target.starts_with("/feed")).then(|| {
            if r.target.contains("cursor=") {
                Answer::new(200, r#"{"messages": [], "cursor": "c1"}"#)
            } else {
                Answer::new(
                    200,
                    &json!({"messages": [message("feed-1", "Printer on fire")], "cursor": "c1"})
                        .to_string(),
                )
            }
        })
    });
    let jd = json_desk(Setup {
        deliver: Some(&relay),
        feed: Some(&relay),
        ..Setup::default()
    });
    let report = jd.desk.run_once();
    assert_eq!(report["fetched"], 1, "{report}");
    let ticket = jd.desk.tickets()[0]["id"].as_i64().unwrap();
    let n = notification(&jd.desk, ticket);
    jd.desk.deliver(&alice_reply(
        &token_of(&n),
        ticket,
        &n,
        "alice-json-2@example.com",
        "Please unplug it.",
    ));
    jd.desk.run_once();
    assert_eq!(
        deliveries(&relay).len(),
        1,
        "one failed attempt in the first process"
    );
    jd.desk.run_once();
    jd.desk.run_once();
    let all = deliveries(&relay);
    assert_eq!(
        all.len(),
        2,
        "exactly one more attempt, in the next process: {all:?}"
    );
    assert_eq!(all[0].json(), all[1].json());
    assert_eq!(
        count(
            &jd.desk,
            "SELECT COUNT(*) FROM outbox WHERE channel = 'json' AND status = 'sent'"
        ),
        1
    );
}

#[test]
fn the_pull_feed_advances_its_cursor_with_the_messages_it_brought() {
    let relay = Relay::start();
    relay.script(|r| {
        if !(r.method == "GET" && r.target.starts_with("/feed")) {
            return None;
        }
        let body = if r.target.ends_with("cursor=page2") {
            json!({"messages": [message("f-3", "third")], "cursor": "page3"})
        } else if r.target.ends_with("cursor=page3") {
            json!({"messages": [], "cursor": "page3"})
        } else {
            json!({"messages": [message("f-1", "first"), message("f-2", "second")], "cursor": "page2"})
        };
        Some(Answer::new(200, &body.to_string()))
    });
    let jd = json_desk(Setup {
        feed: Some(&relay),
        ..Setup::default()
    });
    let report = jd.desk.run_once();
    assert_eq!(report["fetched"], 3, "{report}");
    let feeds: Vec<String> = relay.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(feeds, ["/feed", "/feed?cursor=page2", "/feed?cursor=page3"]);
    for r in relay.requests() {
        let ts: i64 = r.header("X-Postdesk-Timestamp").unwrap().parse().unwrap();
        assert_eq!(
            r.header("X-Postdesk-Signature").unwrap(),
            signature(SECRET, ts, b"")
        );
    }
    assert_eq!(
        jd.desk.query_string(
            "SELECT cursor FROM channel_cursors WHERE channel = 'json' AND account = 'sms'"
        ),
        "page3"
    );
    // One conversation, one ticket.
    assert_eq!(jd.desk.tickets().len(), 1);
    assert_eq!(
        count(
            &jd.desk,
            "SELECT COUNT(*) FROM messages WHERE channel = 'json'"
        ),
        3
    );
    // The next run starts from the stored cursor.
    jd.desk.run_once();
    assert_eq!(
        relay.requests().last().unwrap().target,
        "/feed?cursor=page3"
    );
    assert_eq!(
        count(
            &jd.desk,
            "SELECT COUNT(*) FROM messages WHERE channel = 'json'"
        ),
        3
    );
}

#[test]
fn the_pull_outbox_lists_answers_until_the_relay_acknowledges_them() {
    let jd = json_desk(Setup::default());
    let d = jd.daemon();
    let r = jd.push(&json!({"messages": [message("p-1", "Can I change my address?")]}));
    let ticket = r.json()["results"][0]["ticket_id"].as_i64().unwrap();
    let n = notification(&jd.desk, ticket);
    jd.desk.deliver(&alice_reply(
        &token_of(&n),
        ticket,
        &n,
        "alice-json-3@example.com",
        "Yes, reply with the new one.",
    ));
    let mut page = Value::Null;
    let ok = eventually(Duration::from_secs(30), || {
        let r = signed(
            jd.port,
            "GET",
            "/channels/json/sms/outbox?after=0",
            SECRET,
            b"",
        )
        .unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        page = r.json();
        !page["deliveries"].as_array().unwrap().is_empty()
    });
    assert!(ok, "nothing in the pull outbox:\n{}", d.log_text());
    let deliveries = page["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{page}");
    let first = &deliveries[0];
    assert_eq!(first["recipient"], PHONE);
    assert_eq!(first["ticket_id"], ticket);
    assert!(
        first["text"]
            .as_str()
            .unwrap()
            .contains("reply with the new one")
    );
    let id = first["id"].as_i64().unwrap();
    // Listing after it gives nothing; acknowledging removes it for good.
    let after = signed(
        jd.port,
        "GET",
        &format!("/channels/json/sms/outbox?after={id}"),
        SECRET,
        b"",
    )
    .unwrap();
    assert!(after.json()["deliveries"].as_array().unwrap().is_empty());
    let ack = signed(
        jd.port,
        "POST",
        "/channels/json/sms/outbox/ack",
        SECRET,
        json!({"up_to": id}).to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(ack.status, 200, "{}", ack.body);
    assert_eq!(ack.json()["acknowledged"], 1);
    std::thread::sleep(Duration::from_millis(1100));
    let again = signed(
        jd.port,
        "GET",
        "/channels/json/sms/outbox?after=0",
        SECRET,
        b"",
    )
    .unwrap();
    assert!(
        again.json()["deliveries"].as_array().unwrap().is_empty(),
        "{}",
        again.body
    );
    assert_eq!(
        count(
            &jd.desk,
            "SELECT COUNT(*) FROM outbox WHERE channel = 'json' AND status = 'sent'"
        ),
        1
    );
}

#[test]
fn every_bad_request_gets_its_status_and_the_field_at_fault() {
    let jd = json_desk(Setup {
        max_body_mb: Some(1),
        ..Setup::default()
    });
    let _d = jd.daemon();
    let post = |path: &str, secret: &str, body: &[u8]| {
        signed(jd.port, "POST", path, secret, body).unwrap()
    };
    // Unknown account.
    let r = post("/channels/json/nope/messages", SECRET, b"{}");
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(
        r.json()["error"].as_str().unwrap().contains("nope"),
        "{}",
        r.body
    );
    // Bad signature.
    let body = json!({"messages": [message("e-1", "hi")]}).to_string();
    let r = post(
        "/channels/json/sms/messages",
        "wrong-secret",
        body.as_bytes(),
    );
    assert_eq!(r.status, 401, "{}", r.body);
    // No signature at all.
    let r = relay::request(
        jd.port,
        "POST",
        "/channels/json/sms/messages",
        &[],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(
        r.json()["error"].as_str().unwrap().contains("X-Postdesk"),
        "{}",
        r.body
    );
    // A stale timestamp.
    let ts = relay::unix_now() - 3600;
    let r = relay::request(
        jd.port,
        "POST",
        "/channels/json/sms/messages",
        &[
            ("X-Postdesk-Timestamp", ts.to_string()),
            (
                "X-Postdesk-Signature",
                signature(SECRET, ts, body.as_bytes()),
            ),
        ],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 401, "{}", r.body);
    // A replay of the very same request.
    let ts = relay::unix_now();
    let headers = [
        ("X-Postdesk-Timestamp", ts.to_string()),
        (
            "X-Postdesk-Signature",
            signature(SECRET, ts, body.as_bytes()),
        ),
    ];
    let first = relay::request(
        jd.port,
        "POST",
        "/channels/json/sms/messages",
        &headers,
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(first.status, 200, "{}", first.body);
    let replay = relay::request(
        jd.port,
        "POST",
        "/channels/json/sms/messages",
        &headers,
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(replay.status, 409, "{}", replay.body);
    // Invalid JSON, a missing field (named), invalid UTF-8.
    let r = post("/channels/json/sms/messages", SECRET, b"{\"messages\": [");
    assert_eq!(r.status, 400, "{}", r.body);
    let r = post(
        "/channels/json/sms/messages",
        SECRET,
        json!({"messages": [{"external_id": "x", "conversation_id": "c", "text": "t"}]})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["field"], "messages[0].sender", "{}", r.body);
    let r = post(
        "/channels/json/sms/messages",
        SECRET,
        b"{\"messages\": \"\xff\xfe\"}",
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["error"].as_str().unwrap().contains("UTF-8"),
        "{}",
        r.body
    );
    // Over max_body_mb (1 MiB here).
    let big = vec![b' '; 1024 * 1024 + 10];
    let r = post("/channels/json/sms/messages", SECRET, &big);
    assert_eq!(r.status, 413, "{}", r.body);
    // None of the refused requests stored anything.
    assert_eq!(
        count(
            &jd.desk,
            "SELECT COUNT(*) FROM messages WHERE channel = 'json'"
        ),
        1
    );
}

#[test]
fn a_kill_9_during_pushes_loses_nothing_answered_and_a_retry_duplicates_nothing() {
    let jd = json_desk(Setup::default());
    let mut d = jd.daemon();
    const N: usize = 60;
    let port = jd.port;
    let pusher = std::thread::spawn(move || {
        let mut answered = Vec::new();
        for i in 0..N {
            let body = json!({"messages": [message(&format!("k-{i}"), &format!("message {i}"))]})
                .to_string();
            match signed(
                port,
                "POST",
                "/channels/json/sms/messages",
                SECRET,
                body.as_bytes(),
            ) {
                Ok(r) if r.status == 200 => answered.push(i),
                _ => {}
            }
        }
        answered
    });
    // Kill the daemon while the pushes are going on.
    let ok = eventually(Duration::from_secs(30), || {
        count(
            &jd.desk,
            "SELECT COUNT(*) FROM messages WHERE channel = 'json'",
        ) >= 10
    });
    assert!(ok, "pushes did not start:\n{}", d.log_text());
    d.signal("KILL");
    d.wait_exit(Duration::from_secs(10));
    let answered = pusher.join().unwrap();
    assert!(
        answered.len() >= 10 && answered.len() < N,
        "answered {answered:?}"
    );

    // Every push answered 200 is there, once.
    for i in &answered {
        assert_eq!(
            count(
                &jd.desk,
                &format!("SELECT COUNT(*) FROM messages WHERE external_id = 'k-{i}'")
            ),
            1,
            "k-{i} was answered 200 and must be stored exactly once"
        );
    }
    // The relay retries everything after the restart: nothing is stored twice.
    let _d2 = jd.daemon();
    for i in 0..N {
        let body =
            json!({"messages": [message(&format!("k-{i}"), &format!("message {i}"))]}).to_string();
        let r = signed(
            jd.port,
            "POST",
            "/channels/json/sms/messages",
            SECRET,
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        if answered.contains(&i) {
            assert_eq!(r.json()["results"][0]["duplicate"], true, "k-{i}");
        }
    }
    for i in 0..N {
        assert_eq!(
            count(
                &jd.desk,
                &format!("SELECT COUNT(*) FROM messages WHERE external_id = 'k-{i}'")
            ),
            1,
            "k-{i}"
        );
    }
    assert_eq!(jd.desk.tickets().len(), 1, "one conversation, one ticket");
}
