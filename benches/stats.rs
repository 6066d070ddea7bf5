//! `cargo bench --bench stats`: `postdesk stats` over a big desk, and what keeping the
//! figures costs.
//!
//! 1. **Stats.** Seeds a database (the real migrations) with BENCH_TICKETS tickets
//!    (default 1,000,000) spread over the past year, BENCH_MESSAGES_PER_TICKET messages
//!    each (default 5, so 5,000,000 messages), 200,000 customers, and each ticket's
//!    `ticket_facts` row drawn from a seeded PRNG (six agents, two teams, five categories,
//!    three channels, two tiers; response and resolution times, reopenings, breaches with
//!    their `sla_breached` events, bot outcomes, ratings). Then runs the real binary,
//!    `postdesk stats --json`, BENCH_RUNS times (default 5) for each question below and
//!    prints the median and the slowest wall time, process start included.
//! 2. **Keeping the figures.** On a fresh database, BENCH_FOLLOW_TICKETS tickets (default
//!    20,000) with a six-event timeline each, folded into `ticket_facts` by the real
//!    follower (`analytics::follower::catch_up`): events and tickets per second.
//! 3. **The timeline index.** 1,000,000 events inserted with and without
//!    `events_ticket` (the index analytics and SLA timers read timelines by).
//!
//! Under `cargo test --bench stats` the sizes are BENCH_TICKETS=20000,
//! BENCH_FOLLOW_TICKETS=2000 and one run: a smoke run of the same code.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use postdesk::analytics::facts::TicketFacts;
use postdesk::store::Store;
use sqlx::Connection;

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

const AGENTS: [&str; 6] = ["alice", "bob", "carol", "dave", "erin", "frank"];
const CATEGORIES: [&str; 5] = ["refund", "delivery", "login", "invoice", "product"];
const CHANNELS: [&str; 3] = ["email", "telegram", "matrix"];
const YEAR: i64 = 365 * 86_400;

fn env_or(name: &str, smoke: u64, full: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if is_smoke() { smoke } else { full })
}

/// `cargo test --bench` passes no `--bench` flag; `cargo bench` does.
fn is_smoke() -> bool {
    !std::env::args().any(|a| a == "--bench")
}

fn write_config(dir: &Path, db: &str) -> PathBuf {
    let path = dir.join(format!("{db}.toml"));
    let mut text = format!(
        r#"
[database]
path = "{db}.db"

[[mailbox]]
name = "support"
host = "127.0.0.1"
port = 143
security = "plain"
username = "support"
password = "unused"
folders = ["INBOX"]
addresses = ["support@example.com"]

[smtp]
host = "127.0.0.1"
port = 9
security = "plain"
from = "Example Support <support@example.com>"

[autoreply]
enabled = false

[notify]
enabled = false

[digest]
enabled = false

[[team]]
name = "billing"
members = ["alice", "bob", "carol"]
lead = "alice"

[[team]]
name = "tech"
members = ["dave", "erin", "frank"]
lead = "dave"

[[sla]]
name = "standard"
first_response = "8h"
resolution = "3d"
"#
    );
    for a in AGENTS {
        text.push_str(&format!(
            "\n[[agent]]\nname = \"{a}\"\nemail = \"{a}@example.com\"\nlead = {}\n",
            a == "alice" || a == "dave"
        ));
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The facts of ticket `i` (1-based) of `n`, created `created`.
fn facts(rng: &mut Rng, i: i64, created: i64) -> TicketFacts {
    let agent_ix = rng.below(7) as usize;
    let agent = AGENTS.get(agent_ix).map(|a| a.to_string());
    let team = match agent_ix {
        0..=2 => Some("billing".to_string()),
        3..=5 => Some("tech".to_string()),
        _ => None,
    };
    let answered = rng.chance(92);
    let first = answered.then(|| 60 + rng.below(8 * 3600) as i64);
    let next: Vec<i64> = (0..rng.below(3))
        .map(|_| 60 + rng.below(4 * 3600) as i64)
        .collect();
    let resolved = answered && rng.chance(85);
    let resolution = resolved.then(|| first.unwrap_or(0) + 600 + rng.below(3 * 86_400) as i64);
    let reopens = if resolved && rng.chance(8) { 1 } else { 0 };
    let has_sla = rng.chance(90);
    let breaches = if has_sla && rng.chance(6) { 1 } else { 0 };
    let bot = rng.chance(30);
    TicketFacts {
        ticket_id: i,
        created_at: created,
        channel: CHANNELS[rng.below(3) as usize].into(),
        category: (rng.chance(90)).then(|| CATEGORIES[rng.below(5) as usize].to_string()),
        team,
        agent,
        tier: if rng.chance(20) { "gold" } else { "standard" }.into(),
        status: if resolved { "resolved" } else { "open" }.into(),
        merged: false,
        first_response_s: first,
        next_response_s: next.clone(),
        resolved_at: resolution.map(|r| created + r),
        resolution_s: resolution,
        ever_resolved: resolved,
        reopens,
        last_reopened_at: (reopens > 0).then(|| created + resolution.unwrap_or(0) / 2),
        agent_replies: i64::from(answered) + next.len() as i64,
        fcr: resolved && next.is_empty() && reopens == 0,
        has_sla,
        sla_breaches: breaches,
        bot_answered: bot,
        bot_deflected: bot && rng.chance(40),
        bot_handoff: bot && rng.chance(35),
        corrected: rng.chance(3),
        rating: (resolved && rng.chance(25)).then(|| 1 + rng.below(5) as i64),
    }
}

async fn raw_conn(db: &Path) -> sqlx::SqliteConnection {
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite:{}", db.display()))
        .await
        .unwrap();
    for p in [
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = OFF",
        "PRAGMA cache_size = -262144",
    ] {
        sqlx::query(p).execute(&mut c).await.unwrap();
    }
    c
}

/// Seeds the big desk; returns the seconds it took.
async fn seed(db: &Path, tickets: i64, per_ticket: i64) -> f64 {
    let started = Instant::now();
    Store::open(db).await.unwrap().close().await;
    let mut c = raw_conn(db).await;
    let now = unix_now();
    let base = now - YEAR;
    let step = (YEAR as f64 / tickets as f64).max(1.0);
    let customers = (tickets / 5).max(1);
    let cte = |n: i64| {
        format!("WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < {n}) ")
    };
    let t = Instant::now();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "{}INSERT INTO customers (id, email, tier, created_at) \
         SELECT x, 'c' || x || '@customer.example', CASE WHEN x % 5 = 0 THEN 'gold' ELSE 'standard' END, \
         '2025-01-01T00:00:00.000000Z' FROM s",
        cte(customers)
    )))
    .execute(&mut c)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "{}INSERT INTO tickets (id, subject, subject_key, status, customer_id, token, created_at, updated_at, sla_policy) \
         SELECT x, 'Ticket ' || x, 'ticket ' || x, 'open', (x % {customers}) + 1, printf('%032d', x), \
         strftime('%Y-%m-%dT%H:%M:%fZ', {base} + CAST(x * {step} AS INTEGER), 'unixepoch'), \
         strftime('%Y-%m-%dT%H:%M:%fZ', {base} + CAST(x * {step} AS INTEGER), 'unixepoch'), 'standard' FROM s",
        cte(tickets)
    )))
    .execute(&mut c)
    .await
    .unwrap();
    println!(
        "  customers and tickets: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let messages = tickets * per_ticket;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "{}INSERT INTO messages (id, ticket_id, message_id, direction, kind, from_addr, subject, body_text, channel, match_reason, created_at) \
         SELECT x, (x - 1) / {per_ticket} + 1, 'm' || x || '@bench.example', \
         CASE WHEN x % 2 = 0 THEN 'outbound' ELSE 'inbound' END, \
         CASE WHEN x % 2 = 0 THEN 'agent_reply' ELSE 'customer' END, \
         'c' || ((x - 1) / {per_ticket} % {customers} + 1) || '@customer.example', 'Ticket', \
         'Hello, my order ' || x || ' has not arrived yet. Could you look into it?', 'email', 'new_ticket', \
         strftime('%Y-%m-%dT%H:%M:%fZ', {base} + CAST(((x - 1) / {per_ticket} + 1) * {step} AS INTEGER) + (x % {per_ticket}) * 600, 'unixepoch') \
         FROM s",
        cte(messages)
    )))
    .execute(&mut c)
    .await
    .unwrap();
    println!("  {messages} messages: {:.1} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let mut rng = Rng(0x5eed_0001);
    let mut batch = Vec::with_capacity(10_000);
    let mut breached = Vec::new();
    let mut tx = c.begin().await.unwrap();
    for i in 1..=tickets {
        let f = facts(&mut rng, i, base + (i as f64 * step) as i64);
        if f.sla_breaches > 0 {
            breached.push(i);
        }
        batch.push(f);
        if batch.len() == 10_000 {
            postdesk::store::analytics::put_facts(&mut tx, &batch)
                .await
                .unwrap();
            batch.clear();
        }
    }
    postdesk::store::analytics::put_facts(&mut tx, &batch)
        .await
        .unwrap();
    for chunk in breached.chunks(5_000) {
        let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO events (kind, ticket_id, data, created_at) ",
        );
        qb.push_values(chunk, |mut b, id| {
            b.push_bind("sla_breached")
                .push_bind(*id)
                .push_bind(r#"{"target":"first_response"}"#)
                .push_bind("2026-06-01T00:00:00.000000Z");
        });
        qb.build().execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    println!(
        "  {tickets} ticket facts, {} breach events: {:.1} s",
        breached.len(),
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let mut tx = c.begin().await.unwrap();
    let days = postdesk::store::analytics::roll_all(&mut tx).await.unwrap();
    sqlx::query("INSERT INTO settings (key, value) VALUES ('analytics_rollups_v1', '1')")
        .execute(&mut *tx)
        .await
        .unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM stats_daily")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    println!(
        "  daily rollups of {days} days ({rows} rows): {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // The facts are seeded, not followed: the follower starts after the seeded events.
    sqlx::query(
        "INSERT INTO event_cursors (name, last_id, updated_at) \
         SELECT 'analytics', COALESCE(MAX(id), 0), '2026-01-01T00:00:00Z' FROM events",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::query("ANALYZE").execute(&mut c).await.unwrap();
    started.elapsed().as_secs_f64()
}

fn stats_once(config: &Path, args: &[&str]) -> (f64, serde_json::Value) {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .arg("--config")
        .arg(config)
        .arg("stats")
        .arg("--json")
        .args(args)
        .env("POSTDESK_LOG", "warn")
        .output()
        .unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "stats {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (secs, serde_json::from_slice(&out.stdout).unwrap())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The follower over `n` tickets' timelines; (events, seconds).
async fn follow(dir: &Path, n: i64) -> (i64, f64) {
    let config = write_config(dir, "follow");
    let db = dir.join("follow.db");
    Store::open(&db).await.unwrap().close().await;
    let mut c = raw_conn(&db).await;
    let base = unix_now() - 30 * 86_400;
    let cte =
        format!("WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < {n}) ");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "{cte}INSERT INTO customers (id, email, created_at) SELECT x, 'c' || x || '@x.example', '2026-01-01T00:00:00Z' FROM s"
    )))
    .execute(&mut c)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "{cte}INSERT INTO tickets (id, subject, subject_key, status, customer_id, token, created_at, updated_at, sla_policy, assignee) \
         SELECT x, 'T', 't', 'resolved', x, printf('%032d', x), \
         strftime('%Y-%m-%dT%H:%M:%fZ', {base} + x * 60, 'unixepoch'), strftime('%Y-%m-%dT%H:%M:%fZ', {base} + x * 60, 'unixepoch'), \
         'standard', 'alice' FROM s"
    )))
    .execute(&mut c)
    .await
    .unwrap();
    // Six events per ticket, in the order the daemon writes them.
    let steps = [
        ("ticket_created", r#"{"customer_id":1,"linked_to":null}"#, 0),
        (
            "message_added",
            r#"{"direction":"inbound","kind":"customer","channel":"email"}"#,
            0,
        ),
        (
            "message_added",
            r#"{"direction":"outbound","kind":"agent_reply","channel":"email"}"#,
            1800,
        ),
        (
            "message_added",
            r#"{"direction":"inbound","kind":"customer","channel":"email"}"#,
            3600,
        ),
        (
            "message_added",
            r#"{"direction":"outbound","kind":"agent_reply","channel":"email"}"#,
            7200,
        ),
        ("status_changed", r#"{"from":"open","to":"resolved"}"#, 7300),
    ];
    let mut union = String::new();
    for (i, (kind, data, offset)) in steps.iter().enumerate() {
        if i > 0 {
            union.push_str(" UNION ALL ");
        }
        union.push_str(&format!(
            "SELECT {i} AS k, '{kind}' AS kind, '{data}' AS data, {offset} AS off"
        ));
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "{cte}, st AS ({union}) INSERT INTO events (kind, ticket_id, data, created_at) \
         SELECT st.kind, s.x, st.data, strftime('%Y-%m-%dT%H:%M:%fZ', {base} + s.x * 60 + st.off, 'unixepoch') \
         FROM s CROSS JOIN st ORDER BY s.x, st.k"
    )))
    .execute(&mut c)
    .await
    .unwrap();
    c.close().await.unwrap();
    let cfg = postdesk::config::load_with(&config, postdesk::config::Secrets::NotNeeded).unwrap();
    let store = Store::open(&db).await.unwrap();
    let started = Instant::now();
    let events = postdesk::analytics::follower::catch_up(
        &store,
        &postdesk::clock::SystemClock,
        Arc::new(cfg),
        false,
    )
    .await
    .unwrap();
    let secs = started.elapsed().as_secs_f64();
    let mut conn = store.pool().acquire().await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ticket_facts WHERE first_response_s = 1800 AND next_response_s = '3600' AND resolution_s = 7300")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(rows, n, "every ticket's facts, as the timeline says");
    (events as i64, secs)
}

/// Inserting `n` events with and without the timeline index; seconds each.
async fn index_cost(dir: &Path, n: i64) -> (f64, f64) {
    let mut out = [0.0; 2];
    for (k, with) in [true, false].into_iter().enumerate() {
        let db = dir.join(format!("events-{with}.db"));
        Store::open(&db).await.unwrap().close().await;
        let mut c = raw_conn(&db).await;
        sqlx::query("PRAGMA synchronous = FULL")
            .execute(&mut c)
            .await
            .unwrap();
        if !with {
            sqlx::query("DROP INDEX events_ticket")
                .execute(&mut c)
                .await
                .unwrap();
        }
        let started = Instant::now();
        // As ingest writes them: batches of 500, one transaction each.
        for b in 0..(n / 500) {
            let mut tx = c.begin().await.unwrap();
            let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO events (kind, ticket_id, data, created_at) ",
            );
            qb.push_values(0..500i64, |mut bld, i| {
                let x = b * 500 + i;
                bld.push_bind("message_added")
                    .push_bind(x / 3 + 1)
                    .push_bind(r#"{"direction":"inbound","kind":"customer","channel":"email"}"#)
                    .push_bind("2026-06-01T00:00:00.000000Z");
            });
            qb.build().execute(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
        }
        out[k] = started.elapsed().as_secs_f64();
    }
    (out[0], out[1])
}

fn main() {
    let tickets = env_or("BENCH_TICKETS", 20_000, 1_000_000) as i64;
    let per_ticket = env_or("BENCH_MESSAGES_PER_TICKET", 5, 5) as i64;
    let runs = env_or("BENCH_RUNS", 1, 5) as usize;
    let follow_n = env_or("BENCH_FOLLOW_TICKETS", 2_000, 20_000) as i64;
    let index_n = env_or("BENCH_INDEX_EVENTS", 20_000, 1_000_000) as i64;
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();

    println!("Seeding {tickets} tickets with {per_ticket} messages each over a year...");
    let config = write_config(dir.path(), "big");
    let secs = rt.block_on(seed(&dir.path().join("big.db"), tickets, per_ticket));
    let size = std::fs::metadata(dir.path().join("big.db")).map_or(0, |m| m.len());
    println!("Seeded in {secs:.1} s; database {} MB.", size / 1_000_000);

    let questions: [(&str, &[&str]); 6] = [
        ("last 7 days (the default)", &["--since", "7d"]),
        (
            "last 30 days, per day",
            &["--since", "30d", "--every", "day"],
        ),
        ("the whole year", &["--since", "366d"]),
        (
            "the whole year by category",
            &["--since", "366d", "--by", "category"],
        ),
        (
            "the whole year, team billing",
            &["--since", "366d", "--team", "billing"],
        ),
        (
            "the whole year, per week",
            &["--since", "366d", "--every", "week"],
        ),
    ];
    println!("\npostdesk stats --json, {runs} run(s) each, wall time with process start:");
    for (what, args) in questions {
        let mut times = Vec::with_capacity(runs);
        let mut new = 0;
        for _ in 0..runs {
            let (t, json) = stats_once(&config, args);
            times.push(t);
            new = json["total"]["team"]["tickets_new"]
                .as_i64()
                .or_else(|| json["periods"][0]["team"]["tickets_new"].as_i64())
                .unwrap_or(0);
        }
        let max = times.iter().copied().fold(0.0, f64::max);
        println!(
            "  {what:<32} median {:>6.0} ms, slowest {:>6.0} ms  ({new} tickets in range)",
            median(times) * 1000.0,
            max * 1000.0
        );
        assert!(new > 0, "{what}: the range has tickets");
    }

    println!("\nKeeping the figures: {follow_n} tickets, six events each, through the follower...");
    let (events, secs) = rt.block_on(follow(dir.path(), follow_n));
    println!(
        "  {events} events in {secs:.2} s: {:.0} events/s, {:.0} tickets/s",
        events as f64 / secs,
        follow_n as f64 / secs
    );

    println!("\nThe timeline index: {index_n} events in batches of 500, synchronous=FULL...");
    let (with, without) = rt.block_on(index_cost(dir.path(), index_n));
    println!(
        "  with events_ticket {with:.2} s, without {without:.2} s: {:+.1} %",
        (with / without - 1.0) * 100.0
    );
}
