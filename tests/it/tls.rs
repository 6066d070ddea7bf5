//! TLS against real servers on 127.0.0.1: Dovecot with `ssl = yes` (STARTTLS on the plain
//! port, implicit TLS on an imaps port) and the SMTP sink requiring STARTTLS or speaking
//! implicit TLS, all with a certificate for `localhost` from a private CA made at test time
//! (`support::dovecot::TestCerts`).
//!
//! What must hold: with `tls_ca_file` pointing at that CA both directions work and really
//! are encrypted (the servers say so, not only the client); without it the handshake fails
//! because only the public web roots are trusted, before any password is sent, and nothing
//! is lost: the mail stays on the IMAP server, the acknowledgement stays in the outbox, and
//! both go through once the CA is configured.
//!
//! Also here: the SMTP sink's own `tls` record checked with lettre directly (so that a
//! sink that always said "encrypted" could not make the daemon tests pass), and two
//! regression tests against a server that accepts TCP and then stalls in the handshake.

use std::process::Output;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde_json::Value;

use crate::harness::{Desk, Opts, TlsMode, TlsOpts, eventually, mail};
use crate::support::SmtpSink;
use crate::support::dovecot::TestCerts;
use crate::support::smtp::SinkSecurity;

type LettreTransport = AsyncSmtpTransport<Tokio1Executor>;

fn imap(mode: TlsMode, trust_test_ca: bool) -> Opts {
    Opts {
        imap_tls: Some(TlsOpts {
            mode,
            trust_test_ca,
        }),
        ..Opts::default()
    }
}

fn smtp(mode: TlsMode, trust_test_ca: bool) -> Opts {
    Opts {
        smtp_tls: Some(TlsOpts {
            mode,
            trust_test_ca,
        }),
        ..Opts::default()
    }
}

fn deliver_one(desk: &Desk, message_id: &str) -> u32 {
    desk.deliver(&mail(
        "Ann Customer <ann@customer.org>",
        "support@example.com",
        "Printer on fire",
        message_id,
        "",
        "Help, my printer is on fire.",
    ))
}

/// `run --once --json` that may fail: the exit code and the JSON report (stdout).
fn run_once_status(desk: &Desk) -> (Option<i32>, Value, Output) {
    let out = desk.cmd(&["run", "--once", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bad JSON from run --once ({}): {e}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), report, out)
}

/// Adds `tls_ca_file = <the test CA>` after the `security = "<security>"` line of the
/// config (the first one: the "support" mailbox comes before `[smtp]`).
fn trust_test_ca_in_config(desk: &Desk, security_line: &str) {
    let text = std::fs::read_to_string(&desk.config).unwrap();
    assert!(
        !text.contains("tls_ca_file"),
        "the config already trusts a CA:\n{text}"
    );
    let ca_line = format!(
        "{security_line}\ntls_ca_file = {:?}",
        desk.ca_cert().display().to_string()
    );
    let (before, after) = text
        .split_once(security_line)
        .unwrap_or_else(|| panic!("no {security_line:?} in the config:\n{text}"));
    std::fs::write(&desk.config, format!("{before}{ca_line}{after}")).unwrap();
}

/// Dovecot's `imap-login: Login: user=<support>, ...` lines. Dovecot 2.3 ends the
/// connection part with `TLS` for a TLS session and `secured` for plaintext on loopback
/// (`%c` in `login_log_format_elements`), so these show how each login arrived.
fn support_logins(desk: &Desk) -> Vec<String> {
    let log = std::fs::read_to_string(desk.dovecot.log_path()).unwrap_or_default();
    log.lines()
        .filter(|l| l.contains("Login: user=<support>"))
        .map(str::to_owned)
        .collect()
}

fn tls_logins(desk: &Desk) -> usize {
    support_logins(desk)
        .iter()
        .filter(|l| l.contains(", TLS,") || l.contains(", TLS:"))
        .count()
}

/// Waits until Dovecot's log process has written `n` TLS logins of "support" (it logs
/// asynchronously); panics with the logins seen otherwise.
fn assert_tls_logins(desk: &Desk, n: usize) {
    assert!(
        eventually(Duration::from_secs(10), || tls_logins(desk) >= n),
        "expected {n} TLS login(s):\n{:#?}",
        support_logins(desk)
    );
    assert_eq!(tls_logins(desk), n, "{:#?}", support_logins(desk));
}

/// Waits until Dovecot's log shows the `helper_sessions` logins of the test's own IMAP
/// helpers (plaintext, one per `deliver`/`create_folder`...) and returns them, so that a
/// later count cannot be off because the log process had not written them yet.
fn helper_logins(desk: &Desk, helper_sessions: usize) -> Vec<String> {
    assert!(
        eventually(Duration::from_secs(10), || support_logins(desk).len()
            >= helper_sessions),
        "expected {helper_sessions} helper login(s):\n{:#?}",
        support_logins(desk)
    );
    let logins = support_logins(desk);
    assert_eq!(logins.len(), helper_sessions, "{logins:#?}");
    assert_eq!(
        tls_logins(desk),
        0,
        "the helpers speak plaintext: {logins:#?}"
    );
    logins
}

/// Waits until Dovecot logged the failed handshake of a client that did not trust its
/// certificate (the client's `unknown_ca` alert, RFC 8446 §6.2), so that the log is
/// complete for that connection when a test then looks for logins.
fn wait_for_rejected_handshake(desk: &Desk) {
    let seen = || {
        std::fs::read_to_string(desk.dovecot.log_path())
            .unwrap_or_default()
            .contains("alert unknown ca")
    };
    assert!(
        eventually(Duration::from_secs(10), seen),
        "Dovecot did not log the rejected TLS handshake"
    );
}

/// The config's "support" mailbox and `[smtp]` address the server by the certificate's
/// name, not by the IP address the plain tests use.
fn assert_host_is_localhost(desk: &Desk, table: &str) {
    let text = std::fs::read_to_string(&desk.config).unwrap();
    let section = text
        .split_once(table)
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("no {table} in the config:\n{text}"));
    let host = section
        .lines()
        .find(|l| l.starts_with("host = "))
        .unwrap_or_else(|| panic!("no host in {table}:\n{text}"));
    assert_eq!(host, "host = \"localhost\"", "{table}");
}

fn assert_ingested_one(desk: &Desk, report: &Value) {
    assert_eq!(report["mailbox_errors"], serde_json::json!([]), "{report}");
    assert_eq!(report["fetched"], 1, "{report}");
    assert_eq!(report["new_tickets"], 1, "{report}");
    let tickets = desk.tickets();
    assert_eq!(tickets.len(), 1);
    let messages = desk.messages(tickets[0]["id"].as_i64().unwrap());
    assert_eq!(messages[0]["message_id"], "fire@customer.org");
    assert_eq!(messages[0]["body_text"], "Help, my printer is on fire.");
}

#[test]
fn imap_implicit_tls_with_the_test_ca_ingests() {
    let desk = Desk::with(imap(TlsMode::Tls, true));
    assert_host_is_localhost(&desk, "[[mailbox]]");
    let tls_port = desk.dovecot.tls_port.unwrap();
    assert!(
        std::fs::read_to_string(&desk.config)
            .unwrap()
            .contains(&format!("port = {tls_port}\nsecurity = \"tls\"\n")),
        "the mailbox must use the imaps port"
    );
    deliver_one(&desk, "fire@customer.org");
    let report = desk.run_once();
    assert_ingested_one(&desk, &report);
    // The plain helpers log in as "secured"; the daemon's login must be the TLS one.
    assert_tls_logins(&desk, 1);
}

#[test]
fn imap_starttls_with_the_test_ca_ingests() {
    let desk = Desk::with(imap(TlsMode::StartTls, true));
    assert_host_is_localhost(&desk, "[[mailbox]]");
    deliver_one(&desk, "fire@customer.org");
    let report = desk.run_once();
    assert_ingested_one(&desk, &report);
    // Same plain port as the helpers: only the server's word shows the upgrade happened
    // before LOGIN.
    assert_tls_logins(&desk, 1);
}

#[test]
fn imap_tls_without_the_ca_fails_and_leaves_the_mail_on_the_server() {
    let desk = Desk::with(Opts {
        after_ingest: "after_ingest = \"move\"\nmove_to = \"Processed\"",
        ..imap(TlsMode::Tls, false)
    });
    desk.dovecot.create_folder("support", "Processed");
    let uid = deliver_one(&desk, "fire@customer.org");
    let logins_before = helper_logins(&desk, 2).len();

    let (code, report, out) = run_once_status(&desk);
    wait_for_rejected_handshake(&desk);
    assert_eq!(
        support_logins(&desk).len(),
        logins_before,
        "no LOGIN at all"
    );
    assert_eq!(code, Some(1), "{report}");
    let errors = report["mailbox_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{report}");
    let error = errors[0].as_str().unwrap();
    assert!(
        error.contains("support") && error.contains("TLS handshake with localhost"),
        "{error}"
    );
    assert!(
        error.to_lowercase().contains("certificate") && error.contains("UnknownIssuer"),
        "the error must say the certificate is not trusted: {error}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("UnknownIssuer"),
        "the log must say why too"
    );
    assert_eq!(report["fetched"], 0);
    assert!(desk.tickets().is_empty());
    assert_eq!(desk.count("SELECT COUNT(*) FROM messages"), 0);
    assert_eq!(desk.dovecot.uids("support", "INBOX"), [uid]);

    // Nothing was lost or half-done: trusting the CA is all it takes.
    trust_test_ca_in_config(&desk, "security = \"tls\"");
    let report = desk.run_once();
    assert_ingested_one(&desk, &report);
    assert!(desk.dovecot.uids("support", "INBOX").is_empty());
    assert_eq!(desk.dovecot.uids("support", "Processed").len(), 1);
}

#[test]
fn imap_starttls_without_the_ca_fails_before_login() {
    let desk = Desk::with(imap(TlsMode::StartTls, false));
    let uid = deliver_one(&desk, "fire@customer.org");
    let logins_before = helper_logins(&desk, 1).len();

    let (code, report, _) = run_once_status(&desk);
    wait_for_rejected_handshake(&desk);
    // No fallback to plaintext: the password never went over the wire.
    assert_eq!(support_logins(&desk).len(), logins_before);
    assert_eq!(code, Some(1), "{report}");
    let error = report["mailbox_errors"][0].as_str().unwrap_or_default();
    assert!(error.contains("UnknownIssuer"), "{report}");
    assert!(desk.tickets().is_empty());
    assert_eq!(desk.dovecot.uids("support", "INBOX"), [uid]);
}

/// Delivers one mail over plain IMAP, runs one cycle and checks the acknowledgement went
/// out encrypted.
fn assert_ack_sent_over_tls(desk: &Desk) {
    assert_host_is_localhost(desk, "[smtp]");
    deliver_one(desk, "fire@customer.org");
    let report = desk.run_once();
    assert_eq!(report["new_tickets"], 1, "{report}");
    assert_eq!(report["sent"], 1, "{report}");
    assert_eq!(report["retrying"], 0, "{report}");
    let sent = desk.sent(1);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].rcpt_to, ["ann@customer.org"]);
    assert!(sent[0].subject().contains("Printer on fire"));
    assert!(sent[0].tls, "the sink saw a plaintext session");
    assert!(
        sent[0]
            .tls_version
            .as_deref()
            .is_some_and(|v| v.starts_with("TLSv1.")),
        "{:?}",
        sent[0].tls_version
    );
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM outbox WHERE status = 'sent'"),
        1
    );
}

#[test]
fn smtp_starttls_with_the_test_ca_sends_the_ack_encrypted() {
    let desk = Desk::with(smtp(TlsMode::StartTls, true));
    assert_ack_sent_over_tls(&desk);
}

#[test]
fn smtp_implicit_tls_with_the_test_ca_sends_the_ack_encrypted() {
    let desk = Desk::with(smtp(TlsMode::Tls, true));
    assert_ack_sent_over_tls(&desk);
}

/// Without the CA the send fails as transient: the ack stays queued (pending, one attempt,
/// the reason recorded) and the sink never receives it. Trusting the CA sends it.
fn assert_ack_kept_without_the_ca(mode: TlsMode, security_line: &str) {
    let desk = Desk::with(smtp(mode, false));
    deliver_one(&desk, "fire@customer.org");
    let (code, report, _) = run_once_status(&desk);
    // The mailbox side is fine, so the cycle succeeds; the outbox reports the retry.
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["new_tickets"], 1, "{report}");
    assert_eq!(report["sent"], 0, "{report}");
    assert_eq!(report["retrying"], 1, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    assert!(desk.smtp.attempts().is_empty(), "no message reached DATA");
    assert_eq!(
        desk.count(
            "SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND attempts = 1 \
             AND last_error LIKE '%certificate%'"
        ),
        1,
        "the ack must stay queued with the reason"
    );
    assert_eq!(desk.count("SELECT COUNT(*) FROM outbox"), 1);

    trust_test_ca_in_config(&desk, security_line);
    let report = desk.run_once();
    assert_eq!(report["sent"], 1, "{report}");
    let sent = desk.sent(1);
    assert_eq!(sent.len(), 1);
    assert!(sent[0].tls);
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM outbox WHERE status = 'sent' AND attempts = 2"),
        1
    );
}

#[test]
fn smtp_tls_without_the_ca_keeps_the_ack_queued() {
    assert_ack_kept_without_the_ca(TlsMode::Tls, "security = \"tls\"");
}

#[test]
fn smtp_starttls_without_the_ca_keeps_the_ack_queued() {
    assert_ack_kept_without_the_ca(TlsMode::StartTls, "security = \"starttls\"");
}

// --- The sink itself: its `tls` record must tell the cases apart ---------------------

/// A lettre transport to `localhost:port`: plaintext, or STARTTLS / implicit TLS trusting
/// the given CA file.
fn lettre_to(port: u16, tls: Option<(TlsMode, &std::path::Path)>) -> LettreTransport {
    let builder = LettreTransport::builder_dangerous("localhost")
        .port(port)
        .timeout(Some(Duration::from_secs(10)));
    let builder = match tls {
        None => builder.tls(Tls::None),
        Some((mode, ca)) => {
            let cert = Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
            let params = TlsParameters::builder("localhost".to_owned())
                .add_root_certificate(cert)
                .build_rustls()
                .unwrap();
            builder.tls(match mode {
                TlsMode::StartTls => Tls::Required(params),
                TlsMode::Tls => Tls::Wrapper(params),
            })
        }
    };
    builder.build()
}

fn sink_envelope() -> Envelope {
    Envelope::new(
        Some("helpdesk@example.org".parse().unwrap()),
        vec!["customer@example.com".parse().unwrap()],
    )
    .unwrap()
}

const SINK_MAIL: &[u8] = b"From: helpdesk@example.org\r\nTo: customer@example.com\r\n\
Subject: sink\r\nMessage-ID: <sink@example.org>\r\n\r\nHello";

#[tokio::test]
async fn sink_records_plaintext_sessions_as_not_tls() {
    let sink = SmtpSink::start();
    lettre_to(sink.port, None)
        .send_raw(&sink_envelope(), SINK_MAIL)
        .await
        .unwrap();
    let mail = sink.wait_for_async(1, Duration::from_secs(10)).await;
    assert_eq!(mail.len(), 1);
    assert!(!mail[0].tls);
    assert_eq!(mail[0].tls_version, None);
}

#[tokio::test]
async fn sink_with_starttls_refuses_plaintext_mail_and_records_tls() {
    let certs = TestCerts::generate();
    let sink = SmtpSink::start_with(SinkSecurity::StartTls {
        cert: certs.cert.clone(),
        key: certs.key.clone(),
    });
    // A client that does not upgrade is refused at MAIL (530, RFC 3207 §4).
    let err = lettre_to(sink.port, None)
        .send_raw(&sink_envelope(), SINK_MAIL)
        .await
        .unwrap_err();
    assert_eq!(
        err.status().map(|code| code.to_string()).as_deref(),
        Some("530")
    );
    assert!(sink.attempts().is_empty());

    lettre_to(sink.port, Some((TlsMode::StartTls, &certs.ca_cert)))
        .send_raw(&sink_envelope(), SINK_MAIL)
        .await
        .unwrap();
    let mail = sink.wait_for_async(1, Duration::from_secs(10)).await;
    assert_eq!(mail.len(), 1);
    assert!(mail[0].tls);
    assert_eq!(mail[0].data, [SINK_MAIL, b"\r\n"].concat());
}

#[tokio::test]
async fn sink_with_implicit_tls_records_tls() {
    let certs = TestCerts::generate();
    let sink = SmtpSink::start_with(SinkSecurity::Tls {
        cert: certs.cert.clone(),
        key: certs.key.clone(),
    });
    lettre_to(sink.port, Some((TlsMode::Tls, &certs.ca_cert)))
        .send_raw(&sink_envelope(), SINK_MAIL)
        .await
        .unwrap();
    let mail = sink.wait_for_async(1, Duration::from_secs(10)).await;
    assert_eq!(mail.len(), 1);
    assert!(mail[0].tls);
}

// --- A server that accepts the connection and then says nothing ----------------------

/// Accepts TCP connections on 127.0.0.1 and holds them open without ever sending a byte:
/// a server (or a middlebox) that hangs in the TLS handshake or before its greeting.
struct StalledServer {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StalledServer {
    fn start() -> StalledServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => held.push(stream),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        StalledServer {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for StalledServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Replaces the first line equal to `old` in the desk's config with `new` (whole lines).
fn replace_config_line(desk: &Desk, old: &str, new: &str) {
    let text = std::fs::read_to_string(&desk.config).unwrap();
    let mut done = false;
    let lines: Vec<&str> = text
        .lines()
        .map(|line| {
            if !done && line == old {
                done = true;
                new
            } else {
                line
            }
        })
        .collect();
    assert!(done, "no line {old:?} in the config:\n{text}");
    std::fs::write(&desk.config, lines.join("\n") + "\n").unwrap();
}

/// Runs `run --once --json` and gives it `bound` to finish; `None` (after killing it) if it
/// still runs then. A liveness bound, many times the daemon's own timeout: the point is
/// "it ends at all", not how fast.
fn run_once_within(desk: &Desk, bound: Duration) -> Option<(Option<i32>, Value)> {
    let mut child = std::process::Command::new(crate::support::postdesk_bin())
        .arg("--config")
        .arg(&desk.config)
        .args(["run", "--once", "--json"])
        .env("POSTDESK_LOG", "info")
        .env_remove("POSTDESK_FAULT")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    if !eventually(bound, || matches!(child.try_wait(), Ok(Some(_)))) {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    }
    let out = child.wait_with_output().unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    Some((out.status.code(), report))
}

/// Regression: the TLS handshake and STARTTLS used to run without a timeout, so a server
/// that stalled there hung run --once (and a mailbox loop) forever.
#[test]
fn imap_tls_handshake_with_a_stalled_server_times_out() {
    let desk = Desk::with(imap(TlsMode::Tls, true));
    let stalled = StalledServer::start();
    let tls_port = desk.dovecot.tls_port.unwrap();
    replace_config_line(
        &desk,
        &format!("port = {tls_port}"),
        &format!("port = {}\ntimeout_secs = 2", stalled.port),
    );
    // timeout_secs = 2 bounds the handshake; give it far more than that.
    let Some((code, report)) = run_once_within(&desk, Duration::from_secs(60)) else {
        panic!("run --once still hangs in the TLS handshake after 90 s");
    };
    assert_eq!(code, Some(1), "{report}");
    assert!(
        report["mailbox_errors"][0]
            .as_str()
            .is_some_and(|e| e.contains("support")),
        "{report}"
    );
}

/// Regression: lettre bounds only the TCP connect, so a relay that stalled in the TLS
/// handshake (or before its greeting) used to block the outbox forever.
#[test]
fn smtp_tls_handshake_with_a_stalled_relay_is_retried_later() {
    let desk = Desk::with(smtp(TlsMode::Tls, true));
    let stalled = StalledServer::start();
    replace_config_line(
        &desk,
        &format!("port = {}", desk.smtp.port),
        &format!("port = {}\ntimeout_secs = 2", stalled.port),
    );
    deliver_one(&desk, "fire@customer.org");
    let Some((code, report)) = run_once_within(&desk, Duration::from_secs(60)) else {
        panic!("run --once still hangs sending to a stalled relay after 60 s (timeout_secs = 2)");
    };
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["new_tickets"], 1, "{report}");
    assert_eq!(report["retrying"], 1, "{report}");
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND attempts = 1"),
        1
    );
}
