//! Per-agent, per-ticket reply tokens: the `<token>` in the `support+<token>@domain`
//! Reply-To of an agent notification (issue 3, "Authentication", condition 1).
//!
//! A token names a ticket, an agent, the key version that signed it and an expiry, and
//! carries a 128-bit truncated HMAC-SHA256 over all four plus a domain-separation label.
//! This module only mints and checks tokens; it does no I/O. The [`Keyring`] is generated
//! at first start and stored by the caller (settings table or a configured file) in the
//! form [`Keyring::to_storage`] writes.
//!
//! # Layout
//! `a` + base32(varint key version, varint ticket, varint agent, varint expiry, 16-byte tag)
//!
//! - The leading `a` is the format version. Agent tokens are never shorter than 33
//!   characters (20 payload bytes at the least), so they cannot be mistaken for customer
//!   reply tokens, which are exactly 32 lowercase hex characters; [`verify`] rejects those
//!   as `Malformed`, and [`looks_like_agent_token`] tells the two apart cheaply.
//! - Base32 is RFC 4648 §6 lowercased, without padding, so the token survives mail systems
//!   that change the case of local parts (it is parsed case-insensitively) and fits the
//!   RFC 5321 §4.5.3.1.1 limit of 64 octets together with `support+`: for any key version,
//!   agents below 2^21, tickets below 2^49 and expiries below 2^35 (year 3058) a token is
//!   at most 56 characters; a typical one (ticket below 2^21, agent below 128, expiry in
//!   this century) is 43. [`mint`] refuses anything longer than [`MAX_TOKEN_LEN`]. With a
//!   base local part longer than `support`, the caller checks the whole address.
//! - Varints are LEB128 and must be minimal; the unused low bits of the last base32
//!   character must be zero. Together this makes the text of a token canonical: one
//!   token, one spelling (up to case).
//! - The MAC is computed over a fixed-width encoding of the fields, not over the varints,
//!   so how the fields are spelled cannot change what is authenticated.
//!
//! Tags are compared with [`subtle::ConstantTimeEq`]. The MAC is checked before the expiry,
//! so a forged token never learns anything from an `Expired` answer.

use std::collections::BTreeMap;
use std::fmt;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Longest token [`mint`] will produce: `support+` (8 octets) plus the token must fit the
/// 64-octet local part of RFC 5321.
pub const MAX_TOKEN_LEN: usize = 64 - "support+".len();

/// The format prefix of agent tokens (see the module doc).
const PREFIX: char = 'a';
/// Length of the truncated HMAC-SHA256 tag: 128 bits.
const TAG_LEN: usize = 16;
/// Domain separation: a tag made for anything else with the same key never verifies here.
const MAC_LABEL: &[u8] = b"postdesk/agent-reply-token/v1\0";

/// Why a token was not accepted, or why a keyring could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the reply token is malformed")]
    Malformed,
    #[error("the reply token was signed with a key that is not (or no longer) known")]
    UnknownKey,
    #[error("the reply token's signature does not match")]
    BadMac,
    #[error("the reply token has expired")]
    Expired,
    #[error("cannot mint a reply token: {0}")]
    OutOfRange(&'static str),
    #[error("invalid reply-token keyring: {0}")]
    Keyring(String),
}

/// What a valid token says. The caller compares `ticket` and `agent` with the ticket and
/// agent the reply claims to be about; `verify` only proves the token was minted by us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentToken {
    pub ticket: i64,
    /// The agent's id (or index) as the caller chose it when minting.
    pub agent: u32,
    pub key_version: u16,
    /// Unix seconds; the token is valid while `now < expires`.
    pub expires: i64,
}

/// The versioned HMAC secrets. New tokens are signed with the current version; every
/// version still in the ring verifies. `Debug` shows the versions, never the secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct Keyring {
    keys: BTreeMap<u16, [u8; 32]>,
    current: u16,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("versions", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Keyring {
    /// A keyring from stored keys. `current` must be one of them; versions must be unique.
    pub fn new(current: u16, keys: Vec<(u16, [u8; 32])>) -> Result<Keyring, TokenError> {
        let mut map = BTreeMap::new();
        for (version, key) in keys {
            if map.insert(version, key).is_some() {
                return Err(TokenError::Keyring(format!(
                    "key version {version} appears twice"
                )));
            }
        }
        if !map.contains_key(&current) {
            return Err(TokenError::Keyring(format!(
                "current key version {current} has no key"
            )));
        }
        Ok(Keyring { keys: map, current })
    }

    /// A fresh keyring with one random key, version 1: what the daemon makes at first start.
    pub fn generate() -> Keyring {
        Keyring {
            keys: BTreeMap::from([(1, Self::generate_key())]),
            current: 1,
        }
    }

    /// 32 random bytes from the thread-local CSPRNG (ChaCha, seeded from the OS).
    pub fn generate_key() -> [u8; 32] {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        key
    }

    pub fn current_version(&self) -> u16 {
        self.current
    }

    /// The versions in the ring, oldest first.
    pub fn versions(&self) -> Vec<u16> {
        self.keys.keys().copied().collect()
    }

    /// Adds a new random key one version above the highest and makes it current. Older
    /// keys stay for verifying until [`Keyring::retire`]d. Fails only when version 65535
    /// is taken.
    pub fn rotate(&mut self) -> Result<u16, TokenError> {
        let highest = self.keys.keys().next_back().copied().unwrap_or(0);
        let next = highest
            .checked_add(1)
            .ok_or_else(|| TokenError::Keyring("no key version left above 65535".into()))?;
        self.keys.insert(next, Self::generate_key());
        self.current = next;
        Ok(next)
    }

    /// Forgets a key: tokens signed with it no longer verify. The current key cannot be
    /// retired (rotate first).
    pub fn retire(&mut self, version: u16) -> Result<(), TokenError> {
        if version == self.current {
            return Err(TokenError::Keyring(format!(
                "key version {version} is current; rotate before retiring it"
            )));
        }
        self.keys.remove(&version);
        Ok(())
    }

    /// The keyring as one line for storage: `current=2;v1=<64 hex>;v2=<64 hex>`.
    /// It holds the secrets: store it like a password, never log it.
    pub fn to_storage(&self) -> String {
        let mut out = format!("current={}", self.current);
        for (version, key) in &self.keys {
            out.push_str(&format!(";v{version}={}", hex::encode(key)));
        }
        out
    }

    /// Reads what [`Keyring::to_storage`] wrote. Whitespace around items is ignored.
    pub fn from_storage(s: &str) -> Result<Keyring, TokenError> {
        let mut current = None;
        let mut keys = Vec::new();
        for item in s.split(';').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, value) = item
                .split_once('=')
                .ok_or_else(|| TokenError::Keyring(format!("item {item:?} has no '='")))?;
            let (name, value) = (name.trim(), value.trim());
            if name == "current" {
                let v = value.parse::<u16>().map_err(|_| {
                    TokenError::Keyring(format!("current version {value:?} is not a number"))
                })?;
                if current.replace(v).is_some() {
                    return Err(TokenError::Keyring("current is given twice".into()));
                }
            } else if let Some(version) = name.strip_prefix('v') {
                let version = version.parse::<u16>().map_err(|_| {
                    TokenError::Keyring(format!("key name {name:?} is not v<number>"))
                })?;
                let mut key = [0u8; 32];
                // Do not echo the value: it is a secret.
                hex::decode_to_slice(value, &mut key).map_err(|_| {
                    TokenError::Keyring(format!("key v{version} is not 64 hex digits"))
                })?;
                keys.push((version, key));
            } else {
                return Err(TokenError::Keyring(format!("unknown item {name:?}")));
            }
        }
        let current = current.ok_or_else(|| TokenError::Keyring("current is missing".into()))?;
        Keyring::new(current, keys)
    }

    fn key(&self, version: u16) -> Option<&[u8; 32]> {
        self.keys.get(&version)
    }
}

/// Cheap shape check, no key needed: `a` followed by base32, 33 to [`MAX_TOKEN_LEN`]
/// characters in all, any case. A customer token (32 hex characters) never matches.
/// The stable 32-bit identity a token names: the first four bytes of SHA-256 over the
/// lower-cased address of the agent (or invited collaborator). Stable across config
/// reordering; changing an agent's address retires the tokens minted for the old one.
pub fn identity_id(email: &str) -> u32 {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(email.trim().to_lowercase().as_bytes());
    let mut first = [0u8; 4];
    first.copy_from_slice(d.get(..4).unwrap_or(&[0; 4]));
    u32::from_be_bytes(first)
}

pub fn looks_like_agent_token(token: &str) -> bool {
    let b = token.as_bytes();
    (MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&b.len())
        && b.first().is_some_and(|c| c.eq_ignore_ascii_case(&b'a'))
        && b.iter()
            .all(|c| c.is_ascii_alphabetic() || (b'2'..=b'7').contains(c))
}

/// Shortest possible token: four one-byte varints and the tag (20 bytes, 32 base32
/// characters) after the prefix.
const MIN_TOKEN_LEN: usize = 33;

/// Mints the token for `agent` on `ticket`, valid until `expires` (unix seconds), signed
/// with the keyring's current key.
pub fn mint(
    keyring: &Keyring,
    ticket: i64,
    agent: u32,
    expires: i64,
) -> Result<String, TokenError> {
    let ticket_u = u64::try_from(ticket).map_err(|_| TokenError::OutOfRange("negative ticket"))?;
    let expires_u =
        u64::try_from(expires).map_err(|_| TokenError::OutOfRange("negative expiry"))?;
    let fields = AgentToken {
        ticket,
        agent,
        key_version: keyring.current,
        expires,
    };
    let key = keyring.key(keyring.current).ok_or(TokenError::UnknownKey)?;
    let tag = compute_tag(key, &fields)?;

    let mut bytes = Vec::with_capacity(40);
    put_varint(&mut bytes, u64::from(fields.key_version));
    put_varint(&mut bytes, ticket_u);
    put_varint(&mut bytes, u64::from(agent));
    put_varint(&mut bytes, expires_u);
    bytes.extend_from_slice(&tag);

    let mut token = String::with_capacity(MAX_TOKEN_LEN);
    token.push(PREFIX);
    token.push_str(&base32_encode(&bytes));
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::OutOfRange(
            "the token would not fit an email local part",
        ));
    }
    Ok(token)
}

/// Checks a token (any case) against the keyring and the clock. On success the caller
/// still has to compare the returned ticket and agent with the ones the reply is about.
pub fn verify(keyring: &Keyring, token: &str, now: i64) -> Result<AgentToken, TokenError> {
    let token = token.trim();
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let lower = token.to_ascii_lowercase();
    let body = lower.strip_prefix(PREFIX).ok_or(TokenError::Malformed)?;
    let bytes = base32_decode(body).ok_or(TokenError::Malformed)?;

    let mut rest = bytes.as_slice();
    let key_version = take_varint(&mut rest).ok_or(TokenError::Malformed)?;
    let ticket = take_varint(&mut rest).ok_or(TokenError::Malformed)?;
    let agent = take_varint(&mut rest).ok_or(TokenError::Malformed)?;
    let expires = take_varint(&mut rest).ok_or(TokenError::Malformed)?;
    let tag: &[u8; TAG_LEN] = rest.try_into().map_err(|_| TokenError::Malformed)?;

    let fields = AgentToken {
        key_version: u16::try_from(key_version).map_err(|_| TokenError::Malformed)?,
        ticket: i64::try_from(ticket).map_err(|_| TokenError::Malformed)?,
        agent: u32::try_from(agent).map_err(|_| TokenError::Malformed)?,
        expires: i64::try_from(expires).map_err(|_| TokenError::Malformed)?,
    };
    let key = keyring
        .key(fields.key_version)
        .ok_or(TokenError::UnknownKey)?;
    let expected = compute_tag(key, &fields)?;
    if !bool::from(expected.ct_eq(tag)) {
        return Err(TokenError::BadMac);
    }
    if now >= fields.expires {
        return Err(TokenError::Expired);
    }
    Ok(fields)
}

/// HMAC-SHA256(label || key_version:u16 || ticket:i64 || agent:u32 || expires:i64), all
/// big-endian and fixed width, truncated to 128 bits.
fn compute_tag(key: &[u8; 32], f: &AgentToken) -> Result<[u8; TAG_LEN], TokenError> {
    // HMAC accepts keys of any length; the error branch cannot be taken with 32 bytes.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .map_err(|_| TokenError::Keyring("HMAC rejected the key".into()))?;
    mac.update(MAC_LABEL);
    mac.update(&f.key_version.to_be_bytes());
    mac.update(&f.ticket.to_be_bytes());
    mac.update(&f.agent.to_be_bytes());
    mac.update(&f.expires.to_be_bytes());
    let full = mac.finalize().into_bytes();
    let mut tag = [0u8; TAG_LEN];
    for (t, b) in tag.iter_mut().zip(full.iter()) {
        *t = *b;
    }
    Ok(tag)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let low = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// Minimal LEB128 only: a trailing zero continuation byte is rejected, so no value has two
/// spellings.
fn take_varint(input: &mut &[u8]) -> Option<u64> {
    let mut value: u64 = 0;
    let mut shift = 0u32;
    loop {
        let (&byte, rest) = input.split_first()?;
        *input = rest;
        let low = u64::from(byte & 0x7f);
        if shift == 63 && low > 1 {
            return None; // beyond 64 bits
        }
        value |= low.checked_shl(shift)?;
        if byte & 0x80 == 0 {
            if byte == 0 && shift > 0 {
                return None; // non-minimal
            }
            return Some(value);
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

const BASE32_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// RFC 4648 §6 base32, lowercase, no padding.
fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity((bytes.len() * 8).div_ceil(5));
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    let emit = |index: u32, out: &mut String| {
        if let Some(&c) = BASE32_ALPHABET.get(index as usize) {
            out.push(char::from(c));
        }
    };
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            emit((buffer >> bits) & 0x1f, &mut out);
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        emit((buffer << (5 - bits)) & 0x1f, &mut out);
    }
    out
}

/// Inverse of [`base32_encode`] for lowercase input. Rejects characters outside the
/// alphabet, lengths no encoding produces, and non-zero unused trailing bits.
fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for c in text.bytes() {
        let value = match c {
            b'a'..=b'z' => c - b'a',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buffer = (buffer << 5) | u32::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
        buffer &= (1 << bits) - 1;
    }
    // Leftover bits are padding: fewer than 5 of them, all zero. Five or more means a
    // character carried no byte at all, which no encoder emits.
    if bits >= 5 || buffer != 0 {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_760_000_000;
    const LATER: i64 = NOW + 14 * 86_400;

    fn ring() -> Keyring {
        Keyring::new(1, vec![(1, [7u8; 32])]).unwrap()
    }

    #[test]
    fn round_trip() {
        let k = ring();
        let t = mint(&k, 42, 3, LATER).unwrap();
        assert!(t.starts_with('a'));
        let got = verify(&k, &t, NOW).unwrap();
        assert_eq!(
            got,
            AgentToken {
                ticket: 42,
                agent: 3,
                key_version: 1,
                expires: LATER
            }
        );
    }

    #[test]
    fn parsing_is_case_insensitive() {
        let k = ring();
        let t = mint(&k, 42, 3, LATER).unwrap();
        assert_eq!(verify(&k, &t.to_uppercase(), NOW).unwrap().ticket, 42);
    }

    #[test]
    fn expired_token_is_rejected() {
        let k = ring();
        let t = mint(&k, 42, 3, NOW + 10).unwrap();
        assert!(verify(&k, &t, NOW + 9).is_ok());
        assert_eq!(verify(&k, &t, NOW + 10), Err(TokenError::Expired));
        assert_eq!(verify(&k, &t, NOW + 1_000_000), Err(TokenError::Expired));
    }

    #[test]
    fn token_names_its_own_ticket_and_agent_only() {
        let k = ring();
        let t1 = mint(&k, 1, 5, LATER).unwrap();
        let t2 = mint(&k, 2, 5, LATER).unwrap();
        let t3 = mint(&k, 1, 6, LATER).unwrap();
        assert_ne!(t1, t2);
        assert_ne!(t1, t3);
        let got = verify(&k, &t1, NOW).unwrap();
        assert_eq!((got.ticket, got.agent), (1, 5));
        assert_ne!(got.ticket, 2);
    }

    /// Re-encodes a token with one field changed but the original tag: must not verify.
    #[test]
    fn changing_any_field_under_the_old_tag_fails() {
        let k = Keyring::new(2, vec![(1, [1u8; 32]), (2, [2u8; 32])]).unwrap();
        let t = mint(&k, 100, 7, LATER).unwrap();
        let bytes = base32_decode(&t[1..]).unwrap();
        let tag = &bytes[bytes.len() - TAG_LEN..];
        let forge = |kv: u64, ticket: u64, agent: u64, exp: u64| {
            let mut b = Vec::new();
            put_varint(&mut b, kv);
            put_varint(&mut b, ticket);
            put_varint(&mut b, agent);
            put_varint(&mut b, exp);
            b.extend_from_slice(tag);
            format!("a{}", base32_encode(&b))
        };
        let exp = LATER as u64;
        // The unchanged re-encoding is the original token.
        assert_eq!(forge(2, 100, 7, exp), t);
        for forged in [
            forge(1, 100, 7, exp),
            forge(2, 101, 7, exp),
            forge(2, 100, 8, exp),
            forge(2, 100, 7, exp + 86_400),
        ] {
            assert_eq!(
                verify(&k, &forged, NOW),
                Err(TokenError::BadMac),
                "{forged}"
            );
        }
        assert_eq!(
            verify(&k, &forge(3, 100, 7, exp), NOW),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn every_single_bit_flip_is_rejected() {
        let k = ring();
        let t = mint(&k, 123_456, 12, LATER).unwrap();
        let chars: Vec<u8> = t.bytes().collect();
        let mut tried = 0;
        for pos in 0..chars.len() {
            let value: u8 = match chars[pos] {
                c @ b'a'..=b'z' => c - b'a',
                c @ b'2'..=b'7' => c - b'2' + 26,
                other => panic!("unexpected char {other}"),
            };
            for bit in 0..5 {
                let flipped = value ^ (1 << bit);
                let mut m = chars.clone();
                m[pos] = BASE32_ALPHABET[flipped as usize];
                let text = String::from_utf8(m).unwrap();
                let r = verify(&k, &text, NOW);
                // UnknownKey: the flip landed in the key version; still never Ok.
                assert!(
                    matches!(
                        r,
                        Err(TokenError::BadMac | TokenError::Malformed | TokenError::UnknownKey)
                    ),
                    "position {pos} bit {bit}: {text} gave {r:?}"
                );
                tried += 1;
            }
        }
        assert_eq!(tried, chars.len() * 5);
    }

    #[test]
    fn unknown_key_version_is_rejected() {
        let signer = Keyring::new(9, vec![(9, [9u8; 32])]).unwrap();
        let t = mint(&signer, 1, 1, LATER).unwrap();
        assert_eq!(verify(&ring(), &t, NOW), Err(TokenError::UnknownKey));
    }

    #[test]
    fn same_version_other_secret_is_bad_mac() {
        let a = Keyring::new(1, vec![(1, [1u8; 32])]).unwrap();
        let b = Keyring::new(1, vec![(1, [2u8; 32])]).unwrap();
        let t = mint(&a, 1, 1, LATER).unwrap();
        assert_eq!(verify(&b, &t, NOW), Err(TokenError::BadMac));
    }

    #[test]
    fn rotation_keeps_old_tokens_until_retired() {
        let mut k = Keyring::generate();
        let old = mint(&k, 5, 2, LATER).unwrap();
        assert_eq!(k.rotate().unwrap(), 2);
        assert_eq!(k.current_version(), 2);
        let new = mint(&k, 5, 2, LATER).unwrap();
        assert_eq!(verify(&k, &new, NOW).unwrap().key_version, 2);
        assert_eq!(verify(&k, &old, NOW).unwrap().key_version, 1);
        assert!(k.retire(2).is_err(), "the current key cannot be retired");
        k.retire(1).unwrap();
        assert_eq!(verify(&k, &old, NOW), Err(TokenError::UnknownKey));
        assert!(verify(&k, &new, NOW).is_ok());
        assert_eq!(k.versions(), vec![2]);
    }

    #[test]
    fn generated_keys_differ() {
        assert_ne!(Keyring::generate_key(), Keyring::generate_key());
    }

    #[test]
    fn storage_round_trip_and_errors() {
        let mut k = Keyring::generate();
        k.rotate().unwrap();
        let s = k.to_storage();
        assert!(s.starts_with("current=2;v1="));
        let back = Keyring::from_storage(&s).unwrap();
        assert_eq!(back, k);
        let t = mint(&k, 1, 1, LATER).unwrap();
        assert!(verify(&back, &t, NOW).is_ok());

        let key = "00".repeat(32);
        assert!(Keyring::from_storage(&format!("current=1; v1={key} ")).is_ok());
        for bad in [
            format!("v1={key}"),                     // no current
            format!("current=2;v1={key}"),           // current has no key
            format!("current=1;v1={key};v1={key}"),  // duplicate
            "current=1;v1=abcd".to_string(),         // short key
            format!("current=1;v1={key};x=1"),       // unknown item
            format!("current=x;v1={key}"),           // bad number
            format!("current=1;current=1;v1={key}"), // twice
        ] {
            assert!(
                matches!(Keyring::from_storage(&bad), Err(TokenError::Keyring(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn debug_does_not_show_secrets() {
        let k = Keyring::new(1, vec![(1, [0xab; 32])]).unwrap();
        let d = format!("{k:?}");
        assert!(
            !d.contains("ab, ") && !d.contains("171") && !d.contains("abab"),
            "{d}"
        );
        assert!(d.contains("current: 1"));
    }

    #[test]
    fn token_fits_a_local_part_at_the_documented_bounds() {
        let mut k = Keyring::new(u16::MAX, vec![(u16::MAX, [3u8; 32])]).unwrap();
        let t = mint(&k, (1 << 49) - 1, (1 << 21) - 1, (1 << 35) - 1).unwrap();
        assert!(t.len() <= MAX_TOKEN_LEN, "{} chars", t.len());
        assert_eq!(t.len(), MAX_TOKEN_LEN);
        assert!(format!("support+{t}").len() <= 64);
        // Typical token: short.
        let typical = mint(&k, (1 << 21) - 1, 127, LATER).unwrap();
        assert_eq!(typical.len(), 46, "{typical}"); // 3-byte key version here
        let k1 = ring();
        assert_eq!(mint(&k1, (1 << 21) - 1, 127, LATER).unwrap().len(), 43);
        // Beyond the bounds mint refuses rather than make an address that breaks.
        assert!(matches!(
            mint(&k, i64::MAX, u32::MAX, i64::MAX),
            Err(TokenError::OutOfRange(_))
        ));
        assert!(matches!(
            mint(&k, -1, 1, LATER),
            Err(TokenError::OutOfRange(_))
        ));
        assert!(matches!(mint(&k, 1, 1, -1), Err(TokenError::OutOfRange(_))));
        assert!(k.rotate().is_err(), "no version above 65535");
    }

    #[test]
    fn customer_tokens_and_garbage_are_malformed() {
        let k = ring();
        for bad in [
            "",
            "a",
            "0123456789abcdef0123456789abcdef", // a customer token (hex)
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "a!!!",
            "b234567",
            &"a".repeat(200),
        ] {
            assert_eq!(verify(&k, bad, NOW), Err(TokenError::Malformed), "{bad:?}");
        }
        // A valid token with a character appended or removed.
        let t = mint(&k, 9, 9, LATER).unwrap();
        assert!(verify(&k, &format!("{t}a"), NOW).is_err());
        assert!(verify(&k, &t[..t.len() - 1], NOW).is_err());
    }

    #[test]
    fn shortest_token_is_longer_than_a_customer_token() {
        let k = ring();
        let t = mint(&k, 0, 0, 0).unwrap();
        assert_eq!(t.len(), MIN_TOKEN_LEN);
        assert!(looks_like_agent_token(&t));
        assert!(looks_like_agent_token(
            &mint(&k, 42, 3, LATER).unwrap().to_uppercase()
        ));
        assert!(!looks_like_agent_token("a123456789abcdef0123456789abcdef"));
        assert!(!looks_like_agent_token(&format!("b{}", &t[1..])));
    }

    #[test]
    fn base32_matches_rfc4648_vectors() {
        // RFC 4648 §10, lowercased and without padding.
        for (plain, enc) in [
            ("", ""),
            ("f", "my"),
            ("fo", "mzxq"),
            ("foo", "mzxw6"),
            ("foob", "mzxw6yq"),
            ("fooba", "mzxw6ytb"),
            ("foobar", "mzxw6ytboi"),
        ] {
            assert_eq!(base32_encode(plain.as_bytes()), enc);
            assert_eq!(base32_decode(enc).unwrap(), plain.as_bytes());
        }
        assert_eq!(base32_decode("mz"), None, "non-zero padding bits");
        assert_eq!(base32_decode("m"), None, "impossible length");
    }

    #[test]
    fn varints_are_minimal() {
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            let mut s = b.as_slice();
            assert_eq!(take_varint(&mut s), Some(v));
            assert!(s.is_empty());
        }
        assert_eq!(take_varint(&mut &[0x80u8, 0x00][..]), None);
        assert_eq!(take_varint(&mut &[0x80u8][..]), None);
        assert_eq!(take_varint(&mut &[0xffu8; 10][..]), None);
    }
}
