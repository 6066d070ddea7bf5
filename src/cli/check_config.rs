//! `postdesk check-config`: validates without side effects (no database, no network).

use std::path::Path;

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn execute(config: &Path, args: &Args) -> Result<bool> {
    match crate::config::load(config) {
        Ok(cfg) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"ok": true, "mailboxes": cfg.mailboxes.len(), "agents": cfg.agents.len()})
                );
            } else {
                println!(
                    "{}: OK ({} mailbox(es), {} folder(s), {} agent(s), database {})",
                    config.display(),
                    cfg.mailboxes.len(),
                    cfg.mailboxes.iter().map(|m| m.folders.len()).sum::<usize>(),
                    cfg.agents.len(),
                    cfg.database_path.display()
                );
            }
            Ok(true)
        }
        Err(e) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"ok": false, "problems": e.problems})
                );
            } else {
                eprintln!("{}: {e}", config.display());
            }
            Ok(false)
        }
    }
}
