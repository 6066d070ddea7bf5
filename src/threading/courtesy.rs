//! Recognises courtesy replies: a short "thanks" / "got it" that closes a conversation and
//! must not reopen a solved ticket.
//!
//! Pure and conservative: the caller passes only the new text of a reply (quoted history
//! already removed) and gets `true` only when every word is gratitude, acknowledgement,
//! greeting or sign-off vocabulary. Anything else (a question mark, a "but", a number, a
//! sentence we do not know) means a human should look, so the answer is `false`. A false
//! negative costs an agent a glance; a false positive would bury a customer's problem.

/// What a vocabulary entry contributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Gratitude or acknowledgement: at least one is needed.
    Core,
    /// Greeting; may be followed by the addressee's name.
    Greeting,
    /// Allowed around the core words but says nothing on its own.
    Filler,
}

/// Space-separated vocabulary, lower case, longest phrases tried first.
const WORDS: &[(&str, Kind)] = &[
    // English gratitude.
    ("thanks", Kind::Core),
    ("thank you", Kind::Core),
    ("thankyou", Kind::Core),
    ("thank u", Kind::Core),
    ("thx", Kind::Core),
    ("thnx", Kind::Core),
    ("thanx", Kind::Core),
    ("tnx", Kind::Core),
    ("tks", Kind::Core),
    ("ty", Kind::Core),
    ("tyvm", Kind::Core),
    ("ta", Kind::Core),
    ("cheers", Kind::Core),
    ("appreciated", Kind::Core),
    ("appreciate it", Kind::Core),
    ("i appreciate it", Kind::Core),
    // English acknowledgement.
    ("ok", Kind::Core),
    ("okay", Kind::Core),
    ("okey", Kind::Core),
    ("k", Kind::Core),
    ("kk", Kind::Core),
    ("got it", Kind::Core),
    ("noted", Kind::Core),
    ("understood", Kind::Core),
    ("received", Kind::Core),
    ("will do", Kind::Core),
    ("great", Kind::Core),
    ("perfect", Kind::Core),
    ("awesome", Kind::Core),
    ("excellent", Kind::Core),
    ("brilliant", Kind::Core),
    ("cool", Kind::Core),
    ("nice", Kind::Core),
    ("wonderful", Kind::Core),
    ("fantastic", Kind::Core),
    ("sounds good", Kind::Core),
    ("all good", Kind::Core),
    ("all sorted", Kind::Core),
    ("that works", Kind::Core),
    ("that worked", Kind::Core),
    ("that helped", Kind::Core),
    ("that fixed it", Kind::Core),
    ("it works", Kind::Core),
    ("it worked", Kind::Core),
    ("works now", Kind::Core),
    ("it works now", Kind::Core),
    ("problem solved", Kind::Core),
    // Other languages.
    ("danke", Kind::Core),
    ("dankeschön", Kind::Core),
    ("danke schön", Kind::Core),
    ("vielen dank", Kind::Core),
    ("besten dank", Kind::Core),
    ("alles klar", Kind::Core),
    ("super", Kind::Core),
    ("prima", Kind::Core),
    ("perfekt", Kind::Core),
    ("merci", Kind::Core),
    ("merci beaucoup", Kind::Core),
    ("parfait", Kind::Core),
    ("gracias", Kind::Core),
    ("muchas gracias", Kind::Core),
    ("perfecto", Kind::Core),
    ("vale", Kind::Core),
    ("grazie", Kind::Core),
    ("grazie mille", Kind::Core),
    ("perfetto", Kind::Core),
    ("obrigado", Kind::Core),
    ("obrigada", Kind::Core),
    ("tack", Kind::Core),
    ("tack så mycket", Kind::Core),
    ("tusen tack", Kind::Core),
    ("takk", Kind::Core),
    ("tusen takk", Kind::Core),
    ("tak", Kind::Core),
    ("mange tak", Kind::Core),
    ("kiitos", Kind::Core),
    ("bedankt", Kind::Core),
    ("dank je", Kind::Core),
    ("dank u", Kind::Core),
    ("dziękuję", Kind::Core),
    ("dzięki", Kind::Core),
    ("спасибо", Kind::Core),
    ("teşekkürler", Kind::Core),
    // Greetings.
    ("hi", Kind::Greeting),
    ("hello", Kind::Greeting),
    ("hey", Kind::Greeting),
    ("dear", Kind::Greeting),
    ("hallo", Kind::Greeting),
    ("hej", Kind::Greeting),
    ("bonjour", Kind::Greeting),
    ("hola", Kind::Greeting),
    ("ciao", Kind::Greeting),
    // Fillers and sign-offs.
    ("so", Kind::Filler),
    ("very", Kind::Filler),
    ("much", Kind::Filler),
    ("a lot", Kind::Filler),
    ("lots", Kind::Filler),
    ("many", Kind::Filler),
    ("again", Kind::Filler),
    ("you", Kind::Filler),
    ("u", Kind::Filler),
    ("for", Kind::Filler),
    ("the", Kind::Filler),
    ("your", Kind::Filler),
    ("all", Kind::Filler),
    ("guys", Kind::Filler),
    ("team", Kind::Filler),
    ("everyone", Kind::Filler),
    ("both", Kind::Filler),
    ("really", Kind::Filler),
    ("kindly", Kind::Filler),
    ("and", Kind::Filler),
    ("quick", Kind::Filler),
    ("fast", Kind::Filler),
    ("prompt", Kind::Filler),
    ("reply", Kind::Filler),
    ("response", Kind::Filler),
    ("help", Kind::Filler),
    ("support", Kind::Filler),
    ("assistance", Kind::Filler),
    ("info", Kind::Filler),
    ("information", Kind::Filler),
    ("update", Kind::Filler),
    ("oh", Kind::Filler),
    ("ah", Kind::Filler),
    ("have a nice day", Kind::Filler),
    ("have a good day", Kind::Filler),
    ("have a great day", Kind::Filler),
    ("have a nice weekend", Kind::Filler),
    ("have a good weekend", Kind::Filler),
    ("regards", Kind::Filler),
    ("best", Kind::Filler),
    ("best regards", Kind::Filler),
    ("kind regards", Kind::Filler),
    ("warm regards", Kind::Filler),
    ("br", Kind::Filler),
    ("sincerely", Kind::Filler),
    ("best wishes", Kind::Filler),
    ("sehr", Kind::Filler),
    ("nochmals", Kind::Filler),
    ("für", Kind::Filler),
    ("die", Kind::Filler),
    ("hilfe", Kind::Filler),
    ("schnelle", Kind::Filler),
    ("mfg", Kind::Filler),
    ("lg", Kind::Filler),
    ("vg", Kind::Filler),
    ("gruß", Kind::Filler),
    ("grüße", Kind::Filler),
    ("viele grüße", Kind::Filler),
    ("beaucoup", Kind::Filler),
    ("encore", Kind::Filler),
    ("pour", Kind::Filler),
    ("votre", Kind::Filler),
    ("aide", Kind::Filler),
    ("cordialement", Kind::Filler),
    ("por", Kind::Filler),
    ("tu", Kind::Filler),
    ("su", Kind::Filler),
    ("ayuda", Kind::Filler),
    ("saludos", Kind::Filler),
    ("för", Kind::Filler),
    ("hjälpen", Kind::Filler),
    ("mvh", Kind::Filler),
    ("hilsen", Kind::Filler),
];

/// Vocabulary for scripts written without spaces (Chinese, Japanese; Korean too), matched
/// greedily inside a run of text, longest first.
const CJK_PHRASES: &[(&str, Kind)] = &[
    ("谢谢", Kind::Core),
    ("谢谢你", Kind::Core),
    ("谢谢您", Kind::Core),
    ("谢了", Kind::Core),
    ("谢啦", Kind::Core),
    ("多谢", Kind::Core),
    ("感谢", Kind::Core),
    ("感谢你", Kind::Core),
    ("感谢您", Kind::Core),
    ("非常感谢", Kind::Core),
    ("十分感谢", Kind::Core),
    ("辛苦了", Kind::Core),
    ("好的", Kind::Core),
    ("好滴", Kind::Core),
    ("好", Kind::Core),
    ("收到", Kind::Core),
    ("收到了", Kind::Core),
    ("了解", Kind::Core),
    ("明白", Kind::Core),
    ("明白了", Kind::Core),
    ("知道了", Kind::Core),
    ("謝謝", Kind::Core),
    ("謝謝你", Kind::Core),
    ("謝謝您", Kind::Core),
    ("多謝", Kind::Core),
    ("感謝", Kind::Core),
    ("非常感謝", Kind::Core),
    ("ありがとう", Kind::Core),
    ("ありがとうございます", Kind::Core),
    ("ありがとうございました", Kind::Core),
    ("どうもありがとう", Kind::Core),
    ("どうも", Kind::Core),
    ("了解です", Kind::Core),
    ("了解しました", Kind::Core),
    ("承知しました", Kind::Core),
    ("承知いたしました", Kind::Core),
    ("かしこまりました", Kind::Core),
    ("助かりました", Kind::Core),
    ("감사합니다", Kind::Core),
    ("고맙습니다", Kind::Core),
    ("감사해요", Kind::Core),
    ("고마워요", Kind::Core),
    ("알겠습니다", Kind::Core),
    ("啊", Kind::Filler),
    ("了", Kind::Filler),
    ("哈", Kind::Filler),
    ("呀", Kind::Filler),
    ("啦", Kind::Filler),
    ("嗯", Kind::Filler),
    ("哦", Kind::Filler),
    ("噢", Kind::Filler),
    ("喔", Kind::Filler),
    ("的", Kind::Filler),
    ("你的", Kind::Filler),
    ("您的", Kind::Filler),
    ("大家", Kind::Filler),
    ("非常", Kind::Filler),
    ("真的", Kind::Filler),
    ("帮助", Kind::Filler),
    ("帮忙", Kind::Filler),
    ("幫助", Kind::Filler),
    ("幫忙", Kind::Filler),
    ("回复", Kind::Filler),
    ("支持", Kind::Filler),
    ("本当に", Kind::Filler),
    ("です", Kind::Filler),
    ("ね", Kind::Filler),
    ("정말", Kind::Filler),
    ("네", Kind::Filler),
];

/// Emoji that say "thanks" or "ok" on their own.
const POSITIVE_EMOJI: &[char] = &[
    '👍', '🙏', '👌', '😊', '🙂', '😀', '😃', '😄', '❤', '✅', '🎉', '💯',
];

/// More substance than this (in characters, whitespace collapsed) is not a courtesy reply.
const MAX_SUBSTANCE_CHARS: usize = 60;

/// Greeting, thanks and a sign-off may each take a line ("Hi Anna," / "Thanks!" /
/// "Best regards,"); more lines than that is a message.
const MAX_LINES: usize = 4;

/// Names after "thanks"/"hi" ("Thanks Anna Maria!") that are not in the vocabulary.
const MAX_NAME_WORDS: usize = 2;

/// True when `new_text` (the reply without its quoted history) only thanks or
/// acknowledges: "Thanks!", "ok thanks", "got it 👍", "谢谢！", "好的，谢谢",
/// "Thanks,\nBob". False on a question mark, on any word outside the vocabulary, or when
/// the text is longer than a couple of short lines.
pub fn is_courtesy_reply(new_text: &str) -> bool {
    if new_text.contains(['?', '？', '¿', '؟']) {
        return false;
    }
    let mut lines: Vec<&str> = Vec::new();
    for line in new_text.lines().map(str::trim) {
        // RFC 3676 signature separator "-- " (trimmed) and common variants end the text.
        if line == "--" || line == "__" || line == "—" {
            break;
        }
        if line.is_empty() || is_mobile_footer(line) {
            continue;
        }
        lines.push(line);
    }
    if lines.len() >= 2 && lines.last().is_some_and(|l| looks_like_name_line(l)) {
        lines.pop();
    }
    if lines.is_empty() || lines.len() > MAX_LINES {
        return false;
    }
    let substance: usize = lines.iter().map(|l| l.chars().count()).sum();
    if substance > MAX_SUBSTANCE_CHARS {
        return false;
    }
    let joined = lines.join("\n");
    let Some(tokens) = tokenize(&joined) else {
        return false;
    };
    if tokens.is_empty() {
        return joined.chars().any(|c| POSITIVE_EMOJI.contains(&c));
    }
    matches_vocabulary(&tokens)
}

/// One word of the reply.
#[derive(Debug)]
struct Token {
    /// Lower-cased; for CJK text, the vocabulary phrase that matched.
    text: String,
    /// Known CJK phrase kind (already matched during tokenizing).
    cjk_kind: Option<Kind>,
    /// Started with an upper-case letter in the original (a name, perhaps).
    capitalized: bool,
    /// Only letters (and `.`/`-`/`'` inside).
    alphabetic: bool,
    /// A sentence end or a line break comes before it.
    after_stop: bool,
}

/// Splits the text into tokens. Runs of CJK text are cut into known phrases right away;
/// `None` when such a run contains anything unknown.
fn tokenize(text: &str) -> Option<Vec<Token>> {
    let chars: Vec<char> = text.chars().map(fold_full_width).collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let mut after_stop = false;
    while let Some(&c) = chars.get(i) {
        if is_cjk(c) {
            let rest = chars.get(i..).unwrap_or_default();
            let (len, kind) = longest_cjk_phrase(rest)?;
            let text: String = rest.iter().take(len).collect();
            tokens.push(Token {
                text,
                cjk_kind: Some(kind),
                capitalized: false,
                alphabetic: false,
                after_stop,
            });
            after_stop = false;
            i += len;
        } else if c.is_alphanumeric() {
            let start = i;
            // Letters, and `'` `-` `.` between letters ("doesn't", "e-mail", "J.R").
            let is_word_char = |c: char| !is_cjk(c) && c.is_alphanumeric();
            while let Some(&c) = chars.get(i) {
                let inner =
                    is_inner_word_char(c) && chars.get(i + 1).is_some_and(|&n| is_word_char(n));
                if !(is_word_char(c) || inner) {
                    break;
                }
                i += 1;
            }
            let word: String = chars.get(start..i).unwrap_or_default().iter().collect();
            tokens.push(Token {
                text: word.to_lowercase().replace('’', "'"),
                cjk_kind: None,
                capitalized: c.is_uppercase(),
                alphabetic: word
                    .chars()
                    .all(|c| c.is_alphabetic() || is_inner_word_char(c)),
                after_stop,
            });
            after_stop = false;
        } else {
            if matches!(c, '.' | '!' | '\n' | '。' | '！' | ';') {
                after_stop = true;
            }
            i += 1;
        }
    }
    Some(tokens)
}

/// Every token must be vocabulary (or a name right after a greeting or thanks), and at
/// least one must be gratitude or acknowledgement.
fn matches_vocabulary(tokens: &[Token]) -> bool {
    let mut i = 0;
    let mut saw_core = false;
    let mut names = 0;
    let mut previous: Option<Kind> = None;
    let mut previous_was_name = false;
    while let Some(token) = tokens.get(i) {
        if let Some(kind) = token.cjk_kind {
            saw_core |= kind == Kind::Core;
            previous = Some(kind);
            previous_was_name = false;
            i += 1;
            continue;
        }
        if let Some((len, kind)) = longest_word_phrase(tokens.get(i..).unwrap_or_default()) {
            saw_core |= kind == Kind::Core;
            previous = Some(kind);
            previous_was_name = false;
            i += len;
            continue;
        }
        let follows_address = previous_was_name
            || (!token.after_stop && matches!(previous, Some(Kind::Core | Kind::Greeting)));
        if token.capitalized && token.alphabetic && follows_address && names < MAX_NAME_WORDS {
            names += 1;
            previous_was_name = true;
            i += 1;
            continue;
        }
        return false;
    }
    saw_core
}

fn longest_word_phrase(tokens: &[Token]) -> Option<(usize, Kind)> {
    let mut best = None;
    let mut phrase = String::new();
    for (n, token) in tokens.iter().take(4).enumerate() {
        if token.cjk_kind.is_some() {
            break;
        }
        if n > 0 {
            phrase.push(' ');
        }
        phrase.push_str(&token.text);
        if let Some((_, kind)) = WORDS.iter().find(|(w, _)| *w == phrase) {
            best = Some((n + 1, *kind));
        }
    }
    best
}

fn longest_cjk_phrase(chars: &[char]) -> Option<(usize, Kind)> {
    CJK_PHRASES
        .iter()
        .filter(|(phrase, _)| {
            let mut it = chars.iter();
            phrase.chars().all(|p| it.next() == Some(&p))
        })
        .map(|(phrase, kind)| (phrase.chars().count(), *kind))
        .max_by_key(|(len, _)| *len)
}

fn is_inner_word_char(c: char) -> bool {
    matches!(c, '\'' | '’' | '-' | '.')
}

/// Chinese, Japanese and Korean letters: matched as phrases, not space-separated words.
fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30FF}'   // Hiragana, Katakana
        | '\u{3400}'..='\u{4DBF}' // CJK Extension A
        | '\u{4E00}'..='\u{9FFF}' // CJK Unified Ideographs
        | '\u{F900}'..='\u{FAFF}' // CJK Compatibility Ideographs
        | '\u{1100}'..='\u{11FF}' // Hangul Jamo
        | '\u{3130}'..='\u{318F}' // Hangul Compatibility Jamo
        | '\u{AC00}'..='\u{D7AF}' // Hangul Syllables
    )
}

fn fold_full_width(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// "Sent from my iPhone" and friends, which phones append below a one-word answer.
fn is_mobile_footer(line: &str) -> bool {
    let lower = line.to_lowercase();
    [
        "sent from my ",
        "get outlook for ",
        "发自我的",
        "从我的",
        "發自我的",
    ]
    .iter()
    .any(|p| lower.starts_with(p))
        || lower.ends_with("から送信")
}

/// A last line that is a signature name: "Bob", "- Anna Smith", "李明". At most three
/// words, no digits or addresses; several words must all be capitalized (so "but broken"
/// is not a name), and a CJK name must not contain the usual words of a complaint.
fn looks_like_name_line(line: &str) -> bool {
    let name = line
        .trim_start_matches(['-', '–', '—', '~', ' '])
        .trim_end_matches(['.', ',', '!', ' ']);
    if name.is_empty() || name.chars().count() > 40 {
        return false;
    }
    if name
        .chars()
        .any(|c| c.is_ascii_digit() || c == '@' || c == ':')
    {
        return false;
    }
    if name.chars().any(is_cjk) {
        const COMPLAINT: &[char] = &[
            '不', '没', '沒', '还', '還', '但', '仍', '错', '錯', '问', '問', '无', '無', '坏',
            '壞',
        ];
        return name.chars().count() <= 4
            && name.chars().all(is_cjk)
            && !name.chars().any(|c| COMPLAINT.contains(&c));
    }
    let words: Vec<&str> = name.split_whitespace().collect();
    let is_word = |w: &&str| {
        w.chars()
            .all(|c| c.is_alphabetic() || is_inner_word_char(c))
    };
    match words.as_slice() {
        [only] => is_word(only) && only.chars().count() <= 20,
        several if several.len() <= 3 => several
            .iter()
            .all(|w| is_word(w) && w.chars().next().is_some_and(char::is_uppercase)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thanks_in_many_forms() {
        for text in [
            "thanks",
            "Thanks!",
            "Thank you!",
            "thank you very much",
            "Thank you so much for your help!",
            "thx",
            "ty",
            "Many thanks.",
            "ok thanks",
            "OK, thanks!!",
            "got it",
            "Got it, thanks 👍",
            "great, thanks",
            "Great, thanks!",
            "cheers",
            "Thanks again for the quick response.",
            "That worked, thanks!",
            "  \n\nthanks\n\n",
            "Danke!",
            "Vielen Dank für die schnelle Hilfe!",
            "tack så mycket",
            "merci beaucoup",
            "gracias",
            "Muchas gracias!",
            "ok",
            "👍",
            "🙏🙏",
        ] {
            assert!(
                is_courtesy_reply(text),
                "{text:?} should be a courtesy reply"
            );
        }
    }

    #[test]
    fn cjk_thanks() {
        for text in [
            "谢谢",
            "谢谢！",
            "多谢",
            "感谢",
            "好的，谢谢",
            "好的谢谢",
            "收到",
            "收到，谢谢！",
            "謝謝",
            "ありがとう",
            "ありがとうございます！",
            "非常感谢你的帮助",
            "감사합니다",
            "ＯＫ，谢谢",
        ] {
            assert!(
                is_courtesy_reply(text),
                "{text:?} should be a courtesy reply"
            );
        }
    }

    #[test]
    fn thanks_with_signature_or_name() {
        for text in [
            "Thanks,\nBob",
            "Thanks,\n\nBob Smith",
            "Thanks Anna!",
            "Hi Anna,\nthanks a lot!\nBest regards,\nBob",
            "thanks\n-- \nBob Smith\nACME Corp, +1 555 0100, bob@example.com",
            "Thanks!\n\nSent from my iPhone",
            "谢谢！\n李明",
            "Thanks\n- bob",
        ] {
            assert!(
                is_courtesy_reply(text),
                "{text:?} should be a courtesy reply"
            );
        }
    }

    #[test]
    fn substantive_replies_are_not_courtesy() {
        for text in [
            "Thanks, but it still doesn't work",
            "thanks, but it still doesn't work",
            "谢谢，但是还是不行",
            "谢谢\n还是不行",
            "thanks?",
            "Thanks! Can you also reset my password",
            "谢谢？",
            "Thanks\nbut broken",
            "Thanks. Broken.",
            "Thanks, the printer on floor 3 is still offline",
            "Thanks, I have another question about invoice 12345",
            "Hello",
            "",
            "   ",
            "no thanks",
            "Thanks. Also my VPN is down",
            "Danke, Problem besteht weiterhin",
            "thanks thanks thanks thanks thanks thanks thanks thanks thanks thanks thanks",
            "Thanks\nI restarted it\nstill broken",
            "好的，明天再联系",
            "收到，但是附件打不开",
        ] {
            assert!(
                !is_courtesy_reply(text),
                "{text:?} should not be a courtesy reply"
            );
        }
    }

    #[test]
    fn huge_input_is_cheap_and_not_courtesy() {
        assert!(!is_courtesy_reply(&"thanks ".repeat(200_000)));
        assert!(!is_courtesy_reply(&"谢谢\n".repeat(200_000)));
    }
}
