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
