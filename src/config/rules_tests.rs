use std::path::Path;

use crate::config::parse;

const BASE: &str = r#"
[[mailbox]]
name = "s"
host = "h"
username = "u"
password = "p"
addresses = ["s@example.com"]
[smtp]
host = "h"
from = "S <s@example.com>"
[[agent]]
name = "alice"
email = "alice@example.com"
"#;

fn no_env(_: &str) -> Option<String> {
    None
}

fn problems(text: &str, base: &Path) -> Vec<String> {
    match parse(text, base, &no_env) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems,
    }
}

#[test]
fn the_issue_example_compiles() {
    let text = format!(
        r#"{BASE}
[[rule]]
name = "refund"
when.any_keywords = ["refund", "money back", "退款", "退钱"]
set.category = "refund"
set.priority = "high"
route.team = "billing"
suggest_macros = ["refund-policy"]
"#
    );
    let cfg = parse(&text, Path::new(""), &no_env).unwrap();
    assert_eq!(cfg.rules.len(), 1);
    assert_eq!(cfg.rules.rules()[0].name, "refund");
    assert!(!cfg.rules.needs_headers());
}

#[test]
fn no_rules_is_an_empty_set_with_the_shipped_lists() {
    let cfg = parse(BASE, Path::new(""), &no_env).unwrap();
    assert!(cfg.rules.is_empty());
    assert!(
        cfg.rules
            .signals("", "my account was hacked")
            .forced
            .is_some()
    );
    assert_eq!(cfg.rules.negative_alert_below(), -0.6);
}

#[test]
fn every_rule_problem_is_reported_at_once_with_its_rule() {
    let text = format!(
        r#"{BASE}
[[rule]]
name = "refund"
when.any_keywords = ["refund", ""]
when.all_keywords = ["*"]
set.priority = "hgih"
route.agent = "alcie"

[[rule]]
name = "refund"
when.header = {{ name = "X-Mailer", regex = "(" }}
when.sender_domain = "bad domain"
when.channel = "emial"
when.language = ["english"]
when.sentiment_below = -3.0
when.any = []

[[rule]]
set.category = ""

[[rule]]
name = "deep"
when.not.not.not.not.not.not.not.not.first_message = true

[[rule]]
name = "typo"
when.any_keywordz = ["x"]
set.priority = 3
"#
    );
    let p = problems(&text, Path::new(""));
    let want = [
        r#"rule "refund": when.any_keywords (item 2) is empty"#,
        r#"rule "refund": when.all_keywords (item 1) is only a *"#,
        r#"rule "refund": set.priority "hgih" is not one of low, normal, high, urgent"#,
        r#"rule "refund": route.agent "alcie" is not a configured [[agent]]; did you mean "alice"?"#,
        r#"rule "refund": name is used by two rules"#,
        r#"rule "refund": when.sender_domain: "bad domain" is not a domain, like "example.com""#,
        r#"rule "refund": when.channel: "emial" is not one of email, json, telegram, matrix; did you mean "email"?"#,
        r#"rule "refund": when.language: "english" is not a two-letter ISO 639-1 code, like "en" or "zh""#,
        r#"rule "refund": when.sentiment_below must be between -1 and 1, not -3"#,
        r#"rule "refund": when.any is an empty list"#,
        "rule #3: name is required",
        "rule #3: set.category is empty",
        r#"rule "deep": when.not.not.not.not.not.not.not.not: conditions are nested deeper than 8 levels"#,
        r#"rule "typo": unknown key "any_keywordz"; did you mean "any_keywords"?"#,
        r#"rule "typo": priority must be text in quotes, not the number 3"#,
    ];
    for w in want {
        assert!(p.iter().any(|x| x == w), "missing {w:?} in {p:#?}");
    }
    assert!(
        p.iter()
            .any(|x| x.starts_with(r#"rule "refund": when.header: regex "(" is not valid: "#)),
        "{p:#?}"
    );
}

#[test]
fn triage_options_and_the_rules_file_are_checked_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.toml"),
        r#"
[[rule]]
name = "from-file"
when.any_keywords = ["invoice"]
set.priority = "soon"

[[rule]]
name = "ok"
when.any_keywords = ["receipt"]
stopp = true
"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("zh.txt"), "[negative]\n差 x\n").unwrap();
    let text = format!(
        r#"{BASE}
[triage]
rules_file = "rules.toml"
forced_human_terms = ["press inquiry", ""]
forced_human_patterns = ["(unclosed"]
sentiment_zh_lexicon = "zh.txt"
negative_alert_below = -2.0
"#
    );
    let p = problems(&text, dir.path());
    let file = dir.path().join("rules.toml").display().to_string();
    let zh = dir.path().join("zh.txt").display().to_string();
    let want = [
        format!(
            r#"{file}: rule "from-file": set.priority "soon" is not one of low, normal, high, urgent"#
        ),
        format!(r#"{file}: rule "ok": unknown key "stopp"; did you mean "stop"?"#),
        "triage: forced_human_terms (item 2) is empty".to_string(),
        format!(
            r#"triage: sentiment_zh_lexicon {zh}: line 2: "差": the weight must be a number between -10 and 10"#
        ),
        "triage: negative_alert_below must be between -1 and 1, not -2".to_string(),
    ];
    for w in &want {
        assert!(p.contains(w), "missing {w:?} in {p:#?}");
    }
    assert!(
        p.iter().any(|x| x.starts_with(
            r#"triage: forced_human_patterns (item 1) "(unclosed" is not a valid regex"#
        )),
        "{p:#?}"
    );
    assert_eq!(p.len(), 6, "{p:#?}");
}

#[test]
fn rules_from_the_file_come_after_the_configurations_and_names_stay_unique() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("more.toml"),
        "[[rule]]\nname = \"b\"\n[[rule]]\nname = \"A\"\n",
    )
    .unwrap();
    let text = format!("{BASE}\n[triage]\nrules_file = \"more.toml\"\n[[rule]]\nname = \"a\"\n");
    let p = problems(&text, dir.path());
    let file = dir.path().join("more.toml").display().to_string();
    assert_eq!(
        p,
        [format!(r#"{file}: rule "A": name is used by two rules"#)]
    );

    let text = format!("{BASE}\n[triage]\nrules_file = \"more.toml\"\n[[rule]]\nname = \"z\"\n");
    let cfg = parse(&text, dir.path(), &no_env).unwrap();
    let names: Vec<&str> = cfg.rules.rules().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["z", "b", "A"]);

    let p = problems(
        &format!("{BASE}\n[triage]\nrules_file = \"missing.toml\"\n"),
        dir.path(),
    );
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(p[0].starts_with("triage: rules_file "), "{p:#?}");
}

#[test]
fn a_lexicon_file_replaces_the_shipped_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("zh.txt"), "[negative]\n慢 -3\n").unwrap();
    let text = format!(
        "{BASE}\n[triage]\nsentiment_zh_lexicon = \"zh.txt\"\nnegative_alert_below = -0.4\n"
    );
    let cfg = parse(&text, dir.path(), &no_env).unwrap();
    assert!(cfg.rules.signals("", "太慢").sentiment < -0.5);
    assert_eq!(cfg.rules.signals("", "非常满意").sentiment, 0.0);
    assert_eq!(cfg.rules.negative_alert_below(), -0.4);
}

#[test]
fn the_examples_parse_when_uncommented() {
    let text = include_str!("../../config/postdesk.example.toml");
    let mut out = String::new();
    let mut inside = false;
    for line in text.lines() {
        if line == "# [triage]" || line == "# [[rule]]" {
            inside = true;
        } else if !line.starts_with('#') {
            inside = false;
        }
        if inside {
            out.push_str(line.trim_start_matches("# "));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.toml"), "[[rule]]\nname = \"more\"\n").unwrap();
    std::fs::write(
        dir.path().join("sentiment-zh.txt"),
        crate::rules::sentiment::DEFAULT_ZH_LEXICON,
    )
    .unwrap();
    let cfg = parse(&out, dir.path(), &no_env).unwrap();
    let names: Vec<&str> = cfg.rules.rules().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["refund", "vip-complaint", "more"]);
    assert!(cfg.rules.needs_headers());
}
