//! `cargo bench --bench telegram`: chat messages per second from a local Telegram Bot API
//! server (`tests/it/support/telegram.rs`) through to tickets, beside the same messages
//! as mail from Dovecot.
//!
//! BENCH_MESSAGES (default 5,000; 300 without `--bench`, as `cargo test --all-targets`
//! runs it) messages from BENCH_MESSAGES / 3 customers, in English and Chinese, each
//! customer's first message opening a ticket and the rest joining it. The same texts are
//! queued once as Telegram updates and written once into a Dovecot user's Maildir as
//! mail (same sender, same subject). Each path is one `postdesk run --once --json` on a
//! fresh database (the real binary: start-up, migrations, triage and the final WAL
//! checkpoint count), acknowledgements and notifications off:
//!
//! - **Telegram**: `getUpdates` pages of 100 (the Bot API's most), each page and its
//!   cursor one transaction;
//! - **IMAP**: batches of 500 from Dovecot, as the ingest benchmark does.
//!
//! Correctness is checked first (every message stored once, one ticket per customer);
//! speed is only printed (benchmarks never assert wall-clock timings).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[allow(unused_imports)]
#[path = "../tests/it/support/mod.rs"]
mod support;

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::Value;
use support::telegram::{FakeTelegram, TOKEN};
use support::{Dovecot, postdesk_bin};

const PASSWORD: &str = "secret";

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("BENCH_MESSAGES")
        .ok()
        .map(|v| v.parse().expect("BENCH_MESSAGES: a number"))
        .unwrap_or(if bench_mode { 5_000 } else { 300 });
    assert!(n >= 3, "BENCH_MESSAGES must be at least 3");
    let customers = n / 3;
    let work = tempfile::Builder::new()
        .prefix("postdesk-bench-tg-")
        .tempdir()
        .unwrap();
    let dovecot = Dovecot::start(&[("mail", PASSWORD), ("empty", PASSWORD)]);
    assert!(dovecot.uids("mail", "INBOX").is_empty());
    assert!(dovecot.uids("empty", "INBOX").is_empty());
    let tg = FakeTelegram::start();

    // The same conversations twice: as updates, and as mail in the "mail" user's Maildir.
    let cur = dovecot.maildir("mail").join("cur");
    let owner = std::fs::metadata(dovecot.maildir("mail")).unwrap();
    for i in 0..n {
        let c = i % customers;
        let text = text_of(i, c);
        tg.customer_writes(1_000_000 + c as i64, &format!("Customer {c}"), &text);
        let raw = format!(
            "From: Customer {c} <cust{c}@example.org>\r\nTo: support@example.com\r\nSubject: Order {c}\r\nMessage-ID: <bench-{i}@example.org>\r\nDate: Mon, 07 Dec 2026 10:{:02}:{:02} +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{text}\r\n",
            (i / 60) % 60,
            i % 60
        );
        let name = format!(
            "{}.M{i}P1.bench,S={len},W={len}:2,",
            1_767_600_000 + i,
            len = raw.len()
        );
        let path = cur.join(&name);
        std::fs::write(&path, &raw).unwrap();
        std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid())).unwrap();
    }
    // Dovecot indexes the files at the first SELECT: pay that before measuring.
    assert_eq!(dovecot.uids("mail", "INBOX").len(), n);

    let bin = postdesk_bin();
    let mail_cfg = write_config(work.path(), "mail", dovecot.port, "mail", None);
    let tg_cfg = write_config(work.path(), "telegram", dovecot.port, "empty", Some(&tg));

    let (mail_report, mail_secs) = run_once(&bin, &mail_cfg);
    let mail_tickets = tickets(&bin, &mail_cfg);
    check(
        "IMAP",
        mail_report["fetched"] == n && mail_tickets == customers,
        &mail_report,
    );
    let (tg_report, tg_secs) = run_once(&bin, &tg_cfg);
    let tg_tickets = tickets(&bin, &tg_cfg);
    check(
        "Telegram",
        tg_report["fetched"] == n && tg_tickets == customers && tg.unconfirmed() == 0,
        &tg_report,
    );
    let pages = tg.calls("getUpdates").len();

    println!(
        "postdesk Telegram benchmark{}: {n} messages from {customers} customers (English and Chinese), \
         acknowledgements and notifications off",
        if bench_mode {
            ""
        } else {
            " (smoke test; `cargo bench --bench telegram` for the real run)"
        }
    );
    println!("| path | wall | msg/s |");
    println!("| --- | --- | --- |");
    println!(
        "| Telegram, local Bot API ({pages} getUpdates calls) | {tg_secs:.2} s | {:.0} |",
        n as f64 / tg_secs
    );
    println!(
        "| mail, IMAP from Dovecot | {mail_secs:.2} s | {:.0} |",
        n as f64 / mail_secs
    );
}

/// A customer's `i`-th message: the first asks, the rest follow up; a third in Chinese.
fn text_of(i: usize, c: usize) -> String {
    let first = i == c;
    let text = match (c % 3, first) {
        (0, true) => format!("退款什么时候到账？订单号 {c}，已经等了两个星期了。"),
        (0, false) => format!("请问订单 {c} 的退款有进展吗？谢谢。"),
        (1, true) => format!("Hello, my order {c} never arrived. Can you check the tracking?"),
        (1, false) => format!("Any news about order {c}? It has been a week."),
        (_, true) => format!("I was charged twice for order {c}, please refund one payment."),
        _ => format!("Following up on the double charge for order {c}."),
    };
    format!("{text} ({i})")
}

fn write_config(
    dir: &Path,
    name: &str,
    imap_port: u16,
    user: &str,
    tg: Option<&FakeTelegram>,
) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let mut text = format!(
        r#"
[database]
path = "{name}.db"

[[mailbox]]
name = "support"
host = "127.0.0.1"
port = {imap_port}
security = "plain"
username = "{user}"
password = "{PASSWORD}"
folders = ["INBOX"]
addresses = ["support@example.com"]
after_ingest = "keep"
batch_size = 500

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

[[agent]]
name = "alice"
email = "alice@example.com"
"#
    );
    if let Some(tg) = tg {
        text.push_str(&format!(
            "\n[[channel.telegram]]\naccount = \"shop_bot\"\ntoken = \"{TOKEN}\"\napi_base = \"{}\"\n",
            tg.api_base()
        ));
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// `postdesk run --once --json`: its report and wall seconds.
fn run_once(bin: &Path, config: &Path) -> (Value, f64) {
    let started = Instant::now();
    let out = Command::new(bin)
        .arg("--config")
        .arg(config)
        .args(["run", "--once", "--json"])
        .env("POSTDESK_LOG", "warn")
        .output()
        .unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "run --once failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (serde_json::from_slice(&out.stdout).unwrap(), secs)
}

fn tickets(bin: &Path, config: &Path) -> usize {
    let out = Command::new(bin)
        .arg("--config")
        .arg(config)
        .args(["ticket", "list", "--json", "--limit", "1000000"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array().unwrap().len()
}

fn check(what: &str, ok: bool, report: &Value) {
    if !ok {
        panic!("{what}: wrong result, so its speed means nothing: {report:#}");
    }
}
