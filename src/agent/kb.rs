//! `#kb` and `#wrong` from an authenticated agent: the knowledge base and the classifier,
//! worked from the mail client.
//!
//! - `#kb propose` (on a ticket): the reply's text (after its commands, macros included)
//!   becomes a draft article linked to the ticket, titled by the ticket's subject, in the
//!   language the text is written in, with the ticket's category. Every admin
//!   (`[[agent]] admin = true`) is told, with the draft and the lines to approve or
//!   reject it. The text still reaches the customer unless the reply is a `#note`.
//! - `#kb approve N` / `#kb reject N <reason>`: admins only; a draft becomes published, or
//!   retired with the reason. The proposer is told. Published or retired articles are
//!   changed with `postdesk kb`, not by mail, so a stale mail cannot undo a later review.
//! - `#kb request <topic>`: counted per topic (case and spacing folded) for the monthly
//!   report and `postdesk kb requests`.
//! - `#kb search <words>`: the best articles of any state and language, in the receipt.
//! - `#wrong <category>` (on a ticket): stored with the ticket's first customer text and
//!   what the classifier (or triage) had said, trains the classifier, and sets the
//!   ticket's category.
//!
//! Decisions: these are not undoable with `#undo` (they are not ticket changes); each
//! gives one receipt line, applied or rejected.

use anyhow::Result;
use chrono::{DateTime, Utc};

use super::Identity;
use crate::channels::email::compose;
use crate::clock::db_time;
use crate::commands::parse::{Command, KbCommand};
use crate::domain::{MessageKind, TicketId};
use crate::intake::Services;
use crate::kb::article::Status;
use crate::kb::index::{KbIndex, Query};
use crate::store::Conn;
use crate::store::kb::{self as kb_store, NewArticle};

/// Articles listed for `#kb search`.
pub const SEARCH_RESULTS: usize = 5;

/// What the commands did: receipt lines.
#[derive(Debug, Default)]
pub(super) struct KbReport {
    pub applied: Vec<String>,
    pub rejected: Vec<(String, String)>,
}

/// True for the commands this module runs.
pub(super) fn is_kb(c: &Command) -> bool {
    matches!(c, Command::Kb(_) | Command::Wrong(_))
}

/// Runs the `#kb` and `#wrong` commands among `commands`. `ticket` is `None` for mail to
/// the commands address naming no ticket; `answer` is the reply's text for the customer.
pub(super) async fn run(
    pl: &Services,
    conn: &mut Conn,
    ticket: Option<TicketId>,
    identity: &Identity,
    commands: &[(usize, String, Command)],
    answer: &str,
    now: DateTime<Utc>,
) -> Result<KbReport> {
    let mut report = KbReport::default();
    for (_, line, command) in commands.iter().filter(|(_, _, c)| is_kb(c)) {
        let outcome = match command {
            Command::Kb(k) => kb(pl, conn, ticket, identity, k, answer, now).await?,
            Command::Wrong(category) => wrong(pl, conn, ticket, identity, category, now).await?,
            _ => continue,
        };
        match outcome {
            Ok(what) => report.applied.push(format!("{line}: {what}")),
            Err(why) => report.rejected.push((line.clone(), why)),
        }
    }
    Ok(report)
}

type Outcome = std::result::Result<String, String>;

async fn kb(
    pl: &Services,
    conn: &mut Conn,
    ticket: Option<TicketId>,
    identity: &Identity,
    k: &KbCommand,
    answer: &str,
    now: DateTime<Utc>,
) -> Result<Outcome> {
    let now_s = db_time(now);
    let cfg = pl.config();
    let is_admin = cfg
        .agents
        .iter()
        .any(|a| a.name == identity.name && a.admin);
    Ok(match k {
        KbCommand::Propose => {
            let Some(ticket) = ticket else {
                return Ok(Err(
                    "#kb propose needs a ticket: reply to its notification with your answer".into(),
                ));
            };
            propose(pl, conn, ticket, identity, answer, &now_s).await?
        }
        KbCommand::Approve(n) | KbCommand::Reject(n, _) if !is_admin => {
            let _ = n;
            Err("only admins ([[agent]] admin = true) approve or reject articles".into())
        }
        KbCommand::Approve(n) => review(pl, conn, *n, identity, None, &now_s).await?,
        KbCommand::Reject(n, why) => review(pl, conn, *n, identity, Some(why), &now_s).await?,
        KbCommand::Request(topic) => {
            let times = kb_store::add_request(conn, topic, ticket, &identity.name, &now_s).await?;
            Ok(format!(
                "recorded for the admins; this topic has been asked {times} time{}",
                if times == 1 { "" } else { "s" }
            ))
        }
        KbCommand::Search(words) => Ok(search(pl, conn, words).await?),
    })
}

/// The ticket's subject without reply prefixes and ticket tags.
fn title_of(subject: &str) -> String {
    let (base, _) = crate::threading::subject::strip_reply_prefixes(subject);
    let base = crate::threading::subject::without_ticket_tags(&base);
    let base = base.trim();
    if base.is_empty() {
        "(no subject)".to_string()
    } else {
        crate::kb::text::cut(base, kb_store::MAX_TITLE).to_string()
    }
}

async fn propose(
    pl: &Services,
    conn: &mut Conn,
    ticket: TicketId,
    identity: &Identity,
    answer: &str,
    now: &str,
) -> Result<Outcome> {
    let answer = answer.trim();
    if answer.is_empty() {
        return Ok(Err(
            "#kb propose needs your answer below the command lines".into()
        ));
    }
    let facts = kb_store::ticket_facts(conn, ticket).await?;
    let language = crate::rules::language::detect(answer)
        .map(str::to_string)
        .or(facts.language.clone())
        .unwrap_or_else(|| "en".to_string());
    let article = NewArticle {
        title: title_of(&facts.subject),
        body: answer.to_string(),
        language,
        category: facts.category.clone(),
        status: Some(Status::Draft),
        source_ticket: Some(ticket),
        proposed_by: Some(identity.name.clone()),
        ..NewArticle::default()
    };
    if let Err(why) = kb_store::check(&article) {
        return Ok(Err(format!("no draft: {why}")));
    }
    let id = kb_store::insert_article(conn, &article, now).await?;
    let admins: Vec<String> = pl
        .config()
        .agents
        .iter()
        .filter(|a| a.admin)
        .map(|a| a.email.clone())
        .collect();
    if admins.is_empty() {
        return Ok(Ok(format!(
            "draft article {id} saved; no admin is configured to review it (postdesk kb publish {id})"
        )));
    }
    let mut lines = vec![
        format!(
            "{} proposed a knowledge-base article from ticket #{ticket}.",
            identity.name
        ),
        format!(
            "Draft {id}: {} ({}, {})",
            article.title,
            article.language,
            article.category.as_deref().unwrap_or("no category")
        ),
        String::new(),
        "To publish it, write to the commands address:".into(),
        format!("#kb approve {id}"),
        "or, to turn it down:".into(),
        format!("#kb reject {id} <why>"),
        String::new(),
        "The draft:".into(),
    ];
    lines.extend(answer.lines().map(str::to_string));
    notify(pl, conn, &admins, "a draft article to review", &lines, now).await?;
    Ok(Ok(format!(
        "draft article {id} saved; the admins are asked to review it"
    )))
}

async fn review(
    pl: &Services,
    conn: &mut Conn,
    id: i64,
    identity: &Identity,
    reject: Option<&str>,
    now: &str,
) -> Result<Outcome> {
    let Some(article) = kb_store::get_article(conn, id).await? else {
        return Ok(Err(format!("there is no article {id}")));
    };
    if article.status != Status::Draft {
        return Ok(Err(format!(
            "article {id} is {}, not a draft; change it with postdesk kb",
            article.status.as_str()
        )));
    }
    let (status, done) = match reject {
        None => (Status::Published, "published"),
        Some(_) => (Status::Retired, "rejected"),
    };
    kb_store::set_status(conn, id, status, Some(&identity.name), reject, now).await?;
    if let Some(proposer) = article
        .proposed_by
        .as_deref()
        .filter(|p| *p != identity.name)
        .and_then(|p| pl.config().agents.iter().find(|a| a.name == p))
    {
        let mut lines = vec![format!(
            "{} {done} your draft article {id}: {}",
            identity.name, article.title
        )];
        if let Some(why) = reject {
            lines.push(format!("Why: {why}"));
        }
        notify(
            pl,
            conn,
            std::slice::from_ref(&proposer.email),
            "your draft article",
            &lines,
            now,
        )
        .await?;
    }
    Ok(Ok(match reject {
        None => format!(
            "article {id} ({}) is published; the bot may answer with it",
            article.title
        ),
        Some(_) => format!("article {id} ({}) is rejected and retired", article.title),
    }))
}

/// The top articles for `words`: one line each, best first.
async fn search(pl: &Services, conn: &mut Conn, words: &str) -> Result<String> {
    let q = Query {
        text: words,
        language: None,
        published_only: false,
        limit: SEARCH_RESULTS,
    };
    // The daemon's index when the bot runs; otherwise a copy built for this search.
    let hits = match pl.kb() {
        Some(index) => index.search(&q)?,
        None => {
            let index = KbIndex::in_memory()?;
            index.rebuild(&kb_store::all_for_index(conn).await?)?;
            index.search(&q)?
        }
    };
    if hits.is_empty() {
        return Ok(format!(
            "no article matches; #kb request {words} asks the admins for one"
        ));
    }
    let ids: Vec<i64> = hits.iter().map(|h| h.id).collect();
    let articles = kb_store::articles_by_ids(conn, &ids).await?;
    let mut out = format!("{} article(s):", hits.len());
    for h in &hits {
        if let Some(a) = articles.iter().find(|a| a.id == h.id) {
            out.push_str(&format!(
                "\n    {} [{}, {}] {} (score {:.2})",
                a.id,
                a.status.as_str(),
                a.language,
                compose::neutralised(&a.title, 120),
                h.score
            ));
        }
    }
    Ok(out)
}

async fn wrong(
    _pl: &Services,
    conn: &mut Conn,
    ticket: Option<TicketId>,
    identity: &Identity,
    category: &str,
    now: DateTime<Utc>,
) -> Result<Outcome> {
    let Some(ticket) = ticket else {
        return Ok(Err(
            "#wrong needs a ticket: reply to its notification".into()
        ));
    };
    let now_s = db_time(now);
    let facts = kb_store::ticket_facts(conn, ticket).await?;
    let Some((message, text, language)) = kb_store::first_customer_text(conn, ticket).await? else {
        return Ok(Err(
            "this ticket has no customer message to learn from".into()
        ));
    };
    let predicted = facts.predicted_category.or(facts.category);
    if predicted.as_deref() == Some(category) {
        return Ok(Err(format!(
            "the ticket is already taken for {category}; nothing to correct"
        )));
    }
    kb_store::record_correction(
        conn,
        ticket,
        Some(message),
        &identity.name,
        predicted.as_deref(),
        category,
        &text,
        language.as_deref(),
        &now_s,
    )
    .await?;
    crate::store::triage::set_category(conn, ticket, Some(category), &now_s).await?;
    Ok(Ok(format!(
        "learnt: this question is {category}, not {}; the ticket's category is now {category}",
        predicted.as_deref().unwrap_or("uncategorised")
    )))
}

/// An `agent-notice` to `to`, on no ticket.
async fn notify(
    pl: &Services,
    conn: &mut Conn,
    to: &[String],
    what: &str,
    lines: &[String],
    now: &str,
) -> Result<()> {
    let mail = compose::internal_mail(
        pl.config(),
        pl.templates(),
        &compose::InternalMail {
            template: "agent-notice",
            ticket: None,
            to,
            data: serde_json::json!({
                "what": what,
                "lines": lines.iter().map(|l| compose::neutralised(l, 2000)).collect::<Vec<_>>(),
            }),
            urgent: false,
        },
    )?;
    super::queue_internal(pl, conn, None, MessageKind::Receipt, &mail, now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_lose_reply_prefixes_and_tags() {
        assert_eq!(
            title_of("Re: [#12] How do I get a refund?"),
            "How do I get a refund?"
        );
        assert_eq!(title_of("回复: 怎么退款"), "怎么退款");
        assert_eq!(title_of("  "), "(no subject)");
    }
}
