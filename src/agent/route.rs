//! Routing with the database's view of who is available: the glue between
//! `rules::routing` (pure) and the store, for `#transfer`.

use chrono::{DateTime, Utc};

use crate::commands::plan::TransferRoute;
use crate::config::Config;
use crate::rules::routing::{self, AgentAvailability, Route, RouteInput};
use crate::store::{Conn, Result, triage};

/// Where `#transfer <team>` sends a ticket by the team's strategy, or why it cannot
/// (no such team, with the closest name).
pub async fn transfer_route(
    cfg: &Config,
    conn: &mut Conn,
    team: &str,
    now: DateTime<Utc>,
) -> Result<std::result::Result<TransferRoute, String>> {
    let Some(t) = cfg.teams.iter().find(|t| t.name.eq_ignore_ascii_case(team)) else {
        let closest = cfg
            .teams
            .iter()
            .map(|t| (strsim::levenshtein(&t.name.to_lowercase(), team), &t.name))
            .filter(|(d, _)| *d <= 2)
            .min_by_key(|(d, _)| *d);
        return Ok(Err(match closest {
            Some((_, name)) => format!("no team named {team}; did you mean {name}?"),
            None if cfg.teams.is_empty() => {
                format!("no team named {team}: no [[team]] is configured")
            }
            None => format!(
                "no team named {team}; the teams are {}",
                cfg.teams
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }));
    };
    let away = triage::away_agents(conn).await?;
    let open = triage::open_counts(conn).await?;
    let cursors = triage::team_cursors(conn).await?;
    let agents: Vec<AgentAvailability<'_>> = cfg
        .agents
        .iter()
        .map(|a| AgentAvailability {
            name: &a.name,
            away: away.contains(&a.name),
            hours: a.hours.as_ref(),
            skills: &a.skills,
            open_tickets: open.get(&a.name).copied().unwrap_or(0),
        })
        .collect();
    let route = routing::route(&RouteInput {
        team: t,
        agents: &agents,
        last_assigned: cursors.get(&t.name).map(String::as_str),
        category: None,
        language: None,
        now,
    });
    Ok(Ok(match route {
        Route::Agent(name) => TransferRoute {
            team: t.name.clone(),
            assignee: Some(name),
            why_nobody: None,
        },
        Route::Nobody { why, .. } => TransferRoute {
            team: t.name.clone(),
            assignee: None,
            why_nobody: Some(why),
        },
    }))
}
