//! The search index: tantivy with a jieba tokenizer, BM25 with titles boosted. A cache:
//! rebuilt from the database and kept current from the store's writes.
//! (Skeleton: see the helper's implementation.)

use anyhow::Result;

use super::article::IndexedArticle;

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: i64,
    /// The raw BM25 score (title boosted).
    pub bm25: f32,
    /// The score normalised to 0..1, comparable across queries: the bot's confidence.
    pub score: f32,
}

/// A search.
#[derive(Debug, Clone)]
pub struct Query<'a> {
    pub text: &'a str,
    /// Only articles in this language, when given.
    pub language: Option<&'a str>,
    /// Only published articles (the bot and customers); all states otherwise.
    pub published_only: bool,
    pub limit: usize,
}

pub struct KbIndex {}

impl KbIndex {
    /// An index held in memory (tests, and when no state directory is configured).
    pub fn in_memory() -> Result<KbIndex> {
        Ok(KbIndex {})
    }

    /// Opens the index in `dir`, creating it when missing or unreadable.
    pub fn open(_dir: &std::path::Path) -> Result<KbIndex> {
        Ok(KbIndex {})
    }

    /// Replaces the whole index with `articles`.
    pub fn rebuild(&self, _articles: &[IndexedArticle]) -> Result<()> {
        Ok(())
    }

    /// Adds or replaces one article, visible to the next search.
    pub fn upsert(&self, _article: &IndexedArticle) -> Result<()> {
        Ok(())
    }

    /// Removes one article.
    pub fn remove(&self, _id: i64) -> Result<()> {
        Ok(())
    }

    /// True when `open` found no usable index and made a new, empty one.
    pub fn was_recreated(&self) -> bool {
        false
    }

    /// Number of articles indexed.
    pub fn len(&self) -> u64 {
        0
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The best articles for `q`, best first.
    pub fn search(&self, _q: &Query<'_>) -> Result<Vec<Hit>> {
        Ok(Vec::new())
    }
}
