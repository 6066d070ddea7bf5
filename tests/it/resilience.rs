//! Resilience of the running daemon (`postdesk run` as a subprocess, real Dovecot, real
//! SMTP sink): an IMAP outage with mail arriving while the server is down, polling when
//! the server offers no IDLE, IDLE re-issued on its timer (RFC 2177), the systemd
//! notification protocol, and SIGTERM or SIGKILL in the middle of a large backlog.
//!
//! What these prove is the issue's promise: "a crash or kill -9 at any point loses
//! nothing, and a restart creates no duplicate ticket or message", and the guide's top
//! complaint, "lost mail after an outage". No test asserts how fast anything happens:
//! eventual outcomes are awaited with bounded polling.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use crate::harness::{Desk, Opts, RunningDaemon, eventually, mail};
use crate::support::dovecot::DovecotOptions;

/// Upper bound for anything the daemon should do "soon" (reconnect, ingest, send).
const SOON: Duration = Duration::from_secs(20);
/// Messages in the backlog tests: 40 batches of 50.
const BACKLOG: i64 = 2000;
const BATCH: i64 = 50;

/// The INBOX watermark of the "support" mailbox, 0 before the first sync.
fn last_uid(desk: &Desk) -> i64 {
    desk.count(
        "SELECT COALESCE(MAX(last_uid), 0) FROM folder_state \
         WHERE mailbox = 'support' AND folder = 'INBOX'",
    )
}

/// Waits until the daemon's first sync of INBOX is committed (the folder state exists),
/// so that mail delivered afterwards can only arrive through IDLE or a poll.
fn wait_for_first_sync(desk: &Desk, daemon: &RunningDaemon) {
    assert!(
        eventually(SOON, || desk.count(
            "SELECT COUNT(*) FROM folder_state WHERE mailbox = 'support' AND folder = 'INBOX'"
        ) == 1),
        "the daemon never recorded its first sync of INBOX:\n{}",
        daemon.log_text()
    );
}

/// The delays of "...; reconnecting in 2.3s" log lines, in order.
fn reconnect_delays(log: &str) -> Vec<f64> {
    log.lines()
        .filter_map(|line| line.split_once("reconnecting in "))
        .filter_map(|(_, rest)| rest.trim_end().strip_suffix('s')?.parse().ok())
        .collect()
}

fn inbound(desk: &Desk) -> i64 {
    desk.count("SELECT COUNT(*) FROM messages WHERE direction = 'inbound'")
}

#[test]
fn mail_delivered_during_an_imap_outage_is_ingested_after_reconnect() {
    let mut desk = Desk::start();
    let mut daemon = desk.spawn_daemon(&[("POSTDESK_LOG", "postdesk=debug")]);
    daemon.wait_for_log("connected to", 1, SOON);
    wait_for_first_sync(&desk, &daemon);

    desk.deliver(&mail(
        "ann@customer.org",
        "support@example.com",
        "Before the outage",
        "outage1@customer.org",
        "",
        "First.",
    ));
    assert_eq!(
        desk.smtp.wait_for(1, SOON).len(),
        1,
        "first acknowledgement"
    );

    // The server goes away under the daemon's IDLE connection, and stays away long
    // enough for a second, refused, reconnect attempt.
    desk.dovecot.stop();
    daemon.wait_for_log("reconnecting in", 2, SOON);
    // Mail keeps arriving at the MTA while IMAP is down.
    desk.dovecot.write_to_maildir(
        "support",
        &mail(
            "bob@customer.org",
            "support@example.com",
            "During the outage",
            "outage2@customer.org",
            "",
            "Second.",
        ),
    );
    desk.dovecot.restart();

    let sent = desk.smtp.wait_for(2, Duration::from_secs(40));
    assert_eq!(
        sent.len(),
        2,
        "the mail delivered during the outage was acknowledged after the reconnect:\n{}",
        daemon.log_text()
    );
    let tickets = desk.tickets();
    assert_eq!(tickets.len(), 2, "{tickets:#?}");
    assert_eq!(inbound(&desk), 2);
    assert!(
        daemon.log_count("connected to") >= 2,
        "the daemon logged no reconnect:\n{}",
        daemon.log_text()
    );
    // Backoff: each consecutive failure waits longer than the one before.
    let delays = reconnect_delays(&daemon.log_text());
    assert!(
        delays.len() >= 2 && delays[1] > delays[0],
        "reconnect delays do not back off: {delays:?}\n{}",
        daemon.log_text()
    );

    let status = daemon.terminate();
    assert!(
        status.success(),
        "SIGTERM must end the daemon cleanly: {status}"
    );
    assert_eq!(desk.tickets().len(), 2);
}

#[test]
fn without_idle_the_daemon_polls_and_ingests_new_mail() {
    let desk = Desk::with(Opts {
        dovecot: DovecotOptions { idle: false },
        ..Opts::default()
    });
    let mut daemon = desk.spawn_daemon(&[]);
    daemon.wait_for_log("(polling)", 1, SOON);
    wait_for_first_sync(&desk, &daemon);

    desk.deliver(&mail(
        "ann@customer.org",
        "support@example.com",
        "Found by polling",
        "poll1@customer.org",
        "",
        "Hello.",
    ));
    assert_eq!(
        desk.smtp.wait_for(1, SOON).len(),
        1,
        "a poll found the new mail:\n{}",
        daemon.log_text()
    );
    assert_eq!(desk.tickets().len(), 1);
    assert_eq!(
        daemon.log_count("(IDLE)"),
        0,
        "the daemon must not use IDLE when the server does not offer it:\n{}",
        daemon.log_text()
    );
    assert_eq!(
        daemon.log_count("connected to"),
        1,
        "polling needs no reconnects"
    );

    let status = daemon.terminate();
    assert!(status.success(), "{status}");
}

#[test]
fn idle_is_reissued_on_its_timer_and_still_delivers_mail() {
    let desk = Desk::with(Opts {
        mailbox_extra: "idle_timeout_secs = 1",
        ..Opts::default()
    });
    let mut daemon = desk.spawn_daemon(&[("POSTDESK_LOG", "postdesk=debug")]);
    daemon.wait_for_log("(IDLE)", 1, SOON);
    // RFC 2177: the client re-issues IDLE before the server's inactivity timeout; here
    // the timer is 1 s, so several rounds pass before the mail comes.
    daemon.wait_for_log("re-issuing IDLE", 2, SOON);

    desk.deliver(&mail(
        "ann@customer.org",
        "support@example.com",
        "After re-issued IDLE",
        "idle1@customer.org",
        "",
        "Hello.",
    ));
    assert_eq!(
        desk.smtp.wait_for(1, SOON).len(),
        1,
        "{}",
        daemon.log_text()
    );
    assert_eq!(desk.tickets().len(), 1);
    // IDLE goes on being re-issued after the mail, on the same connection.
    let before = daemon.log_count("re-issuing IDLE");
    daemon.wait_for_log("re-issuing IDLE", before + 1, SOON);
    assert_eq!(
        daemon.log_count("connected to"),
        1,
        "re-issuing IDLE must not reconnect:\n{}",
        daemon.log_text()
    );
    assert_eq!(daemon.log_count("reconnecting"), 0, "{}", daemon.log_text());

    let status = daemon.terminate();
    assert!(status.success(), "{status}");
}

#[test]
fn the_daemon_tells_systemd_when_it_is_ready_and_when_it_stops() {
    let desk = Desk::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(SOON)).unwrap();
    let mut daemon = desk.spawn_daemon(&[("NOTIFY_SOCKET", path.to_str().unwrap())]);

    let mut buf = [0u8; 4096];
    let n = socket
        .recv(&mut buf)
        .unwrap_or_else(|e| panic!("no READY=1 from the daemon ({e}):\n{}", daemon.log_text()));
    let ready = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(
        ready.lines().any(|l| l == "READY=1"),
        "first notification: {ready:?}"
    );

    daemon.signal("TERM");
    let n = socket
        .recv(&mut buf)
        .unwrap_or_else(|e| panic!("no STOPPING=1 after SIGTERM ({e}):\n{}", daemon.log_text()));
    let stopping = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(
        stopping.lines().any(|l| l == "STOPPING=1"),
        "notification after SIGTERM: {stopping:?}"
    );
    let status = daemon.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{status}");
}

/// A desk whose INBOX holds `BACKLOG` distinct customer mails (one sender and subject
/// each), written straight into the Maildir; batches of `BATCH`, no acknowledgements.
fn backlog_desk() -> Desk {
    let desk = Desk::with(Opts {
        autoreply: false,
        mailbox_extra: "batch_size = 50",
        ..Opts::default()
    });
    for i in 0..BACKLOG {
        desk.dovecot.write_to_maildir(
            "support",
            &mail(
                &format!("customer{i}@example.net"),
                "support@example.com",
                &format!("Backlog question {i}"),
                &format!("backlog-{i}@example.net"),
                "",
                "Please help.",
            ),
        );
    }
    desk
}

/// After an interrupted run: every UID up to the watermark has exactly one source row
/// and a message and ticket of its own; nothing above it was stored (no half batch).
fn assert_prefix_committed(desk: &Desk, log: &str) -> i64 {
    let last = last_uid(desk);
    assert!(last >= BATCH, "no batch was committed:\n{log}");
    assert_eq!(
        last % BATCH,
        0,
        "the watermark is not on a batch boundary:\n{log}"
    );
    assert_eq!(
        desk.count(&format!(
            "SELECT COUNT(DISTINCT uid) FROM message_sources \
             WHERE mailbox = 'support' AND folder = 'INBOX' AND uid BETWEEN 1 AND {last}"
        )),
        last,
        "a UID at or below the watermark has no message"
    );
    assert_eq!(
        desk.count(&format!(
            "SELECT COUNT(*) FROM message_sources WHERE uid > {last}"
        )),
        0,
        "messages above the watermark were stored: half a batch"
    );
    assert_eq!(desk.count("SELECT COUNT(*) FROM message_sources"), last);
    assert_eq!(inbound(desk), last);
    assert_eq!(desk.count("SELECT COUNT(*) FROM tickets"), last);
    last
}

/// After the backlog is complete: exactly `BACKLOG` of everything, nothing twice.
fn assert_backlog_complete(desk: &Desk) {
    assert_eq!(last_uid(desk), BACKLOG);
    assert_eq!(desk.count("SELECT COUNT(*) FROM message_sources"), BACKLOG);
    assert_eq!(
        desk.count("SELECT COUNT(DISTINCT message_row) FROM message_sources"),
        BACKLOG,
        "two UIDs point at the same message"
    );
    assert_eq!(inbound(desk), BACKLOG);
    assert_eq!(
        desk.count("SELECT COUNT(DISTINCT message_id) FROM messages WHERE direction = 'inbound'"),
        BACKLOG
    );
    assert_eq!(desk.count("SELECT COUNT(*) FROM tickets"), BACKLOG);
    assert_eq!(
        desk.count("SELECT COUNT(DISTINCT subject) FROM tickets"),
        BACKLOG,
        "a customer got two tickets"
    );
    assert_integrity(desk);
}

fn assert_integrity(desk: &Desk) {
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM pragma_integrity_check WHERE integrity_check <> 'ok'"),
        0,
        "PRAGMA integrity_check reports problems"
    );
}

#[test]
fn sigterm_during_a_backlog_finishes_the_batch_in_flight_and_loses_nothing() {
    let desk = backlog_desk();
    let mut daemon = desk.spawn_daemon(&[]);
    daemon.wait_for_log("committed", 1, Duration::from_secs(30));
    daemon.signal("TERM");
    let status = daemon.wait_exit(Duration::from_secs(30));
    let log = daemon.log_text();
    assert!(status.success(), "SIGTERM mid-backlog: {status}\n{log}");
    assert!(log.contains("stopped cleanly"), "{log}");

    let last = assert_prefix_committed(&desk, &log);
    assert!(
        last < BACKLOG,
        "SIGTERM did not stop the backlog early: the daemon went on to the end\n{log}"
    );
    assert_integrity(&desk);
    eprintln!("SIGTERM: the daemon stopped after UID {last} of {BACKLOG}.");

    let report = desk.run_once();
    assert_eq!(report["fetched"], BACKLOG - last, "{report}");
    assert_eq!(report["new_tickets"], BACKLOG - last, "{report}");
    assert_eq!(report["duplicates"], 0, "{report}");
    assert_backlog_complete(&desk);
}

#[test]
fn kill_9_during_a_backlog_loses_and_duplicates_nothing() {
    let desk = backlog_desk();
    let mut daemon = desk.spawn_daemon(&[]);
    daemon.wait_for_log("committed", 1, Duration::from_secs(30));
    // Somewhere in the next batches: inside a FETCH, a parse or a COMMIT.
    std::thread::sleep(Duration::from_millis(rand::random::<u64>() % 400));
    daemon.signal("KILL");
    let status = daemon.wait_exit(Duration::from_secs(30));
    assert!(!status.success(), "{status}");
    let log = daemon.log_text();

    let last = assert_prefix_committed(&desk, &log);
    assert_integrity(&desk);
    eprintln!("SIGKILL: UIDs 1-{last} of {BACKLOG} were committed.");

    let report = desk.run_once();
    assert_eq!(report["fetched"], BACKLOG - last, "{report}");
    assert_eq!(report["duplicates"], 0, "{report}");
    assert_backlog_complete(&desk);
}

/// Sends `signal` to each pid with kill(1); used on Dovecot's own session processes.
fn signal_pids(signal: &str, pids: &[u32]) {
    for pid in pids {
        let _ = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status();
    }
}

/// SIGCONTs the frozen Dovecot session processes when the test ends, also on panic.
struct Thaw(Vec<u32>);

impl Drop for Thaw {
    fn drop(&mut self) {
        signal_pids("CONT", &self.0);
    }
}

/// Regression: SIGTERM during IDLE used to wait up to COMMAND_TIMEOUT (300 s) for DONE
/// from a server that stopped answering.
#[test]
fn sigterm_while_the_server_hangs_in_idle_still_exits_promptly() {
    let desk = Desk::start();
    let mut daemon = desk.spawn_daemon(&[("POSTDESK_LOG", "postdesk=debug")]);
    daemon.wait_for_log("(IDLE)", 1, SOON);
    wait_for_first_sync(&desk, &daemon);
    // The session is in IDLE once its imap process exists and the first sync is done;
    // give the IDLE command a moment to be on the wire.
    let mut pids = Vec::new();
    assert!(eventually(SOON, || {
        pids = desk.dovecot.imap_session_pids();
        !pids.is_empty()
    }));
    std::thread::sleep(Duration::from_millis(300));
    // The server hangs with the connection open (a partition, a stuck storage backend).
    signal_pids("STOP", &pids);
    let _thaw = Thaw(pids);

    daemon.signal("TERM");
    // No transaction is in flight, so nothing justifies waiting on the server: systemd's
    // TimeoutStopSec (90 s by default) must not be what ends the daemon.
    let status = daemon.wait_exit(SOON);
    assert!(status.success(), "{status}");
}
