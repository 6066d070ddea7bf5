//! HTML → plain text, with bounded cost on hostile input.
//!
//! html2text builds a DOM and renders it recursively: 50,000 nested `<blockquote>` overflow
//! its stack (the process aborts, which no `catch_unwind` stops), and 200,000 nested
//! `<div>` take minutes, because its work grows with the square of the nesting depth.
//! Mail is untrusted, so HTML only reaches html2text when a linear pre-scan ([`shape`])
//! shows it is small and shallow enough, and then on a thread of its own with a large
//! stack and a time budget. Anything else, and anything that runs out of time, is turned
//! into text by [`strip_tags`]: one linear pass that drops markup, `<script>` and `<style>`,
//! keeps line structure and decodes entities. Both paths return text, never markup.
//!
//! No I/O; the one thread is the renderer's.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// HTML larger than this is stripped, not rendered.
pub const MAX_RENDER_BYTES: usize = 1024 * 1024;
/// Deepest element nesting given to the renderer. Real mail nests a few levels per quoted
/// reply; a long thread stays far below this.
pub const MAX_RENDER_DEPTH: usize = 160;
/// Deepest table nesting given to the renderer (table layout is the costliest part).
pub const MAX_TABLE_DEPTH: usize = 12;
/// Elements given to the renderer at most.
pub const MAX_RENDER_ELEMENTS: usize = 60_000;
/// How long one rendering may take before the stripped text is used instead.
pub const RENDER_BUDGET: Duration = Duration::from_secs(3);
/// Stack of the renderer's thread: deep recursion within the bounds above fits easily.
const RENDER_STACK: usize = 32 * 1024 * 1024;
/// Renderings still running past their budget (their threads finish on their own); while
/// this many are, new HTML is stripped without trying, so a flood cannot pile them up.
const MAX_OVERDUE: usize = 2;

static OVERDUE: AtomicUsize = AtomicUsize::new(0);

/// Text rendering of `html`, and why it was stripped rather than rendered, if it was.
pub fn to_text(html: &str) -> (String, Option<String>) {
    let s = shape(html);
    let why = if html.len() > MAX_RENDER_BYTES {
        Some(format!(
            "HTML of {} bytes is over the {MAX_RENDER_BYTES}-byte rendering limit",
            html.len()
        ))
    } else if s.max_depth > MAX_RENDER_DEPTH {
        Some(format!("HTML nested over {MAX_RENDER_DEPTH} elements deep"))
    } else if s.max_table_depth > MAX_TABLE_DEPTH {
        Some(format!("HTML tables nested over {MAX_TABLE_DEPTH} deep"))
    } else if s.elements > MAX_RENDER_ELEMENTS {
        Some(format!("HTML of over {MAX_RENDER_ELEMENTS} elements"))
    } else {
        None
    };
    if let Some(why) = why {
        return (
            strip_tags(html),
            Some(format!("{why}; its text was taken by stripping the tags")),
        );
    }
    match render_within_budget(html) {
        // The renderer can drop what it cannot lay out; never trade text for nothing.
        Ok(text) if text.trim().is_empty() => {
            let stripped = strip_tags(html);
            let why = (!stripped.is_empty()).then(|| {
                "the HTML renderer produced no text; its text was taken by stripping the tags"
                    .to_string()
            });
            (stripped, why)
        }
        Ok(text) => (text, None),
        Err(why) => (
            strip_tags(html),
            Some(format!("{why}; its text was taken by stripping the tags")),
        ),
    }
}

/// A rendering's result, shared between the waiting caller and the rendering thread.
enum Slot {
    Waiting,
    /// The caller stopped waiting; the thread lowers [`OVERDUE`] when it ends.
    Abandoned,
    Done(Result<String, String>),
}

/// Renders on a thread of its own, waiting at most [`RENDER_BUDGET`].
fn render_within_budget(html: &str) -> Result<String, String> {
    if OVERDUE.load(Ordering::Relaxed) >= MAX_OVERDUE {
        return Err("earlier HTML renderings are still running".to_string());
    }
    let owned = html.to_string();
    let shared = Arc::new((Mutex::new(Slot::Waiting), Condvar::new()));
    let theirs = Arc::clone(&shared);
    let spawned = std::thread::Builder::new()
        .name("html-render".into())
        .stack_size(RENDER_STACK)
        .spawn(move || {
            let out = std::panic::catch_unwind(|| {
                html2text::config::plain()
                    .allow_width_overflow()
                    .string_from_read(owned.as_bytes(), 100)
            });
            let out = match out {
                Ok(Ok(text)) => Ok(text),
                Ok(Err(e)) => Err(format!("the HTML renderer refused it ({e})")),
                Err(_) => Err("the HTML renderer panicked".to_string()),
            };
            let (lock, cv) = &*theirs;
            let mut slot = lock
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if matches!(*slot, Slot::Abandoned) {
                OVERDUE.fetch_sub(1, Ordering::Relaxed);
            } else {
                *slot = Slot::Done(out);
                cv.notify_one();
            }
        });
    if let Err(e) = spawned {
        return Err(format!("no thread for the HTML renderer ({e})"));
    }
    let (lock, cv) = &*shared;
    let slot = lock
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (mut slot, _) = cv
        .wait_timeout_while(slot, RENDER_BUDGET, |s| matches!(s, Slot::Waiting))
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match std::mem::replace(&mut *slot, Slot::Abandoned) {
        Slot::Done(out) => out,
        _ => {
            OVERDUE.fetch_add(1, Ordering::Relaxed);
            Err(format!(
                "rendering the HTML took over {} s",
                RENDER_BUDGET.as_secs()
            ))
        }
    }
}

/// What the renderer would face, from one linear scan.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub max_depth: usize,
    pub max_table_depth: usize,
    pub elements: usize,
}

/// Elements that never have content or an end tag.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr", "param", "keygen", "frame", "basefont", "bgsound",
];

/// Elements whose start tag closes an open element of the same kind (HTML's optional end
/// tags), so `<p>a<p>b` or `<li>a<li>b` does not count as nesting.
fn closes_same(name: &str) -> &'static [&'static str] {
    match name {
        "p" => &["p"],
        "li" => &["li"],
        "dt" | "dd" => &["dt", "dd"],
        "tr" => &["tr", "td", "th"],
        "td" | "th" => &["td", "th"],
        "option" => &["option"],
        "thead" | "tbody" | "tfoot" => &["thead", "tbody", "tfoot", "tr", "td", "th"],
        _ => &[],
    }
}

/// Block elements whose start closes an open `<p>`.
const CLOSES_P: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "div",
    "dl",
    "fieldset",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "ul",
];

/// Approximates the nesting html5ever would build: an explicit stack of open elements,
/// optional end tags honoured, end tags closing up to their match. Stops counting depth
/// once it is over every limit (the answer is then "too deep" either way).
pub fn shape(html: &str) -> Shape {
    let mut s = Shape::default();
    let mut stack: Vec<String> = Vec::new();
    let mut tables = 0usize;
    for tag in tags(html) {
        let Tag {
            name,
            closing,
            self_closing,
        } = tag;
        if closing {
            if let Some(pos) = stack.iter().rposition(|n| *n == name) {
                for gone in stack.drain(pos..) {
                    if gone == "table" {
                        tables = tables.saturating_sub(1);
                    }
                }
            }
            continue;
        }
        s.elements += 1;
        if VOID.contains(&name.as_str()) || self_closing {
            continue;
        }
        let closes = closes_same(&name);
        let implied_end = stack
            .last()
            .is_some_and(|top| closes.contains(&top.as_str()))
            || (CLOSES_P.contains(&name.as_str()) && stack.last().is_some_and(|t| t == "p"));
        if implied_end && stack.pop().is_some_and(|t| t == "table") {
            tables = tables.saturating_sub(1);
        }
        if name == "table" {
            tables += 1;
            s.max_table_depth = s.max_table_depth.max(tables);
        }
        stack.push(name);
        s.max_depth = s.max_depth.max(stack.len());
        if s.max_depth > MAX_RENDER_DEPTH && s.elements > MAX_RENDER_ELEMENTS {
            break;
        }
        if stack.len() > MAX_RENDER_DEPTH * 4 {
            // Deep enough to refuse; keep the stack from growing with the input.
            stack.truncate(MAX_RENDER_DEPTH * 2);
        }
    }
    s
}

struct Tag {
    /// Lower-cased element name.
    name: String,
    closing: bool,
    self_closing: bool,
}

/// What starts at a `<`, and the index just past it.
enum Markup {
    /// A comment, doctype, processing instruction or CDATA section.
    Skip(usize),
    Element(Tag, usize),
    /// A `<` that starts no markup (`a < b`).
    Text,
}

/// The markup starting at `bytes[lt] == b'<'`.
fn markup_at(bytes: &[u8], lt: usize) -> Markup {
    let i = lt + 1;
    if bytes.get(i..i + 3) == Some(b"!--") {
        return Markup::Skip(find(bytes, i + 3, b"-->").map_or(bytes.len(), |e| e + 3));
    }
    if matches!(bytes.get(i), Some(b'!' | b'?')) {
        return Markup::Skip(memchr(b'>', bytes, i).map_or(bytes.len(), |e| e + 1));
    }
    let closing = bytes.get(i) == Some(&b'/');
    let start = if closing { i + 1 } else { i };
    if !bytes.get(start).is_some_and(u8::is_ascii_alphabetic) {
        return Markup::Text;
    }
    let mut j = start;
    while bytes.get(j).is_some_and(|b| b.is_ascii_alphanumeric()) {
        j += 1;
    }
    let name =
        String::from_utf8_lossy(bytes.get(start..j).unwrap_or_default()).to_ascii_lowercase();
    // The end of the tag, honouring quoted attribute values.
    let mut quote: Option<u8> = None;
    let mut end = bytes.len();
    while let Some(&b) = bytes.get(j) {
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if b == b'>' => {
                end = j;
                break;
            }
            None => {}
        }
        j += 1;
    }
    let self_closing = end > 0 && bytes.get(end - 1) == Some(&b'/');
    Markup::Element(
        Tag {
            name,
            closing,
            self_closing,
        },
        (end + 1).min(bytes.len()),
    )
}

/// Where the raw text of a `<script>` or `<style>` opened before `from` ends.
fn raw_text_end(bytes: &[u8], from: usize, name: &str) -> usize {
    let end = format!("</{name}");
    let close = find_ci(bytes, from, end.as_bytes()).unwrap_or(bytes.len());
    memchr(b'>', bytes, close).map_or(bytes.len(), |e| e + 1)
}

fn is_raw_text(tag: &Tag) -> bool {
    !tag.closing && (tag.name == "script" || tag.name == "style")
}

/// The element tags of `html` in order, skipping comments, doctypes, CDATA and the
/// contents of `<script>` and `<style>`.
fn tags(html: &str) -> impl Iterator<Item = Tag> + '_ {
    let bytes = html.as_bytes();
    let mut i = 0usize;
    std::iter::from_fn(move || {
        loop {
            let lt = memchr(b'<', bytes, i)?;
            match markup_at(bytes, lt) {
                Markup::Skip(end) => i = end,
                Markup::Text => i = lt + 1,
                Markup::Element(tag, end) => {
                    i = if is_raw_text(&tag) {
                        raw_text_end(bytes, end, &tag.name)
                    } else {
                        end
                    };
                    return Some(tag);
                }
            }
        }
    })
}

fn memchr(needle: u8, hay: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .iter()
        .position(|b| *b == needle)
        .map(|p| p + from)
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut i = from;
    while let Some(p) = memchr(first, hay, i) {
        if hay.get(p..p + needle.len()) == Some(needle) {
            return Some(p);
        }
        i = p + 1;
    }
    None
}

fn find_ci(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let mut i = from;
    while let Some(p) = memchr(b'<', hay, i) {
        if hay
            .get(p..p + needle.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(needle))
        {
            return Some(p);
        }
        i = p + 1;
    }
    None
}

/// Elements after which text continues on a new line.
const BREAKS: &[&str] = &[
    "br",
    "p",
    "div",
    "li",
    "tr",
    "blockquote",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "pre",
    "table",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "hr",
    "section",
    "article",
    "header",
    "footer",
    "address",
    "center",
];

/// Text of `html` in one linear pass: tags dropped (line breaks kept for block elements),
/// `<script>`/`<style>` contents and comments dropped, entities decoded, runs of blank
/// lines collapsed. Never returns markup.
pub fn strip_tags(html: &str) -> String {
    let bytes = html.as_bytes();
    let mut out = String::with_capacity(html.len().min(1 << 20));
    let mut i = 0usize;
    while i < bytes.len() {
        let Some(lt) = memchr(b'<', bytes, i) else {
            push_text(&mut out, html.get(i..).unwrap_or_default());
            break;
        };
        push_text(&mut out, html.get(i..lt).unwrap_or_default());
        i = match markup_at(bytes, lt) {
            Markup::Skip(end) => end,
            Markup::Text => {
                out.push('<');
                lt + 1
            }
            Markup::Element(tag, end) if is_raw_text(&tag) => raw_text_end(bytes, end, &tag.name),
            Markup::Element(tag, end) => {
                if BREAKS.contains(&tag.name.as_str()) && !out.ends_with('\n') {
                    out.push('\n');
                }
                end
            }
        }
        .max(lt + 1);
    }
    collapse_blank_lines(&out)
}

/// Appends text with entities decoded and white space runs (not line breaks from block
/// elements, which are added separately) folded to one space.
fn push_text(out: &mut String, text: &str) {
    let mut chars = text.char_indices().peekable();
    while let Some((pos, c)) = chars.next() {
        if c == '&' {
            let tail = text.get(pos..).unwrap_or_default();
            if let Some((decoded, len)) = entity(tail) {
                out.push(decoded);
                // Skip the rest of the entity.
                while chars.peek().is_some_and(|(p, _)| *p < pos + len) {
                    chars.next();
                }
                continue;
            }
        }
        if c.is_whitespace() {
            if !out.ends_with([' ', '\n']) && !out.is_empty() {
                out.push(' ');
            }
            continue;
        }
        out.push(c);
    }
}

/// A character entity at the start of `s` (`&amp;`, `&#39;`, `&#x27;`...) and its length.
fn entity(s: &str) -> Option<(char, usize)> {
    let end = s.get(..12.min(s.len()))?.find(';')?;
    let body = s.get(1..end)?;
    let c = if let Some(num) = body.strip_prefix('#') {
        let n = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        char::from_u32(n).filter(|c| !c.is_control() || *c == '\n' || *c == '\t')?
    } else {
        match body {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            "nbsp" => ' ',
            "ndash" => '–',
            "mdash" => '—',
            "hellip" => '…',
            "laquo" => '«',
            "raquo" => '»',
            "copy" => '©',
            "reg" => '®',
            "euro" => '€',
            _ => return None,
        }
    };
    Some((c, end + 1))
}

fn collapse_blank_lines(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut blank = 0;
    for line in s.lines() {
        let t = line.trim();
        if t.is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(t);
        out.push('\n');
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_html_is_rendered() {
        let (text, why) = to_text("<p>Hello <b>there</b></p><p>Second &amp; last</p>");
        assert!(why.is_none(), "{why:?}");
        assert!(
            text.contains("Hello") && text.contains("Second & last"),
            "{text}"
        );
        assert!(!text.contains('<'));
    }

    #[test]
    fn shape_follows_optional_end_tags() {
        let s = shape("<p>a<p>b<p>c<ul><li>x<li>y</ul><br><img src=x>");
        assert_eq!(s.max_depth, 2, "{s:?}");
        assert_eq!(shape("<div><div><div></div></div></div>").max_depth, 3);
        assert_eq!(shape(&"<div>".repeat(500)).max_depth, 500);
        assert_eq!(shape("<table><tr><td><table><tr><td>").max_table_depth, 2);
        // Quoted '>' in attributes and script contents are not tags.
        let s = shape("<a title=\"x > y\"><script>if (a<b) { '<div>' }</script></a>");
        assert_eq!(s.max_depth, 2, "{s:?}");
    }

    #[test]
    fn nesting_bombs_are_stripped_not_rendered() {
        for (html, inner) in [
            (
                format!("{}deepest", "<blockquote>".repeat(50_000)),
                "deepest",
            ),
            (format!("{}item", "<ul><li>".repeat(100_000)), "item"),
            (format!("{}pit", "<div>".repeat(200_000)), "pit"),
        ] {
            let (text, why) = to_text(&html);
            assert!(why.is_some_and(|w| w.contains("nested")), "not refused");
            assert_eq!(text.trim(), inner);
        }
    }

    #[test]
    fn a_huge_html_is_stripped() {
        let html = format!("<p>{}</p>", "word ".repeat(300_000));
        let (text, why) = to_text(&html);
        assert!(why.is_some_and(|w| w.contains("rendering limit")));
        assert!(text.starts_with("word word"));
    }

    #[test]
    fn strip_tags_keeps_lines_drops_scripts_and_decodes_entities() {
        let t = strip_tags(
            "<html><head><style>p{color:red}</style></head><body><p>One &lt;two&gt;</p>\
             <script>alert('<p>x</p>')</script><div>Three&nbsp;&#x263A; &#65;</div>\
             <!-- <p>hidden</p> --><br>Four < five</body></html>",
        );
        assert_eq!(t, "One <two>\nThree ☺ A\nFour < five");
    }

    #[test]
    fn strip_tags_survives_garbage() {
        for s in [
            "<",
            "<<<>>>",
            "<a href=\"",
            "&#xffffffff;",
            "&#0;",
            "<!--",
            "<script>",
            "<x/ >",
        ] {
            let t = strip_tags(s);
            assert!(!t.contains("<a") && !t.contains("script"), "{s:?} -> {t:?}");
        }
    }
}
