//! Agents' dashboard logins:
//! - `postdesk agent password NAME` sets an agent's password, read from standard input
//!   (the first line; pipe it in, or type it and press Enter). Stored as an argon2id hash;
//!   setting it ends the agent's open sessions.
//! - `postdesk agent sessions [NAME] [--json]` lists the live sessions (who, since when,
//!   until when; never a token).
//! - `postdesk agent link NAME [--minutes 15]` prints a one-time login link (the "token"
//!   way in, for an agent without a password or a wall screen): it works once, within its
//!   minutes, and only through its page's button, so a mail scanner that opens it uses
//!   nothing up.
//! - `postdesk agent logout NAME` ends all of an agent's sessions (a lost laptop): their
//!   next request meets the login form.

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
    /// List the live dashboard sessions.
    Sessions {
        /// Only this agent's.
        name: Option<String>,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a one-time dashboard login link for an agent.
    Link {
        /// The agent's name.
        name: String,
        /// How long the link works, in minutes (1 to 1440).
        #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u32).range(1..=1440))]
        minutes: u32,
    },
    /// End all of an agent's dashboard sessions.
    Logout {
        /// The agent's name.
        name: String,
    },
}

pub async fn execute(config: &Path, cmd: &AgentCommand) -> Result<bool> {
    match cmd {
        AgentCommand::Password { name } => password(config, name).await,
        AgentCommand::Sessions { name, json } => sessions(config, name.as_deref(), *json).await,
        AgentCommand::Logout { name } => logout(config, name).await,
        AgentCommand::Link { name, minutes } => link(config, name, *minutes).await,
    }
}

async fn link(config: &Path, name: &str, minutes: u32) -> Result<bool> {
    let cfg = super::load_config_for_admin(config)?;
    let Some(agent) = cfg.agent_by_name(name) else {
        bail!("no agent named {name:?} in the configuration");
    };
    let Some(http) = &cfg.http else {
        bail!("the dashboard needs the HTTP listener: add an [http] section");
    };
    let base = http
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", http.listen));
    let token = auth::new_token();
    let now = SystemClock.now();
    let expires = now + chrono::Duration::minutes(i64::from(minutes));
    let store = Store::open(&cfg.database_path).await?;
    let mut tx = store.begin_write().await?;
    crate::store::web_auth::insert_login_link(
        &mut tx,
        &auth::token_digest(&token),
        &agent.name,
        &db_time(now),
        &db_time(expires),
    )
    .await?;
    tx.commit().await?;
    store.close().await;
    println!("{base}/login/link/{token}");
    eprintln!(
        "The link logs {} in once, until {} (UTC); keep it to them.",
        agent.name,
        expires.format("%Y-%m-%d %H:%M")
    );
    Ok(true)
}

async fn sessions(config: &Path, name: Option<&str>, json: bool) -> Result<bool> {
    let cfg = super::load_config_for_admin(config)?;
    if let Some(name) = name
        && cfg.agent_by_name(name).is_none()
    {
        bail!("no agent named {name:?} in the configuration");
    }
    let store = Store::open(&cfg.database_path).await?;
    let mut conn = store.pool().acquire().await?;
    let now = db_time(SystemClock.now());
    let rows = crate::store::web_auth::list_sessions(&mut conn, name, &now).await?;
    drop(conn);
    store.close().await;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else if rows.is_empty() {
        println!("No live dashboard sessions.");
    } else {
        println!("{:<20} {:<28} {:<28}", "AGENT", "SINCE", "UNTIL");
        for r in &rows {
            println!("{:<20} {:<28} {:<28}", r.agent, r.created_at, r.expires_at);
        }
    }
    Ok(true)
}

async fn logout(config: &Path, name: &str) -> Result<bool> {
    let cfg = super::load_config_for_admin(config)?;
    // An agent since removed from the configuration may still have rows: end them too.
    let store = Store::open(&cfg.database_path).await?;
    let mut tx = store.begin_write().await?;
    let n = crate::store::web_auth::delete_agent_sessions(&mut tx, name).await?;
    tx.commit().await?;
    store.close().await;
    if n == 0 && cfg.agent_by_name(name).is_none() {
        bail!("no agent named {name:?} in the configuration, and no sessions under that name");
    }
    println!("Ended {n} dashboard session(s) of {name}.");
    Ok(true)
}

async fn password(config: &Path, name: &str) -> Result<bool> {
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
