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
            crate::commands::token::Keyring::generate(),
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

    async fn scalar(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(self.store.pool())
            .await
            .unwrap()
    }

    /// Message-ID → ticket, for inbound messages.
    async fn grouping(&self) -> Vec<Vec<String>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT message_id, ticket_id FROM messages WHERE direction = 'inbound' AND ticket_id IS NOT NULL",
        )
        .fetch_all(self.store.pool())
        .await
        .unwrap();
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
    sqlx::query("DROP TABLE participants")
        .execute(e.store.pool())
        .await
        .unwrap();
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
    let stored: Vec<u8> = sqlx::query_scalar(
        "SELECT r.data FROM raw_messages r JOIN messages m ON m.raw_id = r.id ORDER BY m.id LIMIT 1",
    )
    .fetch_one(e.store.pool())
    .await
    .unwrap();
    assert_eq!(stored, raw);
    let problem: String = sqlx::query_scalar("SELECT problems FROM messages ORDER BY id LIMIT 1")
        .fetch_one(e.store.pool())
        .await
        .unwrap();
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
async fn arrival_order_does_not_change_the_tickets() {
    // Two conversations: a root with a reply chain and a sibling reply, and an unrelated one.
    let msgs: Vec<Vec<u8>> = vec![
        mail("ann@c.org", "Printer", Some("a1@c.org"), "", "root"),
        mail(
            "bob@c.org",
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
    let broken = sqlx::query("PRAGMA foreign_key_check")
        .fetch_all(e.store.pool())
        .await
        .unwrap();
    assert!(broken.is_empty(), "foreign keys broken: {}", broken.len());
    let ok: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(e.store.pool())
        .await
        .unwrap();
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
