//! Plain domain types shared by every layer: ticket ids, statuses, priorities, message
//! directions and kinds, and the reason a message joined its ticket.
//!
//! No I/O lives here. Everything converts to and from the lowercase strings stored in
//! SQLite and shown in `--json` output, so the database and the CLI speak the same words.

pub mod address;
pub mod inbound;
pub mod known;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A ticket number, as shown to people in `[#123]` subject tags.
pub type TicketId = i64;

/// Error for a word that is not one of an enum's values.
#[derive(Debug, thiserror::Error)]
#[error("{value:?} is not a valid {what}; expected one of: {expected}")]
pub struct ParseEnumError {
    pub what: &'static str,
    pub value: String,
    pub expected: &'static str,
}

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The word stored in the database and printed by the CLI.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ParseEnumError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($text => Ok($name::$variant),)+
                    _ => Err(ParseEnumError {
                        what: $what,
                        value: s.to_string(),
                        expected: concat!($($text, " "),+),
                    }),
                }
            }
        }
    };
}

string_enum!(
    /// Where a ticket stands. `resolved` reopens on a customer reply; `closed` does not
    /// (a reply to a closed ticket opens a new, linked ticket).
    Status, "status", {
        Open => "open",
        Pending => "pending",
        Resolved => "resolved",
        Closed => "closed",
    }
);

string_enum!(
    /// The way a message reached us, or a reply leaves: stored on messages and outbox rows.
    Channel, "channel", {
        Email => "email",
        Json => "json",
        Telegram => "telegram",
        Matrix => "matrix",
    }
);

impl Channel {
    /// The chat channel a customer key (`telegram:shop_bot:42`, `matrix:support:@ann:hs`)
    /// belongs to; None for an email address.
    pub fn of_identity(key: &str) -> Option<Channel> {
        let (name, rest) = key.split_once(':')?;
        let channel: Channel = name.parse().ok()?;
        (channel != Channel::Email && rest.contains(':')).then_some(channel)
    }
}

// The enum is declared by `string_enum!`, which derives no Default.
#[allow(clippy::derivable_impls)]
impl Default for Channel {
    fn default() -> Self {
        Channel::Email
    }
}

string_enum!(
    /// What an event records (`store::events`): a ticket change, written with it.
    EventKind, "event kind", {
        TicketCreated => "ticket_created",
        MessageAdded => "message_added",
        StatusChanged => "status_changed",
        AssigneeChanged => "assignee_changed",
        PriorityChanged => "priority_changed",
        TicketMerged => "ticket_merged",
        TicketsLinked => "tickets_linked",
        Triaged => "triaged",
        ForcedHuman => "forced_human",
        CategoryChanged => "category_changed",
        TeamChanged => "team_changed",
        AlertRaised => "alert_raised",
        AlertReported => "alert_reported",
        AlertEscalated => "alert_escalated",
        SlaWarning => "sla_warning",
        SlaBreached => "sla_breached",
        KbArticleChanged => "kb_article_changed",
        KbRequested => "kb_requested",
        BotAnswered => "bot_answered",
        BotHandoff => "bot_handoff",
        BotDeflected => "bot_deflected",
        CategoryCorrected => "category_corrected",
        ProfileChanged => "profile_changed",
        FeedbackGiven => "feedback_given",
        TicketRated => "ticket_rated",
    }
);

string_enum!(
    /// How urgent a ticket is.
    Priority, "priority", {
        Low => "low",
        Normal => "normal",
        High => "high",
        Urgent => "urgent",
    }
);

string_enum!(
    /// Whether a message came in or went out.
    Direction, "direction", {
        Inbound => "inbound",
        Outbound => "outbound",
    }
);

string_enum!(
    /// What a message is, as far as the ticket is concerned. Agents' mail: `notification`
    /// (to an agent), `receipt` (commands applied/rejected), `held_notice` (to an agent whose
    /// identity was claimed), `held` (a message that claimed to be an agent's and failed
    /// authentication: kept, never executed nor relayed), `command` (an agent's reply made
    /// only of commands), `agent_reply` (an agent's answer; the inbound mail and the copy
    /// sent to the customer), `note` (internal).
    MessageKind, "message kind", {
        Customer => "customer",
        AutoReply => "auto_reply",
        AgentReply => "agent_reply",
        Note => "note",
        Bounce => "bounce",
        Report => "report",
        AutoSubmitted => "auto_submitted",
        Unprocessable => "unprocessable",
        Rejected => "rejected",
        Notification => "notification",
        Receipt => "receipt",
        HeldNotice => "held_notice",
        Held => "held",
        Command => "command",
    }
);

string_enum!(
    /// Why a message was put on its ticket (RFC 5322 threading headers, our reply token,
    /// a subject tag, the subject/sender heuristic; for chat channels, a reply to one of
    /// our sent messages or the conversation), recorded on every message.
    MatchReason, "match reason", {
        ReplyToken => "reply_token",
        ChatReply => "chat_reply",
        References => "references",
        ReferencedBy => "referenced_by",
        SharedReference => "shared_reference",
        SubjectTag => "subject_tag",
        SubjectSender => "subject_sender",
        Conversation => "conversation",
        LinkedCustomer => "linked_customer",
        NewTicket => "new_ticket",
        NewTicketAfterClosed => "new_ticket_after_closed",
        Bounce => "bounce",
        Report => "report",
        Outbound => "outbound",
        None => "none",
    }
);

/// The first line of every mail we send to agents (notifications, receipts, held notices),
/// written by the code, not by an overridable template: a reply is cut here whatever the
/// agent's client does to quoted text (language, quote prefix, attribution line).
pub const REPLY_ABOVE_MARKER: &str = "##- Please type your reply above this line -##";

/// The last line of every mail we send to agents. Text still holding it (or the first
/// marker) after quotes are cut is our internal mail, and is never relayed to a customer.
pub const INTERNAL_MARKER: &str =
    "##- Internal to the support team: never send this to a customer -##";

/// True when `text` holds one of the marker lines of our mail to agents, however a mail
/// client re-spaced it (no-break spaces, doubled spaces, format characters, case).
pub fn has_agent_mail_marker(text: &str) -> bool {
    let t = squeezed(text);
    t.contains(&squeezed(REPLY_ABOVE_MARKER)) || t.contains(&squeezed(INTERNAL_MARKER))
}

/// True when `line` holds the first line of our mail to agents, however re-spaced.
pub fn has_reply_above_marker(line: &str) -> bool {
    line.contains('#') && squeezed(line).contains(&squeezed(REPLY_ABOVE_MARKER))
}

/// `text` lower-cased, without white space or format characters: what survives any
/// client's re-spacing of a marker line.
fn squeezed(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace() && !is_format_char(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Unicode format characters (general category Cf): invisible, yet they change how text
/// reads. Right-to-left clients insert U+200F before a line, and a zero-width space or a
/// BOM can hide in front of a `#note`; such characters must not make a command line into
/// text, nor survive into a single-line value we print.
pub fn is_format_char(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

/// `s` without format characters (see [`is_format_char`]).
pub fn strip_format_chars(s: &str) -> std::borrow::Cow<'_, str> {
    if s.chars().any(is_format_char) {
        std::borrow::Cow::Owned(s.chars().filter(|c| !is_format_char(*c)).collect())
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_lines_are_found_however_respaced() {
        let respaced =
            REPLY_ABOVE_MARKER
                .replace(' ', "\u{a0}")
                .replacen("reply", "\u{200b}REPLY  ", 1);
        assert!(has_agent_mail_marker(&format!("> {respaced}\n")));
        assert!(has_reply_above_marker(&format!("| {respaced}")));
        assert!(has_agent_mail_marker(&INTERNAL_MARKER.replace(' ', "\t")));
        assert!(!has_agent_mail_marker("## Please type here ##"));
        assert!(!has_reply_above_marker("no marker at all"));
    }

    #[test]
    fn status_round_trips_and_rejects_unknown_words() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>().unwrap(), *s);
        }
        assert_eq!(" Resolved ".parse::<Status>().unwrap(), Status::Resolved);
        let err = "done".parse::<Status>().unwrap_err().to_string();
        assert!(err.contains("open pending resolved closed"), "{err}");
    }

    #[test]
    fn kinds_serialize_as_their_database_words() {
        for k in MessageKind::ALL {
            let json = serde_json::to_string(k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
        }
    }
}
