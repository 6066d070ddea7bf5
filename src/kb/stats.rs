//! How well the classifier does on corrections it did not learn from.

use std::collections::BTreeMap;

use serde::Serialize;

use super::classifier::Model;

/// What `postdesk classifier stats` reports.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HeldOutStats {
    pub corrections: usize,
    /// Every fifth correction (the 5th, 10th...) is held out; the model learns the rest.
    pub held_out: usize,
    /// Share of held-out corrections whose category the model predicts; `None` with no
    /// held-out correction or an untrained model.
    pub accuracy: Option<f64>,
    /// Corrections per category.
    pub by_category: BTreeMap<String, usize>,
    /// "predicted -> correct" with how often, most frequent first.
    pub confusions: Vec<(String, usize)>,
}

/// Trains on all but every fifth of `corrections` (text, correct, predicted) and measures
/// the rest. Deterministic: the same corrections give the same figures.
pub fn held_out_stats(corrections: &[(String, String, Option<String>)]) -> HeldOutStats {
    let mut model = Model::default();
    let mut held = Vec::new();
    let mut by_category: BTreeMap<String, usize> = BTreeMap::new();
    let mut confusions: BTreeMap<String, usize> = BTreeMap::new();
    for (i, (text, correct, predicted)) in corrections.iter().enumerate() {
        *by_category.entry(correct.clone()).or_default() += 1;
        *confusions
            .entry(format!(
                "{} -> {correct}",
                predicted.as_deref().unwrap_or("(none)")
            ))
            .or_default() += 1;
        if (i + 1) % 5 == 0 {
            held.push((text, correct));
        } else {
            model.train(text, correct);
        }
    }
    let accuracy = if held.is_empty() || model.categories.is_empty() {
        None
    } else {
        let right = held
            .iter()
            .filter(|(text, correct)| model.predict(text).is_some_and(|(c, _)| c == **correct))
            .count();
        Some(right as f64 / held.len() as f64)
    };
    let mut confusions: Vec<(String, usize)> = confusions.into_iter().collect();
    confusions.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    HeldOutStats {
        corrections: corrections.len(),
        held_out: held.len(),
        accuracy,
        by_category,
        confusions,
    }
}
