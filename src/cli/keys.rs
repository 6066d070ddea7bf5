//! `postdesk keys list|rotate|retire`: the secrets of agents' reply tokens. Rotation adds a
//! new key that signs every token minted from then on; older keys keep verifying the
//! tokens already in agents' mailboxes until they are retired. Takes the database lock,
//! so the daemon must be stopped (it reads the keyring at start).

use std::path::Path;

use anyhow::{Context, Result};

use crate::store::{Store, agent};

#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Show the key versions and which one signs new tokens.
    List {
        /// Print the result as JSON (stable field names, for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Add a new key and sign new tokens with it; older tokens still verify.
    Rotate {
        /// Print the result as JSON (stable field names, for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Remove a key version: tokens signed with it stop working.
    Retire {
        /// The key version to retire, as `keys list` shows it.
        version: u16,
        /// Print the result as JSON (stable field names, for scripts).
        #[arg(long)]
        json: bool,
    },
}

pub async fn execute(config: &Path, cmd: &KeysCommand) -> Result<bool> {
    let cfg = super::load_config_for_admin(config)?;
    let _lock = crate::lock::acquire(&cfg.database_path)?;
    let store = Store::open(&cfg.database_path).await?;
    let mut tx = store.begin_write().await?;
    let mut ring = agent::load_or_create_keyring(&mut tx)
        .await
        .context("Loading the agent token keyring")?;
    let json = match cmd {
        KeysCommand::List { json } => *json,
        KeysCommand::Rotate { json } => {
            ring.rotate().map_err(|e| anyhow::anyhow!("{e}"))?;
            agent::save_keyring(&mut tx, &ring).await?;
            *json
        }
        KeysCommand::Retire { version, json } => {
            ring.retire(*version).map_err(|e| anyhow::anyhow!("{e}"))?;
            agent::save_keyring(&mut tx, &ring).await?;
            *json
        }
    };
    tx.commit().await?;
    store.close().await;
    if json {
        println!(
            "{}",
            serde_json::json!({"current": ring.current_version(), "versions": ring.versions()})
        );
    } else {
        println!(
            "key versions {:?}; new tokens are signed with version {}",
            ring.versions(),
            ring.current_version()
        );
    }
    Ok(true)
}
