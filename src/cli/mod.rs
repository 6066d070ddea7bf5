//! The command line: one file per subcommand, each a clap struct plus `execute`.

pub mod agent;
pub mod channels;
pub mod check_config;
pub mod customer;
pub mod digest;
pub mod events;
pub mod feedback;
pub mod import;
pub mod kb;
pub mod keys;
pub mod message;
pub mod report;
pub mod rules;
pub mod run;
pub mod stats;
pub mod template;
pub mod ticket;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "postdesk", version, about = "A mail-first helpdesk daemon")]
pub struct Cli {
    /// Configuration file.
    #[arg(
        long,
        global = true,
        env = "POSTDESK_CONFIG",
        default_value = "postdesk.toml"
    )]
    pub config: PathBuf,

    /// Log filter (tracing EnvFilter syntax), e.g. "info" or "postdesk=debug".
    #[arg(long, global = true, env = "POSTDESK_LOG", default_value = "info")]
    pub log: String,

    /// Log format: plain text (coloured only on a terminal, and never with NO_COLOR set)
    /// or one JSON object per line, for journald and log shippers.
    #[arg(
        long,
        global = true,
        env = "POSTDESK_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (timestamp, level, fields).
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the configuration and report every problem at once.
    CheckConfig(check_config::Args),
    /// Run the daemon (or one cycle with --once).
    Run(run::Args),
    /// Bulk-import mail from a Maildir or an mbox file.
    Import(import::Args),
    /// Inspect tickets.
    #[command(subcommand)]
    Ticket(ticket::TicketCommand),
    /// Rotate or retire the secrets of agents' reply tokens.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Inspect stored messages: their raw bytes, and those that could not be filed.
    #[command(subcommand)]
    Message(message::MessageCommand),
    /// List the post-commit event log (what happened to tickets, in order).
    Events(events::EventsArgs),
    /// Chat channel accounts: how each is reached, cursor, last poll, disabled, traffic.
    Channels(channels::ChannelsArgs),
    /// Try the triage rules on a message file.
    #[command(subcommand)]
    Rules(rules::RulesCommand),
    /// Send the agents' daily digests now.
    #[command(subcommand)]
    Digest(digest::DigestCommand),
    /// The knowledge base: add, edit, publish, retire, list, show, search, import.
    #[command(subcommand)]
    Kb(kb::KbCommand),
    /// The category classifier trained by agents' #wrong corrections.
    #[command(subcommand)]
    Classifier(kb::ClassifierCommand),
    /// Check the templates, or preview one for a ticket.
    #[command(subcommand)]
    Template(template::TemplateCommand),
    /// Customer profiles: import a CSV, show one, list them.
    #[command(subcommand)]
    Customer(customer::CustomerCommand),
    /// Agents' feedback (#feedback).
    #[command(subcommand)]
    Feedback(feedback::FeedbackCommand),
    /// Reports to admins: the monthly report.
    #[command(subcommand)]
    Report(report::ReportCommand),
    /// The team's and each agent's figures over a period (volume, response and
    /// resolution times, SLA, bot, satisfaction, peak hours).
    Stats(stats::StatsArgs),
    /// One agent's tickets and figures over a period, for a performance review.
    Export(stats::ExportArgs),
    /// Agents' dashboard logins.
    #[command(subcommand)]
    Agent(agent::AgentCommand),
}

/// Loads the configuration or turns the list of problems into an error.
pub fn load_config(path: &std::path::Path) -> anyhow::Result<crate::config::Config> {
    crate::config::load(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// [`load_config`] for commands that log in nowhere (ticket, message, keys, import): a
/// password that cannot be read here (the service's credentials, its environment) is no
/// error, so an admin can run them as the service user.
pub fn load_config_for_admin(path: &std::path::Path) -> anyhow::Result<crate::config::Config> {
    crate::config::load_with(path, crate::config::Secrets::NotNeeded)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Text from mail made safe for a terminal, on one line: control characters (C0, DEL, C1
/// such as CSI), line and paragraph separators and format characters (bidi overrides,
/// zero-width marks) are shown as `\x1b`, `\u{202e}`..., so no mail can write the
/// clipboard (OSC 52), clear the screen, disguise a link (OSC 8) or reorder what the
/// operator reads. `--json` output stays exact; this is for the tables and text views.
pub fn term_line(s: &str) -> String {
    term_escape(s, false)
}

/// [`term_line`] for text of several lines: `\n` and `\t` are kept.
pub fn term_text(s: &str) -> String {
    term_escape(s, true)
}

fn term_escape(s: &str, multiline: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let code = u32::from(c);
        if multiline && (c == '\n' || c == '\t') {
            out.push(c);
        } else if code < 0x20 || (0x7f..=0x9f).contains(&code) {
            out.push_str(&format!("\\x{code:02x}"));
        } else if crate::domain::is_format_char(c) || matches!(c, '\u{2028}' | '\u{2029}') {
            out.push_str(&format!("\\u{{{code:04x}}}"));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_become_visible_text() {
        assert_eq!(
            term_line("a\u{1b}]52;c;eA==\u{7}b\u{9b}2J\u{202e}x\ny"),
            "a\\x1b]52;c;eA==\\x07b\\x9b2J\\u{202e}x\\x0ay"
        );
        assert_eq!(term_text("one\n\ttwo\r\n"), "one\n\ttwo\\x0d\n");
        assert_eq!(term_line("普通の件名 ✓"), "普通の件名 ✓");
    }
}
