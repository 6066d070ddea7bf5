//! Issue 10, medium and low: forged agent mail and held-notice abuse, and the DKIM/DMARC
//! rules for real agents. Real Dovecot in, real SMTP out.

use std::net::UdpSocket;
use std::time::Duration;

use crate::agents::{
    AGENT_CONFIG, AUTH_PASS, agent_desk, agent_mail, alice_reply, open_ticket, token_of,
};
use crate::harness::{Desk, Opts, eventually, mail, message_id_of};
use crate::support::CapturedMail;

const ALICE: &str = "Alice Agent <alice@example.com>";

fn mails_to(all: &[CapturedMail], rcpt: &str) -> Vec<CapturedMail> {
    all.iter()
        .filter(|m| m.rcpt_to.iter().any(|r| r == rcpt))
        .cloned()
        .collect()
}

fn held_notices(all: &[CapturedMail]) -> Vec<CapturedMail> {
    mails_to(all, "alice@example.com")
        .into_iter()
        .filter(|m| m.body_text().contains("was held"))
        .collect()
}

fn ticket_token(desk: &Desk, id: i64) -> String {
    desk.query_string(&format!("SELECT token FROM tickets WHERE id = {id}"))
}

#[test]
fn a_forged_agent_mail_to_the_customers_reply_address_moves_nothing() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    desk.deliver(&alice_reply(
        &token_of(&n),
        id,
        &n,
        "alice-pending@example.com",
        "#status pending\n#quiet",
    ));
    desk.run_once();
    assert_eq!(desk.show(id)["status"], "pending");
    // The acknowledgement's Reply-To is the customer's token address; a forger writes to
    // it as alice, with no authentication at all.
    desk.deliver(&mail(
        ALICE,
        &format!("support+{}@example.com", ticket_token(&desk, id)),
        "Re: Invoice is wrong",
        "forged-to-customer-token@evil.test",
        "",
        "#close\nPlease pay the new invoice at http://evil.test/pay",
    ));
    let r = desk.run_once();
    assert_eq!(r["failed"], 0, "{r}");
    let t = desk.show(id);
    assert_eq!(t["status"], "pending", "the forgery moved the ticket");
    let m = t["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["message_id"] == "forged-to-customer-token@evil.test")
        .cloned()
        .expect("kept on the ticket");
    assert_eq!(m["kind"], "held", "{m}");
    assert!(mails_to(&desk.smtp.messages(), "ann@customer.org").is_empty());
}

#[test]
fn fifteen_forged_mails_bring_one_held_notice_and_none_quotes_the_forger() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    let parent = message_id_of(&n.data);
    for i in 0..15 {
        desk.deliver(&mail(
            "IT Helpdesk <alice@example.com>",
            "support@example.com",
            &format!("Re: [#{id}] IT: reset your password at http://evil.test/login now"),
            &format!("forged-{i}@evil.test"),
            &format!("In-Reply-To: <{parent}>\r\nReferences: <{parent}>\r\n"),
            "#assign bob\nHi",
        ));
    }
    let r = desk.run_once();
    assert_eq!(r["failed"], 0, "{r}");
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM messages WHERE kind = 'held'"),
        15
    );
    let notices = held_notices(&desk.smtp.messages());
    assert_eq!(notices.len(), 1, "{} held notices", notices.len());
    let text = notices[0].body_text();
    assert!(
        !text.contains("IT Helpdesk"),
        "the forger's display name is quoted:\n{text}"
    );
    assert!(
        !text.contains("evil.test"),
        "the forger's link is quoted:\n{text}"
    );
    assert!(
        !notices[0].subject().contains("evil.test"),
        "{}",
        notices[0].subject()
    );
}

/// Alice writes straight to support@ (no token) about ticket `id`, authenticated, with
/// `extra` header lines: a real agent's mail that must be held.
fn alices_mail_without_token(desk: &Desk, id: i64, n: &CapturedMail, extra: &str) {
    let parent = message_id_of(&n.data);
    desk.deliver(&agent_mail(
        AUTH_PASS,
        ALICE,
        "support@example.com",
        &format!("Re: [#{id}] Invoice is wrong"),
        "alice-no-token@example.com",
        &format!("In-Reply-To: <{parent}>\r\nReferences: <{parent}>\r\n{extra}"),
        "#priority high\nHello Ann, the refund of 4711 is on its way.",
    ));
    let r = desk.run_once();
    assert_eq!(r["failed"], 0, "{r}");
}

/// The held notice about alice's mail, and her one-line answer to it.
fn release_by_replying(desk: &Desk, id: i64) -> CapturedMail {
    let notice = held_notices(&desk.smtp.messages())
        .pop()
        .expect("a held notice to alice");
    let reply_to = notice
        .header("Reply-To")
        .expect("the notice carries a Reply-To");
    let token = crate::harness::addr_of(&reply_to)
        .strip_prefix("support+")
        .and_then(|a| a.strip_suffix("@example.com").map(str::to_string))
        .unwrap_or_else(|| panic!("not a token address: {reply_to}"));
    desk.deliver(&alice_reply(
        &token,
        id,
        &notice,
        "alice-release@example.com",
        "#release",
    ));
    let r = desk.run_once();
    assert_eq!(r["failed"], 0, "{r}");
    notice
}

#[test]
fn a_real_agents_held_mail_is_resent_by_one_reply_to_the_notice() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    alices_mail_without_token(&desk, id, &n, "");
    assert!(mails_to(&desk.smtp.messages(), "ann@customer.org").is_empty());
    let notice = release_by_replying(&desk, id);
    assert!(
        notice.body_text().contains("#release"),
        "{}",
        notice.body_text()
    );
    let to_ann = mails_to(&desk.smtp.messages(), "ann@customer.org");
    assert_eq!(to_ann.len(), 1, "{to_ann:?}");
    assert!(
        to_ann[0]
            .body_text()
            .contains("refund of 4711 is on its way")
    );
    assert_eq!(
        desk.show(id)["priority"],
        "high",
        "the held commands apply on release"
    );
}

#[test]
fn a_held_mail_that_already_reached_the_customer_is_not_sent_twice() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    // Alice's client also sent it to Ann directly (Cc), so Ann already has it.
    alices_mail_without_token(&desk, id, &n, "Cc: Ann Customer <ann@customer.org>\r\n");
    let notice = release_by_replying(&desk, id);
    let text = notice.body_text();
    assert!(
        text.contains("already"),
        "the notice does not say the customer has it:\n{text}"
    );
    assert!(
        mails_to(&desk.smtp.messages(), "ann@customer.org").is_empty(),
        "answered twice"
    );
    assert_eq!(desk.show(id)["priority"], "high");
}

fn reply_with_auth(desk: &Desk, id: i64, n: &CapturedMail, msgid: &str, auth: &str) {
    let parent = message_id_of(&n.data);
    desk.deliver(&agent_mail(
        auth,
        ALICE,
        &format!("support+{}@example.com", token_of(n)),
        &format!("Re: [#{id}] Invoice is wrong"),
        msgid,
        &format!("In-Reply-To: <{parent}>\r\nReferences: <{parent}>\r\n"),
        // Each reply its own text: the same text twice within a minute is sent once.
        &format!("#quiet\nYour refund is on its way ({msgid})."),
    ));
    let r = desk.run_once();
    assert_eq!(r["failed"], 0, "{r}");
}

#[test]
fn an_aligned_dkim_pass_is_enough_unless_dmarc_fails() {
    let desk = agent_desk();
    let (id, n) = open_ticket(&desk);
    // No DMARC record (dmarc=none) and Exchange Online's bestguesspass: aligned DKIM wins.
    reply_with_auth(
        &desk,
        id,
        &n,
        "alice-dmarc-none@example.com",
        "Authentication-Results: mx.test; dkim=pass header.d=example.com; dmarc=none header.from=example.com\r\n",
    );
    reply_with_auth(
        &desk,
        id,
        &n,
        "alice-bestguess@example.com",
        "Authentication-Results: mx.test; dkim=pass header.d=example.com; dmarc=bestguesspass header.from=example.com\r\n",
    );
    assert_eq!(mails_to(&desk.smtp.messages(), "ann@customer.org").len(), 2);
    // DMARC fail vetoes.
    reply_with_auth(
        &desk,
        id,
        &n,
        "alice-dmarc-fail@example.com",
        "Authentication-Results: mx.test; dkim=pass header.d=example.com; dmarc=fail header.from=example.com\r\n",
    );
    assert_eq!(mails_to(&desk.smtp.messages(), "ann@customer.org").len(), 2);
    assert_eq!(desk.count("SELECT COUNT(*) FROM messages WHERE message_id = 'alice-dmarc-fail@example.com' AND kind = 'held'"), 1);
}

/// A DNS server on loopback that reads every query, over UDP and TCP, and never answers.
struct BlackHole {
    socket: UdpSocket,
}

impl BlackHole {
    fn start() -> BlackHole {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        let s = socket.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while s.recv_from(&mut buf).is_ok() {}
        });
        // The same port over TCP: connections are accepted and left hanging.
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for c in listener.incoming().flatten() {
                held.push(c);
            }
        });
        BlackHole { socket }
    }

    fn addr(&self) -> String {
        self.socket.local_addr().unwrap().to_string()
    }
}

#[test]
fn a_flood_of_forged_signed_mail_cannot_stall_ingest_on_dns() {
    let dns = BlackHole::start();
    let extra: &'static str = Box::leak(
        AGENT_CONFIG
            .replace(
                "verify_dkim_locally = false",
                &format!(
                    "verify_dkim_locally = true\ndns_servers = [\"{}\"]",
                    dns.addr()
                ),
            )
            .into_boxed_str(),
    );
    let desk = Desk::with(Opts {
        autoreply: false,
        notify: true,
        extra,
        ..Opts::default()
    });
    let (id, n) = open_ticket(&desk);
    let parent = message_id_of(&n.data);
    // Forged mails from alice, each signed (with the forger's own key) under a selector
    // the forger picked, so that a local DKIM check must ask DNS for the key: no trusted
    // verdict says anything.
    use mail_auth::common::crypto::Ed25519Key;
    use mail_auth::common::headers::HeaderWriter;
    let pkcs8 = Ed25519Key::generate_pkcs8().unwrap();
    for i in 0..12 {
        let raw = mail(
            ALICE,
            "support@example.com",
            &format!("Re: [#{id}] Invoice is wrong"),
            &format!("dns-flood-{i}@evil.test"),
            &format!("In-Reply-To: <{parent}>\r\nReferences: <{parent}>\r\n"),
            "#close",
        );
        let key = Ed25519Key::from_pkcs8_der(&pkcs8).unwrap();
        let sig = mail_auth::dkim::DkimSigner::from_key(key)
            .domain("example.com")
            .selector(format!("flood{i}"))
            .headers(["From", "To", "Subject"])
            .sign(&raw)
            .unwrap();
        let mut signed = sig.to_header().into_bytes();
        signed.extend(raw);
        desk.deliver(&signed);
    }
    desk.deliver(&mail(
        "Zed Customer <zed@customer.org>",
        "support@example.com",
        "Behind the flood",
        "zed-1@customer.org",
        "",
        "Hello?",
    ));
    // `run --once` over the whole folder: it must finish, with the customer's mail in.
    let (tx, rx) = std::sync::mpsc::channel();
    let config = desk.config.clone();
    std::thread::spawn(move || {
        let out = std::process::Command::new(crate::support::postdesk_bin())
            .arg("--config")
            .arg(&config)
            .args(["run", "--once", "--json"])
            .output();
        let _ = tx.send(out);
    });
    let finished = rx.recv_timeout(Duration::from_secs(60));
    assert!(finished.is_ok(), "ingest stalled on DNS for over a minute");
    assert!(eventually(Duration::from_secs(5), || desk.count(
        "SELECT COUNT(*) FROM messages WHERE message_id = 'zed-1@customer.org'"
    ) == 1));
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM messages WHERE kind = 'held'"),
        12
    );
    assert_eq!(desk.show(id)["status"], "open");
}
