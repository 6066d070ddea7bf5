//! The answer bot's decisions, pure: what of a customer's mail is the question
//! ([`question_text`]), whether the best article is an answer ([`decide`]), and whether a
//! customer's reply asks for a person ([`asks_for_human`]) or says the answer did not help
//! ([`says_not_helped`]). No I/O: the caller searches the index and cuts quoted history.
//!
//! Forced-human topics are not decided here: a message with a forced-human match never
//! reaches [`decide`] (triage sets `no_bot`).

use super::index::Hit;

/// The configured bar an article must clear (`[bot] min_score`, `min_margin`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub min_score: f32,
    pub min_margin: f32,
}

impl Default for Thresholds {
    /// The `[bot]` defaults: 0.6 and 0.15.
    fn default() -> Self {
        Thresholds {
            min_score: 0.6,
            min_margin: 0.15,
        }
    }
}

/// What the bot does with a question.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Send this article.
    Answer {
        article: i64,
        score: f32,
        margin: f32,
    },
    /// Leave it to a person; the best candidate, if any, for the handoff summary.
    Handoff {
        reason: &'static str,
        best: Option<(i64, f32)>,
    },
}

/// Decides from the hits of a published-only search in the customer's language: the best
/// article must reach `min_score` and lead the second by `min_margin` (two close articles
/// mean the question is ambiguous, or is two questions).
pub fn decide(hits: &[Hit], t: &Thresholds) -> Decision {
    let Some(best) = hits.first() else {
        return Decision::Handoff {
            reason: "no_article",
            best: None,
        };
    };
    let second = hits.get(1).map(|h| h.score).unwrap_or(0.0);
    let margin = best.score - second;
    if best.score < t.min_score {
        return Decision::Handoff {
            reason: "low_confidence",
            best: Some((best.id, best.score)),
        };
    }
    if margin < t.min_margin {
        return Decision::Handoff {
            reason: "ambiguous",
            best: Some((best.id, best.score)),
        };
    }
    Decision::Answer {
        article: best.id,
        score: best.score,
        margin,
    }
}

/// Most of a question that is searched (in bytes): a long story's first part says what
/// it is about; the rest adds words that match everything a little.
pub const QUESTION_BYTES: usize = 1500;

/// Reply and forward prefixes a subject may carry, lower-case (RFC 5322 3.6.5 names
/// "Re:"; mail clients add their own, localised).
const SUBJECT_PREFIXES: &[&str] = &[
    "re:",
    "re：",
    "fw:",
    "fwd:",
    "aw:",
    "wg:",
    "sv:",
    "vs:",
    "tr:",
    "rif:",
    "回复:",
    "回复：",
    "答复:",
    "答复：",
    "回覆:",
    "回覆：",
    "转发:",
    "转发：",
    "轉寄:",
];

/// Lines that only greet or sign off (lower-case, trailing punctuation removed).
const GREETINGS: &[&str] = &[
    "hi",
    "hello",
    "hey",
    "hi there",
    "hello there",
    "dear sir or madam",
    "dear sir/madam",
    "dear support",
    "dear team",
    "good morning",
    "good afternoon",
    "good evening",
    "你好",
    "您好",
    "亲",
    "客服你好",
    "客服您好",
    "你好客服",
    "您好客服",
    "在吗",
];
const SIGN_OFFS: &[&str] = &[
    "thanks",
    "thank you",
    "thanks a lot",
    "many thanks",
    "thanks in advance",
    "regards",
    "kind regards",
    "best regards",
    "best",
    "cheers",
    "sincerely",
    "yours sincerely",
    "thank you very much",
    "谢谢",
    "谢谢你",
    "谢谢您",
    "多谢",
    "麻烦了",
    "辛苦了",
    "sent from my iphone",
    "sent from my android",
];

/// The text searched for a customer's question: the subject without reply prefixes
/// ("Re:", "回复：") and the body without quoted lines, greeting and sign-off lines and a
/// signature (after "-- "), cut to [`QUESTION_BYTES`].
pub fn question_text(subject: &str, text: &str) -> String {
    let subject = strip_subject_prefixes(subject);
    let mut lines: Vec<&str> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        // RFC 3676 4.3: "-- " starts a signature.
        if line == "-- " || trimmed == "--" {
            break;
        }
        if trimmed.starts_with('>') || trimmed.is_empty() {
            continue;
        }
        let bare = bare_line(trimmed);
        if SIGN_OFFS.contains(&bare.as_str()) {
            break;
        }
        if lines.is_empty() && GREETINGS.contains(&bare.as_str()) {
            continue;
        }
        lines.push(trimmed);
    }
    let body = lines.join("\n");
    let both = if subject.is_empty() {
        body
    } else if body.is_empty() {
        subject.to_string()
    } else {
        format!("{subject}\n{body}")
    };
    super::text::cut(&both, QUESTION_BYTES).to_string()
}

/// `subject` without any number of leading reply/forward prefixes.
fn strip_subject_prefixes(subject: &str) -> &str {
    let mut s = subject.trim();
    loop {
        let lower = s.to_lowercase();
        let Some(p) = SUBJECT_PREFIXES.iter().find(|p| lower.starts_with(**p)) else {
            return s;
        };
        // Prefixes are ASCII or whole CJK characters, and lower-casing them does not
        // change their length, so the byte offset is valid in `s` too.
        s = s.get(p.len()..).unwrap_or("").trim_start();
    }
}

/// A line lower-cased, without trailing punctuation ("Thanks," is "thanks").
fn bare_line(line: &str) -> String {
    line.trim_end_matches(|c: char| c.is_ascii_punctuation() || "，。！？、~～ ".contains(c))
        .to_lowercase()
}

/// Phrases with "agent"/"human" that do not ask for one.
const NOT_A_REQUEST: &[&str] = &[
    "user agent",
    "user-agent",
    "human resources",
    "human error",
    "travel agent",
    "estate agent",
    "customs agent",
    "人工智能",
    "客服你好",
    "客服您好",
    "你好客服",
    "您好客服",
    "亲爱的客服",
];

/// How much of a longer reply [`asks_for_human`] reads: its first two sentences.
const HEAD_SENTENCES: usize = 2;
/// A reply up to this many characters is read whole.
const SHORT_REPLY_CHARS: usize = 200;

/// True when a customer's text asks for a person: one of `extra` (the configured
/// `handoff_words`, which include [`crate::config::DEFAULT_HANDOFF_WORDS`]) or the
/// built-in "human", "agent", "人工", "转人工".
///
/// - Only a short reply (up to 200 characters) is read whole; of a longer one only the
///   first two sentences, where "human please" is written; a story that mentions an
///   agent further down is a question for the bot, not a request.
/// - Latin-script words match whole words, case-insensitive, and in the plural with -s:
///   "agent", "Agents please" and "a real person" match; "reagent" and "agents'" (a
///   possessive: "your agents' replies are slow" is about agents, not a request for one)
///   do not. Phrases that name agents or humans without asking for one are ignored
///   ("user agent string", "human error", "human resources").
/// - Chinese words match anywhere in the text ("转人工", "我要人工"), except in greetings
///   ("客服你好") and "人工智能".
/// - Lines starting with ">" are ignored; the caller should cut quoted history anyway.
pub fn asks_for_human(text: &str, extra: &[String]) -> bool {
    let unquoted: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('>') && !l.is_empty())
        .collect();
    let whole = unquoted.join("\n").to_lowercase();
    let mut read = if whole.chars().count() <= SHORT_REPLY_CHARS {
        whole
    } else {
        head_sentences(&whole, HEAD_SENTENCES).to_string()
    };
    for phrase in NOT_A_REQUEST {
        if read.contains(phrase) {
            read = read.replace(phrase, " ");
        }
    }
    ["human", "agent", "人工", "转人工"]
        .iter()
        .map(|s| s.to_string())
        .chain(extra.iter().map(|s| s.trim().to_lowercase()))
        .filter(|w| !w.is_empty())
        .any(|w| contains_term(&read, &w))
}

/// The first `n` sentences of `text` (ends: . ! ? 。！？ and line breaks).
fn head_sentences(text: &str, n: usize) -> &str {
    let mut seen = 0;
    for (i, c) in text.char_indices() {
        if ".!?。！？\n".contains(c) {
            seen += 1;
            if seen == n {
                return text.get(..i + c.len_utf8()).unwrap_or(text);
            }
        }
    }
    text
}

/// `term` in `hay` (both lower-case): inside the text for a term with CJK characters, as
/// whole words (with an optional plural -s) otherwise.
fn contains_term(hay: &str, term: &str) -> bool {
    if term.chars().any(crate::rules::keywords::is_cjk) {
        return hay.contains(term);
    }
    let is_word = |c: char| c.is_alphanumeric() || c == '\'' || c == '’' || c == '_';
    let mut from = 0;
    while let Some(pos) = hay.get(from..).and_then(|h| h.find(term)) {
        let start = from + pos;
        let end = start + term.len();
        let before_ok = hay
            .get(..start)
            .and_then(|b| b.chars().next_back())
            .is_none_or(|c| !is_word(c));
        let rest = hay.get(end..).unwrap_or("");
        let rest = rest.strip_prefix('s').unwrap_or(rest);
        let after_ok = rest.chars().next().is_none_or(|c| !is_word(c));
        if before_ok && after_ok {
            return true;
        }
        from = start + term.len().max(1);
    }
    false
}

/// Replies saying the answer missed, lower-case. Latin phrases are matched as whole words.
const NOT_HELPED: &[&str] = &[
    "didn't help",
    "didnt help",
    "did not help",
    "doesn't help",
    "does not help",
    "not helpful",
    "unhelpful",
    "no help at all",
    "useless",
    "didn't answer",
    "didnt answer",
    "did not answer",
    "doesn't answer",
    "does not answer",
    "not what i asked",
    "not what i'm asking",
    "not what i am asking",
    "not my question",
    "wrong answer",
    "wrong article",
    "still not working",
    "still doesn't work",
    "still does not work",
    "still isn't working",
    "still not resolved",
    "still not solved",
    "still broken",
    "still the same problem",
    "still have the problem",
    "still having the problem",
    "didn't work",
    "did not work",
    "didn't solve",
    "did not solve",
    "didn't fix",
    "did not fix",
    "not resolved",
    "not solved",
    "没用",
    "没有用",
    "没啥用",
    "没什么用",
    "不管用",
    "没帮助",
    "没有帮助",
    "没帮上",
    "没解决",
    "没有解决",
    "未解决",
    "还是不行",
    "还是没有",
    "还是没",
    "不是我要的",
    "不是我想要的",
    "不是我问的",
    "答非所问",
    "没回答",
    "没有回答",
    "不对",
];

/// Look like a complaint but are not one ("我还没用过" is "I have not used it yet").
const NOT_HELPED_FALSE_FRIENDS: &[&str] = &["没用过", "没用完", "没有用过", "不对劲"];

/// True when a customer's reply says the answer did not help ("that didn't answer my
/// question", "still not working", "没用", "没有解决", "不是我要的"); "thanks, that
/// helped" is false. Lines starting with ">" (quoted) are ignored.
pub fn says_not_helped(text: &str) -> bool {
    let mut t = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('>'))
        .collect::<Vec<_>>()
        .join("\n")
        .to_lowercase()
        .replace('’', "'");
    for f in NOT_HELPED_FALSE_FRIENDS {
        if t.contains(f) {
            t = t.replace(f, " ");
        }
    }
    NOT_HELPED.iter().any(|p| contains_term(&t, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(id: i64, score: f32) -> Hit {
        Hit {
            id,
            bm25: score * 10.0,
            score,
        }
    }

    #[test]
    fn decide_answers_a_clear_best_article() {
        let t = Thresholds::default();
        assert_eq!(
            decide(&[hit(7, 0.9), hit(3, 0.5)], &t),
            Decision::Answer {
                article: 7,
                score: 0.9,
                margin: 0.9 - 0.5
            }
        );
        assert!(matches!(
            decide(&[hit(7, 0.9)], &t),
            Decision::Answer { article: 7, .. }
        ));
    }

    #[test]
    fn decide_hands_off_low_ambiguous_and_empty() {
        let t = Thresholds::default();
        assert_eq!(
            decide(&[], &t),
            Decision::Handoff {
                reason: "no_article",
                best: None
            }
        );
        assert_eq!(
            decide(&[hit(1, 0.5)], &t),
            Decision::Handoff {
                reason: "low_confidence",
                best: Some((1, 0.5))
            }
        );
        assert_eq!(
            decide(&[hit(1, 0.8), hit(2, 0.7)], &t),
            Decision::Handoff {
                reason: "ambiguous",
                best: Some((1, 0.8))
            }
        );
    }

    #[test]
    fn decide_thresholds_are_inclusive_and_score_comes_before_margin() {
        // Values exact in binary, so the comparisons are not at the mercy of rounding.
        let t = Thresholds {
            min_score: 0.5,
            min_margin: 0.25,
        };
        assert_eq!(
            decide(&[hit(4, 0.5), hit(9, 0.25)], &t),
            Decision::Answer {
                article: 4,
                score: 0.5,
                margin: 0.25
            }
        );
        assert!(matches!(
            decide(&[hit(4, 0.75), hit(9, 0.5625)], &t),
            Decision::Handoff {
                reason: "ambiguous",
                ..
            }
        ));
        // Below the score and close to the second: low confidence is the reason given.
        assert!(matches!(
            decide(&[hit(4, 0.375), hit(9, 0.375)], &t),
            Decision::Handoff {
                reason: "low_confidence",
                best: Some((4, _))
            }
        ));
        // A lone article's margin is its score.
        assert_eq!(
            decide(&[hit(4, 0.5)], &t),
            Decision::Answer {
                article: 4,
                score: 0.5,
                margin: 0.5
            }
        );
    }

    #[test]
    fn question_text_drops_prefixes_quotes_greetings_and_signatures() {
        let q = question_text(
            "Re: RE: Fwd: Refund status",
            "Hi,\n\nWhen will I get my money back?\n\nThanks,\nTom\n\n> On Monday you wrote:\n> Your refund has been issued",
        );
        assert_eq!(q, "Refund status\nWhen will I get my money back?");
        assert_eq!(
            question_text("回复：退款", "您好\n退款多久到账\n-- \n张三 13800000000"),
            "退款\n退款多久到账"
        );
        assert_eq!(
            question_text("", "where is my parcel"),
            "where is my parcel"
        );
        assert_eq!(question_text("Track package", ""), "Track package");
        assert_eq!(question_text("", ""), "");
    }

    #[test]
    fn question_text_keeps_a_sentence_that_starts_with_thanks() {
        let q = question_text("", "Thanks. It has been 12 days and no refund.");
        assert_eq!(q, "Thanks. It has been 12 days and no refund.");
    }

    #[test]
    fn question_text_is_cut_at_a_char_boundary() {
        let q = question_text("", &"退款".repeat(2000));
        assert!(q.len() <= QUESTION_BYTES);
        assert!(q.starts_with("退款"));
    }

    fn defaults() -> Vec<String> {
        crate::config::DEFAULT_HANDOFF_WORDS
            .iter()
            .map(|w| w.to_string())
            .collect()
    }

    #[test]
    fn short_replies_asking_for_a_person() {
        let d = defaults();
        for t in [
            "人工",
            "转人工",
            "我要人工客服",
            "human please",
            "HUMAN",
            "Agent",
            "I want to talk to a real person",
            "Can one of your agents call me?",
            "真人回复一下",
            "请帮我转人工客服",
            "能不能找个真人",
            "Can I speak to an operator?",
        ] {
            assert!(asks_for_human(t, &d), "{t}");
        }
        assert!(asks_for_human("speak to a manager", &["manager".into()]));
    }

    #[test]
    fn agent_and_human_inside_other_words_or_phrases_do_not_count() {
        let d = defaults();
        for t in [
            "reagent",
            "Your agents' replies are slow but the answer was fine, thanks",
            "The user agent string of my browser is Firefox",
            "It was probably human error on my side, the article helped",
            "客服你好，退款多久到账",
            "人工智能推荐的尺码不准",
            "thanks, that helped",
        ] {
            assert!(!asks_for_human(t, &d), "{t}");
        }
    }

    #[test]
    fn only_the_start_of_a_long_reply_is_read() {
        let d = defaults();
        let story = format!(
            "My parcel is late. I checked the tracking page. {} The delivery agent left a note.",
            "It says in transit. ".repeat(15)
        );
        assert!(!asks_for_human(&story, &d));
        let asks = format!("Human please. {}", "It says in transit. ".repeat(15));
        assert!(asks_for_human(&asks, &d));
    }

    #[test]
    fn quoted_lines_do_not_ask_for_a_person() {
        let d = defaults();
        assert!(!asks_for_human(
            "ok thanks\n> Reply \"human\" to talk to an agent",
            &d
        ));
    }

    #[test]
    fn replies_saying_the_answer_missed() {
        for t in [
            "That didn't answer my question",
            "still not working",
            "Still doesn’t work after resetting",
            "this is not what I asked",
            "没用",
            "还是没有解决",
            "这不是我要的",
            "答非所问",
        ] {
            assert!(says_not_helped(t), "{t}");
        }
    }

    #[test]
    fn thanks_is_not_a_complaint() {
        for t in [
            "thanks, that helped",
            "Thank you, it works now!",
            "谢谢，解决了",
            "好的，我还没用过，先试试",
            "ok\n> Did this not help? Reply and a person will answer.",
            "",
        ] {
            assert!(!says_not_helped(t), "{t}");
        }
    }
}
