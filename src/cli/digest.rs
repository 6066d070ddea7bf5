//! `postdesk digest send [--agent NAME]`: queues each agent's digest of open tickets now
//! (leads also get the unassigned and breached ones); the daemon sends it.

use std::path::Path;

use anyhow::{Result, bail};

use crate::clock::{Clock, SystemClock};
use crate::store::Store;

#[derive(Debug, clap::Subcommand)]
pub enum DigestCommand {
    /// Queue the digest now, whatever the hour and whatever was sent today.
    Send {
        /// Only this agent's.
        #[arg(long)]
        agent: Option<String>,
    },
}

pub async fn execute(config: &Path, cmd: &DigestCommand) -> Result<bool> {
    let DigestCommand::Send { agent } = cmd;
    let cfg = super::load_config_for_admin(config)?;
    if let Some(a) = agent
        && cfg.agent_by_name(a).is_none()
    {
        bail!("no agent named {a:?} in the configuration");
    }
    let store = Store::open(&cfg.database_path).await?;
    let templates = std::sync::Arc::new(crate::outbound::templates::Templates::load(
        cfg.templates_dir.as_deref(),
    )?);
    let services = crate::intake::Services::open(
        std::sync::Arc::new(cfg),
        templates,
        std::sync::Arc::new(SystemClock),
        &store,
    )
    .await?;
    let n =
        crate::watch::digests(&store, &services, SystemClock.now(), agent.as_deref(), true).await?;
    store.close().await;
    println!("Queued {n} digest(s); the daemon sends them.");
    Ok(true)
}
