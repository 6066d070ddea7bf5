//! The new text of a reply: what its author wrote, without the quoted history, forwarded
//! parts, signature or phone footer below it.
//!
//! Two callers depend on it: the pipeline recognises short courtesy replies ("thanks")
//! that must not reopen a resolved ticket, and agents' replies are sent to the customer
//! and searched for commands (`commands::parse`), so a command inside quoted history must
//! never count.
//!
//! Pure and line based: [`strip`] walks the lines of a plain-text body and cuts at the
//! first line that starts history. What it recognises, and what it deliberately does not:
//!
//! - **`>` quoting** (RFC 3676 §4.5), with or without a space, nested (`>>`), indented.
//!   Quoted lines are never new text, not even a markdown-style quote in the middle of the
//!   author's own text: the text above the first quoted line is the new text. Text written
//!   *between* or *below* quoted lines (inline or bottom-posted answers) is not new text
//!   either; [`Stripped::inline_replies`] says that some exists, so the caller can tell
//!   the author that it was not used rather than dropping it silently.
//! - **Attribution lines**, also wrapped over up to three lines: Gmail, Apple Mail,
//!   Thunderbird and Outlook for Mac `On <date>, <name> wrote:`, and the localised forms
//!   `Am … schrieb …:`, `Le … a écrit :`, `El … escribió:`, `Op … schreef …:`,
//!   `Den … skrev …:`, `Il … ha scritto:`, `Em … escreveu:`, `在 … 写道：`, `… 于 … 写道：`.
//!   They must contain a date, a time or an `@`, so "On Monday I wrote:" or "On the 3rd
//!   floor, as Bob wrote:" in a sentence is text. Any line ending in such a verb and a colon that is directly
//!   followed by a `>` line ("Bob wrote:") is an attribution too.
//! - **Separator lines** made of dashes around a phrase: `-----Original Message-----`,
//!   `----- Original Message -----`, `-----原始邮件-----`,
//!   `------------------ 原始邮件 ------------------` (QQ Mail, Foxmail),
//!   `---- 回复的原邮件 ----` (NetEase 163), their German, French, Spanish, Dutch,
//!   Scandinavian, Italian and Portuguese forms, and forwarded-message separators
//!   (`---------- Forwarded message ---------`, `Begin forwarded message:`).
//! - **Header blocks** as Outlook, Foxmail and Gmail forwards write them: a `From:` line
//!   (or `Von:`, `De :`, `发件人：`, `寄件者:`, `差出人:` …, ASCII or full-width colon,
//!   `*bold*` markers allowed) followed within eight lines by at least two *other* header
//!   kinds (sent/date, to, cc, subject), or all of them on one line. A lone
//!   "From: the printer manual, page 3" is text. An Outlook underscore rule
//!   (`________________________________`) directly above such a block is cut with it.
//! - **Signatures**: `-- ` (RFC 3676 §4.3) and also a bare `--`, because many clients
//!   and relays strip trailing white space. Longer dash runs (`---`, a markdown rule) are
//!   not signatures.
//! - **Phone footers**: "Sent from my iPhone", "Get Outlook for iOS", "从我的iPhone发送",
//!   "发自我的iPhone", "Von meinem iPhone gesendet", "iPhoneから送信" and friends, on a
//!   short line of their own.
//!
//! CRLF and LF input both work; the returned slices borrow from the input, so a CRLF
//! body yields new text with CRLF inside it.
//!
//! It must not do I/O, decode MIME or look at HTML: the caller passes the text body
//! (HTML already rendered to text, with blockquotes rendered as `>`).

/// Which kind of line cut the body: the start of the history or signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Marker {
    /// The first line of our own mail to agents (`domain::REPLY_ABOVE_MARKER`), with any
    /// quote prefix: we know it exactly, whatever the client's language or quoting.
    OurMail,
    /// A `>` quoted line.
    Quote,
    /// "On … wrote:" and its translations.
    Attribution,
    /// "-----Original Message-----", "-----原始邮件-----" and the like.
    OriginalMessage,
    /// "---------- Forwarded message ---------", "Begin forwarded message:".
    Forwarded,
    /// An Outlook-style "From: / Sent: / To: / Subject:" block (with the underscore rule
    /// above it, if any).
    HeaderBlock,
    /// "-- " (or "--") signature separator.
    Signature,
    /// "Sent from my iPhone" and friends.
    MobileFooter,
}

impl Marker {
    /// A stable lower-case name, for logs and tests.
    pub fn as_str(self) -> &'static str {
        match self {
            Marker::OurMail => "our_mail",
            Marker::Quote => "quote",
            Marker::Attribution => "attribution",
            Marker::OriginalMessage => "original_message",
            Marker::Forwarded => "forwarded",
            Marker::HeaderBlock => "header_block",
            Marker::Signature => "signature",
            Marker::MobileFooter => "mobile_footer",
        }
    }
}

impl std::fmt::Display for Marker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A body split into the author's new text and what follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stripped<'a> {
    /// The text above the first history or signature line, trimmed. Empty when the body
    /// starts with history (a bottom-posted reply) or is empty.
    pub new_text: &'a str,
    /// What cut the body; `None` when nothing did and `new_text` is the whole body.
    pub cut_reason: Option<Marker>,
    /// 1-based line number of the cutting line, counted in the input.
    pub cut_line: Option<usize>,
    /// Everything from the cutting line on, untrimmed (empty when nothing was cut).
    pub history: &'a str,
    /// Unquoted text below a `>` quote inside the history: inline or bottom-posted
    /// answers, which are *not* part of `new_text`. Only looked for when the cut was a
    /// quote or an attribution line.
    pub inline_replies: bool,
}

/// Lines longer than this (in bytes) are never markers other than `>` quotes; it keeps
/// the work per line bounded on hostile input.
const MAX_MARKER_LINE: usize = 500;

/// How many lines an attribution may be wrapped over.
const MAX_ATTRIBUTION_LINES: usize = 3;

/// How far below a `From:` line the rest of its header block is looked for.
const HEADER_BLOCK_LOOKAHEAD: usize = 8;

/// Splits `body` at the first line that starts quoted history, a forwarded part, a
/// signature or a phone footer (see the module documentation for the exact rules).
pub fn strip(body: &str) -> Stripped<'_> {
    let lines = split_lines(body);
    // Our own mail is found wherever it is: a client's quoting may hide it from every
    // other rule, and nothing of it may stay in the new text.
    // (The last marker line is no cut: text that still holds it after this is our mail
    // that nothing recognised, and the caller refuses to relay it.)
    let ours = lines
        .iter()
        .position(|l| crate::domain::has_reply_above_marker(l.text));
    for (index, _) in lines.iter().enumerate() {
        let marker = if ours == Some(index) {
            Some(Marker::OurMail)
        } else {
            marker_at(&lines, index)
        };
        if let Some(marker) = marker {
            let index = match marker {
                Marker::OurMail => our_mail_starts(&lines, index),
                Marker::Quote => attribution_above(&lines, index).unwrap_or(index),
                _ => index,
            };
            let Some(line) = lines.get(index) else {
                continue;
            };
            let history = body.get(line.start..).unwrap_or_default();
            let inline_replies = matches!(marker, Marker::Quote | Marker::Attribution)
                && has_inline_replies(&lines, index);
            return Stripped {
                new_text: body.get(..line.start).unwrap_or(body).trim(),
                cut_reason: Some(marker),
                cut_line: Some(index + 1),
                history,
                inline_replies,
            };
        }
    }
    Stripped {
        new_text: body.trim(),
        cut_reason: None,
        cut_line: None,
        history: "",
        inline_replies: false,
    }
}

/// The text above the first line that starts quoted history or a signature, trimmed:
/// `strip(body).new_text`.
pub fn new_text(body: &str) -> &str {
    strip(body).new_text
}

/// Where our quoted mail really starts, given its marker line at `index`: the client's
/// attribution line and header block above it (any language: short `Key: value` lines,
/// an underscore or dash rule, a line ending in a colon) go with it, as do blank and
/// prefix-only lines. At most twelve lines are taken back.
fn our_mail_starts(lines: &[Line<'_>], index: usize) -> usize {
    let mut start = index;
    let mut i = index;
    while i > 0 && index - i < 12 {
        i -= 1;
        let Some(t) = line_text(lines, i) else { break };
        let bare = t.trim().trim_start_matches(['>', '|', ' ', '\t']).trim();
        let folded = fold(bare);
        let header_like = bare.len() <= MAX_MARKER_LINE
            && folded.split_once([':', '：']).is_some_and(|(k, _)| {
                let k = k.trim_matches(['*', ' ']);
                !k.is_empty()
                    && k.chars().count() <= MAX_KEY_CHARS
                    && k.chars().all(|c| c.is_alphabetic() || c == ' ' || c == '-')
            });
        let rule = bare.len() >= 5 && bare.chars().all(|c| matches!(c, '_' | '-' | '='));
        let attribution = bare.len() <= MAX_MARKER_LINE && bare.ends_with([':', '：']);
        if bare.is_empty() {
            continue;
        }
        if header_like || rule || attribution {
            start = i;
        } else {
            break;
        }
    }
    start
}

/// The attribution line directly above a quote at `index` (blank lines between allowed)
/// when it is one in any client's format: a line ending in a colon that names an address,
/// a date or a time (`* Bob <bob@x> [2026-11-24 10:00]:`, NeoMutt's custom attribution).
/// A sentence ending in a colon without any of those stays text.
fn attribution_above(lines: &[Line<'_>], index: usize) -> Option<usize> {
    let prev = (index.saturating_sub(3)..index)
        .rev()
        .find(|&i| line_text(lines, i).is_some_and(|t| !t.trim().is_empty()))?;
    let t = line_text(lines, prev)?.trim();
    let looks = t.len() <= MAX_MARKER_LINE
        && t.ends_with([':', '：'])
        && (t.contains('@') || has_date_or_time(&fold(t)));
    looks.then_some(prev)
}

/// True when a line is `>` quoted (leading white space allowed).
pub fn is_quoted_line(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

/// One line of the body: where it starts (byte offset) and its text without `\r\n`.
struct Line<'a> {
    start: usize,
    text: &'a str,
}

fn split_lines(body: &str) -> Vec<Line<'_>> {
    let mut lines = Vec::new();
    let mut start = 0;
    for raw in body.split_inclusive('\n') {
        lines.push(Line {
            start,
            text: raw.trim_end_matches(['\n', '\r']),
        });
        start += raw.len();
    }
    lines
}

fn line_text<'a>(lines: &[Line<'a>], index: usize) -> Option<&'a str> {
    lines.get(index).map(|l| l.text)
}

/// The marker that starts at line `index`, if any.
fn marker_at(lines: &[Line<'_>], index: usize) -> Option<Marker> {
    let raw = line_text(lines, index)?;
    let t = raw.trim();
    if t.is_empty() {
        return None;
    }
    if t.starts_with('>') {
        return Some(Marker::Quote);
    }
    if t.len() > MAX_MARKER_LINE {
        return None;
    }
    if t == "--" {
        return Some(Marker::Signature);
    }
    let n = fold(t);
    if let Some(marker) = separator(&n) {
        return Some(marker);
    }
    if is_forwarded_intro(&n) {
        return Some(Marker::Forwarded);
    }
    if is_mobile_footer(&n) {
        return Some(Marker::MobileFooter);
    }
    if is_underscore_rule(t) {
        let next = next_non_blank(lines, index + 1, 2)?;
        return is_header_block(lines, next).then_some(Marker::HeaderBlock);
    }
    if is_header_block(lines, index) {
        return Some(Marker::HeaderBlock);
    }
    if is_attribution_at(lines, index) {
        return Some(Marker::Attribution);
    }
    None
}

/// Full-width ASCII folded to ASCII, lower case, white space runs collapsed to one space,
/// trimmed. Marker phrases are compared in this form.
fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    for c in s.chars() {
        let c = match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
            _ => c,
        };
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// Index of the next non-blank line at or after `from`, looking at most `limit` lines.
fn next_non_blank(lines: &[Line<'_>], from: usize, limit: usize) -> Option<usize> {
    (from..from.saturating_add(limit))
        .find(|&i| line_text(lines, i).is_some_and(|t| !t.trim().is_empty()))
}

// ---------------------------------------------------------------------------------------
// Separators, forwarded intros and phone footers
// ---------------------------------------------------------------------------------------

/// Phrases between dashes that introduce the original of a reply.
const ORIGINAL_PHRASES: &[&str] = &[
    "original message",
    "original",
    "ursprüngliche nachricht",
    "originalnachricht",
    "message d'origine",
    "message d’origine",
    "message original",
    "mensaje original",
    "oorspronkelijk bericht",
    "origineel bericht",
    "ursprungligt meddelande",
    "originalmeddelande",
    "opprinnelig melding",
    "oprindelig meddelelse",
    "messaggio originale",
    "mensagem original",
    "исходное сообщение",
    "原始邮件",
    "原始郵件",
    "原邮件",
    "原郵件",
    "回复的原邮件",
    "回覆的原郵件",
    "原始信件",
];

/// Phrases between dashes that introduce a forwarded message.
const FORWARDED_PHRASES: &[&str] = &[
    "forwarded message",
    "forwarded message follows",
    "weitergeleitete nachricht",
    "message transféré",
    "mensaje reenviado",
    "doorgestuurd bericht",
    "vidarebefordrat meddelande",
    "videresendt melding",
    "messaggio inoltrato",
    "mensagem encaminhada",
    "转发邮件信息",
    "转发的邮件",
    "轉寄郵件",
    "轉寄的郵件",
    "转发邮件",
];

/// Lines of their own (a trailing colon optional) that introduce a forwarded message.
const FORWARDED_INTROS: &[&str] = &[
    "begin forwarded message",
    "anfang der weitergeleiteten nachricht",
    "début du message réexpédié",
    "début du message transféré",
    "inicio del mensaje reenviado",
    "begin doorgestuurd bericht",
    "vidarebefordrat meddelande",
    "inizio messaggio inoltrato",
    "início da mensagem reencaminhada",
    "转发的邮件",
    "以下是转发的邮件",
    "轉寄的郵件",
];

/// `-----Original Message-----` and friends: at least two dashes (or underscores) before
/// a known phrase; dashes after it are optional.
fn separator(n: &str) -> Option<Marker> {
    let lead = n
        .chars()
        .take_while(|c| matches!(c, '-' | '_' | '='))
        .count();
    if lead < 2 {
        return None;
    }
    let phrase = n
        .trim_matches(|c: char| matches!(c, '-' | '_' | '=' | ' ' | ':'))
        .trim();
    if ORIGINAL_PHRASES.contains(&phrase) {
        Some(Marker::OriginalMessage)
    } else if FORWARDED_PHRASES.contains(&phrase) {
        Some(Marker::Forwarded)
    } else {
        None
    }
}

fn is_forwarded_intro(n: &str) -> bool {
    let phrase = n.trim_end_matches([':', ' ', '.']);
    n.len() <= 60 && FORWARDED_INTROS.contains(&phrase)
}

/// Prefixes of phone and app footers, folded. Each is specific enough not to start a
/// sentence ("从我的" alone would: "从我的角度看" means "from my point of view", so it
/// must also end in "发送").
const FOOTER_PREFIXES: &[&str] = &[
    "sent from my ",
    "sent from mail for windows",
    "sent from outlook",
    "sent from yahoo mail",
    "sent from the all-new aol app",
    "sent via the samsung",
    "get outlook for ",
    "gesendet von meinem ",
    "gesendet mit der ",
    "envoyé de mon ",
    "envoyé depuis mon ",
    "enviado desde mi ",
    "enviado do meu ",
    "inviato da iphone",
    "inviato dal mio ",
    "verstuurd vanaf mijn ",
    "verzonden vanaf mijn ",
    "skickat från min ",
    "sendt fra min ",
    "发自我的",
    "發自我的",
    "发自网易邮箱",
    "发自 网易邮箱",
    "来自网易邮箱",
    "发自手机",
    "发自163邮箱",
    "发自qq邮箱",
];

/// Longest footer line we accept, in characters.
const MAX_FOOTER_CHARS: usize = 60;

fn is_mobile_footer(n: &str) -> bool {
    if n.chars().count() > MAX_FOOTER_CHARS {
        return false;
    }
    FOOTER_PREFIXES.iter().any(|p| n.starts_with(p))
        || (n.starts_with("von meinem ") && n.ends_with("gesendet"))
        || (n.starts_with("从我的") && n.ends_with("发送"))
        || (n.starts_with("從我的") && n.ends_with("傳送"))
        || n.ends_with("から送信")
}

/// Outlook's horizontal rule above the header block.
fn is_underscore_rule(t: &str) -> bool {
    t.len() >= 10 && t.chars().all(|c| c == '_')
}

// ---------------------------------------------------------------------------------------
// Header blocks
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeaderKind {
    From,
    Sent,
    To,
    Cc,
    Subject,
}

/// Header names that mail clients write into quoted header blocks, folded.
const HEADER_KEYS: &[(&str, HeaderKind)] = &[
    ("from", HeaderKind::From),
    ("von", HeaderKind::From),
    ("de", HeaderKind::From),
    ("van", HeaderKind::From),
    ("från", HeaderKind::From),
    ("fra", HeaderKind::From),
    ("da", HeaderKind::From),
    ("от", HeaderKind::From),
    ("发件人", HeaderKind::From),
    ("寄件者", HeaderKind::From),
    ("寄件人", HeaderKind::From),
    ("差出人", HeaderKind::From),
    ("보낸 사람", HeaderKind::From),
    // Outlook's quoted header blocks in more languages.
    ("od", HeaderKind::From),
    ("kimden", HeaderKind::From),
    ("feladó", HeaderKind::From),
    ("lähettäjä", HeaderKind::From),
    ("de la", HeaderKind::From),
    ("από", HeaderKind::From),
    ("від", HeaderKind::From),
    ("từ", HeaderKind::From),
    ("dari", HeaderKind::From),
    ("מאת", HeaderKind::From),
    ("من", HeaderKind::From),
    ("sent", HeaderKind::Sent),
    ("date", HeaderKind::Sent),
    ("gesendet", HeaderKind::Sent),
    ("datum", HeaderKind::Sent),
    ("envoyé", HeaderKind::Sent),
    ("enviado", HeaderKind::Sent),
    ("fecha", HeaderKind::Sent),
    ("verzonden", HeaderKind::Sent),
    ("skickat", HeaderKind::Sent),
    ("sendt", HeaderKind::Sent),
    ("inviato", HeaderKind::Sent),
    ("data", HeaderKind::Sent),
    ("отправлено", HeaderKind::Sent),
    ("发送时间", HeaderKind::Sent),
    ("日期", HeaderKind::Sent),
    ("时间", HeaderKind::Sent),
    ("寄件日期", HeaderKind::Sent),
    ("送信日時", HeaderKind::Sent),
    ("보낸 날짜", HeaderKind::Sent),
    ("wysłane", HeaderKind::Sent),
    ("wysłano", HeaderKind::Sent),
    ("gönderildi", HeaderKind::Sent),
    ("gönderilme", HeaderKind::Sent),
    ("tarih", HeaderKind::Sent),
    ("odesláno", HeaderKind::Sent),
    ("elküldve", HeaderKind::Sent),
    ("dátum", HeaderKind::Sent),
    ("lähetetty", HeaderKind::Sent),
    ("päivämäärä", HeaderKind::Sent),
    ("trimis", HeaderKind::Sent),
    ("στάλθηκε", HeaderKind::Sent),
    ("надіслано", HeaderKind::Sent),
    ("đã gửi", HeaderKind::Sent),
    ("dikirim", HeaderKind::Sent),
    ("tanggal", HeaderKind::Sent),
    ("נשלח", HeaderKind::Sent),
    ("تاريخ الإرسال", HeaderKind::Sent),
    ("to", HeaderKind::To),
    ("an", HeaderKind::To),
    ("à", HeaderKind::To),
    ("a", HeaderKind::To),
    ("para", HeaderKind::To),
    ("aan", HeaderKind::To),
    ("till", HeaderKind::To),
    ("til", HeaderKind::To),
    ("кому", HeaderKind::To),
    ("收件人", HeaderKind::To),
    ("收件者", HeaderKind::To),
    ("宛先", HeaderKind::To),
    ("받는 사람", HeaderKind::To),
    ("do", HeaderKind::To),
    ("kime", HeaderKind::To),
    ("komu", HeaderKind::To),
    ("címzett", HeaderKind::To),
    ("vastaanottaja", HeaderKind::To),
    ("către", HeaderKind::To),
    ("προς", HeaderKind::To),
    ("đến", HeaderKind::To),
    ("kepada", HeaderKind::To),
    ("אל", HeaderKind::To),
    ("إلى", HeaderKind::To),
    ("cc", HeaderKind::Cc),
    ("kopie", HeaderKind::Cc),
    ("copie à", HeaderKind::Cc),
    ("копия", HeaderKind::Cc),
    ("抄送", HeaderKind::Cc),
    ("副本", HeaderKind::Cc),
    ("参照", HeaderKind::Cc),
    ("dw", HeaderKind::Cc),
    ("bilgi", HeaderKind::Cc),
    ("másolat", HeaderKind::Cc),
    ("kopio", HeaderKind::Cc),
    ("κοιν", HeaderKind::Cc),
    ("tembusan", HeaderKind::Cc),
    ("עותק", HeaderKind::Cc),
    ("نسخة", HeaderKind::Cc),
    ("subject", HeaderKind::Subject),
    ("betreff", HeaderKind::Subject),
    ("objet", HeaderKind::Subject),
    ("asunto", HeaderKind::Subject),
    ("onderwerp", HeaderKind::Subject),
    ("ämne", HeaderKind::Subject),
    ("emne", HeaderKind::Subject),
    ("oggetto", HeaderKind::Subject),
    ("assunto", HeaderKind::Subject),
    ("тема", HeaderKind::Subject),
    ("主题", HeaderKind::Subject),
    ("主題", HeaderKind::Subject),
    ("主旨", HeaderKind::Subject),
    ("件名", HeaderKind::Subject),
    ("제목", HeaderKind::Subject),
    ("temat", HeaderKind::Subject),
    ("konu", HeaderKind::Subject),
    ("předmět", HeaderKind::Subject),
    ("tárgy", HeaderKind::Subject),
    ("aihe", HeaderKind::Subject),
    ("subiect", HeaderKind::Subject),
    ("θέμα", HeaderKind::Subject),
    ("chủ đề", HeaderKind::Subject),
    ("perihal", HeaderKind::Subject),
    ("subjek", HeaderKind::Subject),
    ("נושא", HeaderKind::Subject),
    ("الموضوع", HeaderKind::Subject),
];

/// Longest header name we look for before the colon, in characters.
const MAX_KEY_CHARS: usize = 16;

/// The header kind a folded line starts with ("from: …", "**sent:** …", "发件人: …"),
/// and the rest of the line after the colon.
fn header_key(n: &str) -> Option<(HeaderKind, &str)> {
    let n = n.trim_start_matches(['*', ' ', '|']);
    let (key, rest) = n.split_once(':')?;
    if key.chars().count() > MAX_KEY_CHARS {
        return None;
    }
    let key = key.trim().trim_matches('*').trim();
    HEADER_KEYS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, kind)| (*kind, rest))
}

/// A `From:` line at `index` with at least two other header kinds below it (within
/// [`HEADER_BLOCK_LOOKAHEAD`] lines) or after it on the same line.
fn is_header_block(lines: &[Line<'_>], index: usize) -> bool {
    let Some(t) = line_text(lines, index).map(str::trim) else {
        return false;
    };
    if t.len() > MAX_MARKER_LINE {
        return false;
    }
    let n = fold(t);
    let Some((HeaderKind::From, rest)) = header_key(&n) else {
        return false;
    };
    let mut seen: Vec<HeaderKind> = Vec::new();
    let mut note = |kind: HeaderKind| {
        if kind != HeaderKind::From && !seen.contains(&kind) {
            seen.push(kind);
        }
    };
    // All on one line, as some HTML-to-text conversions leave it.
    let rest = rest.replace('*', "");
    for (key, kind) in HEADER_KEYS {
        if rest.contains(&format!(" {key}:")) {
            note(*kind);
        }
    }
    for i in index + 1..=index + HEADER_BLOCK_LOOKAHEAD {
        let Some(t) = line_text(lines, i).map(str::trim) else {
            break;
        };
        if t.is_empty() || t.len() > MAX_MARKER_LINE {
            continue;
        }
        if let Some((kind, _)) = header_key(&fold(t)) {
            note(kind);
        }
    }
    seen.len() >= 2
}

// ---------------------------------------------------------------------------------------
// Attribution lines
// ---------------------------------------------------------------------------------------

/// Verbs that end an attribution ("… wrote:"), folded, without the colon.
const ATTRIBUTION_VERBS: &[&str] = &[
    "wrote",
    "schrieb",
    "a écrit",
    "escribió",
    "schreef",
    "skrev",
    "ha scritto",
    "escreveu",
    "kirjoitti",
    "napisał",
    "napisała",
    "написал",
    "написала",
    "写道",
    "寫道",
];

/// Words an attribution starts with, and the verb it contains, for the forms where the
/// name may come after the verb ("Am 1.1.24 um 10:00 schrieb Max <max@example.de>:").
const ATTRIBUTION_FORMS: &[(&str, &str)] = &[
    ("on ", "wrote"),
    ("am ", "schrieb"),
    ("le ", "a écrit"),
    ("el ", "escribió"),
    ("op ", "schreef"),
    ("den ", "skrev"),
    ("il ", "ha scritto"),
    ("em ", "escreveu"),
    ("在", "写道"),
    ("于", "写道"),
    ("於", "寫道"),
    ("於", "写道"),
];

/// A wrapped attribution's first line is at least this long (clients wrap near 72-78
/// columns), so that a short sentence followed by "Bob wrote:" is not taken as one.
const MIN_WRAPPED_FIRST_LINE: usize = 30;

fn is_attribution_at(lines: &[Line<'_>], index: usize) -> bool {
    let Some(first) = line_text(lines, index).map(str::trim) else {
        return false;
    };
    let mut joined = String::new();
    for k in 0..MAX_ATTRIBUTION_LINES {
        let Some(t) = line_text(lines, index + k).map(str::trim) else {
            break;
        };
        if t.is_empty() || t.starts_with('>') {
            break;
        }
        if k == 1
            && (first.chars().count() < MIN_WRAPPED_FIRST_LINE
                || first.ends_with(['.', '!', '?', '。', '！', '？', ':', '：']))
        {
            break;
        }
        if !joined.is_empty() {
            joined.push(' ');
        }
        joined.push_str(t);
        if joined.len() > MAX_MARKER_LINE {
            break;
        }
        let n = fold(&joined);
        if looks_like_attribution(&n) {
            return true;
        }
        // "Bob wrote:" directly above a quote needs no date or address.
        if k == 0
            && ends_with_verb(&n)
            && next_non_blank(lines, index + 1, 2)
                .and_then(|next| line_text(lines, next))
                .is_some_and(is_quoted_line)
        {
            return true;
        }
    }
    false
}

fn ends_with_verb(n: &str) -> bool {
    n.strip_suffix(':')
        .map(str::trim_end)
        .is_some_and(|head| ATTRIBUTION_VERBS.iter().any(|v| head.ends_with(v)))
}

/// A folded, joined candidate: ends in a colon, has a date/time or an address, and either
/// starts with a known opening word and contains its verb, or contains a verb and both
/// an address and a date/time.
fn looks_like_attribution(n: &str) -> bool {
    let Some(head) = n.strip_suffix(':').map(str::trim_end) else {
        return false;
    };
    let has_date = has_date_or_time(n);
    let has_at = n.contains('@');
    if !(has_date || has_at) {
        return false;
    }
    let by_form = ATTRIBUTION_FORMS
        .iter()
        .any(|(start, verb)| head.starts_with(start) && contains_word(head, verb));
    let by_evidence =
        has_date && has_at && ATTRIBUTION_VERBS.iter().any(|v| contains_word(head, v));
    by_form || by_evidence
}

/// A time (`10:00`, `10.00`), a numeric date (`1/1/24`, `01.01.24`, `2024-01-01`) or a
/// four-digit year: what every client puts in an attribution, and what "On the 3rd floor
/// … wrote:" lacks.
fn has_date_or_time(n: &str) -> bool {
    let chars: Vec<char> = n.chars().collect();
    let mut run = 0;
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_digit() {
            run += 1;
            if run == 4 {
                return true;
            }
            continue;
        }
        let separator = matches!(c, ':' | '/' | '.' | '-');
        let next_is_digit = chars.get(i + 1).is_some_and(char::is_ascii_digit);
        if run > 0 && separator && next_is_digit {
            return true;
        }
        run = 0;
    }
    false
}

/// `verb` appears in `head` not glued to other letters on either side (CJK verbs may
/// be glued: "10:00写道").
fn contains_word(head: &str, verb: &str) -> bool {
    let cjk = verb
        .chars()
        .next()
        .is_some_and(|c| !c.is_ascii() && c > '\u{2E7F}');
    head.match_indices(verb).any(|(at, _)| {
        if cjk {
            return true;
        }
        let before = head.get(..at).and_then(|s| s.chars().next_back());
        let after = head.get(at + verb.len()..).and_then(|s| s.chars().next());
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

// ---------------------------------------------------------------------------------------
// Inline replies
// ---------------------------------------------------------------------------------------

/// Below a quote (or an attribution and its quote), is there unquoted text before the
/// next non-quote marker? That is an inline or bottom-posted answer.
fn has_inline_replies(lines: &[Line<'_>], cut: usize) -> bool {
    let mut seen_quote = false;
    for (i, line) in lines.iter().enumerate().skip(cut) {
        let t = line.text.trim();
        if t.is_empty() {
            continue;
        }
        if t.starts_with('>') {
            seen_quote = true;
            continue;
        }
        match marker_at(lines, i) {
            Some(Marker::Attribution) if !seen_quote => continue,
            Some(_) => return false,
            None if seen_quote => return true,
            // Unquoted history right below an attribution (HTML rendered without `>`).
            None => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(body: &str) -> (&str, Option<&'static str>) {
        let s = strip(body);
        (s.new_text, s.cut_reason.map(Marker::as_str))
    }

    #[test]
    fn keeps_the_existing_contract_of_new_text() {
        assert_eq!(
            new_text("Thanks!\n\nOn Mon, 1 Jan 2024, Bob wrote:\n> hi"),
            "Thanks!"
        );
        assert_eq!(new_text("谢谢\n\n-----原始邮件-----\n发件人: x"), "谢谢");
        assert_eq!(
            new_text("好的\n在 2024年1月1日，张三 写道：\n> 你好"),
            "好的"
        );
        assert_eq!(new_text("ok\n-- \nBob\n"), "ok");
        assert_eq!(new_text("no quote here"), "no quote here");
        assert_eq!(new_text(""), "");
        assert_eq!(new_text("\n\n  \n"), "");
    }

    #[test]
    fn gmail_attributions_in_many_languages() {
        for (attribution, expected) in [
            (
                "On Mon, Jan 1, 2024 at 10:00 AM John Smith <john@example.com> wrote:",
                "attribution",
            ),
            (
                "Am Mo., 1. Jan. 2024 um 10:00 Uhr schrieb Max Mustermann <max@example.de>:",
                "attribution",
            ),
            (
                "Am 01.01.24 um 10:00 schrieb Max Mustermann:",
                "attribution",
            ),
            (
                "Le lun. 1 janv. 2024 à 10:00, Jean Dupont <jean@example.fr> a écrit :",
                "attribution",
            ),
            (
                "Le lun. 1 janv. 2024 à 10:00, Jean Dupont <jean@example.fr> a\u{a0}écrit\u{a0}:",
                "attribution",
            ),
            (
                "El lun, 1 ene 2024 a las 10:00, Juan Pérez (<juan@example.es>) escribió:",
                "attribution",
            ),
            (
                "Op ma 1 jan. 2024 om 10:00 schreef Jan de Vries <jan@example.nl>:",
                "attribution",
            ),
            (
                "Den mån 1 jan. 2024 kl 10:00 skrev Sven Svensson <sven@example.se>:",
                "attribution",
            ),
            (
                "Den 1. jan. 2024 kl. 10.00 skrev Ola Nordmann <ola@example.no>:",
                "attribution",
            ),
            (
                "Il giorno lun 1 gen 2024 alle ore 10:00 Mario Rossi <mario@example.it> ha scritto:",
                "attribution",
            ),
            (
                "Em seg., 1 de jan. de 2024 às 10:00, João Silva <joao@example.br> escreveu:",
                "attribution",
            ),
            (
                "在 2024年1月1日 10:00，张三 <a@example.cn> 写道：",
                "attribution",
            ),
            (
                "张三 <a@example.cn> 于2024年1月1日周一 10:00写道：",
                "attribution",
            ),
            (
                "於 2024年1月1日 週一 上午10:00，陳大文 <c@example.tw> 寫道：",
                "attribution",
            ),
            (
                "On 1 Jan 2024, at 10:00, Jane Doe <jane@example.com> wrote:",
                "attribution",
            ),
            (
                "On 1/1/24, 10:00 AM, \"Jane Doe\" <jane@example.com> wrote:",
                "attribution",
            ),
        ] {
            let body = format!("Done.\n\n{attribution}\n\nthe old text, not quoted\n");
            assert_eq!(cut(&body), ("Done.", Some(expected)), "{attribution}");
        }
    }

    #[test]
    fn attributions_wrapped_over_two_or_three_lines() {
        let body = "Fixed.\n\nOn Mon, Jan 1, 2024 at 10:00 AM John Smith <\njohn.smith@example.com> wrote:\n\n> hi\n";
        assert_eq!(cut(body), ("Fixed.", Some("attribution")));
        assert_eq!(strip(body).cut_line, Some(3));
        let body = "Fixed.\n\nOn Monday, January 1, 2024 at 10:00:00 AM Central European\nStandard Time, Johnathan Smithson <johnathan.smithson@example.com>\nwrote:\nold text\n";
        assert_eq!(cut(body), ("Fixed.", Some("attribution")));
        let body = "Erledigt.\r\n\r\nAm Mo., 1. Jan. 2024 um 10:00 Uhr schrieb Max Mustermann <\r\nmax.mustermann@example.de>:\r\n\r\n> Hallo\r\n";
        assert_eq!(cut(body), ("Erledigt.", Some("attribution")));
    }

    #[test]
    fn sentences_that_look_a_little_like_attributions_are_text() {
        for body in [
            "On Monday I wrote:\nthe server is back.",
            "On the 3rd floor the printer is broken, as my colleague wrote:\nplease fix it",
            "Am Ende schrieb er mir Folgendes:\ndas passt so.",
            "On 3 servers the backup failed.\nThe vendor wrote:",
        ] {
            assert_eq!(cut(body), (body.trim(), None), "{body:?}");
        }
    }

    #[test]
    fn a_short_wrote_line_above_a_quote_is_an_attribution() {
        let body = "Sure.\n\nBob wrote:\n> can you check?\n";
        assert_eq!(cut(body), ("Sure.", Some("attribution")));
        // A sentence ending a paragraph is not joined with the next line.
        let body = "On 3 servers the backup failed.\nThe vendor wrote:\n> it is fixed\n";
        assert_eq!(
            cut(body),
            ("On 3 servers the backup failed.", Some("attribution"))
        );
    }

    #[test]
    fn angle_quotes_in_every_shape() {
        assert_eq!(cut("ok\n> a\n>> b\n"), ("ok", Some("quote")));
        assert_eq!(cut("ok\n>no space\n"), ("ok", Some("quote")));
        assert_eq!(cut("ok\n   > indented\n"), ("ok", Some("quote")));
        assert_eq!(cut("ok\n>> nested only\n"), ("ok", Some("quote")));
        assert_eq!(cut("> #status closed\nreal text"), ("", Some("quote")));
        // A `>` inside a line is text.
        assert_eq!(
            cut("Go to Settings > Export."),
            ("Go to Settings > Export.", None)
        );
    }

    #[test]
    fn inline_and_bottom_posted_answers_are_flagged_not_kept() {
        let s = strip("Hi,\n> question one\nanswer one\n> question two\nanswer two\n");
        assert_eq!(s.new_text, "Hi,");
        assert!(s.inline_replies);
        let s =
            strip("On 1 Jan 2024, Bob <b@example.com> wrote:\n> question\n\nMy answer below.\n");
        assert_eq!(s.new_text, "");
        assert!(s.inline_replies);
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/replies");
        let sample = std::fs::read_to_string(dir.join("11-inline-quoting.txt")).unwrap();
        assert!(strip(&sample).inline_replies);
        let sample = std::fs::read_to_string(dir.join("01-gmail-en.txt")).unwrap();
        assert!(!strip(&sample).inline_replies);
        // A plain top-posted reply has none.
        let s = strip("Answer.\n\nOn 1 Jan 2024, Bob <b@example.com> wrote:\n> q\n> \n>> older\n");
        assert!(!s.inline_replies);
        // A signature below the quote is not an inline answer.
        let s = strip("Answer.\n> q\n-- \nBob\n");
        assert!(!s.inline_replies);
        // Unquoted history below an attribution (HTML rendered without `>`) is not one.
        let s = strip("Answer.\nOn 1 Jan 2024, Bob <b@example.com> wrote:\nold text\n");
        assert!(!s.inline_replies);
        // Outlook history is never searched for inline answers.
        let s =
            strip("A.\nFrom: x <x@example.com>\nSent: today\nTo: y\nSubject: z\n\n> q\nanswer\n");
        assert_eq!(s.cut_reason, Some(Marker::HeaderBlock));
        assert!(!s.inline_replies);
    }

    #[test]
    fn outlook_original_message_separators() {
        for sep in [
            "-----Original Message-----",
            "----- Original Message -----",
            "-----ORIGINAL MESSAGE-----",
            "-------- Original Message --------",
            "-----Ursprüngliche Nachricht-----",
            "-----Message d'origine-----",
            "-----Mensaje original-----",
            "-----Oorspronkelijk bericht-----",
            "-----原始邮件-----",
            "-----原始郵件-----",
            "------------------ 原始邮件 ------------------",
            "------------------\u{a0}Original\u{a0}------------------",
            "---- 回复的原邮件 ----",
            "－－－－－原始邮件－－－－－",
        ] {
            assert_eq!(
                cut(&format!("ok\n\n{sep}\nold")),
                ("ok", Some("original_message")),
                "{sep}"
            );
        }
    }

    #[test]
    fn forwarded_parts_are_cut() {
        for sep in [
            "---------- Forwarded message ---------",
            "-------- Weitergeleitete Nachricht --------",
            "-------- 转发邮件信息 --------",
            "Begin forwarded message:",
            "Anfang der weitergeleiteten Nachricht:",
            "Début du message réexpédié :",
        ] {
            assert_eq!(
                cut(&format!("fyi\n\n{sep}\n#close\n")),
                ("fyi", Some("forwarded")),
                "{sep}"
            );
        }
    }

    #[test]
    fn header_blocks_in_many_languages() {
        for block in [
            "From: Tom <tom@example.net>\nSent: Monday, March 4, 2024 11:32 AM\nTo: Support\nSubject: RE: x",
            "From: Tom <tom@example.net>\nDate: Monday, 4 March 2024 at 11:32\nTo: Support\nSubject: x",
            "Von: Anna <anna@example.at>\nGesendet: Freitag, 8. März 2024 09:10\nAn: Support\nBetreff: AW: x",
            "De : Marc <marc@example.fr>\nEnvoyé : vendredi 8 mars 2024 11:04\nÀ : Support\nObjet : x",
            "De: Juan <juan@example.es>\nEnviado: viernes, 8 de marzo de 2024 11:04\nPara: Soporte\nAsunto: x",
            "发件人: 王强 <w@example.cn>\n发送时间: 2024年3月5日 14:20\n收件人: 客服\n主题: 答复: x",
            "发件人：王强 <w@example.cn>\n发送时间：2024年3月5日 14:20\n收件人：客服\n主题：答复：x",
            "寄件者: 陳大文 <c@example.tw>\n寄件日期: 2024年3月5日 14:20\n收件者: 客服\n主旨: 回覆: x",
            "差出人: 山田 <y@example.jp>\n送信日時: 2024年3月5日 14:20\n宛先: サポート\n件名: RE: x",
            "*From:* Tom <tom@example.net>\n*Sent:* Monday\n*To:* Support\n*Subject:* x",
            "**From:** Tom <tom@example.net>\n**Sent:** Monday\n**To:** Support\n**Subject:** x",
            "From: Tom <tom@example.net> Sent: Monday, March 4, 2024 11:32 AM To: Support Subject: x",
            "From: Tom Baker\n<tom@example.net>\nSent: Monday\nTo: Support\n",
            "________________________________\nFrom: Tom <tom@example.net>\nSent: Monday\nTo: Support\nSubject: x",
            "________________________________\n\nFrom: Tom <tom@example.net>\nSent: Monday\nTo: Support\nSubject: x",
        ] {
            let body = format!("Done, Tom.\n\n{block}\n\n#close\n");
            let s = strip(&body);
            assert_eq!(s.new_text, "Done, Tom.", "{block}");
            assert_eq!(s.cut_reason, Some(Marker::HeaderBlock), "{block}");
        }
    }

    #[test]
    fn a_from_line_without_a_header_block_is_text() {
        for body in [
            "From: the printer manual, page 3\nSwitch it off first.",
            "From: the printer manual, page 3\nTo: be honest, it did not help.",
            "发件人: 张三\n这是他的原话。",
            "De: rien, avec plaisir.",
        ] {
            assert_eq!(cut(body), (body, None), "{body:?}");
        }
    }

    #[test]
    fn an_underscore_rule_without_headers_is_text() {
        let body = "Part one\n__________\nPart two";
        assert_eq!(cut(body), (body, None));
    }

    #[test]
    fn signatures() {
        assert_eq!(cut("ok\n-- \nBob"), ("ok", Some("signature")));
        assert_eq!(cut("ok\r\n-- \r\nBob"), ("ok", Some("signature")));
        // Many clients strip the trailing space; a bare "--" is accepted too.
        assert_eq!(cut("ok\n--\nBob"), ("ok", Some("signature")));
        // A markdown rule or a dash in text is not a signature.
        assert_eq!(cut("ok\n---\nmore"), ("ok\n---\nmore", None));
        assert_eq!(cut("ok -- more"), ("ok -- more", None));
        assert_eq!(cut("-- Bob"), ("-- Bob", None));
    }

    #[test]
    fn phone_footers() {
        for footer in [
            "Sent from my iPhone",
            "Sent from my iPad",
            "Sent from my Galaxy",
            "Sent from Mail for Windows",
            "Get Outlook for iOS",
            "Get Outlook for Android<https://aka.ms/AAb9ysg>",
            "从我的iPhone发送",
            "发自我的iPhone",
            "發自我的 iPhone",
            "发自网易邮箱大师",
            "Von meinem iPhone gesendet",
            "Envoyé de mon iPhone",
            "Enviado desde mi iPhone",
            "Verstuurd vanaf mijn iPhone",
            "Skickat från min iPhone",
            "iPhoneから送信",
        ] {
            assert_eq!(
                cut(&format!("Yes.\n\n{footer}\n\nold")),
                ("Yes.", Some("mobile_footer")),
                "{footer}"
            );
        }
        for text in [
            "从我的角度看，这个问题已经解决了。",
            "发自内心地感谢您的耐心。",
            "Von meinem Kollegen habe ich gehört, dass es geht.",
            "Sent from my colleague's laptop, the report shows the same error again and again and again.",
        ] {
            assert_eq!(cut(text), (text, None), "{text}");
        }
    }

    #[test]
    fn crlf_bodies_cut_at_the_same_place() {
        let body =
            "Hi\r\n\r\nDone.\r\n\r\nOn Mon, 1 Jan 2024, Bob <b@example.com> wrote:\r\n> q\r\n";
        let s = strip(body);
        assert_eq!(s.new_text, "Hi\r\n\r\nDone.");
        assert_eq!(s.cut_line, Some(5));
        assert!(s.history.starts_with("On Mon"));
    }

    #[test]
    fn history_and_cut_line_point_at_the_marker() {
        let s = strip("a\nb\n-----Original Message-----\nFrom: x\n");
        assert_eq!(s.cut_line, Some(3));
        assert_eq!(s.history, "-----Original Message-----\nFrom: x\n");
        let s = strip("just text\n");
        assert_eq!((s.cut_line, s.history, s.cut_reason), (None, "", None));
    }

    #[test]
    fn huge_and_hostile_input_does_not_panic() {
        let long_line = "x".repeat(2_000_000);
        assert_eq!(new_text(&long_line), long_line.as_str());
        let many = "On 1 Jan 2024 Bob\n".repeat(20_000);
        let _ = strip(&many);
        let froms = "From: a\n".repeat(20_000);
        let _ = strip(&froms);
        let _ = strip(&"\r".repeat(100_000));
        let _ = strip("\u{0}\u{FEFF}é\u{301}> \n\u{FF1E}");
        let _ = strip(&format!("ok\nOn {} wrote:", "é".repeat(1000)));
    }

    /// A tiny deterministic generator: random bodies built from the pieces markers are
    /// made of, so that the edge cases meet each other.
    #[test]
    fn random_bodies_never_panic_and_new_text_is_a_prefix() {
        const PIECES: &[&str] = &[
            "\n",
            "\r\n",
            " ",
            "-- ",
            "--",
            ">",
            "> ",
            ">>",
            "On ",
            " wrote:",
            "From:",
            "Sent:",
            "To:",
            "Subject:",
            "发件人：",
            "主题：",
            "写道：",
            "在",
            "-----",
            "原始邮件",
            "Original Message",
            "_____________",
            "Sent from my iPhone",
            "é",
            "\u{3000}",
            "：",
            "2024",
            "@",
            "#close",
            "x",
            "\u{a0}",
            "ǅ",
            "İ",
            "\u{10FFFF}",
        ];
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..3000 {
            let len = (next() % 60) as usize;
            let body: String = (0..len)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            let s = strip(&body);
            let at = s.new_text.as_ptr() as usize - body.as_ptr() as usize;
            assert!(body[..at].trim().is_empty(), "{body:?}");
            assert!(
                s.history.is_empty() || body.ends_with(s.history),
                "{body:?}"
            );
            assert!(!s.new_text.lines().any(is_quoted_line), "{body:?}");
        }
    }

    /// Golden files: `tests/fixtures/replies/NN-client.txt` holds a reply as a client
    /// writes it, `NN-client.expected.txt` the new text. `UPDATE_GOLDEN=1` rewrites the
    /// expected files; otherwise a difference fails and shows both texts. Each sample is
    /// also run with CRLF line ends.
    #[test]
    fn golden_reply_samples() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/replies");
        let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy();
                name.ends_with(".txt") && !name.ends_with(".expected.txt")
            })
            .collect();
        inputs.sort();
        assert!(
            inputs.len() >= 12,
            "only {} samples in {}",
            inputs.len(),
            dir.display()
        );
        let mut failures = Vec::new();
        for input in &inputs {
            let body = std::fs::read_to_string(input).unwrap();
            let got = format!("{}\n", new_text(&body));
            let expected_path = input.with_extension("expected.txt");
            if update {
                std::fs::write(&expected_path, &got).unwrap();
                continue;
            }
            let expected = std::fs::read_to_string(&expected_path)
                .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
            if got != expected {
                failures.push(format!(
                    "{}:\n--- expected\n{expected}--- got\n{got}",
                    input.display()
                ));
            }
            let crlf = body.replace('\n', "\r\n");
            let got_crlf = format!("{}\n", new_text(&crlf).replace("\r\n", "\n"));
            if got_crlf != expected {
                failures.push(format!(
                    "{} with CRLF:\n--- got\n{got_crlf}",
                    input.display()
                ));
            }
            let history = strip(&body).history;
            assert!(
                !history.is_empty(),
                "{}: every sample has history or a signature to cut",
                input.display()
            );
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn our_marker_cuts_whatever_the_prefix_and_takes_the_attribution_with_it() {
        let marker = crate::domain::REPLY_ABOVE_MARKER;
        for (prefix, attribution) in [
            (
                "| ",
                "* Example Support <support@example.com> [2026-11-24 10:00]:",
            ),
            (
                "> ",
                "* Example Support <support@example.com> [2026-11-24 10:00]:",
            ),
            ("", "Le mar. 24 nov. 2026, Support a écrit :"),
            ("    ", "Whatever the client wrote here:"),
        ] {
            let body = format!(
                "Done, refunded.\n\n{attribution}\n{prefix}{marker}\n{prefix}\n{prefix}Tier: vip\n"
            );
            let s = strip(&body);
            assert_eq!(s.new_text, "Done, refunded.", "prefix {prefix:?}");
        }
        // An Outlook header block in any language above our marker goes with it.
        let body = format!(
            "Sent.\n\n________________________________\nFrån: Support <support@example.com>\nSkickat: den 24 november 2026 10:00\nTill: Alice\nÄmne: [#1] x\n\n{marker}\n\nTier: vip\n"
        );
        assert_eq!(new_text(&body), "Sent.");
        // The marker in the middle of a line (an HTML rendering) still cuts.
        let body = format!("Ok.\n\nOn behalf of: {marker} Tier: vip\n");
        assert_eq!(strip(&body).cut_reason, Some(Marker::OurMail));
    }

    #[test]
    fn a_custom_attribution_directly_above_a_quote_is_history() {
        let (text, why) =
            cut("Fixed.\n\n* Bob <bob@example.com> [2026-11-24 10:00 +0000]:\n> old text\n");
        assert_eq!((text, why), ("Fixed.", Some("quote")));
        // A sentence ending in a colon, without address, date or time, stays text.
        let (text, _) = cut("Here is what you asked:\n> old text\n");
        assert_eq!(text, "Here is what you asked:");
    }

    #[test]
    fn outlook_header_blocks_in_polish_turkish_and_czech_are_history() {
        for block in [
            "Od: Support <support@example.com>\nWysłane: wtorek, 24 listopada 2026 10:00\nDo: Alice\nTemat: Faktura",
            "Kimden: Support <support@example.com>\nGönderildi: 24 Kasım 2026 Salı 10:00\nKime: Alice\nKonu: Fatura",
            "Od: Support <support@example.com>\nOdesláno: úterý 24. listopadu 2026 10:00\nKomu: Alice\nPředmět: Faktura",
        ] {
            let body = format!("Thanks!\n\n{block}\n\nold text\n");
            let (text, why) = cut(&body);
            assert_eq!((text, why), ("Thanks!", Some("header_block")), "{block}");
        }
    }
}
