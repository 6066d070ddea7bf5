//! Keyword matching: every keyword of every rule (and, separately, every forced-human
//! term) compiled into one Aho-Corasick automaton, run once per message over the
//! lower-cased subject and text.
//!
//! How a keyword matches, in an admin's words:
//! - case does not matter (both sides are lower-cased with Unicode rules);
//! - CJK (Han, Hiragana, Katakana, Hangul) is written without spaces, so a keyword edge
//!   that is a CJK character matches inside a longer run: `退款` matches `我要退款`;
//! - any other keyword edge must be a word boundary: `refund` matches "a refund." and
//!   "REFUND!", not "refunded" or "nonrefundable"; a phrase (`money back`) matches as
//!   written, single spaces included;
//! - a keyword ending in `*` is a prefix: `refund*` matches "refund", "refunded" and
//!   "refunding" (its start is still a word boundary).
//!
//! A CJK character next to a Latin keyword counts as a boundary, so `refund` matches in
//! `我要refund`.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// At most this many bytes of subject plus text are scanned (a bigger message is cut at a
/// character boundary): keyword rules look at what a person wrote, and a 50 MB body must
/// not cost a 50 MB lower-cased copy.
pub const MAX_SCAN_BYTES: usize = 1024 * 1024;

/// One keyword as the automaton holds it.
#[derive(Debug, Clone)]
struct Entry {
    /// Check the character before a match (the keyword does not start with CJK).
    left_boundary: bool,
    /// Check the character after a match (no CJK end, no trailing `*`).
    right_boundary: bool,
}

/// A compiled set of keywords; ids are positions in the order they were added.
#[derive(Debug, Clone, Default)]
pub struct KeywordIndex {
    ac: Option<AhoCorasick>,
    entries: Vec<Entry>,
    /// The lower-cased keyword texts, `*` removed (for `term` in a forced match).
    texts: Vec<String>,
}

/// Which keywords of an index occur in one message.
#[derive(Debug, Clone, Default)]
pub struct Hits {
    bits: Vec<u64>,
    /// The first keyword found in text order, the longest of those starting there
    /// (forced-human reports it).
    pub first: Option<usize>,
}

impl Hits {
    pub fn contains(&self, id: usize) -> bool {
        self.bits
            .get(id / 64)
            .is_some_and(|w| w & (1u64 << (id % 64)) != 0)
    }

    fn insert(&mut self, id: usize) {
        if let Some(w) = self.bits.get_mut(id / 64) {
            *w |= 1u64 << (id % 64);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|w| *w == 0)
    }
}

/// A keyword as written, normalised: lower-cased, whitespace runs made single spaces.
/// Empty (after trimming, `*` aside) means "not a keyword"; config validation reports it.
pub fn normalise(keyword: &str) -> String {
    keyword
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// CJK scripts, written without spaces between words.
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF        // Hiragana, Katakana
        | 0x3100..=0x312F      // Bopomofo
        | 0x31F0..=0x31FF      // Katakana extensions
        | 0x3400..=0x4DBF      // Han extension A
        | 0x4E00..=0x9FFF      // Han
        | 0xAC00..=0xD7AF      // Hangul syllables
        | 0x1100..=0x11FF      // Hangul jamo
        | 0x3130..=0x318F      // Hangul compatibility jamo
        | 0xF900..=0xFAFF      // Han compatibility
        | 0xFF66..=0xFF9F      // half-width Katakana
        | 0x20000..=0x2FA1F    // Han extensions B-F, compatibility supplement
    )
}

/// A character that continues a word for boundary purposes (not CJK: see the module doc).
fn is_word_char(c: char) -> bool {
    (c.is_alphanumeric() || c == '_') && !is_cjk(c)
}

impl KeywordIndex {
    /// Builds the index; `keywords` are normalised by [`normalise`] first. An empty
    /// keyword gets an id but never matches.
    pub fn new<S: AsRef<str>>(keywords: &[S]) -> KeywordIndex {
        let mut entries = Vec::with_capacity(keywords.len());
        let mut texts = Vec::with_capacity(keywords.len());
        for k in keywords {
            let k = normalise(k.as_ref());
            let (text, prefix) = match k.strip_suffix('*') {
                Some(t) => (t.trim_end().to_string(), true),
                None => (k, false),
            };
            let left_boundary = text.chars().next().is_some_and(|c| !is_cjk(c));
            let right_boundary = !prefix && text.chars().last().is_some_and(|c| !is_cjk(c));
            entries.push(Entry {
                left_boundary,
                right_boundary,
            });
            texts.push(text);
        }
        // An empty pattern would match everywhere: give it a pattern that cannot occur
        // in lower-cased, NUL-free text... and drop NULs from scanned text.
        let patterns: Vec<&str> = texts
            .iter()
            .map(|t| {
                if t.is_empty() {
                    "\u{0}\u{0}"
                } else {
                    t.as_str()
                }
            })
            .collect();
        let ac = if patterns.is_empty() {
            None
        } else {
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .build(&patterns)
                .ok()
        };
        KeywordIndex { ac, entries, texts }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The keyword text of an id (lower-cased, `*` removed).
    pub fn text(&self, id: usize) -> &str {
        self.texts.get(id).map_or("", String::as_str)
    }

    /// Every keyword found in `parts` (scanned as one text, a space between parts).
    pub fn scan(&self, parts: &[&str]) -> Hits {
        self.scan_prepared(&prepare(parts))
    }

    /// Every keyword found in a text already made by [`prepare`].
    pub fn scan_prepared(&self, hay: &str) -> Hits {
        let mut hits = Hits {
            bits: vec![0; self.entries.len().div_ceil(64)],
            first: None,
        };
        let Some(ac) = &self.ac else {
            return hits;
        };
        let mut first: Option<(usize, usize, usize)> = None;
        for m in ac.find_overlapping_iter(hay) {
            let id = m.pattern().as_usize();
            if hits.contains(id) {
                continue;
            }
            let Some(entry) = self.entries.get(id) else {
                continue;
            };
            if entry.left_boundary
                && hay
                    .get(..m.start())
                    .and_then(|s| s.chars().next_back())
                    .is_some_and(is_word_char)
            {
                continue;
            }
            if entry.right_boundary
                && hay
                    .get(m.end()..)
                    .and_then(|s| s.chars().next())
                    .is_some_and(is_word_char)
            {
                continue;
            }
            hits.insert(id);
            // The earliest match; at the same start, the longest ("被盗刷" over "被盗").
            if first.is_none_or(|(start, end, _)| {
                m.start() < start || (m.start() == start && m.end() > end)
            }) {
                first = Some((m.start(), m.end(), id));
            }
        }
        hits.first = first.map(|(_, _, id)| id);
        hits
    }
}

/// The text keywords are searched in: the parts lower-cased, joined by newlines, runs
/// of whitespace made single spaces (so that a phrase matches across a line break), cut
/// at [`MAX_SCAN_BYTES`].
pub fn prepare(parts: &[&str]) -> String {
    let mut out = String::new();
    let mut space = false;
    for part in parts {
        if out.len() >= MAX_SCAN_BYTES {
            break;
        }
        if !out.is_empty() {
            space = true;
        }
        for c in part.chars() {
            if out.len() >= MAX_SCAN_BYTES {
                break;
            }
            if c.is_whitespace() || c == '\u{0}' {
                space = true;
                continue;
            }
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(keywords: &[&str], text: &str) -> Vec<String> {
        let idx = KeywordIndex::new(keywords);
        let hits = idx.scan(&["", text]);
        (0..idx.len())
            .filter(|i| hits.contains(*i))
            .map(|i| idx.text(i).to_string())
            .collect()
    }

    #[test]
    fn latin_keywords_match_whole_words_only() {
        assert_eq!(found(&["refund"], "I want a REFUND."), ["refund"]);
        assert!(found(&["refund"], "it was refunded").is_empty());
        assert!(found(&["refund"], "nonrefundable").is_empty());
        assert_eq!(found(&["refund*"], "it was refunded"), ["refund"]);
        assert!(found(&["refund*"], "nonrefundable").is_empty());
    }

    #[test]
    fn cjk_keywords_match_inside_runs() {
        assert_eq!(found(&["退款"], "我要退款！"), ["退款"]);
        assert_eq!(found(&["refund"], "我要refund"), ["refund"]);
    }

    #[test]
    fn phrases_match_across_line_breaks_and_overlapping_keywords_all_match() {
        assert_eq!(
            found(&["money back"], "give me my Money\n  back"),
            ["money back"]
        );
        let mut both = found(&["money", "money back", "back"], "money back");
        both.sort();
        assert_eq!(both, ["back", "money", "money back"]);
    }

    #[test]
    fn a_refused_match_does_not_hide_a_later_good_one() {
        assert_eq!(found(&["refund"], "refunding, then refund"), ["refund"]);
    }

    #[test]
    fn empty_keywords_never_match() {
        assert!(found(&["", "  "], "anything at all").is_empty());
    }
}
