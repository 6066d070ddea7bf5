//! HTML → plain text, with bounded cost on hostile input.
//!
//! html2text builds a DOM and renders it recursively: 50,000 nested `<blockquote>` overflow
//! its stack (the process aborts, which no `catch_unwind` stops), and 200,000 nested
//! `<div>` take minutes, because its work grows with the square of the nesting depth.
//! Mail is untrusted, so HTML only reaches html2text after a linear pass ([`normalise`])
//! has written it again in a form the parser cannot read more into (explicit end tags,
//! escaped text, no comments) and shown it small and shallow enough; then on a thread of
//! its own with a large stack and a time budget. Anything else, and anything that runs
//! out of time, is turned into text by [`strip_tags`]: one linear pass that drops markup,
//! `<script>` and `<style>`, keeps line structure and decodes entities. Both paths return
//! text, never markup.
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
    let normalised = if html.len() > MAX_RENDER_BYTES {
        Err(format!(
            "HTML of {} bytes is over the {MAX_RENDER_BYTES}-byte rendering limit",
            html.len()
        ))
    } else {
        normalise(html)
    };
    let rendered = match normalised {
        Ok(n) => render_within_budget(&n.html),
        Err(why) => {
            return (
                strip_tags(html),
                Some(format!("{why}; its text was taken by stripping the tags")),
            );
        }
    };
    match rendered {
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

/// HTML rewritten so that the renderer's parser cannot read more into it than the scan
/// did, and the shape of what it holds.
#[derive(Debug, Default)]
pub struct Normalised {
    pub html: String,
    pub shape: Shape,
}

/// Why `html` may not be rendered, or its normalised form.
///
/// The scan does not try to predict how html5ever will read hostile markup (comments that
/// end early, quotes inside attribute names, end tags that do not cross a scope boundary:
/// every such difference was a way to hide depth from an earlier version of this scan).
/// It writes the markup again instead, and only that is rendered: comments, doctypes and
/// raw-text elements dropped, every `<` of text escaped, attributes quoted, and every
/// element closed by an explicit end tag in the order it was opened. html5ever's tree for
/// such input is never deeper than the stack kept here (its own repairs, such as foster
/// parenting or closing a `<p>`, only move elements up), so the depth measured here bounds
/// the renderer's recursion.
pub fn normalise(html: &str) -> Result<Normalised, String> {
    let bytes = html.as_bytes();
    let mut out = String::with_capacity(html.len() + html.len() / 8);
    let mut s = Shape::default();
    let mut stack: Vec<String> = Vec::new();
    let mut tables = 0usize;
    let mut i = 0usize;
    let close = |out: &mut String, name: &str, tables: &mut usize| {
        out.push_str("</");
        out.push_str(name);
        out.push('>');
        if name == "table" {
            *tables = tables.saturating_sub(1);
        }
    };
    loop {
        if out.len() > MAX_RENDER_BYTES * 2 {
            return Err(format!(
                "HTML of {} bytes is over the rendering limit once rewritten",
                html.len()
            ));
        }
        let Some(lt) = memchr(b'<', bytes, i) else {
            push_escaped(&mut out, html.get(i..).unwrap_or_default());
            break;
        };
        push_escaped(&mut out, html.get(i..lt).unwrap_or_default());
        let (tag, end) = match markup_at(bytes, lt) {
            Markup::Skip(end) => {
                i = end.max(lt + 1);
                continue;
            }
            Markup::Text => {
                out.push_str("&lt;");
                i = lt + 1;
                continue;
            }
            Markup::Element(tag, end) => (tag, end),
        };
        i = end.max(lt + 1);
        if is_raw_text(&tag) {
            i = raw_text_end(bytes, i, &tag.name);
            continue;
        }
        if !tag
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            // `<a"b>` and the like: no element worth rendering, and nothing to trust.
            continue;
        }
        if tag.closing {
            if tag.name == "br" {
                out.push_str("<br>");
            } else if let Some(pos) = stack.iter().rposition(|n| *n == tag.name) {
                for gone in stack.drain(pos..).rev() {
                    close(&mut out, &gone, &mut tables);
                }
            }
            continue;
        }
        s.elements += 1;
        if s.elements > MAX_RENDER_ELEMENTS {
            return Err(format!("HTML of over {MAX_RENDER_ELEMENTS} elements"));
        }
        let void = VOID.contains(&tag.name.as_str());
        let closes = closes_same(&tag.name);
        let implied_end = stack
            .last()
            .is_some_and(|top| closes.contains(&top.as_str()))
            || (CLOSES_P.contains(&tag.name.as_str()) && stack.last().is_some_and(|t| t == "p"));
        if implied_end && let Some(top) = stack.pop() {
            close(&mut out, &top, &mut tables);
        }
        out.push('<');
        out.push_str(&tag.name);
        for (name, value) in &tag.attrs {
            let Some(name) = html.get(name.clone()) else {
                continue;
            };
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_:.".contains(&b))
            {
                continue;
            }
            out.push(' ');
            out.push_str(&name.to_ascii_lowercase());
            out.push_str("=\"");
            let value = value.clone().and_then(|v| html.get(v)).unwrap_or_default();
            out.push_str(&value.replace('"', "&quot;"));
            out.push('"');
        }
        out.push('>');
        if void {
            continue;
        }
        if tag.self_closing {
            // `<div/>` opens a div in HTML; here it is closed at once, whatever the parser
            // would have made of it.
            close(&mut out, &tag.name, &mut tables);
            continue;
        }
        if tag.name == "table" {
            tables += 1;
            s.max_table_depth = s.max_table_depth.max(tables);
            if tables > MAX_TABLE_DEPTH {
                return Err(format!("HTML tables nested over {MAX_TABLE_DEPTH} deep"));
            }
        }
        stack.push(tag.name);
        s.max_depth = s.max_depth.max(stack.len());
        if stack.len() > MAX_RENDER_DEPTH {
            return Err(format!("HTML nested over {MAX_RENDER_DEPTH} elements deep"));
        }
    }
    while let Some(top) = stack.pop() {
        close(&mut out, &top, &mut tables);
    }
    Ok(Normalised {
        html: out,
        shape: s,
    })
}

/// Text with every `<` escaped, so the parser reads no markup in it.
fn push_escaped(out: &mut String, text: &str) {
    let mut rest = text;
    while let Some(p) = rest.find('<') {
        out.push_str(rest.get(..p).unwrap_or_default());
        out.push_str("&lt;");
        rest = rest.get(p + 1..).unwrap_or_default();
    }
    out.push_str(rest);
}

/// The shape of `html` as [`normalise`] measures it (depth and tables stop counting at
/// the first limit they pass).
pub fn shape(html: &str) -> Shape {
    normalise(html).map(|n| n.shape).unwrap_or(Shape {
        max_depth: MAX_RENDER_DEPTH + 1,
        max_table_depth: MAX_TABLE_DEPTH + 1,
        elements: MAX_RENDER_ELEMENTS + 1,
    })
}

struct Tag {
    /// Lower-cased element name.
    name: String,
    closing: bool,
    self_closing: bool,
    /// Attribute names and values, as byte ranges of the input.
    attrs: Vec<(std::ops::Range<usize>, Option<std::ops::Range<usize>>)>,
}

/// What starts at a `<`, and the index just past it.
enum Markup {
    /// A comment, doctype, processing instruction, CDATA section or a tag cut off by the
    /// end of input.
    Skip(usize),
    Element(Tag, usize),
    /// A `<` that starts no markup (`a < b`).
    Text,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0c)
}

/// The markup starting at `bytes[lt] == b'<'`, read as the HTML tokenizer reads it.
fn markup_at(bytes: &[u8], lt: usize) -> Markup {
    let i = lt + 1;
    if bytes.get(i..i + 3) == Some(b"!--") {
        return Markup::Skip(comment_end(bytes, i + 3));
    }
    if matches!(bytes.get(i), Some(b'!' | b'?')) {
        return Markup::Skip(memchr(b'>', bytes, i).map_or(bytes.len(), |e| e + 1));
    }
    let closing = bytes.get(i) == Some(&b'/');
    let start = if closing { i + 1 } else { i };
    if !bytes.get(start).is_some_and(u8::is_ascii_alphabetic) {
        return match (closing, bytes.get(start)) {
            (false, _) => Markup::Text,
            // `</>` is nothing; `</ x>` is a bogus comment up to the next `>`.
            (true, Some(b'>')) => Markup::Skip(start + 1),
            (true, _) => Markup::Skip(memchr(b'>', bytes, start).map_or(bytes.len(), |e| e + 1)),
        };
    }
    let mut j = start;
    while bytes
        .get(j)
        .is_some_and(|&b| !is_space(b) && b != b'/' && b != b'>')
    {
        j += 1;
    }
    let name =
        String::from_utf8_lossy(bytes.get(start..j).unwrap_or_default()).to_ascii_lowercase();
    let mut attrs = Vec::new();
    let mut self_closing = false;
    // Attributes as the tokenizer reads them: a quote only opens a value right after `=`.
    loop {
        while bytes.get(j).is_some_and(|&b| is_space(b)) {
            j += 1;
        }
        match bytes.get(j) {
            None => return Markup::Skip(bytes.len()),
            Some(b'>') => break,
            Some(b'/') => {
                j += 1;
                if bytes.get(j) == Some(&b'>') {
                    self_closing = true;
                    break;
                }
                continue;
            }
            Some(_) => {}
        }
        let name_start = j;
        j += 1; // A first `=` belongs to the name.
        while bytes
            .get(j)
            .is_some_and(|&b| !is_space(b) && !matches!(b, b'/' | b'>' | b'='))
        {
            j += 1;
        }
        let name_range = name_start..j;
        while bytes.get(j).is_some_and(|&b| is_space(b)) {
            j += 1;
        }
        if bytes.get(j) != Some(&b'=') {
            attrs.push((name_range, None));
            continue;
        }
        j += 1;
        while bytes.get(j).is_some_and(|&b| is_space(b)) {
            j += 1;
        }
        let value = match bytes.get(j) {
            None => return Markup::Skip(bytes.len()),
            Some(&q @ (b'"' | b'\'')) => {
                let Some(close) = memchr(q, bytes, j + 1) else {
                    return Markup::Skip(bytes.len());
                };
                let v = j + 1..close;
                j = close + 1;
                v
            }
            Some(b'>') => j..j,
            Some(_) => {
                let from = j;
                while bytes.get(j).is_some_and(|&b| !is_space(b) && b != b'>') {
                    j += 1;
                }
                from..j
            }
        };
        attrs.push((name_range, Some(value)));
    }
    Markup::Element(
        Tag {
            name,
            closing,
            self_closing,
            attrs,
        },
        j + 1,
    )
}

/// Where a comment whose `<!--` ends just before `from` ends: `<!-->` and `<!--->` end at
/// once, otherwise the first `-->` or `--!>` ends it.
fn comment_end(bytes: &[u8], from: usize) -> usize {
    match bytes.get(from..) {
        Some([b'>', ..]) => return from + 1,
        Some([b'-', b'>', ..]) => return from + 2,
        _ => {}
    }
    let mut p = from;
    while let Some(d) = find(bytes, p, b"--") {
        match bytes.get(d + 2..) {
            Some([b'>', ..]) => return d + 3,
            Some([b'!', b'>', ..]) => return d + 4,
            _ => p = d + 1,
        }
    }
    bytes.len()
}

/// Where the raw text of a `<script>` or `<style>` opened before `from` ends.
fn raw_text_end(bytes: &[u8], from: usize, name: &str) -> usize {
    let end = format!("</{name}");
    let close = find_ci(bytes, from, end.as_bytes()).unwrap_or(bytes.len());
    memchr(b'>', bytes, close).map_or(bytes.len(), |e| e + 1)
}

/// Elements whose contents are not markup, or not text a reader sees.
fn is_raw_text(tag: &Tag) -> bool {
    !tag.closing
        && !tag.self_closing
        && matches!(
            tag.name.as_str(),
            "script" | "style" | "title" | "xmp" | "iframe" | "noembed" | "noframes" | "noscript"
        )
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
        assert!(shape(&"<div>".repeat(500)).max_depth > MAX_RENDER_DEPTH);
        assert_eq!(shape("<table><tr><td><table><tr><td>").max_table_depth, 2);
        // Quoted '>' in attributes and script contents are not tags.
        // (The script is dropped whole.)
        let s = shape("<a title=\"x > y\"><script>if (a<b) { '<div>' }</script></a>");
        assert_eq!(s.max_depth, 1, "{s:?}");
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
    fn depth_hidden_from_an_earlier_scan_is_found() {
        // Each of these once hid its nesting from the scan: a comment html5ever ends at
        // once, a quote in an attribute name, a quote in a tag name.
        for html in [
            format!("<!-->{}x", "<blockquote>".repeat(50_000)),
            format!("<!--->{}x", "<blockquote>".repeat(50_000)),
            format!("<!-- a --!>{}x", "<div>".repeat(50_000)),
            format!("<div a\"b>{}<div c\">x", "<div>".repeat(50_000)),
            format!("<p\"x>{}<i y=\"z\">x", "<ul><li>".repeat(50_000)),
        ] {
            let (text, why) = to_text(&html);
            assert!(
                why.as_deref().is_some_and(|w| w.contains("nested")),
                "{:?}: {why:?}",
                &html[..20]
            );
            assert!(text.trim().ends_with('x'), "{text:?}");
        }
    }

    #[test]
    fn what_the_renderer_gets_is_closed_in_order() {
        // `</div>` cannot close a div across `<object>` for html5ever, which would nest
        // every repetition; the rewrite closes the object first, explicitly.
        let n = normalise(&"<div><object></div>".repeat(3)).unwrap();
        assert_eq!(n.html, "<div><object></object></div>".repeat(3));
        assert_eq!(n.shape.max_depth, 2);
        // `</ ` starts a bogus comment up to the next `>`, as html5ever reads it. Text
        // cannot smuggle markup past the rewrite, nor can a self-closed element stay
        // open or a comment swallow what follows.
        let n = normalise("a </ <b>c</b> <div/><!-->d<p>e<p>f<x a=\"1\" b='2\"' c=3 d>").unwrap();
        assert_eq!(
            n.html,
            "a c <div></div>d<p>e</p><p>f<x a=\"1\" b=\"2&quot;\" c=\"3\" d=\"\"></x></p>"
        );
        // Rewriting what was rewritten changes nothing.
        for html in [
            "<table><tr><td>a<td>b</table><ul><li>x<li>y</ul>",
            "<p>a<div>b</p>c</div><script>x<y</script><b>bold",
            "<!doctype html><html><body><a href='x?a=1&b=2'>l</a></body></html>",
        ] {
            let once = normalise(html).unwrap().html;
            assert_eq!(normalise(&once).unwrap().html, once, "{html}");
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
