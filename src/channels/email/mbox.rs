//! Splitting an mbox file into messages (mboxo/mboxrd `From ` lines, with `>From `
//! unescaping, and Content-Length framing where the header is present and consistent).

/// Whether `data` can be an mbox: empty (no messages), or starting with a `From ` line
/// (after blank lines). Anything else, such as a single `.eml`, is refused rather than
/// read as one message.
pub fn looks_like_mbox(data: &[u8]) -> bool {
    let start = data
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(data.len());
    data.get(start..)
        .is_none_or(|rest| rest.is_empty() || rest.starts_with(b"From "))
}

/// Splits mbox bytes into raw messages (the `From ` separator line removed).
pub fn split(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut pos = 0;
    // Skip anything before the first separator (there should be nothing).
    if !data.starts_with(b"From ") {
        match find_separator(data, 0) {
            Some(p) => pos = p,
            None => {
                if !data.iter().all(u8::is_ascii_whitespace) {
                    out.push(unescape(data));
                }
                return out;
            }
        }
    }
    while pos < data.len() {
        // The separator line itself.
        let body_start = match memchr(b'\n', data, pos) {
            Some(nl) => nl + 1,
            None => break,
        };
        // Content-Length framing, if the header says so and the next separator agrees.
        let mut end = None;
        if let Some(len) = content_length(data.get(body_start..).unwrap_or(&[])) {
            let (hdr_end, clen) = len;
            let cand = body_start + hdr_end + clen;
            let rest = data.get(cand..).unwrap_or(&[]);
            let rest_trim = rest
                .strip_prefix(b"\r\n")
                .or_else(|| rest.strip_prefix(b"\n"))
                .unwrap_or(rest);
            if cand <= data.len()
                && (rest.is_empty()
                    || rest_trim.starts_with(b"From ")
                    || rest.starts_with(b"From "))
            {
                end = Some(cand);
            }
        }
        let end = end.unwrap_or_else(|| find_separator(data, body_start).unwrap_or(data.len()));
        let mut msg = data.get(body_start..end).unwrap_or(&[]);
        // The blank line before the next separator belongs to the format, not the message.
        if msg.ends_with(b"\r\n\r\n") {
            msg = msg.strip_suffix(b"\r\n").unwrap_or(msg);
        } else if msg.ends_with(b"\n\n") {
            msg = msg.strip_suffix(b"\n").unwrap_or(msg);
        }
        let mut m = unescape(msg);
        if !m.ends_with(b"\n") {
            m.push(b'\n');
        }
        out.push(m);
        pos = data
            .get(end..)
            .map(|rest| {
                let skip = rest
                    .iter()
                    .take_while(|b| **b == b'\n' || **b == b'\r')
                    .count();
                end + skip
            })
            .unwrap_or(data.len());
    }
    out
}

fn memchr(needle: u8, hay: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .iter()
        .position(|b| *b == needle)
        .map(|p| p + from)
}

/// Position of the next `\nFrom ` line start at or after `from` (returns the index of `F`).
fn find_separator(data: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(nl) = memchr(b'\n', data, i) {
        if data.get(nl + 1..nl + 6) == Some(b"From ") {
            return Some(nl + 1);
        }
        i = nl + 1;
    }
    None
}

/// (header length including the blank line, Content-Length value) when present.
fn content_length(msg: &[u8]) -> Option<(usize, usize)> {
    let hdr_end = crate::channels::email::parse::body_offset(msg);
    let headers = std::str::from_utf8(msg.get(..hdr_end)?).ok()?;
    for line in headers.lines() {
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("Content-Length")
        {
            return v.trim().parse().ok().map(|n| (hdr_end, n));
        }
    }
    None
}

/// mboxrd: `>From `, `>>From `... lose one `>`.
fn unescape(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len());
    for line in msg.split_inclusive(|b| *b == b'\n') {
        let quotes = line.iter().take_while(|b| **b == b'>').count();
        if quotes > 0 && line.get(quotes..quotes + 5) == Some(b"From ") {
            out.extend_from_slice(line.get(1..).unwrap_or(&[]));
        } else {
            out.extend_from_slice(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_unescapes() {
        let mbox = b"From a@b Mon Jan  1 00:00:00 2024\nSubject: one\n\nhello\n>From the start\n\nFrom c@d Mon Jan  1 00:00:00 2024\nSubject: two\n\nbye\n";
        let m = split(mbox);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0], b"Subject: one\n\nhello\nFrom the start\n");
        assert_eq!(m[1], b"Subject: two\n\nbye\n");
    }

    #[test]
    fn content_length_protects_unescaped_from_lines() {
        let body = "line\n\nFrom inside the body\n";
        let mbox = format!(
            "From a@b Mon Jan  1 00:00:00 2024\nContent-Length: {}\nSubject: one\n\n{body}\nFrom c@d Mon Jan  1 00:00:00 2024\nSubject: two\n\nbye\n",
            body.len()
        );
        let m = split(mbox.as_bytes());
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(String::from_utf8_lossy(&m[0]).contains("From inside the body"));
    }

    #[test]
    fn empty_input_has_no_messages() {
        assert!(split(b"").is_empty());
        assert!(split(b"\n\n").is_empty());
    }
}
