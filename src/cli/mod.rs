//! The command line: one file per subcommand, each a clap struct plus `execute`.

pub mod check_config;
pub mod import;
pub mod keys;
pub mod message;
pub mod run;
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

    #[command(subcommand)]
    pub command: Command,
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
    #[command(subcommand)]
    Message(message::MessageCommand),
}

/// Loads the configuration or turns the list of problems into an error.
pub fn load_config(path: &std::path::Path) -> anyhow::Result<crate::config::Config> {
    crate::config::load(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}
