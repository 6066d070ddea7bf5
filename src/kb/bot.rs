//! The answer bot's decisions, pure: whether the best article is an answer, and whether a
//! customer's reply asks for a person. (Skeleton: see the helper's implementation.)

use super::index::Hit;

/// The configured bar an article must clear (`[bot] min_score`, `min_margin`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub min_score: f32,
    pub min_margin: f32,
}

/// What the bot does with a question.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Send this article.
    Answer {
        article: i64,
        score: f32,
        margin: f32,
    },
    /// Leave it to a person; the best candidate, if any, for the handoff summary.
    Handoff {
        reason: &'static str,
        best: Option<(i64, f32)>,
    },
}

/// Decides from the hits of a published-only search in the customer's language.
pub fn decide(hits: &[Hit], t: &Thresholds) -> Decision {
    let Some(best) = hits.first() else {
        return Decision::Handoff {
            reason: "no_article",
            best: None,
        };
    };
    let second = hits.get(1).map(|h| h.score).unwrap_or(0.0);
    let margin = best.score - second;
    if best.score < t.min_score {
        return Decision::Handoff {
            reason: "low_confidence",
            best: Some((best.id, best.score)),
        };
    }
    if margin < t.min_margin {
        return Decision::Handoff {
            reason: "ambiguous",
            best: Some((best.id, best.score)),
        };
    }
    Decision::Answer {
        article: best.id,
        score: best.score,
        margin,
    }
}

/// True when a customer's text asks for a person ("human", "人工", "agent" and `extra`).
pub fn asks_for_human(text: &str, extra: &[String]) -> bool {
    let t = text.trim().to_lowercase();
    ["human", "agent", "人工", "转人工"]
        .iter()
        .map(|s| s.to_string())
        .chain(extra.iter().map(|s| s.to_lowercase()))
        .any(|w| t.contains(&w))
}

/// True when a customer's reply says the answer did not help.
pub fn says_not_helped(text: &str) -> bool {
    let t = text.to_lowercase();
    [
        "didn't help",
        "did not help",
        "not helpful",
        "没用",
        "没有帮助",
        "没解决",
    ]
    .iter()
    .any(|w| t.contains(w))
}
