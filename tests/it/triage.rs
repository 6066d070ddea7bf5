//! Issue 13: smart triage with the real daemon, Dovecot and the SMTP server: rules
//! categorise and route, forced-human matches silence automatic answers and raise red
//! alerts, `#report` closes them, SLA breaches mail once (also across restarts), `#away`
//! leaves the rotation, digests list what is open, `rules test` changes nothing.

use std::time::Duration;

use crate::agents::{AUTH_PASS, agent_mail, mails_to, token_of};
use crate::harness::{Desk, Opts, mail, message_id_of};
use crate::support::CapturedMail;

/// alice (already in the harness config, here given skills) and bob form team billing,
/// carol leads it and is on call; the refund rule from the issue.
const TRIAGE_CONFIG: &str = r#"
skills = ["refund"]

[[agent]]
name = "bob"
email = "bob@example.com"

[[agent]]
name = "carol"
email = "carol@example.com"
lead = true

[security]
require_authenticated_sender = true
trusted_authserv_id = "mx.test"
verify_dkim_locally = false

[commands]
address = "commands@example.com"

[[team]]
name = "billing"
members = ["alice", "bob"]
lead = "carol"
strategy = "round_robin"

[[rule]]
name = "refund"
when.any_keywords = ["refund", "money back", "退款", "退钱"]
set.category = "refund"
set.priority = "high"
route.team = "billing"
suggest_macros = ["refund-policy"]

[alerts]
on_call = ["carol@example.com"]
report_within = "2h"
"#;

fn desk(extra: &'static str) -> Desk {
    Desk::with(Opts {
        autoreply: true,
        notify: true,
        extra,
        ..Opts::default()
    })
}

fn triage_desk() -> Desk {
    desk(TRIAGE_CONFIG)
}

fn customer_mail(from: &str, subject: &str, id: &str, body: &str) -> Vec<u8> {
    mail(from, "support@example.com", subject, id, "", body)
}

/// The notification `to` got about ticket `id`.
fn notification(all: &[CapturedMail], to: &str, id: i64) -> CapturedMail {
    all.iter()
        .find(|m| {
            m.rcpt_to.iter().any(|r| r == to)
                && m.subject().contains(&format!("[#{id}]"))
                && m.header("Reply-To").is_some_and(|r| r.contains("support+"))
        })
        .cloned()
        .unwrap_or_else(|| panic!("no notification of #{id} to {to}: {all:#?}"))
}

fn reply(
    from: &str,
    token: &str,
    id: i64,
    n: &CapturedMail,
    message_id: &str,
    body: &str,
) -> Vec<u8> {
    let parent = message_id_of(&n.data);
    agent_mail(
        AUTH_PASS,
        from,
        &format!("support+{token}@example.com"),
        &format!("Re: [#{id}] ticket"),
        message_id,
        &format!("In-Reply-To: <{parent}>\r\nReferences: <{parent}>\r\n"),
        body,
    )
}

#[test]
fn a_chinese_refund_mail_is_categorised_routed_to_billing_and_suggests_the_macro() {
    let desk = triage_desk();
    desk.deliver(&customer_mail(
        "Ann <ann@customer.org>",
        "订单问题",
        "zh-refund-1@customer.org",
        "你好，我上周买的耳机坏了，我要退款。订单号 4711。",
    ));
    let r = desk.run_once();
    assert_eq!(r["new_tickets"], 1, "{r}");
    let id = desk.tickets()[0]["id"].as_i64().unwrap();
    let t = desk.show(id);
    assert_eq!(t["category"], "refund", "{t:#}");
    assert_eq!(t["team"], "billing", "{t:#}");
    assert_eq!(t["priority"], "high", "{t:#}");
    assert_eq!(
        t["assignee"], "alice",
        "round robin starts at the first member: {t:#}"
    );
    assert_eq!(t["forced_human"], false, "{t:#}");
    let first = &t["messages"][0];
    assert_eq!(
        first["rules_fired"],
        serde_json::json!(["refund"]),
        "{first:#}"
    );
    assert_eq!(first["language"], "zh", "{first:#}");
    // The acknowledgement to Ann and the assignee's notification, nothing to bob.
    let sent = desk.sent(2);
    assert_eq!(mails_to(&sent, "ann@customer.org").len(), 1, "{sent:#?}");
    assert!(mails_to(&sent, "bob@example.com").is_empty(), "{sent:#?}");
    let n = notification(&sent, "alice@example.com", id);
    let body = n.body_text();
    assert!(body.contains("#macro refund-policy"), "{body}");
    assert!(body.contains("Category:      refund"), "{body}");
    assert!(body.contains("Priority:      high"), "{body}");
    // The next refund goes to bob: the cursor moved.
    desk.deliver(&customer_mail(
        "Ben <ben@customer.org>",
        "Refund please",
        "en-refund-1@customer.org",
        "I would like a refund for order 4712, it arrived broken.",
    ));
    desk.run_once();
    let second = desk.tickets()[1]["id"].as_i64().unwrap();
    assert_eq!(desk.show(second)["assignee"], "bob");
}

#[test]
fn a_stolen_account_gets_no_automatic_answer_reaches_a_human_and_raises_a_red_alert() {
    let desk = triage_desk();
    desk.deliver(&customer_mail(
        "Wang <wang@customer.org>",
        "求助",
        "zh-stolen-1@customer.org",
        "我的账号被盗了，里面的余额也没了，请尽快帮我处理！",
    ));
    desk.run_once();
    let id = desk.tickets()[0]["id"].as_i64().unwrap();
    let t = desk.show(id);
    assert_eq!(t["forced_human"], true, "{t:#}");
    assert!(
        t["priority"] == "high" || t["priority"] == "urgent",
        "{t:#}"
    );
    assert_eq!(t["alerts"].as_array().unwrap().len(), 1, "{t:#}");
    assert!(t["alerts"][0]["report_at"].is_null(), "{t:#}");
    // Red alert to carol, notifications to the agents; nothing to the customer.
    let sent = desk.sent(3);
    assert!(
        mails_to(&sent, "wang@customer.org").is_empty(),
        "no automatic answer may reach the customer: {sent:#?}"
    );
    let alert = mails_to(&sent, "carol@example.com")
        .into_iter()
        .find(|m| m.subject().starts_with("[RED ALERT]"))
        .unwrap_or_else(|| panic!("no red alert to carol: {sent:#?}"));
    assert_eq!(alert.header("Importance").as_deref(), Some("high"));
    assert!(
        alert.body_text().contains("#report"),
        "{}",
        alert.body_text()
    );
    let events = desk.cmd(&["events", "--json"]);
    let events: serde_json::Value = serde_json::from_slice(&events.stdout).unwrap();
    let forced: Vec<&serde_json::Value> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "forced_human")
        .collect();
    assert_eq!(forced.len(), 1, "{events:#}");
    assert!(
        forced[0]["data"].to_string().contains("被盗"),
        "{:#}",
        forced[0]
    );

    // Alice answers with her handling report: the alert is closed, by her.
    let n = notification(&sent, "alice@example.com", id);
    let token = token_of(&n);
    desk.deliver(&reply(
        "Alice Agent <alice@example.com>",
        &token,
        id,
        &n,
        "alice-report-1@example.com",
        "#report called the customer, froze the account, password reset sent\n#note",
    ));
    desk.run_once();
    let t = desk.show(id);
    let a = &t["alerts"][0];
    assert_eq!(a["report_by"], "alice", "{t:#}");
    assert!(
        a["report"].as_str().unwrap().contains("froze the account"),
        "{t:#}"
    );
    // A second report has nothing to close: rejected, said in the receipt.
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM alerts WHERE report_at IS NOT NULL"),
        1
    );
}

#[test]
fn a_missing_report_escalates_to_the_lead_once() {
    let desk = desk(
        r#"
[[agent]]
name = "carol"
email = "carol@example.com"
lead = true

[alerts]
on_call = ["oncall@example.com"]
report_within = "1s"
"#,
    );
    desk.deliver(&customer_mail(
        "Zed <zed@customer.org>",
        "lawyer",
        "legal-1@customer.org",
        "If this is not fixed by Friday my lawyer will file a lawsuit against you.",
    ));
    desk.run_once();
    std::thread::sleep(Duration::from_millis(1500));
    desk.run_once();
    desk.run_once();
    let escalations = desk.count(
        "SELECT COUNT(*) FROM messages WHERE subject LIKE '[RED ALERT]%Handling report missing%'",
    );
    assert_eq!(escalations, 1, "one escalation, not one per pass");
    let sent = desk.sent(4);
    let to_lead: Vec<CapturedMail> = mails_to(&sent, "carol@example.com")
        .into_iter()
        .filter(|m| m.subject().contains("Handling report missing"))
        .collect();
    assert_eq!(to_lead.len(), 1, "{sent:#?}");
}

#[test]
fn an_sla_breach_mails_the_assignee_and_lead_exactly_once_even_after_a_restart() {
    let desk = desk(
        r#"
[[agent]]
name = "bob"
email = "bob@example.com"

[[agent]]
name = "carol"
email = "carol@example.com"

[[team]]
name = "support"
members = ["bob"]
lead = "carol"

[[rule]]
name = "everything"
route.team = "support"

[[sla]]
name = "fast"
first_response = "2s"
"#,
    );
    desk.deliver(&customer_mail(
        "Ann <ann@customer.org>",
        "Question",
        "sla-1@customer.org",
        "How do I change the delivery address of my order?",
    ));
    desk.run_once();
    let id = desk.tickets()[0]["id"].as_i64().unwrap();
    let t = desk.show(id);
    assert_eq!(t["sla"]["policy"], "fast", "{t:#}");
    assert_eq!(t["assignee"], "bob", "{t:#}");
    let n = notification(&desk.sent(2), "bob@example.com", id);
    assert!(
        n.body_text().contains("(first response)"),
        "{}",
        n.body_text()
    );
    std::thread::sleep(Duration::from_millis(2500));
    desk.run_once();
    // A restart: a new process, the same database.
    desk.run_once();
    let t = desk.show(id);
    assert_eq!(
        t["sla"]["breaches"],
        serde_json::json!(["first_response"]),
        "{t:#}"
    );
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM sla_notices WHERE kind = 'breach'"),
        1
    );
    // One breach mail to the assignee and one to the lead, with the ticket's context.
    let sent = desk.sent(4);
    let breaches: Vec<&CapturedMail> = sent
        .iter()
        .filter(|m| m.subject().starts_with("SLA breach"))
        .collect();
    assert_eq!(breaches.len(), 2, "{sent:#?}");
    let mut rcpts: Vec<String> = breaches.iter().flat_map(|m| m.rcpt_to.clone()).collect();
    rcpts.sort();
    assert_eq!(rcpts, ["bob@example.com", "carol@example.com"]);
    let body = breaches[0].body_text();
    assert!(body.contains("first response"), "{body}");
    assert!(body.contains("ann@customer.org"), "{body}");
}

#[test]
fn away_takes_an_agent_out_of_the_rotation_and_back_returns_them() {
    let desk = triage_desk();
    desk.deliver(&customer_mail(
        "Ann <ann@customer.org>",
        "refund",
        "away-1@customer.org",
        "I want a refund.",
    ));
    desk.run_once();
    let first = desk.tickets()[0]["id"].as_i64().unwrap();
    assert_eq!(desk.show(first)["assignee"], "alice");
    let sent = desk.sent(2);
    let n = notification(&sent, "alice@example.com", first);
    desk.deliver(&reply(
        "Alice Agent <alice@example.com>",
        &token_of(&n),
        first,
        &n,
        "alice-away-1@example.com",
        "#away",
    ));
    desk.run_once();
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM agent_state WHERE away = 1"),
        1
    );
    for i in 0..2 {
        desk.deliver(&customer_mail(
            &format!("C{i} <c{i}@customer.org>"),
            "refund",
            &format!("away-next-{i}@customer.org"),
            "Money back please, I want a refund.",
        ));
        desk.run_once();
    }
    let list = desk.tickets();
    assert_eq!(list.len(), 3);
    for t in &list[1..] {
        let id = t["id"].as_i64().unwrap();
        assert_eq!(desk.show(id)["assignee"], "bob", "alice is away");
    }
    // #back by mail to the commands address, no ticket named: she is in the rotation
    // again, and told so.
    desk.deliver(&agent_mail(
        AUTH_PASS,
        "Alice Agent <alice@example.com>",
        "commands@example.com",
        "back",
        "alice-back-1@example.com",
        "",
        "#back",
    ));
    desk.run_once();
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM agent_state WHERE away = 1"),
        0
    );
    desk.deliver(&customer_mail(
        "D <d@customer.org>",
        "refund",
        "away-last@customer.org",
        "Refund, please.",
    ));
    desk.run_once();
    let last = desk.tickets()[3]["id"].as_i64().unwrap();
    assert_eq!(desk.show(last)["assignee"], "alice", "back in the rotation");
    let sent = desk.sent(10);
    let notice = mails_to(&sent, "alice@example.com")
        .into_iter()
        .find(|m| m.body_text().contains("welcome back"))
        .unwrap_or_else(|| panic!("no notice of #back: {sent:#?}"));
    assert_eq!(
        notice.header("Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
}

#[test]
fn a_ticket_nobody_can_take_stays_unassigned_and_the_notification_says_so() {
    let desk = triage_desk();
    for (who, id) in [
        ("Alice Agent <alice@example.com>", "a"),
        ("Bob <bob@example.com>", "b"),
    ] {
        desk.deliver(&agent_mail(
            AUTH_PASS,
            who,
            "commands@example.com",
            "away",
            &format!("away-{id}@example.com"),
            "",
            "#away",
        ));
    }
    desk.run_once();
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM agent_state WHERE away = 1"),
        2
    );
    desk.deliver(&customer_mail(
        "Ann <ann@customer.org>",
        "refund",
        "nobody-1@customer.org",
        "I want a refund.",
    ));
    desk.run_once();
    let id = desk.tickets()[0]["id"].as_i64().unwrap();
    let t = desk.show(id);
    assert!(t["assignee"].is_null(), "{t:#}");
    assert_eq!(t["team"], "billing", "{t:#}");
    let sent = desk.sent(6);
    let n = notification(&sent, "carol@example.com", id);
    let body = n.body_text();
    assert!(
        body.contains("UNASSIGNED: nobody in team billing can take it now"),
        "{body}"
    );
    assert!(body.contains("carol, the team's lead"), "{body}");
}

#[test]
fn a_forged_away_to_the_commands_address_changes_nothing() {
    let desk = triage_desk();
    // No trusted Authentication-Results: anyone can write alice's From.
    desk.deliver(&agent_mail(
        "",
        "Alice Agent <alice@example.com>",
        "commands@example.com",
        "away",
        "forged-away-1@example.com",
        "",
        "#away",
    ));
    desk.run_once();
    assert_eq!(
        desk.try_count("SELECT COUNT(*) FROM agent_state")
            .unwrap_or(0),
        0
    );
}

#[test]
fn the_digest_lists_open_tickets_and_leads_get_the_unassigned() {
    let desk = triage_desk();
    desk.deliver(&customer_mail(
        "Ann <ann@customer.org>",
        "refund",
        "digest-1@customer.org",
        "Refund for order 1, please.",
    ));
    desk.deliver(&customer_mail(
        "Dan <dan@customer.org>",
        "Opening hours",
        "digest-2@customer.org",
        "When are you open on Sundays?",
    ));
    desk.run_once();
    let out = desk.cmd(&["digest", "send"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    desk.run_once();
    let sent = desk.sent(8);
    let digest = |to: &str| {
        mails_to(&sent, to)
            .into_iter()
            .find(|m| m.subject().starts_with("Daily digest"))
            .unwrap_or_else(|| panic!("no digest to {to}: {sent:#?}"))
    };
    let alice = digest("alice@example.com");
    assert!(
        alice.subject().contains("1 open ticket"),
        "{}",
        alice.subject()
    );
    assert!(
        alice.body_text().contains("Refund for order") || alice.body_text().contains("refund"),
        "{}",
        alice.body_text()
    );
    assert!(
        !alice.body_text().contains("Opening hours"),
        "{}",
        alice.body_text()
    );
    let carol = digest("carol@example.com");
    assert!(
        carol.body_text().contains("Unassigned tickets"),
        "{}",
        carol.body_text()
    );
    assert!(
        carol.body_text().contains("Opening hours"),
        "{}",
        carol.body_text()
    );
}

#[test]
fn the_daemon_sends_each_digest_once_a_day_at_its_hour() {
    // Hour 0: whenever the test runs, the agents' local day has begun.
    let desk = Desk::with(Opts {
        autoreply: false,
        notify: false,
        digest: true,
        extra: r#"
[[agent]]
name = "bob"
email = "bob@example.com"
timezone = "Asia/Shanghai"
"#,
        ..Opts::default()
    });
    // With `digest: true` the harness writes no [digest] table: hour 0 goes last.
    let cfg = std::fs::read_to_string(&desk.config).unwrap();
    std::fs::write(&desk.config, format!("{cfg}\n[digest]\nhour = 0\n")).unwrap();
    desk.deliver(&customer_mail(
        "Ann <ann@customer.org>",
        "Question",
        "digest-daemon-1@customer.org",
        "Where is my parcel?",
    ));
    desk.run_once();
    desk.run_once();
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM digests_sent"),
        2,
        "alice and bob, once each"
    );
    let sent = desk.sent(2);
    let digests: Vec<&CapturedMail> = sent
        .iter()
        .filter(|m| m.subject().starts_with("Daily digest"))
        .collect();
    assert_eq!(digests.len(), 2, "{sent:#?}");
}

#[test]
fn rules_test_shows_the_decision_in_english_and_chinese_and_changes_nothing() {
    let desk = triage_desk();
    let dir = tempfile::tempdir().unwrap();
    let en = dir.path().join("en.eml");
    std::fs::write(
        &en,
        customer_mail(
            "Ann <ann@customer.org>",
            "Refund",
            "t-en@customer.org",
            "I want my money back for order 9.",
        ),
    )
    .unwrap();
    let zh = dir.path().join("zh.eml");
    std::fs::write(
        &zh,
        customer_mail(
            "Wang <wang@customer.org>",
            "账号",
            "t-zh@customer.org",
            "账号被别人登录了，钱也被转走了",
        ),
    )
    .unwrap();
    let run = |f: &std::path::Path| {
        let out = desk.cmd(&["rules", "test", f.to_str().unwrap(), "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let v = run(&en);
    assert_eq!(v["category"], "refund", "{v:#}");
    assert_eq!(v["team"], "billing", "{v:#}");
    assert_eq!(v["rules_fired"], serde_json::json!(["refund"]), "{v:#}");
    assert_eq!(v["acknowledgement"], true, "{v:#}");
    assert_eq!(v["forced_human"], false, "{v:#}");
    let v = run(&zh);
    assert_eq!(v["forced_human"], true, "{v:#}");
    assert_eq!(v["acknowledgement"], false, "{v:#}");
    assert_eq!(v["language"], "zh", "{v:#}");
    // The text form names the same decision.
    let out = desk.cmd(&["rules", "test", zh.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Forced-human:  YES"), "{text}");
    // Nothing was written.
    assert!(desk.try_count("SELECT COUNT(*) FROM tickets").unwrap_or(0) == 0);
}
