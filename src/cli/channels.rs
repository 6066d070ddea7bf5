//! `postdesk channels [--json]`: every chat channel account, configured or only known to
//! the database: how it is reached, where its cursor stands, its last good poll and last
//! error, whether a refused credential disabled it, and its traffic (customer messages in;
//! answers sent, waiting, failed). Read-only.

use std::path::Path;

use anyhow::Result;

use crate::store::{Store, cursors};

#[derive(Debug, clap::Args)]
pub struct ChannelsArgs {
    /// Print as JSON: `{"channels": [...]}`.
    #[arg(long)]
    json: bool,
}

/// How the configuration says an account is reached, or `None` when it is not configured.
fn mode_of(cfg: &crate::config::Config, channel: &str, account: &str) -> Option<String> {
    match channel {
        "telegram" => cfg
            .telegram_channels
            .iter()
            .find(|t| t.account == account)
            .map(|t| match &t.webhook_url {
                Some(_) => "webhook".to_string(),
                None => "long poll".to_string(),
            }),
        "matrix" => cfg
            .matrix_channels
            .iter()
            .find(|m| m.account == account)
            .map(|m| format!("sync with {}", m.homeserver)),
        "json" => cfg
            .json_channels
            .iter()
            .find(|j| j.account == account)
            .map(|j| {
                let inbound = if j.feed_url.is_some() {
                    "feed polled"
                } else {
                    "pushed"
                };
                let outbound = if j.deliver_url.is_some() {
                    "answers posted"
                } else {
                    "answers pulled"
                };
                format!("{inbound}, {outbound}")
            }),
        _ => None,
    }
}

pub async fn execute(config: &Path, args: &ChannelsArgs) -> Result<bool> {
    let cfg = super::load_config_for_admin(config)?;
    let store = Store::open_existing(&cfg.database_path).await?;
    let mut conn = store.pool().acquire().await?;
    let mut states = cursors::channel_states(&mut conn).await?;
    drop(conn);
    store.close().await;
    // Configured accounts that have not run yet are listed too.
    let configured: Vec<(&str, &str)> = cfg
        .telegram_channels
        .iter()
        .map(|t| ("telegram", t.account.as_str()))
        .chain(
            cfg.matrix_channels
                .iter()
                .map(|m| ("matrix", m.account.as_str())),
        )
        .chain(
            cfg.json_channels
                .iter()
                .map(|j| ("json", j.account.as_str())),
        )
        .collect();
    for (c, a) in configured {
        if !states.iter().any(|s| s.channel == c && s.account == a) {
            states.push(cursors::ChannelState {
                channel: c.to_string(),
                account: a.to_string(),
                ..Default::default()
            });
        }
    }
    states.sort_by(|a, b| (&a.channel, &a.account).cmp(&(&b.channel, &b.account)));
    if args.json {
        let list: Vec<serde_json::Value> = states
            .iter()
            .map(|s| {
                let mut v = serde_json::to_value(s).unwrap_or_default();
                let mode = mode_of(&cfg, &s.channel, &s.account);
                if let Some(o) = v.as_object_mut() {
                    o.insert("configured".into(), serde_json::json!(mode.is_some()));
                    o.insert("mode".into(), serde_json::json!(mode));
                }
                v
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "channels": list }))?
        );
        return Ok(true);
    }
    if states.is_empty() {
        println!("No chat channels are configured or known to the database.");
        return Ok(true);
    }
    for s in &states {
        let mode =
            mode_of(&cfg, &s.channel, &s.account).unwrap_or_else(|| "not configured".to_string());
        println!(
            "{} {} ({})",
            s.channel,
            super::term_line(&s.account),
            super::term_line(&mode)
        );
        if let Some(at) = &s.disabled_at {
            println!(
                "  DISABLED since {at}: {}",
                super::term_line(s.disabled_reason.as_deref().unwrap_or("?"))
            );
        }
        println!(
            "  last good poll {}, cursor {}",
            s.last_ok_at.as_deref().unwrap_or("never"),
            super::term_line(s.cursor.as_deref().unwrap_or("(none)"))
        );
        if let Some(e) = &s.last_error {
            println!("  last error: {}", super::term_line(e));
        }
        println!(
            "  {} customer message(s) in; answers: {} sent, {} waiting, {} failed",
            s.messages_in, s.sent, s.pending, s.failed
        );
    }
    Ok(true)
}
