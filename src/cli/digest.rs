//! `postdesk digest send [--agent NAME]`: queues each agent's digest of open tickets now
//! (leads also get the unassigned and breached ones); `postdesk digest weekly [--agent
//! NAME]` queues the weekly figures with charts now (to leads; to the one agent named).
//! The daemon sends them.

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
    /// Queue the weekly digest (the last seven days' figures with charts) now: to every
    /// lead, or to the agent named.
    Weekly {
        /// Only this agent's (a lead's team figures, anyone else's own beside the team's).
        #[arg(long)]
        agent: Option<String>,
    },
}

pub async fn execute(config: &Path, cmd: &DigestCommand) -> Result<bool> {
    let (agent, weekly) = match cmd {
        DigestCommand::Send { agent } => (agent, false),
        DigestCommand::Weekly { agent } => (agent, true),
    };
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
    let n = if weekly {
        crate::analytics::digest::weekly(
            &store,
            &services,
            SystemClock.now(),
            agent.as_deref(),
            true,
        )
        .await?
    } else {
        crate::watch::digests(&store, &services, SystemClock.now(), agent.as_deref(), true).await?
    };
    store.close().await;
    let what = if weekly { "weekly digest" } else { "digest" };
    println!("Queued {n} {what}(s); the daemon sends them.");
    Ok(true)
}
