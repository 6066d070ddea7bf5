//! Email addresses: parsing a display address, normalising for comparison, and the
//! `support+<token>@domain` reply-token addresses. Pure functions, no I/O.

use serde::Serialize;

/// One mailbox: an optional display name and a lowercased address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: String,
}

impl Mailbox {
    /// `Name <addr>` or just `addr`, for headers we write ourselves. The name is quoted
    /// when it holds characters that would otherwise need quoting (RFC 5322 §3.2.3).
    pub fn display(&self) -> String {
        match self.name.as_deref().filter(|n| !n.trim().is_empty()) {
            Some(n) => {
                let safe = n.replace(['"', '\\', '\r', '\n'], "");
                format!("\"{safe}\" <{}>", self.address)
            }
            None => self.address.clone(),
        }
    }

    pub fn domain(&self) -> &str {
        self.address.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

/// Lowercases and trims an address for comparison and storage.
pub fn normalize_address(a: &str) -> String {
    a.trim().trim_matches(['<', '>']).trim().to_lowercase()
}

/// Parses `Name <user@example.com>` (or a bare address) with mail-parser's address parser.
pub fn parse_single_address(s: &str) -> Option<Mailbox> {
    let raw = format!("From: {s}\r\n\r\n");
    let msg = mail_parser::MessageParser::default().parse(raw.as_bytes())?;
    let addr = msg.from()?.first()?;
    let address = normalize_address(addr.address()?);
    if address.is_empty() {
        return None;
    }
    Some(Mailbox {
        name: addr
            .name()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty()),
        address,
    })
}

/// Splits `local+tag@domain` into (`local@domain`, `tag`).
pub fn split_plus(address: &str) -> Option<(String, &str)> {
    let (local, domain) = address.rsplit_once('@')?;
    let (base, tag) = local.split_once('+')?;
    if base.is_empty() || tag.is_empty() {
        return None;
    }
    Some((format!("{base}@{domain}"), tag))
}

/// The reply token in `address` when its base address (without `+token`) is one of ours.
pub fn reply_token<'a>(address: &'a str, own: &[String]) -> Option<&'a str> {
    let (base, tag) = split_plus(address)?;
    own.contains(&base).then_some(tag)
}

/// `support@example.com` + token → `support+token@example.com`.
pub fn token_address(base: &str, token: &str) -> String {
    match base.rsplit_once('@') {
        Some((local, domain)) => format!("{local}+{token}@{domain}"),
        None => base.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_display_addresses() {
        let m = parse_single_address("Example Support <Support@Example.COM>").unwrap();
        assert_eq!(m.address, "support@example.com");
        assert_eq!(m.name.as_deref(), Some("Example Support"));
        assert_eq!(parse_single_address("a@b.c").unwrap().name, None);
    }

    #[test]
    fn reply_tokens_only_on_our_addresses() {
        let own = vec!["support@example.com".to_string()];
        assert_eq!(
            reply_token("support+abc123@example.com", &own),
            Some("abc123")
        );
        assert_eq!(reply_token("sales+abc123@example.com", &own), None);
        assert_eq!(reply_token("support@example.com", &own), None);
        assert_eq!(
            token_address("support@example.com", "tok"),
            "support+tok@example.com"
        );
    }

    #[test]
    fn display_quotes_hostile_names() {
        let m = Mailbox {
            name: Some("Eve\"\r\nBcc: x@y".into()),
            address: "eve@example.com".into(),
        };
        assert_eq!(m.display(), "\"EveBcc: x@y\" <eve@example.com>");
    }
}
