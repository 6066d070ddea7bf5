//! A postdesk under test: a real Dovecot, a real SMTP sink, a config file and a database
//! in a temporary directory, and the real `postdesk` binary run as a subprocess.
//!
//! By default postdesk talks to both servers in plaintext on 127.0.0.1. [`Opts::imap_tls`]
//! and [`Opts::smtp_tls`] switch the "support" mailbox or `[smtp]` to STARTTLS or implicit
//! TLS against a certificate from a private test CA ([`Desk::certs`]), addressing the server
//! as `localhost`, the name in the certificate.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::dovecot::{DovecotOptions, TestCerts};
use crate::support::smtp::SinkSecurity;
use crate::support::{Dovecot, SmtpSink, log_tail, postdesk_bin};

pub struct Desk {
    pub dovecot: Dovecot,
    pub smtp: SmtpSink,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    /// The test CA and server certificate, when [`Opts::imap_tls`] or [`Opts::smtp_tls`]
    /// asked for TLS.
    pub certs: Option<TestCerts>,
}

/// How postdesk secures a connection in a TLS test (config `security`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// `security = "starttls"` on the server's plain port.
    StartTls,
    /// `security = "tls"` on the server's implicit-TLS port.
    Tls,
}

/// TLS for one side of the desk; see [`Opts::imap_tls`] and [`Opts::smtp_tls`].
#[derive(Clone, Copy, Debug)]
pub struct TlsOpts {
    pub mode: TlsMode,
    /// Write `tls_ca_file = <the test CA>`. Without it postdesk trusts only the public web
    /// roots, so the handshake must fail.
    pub trust_test_ca: bool,
}

/// Options for the generated configuration.
#[derive(Clone)]
pub struct Opts {
    pub after_ingest: &'static str,
    pub two_mailboxes: bool,
    pub max_message_mb: u64,
    pub autoreply: bool,
    /// Whole lines appended to the end of the config (after `[[agent]]`).
    pub extra: &'static str,
    /// Whole lines appended to the "support" `[[mailbox]]` table, e.g.
    /// `"idle_timeout_secs = 1\nbatch_size = 50"`.
    pub mailbox_extra: &'static str,
    /// How the test Dovecot runs (e.g. without IDLE).
    pub dovecot: DovecotOptions,
    /// `None` (the default): the "support" mailbox is `host = "127.0.0.1"`, plain.
    /// `Some`: Dovecot runs with TLS ([`Dovecot::start_tls`]) and the mailbox becomes
    /// `host = "localhost"` with the given security, on the imaps port for
    /// [`TlsMode::Tls`]. The "sales" mailbox stays plain.
    pub imap_tls: Option<TlsOpts>,
    /// `None` (the default): `[smtp]` is `host = "127.0.0.1"`, plain. `Some`: the sink
    /// requires STARTTLS or speaks implicit TLS, and `[smtp]` is `host = "localhost"`
    /// with the given security.
    pub smtp_tls: Option<TlsOpts>,
    /// Agent notifications (off by default: the ingest tests count every mail sent).
    pub notify: bool,
    /// The daily digest at `[digest] hour` (off by default: it would add mails to every
    /// test that runs after 08:00 UTC).
    pub digest: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            after_ingest: "after_ingest = \"keep\"",
            two_mailboxes: false,
            max_message_mb: 40,
            autoreply: true,
            extra: "",
            mailbox_extra: "",
            dovecot: DovecotOptions::default(),
            imap_tls: None,
            smtp_tls: None,
            notify: false,
            digest: false,
        }
    }
}

impl Desk {
    pub fn start() -> Desk {
        Desk::with(Opts::default())
    }

    pub fn with(opts: Opts) -> Desk {
        let certs = (opts.imap_tls.is_some() || opts.smtp_tls.is_some()).then(TestCerts::generate);
        let users = [("support", "secret"), ("sales", "secret2")];
        let dovecot = match (&certs, opts.imap_tls) {
            (Some(certs), Some(_)) => Dovecot::start_tls(&users, opts.dovecot, certs),
            _ => Dovecot::start_with(&users, opts.dovecot),
        };
        let smtp = match (&certs, opts.smtp_tls) {
            (Some(certs), Some(tls)) => {
                let (cert, key) = (certs.cert.clone(), certs.key.clone());
                SmtpSink::start_with(match tls.mode {
                    TlsMode::StartTls => SinkSecurity::StartTls { cert, key },
                    TlsMode::Tls => SinkSecurity::Tls { cert, key },
                })
            }
            _ => SmtpSink::start(),
        };
        let imap = Endpoint::new(
            opts.imap_tls,
            certs.as_ref(),
            dovecot.port,
            dovecot.tls_port,
        );
        // The sink has one port, in whichever mode it was started.
        let smtp_end = Endpoint::new(opts.smtp_tls, certs.as_ref(), smtp.port, Some(smtp.port));
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("postdesk.toml");
        let mut text = format!(
            r#"
[database]
path = "postdesk.db"

[[mailbox]]
name = "support"
host = "{host}"
port = {port}
security = "{security}"{ca}
username = "support"
password = "secret"
folders = ["INBOX"]
addresses = ["support@example.com"]
{after}
poll_interval_secs = 1
{mailbox_extra}
"#,
            host = imap.host,
            port = imap.port,
            security = imap.security,
            ca = imap.ca_line,
            after = opts.after_ingest,
            mailbox_extra = opts.mailbox_extra,
        );
        if opts.two_mailboxes {
            text.push_str(&format!(
                r#"
[[mailbox]]
name = "sales"
host = "127.0.0.1"
port = {port}
security = "plain"
username = "sales"
password = "secret2"
folders = ["INBOX"]
addresses = ["sales@example.com"]
"#,
                port = dovecot.port
            ));
        }
        text.push_str(&format!(
            r#"
[smtp]
host = "{smtp_host}"
port = {smtp}
security = "{smtp_security}"{smtp_ca}
from = "Example Support <support@example.com>"
retry_base_secs = 0
max_attempts = 3

[autoreply]
enabled = {autoreply}

[notify]
enabled = {notify}

[ingest]
max_message_mb = {max_mb}
{digest}
[[agent]]
name = "alice"
email = "alice@example.com"
{extra}
"#,
            smtp_host = smtp_end.host,
            smtp = smtp_end.port,
            smtp_security = smtp_end.security,
            smtp_ca = smtp_end.ca_line,
            autoreply = opts.autoreply,
            notify = opts.notify,
            max_mb = opts.max_message_mb,
            digest = if opts.digest {
                ""
            } else {
                "\n[digest]\nenabled = false\n"
            },
            extra = opts.extra,
        ));
        std::fs::write(&config, text).unwrap();
        Desk {
            dovecot,
            smtp,
            dir,
            config,
            certs,
        }
    }

    /// The test CA certificate; panics unless the desk was started with TLS.
    pub fn ca_cert(&self) -> &Path {
        &self
            .certs
            .as_ref()
            .expect("this Desk was started without imap_tls or smtp_tls")
            .ca_cert
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("postdesk.db")
    }

    /// Runs the binary with these arguments after `--config`.
    pub fn cmd(&self, args: &[&str]) -> Output {
        self.cmd_env(args, &[])
    }

    pub fn cmd_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(postdesk_bin());
        c.arg("--config").arg(&self.config).args(args);
        c.env("POSTDESK_LOG", "info");
        c.env_remove("POSTDESK_FAULT");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    /// Starts `postdesk run` (the daemon) as a child process with `POSTDESK_LOG=info` plus
    /// `env`, its stderr (the log) going to a file in the test's temp dir. The returned
    /// handle kills the daemon when dropped.
    pub fn spawn_daemon(&self, env: &[(&str, &str)]) -> RunningDaemon {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = self.dir.path().join(format!("daemon-{n}.log"));
        let stderr = std::fs::File::create(&log).unwrap();
        let mut c = Command::new(postdesk_bin());
        c.arg("--config").arg(&self.config).arg("run");
        c.env("POSTDESK_LOG", "info");
        c.env_remove("POSTDESK_FAULT");
        c.env_remove("NOTIFY_SOCKET");
        for (k, v) in env {
            c.env(k, v);
        }
        let child = c
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        RunningDaemon { child, log }
    }

    /// [`Desk::spawn_daemon`] with its `[http]` listener on `port`: waits until `/healthz`
    /// answers 200, or fails the test with the daemon's log.
    pub fn spawn_daemon_http(&self, port: u16, env: &[(&str, &str)]) -> RunningDaemon {
        let d = self.spawn_daemon(env);
        let ok = eventually(Duration::from_secs(30), || {
            crate::support::relay::request(port, "GET", "/healthz", &[], b"")
                .is_ok_and(|r| r.status == 200)
        });
        assert!(
            ok,
            "the daemon's /healthz never answered 200:\n{}",
            d.log_text()
        );
        d
    }

    /// `run --once --json`, asserting success; returns the report.
    pub fn run_once(&self) -> Value {
        let out = self.cmd(&["run", "--once", "--json"]);
        assert!(
            out.status.success(),
            "run --once failed: {}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "bad JSON from run --once: {e}: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// `run --once` returning stderr too (for log assertions).
    pub fn run_once_logs(&self) -> (Value, String) {
        let out = self.cmd(&["run", "--once", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            serde_json::from_slice(&out.stdout).unwrap(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    pub fn tickets(&self) -> Vec<Value> {
        let out = self.cmd(&["ticket", "list", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut list = v.as_array().unwrap().clone();
        list.sort_by_key(|t| t["id"].as_i64());
        list
    }

    pub fn show(&self, id: i64) -> Value {
        let out = self.cmd(&["ticket", "show", &id.to_string(), "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn messages(&self, id: i64) -> Vec<Value> {
        self.show(id)["messages"].as_array().unwrap().clone()
    }

    /// A reply token for (ticket, agent address) valid until `expires` (Unix seconds),
    /// minted with the daemon's own keyring from the database, as a notification has it.
    pub fn agent_token(&self, ticket: i64, email: &str, expires: i64) -> String {
        let stored = self.query_string(&format!(
            "SELECT value FROM settings WHERE key = '{}'",
            postdesk::store::agent::KEYRING_SETTING
        ));
        let ring = postdesk::agent::token::Keyring::from_storage(&stored).unwrap();
        postdesk::agent::token::mint(
            &ring,
            ticket,
            postdesk::agent::token::identity_id(email),
            expires,
        )
        .unwrap()
    }

    /// One text value straight from SQLite.
    pub fn query_string(&self, sql: &str) -> String {
        self.scalar::<String>(sql)
    }

    /// Appends to the support INBOX.
    pub fn deliver(&self, raw: &[u8]) -> u32 {
        self.dovecot.append("support", "INBOX", raw, &[])
    }

    pub fn sent(&self, n: usize) -> Vec<crate::support::CapturedMail> {
        self.smtp.wait_for(n, Duration::from_secs(10))
    }

    /// Row counts straight from SQLite, for invariants the CLI does not show.
    pub fn count(&self, sql: &str) -> i64 {
        self.scalar::<i64>(sql)
    }

    /// The one value `sql` selects, read on a thread of its own (tests are synchronous).
    fn scalar<T>(&self, sql: &str) -> T
    where
        T: Send
            + Unpin
            + 'static
            + for<'r> sqlx::Decode<'r, sqlx::Sqlite>
            + sqlx::Type<sqlx::Sqlite>,
    {
        self.try_scalar(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Runs one statement straight on SQLite (to set up a state the daemon must survive).
    pub fn execute(&self, sql: &str) {
        let db = self.db_path();
        let sql = sql.to_string();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                use sqlx::Connection;
                let mut c = sqlx::SqliteConnection::connect(&format!("sqlite:{}", db.display()))
                    .await
                    .unwrap();
                sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .execute(&mut c)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            })
        })
        .join()
        .unwrap()
    }

    /// [`Desk::count`], or None while the database cannot answer it yet (a daemon just
    /// started may not have created or migrated it).
    pub fn try_count(&self, sql: &str) -> Option<i64> {
        self.try_scalar::<i64>(sql).ok()
    }

    fn try_scalar<T>(&self, sql: &str) -> Result<T, String>
    where
        T: Send
            + Unpin
            + 'static
            + for<'r> sqlx::Decode<'r, sqlx::Sqlite>
            + sqlx::Type<sqlx::Sqlite>,
    {
        let db = self.db_path();
        let sql = sql.to_string();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                use sqlx::Connection;
                let mut c = sqlx::SqliteConnection::connect(&format!("sqlite:{}", db.display()))
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::query_scalar::<_, T>(sqlx::AssertSqlSafe(sql))
                    .fetch_one(&mut c)
                    .await
                    .map_err(|e| e.to_string())
            })
        })
        .join()
        .unwrap()
    }
}

/// The connection lines of one `[[mailbox]]` or `[smtp]` table.
struct Endpoint {
    host: &'static str,
    port: u16,
    security: &'static str,
    /// `""`, or a newline and the `tls_ca_file` line (appended to the `security` line, so
    /// that the default config text stays exactly what it always was).
    ca_line: String,
}

impl Endpoint {
    /// `plain_port` serves plaintext and STARTTLS, `tls_port` implicit TLS.
    fn new(
        tls: Option<TlsOpts>,
        certs: Option<&TestCerts>,
        plain_port: u16,
        tls_port: Option<u16>,
    ) -> Endpoint {
        let Some(tls) = tls else {
            return Endpoint {
                host: "127.0.0.1",
                port: plain_port,
                security: "plain",
                ca_line: String::new(),
            };
        };
        let ca_line = match certs {
            Some(certs) if tls.trust_test_ca => {
                // A TOML basic string: the temp path is plain ASCII, Debug-quoting suffices.
                format!("\ntls_ca_file = {:?}", certs.ca_cert.display().to_string())
            }
            _ => String::new(),
        };
        let (security, port) = match tls.mode {
            TlsMode::StartTls => ("starttls", plain_port),
            TlsMode::Tls => (
                "tls",
                tls_port.expect("a server started with TLS has a TLS port"),
            ),
        };
        Endpoint {
            // The certificate's name (also in its SAN as IP:127.0.0.1, but a name is what
            // real configurations use and what SNI carries).
            host: "localhost",
            port,
            security,
            ca_line,
        }
    }
}

/// A `postdesk run` child process whose stderr goes to a file; see [`Desk::spawn_daemon`].
/// Dropping it kills the process (SIGKILL) if it still runs, and on a failing test prints
/// the log tail.
pub struct RunningDaemon {
    pub child: Child,
    pub log: PathBuf,
}

impl RunningDaemon {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The whole log so far.
    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// How many log lines contain `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        self.log_text()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Waits until at least `n` log lines contain `needle`; panics with the log tail after
    /// `timeout` or if the daemon exits first.
    pub fn wait_for_log(&mut self, needle: &str, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log_count(needle) >= n {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the daemon exited ({status}) before logging {needle:?} {n} time(s):\n{}",
                    log_tail(&self.log, 40)
                );
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not log {needle:?} {n} time(s) within {timeout:?}:\n{}",
                log_tail(&self.log, 40)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends a signal by name (`TERM`, `KILL`, ...) with kill(1): the crate has no libc.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name} {} failed", self.pid());
    }

    /// Waits up to `timeout` for the process to exit; panics (after killing it) if not.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "the daemon did not exit within {timeout:?}:\n{}",
                    log_tail(&self.log, 40)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then the exit status (waiting up to 30 s).
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait_exit(Duration::from_secs(30))
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }
}

impl Drop for RunningDaemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- postdesk daemon log ({}), last lines ---\n{}",
                self.log.display(),
                log_tail(&self.log, 60)
            );
        }
    }
}

/// Polls `check` every 50 ms until it returns true or `timeout` passes; returns the last
/// answer. For eventual outcomes: tests never assert how fast something happens.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Builds a customer mail. `extra` are whole header lines ending in CRLF.
pub fn mail(
    from: &str,
    to: &str,
    subject: &str,
    message_id: &str,
    extra: &str,
    body: &str,
) -> Vec<u8> {
    format!(
        "Return-Path: <{ret}>\r\nFrom: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n{extra}\r\n{body}\r\n",
        ret = addr_of(from),
    )
    .into_bytes()
}

/// The bare address inside `Name <addr>`.
pub fn addr_of(s: &str) -> String {
    match (s.find('<'), s.find('>')) {
        (Some(a), Some(b)) if a < b => s[a + 1..b].to_string(),
        _ => s.trim().to_string(),
    }
}

/// The normalised Message-ID of a raw message (as postdesk stores it), by simple scanning.
pub fn message_id_of(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(&raw[..raw.len().min(4 * 1024 * 1024)]);
    text.lines()
        .find_map(|l| l.strip_prefix("Message-ID:"))
        .map(|v| v.trim().trim_matches(['<', '>']).to_lowercase())
        .unwrap()
}
