//! A deterministic corpus of realistic helpdesk mail, for the ingest benchmark
//! (`benches/ingest.rs`). It lives beside the benchmark, not in the library: the daemon
//! never generates mail. Its unit tests (`tests.rs`, which includes this file) run in the
//! integration-test binary, since the benchmark target has no test harness; the few
//! private items they read are `pub(crate)`.
//!
//! [`Corpus`] yields raw RFC 5322 messages (CRLF line ends) addressed to
//! [`SUPPORT_ADDRESS`]: new conversations and replies (In-Reply-To/References pointing at
//! earlier generated Message-IDs, RFC 5322 §3.6.4, with an agent's answer we never saw in
//! between, as in a real inbox), a few hundred customers of whom some write more than
//! others, about one in six writing Chinese (UTF-8, or GB2312 in encoded-words and base64
//! bodies as older clients send it), plain text, multipart/alternative with HTML, HTML only,
//! quoted history in three styles, attachments of a few KB and a long tail of 100 KB-1 MB
//! ones, and the trace headers (Return-Path, Received, DKIM-Signature) real mail carries.
//!
//! The shape of the corpus is part of the [`CorpusSpec`]: the share of messages that open
//! a new conversation, how many replies a conversation may get, and the [`SizeMix`]. The
//! [`SHAPES`] presets name the usual ones. In the default shape 55% of the messages open a
//! conversation, conversations have no depth limit and the median size is about 4 KB.
//!
//! Everything comes from one seeded `StdRng` and a fixed start date, so a spec always gives
//! the same bytes (with this version of `rand`). Nothing here does I/O; the generator
//! holds only the open conversations, so a large corpus can be streamed to disk.

// The benchmark that includes this module allows unwrap and friends in its own code; the
// generator keeps the library's rules, so that it stays fit to be reused.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![warn(clippy::indexing_slicing)]

use std::collections::{HashMap, HashSet, VecDeque};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, FixedOffset, Offset, Utc};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, RngCore, SeedableRng};

/// The address every generated mail is sent to.
pub const SUPPORT_ADDRESS: &str = "support@example.com";
/// The helpdesk's display name, as customers' clients quote it.
const SUPPORT_NAME: &str = "Example Support";
/// 2026-01-05T08:00:00Z: the Date of the first message; later ones follow minutes apart.
const START_UNIX: i64 = 1_767_600_000;
/// Replies pick a conversation among this many most recent ones.
const REPLY_WINDOW: usize = 300;
/// Conversations kept open for replies (bounds memory for large corpora).
const MAX_OPEN_THREADS: usize = 2_000;
/// Quoted history is cut to about this many bytes of text (a long thread is trimmed by the
/// client, or the customer deletes most of it).
const MAX_QUOTE_BYTES: usize = 5_000;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CorpusSpec {
    /// How many messages.
    pub messages: usize,
    /// The seed: the same spec always yields the same messages.
    pub seed: u64,
    /// The share of messages (0.0-1.0) that open a new conversation; the others reply to
    /// an open one. The first message, and any message while no conversation is open,
    /// opens one whatever the share.
    pub new_share: f64,
    /// The most replies a conversation gets: after that many it is closed. None: no limit
    /// (a conversation stays open until [`MAX_OPEN_THREADS`] newer ones push it out).
    pub thread_depth: Option<u32>,
    /// How large the messages are.
    pub size_mix: SizeMix,
}

/// The shapes a corpus can be asked for by name, [`CorpusSpec::shape`].
pub const SHAPES: &[&str] = &[
    "default",
    "new-heavy",
    "deep-threads",
    "large-mail",
    "small-mail",
];

impl CorpusSpec {
    /// `messages` messages from `seed`, in the default shape.
    pub fn new(messages: usize, seed: u64) -> CorpusSpec {
        CorpusSpec {
            messages,
            seed,
            new_share: 0.55,
            thread_depth: None,
            size_mix: SizeMix::DEFAULT,
        }
    }

    /// The same messages count and seed in the shape called `name` (one of [`SHAPES`]);
    /// None for a name it does not know.
    pub fn shape(self, name: &str) -> Option<CorpusSpec> {
        let default = CorpusSpec::new(self.messages, self.seed);
        Some(match name {
            "default" => default,
            // About two thirds of 20,000 messages become new tickets. Far more open a
            // conversation, because postdesk rightly files a customer's second mail with
            // the same subject within days under the first one, and the few customers who
            // write most of the mail reuse their subjects: at 20,000 messages a share of
            // 0.55 gives 43% new tickets, 0.70 gives 53%, 0.90 65%, 0.95 68%.
            "new-heavy" => CorpusSpec {
                new_share: NEW_HEAVY_SHARE,
                ..default
            },
            // Few new conversations, so the open ones grow long: about nine replies each
            // on average, up to 40.
            "deep-threads" => CorpusSpec {
                new_share: 0.1,
                thread_depth: Some(40),
                ..default
            },
            "large-mail" => CorpusSpec {
                size_mix: SizeMix::LARGE,
                ..default
            },
            "small-mail" => CorpusSpec {
                size_mix: SizeMix::SMALL,
                ..default
            },
            _ => return None,
        })
    }
}

/// The new-heavy shape's share of messages that open a conversation.
const NEW_HEAVY_SHARE: f64 = 0.92;

/// How large the messages are: which have an HTML part, which carry attachments. A
/// message without either is small (plain text and its quote), one with an HTML part
/// medium, one with attachments larger.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SizeMix {
    /// How often mail has an HTML part, relative to each client's habit (1.0: as the
    /// clients do, about 60% of the mail; 0.0: plain text only).
    pub html: f64,
    /// Share of messages with one or two attachments of 1.5-60 KB.
    pub attachments: f64,
    /// Share of messages with one large attachment, 100 KB-1 MB once encoded.
    pub large: f64,
}

/// The size mixes a corpus can be asked for by name, [`SizeMix::named`].
pub const SIZE_MIXES: &[&str] = &["default", "small", "large"];

impl SizeMix {
    /// Real support mail: median about 4 KB, p99 about 90 KB, a few messages near 1 MB.
    pub const DEFAULT: SizeMix = SizeMix {
        html: 1.0,
        attachments: 0.122,
        large: 0.008,
    };
    /// Mostly plain text, few attachments, none large.
    pub const SMALL: SizeMix = SizeMix {
        html: 0.25,
        attachments: 0.02,
        large: 0.0,
    };
    /// Attachment-heavy mail: a third with small attachments, one in twenty a large one.
    pub const LARGE: SizeMix = SizeMix {
        html: 1.0,
        attachments: 0.33,
        large: 0.05,
    };

    /// The mix called `name` (one of [`SIZE_MIXES`]); None for a name it does not know.
    pub fn named(name: &str) -> Option<SizeMix> {
        match name {
            "default" => Some(SizeMix::DEFAULT),
            "small" => Some(SizeMix::SMALL),
            "large" => Some(SizeMix::LARGE),
            _ => None,
        }
    }
}

/// How a customer writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    En,
    /// Chinese in UTF-8.
    ZhUtf8,
    /// Chinese in GB2312, as Foxmail and older Outlook set-ups in China still send it.
    ZhGbk,
}

/// The customer's mail client: Message-ID style, quoting style, HTML habits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    Gmail,
    Outlook,
    Thunderbird,
    AppleMail,
    Foxmail,
    Phone,
}

#[derive(Debug, Clone)]
struct Customer {
    name: String,
    address: String,
    domain: String,
    lang: Lang,
    client: Client,
    tz: FixedOffset,
    signature: String,
    disclaimer: bool,
}

/// An open conversation that later messages may reply to.
#[derive(Debug)]
struct Thread {
    customer: Customer,
    /// The original subject, without reply prefixes.
    subject: String,
    /// Message-IDs of the conversation, oldest first: the customer's and the agents'.
    ids: Vec<String>,
    /// The full text (with its own quote) of the last message, for the next quote.
    last_text: String,
    last_author: String,
    last_date: i64,
    /// How many replies the conversation has had, for the agent's Message-IDs.
    turns: u32,
}

/// The previous message as the replying client quotes it.
struct Quote {
    author: String,
    date: i64,
    subject: String,
    text: String,
}

/// One MIME entity: its header lines (CRLF-separated, no final CRLF) and encoded body.
enum Entity {
    Leaf {
        headers: String,
        body: Vec<u8>,
    },
    Multi {
        subtype: &'static str,
        boundary: String,
        parts: Vec<Entity>,
    },
}

/// A streaming generator of [`CorpusSpec::messages`] messages.
pub struct Corpus {
    rng: StdRng,
    index: usize,
    total: usize,
    time: i64,
    customers: Vec<Customer>,
    threads: VecDeque<Thread>,
    gbk: HashMap<char, [u8; 2]>,
    /// The chance that a message replies while some conversation is open.
    reply_chance: f64,
    thread_depth: Option<u32>,
    size_mix: SizeMix,
    /// Messages so far that opened a conversation.
    opened: usize,
}

impl Corpus {
    pub fn new(spec: &CorpusSpec) -> Corpus {
        let mut rng = StdRng::seed_from_u64(spec.seed);
        let count = (spec.messages / 25).clamp(300, 1000);
        let mut taken = HashSet::new();
        let customers = (0..count)
            .map(|i| new_customer(&mut rng, i, &mut taken))
            .collect();
        Corpus {
            rng,
            index: 0,
            total: spec.messages,
            time: START_UNIX,
            customers,
            threads: VecDeque::new(),
            gbk: GBK_CHARS.iter().copied().collect(),
            reply_chance: (1.0 - spec.new_share).clamp(0.0, 1.0),
            thread_depth: spec.thread_depth,
            size_mix: spec.size_mix,
            opened: 0,
        }
    }

    /// How many of the messages generated so far opened a conversation (the rest reply).
    pub fn conversations_opened(&self) -> usize {
        self.opened
    }

    /// A customer, some much more often than others (a few write most of the mail).
    fn pick_customer(&mut self) -> Customer {
        let u: f64 = self.rng.random();
        let idx = (u * u * self.customers.len() as f64) as usize;
        match self.customers.get(idx).or(self.customers.first()) {
            Some(c) => c.clone(),
            None => new_customer(&mut self.rng, 0, &mut HashSet::new()),
        }
    }

    fn message(&mut self, i: usize) -> Vec<u8> {
        self.time += self.rng.random_range(5..=240);
        let reply_to = if !self.threads.is_empty() && self.rng.random_bool(self.reply_chance) {
            let window = self.threads.len().min(REPLY_WINDOW);
            // Recent conversations get more replies.
            let u: f64 = self.rng.random();
            let back = ((u * u * window as f64) as usize).min(window.saturating_sub(1));
            self.threads
                .remove(self.threads.len().saturating_sub(1 + back))
        } else {
            None
        };
        let is_reply = reply_to.is_some();
        let mut thread = match reply_to {
            Some(t) => t,
            None => {
                self.opened += 1;
                let customer = self.pick_customer();
                let subject = match customer.lang {
                    Lang::En => {
                        let template = pick(&mut self.rng, SUBJECTS_EN);
                        fill(&mut self.rng, template)
                    }
                    Lang::ZhUtf8 | Lang::ZhGbk => {
                        let s = pick(&mut self.rng, SUBJECTS_ZH).to_string();
                        if self.rng.random_bool(0.3) {
                            let order = self.rng.random_range(10_000_000..99_999_999);
                            format!("{s}（订单{order}）")
                        } else {
                            s
                        }
                    }
                };
                Thread {
                    customer,
                    subject,
                    ids: Vec::new(),
                    last_text: String::new(),
                    last_author: String::new(),
                    last_date: 0,
                    turns: 0,
                }
            }
        };
        let c = thread.customer.clone();
        let zh = c.lang != Lang::En;

        // An agent usually answered between two customer mails; the customer quotes that
        // answer, which quotes the customer's previous mail.
        let quote = if is_reply {
            thread.turns += 1;
            if self.rng.random_bool(0.8) {
                let agent_date =
                    (thread.last_date + self.rng.random_range(600..7200)).min(self.time - 1);
                let agent_text = self.agent_text(&thread, &c);
                let agent_id = format!(
                    "ticket-{}-{}.{:016x}@example.com",
                    i,
                    thread.turns,
                    self.rng.random::<u64>()
                );
                thread.ids.push(agent_id);
                let subject = reply_subject(&thread.subject, Client::Thunderbird, zh);
                Some(Quote {
                    author: format!("{SUPPORT_NAME} <{SUPPORT_ADDRESS}>"),
                    date: agent_date,
                    subject,
                    text: agent_text,
                })
            } else {
                Some(Quote {
                    author: thread.last_author.clone(),
                    date: thread.last_date,
                    subject: thread.subject.clone(),
                    text: thread.last_text.clone(),
                })
            }
        } else {
            None
        };

        let new_text = self.customer_text(&c, is_reply);
        let subject = if is_reply {
            reply_subject(&thread.subject, c.client, zh)
        } else {
            thread.subject.clone()
        };
        let plain = match &quote {
            Some(q) => format!("{new_text}{}", plain_quote(q, &c)),
            None => new_text.clone(),
        };
        let message_id = message_id(&mut self.rng, &c, i, self.time);

        // Body structure.
        let html = self.size_mix.html.max(0.0);
        let html_only = self.rng.random_bool((0.03 * html).min(1.0));
        let habit = match c.client {
            Client::Outlook => 0.9,
            Client::Gmail => 0.85,
            Client::Foxmail => 0.8,
            Client::AppleMail => 0.5,
            Client::Thunderbird => 0.25,
            Client::Phone => 0.2,
        };
        let alternative = !html_only && self.rng.random_bool((habit * html).min(1.0));
        let mut body = if html_only || alternative {
            let html = self.html_leaf(&new_text, quote.as_ref(), &c);
            if html_only {
                html
            } else {
                let text = self.text_leaf(&plain, &c);
                Entity::Multi {
                    subtype: "alternative",
                    boundary: boundary(&mut self.rng, c.client, i, 'a'),
                    parts: vec![text, html],
                }
            }
        } else {
            self.text_leaf(&plain, &c)
        };
        let roll: f64 = self.rng.random();
        let SizeMix {
            large, attachments, ..
        } = self.size_mix;
        let attachments = if roll < large {
            // The long tail: one large scan or photo, 100 KB - 1 MB once encoded.
            let size = log_uniform(&mut self.rng, 75_000.0, 750_000.0);
            vec![self.attachment(&c, size)]
        } else if roll < large + attachments {
            let n = if self.rng.random_bool(0.8) { 1 } else { 2 };
            (0..n)
                .map(|_| {
                    let size = log_uniform(&mut self.rng, 1_500.0, 60_000.0);
                    self.attachment(&c, size)
                })
                .collect()
        } else {
            Vec::new()
        };
        let has_attachments = !attachments.is_empty();
        if has_attachments {
            let mut parts = vec![body];
            parts.extend(attachments);
            body = Entity::Multi {
                subtype: "mixed",
                boundary: boundary(&mut self.rng, c.client, i, 'm'),
                parts,
            };
        }

        // Header block, newest trace header first.
        let mut h = String::with_capacity(2048);
        let date = format_date(self.time, c.tz);
        let received = self.time + self.rng.random_range(1..20);
        h.push_str(&format!("Return-Path: <{}>\r\n", c.address));
        h.push_str(&format!("Delivered-To: {SUPPORT_ADDRESS}\r\n"));
        let ip = format!(
            "{}.{}",
            pick(&mut self.rng, &["198.51.100", "203.0.113", "192.0.2"]),
            self.rng.random_range(2..250)
        );
        let relay = format!("mail-{}.{}", self.rng.random_range(1..40), c.domain);
        h.push_str(&format!(
            "Received: from {relay} ({relay} [{ip}])\r\n\tby mx1.example.com (Postfix) with ESMTPS id {:010X}\r\n\tfor <{SUPPORT_ADDRESS}>; {}\r\n",
            self.rng.random::<u64>() & 0xFF_FFFF_FFFF,
            format_date(received, Utc.fix())
        ));
        if self.rng.random_bool(0.6) {
            h.push_str(&format!(
                "Received: by {relay} with SMTP id {:x}\r\n        for <{SUPPORT_ADDRESS}>; {date}\r\n",
                self.rng.random::<u64>()
            ));
        }
        if matches!(c.client, Client::Gmail | Client::Outlook)
            || BUSINESS_DOMAINS.iter().any(|(d, _)| *d == c.domain)
        {
            h.push_str(&self.dkim(&c.domain));
        }
        h.push_str("MIME-Version: 1.0\r\n");
        h.push_str(&format!(
            "From: {} <{}>\r\n",
            self.display_name(&c.name, c.lang),
            c.address
        ));
        h.push_str(&format!("Date: {date}\r\n"));
        h.push_str(&format!("Message-ID: <{message_id}>\r\n"));
        h.push_str(&format!(
            "Subject: {}\r\n",
            self.header_text(&subject, c.lang)
        ));
        h.push_str(&format!("To: {SUPPORT_NAME} <{SUPPORT_ADDRESS}>\r\n"));
        if self.rng.random_bool(0.08) {
            let first = pick(&mut self.rng, FIRST_EN).to_ascii_lowercase();
            h.push_str(&format!("Cc: {first}@{}\r\n", c.domain));
        }
        if is_reply {
            if let Some(parent) = thread.ids.last() {
                h.push_str(&format!("In-Reply-To: <{parent}>\r\n"));
            }
            // Clients trim long References to the first and the latest ids (RFC 5322 §3.6.4).
            let n = thread.ids.len();
            let refs: Vec<String> = thread
                .ids
                .iter()
                .enumerate()
                .filter(|(k, _)| *k == 0 || *k + 9 >= n)
                .map(|(_, id)| format!("<{id}>"))
                .collect();
            h.push_str(&format!("References: {}\r\n", refs.join("\r\n ")));
        }
        match c.client {
            Client::Outlook => {
                h.push_str(&format!(
                    "Thread-Topic: {}\r\nThread-Index: {}\r\nX-MS-Has-Attach: {}\r\nX-MS-TNEF-Correlator:\r\nContent-Language: {}\r\n",
                    self.header_text(&thread.subject, c.lang),
                    B64.encode(self.random_bytes(22)),
                    if has_attachments { "yes" } else { "" },
                    if zh { "zh-CN" } else { "en-US" }
                ));
            }
            Client::Gmail => {}
            Client::Thunderbird => h.push_str(
                "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.6.0\r\n",
            ),
            Client::AppleMail => h.push_str("X-Mailer: Apple Mail (2.3774.300.61.1.2)\r\n"),
            Client::Foxmail => h.push_str("X-Mailer: Foxmail 7.2.25.228[cn]\r\nX-Priority: 3\r\n"),
            Client::Phone => h.push_str("X-Mailer: iPhone Mail (22C152)\r\n"),
        }

        let (content_headers, payload) = render(body);
        let mut out = Vec::with_capacity(h.len() + content_headers.len() + payload.len() + 4);
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(content_headers.as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(&payload);

        thread.ids.push(message_id);
        thread.last_text = plain;
        thread.last_author = format!("{} <{}>", c.name, c.address);
        thread.last_date = self.time;
        // A conversation that has had its replies is closed: nothing replies to it again.
        if self.thread_depth.is_none_or(|depth| thread.turns < depth) {
            self.threads.push_back(thread);
        }
        if self.threads.len() > MAX_OPEN_THREADS {
            self.threads.pop_front();
        }
        out
    }

    fn random_bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.rng.fill_bytes(&mut v);
        v
    }

    /// What the customer writes above the quote.
    fn customer_text(&mut self, c: &Customer, is_reply: bool) -> String {
        let rng = &mut self.rng;
        let mut t = String::with_capacity(1024);
        match c.lang {
            Lang::En => {
                t.push_str(pick(rng, GREETINGS_EN));
                t.push_str("\n\n");
                let (pool, paragraphs, per) = if is_reply {
                    (FOLLOW_UPS_EN, 1, 1..4)
                } else {
                    (SENTENCES_EN, rng.random_range(1..=2), 2..6)
                };
                for p in 0..paragraphs {
                    if p > 0 {
                        t.push_str("\n\n");
                    }
                    let n = rng.random_range(per.clone());
                    let sentences: Vec<String> = (0..n)
                        .map(|_| {
                            let template = pick(rng, pool);
                            fill(rng, template)
                        })
                        .collect();
                    t.push_str(&wrap(&sentences.join(" "), 72));
                }
                t.push_str("\n\n");
                t.push_str(pick(rng, CLOSINGS_EN));
                t.push('\n');
            }
            Lang::ZhUtf8 | Lang::ZhGbk => {
                t.push_str("您好，\n\n");
                let n = if is_reply {
                    rng.random_range(1..=3)
                } else {
                    rng.random_range(2..=5)
                };
                for _ in 0..n {
                    t.push_str(pick(rng, SENTENCES_ZH));
                }
                if !is_reply && rng.random_bool(0.5) {
                    t.push_str(&format!(
                        "\n订单: {}",
                        rng.random_range(10_000_000..99_999_999)
                    ));
                }
                t.push_str("\n\n");
                t.push_str(pick(rng, &["谢谢！", "祝好", "此致敬礼", "顺祝商祺"]));
                t.push('\n');
            }
        }
        t.push_str(&c.signature);
        if c.disclaimer {
            t.push('\n');
            t.push_str(&wrap(DISCLAIMER_EN, 72));
            t.push('\n');
        }
        t
    }

    /// The agent's answer we never saw (it went out from another system), as quoted.
    fn agent_text(&mut self, thread: &Thread, c: &Customer) -> String {
        let rng = &mut self.rng;
        let n = rng.random_range(2..=3);
        let mut t = String::with_capacity(1024);
        if c.lang == Lang::En {
            let first = c.name.split(' ').next().unwrap_or("");
            t.push_str(&format!("Hello {first},\n\n"));
            let s: Vec<&str> = (0..n).map(|_| pick(rng, AGENT_EN)).collect();
            t.push_str(&wrap(&s.join(" "), 72));
            t.push_str(&format!(
                "\n\nBest regards,\n{} | {SUPPORT_NAME}\n",
                pick(rng, AGENTS)
            ));
        } else {
            t.push_str("您好，\n\n");
            for _ in 0..n {
                t.push_str(pick(rng, AGENT_ZH));
            }
            t.push_str(&format!("\n\n客服中心\n{SUPPORT_NAME}\n"));
        }
        if !thread.last_text.is_empty() {
            // Helpdesk replies quote the customer's mail below.
            let q = Quote {
                author: thread.last_author.clone(),
                date: thread.last_date,
                subject: thread.subject.clone(),
                text: thread.last_text.clone(),
            };
            let mut as_helpdesk = c.clone();
            as_helpdesk.client = Client::Thunderbird;
            t.push_str(&plain_quote(&q, &as_helpdesk));
        }
        t
    }

    fn charset(&mut self, lang: Lang) -> &'static str {
        match lang {
            Lang::En => "us-ascii",
            Lang::ZhUtf8 => "utf-8",
            Lang::ZhGbk => {
                if self.rng.random_bool(0.6) {
                    "gb2312"
                } else {
                    "GBK"
                }
            }
        }
    }

    fn encode_text(&self, text: &str, lang: Lang) -> Vec<u8> {
        match lang {
            Lang::ZhGbk => self.to_gbk(text),
            Lang::En | Lang::ZhUtf8 => text.as_bytes().to_vec(),
        }
    }

    fn text_leaf(&mut self, text: &str, c: &Customer) -> Entity {
        let charset = self.charset(c.lang);
        let flowed = if c.client == Client::Thunderbird {
            "; format=flowed"
        } else {
            ""
        };
        let (cte, body) = match c.lang {
            Lang::En if matches!(c.client, Client::Outlook | Client::AppleMail) => {
                ("quoted-printable", quoted_printable(text.as_bytes()))
            }
            Lang::En => ("7bit", crlf(text.as_bytes())),
            Lang::ZhUtf8 if matches!(c.client, Client::Thunderbird | Client::AppleMail) => {
                ("8bit", crlf(text.as_bytes()))
            }
            Lang::ZhUtf8 | Lang::ZhGbk => (
                "base64",
                base64_lines(&crlf(&self.encode_text(text, c.lang))),
            ),
        };
        Entity::Leaf {
            headers: format!(
                "Content-Type: text/plain; charset=\"{charset}\"{flowed}\r\nContent-Transfer-Encoding: {cte}"
            ),
            body,
        }
    }

    fn html_leaf(&mut self, new_text: &str, quote: Option<&Quote>, c: &Customer) -> Entity {
        let charset = self.charset(c.lang);
        let mut html = String::with_capacity(new_text.len() * 3 + 1024);
        let outlook = c.client == Client::Outlook;
        html.push_str(&format!(
            "<html><head>\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset={charset}\">\n"
        ));
        if outlook {
            html.push_str(OUTLOOK_STYLE);
            html.push_str("\n</head>\n<body lang=\"EN-US\" link=\"#0563C1\" vlink=\"#954F72\" style=\"word-wrap:break-word\">\n<div class=\"WordSection1\">\n");
        } else {
            html.push_str("</head>\n<body>\n<div dir=\"ltr\">\n");
        }
        for para in new_text.split("\n\n") {
            if outlook {
                html.push_str("<p class=\"MsoNormal\"><span style=\"font-size:11.0pt\">");
                html.push_str(&escape_html(para).replace('\n', "<br>\n"));
                html.push_str(
                    "<o:p></o:p></span></p>\n<p class=\"MsoNormal\"><o:p>&nbsp;</o:p></p>\n",
                );
            } else {
                html.push_str("<div>");
                html.push_str(&escape_html(para).replace('\n', "<br>\n"));
                html.push_str("</div><div><br></div>\n");
            }
        }
        html.push_str("</div>\n");
        if let Some(q) = quote {
            let inner = escape_html(cut(&q.text, MAX_QUOTE_BYTES)).replace('\n', "<br>\n");
            if outlook {
                html.push_str(&format!(
                    "<hr style=\"display:inline-block;width:98%\" tabindex=\"-1\">\n<div id=\"divRplyFwdMsg\" dir=\"ltr\"><font face=\"Calibri, sans-serif\" style=\"font-size:11pt\" color=\"#000000\"><b>From:</b> {}<br>\n<b>Sent:</b> {}<br>\n<b>To:</b> {}<br>\n<b>Subject:</b> {}</font>\n<div>&nbsp;</div></div>\n<div>{inner}</div>\n",
                    escape_html(&q.author),
                    outlook_date(q.date, c.tz),
                    escape_html(&format!("{} <{}>", c.name, c.address)),
                    escape_html(&q.subject),
                ));
            } else {
                html.push_str(&format!(
                    "<div class=\"gmail_quote\"><div dir=\"ltr\" class=\"gmail_attr\">{}<br></div>\n<blockquote class=\"gmail_quote\" style=\"margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex\">{inner}</blockquote></div>\n",
                    escape_html(&attribution(q, c)),
                ));
            }
        }
        html.push_str("</body>\n</html>\n");
        let (cte, body) = match c.lang {
            Lang::En => ("quoted-printable", quoted_printable(html.as_bytes())),
            Lang::ZhUtf8 | Lang::ZhGbk => (
                "base64",
                base64_lines(&crlf(&self.encode_text(&html, c.lang))),
            ),
        };
        Entity::Leaf {
            headers: format!(
                "Content-Type: text/html; charset=\"{charset}\"\r\nContent-Transfer-Encoding: {cte}"
            ),
            body,
        }
    }

    fn attachment(&mut self, c: &Customer, size: usize) -> Entity {
        let roll: f64 = self.rng.random();
        let n = self.rng.random_range(1000..9999);
        let (mime, magic, name_en, name_zh): (&str, &[u8], String, String) = if roll < 0.45 {
            (
                "application/pdf",
                b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<</Type/Catalog/Pages 2 0 R>>\nendobj\n",
                format!("invoice-2026-{n}.pdf"),
                format!("发票{n}.pdf"),
            )
        } else if roll < 0.75 {
            (
                "image/png",
                b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
                format!("screenshot-{n}.png"),
                format!("截图{n}.png"),
            )
        } else if roll < 0.95 {
            (
                "image/jpeg",
                b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01",
                format!("IMG_{n}.JPG"),
                format!("截图{n}.jpg"),
            )
        } else {
            (
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                b"PK\x03\x04\x14\x00\x06\x00",
                format!("quote-request-{n}.xlsx"),
                format!("报价单{n}.xlsx"),
            )
        };
        let mut data = magic.to_vec();
        data.extend(self.random_bytes(size.saturating_sub(magic.len())));
        let name = match c.lang {
            Lang::En => format!(
                "name=\"{name_en}\"\r\nContent-Disposition: attachment; filename=\"{name_en}\"; size={}",
                data.len()
            ),
            // RFC 2231 for the file name, an RFC 2047 word for the old `name` parameter.
            Lang::ZhUtf8 => format!(
                "name=\"{}\"\r\nContent-Disposition: attachment;\r\n filename*=UTF-8''{}",
                self.header_text(&name_zh, Lang::ZhUtf8),
                percent_encode(name_zh.as_bytes())
            ),
            Lang::ZhGbk => {
                let word = self.header_text(&name_zh, Lang::ZhGbk);
                format!("name=\"{word}\"\r\nContent-Disposition: attachment; filename=\"{word}\"")
            }
        };
        Entity::Leaf {
            headers: format!(
                "Content-Type: {mime};\r\n {name}\r\nContent-Transfer-Encoding: base64"
            ),
            body: base64_lines(&data),
        }
    }

    fn dkim(&mut self, domain: &str) -> String {
        let bh = B64.encode(self.random_bytes(32));
        let b = B64.encode(self.random_bytes(256));
        let folded: Vec<&str> = b
            .as_bytes()
            .chunks(70)
            .filter_map(|c| std::str::from_utf8(c).ok())
            .collect();
        format!(
            "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain}; s=s2026; t={};\r\n\th=from:to:subject:date:message-id:mime-version:content-type;\r\n\tbh={bh};\r\n\tb={}\r\n",
            self.time,
            folded.join("\r\n\t ")
        )
    }

    fn display_name(&mut self, name: &str, lang: Lang) -> String {
        if name.is_ascii() {
            if self.rng.random_bool(0.3) {
                format!("\"{name}\"")
            } else {
                name.to_string()
            }
        } else {
            self.header_text(name, lang)
        }
    }

    /// `text` as is when it is ASCII, else as RFC 2047 encoded-words in the customer's
    /// charset, never splitting a character between two words (RFC 2047 §5).
    fn header_text(&self, text: &str, lang: Lang) -> String {
        if text.is_ascii() {
            return text.to_string();
        }
        let charset = if lang == Lang::ZhGbk {
            "GB2312"
        } else {
            "UTF-8"
        };
        let mut words = Vec::new();
        let mut chunk: Vec<u8> = Vec::with_capacity(48);
        let mut buf = [0u8; 4];
        for ch in text.chars() {
            let bytes: Vec<u8> = if lang == Lang::ZhGbk {
                self.to_gbk(ch.encode_utf8(&mut buf))
            } else {
                ch.encode_utf8(&mut buf).as_bytes().to_vec()
            };
            if chunk.len() + bytes.len() > 45 {
                words.push(format!("=?{charset}?B?{}?=", B64.encode(&chunk)));
                chunk.clear();
            }
            chunk.extend(bytes);
        }
        if !chunk.is_empty() {
            words.push(format!("=?{charset}?B?{}?=", B64.encode(&chunk)));
        }
        words.join("\r\n ")
    }

    /// GB2312 bytes of text made of ASCII and the characters in [`GBK_CHARS`]; anything
    /// else becomes `?`.
    fn to_gbk(&self, text: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len());
        for ch in text.chars() {
            if ch.is_ascii() {
                out.push(ch as u8);
            } else if let Some(b) = self.gbk.get(&ch) {
                out.extend_from_slice(b);
            } else {
                out.push(b'?');
            }
        }
        out
    }
}

impl Iterator for Corpus {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if self.index >= self.total {
            return None;
        }
        let i = self.index;
        self.index += 1;
        Some(self.message(i))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.total.saturating_sub(self.index);
        (left, Some(left))
    }
}

fn new_customer(rng: &mut StdRng, i: usize, taken: &mut HashSet<String>) -> Customer {
    let roll: f64 = rng.random();
    let lang = if roll < 0.10 {
        Lang::ZhUtf8
    } else if roll < 0.16 {
        Lang::ZhGbk
    } else {
        Lang::En
    };
    let (name, local, domain, company) = match lang {
        Lang::En => {
            let first = pick(rng, FIRST_EN);
            let last = pick(rng, LAST_EN);
            let (domain, company) = if rng.random_bool(0.5) {
                (pick(rng, FREE_DOMAINS), String::new())
            } else {
                let (d, c) = BUSINESS_DOMAINS
                    .choose(rng)
                    .copied()
                    .unwrap_or(("example.org", ""));
                (d, c.to_string())
            };
            let local = format!(
                "{}.{}",
                first.to_ascii_lowercase(),
                last.to_ascii_lowercase()
            );
            (format!("{first} {last}"), local, domain, company)
        }
        Lang::ZhUtf8 | Lang::ZhGbk => {
            let (s, sp) = SURNAMES_ZH.choose(rng).copied().unwrap_or(("王", "wang"));
            let (g, gp) = GIVEN_ZH.choose(rng).copied().unwrap_or(("伟", "wei"));
            let domain = pick(rng, ZH_DOMAINS);
            let local = if domain == "qq.com" {
                rng.random_range(100_000_000u64..4_000_000_000).to_string()
            } else {
                format!("{sp}{gp}{}", rng.random_range(1..99))
            };
            (
                format!("{s}{g}"),
                local,
                domain,
                pick(rng, COMPANIES_ZH).to_string(),
            )
        }
    };
    let mut address = format!("{local}@{domain}");
    if !taken.insert(address.clone()) {
        address = format!("{local}{i}@{domain}");
        taken.insert(address.clone());
    }
    let client = match lang {
        Lang::En => *[
            Client::Gmail,
            Client::Gmail,
            Client::Outlook,
            Client::Outlook,
            Client::Outlook,
            Client::AppleMail,
            Client::Thunderbird,
            Client::Phone,
        ]
        .choose(rng)
        .unwrap_or(&Client::Gmail),
        Lang::ZhUtf8 | Lang::ZhGbk => *[
            Client::Foxmail,
            Client::Foxmail,
            Client::Outlook,
            Client::Phone,
        ]
        .choose(rng)
        .unwrap_or(&Client::Foxmail),
    };
    let offset_minutes = match lang {
        Lang::En => *[-480, -300, 0, 60, 120, 330, 600].choose(rng).unwrap_or(&0),
        Lang::ZhUtf8 | Lang::ZhGbk => 480,
    };
    let tz = FixedOffset::east_opt(offset_minutes * 60).unwrap_or(Utc.fix());
    let signature = match lang {
        Lang::En if company.is_empty() => format!("{name}\n"),
        Lang::En => format!(
            "--\n{name}\n{} | {company}\nPhone: +1 555 {:03} {:04}\n",
            pick(rng, TITLES_EN),
            rng.random_range(100..999),
            rng.random_range(0..9999)
        ),
        Lang::ZhUtf8 | Lang::ZhGbk => format!(
            "{name}\n{company}\n手机: 1{}{:08}\n",
            rng.random_range(30..89),
            rng.random_range(0..99_999_999)
        ),
    };
    let disclaimer = lang == Lang::En && !company.is_empty() && rng.random_bool(0.4);
    Customer {
        name,
        address,
        domain: domain.to_string(),
        lang,
        client,
        tz,
        signature,
        disclaimer,
    }
}

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items.choose(rng).copied().unwrap_or("")
}

/// Fills `{slot}`s in a template with plausible values.
fn fill(rng: &mut StdRng, template: &str) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(rest.get(..start).unwrap_or(""));
        let after = rest.get(start + 1..).unwrap_or("");
        let Some(end) = after.find('}') else {
            break;
        };
        let value = match after.get(..end).unwrap_or("") {
            "order" => rng.random_range(100_000..9_999_999).to_string(),
            "invoice" => format!("INV-2026-{:05}", rng.random_range(1..99_999)),
            "product" => pick(rng, PRODUCTS).to_string(),
            "weekday" => pick(rng, WEEKDAYS).to_string(),
            "years" => rng.random_range(2..12).to_string(),
            "vat" => format!("GB{:09}", rng.random_range(0..999_999_999)),
            "version" => format!("4.{}.{}", rng.random_range(0..20), rng.random_range(0..9)),
            "amount" => format!(
                "EUR {}.{:02}",
                rng.random_range(9..2_000),
                rng.random_range(0..99)
            ),
            "seats" | "seats2" => rng.random_range(5..60).to_string(),
            "code" => format!("E{}", rng.random_range(1000..9999)),
            "contract" => format!(
                "C-{}-{:04}",
                rng.random_range(2019..2026),
                rng.random_range(0..9999)
            ),
            "days" => rng.random_range(2..10).to_string(),
            "street" => pick(rng, STREETS).to_string(),
            other => format!("{{{other}}}"),
        };
        out.push_str(&value);
        rest = after.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

/// Greedy word wrap at `width` columns.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / width + 1);
    let mut col = 0;
    for word in text.split(' ') {
        if col > 0 && col + 1 + word.len() > width {
            out.push('\n');
            col = 0;
        } else if col > 0 {
            out.push(' ');
            col += 1;
        }
        out.push_str(word);
        col += word.len();
    }
    out
}

/// `s` cut to at most `max` bytes at a line end.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let head = s.get(..end).unwrap_or("");
    match head.rfind('\n') {
        Some(p) => head.get(..p + 1).unwrap_or(head),
        None => head,
    }
}

fn reply_subject(subject: &str, client: Client, zh: bool) -> String {
    let prefix = match (client, zh) {
        (Client::Outlook, false) => "RE: ",
        (Client::Outlook, true) => "答复: ",
        (_, true) => "回复: ",
        (_, false) => "Re: ",
    };
    format!("{prefix}{subject}")
}

fn format_date(unix: i64, tz: FixedOffset) -> String {
    DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .with_timezone(&tz)
        .to_rfc2822()
}

fn outlook_date(unix: i64, tz: FixedOffset) -> String {
    DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .with_timezone(&tz)
        .format("%A, %B %-d, %Y %-I:%M %p")
        .to_string()
}

fn attribution(q: &Quote, c: &Customer) -> String {
    let when = DateTime::from_timestamp(q.date, 0)
        .unwrap_or_default()
        .with_timezone(&c.tz);
    if c.lang == Lang::En {
        format!(
            "On {}, {} wrote:",
            when.format("%a, %-d %b %Y at %H:%M"),
            q.author
        )
    } else {
        format!("在 {}, {} 写道：", when.format("%Y-%m-%d %H:%M"), q.author)
    }
}

/// The quote below the customer's text, in the style of the customer's client.
fn plain_quote(q: &Quote, c: &Customer) -> String {
    let text = cut(&q.text, MAX_QUOTE_BYTES);
    let to = format!("{} <{}>", c.name, c.address);
    match c.client {
        Client::Outlook => format!(
            "\n________________________________\nFrom: {}\nSent: {}\nTo: {to}\nSubject: {}\n\n{text}",
            q.author,
            outlook_date(q.date, c.tz),
            q.subject
        ),
        Client::Foxmail => format!(
            "\n\n------------------ 原始邮件 ------------------\n发件人: {}\n发送时间: {}\n收件人: {to}\n主题: {}\n\n{text}",
            q.author,
            format_date(q.date, c.tz),
            q.subject
        ),
        Client::Gmail | Client::Thunderbird | Client::AppleMail | Client::Phone => {
            let mut out = format!("\n{}\n", attribution(q, c));
            for line in text.lines() {
                out.push('>');
                if !line.starts_with('>') {
                    out.push(' ');
                }
                out.push_str(line);
                out.push('\n');
            }
            out
        }
    }
}

fn message_id(rng: &mut StdRng, c: &Customer, i: usize, time: i64) -> String {
    let r: u64 = rng.random();
    match c.client {
        Client::Gmail => format!(
            "CA{r:016x}{i:x}+Bq{:08x}@mail.gmail.com",
            rng.random::<u32>()
        ),
        Client::Outlook => {
            let host = format!(
                "DM6PR{:02}MB{:04}",
                rng.random_range(1..20),
                rng.random_range(1000..9999)
            );
            format!("{host}{r:016X}{i:X}@{host}.namprd11.prod.outlook.com")
        }
        Client::Thunderbird | Client::AppleMail => format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}@{}",
            r >> 32,
            r & 0xffff,
            i & 0xfff,
            rng.random::<u16>(),
            i,
            c.domain
        ),
        Client::Foxmail => format!("tencent_{r:016X}{i:08X}@qq.com"),
        Client::Phone => format!("{time}.{i}.{r:x}@{}", c.domain),
    }
}

fn boundary(rng: &mut StdRng, client: Client, i: usize, kind: char) -> String {
    let r: u64 = rng.random();
    match client {
        Client::Gmail => format!("000000000000{r:016x}{kind}"),
        Client::Outlook => format!("_00{kind}_DM6PR11MB{i:08}{r:012X}_"),
        _ => format!("------------{kind}{r:016x}{i}"),
    }
}

fn log_uniform(rng: &mut StdRng, lo: f64, hi: f64) -> usize {
    rng.random_range(lo.ln()..hi.ln()).exp() as usize
}

/// Renders an entity to its Content-* header lines and its body.
fn render(e: Entity) -> (String, Vec<u8>) {
    match e {
        Entity::Leaf { headers, body } => (headers, body),
        Entity::Multi {
            subtype,
            boundary,
            parts,
        } => {
            let mut body = b"This is a multi-part message in MIME format.\r\n".to_vec();
            for part in parts {
                let (h, b) = render(part);
                body.extend_from_slice(format!("\r\n--{boundary}\r\n{h}\r\n\r\n").as_bytes());
                body.extend_from_slice(&b);
            }
            body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            (
                format!("Content-Type: multipart/{subtype};\r\n boundary=\"{boundary}\""),
                body,
            )
        }
    }
}

fn crlf(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 40);
    for &b in text {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

fn base64_lines(data: &[u8]) -> Vec<u8> {
    let encoded = B64.encode(data);
    let mut out = Vec::with_capacity(encoded.len() + encoded.len() / 38 + 2);
    for line in encoded.as_bytes().chunks(76) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Quoted-printable (RFC 2045 §6.7) with CRLF line ends and soft breaks before column 76.
pub(crate) fn quoted_printable(text: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(text.len() + text.len() / 8);
    for (n, line) in text.split(|&b| b == b'\n').enumerate() {
        if n > 0 {
            out.extend_from_slice(b"\r\n");
        }
        let mut col = 0;
        let last = line.len().saturating_sub(1);
        for (k, &b) in line.iter().enumerate() {
            let literal =
                ((b == b' ' || b == b'\t') && k != last) || ((33..=126).contains(&b) && b != b'=');
            let width = if literal { 1 } else { 3 };
            if col + width > 75 {
                out.extend_from_slice(b"=\r\n");
                col = 0;
            }
            if literal {
                out.push(b);
            } else {
                out.push(b'=');
                out.extend(HEX.get(usize::from(b >> 4)));
                out.extend(HEX.get(usize::from(b & 15)));
            }
            col += width;
        }
    }
    out
}

/// RFC 2231 / RFC 3986 percent-encoding of a parameter value.
fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(ch),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Word lists. Slots in braces are filled by `fill`.

const FIRST_EN: &[&str] = &[
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Lukas",
    "Sofia",
    "Mateo",
    "Amelie",
    "Hiroshi",
    "Priya",
    "Olga",
    "Ahmed",
    "Fatima",
    "Noah",
];
const LAST_EN: &[&str] = &[
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Wilson",
    "Anderson", "Taylor", "Thomas", "Moore", "Martin", "Jackson", "White", "Harris", "Clark",
    "Lewis", "Walker", "Schmidt", "Rossi", "Dubois", "Nakamura", "Patel", "Ivanova", "Haddad",
    "Okafor", "Larsen", "Kowalski",
];
const FREE_DOMAINS: &[&str] = &[
    "gmail.com",
    "outlook.com",
    "yahoo.com",
    "icloud.com",
    "proton.me",
    "gmx.de",
];
/// Business domains and the company behind each, for signatures.
const BUSINESS_DOMAINS: &[(&str, &str)] = &[
    ("acme-corp.com", "Acme Corp"),
    ("globex.io", "Globex Corporation"),
    ("initech.net", "Initech"),
    ("umbrella.co.uk", "Umbrella Ltd"),
    ("hooli.com", "Hooli"),
    ("stark-industries.com", "Stark Industries"),
    ("wayne-enterprises.com", "Wayne Enterprises"),
    ("cyberdyne.ai", "Cyberdyne Systems"),
    ("vandelay.com", "Vandelay Industries"),
    ("wonka.co", "Wonka Confectionery"),
    ("soylent.org", "Soylent Foods"),
    ("oceanic-air.com", "Oceanic Airlines"),
];
const ZH_DOMAINS: &[&str] = &["163.com", "qq.com", "126.com", "sina.com", "aliyun.com"];
const TITLES_EN: &[&str] = &[
    "Office Manager",
    "Head of IT",
    "Procurement",
    "Accounts Payable",
    "CTO",
    "Operations Lead",
    "Purchasing Manager",
    "Senior Developer",
];
const PRODUCTS: &[&str] = &[
    "the Pro plan",
    "the X200 router",
    "the mobile app",
    "the desktop client",
    "the API",
    "the Team workspace",
    "the backup add-on",
    "the barcode scanner",
    "the label printer",
    "the invoicing module",
];
const WEEKDAYS: &[&str] = &["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"];
const STREETS: &[&str] = &[
    "12 Harbour Road",
    "Unit 4, 77 Mill Lane",
    "Kaiserstrasse 18",
    "221 Market Street, Suite 300",
    "5 Rue des Lilas",
];
const SUBJECTS_EN: &[&str] = &[
    "Order #{order} has not arrived",
    "Cannot log in to my account",
    "Invoice {invoice} shows the wrong VAT number",
    "Question about {product}",
    "Refund for order #{order}",
    "Urgent: {product} stopped working after the update",
    "Change of billing address",
    "Feature request: export to CSV",
    "API returns 500 on /v2/orders",
    "Password reset email never arrives",
    "Wrong item delivered (order #{order})",
    "Upgrade from Basic to Pro",
    "Cancel my subscription",
    "Two-factor authentication locked me out",
    "Damaged package, order #{order}",
    "Bulk discount for {seats} licences",
    "Sync error {code}",
    "Data export for a GDPR request",
    "Do you ship to Norway?",
    "Payment declined but money taken",
];
const GREETINGS_EN: &[&str] = &[
    "Hi,",
    "Hello,",
    "Hello support team,",
    "Dear Sir or Madam,",
    "Hi there,",
    "Good morning,",
];
const CLOSINGS_EN: &[&str] = &[
    "Thanks,",
    "Best regards,",
    "Kind regards,",
    "Cheers,",
    "Thank you,",
    "Regards,",
];
const SENTENCES_EN: &[&str] = &[
    "I placed order #{order} on {weekday} and it still shows as processing.",
    "The tracking number you sent me does not work on the carrier's website.",
    "When I try to log in I get the message \"Invalid credentials\" even though I reset my password twice.",
    "Could you please check what is going on?",
    "We have been customers for {years} years and this has never happened before.",
    "I attached a screenshot of the error.",
    "Our accounting department needs a corrected invoice with our VAT number {vat}.",
    "Since the update to version {version}, {product} crashes every time I open the settings page.",
    "Is there a way to export all our data before the end of the month?",
    "I was charged {amount} twice this month.",
    "Please cancel the order if it cannot be shipped before {weekday}.",
    "The box arrived with a large dent and the screen is cracked.",
    "We would like to add {seats} more seats to our team plan.",
    "Can you tell me when the feature will be available?",
    "I have already tried clearing the cache and reinstalling the app.",
    "This is blocking our whole team, so a quick answer would be appreciated.",
    "The error code is {code}, if that helps.",
    "Our contract number is {contract}.",
    "I called your hotline yesterday but nobody answered.",
    "Do you ship to Norway and Switzerland, and what are the customs fees?",
    "My colleague in copy can answer any technical questions.",
    "The invoice lists {seats} licences but we only ordered {seats2}.",
    "Please confirm that the refund of {amount} has been issued.",
    "Everything worked fine until {weekday} morning.",
    "I'd like to change the delivery address to our new office at {street}.",
];
const FOLLOW_UPS_EN: &[&str] = &[
    "Thanks for the quick answer.",
    "Unfortunately the problem is still there.",
    "I tried what you suggested but it did not help.",
    "Here is the order number you asked for: #{order}.",
    "That worked, thank you very much!",
    "Any news on this? It has been {days} days.",
    "Please see the attached screenshot.",
    "I can confirm that the refund arrived.",
    "Could you escalate this to someone from the technical team?",
    "We restarted the device as you said and it now shows error {code}.",
    "Just following up on my previous email.",
    "OK, I will wait for your update.",
];
const AGENT_EN: &[&str] = &[
    "Thank you for contacting Example Support.",
    "I am sorry for the trouble this has caused.",
    "I have forwarded your request to our billing team.",
    "Could you please send us your order number and a screenshot of the error?",
    "The replacement has been shipped today with express delivery.",
    "Please try clearing your browser cache and logging in again.",
    "The corrected invoice is attached to this email.",
    "Our engineers are looking into this and I will update you as soon as I hear back.",
    "Your refund has been processed and should arrive within 5 business days.",
];
const AGENTS: &[&str] = &["Alice", "Bob", "Chen Jing", "Dmitri", "Eva"];
const DISCLAIMER_EN: &str = "CONFIDENTIALITY NOTICE: This e-mail and any attachments are \
confidential and may be legally privileged. They are intended solely for the use of the \
addressee. If you are not the intended recipient, please notify the sender immediately by \
return e-mail and delete this message and any copies from your system. Any unauthorised \
review, use, disclosure or distribution is prohibited. E-mail is not a secure medium and we \
accept no liability for any damage caused by viruses or by the alteration of this message \
after it was sent. Please consider the environment before printing this e-mail.";
const OUTLOOK_STYLE: &str = "<style><!--\n@font-face\n\t{font-family:\"Cambria Math\";\n\tpanose-1:2 4 5 3 5 4 6 3 2 4;}\n@font-face\n\t{font-family:Calibri;\n\tpanose-1:2 15 5 2 2 2 4 3 2 4;}\np.MsoNormal, li.MsoNormal, div.MsoNormal\n\t{margin:0cm;\n\tfont-size:11.0pt;\n\tfont-family:\"Calibri\",sans-serif;}\na:link, span.MsoHyperlink\n\t{mso-style-priority:99;\n\tcolor:#0563C1;\n\ttext-decoration:underline;}\nspan.EmailStyle17\n\t{mso-style-type:personal-compose;\n\tfont-family:\"Calibri\",sans-serif;\n\tcolor:windowtext;}\n.MsoChpDefault\n\t{mso-style-type:export-only;\n\tfont-family:\"Calibri\",sans-serif;}\n@page WordSection1\n\t{size:612.0pt 792.0pt;\n\tmargin:72.0pt 72.0pt 72.0pt 72.0pt;}\ndiv.WordSection1\n\t{page:WordSection1;}\n--></style>";

// Chinese text. Generated with Python's GB2312 codec so that the table below is exact.
pub(crate) const SUBJECTS_ZH: &[&str] = &[
    "订单尚未发货",
    "发票开错了",
    "无法登录账户",
    "退款申请",
    "产品质量问题",
    "物流信息一直没有更新",
    "咨询会员续费",
    "修改收货地址",
    "账号被锁定",
    "优惠券无法使用",
    "安装失败求助",
    "合同盖章问题",
    "报表导出失败",
    "关于批量采购的报价",
    "系统升级后无法打印",
];
pub(crate) const SENTENCES_ZH: &[&str] = &[
    "我上周在贵公司网站下了订单，到现在还没有收到货。",
    "请帮我查一下物流信息，订单号在附件里。",
    "发票抬头写错了，麻烦重新开一张增值税专用发票。",
    "我已经多次尝试登录，但一直提示密码错误。",
    "产品收到后发现外包装破损，里面的零件也有划痕。",
    "希望尽快处理。",
    "如果需要更多信息，请随时联系我。",
    "我们公司需要采购一批设备，请提供报价单。",
    "退款已经申请了三天，还没有到账。",
    "请问会员到期以后数据会保留多久？",
    "系统升级以后，报表导出功能就不能用了。",
    "附件是错误截图，请查收。",
    "麻烦客服回复一下处理进度。",
    "这个问题已经影响到我们的正常工作了。",
    "我按照说明书重新安装了一遍，还是同样的错误。",
    "收货地址需要改成公司的新地址。",
    "上次的问题还没有解决，请再帮忙看一下。",
    "好的，我再试一下，有问题再联系你们。",
];
pub(crate) const AGENT_ZH: &[&str] = &[
    "您好，您的问题我们已经收到，正在处理中。",
    "请提供您的订单号，以便我们进一步核实。",
    "非常抱歉给您带来不便。",
    "我们已经为您重新安排发货，预计三天内送达。",
    "发票已经重新开具，请查收附件。",
    "请清除浏览器缓存后再试一次。",
    "如有其他问题，欢迎随时联系我们。",
    "感谢您的耐心等待。",
];
pub(crate) const COMPANIES_ZH: &[&str] = &[
    "上海华信贸易有限公司",
    "深圳市星河科技有限公司",
    "北京东方软件有限公司",
    "杭州云帆电子商务有限公司",
    "广州立达物流有限公司",
];
pub(crate) const SURNAMES_ZH: &[(&str, &str)] = &[
    ("张", "zhang"),
    ("王", "wang"),
    ("李", "li"),
    ("刘", "liu"),
    ("陈", "chen"),
    ("杨", "yang"),
    ("赵", "zhao"),
    ("黄", "huang"),
    ("周", "zhou"),
    ("吴", "wu"),
];
pub(crate) const GIVEN_ZH: &[(&str, &str)] = &[
    ("伟", "wei"),
    ("芳", "fang"),
    ("娜", "na"),
    ("洋", "yang"),
    ("静", "jing"),
    ("磊", "lei"),
    ("敏", "min"),
    ("俊", "jun"),
    ("婷", "ting"),
    ("强", "qiang"),
    ("丽", "li"),
    ("军", "jun"),
];
/// The GB2312 (= GBK for these) bytes of every CJK character in the tables above, sorted.
pub(crate) const GBK_CHARS: &[(char, [u8; 2])] = &[
    ('。', [0xa1, 0xa3]),
    ('一', [0xd2, 0xbb]),
    ('三', [0xc8, 0xfd]),
    ('上', [0xc9, 0xcf]),
    ('下', [0xcf, 0xc2]),
    ('不', [0xb2, 0xbb]),
    ('专', [0xd7, 0xa8]),
    ('东', [0xb6, 0xab]),
    ('个', [0xb8, 0xf6]),
    ('中', [0xd6, 0xd0]),
    ('为', [0xce, 0xaa]),
    ('主', [0xd6, 0xf7]),
    ('丽', [0xc0, 0xf6]),
    ('久', [0xbe, 0xc3]),
    ('也', [0xd2, 0xb2]),
    ('书', [0xca, 0xe9]),
    ('了', [0xc1, 0xcb]),
    ('于', [0xd3, 0xda]),
    ('云', [0xd4, 0xc6]),
    ('产', [0xb2, 0xfa]),
    ('京', [0xbe, 0xa9]),
    ('人', [0xc8, 0xcb]),
    ('他', [0xcb, 0xfb]),
    ('以', [0xd2, 0xd4]),
    ('们', [0xc3, 0xc7]),
    ('件', [0xbc, 0xfe]),
    ('价', [0xbc, 0xdb]),
    ('优', [0xd3, 0xc5]),
    ('会', [0xbb, 0xe1]),
    ('伟', [0xce, 0xb0]),
    ('但', [0xb5, 0xab]),
    ('作', [0xd7, 0xf7]),
    ('你', [0xc4, 0xe3]),
    ('使', [0xca, 0xb9]),
    ('供', [0xb9, 0xa9]),
    ('便', [0xb1, 0xe3]),
    ('俊', [0xbf, 0xa1]),
    ('保', [0xb1, 0xa3]),
    ('信', [0xd0, 0xc5]),
    ('修', [0xd0, 0xde]),
    ('值', [0xd6, 0xb5]),
    ('公', [0xb9, 0xab]),
    ('关', [0xb9, 0xd8]),
    ('其', [0xc6, 0xe4]),
    ('具', [0xbe, 0xdf]),
    ('内', [0xc4, 0xda]),
    ('再', [0xd4, 0xd9]),
    ('写', [0xd0, 0xb4]),
    ('军', [0xbe, 0xfc]),
    ('决', [0xbe, 0xf6]),
    ('出', [0xb3, 0xf6]),
    ('划', [0xbb, 0xae]),
    ('刘', [0xc1, 0xf5]),
    ('到', [0xb5, 0xbd]),
    ('券', [0xc8, 0xaf]),
    ('功', [0xb9, 0xa6]),
    ('务', [0xce, 0xf1]),
    ('助', [0xd6, 0xfa]),
    ('包', [0xb0, 0xfc]),
    ('北', [0xb1, 0xb1]),
    ('升', [0xc9, 0xfd]),
    ('华', [0xbb, 0xaa]),
    ('单', [0xb5, 0xa5]),
    ('印', [0xd3, 0xa1]),
    ('原', [0xd4, 0xad]),
    ('发', [0xb7, 0xa2]),
    ('号', [0xba, 0xc5]),
    ('司', [0xcb, 0xbe]),
    ('合', [0xba, 0xcf]),
    ('同', [0xcd, 0xac]),
    ('后', [0xba, 0xf3]),
    ('吴', [0xce, 0xe2]),
    ('员', [0xd4, 0xb1]),
    ('周', [0xd6, 0xdc]),
    ('咨', [0xd7, 0xc9]),
    ('品', [0xc6, 0xb7]),
    ('响', [0xcf, 0xec]),
    ('商', [0xc9, 0xcc]),
    ('器', [0xc6, 0xf7]),
    ('回', [0xbb, 0xd8]),
    ('图', [0xcd, 0xbc]),
    ('在', [0xd4, 0xda]),
    ('地', [0xb5, 0xd8]),
    ('圳', [0xdb, 0xda]),
    ('址', [0xd6, 0xb7]),
    ('增', [0xd4, 0xf6]),
    ('处', [0xb4, 0xa6]),
    ('备', [0xb1, 0xb8]),
    ('复', [0xb8, 0xb4]),
    ('外', [0xcd, 0xe2]),
    ('多', [0xb6, 0xe0]),
    ('天', [0xcc, 0xec]),
    ('失', [0xca, 0xa7]),
    ('头', [0xcd, 0xb7]),
    ('好', [0xba, 0xc3]),
    ('如', [0xc8, 0xe7]),
    ('始', [0xca, 0xbc]),
    ('娜', [0xc4, 0xc8]),
    ('婷', [0xe6, 0xc3]),
    ('子', [0xd7, 0xd3]),
    ('存', [0xb4, 0xe6]),
    ('安', [0xb0, 0xb2]),
    ('定', [0xb6, 0xa8]),
    ('实', [0xca, 0xb5]),
    ('客', [0xbf, 0xcd]),
    ('密', [0xc3, 0xdc]),
    ('导', [0xb5, 0xbc]),
    ('尚', [0xc9, 0xd0]),
    ('尝', [0xb3, 0xa2]),
    ('就', [0xbe, 0xcd]),
    ('尽', [0xbe, 0xa1]),
    ('州', [0xd6, 0xdd]),
    ('工', [0xb9, 0xa4]),
    ('已', [0xd2, 0xd1]),
    ('市', [0xca, 0xd0]),
    ('帆', [0xb7, 0xab]),
    ('希', [0xcf, 0xa3]),
    ('带', [0xb4, 0xf8]),
    ('帮', [0xb0, 0xef]),
    ('常', [0xb3, 0xa3]),
    ('广', [0xb9, 0xe3]),
    ('度', [0xb6, 0xc8]),
    ('开', [0xbf, 0xaa]),
    ('张', [0xd5, 0xc5]),
    ('强', [0xc7, 0xbf]),
    ('录', [0xc2, 0xbc]),
    ('影', [0xd3, 0xb0]),
    ('待', [0xb4, 0xfd]),
    ('心', [0xd0, 0xc4]),
    ('忙', [0xc3, 0xa6]),
    ('快', [0xbf, 0xec]),
    ('息', [0xcf, 0xa2]),
    ('您', [0xc4, 0xfa]),
    ('惠', [0xbb, 0xdd]),
    ('感', [0xb8, 0xd0]),
    ('成', [0xb3, 0xc9]),
    ('我', [0xce, 0xd2]),
    ('截', [0xbd, 0xd8]),
    ('户', [0xbb, 0xa7]),
    ('手', [0xca, 0xd6]),
    ('打', [0xb4, 0xf2]),
    ('批', [0xc5, 0xfa]),
    ('技', [0xbc, 0xbc]),
    ('报', [0xb1, 0xa8]),
    ('抬', [0xcc, 0xa7]),
    ('抱', [0xb1, 0xa7]),
    ('按', [0xb0, 0xb4]),
    ('损', [0xcb, 0xf0]),
    ('据', [0xbe, 0xdd]),
    ('排', [0xc5, 0xc5]),
    ('提', [0xcc, 0xe1]),
    ('收', [0xca, 0xd5]),
    ('改', [0xb8, 0xc4]),
    ('敏', [0xc3, 0xf4]),
    ('敬', [0xbe, 0xb4]),
    ('数', [0xca, 0xfd]),
    ('新', [0xd0, 0xc2]),
    ('方', [0xb7, 0xbd]),
    ('无', [0xce, 0xde]),
    ('时', [0xca, 0xb1]),
    ('明', [0xc3, 0xf7]),
    ('易', [0xd2, 0xd7]),
    ('星', [0xd0, 0xc7]),
    ('是', [0xca, 0xc7]),
    ('更', [0xb8, 0xfc]),
    ('有', [0xd3, 0xd0]),
    ('服', [0xb7, 0xfe]),
    ('望', [0xcd, 0xfb]),
    ('期', [0xc6, 0xda]),
    ('未', [0xce, 0xb4]),
    ('机', [0xbb, 0xfa]),
    ('李', [0xc0, 0xee]),
    ('来', [0xc0, 0xb4]),
    ('杨', [0xd1, 0xee]),
    ('杭', [0xba, 0xbc]),
    ('果', [0xb9, 0xfb]),
    ('查', [0xb2, 0xe9]),
    ('样', [0xd1, 0xf9]),
    ('核', [0xba, 0xcb]),
    ('次', [0xb4, 0xce]),
    ('欢', [0xbb, 0xb6]),
    ('款', [0xbf, 0xee]),
    ('歉', [0xc7, 0xb8]),
    ('正', [0xd5, 0xfd]),
    ('此', [0xb4, 0xcb]),
    ('步', [0xb2, 0xbd]),
    ('求', [0xc7, 0xf3]),
    ('没', [0xc3, 0xbb]),
    ('河', [0xba, 0xd3]),
    ('法', [0xb7, 0xa8]),
    ('洋', [0xd1, 0xf3]),
    ('流', [0xc1, 0xf7]),
    ('浏', [0xe4, 0xaf]),
    ('海', [0xba, 0xa3]),
    ('深', [0xc9, 0xee]),
    ('清', [0xc7, 0xe5]),
    ('烦', [0xb7, 0xb3]),
    ('照', [0xd5, 0xd5]),
    ('物', [0xce, 0xef]),
    ('王', [0xcd, 0xf5]),
    ('现', [0xcf, 0xd6]),
    ('理', [0xc0, 0xed]),
    ('用', [0xd3, 0xc3]),
    ('申', [0xc9, 0xea]),
    ('电', [0xb5, 0xe7]),
    ('留', [0xc1, 0xf4]),
    ('痕', [0xba, 0xdb]),
    ('登', [0xb5, 0xc7]),
    ('的', [0xb5, 0xc4]),
    ('盖', [0xb8, 0xc7]),
    ('直', [0xd6, 0xb1]),
    ('看', [0xbf, 0xb4]),
    ('码', [0xc2, 0xeb]),
    ('破', [0xc6, 0xc6]),
    ('磊', [0xc0, 0xda]),
    ('示', [0xca, 0xbe]),
    ('礼', [0xc0, 0xf1]),
    ('祝', [0xd7, 0xa3]),
    ('票', [0xc6, 0xb1]),
    ('祺', [0xec, 0xf7]),
    ('科', [0xbf, 0xc6]),
    ('税', [0xcb, 0xb0]),
    ('立', [0xc1, 0xa2]),
    ('站', [0xd5, 0xbe]),
    ('章', [0xd5, 0xc2]),
    ('等', [0xb5, 0xc8]),
    ('答', [0xb4, 0xf0]),
    ('系', [0xcf, 0xb5]),
    ('级', [0xbc, 0xb6]),
    ('经', [0xbe, 0xad]),
    ('给', [0xb8, 0xf8]),
    ('统', [0xcd, 0xb3]),
    ('续', [0xd0, 0xf8]),
    ('缓', [0xbb, 0xba]),
    ('网', [0xcd, 0xf8]),
    ('耐', [0xc4, 0xcd]),
    ('联', [0xc1, 0xaa]),
    ('能', [0xc4, 0xdc]),
    ('致', [0xd6, 0xc2]),
    ('芳', [0xb7, 0xbc]),
    ('表', [0xb1, 0xed]),
    ('被', [0xb1, 0xbb]),
    ('装', [0xd7, 0xb0]),
    ('要', [0xd2, 0xaa]),
    ('览', [0xc0, 0xc0]),
    ('解', [0xbd, 0xe2]),
    ('计', [0xbc, 0xc6]),
    ('订', [0xb6, 0xa9]),
    ('设', [0xc9, 0xe8]),
    ('试', [0xca, 0xd4]),
    ('话', [0xbb, 0xb0]),
    ('询', [0xd1, 0xaf]),
    ('误', [0xce, 0xf3]),
    ('说', [0xcb, 0xb5]),
    ('请', [0xc7, 0xeb]),
    ('谢', [0xd0, 0xbb]),
    ('败', [0xb0, 0xdc]),
    ('账', [0xd5, 0xcb]),
    ('货', [0xbb, 0xf5]),
    ('质', [0xd6, 0xca]),
    ('购', [0xb9, 0xba]),
    ('贵', [0xb9, 0xf3]),
    ('贸', [0xc3, 0xb3]),
    ('费', [0xb7, 0xd1]),
    ('赵', [0xd5, 0xd4]),
    ('软', [0xc8, 0xed]),
    ('达', [0xb4, 0xef]),
    ('迎', [0xd3, 0xad]),
    ('还', [0xbb, 0xb9]),
    ('这', [0xd5, 0xe2]),
    ('进', [0xbd, 0xf8]),
    ('退', [0xcd, 0xcb]),
    ('送', [0xcb, 0xcd]),
    ('遍', [0xb1, 0xe9]),
    ('道', [0xb5, 0xc0]),
    ('邮', [0xd3, 0xca]),
    ('采', [0xb2, 0xc9]),
    ('里', [0xc0, 0xef]),
    ('重', [0xd6, 0xd8]),
    ('量', [0xc1, 0xbf]),
    ('锁', [0xcb, 0xf8]),
    ('错', [0xb4, 0xed]),
    ('问', [0xce, 0xca]),
    ('间', [0xbc, 0xe4]),
    ('附', [0xb8, 0xbd]),
    ('陈', [0xb3, 0xc2]),
    ('限', [0xcf, 0xde]),
    ('除', [0xb3, 0xfd]),
    ('随', [0xcb, 0xe6]),
    ('零', [0xc1, 0xe3]),
    ('需', [0xd0, 0xe8]),
    ('静', [0xbe, 0xb2]),
    ('非', [0xb7, 0xc7]),
    ('面', [0xc3, 0xe6]),
    ('顺', [0xcb, 0xb3]),
    ('预', [0xd4, 0xa4]),
    ('题', [0xcc, 0xe2]),
    ('麻', [0xc2, 0xe9]),
    ('黄', [0xbb, 0xc6]),
    ('！', [0xa3, 0xa1]),
    ('（', [0xa3, 0xa8]),
    ('）', [0xa3, 0xa9]),
    ('，', [0xa3, 0xac]),
    ('：', [0xa3, 0xba]),
    ('？', [0xa3, 0xbf]),
];
