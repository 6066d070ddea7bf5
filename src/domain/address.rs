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

/// Lowercases and trims an address for comparison and storage. A quoted local part that
/// needs no quotes (`"victim"@x`) is written without them, so both spellings are one
/// address.
pub fn normalize_address(a: &str) -> String {
    let a = a.trim().trim_matches(['<', '>']).trim().to_lowercase();
    match a.rsplit_once('@') {
        Some((local, domain))
            if local.len() >= 2 && local.starts_with('"') && local.ends_with('"') =>
        {
            format!(
                "{}@{domain}",
                local_part(local.get(1..local.len() - 1).unwrap_or_default())
            )
        }
        _ => a,
    }
}

/// An unquoted local part written as RFC 5322 needs it: as is when it is a dot-atom,
/// quoted (backslash and quote escaped) when not.
fn local_part(unquoted: &str) -> String {
    let atext = |c: char| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    let dot_atom = !unquoted.is_empty()
        && !unquoted.starts_with('.')
        && !unquoted.ends_with('.')
        && !unquoted.contains("..")
        && unquoted.chars().all(|c| atext(c) || c == '.');
    if dot_atom {
        unquoted.to_string()
    } else {
        format!(
            "\"{}\"",
            unquoted.replace('\\', "\\\\").replace('"', "\\\"")
        )
    }
}

/// The addresses of an address-list header value (RFC 5322 §3.4), read by hand: for the
/// bare forms mail-parser misreads as an empty local part (`"victim"@x`,
/// `victim(comment)@x`). Comments are dropped, quoted local parts unquoted where they can
/// be, `Name <addr>` gives `addr`. Groups (`team: a@x, b@x;`) give their members.
/// Entries without an `@` or with an empty local part are left out.
pub fn addr_specs(value: &str) -> Vec<String> {
    // Split on top-level commas and semicolons, outside quotes, comments and brackets.
    let mut entries: Vec<String> = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut escaped, mut depth, mut angle) = (false, false, 0usize, false);
    for c in value.chars() {
        if escaped {
            escaped = false;
            cur.push(c);
            continue;
        }
        match c {
            '\\' if quoted || depth > 0 => {
                escaped = true;
                cur.push(c);
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                cur.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            '<' if !quoted => {
                angle = true;
                cur.push(c);
            }
            '>' if !quoted => {
                angle = false;
                cur.push(c);
            }
            ',' | ';' if !quoted && !angle => entries.push(std::mem::take(&mut cur)),
            ':' if !quoted && !angle => cur.clear(), // a group's display name
            _ => cur.push(c),
        }
    }
    entries.push(cur);
    entries
        .iter()
        .filter_map(|e| {
            let e = e.trim();
            let spec = match (e.rfind('<'), e.rfind('>')) {
                (Some(a), Some(b)) if a < b => e.get(a + 1..b)?,
                _ => e,
            };
            let (local, domain) = spec.trim().rsplit_once('@')?;
            let local = local.trim();
            let domain: String = domain.chars().filter(|c| !c.is_whitespace()).collect();
            let unquoted = if local.len() >= 2 && local.starts_with('"') && local.ends_with('"') {
                let inner = local.get(1..local.len() - 1)?;
                let mut out = String::new();
                let mut esc = false;
                for c in inner.chars() {
                    if esc || c != '\\' {
                        out.push(c);
                        esc = false;
                    } else {
                        esc = true;
                    }
                }
                out
            } else {
                local.chars().filter(|c| !c.is_whitespace()).collect()
            };
            if unquoted.is_empty() || domain.is_empty() {
                return None;
            }
            Some(format!("{}@{}", local_part(&unquoted), domain).to_lowercase())
        })
        .collect()
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

/// Providers known to deliver `first.last@` and `firstlast@` to one mailbox.
const DOTLESS_DOMAINS: &[&str] = &["gmail.com", "googlemail.com"];

/// The mailbox an address reaches, as far as we can tell from outside: lower-cased,
/// without a `+subaddress`, and without dots in the local part for providers that ignore
/// them (`googlemail.com` is `gmail.com`). Per-recipient caps count by this key, so that
/// `victim+1@` … `victim+10@` are one mailbox, not ten.
pub fn mailbox_key(address: &str) -> String {
    let a = normalize_address(address);
    let a = split_plus(&a).map(|(base, _)| base).unwrap_or(a);
    match a.rsplit_once('@') {
        Some((local, domain)) if DOTLESS_DOMAINS.contains(&domain) => {
            format!("{}@gmail.com", local.replace('.', ""))
        }
        _ => a,
    }
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
    fn bare_quoted_and_commented_local_parts_are_read() {
        assert_eq!(
            addr_specs("\"victim\"@bigcorp.test"),
            ["victim@bigcorp.test"]
        );
        assert_eq!(
            addr_specs("victim(the boss)@bigcorp.test"),
            ["victim@bigcorp.test"]
        );
        assert_eq!(addr_specs("\"john doe\"@x.org"), ["\"john doe\"@x.org"]);
        assert_eq!(addr_specs("\"a@b\"@c.org"), ["\"a@b\"@c.org"]);
        assert_eq!(
            addr_specs("Ann (home) <ann@x.org>, \"Doe, J\" <j@x.org>; team: b@x.org, c@x.org;"),
            ["ann@x.org", "j@x.org", "b@x.org", "c@x.org"]
        );
        assert!(addr_specs("Someone <@bigcorp.test>").is_empty());
        assert!(addr_specs("undisclosed-recipients:;").is_empty());
        assert_eq!(
            normalize_address("<\"Victim\"@BigCorp.test>"),
            "victim@bigcorp.test"
        );
        assert_eq!(normalize_address("\"a b\"@x"), "\"a b\"@x");
    }

    #[test]
    fn spellings_of_one_mailbox_share_a_key() {
        assert_eq!(mailbox_key("Victim+10@Example.org"), "victim@example.org");
        assert_eq!(
            mailbox_key("v.i.c.t.i.m+x@googlemail.com"),
            "victim@gmail.com"
        );
        assert_eq!(
            mailbox_key("first.last@example.org"),
            "first.last@example.org"
        );
        assert_eq!(mailbox_key("+only@example.org"), "+only@example.org");
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
