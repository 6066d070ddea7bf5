//! Shared harness for the integration tests: real servers on 127.0.0.1.
//!
//! - [`Dovecot`]: a private Dovecot IMAP server per test, from a generated config in a temp
//!   dir, with a small blocking IMAP client to seed and inspect mailboxes.
//! - [`SmtpSink`]: a real SMTP server (Python aiosmtpd, `tests/support/smtp_sink.py`) that
//!   writes every accepted message to a file and can be told to fail the next command.
//!
//! Both stop when their handle drops, also when the test panics. Neither knows anything
//! about the postdesk library: they speak the protocols, so they test what the daemon
//! really sends. Machine prerequisites come from `scripts/test-deps.sh`.

// Not every test uses every helper; the harness is shared by all of them.
#![allow(dead_code)]
// The harness fails the test, with the server's words, the moment a server misbehaves;
// clippy's allow-*-in-tests settings do not reach non-#[test] functions.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

pub mod chromium;
pub mod dovecot;
pub mod relay;
pub mod smtp;
pub mod synapse;
pub mod telegram;

pub use dovecot::Dovecot;
pub use smtp::{CapturedMail, SmtpLogin, SmtpSink};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Where the tests leave files for people to look at: `$POSTDESK_TEST_ARTIFACTS`, else
/// `target/test-artifacts`.
pub fn artifacts_dir() -> std::path::PathBuf {
    std::env::var_os("POSTDESK_TEST_ARTIFACTS").map_or_else(
        || {
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
                .parent()
                .unwrap()
                .join("test-artifacts")
        },
        std::path::PathBuf::from,
    )
}

/// The `postdesk` binary Cargo built for this test run.
pub fn postdesk_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_postdesk"))
}

/// Panics with instructions unless Dovecot (`dovecot`, `doveadm`) and Python's aiosmtpd are
/// installed. [`Dovecot::start`] and [`SmtpSink::start`] call it; the check runs once per
/// test binary.
pub fn ensure_test_deps() {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = CHECKED.get_or_init(|| {
        let mut missing = Vec::new();
        for program in ["dovecot", "doveadm"] {
            if find_program(program).is_none() {
                missing.push(format!("`{program}` (Debian package dovecot-imapd)"));
            }
        }
        let aiosmtpd = Command::new(python())
            .args(["-c", "import aiosmtpd"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !aiosmtpd.is_ok_and(|status| status.success()) {
            missing.push(format!(
                "Python module aiosmtpd for `{}`",
                python().display()
            ));
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing.join(", "))
        }
    });
    if let Err(missing) = result {
        panic!(
            "Integration tests need real mail servers, but these are missing: {missing}. \
             Run scripts/test-deps.sh (as root or with sudo) once on this machine."
        );
    }
}

/// The Python interpreter for the SMTP sink: `$POSTDESK_TEST_PYTHON`, else the project's
/// virtual environment (`.venv`, made by scripts/test-deps.sh), else `python3`.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("POSTDESK_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python3");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// Finds a program in `$PATH` or in the sbin/bin directories a non-root `$PATH` often
/// lacks (Debian installs `dovecot` in /usr/sbin).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The last `lines` lines of a log file, for failure messages.
pub fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all.get(all.len().saturating_sub(lines)..)
                .unwrap_or_default()
                .join("\n")
        }
        Err(err) => format!("(cannot read {}: {err})", path.display()),
    }
}
