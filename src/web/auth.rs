//! Dashboard logins: argon2id password hashes, session tokens and their cookie.
//!
//! A session token is 32 random bytes (hex) in the cookie `pd_session`, `HttpOnly` (no
//! script reads it), `SameSite=Strict` (no other site's page sends it, so a forged form
//! or image carries no session: the CSRF defence, with an `Origin` check on every POST),
//! `Secure` when `[http] public_url` is https. The database keeps only its SHA-256.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

/// The session cookie's name.
pub const COOKIE: &str = "pd_session";
/// How long a session lasts, in seconds.
pub const SESSION_SECONDS: i64 = 12 * 3600;
/// The shortest password `postdesk agent password` accepts.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// An argon2id PHC string for `password`.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| anyhow::anyhow!("Making a salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("Hashing the password: {e}"))
}

/// Whether `password` matches `hash` (a malformed hash matches nothing).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash that no password matches, verified for unknown names so that the answer takes
/// as long as for a known one.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password that is never set").unwrap_or_default())
}

/// A fresh session token.
pub fn new_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// What the database keeps of a token.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The session token in a request's cookies.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The `Set-Cookie` value of a session (`None`: the cookie that ends it).
pub fn cookie(token: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match token {
        Some(t) => format!(
            "{COOKIE}={t}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}{secure}"
        ),
        None => format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}

/// Whether a state-changing request comes from our own pages: its `Origin` (or, without
/// one, its `Referer`) names the host it was sent to. Browsers send `Origin` on every
/// cross-site POST, so a form on another site fails here even before the cookie would.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
    else {
        return false;
    };
    let from = headers
        .get(axum::http::header::ORIGIN)
        .or_else(|| headers.get(axum::http::header::REFERER))
        .and_then(|v| v.to_str().ok());
    from.and_then(|f| f.split_once("://"))
        .map(|(_, rest)| rest.split('/').next().unwrap_or_default())
        .is_some_and(|h| h.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterY", &h));
        assert!(!verify_password("x", "not a hash"));
        assert!(!verify_password(
            "decoy password that is never set ",
            decoy_hash()
        ));
        assert_ne!(
            hash_password("same").unwrap(),
            hash_password("same").unwrap(),
            "salted"
        );
    }

    #[test]
    fn cookies_and_origins() {
        let t = new_token();
        let mut h = HeaderMap::new();
        h.insert(
            "cookie",
            HeaderValue::from_str(&format!("a=b; {COOKIE}={t}; c=d")).unwrap(),
        );
        assert_eq!(session_token(&h), Some(t.clone()));
        h.insert("cookie", HeaderValue::from_static("pd_session=../../etc"));
        assert_eq!(session_token(&h), None, "not a token");
        let c = cookie(Some(&t), true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure"));
        assert!(cookie(None, false).contains("Max-Age=0"));
        assert_eq!(token_digest(&t).len(), 64);

        let mut o = HeaderMap::new();
        o.insert("host", HeaderValue::from_static("help.example.com"));
        assert!(!same_origin(&o), "no origin at all");
        o.insert(
            "origin",
            HeaderValue::from_static("https://help.example.com"),
        );
        assert!(same_origin(&o));
        o.insert("origin", HeaderValue::from_static("https://evil.example"));
        assert!(!same_origin(&o));
        o.remove("origin");
        o.insert(
            "referer",
            HeaderValue::from_static("https://help.example.com/login"),
        );
        assert!(same_origin(&o));
    }
}
