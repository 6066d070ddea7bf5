//! Raw bytes → [`Inbound`]: everything the pipeline needs from a message, extracted once.
//!
//! Parsing never fails and never panics on hostile input: mail-parser is lenient, and when
//! it gives up entirely we still return a best-effort [`Inbound`] with a problem noted. The
//! caller always keeps the raw bytes, so nothing here has to be perfect to be lossless.
//!
//! Message-IDs are normalised (angle brackets, whitespace and case removed) so that copies
//! of one mail dedup and threading headers match whatever a client did to them. Mail with
//! no Message-ID gets a stable synthetic one derived from its content.

use mail_parser::{Address, HeaderValue, MessageParser, MimeHeaders, PartType};
use sha2::{Digest, Sha256};
use std::borrow::Cow;

use crate::channels::email::charset;
use crate::domain::address::{Mailbox, addr_specs, normalize_address};

/// Texts longer than this are cut when stored in columns; the raw message keeps them whole.
pub const MAX_TEXT_BYTES: usize = 2 * 1024 * 1024;
/// Subjects longer than this are cut when stored in columns.
pub const MAX_SUBJECT_BYTES: usize = 16 * 1024;
/// More MIME boundary lines than this and the body is not decoded part by part: mail-parser
/// spends about a kilobyte per part, so 700,000 empty parts (29 MB) took 659 MB. The
/// headers are still parsed, the body is kept as text and the raw bytes are kept whole.
pub const MAX_MIME_PARTS: usize = 5_000;
/// Message-IDs kept from References (the newest).
pub const MAX_REFERENCES: usize = 100;
/// Envelope recipients kept from Delivered-To and its kin.
pub const MAX_ENVELOPE_TO: usize = 50;
/// Synthetic Message-IDs end in this domain so they can be told apart.
pub const SYNTHETIC_DOMAIN: &str = "synthetic.postdesk.invalid";

pub use crate::domain::inbound::{AttachmentMeta, AutoSignals, DeliveryReport, Inbound};

/// Normalises a Message-ID: strips angle brackets, whitespace and comments, lowercases.
/// Returns None when nothing usable remains.
pub fn normalize_message_id(id: &str) -> Option<String> {
    let s: String = id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '\0')
        .collect();
    let s = s.to_lowercase();
    if s.is_empty() || s.len() > 998 {
        None
    } else {
        Some(s)
    }
}

fn hex_sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Where the body starts: after the first empty line (CRLF or LF).
pub fn body_offset(raw: &[u8]) -> usize {
    let mut i = 0;
    let mut line_start = true;
    while let Some(&b) = raw.get(i) {
        if line_start {
            if b == b'\n' {
                return i + 1;
            }
            if b == b'\r' && raw.get(i + 1) == Some(&b'\n') {
                return i + 2;
            }
        }
        line_start = b == b'\n';
        i += 1;
    }
    raw.len()
}

/// Cuts a string to at most `max` bytes on a character boundary and removes NUL bytes,
/// which SQLite text columns and most tools handle badly.
pub fn clean_text(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("").replace('\0', "")
}

/// The mailboxes of an address header. mail-parser reads a bare addr-spec with a quoted
/// or commented local part (`"victim"@x`, `victim(boss)@x`) as an empty local part, which
/// would make every such sender of a domain one customer; then the raw header value is
/// read by hand ([`addr_specs`]). An address with an empty local part is never kept.
fn mailboxes_in(addr: Option<&Address<'_>>, raw_value: Option<&str>) -> Vec<Mailbox> {
    let misread = addr.is_some_and(|a| {
        a.iter()
            .any(|m| m.address().is_some_and(|x| x.trim().starts_with('@')))
    });
    if misread && let Some(raw) = raw_value {
        let decoded = String::from_utf8_lossy(raw.as_bytes());
        return addr_specs(&decoded)
            .into_iter()
            .map(|a| Mailbox {
                name: None,
                address: clean_text(&a, 512),
            })
            .collect();
    }
    mailboxes(addr)
}

fn mailboxes(addr: Option<&Address<'_>>) -> Vec<Mailbox> {
    let Some(addr) = addr else { return Vec::new() };
    addr.iter()
        .filter_map(|a| {
            // `From: "finances8@loans.example"`: a display name that is itself an address,
            // and no address beside it, is that address.
            let address = match a.address() {
                Some(x) => normalize_address(x),
                None => normalize_address(a.name().filter(|n| is_bare_address(n))?),
            };
            let local_ok = address
                .rsplit_once('@')
                .is_none_or(|(local, _)| !local.trim().is_empty());
            (!address.is_empty() && local_ok).then(|| Mailbox {
                name: a
                    .name()
                    .filter(|_| a.address().is_some())
                    .map(|n| clean_text(n.trim(), 512))
                    .filter(|n| !n.is_empty()),
                address: clean_text(&address, 512),
            })
        })
        .collect()
}

/// Text of a `format=flowed` part (RFC 3676) with its soft line breaks rejoined: a line
/// ending in a space continues on the next line of the same quote depth (with
/// `delsp=yes` the space goes). Space-stuffing is undone; `-- ` stays a hard line; quote
/// marks are written back as `> ` per level.
pub fn unflow(text: &str, delsp: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let emit = |out: &mut String, depth: usize, line: &str| {
        for _ in 0..depth {
            out.push('>');
        }
        if depth > 0 && !line.is_empty() {
            out.push(' ');
        }
        // The signature separator keeps its space; other lines lose trailing ones.
        out.push_str(if line == "-- " {
            line
        } else {
            line.trim_end_matches(' ')
        });
        out.push('\n');
    };
    let mut pending: Option<(usize, String)> = None;
    let body = text.strip_suffix('\n').unwrap_or(text);
    for raw in body.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let depth = line.chars().take_while(|c| *c == '>').count();
        let content = line.get(depth..).unwrap_or_default();
        let content = content.strip_prefix(' ').unwrap_or(content);
        let soft = content.ends_with(' ') && content != "-- ";
        let piece = if soft && delsp {
            content.get(..content.len() - 1).unwrap_or(content)
        } else {
            content
        };
        match pending.take() {
            Some((d, mut acc)) if d == depth => {
                acc.push_str(piece);
                if soft {
                    pending = Some((d, acc));
                } else {
                    emit(&mut out, d, &acc);
                }
            }
            earlier => {
                if let Some((d, acc)) = earlier {
                    emit(&mut out, d, &acc);
                }
                if soft {
                    pending = Some((depth, piece.to_string()));
                } else {
                    emit(&mut out, depth, piece);
                }
            }
        }
    }
    if let Some((d, acc)) = pending {
        emit(&mut out, d, &acc);
    }
    // Every emitted line ended in a line break; the text may not have.
    if !text.ends_with('\n') {
        out.pop();
    }
    out
}

/// A file attached to a message, with its bytes.
#[derive(Debug, Clone)]
pub struct AttachmentData {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// The attachments of `raw` (parts that are not its text or HTML body), decoded. For
/// relaying an agent's files; the ingest path keeps only their metadata.
pub fn attachments_of(raw: &[u8]) -> Vec<AttachmentData> {
    let Some(msg) = MessageParser::default().parse(raw) else {
        return Vec::new();
    };
    msg.attachments()
        .map(|p| AttachmentData {
            filename: p
                .attachment_name()
                .map(|n| clean_text(n, 200))
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| "attachment".to_string()),
            content_type: p
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{sub}", ct.ctype()),
                    None => ct.ctype().to_string(),
                })
                .unwrap_or_else(|| "application/octet-stream".to_string()),
            bytes: p.contents().to_vec(),
        })
        .collect()
}

/// `local@domain.tld` and nothing else: no spaces, one `@`, a dot in the domain.
fn is_bare_address(s: &str) -> bool {
    let s = s.trim();
    !s.chars()
        .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c))
        && s.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
}

fn id_list(v: &HeaderValue<'_>) -> Vec<String> {
    match v {
        HeaderValue::Text(t) => t
            .split_whitespace()
            .filter_map(normalize_message_id)
            .collect(),
        HeaderValue::TextList(l) => l.iter().filter_map(|t| normalize_message_id(t)).collect(),
        _ => Vec::new(),
    }
}

fn header_text(msg: &mail_parser::Message<'_>, name: &str) -> Option<String> {
    msg.header_raw(name)
        .map(|v| v.trim().to_lowercase())
        .filter(|v| !v.is_empty())
}

/// Parses raw bytes. Never panics and always returns something usable.
///
/// mail-parser is lenient but not panic-free on every input (0.11.9 has a `debug_assert!`
/// that malformed nesting reaches, see `tests/fixtures/mail-parser-panic.eml`), so the
/// parse runs under `catch_unwind`: a panic there becomes a problem on the message, which
/// is then stored as best it can be, never a crash of the daemon.
pub fn parse(raw: &[u8]) -> Inbound {
    if test_fault_requested(raw) {
        tracing::error!("POSTDESK_FAULT=abort-on-marker: aborting on a marked message");
        std::process::abort();
    }
    match std::panic::catch_unwind(|| parse_inner(raw, false)) {
        Ok(p) => p,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            tracing::warn!("mail-parser panicked on a message ({what}); using its headers only");
            // The header block alone is parsed by a separate, simpler path; the body is
            // kept as raw text.
            let mut p = std::panic::catch_unwind(|| parse_inner(raw, true))
                .unwrap_or_else(|_| unparsed(raw, Vec::new()));
            if p.body_text.is_empty() {
                let body = raw.get(body_offset(raw)..).unwrap_or(&[]);
                p.body_text = clean_text(&String::from_utf8_lossy(body), MAX_TEXT_BYTES);
                p.first_text_len = p.body_text.len();
                p.text_parts = 1;
            }
            p.problems
                .push(format!("mail-parser panicked: {what}; body not decoded"));
            p
        }
    }
}

/// Test hook: with `POSTDESK_FAULT=abort-on-marker`, parsing a message whose header block
/// has `X-Postdesk-Test-Fault: abort` aborts the process, as a message that overflows a
/// parser's stack would. The integration tests prove the quarantine with it. Read once;
/// never set it in production.
fn test_fault_requested(raw: &[u8]) -> bool {
    static ARMED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*ARMED.get_or_init(|| std::env::var("POSTDESK_FAULT").is_ok_and(|v| v == "abort-on-marker"))
    {
        return false;
    }
    let head = raw.get(..body_offset(raw)).unwrap_or(raw);
    head.windows(28)
        .any(|w| w.eq_ignore_ascii_case(b"X-Postdesk-Test-Fault: abort"))
}

/// The best we can say of bytes mail-parser could not handle: hashes, a synthetic id, the
/// bytes as text.
fn unparsed(raw: &[u8], problems: Vec<String>) -> Inbound {
    let raw_sha256 = hex_sha256(raw);
    let body_sha256 = hex_sha256(raw.get(body_offset(raw)..).unwrap_or(&[]));
    Inbound {
        message_id: synthetic_id(&[&raw_sha256]),
        synthetic_id: true,
        in_reply_to: Vec::new(),
        references: Vec::new(),
        from: None,
        from_count: 0,
        sender: None,
        to: Vec::new(),
        cc: Vec::new(),
        reply_to: Vec::new(),
        envelope_to: Vec::new(),
        subject: String::new(),
        date: None,
        body_text: clean_text(&String::from_utf8_lossy(raw), MAX_TEXT_BYTES),
        html_only: false,
        first_text_len: usize::MAX,
        first_part_html: false,
        text_parts: 1,
        attachments: Vec::new(),
        auto: AutoSignals::default(),
        report: None,
        raw_sha256,
        body_sha256,
        problems,
        ..Default::default()
    }
}

fn parse_inner(raw: &[u8], headers_only: bool) -> Inbound {
    let raw_sha256 = hex_sha256(raw);
    let body_sha256 = hex_sha256(raw.get(body_offset(raw)..).unwrap_or(&[]));
    let mut problems = Vec::new();

    let parser = MessageParser::default();
    let parts = boundary_lines(raw);
    let too_many_parts = parts > MAX_MIME_PARTS;
    if too_many_parts && !headers_only {
        problems.push(format!(
            "{parts} MIME boundary lines, over the limit of {MAX_MIME_PARTS}: the body was not decoded part by part"
        ));
    }
    let parsed = if headers_only || too_many_parts {
        parser.parse_headers(raw)
    } else {
        parser.parse(raw)
    };
    let Some(msg) = parsed else {
        return unparsed(
            raw,
            vec!["mail-parser could not parse the message at all".to_string()],
        );
    };

    // From: every From header counts (RFC 5322 allows one; two is a forgery signal).
    let mut from_all = Vec::new();
    let mut from_headers = 0;
    for h in msg.headers() {
        if h.name().eq_ignore_ascii_case("From") {
            from_headers += 1;
            if let HeaderValue::Address(a) = h.value() {
                let raw_value = raw
                    .get(h.offset_start as usize..h.offset_end as usize)
                    .and_then(|b| std::str::from_utf8(b).ok());
                from_all.extend(mailboxes_in(Some(a), raw_value));
            }
        }
    }
    if from_headers > 1 {
        problems.push(format!("{from_headers} From headers"));
    }
    let from_count = from_all.len();
    let mut from = from_all.first().cloned();
    if from.is_none() {
        // No From address (a bare display name, `<>`, no header): the sender is taken from
        // Reply-To, then from the envelope (Return-Path), and the message says so. Such a
        // sender never acts as an agent (an agent's mail needs exactly one From header).
        let reply_to = mailboxes_in(msg.reply_to(), msg.header_raw("Reply-To"));
        let envelope = msg
            .header_raw("Return-Path")
            .map(|v| addr_specs(&String::from_utf8_lossy(v.as_bytes())))
            .unwrap_or_default();
        if let Some(m) = reply_to.into_iter().next() {
            problems.push(format!(
                "no From address; the sender was taken from Reply-To ({})",
                m.address
            ));
            from = Some(m);
        } else if let Some(a) = envelope
            .into_iter()
            .map(|a| normalize_address(&a))
            .find(|a| {
                a.rsplit_once('@')
                    .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty())
            })
        {
            problems.push(format!(
                "no From address; the sender was taken from the envelope (Return-Path {a})"
            ));
            from = Some(Mailbox {
                name: None,
                address: clean_text(&a, 512),
            });
        }
    }

    // Raw 8-bit header bytes in a legacy charset, with no encoded word: guessed.
    let tld: Option<String> = from
        .as_ref()
        .and_then(|f| charset::tld_of(&f.address))
        .map(str::to_string);
    let tld = tld.as_deref();
    let guessed_subject = guessed_header(raw, &msg, "Subject", tld);
    if let Some((_, charset)) = &guessed_subject {
        problems.push(format!(
            "the Subject is raw 8-bit text; its charset was guessed as {charset}"
        ));
    }
    if let Some((value, charset)) = guessed_header(raw, &msg, "From", tld)
        && let Some(f) = from.as_mut()
    {
        let name = value
            .split('<')
            .next()
            .unwrap_or_default()
            .trim()
            .trim_matches('"')
            .trim();
        if !name.is_empty() && !name.contains('@') {
            f.name = Some(clean_text(name, 512));
            problems.push(format!(
                "the From name is raw 8-bit text; its charset was guessed as {charset}"
            ));
        }
    }
    let subject = clean_text(
        &guessed_subject
            .map(|(s, _)| s)
            .unwrap_or_else(|| msg.subject().unwrap_or("").to_string())
            .replace(['\r', '\n'], " ")
            .replace('\t', " "),
        MAX_SUBJECT_BYTES,
    );
    let date = msg
        .date()
        .map(|d| d.to_timestamp())
        .filter(|t| *t > 0 && *t < 32_503_680_000);

    let in_reply_to = id_list(msg.in_reply_to());
    let mut references = id_list(msg.references());
    // A hostile References header with thousands of ids must not make lookups explode:
    // the newest ones are kept (cut first, so the merge below stays linear).
    if references.len() > MAX_REFERENCES {
        let keep_from = references.len() - MAX_REFERENCES;
        references.drain(..keep_from);
        problems.push(format!("References cut to its newest {MAX_REFERENCES} ids"));
    }
    let missing: Vec<String> = {
        let mut seen: std::collections::HashSet<&str> =
            references.iter().map(String::as_str).collect();
        in_reply_to
            .iter()
            .take(MAX_REFERENCES)
            .filter(|id| seen.insert(id.as_str()))
            .cloned()
            .collect()
    };
    references.extend(missing);

    let mut envelope_to = Vec::new();
    let mut envelope_seen = std::collections::HashSet::new();
    for h in msg.headers() {
        let n = h.name();
        if n.eq_ignore_ascii_case("Delivered-To")
            || n.eq_ignore_ascii_case("X-Original-To")
            || n.eq_ignore_ascii_case("Envelope-To")
        {
            let text = match h.value() {
                HeaderValue::Text(t) => t.to_string(),
                HeaderValue::Address(a) => a
                    .iter()
                    .filter_map(|x| x.address())
                    .collect::<Vec<_>>()
                    .join(","),
                _ => continue,
            };
            for a in text.split(',') {
                let a = normalize_address(a);
                if envelope_to.len() >= MAX_ENVELOPE_TO {
                    break;
                }
                if !a.is_empty() && envelope_seen.insert(a.clone()) {
                    envelope_to.push(a);
                }
            }
        }
    }

    let auto_submitted = header_text(&msg, "Auto-Submitted");
    let return_path_raw = msg.header_raw("Return-Path");
    let auto = AutoSignals {
        auto_submitted,
        precedence: header_text(&msg, "Precedence"),
        list_id: msg.header_raw("List-Id").is_some(),
        list_unsubscribe: msg.header_raw("List-Unsubscribe").is_some(),
        return_path_null: return_path_raw.is_some_and(|v| {
            let v: String = v.chars().filter(|c| !c.is_whitespace()).collect();
            v == "<>" || v.is_empty()
        }),
        x_autoreply: msg.header_raw("X-Autoreply").is_some()
            || msg.header_raw("X-Autorespond").is_some()
            || header_text(&msg, "X-Auto-Response-Suppress")
                .is_some_and(|v| v.contains("all") || v.contains("oof")),
        feedback_report: msg.content_type().is_some_and(|ct| {
            ct.attribute("report-type")
                .is_some_and(|r| r.eq_ignore_ascii_case("feedback-report"))
        }),
    };

    let body = if too_many_parts {
        let raw_body = raw.get(body_offset(raw)..).unwrap_or(&[]);
        let text = clean_text(
            &String::from_utf8_lossy(raw_body.get(..MAX_TEXT_BYTES).unwrap_or(raw_body)),
            MAX_TEXT_BYTES,
        );
        TextBody {
            first_len: text.len(),
            text,
            parts: 1,
            ..TextBody::default()
        }
    } else {
        extract_text(&msg, raw, tld)
    };
    problems.extend(body.problems);
    let attachments = msg
        .attachments()
        .map(|p| AttachmentMeta {
            filename: p.attachment_name().map(|n| clean_text(n, 512)),
            content_type: p
                .content_type()
                .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("octet-stream")))
                .unwrap_or_else(|| "application/octet-stream".to_string())
                .to_lowercase(),
            size: p.len(),
        })
        .collect();

    let report = delivery_report(&msg);

    let (message_id, synthetic) = match msg.message_id().and_then(normalize_message_id) {
        Some(id) => (id, false),
        None => (
            synthetic_id(&[
                from.as_ref().map(|f| f.address.as_str()).unwrap_or(""),
                msg.header_raw("Date").unwrap_or("").trim(),
                &subject,
                &body_sha256,
            ]),
            true,
        ),
    };

    Inbound {
        message_id,
        synthetic_id: synthetic,
        in_reply_to,
        references,
        from,
        from_count,
        sender: mailboxes_in(msg.sender(), msg.header_raw("Sender"))
            .into_iter()
            .next(),
        to: mailboxes_in(msg.to(), msg.header_raw("To")),
        cc: mailboxes_in(msg.cc(), msg.header_raw("Cc")),
        reply_to: mailboxes_in(msg.reply_to(), msg.header_raw("Reply-To")),
        envelope_to,
        subject,
        date,
        body_text: body.text,
        html_only: body.html_only,
        first_text_len: body.first_len,
        first_part_html: body.first_html,
        text_parts: body.parts,
        attachments,
        auto,
        report,
        raw_sha256,
        body_sha256,
        problems,
        ..Default::default()
    }
}

fn synthetic_id(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    let digest = hex::encode(h.finalize());
    format!("{}@{SYNTHETIC_DOMAIN}", digest.get(..40).unwrap_or(&digest))
}

/// Renders HTML as plain text: tags dropped, scripts and styles ignored, links kept as
/// footnotes. Never returns markup, and never takes unbounded time or stack (see `html`).
pub fn html_to_text(html: &str) -> String {
    crate::channels::email::html::to_text(html).0
}

/// The lines of `raw` that start with `--` or `Content-Type:`: an upper bound on its MIME
/// parts (boundaries, and `message/rfc822` parts nested without any), counted without
/// parsing.
fn boundary_lines(raw: &[u8]) -> usize {
    // Most lines start with neither: one byte decides for them.
    let starts_part = |line: &[u8]| match line.first() {
        Some(b'-') => line.starts_with(b"--"),
        Some(b'C' | b'c') => line
            .get(..13)
            .is_some_and(|h| h.eq_ignore_ascii_case(b"content-type:")),
        _ => false,
    };
    let mut n = usize::from(starts_part(raw));
    let mut rest = raw;
    while let Some(p) = rest.iter().position(|b| *b == b'\n') {
        rest = rest.get(p + 1..).unwrap_or_default();
        if starts_part(rest) {
            n += 1;
        }
    }
    n
}

/// The text parts of a message, joined.
#[derive(Default)]
struct TextBody {
    text: String,
    html_only: bool,
    first_len: usize,
    first_html: bool,
    parts: usize,
    problems: Vec<String>,
}

/// The value of the first `name` header when its raw bytes are not UTF-8 and hold no
/// encoded word: unfolded and decoded with a guessed charset, with that charset's name.
fn guessed_header(
    raw: &[u8],
    msg: &mail_parser::Message<'_>,
    name: &str,
    tld: Option<&str>,
) -> Option<(String, &'static str)> {
    let h = msg
        .headers()
        .iter()
        .find(|h| h.name().eq_ignore_ascii_case(name))?;
    let bytes = raw.get(h.offset_start as usize..h.offset_end as usize)?;
    if bytes.windows(2).any(|w| w == b"=?") {
        return None;
    }
    let (text, charset) = charset::decode_guessed(bytes, tld)?;
    let unfolded: String = text
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Some((unfolded, charset))
}

/// The bytes of a text part after its transfer encoding, before any charset decoding.
fn part_bytes<'r>(raw: &'r [u8], part: &mail_parser::MessagePart<'_>) -> Option<Cow<'r, [u8]>> {
    let body = raw.get(part.offset_body as usize..part.offset_end as usize)?;
    Some(match part.encoding {
        mail_parser::Encoding::None => Cow::Borrowed(body),
        mail_parser::Encoding::QuotedPrintable => {
            Cow::Owned(mail_parser::decoders::quoted_printable::quoted_printable_decode(body)?)
        }
        mail_parser::Encoding::Base64 => {
            Cow::Owned(mail_parser::decoders::base64::base64_decode(body)?)
        }
    })
}

/// A text part's text decoded with a guessed charset, when mail-parser had to replace
/// bytes (U+FFFD) because its label was missing, unknown or false (UTF-8, ASCII).
fn guessed_part_text(
    raw: &[u8],
    part: &mail_parser::MessagePart<'_>,
    decoded: &str,
    tld: Option<&str>,
) -> Option<(String, &'static str)> {
    if !decoded.contains('\u{FFFD}') {
        return None;
    }
    let label = part
        .content_type()
        .and_then(|ct| ct.attribute("charset"))
        .map(str::to_ascii_lowercase);
    let untrusted = match label.as_deref() {
        None => true,
        Some("utf-8" | "utf8" | "us-ascii" | "ascii") => true,
        Some(l) => mail_parser::decoders::charsets::map::charset_decoder(l.as_bytes()).is_none(),
    };
    if !untrusted {
        return None;
    }
    charset::decode_guessed(&part_bytes(raw, part)?, tld)
}

fn extract_text(msg: &mail_parser::Message<'_>, raw: &[u8], tld: Option<&str>) -> TextBody {
    let mut b = TextBody::default();
    let mut all_html = true;
    let render = |html: &str, b: &mut TextBody| {
        let (text, why) = crate::channels::email::html::to_text(html);
        if let Some(why) = why {
            b.problems.push(why);
        }
        text
    };
    for id in &msg.text_body {
        let Some(part) = msg.parts.get(*id as usize) else {
            continue;
        };
        let (decoded, is_html) = match &part.body {
            PartType::Text(t) => (t.as_ref(), false),
            PartType::Html(h) => (h.as_ref(), true),
            _ => continue,
        };
        let guessed = guessed_part_text(raw, part, decoded, tld);
        if let Some((_, charset)) = &guessed {
            b.problems.push(format!(
                "a text part's charset label is missing or wrong; its charset was guessed as {charset}"
            ));
        }
        let decoded = guessed.as_ref().map_or(decoded, |(t, _)| t.as_str());
        // format=flowed (RFC 3676): soft line breaks rejoined, so a paragraph stays one.
        let flowed = (!is_html)
            .then(|| part.content_type())
            .flatten()
            .filter(|ct| {
                ct.attribute("format")
                    .is_some_and(|f| f.eq_ignore_ascii_case("flowed"))
            })
            .map(|ct| {
                let delsp = ct
                    .attribute("delsp")
                    .is_some_and(|d| d.eq_ignore_ascii_case("yes"));
                unflow(decoded, delsp)
            });
        let decoded = flowed.as_deref().unwrap_or(decoded);
        let text = if is_html {
            clean_text(&render(decoded, &mut b), MAX_TEXT_BYTES)
        } else {
            clean_text(decoded, MAX_TEXT_BYTES)
        };
        all_html &= is_html;
        if b.parts == 0 {
            b.first_html = is_html;
        } else {
            b.text.push('\n');
        }
        b.text.push_str(&text);
        if b.parts == 0 {
            b.first_len = b.text.len();
        }
        b.parts += 1;
        if b.text.len() > MAX_TEXT_BYTES {
            break;
        }
    }
    if b.parts == 0 {
        // No text body at all: fall back on the first HTML body.
        if let Some(h) = msg.body_html(0) {
            b.text = clean_text(&render(&h, &mut b), MAX_TEXT_BYTES);
            b.first_len = b.text.len();
            b.first_html = true;
            b.parts = 1;
        }
    }
    b.html_only = b.parts > 0 && all_html;
    b.text = clean_text(b.text.trim_end(), MAX_TEXT_BYTES);
    b.first_len = b.first_len.min(b.text.len());
    b
}

/// Any `multipart/report` (RFC 6522). Delivery status notifications also give their failed
/// recipients; every kind gives the Message-ID of the message it is about where it can.
fn delivery_report(msg: &mail_parser::Message<'_>) -> Option<DeliveryReport> {
    let ct = msg.content_type()?;
    if !(ct.ctype().eq_ignore_ascii_case("multipart")
        && ct
            .subtype()
            .is_some_and(|s| s.eq_ignore_ascii_case("report")))
    {
        return None;
    }
    let report_type = ct
        .attribute("report-type")
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let mut report = DeliveryReport {
        report_type,
        ..DeliveryReport::default()
    };
    for part in &msg.parts {
        let Some(pct) = part.content_type() else {
            continue;
        };
        let sub = pct.subtype().unwrap_or("").to_ascii_lowercase();
        let ty = pct.ctype().to_ascii_lowercase();
        if ty == "message" && (sub == "delivery-status" || sub == "global-delivery-status") {
            let text = String::from_utf8_lossy(part.contents()).to_string();
            report.failed.extend(parse_dsn_fields(&text));
        } else if ty == "message" && (sub == "disposition-notification" || sub == "feedback-report")
        {
            // RFC 8098 §3.2.5 / RFC 5965 §3.2: an Original-Message-ID field.
            let text = String::from_utf8_lossy(part.contents()).to_string();
            if report.original_message_id.is_none() {
                report.original_message_id = text.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case("Original-Message-ID")
                        .then(|| normalize_message_id(v))
                        .flatten()
                });
            }
        } else if ty == "message" && (sub == "rfc822" || sub == "global") {
            if let PartType::Message(inner) = &part.body
                && report.original_message_id.is_none()
            {
                report.original_message_id = inner.message_id().and_then(normalize_message_id);
            }
        } else if ty == "text" && sub == "rfc822-headers" {
            let text = String::from_utf8_lossy(part.contents());
            if let Some(inner) = MessageParser::default().parse_headers(text.as_bytes())
                && report.original_message_id.is_none()
            {
                report.original_message_id = inner.message_id().and_then(normalize_message_id);
            }
        }
    }
    Some(report)
}

/// The per-recipient fields of a message/delivery-status body: (recipient, status) for every
/// recipient whose Action is `failed` (or whose status is 5.x.x when Action is missing).
fn parse_dsn_fields(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    // Groups are separated by blank lines; the first is per-message, the rest per-recipient.
    let normalized = text.replace("\r\n", "\n");
    let mut base64_next = false;
    for group in normalized.split("\n\n") {
        // Some MTAs (seen from Postfix behind a gateway) base64-encode the per-recipient
        // groups after a Content-Transfer-Encoding line inside the DSN body.
        if base64_next && !group.contains(':') {
            use base64::Engine;
            let compact: String = group.chars().filter(|c| !c.is_whitespace()).collect();
            if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(compact) {
                out.extend(parse_dsn_fields(&String::from_utf8_lossy(&bytes)));
            }
            continue;
        }
        base64_next = group.lines().any(|l| {
            l.split_once(':').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("Content-Transfer-Encoding")
                    && v.trim().eq_ignore_ascii_case("base64")
            })
        });
        let mut recipient = None;
        let mut action = None;
        let mut status = None;
        for line in group.lines() {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let v = v.trim();
            match k.trim().to_ascii_lowercase().as_str() {
                "final-recipient" | "original-recipient"
                    if recipient.is_none() || k.trim().eq_ignore_ascii_case("final-recipient") =>
                {
                    let addr = v.split_once(';').map(|(_, a)| a).unwrap_or(v);
                    recipient = Some(normalize_address(addr));
                }
                "action" => action = Some(v.to_ascii_lowercase()),
                "status" => status = Some(v.to_string()),
                _ => {}
            }
        }
        if let Some(r) = recipient {
            let st = status.unwrap_or_default();
            let failed = match action.as_deref() {
                Some(a) => a == "failed",
                None => st.starts_with('5'),
            };
            if failed && !r.is_empty() {
                out.push((r, st));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flowed_text_is_rejoined() {
        let flowed = "Hello Ann,\r\n\r\nthe refund of the double \r\ncharge is on its \r\nway.\r\n\r\n> quoted and \r\n> flowed\r\n>> deeper\r\n-- \r\nAlice\r\n";
        assert_eq!(
            unflow(flowed, false),
            "Hello Ann,\n\nthe refund of the double charge is on its way.\n\n> quoted and flowed\n>> deeper\n-- \nAlice\n"
        );
        assert_eq!(unflow("ab \r\ncd", true), "abcd");
        assert_eq!(
            unflow(" From here", false),
            "From here",
            "space-stuffing undone"
        );
        let p = parse(b"From: a@x.org\r\nSubject: s\r\nContent-Type: text/plain; format=flowed\r\n\r\none long \r\nparagraph\r\n");
        assert_eq!(p.body_text, "one long paragraph");
    }

    fn legacy(text: &str, charset: &str) -> Vec<u8> {
        let enc = encoding_rs::Encoding::for_label(charset.as_bytes()).unwrap();
        enc.encode(text).0.into_owned()
    }

    #[test]
    fn raw_legacy_subjects_and_names_decode_by_guessing() {
        for (subject, name, charset, domain) in [
            ("关于我的订单退款问题", "张伟", "gb2312", "example.cn"),
            ("關於我的訂單退款問題", "陳大文", "big5", "example.com.tw"),
            (
                "注文の返金についてのお問い合わせ",
                "山田太郎",
                "shift_jis",
                "example.co.jp",
            ),
        ] {
            let mut raw = b"From: \"".to_vec();
            raw.extend(legacy(name, charset));
            raw.extend(format!("\" <buyer@{domain}>\r\nSubject: ").as_bytes());
            raw.extend(legacy(subject, charset));
            raw.extend(b"\r\nMessage-ID: <c@x>\r\n\r\nhello\r\n");
            let p = parse(&raw);
            assert_eq!(p.subject, subject, "{charset}");
            assert_eq!(p.from.as_ref().unwrap().name.as_deref(), Some(name));
            assert!(
                p.problems
                    .iter()
                    .any(|x| x.contains("Subject") && x.contains("guessed")),
                "{:?}",
                p.problems
            );
        }
    }

    #[test]
    fn an_unlabelled_gbk_body_decodes_and_says_it_was_guessed() {
        let body = "您好，我上周购买的商品一直没有发货，请帮我查询一下物流信息。谢谢！";
        let mut raw = b"From: buyer@example.cn\r\nSubject: order\r\nMessage-ID: <g@x>\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\n".to_vec();
        raw.extend(legacy(body, "gbk"));
        raw.extend(b"\r\n");
        let p = parse(&raw);
        assert_eq!(p.body_text, body);
        assert!(
            p.problems.iter().any(|x| x.contains("guessed as GBK")),
            "{:?}",
            p.problems
        );
        // A correct label is trusted, and UTF-8 is never guessed at.
        let p = parse("From: b@x.cn\r\nSubject: 退款\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n退款\r\n".as_bytes());
        assert_eq!((p.subject.as_str(), p.body_text.as_str()), ("退款", "退款"));
        assert!(
            !p.problems.iter().any(|x| x.contains("guessed")),
            "{:?}",
            p.problems
        );
    }

    #[test]
    fn a_display_name_that_is_an_address_is_the_address() {
        let p = parse(b"From: \"finances8@loans.example\"\r\nSubject: loan\r\n\r\nhi\r\n");
        let from = p.from.unwrap();
        assert_eq!(from.address, "finances8@loans.example");
        assert_eq!(from.name, None);
        // A name that is not an address gives none.
        let p = parse(b"From: \"Just A Name\"\r\nSubject: x\r\n\r\nhi\r\n");
        assert!(p.from.is_none());
    }

    #[test]
    fn without_a_from_address_the_sender_comes_from_reply_to_then_the_envelope() {
        let p = parse(b"From: Only A Name\r\nReply-To: Ann <ann@customer.org>\r\nReturn-Path: <bounce@lists.org>\r\nSubject: x\r\n\r\nhi\r\n");
        assert_eq!(p.from.as_ref().unwrap().address, "ann@customer.org");
        assert!(p.problems.iter().any(|x| x.contains("taken from Reply-To")));
        assert_eq!(p.from_count, 0, "a fallback is no From of its own");
        let p = parse(b"From: <>\r\nReturn-Path: <ann@customer.org>\r\nSubject: x\r\n\r\nhi\r\n");
        assert_eq!(p.from.as_ref().unwrap().address, "ann@customer.org");
        assert!(p.problems.iter().any(|x| x.contains("envelope")));
        let p = parse(b"Return-Path: <>\r\nSubject: x\r\n\r\nhi\r\n");
        assert!(p.from.is_none(), "a null envelope is no sender");
    }

    #[test]
    fn message_ids_are_normalised() {
        assert_eq!(
            normalize_message_id(" <ABC@Example.com> ").as_deref(),
            Some("abc@example.com")
        );
        assert_eq!(normalize_message_id("<>"), None);
    }

    #[test]
    fn extracts_threading_headers_in_order() {
        let raw = b"From: A <a@x.org>\r\nTo: support@example.com\r\nSubject: Re: hi\r\nMessage-ID: <3@x>\r\nReferences: <1@x>\r\n <2@x>\r\nIn-Reply-To: <2@x>\r\n\r\nbody\r\n";
        let p = parse(raw);
        assert_eq!(p.message_id, "3@x");
        assert_eq!(p.references, vec!["1@x", "2@x"]);
        assert_eq!(p.from.unwrap().address, "a@x.org");
        assert_eq!(p.body_text, "body");
    }

    #[test]
    fn synthetic_ids_are_stable_and_differ_by_content() {
        let a =
            b"From: a@x.org\r\nSubject: s\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\none\r\n";
        let b =
            b"From: a@x.org\r\nSubject: s\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\ntwo\r\n";
        let pa = parse(a);
        assert!(pa.synthetic_id);
        assert_eq!(pa.message_id, parse(a).message_id);
        assert_ne!(pa.message_id, parse(b).message_id);
        // A copy with an extra trace header is the same message.
        let mut c = b"Delivered-To: other@example.com\r\n".to_vec();
        c.extend_from_slice(a);
        assert_eq!(parse(&c).message_id, pa.message_id);
    }

    #[test]
    fn two_from_headers_are_counted() {
        let raw = b"From: a@x.org\r\nFrom: b@y.org\r\nSubject: s\r\n\r\nx\r\n";
        let p = parse(raw);
        assert_eq!(p.from_count, 2);
        assert!(p.problems.iter().any(|x| x.contains("2 From")));
    }

    #[test]
    fn html_only_mail_becomes_safe_text() {
        let raw = b"From: a@x.org\r\nContent-Type: text/html\r\n\r\n<p>Hello <b>there</b></p><script>alert(1)</script>\r\n";
        let p = parse(raw);
        assert!(p.html_only);
        assert!(p.body_text.contains("Hello"));
        assert!(!p.body_text.contains("<b>"));
        assert!(!p.body_text.contains("alert"));
    }

    #[test]
    fn a_panic_inside_mail_parser_is_caught() {
        // From MimeKit's content-length.mbox (MIT); reaches a debug_assert! in mail-parser.
        let raw = include_bytes!("../../../tests/fixtures/mail-parser-panic.eml");
        let p = parse(raw);
        if cfg!(debug_assertions) {
            assert!(
                p.problems.iter().any(|x| x.contains("panicked")),
                "{:?}",
                p.problems
            );
        }
        assert!(!p.raw_sha256.is_empty());
        assert_eq!(p.message_id, parse(raw).message_id, "stable id");
        // The headers still count: sender and subject survive the panic.
        assert_eq!(
            p.from.map(|f| f.address).as_deref(),
            Some("jwz@netscape.com")
        );
        assert!(
            p.subject.contains("attached image cache test"),
            "{}",
            p.subject
        );
    }

    #[test]
    fn nul_bytes_and_garbage_do_not_panic() {
        let p = parse(b"\0\0\0\xff\xfe");
        assert!(!p.body_text.contains('\0'));
        let p = parse(b"");
        assert!(p.synthetic_id);
    }

    #[test]
    fn dsn_fields_pick_failed_recipients() {
        let text = "Reporting-MTA: dns; mx.example.com\n\nFinal-Recipient: rfc822; Bob@Example.com\nAction: failed\nStatus: 5.1.1\n\nFinal-Recipient: rfc822; ok@example.com\nAction: delivered\nStatus: 2.0.0\n";
        assert_eq!(
            parse_dsn_fields(text),
            vec![("bob@example.com".to_string(), "5.1.1".to_string())]
        );
    }
}
