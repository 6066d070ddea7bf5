//! `postdesk report monthly [--month YYYY-MM] [--send]`: the admins' monthly report
//! (`profile::report`), printed, or queued for every admin now (the daemon sends it).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Result, bail};

use crate::clock::{Clock, SystemClock};
use crate::profile::report;
use crate::store::Store;

#[derive(Debug, clap::Subcommand)]
pub enum ReportCommand {
    /// The monthly report: feedback by theme, KB requests, the bot's corrections,
    /// forced-human matches.
    Monthly {
        /// The month; the previous one by default.
        #[arg(long)]
        month: Option<String>,
        /// Queue it for every admin (`admin = true`) now, whatever was sent before. A
        /// finished month is then not sent again by the daemon; the month still running
        /// is, once it is over.
        #[arg(long)]
        send: bool,
    },
}

pub async fn execute(config: &Path, cmd: &ReportCommand) -> Result<bool> {
    let ReportCommand::Monthly { month, send } = cmd;
    let cfg = super::load_config_for_admin(config)?;
    let now = SystemClock.now();
    let period = month.clone().unwrap_or_else(|| report::previous_month(now));
    if report::month_bounds(&period).is_none() {
        bail!("--month {period:?} is not a month; use YYYY-MM, e.g. 2026-11");
    }
    if *send && !cfg.agents.iter().any(|a| a.admin) {
        bail!("no agent has admin = true in the configuration: nobody to send the report to");
    }
    let store = Store::open(&cfg.database_path).await?;
    let templates = Arc::new(crate::outbound::templates::Templates::load(
        cfg.templates_dir.as_deref(),
    )?);
    if !*send {
        let mut conn = store.pool().acquire().await?;
        let m = report::load(&mut conn, &period).await?;
        drop(conn);
        print!("{}", report::render(&cfg, &templates, &m)?);
        store.close().await;
        return Ok(true);
    }
    let services =
        crate::intake::Services::open(Arc::new(cfg), templates, Arc::new(SystemClock), &store)
            .await?;
    let to = report::send_monthly(&store, &services, &period, true, now).await?;
    store.close().await;
    println!(
        "Queued the monthly report {period} for {}; the daemon sends it.",
        to.join(", ")
    );
    Ok(true)
}
