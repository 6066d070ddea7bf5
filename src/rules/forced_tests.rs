use super::*;

fn check(text: &str) -> Option<ForcedMatch> {
    ForcedList::default().check("", text, 0.0, -0.6)
}

#[test]
fn the_shipped_list_parses() {
    ForcedList::parse(DEFAULT_FORCED_HUMAN, &[], &[]).unwrap();
}

#[test]
fn catches_paraphrases_in_english_and_chinese() {
    let cases: &[(&str, &str)] = &[
        ("someone hacked my account", "account_takeover"),
        ("my account was stolen", "account_takeover"),
        ("someone logged into my account", "account_takeover"),
        (
            "I can't log in, my password was changed by someone",
            "account_takeover",
        ),
        (
            "Somebody changed my password and now I can't get in",
            "account_takeover",
        ),
        (
            "I think my account has been compromised",
            "account_takeover",
        ),
        (
            "a stranger took over my account last night",
            "account_takeover",
        ),
        ("Someone broke into my Account!!", "account_takeover"),
        (
            "I can't sign in, somebody else is using it",
            "account_takeover",
        ),
        ("账号被盗", "account_takeover"),
        ("我的账号被盗了", "account_takeover"),
        ("账号被别人登录了", "account_takeover"),
        ("盗号", "account_takeover"),
        ("我被盗号了", "account_takeover"),
        ("有人登录了我的账号", "account_takeover"),
        ("我的密码被改了", "account_takeover"),
        ("诈骗", "fraud"),
        ("我被骗了", "fraud"),
        ("你们就是骗子", "fraud"),
        ("this is a scam", "fraud"),
        ("I got scammed by your seller", "fraud"),
        ("This is FRAUD.", "fraud"),
        ("there is an unauthorized charge on my card", "fraud"),
        ("I will file a chargeback", "fraud"),
        ("I did not make this purchase", "fraud"),
        ("我的信用卡被盗刷了", "fraud"),
        ("expect a lawsuit", "legal"),
        ("I will sue you", "legal"),
        ("my lawyer will contact you", "legal"),
        ("we are considering legal action", "legal"),
        ("I'll take you to court", "legal"),
        ("我要起诉你们", "legal"),
        ("我会采取法律诉讼", "legal"),
        ("我已经找了律师", "legal"),
        ("this is a personal injury matter", "injury"),
        ("my son was injured by the heater", "injury"),
        ("the kettle burned me", "injury"),
        ("造成了人身伤害", "injury"),
        ("我孩子受伤了", "injury"),
        ("I want to kill myself", "self_harm"),
        ("I am thinking about suicide", "self_harm"),
        ("I just want to die", "self_harm"),
        ("I'm going to end it all", "self_harm"),
        ("我真的不想活了", "self_harm"),
        ("我想自杀", "self_harm"),
        ("我好想死", "self_harm"),
        ("please delete all my personal data", "privacy"),
        ("Under GDPR I request my data", "privacy"),
        ("I invoke my right to be forgotten", "privacy"),
        ("This is a data deletion request", "privacy"),
        ("请删除我的个人信息", "privacy"),
        ("我要注销账号并删除数据", "privacy"),
    ];
    let mut missed = Vec::new();
    for (text, topic) in cases {
        match check(text) {
            Some(m) if m.topic == *topic => {}
            other => missed.push(format!("{text:?}: expected {topic}, got {other:?}")),
        }
    }
    assert!(cases.len() >= 40);
    assert!(missed.is_empty(), "{missed:#?}");
}

#[test]
fn ordinary_requests_do_not_match() {
    let cases = [
        "how do I change my account password?",
        "I want a refund",
        "退款什么时候到账",
        "my account settings page is slow",
        "Where is my order?",
        "Can you send me the invoice for March?",
        "The app crashes when I open the settings",
        "I love your product, thanks!",
        "我想修改收货地址",
        "请问怎么修改密码",
        "发票怎么开",
        "How do I delete my saved address?",
        "Please update my billing email to the new one",
        "I forgot my password",
        "密码忘记了怎么办",
        "Thanks, the problem is solved",
        "the package arrived damaged, can I get a replacement?",
        "我要退款",
        "我的订单还没发货",
        "I have an issue with the login page",
        "我会告诉我的朋友",
        "I cannot log in to my account, could you escalate this to someone?",
    ];
    let hits: Vec<String> = cases
        .iter()
        .filter_map(|t| check(t).map(|m| format!("{t:?}: {m:?}")))
        .collect();
    assert!(cases.len() >= 15);
    assert!(hits.is_empty(), "{hits:#?}");
}

#[test]
fn negation_still_matches() {
    assert_eq!(
        check("I was not scammed, I think").map(|m| m.topic),
        Some("fraud")
    );
}

#[test]
fn distress_needs_strong_negativity_and_an_account_or_money_word() {
    let list = ForcedList::default();
    let m = list.check("", "where is my money, this is outrageous", -0.8, -0.6);
    assert_eq!(
        m,
        Some(ForcedMatch {
            topic: "distress",
            term: "money".to_string()
        })
    );
    assert_eq!(list.check("", "where is my money", -0.5, -0.6), None);
    assert_eq!(list.check("", "this is outrageous", -0.9, -0.6), None);
    assert_eq!(
        list.check("", "我的账号怎么回事", -0.9, -0.6)
            .map(|m| m.term),
        Some("账号".to_string())
    );
}

#[test]
fn custom_terms_and_patterns_have_topic_custom_and_bad_ones_are_reported() {
    let list = ForcedList::parse(
        DEFAULT_FORCED_HUMAN,
        &["press inquiry".to_string()],
        &[r"\bjournalist\b".to_string()],
    )
    .unwrap();
    assert_eq!(
        list.check("Press Inquiry", "", 0.0, -0.6),
        Some(ForcedMatch {
            topic: "custom",
            term: "press inquiry".to_string()
        })
    );
    assert_eq!(
        list.check("", "I am a JOURNALIST", 0.0, -0.6)
            .map(|m| m.topic),
        Some("custom")
    );
    let e = ForcedList::parse(
        "[account_takeover]\nre: (\n[nope]\n",
        &[" ".to_string()],
        &["[".to_string()],
    )
    .unwrap_err();
    assert_eq!(e.len(), 4, "{e:#?}");
    assert!(e[0].starts_with("line 2: bad pattern: "), "{e:#?}");
    assert!(e[1].starts_with("line 3: unknown topic [nope]"), "{e:#?}");
    assert_eq!(e[2], "triage: forced_human_terms (item 1) is empty");
    assert!(
        e[3].starts_with("triage: forced_human_patterns (item 1) \"[\" is not a valid regex"),
        "{e:#?}"
    );
}

#[test]
fn hostile_text_does_not_panic() {
    let big = "a".repeat(3 * 1024 * 1024) + " scam";
    // Past the scanned prefix: not seen, and that is documented.
    let _ = check(&big);
    let mixed = "账号 hacked ".repeat(100_000);
    assert!(check(&mixed).is_some());
}
