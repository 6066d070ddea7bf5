//! `cargo bench --bench ingest`: how fast postdesk ingests realistic mail, beside what the
//! same Dovecot can serve.
//!
//! One run generates a corpus with `corpus` (`benches/corpus/`; BENCH_MESSAGES, default
//! 20,000; BENCH_SEED, default 1), writes it once as a plain Maildir and once straight into
//! a private Dovecot user's Maildir (`tests/it/support`), and measures four things:
//!
//! 1. **Maildir import**: `postdesk import maildir DIR --json` on a fresh database.
//! 2. **Raw IMAP fetch**: a bare async-imap client doing `UID FETCH n:m (UID BODY.PEEK[])`
//!    in batches, with nothing else to do: the ceiling any IMAP ingest can reach here.
//!    A second bare run issues the same commands postdesk does per batch (`RFC822.SIZE`
//!    first, then the bodies), to separate protocol cost from postdesk's own work.
//! 3. **IMAP ingest**: `postdesk run --once --json` against that Dovecot, acknowledgements
//!    off (`[autoreply] enabled = false`), on a fresh database.
//!
//! postdesk runs as the real binary in a subprocess (`CARGO_BIN_EXE_postdesk`, which Cargo
//! sets for benches as for integration tests and builds with the same profile: `release`
//! settings under `cargo bench`), so start-up, migrations and the final WAL checkpoint are
//! part of the figures, and its peak RSS is its own (VmHWM, from its JSON report). CPU
//! seconds come from this process's `cutime`/`cstime` before and after the child.
//!
//! Dovecot indexes the files it finds at the first SELECT; a warm-up EXAMINE pays that
//! before anything is measured, and the files carry `S=`/`W=` sizes in their names as
//! Dovecot's own delivery writes them, so RFC822.SIZE never reads a file.
//!
//! Correctness is checked, so that a fast but wrong ingest cannot look good: both paths
//! must report every message as a new ticket or a reply joined to one (no duplicates,
//! bounces or unprocessable mail in this corpus), the raw fetch must return every byte,
//! and nothing may be sent. A miss on those fails the run; a miss on a speed or memory
//! target only prints BELOW TARGET (benchmarks never assert wall-clock timings).
//!
//! The corpus's shape: BENCH_SHAPE names a preset (`default`, `new-heavy`: about two
//! thirds of the messages become new tickets, `deep-threads`: conversations of up to 40
//! replies, `large-mail`, `small-mail`); BENCH_NEW_SHARE (0.0-1.0, the share of messages
//! that open a conversation), BENCH_THREAD_DEPTH (the most replies a conversation gets, or
//! `unlimited`) and BENCH_SIZE_MIX (`default`, `small`, `large`) change one trait of it.
//! The report gives both the share of messages that opened a conversation (the
//! generator's count) and the share postdesk made new tickets of (its JSON report), which
//! is lower, more so in a large corpus: a customer's second mail with the same subject
//! within days joins the first one's ticket. BENCH_SHAPES=all (or a comma-separated list of presets) measures
//! only the Maildir import, once per shape, one line each, without Dovecot.
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) it does the same with 300
//! messages as a smoke test, followed by the Maildir import of every shape, so the
//! benchmark cannot rot. Other knobs: BENCH_BATCH (messages per transaction and per FETCH,
//! default 500), BENCH_AFTER_INGEST (keep, the default, or flag, to include the UID STORE
//! that follows each commit), and BENCH_WRAP, a command prefix for both postdesk runs with
//! `{name}` standing for `import` or `imap`, e.g.
//! `BENCH_WRAP="perf record -g -o /tmp/{name}.perf.data --"` (the figures then include
//! the profiler's overhead). BENCH_KEEP=1 keeps the Maildir, configs and databases (the
//! Dovecot copy goes with the server) for experiments by hand.

// A measuring harness: it fails loudly, like the test support code it reuses. Indexing is
// only into serde_json values, where a missing key gives Null rather than a panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod corpus;

// The integration tests' real-server harness; the SMTP half is not needed here.
#[allow(unused_imports)]
#[path = "../tests/it/support/mod.rs"]
mod support;

use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use futures::TryStreamExt as _;
use postdesk::channels::email::imap::uid_set;
use postdesk::config::MailboxConfig;
use serde_json::{Value, json};

use corpus::{Corpus, CorpusSpec, SHAPES, SIZE_MIXES, SizeMix};
use support::{Dovecot, postdesk_bin};

/// Targets from the issue, for 20,000 messages on the 2-core reference machine.
const TARGET_IMAP_PER_SEC: f64 = 5_000.0;
const TARGET_IMPORT_PER_SEC: f64 = 8_000.0;
const TARGET_RSS_MB: f64 = 60.0;
/// Linux's USER_HZ, the unit of `cutime`/`cstime` in /proc/self/stat (100 on every
/// architecture Linux supports today).
const CLOCK_TICKS_PER_SEC: f64 = 100.0;
const USER: &str = "bench";
const PASSWORD: &str = "secret";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a valid value")),
        Err(_) => default,
    }
}

/// The knobs that change the corpus's shape; BENCH_SHAPES runs the presets as they are.
const SHAPE_KNOBS: &[&str] = &["BENCH_NEW_SHARE", "BENCH_THREAD_DEPTH", "BENCH_SIZE_MIX"];

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let n: usize = env_or("BENCH_MESSAGES", if bench_mode { 20_000 } else { 300 });
    let seed: u64 = env_or("BENCH_SEED", 1);
    let batch: usize = env_or("BENCH_BATCH", 500);
    let after_ingest: String = env_or("BENCH_AFTER_INGEST", "keep".to_string());
    assert!(
        n > 0 && batch > 0,
        "BENCH_MESSAGES and BENCH_BATCH must be positive"
    );
    let base = CorpusSpec::new(n, seed);

    if let Ok(list) = std::env::var("BENCH_SHAPES") {
        let custom: Vec<&str> = ["BENCH_SHAPE"]
            .iter()
            .chain(SHAPE_KNOBS)
            .copied()
            .filter(|k| std::env::var_os(k).is_some())
            .collect();
        assert!(
            custom.is_empty(),
            "BENCH_SHAPES measures the presets as they are; unset {custom:?}, or set \
             BENCH_SHAPE and the knobs without BENCH_SHAPES for one custom shape"
        );
        let names: Vec<String> = if list.trim() == "all" {
            SHAPES.iter().map(|s| s.to_string()).collect()
        } else {
            list.split(',').map(|s| s.trim().to_string()).collect()
        };
        let shapes: Vec<(String, CorpusSpec)> = names
            .into_iter()
            .map(|name| {
                let spec = base.shape(&name).unwrap_or_else(|| {
                    panic!("BENCH_SHAPES: unknown shape {name:?}, known: {SHAPES:?}")
                });
                (name, spec)
            })
            .collect();
        println!(
            "postdesk ingest benchmark{}, Maildir import by corpus shape: {n} messages each \
             (seed {seed}); batch {batch}; acknowledgements off; load average {}",
            if bench_mode { "" } else { " (smoke test)" },
            load_average()
        );
        shapes_table(&shapes, batch, bench_mode);
        return;
    }

    let shape_name: String = env_or("BENCH_SHAPE", "default".to_string());
    let mut spec = base
        .shape(&shape_name)
        .unwrap_or_else(|| panic!("BENCH_SHAPE: unknown shape {shape_name:?}, known: {SHAPES:?}"));
    if let Ok(v) = std::env::var("BENCH_NEW_SHARE") {
        spec.new_share = v
            .parse()
            .ok()
            .filter(|s| (0.0..=1.0).contains(s))
            .unwrap_or_else(|| panic!("BENCH_NEW_SHARE={v:?}: a share from 0.0 to 1.0"));
    }
    if let Ok(v) = std::env::var("BENCH_THREAD_DEPTH") {
        spec.thread_depth = match v.as_str() {
            "unlimited" => None,
            _ => Some(v.parse().unwrap_or_else(|_| {
                panic!("BENCH_THREAD_DEPTH={v:?}: a number of replies, or unlimited")
            })),
        };
    }
    if let Ok(v) = std::env::var("BENCH_SIZE_MIX") {
        spec.size_mix = SizeMix::named(&v)
            .unwrap_or_else(|| panic!("BENCH_SIZE_MIX={v:?}: unknown, known: {SIZE_MIXES:?}"));
    }
    let customised = SHAPE_KNOBS.iter().any(|k| std::env::var_os(k).is_some());
    let shape_label = if customised {
        format!("{shape_name}, customised")
    } else {
        shape_name
    };

    let work = tempfile::Builder::new()
        .prefix("postdesk-bench-")
        .tempdir()
        .unwrap();
    let dovecot = Dovecot::start(&[(USER, PASSWORD)]);
    // The first login creates the user's Maildir (INBOX) as Dovecot wants it.
    assert!(dovecot.uids(USER, "INBOX").is_empty());
    let dovecot_cur = dovecot.maildir(USER).join("cur");
    let owner = std::fs::metadata(dovecot.maildir(USER)).unwrap();

    // 1. The corpus, written as it is generated: once for the import, once for Dovecot.
    let import_dir = work.path().join("Maildir");
    let written = write_corpus(&spec, &import_dir, Some((&dovecot_cur, &owner)));
    let generate_secs = written.seconds;
    let total_bytes = written.total_bytes();
    let quantile = |q: f64| written.quantile(q);
    let opened_share = written.opened as f64 / n as f64;
    let corpus = json!({
        "messages": n,
        "seed": seed,
        "shape": shape_json(&shape_label, &spec),
        "opened_conversations": written.opened,
        "opened_share": opened_share,
        "median_bytes": quantile(0.5),
        "p90_bytes": quantile(0.9),
        "p99_bytes": quantile(0.99),
        "max_bytes": quantile(1.0),
        "total_mb": mb(total_bytes),
        "generate_and_write_seconds": generate_secs,
    });
    let bin = postdesk_bin();
    println!(
        "postdesk ingest benchmark{}: {n} messages (seed {seed}): median {:.1} KB, p90 {:.1} KB, \
         p99 {:.1} KB, largest {:.1} KB, {:.1} MB in all (generated and written twice in {generate_secs:.1}s)",
        if bench_mode {
            ""
        } else {
            " (smoke test; `cargo bench --bench ingest` for the real run)"
        },
        kb(quantile(0.5)),
        kb(quantile(0.9)),
        kb(quantile(0.99)),
        kb(quantile(1.0)),
        mb(total_bytes),
    );
    println!(
        "shape {shape_label} ({}): {} messages ({:.1}%) opened a conversation",
        describe(&spec),
        written.opened,
        100.0 * opened_share
    );
    println!(
        "binary {}; batch {batch}; after_ingest {after_ingest}; acknowledgements off; load average {}",
        bin.display(),
        load_average()
    );

    // Warm-up: Dovecot indexes the new files at the first SELECT/EXAMINE.
    let started = Instant::now();
    let uids = dovecot.uids(USER, "INBOX");
    let index_secs = started.elapsed().as_secs_f64();
    assert_eq!(uids.len(), n, "Dovecot sees {} of {n} messages", uids.len());
    println!(
        "Dovecot indexed the {n} files at the first EXAMINE in {index_secs:.2}s (not counted)."
    );

    // 2. Maildir import.
    let import_cfg = write_config(work.path(), "import", dovecot.port, batch, &after_ingest);
    let (out, import_wall, import_cpu) =
        import_maildir(&bin, &import_cfg, &import_dir, n, batch, "Maildir import");
    let stats = &out["stats"];
    let import = Row {
        path: "Maildir import (postdesk import)",
        messages: n,
        bytes: total_bytes,
        wall: import_wall,
        inner: out["seconds"].as_f64(),
        cpu: Some(import_cpu),
        rss_kib: out["peak_rss_kib"].as_u64(),
        tickets: Some((count(stats, "new_tickets"), count(stats, "joined"))),
        target: bench_mode.then_some(TARGET_IMPORT_PER_SEC),
    };

    // 3. Raw IMAP fetch: the same Dovecot, the same messages, a client that does nothing.
    // One uncounted pass first, so that every IMAP figure sees the same warm Dovecot
    // (its cache file and the page cache), whichever runs first.
    let mailbox = mailbox_config(&import_cfg);
    raw_fetch(&mailbox, batch, false);
    let raw_rows: Vec<Row> = [
        (false, "Raw IMAP fetch, BODY.PEEK[]"),
        (true, "Raw IMAP fetch, SIZE+BODY"),
    ]
    .into_iter()
    .map(|(with_sizes, path)| {
        let started = Instant::now();
        let (fetched, bytes) = raw_fetch(&mailbox, batch, with_sizes);
        let wall = started.elapsed().as_secs_f64();
        check(
            path,
            fetched == n && bytes == total_bytes,
            &json!({"fetched": fetched, "bytes": bytes, "expected_bytes": total_bytes}),
        );
        Row {
            path,
            messages: fetched,
            bytes,
            wall,
            inner: None,
            cpu: None,
            rss_kib: None,
            tickets: None,
            target: None,
        }
    })
    .collect();

    // 4. IMAP ingest with the real daemon code, one `run --once` cycle.
    let imap_cfg = write_config(work.path(), "imap", dovecot.port, batch, &after_ingest);
    let (out, imap_wall, imap_cpu) = run_postdesk(&bin, &imap_cfg, &["run", "--once", "--json"]);
    check(
        "IMAP ingest",
        count(&out, "fetched") == n as u64
            && count(&out, "new_tickets") + count(&out, "joined") == n as u64
            && count(&out, "sent") == 0
            && out["mailbox_errors"].as_array().is_some_and(Vec::is_empty),
        &out,
    );
    let imap = Row {
        path: "IMAP ingest (postdesk run --once)",
        messages: n,
        bytes: total_bytes,
        wall: imap_wall,
        inner: None,
        cpu: Some(imap_cpu),
        rss_kib: out["peak_rss_kib"].as_u64(),
        tickets: Some((count(&out, "new_tickets"), count(&out, "joined"))),
        target: bench_mode.then_some(TARGET_IMAP_PER_SEC),
    };
    if after_ingest == "flag" {
        let flagged = dovecot
            .flags(USER, "INBOX", *uids.last().unwrap())
            .iter()
            .any(|f| f == "$Postdesk");
        check(
            "IMAP ingest flags",
            flagged,
            &json!({"last_uid": uids.last()}),
        );
    }

    // 5. The table, then one JSON line for machines.
    println!();
    println!(
        "{:<36} {:>8} {:>9} {:>10} {:>8} {:>10} {:>9}  {:<26} target",
        "path", "messages", "seconds", "msg/s", "MB/s", "peak RSS", "CPU s", "tickets+joined (new)"
    );
    let mut rows = vec![import];
    rows.extend(raw_rows);
    rows.push(imap);
    let mut verdicts = Vec::new();
    for r in &rows {
        let verdict = r.verdict();
        if let Some(v) = &verdict {
            verdicts.push(format!("{}: {v}", r.path));
        }
        println!(
            "{:<36} {:>8} {:>9.2} {:>10.0} {:>8.1} {:>10} {:>9} {:<26} {}",
            r.path,
            r.messages,
            r.wall,
            r.per_sec(),
            mb(r.bytes) / r.wall,
            r.rss_kib
                .map(|k| format!("{:.1} MB", k as f64 / 1024.0))
                .unwrap_or_else(|| "-".into()),
            r.cpu
                .map(|c| format!("{c:.2}"))
                .unwrap_or_else(|| "-".into()),
            r.tickets
                .map(|(t, j)| format!(" {t}+{j} ({:.1}% new)", 100.0 * new_share(t, j)))
                .unwrap_or_else(|| " -".into()),
            verdict.unwrap_or_default()
        );
    }
    if let Some(inner) = rows.first().and_then(|r| r.inner) {
        println!(
            "(the import reports {inner:.2}s itself, {:.0} msg/s, without process start-up and migrations)",
            n as f64 / inner
        );
    }
    println!(
        "Load average now {} (other work on the machine skews every figure above).",
        load_average()
    );
    println!(
        "For scale: Request Tracker's mail gateway manages about 3 msg/s on the reference \
         machine, a bare IMAP client about 40,000 msg/s from a local Dovecot."
    );
    let summary = json!({
        "bench": "ingest",
        "mode": if bench_mode { "bench" } else { "smoke" },
        "batch": batch,
        "after_ingest": after_ingest,
        "corpus": corpus,
        "dovecot_index_seconds": index_secs,
        "results": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
        "below_target": verdicts.iter().filter(|v| v.contains("BELOW")).collect::<Vec<_>>(),
    });
    println!("{summary}");
    std::io::stdout().flush().ok();
    if std::env::var_os("BENCH_KEEP").is_some() {
        let kept = work.keep();
        eprintln!(
            "BENCH_KEEP: the Maildir, configs and databases are kept in {}",
            kept.display()
        );
    }
    if !bench_mode {
        // The smoke run imports every preset too, so that none can break the checks unseen.
        println!();
        let shapes: Vec<(String, CorpusSpec)> = SHAPES
            .iter()
            .map(|name| (name.to_string(), base.shape(name).unwrap()))
            .collect();
        shapes_table(&shapes, batch, bench_mode);
    }
}

/// Measures the Maildir import of each shape's corpus (without Dovecot) and prints one
/// line per shape, with the share of messages that opened a conversation beside the share
/// postdesk made new tickets of, then one JSON line.
fn shapes_table(shapes: &[(String, CorpusSpec)], batch: usize, bench_mode: bool) {
    let bin = postdesk_bin();
    println!(
        "{:<13} {:<45} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8} {:>7} {:>10}  target",
        "shape",
        "spec",
        "messages",
        "median",
        "p99",
        "opened",
        "new tkts",
        "msg/s",
        "CPU s",
        "peak RSS"
    );
    let mut results = Vec::new();
    for (name, spec) in shapes {
        let n = spec.messages;
        let work = tempfile::Builder::new()
            .prefix("postdesk-bench-shape-")
            .tempdir()
            .unwrap();
        let dir = work.path().join("Maildir");
        let written = write_corpus(spec, &dir, None);
        // The mailbox in the configuration is never contacted by an import.
        let cfg = write_config(work.path(), "import", 143, batch, "keep");
        let (out, wall, cpu) = import_maildir(
            &bin,
            &cfg,
            &dir,
            n,
            batch,
            &format!("Maildir import, {name}"),
        );
        let stats = &out["stats"];
        let (t, j) = (count(stats, "new_tickets"), count(stats, "joined"));
        let row = Row {
            path: "Maildir import (postdesk import)",
            messages: n,
            bytes: written.total_bytes(),
            wall,
            inner: out["seconds"].as_f64(),
            cpu: Some(cpu),
            rss_kib: out["peak_rss_kib"].as_u64(),
            tickets: Some((t, j)),
            target: bench_mode.then_some(TARGET_IMPORT_PER_SEC),
        };
        let opened = written.opened as f64 / n as f64;
        println!(
            "{:<13} {:<45} {:>8} {:>5.1} KB {:>5.1} KB {:>8.1}% {:>8.1}% {:>8.0} {:>7.2} {:>10}  {}",
            name,
            describe(spec),
            n,
            kb(written.quantile(0.5)),
            kb(written.quantile(0.99)),
            100.0 * opened,
            100.0 * new_share(t, j),
            row.per_sec(),
            cpu,
            row.rss_kib
                .map(|k| format!("{:.1} MB", k as f64 / 1024.0))
                .unwrap_or_else(|| "-".into()),
            row.verdict().unwrap_or_default(),
        );
        results.push(json!({
            "shape": shape_json(name, spec),
            "opened_share": opened,
            "median_bytes": written.quantile(0.5),
            "p99_bytes": written.quantile(0.99),
            "total_mb": mb(written.total_bytes()),
            "import": row.to_json(),
        }));
    }
    println!(
        "(opened: messages that opened a conversation, the generator's count; new tkts: the \
         share postdesk's report gives as new tickets. Load average now {}.)",
        load_average()
    );
    let summary = json!({
        "bench": "ingest-shapes",
        "mode": if bench_mode { "bench" } else { "smoke" },
        "batch": batch,
        "seed": shapes.first().map(|(_, s)| s.seed),
        "results": results,
    });
    println!("{summary}");
    std::io::stdout().flush().ok();
}

/// A corpus as written to disk: each message's size, and how many opened a conversation.
struct Written {
    /// Smallest first.
    sizes: Vec<usize>,
    opened: usize,
    seconds: f64,
}

impl Written {
    fn total_bytes(&self) -> u64 {
        self.sizes.iter().map(|&s| s as u64).sum()
    }

    /// The size at quantile `q` (0.0-1.0).
    fn quantile(&self, q: f64) -> usize {
        let k = ((self.sizes.len() as f64 - 1.0) * q).round() as usize;
        self.sizes.get(k).copied().unwrap_or(0)
    }
}

/// Generates `spec` into the Maildir `dir` (created), and into Dovecot's `cur` directory
/// as its owner when given.
fn write_corpus(
    spec: &CorpusSpec,
    dir: &Path,
    dovecot: Option<(&Path, &std::fs::Metadata)>,
) -> Written {
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let started = Instant::now();
    let mut sizes = Vec::with_capacity(spec.messages);
    let mut generator = Corpus::new(spec);
    for (i, raw) in generator.by_ref().enumerate() {
        // `time.unique.host,S=size,W=size:2,`: sorted by name = generation order, and the
        // sizes Dovecot would record itself (W = S because the corpus uses CRLF only).
        let name = format!(
            "{}.M{i}P1.bench,S={len},W={len}:2,",
            1_767_600_000 + i,
            len = raw.len()
        );
        std::fs::write(dir.join("cur").join(&name), &raw).unwrap();
        if let Some((cur, owner)) = dovecot {
            let theirs = cur.join(&name);
            std::fs::write(&theirs, &raw).unwrap();
            if owner.uid() != owner_uid(&theirs) {
                std::os::unix::fs::chown(&theirs, Some(owner.uid()), Some(owner.gid())).unwrap();
            }
        }
        sizes.push(raw.len());
    }
    sizes.sort_unstable();
    Written {
        sizes,
        opened: generator.conversations_opened(),
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Runs `postdesk import maildir DIR --json` and checks that every message became a new
/// ticket or joined one; returns the report, wall and CPU seconds.
fn import_maildir(
    bin: &Path,
    config: &Path,
    dir: &Path,
    n: usize,
    batch: usize,
    what: &str,
) -> (Value, f64, f64) {
    let (out, wall, cpu) = run_postdesk(
        bin,
        config,
        &[
            "import",
            "maildir",
            dir.to_str().unwrap(),
            "--json",
            "--batch-size",
            &batch.to_string(),
        ],
    );
    let stats = &out["stats"];
    check(
        what,
        count(stats, "messages") == n as u64
            && count(stats, "new_tickets") + count(stats, "joined") == n as u64,
        &out,
    );
    (out, wall, cpu)
}

/// A count from a JSON report; u64::MAX when missing, so that no check passes by accident.
fn count(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(u64::MAX)
}

/// The share of new tickets among the messages filed (new tickets + joined).
fn new_share(new_tickets: u64, joined: u64) -> f64 {
    new_tickets as f64 / (new_tickets + joined).max(1) as f64
}

/// The spec's shape in words, for the report.
fn describe(spec: &CorpusSpec) -> String {
    format!(
        "new share {:.2}, depth {}, sizes {}",
        spec.new_share,
        spec.thread_depth
            .map(|d| d.to_string())
            .unwrap_or_else(|| "unlimited".into()),
        size_mix_name(&spec.size_mix)
    )
}

fn size_mix_name(mix: &SizeMix) -> String {
    SIZE_MIXES
        .iter()
        .find(|name| SizeMix::named(name).as_ref() == Some(mix))
        .map(|name| name.to_string())
        .unwrap_or_else(|| format!("{mix:?}"))
}

fn shape_json(name: &str, spec: &CorpusSpec) -> Value {
    json!({
        "name": name,
        "new_share": spec.new_share,
        "thread_depth": spec.thread_depth,
        "size_mix": size_mix_name(&spec.size_mix),
    })
}

/// The 1-minute load average, to tell a quiet run from one that shared the machine.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

/// The owner of a file, or u32::MAX if it cannot be read.
fn owner_uid(path: &Path) -> u32 {
    std::fs::metadata(path).map(|m| m.uid()).unwrap_or(u32::MAX)
}

struct Row {
    path: &'static str,
    messages: usize,
    bytes: u64,
    /// Wall seconds measured here, around the subprocess or the client.
    wall: f64,
    /// Seconds the subprocess reported itself, where it does.
    inner: Option<f64>,
    cpu: Option<f64>,
    rss_kib: Option<u64>,
    tickets: Option<(u64, u64)>,
    target: Option<f64>,
}

impl Row {
    fn per_sec(&self) -> f64 {
        self.messages as f64 / self.wall
    }

    /// PASS / BELOW TARGET against the speed and memory targets; None for reference rows.
    fn verdict(&self) -> Option<String> {
        let target = self.target?;
        let rss_mb = self.rss_kib.map(|k| k as f64 / 1024.0);
        let fast = self.per_sec() >= target;
        let small = rss_mb.is_some_and(|m| m < TARGET_RSS_MB);
        Some(format!(
            "{} (>= {target:.0} msg/s: {}; RSS < {TARGET_RSS_MB:.0} MB: {})",
            if fast && small {
                "PASS"
            } else {
                "BELOW TARGET"
            },
            if fast { "yes" } else { "no" },
            if small { "yes" } else { "no" },
        ))
    }

    fn to_json(&self) -> Value {
        json!({
            "path": self.path,
            "messages": self.messages,
            "seconds": self.wall,
            "reported_seconds": self.inner,
            "messages_per_second": self.per_sec(),
            "mb_per_second": mb(self.bytes) / self.wall,
            "cpu_seconds": self.cpu,
            "peak_rss_mb": self.rss_kib.map(|k| k as f64 / 1024.0),
            "new_tickets": self.tickets.map(|t| t.0),
            "joined": self.tickets.map(|t| t.1),
            "new_ticket_share": self.tickets.map(|(t, j)| new_share(t, j)),
            "target_messages_per_second": self.target,
            "verdict": self.verdict(),
        })
    }
}

fn kb(bytes: usize) -> f64 {
    bytes as f64 / 1024.0
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Fails the run when a path did not ingest what it should have.
fn check(what: &str, ok: bool, report: &Value) {
    if !ok {
        panic!("{what}: wrong result, so its speed means nothing: {report:#}");
    }
}

/// A configuration like the integration tests', with its own database. Acknowledgements
/// are off, so the SMTP server (port 9, nothing listening) is never contacted.
fn write_config(dir: &Path, name: &str, port: u16, batch: usize, after_ingest: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let text = format!(
        r#"
[database]
path = "{name}.db"

[[mailbox]]
name = "support"
host = "127.0.0.1"
port = {port}
security = "plain"
username = "{USER}"
password = "{PASSWORD}"
folders = ["INBOX"]
addresses = ["support@example.com"]
after_ingest = "{after_ingest}"
batch_size = {batch}

[smtp]
host = "127.0.0.1"
port = 9
security = "plain"
from = "Example Support <support@example.com>"

[autoreply]
enabled = false

# Notifications did not exist when the benchmark's targets were set; the figures measure
# ingest with acknowledgements and notifications off.
[notify]
enabled = false

[[agent]]
name = "alice"
email = "alice@example.com"
"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn mailbox_config(config: &Path) -> MailboxConfig {
    let text = std::fs::read_to_string(config).unwrap();
    let base = config.parent().unwrap();
    let cfg = postdesk::config::parse(&text, base, &|_| None).unwrap();
    cfg.mailboxes.into_iter().next().unwrap()
}

/// Children's user + system CPU seconds so far (fields 16 and 17 of /proc/self/stat).
fn children_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_comm = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let fields: Vec<f64> = after_comm
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    // After the comm field, index 0 is field 3 (state): cutime is field 16, cstime 17.
    (fields.get(13).unwrap_or(&0.0) + fields.get(14).unwrap_or(&0.0)) / CLOCK_TICKS_PER_SEC
}

/// Runs `postdesk --config CFG ARGS`; returns its JSON report, wall and CPU seconds.
fn run_postdesk(bin: &Path, config: &Path, args: &[&str]) -> (Value, f64, f64) {
    let cpu_before = children_cpu_secs();
    let started = Instant::now();
    // BENCH_WRAP="perf record -g -o /tmp/{name}.perf.data --" profiles each run.
    let name = config
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("postdesk");
    let wrap: Vec<String> = std::env::var("BENCH_WRAP")
        .unwrap_or_default()
        .split_whitespace()
        .map(|w| w.replace("{name}", name))
        .collect();
    let mut command = match wrap.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    let out = command
        .arg("--config")
        .arg(config)
        .args(args)
        .env("POSTDESK_LOG", "warn")
        .env_remove("POSTDESK_FAULT")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    let wall = started.elapsed().as_secs_f64();
    let cpu = children_cpu_secs() - cpu_before;
    assert!(
        out.status.success(),
        "postdesk {args:?} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !stderr.trim().is_empty() {
        let lines: Vec<&str> = stderr.lines().collect();
        let tail = lines
            .get(lines.len().saturating_sub(20)..)
            .unwrap_or_default();
        eprintln!("postdesk {args:?} said:\n{}", tail.join("\n"));
    }
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "postdesk {args:?}: bad JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (report, wall, cpu)
}

/// Fetches every message of INBOX with a bare client; returns (messages, bytes).
fn raw_fetch(mb: &MailboxConfig, batch: usize, with_sizes: bool) -> (usize, u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut session = postdesk::channels::email::imap::connect(mb).await.unwrap();
        session.select("INBOX").await.unwrap();
        let mut uids: Vec<u32> = session
            .uid_search("ALL")
            .await
            .unwrap()
            .into_iter()
            .collect();
        uids.sort_unstable();
        let (mut messages, mut bytes) = (0, 0u64);
        for chunk in uids.chunks(batch) {
            let set = uid_set(chunk);
            if with_sizes {
                let sizes: Vec<_> = session
                    .uid_fetch(&set, "(UID RFC822.SIZE)")
                    .await
                    .unwrap()
                    .try_collect()
                    .await
                    .unwrap();
                assert_eq!(sizes.len(), chunk.len());
            }
            let fetches: Vec<_> = session
                .uid_fetch(&set, "(UID BODY.PEEK[])")
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            for f in &fetches {
                if let Some(body) = f.body() {
                    messages += 1;
                    bytes += body.len() as u64;
                }
            }
        }
        session.logout().await.unwrap();
        (messages, bytes)
    })
}
