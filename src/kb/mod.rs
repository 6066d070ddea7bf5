//! The knowledge base and what learns from it: articles (the database is the source of
//! truth, `store::kb`), their search index (`index`, tantivy with a jieba tokenizer; a cache
//! rebuilt from the database), the answer bot's decision (`bot`, pure), and the category
//! classifier trained by agents' `#wrong` corrections (`classifier`, naive Bayes, pure; its
//! counts live in the database).
//!
//! `text::words` is the one tokenizer everything here shares: jieba for Chinese, plain
//! words for Latin scripts, lowercased. The jieba dictionary is loaded once per process.

pub mod article;
pub mod bot;
pub mod classifier;
pub mod index;
pub mod similar;
pub mod stats;
pub mod sync;
pub mod text;

#[cfg(test)]
mod eval_tests;
