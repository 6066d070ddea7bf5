//! The knowledge base's tables: articles (the source of truth the search index is rebuilt
//! from), their files, agents' requests for missing articles, the bot's answers and
//! handoffs on tickets, and `#wrong` corrections with the classifier's counts.
//!
//! Every article write appends a `kb_article_changed` event in its transaction; the
//! daemon's index follower reads them and updates the search index (`kb::index`).

use std::collections::HashMap;

use serde::Serialize;
use sqlx::{Row, SqliteConnection};

use super::events::{self, NewEvent};
use super::{Result, StoreError};
use crate::domain::{EventKind, TicketId};
use crate::kb::article::{IndexedArticle, Status};
use crate::kb::classifier::Model;

/// Longest title, body, tag list and topic accepted, in bytes: articles come from agents'
/// mail, so they are bounded like everything else written from outside.
pub const MAX_TITLE: usize = 300;
pub const MAX_BODY: usize = 256 * 1024;
pub const MAX_TAGS: usize = 32;
pub const MAX_FILE: usize = 10 * 1024 * 1024;

/// An article to write.
#[derive(Debug, Clone, Default)]
pub struct NewArticle {
    pub slug: Option<String>,
    pub title: String,
    pub body: String,
    pub language: String,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub links: Vec<String>,
    pub status: Option<Status>,
    pub source_ticket: Option<TicketId>,
    pub proposed_by: Option<String>,
}

/// A stored article.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Article {
    pub id: i64,
    pub slug: Option<String>,
    pub title: String,
    pub body: String,
    pub language: String,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub links: Vec<String>,
    pub status: Status,
    pub source_ticket: Option<TicketId>,
    pub proposed_by: Option<String>,
    pub reviewed_by: Option<String>,
    pub review_note: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The files it carries (name, type, size), without their bytes.
    pub files: Vec<ArticleFile>,
}

impl Article {
    pub fn indexed(&self) -> IndexedArticle {
        IndexedArticle {
            id: self.id,
            title: self.title.clone(),
            body: self.body.clone(),
            language: self.language.clone(),
            category: self.category.clone(),
            tags: self.tags.clone(),
            status: self.status,
        }
    }
}

/// A file an article carries.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ArticleFile {
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
}

/// Checks an article's fields; the problem in words.
pub fn check(a: &NewArticle) -> std::result::Result<(), String> {
    if a.title.trim().is_empty() {
        return Err("the title is empty".into());
    }
    if a.title.len() > MAX_TITLE {
        return Err(format!("the title is longer than {MAX_TITLE} bytes"));
    }
    if a.body.trim().is_empty() {
        return Err("the body is empty".into());
    }
    if a.body.len() > MAX_BODY {
        return Err(format!("the body is longer than {} KiB", MAX_BODY / 1024));
    }
    if !is_language_code(&a.language) {
        return Err(format!(
            "language {:?} is not a language code such as en or zh",
            a.language
        ));
    }
    if a.tags.len() > MAX_TAGS {
        return Err(format!("more than {MAX_TAGS} tags"));
    }
    if let Some(bad) = a
        .links
        .iter()
        .find(|l| !(l.starts_with("https://") || l.starts_with("http://")) || l.len() > 2048)
    {
        return Err(format!("link {bad:?} is not an http(s) URL"));
    }
    Ok(())
}

/// `en`, `zh`, `pt-br`: 2-3 lowercase letters, optionally a region.
pub fn is_language_code(s: &str) -> bool {
    let mut parts = s.split('-');
    let first = parts.next().unwrap_or("");
    (2..=3).contains(&first.len())
        && first.chars().all(|c| c.is_ascii_lowercase())
        && parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

fn changed(id: i64) -> NewEvent {
    NewEvent {
        kind: EventKind::KbArticleChanged,
        ticket_id: None,
        message_row: None,
        data: serde_json::json!({ "article": id }).to_string(),
    }
}

/// Inserts an article (draft unless told otherwise); its id.
pub async fn insert_article(conn: &mut SqliteConnection, a: &NewArticle, now: &str) -> Result<i64> {
    check(a).map_err(StoreError::Conflict)?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO kb_articles (slug, title, body, language, category, tags, links, status, \
         source_ticket, proposed_by, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(&a.slug)
    .bind(a.title.trim())
    .bind(&a.body)
    .bind(&a.language)
    .bind(&a.category)
    .bind(serde_json::to_string(&a.tags).unwrap_or_else(|_| "[]".into()))
    .bind(serde_json::to_string(&a.links).unwrap_or_else(|_| "[]".into()))
    .bind(a.status.unwrap_or(Status::Draft).as_str())
    .bind(a.source_ticket)
    .bind(&a.proposed_by)
    .bind(now)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    events::append(conn, changed(id), now).await?;
    Ok(id)
}

/// Inserts or replaces the article named `a.slug` (`kb import`): its id and whether it
/// was new. Files are kept; a replaced article keeps its id.
pub async fn upsert_by_slug(
    conn: &mut SqliteConnection,
    a: &NewArticle,
    now: &str,
) -> Result<(i64, bool)> {
    let Some(slug) = &a.slug else {
        return Ok((insert_article(conn, a, now).await?, true));
    };
    let existing: Option<i64> = sqlx::query_scalar("SELECT id FROM kb_articles WHERE slug = ?")
        .bind(slug)
        .fetch_optional(&mut *conn)
        .await?;
    match existing {
        None => Ok((insert_article(conn, a, now).await?, true)),
        Some(id) => {
            update_article(conn, id, a, now).await?;
            Ok((id, false))
        }
    }
}

/// Replaces article `id`'s fields with `a` (`status` only when given).
pub async fn update_article(
    conn: &mut SqliteConnection,
    id: i64,
    a: &NewArticle,
    now: &str,
) -> Result<()> {
    check(a).map_err(StoreError::Conflict)?;
    let done = sqlx::query(
        "UPDATE kb_articles SET title = ?, body = ?, language = ?, category = ?, tags = ?, \
         links = ?, status = COALESCE(?, status), updated_at = ? WHERE id = ?",
    )
    .bind(a.title.trim())
    .bind(&a.body)
    .bind(&a.language)
    .bind(&a.category)
    .bind(serde_json::to_string(&a.tags).unwrap_or_else(|_| "[]".into()))
    .bind(serde_json::to_string(&a.links).unwrap_or_else(|_| "[]".into()))
    .bind(a.status.map(Status::as_str))
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("article {id}")));
    }
    events::append(conn, changed(id), now).await
}

/// Sets an article's status (publish, retire, approve, reject), with who reviewed it and
/// why; the status it had before.
pub async fn set_status(
    conn: &mut SqliteConnection,
    id: i64,
    status: Status,
    reviewer: Option<&str>,
    note: Option<&str>,
    now: &str,
) -> Result<Status> {
    let before: Option<String> = sqlx::query_scalar("SELECT status FROM kb_articles WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(before) = before.as_deref().and_then(Status::parse) else {
        return Err(StoreError::NotFound(format!("article {id}")));
    };
    sqlx::query(
        "UPDATE kb_articles SET status = ?, reviewed_by = COALESCE(?, reviewed_by), \
         review_note = ?, updated_at = ? WHERE id = ?",
    )
    .bind(status.as_str())
    .bind(reviewer)
    .bind(note)
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    events::append(conn, changed(id), now).await?;
    Ok(before)
}

const ARTICLE_COLUMNS: &str = "id, slug, title, body, language, category, tags, links, status, \
     source_ticket, proposed_by, reviewed_by, review_note, created_at, updated_at";

fn article_of(r: &sqlx::sqlite::SqliteRow) -> Result<Article> {
    let tags: String = r.try_get("tags")?;
    let links: String = r.try_get("links")?;
    let status: String = r.try_get("status")?;
    Ok(Article {
        id: r.try_get("id")?,
        slug: r.try_get("slug")?,
        title: r.try_get("title")?,
        body: r.try_get("body")?,
        language: r.try_get("language")?,
        category: r.try_get("category")?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        links: serde_json::from_str(&links).unwrap_or_default(),
        status: Status::parse(&status).unwrap_or(Status::Draft),
        source_ticket: r.try_get("source_ticket")?,
        proposed_by: r.try_get("proposed_by")?,
        reviewed_by: r.try_get("reviewed_by")?,
        review_note: r.try_get("review_note")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        files: Vec::new(),
    })
}

/// Article `id` with its file list.
pub async fn get_article(conn: &mut SqliteConnection, id: i64) -> Result<Option<Article>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ARTICLE_COLUMNS} FROM kb_articles WHERE id = ?"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut a = article_of(&row)?;
    a.files = files_of(conn, id).await?;
    Ok(Some(a))
}

/// Articles by id, in the order of `ids` (missing ones skipped), without file lists.
pub async fn articles_by_ids(conn: &mut SqliteConnection, ids: &[i64]) -> Result<Vec<Article>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ARTICLE_COLUMNS} FROM kb_articles WHERE id IN (SELECT value FROM json_each(?))"
    )))
    .bind(serde_json::to_string(ids).unwrap_or_else(|_| "[]".into()))
    .fetch_all(&mut *conn)
    .await?;
    let mut by_id: HashMap<i64, Article> = HashMap::new();
    for r in &rows {
        let a = article_of(r)?;
        by_id.insert(a.id, a);
    }
    Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
}

/// Articles, newest first, filtered by status and language.
pub async fn list_articles(
    conn: &mut SqliteConnection,
    status: Option<Status>,
    language: Option<&str>,
    limit: i64,
) -> Result<Vec<Article>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ARTICLE_COLUMNS} FROM kb_articles \
         WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR language = ?2) \
         ORDER BY id DESC LIMIT ?3"
    )))
    .bind(status.map(Status::as_str))
    .bind(language)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(article_of).collect()
}

/// How many articles there are, in every state.
pub async fn count_articles(conn: &mut SqliteConnection) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM kb_articles")
        .fetch_one(conn)
        .await?)
}

/// Every article, as the search index holds them (a rebuild).
pub async fn all_for_index(conn: &mut SqliteConnection) -> Result<Vec<IndexedArticle>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ARTICLE_COLUMNS} FROM kb_articles ORDER BY id"
    )))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| article_of(r).map(|a| a.indexed()))
        .collect()
}

/// Attaches a file to an article (replacing one of the same name).
pub async fn add_file(
    conn: &mut SqliteConnection,
    article: i64,
    name: &str,
    content_type: &str,
    data: &[u8],
    now: &str,
) -> Result<()> {
    use sha2::Digest;
    if data.len() > MAX_FILE {
        return Err(StoreError::Conflict(format!(
            "file {name:?} is larger than {} MiB",
            MAX_FILE / 1024 / 1024
        )));
    }
    let sha = hex::encode(sha2::Sha256::digest(data));
    sqlx::query(
        "INSERT INTO kb_files (article_id, name, content_type, size, sha256, data) \
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(article_id, name) DO UPDATE SET \
         content_type = excluded.content_type, size = excluded.size, sha256 = excluded.sha256, \
         data = excluded.data",
    )
    .bind(article)
    .bind(name)
    .bind(content_type)
    .bind(data.len() as i64)
    .bind(sha)
    .bind(data)
    .execute(&mut *conn)
    .await?;
    events::append(conn, changed(article), now).await
}

/// The files of an article, without their bytes.
pub async fn files_of(conn: &mut SqliteConnection, article: i64) -> Result<Vec<ArticleFile>> {
    let rows = sqlx::query(
        "SELECT name, content_type, size, sha256 FROM kb_files WHERE article_id = ? ORDER BY name",
    )
    .bind(article)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ArticleFile {
                name: r.try_get("name")?,
                content_type: r.try_get("content_type")?,
                size: r.try_get("size")?,
                sha256: r.try_get("sha256")?,
            })
        })
        .collect()
}

/// The bytes of an article's files: (name, content type, data).
pub async fn file_data(
    conn: &mut SqliteConnection,
    article: i64,
) -> Result<Vec<(String, String, Vec<u8>)>> {
    let rows = sqlx::query(
        "SELECT name, content_type, data FROM kb_files WHERE article_id = ? ORDER BY name",
    )
    .bind(article)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("name")?,
                r.try_get("content_type")?,
                r.try_get("data")?,
            ))
        })
        .collect()
}

/// The grouping key of a request topic: lowercased, whitespace folded.
pub fn topic_key(topic: &str) -> String {
    topic
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Records `#kb request <topic>`; how often this topic has been asked, this one included.
pub async fn add_request(
    conn: &mut SqliteConnection,
    topic: &str,
    ticket: Option<TicketId>,
    agent: &str,
    now: &str,
) -> Result<i64> {
    let key = topic_key(topic);
    sqlx::query(
        "INSERT INTO kb_requests (topic, topic_key, ticket_id, agent, created_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(topic.trim())
    .bind(&key)
    .bind(ticket)
    .bind(agent)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    events::append(
        conn,
        NewEvent {
            kind: EventKind::KbRequested,
            ticket_id: ticket,
            message_row: None,
            data: serde_json::json!({ "topic": key, "agent": agent }).to_string(),
        },
        now,
    )
    .await?;
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM kb_requests WHERE topic_key = ?")
            .bind(&key)
            .fetch_one(conn)
            .await?,
    )
}

/// A requested topic and how often it was asked.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RequestCount {
    pub topic: String,
    pub count: i64,
    pub last_at: String,
}

/// Requested topics since `since`, most asked first.
pub async fn request_counts(conn: &mut SqliteConnection, since: &str) -> Result<Vec<RequestCount>> {
    let rows = sqlx::query(
        "SELECT MIN(topic) AS topic, COUNT(*) AS n, MAX(created_at) AS last_at FROM kb_requests \
         WHERE created_at >= ? GROUP BY topic_key ORDER BY n DESC, topic_key",
    )
    .bind(since)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(RequestCount {
                topic: r.try_get("topic")?,
                count: r.try_get("n")?,
                last_at: r.try_get("last_at")?,
            })
        })
        .collect()
}

/// What the bot did on a ticket.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct BotState {
    pub article: Option<i64>,
    pub score: Option<f64>,
    pub at: Option<String>,
    pub handoff: Option<String>,
    pub handoff_at: Option<String>,
    pub predicted_category: Option<String>,
}

/// The bot's state of these tickets (absent: the bot never acted).
pub async fn bot_states(
    conn: &mut SqliteConnection,
    tickets: &[TicketId],
) -> Result<HashMap<TicketId, BotState>> {
    if tickets.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query(
        "SELECT id, bot_article, bot_score, bot_at, handoff, handoff_at, predicted_category \
         FROM tickets WHERE id IN (SELECT value FROM json_each(?)) \
         AND (bot_article IS NOT NULL OR handoff IS NOT NULL OR predicted_category IS NOT NULL)",
    )
    .bind(serde_json::to_string(tickets).unwrap_or_else(|_| "[]".into()))
    .fetch_all(conn)
    .await?;
    let mut out = HashMap::new();
    for r in &rows {
        out.insert(
            r.try_get("id")?,
            BotState {
                article: r.try_get("bot_article")?,
                score: r.try_get("bot_score")?,
                at: r.try_get("bot_at")?,
                handoff: r.try_get("handoff")?,
                handoff_at: r.try_get("handoff_at")?,
                predicted_category: r.try_get("predicted_category")?,
            },
        );
    }
    Ok(out)
}

/// One bot change on an existing ticket, written by the unit of work.
#[derive(Debug, Clone, PartialEq)]
pub enum BotWrite {
    /// A person takes over (`reason`: asked, not_helped, wrote_again...).
    Handoff { ticket: TicketId, reason: String },
    /// The customer was satisfied with the bot's answer: resolved without a human (the
    /// unit sets the status).
    Deflected { ticket: TicketId },
}

/// Applies the unit's bot changes with their events.
pub async fn write_bot(conn: &mut SqliteConnection, writes: &[BotWrite], now: &str) -> Result<()> {
    for w in writes {
        match w {
            BotWrite::Handoff { ticket, reason } => {
                sqlx::query(
                    "UPDATE tickets SET handoff = ?, handoff_at = ? WHERE id = ? AND handoff IS NULL",
                )
                .bind(reason)
                .bind(now)
                .bind(ticket)
                .execute(&mut *conn)
                .await?;
                events::append(
                    conn,
                    NewEvent::new(
                        EventKind::BotHandoff,
                        *ticket,
                        serde_json::json!({ "reason": reason }),
                    ),
                    now,
                )
                .await?;
            }
            // The status change itself is the unit's (with its `status_changed` event).
            BotWrite::Deflected { ticket } => {
                events::append(
                    conn,
                    NewEvent::new(EventKind::BotDeflected, *ticket, serde_json::json!({})),
                    now,
                )
                .await?;
            }
        }
    }
    Ok(())
}

/// A `#wrong` correction.
#[derive(Debug, Clone, Serialize, PartialEq, sqlx::FromRow)]
pub struct Correction {
    pub id: i64,
    pub ticket_id: TicketId,
    pub message_id: Option<i64>,
    pub agent: String,
    pub predicted: Option<String>,
    pub correct: String,
    pub text: String,
    pub language: Option<String>,
    pub created_at: String,
}

/// Records a correction, trains the classifier's counts with it, and sets the ticket's
/// category; the previous category.
#[allow(clippy::too_many_arguments)]
pub async fn record_correction(
    conn: &mut SqliteConnection,
    ticket: TicketId,
    message: Option<i64>,
    agent: &str,
    predicted: Option<&str>,
    correct: &str,
    text: &str,
    language: Option<&str>,
    now: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO corrections (ticket_id, message_id, agent, predicted, correct, text, language, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(ticket)
    .bind(message)
    .bind(agent)
    .bind(predicted)
    .bind(correct)
    .bind(crate::kb::text::cut(text, crate::kb::text::MAX_TEXT_BYTES))
    .bind(language)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    train(conn, text, correct).await?;
    events::append(
        conn,
        NewEvent::new(
            EventKind::CategoryCorrected,
            ticket,
            serde_json::json!({ "from": predicted, "to": correct, "agent": agent }),
        ),
        now,
    )
    .await
}

/// Adds one labelled text to the classifier's counts.
pub async fn train(conn: &mut SqliteConnection, text: &str, category: &str) -> Result<()> {
    let mut counts: HashMap<String, i64> = HashMap::new();
    let features = crate::kb::classifier::features(text);
    for f in &features {
        *counts.entry(f.clone()).or_default() += 1;
    }
    sqlx::query(
        "INSERT INTO classifier_categories (category, docs, tokens) VALUES (?1, 1, ?2) \
         ON CONFLICT(category) DO UPDATE SET docs = docs + 1, tokens = tokens + ?2",
    )
    .bind(category)
    .bind(features.len() as i64)
    .execute(&mut *conn)
    .await?;
    let json = serde_json::to_string(&counts).unwrap_or_else(|_| "{}".into());
    sqlx::query(
        "INSERT INTO classifier_tokens (category, token, count) \
         SELECT ?1, key, value FROM json_each(?2) WHERE true \
         ON CONFLICT(category, token) DO UPDATE SET count = count + excluded.count",
    )
    .bind(category)
    .bind(json)
    .execute(conn)
    .await?;
    Ok(())
}

/// The classifier as the database holds it.
pub async fn load_model(conn: &mut SqliteConnection) -> Result<Model> {
    let mut m = Model::default();
    let cats = sqlx::query("SELECT category, docs, tokens FROM classifier_categories")
        .fetch_all(&mut *conn)
        .await?;
    for r in &cats {
        let c: String = r.try_get("category")?;
        let docs: i64 = r.try_get("docs")?;
        let tokens: i64 = r.try_get("tokens")?;
        m.categories
            .insert(c, (docs.max(0) as u64, tokens.max(0) as u64));
    }
    let toks = sqlx::query("SELECT category, token, count FROM classifier_tokens")
        .fetch_all(conn)
        .await?;
    for r in &toks {
        let c: String = r.try_get("category")?;
        let t: String = r.try_get("token")?;
        let n: i64 = r.try_get("count")?;
        m.tokens.insert((c, t), n.max(0) as u64);
    }
    Ok(m)
}

/// Every correction, oldest first.
pub async fn corrections(conn: &mut SqliteConnection) -> Result<Vec<Correction>> {
    Ok(sqlx::query_as(
        "SELECT id, ticket_id, message_id, agent, predicted, correct, text, language, created_at \
         FROM corrections ORDER BY id",
    )
    .fetch_all(conn)
    .await?)
}

/// The text of a ticket's first customer message (what the bot read), and its row.
pub async fn first_customer_text(
    conn: &mut SqliteConnection,
    ticket: TicketId,
) -> Result<Option<(i64, String, Option<String>)>> {
    let row = sqlx::query(
        "SELECT id, subject, body_text, language FROM messages WHERE ticket_id = ? \
         AND direction = 'inbound' AND kind = 'customer' ORDER BY id LIMIT 1",
    )
    .bind(ticket)
    .fetch_optional(conn)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let subject: Option<String> = r.try_get("subject")?;
    let body: Option<String> = r.try_get("body_text")?;
    let text = format!(
        "{}\n{}",
        subject.unwrap_or_default(),
        body.unwrap_or_default()
    );
    Ok(Some((r.try_get("id")?, text, r.try_get("language")?)))
}

/// What the mail commands need to know of a ticket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TicketFacts {
    pub subject: String,
    pub category: Option<String>,
    pub predicted_category: Option<String>,
    /// The customer's preferred language.
    pub language: Option<String>,
}

/// The subject, categories and customer language of `ticket` (empty when it is gone).
pub async fn ticket_facts(conn: &mut SqliteConnection, ticket: TicketId) -> Result<TicketFacts> {
    let row = sqlx::query(
        "SELECT t.subject, t.category, t.predicted_category, c.language \
         FROM tickets t LEFT JOIN customers c ON c.id = t.customer_id WHERE t.id = ?",
    )
    .bind(ticket)
    .fetch_optional(conn)
    .await?;
    let Some(r) = row else {
        return Ok(TicketFacts::default());
    };
    Ok(TicketFacts {
        subject: r
            .try_get::<Option<String>, _>("subject")?
            .unwrap_or_default(),
        category: r.try_get("category")?,
        predicted_category: r.try_get("predicted_category")?,
        language: r.try_get("language")?,
    })
}

/// A customer's earlier tickets, for the handoff summary.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct History {
    /// All their tickets before this batch.
    pub tickets: i64,
    /// Of those, still open or pending.
    pub open: i64,
    /// The first contact.
    pub since: Option<String>,
    /// The newest few: (id, subject, status, created).
    pub recent: Vec<(TicketId, String, String, String)>,
}

/// Tickets shown per customer in [`History::recent`].
pub const HISTORY_RECENT: i64 = 3;

/// The history of each of `addresses` (lower-cased) that has any.
pub async fn histories(
    conn: &mut SqliteConnection,
    addresses: &[String],
) -> Result<HashMap<String, History>> {
    let mut out = HashMap::new();
    for address in addresses {
        let counts = sqlx::query(
            "SELECT COUNT(*) AS n, SUM(t.status IN ('open', 'pending')) AS open, MIN(t.created_at) AS since \
             FROM tickets t JOIN customers c ON c.id = t.customer_id WHERE c.email = ?",
        )
        .bind(address)
        .fetch_one(&mut *conn)
        .await?;
        let n: i64 = counts.try_get("n")?;
        if n == 0 {
            continue;
        }
        let recent = sqlx::query(
            "SELECT t.id, t.subject, t.status, t.created_at FROM tickets t \
             JOIN customers c ON c.id = t.customer_id WHERE c.email = ? ORDER BY t.id DESC LIMIT ?",
        )
        .bind(address)
        .bind(HISTORY_RECENT)
        .fetch_all(&mut *conn)
        .await?;
        out.insert(
            address.clone(),
            History {
                tickets: n,
                open: counts.try_get::<Option<i64>, _>("open")?.unwrap_or(0),
                since: counts.try_get("since")?,
                recent: recent
                    .iter()
                    .map(|r| {
                        Ok((
                            r.try_get("id")?,
                            r.try_get("subject")?,
                            r.try_get("status")?,
                            r.try_get("created_at")?,
                        ))
                    })
                    .collect::<Result<_>>()?,
            },
        );
    }
    Ok(out)
}

/// The id of the newest `#wrong` correction (0 when there is none): the classifier's
/// version.
pub async fn newest_correction(conn: &mut SqliteConnection) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM corrections")
            .fetch_one(conn)
            .await?,
    )
}
