//! Words of a text, the same way for the index, the bot and the classifier.

use tantivy_jieba::JiebaTokenizer;
use tantivy_tokenizer_api::{TokenStream, Tokenizer};

/// Longest text read for words; longer texts are cut at a character boundary first.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;

/// The words of `text`: jieba segments Chinese (its dictionary is shared with the search
/// index's tokenizer, loaded once per process), Latin-script words are kept whole;
/// everything is lowercased, and tokens with no letter or digit (spaces, punctuation) are
/// dropped. At most [`MAX_TEXT_BYTES`] of `text` are read.
pub fn words(text: &str) -> Vec<String> {
    let text = cut(text, MAX_TEXT_BYTES);
    let mut tokenizer = JiebaTokenizer::with_search_mode(false);
    let mut stream = tokenizer.token_stream(text);
    let mut out = Vec::new();
    while stream.advance() {
        let t = stream.token().text.trim();
        if t.chars().any(char::is_alphanumeric) {
            out.push(t.to_lowercase());
        }
    }
    out
}

/// `text` cut to at most `max` bytes, at a character boundary.
pub fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_is_segmented_into_words() {
        let w = words("我想申请退款，怎么办？");
        assert!(w.contains(&"退款".to_string()), "{w:?}");
        assert!(!w.iter().any(|t| t == "，" || t == "？"), "{w:?}");
    }

    #[test]
    fn latin_words_are_lowercased_and_punctuation_dropped() {
        assert_eq!(
            words("How do I get a Refund?"),
            ["how", "do", "i", "get", "a", "refund"]
        );
    }

    #[test]
    fn long_text_is_cut_at_a_char_boundary() {
        let s = "退".repeat(MAX_TEXT_BYTES);
        assert!(cut(&s, 10).len() <= 10);
        assert!(!words(&s).is_empty());
    }
}
