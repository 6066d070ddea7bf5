//! `postdesk template check [--json]`: compiles every template (embedded, and the configured
//! directory's overrides, qualified variants and macros) and renders each in strict mode
//! against the sample data of its kind (`outbound::samples`); each problem names its file,
//! and any problem makes the exit code 1.
//!
//! `postdesk template preview NAME --ticket N [--lang X --tier Y --channel Z] [--json]`:
//! renders `NAME.subject` and `NAME.txt` for a real ticket: the fallback chain of each,
//! the file it chose, and the text. The context is the sample data of `NAME` overlaid with
//! what the database knows (the ticket, its customer, their last message, the article the
//! bot answered with and its score, the assignee as `agent`); the customer's
//! language, tier, the channel and the mood of that message pick the variant unless
//! given. Read only; nothing is sent.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;
use serde_json::{Value, json};

use super::{term_line, term_text};
use crate::channels::email::compose::{plain_line, support_json};
use crate::config::Config;
use crate::domain::TicketId;
use crate::outbound::samples;
use crate::outbound::templates::{ScriptKey, Templates, mood_of};
use crate::store::{Conn, Store, StoreError, messages, tickets};

#[derive(Debug, clap::Subcommand)]
pub enum TemplateCommand {
    /// Compile and render every template in strict mode; list each problem with its file.
    Check {
        /// Print the problems as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Render a template for a ticket in the database, showing which file was chosen.
    Preview {
        /// The template, without kind: `ack`, `bot-answer`, `notify`...
        name: String,
        /// The ticket number.
        #[arg(long)]
        ticket: TicketId,
        /// The language (else the customer's, else their last message's).
        #[arg(long)]
        lang: Option<String>,
        /// The tier (else the customer's).
        #[arg(long)]
        tier: Option<String>,
        /// The channel (else the one of the customer's last message).
        #[arg(long)]
        channel: Option<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn execute(config: &Path, cmd: &TemplateCommand) -> Result<bool> {
    let cfg = super::load_config_for_admin(config)?;
    match cmd {
        TemplateCommand::Check { json } => {
            let problems = Templates::check(cfg.templates_dir.as_deref(), samples::data);
            if *json {
                println!("{}", serde_json::to_string_pretty(&problems)?);
            } else if problems.is_empty() {
                println!("Every template compiles and renders in strict mode.");
            } else {
                for p in &problems {
                    println!("{}: {}", term_line(&p.file), term_line(&p.problem));
                }
                println!("{} problem(s).", problems.len());
            }
            Ok(problems.is_empty())
        }
        TemplateCommand::Preview {
            name,
            ticket,
            lang,
            tier,
            channel,
            json,
        } => {
            let templates = Templates::load(cfg.templates_dir.as_deref())?;
            let store = Store::open_existing(&cfg.database_path).await?;
            let mut conn = store.pool().acquire().await?;
            let given = Given {
                language: lang.as_deref(),
                tier: tier.as_deref(),
                channel: channel.as_deref(),
            };
            let now = jiff::Timestamp::now().to_string();
            let result = preview(&cfg, &templates, &mut conn, name, *ticket, &given, &now).await;
            drop(conn);
            store.close().await;
            let p = match result {
                Ok(p) => p,
                Err(e) => match e.downcast_ref::<StoreError>() {
                    Some(StoreError::NotFound(what)) => {
                        eprintln!("error: {what} does not exist");
                        return Ok(false);
                    }
                    _ => return Err(e),
                },
            };
            if *json {
                println!("{}", serde_json::to_string_pretty(&p)?);
            } else {
                print_preview(&p);
            }
            Ok(p.parts.iter().all(|part| part.error.is_none()))
        }
    }
}

/// What `--lang`, `--tier` and `--channel` say.
#[derive(Debug, Default)]
pub struct Given<'a> {
    pub language: Option<&'a str>,
    pub tier: Option<&'a str>,
    pub channel: Option<&'a str>,
}

/// The result of a preview.
#[derive(Debug, Serialize)]
pub struct Preview {
    pub name: String,
    pub ticket: TicketId,
    /// What picked the variant.
    pub key: KeyView,
    /// The subject (when the template has one), then the body.
    pub parts: Vec<PartView>,
}

#[derive(Debug, Serialize)]
pub struct KeyView {
    pub language: Option<String>,
    pub tier: Option<String>,
    pub channel: Option<String>,
    pub mood: Option<String>,
}

/// One template of a preview: `NAME.subject` or `NAME.txt`.
#[derive(Debug, Serialize)]
pub struct PartView {
    /// `ack.txt`.
    pub template: String,
    /// Every name tried, most specific first.
    pub chain: Vec<String>,
    /// The name chosen and its file.
    pub chosen: String,
    pub file: Option<String>,
    pub text: Option<String>,
    /// Why it did not render.
    pub error: Option<String>,
}

/// Renders `NAME.subject` and `NAME.txt` for `ticket` (see the module documentation).
/// `now` (RFC 3339) is the time the greeting sees.
pub async fn preview(
    cfg: &Config,
    templates: &Templates,
    conn: &mut Conn,
    name: &str,
    ticket: TicketId,
    given: &Given<'_>,
    now: &str,
) -> Result<Preview> {
    let row = tickets::find_ticket(conn, ticket)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("ticket #{ticket}")))?;
    let view = tickets::get_ticket_view(conn, ticket).await?;
    let (stored_tier, stored_language) = crate::store::triage::tiers_of(conn, &[row.customer_id])
        .await?
        .remove(&row.customer_id)
        .unwrap_or_else(|| ("standard".to_string(), None));
    let msgs = messages::list_message_views(conn, ticket).await?;
    let last = msgs
        .iter()
        .rev()
        .find(|m| m.direction == "inbound" && m.kind == "customer");
    let signals = crate::store::triage::message_signals(conn, ticket).await?;
    let (_, last_language, last_sentiment) = last
        .and_then(|m| signals.get(&m.id).cloned())
        .unwrap_or_default();
    let language = given
        .language
        .map(str::to_string)
        .or(stored_language)
        .or(last_language);
    let tier = given.tier.map(str::to_string).or(Some(stored_tier));
    let channel = given
        .channel
        .map(str::to_string)
        .or_else(|| last.map(|m| m.channel.clone()));
    let mood = last_sentiment
        .and_then(|s| mood_of(s, cfg.rules.negative_alert_below()))
        .map(str::to_string);
    let bot = crate::store::kb::bot_states(conn, &[ticket])
        .await?
        .remove(&ticket)
        .unwrap_or_default();
    let article = match bot.article {
        Some(id) => crate::store::kb::get_article(conn, id).await?,
        None => None,
    };
    let key = ScriptKey {
        language: language.as_deref(),
        tier: tier.as_deref(),
        channel: channel.as_deref(),
        mood: mood.as_deref(),
    };
    let real = json!({
        "ticket": {
            "id": ticket,
            "subject": plain_line(&row.subject, 250),
            "token": row.token,
            "status": view.status.as_str(),
            "priority": view.priority.as_str(),
            "created_at": view.created_at,
        },
        "customer": {
            "name": view.customer.name.as_deref().map(|n| plain_line(n, 250)),
            "email": plain_line(&view.customer.email, 250),
            "language": language,
            "tier": tier,
        },
        "message": {
            "text": last.map(|m| m.body_text.chars().take(4000).collect::<String>()).unwrap_or_default(),
            "subject": last.map(|m| plain_line(&m.subject, 250)),
        },
        "agent": agent_json(cfg, view.assignee.as_deref()),
        "bot": {
            "article": bot.article,
            "score": bot.score.map(|x| format!("{x:.2}")),
            "handoff": bot.handoff,
        },
        "handoff_words": cfg.bot.handoff_words,
        "support": support_json(cfg),
        "now": now,
    });
    let mut data = samples::data(if name.is_empty() { "ack" } else { name });
    overlay(&mut data, real);
    // The article the bot answered with, as `compose::bot_answer_data` gives it.
    if let (Some(a), Value::Object(d)) = (&article, &mut data) {
        d.insert(
            "article".into(),
            json!({
                "id": a.id,
                "title": plain_line(&a.title, 250),
                "text": crate::kb::article::plain_text(&a.body),
                "links": a.links,
                "files": a.files.iter().map(|f| plain_line(&f.name, 250)).collect::<Vec<_>>(),
            }),
        );
        if let Some(score) = bot.score {
            d.insert("score".into(), json!(format!("{score:.2}")));
        }
    }
    let mut parts = Vec::new();
    for kind in ["subject", "txt"] {
        let template = format!("{name}.{kind}");
        let chain = Templates::chain(&template, &key);
        let chosen = templates.resolve(&template, &key);
        let file = templates.origin(&chosen).map(str::to_string);
        // A template without a subject (`reply`) shows only its body; an unknown name
        // has neither.
        if file.is_none() {
            continue;
        }
        let (text, error) = match templates.render(&chosen, &data) {
            Ok(t) => (Some(t), None),
            Err(e) => (None, Some(format!("{e:#}"))),
        };
        parts.push(PartView {
            template,
            chain,
            chosen,
            file,
            text,
            error,
        });
    }
    if parts.is_empty() {
        anyhow::bail!("there is no template {name:?} (see `postdesk template check`)");
    }
    Ok(Preview {
        name: name.to_string(),
        ticket,
        key: KeyView {
            language: language.clone(),
            tier: tier.clone(),
            channel: channel.clone(),
            mood: mood.clone(),
        },
        parts,
    })
}

/// `agent` of the context: the ticket's assignee as configured {name (how they sign),
/// handle, email},
/// else the first configured agent (who a preview most likely stands in for), else null.
fn agent_json(cfg: &Config, assignee: Option<&str>) -> Value {
    let agent = assignee
        .and_then(|a| cfg.agents.iter().find(|g| g.name.eq_ignore_ascii_case(a)))
        .or_else(|| cfg.agents.first());
    match agent {
        Some(a) => json!({
            "name": plain_line(&a.display_name, 250),
            "handle": a.name,
            "email": a.email,
        }),
        None => Value::Null,
    }
}

/// `base` with every field of `top` put in, objects merged field by field.
fn overlay(base: &mut Value, top: Value) {
    match (base, top) {
        (Value::Object(b), Value::Object(t)) => {
            for (k, v) in t {
                match b.get_mut(&k) {
                    Some(existing) => overlay(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, t) => *b = t,
    }
}

fn print_preview(p: &Preview) {
    let show = |v: &Option<String>| v.as_deref().map_or("-".to_string(), term_line);
    println!(
        "Ticket #{}: language {}, tier {}, channel {}, mood {}.",
        p.ticket,
        show(&p.key.language),
        show(&p.key.tier),
        show(&p.key.channel),
        show(&p.key.mood)
    );
    for part in &p.parts {
        println!();
        println!(
            "{} -> {} ({})",
            part.template,
            part.chosen,
            part.file
                .as_deref()
                .map_or("not found".to_string(), term_line)
        );
        println!("  tried: {}", part.chain.join(", "));
        match (&part.text, &part.error) {
            (Some(t), _) => println!("\n{}", term_text(t)),
            (None, Some(e)) => println!("\nerror: {}", term_line(e)),
            (None, None) => {}
        }
    }
    println!();
    println!("(Fields the database does not hold come from the sample data of `template check`.)");
}
