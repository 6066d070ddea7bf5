//! Request signatures of the JSON channel: HMAC-SHA256 over `"<timestamp>.<body>"` with the
//! account's shared secret, sent as two headers. Pure: the caller passes the time in.
//!
//! This module owns the recipe and the time window, nothing else: replay protection (the
//! same signature seen twice) lives with the HTTP server, which keeps the state.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Unix seconds at which the request was signed.
pub const TIMESTAMP_HEADER: &str = "X-Postdesk-Timestamp";
/// `sha256=<lowercase hex HMAC-SHA256 of "<timestamp>.<body>">`.
pub const SIGNATURE_HEADER: &str = "X-Postdesk-Signature";
/// How far a timestamp may be from our clock, either direction, in seconds.
pub const MAX_SKEW_SECS: i64 = 300;

const PREFIX: &str = "sha256=";

type HmacSha256 = Hmac<Sha256>;

/// Why a request's signature was refused. The words are sent back to the client, so they
/// say which header is wrong and never anything about the expected value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the {TIMESTAMP_HEADER} header is missing")]
    MissingTimestamp,
    #[error("the {TIMESTAMP_HEADER} header is not Unix seconds")]
    MalformedTimestamp,
    #[error("the {SIGNATURE_HEADER} header is missing")]
    MissingSignature,
    #[error("the {SIGNATURE_HEADER} header is not \"sha256=\" followed by 64 lowercase hex digits")]
    MalformedSignature,
    #[error(
        "the {TIMESTAMP_HEADER} header is {skew_secs} s away from our clock (at most {MAX_SKEW_SECS} s allowed)"
    )]
    OutsideWindow { skew_secs: i64 },
    #[error("the signature does not match the body and timestamp")]
    Mismatch,
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length (RFC 2104 hashes long ones), so this cannot fail;
    // the fallback only satisfies the type.
    let mut mac = HmacSha256::new_from_slice(secret)
        .unwrap_or_else(|_| <HmacSha256 as Mac>::new(&Default::default()));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The value of the signature header for this body at this time: `sha256=<hex>`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    format!("{PREFIX}{}", hex::encode(tag))
}

/// Checks a request's two headers against its body: the timestamp within
/// [`MAX_SKEW_SECS`] of `now_unix` either way, then the HMAC, compared in constant time.
pub fn verify(
    secret: &[u8],
    timestamp_header: Option<&str>,
    signature_header: Option<&str>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), SignatureError> {
    let ts_text = timestamp_header.ok_or(SignatureError::MissingTimestamp)?;
    let ts_text = ts_text.trim();
    // Digits only (an optional minus aside): no "+1700000000", no "1.7e9".
    let digits = ts_text.strip_prefix('-').unwrap_or(ts_text);
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::MalformedTimestamp);
    }
    let timestamp: i64 = ts_text
        .parse()
        .map_err(|_| SignatureError::MalformedTimestamp)?;
    let sig_text = signature_header.ok_or(SignatureError::MissingSignature)?;
    let hex_part = sig_text
        .trim()
        .strip_prefix(PREFIX)
        .ok_or(SignatureError::MalformedSignature)?;
    if hex_part.len() != 64
        || !hex_part
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(SignatureError::MalformedSignature);
    }
    let tag = hex::decode(hex_part).map_err(|_| SignatureError::MalformedSignature)?;
    let skew = now_unix.saturating_sub(timestamp);
    if skew.saturating_abs() > MAX_SKEW_SECS {
        return Err(SignatureError::OutsideWindow { skew_secs: skew });
    }
    mac(secret, timestamp, body)
        .verify_slice(&tag)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn known_vector_matches_openssl() {
        // printf '%s' '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret
        assert_eq!(
            sign(b"secret", NOW, br#"{"a":1}"#),
            "sha256=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
        );
        // printf '%s' '1700000000.' | openssl dgst -sha256 -hmac secret (an empty body: GET)
        assert_eq!(
            sign(b"secret", NOW, b""),
            "sha256=4bc5f74d868b97888288889c5d9d65df02526f94c1592a79fdf4fe8b26e311e5"
        );
    }

    #[test]
    fn a_fresh_signature_verifies() {
        let sig = sign(b"k", NOW, b"body");
        assert_eq!(
            verify(b"k", Some("1700000000"), Some(&sig), b"body", NOW),
            Ok(())
        );
        // Within the window either way, edges included.
        assert_eq!(
            verify(b"k", Some("1700000000"), Some(&sig), b"body", NOW + 300),
            Ok(())
        );
        assert_eq!(
            verify(b"k", Some("1700000000"), Some(&sig), b"body", NOW - 300),
            Ok(())
        );
    }

    #[test]
    fn each_header_problem_is_named() {
        let sig = sign(b"k", NOW, b"body");
        assert_eq!(
            verify(b"k", None, Some(&sig), b"body", NOW),
            Err(SignatureError::MissingTimestamp)
        );
        assert_eq!(
            verify(b"k", Some("1700000000"), None, b"body", NOW),
            Err(SignatureError::MissingSignature)
        );
        for bad in ["", "soon", "1.7e9", "+1700000000", "99999999999999999999"] {
            assert_eq!(
                verify(b"k", Some(bad), Some(&sig), b"body", NOW),
                Err(SignatureError::MalformedTimestamp),
                "{bad:?}"
            );
        }
        let upper = sig.to_uppercase().replace("SHA256=", "sha256=");
        for bad in [
            sig.trim_start_matches("sha256="),
            "sha1=abc",
            "sha256=xyz",
            &sig[..70],
            &upper,
        ] {
            assert_eq!(
                verify(b"k", Some("1700000000"), Some(bad), b"body", NOW),
                Err(SignatureError::MalformedSignature),
                "{bad:?}"
            );
        }
        assert!(
            SignatureError::MissingSignature
                .to_string()
                .contains("X-Postdesk-Signature")
        );
    }

    #[test]
    fn old_and_future_timestamps_are_refused() {
        let old = sign(b"k", NOW - 301, b"body");
        assert_eq!(
            verify(b"k", Some("1699999699"), Some(&old), b"body", NOW),
            Err(SignatureError::OutsideWindow { skew_secs: 301 })
        );
        let future = sign(b"k", NOW + 301, b"body");
        assert_eq!(
            verify(b"k", Some("1700000301"), Some(&future), b"body", NOW),
            Err(SignatureError::OutsideWindow { skew_secs: -301 })
        );
    }

    #[test]
    fn another_body_secret_or_timestamp_does_not_match() {
        let sig = sign(b"k", NOW, b"body");
        assert_eq!(
            verify(b"k", Some("1700000000"), Some(&sig), b"bodY", NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"other", Some("1700000000"), Some(&sig), b"body", NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"k", Some("1700000001"), Some(&sig), b"body", NOW),
            Err(SignatureError::Mismatch)
        );
    }
}
