//! Rule evaluation. Rule sets are written as TOML and compiled by the configuration's
//! compiler, the way an admin writes them.

use std::path::Path;

use super::*;
use crate::config::raw::RawRulesFile;
use crate::config::rules::{Known, compile};

fn set(toml_text: &str) -> RuleSet {
    let raw: RawRulesFile = toml::from_str(toml_text).unwrap();
    let agents = ["alice".to_string()];
    let mut problems = Vec::new();
    let rs = compile(
        raw.rule,
        None,
        Path::new(""),
        &Known {
            agents: &agents,
            ..Known::default()
        },
        &mut problems,
    );
    assert!(problems.is_empty(), "{problems:#?}");
    rs
}

fn facts<'a>(subject: &'a str, text: &'a str) -> Facts<'a> {
    Facts {
        subject,
        text,
        raw: None,
        sender: "bob@example.com",
        channel: "email",
        account: None,
        tier: None,
        first_message: true,
    }
}

fn run(rs: &RuleSet, f: &Facts<'_>) -> Verdict {
    let s = rs.signals(f.subject, f.text);
    rs.evaluate(f, &s)
}

fn fired(rs: &RuleSet, f: &Facts<'_>) -> Vec<String> {
    run(rs, f).rules_fired
}

const REFUND: &str = r#"
[[rule]]
name = "refund"
when.any_keywords = ["refund", "money back", "退款", "退钱"]
set.category = "refund"
set.priority = "high"
route.team = "billing"
suggest_macros = ["refund-policy"]
"#;

#[test]
fn the_issue_example_fires_on_cjk_substrings_phrases_and_any_case() {
    let rs = set(REFUND);
    assert_eq!(rs.len(), 1);
    let v = run(&rs, &facts("", "我要退款"));
    assert_eq!(v.category.as_deref(), Some("refund"));
    assert_eq!(v.priority, Some(Priority::High));
    assert_eq!(v.team.as_deref(), Some("billing"));
    assert_eq!(v.suggest_macros, ["refund-policy"]);
    assert_eq!(v.rules_fired, ["refund"]);
    assert_eq!(fired(&rs, &facts("I want my MONEY  BACK", "")), ["refund"]);
    assert_eq!(fired(&rs, &facts("Refund?", "")), ["refund"]);
    assert!(fired(&rs, &facts("", "you refunded me twice")).is_empty());
    assert!(fired(&rs, &facts("", "nothing to see")).is_empty());
}

#[test]
fn all_any_not_nest() {
    let rs = set(r#"
[[rule]]
name = "n"
when.all_keywords = ["order", "late"]
when.any = [{ any_keywords = ["angry"] }, { all = [{ language = "en" }, { not = { any_keywords = ["thanks"] } }] }]
when.not = { sender_domain = "vip.example.com" }
"#);
    assert_eq!(
        fired(
            &rs,
            &facts(
                "My order is late",
                "It has been two weeks and I am still waiting for it."
            )
        ),
        ["n"]
    );
    assert!(
        fired(
            &rs,
            &facts(
                "My order is late",
                "thanks anyway, it has been two weeks for the order"
            )
        )
        .is_empty()
    );
    assert!(fired(&rs, &facts("My order", "where is it?")).is_empty());
    let mut f = facts("order late", "angry");
    assert_eq!(fired(&rs, &f), ["n"]);
    f.sender = "x@vip.example.com";
    assert!(fired(&rs, &f).is_empty());
}

#[test]
fn header_regex_reads_the_raw_message() {
    let rs = set(r#"
[[rule]]
name = "outlook"
when.header = { name = "x-mailer", regex = "(?i)outlook" }
[[rule]]
name = "list"
when.headers = [{ name = "List-Id", regex = "news" }, { name = "Precedence", regex = "^bulk$" }]
"#);
    assert!(rs.needs_headers());
    let raw = b"From: a@example.com\r\nX-Mailer: Microsoft\r\n Outlook 16\r\nList-Id: <news.example.com>\r\nPrecedence: bulk\r\n\r\nX-Mailer: body\r\n";
    let mut f = facts("s", "t");
    f.raw = Some(raw);
    assert_eq!(fired(&rs, &f), ["outlook", "list"]);
    f.raw = Some(b"Precedence: bulk\n\nList-Id: news\n");
    assert!(fired(&rs, &f).is_empty());
    f.raw = None;
    assert!(fired(&rs, &f).is_empty());
    assert!(!set(REFUND).needs_headers());
}

#[test]
fn sender_and_sender_domain() {
    let rs = set(r#"
[[rule]]
name = "dom"
when.sender_domain = ["example.com", "@other.org"]
[[rule]]
name = "addr"
when.sender = "Boss@Corp.com"
"#);
    let mut f = facts("", "");
    for (sender, want) in [
        ("bob@example.com", vec!["dom"]),
        ("bob@mail.example.com", vec!["dom"]),
        ("bob@a.b.other.org", vec!["dom"]),
        ("bob@evil-example.com", vec![]),
        ("bob@example.com.evil.net", vec![]),
        ("boss@corp.com", vec!["addr"]),
        ("nobody", vec![]),
        ("", vec![]),
    ] {
        f.sender = sender;
        assert_eq!(fired(&rs, &f), want, "{sender}");
    }
}

#[test]
fn channel_account_language_tier_first_message() {
    let rs = set(r#"
[[rule]]
name = "chan"
when.channel = ["json"]
when.account = "sms"
[[rule]]
name = "zh"
when.language = ["zh"]
[[rule]]
name = "vip"
when.tier = ["vip", "gold"]
[[rule]]
name = "reply"
when.first_message = false
"#);
    let mut f = facts("", "我的账号怎么登录");
    assert_eq!(fired(&rs, &f), ["zh"]);
    f.channel = "json";
    f.account = Some("SMS");
    f.tier = Some("VIP");
    f.first_message = false;
    assert_eq!(fired(&rs, &f), ["chan", "zh", "vip", "reply"]);
    f.text = "Hello, where is my parcel? I ordered it last week.";
    f.account = Some("web");
    f.tier = None;
    assert_eq!(fired(&rs, &f), ["reply"]);
}

#[test]
fn sentiment_thresholds() {
    let rs = set(r#"
[[rule]]
name = "angry"
when.sentiment_below = -0.5
set.priority = "urgent"
[[rule]]
name = "happy"
when.sentiment_above = 0.3
"#);
    assert_eq!(fired(&rs, &facts("", "太差了，我很生气")), ["angry"]);
    assert_eq!(fired(&rs, &facts("", "非常满意，谢谢")), ["happy"]);
    assert!(fired(&rs, &facts("", "退款什么时候到账")).is_empty());
    assert_eq!(
        fired(
            &rs,
            &facts("", "This is the worst service ever, I am furious")
        ),
        ["angry"]
    );
}

#[test]
fn first_setter_wins_lists_accumulate_and_stop_ends() {
    let rs = set(r#"
[[rule]]
name = "a"
set.tags = ["x"]
suggest_macros = ["m1"]
[[rule]]
name = "b"
set.category = "first"
set.priority = "low"
set.tags = ["y", "x"]
route.agent = "alice"
[[rule]]
name = "c"
set.category = "second"
set.priority = "urgent"
route.team = "t"
sla = "gold"
suppress_ack = true
suggest_macros = ["m2", "m1"]
stop = true
[[rule]]
name = "d"
set.tags = ["never"]
no_bot = true
"#);
    let v = run(&rs, &facts("", "hello"));
    assert_eq!(v.rules_fired, ["a", "b", "c"]);
    assert_eq!(v.category.as_deref(), Some("first"));
    assert_eq!(v.priority, Some(Priority::Low));
    assert_eq!(v.team.as_deref(), Some("t"));
    assert_eq!(v.agent.as_deref(), Some("alice"));
    assert_eq!(v.sla.as_deref(), Some("gold"));
    assert_eq!(v.tags, ["x", "y"]);
    assert_eq!(v.suggest_macros, ["m1", "m2"]);
    assert!(v.suppress_ack);
    assert!(!v.no_bot);
    assert_eq!(v.forced_human, None);
}

#[test]
fn forced_human_raises_priority_and_sets_no_bot() {
    let rs = set(r#"
[[rule]]
name = "legal-team"
when.any_keywords = ["contract"]
forced_human = true
set.priority = "low"
[[rule]]
name = "low"
set.priority = "low"
"#);
    let v = run(&rs, &facts("", "about the contract"));
    assert_eq!(
        v.forced_human,
        Some(ForcedMatch {
            topic: "rule",
            term: "legal-team".to_string()
        })
    );
    assert_eq!(v.priority, Some(Priority::High));
    assert!(v.no_bot);
    // The signals' match wins over the rule's (it names the topic).
    let v = run(&rs, &facts("", "contract: my account was hacked"));
    assert_eq!(v.forced_human.map(|m| m.topic), Some("account_takeover"));
    // Urgent stays urgent.
    let rs = set("[[rule]]\nname = \"u\"\nset.priority = \"urgent\"\n");
    let v = run(&rs, &facts("", "我的账号被盗了"));
    assert_eq!(v.priority, Some(Priority::Urgent));
    assert_eq!(
        v.forced_human.as_ref().map(|m| m.topic),
        Some("account_takeover")
    );
    // No rules at all: the default set still forces.
    let v = run(&RuleSet::default(), &facts("", "I will sue you"));
    assert_eq!(v.priority, Some(Priority::High));
    assert!(RuleSet::default().is_empty());
}

#[test]
fn red_alert() {
    let rs = RuleSet::default();
    let angry = rs.signals("", "This is the worst service ever, I am furious");
    let calm = rs.signals("", "Where is my parcel?");
    let v = rs.evaluate(&facts("", ""), &calm);
    let t = rs.negative_alert_below();
    assert!(!v.is_red_alert(&calm, true, t));
    assert!(v.is_red_alert(&angry, true, t));
    assert!(!v.is_red_alert(&angry, false, t));
    let urgent = Verdict {
        priority: Some(Priority::Urgent),
        ..Verdict::default()
    };
    assert!(urgent.is_red_alert(&calm, false, t));
    let forced = rs.evaluate(&facts("", "我想自杀"), &rs.signals("", "我想自杀"));
    assert!(forced.is_red_alert(&calm, false, t));
}

#[test]
fn verdict_serializes() {
    let rs = set(REFUND);
    let v = run(&rs, &facts("", "退款，账号被盗"));
    let j = serde_json::to_value(&v).unwrap();
    assert_eq!(j["priority"], "high");
    assert_eq!(j["forced_human"]["topic"], "account_takeover");
    assert_eq!(j["rules_fired"][0], "refund");
}

#[test]
fn hostile_input_does_not_panic() {
    let rs = set(&format!(
        "{REFUND}\n[[rule]]\nname = \"h\"\nwhen.header = {{ name = \"X-A\", regex = \"b\" }}\n"
    ));
    let huge = "退款 refund ".repeat(500_000);
    let mut f = facts(&huge, &huge);
    let mut raw = Vec::new();
    for i in 0..10_000 {
        raw.extend_from_slice(format!("X-A{i}: ").as_bytes());
        raw.extend_from_slice(b"\xff\xfe\x00b\r\n");
    }
    f.raw = Some(&raw);
    let v = run(&rs, &f);
    assert_eq!(v.rules_fired, ["refund"]);
    let bad = String::from_utf8_lossy(b"\xff\xfe\x00\x01 \xe2\x80").to_string();
    let f = facts(&bad, &bad);
    let _ = run(&rs, &f);
    let _ = run(&rs, &facts("", ""));
}
