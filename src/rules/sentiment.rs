//! Sentiment in [-1, 1]: VADER's compound score for English (and other Latin-script
//! text), a small lexicon for Chinese (`data/sentiment-zh.txt`, replaceable with
//! `[triage] sentiment_zh_lexicon`).
//!
//! Chinese is scored without word segmentation: the lexicon's entries are found
//! leftmost-longest in the text; a negation word ending at most [`WINDOW`] characters
//! before a sentiment word flips it (×[`NEGATION_FACTOR`]), an intensifier there
//! multiplies it; the sum is normalised as VADER does, `x / sqrt(x² + 15)`.
//!
//! Mixed text is scored both ways (Chinese when it has Han characters, VADER when it has
//! ASCII letters) and the more negative of the non-zero scores wins: a complaint must not
//! be averaged away by a polite sentence in the other language.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// The shipped Chinese lexicon.
pub const DEFAULT_ZH_LEXICON: &str = include_str!("../../data/sentiment-zh.txt");

/// How many characters may stand between a negation or intensifier and its word.
pub const WINDOW: usize = 3;
/// What a negation multiplies its word by (VADER uses -0.74; a Chinese 不 is firmer).
pub const NEGATION_FACTOR: f64 = -0.9;
/// At most this many bytes of a text are scored (VADER's cost grows with the text).
pub const SAMPLE_BYTES: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Word(f64),
    Negation,
    Intensifier(f64),
}

/// A parsed Chinese lexicon, ready to scan with.
#[derive(Debug, Clone)]
pub struct ZhLexicon {
    ac: Option<AhoCorasick>,
    kinds: Vec<Kind>,
}

impl Default for ZhLexicon {
    fn default() -> Self {
        // The shipped file is checked by a test; should it ever not parse, sentiment
        // for Chinese is 0 rather than a failed start.
        ZhLexicon::parse(DEFAULT_ZH_LEXICON).unwrap_or(ZhLexicon {
            ac: None,
            kinds: Vec::new(),
        })
    }
}

impl ZhLexicon {
    /// Reads the lexicon format (see `data/sentiment-zh.txt`); every problem is returned,
    /// each with its line number.
    pub fn parse(text: &str) -> Result<ZhLexicon, Vec<String>> {
        let mut problems = Vec::new();
        let mut words: Vec<String> = Vec::new();
        let mut kinds = Vec::new();
        let mut section: Option<&str> = None;
        for (n, line) in text.lines().enumerate() {
            let n = n + 1;
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                match name.trim() {
                    s @ ("negative" | "positive" | "negation" | "intensifier") => {
                        section = Some(s);
                    }
                    other => problems.push(format!(
                        "line {n}: unknown section [{other}]; the sections are [negative], [positive], [negation], [intensifier]"
                    )),
                }
                continue;
            }
            let mut parts = line.split_whitespace();
            let word = parts.next().unwrap_or_default().to_lowercase();
            let weight = match parts.next().map(str::parse::<f64>) {
                None => None,
                Some(Ok(w)) if w.is_finite() && w.abs() <= 10.0 => Some(w),
                Some(_) => {
                    problems.push(format!(
                        "line {n}: {word:?}: the weight must be a number between -10 and 10"
                    ));
                    continue;
                }
            };
            if parts.next().is_some() {
                problems.push(format!("line {n}: expected a word and at most one number"));
                continue;
            }
            let kind = match section {
                Some("negative") => Kind::Word(-weight.unwrap_or(-2.0).abs()),
                Some("positive") => Kind::Word(weight.unwrap_or(2.0).abs()),
                Some("negation") => Kind::Negation,
                Some(_) => Kind::Intensifier(weight.unwrap_or(1.5)),
                None => {
                    problems.push(format!("line {n}: {word:?} comes before any [section]"));
                    continue;
                }
            };
            if words.contains(&word) {
                problems.push(format!("line {n}: {word:?} is listed twice"));
                continue;
            }
            words.push(word);
            kinds.push(kind);
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let ac = if words.is_empty() {
            None
        } else {
            Some(
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&words)
                    .map_err(|e| vec![format!("the lexicon cannot be compiled: {e}")])?,
            )
        };
        Ok(ZhLexicon { ac, kinds })
    }

    /// The Chinese score of `text`, in [-1, 1]; 0 when no sentiment word occurs.
    pub fn score(&self, text: &str) -> f64 {
        let Some(ac) = &self.ac else {
            return 0.0;
        };
        let text = super::language::head(text, SAMPLE_BYTES);
        let mut sum = 0.0;
        // End (byte offset) of the last negation and intensifier seen, with its factor.
        let mut negation: Option<usize> = None;
        let mut intensifier: Option<(usize, f64)> = None;
        for m in ac.find_iter(text) {
            let near = |end: usize| {
                text.get(end..m.start()).is_some_and(|gap| {
                    gap.chars().count() <= WINDOW
                        && !gap.chars().any(|c| "，。！？；,.!?;\n".contains(c))
                })
            };
            match self.kinds.get(m.pattern().as_usize()) {
                Some(Kind::Negation) => negation = Some(m.end()),
                Some(Kind::Intensifier(f)) => intensifier = Some((m.end(), *f)),
                Some(Kind::Word(w)) => {
                    let mut v = *w;
                    if let Some((end, f)) = intensifier
                        && near(end)
                    {
                        v *= f;
                    }
                    if negation.is_some_and(near) {
                        v *= NEGATION_FACTOR;
                    }
                    sum += v;
                    negation = None;
                    intensifier = None;
                }
                None => {}
            }
        }
        normalise(sum)
    }
}

/// VADER's normalisation of a summed score into (-1, 1).
fn normalise(x: f64) -> f64 {
    if x == 0.0 {
        return 0.0;
    }
    (x / (x * x + 15.0).sqrt()).clamp(-1.0, 1.0)
}

/// VADER's compound score for `text` (English and other Latin-script text).
pub fn score_en(text: &str) -> f64 {
    let text = super::language::head(text, SAMPLE_BYTES);
    // vader_sentiment indexes its token list directly; its guards look right, but it is
    // an unmaintained crate reading strangers' text, so a panic there costs only the
    // score, not the daemon.
    let v = std::panic::catch_unwind(|| {
        vader_sentiment::SentimentIntensityAnalyzer::new()
            .polarity_scores(text)
            .get("compound")
            .copied()
    })
    .ok()
    .flatten()
    .unwrap_or(0.0);
    if v.is_finite() {
        v.clamp(-1.0, 1.0)
    } else {
        0.0
    }
}

/// The score of a text that may be Chinese, English or both (see the module doc).
pub fn score(text: &str, zh: &ZhLexicon) -> f64 {
    let sample = super::language::head(text, SAMPLE_BYTES);
    let has_han = sample.chars().any(super::keywords::is_cjk);
    let has_latin = sample.chars().any(|c| c.is_ascii_alphabetic());
    let mut scores = Vec::with_capacity(2);
    if has_han {
        scores.push(zh.score(sample));
    }
    if has_latin {
        scores.push(score_en(sample));
    }
    scores
        .into_iter()
        .filter(|s| *s != 0.0)
        .min_by(f64::total_cmp)
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zh(text: &str) -> f64 {
        score(text, &ZhLexicon::default())
    }

    #[test]
    fn the_shipped_lexicon_parses_and_is_large_enough() {
        let lex = ZhLexicon::parse(DEFAULT_ZH_LEXICON).unwrap();
        let neg = lex
            .kinds
            .iter()
            .filter(|k| matches!(k, Kind::Word(w) if *w < 0.0))
            .count();
        let pos = lex
            .kinds
            .iter()
            .filter(|k| matches!(k, Kind::Word(w) if *w > 0.0))
            .count();
        assert!(neg >= 80, "{neg} negative words");
        assert!(pos >= 40, "{pos} positive words");
    }

    #[test]
    fn chinese_scores() {
        assert!(zh("非常满意，谢谢") > 0.3, "{}", zh("非常满意，谢谢"));
        assert!(zh("太差了，我很生气") < -0.5, "{}", zh("太差了，我很生气"));
        assert!(zh("不满意") < 0.0, "{}", zh("不满意"));
        assert!(zh("我不生气") > 0.0, "{}", zh("我不生气"));
        assert_eq!(zh("退款什么时候到账"), 0.0);
    }

    #[test]
    fn english_scores() {
        let s = zh("This is the worst service ever, I am furious");
        assert!(s < -0.5, "{s}");
        assert!(zh("Thank you so much, great help!") > 0.3);
    }

    #[test]
    fn mixed_text_takes_the_more_negative() {
        let s = zh("Thanks for the reply. 但是太差了，我很生气");
        assert!(s < -0.5, "{s}");
    }

    #[test]
    fn lexicon_problems_are_reported_with_line_numbers() {
        let e = ZhLexicon::parse("差 -2\n[negative]\n坏 x\n坏 -1\n坏 -1\n[moods]\n").unwrap_err();
        assert_eq!(
            e,
            vec![
                "line 1: \"差\" comes before any [section]".to_string(),
                "line 3: \"坏\": the weight must be a number between -10 and 10".to_string(),
                "line 5: \"坏\" is listed twice".to_string(),
                "line 6: unknown section [moods]; the sections are [negative], [positive], [negation], [intensifier]".to_string(),
            ]
        );
    }

    #[test]
    fn hostile_text_does_not_panic() {
        let big = "差".repeat(1_000_000);
        assert!(zh(&big) < -0.9);
        let weird = "\u{0}\u{fffd}!!!???... :) :( 😡😡😡 ".repeat(5000);
        let s = zh(&weird);
        assert!((-1.0..=1.0).contains(&s));
    }
}
