//! The language of a text, as an ISO 639-1 code: whatlang where it is sure, and a script
//! count for short CJK text, which whatlang often declines ("我的账号被盗了").
//!
//! (A copy of `detect_language`/`iso639_1` in `intake::unit`, which will use this one.)

/// At most this many bytes are looked at.
pub const SAMPLE_BYTES: usize = 2048;

/// The language of `text`, when it can be told: Hiragana or Katakana → `ja`, Hangul →
/// `ko`, mostly Han → `zh`; otherwise whatlang's answer when it calls it reliable, `en`
/// for text made of enough English function words, or whatlang's guess when its
/// confidence is at least 0.5.
pub fn detect(text: &str) -> Option<&'static str> {
    let sample = head(text, SAMPLE_BYTES);
    let (mut letters, mut han, mut kana, mut hangul) = (0usize, 0usize, 0usize, 0usize);
    for c in sample.chars().filter(|c| c.is_alphabetic()) {
        letters += 1;
        match c as u32 {
            0x3040..=0x30FF | 0x31F0..=0x31FF | 0xFF66..=0xFF9F => kana += 1,
            0xAC00..=0xD7AF | 0x1100..=0x11FF | 0x3130..=0x318F => hangul += 1,
            0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F => han += 1,
            _ => {}
        }
    }
    if letters == 0 {
        return None;
    }
    let cjk = han + kana + hangul;
    if cjk * 2 > letters {
        // Japanese mixes kana into Han; Korean is Hangul.
        if kana * 10 >= cjk && kana > 0 {
            return Some("ja");
        }
        if hangul >= han && hangul > 0 {
            return Some("ko");
        }
        return Some("zh");
    }
    // Plain English settles on its function words, without whatlang's trigram count (the
    // largest share of triage's time): a higher bar than the fallback below, so German or
    // Dutch with a few shared words ("in", "was", "so") still goes to whatlang.
    if english_share(sample).is_some_and(|(hits, words)| hits >= 4 && hits * 10 >= words * 4) {
        return Some("en");
    }
    let info = whatlang::detect(head(sample, WHATLANG_BYTES));
    if let Some(i) = &info
        && i.is_reliable()
    {
        return Some(iso639_1(i.lang().code()));
    }
    // whatlang is unsure of short English ("I want a refund" comes out Catalan): count
    // English function words, then accept whatlang's better guesses.
    if looks_english(sample) {
        return Some("en");
    }
    info.filter(|i| i.confidence() >= 0.5)
        .map(|i| iso639_1(i.lang().code()))
}

/// At most this many bytes go to whatlang: its trigram statistics settle well before.
const WHATLANG_BYTES: usize = 512;

/// At least two English function words, making at least 30% of the words.
fn looks_english(text: &str) -> bool {
    english_share(text).is_some_and(|(hits, words)| hits >= 2 && hits * 10 >= words * 3)
}

/// (English function words, words) in `text`; `None` when it has no words.
fn english_share(text: &str) -> Option<(usize, usize)> {
    const WORDS: &[&str] = &[
        "a", "an", "and", "are", "be", "but", "can", "could", "did", "do", "does", "for", "from",
        "have", "has", "he", "how", "i", "i'm", "if", "in", "is", "it", "it's", "me", "my", "no",
        "not", "of", "on", "or", "our", "please", "she", "so", "that", "the", "there", "this",
        "to", "was", "we", "were", "what", "when", "where", "which", "who", "why", "will", "with",
        "would", "you", "your",
    ];
    let (mut words, mut hits) = (0usize, 0usize);
    for w in text
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
    {
        words += 1;
        if WORDS.contains(&w.to_lowercase().as_str()) {
            hits += 1;
        }
    }
    (words > 0).then_some((hits, words))
}

/// The first `max` bytes of `s`, cut at a character boundary.
pub fn head(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

/// whatlang names languages by ISO 639-3; agents (and `customers.language`) use the
/// two-letter ISO 639-1 code where one exists. Unknown codes pass through unchanged.
pub fn iso639_1(code: &'static str) -> &'static str {
    match code {
        "afr" => "af",
        "aka" => "ak",
        "amh" => "am",
        "ara" => "ar",
        "aze" => "az",
        "bel" => "be",
        "ben" => "bn",
        "bul" => "bg",
        "cat" => "ca",
        "ces" => "cs",
        "cmn" => "zh",
        "dan" => "da",
        "deu" => "de",
        "ell" => "el",
        "eng" => "en",
        "epo" => "eo",
        "est" => "et",
        "fin" => "fi",
        "fra" => "fr",
        "guj" => "gu",
        "heb" => "he",
        "hin" => "hi",
        "hrv" => "hr",
        "hun" => "hu",
        "hye" => "hy",
        "ind" => "id",
        "ita" => "it",
        "jav" => "jv",
        "jpn" => "ja",
        "kan" => "kn",
        "kat" => "ka",
        "khm" => "km",
        "kor" => "ko",
        "lat" => "la",
        "lav" => "lv",
        "lit" => "lt",
        "mal" => "ml",
        "mar" => "mr",
        "mkd" => "mk",
        "mya" => "my",
        "nep" => "ne",
        "nld" => "nl",
        "nob" => "nb",
        "ori" => "or",
        "pan" => "pa",
        "pes" => "fa",
        "pol" => "pl",
        "por" => "pt",
        "ron" => "ro",
        "rus" => "ru",
        "sin" => "si",
        "slk" => "sk",
        "slv" => "sl",
        "sna" => "sn",
        "spa" => "es",
        "srp" => "sr",
        "swe" => "sv",
        "tam" => "ta",
        "tel" => "te",
        "tgl" => "tl",
        "tha" => "th",
        "tuk" => "tk",
        "tur" => "tr",
        "ukr" => "uk",
        "urd" => "ur",
        "uzb" => "uz",
        "vie" => "vi",
        "yid" => "yi",
        "zul" => "zu",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_cjk_text_is_told_by_its_script() {
        assert_eq!(detect("我的账号被盗了"), Some("zh"));
        assert_eq!(detect("退款"), Some("zh"));
        assert_eq!(detect("アカウントが乗っ取られました"), Some("ja"));
        assert_eq!(detect("계정이 해킹당했어요"), Some("ko"));
    }

    #[test]
    fn longer_text_goes_to_whatlang() {
        assert_eq!(
            detect("Hello, I would like to get a refund for my last order, it arrived broken."),
            Some("en")
        );
        assert_eq!(detect("I want a refund"), Some("en"));
        assert_eq!(
            detect("Hallo, ich möchte mein Geld zurück, bitte."),
            Some("de")
        );
        assert_eq!(detect(""), None);
        assert_eq!(detect("1234 !!!"), None);
    }
}
