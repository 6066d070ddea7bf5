//! `postdesk rules test FILE.eml [--json]`: what triage would do with a message (category,
//! priority, team, assignee, forced-human, rules fired, acknowledgement or not), against
//! the configured rules and, when the database exists, who is available now. Changes
//! nothing.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::channels::email::loops::autoreply_suppression;
use crate::channels::email::parse;
use crate::clock::{Clock, SystemClock};
use crate::intake::triage::{self, Ask, RoutingState};
use crate::store::Store;
use crate::store::triage::TriageWrites;

#[derive(Debug, clap::Subcommand)]
pub enum RulesCommand {
    /// Show what would happen to a message; changes nothing.
    Test {
        /// A message file (RFC 5322, as saved from a mail client).
        file: PathBuf,
        /// Treat it as a follow-up on an existing ticket, not a new one.
        #[arg(long)]
        follow_up: bool,
        /// The customer's tier.
        #[arg(long)]
        tier: Option<String>,
        /// Print the decision as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn execute(config: &Path, cmd: &RulesCommand) -> Result<bool> {
    let RulesCommand::Test {
        file,
        follow_up,
        tier,
        json,
    } = cmd;
    let cfg = super::load_config_for_admin(config)?;
    let raw = std::fs::read(file).with_context(|| format!("Reading {}", file.display()))?;
    let p = parse::parse(&raw);
    let now = SystemClock.now();
    // Who is available, when there is a database to ask; read only.
    let mut state = RoutingState::default();
    if cfg.database_path.exists() && !cfg.teams.is_empty() {
        let store = Store::open_existing(&cfg.database_path).await?;
        let mut conn = store.pool().acquire().await?;
        state.away = crate::store::triage::away_agents(&mut conn).await?;
        state.open_counts = crate::store::triage::open_counts(&mut conn).await?;
        state.cursors = crate::store::triage::team_cursors(&mut conn).await?;
        drop(conn);
        store.close().await;
    }
    let mut writes = TriageWrites::default();
    let t = triage::triage(
        &cfg,
        &mut state,
        &mut writes,
        &p,
        &Ask {
            signals: None,
            ticket: 0,
            already_forced: false,
            is_new: !follow_up,
            tier: tier.as_deref(),
            raw: &raw,
            now,
        },
    );
    let ack = if *follow_up {
        Err("a follow-up gets no acknowledgement".to_string())
    } else if let Some((topic, _)) = &t.forced {
        Err(format!("forced to a human ({topic})"))
    } else if t.verdict.suppress_ack {
        Err("a rule suppresses it".to_string())
    } else if !cfg.autoreply.enabled {
        Err("[autoreply] is off".to_string())
    } else if let Some(why) =
        autoreply_suppression(&p, &cfg.own_addresses(), &cfg.message_id_domain)
    {
        Err(why)
    } else {
        Ok(())
    };
    let sla = t.sla.clone();
    let out = serde_json::json!({
        "category": t.verdict.category,
        "priority": t.priority.map(|p| p.as_str()).unwrap_or("normal"),
        "tags": t.verdict.tags,
        "team": t.team,
        "assignee": t.assignee,
        "forced_human": t.forced.is_some(),
        "forced_human_match": t.forced.as_ref().map(|(topic, term)| serde_json::json!({"topic": topic, "term": term})),
        "red_alert": t.red_alert,
        "sla": sla,
        "language": t.signals_language,
        "sentiment": t.sentiment,
        "rules_fired": t.verdict.rules_fired,
        "suggested_macros": t.verdict.suggest_macros,
        "acknowledgement": ack.is_ok(),
        "no_acknowledgement_because": ack.as_ref().err(),
    });
    if *json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(true);
    }
    let or_none = |v: Option<&str>| v.unwrap_or("(none)").to_string();
    println!("Subject:       {}", super::term_line(&p.subject));
    println!("Language:      {}", or_none(t.signals_language));
    println!("Sentiment:     {:.2}", t.sentiment);
    println!(
        "Rules fired:   {}",
        if t.verdict.rules_fired.is_empty() {
            "(none)".to_string()
        } else {
            t.verdict.rules_fired.join(", ")
        }
    );
    println!("Category:      {}", or_none(t.verdict.category.as_deref()));
    println!(
        "Priority:      {}",
        t.priority.map_or("normal", |p| p.as_str())
    );
    if !t.verdict.tags.is_empty() {
        println!("Tags:          {}", t.verdict.tags.join(", "));
    }
    println!("Team:          {}", or_none(t.team.as_deref()));
    println!("Assignee:      {}", or_none(t.assignee.as_deref()));
    println!("SLA policy:    {}", or_none(sla.as_deref()));
    match &t.forced {
        Some((topic, term)) => println!("Forced-human:  YES ({topic}: {})", super::term_line(term)),
        None => println!("Forced-human:  no"),
    }
    if let Some(r) = &t.red_alert {
        println!("Red alert:     {r}");
    }
    match &ack {
        Ok(()) => println!("Acknowledge:   yes"),
        Err(why) => println!("Acknowledge:   no ({why})"),
    }
    for m in &t.verdict.suggest_macros {
        println!("Suggests:      #macro {m}");
    }
    Ok(true)
}
