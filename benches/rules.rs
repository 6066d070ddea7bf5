//! `cargo bench --bench rules`: how many messages per second triage reads.
//!
//! Builds 200 rules from TOML through the configuration's compiler (keywords in English
//! and Chinese, header regexes, sender domains, `all`/`any`/`not` nesting), generates
//! the ingest benchmark's corpus in its default shape (`corpus`; BENCH_MESSAGES, default
//! 20,000; BENCH_SEED, default 1), parses every message as intake does (not timed), then
//! times `RuleSet::signals` + `RuleSet::evaluate` over them, quoted history removed as
//! the caller would.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[allow(dead_code)]
mod corpus;

use std::path::Path;
use std::time::Instant;

use corpus::{Corpus, CorpusSpec};
use postdesk::config::raw::RawRulesFile;
use postdesk::config::rules::{Known, compile};
use postdesk::rules::Facts;

const EN: &[&str] = &[
    "refund",
    "money back",
    "invoice",
    "password",
    "login",
    "delivery",
    "shipping",
    "broken",
    "damaged",
    "cancel",
    "subscription",
    "upgrade",
    "discount",
    "coupon",
    "warranty",
    "return",
    "exchange",
    "late",
    "missing",
    "charged twice",
    "account",
    "order",
    "tracking",
    "address",
    "payment",
    "receipt",
    "price",
    "bug",
    "crash",
    "error",
];
const ZH: &[&str] = &[
    "退款", "退钱", "发票", "密码", "登录", "快递", "发货", "坏了", "取消", "订阅", "升级", "优惠",
    "保修", "退货", "换货", "延迟", "丢件", "扣款", "账号", "订单", "物流", "地址", "付款", "收据",
    "价格", "故障", "闪退", "错误", "客服", "投诉",
];

fn rules_toml(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        let en = |k: usize| EN[(i * 7 + k) % EN.len()];
        let zh = |k: usize| ZH[(i * 11 + k) % ZH.len()];
        s.push_str(&format!("[[rule]]\nname = \"r{i}\"\n"));
        match i % 5 {
            0 => s.push_str(&format!(
                "when.any_keywords = [\"{}\", \"{}\", \"{}\", \"{}\"]\n",
                en(0),
                en(1),
                zh(0),
                zh(1)
            )),
            1 => s.push_str(&format!(
                "when.all_keywords = [\"{}\", \"{}\"]\nwhen.header = {{ name = \"X-Mailer\", regex = \"(?i)outlook|thunderbird {i}\" }}\n",
                en(2),
                zh(2)
            )),
            2 => s.push_str(&format!(
                "when.sender_domain = [\"example{i}.com\", \"corp{i}.example.net\"]\nwhen.first_message = true\n"
            )),
            3 => s.push_str(&format!(
                "when.any = [{{ any_keywords = [\"{}\"] }}, {{ all = [{{ language = \"zh\" }}, {{ any_keywords = [\"{}\"] }}] }}]\nwhen.not = {{ channel = \"json\" }}\n",
                en(3),
                zh(3)
            )),
            _ => s.push_str(&format!(
                "when.headers = [{{ name = \"Subject\", regex = \"(?i){}\" }}]\nwhen.sentiment_below = -0.{}\n",
                en(4),
                1 + i % 8
            )),
        }
        s.push_str(&format!(
            "set.category = \"c{}\"\nset.tags = [\"t{}\"]\nset.priority = \"{}\"\nroute.team = \"team{}\"\nsuggest_macros = [\"m{i}\"]\n\n",
            i % 17,
            i % 13,
            ["low", "normal", "high", "urgent"][i % 4],
            i % 6
        ));
    }
    s
}

fn main() {
    let messages: usize = std::env::var("BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let seed: u64 = std::env::var("BENCH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);

    let raw: RawRulesFile = toml::from_str(&rules_toml(200)).unwrap();
    let mut problems = Vec::new();
    let rules = compile(
        raw.rule,
        None,
        Path::new(""),
        &Known::default(),
        &mut problems,
    );
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(rules.len(), 200);

    let spec = CorpusSpec::new(messages, seed);
    let parsed: Vec<(Vec<u8>, postdesk::domain::inbound::Inbound)> = Corpus::new(&spec)
        .map(|raw| {
            let inbound = postdesk::channels::email::parse::parse(&raw);
            (raw, inbound)
        })
        .collect();
    let bytes: usize = parsed.iter().map(|(r, _)| r.len()).sum();

    // Quote stripping is the caller's work, not triage's: done before the clock starts.
    let texts: Vec<&str> = parsed
        .iter()
        .map(|(_, m)| postdesk::channels::email::quote::new_text(&m.body_text))
        .collect();

    let start = Instant::now();
    let (mut fired, mut forced, mut zh) = (0usize, 0usize, 0usize);
    let mut in_evaluate = std::time::Duration::ZERO;
    for ((raw, m), text) in parsed.iter().zip(&texts) {
        let signals = rules.signals(&m.subject, text);
        let facts = Facts {
            subject: &m.subject,
            text,
            raw: Some(raw),
            sender: m.sender_email.as_deref().unwrap_or(""),
            channel: "email",
            account: None,
            tier: None,
            first_message: m.in_reply_to.is_empty(),
        };
        let t = Instant::now();
        let v = rules.evaluate(&facts, &signals);
        in_evaluate += t.elapsed();
        fired += v.rules_fired.len();
        forced += usize::from(v.forced_human.is_some());
        zh += usize::from(signals.language == Some("zh"));
    }
    let secs = start.elapsed().as_secs_f64();
    if std::env::var_os("BENCH_BREAKDOWN").is_some() {
        // Where the time goes: each signal alone over the same texts.
        let zh_lex = postdesk::rules::ZhLexicon::default();
        let forced_list = postdesk::rules::ForcedList::default();
        let texts: Vec<(&str, &str)> = parsed
            .iter()
            .zip(&texts)
            .map(|((_, m), x)| (m.subject.as_str(), *x))
            .collect();
        let time = |name: &str, f: &dyn Fn(&str, &str)| {
            let t = Instant::now();
            for (s, x) in &texts {
                f(s, x);
            }
            println!("  {name}: {:.2} s", t.elapsed().as_secs_f64());
        };
        time("language", &|_, x| {
            std::hint::black_box(postdesk::rules::language::detect(x));
        });
        time("sentiment", &|s, x| {
            std::hint::black_box(postdesk::rules::sentiment::score(
                &format!("{s}\n{x}"),
                &zh_lex,
            ));
        });
        time("forced", &|s, x| {
            std::hint::black_box(forced_list.check(s, x, 0.0, -0.6));
        });
        let avg = texts.iter().map(|(_, x)| x.len()).sum::<usize>() / texts.len().max(1);
        println!(
            "  evaluate: {:.2} s; average new text: {avg} bytes",
            in_evaluate.as_secs_f64()
        );
    }
    println!(
        "rules: {} messages ({:.1} MB), 200 rules: {:.0} messages/s ({:.2} s; {} rule firings, {} forced-human, {} zh)",
        parsed.len(),
        bytes as f64 / 1e6,
        parsed.len() as f64 / secs,
        secs,
        fired,
        forced,
        zh
    );
}
