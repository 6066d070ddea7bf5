//! `postdesk agent password NAME`: sets an agent's dashboard password, read from standard
//! input (the first line; pipe it in, or type it and press Enter). Stored as an argon2id
//! hash; setting it ends the agent's open sessions.

use std::io::BufRead;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::clock::{Clock, SystemClock, db_time};
use crate::store::Store;
use crate::web::auth;

#[derive(Debug, clap::Subcommand)]
pub enum AgentCommand {
    /// Set an agent's dashboard password (read from standard input).
    Password {
        /// The agent's name, as in `[[agent]] name`.
        name: String,
    },
}

pub async fn execute(config: &Path, cmd: &AgentCommand) -> Result<bool> {
    let AgentCommand::Password { name } = cmd;
    let cfg = super::load_config_for_admin(config)?;
    let Some(agent) = cfg.agent_by_name(name) else {
        bail!("no agent named {name:?} in the configuration");
    };
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("Reading the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']);
    let chars = password.chars().count();
    if chars < auth::MIN_PASSWORD_CHARS {
        bail!(
            "the password has {chars} characters; give at least {}",
            auth::MIN_PASSWORD_CHARS
        );
    }
    if chars > 1024 {
        bail!("the password is longer than 1024 characters");
    }
    let hash = auth::hash_password(password)?;
    let store = Store::open(&cfg.database_path).await?;
    let mut tx = store.begin_write().await?;
    crate::store::web_auth::put_password(&mut tx, &agent.name, &hash, &db_time(SystemClock.now()))
        .await?;
    tx.commit().await?;
    store.close().await;
    println!(
        "Password set for {}; their open dashboard sessions are ended.",
        agent.name
    );
    Ok(true)
}
