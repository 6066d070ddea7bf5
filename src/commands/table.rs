//! The command table: every reply-by-email command is one row of [`COMMANDS`], giving its
//! name, its short forms, its argument syntax and help text, whether it may repeat in one
//! reply, and the function that reads its arguments.
//!
//! Everything else reads the table: `commands::parse` finds names, short forms, repeat
//! rules and did-you-mean suggestions here; [`cheat_sheet`] (in notifications and in
//! reply to `#help`) is rendered from it; receipts and the command log name a command by
//! [`Command::canonical`], which is spelt by its row. Adding a command is one row here
//! plus its meaning in `commands::plan`.
//!
//! Pure: no I/O. The argument readers check only what the text shows (an address is
//! well-formed, a ticket number is positive); whether the agent or ticket exists is for
//! `commands::plan` to decide.

use std::str::FromStr;
use std::sync::OnceLock;

use crate::commands::parse::{
    AssignTarget, Command, CommandError, KbCommand, MAX_ADDRESSES_PER_LINE, MAX_AGENT_CHARS,
    MAX_KB_TEXT_CHARS, MAX_REPORT_CHARS, MAX_TAG_CHARS, MAX_TAGS_PER_LINE, ProblemCommand,
    ProfileChange, echo,
};
use crate::domain::{Priority, Status, TicketId};

/// Reads a command's arguments (the text after the name, trimmed, full-width folded).
/// One line may give several commands (`#cc a@example.com b@example.com`).
pub type ParseArgs = fn(&str) -> Result<Vec<Command>, CommandError>;

/// One command.
pub struct CommandSpec {
    /// The name after `#`, lower case; also what [`Command::name`] returns.
    pub name: &'static str,
    /// Short forms that take no argument and stand for this command with fixed ones.
    pub aliases: &'static [Alias],
    /// The argument syntax for the cheat sheet (`open | pending | resolved | closed`);
    /// empty for a command without arguments.
    pub args: &'static str,
    /// Arguments of a working example, tested to parse; empty when there are none.
    pub example: &'static str,
    /// One line of what it does, for the cheat sheet.
    pub help: &'static str,
    pub repeat: Repeat,
    pub parse: ParseArgs,
}

/// `#close` is `#status closed`.
pub struct Alias {
    pub name: &'static str,
    /// The arguments it stands for, read by the command's own [`CommandSpec::parse`].
    pub args: &'static str,
}

/// How often a command may appear in one reply.
#[derive(Clone, Copy)]
pub enum Repeat {
    /// Once: a second line is rejected whether it agrees or not, so nothing depends on
    /// order and the receipt shows exactly what happened.
    Once,
    /// On any number of lines.
    Many,
    /// On any number of lines, but the same value (its key) only once. Commands whose
    /// keys can be equal share one key space (an address is `#cc`'d or `#invite`d once).
    Distinct(fn(&Command) -> Option<String>),
}

/// Every command, in the order of the cheat sheet.
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "assign",
        aliases: &[],
        args: "alice | me | none",
        example: "alice",
        help: "who handles the ticket (none: nobody)",
        repeat: Repeat::Once,
        parse: |rest| {
            let value = one_arg("assign", "a name, me or none", &words(rest))?;
            Ok(vec![Command::Assign(assign_target(value)?)])
        },
    },
    CommandSpec {
        name: "status",
        aliases: &[
            Alias {
                name: "close",
                args: "closed",
            },
            Alias {
                name: "resolve",
                args: "resolved",
            },
            Alias {
                name: "reopen",
                args: "open",
            },
        ],
        args: "open | pending | resolved | closed",
        example: "pending",
        help: "set the status",
        repeat: Repeat::Once,
        parse: |rest| {
            let value = one_arg("status", "open, pending, resolved or closed", &words(rest))?;
            let status = Status::from_str(value).map_err(|_| CommandError::InvalidStatus {
                value: value.to_string(),
            })?;
            Ok(vec![Command::Status(status)])
        },
    },
    CommandSpec {
        name: "priority",
        aliases: &[],
        args: "low | normal | high | urgent",
        example: "high",
        help: "set the priority",
        repeat: Repeat::Once,
        parse: |rest| {
            let value = one_arg("priority", "low, normal, high or urgent", &words(rest))?;
            let priority =
                Priority::from_str(value).map_err(|_| CommandError::InvalidPriority {
                    value: value.to_string(),
                })?;
            Ok(vec![Command::Priority(priority)])
        },
    },
    CommandSpec {
        name: "tag",
        aliases: &[],
        args: "billing -spam",
        example: "billing -spam",
        help: "add tags; a - in front removes one",
        repeat: Repeat::Many,
        parse: |rest| Ok(vec![tags(rest)?]),
    },
    CommandSpec {
        name: "note",
        aliases: &[],
        args: "",
        example: "",
        help: "the whole reply stays internal",
        repeat: Repeat::Once,
        // Text after `#note` starts the note; `commands::parse` keeps it for the body.
        parse: |_| Ok(vec![Command::Note]),
    },
    CommandSpec {
        name: "invite",
        aliases: &[],
        args: "bob@example.com",
        example: "bob@example.com",
        help: "add a colleague, who sees internal notes",
        repeat: Repeat::Distinct(address_key),
        parse: |rest| addresses("invite", rest, Command::Invite),
    },
    CommandSpec {
        name: "cc",
        aliases: &[],
        args: "customer2@example.com",
        example: "customer2@example.com",
        help: "copy another customer address",
        repeat: Repeat::Distinct(address_key),
        parse: |rest| addresses("cc", rest, Command::Cc),
    },
    CommandSpec {
        name: "merge",
        aliases: &[],
        args: "123",
        example: "123",
        help: "merge this ticket into #123",
        repeat: Repeat::Once,
        parse: |rest| {
            let value = one_arg("merge", "a ticket number", &words(rest))?;
            Ok(vec![Command::Merge(ticket(value)?)])
        },
    },
    CommandSpec {
        name: "macro",
        aliases: &[],
        args: "refund-policy",
        example: "refund-policy",
        help: "insert a canned response",
        repeat: Repeat::Distinct(|c| match c {
            Command::Macro(m) => Some(format!("#macro {m}")),
            _ => None,
        }),
        parse: |rest| {
            let value = one_arg("macro", "a macro name", &words(rest))?;
            Ok(vec![Command::Macro(macro_name(value)?)])
        },
    },
    CommandSpec {
        name: "undo",
        aliases: &[],
        args: "",
        example: "",
        help: "revert your last commands on this ticket",
        repeat: Repeat::Once,
        parse: |rest| no_args("undo", rest, Command::Undo),
    },
    CommandSpec {
        name: "quiet",
        aliases: &[],
        args: "",
        example: "",
        help: "no receipt when everything worked",
        repeat: Repeat::Once,
        parse: |rest| no_args("quiet", rest, Command::Quiet),
    },
    CommandSpec {
        name: "help",
        aliases: &[],
        args: "",
        example: "",
        help: "this list",
        repeat: Repeat::Once,
        parse: |rest| no_args("help", rest, Command::Help),
    },
    CommandSpec {
        name: "release",
        aliases: &[],
        args: "[N]",
        example: "",
        help: "act on a held message (reply to its notice)",
        repeat: Repeat::Once,
        parse: |rest| match words(rest).as_slice() {
            [] => Ok(vec![Command::Release(None)]),
            more => {
                let expected = "a message number, or nothing in reply to a held notice";
                let value = one_arg("release", expected, more)?;
                Ok(vec![Command::Release(Some(ticket(value)?))])
            }
        },
    },
    CommandSpec {
        name: "category",
        aliases: &[],
        args: "refund",
        example: "refund",
        help: "set the category by hand",
        repeat: Repeat::Once,
        parse: |rest| {
            let value = one_arg("category", "a category name", &words(rest))?;
            Ok(vec![Command::Category(name("category", value)?)])
        },
    },
    CommandSpec {
        name: "transfer",
        aliases: &[],
        args: "billing",
        example: "billing",
        help: "hand the ticket to a team, which routes it",
        repeat: Repeat::Once,
        parse: |rest| {
            let value = one_arg("transfer", "a team name", &words(rest))?;
            Ok(vec![Command::Transfer(name("team", value)?)])
        },
    },
    CommandSpec {
        name: "report",
        aliases: &[],
        args: "[text]",
        example: "called the customer, account locked",
        help: "handling report of a red alert",
        repeat: Repeat::Once,
        parse: |rest| {
            if rest.chars().count() > MAX_REPORT_CHARS {
                return Err(CommandError::ReportTooLong);
            }
            Ok(vec![Command::Report(
                (!rest.is_empty()).then(|| rest.to_string()),
            )])
        },
    },
    CommandSpec {
        name: "away",
        aliases: &[],
        args: "",
        example: "",
        help: "take no new tickets until #back",
        repeat: Repeat::Once,
        parse: |rest| no_args("away", rest, Command::Away),
    },
    CommandSpec {
        name: "back",
        aliases: &[],
        args: "",
        example: "",
        help: "take new tickets again",
        repeat: Repeat::Once,
        parse: |rest| no_args("back", rest, Command::Back),
    },
    CommandSpec {
        name: "profile",
        aliases: &[],
        args: "note <text> | tier <tier> | lang <code>",
        example: "tier vip",
        help: "the customer's note, tier or language",
        repeat: Repeat::Distinct(|c| match c {
            Command::Profile(ProfileChange::Note(t)) => Some(format!("#profile note {t}")),
            Command::Profile(ProfileChange::Tier(_)) => Some("#profile tier".into()),
            Command::Profile(ProfileChange::Lang(_)) => Some("#profile lang".into()),
            _ => None,
        }),
        parse: |rest| Ok(vec![Command::Profile(profile(rest)?)]),
    },
    CommandSpec {
        name: "link",
        aliases: &[],
        args: "customer@example.com",
        example: "ann@example.com",
        help: "this chat sender is that customer",
        repeat: Repeat::Once,
        parse: |rest| {
            let value = one_arg("link", "the customer's email address", &words(rest))?;
            Ok(vec![Command::Link(email(value)?)])
        },
    },
    CommandSpec {
        name: "via",
        aliases: &[],
        args: "email | telegram | matrix | json",
        example: "email",
        help: "send this reply on that channel",
        repeat: Repeat::Once,
        parse: |rest| {
            let value = one_arg("via", "email, telegram, matrix or json", &words(rest))?;
            let channel = crate::domain::Channel::from_str(&value.to_ascii_lowercase())
                .map_err(|_| CommandError::InvalidChannel { value: echo(value) })?;
            Ok(vec![Command::Via(channel)])
        },
    },
    CommandSpec {
        name: "problem",
        aliases: &[],
        args: "N | send M | none",
        example: "12",
        help: "group under problem N; send answer M to all",
        repeat: Repeat::Once,
        parse: |rest| {
            let args = words(rest);
            let command = match args.as_slice() {
                [w, m] if w.eq_ignore_ascii_case("send") => ProblemCommand::Send(ticket(m)?),
                [w] if w.eq_ignore_ascii_case("none") => ProblemCommand::Leave,
                _ => ProblemCommand::Join(ticket(one_arg(
                    "problem",
                    "a ticket number, send <answer number> or none",
                    &args,
                )?)?),
            };
            Ok(vec![Command::Problem(command)])
        },
    },
    CommandSpec {
        name: "feedback",
        aliases: &[],
        args: "<text>",
        example: "the macro list is too long",
        help: "what hurts or would help, for the admins",
        repeat: Repeat::Once,
        parse: |rest| {
            Ok(vec![Command::Feedback(text(
                "feedback",
                "your feedback",
                rest,
            )?)])
        },
    },
    CommandSpec {
        name: "kb",
        aliases: &[],
        args: "propose | request topic | search words",
        example: "request refund to a gift card",
        help: "KB; admins also approve N, reject N why",
        // A reply may search and request, or review several drafts; the same line twice
        // (two proposals of one answer) is refused.
        repeat: Repeat::Distinct(|c| Some(c.canonical())),
        parse: |rest| Ok(vec![Command::Kb(kb(rest)?)]),
    },
    CommandSpec {
        name: "wrong",
        aliases: &[],
        args: "return",
        example: "return",
        help: "the right category (teaches the bot)",
        repeat: Repeat::Once,
        parse: |rest| {
            let value = one_arg("wrong", "the right category", &words(rest))?;
            Ok(vec![Command::Wrong(name("category", value)?)])
        },
    },
];

/// The first and last lines of the cheat sheet.
const SHEET_HEAD: &str =
    "Commands go on the first lines of your reply, one per line, above your text:";
const SHEET_TAIL: &str = "A reply made only of commands sends nothing to the customer.";
/// Where the help text starts on a cheat sheet line.
const SHEET_COLUMN: usize = 34;

/// The row and, for a short form, the alias that `word` (lower case) names.
pub fn find(word: &str) -> Option<(&'static CommandSpec, Option<&'static Alias>)> {
    COMMANDS.iter().find_map(|spec| {
        if spec.name == word {
            Some((spec, None))
        } else {
            spec.aliases
                .iter()
                .find(|a| a.name == word)
                .map(|a| (spec, Some(a)))
        }
    })
}

/// Every name a command can be typed with, short forms included.
pub fn names() -> impl Iterator<Item = &'static str> {
    COMMANDS
        .iter()
        .flat_map(|s| std::iter::once(s.name).chain(s.aliases.iter().map(|a| a.name)))
}

/// Reads one command line's arguments for the command `word` names. `None` when no
/// command has that name.
pub fn parse_args(word: &str, rest: &str) -> Option<Result<Vec<Command>, CommandError>> {
    let (spec, alias) = find(word)?;
    Some(match alias {
        None => (spec.parse)(rest),
        Some(alias) if rest.is_empty() => (spec.parse)(alias.args),
        Some(alias) => Err(CommandError::UnexpectedArgument {
            command: alias.name,
            got: echo(rest),
        }),
    })
}

/// The cheat sheet, rendered from [`COMMANDS`] once.
pub fn cheat_sheet() -> &'static str {
    static SHEET: OnceLock<String> = OnceLock::new();
    SHEET.get_or_init(|| {
        let mut out = String::from(SHEET_HEAD);
        out.push('\n');
        for spec in COMMANDS {
            let usage = if spec.args.is_empty() {
                format!("#{}", spec.name)
            } else {
                format!("#{} {}", spec.name, spec.args)
            };
            sheet_line(&mut out, &usage, spec.help);
            for alias in spec.aliases {
                let means = format!("same as #{} {}", spec.name, alias.args);
                sheet_line(&mut out, &format!("#{}", alias.name), &means);
            }
        }
        out.push_str(SHEET_TAIL);
        out
    })
}

/// `  #usage      help`, with the help on a line of its own when the usage is too wide.
fn sheet_line(out: &mut String, usage: &str, help: &str) {
    let usage = format!("  {usage}");
    let width = usage.chars().count();
    out.push_str(&usage);
    if width + 1 >= SHEET_COLUMN {
        out.push('\n');
        out.push_str(&" ".repeat(SHEET_COLUMN));
    } else {
        out.push_str(&" ".repeat(SHEET_COLUMN - width));
    }
    out.push_str(help);
    out.push('\n');
}

impl Command {
    /// This command's row in [`COMMANDS`].
    pub fn spec(&self) -> Option<&'static CommandSpec> {
        COMMANDS.iter().find(|s| s.name == self.name())
    }

    /// The command written out canonically under its row's name, as receipts and the
    /// command log show it: `#close` is `#status closed`, `#tag +VIP` is `#tag vip`.
    pub fn canonical(&self) -> String {
        let name = self.spec().map_or(self.name(), |s| s.name);
        let args = match self {
            Command::Assign(AssignTarget::Agent(name)) => name.clone(),
            Command::Assign(AssignTarget::Me) => "me".into(),
            Command::Assign(AssignTarget::Nobody) => "none".into(),
            Command::Status(s) => s.to_string(),
            Command::Priority(p) => p.to_string(),
            Command::Tag { add, remove } => add
                .iter()
                .cloned()
                .chain(remove.iter().map(|t| format!("-{t}")))
                .collect::<Vec<_>>()
                .join(" "),
            Command::Invite(email) | Command::Cc(email) => email.clone(),
            Command::Merge(n) | Command::Release(Some(n)) => n.to_string(),
            Command::Macro(name) => name.clone(),
            Command::Note | Command::Undo | Command::Help | Command::Quiet => String::new(),
            Command::Release(None) => String::new(),
            Command::Category(name) | Command::Transfer(name) => name.clone(),
            Command::Report(text) => text.clone().unwrap_or_default(),
            Command::Away | Command::Back => String::new(),
            Command::Profile(ProfileChange::Note(t)) => format!("note {t}"),
            Command::Profile(ProfileChange::Tier(t)) => format!("tier {t}"),
            Command::Profile(ProfileChange::Lang(l)) => format!("lang {l}"),
            Command::Feedback(t) => t.clone(),
            Command::Kb(k) => match k {
                KbCommand::Propose => "propose".into(),
                KbCommand::Approve(n) => format!("approve {n}"),
                KbCommand::Reject(n, why) => format!("reject {n} {why}"),
                KbCommand::Request(topic) => format!("request {topic}"),
                KbCommand::Search(words) => format!("search {words}"),
            },
            Command::Wrong(category) => category.clone(),
            Command::Link(email) => email.clone(),
            Command::Via(channel) => channel.to_string(),
            Command::Problem(ProblemCommand::Join(n)) => n.to_string(),
            Command::Problem(ProblemCommand::Send(m)) => format!("send {m}"),
            Command::Problem(ProblemCommand::Leave) => "none".into(),
        };
        if args.is_empty() {
            format!("#{name}")
        } else {
            format!("#{name} {args}")
        }
    }

    /// True for commands that may appear only once per reply.
    pub fn is_single(&self) -> bool {
        self.spec().is_none_or(|s| matches!(s.repeat, Repeat::Once))
    }

    /// The value that may not be given twice in one reply, for [`Repeat::Distinct`].
    pub fn repeat_key(&self) -> Option<String> {
        match self.spec()?.repeat {
            Repeat::Distinct(key) => key(self),
            Repeat::Once | Repeat::Many => None,
        }
    }
}

fn address_key(c: &Command) -> Option<String> {
    match c {
        Command::Invite(a) | Command::Cc(a) => Some(a.clone()),
        _ => None,
    }
}

/// `#kb`'s sub-command and its arguments.
fn kb(rest: &str) -> Result<KbCommand, CommandError> {
    let (sub, args) = match rest.split_once(char::is_whitespace) {
        Some((sub, args)) => (sub, args.trim()),
        None => (rest, ""),
    };
    let invalid = || CommandError::InvalidKb { got: echo(rest) };
    let text = |what: &'static str| -> Result<String, CommandError> {
        if args.is_empty() {
            return Err(CommandError::MissingArgument {
                command: "kb",
                expected: match what {
                    "request" => "a topic after request",
                    "search" => "words after search",
                    _ => "a reason after the article number",
                },
            });
        }
        if args.chars().count() > MAX_KB_TEXT_CHARS {
            return Err(CommandError::KbTextTooLong { what });
        }
        Ok(args.split_whitespace().collect::<Vec<_>>().join(" "))
    };
    let number = |value: &str| -> Result<i64, CommandError> {
        value
            .trim_start_matches('#')
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or(CommandError::InvalidKb { got: echo(rest) })
    };
    match sub.to_ascii_lowercase().as_str() {
        "propose" if args.is_empty() => Ok(KbCommand::Propose),
        "approve" => match words(args).as_slice() {
            [n] => Ok(KbCommand::Approve(number(n)?)),
            _ => Err(invalid()),
        },
        "reject" => {
            let (n, why) = match args.split_once(char::is_whitespace) {
                Some((n, why)) => (n, why.trim()),
                None => (args, ""),
            };
            let n = number(n)?;
            if why.is_empty() {
                return Err(CommandError::MissingArgument {
                    command: "kb",
                    expected: "a reason after the article number",
                });
            }
            if why.chars().count() > MAX_KB_TEXT_CHARS {
                return Err(CommandError::KbTextTooLong { what: "reject" });
            }
            Ok(KbCommand::Reject(n, why.to_string()))
        }
        "request" => Ok(KbCommand::Request(text("request")?)),
        "search" => Ok(KbCommand::Search(text("search")?)),
        _ => Err(invalid()),
    }
}

fn words(rest: &str) -> Vec<&str> {
    rest.split_whitespace().collect()
}

fn no_args(command: &'static str, rest: &str, ok: Command) -> Result<Vec<Command>, CommandError> {
    if rest.is_empty() {
        Ok(vec![ok])
    } else {
        Err(CommandError::UnexpectedArgument {
            command,
            got: echo(rest),
        })
    }
}

fn one_arg<'a>(
    command: &'static str,
    expected: &'static str,
    args: &[&'a str],
) -> Result<&'a str, CommandError> {
    match args {
        [] => Err(CommandError::MissingArgument { command, expected }),
        [one] => Ok(one),
        more => Err(CommandError::TooManyArguments {
            command,
            expected,
            count: more.len(),
        }),
    }
}

fn assign_target(value: &str) -> Result<AssignTarget, CommandError> {
    let lower = value.to_lowercase();
    match lower.as_str() {
        "me" | "myself" => return Ok(AssignTarget::Me),
        "none" | "nobody" | "unassigned" => return Ok(AssignTarget::Nobody),
        _ => {}
    }
    let name = value.strip_prefix('@').unwrap_or(value);
    let valid = !name.is_empty()
        && name.chars().count() <= MAX_AGENT_CHARS
        && name.chars().next().is_some_and(char::is_alphanumeric)
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '@'));
    if valid {
        Ok(AssignTarget::Agent(name.to_string()))
    } else {
        Err(CommandError::InvalidAgent { value: echo(value) })
    }
}

fn tags(rest: &str) -> Result<Command, CommandError> {
    let mut add: Vec<String> = Vec::new();
    let mut remove: Vec<String> = Vec::new();
    let words: Vec<&str> = rest
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return Err(CommandError::MissingArgument {
            command: "tag",
            expected: "at least one tag, e.g. billing or -spam",
        });
    }
    if words.len() > MAX_TAGS_PER_LINE {
        return Err(CommandError::TooManyTags);
    }
    for word in words {
        let (list, name) = match word.strip_prefix('-') {
            Some(name) => (&mut remove, name),
            None => (&mut add, word.strip_prefix('+').unwrap_or(word)),
        };
        let valid = !name.is_empty()
            && name.chars().count() <= MAX_TAG_CHARS
            && name.chars().next().is_some_and(char::is_alphanumeric)
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(CommandError::InvalidTag { value: echo(word) });
        }
        let name = name.to_lowercase();
        if !list.contains(&name) {
            list.push(name);
        }
    }
    if let Some(tag) = add.iter().find(|t| remove.contains(t)) {
        return Err(CommandError::TagConflict { tag: tag.clone() });
    }
    Ok(Command::Tag { add, remove })
}

fn addresses(
    command: &'static str,
    rest: &str,
    make: fn(String) -> Command,
) -> Result<Vec<Command>, CommandError> {
    let words: Vec<&str> = rest
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return Err(CommandError::MissingArgument {
            command,
            expected: "an email address",
        });
    }
    if words.len() > MAX_ADDRESSES_PER_LINE {
        return Err(CommandError::TooManyAddresses {
            command,
            max: MAX_ADDRESSES_PER_LINE,
        });
    }
    let mut out: Vec<Command> = Vec::new();
    for word in words {
        let address = email(word)?;
        let command = make(address);
        if !out.contains(&command) {
            out.push(command);
        }
    }
    Ok(out)
}

/// A plain `local@domain` address: dot-atom local part (RFC 5322 §3.4.1, no quoted
/// strings), a domain of at least two LDH labels (RFC 1035). The domain is lower-cased.
/// `word` as an address the commands accept (`mailto:` and brackets stripped, the domain
/// lower-cased), or `None`.
pub fn email_address(word: &str) -> Option<String> {
    email(word).ok()
}

fn email(word: &str) -> Result<String, CommandError> {
    let invalid = || CommandError::InvalidEmail { value: echo(word) };
    let bare = word.strip_prefix("mailto:").unwrap_or(word);
    let bare = bare
        .strip_prefix('<')
        .and_then(|b| b.strip_suffix('>'))
        .unwrap_or(bare);
    let (local, domain) = bare.rsplit_once('@').ok_or_else(invalid)?;
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(atext));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = domain.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.chars().any(|c| c.is_ascii_alphabetic()));
    if local_ok && domain_ok && bare.len() <= 254 {
        Ok(format!("{local}@{}", domain.to_ascii_lowercase()))
    } else {
        Err(invalid())
    }
}

fn ticket(value: &str) -> Result<TicketId, CommandError> {
    let bare = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    let bare = bare.strip_prefix('#').unwrap_or(bare);
    match bare.parse::<TicketId>() {
        Ok(n) if n > 0 && bare.chars().all(|c| c.is_ascii_digit()) => Ok(n),
        _ => Err(CommandError::InvalidTicket { value: echo(value) }),
    }
}

/// A category or team name: what a tag may be.
fn name(what: &'static str, value: &str) -> Result<String, CommandError> {
    let valid = value.chars().count() <= MAX_TAG_CHARS
        && value.chars().next().is_some_and(char::is_alphanumeric)
        && value
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(value.to_lowercase())
    } else {
        Err(CommandError::InvalidName {
            what,
            value: echo(value),
        })
    }
}

/// `#profile note <text>`, `#profile tier <tier>`, `#profile lang <code>`.
fn profile(rest: &str) -> Result<ProfileChange, CommandError> {
    const EXPECTED: &str = "note <text>, tier <tier> or lang <code>";
    let (what, value) = match rest.split_once(char::is_whitespace) {
        Some((w, v)) => (w, v.trim()),
        None => (rest, ""),
    };
    match what.to_lowercase().as_str() {
        "note" => Ok(ProfileChange::Note(text("profile", "note <text>", value)?)),
        "tier" => {
            let value = one_arg("profile", "tier <tier>", &words(value))?;
            crate::profile::tier_name(value)
                .map(ProfileChange::Tier)
                .ok_or_else(|| CommandError::InvalidName {
                    what: "tier",
                    value: echo(value),
                })
        }
        "lang" | "language" => {
            let value = one_arg("profile", "lang <code>", &words(value))?;
            crate::profile::language_code(value)
                .map(ProfileChange::Lang)
                .ok_or_else(|| CommandError::InvalidLanguage { value: echo(value) })
        }
        _ => Err(CommandError::MissingArgument {
            command: "profile",
            expected: EXPECTED,
        }),
    }
}

/// Free text on the command's line: not empty, at most [`MAX_REPORT_CHARS`].
fn text(command: &'static str, expected: &'static str, rest: &str) -> Result<String, CommandError> {
    let rest = rest.trim();
    if rest.is_empty() {
        Err(CommandError::MissingArgument { command, expected })
    } else if rest.chars().count() > MAX_REPORT_CHARS {
        Err(CommandError::TextTooLong { command })
    } else {
        Ok(rest.to_string())
    }
}

fn macro_name(value: &str) -> Result<String, CommandError> {
    // One rule for what `#macro` accepts and what a template file may be called, so every
    // parsed name can be found and none is a path.
    let name = value.to_ascii_lowercase();
    if crate::outbound::templates::is_macro_name(&name) {
        Ok(name)
    } else {
        Err(CommandError::InvalidMacro { value: echo(value) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::parse::parse_reply;

    fn only(text: &str) -> Command {
        let p = parse_reply(text);
        assert!(p.rejected.is_empty(), "{text:?}: {:?}", p.rejected);
        assert_eq!(p.commands.len(), 1, "{text:?}: {:?}", p.commands);
        p.commands.into_iter().next().unwrap().2
    }

    #[test]
    fn every_row_and_alias_parses_and_maps_back_to_its_row() {
        for spec in COMMANDS {
            let line = format!("#{} {}", spec.name, spec.example);
            let command = only(&line);
            assert_eq!(command.name(), spec.name, "{line}");
            assert!(std::ptr::eq(command.spec().unwrap(), spec), "{line}");
            // The canonical spelling parses back to the same command.
            assert_eq!(only(&command.canonical()), command, "{line}");
            for alias in spec.aliases {
                let command = only(&format!("#{}", alias.name));
                assert!(
                    std::ptr::eq(command.spec().unwrap(), spec),
                    "{}",
                    alias.name
                );
                assert_eq!(
                    command.canonical(),
                    format!("#{} {}", spec.name, alias.args)
                );
            }
        }
    }

    #[test]
    fn every_command_the_parser_gives_has_a_row() {
        // One of each variant (the match in `Command::name` makes the list complete).
        let all = [
            Command::Assign(AssignTarget::Me),
            Command::Status(Status::Open),
            Command::Priority(Priority::Low),
            Command::Tag {
                add: vec!["a".into()],
                remove: vec!["b".into()],
            },
            Command::Note,
            Command::Invite("a@example.com".into()),
            Command::Cc("a@example.com".into()),
            Command::Merge(1),
            Command::Macro("m".into()),
            Command::Undo,
            Command::Help,
            Command::Quiet,
            Command::Release(None),
            Command::Release(Some(4)),
            Command::Kb(KbCommand::Propose),
            Command::Kb(KbCommand::Approve(12)),
            Command::Kb(KbCommand::Reject(12, "out of date".into())),
            Command::Kb(KbCommand::Request("gift card refund".into())),
            Command::Kb(KbCommand::Search("退款 多久".into())),
            Command::Wrong("return".into()),
        ];
        for command in all {
            let spec = command.spec().unwrap_or_else(|| panic!("{command:?}"));
            assert_eq!(spec.name, command.name());
            assert_eq!(only(&command.canonical()), command);
        }
    }

    #[test]
    fn kb_lines_read_their_sub_command_and_reject_the_rest() {
        assert_eq!(only("#KB Propose"), Command::Kb(KbCommand::Propose));
        assert_eq!(only("#kb approve #7"), Command::Kb(KbCommand::Approve(7)));
        assert_eq!(
            only("#kb reject 7   too   vague"),
            Command::Kb(KbCommand::Reject(7, "too   vague".into()))
        );
        assert_eq!(
            only("＃ｋｂ request 退货  运费"),
            Command::Kb(KbCommand::Request("退货 运费".into()))
        );
        assert_eq!(only("#wrong Return"), Command::Wrong("return".into()));
        let rejected = |line: &str| {
            let p = parse_reply(line);
            assert!(p.commands.is_empty(), "{line}: {:?}", p.commands);
            p.rejected.into_iter().next().unwrap().2
        };
        assert!(rejected("#kb").contains("propose, approve N"));
        assert!(rejected("#kb publish 3").contains("\"publish 3\""));
        assert!(rejected("#kb propose now").contains("propose"));
        assert!(rejected("#kb approve 0").contains("approve"));
        assert!(rejected("#kb approve 3 4").contains("approve"));
        assert!(rejected("#kb reject 3").contains("reason"));
        assert!(rejected("#kb request").contains("topic"));
        assert!(rejected(&format!("#kb search {}", "a".repeat(400))).contains("at most"));
        assert!(rejected("#wrong").contains("right category"));
        assert!(rejected("#wrong refund return").contains("one argument"));
        assert!(rejected("#wrong ../etc").contains("category"));
    }

    #[test]
    fn names_are_unique() {
        let mut seen: Vec<&str> = names().collect();
        let n = seen.len();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), n, "{seen:?}");
        assert!(
            seen.iter()
                .all(|w| w.chars().all(|c| c.is_ascii_lowercase()))
        );
    }

    #[test]
    fn the_cheat_sheet_lists_every_row_and_alias_and_fits_a_mail_line() {
        let sheet = cheat_sheet();
        assert!(sheet.starts_with(SHEET_HEAD) && sheet.ends_with(SHEET_TAIL));
        for spec in COMMANDS {
            let usage = format!("#{} {}", spec.name, spec.args);
            assert!(
                sheet
                    .lines()
                    .any(|l| l.trim_start().starts_with(usage.trim())),
                "#{} missing from:\n{sheet}",
                spec.name
            );
            assert!(sheet.contains(spec.help), "{}", spec.name);
            for alias in spec.aliases {
                let line = format!("#{}", alias.name);
                assert!(
                    sheet.lines().any(|l| l.trim_start().starts_with(&line)),
                    "{line} missing from:\n{sheet}"
                );
            }
        }
        // RFC 5322 §2.1.1: lines SHOULD be at most 78 characters.
        for line in sheet.lines() {
            assert!(line.chars().count() <= 78, "{line:?}");
            // No line of the sheet is itself a command line a reply could quote back.
            assert!(!line.starts_with('#'), "{line:?}");
        }
    }

    #[test]
    fn an_alias_takes_no_argument() {
        for spec in COMMANDS {
            for alias in spec.aliases {
                let p = parse_reply(&format!("#{} x", alias.name));
                assert_eq!(
                    p.rejected[0].2,
                    format!("#{} takes no argument, but got \"x\"", alias.name)
                );
            }
        }
    }
}
