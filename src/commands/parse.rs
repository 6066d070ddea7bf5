//! Reply-by-email commands: turns the new text of an agent's reply (quoted history
//! already cut off by `channels::email::quote`) into commands, rejected lines and the body.
//!
//! Pure: no I/O, no clock, no knowledge of tickets or agents. Whether `alice` is an agent,
//! whether ticket 123 exists or whether a macro template is there is for the code that
//! applies the commands to decide; this module checks only what the text itself can show.
//!
//! The commands themselves (names, short forms, whether they repeat, how their arguments
//! are read) are rows of `commands::table`; this module owns the rules for lines and
//! blocks, and the did-you-mean suggestions over the table's names.
//!
//! # Rules
//!
//! - **Only the top.** Commands are lines at the top of the new text. Blank lines between
//!   them are allowed; the first non-blank line that is not a command line ends the
//!   command block, and everything from there on is the body. A `#` line after body text
//!   is text and is never executed; if it names a known command it is listed in
//!   [`ParsedReply::ignored`] so that the receipt can tell the agent.
//! - **What a command line is.** A line (trimmed) that starts with `#` or full-width `＃`
//!   directly followed by a letter. `# Heading` (a space after `#`), `#123` and `##` are
//!   body text, so a reply may start with a ticket reference or a markdown heading. Any
//!   other `#word` at the top is a command line: an unknown word is *rejected* ("unknown
//!   command #stauts; did you mean #status?") rather than passed to the customer, so
//!   a typo never leaks and the agent learns about it. Full-width ASCII (`＃ｃｌｏｓｅ`,
//!   the ideographic space) is folded to ASCII first.
//! - **Names** are case-insensitive (`#Close`, `#STATUS Pending`). A colon after the name
//!   is allowed (`#status: closed`).
//! - **Arguments**, separated by white space (and commas for `#tag`, `#invite`, `#cc`):
//!   - `#assign alice|@alice|me|none` (`nobody` and `unassigned` mean none too). Agent
//!     names are kept as typed; 1-64 letters, digits, `.`, `_`, `-`, `+`, `@`.
//!   - `#status open|pending|resolved|closed` and `#priority low|normal|high|urgent`,
//!     parsed with the domain enums' `FromStr`. `#close`, `#resolve`, `#reopen` are
//!     `#status closed|resolved|open` and take no argument.
//!   - `#tag billing +vip -spam`: `-` removes, `+` or nothing adds. Tags are lower-cased,
//!     1-32 letters (any script), digits, `_` or `-`, at most 20 per line; a tag both
//!     added and removed on one line rejects the line. Several `#tag` lines are fine.
//!   - `#note`: the reply becomes an internal note. Text after `#note` on the same line is
//!     the first line of the note (`#note called the customer`), and command lines may
//!     still follow it.
//!   - `#invite a@example.com` and `#cc a@example.com b@example.com`: one command per
//!     address. Addresses are plain ASCII `local@domain.tld` (angle brackets and
//!     `mailto:` are stripped; the domain is lower-cased); internationalised addresses
//!     are rejected.
//!   - `#merge 123` (also `#123`, `[#123]`): a positive ticket number.
//!   - `#macro refund-policy`: 1-64 of `a-z 0-9 _ -`, starting with a letter or digit, so
//!     it can never name a path outside the template directory.
//!   - `#undo`, `#help`, `#quiet`: no argument. `#release [N]`: a message number or none.
//! - **One line is all or nothing.** A line with any bad argument is rejected whole, with
//!   the reason; nothing on it is applied.
//! - **Repeats and conflicts.** Status (with its short forms), priority, assign, merge,
//!   note, undo, help and quiet may appear once: a second one is rejected ("#status
//!   already given on line 2; only the first is applied"), whether it agrees or not, so
//!   the agent's receipt shows exactly what happened and nothing depends on order. Tags,
//!   invites, cc and macros may repeat, but the same address or macro twice is rejected.
//!   Commands are otherwise applied in line order.
//! - **Limits.** At most [`MAX_COMMANDS`] command lines are looked at; the rest of the
//!   block is rejected with one reason and is not body text. `#note` is honoured even
//!   past the limit, because missing it would send an internal note to the customer.
//!   Command lines longer than [`MAX_COMMAND_LINE_CHARS`] are rejected. Lines echoed in
//!   [`ParsedReply`] are cut to [`MAX_ECHO_CHARS`] characters.
//! - Line numbers are 1-based and count lines of `new_text` (`\n` or `\r\n`).
//!
//! Parsing never fails and never panics: anything it cannot use is a rejected line or
//! body text.

use crate::commands::table;
use crate::domain::{Priority, Status, TicketId};

/// Command lines looked at per reply.
pub const MAX_COMMANDS: usize = 50;
/// Longest command line, in characters.
pub const MAX_COMMAND_LINE_CHARS: usize = 1000;
/// Longest line kept in [`ParsedReply`] entries, in characters.
pub const MAX_ECHO_CHARS: usize = 200;
/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 32;
/// Tags on one `#tag` line.
pub const MAX_TAGS_PER_LINE: usize = 20;
/// Longest macro name.
pub const MAX_MACRO_CHARS: usize = 64;
/// Longest agent name.
pub const MAX_AGENT_CHARS: usize = 64;
/// The longest handling report (`#report`), in characters.
pub const MAX_REPORT_CHARS: usize = 4000;
/// The longest topic, search or reason after `#kb`, in characters.
pub const MAX_KB_TEXT_CHARS: usize = 300;
/// Addresses on one `#invite` or `#cc` line.
pub const MAX_ADDRESSES_PER_LINE: usize = 10;

/// Who `#assign` gives the ticket to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AssignTarget {
    /// An agent by configured name, as typed (without a leading `@`).
    Agent(String),
    /// The agent who sent the reply.
    Me,
    /// Nobody: the ticket goes back to the team.
    Nobody,
}

/// One command, validated as far as the text allows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Command {
    Assign(AssignTarget),
    Status(Status),
    Priority(Priority),
    /// Tags to add and to remove, lower-cased, without duplicates.
    Tag {
        add: Vec<String>,
        remove: Vec<String>,
    },
    /// The reply is an internal note; nothing reaches the customer.
    Note,
    /// An internal collaborator's address.
    Invite(String),
    /// Another customer address to copy on the ticket.
    Cc(String),
    /// The ticket to merge this one into.
    Merge(TicketId),
    /// A canned response from the templates, by name.
    Macro(String),
    Undo,
    Help,
    Quiet,
    /// Act on a held message as if it had been accepted: the one a held notice is about
    /// (`None`, when replying to the notice), or the message with this number.
    Release(Option<i64>),
    /// Set the ticket's category by hand, lower-cased.
    Category(String),
    /// Re-route the ticket through this team's strategy, lower-cased as typed.
    Transfer(String),
    /// The handling report of the ticket's red alert: the text on the line, or (`None`)
    /// the reply's body, which then stays internal.
    Report(Option<String>),
    /// The agent takes no new tickets until `#back`.
    Away,
    Back,
    /// `#profile note|tier|lang ...`: a change to the ticket's customer.
    Profile(ProfileChange),
    /// `#feedback <text>`: the agent's pain point or idea, for the monthly report.
    Feedback(String),
    /// A knowledge-base command (`#kb propose`, `#kb approve 12`...).
    Kb(KbCommand),
    /// The bot or the classifier took the ticket for the wrong category: this is the
    /// right one, lower-cased.
    Wrong(String),
    /// The ticket's chat sender is the customer with this email address (an agent's
    /// verified word): the two profiles, and their histories, become one.
    Link(String),
    /// This reply goes to the customer on this channel, not the one they last wrote from.
    Via(crate::domain::Channel),
    /// `#problem N | send M | none`: grouping reports of one problem.
    Problem(ProblemCommand),
}

/// What `#problem` does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProblemCommand {
    /// This ticket is a report of the problem ticket N.
    Join(TicketId),
    /// On a problem ticket: agent answer M (a message number the receipt gives) goes to
    /// every linked report, each on its own channel.
    Send(i64),
    /// This ticket is no longer a report of its problem.
    Leave,
}

/// What `#kb` does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KbCommand {
    /// The reply's text becomes a draft article linked to the ticket.
    Propose,
    /// An admin publishes draft N.
    Approve(i64),
    /// An admin rejects (retires) draft N, saying why.
    Reject(i64, String),
    /// No article answered this: the topic is collected for the admins.
    Request(String),
    /// The top articles for these words come back in the receipt.
    Search(String),
}

/// What `#profile` changes on the ticket's customer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProfileChange {
    /// A note for whoever handles this customer next.
    Note(String),
    /// The tier, lower-cased (`vip`).
    Tier(String),
    /// The language, as `profile::language_code` spells it; detection no longer changes it.
    Lang(String),
}

impl Command {
    /// The command's name as typed after `#` (`#close` and friends are `status`).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Assign(_) => "assign",
            Command::Status(_) => "status",
            Command::Priority(_) => "priority",
            Command::Tag { .. } => "tag",
            Command::Note => "note",
            Command::Invite(_) => "invite",
            Command::Cc(_) => "cc",
            Command::Merge(_) => "merge",
            Command::Macro(_) => "macro",
            Command::Undo => "undo",
            Command::Help => "help",
            Command::Quiet => "quiet",
            Command::Release(_) => "release",
            Command::Category(_) => "category",
            Command::Transfer(_) => "transfer",
            Command::Report(_) => "report",
            Command::Away => "away",
            Command::Back => "back",
            Command::Profile(_) => "profile",
            Command::Feedback(_) => "feedback",
            Command::Kb(_) => "kb",
            Command::Wrong(_) => "wrong",
            Command::Link(_) => "link",
            Command::Via(_) => "via",
            Command::Problem(_) => "problem",
        }
    }
}

/// The new text of a reply, split into commands and body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedReply {
    /// Accepted commands in line order: (line number, the line as written, command).
    /// `#invite`/`#cc` with several addresses give one entry per address, same line.
    pub commands: Vec<(usize, String, Command)>,
    /// Rejected command lines: (line number, the line as written, reason).
    pub rejected: Vec<(usize, String, String)>,
    /// Lines below the command block that name a known command (`#close` after a
    /// greeting). They are body text and were not executed; listed so the receipt can
    /// say so.
    pub ignored: Vec<(usize, String)>,
    /// The text after the command block, trimmed, with `\n` line ends. For `#note`
    /// with text on its line, that text comes first.
    pub body: String,
}

impl ParsedReply {
    /// The reply is an internal note (`#note` was accepted).
    pub fn is_note(&self) -> bool {
        self.has(|c| *c == Command::Note)
    }

    /// A `#note` line that was not honoured (below the body's first line, or in a part
    /// commands are not read from): the agent meant something to stay internal, and the
    /// text cannot safely be relayed.
    pub fn has_unread_note(&self) -> bool {
        self.ignored
            .iter()
            .any(|(_, line)| command_line(line.trim()).is_some_and(|c| c.word == "note"))
            || self
                .rejected
                .iter()
                .any(|(_, line, _)| command_line(line.trim()).is_some_and(|c| c.word == "note"))
    }

    /// The agent asked for no receipt (`#quiet`); it still gets one when anything failed.
    pub fn is_quiet(&self) -> bool {
        self.has(|c| *c == Command::Quiet)
    }

    fn has(&self, f: impl Fn(&Command) -> bool) -> bool {
        self.commands.iter().any(|(_, _, c)| f(c))
    }
}

/// Why a command line was rejected. Its `Display` is the reason shown to the agent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("unknown command #{word}{}", did_you_mean(*.suggestion))]
    Unknown {
        word: String,
        suggestion: Option<&'static str>,
    },
    #[error("#{command} needs {expected}")]
    MissingArgument {
        command: &'static str,
        expected: &'static str,
    },
    #[error("#{command} takes no argument, but got {got:?}")]
    UnexpectedArgument { command: &'static str, got: String },
    #[error("#{command} takes one argument ({expected}), but got {count}")]
    TooManyArguments {
        command: &'static str,
        expected: &'static str,
        count: usize,
    },
    #[error("{value:?} is not a status; use open, pending, resolved or closed")]
    InvalidStatus { value: String },
    #[error("{value:?} is not a priority; use low, normal, high or urgent")]
    InvalidPriority { value: String },
    #[error("{value:?} is not an agent name; use a name, me or none")]
    InvalidAgent { value: String },
    #[error("{value:?} is not a valid email address")]
    InvalidEmail { value: String },
    #[error("{value:?} is not a channel; use email, telegram, matrix or json")]
    InvalidChannel { value: String },
    #[error("#{command} takes at most {max} addresses per line")]
    TooManyAddresses { command: &'static str, max: usize },
    #[error("{value:?} is not a ticket number; use a positive number like 123")]
    InvalidTicket { value: String },
    #[error("{value:?} is not a valid tag; use up to {MAX_TAG_CHARS} letters, digits, _ or -")]
    InvalidTag { value: String },
    #[error("tag {tag:?} is both added and removed")]
    TagConflict { tag: String },
    #[error("#tag takes at most {MAX_TAGS_PER_LINE} tags per line")]
    TooManyTags,
    #[error(
        "{value:?} is not a valid {what} name; use up to {MAX_TAG_CHARS} letters, digits, _ or -"
    )]
    InvalidName { what: &'static str, value: String },
    #[error("#report takes at most {MAX_REPORT_CHARS} characters")]
    ReportTooLong,
    #[error("#{command} takes at most {MAX_REPORT_CHARS} characters")]
    TextTooLong { command: &'static str },
    #[error("{value:?} is not a language code; use two or three letters like de or pt-BR")]
    InvalidLanguage { value: String },
    #[error("{value:?} is not a macro name; use up to {MAX_MACRO_CHARS} of a-z, 0-9, _ and -")]
    InvalidMacro { value: String },
    #[error(
        "#kb takes propose, approve N, reject N <reason>, request <topic> or search <words>{}",
        if .got.is_empty() { String::new() } else { format!(", but got {:?}", .got) }
    )]
    InvalidKb { got: String },
    #[error("#kb {what} takes at most {MAX_KB_TEXT_CHARS} characters")]
    KbTextTooLong { what: &'static str },
    #[error("#{command} already given on line {line}; only the first is applied")]
    Repeated { command: &'static str, line: usize },
    #[error("{what} already given on line {line}")]
    RepeatedValue { what: String, line: usize },
    #[error("line longer than {MAX_COMMAND_LINE_CHARS} characters")]
    LineTooLong,
    #[error("more than {MAX_COMMANDS} command lines; this and the following were ignored")]
    TooManyCommands,
}

fn did_you_mean(suggestion: Option<&'static str>) -> String {
    suggestion.map_or_else(String::new, |s| format!("; did you mean #{s}?"))
}

/// Splits the new text of an agent's reply into commands, rejected command lines and the
/// body, by the rules in the module documentation.
pub fn parse_reply(new_text: &str) -> ParsedReply {
    let mut out = ParsedReply::default();
    let text = new_text.strip_prefix('\u{FEFF}').unwrap_or(new_text);
    let lines: Vec<&str> = text.lines().collect();
    // (command name, line) of commands that may appear once.
    let mut singles: Vec<(&'static str, usize)> = Vec::new();
    // (value, line) of addresses and macros already given.
    let mut values: Vec<(String, usize)> = Vec::new();
    let mut command_lines = 0usize;
    let mut note_text: Option<(usize, String)> = None;
    let mut body_start = lines.len();

    for (index, raw) in lines.iter().enumerate() {
        let number = index + 1;
        // Invisible format characters (a right-to-left mark, a zero-width space) must not
        // turn a `#note` line into text that reaches the customer.
        let cleaned = crate::domain::strip_format_chars(raw);
        let t = cleaned.trim();
        if t.is_empty() {
            continue;
        }
        let Some(candidate) = command_line(t) else {
            body_start = index;
            break;
        };
        command_lines += 1;
        let echo = echo(t);
        if command_lines > MAX_COMMANDS {
            if command_lines == MAX_COMMANDS + 1 {
                out.rejected.push((
                    number,
                    echo.clone(),
                    CommandError::TooManyCommands.to_string(),
                ));
            }
            if candidate.word == "note" && !out.is_note() {
                out.commands.push((number, echo, Command::Note));
            }
            continue;
        }
        if t.chars().count() > MAX_COMMAND_LINE_CHARS {
            out.rejected
                .push((number, echo, CommandError::LineTooLong.to_string()));
            continue;
        }
        let parsed = parse_command(&candidate).and_then(|commands| {
            check_repeats(&commands, &singles, &values)?;
            Ok(commands)
        });
        match parsed {
            Ok(commands) => {
                for command in commands {
                    if command.is_single() {
                        singles.push((command.name(), number));
                    }
                    if let Some(key) = command.repeat_key() {
                        values.push((key, number));
                    }
                    if command == Command::Note && !candidate.rest.is_empty() {
                        note_text = Some((number, original_rest(t, &candidate)));
                    }
                    out.commands.push((number, echo.clone(), command));
                }
            }
            Err(e) => out.rejected.push((number, echo, e.to_string())),
        }
    }

    let rest = lines.get(body_start..).unwrap_or_default();
    for (offset, raw) in rest.iter().enumerate() {
        if out.ignored.len() >= MAX_COMMANDS {
            break;
        }
        let cleaned = crate::domain::strip_format_chars(raw);
        let t = cleaned.trim();
        if command_line(t).is_some_and(|c| table::find(&c.word).is_some()) {
            out.ignored.push((body_start + offset + 1, echo(t)));
        }
    }
    let body = rest.join("\n");
    let body = body.trim();
    out.body = match note_text {
        Some((line, note)) if !body.is_empty() => {
            // Keep the agent's paragraphing: a blank line (or other command lines)
            // between the `#note` line and the body becomes a paragraph break.
            let gap = if body_start == line { "\n" } else { "\n\n" };
            format!("{note}{gap}{body}")
        }
        Some((_, note)) => note,
        None => body.to_string(),
    };
    out
}

/// A line that has the shape of a command: `#` and a letter.
struct Candidate {
    /// Lower-cased name, full-width folded.
    word: String,
    /// Arguments after the name (and an optional colon), full-width folded, trimmed.
    rest: String,
    /// Characters of the line before `rest` starts.
    rest_at: usize,
}

fn command_line(t: &str) -> Option<Candidate> {
    let folded: Vec<char> = t.chars().map(fold_full_width).collect();
    let mut chars = folded.iter().copied().enumerate().peekable();
    if chars.next().map(|(_, c)| c) != Some('#') {
        return None;
    }
    if !chars.peek().is_some_and(|(_, c)| c.is_alphabetic()) {
        return None;
    }
    let mut word = String::new();
    let mut at = folded.len();
    for (i, c) in chars.by_ref() {
        if c.is_alphanumeric() || c == '_' || c == '-' {
            word.extend(c.to_lowercase());
        } else {
            at = i;
            break;
        }
    }
    // Skip white space and one colon between the name and the arguments.
    let mut rest_at = at;
    let mut colon = false;
    while let Some(&c) = folded.get(rest_at) {
        if c.is_whitespace() || (c == ':' && !colon) {
            colon |= c == ':';
            rest_at += 1;
        } else {
            break;
        }
    }
    let rest: String = folded.get(rest_at..).unwrap_or_default().iter().collect();
    Some(Candidate {
        word,
        rest: rest.trim().to_string(),
        rest_at,
    })
}

/// The arguments as the agent wrote them (not folded), for the text of a `#note`.
fn original_rest(t: &str, candidate: &Candidate) -> String {
    t.chars()
        .skip(candidate.rest_at)
        .collect::<String>()
        .trim()
        .to_string()
}

fn fold_full_width(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

pub(crate) fn echo(t: &str) -> String {
    if t.chars().count() <= MAX_ECHO_CHARS {
        t.to_string()
    } else {
        let mut s: String = t.chars().take(MAX_ECHO_CHARS).collect();
        s.push('…');
        s
    }
}

fn parse_command(c: &Candidate) -> Result<Vec<Command>, CommandError> {
    table::parse_args(&c.word, &c.rest).unwrap_or_else(|| {
        Err(CommandError::Unknown {
            word: c.word.chars().take(MAX_ECHO_CHARS).collect(),
            suggestion: suggest(&c.word),
        })
    })
}

fn check_repeats(
    commands: &[Command],
    singles: &[(&'static str, usize)],
    values: &[(String, usize)],
) -> Result<(), CommandError> {
    for command in commands {
        if command.is_single()
            && let Some((_, first)) = singles.iter().find(|(n, _)| *n == command.name())
        {
            return Err(CommandError::Repeated {
                command: command.name(),
                line: *first,
            });
        }
        if let Some(value) = command.repeat_key()
            && let Some((_, first)) = values.iter().find(|(v, _)| *v == value)
        {
            return Err(CommandError::RepeatedValue {
                what: value,
                line: *first,
            });
        }
    }
    Ok(())
}

/// The known command closest to a mistyped one: at most one edit for short words, two
/// for longer ones.
fn suggest(word: &str) -> Option<&'static str> {
    if word.chars().count() > 32 {
        return None;
    }
    let max = if word.chars().count() <= 4 { 1 } else { 2 };
    table::names()
        .map(|name| (edit_distance(word, name), name))
        .filter(|(d, _)| *d <= max)
        .min_by_key(|(d, _)| *d)
        .map(|(_, name)| name)
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions, the
/// commonest typo: "stauts").
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    let at = |i: usize, j: usize| i * width + j;
    for i in 0..=a.len() {
        if let Some(cell) = d.get_mut(at(i, 0)) {
            *cell = i;
        }
    }
    for j in 0..=b.len() {
        if let Some(cell) = d.get_mut(at(0, j)) {
            *cell = j;
        }
    }
    let get = |d: &[usize], i: usize, j: usize| d.get(at(i, j)).copied().unwrap_or(usize::MAX / 2);
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let (ai, bj) = (a.get(i - 1), b.get(j - 1));
            let cost = usize::from(ai != bj);
            let mut best = (get(&d, i - 1, j) + 1)
                .min(get(&d, i, j - 1) + 1)
                .min(get(&d, i - 1, j - 1) + cost);
            if i > 1 && j > 1 && ai == b.get(j - 2) && a.get(i - 2) == bj {
                best = best.min(get(&d, i - 2, j - 2) + 1);
            }
            if let Some(cell) = d.get_mut(at(i, j)) {
                *cell = best;
            }
        }
    }
    get(&d, a.len(), b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(text: &str) -> Command {
        let p = parse_reply(text);
        assert!(p.rejected.is_empty(), "{text:?}: {:?}", p.rejected);
        assert_eq!(p.commands.len(), 1, "{text:?}: {:?}", p.commands);
        p.commands.into_iter().next().unwrap().2
    }

    fn reason(text: &str) -> String {
        let p = parse_reply(text);
        assert!(p.commands.is_empty(), "{text:?}: {:?}", p.commands);
        assert_eq!(p.rejected.len(), 1, "{text:?}: {:?}", p.rejected);
        p.rejected.into_iter().next().unwrap().2
    }

    #[test]
    fn profile_and_feedback() {
        assert_eq!(
            only("#profile note prefers phone callback"),
            Command::Profile(ProfileChange::Note("prefers phone callback".into()))
        );
        assert_eq!(
            only("#profile tier VIP"),
            Command::Profile(ProfileChange::Tier("vip".into()))
        );
        assert_eq!(
            only("#profile lang ZH"),
            Command::Profile(ProfileChange::Lang("zh".into()))
        );
        assert_eq!(
            only("#feedback the macro list is too long"),
            Command::Feedback("the macro list is too long".into())
        );
        // Two notes are two commands; a second tier is refused as a repeat.
        let p = parse_reply(
            "#profile note one\n#profile note two\n#profile tier vip\n#profile tier gold",
        );
        assert_eq!(p.commands.len(), 3, "{:?}", p.commands);
        assert_eq!(p.rejected.len(), 1, "{:?}", p.rejected);
        for bad in [
            "#profile",
            "#profile note",
            "#profile colour blue",
            "#profile tier gold plus",
            "#profile lang english",
            "#feedback",
        ] {
            let why = reason(bad);
            assert!(!why.is_empty(), "{bad}");
        }
        assert!(reason("#profile lang english").contains("not a language code"));
        // A command line's own limit comes first.
        let long = format!("#feedback {}", "x".repeat(MAX_REPORT_CHARS + 1));
        assert!(reason(&long).contains("longer than"));
    }

    #[test]
    fn every_command() {
        use AssignTarget::*;
        let cases: Vec<(&str, Command)> = vec![
            ("#assign alice", Command::Assign(Agent("alice".into()))),
            ("#assign @alice", Command::Assign(Agent("alice".into()))),
            (
                "#assign alice.smith@example.com",
                Command::Assign(Agent("alice.smith@example.com".into())),
            ),
            ("#assign me", Command::Assign(Me)),
            ("#assign ME", Command::Assign(Me)),
            ("#assign none", Command::Assign(Nobody)),
            ("#assign nobody", Command::Assign(Nobody)),
            ("#status open", Command::Status(Status::Open)),
            ("#status pending", Command::Status(Status::Pending)),
            ("#status resolved", Command::Status(Status::Resolved)),
            ("#status closed", Command::Status(Status::Closed)),
            ("#close", Command::Status(Status::Closed)),
            ("#resolve", Command::Status(Status::Resolved)),
            ("#reopen", Command::Status(Status::Open)),
            ("#priority low", Command::Priority(Priority::Low)),
            ("#priority normal", Command::Priority(Priority::Normal)),
            ("#priority high", Command::Priority(Priority::High)),
            ("#priority urgent", Command::Priority(Priority::Urgent)),
            (
                "#tag billing",
                Command::Tag {
                    add: vec!["billing".into()],
                    remove: vec![],
                },
            ),
            (
                "#tag billing -spam +VIP",
                Command::Tag {
                    add: vec!["billing".into(), "vip".into()],
                    remove: vec!["spam".into()],
                },
            ),
            (
                "#tag billing, refund billing",
                Command::Tag {
                    add: vec!["billing".into(), "refund".into()],
                    remove: vec![],
                },
            ),
            (
                "#tag 发票 -垃圾",
                Command::Tag {
                    add: vec!["发票".into()],
                    remove: vec!["垃圾".into()],
                },
            ),
            (
                "#tag -spam",
                Command::Tag {
                    add: vec![],
                    remove: vec!["spam".into()],
                },
            ),
            ("#note", Command::Note),
            (
                "#invite bob@example.com",
                Command::Invite("bob@example.com".into()),
            ),
            (
                "#invite <Bob@Example.COM>",
                Command::Invite("Bob@example.com".into()),
            ),
            (
                "#cc customer2@example.com",
                Command::Cc("customer2@example.com".into()),
            ),
            (
                "#cc mailto:c.d+x@mail.example.co.uk",
                Command::Cc("c.d+x@mail.example.co.uk".into()),
            ),
            ("#merge 123", Command::Merge(123)),
            (
                "#link Ann@Customer.ORG",
                Command::Link("Ann@customer.org".into()),
            ),
            (
                "#via Telegram",
                Command::Via(crate::domain::Channel::Telegram),
            ),
            ("#via email", Command::Via(crate::domain::Channel::Email)),
            ("#problem 12", Command::Problem(ProblemCommand::Join(12))),
            ("#problem #12", Command::Problem(ProblemCommand::Join(12))),
            (
                "#problem SEND 345",
                Command::Problem(ProblemCommand::Send(345)),
            ),
            ("#problem none", Command::Problem(ProblemCommand::Leave)),
            ("#merge #123", Command::Merge(123)),
            ("#merge [#123]", Command::Merge(123)),
            (
                "#macro refund-policy",
                Command::Macro("refund-policy".into()),
            ),
            (
                "#macro Refund_Policy2",
                Command::Macro("refund_policy2".into()),
            ),
            ("#undo", Command::Undo),
            ("#help", Command::Help),
            ("#quiet", Command::Quiet),
        ];
        for (text, expected) in cases {
            assert_eq!(only(text), expected, "{text}");
        }
    }

    #[test]
    fn names_are_case_insensitive_full_width_and_may_take_a_colon() {
        assert_eq!(only("#CLOSE"), Command::Status(Status::Closed));
        assert_eq!(only("#Status Pending"), Command::Status(Status::Pending));
        assert_eq!(only("＃close"), Command::Status(Status::Closed));
        assert_eq!(
            only("＃ｓｔａｔｕｓ\u{3000}ｃｌｏｓｅｄ"),
            Command::Status(Status::Closed)
        );
        assert_eq!(only("＃priority：high"), Command::Priority(Priority::High));
        assert_eq!(only("#status: closed"), Command::Status(Status::Closed));
        assert_eq!(only("   #close   "), Command::Status(Status::Closed));
        assert_eq!(only("\u{FEFF}#close"), Command::Status(Status::Closed));
    }

    #[test]
    fn several_commands_with_blank_lines_then_the_body() {
        let p = parse_reply(
            "#assign alice\n\n#status pending\n#tag billing\n\nHello Mr. Novak,\n\nsee below.\n",
        );
        let lines: Vec<usize> = p.commands.iter().map(|(l, _, _)| *l).collect();
        assert_eq!(lines, [1, 3, 4]);
        assert_eq!(p.commands[1].1, "#status pending");
        assert_eq!(p.body, "Hello Mr. Novak,\n\nsee below.");
        assert!(p.rejected.is_empty() && p.ignored.is_empty());
    }

    #[test]
    fn the_first_text_line_ends_the_block_and_later_commands_are_only_listed() {
        let p = parse_reply("#close\nHi,\n#status open\n#hashtag\nbye");
        assert_eq!(p.commands.len(), 1);
        assert_eq!(p.body, "Hi,\n#status open\n#hashtag\nbye");
        // Known names below the block are listed, unknown #words are not.
        assert_eq!(p.ignored, vec![(3, "#status open".to_string())]);
        assert!(!parse_reply("Hi\n#note\nsecret").is_note());
    }

    #[test]
    fn headings_ticket_numbers_and_lone_hashes_are_body_text() {
        for text in [
            "# Heading\n#close",
            "#123 is a duplicate",
            "## Steps",
            "#",
            "#!/bin/sh",
            "＃ 标题",
        ] {
            let p = parse_reply(text);
            assert!(
                p.commands.is_empty() && p.rejected.is_empty(),
                "{text:?}: {p:?}"
            );
            assert_eq!(p.body, text.trim(), "{text:?}");
        }
    }

    #[test]
    fn chinese_body_after_commands() {
        let p =
            parse_reply("#resolve\n#tag 退款\n\n您好，\n\n退款已经处理，预计三个工作日内到账。\n");
        assert_eq!(p.commands.len(), 2);
        assert_eq!(p.body, "您好，\n\n退款已经处理，预计三个工作日内到账。");
    }

    #[test]
    fn crlf_text() {
        let p = parse_reply("#close\r\n#priority high\r\n\r\nHello,\r\nline two\r\n");
        assert_eq!(p.commands.len(), 2);
        assert_eq!(p.commands[1].1, "#priority high");
        assert_eq!(p.body, "Hello,\nline two");
    }

    #[test]
    fn a_reply_of_commands_only_has_an_empty_body() {
        let p = parse_reply("#assign me\n#close\n\n");
        assert_eq!(p.commands.len(), 2);
        assert_eq!(p.body, "");
        assert_eq!(parse_reply("").body, "");
        assert_eq!(parse_reply("").commands.len(), 0);
    }

    #[test]
    fn note_with_body() {
        let p = parse_reply("#note\n\nCustomer called, wants a call back tomorrow.");
        assert!(p.is_note());
        assert_eq!(p.body, "Customer called, wants a call back tomorrow.");
        // Text on the #note line starts the note; commands may still follow it.
        let p =
            parse_reply("#note called the customer\n#status pending\n\nShe will check the logs.");
        assert!(p.is_note());
        assert_eq!(p.commands[1].2, Command::Status(Status::Pending));
        assert_eq!(p.body, "called the customer\n\nShe will check the logs.");
        let p = parse_reply("#note: 客户来电：明天回电\n需要跟进");
        assert_eq!(p.body, "客户来电：明天回电\n需要跟进");
        let p = parse_reply("#note only this");
        assert_eq!(p.body, "only this");
    }

    #[test]
    fn several_addresses_give_one_command_each() {
        let p = parse_reply("#cc a@example.com, b@example.com a@example.com");
        let got: Vec<&Command> = p.commands.iter().map(|(_, _, c)| c).collect();
        assert_eq!(
            got,
            [
                &Command::Cc("a@example.com".into()),
                &Command::Cc("b@example.com".into())
            ]
        );
        assert!(p.commands.iter().all(|(l, _, _)| *l == 1));
    }

    #[test]
    fn quiet_and_note_helpers() {
        let p = parse_reply("#quiet\n#close");
        assert!(p.is_quiet() && !p.is_note());
    }

    #[test]
    fn every_rejection_reason() {
        let cases = [
            (
                "#stauts closed",
                "unknown command #stauts; did you mean #status?",
            ),
            ("#clsoe", "unknown command #clsoe; did you mean #close?"),
            (
                "#asign bob",
                "unknown command #asign; did you mean #assign?",
            ),
            ("#frobnicate", "unknown command #frobnicate"),
            ("#hashtag in text", "unknown command #hashtag"),
            ("#assign", "#assign needs a name, me or none"),
            ("#status", "#status needs open, pending, resolved or closed"),
            ("#priority", "#priority needs low, normal, high or urgent"),
            ("#merge", "#merge needs a ticket number"),
            ("#macro", "#macro needs a macro name"),
            ("#tag", "#tag needs at least one tag, e.g. billing or -spam"),
            ("#invite", "#invite needs an email address"),
            ("#cc", "#cc needs an email address"),
            ("#close now", "#close takes no argument, but got \"now\""),
            ("#resolve it", "#resolve takes no argument, but got \"it\""),
            (
                "#reopen please",
                "#reopen takes no argument, but got \"please\"",
            ),
            ("#undo x", "#undo takes no argument, but got \"x\""),
            ("#help me", "#help takes no argument, but got \"me\""),
            (
                "#quiet please",
                "#quiet takes no argument, but got \"please\"",
            ),
            (
                "#assign alice bob",
                "#assign takes one argument (a name, me or none), but got 2",
            ),
            (
                "#status closed now",
                "#status takes one argument (open, pending, resolved or closed), but got 2",
            ),
            (
                "#status done",
                "\"done\" is not a status; use open, pending, resolved or closed",
            ),
            (
                "#priority asap",
                "\"asap\" is not a priority; use low, normal, high or urgent",
            ),
            (
                "#assign a/b",
                "\"a/b\" is not an agent name; use a name, me or none",
            ),
            (
                "#assign @",
                "\"@\" is not an agent name; use a name, me or none",
            ),
            ("#invite bob", "\"bob\" is not a valid email address"),
            (
                "#invite bob@localhost",
                "\"bob@localhost\" is not a valid email address",
            ),
            (
                "#invite bob@@example.com",
                "\"bob@@example.com\" is not a valid email address",
            ),
            (
                "#cc a..b@example.com",
                "\"a..b@example.com\" is not a valid email address",
            ),
            (
                "#cc a@-example.com",
                "\"a@-example.com\" is not a valid email address",
            ),
            (
                "#cc 张三@例子.中国",
                "\"张三@例子.中国\" is not a valid email address",
            ),
            ("#cc a@example.com b", "\"b\" is not a valid email address"),
            (
                "#merge 0",
                "\"0\" is not a ticket number; use a positive number like 123",
            ),
            (
                "#merge -5",
                "\"-5\" is not a ticket number; use a positive number like 123",
            ),
            (
                "#merge +5",
                "\"+5\" is not a ticket number; use a positive number like 123",
            ),
            (
                "#merge abc",
                "\"abc\" is not a ticket number; use a positive number like 123",
            ),
            (
                "#problem send",
                "\"send\" is not a ticket number; use a positive number like 123",
            ),
            (
                "#problem send x",
                "\"x\" is not a ticket number; use a positive number like 123",
            ),
            (
                "#problem",
                "#problem needs a ticket number, send <answer number> or none",
            ),
            (
                "#merge 99999999999999999999",
                "\"99999999999999999999\" is not a ticket number; use a positive number like 123",
            ),
            (
                "#tag bill!ng",
                "\"bill!ng\" is not a valid tag; use up to 32 letters, digits, _ or -",
            ),
            (
                "#tag --spam",
                "\"--spam\" is not a valid tag; use up to 32 letters, digits, _ or -",
            ),
            (
                "#tag -",
                "\"-\" is not a valid tag; use up to 32 letters, digits, _ or -",
            ),
            (
                "#tag billing -billing",
                "tag \"billing\" is both added and removed",
            ),
            (
                "#macro ../../etc/passwd",
                "\"../../etc/passwd\" is not a macro name; use up to 64 of a-z, 0-9, _ and -",
            ),
            (
                "#macro -x",
                "\"-x\" is not a macro name; use up to 64 of a-z, 0-9, _ and -",
            ),
            (
                "#macro 退款",
                "\"退款\" is not a macro name; use up to 64 of a-z, 0-9, _ and -",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(reason(text), expected, "{text}");
        }
        let long_tag = format!("#tag {}", "a".repeat(MAX_TAG_CHARS + 1));
        assert!(reason(&long_tag).contains("is not a valid tag"));
        let many_tags = format!(
            "#tag {}",
            (0..=MAX_TAGS_PER_LINE)
                .map(|i| format!("t{i}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        assert_eq!(reason(&many_tags), "#tag takes at most 20 tags per line");
        let many_cc = format!(
            "#cc {}",
            (0..=MAX_ADDRESSES_PER_LINE)
                .map(|i| format!("c{i}@example.com"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        assert_eq!(reason(&many_cc), "#cc takes at most 10 addresses per line");
        let long_line = format!("#tag {}", "a ".repeat(MAX_COMMAND_LINE_CHARS));
        assert_eq!(reason(&long_line), "line longer than 1000 characters");
        let long_macro = format!("#macro {}", "m".repeat(MAX_MACRO_CHARS + 1));
        assert!(reason(&long_macro).contains("is not a macro name"));
        let long_agent = format!("#assign {}", "n".repeat(MAX_AGENT_CHARS + 1));
        assert!(reason(&long_agent).contains("is not an agent name"));
    }

    #[test]
    fn rejected_lines_do_not_end_the_block_or_reach_the_body() {
        let p = parse_reply("#stauts closed\n#close\n\nHello");
        assert_eq!(
            p.rejected,
            vec![(
                1,
                "#stauts closed".into(),
                "unknown command #stauts; did you mean #status?".into()
            )]
        );
        assert_eq!(
            p.commands,
            vec![(2, "#close".into(), Command::Status(Status::Closed))]
        );
        assert_eq!(p.body, "Hello");
    }

    #[test]
    fn repeats_and_conflicts_keep_the_first() {
        let p = parse_reply(
            "#status pending\n#close\n#priority high\n#priority high\n#assign me\n#assign bob",
        );
        assert_eq!(p.commands.len(), 3);
        let reasons: Vec<&str> = p.rejected.iter().map(|(_, _, r)| r.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "#status already given on line 1; only the first is applied",
                "#priority already given on line 3; only the first is applied",
                "#assign already given on line 5; only the first is applied",
            ]
        );
        for single in ["#note", "#undo", "#help", "#quiet", "#merge 4"] {
            let p = parse_reply(&format!("{single}\n{single}"));
            assert_eq!(p.commands.len(), 1, "{single}");
            assert_eq!(p.rejected.len(), 1, "{single}");
        }
        let p = parse_reply(
            "#cc a@example.com\n#invite b@example.com\n#cc a@example.com\n#macro x\n#macro y\n#macro x\n#tag a\n#tag b",
        );
        assert_eq!(p.commands.len(), 6);
        let reasons: Vec<&str> = p.rejected.iter().map(|(_, _, r)| r.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "a@example.com already given on line 1",
                "#macro x already given on line 4"
            ]
        );
    }

    #[test]
    fn at_most_fifty_command_lines_and_note_is_never_lost() {
        let mut text = "#tag a\n".repeat(MAX_COMMANDS);
        text.push_str("#close\n#frob\n#note\n\nInternal text");
        let p = parse_reply(&text);
        assert_eq!(p.commands.len(), MAX_COMMANDS + 1);
        assert!(p.is_note());
        assert_eq!(p.rejected.len(), 1);
        assert_eq!(p.rejected[0].0, MAX_COMMANDS + 1);
        assert_eq!(
            p.rejected[0].2,
            "more than 50 command lines; this and the following were ignored"
        );
        assert_eq!(p.body, "Internal text");
    }

    #[test]
    fn echoed_lines_are_cut() {
        let text = format!("#frob {}", "x".repeat(5000));
        let p = parse_reply(&text);
        assert_eq!(p.rejected[0].1.chars().count(), MAX_ECHO_CHARS + 1);
    }

    #[test]
    fn the_command_samples_after_quote_stripping() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/replies");
        let body = std::fs::read_to_string(dir.join("14-agent-commands-gmail.txt")).unwrap();
        let p = parse_reply(crate::channels::email::quote::new_text(&body));
        let commands: Vec<&Command> = p.commands.iter().map(|(_, _, c)| c).collect();
        // The quoted "#status closed" of the customer is not a command.
        assert_eq!(
            commands,
            [
                &Command::Assign(AssignTarget::Agent("alice".into())),
                &Command::Status(Status::Pending)
            ]
        );
        assert!(p.body.starts_with("Hello Mr. Novak,") && p.body.ends_with("Bob"));
        let body = std::fs::read_to_string(dir.join("22-android-forwarded.txt")).unwrap();
        let p = parse_reply(crate::channels::email::quote::new_text(&body));
        assert!(p.is_note());
        assert_eq!(p.commands.len(), 1, "the forwarded #close is not a command");
    }

    #[test]
    fn edit_distance_counts_transpositions_once() {
        assert_eq!(edit_distance("stauts", "status"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("close", "close"), 0);
        assert_eq!(suggest("zzzzzzzz"), None);
    }

    #[test]
    fn random_and_huge_input_never_panics() {
        const PIECES: &[&str] = &[
            "#",
            "＃",
            "\n",
            "\r\n",
            " ",
            "\u{3000}",
            ":",
            "：",
            "assign",
            "status",
            "close",
            "tag",
            "note",
            "cc",
            "merge",
            "macro",
            "-",
            "+",
            "@",
            "example.com",
            "[#",
            "]",
            "9",
            "99999999999999999999",
            "me",
            "none",
            "closed",
            "high",
            "退款",
            "é",
            "İ",
            "ǅ",
            "\u{FEFF}",
            "\u{10FFFF}",
            ",",
            "<",
            ">",
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..5000 {
            let len = (next() % 40) as usize;
            let text: String = (0..len)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            let p = parse_reply(&text);
            let n = text.lines().count();
            assert!(
                p.commands.iter().all(|(l, _, _)| (1..=n).contains(l)),
                "{text:?}"
            );
            assert!(
                p.rejected.iter().all(|(l, _, _)| (1..=n).contains(l)),
                "{text:?}"
            );
            assert!(p.commands.len() <= MAX_COMMANDS * MAX_ADDRESSES_PER_LINE + 1);
            assert!(p.rejected.len() <= MAX_COMMANDS + 1);
        }
        let huge = "#tag a b c\n".repeat(200_000);
        let p = parse_reply(&huge);
        assert_eq!(p.commands.len(), MAX_COMMANDS);
        assert_eq!(p.rejected.len(), 1);
        let huge = format!("#close\nhi\n{}", "#close\n".repeat(200_000));
        assert_eq!(parse_reply(&huge).ignored.len(), MAX_COMMANDS);
        let _ = parse_reply(&"#".repeat(1_000_000));
        let _ = parse_reply(&format!("#{}", "a".repeat(1_000_000)));
    }

    #[test]
    fn an_invisible_character_before_a_command_does_not_make_it_text() {
        for mark in ['\u{200F}', '\u{200B}', '\u{FEFF}', '\u{2066}', '\u{00AD}'] {
            let r = parse_reply(&format!("{mark}#note\nsecret"));
            assert!(r.is_note(), "{mark:?}: {r:?}");
            assert_eq!(r.body, "secret");
        }
        // Below the text it is not a command, and it is noticed.
        let r = parse_reply("Hello\n\u{200F}#note\nsecret");
        assert!(!r.is_note());
        assert!(r.has_unread_note(), "{r:?}");
    }
}
