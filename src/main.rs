//! The postdesk binary: parse the command line, set up logging, dispatch, and map the
//! result to an exit code (0 success, 1 failure reported, 2 error).

use std::io::IsTerminal as _;

use clap::Parser;
use postdesk::cli::{self, Cli, Command, LogFormat};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only for a person at a terminal: journald and log files get plain text.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(ansi);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match &cli.command {
            Command::CheckConfig(a) => cli::check_config::execute(&cli.config, a),
            Command::Run(a) => cli::run::execute(&cli.config, a).await,
            Command::Import(a) => cli::import::execute(&cli.config, a).await,
            Command::Ticket(c) => cli::ticket::execute(&cli.config, c).await,
            Command::Keys(c) => cli::keys::execute(&cli.config, c).await,
            Command::Message(c) => cli::message::execute(&cli.config, c).await,
            Command::Events(a) => cli::events::execute(&cli.config, a).await,
            Command::Channels(a) => cli::channels::execute(&cli.config, a).await,
            Command::Stats(a) => cli::stats::execute(&cli.config, a).await,
            Command::Export(a) => cli::stats::export(&cli.config, a).await,
            Command::Agent(a) => cli::agent::execute(&cli.config, a).await,
            Command::Rules(c) => cli::rules::execute(&cli.config, c).await,
            Command::Digest(c) => cli::digest::execute(&cli.config, c).await,
            Command::Kb(c) => cli::kb::execute(&cli.config, c).await,
            Command::Classifier(c) => cli::kb::classifier(&cli.config, c).await,
            Command::Template(c) => cli::template::execute(&cli.config, c).await,
            Command::Customer(c) => cli::customer::execute(&cli.config, c).await,
            Command::Feedback(c) => cli::feedback::execute(&cli.config, c).await,
            Command::Report(c) => cli::report::execute(&cli.config, c).await,
        }
    });
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
