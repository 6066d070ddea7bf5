//! Which open tickets describe the same problem: text similarity by the knowledge base's
//! own analysis and weighting. Pure: no I/O.
//!
//! A ticket's *terms* are its opening message (subject and new text, quotes cut) through
//! the search index's analyzer (`kb::index::query_terms`: jieba, stop words dropped,
//! English stemmed), so "refunds" meets "refund" and 退款 meets 申请退款 exactly as a
//! knowledge-base search would. Two tickets' similarity is the share of their weighted
//! terms they hold in common (a weighted Dice coefficient), each term weighted by the
//! BM25 IDF that tantivy gives it (`ln(1 + (N - df + 0.5) / (df + 0.5))`) over the pool
//! of recent tickets, so that what every ticket says ("hello", "order") counts little and
//! what few say ("outage", "login") counts much.
//!
//! A pool smaller than [`MIN_POOL`] counts as that many tickets, the rest holding none of
//! the terms: three tickets about the same outage on a quiet morning would otherwise find
//! their shared words common, and so worthless, just because they are all there is.

use std::collections::{HashMap, HashSet};

/// The pool size below which IDF assumes the missing tickets hold none of the terms.
pub const MIN_POOL: usize = 20;

/// The analyzed terms of a ticket's opening message, deduplicated, in order.
pub fn terms(subject: &str, new_text: &str) -> Vec<String> {
    super::index::query_terms(&super::bot::question_text(subject, new_text))
}

/// Document frequencies over a pool of term lists.
#[derive(Debug, Default, Clone)]
pub struct Pool {
    df: HashMap<String, u32>,
    docs: usize,
}

impl Pool {
    /// Counts one more ticket's terms (each term once, however often it repeats).
    pub fn add(&mut self, terms: &[String]) {
        self.docs += 1;
        let unique: HashSet<&String> = terms.iter().collect();
        for t in unique {
            *self.df.entry(t.clone()).or_insert(0) += 1;
        }
    }

    /// The BM25 IDF of `term` in this pool (at least [`MIN_POOL`] tickets).
    pub fn idf(&self, term: &str) -> f32 {
        let n = self.docs.max(MIN_POOL) as f32;
        let df = self.df.get(term).copied().unwrap_or(0) as f32;
        (1.0 + (n - df + 0.5).max(0.0) / (df + 0.5)).ln()
    }

    /// How similar two tickets' terms are: 0 (nothing shared) to 1 (the same terms).
    pub fn score(&self, a: &[String], b: &[String]) -> f32 {
        let a: HashSet<&str> = a.iter().map(String::as_str).collect();
        let b: HashSet<&str> = b.iter().map(String::as_str).collect();
        let weight = |set: &HashSet<&str>| set.iter().map(|t| self.idf(t)).sum::<f32>();
        let total = weight(&a) + weight(&b);
        if total <= 0.0 {
            return 0.0;
        }
        let shared: f32 = a.intersection(&b).map(|t| self.idf(t)).sum();
        (2.0 * shared / total).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> Vec<String> {
        terms("", text)
    }

    fn pool(texts: &[&str]) -> Pool {
        let mut p = Pool::default();
        for x in texts {
            p.add(&t(x));
        }
        p
    }

    const BACKGROUND: &[&str] = &[
        "Where is my order? It has not arrived yet",
        "Please change the delivery address of my order",
        "I want a refund for the broken kettle",
        "How do I reset my password",
        "Invoice for March is missing",
        "Can I pay by bank transfer",
    ];

    #[test]
    fn the_same_outage_in_other_words_scores_above_an_unrelated_question() {
        let mut texts = BACKGROUND.to_vec();
        let a = "The website is down, I cannot log in since this morning";
        let b = "Website down? I cannot log in, error 503";
        let c = "I want a refund for my order";
        texts.extend([a, b, c]);
        let p = pool(&texts);
        let ab = p.score(&t(a), &t(b));
        let ac = p.score(&t(a), &t(c));
        assert!(ab > ac, "{ab} vs {ac}");
        assert!(ab >= 0.3, "the outage pair scores {ab}");
        assert!(ac < 0.1, "an unrelated pair scores {ac}");
    }

    #[test]
    fn chinese_matches_through_the_index_analyzer() {
        let p = pool(&["网站打不开，无法登录", "登录失败，网站打不开了", "我要退款"]);
        let s = p.score(&t("网站打不开，无法登录"), &t("登录失败，网站打不开了"));
        let r = p.score(&t("网站打不开，无法登录"), &t("我要退款"));
        assert!(s > 0.3 && r < 0.1, "{s} {r}");
    }

    #[test]
    fn identical_texts_score_one_and_empty_ones_zero() {
        let p = pool(&["payment failed twice"]);
        let x = t("payment failed twice");
        assert!((p.score(&x, &x) - 1.0).abs() < 1e-6);
        assert_eq!(p.score(&[], &x), 0.0);
        assert_eq!(p.score(&[], &[]), 0.0);
    }

    #[test]
    fn a_small_pool_does_not_make_shared_words_worthless() {
        // Only the two outage tickets exist: the shared words still count.
        let a = "Checkout is down, payment page shows an error";
        let b = "payment page down: error at checkout";
        let p = pool(&[a, b]);
        assert!(p.score(&t(a), &t(b)) > 0.5);
    }

    #[test]
    fn words_every_ticket_says_count_less_than_rare_ones() {
        let mut texts: Vec<&str> = vec!["order"; 30];
        texts.push("outage");
        let p = pool(&texts);
        assert!(p.idf(&t("order")[0]) < p.idf(&t("outage")[0]));
    }
}
