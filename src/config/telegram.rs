//! `[[channel.telegram]]`: a bot on the Telegram Bot API (`channels::telegram`), checked
//! with every problem kept.
//!
//! ```toml
//! [[channel.telegram]]
//! account = "shop_bot"                           # [a-z0-9_-]{1,32}, unique
//! token_file = "/etc/postdesk/telegram.token"    # or token / token_env / token_credential
//! api_base = "https://api.telegram.org"          # tests point this at a local server
//! poll_timeout_secs = 30                         # getUpdates long-poll timeout, 0-50
//! rate_per_second = 25                           # sends per second, the whole bot
//! per_chat_per_minute = 20                       # sends per minute into one chat
//! max_file_mb = 20                               # largest document or photo fetched
//! # webhook_url = "https://support.example.com/channels/telegram/shop_bot/webhook"
//! # webhook_secret_file = "/etc/postdesk/telegram.webhook"  # required with webhook_url
//! # max_body_mb = 1                              # largest webhook body accepted, 1-100
//! ```
//!
//! With `webhook_url`, the bot is not polled: postdesk registers the URL with
//! `setWebhook` (and the secret as `secret_token`) and Telegram POSTs each update to
//! `/channels/telegram/<account>/webhook` on the daemon's HTTP listener, which must be
//! reachable from Telegram at that URL (through a TLS-terminating proxy).

use std::path::Path;
use std::time::Duration;

use super::{Secret, SecretSources, Secrets, channel_account, http_url, raw, read_secret};

/// The Bot API's public address.
pub const TELEGRAM_API: &str = "https://api.telegram.org";

/// One Telegram bot.
#[derive(Debug, Clone)]
pub struct TelegramChannelConfig {
    /// `[a-z0-9_-]{1,32}`, unique: our name for the bot, in identities and logs.
    pub account: String,
    /// The bot token (`123456:ABC...`): it is part of every request path, so it is a secret.
    pub token: Secret,
    /// The Bot API base, without a trailing slash.
    pub api_base: String,
    /// `getUpdates`' long-poll timeout.
    pub poll_timeout: Duration,
    /// Sends per second for the whole bot (Telegram allows about 30).
    pub rate_per_second: u32,
    /// Sends per minute into one chat (Telegram allows 20 in a group).
    pub per_chat_per_minute: u32,
    /// Largest document or photo fetched through `getFile` (the Bot API serves 20 MB).
    pub max_file_bytes: usize,
    /// Webhook mode: the public URL Telegram POSTs updates to (None: polling).
    pub webhook_url: Option<String>,
    /// The `secret_token` Telegram sends in `X-Telegram-Bot-Api-Secret-Token`.
    pub webhook_secret: Secret,
    /// Largest webhook body accepted.
    pub max_body_bytes: usize,
}

pub(super) fn telegram_channels(
    raw: Vec<raw::RawTelegramChannel>,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: Secrets,
    problems: &mut Vec<String>,
) -> Vec<TelegramChannelConfig> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, c) in raw.into_iter().enumerate() {
        let (account, ctx) = channel_account("telegram", i, c.account.clone(), &mut seen, problems);
        let inline_given = c.token.is_some();
        let token = read_secret(
            &ctx,
            "token",
            SecretSources {
                inline: c.token,
                file: c.token_file,
                env_name: c.token_env,
                credential: c.token_credential,
            },
            base,
            env,
            true,
            secrets,
            problems,
        );
        if let Some(t) = &token {
            let t = t.expose();
            if t.is_empty() {
                if secrets == Secrets::Required || inline_given {
                    problems.push(format!("{ctx}: the token is empty"));
                }
            } else if !looks_like_token(t) {
                // The token goes into a URL path: anything else would change the request.
                problems.push(format!(
                    "{ctx}: the token must look like 123456:ABC-def_..., digits, a colon, then letters, digits, - and _"
                ));
            }
        }
        let api_base = http_url(
            Some(c.api_base.unwrap_or_else(|| TELEGRAM_API.to_string())),
            &format!("{ctx}: api_base"),
            problems,
        )
        .map(|u| u.trim_end_matches('/').to_string())
        .unwrap_or_default();
        let timeout = c.poll_timeout_secs.unwrap_or(30);
        if timeout > 50 {
            problems.push(format!(
                "{ctx}: poll_timeout_secs must be 0-50, not {timeout}"
            ));
        }
        let rate = c.rate_per_second.unwrap_or(25);
        if !(1..=1000).contains(&rate) {
            problems.push(format!("{ctx}: rate_per_second must be 1-1000"));
        }
        let per_chat = c.per_chat_per_minute.unwrap_or(20);
        if !(1..=6000).contains(&per_chat) {
            problems.push(format!("{ctx}: per_chat_per_minute must be 1-6000"));
        }
        let webhook_url = http_url(c.webhook_url, &format!("{ctx}: webhook_url"), problems);
        let webhook_secret = if webhook_url.is_some() {
            let s = read_secret(
                &ctx,
                "webhook_secret",
                SecretSources {
                    inline: c.webhook_secret,
                    file: c.webhook_secret_file,
                    env_name: c.webhook_secret_env,
                    credential: None,
                },
                base,
                env,
                true,
                secrets,
                problems,
            );
            if let Some(s) = &s {
                let v = s.expose();
                // Telegram takes 1-256 characters of A-Z, a-z, 0-9, _ and -.
                if (secrets == Secrets::Required || !v.is_empty())
                    && !((1..=256).contains(&v.len())
                        && v.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
                {
                    problems.push(format!(
                        "{ctx}: webhook_secret must be 1-256 characters of A-Z, a-z, 0-9, _ and -"
                    ));
                }
            }
            s
        } else {
            if c.webhook_secret.is_some()
                || c.webhook_secret_file.is_some()
                || c.webhook_secret_env.is_some()
            {
                problems.push(format!(
                    "{ctx}: webhook_secret is given without webhook_url"
                ));
            }
            None
        };
        let max_body_mb = c.max_body_mb.unwrap_or(1);
        if !(1..=100).contains(&max_body_mb) {
            problems.push(format!("{ctx}: max_body_mb must be 1-100"));
        }
        let max_file_mb = c.max_file_mb.unwrap_or(20);
        if !(1..=100).contains(&max_file_mb) {
            problems.push(format!("{ctx}: max_file_mb must be 1-100"));
        }
        out.push(TelegramChannelConfig {
            account,
            token: token.unwrap_or_default(),
            api_base,
            poll_timeout: Duration::from_secs(timeout.min(50)),
            rate_per_second: rate.clamp(1, 1000),
            per_chat_per_minute: per_chat.clamp(1, 6000),
            max_file_bytes: (max_file_mb.clamp(1, 100) as usize) * 1024 * 1024,
            webhook_url,
            webhook_secret: webhook_secret.unwrap_or_default(),
            max_body_bytes: (max_body_mb.clamp(1, 100) as usize) * 1024 * 1024,
        });
    }
    out
}

/// `<digits>:<letters, digits, - and _>`, as BotFather hands them out.
fn looks_like_token(t: &str) -> bool {
    let Some((id, secret)) = t.split_once(':') else {
        return false;
    };
    !id.is_empty()
        && id.len() <= 20
        && id.bytes().all(|b| b.is_ascii_digit())
        && !secret.is_empty()
        && secret.len() <= 256
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    const BASE: &str = "[[mailbox]]\nname = \"support\"\nhost = \"127.0.0.1\"\nusername = \"u\"\npassword = \"p\"\naddresses = [\"support@example.com\"]\n[smtp]\nhost = \"127.0.0.1\"\nfrom = \"support@example.com\"\n";

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn a_bot_reads_with_its_defaults() {
        let text = format!(
            "{BASE}[[channel.telegram]]\naccount = \"shop_bot\"\ntoken = \"123456:ABC-def_9\"\napi_base = \"http://127.0.0.1:9/\"\n"
        );
        let cfg = parse(&text, Path::new(""), &no_env).unwrap();
        let t = &cfg.telegram_channels[0];
        assert_eq!(t.account, "shop_bot");
        assert_eq!(t.token.expose(), "123456:ABC-def_9");
        assert_eq!(t.api_base, "http://127.0.0.1:9");
        assert_eq!(t.poll_timeout, Duration::from_secs(30));
        assert_eq!(t.per_chat_per_minute, 20);
        assert!(
            !format!("{t:?}").contains("ABC-def"),
            "the token leaks in Debug"
        );
    }

    #[test]
    fn every_problem_of_a_bot_is_named() {
        let text = format!(
            "{BASE}[[channel.telegram]]\naccount = \"Shop Bot\"\ntoken = \"123/../x\"\napi_base = \"ftp://x\"\npoll_timeout_secs = 90\nrate_per_second = 0\n"
        );
        let all = parse(&text, Path::new(""), &no_env)
            .unwrap_err()
            .problems
            .join("\n");
        for needle in [
            "channel.telegram \"Shop Bot\": account must be",
            "the token must look like",
            "api_base: \"ftp://x\" must be an http",
            "poll_timeout_secs must be 0-50",
            "rate_per_second must be 1-1000",
        ] {
            assert!(all.contains(needle), "{needle:?} missing from:\n{all}");
        }
    }

    #[test]
    fn a_webhook_needs_its_secret_and_a_secret_needs_a_webhook() {
        let text = format!(
            "{BASE}[[channel.telegram]]\naccount = \"a\"\ntoken = \"1:x\"\nwebhook_url = \"https://h.example/hook\"\nwebhook_secret = \"has space\"\n[[channel.telegram]]\naccount = \"b\"\ntoken = \"1:x\"\nwebhook_secret = \"abc\"\n"
        );
        let all = parse(&text, Path::new(""), &no_env)
            .unwrap_err()
            .problems
            .join("\n");
        assert!(
            all.contains("channel.telegram \"a\": webhook_secret must be"),
            "{all}"
        );
        assert!(
            all.contains("channel.telegram \"b\": webhook_secret is given without webhook_url"),
            "{all}"
        );
        let ok = format!(
            "{BASE}[[channel.telegram]]\naccount = \"a\"\ntoken = \"1:x\"\nwebhook_url = \"https://h.example/hook\"\nwebhook_secret = \"abc_DEF-1\"\n"
        );
        let cfg = parse(&ok, Path::new(""), &no_env).unwrap();
        assert!(
            cfg.http.is_some(),
            "a webhook bot turns the HTTP listener on"
        );
        assert_eq!(cfg.telegram_channels[0].max_body_bytes, 1024 * 1024);
    }

    #[test]
    fn a_bot_without_a_token_is_refused() {
        let text = format!("{BASE}[[channel.telegram]]\naccount = \"b\"\n");
        let all = parse(&text, Path::new(""), &no_env)
            .unwrap_err()
            .problems
            .join("\n");
        assert!(all.contains("channel.telegram \"b\""), "{all}");
        assert!(all.contains("token"), "{all}");
    }
}

/// One Matrix account (`[[channel.matrix]]`):
///
/// ```toml
/// [[channel.matrix]]
/// account = "support"                            # [a-z0-9_-]{1,32}, unique
/// homeserver = "https://matrix.example.org"
/// user = "@support:example.org"
/// password_file = "/etc/postdesk/matrix.pass"    # or password / password_env / access_token_file
/// poll_timeout_secs = 30                         # /sync long-poll timeout, 0-50
/// per_room_per_minute = 20                       # sends per minute into one room
/// ```
#[derive(Debug, Clone)]
pub struct MatrixChannelConfig {
    pub account: String,
    /// The homeserver's base URL, without a trailing slash.
    pub homeserver: String,
    /// The full user id, `@support:example.org`.
    pub user: String,
    /// Logged in with this password (None: `access_token` is used as it is).
    pub password: Option<Secret>,
    pub access_token: Option<Secret>,
    pub poll_timeout: Duration,
    pub per_room_per_minute: u32,
    /// Sends per second for the whole account.
    pub rate_per_second: u32,
    /// Images and files larger than this are not downloaded (a line says so).
    pub max_file_bytes: usize,
}

pub(super) fn matrix_channels(
    raw: Vec<raw::RawMatrixChannel>,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: Secrets,
    problems: &mut Vec<String>,
) -> Vec<MatrixChannelConfig> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, c) in raw.into_iter().enumerate() {
        let (account, ctx) = channel_account("matrix", i, c.account.clone(), &mut seen, problems);
        let homeserver = match c.homeserver {
            Some(h) => http_url(Some(h), &format!("{ctx}: homeserver"), problems)
                .map(|u| u.trim_end_matches('/').to_string())
                .unwrap_or_default(),
            None => {
                problems.push(format!("{ctx}: homeserver is required"));
                String::new()
            }
        };
        let user = c.user.unwrap_or_default();
        let user_ok = user.starts_with('@')
            && user
                .split_once(':')
                .is_some_and(|(l, s)| l.len() > 1 && !s.is_empty())
            && user.len() <= 255
            && !user.chars().any(|ch| ch.is_whitespace() || ch.is_control());
        if !user_ok {
            problems.push(format!(
                "{ctx}: user must be a full Matrix user id like \"@support:example.org\""
            ));
        }
        let token_given = c.access_token_file.is_some();
        let password_given =
            c.password.is_some() || c.password_file.is_some() || c.password_env.is_some();
        let (password, access_token) = match (password_given, token_given) {
            (true, true) => {
                problems.push(format!(
                    "{ctx}: give a password or an access_token_file, not both"
                ));
                (None, None)
            }
            (false, true) => (
                None,
                read_secret(
                    &ctx,
                    "access_token",
                    SecretSources {
                        inline: None,
                        file: c.access_token_file,
                        env_name: None,
                        credential: None,
                    },
                    base,
                    env,
                    true,
                    secrets,
                    problems,
                ),
            ),
            _ => (
                read_secret(
                    &ctx,
                    "password",
                    SecretSources {
                        inline: c.password,
                        file: c.password_file,
                        env_name: c.password_env,
                        credential: None,
                    },
                    base,
                    env,
                    true,
                    secrets,
                    problems,
                ),
                None,
            ),
        };
        let timeout = c.poll_timeout_secs.unwrap_or(30);
        if timeout > 50 {
            problems.push(format!(
                "{ctx}: poll_timeout_secs must be 0-50, not {timeout}"
            ));
        }
        let per_room = c.per_room_per_minute.unwrap_or(20);
        if !(1..=6000).contains(&per_room) {
            problems.push(format!("{ctx}: per_room_per_minute must be 1-6000"));
        }
        let rate = c.rate_per_second.unwrap_or(5);
        if !(1..=100).contains(&rate) {
            problems.push(format!("{ctx}: rate_per_second must be 1-100"));
        }
        let max_file_mb = c.max_file_mb.unwrap_or(20);
        if !(1..=100).contains(&max_file_mb) {
            problems.push(format!("{ctx}: max_file_mb must be 1-100"));
        }
        out.push(MatrixChannelConfig {
            account,
            homeserver,
            user,
            password,
            access_token,
            poll_timeout: Duration::from_secs(timeout.min(50)),
            per_room_per_minute: per_room.clamp(1, 6000),
            rate_per_second: rate.clamp(1, 100),
            max_file_bytes: (max_file_mb.clamp(1, 100) as usize) * 1024 * 1024,
        });
    }
    out
}
