//! A multinomial naive Bayes over words and word bigrams, trained by agents' `#wrong`
//! corrections. Pure: the counts are loaded from and saved to the database by the store
//! (`classifier_categories`: documents and tokens per category; `classifier_tokens`: one
//! count per category and token), through [`Model::add_counts`] and
//! [`Model::add_token_count`].
//!
//! Scoring (Manning, Raghavan, Schütze, *Introduction to Information Retrieval*, 13.2):
//! `log P(c) + Σ log P(t|c)` with add-one (Laplace) smoothing over the vocabulary of all
//! categories, in log space so long texts do not underflow; the best category's posterior
//! is `exp(score_best - logsumexp(scores))`. Features no category has seen are skipped:
//! they carry no evidence, and counting them would only favour the category with the
//! fewest tokens.

use std::collections::{BTreeMap, BTreeSet};

/// Token counts per category.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Model {
    /// category -> (documents, total tokens)
    pub categories: BTreeMap<String, (u64, u64)>,
    /// (category, token) -> count
    pub tokens: BTreeMap<(String, String), u64>,
}

/// The features of a text: its words and its word bigrams, each once, in order of first
/// appearance.
///
/// Once per text ("binary" multinomial naive Bayes, Jurafsky and Martin, *Speech and
/// Language Processing*, 4.4): whether a word occurs says more than how often, and a long
/// article or a rambling mail must not outweigh a dozen short questions.
pub fn features(text: &str) -> Vec<String> {
    let w = super::text::words(text);
    let mut f = w.clone();
    for pair in w.windows(2) {
        if let [a, b] = pair {
            f.push(format!("{a} {b}"));
        }
    }
    let mut seen = BTreeSet::new();
    f.retain(|t| seen.insert(t.clone()));
    f
}

impl Model {
    /// Learns one labelled text; returns the features learned, for the store to add.
    pub fn train(&mut self, text: &str, category: &str) -> Vec<String> {
        let f = features(text);
        let e = self.categories.entry(category.to_string()).or_default();
        e.0 += 1;
        e.1 += f.len() as u64;
        for t in &f {
            *self
                .tokens
                .entry((category.to_string(), t.clone()))
                .or_default() += 1;
        }
        f
    }

    /// Adds a category's stored totals (a row of `classifier_categories`).
    pub fn add_counts(&mut self, category: &str, documents: u64, tokens: u64) {
        let e = self.categories.entry(category.to_string()).or_default();
        e.0 = e.0.saturating_add(documents);
        e.1 = e.1.saturating_add(tokens);
    }

    /// Adds one stored token count (a row of `classifier_tokens`).
    pub fn add_token_count(&mut self, category: &str, token: &str, count: u64) {
        let c = self
            .tokens
            .entry((category.to_string(), token.to_string()))
            .or_default();
        *c = c.saturating_add(count);
    }

    /// True before anything was learned.
    pub fn is_empty(&self) -> bool {
        self.categories.values().all(|(docs, _)| *docs == 0)
    }

    /// The most likely category and its posterior probability; `None` untrained, or for
    /// a text with no feature the model has seen (no evidence: the prior alone is not a
    /// prediction worth showing an agent).
    pub fn predict(&self, text: &str) -> Option<(String, f64)> {
        let total_docs: u64 = self.categories.values().map(|(d, _)| *d).sum();
        if total_docs == 0 {
            return None;
        }
        let seen: BTreeSet<&str> = self.tokens.keys().map(|(_, t)| t.as_str()).collect();
        let vocabulary = seen.len() as f64;
        let features = features(text);
        let known: Vec<&str> = features
            .iter()
            .map(String::as_str)
            .filter(|f| seen.contains(f))
            .collect();
        if known.is_empty() {
            return None;
        }
        let mut scores: Vec<(&str, f64)> = Vec::with_capacity(self.categories.len());
        for (category, (docs, tokens)) in &self.categories {
            if *docs == 0 {
                continue;
            }
            let prior = (*docs as f64 / total_docs as f64).ln();
            let denominator = (*tokens as f64 + vocabulary).ln();
            let mut key = (category.clone(), String::new());
            let mut score = prior;
            for f in &known {
                key.1.clear();
                key.1.push_str(f);
                let count = self.tokens.get(&key).copied().unwrap_or(0);
                score += (count as f64 + 1.0).ln() - denominator;
            }
            scores.push((category.as_str(), score));
        }
        // The first of equal scores wins: categories are in name order, so it is stable.
        let (best, best_score) = scores.iter().copied().fold(None, |acc, (c, s)| match acc {
            Some((_, bs)) if bs >= s => acc,
            _ => Some((c, s)),
        })?;
        let log_sum = best_score
            + scores
                .iter()
                .map(|(_, s)| (s - best_score).exp())
                .sum::<f64>()
                .ln();
        Some((best.to_string(), (best_score - log_sum).exp()))
    }

    /// The share of `labelled` (text, category) pairs predicted right; a text with no
    /// prediction counts as wrong. 0 for an empty list.
    pub fn accuracy(&self, labelled: &[(String, String)]) -> f64 {
        if labelled.is_empty() {
            return 0.0;
        }
        let right = labelled
            .iter()
            .filter(|(text, category)| {
                self.predict(text)
                    .is_some_and(|(predicted, _)| &predicted == category)
            })
            .count();
        right as f64 / labelled.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(t, c)| (t.to_string(), c.to_string()))
            .collect()
    }

    #[test]
    fn learns_a_toy_split() {
        let mut m = Model::default();
        for (t, c) in [
            ("where is my parcel, tracking not updated", "tracking"),
            ("parcel tracking number missing", "tracking"),
            ("my parcel has not arrived", "tracking"),
            ("charged twice on my card", "billing"),
            ("need an invoice for my card payment", "billing"),
            ("payment declined at checkout", "billing"),
        ] {
            m.train(t, c);
        }
        let (c, p) = m.predict("the tracking of my parcel").unwrap();
        assert_eq!(c, "tracking");
        assert!(p > 0.5 && p <= 1.0, "{p}");
        assert_eq!(m.predict("payment on my card").unwrap().0, "billing");
        let held_out = pairs(&[
            ("parcel not arrived", "tracking"),
            ("invoice please", "billing"),
        ]);
        assert!((m.accuracy(&held_out) - 1.0).abs() < 1e-9);
        assert_eq!(m.accuracy(&[]), 0.0);
    }

    #[test]
    fn chinese_refund_and_return_are_told_apart() {
        let mut m = Model::default();
        for (t, c) in [
            ("退款什么时候到账", "refund"),
            ("钱还没有退回来，退款多久到账", "refund"),
            ("退款进度怎么查", "refund"),
            ("怎么申请退货，退货地址是哪里", "return"),
            ("衣服不喜欢想退货寄回去", "return"),
            ("退货要自己出运费吗", "return"),
        ] {
            m.train(t, c);
        }
        assert_eq!(m.predict("我的退款到账了吗").unwrap().0, "refund");
        assert_eq!(m.predict("鞋子想退货，怎么寄回").unwrap().0, "return");
    }

    #[test]
    fn untrained_model_predicts_nothing() {
        assert_eq!(Model::default().predict("where is my parcel"), None);
        assert!(Model::default().is_empty());
    }

    #[test]
    fn empty_or_unknown_text_predicts_nothing() {
        let mut m = Model::default();
        m.train("where is my parcel", "tracking");
        m.train("charged twice", "billing");
        assert_eq!(m.predict(""), None);
        assert_eq!(m.predict("   ,,, !!! "), None);
        assert_eq!(m.predict("zzzz qqqq"), None);
    }

    #[test]
    fn posterior_is_a_probability_even_for_long_texts() {
        // Thousands of features: a product of probabilities would underflow to 0/0.
        let long: String = (0..3000u32)
            .map(|i| {
                let letter = |n: u32| char::from(b'a' + (n % 26) as u8);
                format!("x{}{}{} ", letter(i / 676), letter(i / 26), letter(i))
            })
            .collect();
        let mut m = Model::default();
        m.train(&long, "tracking");
        m.train("invoice payment", "billing");
        let (c, p) = m.predict(&long).unwrap();
        assert_eq!(c, "tracking");
        assert!(p.is_finite() && p > 0.9 && p <= 1.0, "{p}");
    }

    #[test]
    fn a_word_counts_once_per_text() {
        assert_eq!(
            features("refund refund refund"),
            ["refund", "refund refund"]
        );
    }

    #[test]
    fn stored_counts_rebuild_the_same_model() {
        let mut trained = Model::default();
        trained.train("where is my parcel", "tracking");
        trained.train("charged twice", "billing");
        let mut loaded = Model::default();
        for (c, (d, t)) in &trained.categories {
            loaded.add_counts(c, *d, *t);
        }
        for ((c, t), n) in &trained.tokens {
            loaded.add_token_count(c, t, *n);
        }
        assert_eq!(loaded, trained);
        assert_eq!(loaded.predict("my parcel"), trained.predict("my parcel"));
    }
}
