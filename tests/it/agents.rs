//! Issue 3: agents work from their mail client. Notifications, replies relayed to the
//! customer, every command, receipts, `#note`, `#undo`, the commands address. Real
//! Dovecot in, real SMTP out. The spoofing cases are in `spoofing.rs`.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{Desk, Opts, mail};
use crate::support::CapturedMail;

/// Agents alice and bob, a trusted receiving server `mx.test`, a commands address, no
/// DNS (local DKIM off), notifications on, acknowledgements off (fewer mails to count).
pub const AGENT_CONFIG: &str = r#"
[[agent]]
name = "bob"
email = "bob@example.com"

[security]
require_authenticated_sender = true
trusted_authserv_id = "mx.test"
verify_dkim_locally = false

[commands]
address = "commands@example.com"
"#;

pub fn agent_desk() -> Desk {
    Desk::with(Opts {
        autoreply: false,
        notify: true,
        extra: AGENT_CONFIG,
        ..Opts::default()
    })
}

/// The trusted server's verdict for example.com, as `mx.test` prepends it.
pub const AUTH_PASS: &str = "Authentication-Results: mx.test; dkim=pass header.d=example.com; dmarc=pass header.from=example.com\r\n";

/// A mail as an agent's client sends it: trace headers first (`trace`, e.g. AUTH_PASS),
/// then the composed headers, `extra` (whole lines), and a plain-text body.
pub fn agent_mail(
    trace: &str,
    from: &str,
    to: &str,
    subject: &str,
    message_id: &str,
    extra: &str,
    body: &str,
) -> Vec<u8> {
    let mut raw = trace.as_bytes().to_vec();
    raw.extend(mail(from, to, subject, message_id, extra, body));
    raw
}

/// Opens ticket #1 from ann@customer.org and returns (ticket id, the notification alice got).
pub fn open_ticket(desk: &Desk) -> (i64, CapturedMail) {
    desk.deliver(&mail(
        "Ann Customer <ann@customer.org>",
        "support@example.com",
        "Invoice is wrong",
        "ann-1@customer.org",
        "",
        "My invoice 4711 charges me twice. Please fix it.",
    ));
    let r = desk.run_once();
    assert_eq!(r["new_tickets"], 1, "{r}");
    let id = desk.tickets()[0]["id"].as_i64().unwrap();
    let sent = desk.sent(2);
    let n = sent
        .iter()
        .find(|m| m.rcpt_to == ["alice@example.com"])
        .cloned()
        .unwrap_or_else(|| panic!("no notification to alice: {sent:?}"));
    (id, n)
}

/// A second customer's ticket: zed@customer.org asks where his parcel is (delivered and
/// ingested with `run --once`).
pub fn second_ticket(desk: &Desk) {
    desk.deliver(&mail(
        "Zed <zed@customer.org>",
        "support@example.com",
        "Where is my parcel",
        "zed-1@customer.org",
        "",
        "Order 99 has not arrived.",
    ));
    desk.run_once();
}

/// The token in a notification's Reply-To (`support+<token>@example.com`).
pub fn token_of(notification: &CapturedMail) -> String {
    let reply_to = notification.header("Reply-To").unwrap();
    let addr = crate::harness::addr_of(&reply_to);
    addr.strip_prefix("support+")
        .and_then(|a| a.strip_suffix("@example.com"))
        .unwrap_or_else(|| panic!("not a token address: {addr}"))
        .to_string()
}

/// Alice's authenticated reply to her notification, with `body` as the new text.
pub fn alice_reply(token: &str, ticket: i64, n: &CapturedMail, id: &str, body: &str) -> Vec<u8> {
    let parent = crate::harness::message_id_of(&n.data);
    agent_mail(
        AUTH_PASS,
        "Alice Agent <alice@example.com>",
        &format!("support+{token}@example.com"),
        &format!("Re: [#{ticket}] Invoice is wrong"),
        id,
        &format!("In-Reply-To: <{parent}>\r\nReferences: <{parent}>\r\n"),
        body,
    )
}

pub fn ticket(desk: &Desk, id: i64) -> Value {
    desk.show(id)
}

fn kinds(t: &Value) -> Vec<String> {
    t["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap().to_string())
        .collect()
}

pub fn mails_to(all: &[CapturedMail], rcpt: &str) -> Vec<CapturedMail> {
    all.iter()
        .filter(|m| m.rcpt_to.iter().any(|r| r == rcpt))
        .cloned()
        .collect()
}

#[test]
fn notification_has_context_block_token_reply_to_and_thread_headers() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    let sent = desk.sent(2);
    // Unassigned: the whole team (alice and bob) is told.
    assert_eq!(mails_to(&sent, "bob@example.com").len(), 1);
    assert!(n.subject().contains(&format!("[#{id}]")), "{}", n.subject());
    let token = token_of(&n);
    assert!(token.starts_with('a') && token.len() >= 26, "{token}");
    let body = n.body_text();
    for needle in [
        "Ann Customer",
        "ann@customer.org",
        "Tier:",
        "Status:",
        "Priority:",
        "Matched by:",
        "charges me twice",
        "#assign",
        "#status",
    ] {
        assert!(body.contains(needle), "{needle:?} missing from:\n{body}");
    }
    let root = format!("pd.{id}.thread@example.com");
    assert!(n.header("References").unwrap().contains(&root));
    assert_eq!(n.header("Auto-Submitted").unwrap().trim(), "auto-generated");
    // Alice's and bob's tokens differ.
    let bob = &mails_to(&sent, "bob@example.com")[0];
    assert_ne!(token_of(bob), token);

    // A customer follow-up: a second notification in the same thread.
    desk.deliver(&mail(
        "Ann Customer <ann@customer.org>",
        "support@example.com",
        "Re: Invoice is wrong",
        "ann-2@customer.org",
        "In-Reply-To: <ann-1@customer.org>\r\nReferences: <ann-1@customer.org>\r\n",
        "Any news?",
    ));
    desk.run_once();
    let all = desk.sent(4);
    let to_alice = mails_to(&all, "alice@example.com");
    assert_eq!(to_alice.len(), 2);
    assert!(to_alice[1].header("References").unwrap().contains(&root));
    assert_eq!(to_alice[0].subject(), to_alice[1].subject());
}

#[test]
fn agent_reply_reaches_the_customer_threaded_and_commands_apply() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    let token = token_of(&n);
    desk.deliver(&alice_reply(
        &token,
        id,
        &n,
        "alice-1@example.com",
        "#status pending\n#priority high\n#tag billing refunds\n#assign me\n\nHello Ann,\n\nwe refunded the second charge.\n\nOn Tue, 24 Nov 2026 Support wrote:\n> My invoice 4711 charges me twice.\n> #close\n",
    ));
    let r = desk.run_once();
    assert_eq!(r["failed"], 0, "{r}");

    let t = ticket(&desk, id);
    assert_eq!(t["status"], "pending");
    assert_eq!(t["priority"], "high");
    assert_eq!(t["assignee"], "alice");
    let tags: Vec<&str> = t["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        tags.contains(&"billing") && tags.contains(&"refunds"),
        "{tags:?}"
    );
    assert!(
        kinds(&t).contains(&"agent_reply".to_string()),
        "{:?}",
        kinds(&t)
    );

    let all = desk.sent(4);
    let to_ann = mails_to(&all, "ann@customer.org");
    assert_eq!(to_ann.len(), 1, "one reply to the customer");
    let reply = &to_ann[0];
    assert!(reply.subject().contains(&format!("[#{id}]")));
    assert!(
        reply
            .header("In-Reply-To")
            .unwrap()
            .contains("ann-1@customer.org")
    );
    assert!(
        reply
            .header("References")
            .unwrap()
            .contains("ann-1@customer.org")
    );
    assert!(
        reply
            .header("From")
            .unwrap()
            .contains("support@example.com")
    );
    let ticket_token = t["token"].as_str().map(str::to_string);
    if let Some(tok) = ticket_token {
        assert!(reply.header("Reply-To").unwrap().contains(&tok));
    }
    let text = reply.body_text();
    assert!(text.contains("we refunded the second charge"), "{text}");
    // Neither the commands nor the quoted history reach the customer.
    assert!(
        !text.contains("#status") && !text.contains("charges me twice"),
        "{text}"
    );
    assert!(reply.header("Auto-Submitted").is_none());
    // The quoted "#close" was not executed (status stays pending, checked above).

    // A receipt to alice lists what was applied.
    let receipts: Vec<_> = mails_to(&all, "alice@example.com")
        .into_iter()
        .filter(|m| m.subject().contains("Receipt"))
        .collect();
    assert_eq!(receipts.len(), 1);
    let body = receipts[0].body_text();
    assert!(
        body.contains("pending") && body.contains("billing"),
        "{body}"
    );
}

#[test]
fn note_stays_internal_and_only_commands_send_nothing_to_the_customer() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    let token = token_of(&n);
    desk.deliver(&alice_reply(
        &token,
        id,
        &n,
        "alice-note@example.com",
        "#note\nCustomer called; she is upset. Do not refund twice.",
    ));
    desk.run_once();
    desk.deliver(&alice_reply(
        &token,
        id,
        &n,
        "alice-cmd@example.com",
        "#status resolved\n#quiet",
    ));
    desk.run_once();
    // Nothing at all reaches the customer.
    std::thread::sleep(Duration::from_millis(300));
    let all = desk.smtp.messages();
    assert!(mails_to(&all, "ann@customer.org").is_empty(), "{all:?}");
    let t = ticket(&desk, id);
    assert_eq!(t["status"], "resolved");
    let msgs = t["messages"].as_array().unwrap();
    let note = msgs.iter().find(|m| m["kind"] == "note").unwrap();
    assert!(note["body_text"].as_str().unwrap().contains("upset"));
    assert!(msgs.iter().any(|m| m["kind"] == "command"));
    // The #note reply got a receipt (it had a command); the #quiet one did not.
    let receipts = mails_to(&all, "alice@example.com")
        .into_iter()
        .filter(|m| m.subject().contains("Receipt"))
        .count();
    assert_eq!(receipts, 1);
}

#[test]
fn unknown_commands_are_rejected_in_a_receipt_and_quiet_does_not_hide_it() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    let token = token_of(&n);
    desk.deliver(&alice_reply(
        &token,
        id,
        &n,
        "alice-bad@example.com",
        "#quiet\n#stauts closed\n#assign carol\n#priority high",
    ));
    desk.run_once();
    let all = desk.sent(3);
    let receipt = mails_to(&all, "alice@example.com")
        .into_iter()
        .find(|m| m.subject().contains("Receipt"))
        .expect("a receipt despite #quiet");
    let body = receipt.body_text();
    assert!(body.contains("#stauts"), "{body}");
    assert!(body.contains("status"), "did-you-mean: {body}");
    assert!(body.contains("carol"), "{body}");
    // The valid command still applied; the rejected ones did nothing.
    let t = ticket(&desk, id);
    assert_eq!(t["priority"], "high");
    assert_eq!(t["status"], "open");
    assert!(t["assignee"].is_null());
    // The receipt's Reply-To is alice's token address again, so she can fix it in reply.
    assert!(receipt.header("Reply-To").unwrap().contains("support+a"));
}

#[test]
fn undo_reverts_the_previous_command_set() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    let token = token_of(&n);
    desk.deliver(&alice_reply(
        &token,
        id,
        &n,
        "alice-u1@example.com",
        "#status closed\n#priority urgent\n#tag spam\n#assign bob",
    ));
    desk.run_once();
    let t = ticket(&desk, id);
    assert_eq!(t["status"], "closed");
    assert_eq!(t["assignee"], "bob");
    desk.deliver(&alice_reply(
        &token,
        id,
        &n,
        "alice-u2@example.com",
        "#undo",
    ));
    desk.run_once();
    let t = ticket(&desk, id);
    assert_eq!(t["status"], "open");
    assert_eq!(t["priority"], "normal");
    assert!(t["assignee"].is_null());
    assert!(t["tags"].as_array().unwrap().is_empty(), "{}", t["tags"]);
}

#[test]
fn cc_invite_merge_macro_and_help() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    let token = token_of(&n);
    // A second ticket to merge into.
    desk.deliver(&mail(
        "Ann Customer <ann@customer.org>",
        "support@example.com",
        "Also: my address changed",
        "ann-other@customer.org",
        "",
        "New address: 1 Main St.",
    ));
    desk.run_once();
    let other = desk
        .tickets()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .find(|t| *t != id)
        .unwrap();

    desk.deliver(&alice_reply(
        &token,
        id,
        &n,
        "alice-cc@example.com",
        "#cc accounting@customer.org\n#invite finance@example.com\n#macro refund-policy\n\nHi Ann, see our policy below.",
    ));
    desk.run_once();
    let all = desk.sent(5);
    let to_ann: Vec<_> = mails_to(&all, "ann@customer.org");
    let reply = to_ann.last().expect("reply to the customer");
    assert!(
        reply
            .rcpt_to
            .contains(&"accounting@customer.org".to_string()),
        "{:?}",
        reply.rcpt_to
    );
    let text = reply.body_text();
    assert!(text.contains("see our policy"), "{text}");
    assert!(
        text.to_lowercase().contains("refund"),
        "macro text missing: {text}"
    );
    assert_eq!(
        desk.count(&format!(
            "SELECT COUNT(*) FROM ticket_collaborators WHERE ticket_id = {id} AND email = 'finance@example.com'"
        )),
        1
    );

    desk.deliver(&alice_reply(
        &token,
        id,
        &n,
        "alice-merge@example.com",
        &format!("#merge {other}\n#help"),
    ));
    desk.run_once();
    let t = ticket(&desk, id);
    // This ticket now lives on in the other one, with its messages.
    assert_eq!(t["merged_into"].as_i64(), Some(other), "{t}");
    assert_eq!(t["status"], "closed");
    let merged = ticket(&desk, other);
    assert!(
        merged["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["message_id"] == "ann-1@customer.org"),
        "{merged}"
    );
    let receipt = desk
        .smtp
        .messages()
        .into_iter()
        .rfind(|m| m.subject().contains("Receipt"))
        .unwrap();
    assert!(
        receipt.body_text().contains("#macro"),
        "help lists commands"
    );
}

#[test]
fn commands_address_with_ticket_tag_works_for_an_authenticated_agent() {
    let desk = agent_desk();
    let (id, _n) = open_ticket(&desk);
    desk.deliver(&agent_mail(
        AUTH_PASS,
        "Bob <bob@example.com>",
        "commands@example.com",
        &format!("[#{id}] take this"),
        "bob-cmd@example.com",
        "",
        "#assign me\n#status pending",
    ));
    desk.run_once();
    let t = ticket(&desk, id);
    assert_eq!(t["assignee"], "bob");
    assert_eq!(t["status"], "pending");
    // A reply from the customer now notifies the assignee only.
    let before = desk.smtp.messages().len();
    desk.deliver(&mail(
        "Ann Customer <ann@customer.org>",
        "support@example.com",
        "Re: Invoice is wrong",
        "ann-3@customer.org",
        "In-Reply-To: <ann-1@customer.org>\r\n",
        "Hello?",
    ));
    desk.run_once();
    let all = desk.sent(before + 1);
    let new: Vec<_> = all[before..].to_vec();
    assert!(
        new.iter().all(|m| m.rcpt_to == ["bob@example.com"]),
        "{new:?}"
    );
}

#[test]
fn rotated_keys_keep_old_tokens_until_retired() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    let token = token_of(&n);
    let out = desk.cmd(&["keys", "rotate", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["current"], 2);
    // The version-1 token from the notification still works after rotation.
    desk.deliver(&alice_reply(
        &token,
        id,
        &n,
        "alice-r1@example.com",
        "#priority high",
    ));
    desk.run_once();
    assert_eq!(ticket(&desk, id)["priority"], "high");
    // Retired, it no longer does: the reply is held.
    let out = desk.cmd(&["keys", "retire", "1", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    desk.deliver(&alice_reply(
        &token,
        id,
        &n,
        "alice-r2@example.com",
        "#priority low",
    ));
    desk.run_once();
    assert_eq!(ticket(&desk, id)["priority"], "high");
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM messages WHERE kind = 'held'"),
        1
    );
    // Retiring the current key is refused with a clear error.
    let out = desk.cmd(&["keys", "retire", "2"]);
    assert!(!out.status.success());
}
