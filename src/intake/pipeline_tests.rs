//! Pipeline tests on an on-disk SQLite database, without servers: dedup, isolation of bad
//! messages, order independence and the subject window.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::clock::FixedClock;
use crate::store::Store;

const CONFIG: &str = r#"
[database]
path = "unused.db"
[[mailbox]]
name = "support"
host = "127.0.0.1"
username = "support"
password = "x"
addresses = ["support@example.com"]
[smtp]
host = "127.0.0.1"
from = "Support <support@example.com>"
"#;

struct Env {
    _dir: tempfile::TempDir,
    store: Store,
    cfg: Arc<Config>,
    templates: Arc<Templates>,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("t.db")).await.unwrap();
    let cfg = Arc::new(crate::config::parse(CONFIG, std::path::Path::new(""), &|_| None).unwrap());
    Env {
        _dir: dir,
        store,
        cfg,
        templates: Arc::new(Templates::load(None).unwrap()),
    }
}

impl Env {
    fn pipeline_at(&self, t: DateTime<Utc>) -> Pipeline {
        Pipeline::new(
            self.cfg.clone(),
            self.templates.clone(),
            Arc::new(FixedClock(t)),
            crate::agent::token::Keyring::generate(),
            Arc::clone(self.store.raw()),
        )
    }

    async fn ingest(&self, p: &Pipeline, raw: &[u8]) -> Outcome {
        let mut tx = self.store.begin_write().await.unwrap();
        let o = p
            .ingest_isolated(&mut tx, &BatchItem::new(raw, None, None))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        o
    }

    async fn ingest_batch(&self, p: &Pipeline, raws: &[&[u8]]) -> Vec<Outcome> {
        let items: Vec<BatchItem<'_>> =
            raws.iter().map(|r| BatchItem::new(r, None, None)).collect();
        let mut tx = self.store.begin_write().await.unwrap();
        let outcomes = p.ingest_many(&mut tx, &items).await.unwrap();
        tx.commit().await.unwrap();
        outcomes
    }

    async fn scalar(&self, sql: &'static str) -> i64 {
        crate::store::inspect::one(self.store.pool(), sql).await
    }

    /// Message-ID → ticket, for inbound messages.
    async fn grouping(&self) -> Vec<Vec<String>> {
        let rows: Vec<(String, i64)> = crate::store::inspect::all(self.store.pool(), "SELECT message_id, ticket_id FROM messages WHERE direction = 'inbound' AND ticket_id IS NOT NULL").await;
        let mut by_ticket: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for (m, t) in rows {
            by_ticket.entry(t).or_default().push(m);
        }
        let mut groups: Vec<Vec<String>> = by_ticket
            .into_values()
            .map(|mut v| {
                v.sort();
                v
            })
            .collect();
        groups.sort();
        groups
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap()
}

fn mail(from: &str, subject: &str, id: Option<&str>, extra: &str, body: &str) -> Vec<u8> {
    let id = id
        .map(|i| format!("Message-ID: <{i}>\r\n"))
        .unwrap_or_default();
    format!(
        "Return-Path: <{from}>\r\nFrom: {from}\r\nTo: support@example.com\r\nSubject: {subject}\r\n{id}Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n{extra}\r\n{body}\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn a_message_that_fails_processing_is_kept_as_unprocessable_and_the_batch_goes_on() {
    let e = env().await;
    let p = e.pipeline_at(t0());
    // Break the schema under the pipeline: every ticket insert now fails.
    crate::store::inspect::execute(e.store.pool(), "DROP TABLE participants").await;
    let raw = mail("a@c.org", "Hello", Some("x1@c.org"), "", "body");
    let mut tx = e.store.begin_write().await.unwrap();
    let other = mail("b@c.org", "Other", Some("x2@c.org"), "", "b");
    // Through the batch path: the batch fails as a whole, is replayed one by one, and
    // each message ends up unprocessable.
    let outcomes = p
        .ingest_many(
            &mut tx,
            &[
                BatchItem::new(&raw, None, None),
                BatchItem::new(&other, None, None),
            ],
        )
        .await
        .unwrap();
    let (first, second) = (outcomes[0].clone(), outcomes[1].clone());
    tx.commit().await.unwrap();
    assert!(matches!(first, Outcome::Unprocessable { .. }), "{first:?}");
    assert!(
        matches!(second, Outcome::Unprocessable { .. }),
        "{second:?}"
    );
    // Raw bytes kept, no half-written ticket left behind by the rolled-back savepoint.
    assert_eq!(
        e.scalar("SELECT COUNT(*) FROM messages WHERE kind = 'unprocessable'")
            .await,
        2
    );
    assert_eq!(e.scalar("SELECT COUNT(*) FROM tickets").await, 0);
    let first = e.scalar("SELECT MIN(id) FROM messages").await;
    let mut conn = e.store.pool().acquire().await.unwrap();
    let stored = crate::store::messages::message_raw(&mut conn, e.store.raw(), first)
        .await
        .unwrap();
    assert_eq!(stored.as_deref(), Some(raw.as_slice()));
    let problem: String = crate::store::inspect::one(
        e.store.pool(),
        "SELECT problems FROM messages ORDER BY id LIMIT 1",
    )
    .await;
    assert!(problem.contains("participants"), "{problem}");
}

#[tokio::test]
async fn mail_without_message_id_dedups_by_its_synthetic_id() {
    let e = env().await;
    let p = e.pipeline_at(t0());
    let body = mail("a@c.org", "No id", None, "", "same body");
    let mut copy = b"Delivered-To: sales@example.com\r\n".to_vec();
    copy.extend_from_slice(&body);
    assert!(matches!(
        e.ingest(&p, &body).await,
        Outcome::NewTicket { .. }
    ));
    assert!(matches!(
        e.ingest(&p, &copy).await,
        Outcome::Duplicate { .. }
    ));
    assert!(matches!(
        e.ingest(&p, &body).await,
        Outcome::Duplicate { .. }
    ));
    assert_eq!(
        e.scalar("SELECT COUNT(*) FROM messages WHERE direction = 'inbound'")
            .await,
        1
    );
    assert_eq!(
        e.scalar("SELECT COUNT(*) FROM messages WHERE synthetic_id = 1")
            .await,
        1
    );
}

#[tokio::test]
async fn a_reused_message_id_with_other_content_keeps_both_messages() {
    let e = env().await;
    let p = e.pipeline_at(t0());
    e.ingest(&p, &mail("a@c.org", "First", Some("same@c.org"), "", "one"))
        .await;
    let second = e
        .ingest(
            &p,
            &mail("a@c.org", "Second", Some("same@c.org"), "", "two"),
        )
        .await;
    assert!(!matches!(second, Outcome::Duplicate { .. }), "{second:?}");
    // And a copy of the second is still recognised as a copy.
    let third = e
        .ingest(
            &p,
            &mail("a@c.org", "Second", Some("same@c.org"), "", "two"),
        )
        .await;
    assert!(matches!(third, Outcome::Duplicate { .. }), "{third:?}");
    assert_eq!(
        e.scalar("SELECT COUNT(*) FROM messages WHERE direction = 'inbound'")
            .await,
        2
    );
}

#[tokio::test]
async fn a_reused_message_id_is_told_apart_within_a_batch_and_across_batches() {
    // The id a reused Message-ID is stored under is only looked up when the plain id is
    // taken, in the database or earlier in the same batch: both paths must see it.
    let e = env().await;
    let p = e.pipeline_at(t0());
    let one = mail("a@c.org", "First", Some("same@c.org"), "", "one");
    let two = mail("a@c.org", "Second", Some("same@c.org"), "", "two");
    let three = mail("a@c.org", "Third", Some("same@c.org"), "", "three");
    let dups = |outcomes: Vec<Outcome>| -> Vec<bool> {
        outcomes
            .iter()
            .map(|o| matches!(o, Outcome::Duplicate { .. }))
            .collect()
    };
    let first = e.ingest_batch(&p, &[&one, &two, &two, &one]).await;
    assert_eq!(dups(first), [false, false, true, true]);
    let second = e.ingest_batch(&p, &[&two, &three, &one, &three]).await;
    assert_eq!(dups(second), [true, false, true, true]);
    assert_eq!(
        e.scalar("SELECT COUNT(*) FROM messages WHERE direction = 'inbound'")
            .await,
        3
    );
}

#[tokio::test]
async fn arrival_order_does_not_change_the_tickets() {
    // Two conversations: a root with a reply chain and a sibling reply, and an unrelated one.
    // One customer's (ann's second address would be a stranger: see
    // `a_reply_from_outside_the_thread_never_joins_it_in_any_order`).
    let msgs: Vec<Vec<u8>> = vec![
        mail("ann@c.org", "Printer", Some("a1@c.org"), "", "root"),
        mail(
            "ann@c.org",
            "Re: Printer",
            Some("a2@c.org"),
            "In-Reply-To: <a1@c.org>\r\nReferences: <a1@c.org>\r\n",
            "r1",
        ),
        mail(
            "ann@c.org",
            "Re: Printer",
            Some("a3@c.org"),
            "In-Reply-To: <a2@c.org>\r\nReferences: <a1@c.org> <a2@c.org>\r\n",
            "r2",
        ),
        mail(
            "ann@c.org",
            "Re: Printer",
            Some("a4@c.org"),
            "In-Reply-To: <a1@c.org>\r\nReferences: <a1@c.org>\r\n",
            "r3",
        ),
        mail("cid@c.org", "Scanner", Some("b1@c.org"), "", "other"),
        mail(
            "cid@c.org",
            "Re: Scanner",
            Some("b2@c.org"),
            "In-Reply-To: <b1@c.org>\r\nReferences: <b1@c.org>\r\n",
            "other reply",
        ),
    ];
    let expected = vec![
        vec!["a1@c.org", "a2@c.org", "a3@c.org", "a4@c.org"],
        vec!["b1@c.org", "b2@c.org"],
    ];
    // Every permutation of the six would be 720 databases; a fixed set of orders covers
    // replies-first, interleaved and reversed arrival.
    let mut orders: Vec<Vec<usize>> = vec![
        vec![0, 1, 2, 3, 4, 5],
        vec![5, 4, 3, 2, 1, 0],
        vec![2, 3, 1, 0, 5, 4],
        vec![3, 5, 2, 4, 1, 0],
        vec![1, 4, 3, 5, 0, 2],
        vec![2, 0, 5, 1, 4, 3],
    ];
    // Plus 40 seeded shuffles.
    {
        use rand::SeedableRng;
        use rand::seq::SliceRandom;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..40 {
            let mut o: Vec<usize> = (0..msgs.len()).collect();
            o.shuffle(&mut rng);
            orders.push(o);
        }
    }
    for order in orders {
        // One message per transaction...
        let e = env().await;
        let p = e.pipeline_at(t0());
        for i in &order {
            e.ingest(&p, &msgs[*i]).await;
        }
        let got = e.grouping().await;
        assert_eq!(got, expected, "order {order:?}, one by one");
        // ...and all of them in one batch, where later decisions see earlier ones only in
        // memory (merges included).
        let e = env().await;
        let p = e.pipeline_at(t0());
        let items: Vec<BatchItem<'_>> = order
            .iter()
            .map(|i| BatchItem::new(&msgs[*i], None, None))
            .collect();
        let mut tx = e.store.begin_write().await.unwrap();
        let outcomes = p.ingest_many(&mut tx, &items).await.unwrap();
        tx.commit().await.unwrap();
        assert!(
            outcomes
                .iter()
                .all(|o| !matches!(o, Outcome::Unprocessable { .. })),
            "{outcomes:?}"
        );
        let got = e.grouping().await;
        assert_eq!(got, expected, "order {order:?}, one batch");
        let merged_rows = e.scalar("SELECT COUNT(*) FROM messages m JOIN tickets t ON t.id = m.ticket_id WHERE t.merged_into IS NOT NULL").await;
        assert_eq!(merged_rows, 0, "no message is left on a merged-away ticket");
    }
}

#[tokio::test]
async fn the_subject_rule_only_holds_within_its_window() {
    let e = env().await;
    let p = e.pipeline_at(t0());
    e.ingest(
        &p,
        &mail("ann@c.org", "Login broken", Some("w1@c.org"), "", "x"),
    )
    .await;
    let later = e.pipeline_at(t0() + chrono::Duration::days(3));
    let o = e
        .ingest(
            &later,
            &mail("ann@c.org", "RE: Login broken", Some("w2@c.org"), "", "y"),
        )
        .await;
    assert!(
        matches!(
            o,
            Outcome::Joined {
                reason: MatchReason::SubjectSender,
                ..
            }
        ),
        "{o:?}"
    );
    let much_later = e.pipeline_at(t0() + chrono::Duration::days(30));
    let o = e
        .ingest(
            &much_later,
            &mail("ann@c.org", "Re: Login broken", Some("w3@c.org"), "", "z"),
        )
        .await;
    assert!(matches!(o, Outcome::NewTicket { .. }), "{o:?}");
    // Someone else with the same subject never joins by subject.
    let o = e
        .ingest(
            &later,
            &mail("bob@c.org", "Re: Login broken", Some("w4@c.org"), "", "z"),
        )
        .await;
    assert!(matches!(o, Outcome::NewTicket { .. }), "{o:?}");
}

#[tokio::test]
async fn mutated_mail_never_fails_the_pipeline() {
    // Byte flips, truncations, duplicated and garbled headers of a few real shapes: every
    // mutant must be stored (as a message, a duplicate or unprocessable), never an error.
    use rand::{Rng, SeedableRng};
    let seeds: Vec<Vec<u8>> = vec![
        mail("a@c.org", "Hello", Some("s1@c.org"), "", "plain body"),
        include_bytes!("../../tests/fixtures/mail-parser-panic.eml").to_vec(),
        b"From: b@c.org\r\nSubject: =?gb2312?B?tPC4tDog?= x\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; x@y.org\r\nAction: failed\r\n\r\n--B--\r\n".to_vec(),
        b"From: c@c.org\r\nContent-Type: multipart/alternative; boundary=\"q\"\r\n\r\n--q\r\nContent-Type: text/html; charset=big5\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>=A4=A4=A4=E5</p>\r\n--q--\r\n".to_vec(),
    ];
    let e = env().await;
    let p = e.pipeline_at(t0());
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut tx = e.store.begin_write().await.unwrap();
    for i in 0..400 {
        let mut m = seeds[i % seeds.len()].clone();
        match rng.random_range(0..4) {
            0 => {
                for _ in 0..rng.random_range(1..20) {
                    let at = rng.random_range(0..m.len());
                    m[at] = rng.random();
                }
            }
            1 => m.truncate(rng.random_range(0..m.len())),
            2 => {
                let at = rng.random_range(0..m.len());
                let chunk = m[..at].to_vec();
                m.splice(0..0, chunk);
            }
            _ => {
                let at = rng.random_range(0..m.len());
                m.insert(at, b'\0');
                m.splice(
                    0..0,
                    b"From: \r\nFrom: x\r\nMessage-ID: <>\r\n".iter().copied(),
                );
            }
        }
        p.ingest_isolated(&mut tx, &BatchItem::new(&m, None, None))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let stored = e
        .scalar("SELECT COUNT(*) FROM messages WHERE direction = 'inbound'")
        .await;
    assert!(stored > 0);
    let broken =
        crate::store::inspect::count_rows(e.store.pool(), "PRAGMA foreign_key_check").await;
    assert_eq!(broken, 0, "foreign keys broken: {broken}");
    let ok: String = crate::store::inspect::one(e.store.pool(), "PRAGMA integrity_check").await;
    assert_eq!(ok, "ok");
}

#[tokio::test]
async fn an_address_lettre_refuses_still_gets_a_ticket_without_an_ack() {
    let e = env().await;
    let p = e.pipeline_at(t0());
    // mail-parser accepts this (older Japanese carriers hand such addresses out); lettre
    // cannot put it in a To header.
    let o = e
        .ingest(
            &p,
            &mail(
                "a..b@docomo.ne.jp",
                "Help",
                Some("dd1@docomo.ne.jp"),
                "",
                "x",
            ),
        )
        .await;
    assert!(
        matches!(
            o,
            Outcome::NewTicket {
                acknowledged: false,
                ..
            }
        ),
        "{o:?}"
    );
    assert_eq!(e.scalar("SELECT COUNT(*) FROM outbox").await, 0);
}

#[tokio::test]
async fn a_forged_bounce_does_not_mark_a_stranger_as_bouncing() {
    let e = env().await;
    let p = e.pipeline_at(t0());
    let dsn = "Return-Path: <>\r\nFrom: MAILER-DAEMON@evil.example\r\nTo: support@example.com\r\nSubject: Undelivered\r\nMessage-ID: <fake-dsn@evil.example>\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; evil.example\r\n\r\nFinal-Recipient: rfc822; victim@customer.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--B--\r\n";
    let o = e.ingest(&p, dsn.as_bytes()).await;
    assert!(matches!(o, Outcome::Bounce { ticket: None, .. }), "{o:?}");
    assert_eq!(
        e.scalar("SELECT COUNT(*) FROM address_status WHERE bouncing = 1")
            .await,
        0
    );
    // The victim still gets acknowledgements.
    let o = e
        .ingest(
            &p,
            &mail(
                "victim@customer.org",
                "Hello",
                Some("v1@customer.org"),
                "",
                "hi",
            ),
        )
        .await;
    assert!(
        matches!(
            o,
            Outcome::NewTicket {
                acknowledged: true,
                ..
            }
        ),
        "{o:?}"
    );
}

#[tokio::test]
async fn a_ticket_touched_earlier_in_the_batch_is_inside_the_subject_window() {
    let e = env().await;
    let p = e.pipeline_at(t0());
    e.ingest(
        &p,
        &mail("ann@c.org", "Invoice", Some("i1@c.org"), "", "where is it"),
    )
    .await;
    // Ten days later (the window is seven): a reply by References touches the ticket, then
    // a second mail with only the subject arrives in the same batch.
    let later = e.pipeline_at(t0() + chrono::Duration::days(10));
    let m1 = mail(
        "ann@c.org",
        "Re: Invoice",
        Some("i2@c.org"),
        "In-Reply-To: <i1@c.org>\r\nReferences: <i1@c.org>\r\n",
        "still waiting",
    );
    let m2 = mail(
        "ann@c.org",
        "Re: Invoice",
        Some("i3@c.org"),
        "",
        "and another thing",
    );
    let mut tx = e.store.begin_write().await.unwrap();
    let out = later
        .ingest_many(
            &mut tx,
            &[
                BatchItem::new(&m1, None, None),
                BatchItem::new(&m2, None, None),
            ],
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(
        matches!(
            out[0],
            Outcome::Joined {
                reason: MatchReason::References,
                ..
            }
        ),
        "{out:?}"
    );
    assert!(
        matches!(
            out[1],
            Outcome::Joined {
                reason: MatchReason::SubjectSender,
                ..
            }
        ),
        "{out:?}"
    );
    assert_eq!(e.scalar("SELECT COUNT(*) FROM tickets").await, 1);
}

// ---- agent notifications (issue 3) ----------------------------------------------------

const ONE_AGENT: &str = "[[agent]]\nname = \"alice\"\nemail = \"alice@example.com\"\n";
const TWO_AGENTS: &str = "[[agent]]\nname = \"alice\"\nemail = \"alice@example.com\"\n\
                          [[agent]]\nname = \"bob\"\nemail = \"bob@example.com\"\n";

/// An Env whose configuration is [`CONFIG`] followed by `extra`.
async fn env_with(extra: &str) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("t.db")).await.unwrap();
    let text = format!("{CONFIG}{extra}");
    let cfg = Arc::new(crate::config::parse(&text, std::path::Path::new(""), &|_| None).unwrap());
    Env {
        _dir: dir,
        store,
        cfg,
        templates: Arc::new(crate::outbound::templates::Templates::load(None).unwrap()),
    }
}

/// One queued notification: its message row and outbox row, and the outbox bytes parsed
/// back.
struct Sent {
    ticket: i64,
    to: String,
    body: String,
    mail: crate::channels::email::parse::Inbound,
}

impl Sent {
    /// The agent token in the Reply-To `support+<token>@example.com`.
    fn token(&self) -> String {
        assert_eq!(self.mail.reply_to.len(), 1, "{:?}", self.mail.reply_to);
        let (base, tok) =
            crate::domain::address::split_plus(&self.mail.reply_to[0].address).unwrap();
        assert_eq!(base, "support@example.com");
        assert!(tok.starts_with('a'), "{tok}");
        tok.to_string()
    }
}

/// message ticket, to_addrs, body_text, match_reason, outbox ticket, raw, rcpt_to.
type NotificationRow = (i64, String, String, String, i64, Vec<u8>, String);

impl Env {
    /// Every notification, oldest first. Each has exactly one message row and one outbox
    /// row, on the same ticket, to the same single agent.
    async fn notifications(&self) -> Vec<Sent> {
        let rows: Vec<NotificationRow> = crate::store::inspect::all(self.store.pool(), "SELECT m.ticket_id, m.to_addrs, m.body_text, m.match_reason, o.ticket_id, o.raw, o.rcpt_to \
             FROM messages m JOIN outbox o ON o.message_row = m.id \
             WHERE m.kind = 'notification' AND o.kind = 'notification' \
               AND m.direction = 'outbound' ORDER BY m.id").await;
        assert_eq!(
            self.scalar("SELECT COUNT(*) FROM messages WHERE kind = 'notification'")
                .await,
            rows.len() as i64
        );
        assert_eq!(
            self.scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'notification'")
                .await,
            rows.len() as i64
        );
        rows.into_iter()
            .map(|(ticket, to, body, reason, out_ticket, raw, rcpt)| {
                assert_eq!(ticket, out_ticket);
                assert_eq!(reason, "outbound");
                let to: Vec<String> = serde_json::from_str(&to).unwrap();
                let rcpt: Vec<String> = serde_json::from_str(&rcpt).unwrap();
                assert_eq!(to.len(), 1, "{to:?}");
                assert_eq!(to, rcpt);
                Sent {
                    ticket,
                    to: to[0].clone(),
                    body,
                    mail: crate::channels::email::parse::parse(&raw),
                }
            })
            .collect()
    }

    async fn exec(&self, sql: &'static str) {
        crate::store::inspect::execute(self.store.pool(), sql).await;
    }
}

fn ticket_of(o: &Outcome) -> i64 {
    match o {
        Outcome::NewTicket { ticket, .. } | Outcome::Joined { ticket, .. } => *ticket,
        other => panic!("no ticket: {other:?}"),
    }
}

fn reply_to(id: &str) -> String {
    format!("In-Reply-To: <{id}>\r\nReferences: <{id}>\r\n")
}

#[tokio::test]
async fn a_new_ticket_notifies_the_agent_with_a_verifiable_token_and_the_context() {
    use crate::agent::token;
    let e = env_with(ONE_AGENT).await;
    let p = e.pipeline_at(t0());
    let o = e
        .ingest(
            &p,
            &mail(
                "Ann Lee <ann@c.org>",
                "Printer on fire",
                Some("n1@c.org"),
                "",
                "The printer in room 4 is on fire, please send help quickly.",
            ),
        )
        .await;
    assert!(
        matches!(
            o,
            Outcome::NewTicket {
                acknowledged: true,
                ..
            }
        ),
        "{o:?}"
    );
    let ticket = ticket_of(&o);
    let sent = e.notifications().await;
    assert_eq!(sent.len(), 1);
    let n = &sent[0];
    assert_eq!((n.ticket, n.to.as_str()), (ticket, "alice@example.com"));
    let tok = token::verify(p.keyring(), &n.token(), t0().timestamp()).unwrap();
    assert_eq!(tok.ticket, ticket);
    assert_eq!(tok.agent, token::identity_id("alice@example.com"));
    assert_eq!(
        tok.expires,
        t0().timestamp() + e.cfg.security.token_ttl.as_secs() as i64
    );
    for line in [
        format!("New ticket #{ticket}: Printer on fire"),
        "Customer:      Ann Lee <ann@c.org>".to_string(),
        "Tier:          standard".to_string(),
        "Open tickets:  1".to_string(),
        "Past tickets:  0".to_string(),
        "Status:        open".to_string(),
        "Priority:      normal".to_string(),
        "Assignee:      nobody".to_string(),
        "Matched by:    new_ticket".to_string(),
        "room 4 is on fire".to_string(),
        crate::commands::table::cheat_sheet()
            .lines()
            .next()
            .unwrap()
            .to_string(),
    ] {
        assert!(n.body.contains(&line), "{line:?} missing from:\n{}", n.body);
    }
    // In the ticket's agent thread, and stored so that the thread root finds the ticket.
    let root = crate::channels::email::compose::thread_root_id(ticket, &e.cfg.message_id_domain);
    assert_eq!(n.mail.in_reply_to, vec![root.clone()]);
    assert_eq!(n.mail.references, vec![root.clone()]);
    let refs: i64 = crate::store::inspect::one(
        e.store.pool(),
        &crate::store::inspect::bound(
            "SELECT COUNT(*) FROM message_refs r JOIN messages m ON m.id = r.message_row \
         WHERE m.kind = 'notification' AND r.ref_id = ?",
            &[&root.to_string()],
        ),
    )
    .await;
    assert_eq!(refs, 1);
    // The agent is not a participant: their mail must never pass for the customer's.
    assert_eq!(
        e.scalar("SELECT COUNT(*) FROM participants WHERE email = 'alice@example.com'")
            .await,
        0
    );
}

#[tokio::test]
async fn a_customer_reply_notifies_again_in_the_same_agent_thread() {
    let e = env_with(ONE_AGENT).await;
    let p = e.pipeline_at(t0());
    let ticket = ticket_of(
        &e.ingest(
            &p,
            &mail("ann@c.org", "Invoice", Some("r1@c.org"), "", "where is it"),
        )
        .await,
    );
    let o = e
        .ingest(
            &p,
            &mail(
                "ann@c.org",
                "Re: Invoice",
                Some("r2@c.org"),
                &reply_to("r1@c.org"),
                "still waiting",
            ),
        )
        .await;
    assert_eq!(ticket_of(&o), ticket);
    let sent = e.notifications().await;
    assert_eq!(sent.len(), 2);
    let root = crate::channels::email::compose::thread_root_id(ticket, &e.cfg.message_id_domain);
    for n in &sent {
        assert_eq!(n.ticket, ticket);
        assert_eq!(n.mail.references, vec![root.clone()]);
    }
    assert_ne!(sent[0].mail.message_id, sent[1].mail.message_id);
    assert_eq!(sent[0].mail.subject, sent[1].mail.subject);
    assert!(
        sent[1].body.contains(&format!(
            "New message from the customer on ticket #{ticket}"
        )),
        "{}",
        sent[1].body
    );
    assert!(sent[1].body.contains("Matched by:    references"));
    assert!(sent[1].body.contains("still waiting"));

    // Someone outside the ticket answering the notification itself (forwarded to them) is
    // held there: threading headers alone admit nobody...
    let o = e
        .ingest(
            &p,
            &mail(
                "carol@c.org",
                "Something else",
                Some("r3@c.org"),
                &reply_to(&sent[0].mail.message_id),
                "about that notification",
            ),
        )
        .await;
    assert_eq!(
        o,
        Outcome::Held {
            row: e
                .scalar("SELECT id FROM messages WHERE message_id = 'r3@c.org'")
                .await,
            ticket: Some(ticket),
        }
    );
    // ...and naming only the agents' thread root leads nowhere, for the customer as for a
    // stranger: the root's id is guessable, and only customers' own mail is looked up in
    // reverse.
    let root_only = format!("References: <{root}>\r\n");
    for (from, id) in [
        ("ann@c.org", "r4@c.org"),
        ("mallory@evil.example", "r5@evil.example"),
    ] {
        let o = e
            .ingest(&p, &mail(from, "Unrelated", Some(id), &root_only, "x"))
            .await;
        assert!(matches!(o, Outcome::NewTicket { .. }), "{from}: {o:?}");
    }
}

#[tokio::test]
async fn a_reply_from_outside_the_thread_never_joins_it_in_any_order() {
    // Ann's conversation, and bob (never copied on it) answering its first mail.
    let msgs: Vec<Vec<u8>> = vec![
        mail("ann@c.org", "Printer", Some("a1@c.org"), "", "root"),
        mail(
            "ann@c.org",
            "Re: Printer",
            Some("a2@c.org"),
            &reply_to("a1@c.org"),
            "more",
        ),
        mail(
            "bob@c.org",
            "Re: Printer",
            Some("b1@c.org"),
            &reply_to("a1@c.org"),
            "me too",
        ),
    ];
    for order in [[0, 1, 2], [2, 0, 1], [1, 2, 0], [2, 1, 0]] {
        let e = env().await;
        let p = e.pipeline_at(t0());
        for i in order {
            e.ingest(&p, &msgs[i]).await;
        }
        // Ann's messages share one ticket, which is hers.
        let anns: Vec<(i64, String)> = crate::store::inspect::all(e.store.pool(), "SELECT DISTINCT m.ticket_id, c.email FROM messages m JOIN tickets t ON t.id = m.ticket_id \
             JOIN customers c ON c.id = t.customer_id WHERE m.message_id IN ('a1@c.org', 'a2@c.org')").await;
        assert_eq!(anns.len(), 1, "order {order:?}: {anns:?}");
        assert_eq!(anns[0].1, "ann@c.org", "order {order:?}");
        // Bob's is held on it, or is a ticket of his own; never part of her conversation.
        let (kind, ticket): (String, Option<i64>) = crate::store::inspect::row(
            e.store.pool(),
            "SELECT kind, ticket_id FROM messages WHERE message_id = 'b1@c.org'",
        )
        .await;
        let on_anns = ticket == Some(anns[0].0);
        assert!(
            (on_anns && kind == "held") || (!on_anns && kind == "customer"),
            "order {order:?}: {kind} on {ticket:?}"
        );
        assert_eq!(
            e.scalar(
                "SELECT COUNT(*) FROM participants WHERE email = 'bob@c.org' \
                 AND ticket_id = (SELECT ticket_id FROM messages WHERE message_id = 'a1@c.org')"
            )
            .await,
            0,
            "order {order:?}: bob became a participant of ann's ticket"
        );
    }
}

#[tokio::test]
async fn threads_of_two_customers_are_linked_in_one_batch_never_merged() {
    // Ann's and bob's replies to carol's mail (each copies carol, not each other), then
    // carol's mail itself, all in one batch: two tickets, linked.
    let cc = "Cc: carol@c.org\r\n";
    let msgs: Vec<Vec<u8>> = vec![
        mail(
            "ann@c.org",
            "Re: Outage",
            Some("x1@c.org"),
            &format!("{cc}{}", reply_to("p@c.org")),
            "a",
        ),
        mail(
            "bob@c.org",
            "Re: Outage",
            Some("x2@c.org"),
            &format!("{cc}{}", reply_to("p@c.org")),
            "b",
        ),
        mail("carol@c.org", "Outage", Some("p@c.org"), "", "root"),
    ];
    let e = env().await;
    let p = e.pipeline_at(t0());
    let items: Vec<BatchItem<'_>> = msgs.iter().map(|m| BatchItem::new(m, None, None)).collect();
    let mut tx = e.store.begin_write().await.unwrap();
    p.ingest_many(&mut tx, &items).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        e.scalar("SELECT COUNT(*) FROM tickets WHERE merged_into IS NULL")
            .await,
        2
    );
    assert_eq!(e.scalar("SELECT COUNT(*) FROM ticket_links").await, 1);
    assert_eq!(
        e.scalar(
            "SELECT COUNT(*) FROM ticket_links l JOIN messages m ON m.id = l.message_row \
             WHERE m.message_id = 'p@c.org'"
        )
        .await,
        1,
        "the link names the message that made it"
    );
}

#[tokio::test]
async fn automatic_mail_bounces_copies_and_our_own_mail_notify_nobody() {
    let e = env_with(ONE_AGENT).await;
    let p = e.pipeline_at(t0());
    let first = mail("ann@c.org", "Help", Some("q1@c.org"), "", "please");
    let ticket = ticket_of(&e.ingest(&p, &first).await);
    assert_eq!(e.notifications().await.len(), 1);

    let auto = mail(
        "ann@c.org",
        "Out of office: Re: Help",
        Some("q2@c.org"),
        &format!("Auto-Submitted: auto-replied\r\n{}", reply_to("q1@c.org")),
        "I am away",
    );
    let o = e.ingest(&p, &auto).await;
    assert_eq!(ticket_of(&o), ticket, "the auto-reply is on the ticket");
    let bounce = format!(
        "Return-Path: <>\r\nFrom: MAILER-DAEMON@c.org\r\nTo: support@example.com\r\nSubject: Undelivered\r\nMessage-ID: <q3@c.org>\r\n{}Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; c.org\r\n\r\nFinal-Recipient: rfc822; ann@c.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--B--\r\n",
        reply_to("q1@c.org")
    );
    let o = e.ingest(&p, bounce.as_bytes()).await;
    assert!(
        matches!(o, Outcome::Bounce { ticket: Some(t), .. } if t == ticket),
        "{o:?}"
    );
    let copy = e.ingest(&p, &first).await;
    assert!(matches!(copy, Outcome::Duplicate { .. }), "{copy:?}");
    let own = mail(
        "support@example.com",
        "Re: Help",
        Some("q4@c.org"),
        &reply_to("q1@c.org"),
        "looped",
    );
    // Our own address takes no part in the ticket: a loop or a forgery, held there.
    let o = e.ingest(&p, &own).await;
    assert!(
        matches!(o, Outcome::Held { ticket: Some(t), .. } if t == ticket),
        "{o:?}"
    );
    assert_eq!(e.notifications().await.len(), 1);
}

#[tokio::test]
async fn held_notices_are_capped_per_hour_and_the_rest_come_as_one_digest() {
    let e = env_with(ONE_AGENT).await;
    let p = e.pipeline_at(t0());
    let ticket = ticket_of(
        &e.ingest(
            &p,
            &mail("ann@c.org", "Help", Some("h1@c.org"), "", "please"),
        )
        .await,
    );
    // Three forgeries as alice (no token, no authentication): each held.
    for i in 0..3 {
        let o = e
            .ingest(
                &p,
                &mail(
                    "alice@example.com",
                    "Re: Help http://evil.example/reset",
                    Some(&format!("forged-{i}@evil.example")),
                    &reply_to("h1@c.org"),
                    "#close",
                ),
            )
            .await;
        assert!(
            matches!(o, Outcome::Held { ticket: Some(t), .. } if t == ticket),
            "{o:?}"
        );
    }
    const NOTICES: &str = "SELECT COUNT(*) FROM messages WHERE kind = 'held_notice'";
    assert_eq!(e.scalar(NOTICES).await, 1, "one notice, not three");
    async fn digest_at(e: &Env, t: DateTime<Utc>) -> usize {
        let p = e.pipeline_at(t);
        let mut tx = e.store.begin_write().await.unwrap();
        let n = crate::agent::send_held_digests(&p, &mut tx, t)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        n
    }
    // Within the hour: nothing more.
    assert_eq!(digest_at(&e, t0() + chrono::Duration::minutes(30)).await, 0);
    // After it: one digest naming the two that were not announced.
    assert_eq!(digest_at(&e, t0() + chrono::Duration::minutes(61)).await, 1);
    assert_eq!(e.scalar(NOTICES).await, 2);
    let body: String = crate::store::inspect::one(
        e.store.pool(),
        "SELECT body_text FROM messages WHERE kind = 'held_notice' ORDER BY id DESC LIMIT 1",
    )
    .await;
    assert!(
        body.contains("Also held since the last notice (1)"),
        "{body}"
    );
    assert!(!body.contains("evil.example"), "{body}");
    assert!(body.contains("#release"), "{body}");
    // And nothing is announced twice.
    assert_eq!(
        digest_at(&e, t0() + chrono::Duration::minutes(200)).await,
        0
    );
}

#[tokio::test]
async fn notifications_off_sends_none() {
    let e = env_with(&format!("{ONE_AGENT}[notify]\nenabled = false\n")).await;
    assert!(!e.cfg.notify_enabled);
    let p = e.pipeline_at(t0());
    let o = e
        .ingest(&p, &mail("ann@c.org", "Help", Some("o1@c.org"), "", "x"))
        .await;
    assert!(
        matches!(
            o,
            Outcome::NewTicket {
                acknowledged: true,
                ..
            }
        ),
        "{o:?}"
    );
    assert!(e.notifications().await.is_empty());
    assert_eq!(e.scalar("SELECT COUNT(*) FROM outbox").await, 1);
}

#[tokio::test]
async fn with_two_agents_only_a_known_assignee_is_notified() {
    let e = env_with(TWO_AGENTS).await;
    let p = e.pipeline_at(t0());
    let ticket = ticket_of(
        &e.ingest(&p, &mail("ann@c.org", "Help", Some("s1@c.org"), "", "x"))
            .await,
    );
    let to = |sent: &[Sent]| -> Vec<String> { sent.iter().map(|n| n.to.clone()).collect() };
    assert_eq!(
        to(&e.notifications().await),
        ["alice@example.com", "bob@example.com"],
        "unassigned: every agent"
    );
    e.exec("UPDATE tickets SET assignee = 'bob'").await;
    e.ingest(
        &p,
        &mail(
            "ann@c.org",
            "Re: Help",
            Some("s2@c.org"),
            &reply_to("s1@c.org"),
            "y",
        ),
    )
    .await;
    let sent = e.notifications().await;
    assert_eq!(to(&sent[2..]), ["bob@example.com"]);
    assert!(
        sent[2].body.contains("Assignee:      bob"),
        "{}",
        sent[2].body
    );
    let tok = crate::agent::token::verify(p.keyring(), &sent[2].token(), t0().timestamp()).unwrap();
    assert_eq!(
        (tok.ticket, tok.agent),
        (ticket, crate::agent::token::identity_id("bob@example.com"))
    );
    // An assignee who is not (or no longer) configured: everybody, rather than nobody.
    e.exec("UPDATE tickets SET assignee = 'carol'").await;
    e.ingest(
        &p,
        &mail(
            "ann@c.org",
            "Re: Help",
            Some("s3@c.org"),
            &reply_to("s2@c.org"),
            "z",
        ),
    )
    .await;
    assert_eq!(
        to(&e.notifications().await[3..]),
        ["alice@example.com", "bob@example.com"]
    );
}

#[tokio::test]
async fn collaborators_are_notified_once_and_never_of_their_own_mail() {
    let e = env_with(ONE_AGENT).await;
    let p = e.pipeline_at(t0());
    let ticket = ticket_of(
        &e.ingest(
            &p,
            &mail("ann@c.org", "Contract", Some("c1@c.org"), "", "x"),
        )
        .await,
    );
    // Mixed case as typed, and the agent invited as well: each address is told once.
    crate::store::inspect::execute(
        e.store.pool(),
        &crate::store::inspect::bound(
            "INSERT INTO ticket_collaborators (ticket_id, email, added_by, created_at) \
         VALUES (?1, 'Legal@Partner.org', 'alice', 'x'), (?1, 'alice@example.com', 'alice', 'x')",
            &[&ticket.to_string()],
        ),
    )
    .await;
    e.ingest(
        &p,
        &mail(
            "ann@c.org",
            "Re: Contract",
            Some("c2@c.org"),
            &reply_to("c1@c.org"),
            "y",
        ),
    )
    .await;
    let sent = e.notifications().await;
    let to: Vec<&str> = sent.iter().map(|n| n.to.as_str()).collect();
    assert_eq!(
        to,
        [
            "alice@example.com",
            "alice@example.com",
            "legal@partner.org"
        ]
    );
    let tok = crate::agent::token::verify(p.keyring(), &sent[2].token(), t0().timestamp()).unwrap();
    assert_eq!(
        (tok.ticket, tok.agent),
        (
            ticket,
            crate::agent::token::identity_id("legal@partner.org")
        )
    );
    assert!(
        sent[2].body.contains("New message from the customer"),
        "{}",
        sent[2].body
    );
    // The collaborator writes: the agent hears of it as such, the collaborator does not.
    let o = e
        .ingest(
            &p,
            &mail(
                "legal@partner.org",
                "Re: Contract",
                Some("c3@c.org"),
                &reply_to("c1@c.org"),
                "signed",
            ),
        )
        .await;
    assert_eq!(ticket_of(&o), ticket);
    let sent = e.notifications().await;
    assert_eq!(sent.len(), 4);
    assert_eq!(sent[3].to, "alice@example.com");
    assert!(
        sent[3].body.contains(&format!(
            "New message from a collaborator on ticket #{ticket}"
        )),
        "{}",
        sent[3].body
    );
}

#[tokio::test]
async fn the_customer_language_is_stored_or_detected() {
    let e = env_with(ONE_AGENT).await;
    let p = e.pipeline_at(t0());
    let utf8 = "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n";
    e.ingest(
        &p,
        &mail(
            "wang@c.cn",
            "Order",
            Some("l1@c.cn"),
            utf8,
            "您好，我的订单到现在还没有收到，已经过了两个星期了。请帮我查一下物流信息，谢谢。",
        ),
    )
    .await;
    e.ingest(
        &p,
        &mail(
            "ann@c.org",
            "Order",
            Some("l2@c.org"),
            "",
            "Hello, my order has still not arrived after two weeks. Could you please check the tracking information for me? Thank you.",
        ),
    )
    .await;
    // What the customer record says wins over detection.
    e.exec("UPDATE customers SET language = 'de', tier = 'gold' WHERE email = 'ann@c.org'")
        .await;
    e.ingest(
        &p,
        &mail(
            "ann@c.org",
            "Re: Order",
            Some("l3@c.org"),
            &reply_to("l2@c.org"),
            "Any news?",
        ),
    )
    .await;
    let sent = e.notifications().await;
    assert_eq!(sent.len(), 3);
    assert!(
        sent[0].body.contains("Language:      zh"),
        "{}",
        sent[0].body
    );
    assert!(
        sent[0].body.contains("请帮我查一下物流信息"),
        "{}",
        sent[0].body
    );
    assert!(
        sent[1].body.contains("Language:      en"),
        "{}",
        sent[1].body
    );
    assert!(
        sent[1].body.contains("Tier:          standard"),
        "{}",
        sent[1].body
    );
    assert!(
        sent[2].body.contains("Language:      de"),
        "{}",
        sent[2].body
    );
    assert!(
        sent[2].body.contains("Tier:          gold"),
        "{}",
        sent[2].body
    );
}

#[tokio::test]
async fn ticket_counts_include_this_batch_and_reopening() {
    let e = env_with(ONE_AGENT).await;
    let p = e.pipeline_at(t0());
    e.ingest(&p, &mail("ann@c.org", "First", Some("k1@c.org"), "", "a"))
        .await;
    e.exec("UPDATE tickets SET status = 'resolved'").await;
    // Someone else's tickets never count.
    e.ingest(&p, &mail("bob@c.org", "Mine", Some("k0@c.org"), "", "b"))
        .await;
    let m2 = mail("ann@c.org", "Second", Some("k2@c.org"), "", "b");
    let m3 = mail("ann@c.org", "Third", Some("k3@c.org"), "", "c");
    let mut tx = e.store.begin_write().await.unwrap();
    let out = p
        .ingest_many(
            &mut tx,
            &[
                BatchItem::new(&m2, None, None),
                BatchItem::new(&m3, None, None),
            ],
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(
        out.iter().all(|o| matches!(o, Outcome::NewTicket { .. })),
        "{out:?}"
    );
    // The first ticket reopens on a (non-courtesy) reply: open again, no longer past.
    let o = e
        .ingest(
            &p,
            &mail(
                "ann@c.org",
                "Re: First",
                Some("k4@c.org"),
                &reply_to("k1@c.org"),
                "It is broken again.",
            ),
        )
        .await;
    assert!(matches!(o, Outcome::Joined { .. }), "{o:?}");
    let counts: Vec<(String, String, String)> = e
        .notifications()
        .await
        .iter()
        .map(|n| {
            let line = |key: &str| {
                n.body
                    .lines()
                    .find_map(|l| l.strip_prefix(key))
                    .unwrap()
                    .trim()
                    .to_string()
            };
            (
                line("Open tickets:"),
                line("Past tickets:"),
                line("Status:"),
            )
        })
        .collect();
    let s = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(
        counts,
        [
            s("1", "0", "open"),
            s("1", "0", "open"),
            s("1", "1", "open"),
            s("2", "1", "open"),
            s("3", "0", "open"),
        ]
    );
}

#[tokio::test]
async fn notifications_are_neither_capped_nor_suppressed_like_acknowledgements() {
    let e = env_with(ONE_AGENT).await;
    let p = e.pipeline_at(t0());
    let cap = i64::from(e.cfg.autoreply.max_per_sender_per_hour);
    for i in 0..cap + 2 {
        let id = format!("cap{i}@c.org");
        e.ingest(
            &p,
            &mail("ann@c.org", &format!("Question {i}"), Some(&id), "", "x"),
        )
        .await;
    }
    // Bulk mail (RFC 3834 says do not answer it) still reaches the agents.
    let o = e
        .ingest(
            &p,
            &mail(
                "news@c.org",
                "Newsletter",
                Some("nl@c.org"),
                "Precedence: bulk\r\n",
                "x",
            ),
        )
        .await;
    assert!(
        matches!(
            o,
            Outcome::NewTicket {
                acknowledged: false,
                ..
            }
        ),
        "{o:?}"
    );
    assert_eq!(
        e.scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'auto_reply'")
            .await,
        cap
    );
    assert_eq!(e.notifications().await.len() as i64, cap + 3);
}

// ---- similar issues (issue 15) ---------------------------------------------------------

#[tokio::test]
async fn a_new_ticket_lists_similar_open_tickets_of_its_category_from_others_within_the_window() {
    let rules = "[[rule]]\nname = \"refund\"\nwhen.any_keywords = [\"refund\"]\nset.category = \"refund\"\n\
                 [[rule]]\nname = \"outage\"\nwhen.any_keywords = [\"down\"]\nset.category = \"outage\"\n";
    let e = env_with(&format!("{ONE_AGENT}{rules}")).await;
    let at = |hours_before: i64| e.pipeline_at(t0() - chrono::Duration::hours(hours_before));
    let text = "The website is down and the login fails every time";
    let old = ticket_of(
        &e.ingest(
            &at(96),
            &mail("Old <old@c.org>", "Site down", Some("s1@c.org"), "", text),
        )
        .await,
    );
    let bob = ticket_of(
        &e.ingest(
            &at(2),
            &mail(
                "Bob <bob@c.org>",
                "Website down",
                Some("s2@c.org"),
                "",
                text,
            ),
        )
        .await,
    );
    let ann_before = ticket_of(
        &e.ingest(
            &at(1),
            &mail("Ann <ann@c.org>", "Login down", Some("s3@c.org"), "", text),
        )
        .await,
    );
    let refund = ticket_of(
        &e.ingest(
            &at(1),
            &mail(
                "Carl <carl@c.org>",
                "Refund",
                Some("s4@c.org"),
                "",
                "The website is down, the login fails, and I want a refund",
            ),
        )
        .await,
    );
    let unrelated = ticket_of(
        &e.ingest(
            &at(1),
            &mail(
                "Dora <dora@c.org>",
                "Parcel",
                Some("s5@c.org"),
                "",
                "My parcel is down the street at the wrong house",
            ),
        )
        .await,
    );
    let now = ticket_of(
        &e.ingest(
            &at(0),
            &mail("Ann <ann@c.org>", "Still down", Some("s6@c.org"), "", text),
        )
        .await,
    );
    let sent = e.notifications().await;
    let n = sent.iter().find(|s| s.ticket == now).unwrap();
    assert!(n.body.contains("SIMILAR OPEN TICKETS"), "{}", n.body);
    assert!(
        n.body.contains(&format!(
            "#{bob} by email from bob@c.org, open, similarity 0."
        )),
        "{}",
        n.body
    );
    // Outside the window, the same customer on the same channel, another category, other
    // words: not listed.
    for t in [old, ann_before, refund, unrelated] {
        assert!(
            !n.body.contains(&format!("  #{t} by")),
            "#{t} listed:\n{}",
            n.body
        );
    }
    assert!(n.body.contains(&format!("#problem {bob}")), "{}", n.body);
    // The first of them had nothing to be listed with.
    let first = sent.iter().find(|s| s.ticket == bob).unwrap();
    assert!(
        !first.body.contains("SIMILAR OPEN TICKETS"),
        "{}",
        first.body
    );
    // Every new ticket's terms are kept for the next ones.
    assert_eq!(e.scalar("SELECT COUNT(*) FROM ticket_terms").await, 6);
}
