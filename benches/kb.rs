//! `cargo bench --bench kb`: how long the knowledge-base index takes to build and to search.
//!
//! Generates BENCH_ARTICLES (default 100,000) synthetic articles, half Chinese and half
//! English, 100-300 words each, from word lists with a seeded PRNG (BENCH_SEED, default
//! 1): a few hundred real support words and thousands of made-up ones, drawn with a
//! Zipf-like law so that some words are in most articles and most words in few, as in a
//! real knowledge base. 80 % are published, the rest drafts or retired. Builds the index
//! on disk in a temporary directory (one `rebuild`, timed), then times BENCH_QUERIES
//! (default 2,000) searches, half per language, 3-20 words each, many with the common
//! words ("order", "refund", 订单, 退款), published only and filtered by language, as the
//! answer bot searches.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use postdesk::kb::article::{IndexedArticle, Status};
use postdesk::kb::index::{KbIndex, Query};

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

const EN_REAL: &[&str] = &[
    "order",
    "refund",
    "return",
    "delivery",
    "shipping",
    "address",
    "password",
    "account",
    "login",
    "invoice",
    "payment",
    "card",
    "charge",
    "subscription",
    "cancel",
    "upgrade",
    "discount",
    "coupon",
    "warranty",
    "exchange",
    "tracking",
    "parcel",
    "package",
    "item",
    "product",
    "size",
    "colour",
    "stock",
    "price",
    "receipt",
    "email",
    "phone",
    "app",
    "website",
    "checkout",
    "basket",
    "voucher",
    "gift",
    "store",
    "pickup",
    "courier",
    "damaged",
    "broken",
    "missing",
    "late",
    "wrong",
    "replacement",
    "repair",
    "battery",
    "screen",
    "charger",
    "cable",
    "update",
    "settings",
    "notification",
    "profile",
    "privacy",
    "data",
    "delete",
    "export",
    "language",
    "currency",
    "tax",
    "business",
    "plan",
    "trial",
    "renewal",
    "bank",
    "transfer",
    "paypal",
    "wallet",
    "points",
    "reward",
    "member",
    "contact",
    "support",
    "hours",
    "days",
    "week",
    "policy",
    "terms",
    "form",
    "label",
    "print",
    "box",
    "fee",
    "free",
    "international",
    "customs",
    "duty",
    "country",
    "region",
    "change",
    "edit",
    "open",
    "click",
    "choose",
    "select",
    "confirm",
    "send",
    "receive",
    "get",
    "use",
    "find",
    "need",
    "want",
    "make",
    "check",
    "see",
    "go",
    "come",
    "take",
    "the",
    "a",
    "to",
    "and",
    "of",
    "you",
    "your",
    "in",
    "is",
    "it",
    "for",
    "on",
    "we",
    "our",
    "can",
    "with",
    "this",
    "that",
    "be",
    "will",
    "if",
    "or",
    "how",
    "do",
    "i",
    "my",
];

const ZH_REAL: &[&str] = &[
    "订单",
    "退款",
    "退货",
    "换货",
    "发货",
    "快递",
    "物流",
    "地址",
    "密码",
    "账号",
    "登录",
    "发票",
    "付款",
    "支付",
    "银行卡",
    "扣款",
    "订阅",
    "取消",
    "升级",
    "优惠券",
    "折扣",
    "保修",
    "维修",
    "商品",
    "尺码",
    "颜色",
    "库存",
    "价格",
    "收据",
    "邮箱",
    "手机",
    "应用",
    "网站",
    "购物车",
    "礼品卡",
    "门店",
    "自提",
    "损坏",
    "丢件",
    "延迟",
    "错发",
    "更换",
    "电池",
    "屏幕",
    "充电器",
    "更新",
    "设置",
    "通知",
    "隐私",
    "数据",
    "删除",
    "导出",
    "语言",
    "货币",
    "税费",
    "企业",
    "套餐",
    "试用",
    "续费",
    "转账",
    "钱包",
    "积分",
    "会员",
    "客服",
    "工作日",
    "政策",
    "条款",
    "表格",
    "标签",
    "打印",
    "包装",
    "运费",
    "免费",
    "国际",
    "海关",
    "关税",
    "国家",
    "地区",
    "修改",
    "打开",
    "点击",
    "选择",
    "确认",
    "发送",
    "收到",
    "使用",
    "查看",
    "需要",
    "申请",
    "办理",
    "处理",
    "审核",
    "原路",
    "退回",
    "的",
    "了",
    "是",
    "我",
    "您",
    "在",
    "和",
    "请",
    "可以",
    "如何",
    "怎么",
    "我们",
    "有",
];

const SYLLABLES: &[&str] = &[
    "ba", "ce", "di", "fo", "gu", "ha", "je", "ki", "lo", "mu", "na", "pe", "qui", "ro", "su",
    "ta", "ve", "wi", "xo", "yu", "za", "bre", "cla", "dro", "fle", "gri", "pla", "str", "tho",
    "vin",
];

const HANZI: &str = "安百北贝本比边标表病不才材参操草层查产长常场车成城程持出处传创床此从存达打大带单当导道得等低地点电定东动度端对多而发法反方防房放非费分风服福复改盖感高告格个根更工公功共构购关管光广规国果过海含行好合和黑红后户花华化话环换回会活机积基级即急集计记技季家加价假架间检简见件建江将交焦角教阶接节结解介金进近京经精景净境静九酒旧就局举句具据距聚卷决绝均开看康考科可克客课空口库快况矿困扩括拉来蓝劳老乐类冷离理力立丽利联练良量列林零领流六龙楼路旅率绿论落码买卖满慢忙毛貌美门面民明模末母目内能年农排盘判培配批片品平评屏破普期齐其奇起气汽器前强桥切亲青轻清情请庆秋求区取全确群然让热人认任日荣容如入软三色森沙山善商上少社设身深神生声胜师十石时实食史使始示世市事视适室收手首受书数双水顺说思私司四松送搜速算随所他台太态谈特提题体天田条铁听停通同头图土团推退外完晚万王网往望危微为围维卫位文问我无五武物西希息系细下夏先现线相香想向项象小效校笑协写新信星行形性休修需许选学雪寻训压亚研颜眼验阳样药要业叶一医依移已以艺易意因音银引印应英营影硬用优邮由油游有友右鱼语育域元原远院约月越云运杂再在早造责增展站张章找照者这真争整正证知之执直值职指纸至制质治中终种众重周主助住注专转状准资子自字总走组最作做";

/// A vocabulary drawn with weight 1/rank: the real words first (so "order" and 订单 are
/// common), then made-up ones.
struct Vocab {
    words: Vec<String>,
    cumulative: Vec<f64>,
}

impl Vocab {
    fn new(words: Vec<String>) -> Vocab {
        let mut total = 0.0;
        let cumulative = (0..words.len())
            .map(|r| {
                total += 1.0 / (r as f64 + 1.0);
                total
            })
            .collect();
        Vocab { words, cumulative }
    }

    fn draw(&self, rng: &mut Rng) -> &str {
        let total = *self.cumulative.last().unwrap();
        let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * total;
        let i = self.cumulative.partition_point(|&c| c < u);
        &self.words[i.min(self.words.len() - 1)]
    }
}

fn en_vocab(rng: &mut Rng) -> Vocab {
    let mut words: Vec<String> = EN_REAL.iter().map(|w| w.to_string()).collect();
    // Stop words lead a real frequency list: move them to the front.
    words.rotate_right(33);
    while words.len() < 20_000 {
        let n = rng.range(2, 4);
        let w: String = (0..n)
            .map(|_| SYLLABLES[rng.index(SYLLABLES.len())])
            .collect();
        words.push(w);
    }
    Vocab::new(words)
}

fn zh_vocab(rng: &mut Rng) -> Vocab {
    let chars: Vec<char> = HANZI.chars().collect();
    let mut words: Vec<String> = ZH_REAL.iter().map(|w| w.to_string()).collect();
    words.rotate_right(15);
    while words.len() < 20_000 {
        let n = rng.range(2, 3);
        let w: String = (0..n).map(|_| chars[rng.index(chars.len())]).collect();
        words.push(w);
    }
    Vocab::new(words)
}

fn text(rng: &mut Rng, vocab: &Vocab, words: usize, zh: bool) -> String {
    let mut s = String::new();
    for i in 0..words {
        if i > 0 && !zh {
            s.push(' ');
        }
        s.push_str(vocab.draw(rng));
        if rng.index(12) == 0 {
            s.push_str(if zh { "，" } else { "." });
        }
    }
    s
}

fn article(rng: &mut Rng, id: i64, en: &Vocab, zh: &Vocab) -> IndexedArticle {
    let is_zh = id % 2 == 0;
    let vocab = if is_zh { zh } else { en };
    let status = match rng.index(20) {
        0..=15 => Status::Published,
        16..=18 => Status::Draft,
        _ => Status::Retired,
    };
    let (title_words, body_words) = (rng.range(3, 8), rng.range(100, 300));
    IndexedArticle {
        id,
        title: text(rng, vocab, title_words, is_zh),
        body: text(rng, vocab, body_words, is_zh),
        language: if is_zh { "zh" } else { "en" }.to_string(),
        category: Some(format!("c{}", rng.index(20))),
        tags: (0..rng.index(4))
            .map(|_| vocab.draw(rng).to_string())
            .collect(),
        status,
    }
}

fn query(rng: &mut Rng, vocab: &Vocab, common: &[&str], zh: bool) -> String {
    let n = rng.range(3, 20);
    let mut words: Vec<String> = (0..n).map(|_| vocab.draw(rng).to_string()).collect();
    if rng.index(2) == 0 {
        let at = rng.index(words.len());
        words[at] = common[rng.index(common.len())].to_string();
    }
    words.join(if zh { "" } else { " " })
}

fn dir_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn main() {
    let env = |name: &str, default: usize| -> usize {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let n_articles = env("BENCH_ARTICLES", 100_000);
    let n_queries = env("BENCH_QUERIES", 2_000);
    let seed = env("BENCH_SEED", 1) as u64;

    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let en = en_vocab(&mut rng);
    let zh = zh_vocab(&mut rng);
    let t = Instant::now();
    let articles: Vec<IndexedArticle> = (1..=n_articles as i64)
        .map(|id| article(&mut rng, id, &en, &zh))
        .collect();
    let bytes: usize = articles.iter().map(|a| a.title.len() + a.body.len()).sum();
    println!(
        "Generated {n_articles} articles ({:.0} MB of text) in {:.1} s",
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir().unwrap();
    let index = KbIndex::open(dir.path()).unwrap();
    let t = Instant::now();
    index.rebuild(&articles).unwrap();
    let build = t.elapsed();
    assert_eq!(index.len(), n_articles as u64);
    println!(
        "Built the index in {:.1} s ({:.0} articles/s); {:.1} MB on disk",
        build.as_secs_f64(),
        n_articles as f64 / build.as_secs_f64(),
        dir_size(dir.path()) as f64 / 1e6
    );
    drop(articles);

    let queries: Vec<(bool, String)> = (0..n_queries)
        .map(|i| {
            let is_zh = i % 2 == 0;
            let q = if is_zh {
                query(&mut rng, &zh, &["订单", "退款", "退货", "快递"], true)
            } else {
                query(
                    &mut rng,
                    &en,
                    &["order", "refund", "delivery", "account"],
                    false,
                )
            };
            (is_zh, q)
        })
        .collect();
    // Warm the page cache and jieba's dictionary; not timed.
    for (_, q) in queries.iter().take(50) {
        index
            .search(&Query {
                text: q,
                language: None,
                published_only: true,
                limit: 5,
            })
            .unwrap();
    }
    let mut times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let mut hits = [0usize; 2];
    let mut confident = [0usize; 2];
    for (is_zh, q) in &queries {
        let lang = if *is_zh { "zh" } else { "en" };
        let t = Instant::now();
        let found = index
            .search(&Query {
                text: q,
                language: Some(lang),
                published_only: true,
                limit: 5,
            })
            .unwrap();
        times[usize::from(*is_zh)].push(t.elapsed());
        hits[usize::from(*is_zh)] += usize::from(!found.is_empty());
        confident[usize::from(*is_zh)] +=
            usize::from(found.first().is_some_and(|h| h.score >= 0.6));
    }
    for (i, lang) in [(0, "en"), (1, "zh")] {
        let t = &mut times[i];
        t.sort();
        let sum: Duration = t.iter().sum();
        println!(
            "{lang}: {} queries, {} with hits, {} best score >= 0.6; mean {:.2} ms, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            t.len(),
            hits[i],
            confident[i],
            sum.as_secs_f64() * 1000.0 / t.len().max(1) as f64,
            percentile(t, 0.5),
            percentile(t, 0.99),
            t.last().map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0),
        );
    }
}
