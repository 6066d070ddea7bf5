//! A real SMTP server for tests: `tests/support/smtp_sink.py` (Python aiosmtpd) on a free
//! 127.0.0.1 port, capturing every message to a JSON file in a temp dir.
//!
//! [`SmtpSink::fail_next`] drops a fault file into that dir so the sink answers the next
//! DATA (or RCPT) with a chosen reply code: 4xx to exercise retries, 5xx to exercise
//! permanent failure (RFC 5321 §4.2.1). Messages rejected at DATA are still recorded, so
//! [`SmtpSink::attempts`] shows what each failed try carried. AUTH PLAIN/LOGIN is offered without TLS and
//! accepts any credentials, which are recorded. The sink exits when its handle drops, and
//! on its own when the test process dies (it watches its stdin pipe).
//!
//! [`SmtpSink::start_with`] runs it with TLS instead: STARTTLS required on the plain port
//! (RFC 3207), or implicit TLS from the first byte (RFC 8314), with a certificate such as
//! the one [`TestCerts`](super::dovecot::TestCerts) makes. Every captured message says
//! whether its session was encrypted ([`CapturedMail::tls`]), as the sink saw it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use mail_parser::{HeaderValue, Message, MessageParser};
use serde::Deserialize;
use tempfile::TempDir;

use super::{ensure_test_deps, log_tail, python};

/// How long the sink may take to print `READY <port>`.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How often `wait_for` looks at the capture dir.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// A running SMTP sink; killed when dropped.
pub struct SmtpSink {
    /// The SMTP port on 127.0.0.1: plaintext without STARTTLS unless the sink was started
    /// with [`SmtpSink::start_with`] (see [`SinkSecurity`]).
    pub port: u16,
    child: Child,
    /// Kept open so the sink can tell when we are gone (EOF on its stdin).
    _stdin: Option<ChildStdin>,
    log: PathBuf,
    next_fault: AtomicU32,
    // Declared last so it is removed after the sink has stopped.
    dir: TempDir,
}

/// One message the sink accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedMail {
    /// The envelope sender (MAIL FROM) without brackets; `<>` for the null sender.
    pub mail_from: String,
    /// The envelope recipients (RCPT TO) that were accepted, in order.
    pub rcpt_to: Vec<String>,
    /// The message exactly as received after DATA: dot-unstuffed, including the CRLF that
    /// precedes the final dot, which ends the last line (RFC 5321 §4.1.1.4). lettre always
    /// sends CRLF before the dot, so `send_raw(x)` arrives as `x` + CRLF.
    pub data: Vec<u8>,
    /// The name the client gave in EHLO/HELO.
    pub helo: String,
    /// The credentials of a successful AUTH in this session, if the client authenticated.
    pub auth: Option<SmtpLogin>,
    /// The sink's reply to the DATA: 250, or the code of an injected fault.
    pub reply_code: u16,
    /// Whether the session was encrypted when DATA came (after STARTTLS, or on an
    /// implicit-TLS sink), as the sink's own connection reports it.
    pub tls: bool,
    /// The negotiated protocol version (`TLSv1.3`) when `tls`, else `None`.
    pub tls_version: Option<String>,
}

/// How the sink secures its port. The certificate (PEM, may hold the chain) and key are
/// read once at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SinkSecurity {
    /// Plaintext, STARTTLS not offered: what [`SmtpSink::start`] runs.
    #[default]
    Plain,
    /// Plaintext port that offers STARTTLS and requires it (RFC 3207): MAIL, RCPT, DATA
    /// and AUTH before the upgrade get `530`.
    StartTls { cert: PathBuf, key: PathBuf },
    /// TLS from the first byte (RFC 8314 implicit TLS, "SMTPS").
    Tls { cert: PathBuf, key: PathBuf },
}

/// Credentials a client sent with AUTH PLAIN or LOGIN.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SmtpLogin {
    pub login: String,
    pub password: String,
}

/// The JSON record `smtp_sink.py` writes.
#[derive(Deserialize)]
struct Record {
    mail_from: String,
    rcpt_tos: Vec<String>,
    helo: Option<String>,
    auth: Option<SmtpLogin>,
    reply_code: u16,
    data_b64: String,
    #[serde(default)]
    tls: bool,
    #[serde(default)]
    tls_version: Option<String>,
}

impl SmtpSink {
    /// Starts a plaintext sink on a port the kernel picks. Panics with the sink's log if it
    /// does not come up.
    pub fn start() -> SmtpSink {
        SmtpSink::start_with(SinkSecurity::Plain)
    }

    /// Like [`SmtpSink::start`], securing the port as `security` says.
    pub fn start_with(security: SinkSecurity) -> SmtpSink {
        ensure_test_deps();
        let tls_args: Vec<&std::ffi::OsStr> = match &security {
            SinkSecurity::Plain => Vec::new(),
            SinkSecurity::StartTls { cert, key } => {
                vec!["--starttls".as_ref(), cert.as_os_str(), key.as_os_str()]
            }
            SinkSecurity::Tls { cert, key } => {
                vec!["--tls".as_ref(), cert.as_os_str(), key.as_os_str()]
            }
        };
        let dir = tempfile::Builder::new()
            .prefix("postdesk-smtp-")
            .tempdir()
            .expect("create temp dir for the SMTP sink");
        let log = dir.path().join("sink.log");
        let log_file = std::fs::File::create(&log).expect("create sink.log");
        let capture_dir = dir.path().join("mail");
        std::fs::create_dir(&capture_dir).expect("create the SMTP capture dir");
        let mut child = Command::new(python())
            .arg(script_path())
            .arg("0")
            .arg(&capture_dir)
            .arg("--exit-on-stdin-eof")
            .args(&tls_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot run {}: {err}", python().display()));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");

        // Read the READY line on a thread so that a silent sink cannot hang us.
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = ready_tx.send(line);
        });
        let line = ready_rx.recv_timeout(START_TIMEOUT).unwrap_or_default();
        let port = line
            .strip_prefix("READY ")
            .and_then(|port| port.trim().parse().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "SMTP sink did not start (stdout: {line:?}).\n--- {} ---\n{}",
                log.display(),
                log_tail(&log, 30)
            );
        };
        SmtpSink {
            port,
            child,
            _stdin: stdin,
            log,
            next_fault: AtomicU32::new(1),
            dir,
        }
    }

    /// Every message accepted so far, in arrival order.
    pub fn messages(&self) -> Vec<CapturedMail> {
        let mut messages = self.attempts();
        messages.retain(CapturedMail::accepted);
        messages
    }

    /// Every message received with DATA so far, in arrival order, including those rejected
    /// by [`SmtpSink::fail_next`] (see [`CapturedMail::reply_code`]): retries can be
    /// compared with the attempt that failed.
    pub fn attempts(&self) -> Vec<CapturedMail> {
        let mut names: Vec<String> = std::fs::read_dir(self.capture_dir())
            .expect("read the SMTP capture dir")
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| {
                name.strip_suffix(".json")
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
            .collect();
        // Zero-padded counters: name order is arrival order.
        names.sort();
        names
            .iter()
            .map(|name| {
                let path = self.capture_dir().join(name);
                let json = std::fs::read(&path)
                    .unwrap_or_else(|err| panic!("read {}: {err}", path.display()));
                let record: Record = serde_json::from_slice(&json)
                    .unwrap_or_else(|err| panic!("parse {}: {err}", path.display()));
                CapturedMail {
                    mail_from: record.mail_from,
                    rcpt_to: record.rcpt_tos,
                    data: base64::engine::general_purpose::STANDARD
                        .decode(record.data_b64)
                        .unwrap_or_else(|err| panic!("base64 in {}: {err}", path.display())),
                    helo: record.helo.unwrap_or_default(),
                    auth: record.auth,
                    reply_code: record.reply_code,
                    tls: record.tls,
                    tls_version: record.tls_version,
                }
            })
            .collect()
    }

    /// Polls until at least `n` messages arrived or `timeout` passed, and returns what is
    /// there then (check the length). Blocks the thread: from a current-thread tokio test
    /// whose daemon runs in the same runtime, use [`SmtpSink::wait_for_async`].
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<CapturedMail> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= n || Instant::now() >= deadline {
                return messages;
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// [`SmtpSink::wait_for`] that sleeps with tokio, so tasks on the same runtime go on.
    pub async fn wait_for_async(&self, n: usize, timeout: Duration) -> Vec<CapturedMail> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= n || Instant::now() >= deadline {
                return messages;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Makes the next DATA command fail with `code` (e.g. 451 transient, 550 permanent).
    /// Calls queue up: two calls fail the next two messages.
    pub fn fail_next(&self, code: u16) {
        self.add_fault("DATA", code);
    }

    /// Makes the next RCPT TO command fail with `code`; queued like [`SmtpSink::fail_next`]
    /// and consumed in order with it.
    pub fn fail_next_rcpt(&self, code: u16) {
        self.add_fault("RCPT", code);
    }

    fn add_fault(&self, stage: &str, code: u16) {
        assert!(
            (400..=599).contains(&code),
            "SMTP fault code {code} must be a 4xx or 5xx reply code"
        );
        let n = self.next_fault.fetch_add(1, Ordering::SeqCst);
        let name = format!("fault-{n:06}");
        // Write then rename: the sink never sees a half-written fault file.
        let tmp = self.capture_dir().join(format!(".{name}.tmp"));
        std::fs::write(&tmp, format!("{stage} {code}\n")).expect("write SMTP fault file");
        std::fs::rename(&tmp, self.capture_dir().join(name)).expect("rename SMTP fault file");
    }

    fn capture_dir(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    /// The sink's own log (Python stderr).
    pub fn log_path(&self) -> &Path {
        &self.log
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- SMTP sink log ({}), last lines ---\n{}",
                self.log.display(),
                log_tail(&self.log, 40)
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl CapturedMail {
    /// Whether the sink accepted the message (2xx reply to DATA).
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.reply_code)
    }

    /// The message parsed by mail-parser.
    pub fn parsed(&self) -> Message<'_> {
        MessageParser::default()
            .parse(&self.data)
            .expect("mail-parser returns a message for any input with headers")
    }

    /// The first header `name` (case-insensitive), decoded: RFC 2047 words decoded,
    /// addresses as `Name <addr>, addr`, dates in RFC 822 form, and message-id headers as
    /// ids *without* angle brackets, space-separated (mail-parser strips the brackets; use
    /// [`CapturedMail::header_raw`] to see them).
    pub fn header(&self, name: &str) -> Option<String> {
        let message = self.parsed();
        let value = message.header(name.to_owned())?;
        let decoded = match value {
            HeaderValue::Text(text) => text.to_string(),
            HeaderValue::TextList(list) => list.join(" "),
            HeaderValue::Address(address) => address
                .iter()
                .map(|addr| match (addr.name(), addr.address()) {
                    (Some(name), Some(address)) => format!("{name} <{address}>"),
                    (None, Some(address)) => address.to_owned(),
                    (Some(name), None) => name.to_owned(),
                    (None, None) => String::new(),
                })
                .collect::<Vec<_>>()
                .join(", "),
            HeaderValue::DateTime(date) => date.to_rfc822(),
            HeaderValue::ContentType(content_type) => match content_type.subtype() {
                Some(subtype) => format!("{}/{subtype}", content_type.ctype()),
                None => content_type.ctype().to_owned(),
            },
            HeaderValue::Received(_) | HeaderValue::Empty => message
                .header_raw(name.to_owned())
                .unwrap_or_default()
                .trim()
                .to_owned(),
        };
        Some(decoded)
    }

    /// The first header `name` as it appears on the wire after the colon, trimmed (folding
    /// and encoded words kept).
    pub fn header_raw(&self, name: &str) -> Option<String> {
        let message = self.parsed();
        message
            .header_raw(name.to_owned())
            .map(|raw| raw.trim().to_owned())
    }

    /// The decoded Subject, empty if there is none.
    pub fn subject(&self) -> String {
        self.parsed().subject().unwrap_or_default().to_owned()
    }

    /// The first text body part, decoded (mail-parser derives it from HTML if there is no
    /// text/plain part); empty if there is none.
    pub fn body_text(&self) -> String {
        self.parsed()
            .body_text(0)
            .map(|text| text.into_owned())
            .unwrap_or_default()
    }
}

fn script_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py")
}
