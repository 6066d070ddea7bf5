//! Issue 3: a forged From must never move a ticket. Each case executes nothing.
//!
//! Every spoof carries `#status closed`, `#priority urgent`, `#assign bob` and some text,
//! so that executing a command or relaying the text would both be visible: the ticket's
//! status, priority, assignee and tags are compared before and after, and nothing may
//! reach the customer. Where the mail claims to be from alice it is kept as a `held`
//! message and alice gets a held notice (except for automatic mail). Unless a case is
//! about authentication, the spoof carries the trusted server's pass, so that the check
//! under test is the one that holds it (the stored `held_reason` says which).

use serde_json::{Value, json};

use crate::agents::{AUTH_PASS, agent_desk, agent_mail, alice_reply, open_ticket, token_of};
use crate::harness::{Desk, mail, message_id_of};
use crate::support::CapturedMail;

/// Commands and text; either would be visible if the spoof were acted on.
const SPOOF_BODY: &str = "#status closed\n#priority urgent\n#assign bob\n\nHello Ann,\n\nyour refund is ready. Please send your card number to refunds@evil.example.";

/// A token expiry far in the future (2100-01-01).
const FAR_FUTURE: i64 = 4_102_444_800;

const ALICE: &str = "Alice Agent <alice@example.com>";
const ANN: &str = "ann@customer.org";

/// What a command would change.
fn state(desk: &Desk, id: i64) -> Value {
    let t = desk.show(id);
    json!({
        "status": t["status"],
        "priority": t["priority"],
        "assignee": t["assignee"],
        "tags": t["tags"],
    })
}

fn mails_to(all: &[CapturedMail], rcpt: &str) -> Vec<CapturedMail> {
    all.iter()
        .filter(|m| m.rcpt_to.iter().any(|r| r == rcpt))
        .cloned()
        .collect()
}

/// Held notices to alice among `all`.
fn held_notices(all: &[CapturedMail]) -> Vec<CapturedMail> {
    mails_to(all, "alice@example.com")
        .into_iter()
        .filter(|m| m.subject().contains("Held") || m.body_text().contains("was held"))
        .collect()
}

/// Threading headers that answer `n`.
fn answering(n: &CapturedMail) -> String {
    let parent = message_id_of(&n.data);
    format!("In-Reply-To: <{parent}>\r\nReferences: <{parent}>\r\n")
}

fn held_count(desk: &Desk) -> i64 {
    desk.count("SELECT COUNT(*) FROM messages WHERE kind = 'held'")
}

/// Held messages whose reason contains `needle` (SQL LIKE, case-insensitive for ASCII).
fn held_with_reason(desk: &Desk, needle: &str) -> i64 {
    desk.count(&format!(
        "SELECT COUNT(*) FROM messages WHERE kind = 'held' AND held_reason LIKE '%{needle}%'"
    ))
}

fn held_reasons(desk: &Desk) -> String {
    if held_count(desk) == 0 {
        return "(no held message)".to_string();
    }
    desk.query_string(
        "SELECT group_concat(COALESCE(held_reason, '(null)'), ' | ') FROM messages WHERE kind = 'held'",
    )
}

/// Runs one pass and checks the common outcome of a spoof on ticket `id` (`before` its
/// state): nothing executed, nothing to the customer, `held` held messages, and (when
/// `notices` > 0) that many held notices to alice, which `sent_total` mails in all make.
/// Returns every mail sent so far.
fn run_and_check(
    desk: &Desk,
    id: i64,
    before: &Value,
    held: i64,
    notices: usize,
    sent_total: usize,
) -> Vec<CapturedMail> {
    let r = desk.run_once();
    assert_eq!(r["failed"], 0, "{r}");
    if notices > 0 {
        desk.sent(sent_total);
    }
    let all = desk.smtp.messages();
    assert_eq!(&state(desk, id), before, "the spoof changed ticket #{id}");
    assert!(
        mails_to(&all, ANN).is_empty(),
        "the spoof reached the customer: {:?}",
        mails_to(&all, ANN)
    );
    assert_eq!(held_count(desk), held, "held: {}", held_reasons(desk));
    let to_alice = held_notices(&all);
    assert_eq!(to_alice.len(), notices, "held notices: {to_alice:?}");
    for n in &to_alice {
        assert!(n.subject().contains(&format!("[#{id}]")), "{}", n.subject());
        let body = n.body_text();
        assert!(body.contains("was held"), "{body}");
        // The notice names the held message but never carries its text.
        assert!(!body.contains("card number"), "{body}");
    }
    // The held message is on the ticket, kept for the agents to see.
    let kinds: Vec<Value> = desk
        .messages(id)
        .iter()
        .map(|m| m["kind"].clone())
        .collect();
    assert!(kinds.contains(&json!("held")), "{kinds:?}");
    all
}

#[test]
fn from_alice_without_a_token_is_held() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    let before = state(&desk, id);
    desk.deliver(&agent_mail(
        AUTH_PASS,
        ALICE,
        "support@example.com",
        &format!("Re: [#{id}] Invoice is wrong"),
        "spoof-notoken@example.com",
        &answering(&n),
        SPOOF_BODY,
    ));
    run_and_check(&desk, id, &before, 1, 1, 3);
    assert_eq!(
        held_with_reason(&desk, "no reply token"),
        1,
        "{}",
        held_reasons(&desk)
    );
}

#[test]
fn a_token_for_another_ticket_is_held_and_neither_ticket_moves() {
    let desk = agent_desk();
    let (a, n_a) = open_ticket(&desk);
    desk.deliver(&mail(
        "Bob Customer <bob@customer.org>",
        "support@example.com",
        "Password reset does not work",
        "bob-1@customer.org",
        "",
        "I never get the reset mail.",
    ));
    let r = desk.run_once();
    assert_eq!(r["new_tickets"], 1, "{r}");
    let b = desk
        .tickets()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .find(|t| *t != a)
        .unwrap();
    let sent = desk.sent(4);
    let n_b = mails_to(&sent, "alice@example.com")
        .into_iter()
        .find(|m| m.subject().contains(&format!("[#{b}]")))
        .unwrap_or_else(|| panic!("no notification for #{b} to alice: {sent:?}"));
    let (before_a, before_b) = (state(&desk, a), state(&desk, b));

    // Alice's genuine token for A, both from her notification and freshly minted; the
    // mail itself answers B's notification and names B in the subject.
    for (i, token) in [
        token_of(&n_a),
        desk.agent_token(a, "alice@example.com", FAR_FUTURE),
    ]
    .iter()
    .enumerate()
    {
        desk.deliver(&agent_mail(
            AUTH_PASS,
            ALICE,
            &format!("support+{token}@example.com"),
            &format!("Re: [#{b}] Password reset does not work"),
            &format!("spoof-cross-{i}@example.com"),
            &answering(&n_b),
            SPOOF_BODY,
        ));
    }
    let r = desk.run_once();
    assert_eq!(r["failed"], 0, "{r}");
    // One held notice: at most one an hour goes to an agent (the next lists the rest).
    desk.sent(5);
    let all = desk.smtp.messages();
    assert_eq!(state(&desk, a), before_a, "ticket A moved");
    assert_eq!(state(&desk, b), before_b, "ticket B moved");
    for customer in [ANN, "bob@customer.org"] {
        assert!(
            mails_to(&all, customer).is_empty(),
            "mail to {customer}: {all:?}"
        );
    }
    assert_eq!(held_count(&desk), 2, "{}", held_reasons(&desk));
    assert_eq!(
        held_with_reason(&desk, &format!("replies to ticket #{b}")),
        2,
        "{}",
        held_reasons(&desk)
    );
    assert_eq!(held_notices(&all).len(), 1, "{all:?}");
}

#[test]
fn an_expired_token_is_held() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    let before = state(&desk, id);
    let token = desk.agent_token(id, "alice@example.com", 1_000_000);
    desk.deliver(&agent_mail(
        AUTH_PASS,
        ALICE,
        &format!("support+{token}@example.com"),
        &format!("Re: [#{id}] Invoice is wrong"),
        "spoof-expired@example.com",
        &answering(&n),
        SPOOF_BODY,
    ));
    run_and_check(&desk, id, &before, 1, 1, 3);
    assert_eq!(
        held_with_reason(&desk, "expir"),
        1,
        "{}",
        held_reasons(&desk)
    );
}

/// `token` with the lowest bit of the base32 character at `pos` flipped.
fn flip_bit(token: &str, pos: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut bytes = token.as_bytes().to_vec();
    let v = ALPHABET.iter().position(|c| *c == bytes[pos]).unwrap();
    bytes[pos] = ALPHABET[v ^ 1];
    String::from_utf8(bytes).unwrap()
}

#[test]
fn a_token_with_one_bit_flipped_is_held() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    let before = state(&desk, id);
    let token = token_of(&n);
    assert!(token.starts_with('a'), "{token}");
    // In the key version, in the middle and in the tag (the last character is left
    // alone: its unused low bits make a flip there merely malformed).
    let positions = [1, token.len() / 2, token.len() - 3];
    for (i, pos) in positions.iter().enumerate() {
        let forged = flip_bit(&token, *pos);
        assert_ne!(forged, token);
        desk.deliver(&agent_mail(
            AUTH_PASS,
            ALICE,
            &format!("support+{forged}@example.com"),
            &format!("Re: [#{id}] Invoice is wrong"),
            &format!("spoof-flip-{i}@example.com"),
            &answering(&n),
            SPOOF_BODY,
        ));
    }
    run_and_check(&desk, id, &before, 3, 1, 3);
    assert_eq!(
        held_with_reason(&desk, "reply token refused"),
        3,
        "{}",
        held_reasons(&desk)
    );
    // The flip inside the MAC'd fields or tag is a bad signature, not a lucky parse.
    assert!(
        held_with_reason(&desk, "signature does not match") >= 1,
        "{}",
        held_reasons(&desk)
    );
}

#[test]
fn a_valid_token_with_another_from_is_held_and_alice_is_told() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    let before = state(&desk, id);
    let token = token_of(&n);
    desk.deliver(&agent_mail(
        "Authentication-Results: mx.test; dkim=pass header.d=evil.example; dmarc=pass header.from=evil.example\r\n",
        "Mallory <mallory@evil.example>",
        &format!("support+{token}@example.com"),
        &format!("Re: [#{id}] Invoice is wrong"),
        "spoof-mallory@evil.example",
        &answering(&n),
        SPOOF_BODY,
    ));
    let all = run_and_check(&desk, id, &before, 1, 1, 3);
    assert_eq!(
        held_with_reason(&desk, "From is mallory@evil.example"),
        1,
        "{}",
        held_reasons(&desk)
    );
    assert!(mails_to(&all, "mallory@evil.example").is_empty(), "{all:?}");
    // The notice says the From was not hers, without spelling out the forger's address
    // as a link (it is defanged); the stored reason keeps it for the administrator.
    let notice = &held_notices(&all)[0];
    let text = notice.body_text();
    assert!(text.contains("an address that is not yours"), "{text}");
    assert!(!text.contains("mallory@evil.example"), "{text}");
    assert!(text.contains("mallory@evil[.]example"), "{text}");
}

#[test]
fn two_from_headers_are_held() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    let before = state(&desk, id);
    let token = token_of(&n);
    desk.deliver(&agent_mail(
        AUTH_PASS,
        ALICE,
        &format!("support+{token}@example.com"),
        &format!("Re: [#{id}] Invoice is wrong"),
        "spoof-twofrom@example.com",
        &format!("From: Mallory <mallory@evil.example>\r\n{}", answering(&n)),
        SPOOF_BODY,
    ));
    let all = run_and_check(&desk, id, &before, 1, 1, 3);
    assert_eq!(
        held_with_reason(&desk, "2 From addresses"),
        1,
        "{}",
        held_reasons(&desk)
    );
    assert!(mails_to(&all, "mallory@evil.example").is_empty(), "{all:?}");
}

/// Case 6 again, with a second From header that holds no parsable mailbox: still two From
/// headers, which RFC 5322 forbids and the issue says to hold.
#[test]
fn two_from_headers_one_without_a_parsable_mailbox_are_held() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    let before = state(&desk, id);
    let token = token_of(&n);
    for (i, second) in ["undisclosed-recipients:;", "mallory"].iter().enumerate() {
        desk.deliver(&agent_mail(
            AUTH_PASS,
            ALICE,
            &format!("support+{token}@example.com"),
            &format!("Re: [#{id}] Invoice is wrong"),
            &format!("spoof-twofrom-odd-{i}@example.com"),
            &format!("From: {second}\r\n{}", answering(&n)),
            SPOOF_BODY,
        ));
    }
    run_and_check(&desk, id, &before, 2, 1, 3);
    assert_eq!(
        held_with_reason(&desk, "From"),
        2,
        "{}",
        held_reasons(&desk)
    );
}

#[test]
fn missing_or_untrusted_authentication_results_are_held() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    let before = state(&desk, id);
    let token = token_of(&n);
    for (trace, msgid) in [
        ("", "spoof-noauth@example.com"),
        (
            "Authentication-Results: mx.evil; dkim=pass header.d=example.com\r\n",
            "spoof-evilauth@example.com",
        ),
    ] {
        desk.deliver(&agent_mail(
            trace,
            ALICE,
            &format!("support+{token}@example.com"),
            &format!("Re: [#{id}] Invoice is wrong"),
            msgid,
            &answering(&n),
            SPOOF_BODY,
        ));
    }
    run_and_check(&desk, id, &before, 2, 1, 3);
    assert_eq!(
        held_with_reason(&desk, "not authenticated"),
        2,
        "{}",
        held_reasons(&desk)
    );
}

#[test]
fn an_authentication_results_header_below_the_trusted_one_is_held() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    let before = state(&desk, id);
    let token = token_of(&n);
    let fail = "Authentication-Results: mx.test; dkim=fail header.d=example.com; dmarc=fail header.from=example.com\r\n";
    // The real verdict on top, the sender's forged pass directly below it.
    desk.deliver(&agent_mail(
        &format!("{fail}{AUTH_PASS}"),
        ALICE,
        &format!("support+{token}@example.com"),
        &format!("Re: [#{id}] Invoice is wrong"),
        "spoof-below@example.com",
        &answering(&n),
        SPOOF_BODY,
    ));
    // The forged pass below the From header, outside the trace zone altogether.
    desk.deliver(&agent_mail(
        "",
        ALICE,
        &format!("support+{token}@example.com"),
        &format!("Re: [#{id}] Invoice is wrong"),
        "spoof-afterfrom@example.com",
        &format!("{AUTH_PASS}{}", answering(&n)),
        SPOOF_BODY,
    ));
    run_and_check(&desk, id, &before, 2, 1, 3);
    assert_eq!(
        held_with_reason(&desk, "not authenticated"),
        2,
        "{}",
        held_reasons(&desk)
    );
    assert_eq!(
        held_with_reason(&desk, "dmarc=fail"),
        1,
        "{}",
        held_reasons(&desk)
    );
}

#[test]
fn a_replayed_message_id_has_no_second_effect() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    let token = token_of(&n);
    let first = alice_reply(
        &token,
        id,
        &n,
        "alice-replay-1@example.com",
        "#priority high\n#tag first\n\nHello Ann,\n\nwe are on it.",
    );
    desk.deliver(&first);
    desk.run_once();
    let t = desk.show(id);
    assert_eq!(t["priority"], "high");
    assert!(
        t["tags"].as_array().unwrap().contains(&json!("first")),
        "{}",
        t["tags"]
    );
    desk.deliver(&alice_reply(
        &token,
        id,
        &n,
        "alice-replay-2@example.com",
        "#priority low\n#tag -first\n\nHello again,\n\nit is fixed.",
    ));
    desk.run_once();
    // Two replies to ann, two receipts to alice, after the two notifications.
    desk.sent(6);
    let before = state(&desk, id);
    assert_eq!(before["priority"], "low");
    let mails_before = desk.smtp.messages();
    let to_ann_before = mails_to(&mails_before, ANN).len();
    assert_eq!(to_ann_before, 2, "{mails_before:?}");

    // The exact bytes of the first reply, again.
    desk.deliver(&first);
    let r = desk.run_once();
    assert_eq!(r["failed"], 0, "{r}");
    let all = desk.smtp.messages();
    assert_eq!(state(&desk, id), before, "the replay had an effect");
    assert_eq!(mails_to(&all, ANN).len(), to_ann_before, "{all:?}");
    assert_eq!(
        all.len(),
        mails_before.len(),
        "the replay sent mail: {all:?}"
    );
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM messages WHERE message_id = 'alice-replay-1@example.com'"),
        1
    );

    // The same Message-ID (in other case) over new commands and text: still a replay.
    desk.deliver(&alice_reply(
        &token,
        id,
        &n,
        "ALICE-REPLAY-1@example.com",
        "#priority urgent
#status closed
#assign bob

Hello Ann, please ignore the previous mail.",
    ));
    let r = desk.run_once();
    assert_eq!(r["failed"], 0, "{r}");
    let all = desk.smtp.messages();
    assert_eq!(state(&desk, id), before, "the altered replay had an effect");
    assert_eq!(
        all.len(),
        mails_before.len(),
        "the altered replay sent mail: {all:?}"
    );
    assert_eq!(
        desk.count(
            "SELECT COUNT(*) FROM messages WHERE lower(message_id) = 'alice-replay-1@example.com'"
        ),
        1
    );
    assert_eq!(held_count(&desk), 0, "{}", held_reasons(&desk));
}

#[test]
fn an_out_of_office_is_held_without_a_notice() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    let before = state(&desk, id);
    let token = token_of(&n);
    let mails_before = desk.smtp.messages();
    desk.deliver(&agent_mail(
        AUTH_PASS,
        ALICE,
        &format!("support+{token}@example.com"),
        &format!("Out of office: Re: [#{id}] Invoice is wrong"),
        "ooo-1@example.com",
        &format!("Auto-Submitted: auto-replied\r\n{}", answering(&n)),
        "#status closed\nI am out of office until Monday.",
    ));
    let all = run_and_check(&desk, id, &before, 1, 0, 0);
    assert_eq!(
        held_with_reason(&desk, "automatic"),
        1,
        "{}",
        held_reasons(&desk)
    );
    // Nothing at all went to alice (or anyone) after it: no robot ping-pong.
    assert_eq!(
        mails_to(&all, "alice@example.com").len(),
        mails_to(&mails_before, "alice@example.com").len(),
        "{all:?}"
    );
    assert_eq!(all.len(), mails_before.len(), "{all:?}");
}

/// Case 10 again, from an auto-responder of the classic kind (vacation(1)): no
/// Auto-Submitted, but `Precedence: junk` and a null Return-Path, both of which
/// `channels::email::loops` treats as automatic (RFC 3834).
#[test]
fn an_out_of_office_marked_by_precedence_and_null_return_path_is_held_without_a_notice() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    let before = state(&desk, id);
    let token = token_of(&n);
    let mails_before = desk.smtp.messages();
    let raw = agent_mail(
        AUTH_PASS,
        ALICE,
        &format!("support+{token}@example.com"),
        &format!("Out of office: Re: [#{id}] Invoice is wrong"),
        "ooo-2@example.com",
        &format!("Precedence: junk\r\n{}", answering(&n)),
        "#status closed\nI am out of office until Monday.",
    );
    let raw = String::from_utf8(raw).unwrap().replacen(
        "Return-Path: <alice@example.com>",
        "Return-Path: <>",
        1,
    );
    assert!(raw.contains("Return-Path: <>\r\n"), "{raw}");
    desk.deliver(raw.as_bytes());
    let all = run_and_check(&desk, id, &before, 1, 0, 0);
    assert_eq!(all.len(), mails_before.len(), "{all:?}");
}

#[test]
fn a_command_inside_quoted_history_is_not_executed() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    let token = token_of(&n);
    let before = state(&desk, id);
    assert_eq!(before["status"], "open");
    // `>` quoting under an attribution line, and an Outlook "Original Message" block.
    desk.deliver(&alice_reply(
        &token,
        id,
        &n,
        "alice-quote-1@example.com",
        "Thanks, looking into it.\n\nOn Tue, 24 Nov 2026 at 10:00, Example Support <support@example.com> wrote:\n> #status closed\n> My invoice 4711 charges me twice.\n",
    ));
    desk.run_once();
    desk.deliver(&alice_reply(
        &token,
        id,
        &n,
        "alice-quote-2@example.com",
        "Thanks, still looking into it.\n\n-----Original Message-----\nFrom: Example Support <support@example.com>\nSent: Tuesday, November 24, 2026 10:00 AM\nTo: Alice Agent <alice@example.com>\nSubject: [#1] Invoice is wrong\n\n#status closed\n#priority urgent\nMy invoice 4711 charges me twice.\n",
    ));
    let r = desk.run_once();
    assert_eq!(r["failed"], 0, "{r}");
    // Two notifications and two replies to ann (no commands, so no receipts).
    desk.sent(4);
    let all = desk.smtp.messages();
    // Answering took the unassigned ticket ([commands] auto_assign); nothing else moved.
    let mut expected = before.clone();
    expected["assignee"] = json!("alice");
    assert_eq!(state(&desk, id), expected, "a quoted command was executed");
    let to_ann = mails_to(&all, ANN);
    assert_eq!(to_ann.len(), 2, "{all:?}");
    for reply in &to_ann {
        let text = reply.body_text();
        assert!(text.contains("looking into it."), "{text}");
        for quoted in [
            "#status",
            "#priority",
            "charges me twice",
            "Original Message",
            "wrote:",
        ] {
            assert!(!text.contains(quoted), "{quoted:?} relayed:\n{text}");
        }
    }
    assert_eq!(held_count(&desk), 0, "{}", held_reasons(&desk));
}
