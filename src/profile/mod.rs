//! Customer profiles and agents' feedback (issue 14): the pure parts. What a piece of
//! `#feedback` is about ([`feedback_theme`]), what a language code and a tier may look
//! like, and the plan prompt a notification shows for a tier with a `plan-<tier>` macro.
//!
//! Pure: no I/O. The profile itself is built from history by `store::profiles`; the
//! monthly report that groups feedback by theme is `profile::report`.

pub mod report;

/// Product features agents' feedback is often about, in the order they are tried: the
/// first one named in the text gives the theme `feature:<name>`. Each has the words that
/// name it (lower case, matched as whole words).
pub const FEATURES: &[(&str, &[&str])] = &[
    (
        "bot",
        &["bot", "bots", "chatbot", "answer bot", "auto-answer"],
    ),
    ("template", &["template", "templates"]),
    ("macro", &["macro", "macros", "canned"]),
    (
        "notification",
        &[
            "notification",
            "notifications",
            "notify",
            "notice",
            "notices",
        ],
    ),
    ("search", &["search", "searching"]),
    (
        "kb",
        &["kb", "knowledge base", "article", "articles", "faq"],
    ),
    ("sla", &["sla", "slas", "deadline", "due time"]),
    ("digest", &["digest", "digests"]),
    ("dashboard", &["dashboard", "dashboards"]),
];

/// The theme of an agent's feedback, for grouping in the monthly report:
/// - a command named in the text (`#assign`, or a known command name after `#`):
///   `command:assign`;
/// - else a category of the configured rules named in the text (whole word, any case):
///   `category:<name>`;
/// - else a feature word ([`FEATURES`]): `feature:<name>`;
/// - else `other`.
pub fn feedback_theme(text: &str, categories: &[String]) -> String {
    let lower = text.to_lowercase();
    for (i, _) in lower.match_indices('#') {
        let word: String = lower
            .get(i + 1..)
            .unwrap_or_default()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if let Some((spec, _)) = crate::commands::table::find(&word) {
            return format!("command:{}", spec.name);
        }
    }
    let words = word_list(&lower);
    for c in categories {
        let c = c.to_lowercase();
        if !c.is_empty() && has_phrase(&words, &c) {
            return format!("category:{c}");
        }
    }
    for (feature, names) in FEATURES {
        if names.iter().any(|n| has_phrase(&words, n)) {
            return format!("feature:{feature}");
        }
    }
    "other".to_string()
}

/// The text's words: letters, digits, `-` and `_`, lower case already.
fn word_list(lower: &str) -> Vec<&str> {
    lower
        .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_'))
        .filter(|w| !w.is_empty())
        .collect()
}

/// Whether the words contain `phrase` (one or more words) in a row.
fn has_phrase(words: &[&str], phrase: &str) -> bool {
    let wanted: Vec<&str> = phrase.split_whitespace().collect();
    !wanted.is_empty() && words.windows(wanted.len()).any(|w| w == wanted.as_slice())
}

/// A language code as `#profile lang` and the import accept: ISO 639-1 or -3 letters,
/// optionally with a region or script (`pt-BR`, `zh-Hant`). Returned lower-cased in the
/// first part, as detection writes them (`de`, `zh`).
pub fn language_code(value: &str) -> Option<String> {
    let (primary, rest) = match value.split_once(['-', '_']) {
        Some((p, r)) => (p, Some(r)),
        None => (value, None),
    };
    let primary_ok =
        (2..=3).contains(&primary.len()) && primary.chars().all(|c| c.is_ascii_alphabetic());
    let rest_ok = rest
        .is_none_or(|r| (2..=8).contains(&r.len()) && r.chars().all(|c| c.is_ascii_alphanumeric()));
    (primary_ok && rest_ok).then(|| match rest {
        Some(r) => format!("{}-{r}", primary.to_ascii_lowercase()),
        None => primary.to_ascii_lowercase(),
    })
}

/// A phone number in international form, as profiles store and compare it: `+` and 7-15
/// digits (E.164). Spaces, dashes, dots and parentheses are dropped; `00` and `+` lead
/// alike, and a number of digits alone is taken as international (Telegram gives it so).
/// A national number (`0151 ...`) names no country and is refused.
pub fn phone_number(value: &str) -> Option<String> {
    let v = value.trim();
    let (plus, rest) = match v.strip_prefix('+') {
        Some(r) => (true, r),
        None => (false, v),
    };
    let mut digits = String::new();
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' | '\u{a0}' => {}
            _ => return None,
        }
    }
    let digits = match digits.strip_prefix("00") {
        Some(d) if !plus => d.to_string(),
        _ if !plus && digits.starts_with('0') => return None,
        _ => digits,
    };
    ((7..=15).contains(&digits.len()) && !digits.starts_with('0')).then(|| format!("+{digits}"))
}

/// A tier name: 1-32 letters, digits, `_` or `-`, starting with a letter or digit;
/// lower-cased (rules compare tiers in any case).
pub fn tier_name(value: &str) -> Option<String> {
    let valid = value.chars().count() <= 32
        && value.chars().next().is_some_and(char::is_alphanumeric)
        && value
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    valid.then(|| value.to_lowercase())
}

/// The line an agent notification shows for a customer whose tier has a dedicated
/// service plan, i.e. a macro named `plan-<tier>`: "VIP customer: offer the dedicated
/// service plan with #macro plan-vip". `None` for the standard tier or without the macro.
pub fn plan_prompt(tier: &str, macro_exists: impl Fn(&str) -> bool) -> Option<String> {
    let tier = tier.trim().to_lowercase();
    if tier.is_empty() || tier == "standard" {
        return None;
    }
    let name = format!("plan-{tier}");
    macro_exists(&name).then(|| {
        format!(
            "{} customer: offer the dedicated service plan with #macro {name}",
            tier.to_uppercase()
        )
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn phone_numbers_compare_in_international_form() {
        use super::phone_number;
        assert_eq!(
            phone_number("+49 151 1234-5678").as_deref(),
            Some("+4915112345678")
        );
        assert_eq!(
            phone_number("4915112345678").as_deref(),
            Some("+4915112345678")
        );
        assert_eq!(
            phone_number("0049 (151) 12345678").as_deref(),
            Some("+4915112345678")
        );
        assert_eq!(phone_number("0151 12345678"), None, "national: no country");
        assert_eq!(phone_number("+49 151 abc"), None);
        assert_eq!(phone_number("+123"), None);
        assert_eq!(phone_number("+1234567890123456"), None, "over 15 digits");
        assert_eq!(phone_number(""), None);
    }

    use super::*;

    fn cats() -> Vec<String> {
        vec!["refund".into(), "shipping".into()]
    }

    #[test]
    fn a_named_command_comes_first_then_a_category_then_a_feature() {
        assert_eq!(
            feedback_theme("#assign should take a team too; refund macro", &cats()),
            "command:assign"
        );
        // A short form counts as its command.
        assert_eq!(
            feedback_theme("I wish #close asked first", &cats()),
            "command:status"
        );
        assert_eq!(
            feedback_theme("Refund tickets need the order number macro", &cats()),
            "category:refund"
        );
        assert_eq!(
            feedback_theme("the macro list is too long", &cats()),
            "feature:macro"
        );
        assert_eq!(feedback_theme("The BOT answered badly", &[]), "feature:bot");
        assert_eq!(
            feedback_theme("knowledge base is hard to use", &[]),
            "feature:kb"
        );
        assert_eq!(feedback_theme("coffee machine broken", &cats()), "other");
        // Whole words only: "robot" is not the bot, "#123" and "# x" are no command.
        assert_eq!(feedback_theme("a robot #123 # x", &[]), "other");
        // An unknown #word is no command; the rest of the text still counts.
        assert_eq!(
            feedback_theme("#foo the digest is late", &[]),
            "feature:digest"
        );
    }

    #[test]
    fn language_codes_and_tiers() {
        assert_eq!(language_code("DE").as_deref(), Some("de"));
        assert_eq!(language_code("pt-BR").as_deref(), Some("pt-BR"));
        assert_eq!(language_code("zho").as_deref(), Some("zho"));
        for bad in ["", "d", "german", "de-", "1e", "de/x"] {
            assert_eq!(language_code(bad), None, "{bad}");
        }
        assert_eq!(tier_name("VIP").as_deref(), Some("vip"));
        assert_eq!(tier_name("gold_plus").as_deref(), Some("gold_plus"));
        assert_eq!(tier_name("-x"), None);
        assert_eq!(tier_name("a b"), None);
    }

    #[test]
    fn the_plan_prompt_needs_a_plan_macro_of_the_tier() {
        let exists = |n: &str| n == "plan-vip";
        assert_eq!(
            plan_prompt("VIP", exists).as_deref(),
            Some("VIP customer: offer the dedicated service plan with #macro plan-vip")
        );
        assert_eq!(plan_prompt("gold", exists), None);
        assert_eq!(plan_prompt("standard", |_| true), None);
    }
}
