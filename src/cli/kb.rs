//! `postdesk kb add|edit|publish|retire|list|show|search|import`: the knowledge base from
//! the command line, and `postdesk classifier stats`.
//!
//! Writes go to the database only (with their events); the running daemon's search index
//! follows them within seconds. `kb search` searches the on-disk index when the daemon is
//! not running, else a copy built in memory.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::{term_line, term_text};
use crate::clock::db_time;
use crate::kb::article::Status;
use crate::kb::index::Query;
use crate::store::kb::{self, NewArticle};
use crate::store::{Store, StoreError};

#[derive(Debug, clap::Subcommand)]
pub enum KbCommand {
    /// Add an article; its body is read from --body-file, or standard input.
    Add {
        #[arg(long)]
        title: String,
        /// Its language code (en, zh...): the bot answers only in the customer's language.
        #[arg(long)]
        language: String,
        #[arg(long)]
        category: Option<String>,
        /// A tag (repeat for more).
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// A video or page link (repeat for more).
        #[arg(long = "link")]
        links: Vec<String>,
        /// A file to carry (image, PDF; repeat for more).
        #[arg(long = "file")]
        files: Vec<PathBuf>,
        /// draft (default), published or retired.
        #[arg(long, default_value = "draft")]
        status: String,
        /// The Markdown body; standard input when not given.
        #[arg(long)]
        body_file: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Change an article's fields; those not given stay.
    Edit {
        id: i64,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        language: Option<String>,
        #[arg(long)]
        category: Option<String>,
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[arg(long = "link")]
        links: Vec<String>,
        #[arg(long = "file")]
        files: Vec<PathBuf>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        body_file: Option<PathBuf>,
    },
    /// Publish an article: the bot may answer with it.
    Publish { id: i64 },
    /// Retire an article: it is kept, but never sent again.
    Retire { id: i64 },
    /// List articles, newest first.
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        language: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Show one article.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Search articles as the bot does (published only unless --all).
    Search {
        /// The words to look for.
        #[arg(required = true)]
        words: Vec<String>,
        #[arg(long)]
        language: Option<String>,
        /// Drafts and retired articles too.
        #[arg(long)]
        all: bool,
        #[arg(long, default_value_t = 5)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Import the Markdown files of a directory (front matter: title, language, category,
    /// tags, status, links, files); a file's name (without .md) names its article, so a
    /// second import updates instead of duplicating.
    Import {
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum ClassifierCommand {
    /// Accuracy on held-out corrections (every fifth), and what was corrected to what.
    Stats {
        #[arg(long)]
        json: bool,
    },
}

fn status_arg(s: &str) -> Result<Status> {
    Status::parse(s)
        .with_context(|| format!("status must be draft, published or retired, not {s:?}"))
}

fn read_body(file: Option<&Path>) -> Result<String> {
    match file {
        Some(f) => std::fs::read_to_string(f).with_context(|| format!("Reading {}", f.display())),
        None => {
            let mut s = String::new();
            std::io::stdin()
                .take(kb::MAX_BODY as u64 + 1)
                .read_to_string(&mut s)
                .context("Reading the body from standard input")?;
            Ok(s)
        }
    }
}

/// A file's content type from its extension.
pub fn content_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("pdf") => "application/pdf",
        Some("txt") => "text/plain",
        _ => "application/octet-stream",
    }
}

async fn attach(
    conn: &mut crate::store::Conn,
    id: i64,
    files: &[PathBuf],
    now: &str,
) -> Result<()> {
    for f in files {
        let data = std::fs::read(f).with_context(|| format!("Reading {}", f.display()))?;
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{} has no usable file name", f.display()))?;
        kb::add_file(conn, id, name, content_type(f), &data, now).await?;
    }
    Ok(())
}

fn store_err(e: StoreError) -> anyhow::Error {
    match e {
        StoreError::Conflict(why) => anyhow::anyhow!("{why}"),
        e => e.into(),
    }
}

pub async fn execute(config: &Path, cmd: &KbCommand) -> Result<bool> {
    let cfg = super::load_config_for_admin(config)?;
    // Writing the knowledge base before the daemon's first run is how a desk is set up:
    // the writing commands create the database; the reading ones never do.
    let store = match cmd {
        KbCommand::List { .. } | KbCommand::Show { .. } | KbCommand::Search { .. } => {
            Store::open_existing(&cfg.database_path).await?
        }
        _ => Store::open(&cfg.database_path).await?,
    };
    let now = db_time(chrono::Utc::now());
    match cmd {
        KbCommand::Add {
            title,
            language,
            category,
            tags,
            links,
            files,
            status,
            body_file,
            json,
        } => {
            let a = NewArticle {
                title: title.clone(),
                body: read_body(body_file.as_deref())?,
                language: language.trim().to_lowercase(),
                category: category.clone(),
                tags: tags.clone(),
                links: links.clone(),
                status: Some(status_arg(status)?),
                ..NewArticle::default()
            };
            let mut tx = store.begin_write().await?;
            let id = kb::insert_article(&mut tx, &a, &now)
                .await
                .map_err(store_err)?;
            attach(&mut tx, id, files, &now).await?;
            tx.commit().await?;
            if *json {
                println!("{}", serde_json::json!({ "id": id }));
            } else {
                println!(
                    "Article {id} added ({}).",
                    a.status.unwrap_or(Status::Draft).as_str()
                );
            }
        }
        KbCommand::Edit {
            id,
            title,
            language,
            category,
            tags,
            links,
            files,
            status,
            body_file,
        } => {
            let mut tx = store.begin_write().await?;
            let Some(old) = kb::get_article(&mut tx, *id).await? else {
                eprintln!("error: article {id} does not exist");
                return Ok(false);
            };
            let a = NewArticle {
                slug: old.slug.clone(),
                title: title.clone().unwrap_or(old.title),
                body: match body_file {
                    Some(f) => read_body(Some(f))?,
                    None => old.body,
                },
                language: language.clone().unwrap_or(old.language),
                category: category.clone().or(old.category),
                tags: if tags.is_empty() {
                    old.tags
                } else {
                    tags.clone()
                },
                links: if links.is_empty() {
                    old.links
                } else {
                    links.clone()
                },
                status: status.as_deref().map(status_arg).transpose()?,
                ..NewArticle::default()
            };
            kb::update_article(&mut tx, *id, &a, &now)
                .await
                .map_err(store_err)?;
            attach(&mut tx, *id, files, &now).await?;
            tx.commit().await?;
            println!("Article {id} updated.");
        }
        KbCommand::Publish { id } | KbCommand::Retire { id } => {
            let to = if matches!(cmd, KbCommand::Publish { .. }) {
                Status::Published
            } else {
                Status::Retired
            };
            let mut tx = store.begin_write().await?;
            match kb::set_status(&mut tx, *id, to, None, None, &now).await {
                Ok(before) => {
                    tx.commit().await?;
                    println!("Article {id}: {} -> {}.", before.as_str(), to.as_str());
                }
                Err(StoreError::NotFound(what)) => {
                    eprintln!("error: {what} does not exist");
                    return Ok(false);
                }
                Err(e) => return Err(e.into()),
            }
        }
        KbCommand::List {
            status,
            language,
            limit,
            json,
        } => {
            let status = status.as_deref().map(status_arg).transpose()?;
            let mut conn = store.pool().acquire().await?;
            let list = kb::list_articles(&mut conn, status, language.as_deref(), *limit).await?;
            if *json {
                let rows: Vec<serde_json::Value> = list
                    .iter()
                    .map(|a| {
                        serde_json::json!({
                            "id": a.id, "slug": a.slug, "title": a.title, "language": a.language,
                            "category": a.category, "tags": a.tags, "status": a.status,
                            "updated_at": a.updated_at,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if list.is_empty() {
                println!("No articles.");
            } else {
                println!(
                    "{:>6}  {:<9}  {:<4}  {:<12}  TITLE",
                    "ID", "STATUS", "LANG", "CATEGORY"
                );
                for a in &list {
                    println!(
                        "{:>6}  {:<9}  {:<4}  {:<12}  {}",
                        a.id,
                        a.status.as_str(),
                        term_line(&a.language),
                        term_line(a.category.as_deref().unwrap_or("-")),
                        term_line(&a.title)
                    );
                }
            }
        }
        KbCommand::Show { id, json } => {
            let mut conn = store.pool().acquire().await?;
            let Some(a) = kb::get_article(&mut conn, *id).await? else {
                eprintln!("error: article {id} does not exist");
                return Ok(false);
            };
            if *json {
                println!("{}", serde_json::to_string_pretty(&a)?);
            } else {
                println!("Article {}: {}", a.id, term_line(&a.title));
                println!(
                    "Status {}, language {}, category {}, tags {}",
                    a.status.as_str(),
                    term_line(&a.language),
                    term_line(a.category.as_deref().unwrap_or("-")),
                    term_line(&a.tags.join(", "))
                );
                if let Some(t) = a.source_ticket {
                    println!(
                        "Proposed from ticket #{t} by {}",
                        term_line(a.proposed_by.as_deref().unwrap_or("?"))
                    );
                }
                for l in &a.links {
                    println!("Link: {}", term_line(l));
                }
                for f in &a.files {
                    println!(
                        "File: {} ({}, {} bytes)",
                        term_line(&f.name),
                        f.content_type,
                        f.size
                    );
                }
                println!();
                println!("{}", term_text(&a.body));
            }
        }
        KbCommand::Search {
            words,
            language,
            all,
            limit,
            json,
        } => {
            let text = words.join(" ");
            let index = crate::kb::sync::index_for_command(&cfg, &store).await?;
            let hits = index.search(&Query {
                text: &text,
                language: language.as_deref(),
                published_only: !*all,
                limit: (*limit).clamp(1, 100),
            })?;
            let mut conn = store.pool().acquire().await?;
            let ids: Vec<i64> = hits.iter().map(|h| h.id).collect();
            let articles = kb::articles_by_ids(&mut conn, &ids).await?;
            let rows: Vec<serde_json::Value> = hits
                .iter()
                .filter_map(|h| {
                    let a = articles.iter().find(|a| a.id == h.id)?;
                    Some(serde_json::json!({
                        "id": a.id, "title": a.title, "language": a.language,
                        "category": a.category, "status": a.status,
                        "score": h.score, "bm25": h.bm25,
                    }))
                })
                .collect();
            if *json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if rows.is_empty() {
                println!("No article matches.");
            } else {
                println!("{:>6}  {:>5}  {:<4}  TITLE", "ID", "SCORE", "LANG");
                for (h, a) in hits
                    .iter()
                    .filter_map(|h| articles.iter().find(|a| a.id == h.id).map(|a| (h, a)))
                {
                    println!(
                        "{:>6}  {:>5.2}  {:<4}  {}",
                        a.id,
                        h.score,
                        term_line(&a.language),
                        term_line(&a.title)
                    );
                }
            }
        }
        KbCommand::Import { dir, json } => return import(&store, dir, *json, &now).await,
    }
    Ok(true)
}

/// `kb import DIR`: every `*.md` file, in name order, in one transaction; a file that does
/// not parse is reported with its name and skipped, the others land.
async fn import(store: &Store, dir: &Path, json: bool, now: &str) -> Result<bool> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("Reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md") && p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("{} holds no .md files", dir.display());
    }
    let bar = indicatif::ProgressBar::new(files.len() as u64);
    if json || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let (mut created, mut updated) = (0u64, 0u64);
    let mut problems: Vec<String> = Vec::new();
    let mut tx = store.begin_write().await?;
    for f in &files {
        bar.inc(1);
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        let slug = f
            .file_stem()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                problems.push(format!("{name}: {e}"));
                continue;
            }
        };
        let parsed = match crate::kb::article::parse_markdown_file(&text) {
            Ok(p) => p,
            Err(why) => {
                problems.push(format!("{name}: {why}"));
                continue;
            }
        };
        let a = NewArticle {
            slug: Some(slug),
            title: parsed.title,
            body: parsed.body,
            language: parsed.language,
            category: parsed.category,
            tags: parsed.tags,
            links: parsed.links,
            status: Some(parsed.status),
            ..NewArticle::default()
        };
        if let Err(why) = kb::check(&a) {
            problems.push(format!("{name}: {why}"));
            continue;
        }
        let (id, new) = kb::upsert_by_slug(&mut tx, &a, now)
            .await
            .map_err(store_err)?;
        let base = f.parent().unwrap_or(dir);
        for rel in &parsed.files {
            let path = base.join(rel);
            // Only files beside the article: no absolute paths, no `..`.
            let inside = Path::new(rel)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !inside {
                problems.push(format!("{name}: file {rel:?} is outside the directory"));
                continue;
            }
            if let Err(e) = attach(&mut tx, id, &[path], now).await {
                problems.push(format!("{name}: {e:#}"));
            }
        }
        if new {
            created += 1;
        } else {
            updated += 1;
        }
    }
    tx.commit().await?;
    bar.finish_and_clear();
    if json {
        println!(
            "{}",
            serde_json::json!({ "created": created, "updated": updated, "problems": problems })
        );
    } else {
        println!(
            "{created} article(s) created, {updated} updated, {} skipped.",
            problems.len()
        );
        for p in &problems {
            println!("  {}", term_line(p));
        }
    }
    Ok(problems.is_empty())
}

pub async fn classifier(config: &Path, cmd: &ClassifierCommand) -> Result<bool> {
    let ClassifierCommand::Stats { json } = cmd;
    let cfg = super::load_config_for_admin(config)?;
    let store = Store::open_existing(&cfg.database_path).await?;
    let mut conn = store.pool().acquire().await?;
    let all = kb::corrections(&mut conn).await?;
    let stats = crate::kb::stats::held_out_stats(
        &all.iter()
            .map(|c| (c.text.clone(), c.correct.clone(), c.predicted.clone()))
            .collect::<Vec<_>>(),
    );
    if *json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        println!(
            "{} correction(s); held out {} (every fifth); accuracy on them {}.",
            stats.corrections,
            stats.held_out,
            stats
                .accuracy
                .map_or("n/a (too few corrections)".to_string(), |a| format!(
                    "{:.1}%",
                    a * 100.0
                ))
        );
        for (pair, n) in &stats.confusions {
            println!("  {:>4}  {}", n, term_line(pair));
        }
    }
    Ok(true)
}
