//! An article's fields and states, and the Markdown files `kb import` reads.

use serde::{Deserialize, Serialize};

/// Where an article is in its life: only `Published` ones are ever sent to customers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Draft,
    Published,
    Retired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Published => "published",
            Status::Retired => "retired",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        match s.trim().to_ascii_lowercase().as_str() {
            "draft" => Some(Status::Draft),
            "published" => Some(Status::Published),
            "retired" => Some(Status::Retired),
            _ => None,
        }
    }
}

/// What the search index holds of an article.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexedArticle {
    pub id: i64,
    pub title: String,
    /// The Markdown body.
    pub body: String,
    pub language: String,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub status: Status,
}

/// A Markdown file with its front matter (`kb import`).
#[derive(Debug, Clone, PartialEq)]
pub struct ArticleFile {
    pub title: String,
    pub language: String,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub status: Status,
    pub links: Vec<String>,
    pub files: Vec<String>,
    pub body: String,
}

/// Reads a Markdown file with YAML front matter. (Skeleton.)
pub fn parse_markdown_file(_text: &str) -> Result<ArticleFile, String> {
    Err("not implemented yet".into())
}

/// The Markdown as plain text. (Skeleton.)
pub fn plain_text(markdown: &str) -> String {
    markdown.to_string()
}
