//! Issue 11, the first hour: the README's quick start and first-conversation walkthrough,
//! end to end, as scripts/quickstart.sh and scripts/walkthrough.py run them (on free ports
//! and a temporary demo directory, with the test build of postdesk).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{ensure_test_deps, postdesk_bin, python};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

struct Quickstart {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl Quickstart {
    fn start(demo: &Path, imap: u16, smtp: u16) -> Quickstart {
        let log = demo.with_extension("log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("bash")
            .arg(root().join("scripts/quickstart.sh"))
            .env("DEMO_DIR", demo)
            .env("DEMO_IMAP_PORT", imap.to_string())
            .env("DEMO_SMTP_PORT", smtp.to_string())
            .env("POSTDESK_BIN", postdesk_bin())
            .env("POSTDESK_TEST_PYTHON", python())
            .env("QUICKSTART_SKIP_DEPS", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        Quickstart { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_for(&mut self, needle: &str) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if self.log().contains(needle) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "quickstart exited ({status}) before {needle:?}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no {needle:?} within 60 s:\n{}", self.log());
    }

    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
    }
}

impl Drop for Quickstart {
    fn drop(&mut self) {
        self.stop();
    }
}

fn walkthrough(demo: &Path, imap: u16) -> std::process::Output {
    Command::new(python())
        .arg(root().join("scripts/walkthrough.py"))
        .env("DEMO_DIR", demo)
        .env("DEMO_IMAP_PORT", imap.to_string())
        .env("POSTDESK_BIN", postdesk_bin())
        .output()
        .unwrap()
}

#[test]
fn the_readme_walkthrough_holds_a_first_conversation_on_the_demo() {
    ensure_test_deps();
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let (imap, smtp) = (free_port(), free_port());
    let mut qs = Quickstart::start(&demo, imap, smtp);
    qs.wait_for("postdesk running");

    let out = walkthrough(&demo, imap);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        qs.log()
    );
    for n in 1..=5 {
        assert!(
            stdout.contains(&format!("=== {n}. ")),
            "step {n}:\n{stdout}"
        );
    }
    // The outbox holds real mail files; the answer reached Carol, applied, not held.
    let emls: Vec<_> = std::fs::read_dir(demo.join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    assert!(emls.len() >= 4, "{emls:?}");
    let answer = emls
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .find(|raw| String::from_utf8_lossy(raw).contains("left our warehouse"))
        .expect("the answer is an .eml in the outbox");
    let parsed = mail_parser::MessageParser::default()
        .parse(&answer)
        .unwrap();
    assert_eq!(
        parsed.to().unwrap().first().unwrap().address(),
        Some("carol@customer.example")
    );
    assert!(stdout.contains("Status open, priority high"), "{stdout}");
    assert!(
        !stdout.contains("Held:"),
        "the agent's reply was held:\n{stdout}"
    );

    // The demo config keeps the user's edits across restarts.
    qs.stop();
    let config = demo.join("postdesk.toml");
    let edited = std::fs::read_to_string(&config).unwrap().replace(
        "max_per_sender_per_hour = 3",
        "max_per_sender_per_hour = 7 # edited",
    );
    std::fs::write(&config, &edited).unwrap();
    let mut again = Quickstart::start(&demo, imap, smtp);
    again.wait_for("postdesk running");
    assert!(again.log().contains("as you left it"), "{}", again.log());
    assert_eq!(std::fs::read_to_string(&config).unwrap(), edited);
    again.stop();
}

#[test]
fn the_quick_start_stops_loudly_when_a_port_is_taken() {
    ensure_test_deps();
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let imap = taken.local_addr().unwrap().port();
    let mut qs = Quickstart::start(&dir.path().join("demo"), imap, free_port());
    let start = Instant::now();
    let status = loop {
        if let Ok(Some(s)) = qs.child.try_wait() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{}", qs.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = qs.log();
    assert!(!status.success(), "{log}");
    assert!(
        log.contains(&format!("port {imap}")) && log.contains("taken"),
        "{log}"
    );
    assert!(!log.contains("postdesk running"), "{log}");
}
