//! Subject handling: reply/forward prefixes, ticket tags, and the key used to match a
//! message to a ticket by subject.
//!
//! Everything here is pure string work on an already RFC 2047-decoded subject (mail-parser
//! decodes encoded words). Nothing here may panic or go quadratic on hostile input: every
//! function walks the subject a bounded number of times, so a 1 MB subject costs about as
//! much as copying it.
//!
//! Two families live here:
//!
//! * [`strip_reply_prefixes`], [`normalize_subject`] and [`ticket_tags`] are postdesk's own
//!   rules. They know the reply/forward prefixes real mail clients write in many languages
//!   (`Re:`, `AW:`, `SV:`, `回复：`, `轉寄:` ...) because a helpdesk must map a reply to the
//!   same key as the message it answers, whatever the customer's mail client speaks.
//! * [`rfc5256_base_subject`] is RFC 5256 section 2.1 to the letter (ASCII `re`/`fw`/`fwd`
//!   only), the base subject IMAP servers such as Dovecot sort and thread by. It is not
//!   the ticket-matching key and the product does not use it: the conformance tests
//!   compare it with Dovecot's SORT results, so that where `normalize_subject` departs
//!   from RFC 5256 it does so knowingly.

use std::collections::HashSet;

/// Reply and forward prefixes, lower case, as written before the colon.
///
/// Sources: the prefixes localized Outlook, Thunderbird, Lotus Notes, QQ Mail, Coremail and
/// Alimail put in front of a subject. `r` is Italian Outlook's reply prefix (`R: `); it is
/// kept because the key is applied to both sides of a conversation, so a subject that really
/// starts with `R:` (the R language...) still maps to itself and to its replies. Italian
/// Outlook's forward prefix `I:` is deliberately absent: a one-letter English word before a
/// colon is too common, and a forward usually starts a new conversation anyway.
#[rustfmt::skip] // rustfmt would pack the groups and move their comments.
const REPLY_PREFIXES: &[&str] = &[
    // English and generic.
    "re", "fwd", "fw",
    // German: Antwort / Weitergeleitet.
    "aw", "wg", "antwort",
    // Dutch.
    "antw",
    // Nordic: Swedish/Danish/Norwegian "svar", Finnish "vastaus"/"välitetty".
    "sv", "vs", "vl",
    // French: réponse/référence and transfert.
    "réf", "ref", "tr",
    // Italian: riferimento and Outlook's reply prefix.
    "rif", "r",
    // Polish: odpowiedź.
    "odp",
    // Portuguese: encaminhado (forward) and resposta.
    "enc", "res",
    // Spanish Outlook: reenviado (forward).
    "rv",
    // Chinese, simplified and traditional (回復/答復 as some Big5 tables decode 0xCE60).
    "回复", "答复", "回覆", "答覆", "回復", "答復", "转发", "转寄", "轉寄", "轉發", "回信",
    // Korean Outlook.
    "회신", "전달",
];

/// Longest prefix above, in chars. A longer run of letters cannot be a prefix, which keeps
/// the look-ahead bounded.
const MAX_PREFIX_CHARS: usize = 7;

/// Longest mailing-list tag (`[f2fs-dev]`) that may sit in front of a reply prefix.
const MAX_LIST_TAG_CHARS: usize = 64;

/// Longest reply counter accepted in `Re[12]:`; more digits is not a counter.
const MAX_COUNTER_DIGITS: usize = 9;

/// Longest ticket number in a `[#123]` tag; an `i64` has at most 19 digits.
const MAX_TICKET_DIGITS: usize = 20;

/// Removes leading reply/forward prefixes and returns the rest (trimmed) and how many
/// replies/forwards the prefixes stand for.
///
/// * Prefixes are matched case-insensitively against a list of localized prefixes (see
///   `REPLY_PREFIXES`), with whitespace allowed around an ASCII `:` or a full-width `：`,
///   and also with no space after the colon (`回复：回复：subject`, QQ Mail).
/// * Counters count: `Re[3]:`, `Re(3):` and `Re^3:` stand for three replies, so
///   `Re: Re[4]: x` gives a count of 5 (as JWZ's threader and MailKit count).
/// * Mailing-list tags: a single `[tag]` directly followed by a reply prefix is removed
///   together with that prefix, because the list re-adds its tag in front of every reply
///   (`Re: [list] Re: x` -> `x`). A tag that is not followed by a prefix stays
///   (`Re: [PATCH] x` -> `[PATCH] x`); [`normalize_subject`] removes leading tags as well.
///   Our own ticket tags (`[#123]`) never count as list tags.
///
/// ```
/// use postdesk::threading::subject::strip_reply_prefixes;
/// assert_eq!(strip_reply_prefixes("Re: AW: 回复：Hello"), ("Hello".to_string(), 3));
/// ```
pub fn strip_reply_prefixes(subject: &str) -> (String, usize) {
    let (rest, count) = strip_reply_prefixes_slice(subject);
    (rest.to_string(), count)
}

/// The key for "same normalised subject from the same sender" ticket matching.
///
/// Folds full-width ASCII (U+FF01..U+FF5E) and the ideographic space to ASCII, collapses
/// all Unicode whitespace to single spaces, removes every ticket tag (`[#123]`, `[# 123]`,
/// `【#123】`) wherever it is, then repeatedly removes leading reply/forward prefixes,
/// leading `[...]` tags (as long as something remains, like RFC 5256's subj-blob rule) and
/// trailing `(fwd)`, and finally lowercases. Leading tags go because mailing lists and mail
/// gateways add and drop them at will (`[External] Re: x` must match `x`).
///
/// Idempotent: `normalize_subject(&normalize_subject(s)) == normalize_subject(s)`.
pub fn normalize_subject(subject: &str) -> String {
    let cleaned = fold_and_remove_ticket_tags(subject);
    let mut cur = cleaned.trim();
    // Trailing "(fwd)" first: what happens at the front never changes the end, so one pass
    // each way is enough and each pass is linear.
    loop {
        let trimmed = cur.trim_end();
        match strip_suffix_ignore_ascii_case(trimmed, "(fwd)") {
            Some(rest) => cur = rest,
            None => {
                cur = trimmed;
                break;
            }
        }
    }
    loop {
        let (rest, count) = strip_reply_prefixes_slice(cur);
        cur = rest;
        if count > 0 {
            continue;
        }
        match strip_leading_blob(cur) {
            Some(rest) if !rest.trim().is_empty() => cur = rest.trim_start(),
            _ => break,
        }
    }
    cur.trim().to_lowercase()
}

/// Every ticket tag (`[#123]`, also `[# 123]`, full-width `［＃１２３］` and `【#123】`) in
/// the order they appear, without duplicates. Zero and numbers that do not fit an `i64`
/// are not ticket numbers and are skipped.
pub fn ticket_tags(subject: &str) -> Vec<i64> {
    let chars = fold_chars(subject);
    let mut seen = HashSet::new();
    let mut tags = Vec::new();
    for (start, c) in chars.iter().enumerate() {
        if !is_open_bracket(*c) {
            continue;
        }
        let Some(digits) = chars.get(start..).and_then(match_ticket_tag_forward) else {
            continue;
        };
        let Ok(number) = digits.parse::<i64>() else {
            continue;
        };
        if number > 0 && seen.insert(number) {
            tags.push(number);
        }
    }
    tags
}

/// RFC 5256 section 2.1 base subject, as used by IMAP SORT (SUBJECT) and THREAD.
///
/// Only the ASCII `re`, `fw` and `fwd` leaders count, as the RFC says; the result keeps
/// its case (compare base subjects with `i;ascii-casemap`, that is ASCII case-insensitively).
pub fn rfc5256_base_subject(subject: &str) -> String {
    rfc5256_base_subject_ext(subject).0
}

/// [`rfc5256_base_subject`] plus whether the message counts as a reply or forward: RFC 5256
/// (end of section 2.1) says so when the extraction removed a subj-refwd (`Re:`), a
/// `(fwd)` trailer or a `[fwd: ...]` wrapper (THREAD=REFERENCES step 5 uses the flag; we
/// keep it because the extraction decides it on the way, and the tests pin it).
fn rfc5256_base_subject_ext(subject: &str) -> (String, bool) {
    // Step 1: encoded words are already decoded; runs of whitespace become one space.
    let collapsed = collapse_whitespace(subject);
    let mut cur: &str = &collapsed;
    let mut is_reply_or_forward = false;
    loop {
        // Step 2: trailing subj-trailer, that is "(fwd)" or whitespace.
        loop {
            if let Some(rest) = cur.strip_suffix(' ') {
                cur = rest;
            } else if let Some(rest) = strip_suffix_ignore_ascii_case(cur, "(fwd)") {
                cur = rest;
                is_reply_or_forward = true;
            } else {
                break;
            }
        }
        // Steps 3-5: subj-leader (*subj-blob subj-refwd / WSP) and leading subj-blob when
        // something remains. Removing a blob greedily whenever text remains after it gives
        // the same result as the RFC's "leader first, then one blob, repeat" (a blob that
        // would leave nothing can have no refwd after it either) and never rescans the
        // blobs in front of a leader, which keeps this linear.
        loop {
            if let Some(rest) = cur.strip_prefix(' ') {
                cur = rest;
            } else if let Some(rest) = strip_leading_blob(cur).filter(|rest| !rest.is_empty()) {
                cur = rest;
            } else if let Some(rest) = strip_refwd(cur) {
                cur = rest;
                is_reply_or_forward = true;
            } else {
                break;
            }
        }
        // Step 6: "[fwd:" ... "]" is unwrapped and the whole thing starts again at step 2.
        let unwrapped =
            strip_prefix_ignore_ascii_case(cur, "[fwd:").and_then(|rest| rest.strip_suffix(']'));
        match unwrapped {
            Some(inner) => {
                cur = inner;
                is_reply_or_forward = true;
            }
            None => break,
        }
    }
    (cur.to_string(), is_reply_or_forward)
}

/// [`strip_reply_prefixes`] without the allocation, for the loops above.
fn strip_reply_prefixes_slice(subject: &str) -> (&str, usize) {
    let mut cur = subject;
    let mut count = 0usize;
    loop {
        let trimmed = cur.trim_start();
        if let Some((rest, n)) = match_reply_prefix(trimmed) {
            cur = rest;
            count = count.saturating_add(n);
            continue;
        }
        let after_tag = match_list_tag(trimmed).map(str::trim_start);
        if let Some((rest, n)) = after_tag.and_then(match_reply_prefix) {
            cur = rest;
            count = count.saturating_add(n);
            continue;
        }
        return (trimmed.trim_end(), count);
    }
}

/// Matches one reply/forward prefix with its colon at the very start of `s`; returns the
/// text after the colon and how many replies the prefix stands for.
fn match_reply_prefix(s: &str) -> Option<(&str, usize)> {
    let word_end = s
        .char_indices()
        .take(MAX_PREFIX_CHARS + 1)
        .find(|(_, c)| !c.is_alphabetic())
        .map(|(i, _)| i)?;
    if word_end == 0 {
        return None;
    }
    let word = s.get(..word_end)?.to_lowercase();
    if !REPLY_PREFIXES.contains(&word.as_str()) {
        return None;
    }
    let mut rest = s.get(word_end..)?.trim_start();
    let mut count = 1;
    if let Some((after, n)) = match_counter(rest) {
        rest = after.trim_start();
        count = n.max(1);
    }
    let after_colon = rest.strip_prefix(':').or_else(|| rest.strip_prefix('：'))?;
    Some((after_colon, count))
}

/// `[3]`, `(3)` or `^3` after a reply prefix.
fn match_counter(s: &str) -> Option<(&str, usize)> {
    let (close, body) = if let Some(body) = s.strip_prefix('[') {
        (Some(']'), body)
    } else if let Some(body) = s.strip_prefix('(') {
        (Some(')'), body)
    } else {
        (None, s.strip_prefix('^')?)
    };
    let digits_len = body
        .bytes()
        .take(MAX_COUNTER_DIGITS + 1)
        .take_while(u8::is_ascii_digit)
        .count();
    if digits_len == 0 || digits_len > MAX_COUNTER_DIGITS {
        return None;
    }
    let n = body.get(..digits_len)?.parse::<usize>().ok()?;
    let mut rest = body.get(digits_len..)?;
    if let Some(close) = close {
        rest = rest.strip_prefix(close)?;
    }
    Some((rest, n))
}

/// A mailing-list tag such as `[f2fs-dev]` at the start of `s` (not a ticket tag); returns
/// the text after it.
fn match_list_tag(s: &str) -> Option<&str> {
    let body = s.strip_prefix('[')?;
    let (len, _) = body
        .char_indices()
        .take(MAX_LIST_TAG_CHARS + 1)
        .find(|(_, c)| *c == ']' || *c == '[')
        .filter(|(len, c)| *c == ']' && *len > 0)?;
    let tag = body.get(..len)?;
    let is_ticket_tag = tag
        .strip_prefix('#')
        .map(str::trim)
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if is_ticket_tag {
        return None;
    }
    body.get(len + 1..)
}

/// RFC 5256 subj-blob (`"[" *BLOBCHAR "]" *WSP`) at the start of `s`; returns the rest.
fn strip_leading_blob(s: &str) -> Option<&str> {
    let body = s.strip_prefix('[')?;
    let close = body.find(['[', ']'])?;
    if body.as_bytes().get(close) != Some(&b']') {
        return None;
    }
    Some(body.get(close + 1..)?.trim_start_matches(' '))
}

/// RFC 5256 subj-refwd: `("re" / ("fw" ["d"])) *WSP [subj-blob] ":"`.
fn strip_refwd(s: &str) -> Option<&str> {
    let rest = strip_prefix_ignore_ascii_case(s, "re")
        .or_else(|| strip_prefix_ignore_ascii_case(s, "fwd"))
        .or_else(|| strip_prefix_ignore_ascii_case(s, "fw"))?;
    let rest = rest.trim_start_matches(' ');
    let rest = strip_leading_blob(rest).unwrap_or(rest);
    rest.strip_prefix(':')
}

fn strip_prefix_ignore_ascii_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.as_bytes().get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix.as_bytes()) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

fn strip_suffix_ignore_ascii_case<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let start = s.len().checked_sub(suffix.len())?;
    let tail = s.as_bytes().get(start..)?;
    if tail.eq_ignore_ascii_case(suffix.as_bytes()) {
        s.get(..start)
    } else {
        None
    }
}

/// Every run of Unicode whitespace (folding leaves `\r\n ` behind) becomes one space.
fn collapse_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    out
}

/// Full-width ASCII to ASCII (the part of NFKC that matters for subjects typed with a CJK
/// input method), and the ideographic space to a space.
fn fold_char(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

fn is_open_bracket(c: char) -> bool {
    matches!(c, '[' | '【')
}

fn is_close_bracket(c: char) -> bool {
    matches!(c, ']' | '】')
}

/// The subject folded (full-width to ASCII) with every whitespace run as one space.
fn fold_chars(s: &str) -> Vec<char> {
    let mut out: Vec<char> = Vec::with_capacity(s.len());
    for c in s.chars().map(fold_char) {
        if c.is_whitespace() {
            if out.last() != Some(&' ') {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A ticket tag at the start of `chars`: open bracket, optional space, `#`, optional
/// space, 1-20 digits, optional space, close bracket. Returns the digits. The input has
/// already been through `fold_chars`, so "optional space" covers any folded whitespace.
fn match_ticket_tag_forward(chars: &[char]) -> Option<String> {
    ticket_tag_at(chars).map(|(digits, _)| digits)
}

/// [`match_ticket_tag_forward`], with the number of characters the tag takes.
fn ticket_tag_at(chars: &[char]) -> Option<(String, usize)> {
    let at = |i: usize| chars.get(i).copied();
    let skip_space = |i: usize| if at(i) == Some(' ') { i + 1 } else { i };
    if !at(0).is_some_and(is_open_bracket) {
        return None;
    }
    let mut i = skip_space(1);
    if at(i) != Some('#') {
        return None;
    }
    i = skip_space(i + 1);
    let start = i;
    while at(i).is_some_and(|c| c.is_ascii_digit()) {
        i += 1;
        if i - start > MAX_TICKET_DIGITS {
            return None;
        }
    }
    if i == start {
        return None;
    }
    let digits: String = chars.get(start..i)?.iter().collect();
    i = skip_space(i);
    at(i).filter(|c| is_close_bracket(*c))?;
    Some((digits, i + 1))
}

/// `subject` without any of our ticket tags (`[#5]`, `【#5】`, `［＃５］`...), white space
/// runs folded: the title of a new ticket opened by a reply to an old one. The rest of
/// the subject keeps its own characters.
pub fn without_ticket_tags(subject: &str) -> String {
    let orig: Vec<char> = subject.chars().collect();
    let folded: Vec<char> = orig
        .iter()
        .map(|c| {
            let f = fold_char(*c);
            if f.is_whitespace() { ' ' } else { f }
        })
        .collect();
    let mut out = String::with_capacity(subject.len());
    let mut i = 0;
    while let Some(c) = orig.get(i) {
        if folded.get(i).is_some_and(|f| is_open_bracket(*f))
            && let Some((_, len)) = folded.get(i..).and_then(ticket_tag_at)
        {
            i += len;
            out.push(' ');
            continue;
        }
        out.push(*c);
        i += 1;
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// If `out` ends with a ticket tag minus its close bracket (`[#123`), returns where the tag
/// starts. The look-back is bounded by the tag grammar, so this is O(1) per call.
fn ticket_tag_start_before(out: &[char]) -> Option<usize> {
    let mut i = out.len();
    let step_back = |i: &mut usize| -> Option<char> {
        *i = i.checked_sub(1)?;
        out.get(*i).copied()
    };
    let mut c = step_back(&mut i)?;
    if c == ' ' {
        c = step_back(&mut i)?;
    }
    let mut digits = 0;
    while c.is_ascii_digit() {
        digits += 1;
        if digits > MAX_TICKET_DIGITS {
            return None;
        }
        c = step_back(&mut i)?;
    }
    if digits == 0 {
        return None;
    }
    if c == ' ' {
        c = step_back(&mut i)?;
    }
    if c != '#' {
        return None;
    }
    c = step_back(&mut i)?;
    if c == ' ' {
        c = step_back(&mut i)?;
    }
    is_open_bracket(c).then_some(i)
}

/// One pass over the subject: fold full-width characters, collapse whitespace and drop
/// ticket tags. Tags are dropped as soon as their close bracket arrives, with a stack, so
/// tags that only appear once an inner tag is gone (`[#[#1]2]`) go too and the result has
/// no tag left in it, which is what makes `normalize_subject` idempotent.
fn fold_and_remove_ticket_tags(subject: &str) -> String {
    let mut out: Vec<char> = Vec::with_capacity(subject.len());
    for c in subject.chars().map(fold_char) {
        if c.is_whitespace() {
            if out.last().is_some_and(|last| *last != ' ') {
                out.push(' ');
            }
            continue;
        }
        if is_close_bracket(c)
            && let Some(start) = ticket_tag_start_before(&out)
        {
            out.truncate(start);
            continue;
        }
        out.push(c);
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_tags_leave_a_new_subject() {
        assert_eq!(
            without_ticket_tags("[#5] [#1] Invoice wrong"),
            "Invoice wrong"
        );
        assert_eq!(without_ticket_tags("Re: 【#12】 退款 [# 3 ]"), "Re: 退款");
        assert_eq!(without_ticket_tags("［＃７］　注文"), "注文");
        assert_eq!(
            without_ticket_tags("[ext] price [#x] ok"),
            "[ext] price [#x] ok"
        );
    }

    fn strip(s: &str) -> (String, usize) {
        strip_reply_prefixes(s)
    }

    #[test]
    fn strips_english_prefixes() {
        assert_eq!(strip("Re: Hello"), ("Hello".into(), 1));
        assert_eq!(strip("RE: Re: re:Hello  "), ("Hello".into(), 3));
        assert_eq!(strip("Fwd: FW: Fw: Hello"), ("Hello".into(), 3));
        assert_eq!(strip("Hello"), ("Hello".into(), 0));
        assert_eq!(strip("Re:"), ("".into(), 1));
        assert_eq!(strip(""), ("".into(), 0));
    }

    #[test]
    fn strips_counters() {
        assert_eq!(strip("Re[2]: Hello"), ("Hello".into(), 2));
        assert_eq!(strip("Re^3: Hello"), ("Hello".into(), 3));
        assert_eq!(strip("Re(4): Hello"), ("Hello".into(), 4));
        assert_eq!(
            strip("Re: Re[4]: simple subject  "),
            ("simple subject".into(), 5)
        );
        assert_eq!(strip("Re[0]: Hello"), ("Hello".into(), 1));
        // Not a counter: too many digits, or letters.
        assert_eq!(strip("Re[12345678901]: x").1, 0);
        assert_eq!(strip("Re[x]: x").1, 0);
    }

    #[test]
    fn strips_german_nordic_and_other_european_prefixes() {
        assert_eq!(strip("AW: WG: Rechnung"), ("Rechnung".into(), 2));
        assert_eq!(strip("Antwort: Rechnung"), ("Rechnung".into(), 1));
        assert_eq!(strip("SV: Æblegrød"), ("Æblegrød".into(), 1));
        assert_eq!(strip("SV:Æblegrød"), ("Æblegrød".into(), 1));
        assert_eq!(strip("VS: VL: Lasku"), ("Lasku".into(), 2));
        assert_eq!(strip("Antw: Vraag"), ("Vraag".into(), 1));
        assert_eq!(strip("TR : RÉF : Facture"), ("Facture".into(), 2));
        assert_eq!(strip("R: I: Fattura"), ("I: Fattura".into(), 1));
        assert_eq!(strip("Odp: Faktura"), ("Faktura".into(), 1));
        assert_eq!(strip("ENC: RES: Fatura"), ("Fatura".into(), 2));
        // A custom prefix we do not know stays.
        assert_eq!(strip("ÆØÅ: Foo bar"), ("ÆØÅ: Foo bar".into(), 0));
    }

    #[test]
    fn strips_chinese_prefixes_with_full_width_colon() {
        assert_eq!(
            strip("回复：回复：eros性能问题"),
            ("eros性能问题".into(), 2)
        );
        assert_eq!(strip("回复： Feedback"), ("Feedback".into(), 1));
        assert_eq!(strip("答复: [PATCH] x"), ("[PATCH] x".into(), 1));
        assert_eq!(strip("回覆: 回覆: [list] Q"), ("[list] Q".into(), 2));
        assert_eq!(strip("转发: Fw: 请示"), ("请示".into(), 2));
        assert_eq!(
            strip("Re: 回复：Re: 回复：Re: git安装报错"),
            ("git安装报错".into(), 5)
        );
        assert_eq!(strip("轉寄：轉發：回信: 回復: x"), ("x".into(), 4));
        // "回复" glued to text without a colon is not a prefix.
        assert_eq!(strip("回复一下"), ("回复一下".into(), 0));
    }

    #[test]
    fn tolerates_folding_whitespace() {
        assert_eq!(strip("\r\n Re:\r\n\tRe :  Hello\r\n"), ("Hello".into(), 2));
    }

    #[test]
    fn list_tag_policy() {
        // A list tag directly in front of a prefix goes with it.
        assert_eq!(
            strip("Re: [Mailing-List] Re[4]: simple subject"),
            ("simple subject".into(), 5)
        );
        assert_eq!(
            strip("[f2fs-dev] 答复: [RFC PATCH] f2fs"),
            ("[RFC PATCH] f2fs".into(), 1)
        );
        // Otherwise it stays.
        assert_eq!(strip("Re: [PATCH] x"), ("[PATCH] x".into(), 1));
        assert_eq!(strip("[LTP] x"), ("[LTP] x".into(), 0));
        // Our ticket tag is not a list tag.
        assert_eq!(strip("[#12] Re: x"), ("[#12] Re: x".into(), 0));
    }

    #[test]
    fn word_prefixes_need_a_word_boundary() {
        assert_eq!(strip("Regarding: x").1, 0);
        assert_eq!(strip("Fwded: x").1, 0);
        assert_eq!(strip("Reply needed").1, 0);
    }

    #[test]
    fn normalize_matches_reply_with_original() {
        let original = normalize_subject("Printer on 3rd floor broken");
        for reply in [
            "Re: Printer on 3rd floor broken",
            "RE: [#42] Printer on 3rd floor  broken",
            "AW: Re: Printer on 3rd floor broken [#42]",
            "回复：Printer on 3rd floor broken",
            "[External] Re: Printer on 3rd floor broken",
            "Fwd: Printer on 3rd floor broken (fwd)",
            "ＲＥ：Printer on 3rd floor broken",
            "SV:\r\n Printer on 3rd floor broken",
        ] {
            assert_eq!(normalize_subject(reply), original, "{reply}");
        }
        assert_eq!(original, "printer on 3rd floor broken");
    }

    #[test]
    fn normalize_folds_full_width_and_removes_tags_anywhere() {
        assert_eq!(normalize_subject("Ｈｅｌｌｏ　Ｗｏｒｌｄ"), "hello world");
        assert_eq!(normalize_subject("a [#1] b 【#2】 c ［＃３］"), "a b c");
        assert_eq!(normalize_subject("a [# 7 ] b"), "a b");
        assert_eq!(normalize_subject("[#[#1]2] x"), "x");
        // Not a ticket tag: no digits, or too many.
        assert_eq!(normalize_subject("x [#] y"), "x [#] y");
        assert_eq!(
            normalize_subject("x [#123456789012345678901] y"),
            "x [#123456789012345678901] y"
        );
    }

    #[test]
    fn normalize_keeps_a_lone_tag() {
        assert_eq!(normalize_subject("[xyz]"), "[xyz]");
        assert_eq!(normalize_subject("Re: [xyz]"), "[xyz]");
        assert_eq!(normalize_subject("[#5]"), "");
    }

    #[test]
    fn normalize_is_idempotent() {
        let cases = [
            "Re: [a] [b] Re: x (fwd)",
            "[#1] Re: [#2]",
            "[# [#1] 1] z",
            "[#    [#1] [#2] [#3] 4] z",
            "Ｒｅ：［ｌｉｓｔ］ ｘ",
            "  Re:   Re:  ",
            "ΣΑΣ Re: ΟΔΟΣ",
            "[a] (fwd)",
            "(fwd) [a] b",
            "Re: [f2fs-dev] 答复: [RFC PATCH] f2fs",
            "\u{212A}ELVIN re: x",
            "[[x]] y",
        ];
        for case in cases {
            let once = normalize_subject(case);
            assert_eq!(normalize_subject(&once), once, "{case:?}");
        }
    }

    #[test]
    fn ticket_tags_in_order_deduplicated() {
        assert_eq!(ticket_tags("Re: [#12] help [#3] [#12]"), vec![12, 3]);
        assert_eq!(
            ticket_tags("[# 7] 【#8】 ［＃９］ [ # 10 ]"),
            vec![7, 8, 9, 10]
        );
        assert_eq!(
            ticket_tags("[#0] [#99999999999999999999] [#abc] [#]"),
            Vec::<i64>::new()
        );
        assert_eq!(ticket_tags("[#9223372036854775807]"), vec![i64::MAX]);
        assert_eq!(ticket_tags("no tags"), Vec::<i64>::new());
        assert_eq!(ticket_tags("[#1"), Vec::<i64>::new());
    }

    #[test]
    fn rfc5256_base_subject_examples() {
        let cases = [
            ("a", "a"),
            ("[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)", "b"),
            ("Re: [FWD: c]", "c"),
            ("[xyz]", "[xyz]"),
            ("", ""),
            (" ", ""),
            ("RE: C", "C"),
            ("Ad: Re: Ad: Re: Ad: x", "Ad: Re: Ad: Re: Ad: x"),
            ("re: [fwd: [fwd: re: [fwd: babylon]]]", "babylon"),
            ("Re[2]: Subject", "Subject"),
            ("Re:RE:rE[3]: Subject", "Subject"),
            ("b (a)", "b (a)"),
            ("Re: 回复: x", "回复: x"),
            ("[a] Re:", ""),
            ("[Fwd: enc/signed test 1]", "enc/signed test 1"),
        ];
        for (input, expected) in cases {
            assert_eq!(rfc5256_base_subject(input), expected, "{input:?}");
        }
    }

    #[test]
    fn rfc5256_reply_flag() {
        assert!(!rfc5256_base_subject_ext("foo").1);
        assert!(!rfc5256_base_subject_ext("[list] foo").1);
        assert!(rfc5256_base_subject_ext("Re: foo").1);
        assert!(rfc5256_base_subject_ext("foo (fwd)").1);
        assert!(rfc5256_base_subject_ext("[fwd: foo]").1);
    }

    #[test]
    fn one_megabyte_subjects_do_not_blow_up() {
        let patterns = [
            "Re: ",
            "[a]",
            "[#1]",
            "[",
            "(fwd)",
            "[fwd:",
            "]",
            "回复：",
            "Re[1",
            "[#[#1",
            "x ",
            " ",
        ];
        for pattern in patterns {
            let big = pattern.repeat(1_000_000 / pattern.len());
            let _ = strip_reply_prefixes(&big);
            let _ = normalize_subject(&big);
            let _ = ticket_tags(&big);
            let _ = rfc5256_base_subject(&big);
        }
        // Mixed worst cases for the alternating loops.
        let mixed = format!("[{}{}", "a".repeat(500_000), "(fwd)".repeat(100_000));
        let _ = normalize_subject(&mixed);
        let _ = rfc5256_base_subject(&mixed);
        let nested = format!("{}x{}", "[fwd: ".repeat(100_000), "]".repeat(100_000));
        assert_eq!(rfc5256_base_subject(&nested), "x");
        let many_re = "Re: ".repeat(250_000) + "x";
        assert_eq!(strip_reply_prefixes(&many_re), ("x".into(), 250_000));
    }
}
