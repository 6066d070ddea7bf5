//! Recognises a satisfaction rating in a customer's reply to a resolved ticket: the new
//! text begins with a digit from 1 to 5.
//!
//! Pure and conservative, like courtesy replies: a rating keeps the ticket resolved, so a
//! reply that merely starts with a number ("3 of my orders are missing", "2.5 kg", "5:30")
//! must not be taken for one. The first line must be the digit alone, or the digit with
//! "/5", stars, "分"/"星" or punctuation, or the digit, a separator (`-`, `–`, `—`, `:`,
//! `,`) and a comment. Anything after the first line is a comment too. The resolution
//! mail asks for exactly that ("reply with just the number").

/// Longest new text that can still be a rating (a comment may follow the digit).
const MAX_CHARS: usize = 2_000;

/// A rating read from a reply: the score and the comment that came with it (may be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rating {
    pub score: i64,
    pub comment: String,
}

fn digit_value(c: char) -> Option<i64> {
    match c {
        '1'..='5' => Some(i64::from(c as u8 - b'0')),
        // Fullwidth digits, as CJK input methods type them.
        '１'..='５' => Some(i64::from(u32::from(c) - u32::from('０'))),
        _ => None,
    }
}

/// The rating in `new_text` (the reply with quoted history removed), if it is one.
pub fn rating(new_text: &str) -> Option<Rating> {
    if new_text.chars().count() > MAX_CHARS {
        return None;
    }
    let text = new_text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let first = first.trim();
    let mut chars = first.chars();
    let score = digit_value(chars.next()?)?;
    let after = chars.as_str().trim_start();
    // What may follow the digit on its line without words: "/5", stars, marks.
    let decorated = |s: &str| {
        let s = s
            .trim_start_matches("/5")
            .trim_start_matches("／５")
            .trim_start();
        let s = s
            .strip_prefix("stars")
            .or_else(|| s.strip_prefix("star"))
            .or_else(|| s.strip_prefix("分"))
            .or_else(|| s.strip_prefix("星"))
            .unwrap_or(s);
        s.chars().all(|c| {
            c.is_whitespace()
                || matches!(
                    c,
                    '!' | '.' | '。' | '！' | '★' | '☆' | '⭐' | '*' | ')' | '👍'
                )
        })
    };
    let line_comment = if after.is_empty() || decorated(after) {
        // "5", "5/5", "4 stars!", "5分"; but not "5.5" or "5/10".
        if after.starts_with(|c: char| c.is_ascii_digit())
            || after.starts_with("/") && !after.starts_with("/5")
            || after
                .strip_prefix('.')
                .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        {
            return None;
        }
        ""
    } else if let Some(comment) = after
        .strip_prefix(['-', '–', '—', ':', ',', '，', '：'])
        .map(str::trim)
    {
        // "4 - slow but fixed"; but not "5:30" or "1,000".
        if comment.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        comment
    } else {
        return None;
    };
    let mut comment = line_comment.to_string();
    let rest = rest.trim();
    if !rest.is_empty() {
        if !comment.is_empty() {
            comment.push('\n');
        }
        comment.push_str(rest);
    }
    Some(Rating { score, comment })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(s: &str) -> Option<i64> {
        rating(s).map(|r| r.score)
    }

    #[test]
    fn ratings_people_write() {
        assert_eq!(score("5"), Some(5));
        assert_eq!(score("  4\n"), Some(4));
        assert_eq!(score("5/5"), Some(5));
        assert_eq!(score("3 stars"), Some(3));
        assert_eq!(score("5!"), Some(5));
        assert_eq!(score("１"), Some(1), "fullwidth");
        assert_eq!(score("5分"), Some(5));
        assert_eq!(score("4 ★★★★"), Some(4));
        let r = rating("2 - took a week\nand two reminders").unwrap();
        assert_eq!(r.score, 2);
        assert_eq!(r.comment, "took a week\nand two reminders");
        let r = rating("5\n\nGreat, thanks Alice").unwrap();
        assert_eq!((r.score, r.comment.as_str()), (5, "Great, thanks Alice"));
        assert_eq!(rating("4：很好").unwrap().comment, "很好");
    }

    #[test]
    fn numbers_that_are_not_ratings() {
        for s in [
            "3 of my orders are missing",
            "2.5 kg arrived broken",
            "5:30 is when it failed",
            "1,000 euros were charged",
            "5/10",
            "12 items",
            "0",
            "6",
            "45",
            "",
            "Five",
            "I give it a 5",
            "4 thanks",
        ] {
            assert_eq!(score(s), None, "{s:?}");
        }
        assert_eq!(score(&format!("5\n{}", "x".repeat(3000))), None, "too long");
    }
}
