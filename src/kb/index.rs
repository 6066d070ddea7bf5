//! The search index: tantivy with a jieba tokenizer, BM25 with titles boosted, and a score
//! normalised to 0..1 for the answer bot. A cache: rebuilt from the database (`store::kb`
//! is the source of truth) and kept current from the store's writes; it never decides
//! what an article says, only which ones match.
//!
//! User text never goes through tantivy's `QueryParser`: a customer's mail is not query
//! syntax (`title:foo AND (` would be an error, or worse a field filter). It is analysed
//! with the index's own analyzer and turned into a plain disjunction of term queries.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use anyhow::{Context, Result, anyhow};
use tantivy::collector::TopDocs;
use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, BoostQuery, ConstScoreQuery, Occur, TermQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, Stemmer, StopWordFilter, TextAnalyzer, Token,
    TokenFilter, TokenStream, Tokenizer,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term};
use tantivy_jieba::JiebaTokenizer;

use super::article::{IndexedArticle, Status};
use super::text::{MAX_TEXT_BYTES, cut};

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

/// The analyzer's registered name. The version is part of the schema, so changing what
/// the analyzer does (and bumping this) makes `open` see a foreign index and recreate it,
/// instead of searching old tokens with new ones.
const ANALYZER: &str = "kb_jieba_en_v1";

/// Tokens longer than this (bytes) are dropped: base64 blobs, URLs glued to words, and
/// hostile queries gain nothing from them.
const MAX_TOKEN_BYTES: usize = 40;

/// At most this many distinct terms of a query are searched; a long mail's later words
/// add cost, not precision.
const MAX_QUERY_TERMS: usize = 64;

/// The title's weight against the body and tags: a title says what the article is about.
const TITLE_BOOST: f32 = 2.5;

/// At most this many results, whatever the caller asks: the bot looks at two, a person
/// at a page.
const MAX_LIMIT: usize = 1000;

/// The writer's memory: articles are small and written one at a time; 30 MB also keeps a
/// full rebuild of 100,000 articles to a handful of flushes.
const WRITER_HEAP_BYTES: usize = 30_000_000;

/// How many of a query's terms the reference article is expected to match (see
/// [`normalise`]): about a title's worth of informative words.
pub const REFERENCE_TERMS: usize = 5;

/// How fast the normalised score saturates (see [`normalise`]): a query matched as well
/// as by the reference article scores `1 - e^-1.5` ≈ 0.78.
pub const SATURATION: f32 = 1.5;

/// The reference score is never below that of one informative word: a word in 1 % of
/// the articles' titles and bodies (see [`reference_score`]).
pub const FLOOR_DOC_SHARE: f64 = 0.01;

/// BM25's k1, as tantivy uses it (`query/bm25.rs`); at a field of average length b drops
/// out.
const K1: f32 = 1.2;

/// Words that say nothing about which article answers: Lucene's English list, the
/// pronouns, greetings and question words of support mail, and their Chinese
/// counterparts. Left in, they match every article, cost the most to search (the longest
/// posting lists) and, in a small knowledge base where their IDF is not yet low, lift
/// unrelated questions' scores.
#[rustfmt::skip]
const STOP_WORDS: &[&str] = &[
    // Lucene's English list (tantivy's `StopWordFilter::new(Language::English)`).
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is",
    "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there",
    "these", "they", "this", "to", "was", "will", "with",
    // Support mail.
    "i", "me", "my", "we", "our", "us", "you", "your", "he", "she", "his", "her", "its",
    "them", "am", "been", "do", "does", "did", "have", "has", "had", "can", "could",
    "would", "should", "what", "how", "when", "where", "why", "which", "who", "so", "just",
    "from", "about", "hi", "hello", "dear", "thanks", "thank", "please", "regards",
    // Chinese function words, pronouns, greetings and question words.
    "的", "了", "是", "我", "你", "您", "他", "她", "它", "我们", "你们", "他们", "在", "和",
    "与", "吗", "呢", "吧", "啊", "呀", "也", "就", "都", "这", "那", "个", "一个", "有",
    "请", "请问", "谢谢", "你好", "您好", "怎么", "如何", "什么", "为什么", "可以", "想",
];

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    title: Field,
    body: Field,
    tags: Field,
    language: Field,
    status: Field,
    category: Field,
}

fn schema() -> (Schema, Fields) {
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(ANALYZER)
            // No phrase queries: positions would only make the index bigger.
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let mut b = Schema::builder();
    let fields = Fields {
        id: b.add_u64_field("id", INDEXED | FAST | STORED),
        title: b.add_text_field("title", text.clone()),
        body: b.add_text_field("body", text.clone()),
        tags: b.add_text_field("tags", text),
        language: b.add_text_field("language", STRING),
        status: b.add_text_field("status", STRING),
        category: b.add_text_field("category", STRING | STORED),
    };
    (b.build(), fields)
}

/// The one analyzer for articles and queries: jieba in search mode (a long Chinese word
/// also yields its shorter words, so 退款 finds 申请退款), tokens without a letter or digit
/// dropped (jieba returns spaces and punctuation as tokens), long tokens dropped,
/// lowercased, [`STOP_WORDS`] dropped, English stemmed ("refunds" finds "refund"; Chinese
/// passes through as is).
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(JiebaTokenizer::new())
        .filter(WordsOnly)
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(LowerCaser)
        .filter(StopWordFilter::remove(
            STOP_WORDS.iter().map(|w| (*w).to_string()),
        ))
        .filter(Stemmer::new(Language::English))
        .build()
}

/// The analyzed terms of `text` in order of first appearance, deduplicated, at most
/// [`MAX_QUERY_TERMS`] of them; [`MAX_TEXT_BYTES`] of `text` are read.
pub fn query_terms(text: &str) -> Vec<String> {
    let mut analyzer = analyzer();
    let mut stream = analyzer.token_stream(cut(text, MAX_TEXT_BYTES));
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    while out.len() < MAX_QUERY_TERMS && stream.advance() {
        let t = &stream.token().text;
        if !t.is_empty() && seen.insert(t.clone()) {
            out.push(t.clone());
        }
    }
    out
}

/// Drops tokens with no letter or digit: jieba yields spaces and punctuation as tokens,
/// and tantivy's own `AlphaNumOnlyFilter` would drop Chinese too (it is ASCII only).
#[derive(Clone)]
struct WordsOnly;

impl TokenFilter for WordsOnly {
    type Tokenizer<T: Tokenizer> = WordsOnlyTokenizer<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> WordsOnlyTokenizer<T> {
        WordsOnlyTokenizer(tokenizer)
    }
}

#[derive(Clone)]
struct WordsOnlyTokenizer<T>(T);

impl<T: Tokenizer> Tokenizer for WordsOnlyTokenizer<T> {
    type TokenStream<'a> = WordsOnlyStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        WordsOnlyStream(self.0.token_stream(text))
    }
}

struct WordsOnlyStream<S>(S);

impl<S: TokenStream> TokenStream for WordsOnlyStream<S> {
    fn advance(&mut self) -> bool {
        while self.0.advance() {
            if self.0.token().text.chars().any(char::is_alphanumeric) {
                return true;
            }
        }
        false
    }

    fn token(&self) -> &Token {
        self.0.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.0.token_mut()
    }
}

/// The knowledge base's search index. `Send + Sync`: searches share it freely; writes
/// take turns on the one writer.
pub struct KbIndex {
    reader: IndexReader,
    writer: Mutex<IndexWriter<TantivyDocument>>,
    fields: Fields,
    recreated: bool,
}

impl KbIndex {
    /// An index held in memory (tests, and when no state directory is configured).
    pub fn in_memory() -> Result<KbIndex> {
        let (schema, _) = schema();
        let index = Index::create_in_ram(schema);
        KbIndex::wrap(index, true)
    }

    /// Opens the index in `dir`, creating it when missing. An index of another schema, or
    /// one tantivy cannot read, is wiped and recreated: it is a cache, and
    /// [`was_recreated`](Self::was_recreated) tells the caller to rebuild it from the
    /// database. Only the directory's files are removed; a directory holding
    /// subdirectories is not an index and is refused. An index locked by another writer
    /// is an error, not a reason to wipe.
    pub fn open(dir: &Path) -> Result<KbIndex> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("Cannot create the search index's directory {dir:?}"))?;
        let existed = std::fs::read_dir(dir)
            .with_context(|| format!("Cannot read the search index's directory {dir:?}"))?
            .next()
            .is_some();
        match KbIndex::open_existing(dir) {
            Ok(index) => Ok(KbIndex {
                recreated: !existed,
                ..index
            }),
            Err(OpenError::Locked(e)) => Err(anyhow!(e)).with_context(|| {
                format!("The search index in {dir:?} is in use by another writer")
            }),
            Err(OpenError::Unusable(e)) => {
                tracing::warn!(
                    "The search index in {dir:?} is unusable ({e}); recreating it empty."
                );
                wipe(dir)?;
                let index = KbIndex::open_existing(dir).map_err(|e| match e {
                    OpenError::Locked(e) | OpenError::Unusable(e) => anyhow!(e),
                });
                let index =
                    index.with_context(|| format!("Cannot create a search index in {dir:?}"))?;
                Ok(KbIndex {
                    recreated: true,
                    ..index
                })
            }
        }
    }

    fn open_existing(dir: &Path) -> std::result::Result<KbIndex, OpenError> {
        let (schema, _) = schema();
        let unusable = |e: tantivy::TantivyError| OpenError::Unusable(e.to_string());
        let directory = MmapDirectory::open(dir).map_err(|e| OpenError::Unusable(e.to_string()))?;
        let index = Index::builder()
            .schema(schema)
            .open_or_create(directory)
            .map_err(unusable)?;
        KbIndex::wrap(index, false).map_err(|e| match e.downcast::<tantivy::TantivyError>() {
            Ok(tantivy::TantivyError::LockFailure(l, m)) => OpenError::Locked(format!(
                "{l}{}",
                m.map(|m| format!(": {m}")).unwrap_or_default()
            )),
            Ok(e) => OpenError::Unusable(e.to_string()),
            Err(e) => OpenError::Unusable(format!("{e:#}")),
        })
    }

    fn wrap(index: Index, recreated: bool) -> Result<KbIndex> {
        let (_, fields) = schema();
        index.tokenizers().register(ANALYZER, analyzer());
        let writer = index.writer_with_num_threads(1, WRITER_HEAP_BYTES)?;
        let reader = index
            .reader_builder()
            // Reloaded by hand after each commit too, so that the next search sees the
            // write; the watcher is for the merges tantivy commits in the background after
            // a rebuild, which a manual-only reader would not see until the next write.
            .reload_policy(ReloadPolicy::OnCommitWithDelay)
            .try_into()?;
        // Reading the segments now finds a broken index at open, not at the first search.
        let searcher = reader.searcher();
        for segment in searcher.segment_readers() {
            segment.fast_fields().u64("id")?;
            segment.inverted_index(fields.body)?;
        }
        Ok(KbIndex {
            reader,
            writer: Mutex::new(writer),
            fields,
            recreated,
        })
    }

    /// True when this index started empty (the directory was new, held another schema or
    /// was unreadable): the caller rebuilds it from the database.
    pub fn was_recreated(&self) -> bool {
        self.recreated
    }

    /// Replaces the whole index with `articles`.
    pub fn rebuild(&self, articles: &[IndexedArticle]) -> Result<()> {
        self.write(|w, f| {
            w.delete_all_documents()?;
            for a in articles {
                w.add_document(document(f, a))?;
            }
            Ok(())
        })
        .context("Cannot rebuild the search index")
    }

    /// Adds or replaces one article, visible to the next search.
    pub fn upsert(&self, article: &IndexedArticle) -> Result<()> {
        self.write(|w, f| {
            w.delete_term(id_term(f, article.id));
            w.add_document(document(f, article))?;
            Ok(())
        })
        .with_context(|| format!("Cannot index article {}", article.id))
    }

    /// Removes one article.
    pub fn remove(&self, id: i64) -> Result<()> {
        self.write(|w, f| {
            w.delete_term(id_term(f, id));
            Ok(())
        })
        .with_context(|| format!("Cannot remove article {id} from the search index"))
    }

    /// Runs `ops` on the writer, commits and reloads the reader; rolls back on error so a
    /// half-done write is not committed by the next one.
    fn write(
        &self,
        ops: impl FnOnce(&IndexWriter<TantivyDocument>, &Fields) -> tantivy::Result<()>,
    ) -> Result<()> {
        let mut w = self.lock_writer();
        let done = ops(&w, &self.fields).and_then(|()| w.commit().map(|_| ()));
        if let Err(e) = done {
            // The rollback's own error would hide the first one, which says what broke.
            let _ = w.rollback();
            return Err(e.into());
        }
        drop(w);
        self.reader.reload()?;
        Ok(())
    }

    /// A poisoned lock only means another write failed midway; `write` rolls back then,
    /// so the writer is usable.
    fn lock_writer(&self) -> MutexGuard<'_, IndexWriter<TantivyDocument>> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Number of articles indexed.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The best articles for `q`, best first. Text with no words (empty, punctuation,
    /// emoji, only stop words) finds nothing; it is not an error.
    pub fn search(&self, q: &Query<'_>) -> Result<Vec<Hit>> {
        let limit = q.limit.min(MAX_LIMIT);
        let terms = query_terms(q.text);
        if terms.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let f = &self.fields;
        let mut words: Vec<(Occur, Box<dyn tantivy::query::Query>)> = Vec::new();
        for t in &terms {
            let title = TermQuery::new(
                Term::from_field_text(f.title, t),
                IndexRecordOption::WithFreqs,
            );
            words.push((
                Occur::Should,
                Box::new(BoostQuery::new(Box::new(title), TITLE_BOOST)),
            ));
            for field in [f.body, f.tags] {
                words.push((
                    Occur::Should,
                    Box::new(TermQuery::new(
                        Term::from_field_text(field, t),
                        IndexRecordOption::WithFreqs,
                    )),
                ));
            }
        }
        // Filters score 0 so that they do not add to BM25 (a Must clause's score would).
        let mut filters: Vec<Term> = Vec::new();
        if let Some(lang) = q.language {
            filters.push(Term::from_field_text(
                f.language,
                &lang.trim().to_lowercase(),
            ));
        }
        if q.published_only {
            filters.push(Term::from_field_text(f.status, Status::Published.as_str()));
        }
        let query: Box<dyn tantivy::query::Query> = if filters.is_empty() {
            Box::new(BooleanQuery::new(words))
        } else {
            let mut clauses: Vec<(Occur, Box<dyn tantivy::query::Query>)> =
                vec![(Occur::Must, Box::new(BooleanQuery::new(words)))];
            for term in filters {
                let filter = TermQuery::new(term, IndexRecordOption::Basic);
                clauses.push((
                    Occur::Must,
                    Box::new(ConstScoreQuery::new(Box::new(filter), 0.0)),
                ));
            }
            Box::new(BooleanQuery::new(clauses))
        };

        let searcher = self.reader.searcher();
        let top = searcher.search(&query, &TopDocs::with_limit(limit).order_by_score())?;
        if top.is_empty() {
            return Ok(Vec::new());
        }
        let reference = reference_score(&searcher, f, &terms)?;
        let mut hits = Vec::with_capacity(top.len());
        for (bm25, addr) in top {
            let segment = searcher
                .segment_readers()
                .get(addr.segment_ord as usize)
                .ok_or_else(|| anyhow!("Search hit in a missing segment {}", addr.segment_ord))?;
            let id = segment
                .fast_fields()
                .u64("id")?
                .first(addr.doc_id)
                .ok_or_else(|| anyhow!("Search hit without an article id"))?;
            hits.push(Hit {
                id: id as i64,
                bm25,
                score: normalise(bm25, reference),
            });
        }
        Ok(hits)
    }
}

enum OpenError {
    /// Another writer holds the directory's lock.
    Locked(String),
    /// Missing, foreign or broken: recreate.
    Unusable(String),
}

/// Removes the files of `dir` (a tantivy index is flat), refusing a directory with
/// subdirectories: that is not an index, and the path is probably wrong.
fn wipe(dir: &Path) -> Result<()> {
    let entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("Cannot read the search index's directory {dir:?}"))?
        .collect::<std::io::Result<_>>()?;
    if let Some(sub) = entries.iter().find(|e| e.path().is_dir()) {
        return Err(anyhow!(
            "{dir:?} holds a directory ({:?}), so it is not a search index; not wiping it",
            sub.file_name()
        ));
    }
    for e in entries {
        std::fs::remove_file(e.path())
            .with_context(|| format!("Cannot remove {:?} from the search index", e.path()))?;
    }
    Ok(())
}

/// Ids are i64 in the database and u64 in the index; the cast round-trips exactly.
fn id_term(f: &Fields, id: i64) -> Term {
    Term::from_field_u64(f.id, id as u64)
}

fn document(f: &Fields, a: &IndexedArticle) -> TantivyDocument {
    let mut doc = TantivyDocument::default();
    doc.add_u64(f.id, a.id as u64);
    doc.add_text(f.title, &a.title);
    doc.add_text(f.body, &a.body);
    for tag in &a.tags {
        doc.add_text(f.tags, tag);
    }
    doc.add_text(f.language, a.language.trim().to_lowercase());
    doc.add_text(f.status, a.status.as_str());
    if let Some(c) = &a.category {
        doc.add_text(f.category, c);
    }
    doc
}

/// The BM25 score of a reference article for these query terms: the best answer one can
/// expect. For each term, the reference has it once in a title of average length
/// (boosted) and twice in a body of average length; a term that no title (no body) holds
/// cannot score there, so that part counts 0; a term found only in tags counts one tag.
/// Only the [`REFERENCE_TERMS`] largest term scores are summed: an article answers a few
/// of a mail's words, and a chatty mail's greetings and story must not lower the score of
/// the article that answers its question.
///
/// Words no article holds do not count (a name, an order number), so without a floor a
/// question that shares one common word with the index would be measured against that
/// word alone and score high. The floor is the reference of one informative word, in
/// [`FLOOR_DOC_SHARE`] of the articles' titles and bodies: matching only common words
/// stays low.
fn reference_score(searcher: &Searcher, f: &Fields, terms: &[String]) -> Result<f32> {
    let docs: u64 = searcher
        .segment_readers()
        .iter()
        .map(|s| u64::from(s.max_doc()))
        .sum();
    let idf = |field: Field, t: &str| -> Result<Option<f32>> {
        let df = searcher.doc_freq(&Term::from_field_text(field, t))?;
        Ok((df > 0).then(|| bm25_idf(df, docs)))
    };
    let mut per_term = Vec::with_capacity(terms.len());
    for t in terms {
        let title = idf(f.title, t)?.map(|i| TITLE_BOOST * i * tf_part(1.0));
        let body = idf(f.body, t)?.map(|i| i * tf_part(2.0));
        let r = match (title, body) {
            (None, None) => idf(f.tags, t)?.map(|i| i * tf_part(1.0)).unwrap_or(0.0),
            (t, b) => t.unwrap_or(0.0) + b.unwrap_or(0.0),
        };
        per_term.push(r);
    }
    per_term.sort_by(|a, b| b.total_cmp(a));
    let floor_df = ((docs as f64 * FLOOR_DOC_SHARE).ceil() as u64).max(1);
    let floor = bm25_idf(floor_df, docs) * (TITLE_BOOST * tf_part(1.0) + tf_part(2.0));
    let sum: f32 = per_term.iter().take(REFERENCE_TERMS).sum();
    Ok(sum.max(floor))
}

/// tantivy's IDF (`query/bm25.rs`).
fn bm25_idf(doc_freq: u64, docs: u64) -> f32 {
    let x = (docs.saturating_sub(doc_freq) as f32 + 0.5) / (doc_freq as f32 + 0.5);
    (1.0 + x).ln()
}

/// BM25's term-frequency part for `tf` occurrences in a field of average length.
fn tf_part(tf: f32) -> f32 {
    tf * (K1 + 1.0) / (tf + K1)
}

/// The normalised score: `1 - exp(-SATURATION · bm25 / reference)`, where `reference` is
/// [`reference_score`] for the query's terms.
///
/// - Bounded: 0 for no match, below 1 (to float precision) always.
/// - Monotone: within one query the reference is fixed, so a higher BM25 scores higher;
///   the bot's margin (best minus second) is never negative.
/// - Comparable across queries: the ratio says how much of what a good article would
///   score this one does; matching as well as the reference scores ≈ 0.78, half as well
///   ≈ 0.53, a quarter ≈ 0.31. IDF weighting makes common words count little, stop words
///   are not searched at all, and only the top terms make the reference, so a long chatty
///   mail is judged on its most informative words, not diluted by all of them.
pub fn normalise(bm25: f32, reference: f32) -> f32 {
    if bm25.is_nan() || bm25 <= 0.0 {
        return 0.0;
    }
    let r = bm25 / reference.max(1e-3);
    (1.0 - (-SATURATION * r).exp()).clamp(0.0, 1.0)
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
