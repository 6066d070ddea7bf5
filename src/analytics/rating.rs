//! Satisfaction ratings: the invitation a resolution mail carries, and the signed links
//! under `/rate/` it offers.
//!
//! A link is `/rate/<ticket>/<score>/<tag>`, the tag a 128-bit truncated HMAC-SHA256 over
//! a domain-separation label, the ticket and the score with a key of its own (kept in the
//! settings table). It proves we sent that link for that ticket and score, nothing more:
//! it cannot reply to the ticket, read it, or rate another. The customer reply token is
//! deliberately not used: a URL ends up in browser histories and proxy logs, and the token
//! would let whoever reads them write into the ticket.
//!
//! Rating by reply is `threading::rating`.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The settings key of the link key.
pub const KEY_SETTING: &str = "rating_link_key";

const LABEL: &[u8] = b"postdesk rating link v1";

fn mac(key: &[u8], ticket: i64, score: i64) -> [u8; 16] {
    let mut m = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(m) => m,
        // HMAC takes keys of any length; this arm cannot run.
        Err(_) => return [0; 16],
    };
    m.update(LABEL);
    m.update(&ticket.to_be_bytes());
    m.update(&score.to_be_bytes());
    let full = m.finalize().into_bytes();
    let mut out = [0u8; 16];
    for (o, b) in out.iter_mut().zip(full.iter()) {
        *o = *b;
    }
    out
}

/// The tag of a link for `ticket` and `score`.
pub fn tag(key: &[u8], ticket: i64, score: i64) -> String {
    hex::encode(mac(key, ticket, score))
}

/// Whether `tag` is ours for `ticket` and `score` (1-5), in constant time.
pub fn verify(key: &[u8], ticket: i64, score: i64, tag: &str) -> bool {
    if !(1..=5).contains(&score) || key.is_empty() {
        return false;
    }
    let Ok(given) = hex::decode(tag.trim()) else {
        return false;
    };
    given.len() == 16 && bool::from(given.ct_eq(&mac(key, ticket, score)))
}

/// What the reply template gets to invite a rating: `{"links": [{score, url}...]}` (the
/// links only when a public URL is configured).
pub fn invitation(public_url: Option<&str>, key: &[u8], ticket: i64) -> serde_json::Value {
    let links: Vec<serde_json::Value> = match public_url {
        Some(base) => (1..=5)
            .rev()
            .map(|s| {
                serde_json::json!({
                    "score": s,
                    "url": format!("{base}/rate/{ticket}/{s}/{}", tag(key, ticket, s)),
                })
            })
            .collect(),
        None => Vec::new(),
    };
    serde_json::json!({ "links": links })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_bound_to_ticket_score_and_key() {
        let key = [7u8; 32];
        let t = tag(&key, 42, 5);
        assert_eq!(t.len(), 32);
        assert!(verify(&key, 42, 5, &t));
        assert!(verify(&key, 42, 5, &t.to_uppercase()), "hex in either case");
        assert!(!verify(&key, 42, 4, &t), "another score");
        assert!(!verify(&key, 43, 5, &t), "another ticket");
        assert!(!verify(&[8u8; 32], 42, 5, &t), "another key");
        assert!(!verify(&key, 42, 6, &tag(&key, 42, 6)), "out of range");
        assert!(!verify(&key, 42, 5, &t[..30]), "truncated");
        assert!(!verify(&key, 42, 5, "zz"), "not hex");
        assert!(!verify(&[], 42, 5, &tag(&[], 42, 5)), "no key");
    }

    #[test]
    fn the_invitation_lists_five_links_best_first() {
        let v = invitation(Some("https://help.example.com"), &[1; 32], 9);
        let links = v["links"].as_array().unwrap();
        assert_eq!(links.len(), 5);
        assert_eq!(links[0]["score"], 5);
        let url = links[0]["url"].as_str().unwrap();
        assert!(
            url.starts_with("https://help.example.com/rate/9/5/"),
            "{url}"
        );
        assert_eq!(
            invitation(None, &[1; 32], 9)["links"]
                .as_array()
                .unwrap()
                .len(),
            0
        );
    }
}
