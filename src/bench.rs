//! `postdesk bench` (being written).
use std::path::Path;
#[derive(Debug, clap::Args)]
pub struct Args {}
pub async fn execute(_config: &Path, _args: &Args) -> anyhow::Result<bool> {
    anyhow::bail!("bench is not written yet")
}
