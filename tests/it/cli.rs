//! Issue 11, the command line: what an admin sees from the real binary.

use std::process::Command;

use crate::support::postdesk_bin;

fn postdesk(args: &[&str]) -> std::process::Output {
    Command::new(postdesk_bin()).args(args).output().unwrap()
}

#[test]
fn check_config_reports_every_problem_at_once_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("postdesk.toml");
    // Four type errors, one unknown section, three range errors.
    std::fs::write(
        &path,
        r#"
[[mailbox]]
name = "support"
host = "127.0.0.1"
port = "10143"
username = "support"
password = "secret"
folders = ["INBOX"]
addresses = ["support@example.com"]
poll_interval_secs = "60"
batch_size = 0

[smtp]
host = "127.0.0.1"
port = 70000
from = "support@example.com"
max_attempts = 0

[autoreply]
enabled = "yes"

[security]
token_ttl_days = "ninety"

[notfy]
enabled = true

[[agent]]
name = "alice"
email = "alice@example.com"
"#,
    )
    .unwrap();
    let out = postdesk(&["--config", path.to_str().unwrap(), "check-config", "--json"]);
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems: Vec<String> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    for expected in [
        "mailbox \"support\": port must be a number, not the text \"10143\"",
        "mailbox \"support\": poll_interval_secs must be a whole number, 0 or more, not the text \"60\"",
        "autoreply: enabled must be true or false, not the text \"yes\"",
        "security: token_ttl_days must be a whole number, 0 or more, not the text \"ninety\"",
        "unknown section [notfy]; did you mean [notify]?",
        "mailbox \"support\": batch_size must be 1-10000",
        "smtp: port must be 1-65535, not 70000",
        "smtp: max_attempts must be at least 1",
    ] {
        assert!(
            problems.iter().any(|p| p == expected),
            "{expected:?} not in {problems:#?}"
        );
    }
    assert_eq!(problems.len(), 8, "{problems:#?}");
    // The text form says the same, one line each, and exits non-zero.
    let out = postdesk(&["--config", path.to_str().unwrap(), "check-config"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("8 problem(s)"), "{text}");
}

#[test]
fn every_subcommand_and_argument_has_help_text() {
    // clap prints an argument without help as a bare name; walk every subcommand.
    let cmd = <postdesk::cli::Cli as clap::CommandFactory>::command();
    let mut missing = Vec::new();
    let mut stack = vec![(String::from("postdesk"), cmd)];
    while let Some((path, c)) = stack.pop() {
        for a in c.get_arguments() {
            let id = a.get_id().as_str();
            // clap's own --help and --version.
            if matches!(id, "help" | "version") && a.get_long().is_some() {
                continue;
            }
            if a.get_help().is_none() && a.get_long_help().is_none() {
                missing.push(format!("{path} {id}"));
            }
        }
        for s in c.get_subcommands() {
            if s.get_name() == "help" {
                continue;
            }
            if s.get_about().is_none() && s.get_long_about().is_none() {
                missing.push(format!("{path} {}", s.get_name()));
            }
            stack.push((format!("{path} {}", s.get_name()), s.clone()));
        }
    }
    assert!(missing.is_empty(), "no help text: {missing:#?}");
}

/// What a daemon stopped by `signal` logged: no ERROR, no "reconnecting", no colour.
fn stop_cleanly(signal: &str, env: &[(&str, &str)]) -> String {
    let desk = crate::harness::Desk::start();
    let mut d = desk.spawn_daemon(env);
    d.wait_for_log("postdesk running", 1, std::time::Duration::from_secs(30));
    // Let the folder loop connect and enter IDLE before the stop.
    d.wait_for_log("(IDLE)", 1, std::time::Duration::from_secs(30));
    std::thread::sleep(std::time::Duration::from_millis(300));
    d.signal(signal);
    let status = d.wait_exit(std::time::Duration::from_secs(30));
    let log = d.log_text();
    assert!(status.success(), "{status:?}\n{log}");
    assert!(!log.contains("ERROR"), "an ERROR on a clean stop:\n{log}");
    assert!(!log.contains("reconnecting"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a log file: {log:?}"
    );
    log
}

#[test]
fn sigterm_and_ctrl_c_stop_the_daemon_without_an_error() {
    stop_cleanly("TERM", &[]);
    stop_cleanly("INT", &[]);
}

#[test]
fn json_logs_are_one_object_per_line() {
    let log = stop_cleanly("TERM", &[("POSTDESK_LOG_FORMAT", "json")]);
    let mut n = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
        n += 1;
    }
    assert!(n >= 2, "{log}");
}

#[test]
fn import_refuses_what_is_not_an_mbox_and_names_each_unfiled_message() {
    let desk = crate::harness::Desk::start();
    let dir = tempfile::tempdir().unwrap();
    let eml = dir.path().join("one.eml");
    std::fs::write(&eml, "From: ann@customer.org\r\nSubject: x\r\n\r\nhi\r\n").unwrap();
    let out = desk.cmd(&["import", "mbox", eml.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not an mbox file"), "{err}");
    assert_eq!(desk.tickets().len(), 0, "nothing was imported");

    let mbox = dir.path().join("mail.mbox");
    std::fs::write(
        &mbox,
        "From ann@customer.org Tue Nov 24 10:00:00 2026\nFrom: ann@customer.org\nSubject: fine\nMessage-ID: <ok@customer.org>\n\nhello\n\n\
         From nobody Tue Nov 24 10:01:00 2026\nFrom: Nobody At All\nSubject: who\nMessage-ID: <bad@x.test>\n\nhello\n",
    )
    .unwrap();
    let out = desk.cmd(&["import", "mbox", mbox.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("Imported 2 messages from the mbox") && stdout.contains("1 unprocessable"),
        "{stdout}"
    );
    assert!(!stdout.contains("files"), "an mbox has no files: {stdout}");
    let rate = stdout
        .split(" messages/s")
        .next()
        .unwrap()
        .rsplit('(')
        .next()
        .unwrap();
    assert!(rate.parse::<u64>().is_ok(), "a whole rate: {stdout}");
    assert!(
        stderr.contains("message 2 of the mbox was stored as unprocessable")
            && stderr.contains("no From address"),
        "{stderr}"
    );
}
