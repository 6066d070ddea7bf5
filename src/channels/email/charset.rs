//! Text that does not say its charset, or says it wrongly: raw 8-bit header bytes with no
//! encoded word (older Chinese and Japanese clients, some gateways), and text parts with a
//! missing, unknown or false charset label. mail-parser reads such bytes as UTF-8 and
//! turns what is not into U+FFFD; here they are decoded by detection instead (chardetng,
//! Firefox's detector, with encoding_rs), and the caller records that the charset was
//! guessed. Pure functions.

/// Bytes fed to the detector at most: enough to decide, bounded for huge parts.
const MAX_SAMPLE: usize = 64 * 1024;

/// `bytes` decoded with a guessed charset, and its name, when they are not UTF-8 (valid
/// UTF-8 needs no guess). `tld` is the sender's top-level domain (`cn`, `tw`, `jp`...), a
/// hint the detector weighs for short texts.
pub fn decode_guessed(bytes: &[u8], tld: Option<&str>) -> Option<(String, &'static str)> {
    if std::str::from_utf8(bytes).is_ok() {
        return None;
    }
    let encoding = guess(bytes, tld);
    let (text, _, _) = encoding.decode(bytes);
    Some((text.into_owned(), encoding.name()))
}

/// The charset chardetng finds most likely for `bytes`.
pub fn guess(bytes: &[u8], tld: Option<&str>) -> &'static encoding_rs::Encoding {
    let sample = bytes.get(..MAX_SAMPLE).unwrap_or(bytes);
    let mut detector = chardetng::EncodingDetector::new();
    detector.feed(sample, sample.len() == bytes.len());
    let tld = tld
        .map(|t| t.trim_end_matches('.').to_ascii_lowercase())
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_lowercase()));
    detector.guess(tld.as_deref().map(str::as_bytes), false)
}

/// The top-level domain of an address, as a hint for [`guess`].
pub fn tld_of(address: &str) -> Option<&str> {
    address.rsplit_once('@')?.1.rsplit('.').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(text: &str, name: &str) -> Vec<u8> {
        let enc = encoding_rs::Encoding::for_label(name.as_bytes()).unwrap();
        let (bytes, _, bad) = enc.encode(text);
        assert!(!bad, "{text} in {name}");
        bytes.into_owned()
    }

    #[test]
    fn legacy_cjk_subjects_decode() {
        for (text, charset, tld) in [
            ("关于我的订单退款问题", "gbk", Some("cn")),
            ("關於我的訂單退款問題", "big5", Some("tw")),
            ("注文の返金について", "shift_jis", Some("jp")),
            (
                "Mein Konto wurde gesperrt, bitte prüfen",
                "windows-1252",
                None,
            ),
        ] {
            let bytes = encode(text, charset);
            let (decoded, _) = decode_guessed(&bytes, tld).unwrap();
            assert_eq!(decoded, text, "{charset}");
        }
    }

    #[test]
    fn utf8_needs_no_guess() {
        assert_eq!(decode_guessed("退款 ok".as_bytes(), Some("cn")), None);
        assert_eq!(tld_of("a@mail.example.CN"), Some("CN"));
        assert_eq!(tld_of("nodomain"), None);
    }
}
