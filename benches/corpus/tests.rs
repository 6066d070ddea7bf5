//! Unit tests of the benchmark's corpus generator (`mod.rs`, included here). They run in
//! the integration-test binary (`tests/it/main.rs` includes this file), because the
//! benchmark target has no test harness: `cargo test --all-targets` builds it with
//! `cfg(test)` but without `#[test]` functions. They check the corpus itself, not
//! postdesk's speed.

#[path = "mod.rs"]
mod corpus;

use std::collections::{HashMap, HashSet};

use corpus::*;
use postdesk::channels::email::parse::parse;

fn corpus(messages: usize, seed: u64) -> Vec<Vec<u8>> {
    Corpus::new(&CorpusSpec::new(messages, seed)).collect()
}

fn shaped(name: &str, messages: usize, seed: u64) -> Vec<Vec<u8>> {
    let spec = CorpusSpec::new(messages, seed).shape(name).unwrap();
    Corpus::new(&spec).collect()
}

fn sorted_sizes(all: &[Vec<u8>]) -> Vec<usize> {
    let mut sizes: Vec<usize> = all.iter().map(Vec::len).collect();
    sizes.sort_unstable();
    sizes
}

/// For each message, the conversation it belongs to (the Message-ID of its first
/// message) and whether it opened it.
fn conversations(all: &[Vec<u8>]) -> Vec<(String, bool)> {
    let mut root_of: HashMap<String, String> = HashMap::new();
    all.iter()
        .map(|raw| {
            let p = parse(raw);
            let root = p.references.iter().find_map(|r| root_of.get(r).cloned());
            let opened = root.is_none();
            let root = root.unwrap_or_else(|| p.message_id.clone());
            root_of.insert(p.message_id, root.clone());
            (root, opened)
        })
        .collect()
}

fn has_cjk(s: &str) -> bool {
    s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

#[test]
fn a_seed_always_gives_the_same_corpus() {
    let a = corpus(200, 7);
    assert_eq!(a.len(), 200);
    assert_eq!(a, corpus(200, 7));
    assert_ne!(a, corpus(200, 8));
}

#[test]
fn the_median_is_about_4_kb_with_a_long_tail() {
    let mut sizes: Vec<usize> = corpus(2_000, 1).iter().map(Vec::len).collect();
    sizes.sort_unstable();
    let median = sizes[sizes.len() / 2];
    let p99 = sizes[sizes.len() * 99 / 100];
    let max = sizes[sizes.len() - 1];
    assert!((3_000..=6_000).contains(&median), "median {median}");
    assert!(p99 > 30_000, "p99 {p99}");
    assert!(max > 100_000, "largest {max}");
}

#[test]
fn every_message_parses_with_its_own_message_id_and_sender() {
    let mut seen = HashSet::new();
    for (i, raw) in corpus(2_000, 2).iter().enumerate() {
        let p = parse(raw);
        assert!(!p.synthetic_id, "message {i} has no usable Message-ID");
        assert!(
            seen.insert(p.message_id.clone()),
            "message {i}: duplicate id"
        );
        let from = p.from.as_ref().map(|f| f.address.as_str()).unwrap_or("");
        assert!(from.contains('@'), "message {i}: From {from:?}");
        assert!(p.report.is_none());
        assert!(p.date.is_some(), "message {i}: no Date");
        assert!(!p.body_text.trim().is_empty(), "message {i}: empty body");
        assert_eq!(
            p.to.first().map(|m| m.address.as_str()),
            Some(SUPPORT_ADDRESS)
        );
        // RFC 5322 §2.1.1: no line longer than 998 characters.
        assert!(
            raw.split(|&b| b == b'\n').all(|l| l.len() <= 998),
            "message {i}"
        );
    }
}

#[test]
fn replies_reference_earlier_messages() {
    let mut earlier = HashSet::new();
    let mut replies = 0;
    let all = corpus(2_000, 3);
    for raw in &all {
        let p = parse(raw);
        if p.references.iter().any(|r| earlier.contains(r)) {
            replies += 1;
            let s = p.subject.as_str();
            assert!(
                s.starts_with("Re: ")
                    || s.starts_with("RE: ")
                    || s.starts_with("回复: ")
                    || s.starts_with("答复: "),
                "{s:?}"
            );
        }
        earlier.insert(p.message_id);
    }
    // About 45% are replies.
    assert!(replies > all.len() / 3, "{replies} replies");
    assert!(replies < all.len() * 6 / 10, "{replies} replies");
}

#[test]
fn some_mail_is_chinese_in_utf8_and_gb2312_and_decodes() {
    let all = corpus(2_000, 4);
    let (mut utf8, mut gb) = (0, 0);
    let mut customers = HashSet::new();
    for raw in &all {
        let p = parse(raw);
        customers.insert(p.from.map(|f| f.address).unwrap_or_default());
        let text = String::from_utf8_lossy(raw);
        if !has_cjk(&p.subject) {
            continue;
        }
        assert!(has_cjk(&p.body_text), "{}", p.subject);
        assert!(
            !p.subject.contains('?') && !p.body_text.contains('?'),
            "{}",
            p.subject
        );
        if text.contains("=?GB2312?B?") {
            gb += 1;
        } else {
            utf8 += 1;
        }
    }
    assert!(utf8 > all.len() / 50, "{utf8} UTF-8 Chinese messages");
    assert!(gb > all.len() / 100, "{gb} GB2312 Chinese messages");
    assert!(
        (250..=1000).contains(&customers.len()),
        "{} customers",
        customers.len()
    );
}

#[test]
fn attachments_and_html_alternatives_occur() {
    let all = corpus(1_000, 5);
    let parsed: Vec<_> = all.iter().map(|r| parse(r)).collect();
    let with_attachments = parsed.iter().filter(|p| !p.attachments.is_empty()).count();
    let alternative = all
        .iter()
        .filter(|r| String::from_utf8_lossy(r).contains("multipart/alternative"))
        .count();
    assert!((50..=250).contains(&with_attachments), "{with_attachments}");
    assert!(alternative > 300, "{alternative}");
    assert!(parsed.iter().any(|p| p.html_only));
    assert!(
        parsed
            .iter()
            .flat_map(|p| &p.attachments)
            .any(|a| a.filename.as_deref().is_some_and(has_cjk))
    );
}

#[test]
fn the_gbk_table_covers_every_chinese_character_used() {
    let map: HashMap<char, [u8; 2]> = GBK_CHARS.iter().copied().collect();
    let tables = [SUBJECTS_ZH, SENTENCES_ZH, AGENT_ZH, COMPANIES_ZH];
    let names = SURNAMES_ZH.iter().chain(GIVEN_ZH).map(|(zh, _)| *zh);
    let literals = [
        "您好，",
        "谢谢！",
        "祝好",
        "此致敬礼",
        "顺祝商祺",
        "订单: ",
        "（订单",
        "）",
        "手机: ",
        "写道：",
        "在 ",
        "原始邮件",
        "发件人: ",
        "发送时间: ",
        "收件人: ",
        "主题: ",
        "客服中心",
        "回复: ",
        "答复: ",
        "发票",
        "截图",
        "报价单",
    ];
    for s in tables
        .iter()
        .flat_map(|t| t.iter().copied())
        .chain(names)
        .chain(literals)
    {
        for ch in s.chars().filter(|c| !c.is_ascii()) {
            assert!(map.contains_key(&ch), "{ch:?} in {s:?} has no GB2312 bytes");
        }
    }
}

#[test]
fn quoted_printable_breaks_long_lines_and_escapes() {
    let qp = quoted_printable(format!("{}=x \n", "a".repeat(100)).as_bytes());
    let text = String::from_utf8(qp).unwrap();
    assert!(text.lines().all(|l| l.len() <= 76), "{text}");
    assert!(text.contains("=3Dx=20\r\n"), "{text}");
}

#[test]
fn every_shape_and_size_mix_has_a_name() {
    let spec = CorpusSpec::new(10, 1);
    assert_eq!(spec.shape("default"), Some(spec));
    for name in SHAPES {
        let shaped = spec.shape(name).unwrap();
        assert_eq!((shaped.messages, shaped.seed), (10, 1), "{name}");
    }
    assert_eq!(spec.shape("deep"), None);
    for name in SIZE_MIXES {
        assert!(SizeMix::named(name).is_some(), "{name}");
    }
    assert_eq!(SizeMix::named("default"), Some(SizeMix::DEFAULT));
    assert_eq!(SizeMix::named("huge"), None);
}

#[test]
fn every_shape_parses_with_its_own_message_ids() {
    for name in SHAPES {
        let mut seen = HashSet::new();
        for (i, raw) in shaped(name, 1_000, 6).iter().enumerate() {
            let p = parse(raw);
            assert!(
                !p.synthetic_id,
                "{name}: message {i} has no usable Message-ID"
            );
            assert!(
                seen.insert(p.message_id.clone()),
                "{name}: message {i}: duplicate id"
            );
            assert!(!p.body_text.trim().is_empty(), "{name}: message {i}");
        }
    }
}

#[test]
fn the_new_share_decides_how_many_messages_open_a_conversation() {
    for (name, lo, hi) in [("default", 0.50, 0.60), ("new-heavy", 0.88, 0.96)] {
        let spec = CorpusSpec::new(3_000, 7).shape(name).unwrap();
        let mut generator = Corpus::new(&spec);
        let all: Vec<Vec<u8>> = generator.by_ref().collect();
        let opened = conversations(&all).iter().filter(|(_, o)| *o).count();
        // The generator's own count is the one the benchmark prints beside postdesk's.
        assert_eq!(generator.conversations_opened(), opened, "{name}");
        let share = opened as f64 / all.len() as f64;
        assert!((lo..=hi).contains(&share), "{name}: {share:.3} open one");
    }
    let spec = CorpusSpec {
        new_share: 1.0,
        ..CorpusSpec::new(200, 7)
    };
    assert_eq!(Corpus::new(&spec).count(), 200);
    let all: Vec<Vec<u8>> = Corpus::new(&spec).collect();
    assert!(conversations(&all).iter().all(|(_, opened)| *opened));
}

#[test]
fn thread_depth_caps_the_replies_of_a_conversation() {
    let replies_per_conversation = |all: &[Vec<u8>]| {
        let mut replies: HashMap<String, usize> = HashMap::new();
        for (root, opened) in conversations(all) {
            *replies.entry(root).or_default() += usize::from(!opened);
        }
        let max = replies.values().copied().max().unwrap_or(0);
        (all.len() as f64 / replies.len() as f64 - 1.0, max)
    };
    let (mean, max) = replies_per_conversation(&shaped("deep-threads", 3_000, 8));
    assert!(max <= 40, "{max} replies in one conversation");
    assert!(max >= 30, "the longest conversation has only {max} replies");
    assert!(mean > 5.0, "{mean:.1} replies per conversation");
    let (mean, _) = replies_per_conversation(&corpus(3_000, 8));
    assert!(mean < 1.5, "default: {mean:.1} replies per conversation");
    let spec = CorpusSpec {
        new_share: 0.0,
        thread_depth: Some(3),
        ..CorpusSpec::new(400, 8)
    };
    let (mean, max) = replies_per_conversation(&Corpus::new(&spec).collect::<Vec<_>>());
    assert_eq!(max, 3);
    assert!(
        (mean - 3.0).abs() < 0.05,
        "{mean:.2} replies per conversation"
    );
}

#[test]
fn size_mixes_move_the_median_and_the_tail() {
    let with_attachments = |all: &[Vec<u8>]| {
        all.iter()
            .filter(|r| !parse(r).attachments.is_empty())
            .count()
    };
    let default = corpus(2_000, 9);
    let small = shaped("small-mail", 2_000, 9);
    let large = shaped("large-mail", 2_000, 9);
    let (d, s, l) = (
        sorted_sizes(&default),
        sorted_sizes(&small),
        sorted_sizes(&large),
    );
    let at = |v: &[usize], q: usize| v[v.len() * q / 100];
    assert!(at(&s, 50) < at(&d, 50), "small median {}", at(&s, 50));
    assert!(
        s[s.len() - 1] < 100_000,
        "small: largest {}",
        s[s.len() - 1]
    );
    assert!(
        with_attachments(&small) < 100,
        "{}",
        with_attachments(&small)
    );
    assert!(at(&l, 90) > 2 * at(&d, 90), "large p90 {}", at(&l, 90));
    assert!(
        (600..=900).contains(&with_attachments(&large)),
        "{}",
        with_attachments(&large)
    );
    assert!(
        l.iter().filter(|&&n| n > 100_000).count() > 60,
        "large: {} messages over 100 KB",
        l.iter().filter(|&&n| n > 100_000).count()
    );
}
