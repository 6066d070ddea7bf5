//! The clock's chores on a real database, with a test clock: an SLA in business hours
//! across a holiday and a make-up working day warns once, breaches once (to the assignee
//! and the lead), and a pending ticket's timer waits.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::clock::FixedClock;
use crate::domain::Status;
use crate::intake::BatchItem;
use crate::intake::pipeline::Pipeline;
use crate::intake::unit::MAX_ALERT_MAILS_PER_HOUR;
use crate::outbound::templates::Templates;

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
[autoreply]
enabled = false
[notify]
enabled = false
[digest]
enabled = false
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
name = "all"
route.team = "support"
[calendar.office]
timezone = "Asia/Shanghai"
hours = "Mon-Fri 09:00-18:00"
holidays = ["2027-01-01"]
workdays = ["2027-01-02"]
[[sla]]
name = "std"
first_response = "8h"
calendar = "office"
"#;

struct Env {
    _dir: tempfile::TempDir,
    store: Store,
    cfg: Arc<Config>,
    templates: Arc<Templates>,
}

async fn env() -> Env {
    env_with("").await
}

async fn env_with(extra: &str) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("t.db")).await.unwrap();
    let text = format!("{CONFIG}{extra}");
    let cfg = Arc::new(crate::config::parse(&text, std::path::Path::new(""), &|_| None).unwrap());
    Env {
        _dir: dir,
        store,
        cfg,
        templates: Arc::new(Templates::load(None).unwrap()),
    }
}

impl Env {
    fn at(&self, t: DateTime<Utc>) -> Pipeline {
        Pipeline::new(
            self.cfg.clone(),
            self.templates.clone(),
            Arc::new(FixedClock(t)),
            crate::agent::token::Keyring::generate(),
            Arc::clone(self.store.raw()),
        )
    }

    async fn ingest(&self, t: DateTime<Utc>, raw: &[u8]) {
        let p = self.at(t);
        let mut tx = self.store.begin_write().await.unwrap();
        p.ingest_isolated(&mut tx, &BatchItem::new(raw, None, None))
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    async fn tick(&self, t: DateTime<Utc>) -> TickReport {
        tick(&self.store, &self.at(t)).await
    }

    async fn count(&self, sql: &str) -> i64 {
        crate::store::inspect::one(self.store.pool(), sql).await
    }
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

const MAIL: &[u8] = b"From: Ann <ann@customer.org>\r\nTo: support@example.com\r\nSubject: Where is my parcel\r\nMessage-ID: <sla-1@customer.org>\r\n\r\nIt has been two weeks.\r\n";

#[tokio::test]
async fn business_hours_holiday_and_make_up_day_warn_then_breach_once_each() {
    let e = env().await;
    // Thursday 2026-12-31 17:00 in Shanghai. 8 business hours: one on Thursday, none on
    // the holiday (Friday), seven on the make-up Saturday: due Sat 16:00 = 08:00 UTC;
    // the warning at 80 % (6.4 h) is Sat 14:24 = 06:24 UTC.
    e.ingest(utc(2026, 12, 31, 9, 0), MAIL).await;
    assert_eq!(
        e.count("SELECT COUNT(*) FROM tickets WHERE sla_policy = 'std' AND assignee = 'bob'")
            .await,
        1
    );
    assert_eq!(
        e.tick(utc(2027, 1, 1, 12, 0)).await.total(),
        0,
        "the holiday counts nothing"
    );
    assert_eq!(e.tick(utc(2027, 1, 2, 6, 20)).await.total(), 0);
    let r = e.tick(utc(2027, 1, 2, 6, 25)).await;
    assert_eq!((r.sla_warnings, r.sla_breaches), (1, 0));
    assert_eq!(
        e.tick(utc(2027, 1, 2, 6, 26)).await.total(),
        0,
        "warned once"
    );
    assert_eq!(e.tick(utc(2027, 1, 2, 7, 59)).await.total(), 0);
    let r = e.tick(utc(2027, 1, 2, 8, 1)).await;
    assert_eq!((r.sla_warnings, r.sla_breaches), (0, 1));
    assert_eq!(
        e.tick(utc(2027, 1, 4, 8, 0)).await.total(),
        0,
        "breached once"
    );
    assert_eq!(
        e.count(
            "SELECT COUNT(*) FROM outbox WHERE kind = 'notification' AND rcpt_to LIKE '%bob@%'"
        )
        .await,
        2,
        "the warning and the breach to the assignee"
    );
    assert_eq!(
        e.count(
            "SELECT COUNT(*) FROM outbox WHERE kind = 'notification' AND rcpt_to LIKE '%carol@%'"
        )
        .await,
        1,
        "the breach to the lead"
    );
}

#[tokio::test]
async fn a_pending_ticket_waits_and_an_answer_stops_the_timer() {
    let e = env().await;
    // Monday 2027-01-04 09:00 Shanghai = 01:00 UTC; due 17:00 = 09:00 UTC.
    e.ingest(utc(2027, 1, 4, 1, 0), MAIL).await;
    let mut conn = e.store.pool().acquire().await.unwrap();
    // Pending from 10:00 to 12:00 Shanghai: two hours later, 19:00 → Tue 10:00 = 02:00 UTC.
    crate::store::tickets::set_status(&mut conn, 1, Status::Pending, "2027-01-04T02:00:00.000000Z")
        .await
        .unwrap();
    crate::store::tickets::set_status(&mut conn, 1, Status::Open, "2027-01-04T04:00:00.000000Z")
        .await
        .unwrap();
    drop(conn);
    assert_eq!(
        e.tick(utc(2027, 1, 4, 9, 30)).await.sla_breaches,
        0,
        "the pause moved it"
    );
    assert_eq!(e.tick(utc(2027, 1, 5, 2, 1)).await.sla_breaches, 1);
}

#[tokio::test]
async fn one_customer_cannot_bury_the_on_call_list_in_red_alerts() {
    let e = env_with("[alerts]\non_call = [\"oncall@example.com\"]\n").await;
    let t0 = utc(2027, 1, 4, 1, 0);
    for i in 0..5 {
        let mail = format!(
            "From: Zed <zed@customer.org>\r\nTo: support@example.com\r\nSubject: Complaint {i}\r\nMessage-ID: <legal-{i}@customer.org>\r\n\r\nMy lawyer will file a lawsuit against you.\r\n"
        );
        e.ingest(t0 + chrono::Duration::minutes(i), mail.as_bytes())
            .await;
    }
    assert_eq!(
        e.count("SELECT COUNT(*) FROM alerts").await,
        5,
        "every alert is recorded"
    );
    assert_eq!(
        e.count("SELECT COUNT(*) FROM tickets WHERE forced_human IS NOT NULL")
            .await,
        5
    );
    assert_eq!(
        e.count("SELECT COUNT(*) FROM outbox WHERE rcpt_to LIKE '%oncall@%'")
            .await,
        MAX_ALERT_MAILS_PER_HOUR,
        "only the first ones are mailed"
    );
    // An hour later the customer's alerts are mailed again.
    let later = b"From: Zed <zed@customer.org>\r\nTo: support@example.com\r\nSubject: Again\r\nMessage-ID: <legal-9@customer.org>\r\n\r\nI am suing you.\r\n";
    e.ingest(t0 + chrono::Duration::minutes(90), later).await;
    assert_eq!(
        e.count("SELECT COUNT(*) FROM outbox WHERE rcpt_to LIKE '%oncall@%'")
            .await,
        MAX_ALERT_MAILS_PER_HOUR + 1
    );
}
