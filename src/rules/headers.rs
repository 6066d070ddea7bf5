//! The header block of a raw message, read just well enough for header conditions:
//! names and unfolded values, bytes decoded lossily (encoded words are left as written).

/// At most this many bytes are read from the start of a message.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// At most this many headers are returned.
pub const MAX_HEADERS: usize = 500;

/// The headers of `raw`, in order: everything up to the first blank line (CRLF or LF
/// endings), at most [`MAX_HEADER_BYTES`] and [`MAX_HEADERS`]. Continuation lines (starting
/// with a space or tab) are unfolded into the previous value with one space; a line without
/// a colon, or with an empty or non-printable name, is skipped. Never fails.
pub fn parse(raw: &[u8]) -> Vec<(String, String)> {
    let block = raw.get(..raw.len().min(MAX_HEADER_BYTES)).unwrap_or(raw);
    let mut out: Vec<(String, String)> = Vec::new();
    // Whether the previous line was a header we kept (a continuation may extend it).
    let mut open = false;
    for line in block.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if matches!(line.first(), Some(b' ' | b'\t')) {
            if open && let Some((_, value)) = out.last_mut() {
                let more = String::from_utf8_lossy(line);
                let more = more.trim();
                if !more.is_empty() {
                    if !value.is_empty() {
                        value.push(' ');
                    }
                    value.push_str(more);
                }
            }
            continue;
        }
        open = false;
        if out.len() >= MAX_HEADERS {
            // Keep reading continuation lines of nothing; stop collecting.
            continue;
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        let name = String::from_utf8_lossy(name).trim().to_string();
        if name.is_empty() || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
            continue;
        }
        let value = String::from_utf8_lossy(value.get(1..).unwrap_or_default())
            .trim()
            .to_string();
        out.push((name, value));
        open = true;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_unfolds_and_stops_at_the_blank_line() {
        let raw = b"From: a@example.com\r\nX-Mailer: Foo\r\n  Bar 1.0\r\nSubject: hi\r\n\r\nX-Not: body\r\n";
        let h = parse(raw);
        assert_eq!(
            h,
            vec![
                ("From".to_string(), "a@example.com".to_string()),
                ("X-Mailer".to_string(), "Foo Bar 1.0".to_string()),
                ("Subject".to_string(), "hi".to_string()),
            ]
        );
    }

    #[test]
    fn hostile_headers_do_not_panic_and_are_bounded() {
        let mut raw = Vec::new();
        for i in 0..10_000 {
            raw.extend_from_slice(format!("X-H{i}: v").as_bytes());
            raw.extend_from_slice(b"\xff\xfe\n");
        }
        raw.extend_from_slice(b"\xff\xff: \x80\n no colon here\n\tcont\n");
        let h = parse(&raw);
        assert!(h.len() <= MAX_HEADERS);
        assert!(h.iter().all(|(n, _)| !n.is_empty()));
        assert!(parse(b"").is_empty());
        assert!(parse(b"\n\n").is_empty());
        assert!(parse(b"  leading continuation\nA: b").len() == 1);
        assert_eq!(parse(&[b':'; 100_000]).len(), 0);
    }

    #[test]
    fn invalid_utf8_is_decoded_lossily() {
        let h = parse(b"X-Mailer: caf\xe9\n\n");
        assert_eq!(h.first().map(|(_, v)| v.as_str()), Some("caf\u{fffd}"));
    }
}
