//! Loop protection (RFC 3834): which incoming messages must never get an automatic reply,
//! and which are bounces. Pure functions.

use crate::channels::email::compose::is_own_message_id;
use crate::channels::email::parse::Inbound;

/// Why no automatic reply may be sent to this message, or None when one may.
pub fn autoreply_suppression(
    p: &Inbound,
    own_addresses: &[String],
    own_domain: &str,
) -> Option<String> {
    if let Some(r) = &p.report {
        return Some(format!("it is a report ({})", r.report_type));
    }
    if let Some(v) = p.auto.auto_submitted.as_deref() {
        // RFC 3834 §5: any value other than "no" means automatic.
        let first = v.split(';').next().unwrap_or("").trim();
        if first != "no" {
            return Some(format!("Auto-Submitted: {first}"));
        }
    }
    if let Some(v) = p.auto.precedence.as_deref()
        && matches!(v, "bulk" | "list" | "junk")
    {
        return Some(format!("Precedence: {v}"));
    }
    if p.auto.list_id {
        return Some("it has a List-Id (mailing list)".into());
    }
    if p.auto.list_unsubscribe {
        return Some("it has a List-Unsubscribe (bulk mail)".into());
    }
    if p.auto.return_path_null {
        return Some("its Return-Path is null (<>)".into());
    }
    if p.auto.x_autoreply {
        return Some("it carries an auto-responder header".into());
    }
    if p.auto.feedback_report {
        return Some("it is a feedback report".into());
    }
    let Some(from) = p.from.as_ref() else {
        return Some("it has no From address".into());
    };
    if is_robot_address(&from.address) {
        return Some(format!("the sender {} is a robot address", from.address));
    }
    if own_addresses.contains(&from.address)
        || crate::domain::address::split_plus(&from.address)
            .is_some_and(|(base, _)| own_addresses.contains(&base))
    {
        return Some(format!("the sender {} is our own address", from.address));
    }
    if is_own_message_id(&p.message_id, own_domain) {
        return Some("its Message-ID is one of ours".into());
    }
    None
}

/// mailer-daemon, postmaster, no-reply and friends.
pub fn is_robot_address(address: &str) -> bool {
    let local = address.split('@').next().unwrap_or("").to_ascii_lowercase();
    let local = local.split('+').next().unwrap_or("");
    let squashed: String = local
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    matches!(
        squashed.as_str(),
        "mailerdaemon"
            | "postmaster"
            | "noreply"
            | "donotreply"
            | "dontreply"
            | "bounce"
            | "bounces"
            | "mailer"
            | "listserv"
            | "majordomo"
            | "nobody"
    ) || squashed.starts_with("noreply")
        || squashed.starts_with("donotreply")
        || local.starts_with("bounce-")
        || local.starts_with("owner-")
        || local.ends_with("-request")
        || local.ends_with("-bounces")
}

/// A non-standard bounce: robot sender plus a typical subject, without multipart/report.
pub fn looks_like_legacy_bounce(p: &Inbound) -> bool {
    let robot = p.from.as_ref().is_some_and(|f| {
        let l = f.address.to_ascii_lowercase();
        l.starts_with("mailer-daemon@") || l.starts_with("postmaster@")
    });
    let s = p.subject.to_lowercase();
    robot
        && (s.contains("undeliver")
            || s.contains("delivery status notification")
            || s.contains("returned mail")
            || s.contains("delivery failure")
            || s.contains("failure notice")
            || s.contains("退信")
            || s.contains("未送达"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::email::parse::parse;

    fn own() -> Vec<String> {
        vec!["support@example.com".to_string()]
    }

    fn check(headers: &str) -> Option<String> {
        let raw =
            format!("{headers}Message-ID: <m1@customer.org>\r\nSubject: help\r\n\r\nbody\r\n");
        autoreply_suppression(&parse(raw.as_bytes()), &own(), "example.com")
    }

    #[test]
    fn ordinary_mail_gets_an_autoreply() {
        assert_eq!(
            check("Return-Path: <a@customer.org>\r\nFrom: a@customer.org\r\n"),
            None
        );
        assert_eq!(
            check(
                "Return-Path: <a@customer.org>\r\nFrom: a@customer.org\r\nAuto-Submitted: no\r\n"
            ),
            None
        );
    }

    #[test]
    fn each_rfc3834_signal_suppresses() {
        let base = "Return-Path: <a@customer.org>\r\nFrom: a@customer.org\r\n";
        for (extra, needle) in [
            ("Auto-Submitted: auto-replied\r\n", "Auto-Submitted"),
            ("Auto-Submitted: auto-generated\r\n", "Auto-Submitted"),
            ("Precedence: bulk\r\n", "Precedence"),
            ("Precedence: junk\r\n", "Precedence"),
            ("Precedence: list\r\n", "Precedence"),
            ("List-Id: <x.lists.org>\r\n", "List-Id"),
            ("List-Unsubscribe: <mailto:u@x>\r\n", "List-Unsubscribe"),
            ("X-Autoreply: yes\r\n", "auto-responder"),
        ] {
            let r = check(&format!("{base}{extra}"));
            assert!(
                r.as_deref().is_some_and(|r| r.contains(needle)),
                "{extra}: {r:?}"
            );
        }
        assert!(
            check("Return-Path: <>\r\nFrom: a@customer.org\r\n")
                .unwrap()
                .contains("null")
        );
        // No Return-Path is no robot signal: mail dropped into a Maildir or appended over
        // IMAP lacks one (RFC 3834 §4 then answers the From).
        assert_eq!(check("From: a@customer.org\r\n"), None);
        for robot in [
            "MAILER-DAEMON@x.org",
            "postmaster@x.org",
            "no-reply@x.org",
            "noreply@x.org",
            "do-not-reply@x.org",
        ] {
            let r = check(&format!("Return-Path: <{robot}>\r\nFrom: {robot}\r\n"));
            assert!(r.unwrap().contains("robot"), "{robot}");
        }
        let r = check("Return-Path: <x@y.org>\r\nFrom: Support <support@example.com>\r\n");
        assert!(r.unwrap().contains("our own"));
    }

    #[test]
    fn our_own_message_id_suppresses() {
        let raw = "Return-Path: <a@c.org>\r\nFrom: a@c.org\r\nMessage-ID: <pd.4.abc@example.com>\r\n\r\nx\r\n";
        let r = autoreply_suppression(&parse(raw.as_bytes()), &own(), "example.com");
        assert!(r.unwrap().contains("ours"));
    }
}
