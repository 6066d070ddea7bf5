//! A multinomial naive Bayes over words and word bigrams, trained by agents' `#wrong`
//! corrections. Pure: the counts are loaded from and saved to the database by the store.
//! (Skeleton: see the helper's implementation.)

use std::collections::BTreeMap;

/// Token counts per category.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Model {
    /// category -> (documents, total tokens)
    pub categories: BTreeMap<String, (u64, u64)>,
    /// (category, token) -> count
    pub tokens: BTreeMap<(String, String), u64>,
}

/// The features of a text: its words and its word bigrams.
pub fn features(text: &str) -> Vec<String> {
    let w = super::text::words(text);
    let mut f = w.clone();
    for pair in w.windows(2) {
        if let [a, b] = pair {
            f.push(format!("{a} {b}"));
        }
    }
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

    /// The most likely category and its posterior probability; `None` untrained.
    pub fn predict(&self, _text: &str) -> Option<(String, f64)> {
        None
    }
}
