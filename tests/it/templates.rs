//! Issue 14, dynamic scripts from the command line: `postdesk template check` and
//! `postdesk template preview NAME --ticket N` against a real database (tickets made by
//! `postdesk import mbox`, no servers needed).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::postdesk_bin;

/// A config in `dir` with a database beside it and a template directory `tpl/`.
fn setup(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir.join("tpl")).unwrap();
    let config = dir.join("postdesk.toml");
    std::fs::write(
        &config,
        r#"
[database]
path = "postdesk.db"

[[mailbox]]
name = "support"
host = "127.0.0.1"
port = 1
security = "plain"
username = "support"
password = "secret"
folders = ["INBOX"]
addresses = ["support@example.com"]

[smtp]
host = "127.0.0.1"
port = 1
security = "plain"
from = "Example Support <support@example.com>"

[templates]
dir = "tpl"

[[agent]]
name = "alice"
email = "alice@example.com"
"#,
    )
    .unwrap();
    config
}

fn postdesk(config: &Path, args: &[&str]) -> Output {
    Command::new(postdesk_bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .env("POSTDESK_LOG", "warn")
        .env_remove("POSTDESK_FAULT")
        .output()
        .unwrap()
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Imports one message per (from, subject, body) as its own ticket.
fn import(config: &Path, dir: &Path, mails: &[(&str, &str, &str)]) {
    let mut mbox = String::new();
    for (i, (from, subject, body)) in mails.iter().enumerate() {
        mbox.push_str(&format!(
            "From x Tue Nov 24 10:0{i}:00 2026\nFrom: {from}\nTo: support@example.com\n\
             Subject: {subject}\nMessage-ID: <m{i}@customer.test>\n\
             Date: Tue, 24 Nov 2026 10:0{i}:00 +0000\nMIME-Version: 1.0\n\
             Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n{body}\n\n"
        ));
    }
    let path = dir.join("mail.mbox");
    std::fs::write(&path, mbox).unwrap();
    let out = postdesk(config, &["import", "mbox", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The body part of a preview.
fn body_of(p: &Value) -> &Value {
    p["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|part| part["template"] == "ack.txt" || part["template"] == "bot-answer.txt")
        .unwrap()
}

fn subject(p: &Value) -> &Value {
    p["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|part| part["template"].as_str().unwrap().ends_with(".subject"))
        .unwrap()
}

#[test]
fn preview_renders_a_real_ticket_through_the_fallback_chain() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path());
    import(
        &config,
        dir.path(),
        &[
            (
                "李雷 <li@example.cn>",
                "{{7*7}} 我想退款",
                "你好，我上周买的打印机坏了，我想退款。请问怎么办？谢谢。",
            ),
            (
                "\"{{> ack.txt}} {{#each this}}x{{/each}}\" <ann@example.org>",
                "Printer {{#each this}}{{@key}}{{/each}}",
                "Hello, my printer does not print any more. What can I do about it?",
            ),
        ],
    );

    // The Chinese customer: ack.zh.txt, with the subject literal.
    let out = postdesk(
        &config,
        &["template", "preview", "ack", "--ticket", "1", "--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = json_of(&out);
    assert_eq!(p["key"]["language"], "zh", "{p:#}");
    assert_eq!(p["key"]["channel"], "email", "{p:#}");
    let b = body_of(&p);
    assert_eq!(b["chosen"], "ack.zh.txt", "{p:#}");
    assert_eq!(b["file"], "templates/ack.zh.txt.hbs", "{p:#}");
    assert_eq!(b["chain"][0], "ack.zh.standard.email.txt", "{p:#}");
    assert_eq!(b["chain"].as_array().unwrap().last().unwrap(), "ack.txt");
    let text = b["text"].as_str().unwrap();
    assert!(text.starts_with("尊敬的李雷您好，"), "{text}");
    assert!(text.contains("#1：“{{7*7}} 我想退款”"), "{text}");
    assert!(!text.contains("49"), "{text}");
    assert_eq!(
        subject(&p)["text"],
        "[#1] 已收到：{{7*7}} 我想退款",
        "{p:#}"
    );

    // --tier vip: ack.zh.vip.txt; no VIP subject, so the Chinese one.
    let out = postdesk(
        &config,
        &[
            "template", "preview", "ack", "--ticket", "1", "--tier", "vip", "--json",
        ],
    );
    let p = json_of(&out);
    assert_eq!(body_of(&p)["chosen"], "ack.zh.vip.txt", "{p:#}");
    assert_eq!(subject(&p)["chosen"], "ack.zh.subject", "{p:#}");
    assert!(body_of(&p)["text"].as_str().unwrap().contains("重要客户"));

    // A file in the template directory wins over the embedded default, and sees the
    // ticket, the customer and the agent.
    let own = dir.path().join("tpl/ack.zh.vip.txt.hbs");
    std::fs::write(
        &own,
        "{{customer.name}}|{{ticket.id}}|{{ticket.status}}|{{agent.name}}|{{agent.email}}|\
         {{customer.tier}}|{{message.text}}",
    )
    .unwrap();
    let out = postdesk(
        &config,
        &[
            "template", "preview", "ack", "--ticket", "1", "--tier", "vip", "--json",
        ],
    );
    let p = json_of(&out);
    let b = body_of(&p);
    assert_eq!(b["file"], own.display().to_string(), "{p:#}");
    let text = b["text"].as_str().unwrap();
    assert!(
        text.starts_with("李雷|1|open|alice|alice@example.com|vip|你好，我上周买的打印机坏了"),
        "{text}"
    );

    // The English customer with template syntax in name and subject: all literal.
    let out = postdesk(&config, &["template", "preview", "ack", "--ticket", "2"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("ack.txt -> ack.txt (templates/ack.txt.hbs)"),
        "{text}"
    );
    assert!(
        text.contains("Hello {{> ack.txt}} {{#each this}}x{{/each}},"),
        "{text}"
    );
    assert!(
        text.contains("\"Printer {{#each this}}{{@key}}{{/each}}\""),
        "{text}"
    );
    assert_eq!(text.matches("Thank you for writing").count(), 1, "{text}");

    // No such ticket, no such template: a clear error and a failing exit code.
    let out = postdesk(&config, &["template", "preview", "ack", "--ticket", "99"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ticket #99 does not exist"), "{err}");
    let out = postdesk(&config, &["template", "preview", "nope", "--ticket", "1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("there is no template \"nope\""), "{err}");
}

#[test]
fn check_fails_on_a_broken_template_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path());
    let out = postdesk(&config, &["template", "check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Every template compiles"), "{text}");
    let out = postdesk(&config, &["template", "check", "--json"]);
    assert!(out.status.success());
    assert_eq!(json_of(&out), serde_json::json!([]));

    let tpl = dir.path().join("tpl");
    std::fs::write(
        tpl.join("ack.zh.vip.txt.hbs"),
        "{{#if customer.name}}unclosed",
    )
    .unwrap();
    std::fs::write(tpl.join("ack.fr.txt.hbs"), "Bonjour {{customer.shoe_size}}").unwrap();
    std::fs::write(tpl.join("ack.FR.txt.hbs"), "Bonjour").unwrap();
    let out = postdesk(&config, &["template", "check", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let problems = json_of(&out);
    let problems = problems.as_array().unwrap();
    let of = |f: &str| {
        let path = tpl.join(f).display().to_string();
        problems
            .iter()
            .find(|p| p["file"] == path.as_str())
            .unwrap_or_else(|| panic!("{f} not in {problems:#?}"))["problem"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(of("ack.zh.vip.txt.hbs").contains("does not compile"));
    assert!(of("ack.fr.txt.hbs").contains("shoe_size"));
    assert!(of("ack.FR.txt.hbs").contains("each qualifier"));
    assert_eq!(problems.len(), 3, "{problems:#?}");
    // The text form: one line per problem, file first.
    let out = postdesk(&config, &["template", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "{}: does not compile",
            tpl.join("ack.zh.vip.txt.hbs").display()
        )),
        "{text}"
    );
    assert!(text.contains("3 problem(s)."), "{text}");
    // The daemon would refuse to start on it; preview says why too.
    let out = postdesk(&config, &["template", "preview", "ack", "--ticket", "1"]);
    assert!(!out.status.success());
}

#[test]
fn preview_of_a_bot_answered_ticket_shows_its_article() {
    let desk = crate::harness::Desk::start();
    desk.run_once();
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("refund.md");
    std::fs::write(
        &body,
        "在订单页面点击“申请退款”，填写退款原因并提交。退款会在三个工作日内原路退回。\n",
    )
    .unwrap();
    let out = desk.cmd(&[
        "kb",
        "add",
        "--title",
        "如何申请退款",
        "--language",
        "zh",
        "--category",
        "refund",
        "--tag",
        "退款",
        "--status",
        "published",
        "--body-file",
        body.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    desk.deliver(&crate::harness::mail(
        "李雷 <li@example.cn>",
        "support@example.com",
        "退款",
        "refund-1@example.cn",
        "",
        "你好，请问如何申请退款？",
    ));
    desk.run_once();
    assert_eq!(desk.show(1)["status"], "pending", "the bot answered");

    // The answer the customer got, and the preview of it, say how to reach a person.
    let sent = desk.sent(1);
    let parsed = mail_parser::MessageParser::default()
        .parse(&sent[0].data)
        .unwrap();
    let answer = parsed.body_text(0).unwrap().replace("\r\n", "\n");
    assert!(answer.contains("三个工作日内原路退回"), "{answer}");
    for word in ["“人工”", "“human”", "“agent”"] {
        assert!(answer.contains(word), "{answer}");
    }
    assert_eq!(parsed.subject(), Some("[#1] 自动解答：退款"));
    let out = desk.cmd(&[
        "template",
        "preview",
        "bot-answer",
        "--ticket",
        "1",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = json_of(&out);
    let b = body_of(&p);
    assert_eq!(b["chosen"], "bot-answer.zh.txt", "{p:#}");
    let text = b["text"].as_str().unwrap();
    assert!(text.contains("如何申请退款"), "{text}");
    assert!(text.contains("三个工作日内原路退回"), "{text}");
    for word in ["“人工”", "“human”", "“agent”"] {
        assert!(text.contains(word), "{text}");
    }
    assert!(
        !text.contains("Resetting the printer"),
        "sample data left: {text}"
    );
}
