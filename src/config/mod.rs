//! Configuration: the raw TOML (serde, `deny_unknown_fields`) in [`raw`], converted into a
//! typed, validated [`Config`]. Validation collects *every* problem, each naming its key,
//! and fails once, so `postdesk check-config` can report them all at the same time.
//!
//! Secrets (passwords, and the JSON channel's shared secrets) are read from the file, from
//! `password_file`, from `password_env` or from a systemd credential
//! (`password_credential`, a file in `$CREDENTIALS_DIRECTORY`), `secret`, `secret_file`...
//! likewise; they never appear in `Debug` output or logs (see [`Secret`]).

pub mod raw;
mod read;
mod telegram;
mod triage;

pub use triage::{AlertsConfig, BotConfig, DEFAULT_HANDOFF_WORDS, DigestConfig};
pub mod rules;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::domain::address::{Mailbox as AddrMailbox, parse_single_address};

/// A secret string that never prints itself.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself, for the one place that needs it (a LOGIN or AUTH command).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How a connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// No TLS at all: only sensible on loopback or inside a trusted network.
    Plain,
    /// Plain connection upgraded with STARTTLS (IMAP) / STARTTLS (SMTP); refused if the
    /// server does not offer it.
    StartTls,
    /// TLS from the first byte (IMAPS port 993, SMTPS port 465).
    Tls,
}

/// What happens to a message on the IMAP server once it is committed to the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterIngest {
    /// Leave the message untouched (the default). The UID watermark alone tracks progress.
    Keep,
    /// Add this IMAP flag or keyword, e.g. `$Postdesk` or `\Seen`.
    Flag(String),
    /// Move the message to this folder (UID MOVE, or COPY + \Deleted + UID EXPUNGE).
    Move(String),
}

#[derive(Debug, Clone)]
pub struct MailboxConfig {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: String,
    pub password: Secret,
    pub folders: Vec<String>,
    /// The addresses customers write to, lowercased.
    pub addresses: Vec<String>,
    pub after_ingest: AfterIngest,
    /// How long an IDLE lasts before it is re-issued; below 29 minutes (RFC 2177).
    pub idle_timeout: Duration,
    /// How often to poll when the server does not offer IDLE.
    pub poll_interval: Duration,
    /// How many messages are fetched and committed in one transaction.
    pub batch_size: usize,
    /// Extra trusted CA certificates (PEM) for a server with a private CA.
    pub tls_ca_file: Option<PathBuf>,
    /// Bound on each step of connecting (TCP, TLS, greeting, STARTTLS, LOGIN).
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// The From of everything we send, e.g. `Example Support <support@example.com>`.
    pub from: AddrMailbox,
    /// Global send rate limit, messages per minute.
    pub rate_per_minute: u32,
    pub timeout: Duration,
    /// Attempts before a transiently failing message is given up.
    pub max_attempts: u32,
    /// First retry delay after a transient failure; doubles per attempt, at most an hour.
    pub retry_base: Duration,
    /// Extra trusted CA certificates (PEM) for a relay with a private CA.
    pub tls_ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct AutoreplyConfig {
    pub enabled: bool,
    /// Acknowledgements to one sender per hour, enforced in memory and in the database.
    pub max_per_sender_per_hour: u32,
}

#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The handle used in commands (`#assign alice`) and logs.
    pub name: String,
    pub email: String,
    /// How the agent signs to customers ("Alice Martin"); the handle when not given.
    pub display_name: String,
    /// The agent's time zone (`timezone`; UTC when not given).
    pub timezone: jiff::tz::TimeZone,
    /// Working hours in that zone; `None`: always available.
    pub hours: Option<crate::rules::calendar::Calendar>,
    /// Skills routing matches against categories and languages, lower-case.
    pub skills: Vec<String>,
    /// Marks a team lead (for the dashboard).
    pub lead: bool,
    /// May approve or reject articles (`#kb approve`), receives the monthly report.
    pub admin: bool,
}

/// How replies that claim to come from an agent are authenticated (issue 3).
#[derive(Debug, Clone)]
pub struct SecurityConfig {
    /// Agent replies must show DKIM or DMARC pass aligned with the From domain.
    pub require_authenticated_sender: bool,
    /// The authserv-id of our receiving server, whose topmost Authentication-Results
    /// headers are trusted. Without it only local DKIM verification can prove a sender.
    pub trusted_authserv_id: Option<String>,
    /// How long an agent's reply token stays valid.
    pub token_ttl: Duration,
    /// Verify DKIM signatures ourselves (DNS lookups) when no trusted header proves the
    /// sender.
    pub verify_dkim_locally: bool,
    /// DNS servers for local DKIM verification (`ip:port`); empty: the system's
    /// (`/etc/resolv.conf`).
    pub dns_servers: Vec<std::net::SocketAddr>,
}

#[derive(Debug, Clone)]
pub struct ThreadingConfig {
    /// Window in which the same normalised subject from the same sender joins a ticket.
    pub subject_window: Duration,
    /// `#link`: the linked customer's open ticket updated within this window is where the
    /// chat conversation joins.
    pub link_window: Duration,
    /// Similar open tickets (same category, similar text) created within this window are
    /// listed in a new ticket's notification; zero turns the listing off.
    pub similar_window: Duration,
    /// The least similarity (`kb::similar::score`, 0-1) for a ticket to be listed.
    pub similar_min_score: f32,
}

#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Messages larger than this are recorded as rejected (headers kept) and left on the
    /// server untouched.
    pub max_message_bytes: usize,
}

/// Where the HTTP listener (the JSON channel's endpoints and `/healthz`) listens.
///
/// Whether it listens at all: with an `[http]` section, always, on `listen` (default
/// [`DEFAULT_HTTP_LISTEN`]). Without one, on [`DEFAULT_HTTP_LISTEN`] only when at least one
/// `[[channel.json]]` is configured (its relay needs somewhere to push to), and not at
/// all otherwise, so that a mail-only installation opens no port it did not ask for. The
/// default is loopback: a relay on another host needs `listen` set explicitly (and TLS in
/// front, see the JSON channel's documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    pub listen: std::net::SocketAddr,
    /// Where browsers reach the listener (`public_url`, no trailing slash): links in mail
    /// (the rating links of resolution mails) start with it. `None`: no links are sent.
    pub public_url: Option<String>,
    /// The bearer token `/metrics` asks of requests that are not from loopback; `None`:
    /// only loopback may scrape.
    pub metrics_token: Option<Secret>,
}

/// The listen address when `[http]` does not give one.
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:8025";

/// One `[[channel.json]]`: a relay (SMS gateway, chat bridge, web form...) speaking the
/// generic JSON protocol of `channels::json`.
#[derive(Debug, Clone)]
pub struct JsonChannelConfig {
    /// `[a-z0-9_-]{1,32}`, unique: the `{account}` in the endpoints' paths, and in logs.
    pub account: String,
    /// The HMAC key both sides sign with.
    pub secret: Secret,
    /// Replies are POSTed here; None: the relay collects them from the pull outbox.
    pub deliver_url: Option<String>,
    /// Pull mode: the channel polls this feed for new messages; None: the relay pushes.
    pub feed_url: Option<String>,
    /// Largest request body accepted from this account (`max_body_mb`, MiB).
    pub max_body_bytes: usize,
    /// How often `feed_url` is polled when the last page was empty.
    pub poll_interval: Duration,
}

pub use telegram::{MatrixChannelConfig, TelegramChannelConfig};

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_path: PathBuf,
    pub mailboxes: Vec<MailboxConfig>,
    pub smtp: SmtpConfig,
    pub autoreply: AutoreplyConfig,
    pub agents: Vec<AgentConfig>,
    pub threading: ThreadingConfig,
    pub ingest: IngestConfig,
    /// Directory of templates overriding the embedded defaults, if any.
    pub templates_dir: Option<PathBuf>,
    /// Host part of generated Message-IDs.
    pub message_id_domain: String,
    pub security: SecurityConfig,
    /// The address agents write to (with `[#N]` in the subject) to run commands on a
    /// ticket without replying to a notification.
    pub commands_address: Option<String>,
    /// Notification mails to agents about new tickets and customer messages.
    pub notify_enabled: bool,
    /// Who gets the daily summary of messages that could not be filed.
    pub admin_email: Option<String>,
    /// An agent who answers an unassigned ticket becomes its assignee.
    pub auto_assign: bool,
    /// The HTTP listener, when there is one (see [`HttpConfig`] for when).
    pub http: Option<HttpConfig>,
    /// The `[[channel.json]]` accounts, in file order.
    pub json_channels: Vec<JsonChannelConfig>,
    /// The `[[channel.telegram]]` bots, in file order.
    pub telegram_channels: Vec<TelegramChannelConfig>,
    /// The `[[channel.matrix]]` accounts, in file order.
    pub matrix_channels: Vec<MatrixChannelConfig>,
    // issue 13: teams, SLA, calendars, alerts, digest
    /// `[[team]]`s, in file order.
    pub teams: Vec<crate::rules::routing::Team>,
    /// `[[sla]]` policies, in file order.
    pub slas: crate::rules::sla::SlaPolicies,
    /// `[calendar.NAME]` business calendars, by name.
    pub calendars:
        std::collections::BTreeMap<String, std::sync::Arc<crate::rules::calendar::Calendar>>,
    pub alerts: AlertsConfig,
    pub digest: DigestConfig,
    /// Triage (issue 13): the `[[rule]]`s (then those of `[triage] rules_file`), the
    /// forced-human list and the sentiment lexicon, compiled.
    pub rules: crate::rules::RuleSet,
    // issue 14
    pub bot: BotConfig,
}

impl Config {
    /// Every address that belongs to us: mailbox addresses and the SMTP From.
    pub fn own_addresses(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .mailboxes
            .iter()
            .flat_map(|m| m.addresses.iter().cloned())
            .collect();
        v.push(self.smtp.from.address.clone());
        v.extend(self.commands_address.iter().cloned());
        v.sort();
        v.dedup();
        v
    }

    /// The domains our own Message-IDs may carry: the one we write (`message_id_domain`)
    /// and the domains of our own addresses, lower-cased, each once. Mail from outside
    /// that claims a `pd.*` id in one of them is forged.
    pub fn own_message_id_domains(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .own_addresses()
            .iter()
            .filter_map(|a| a.rsplit_once('@').map(|(_, d)| d.to_lowercase()))
            .collect();
        v.push(self.message_id_domain.to_lowercase());
        v.sort();
        v.dedup();
        v
    }

    /// The configured agent with this address, if any (addresses are lower-case).
    pub fn agent_by_email(&self, email: &str) -> Option<&AgentConfig> {
        self.agents
            .iter()
            .find(|a| a.email.eq_ignore_ascii_case(email))
    }

    /// The configured agent of this name (handles compare case-insensitively).
    pub fn agent_by_name(&self, name: &str) -> Option<&AgentConfig> {
        self.agents
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name.trim()))
    }

    /// The address replies should go to, before a `+token` is added.
    pub fn primary_address(&self) -> String {
        self.smtp.from.address.clone()
    }
}

/// All the problems found in a configuration file.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} problem(s) in the configuration:",
            self.problems.len()
        )?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

/// Reads and validates a configuration file. Relative paths inside it are resolved against
/// the file's directory.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_with(path, Secrets::Required)
}

/// [`load`], with secrets read only when they can be (see [`Secrets`]).
pub fn load_with(path: &Path, secrets: Secrets) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        problems: vec![format!("cannot read {}: {e}", path.display())],
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse_with(&text, &base, &|k| std::env::var(k).ok(), secrets)
}

/// Parses and validates configuration text; `env` looks up environment variables (a
/// parameter so that tests need not touch the process environment).
pub fn parse(
    text: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    parse_with(text, base_dir, env, Secrets::Required)
}

fn parse_with(
    text: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: Secrets,
) -> Result<Config, ConfigError> {
    let (raw, read_problems) = read::read(text).map_err(|e| ConfigError { problems: vec![e] })?;
    if read_problems.is_empty() {
        return validate(raw, base_dir, env, secrets);
    }
    // A key left out for its type is not also "required": it was there, only wrong.
    // ("a password is required (password, password_file, ...)" counts too.)
    let left_out: Vec<(String, String)> = read_problems
        .iter()
        .map(|p| {
            (
                format!("{}: {} is required", p.ctx, p.key),
                format!("{}: a {} is required (", p.ctx, p.key),
            )
        })
        .collect();
    let mut problems: Vec<String> = read_problems.iter().map(ToString::to_string).collect();
    if let Err(e) = validate(raw, base_dir, env, secrets) {
        problems.extend(e.problems.into_iter().filter(|p| {
            !left_out
                .iter()
                .any(|(exact, start)| p == exact || p.starts_with(start.as_str()))
        }));
    }
    Err(ConfigError { problems })
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = PathBuf::from(p);
    if p.is_absolute() || base.as_os_str().is_empty() {
        p
    } else {
        base.join(p)
    }
}

fn parse_security(v: Option<&str>, key: &str, problems: &mut Vec<String>) -> Security {
    match v.unwrap_or("tls") {
        "plain" => Security::Plain,
        "starttls" => Security::StartTls,
        "tls" => Security::Tls,
        other => {
            problems.push(format!(
                "{key}: {other:?} is not valid; expected plain, starttls or tls"
            ));
            Security::Tls
        }
    }
}

/// A secret kept in a file, without its final line break.
fn read_secret_file(path: &Path) -> Result<Secret, String> {
    std::fs::read_to_string(path)
        .map(|s| Secret::new(s.trim_end_matches(['\r', '\n'])))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Where a password may come from; at most one may be given.
struct SecretSources {
    inline: Option<String>,
    file: Option<String>,
    env_name: Option<String>,
    /// A systemd credential (`LoadCredential=`): the file NAME in `$CREDENTIALS_DIRECTORY`.
    credential: Option<String>,
}

/// How secrets are read: strictly (the daemon, check-config), or leniently for commands
/// that never log in anywhere (ticket, message, keys, import), so that an admin can run
/// them as the service user without its credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    Required,
    NotNeeded,
}

/// Reads one secret; `key` is how the file names it: `password` (reads `password`,
/// `password_file`, `password_env`, `password_credential`) or `secret` (`secret`, ...).
#[allow(clippy::too_many_arguments)]
fn read_secret(
    ctx: &str,
    key: &str,
    src: SecretSources,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    required: bool,
    secrets: Secrets,
    problems: &mut Vec<String>,
) -> Option<Secret> {
    let given = [
        src.inline.is_some(),
        src.file.is_some(),
        src.env_name.is_some(),
        src.credential.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if given > 1 {
        problems.push(format!(
            "{ctx}: give only one of {key}, {key}_file, {key}_env, {key}_credential"
        ));
        return None;
    }
    if let Some(p) = src.inline {
        return Some(Secret::new(p));
    }
    let mut unreadable = |why: String| {
        if secrets == Secrets::Required {
            problems.push(why);
            None
        } else {
            Some(Secret::new(""))
        }
    };
    if let Some(f) = src.file {
        let path = resolve(base, &f);
        return match read_secret_file(&path) {
            Ok(secret) => Some(secret),
            Err(e) => unreadable(format!("{ctx}.{key}_file: {e}")),
        };
    }
    if let Some(name) = src.env_name {
        return match env(&name) {
            Some(v) => Some(Secret::new(v)),
            None => unreadable(format!(
                "{ctx}.{key}_env: environment variable {name} is not set"
            )),
        };
    }
    if let Some(name) = src.credential {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            problems.push(format!(
                "{ctx}.{key}_credential: {name:?} is not a credential name"
            ));
            return None;
        }
        let Some(dir) = env("CREDENTIALS_DIRECTORY") else {
            return unreadable(format!(
                "{ctx}.{key}_credential: $CREDENTIALS_DIRECTORY is not set (systemd sets it \
                 for the service from LoadCredential=; see README, \"Install on a server\")"
            ));
        };
        let path = Path::new(&dir).join(&name);
        return match read_secret_file(&path) {
            Ok(secret) => Some(secret),
            Err(e) => unreadable(format!("{ctx}.{key}_credential: {e}")),
        };
    }
    if required {
        problems.push(format!(
            "{ctx}: a {key} is required ({key}, {key}_file, {key}_env or {key}_credential)"
        ));
    }
    None
}

/// An optional address key (`what` names it in a problem), trimmed and lower-cased.
fn optional_email(v: Option<&str>, what: &str, problems: &mut Vec<String>) -> Option<String> {
    let a = v
        .map(|a| a.trim().to_lowercase())
        .filter(|a| !a.is_empty())?;
    if !valid_email(&a) {
        problems.push(format!("{what} {a:?} is not an email address"));
    }
    Some(a)
}

/// Resolves and checks a `tls_ca_file`: it must exist and hold at least one PEM certificate.
fn ca_file(
    base: &Path,
    v: Option<String>,
    ctx: &str,
    problems: &mut Vec<String>,
) -> Option<PathBuf> {
    let p = resolve(base, &v?);
    match std::fs::read_to_string(&p) {
        Ok(t) if t.contains("-----BEGIN CERTIFICATE-----") => Some(p),
        Ok(_) => {
            problems.push(format!(
                "{ctx}: tls_ca_file {} holds no PEM certificate",
                p.display()
            ));
            None
        }
        Err(e) => {
            problems.push(format!("{ctx}: tls_ca_file {}: {e}", p.display()));
            None
        }
    }
}

fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c == '<' || c == '>')
}

fn validate(
    raw: raw::RawConfig,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: Secrets,
) -> Result<Config, ConfigError> {
    let mut problems = Vec::new();

    let database_path = resolve(
        base,
        raw.database
            .as_ref()
            .and_then(|d| d.path.as_deref())
            .unwrap_or("postdesk.db"),
    );

    let mut mailboxes = Vec::new();
    if raw.mailbox.is_empty() {
        problems.push("mailbox: at least one [[mailbox]] is required".to_string());
    }
    let mut seen_names = std::collections::HashSet::new();
    for (i, m) in raw.mailbox.into_iter().enumerate() {
        let name = m.name.clone().unwrap_or_else(|| format!("#{}", i + 1));
        let ctx = format!("mailbox {name:?}");
        if m.name.as_deref().is_none_or(|n| n.trim().is_empty()) {
            problems.push(format!("{ctx}: name is required"));
        } else if !seen_names.insert(name.clone()) {
            problems.push(format!("{ctx}: name is used by two mailboxes"));
        }
        let host = m.host.unwrap_or_default();
        if host.trim().is_empty() {
            problems.push(format!("{ctx}: host is required"));
        }
        let security = parse_security(
            m.security.as_deref(),
            &format!("{ctx}: security"),
            &mut problems,
        );
        let port = match m.port {
            Some(p) if (1..=65535).contains(&p) => p as u16,
            Some(p) => {
                problems.push(format!("{ctx}: port must be 1-65535, not {p}"));
                0
            }
            None => match security {
                Security::Tls => 993,
                _ => 143,
            },
        };
        let username = m.username.unwrap_or_default();
        if username.is_empty() {
            problems.push(format!("{ctx}: username is required"));
        }
        let password = read_secret(
            &ctx,
            "password",
            SecretSources {
                inline: m.password,
                file: m.password_file,
                env_name: m.password_env,
                credential: m.password_credential,
            },
            base,
            env,
            true,
            secrets,
            &mut problems,
        )
        .unwrap_or_default();
        let folders = m.folders.unwrap_or_else(|| vec!["INBOX".to_string()]);
        if folders.is_empty() || folders.iter().any(|f| f.trim().is_empty()) {
            problems.push(format!(
                "{ctx}: folders must list at least one non-empty folder name"
            ));
        }
        let addresses: Vec<String> = m
            .addresses
            .unwrap_or_default()
            .into_iter()
            .map(|a| a.trim().to_lowercase())
            .collect();
        if addresses.is_empty() {
            problems.push(format!(
                "{ctx}: addresses must list the addresses customers write to"
            ));
        }
        for a in &addresses {
            if !valid_email(a) {
                problems.push(format!("{ctx}: addresses: {a:?} is not an email address"));
            }
        }
        let after_ingest = match m.after_ingest.as_deref().unwrap_or("keep") {
            "keep" => AfterIngest::Keep,
            "flag" => AfterIngest::Flag(m.ingest_flag.unwrap_or_else(|| "$Postdesk".to_string())),
            "move" => match m.move_to {
                Some(f) if !f.trim().is_empty() => AfterIngest::Move(f),
                _ => {
                    problems.push(format!(
                        "{ctx}: after_ingest = \"move\" needs move_to = \"FolderName\""
                    ));
                    AfterIngest::Keep
                }
            },
            other => {
                problems.push(format!(
                    "{ctx}: after_ingest: {other:?} is not valid; expected keep, flag or move"
                ));
                AfterIngest::Keep
            }
        };
        let idle_secs = m.idle_timeout_secs.unwrap_or(25 * 60);
        if idle_secs == 0 || idle_secs >= 29 * 60 {
            problems.push(format!(
                "{ctx}: idle_timeout_secs must be 1-1739 (RFC 2177: re-issue IDLE before 29 minutes)"
            ));
        }
        let poll = m.poll_interval_secs.unwrap_or(60);
        if poll == 0 {
            problems.push(format!("{ctx}: poll_interval_secs must be at least 1"));
        }
        let batch_size = m.batch_size.unwrap_or(200);
        if batch_size == 0 || batch_size > 10_000 {
            problems.push(format!("{ctx}: batch_size must be 1-10000"));
        }
        let tls_ca_file = ca_file(base, m.tls_ca_file, &ctx, &mut problems);
        mailboxes.push(MailboxConfig {
            name,
            host,
            port,
            security,
            username,
            password,
            folders,
            addresses,
            after_ingest,
            idle_timeout: Duration::from_secs(idle_secs),
            poll_interval: Duration::from_secs(poll),
            batch_size: batch_size as usize,
            tls_ca_file,
            timeout: Duration::from_secs(m.timeout_secs.unwrap_or(30).clamp(1, 3600)),
        });
    }

    let smtp = match raw.smtp {
        None => {
            problems.push("smtp: the [smtp] section is required".to_string());
            None
        }
        Some(s) => {
            let ctx = "smtp";
            let host = s.host.unwrap_or_default();
            if host.trim().is_empty() {
                problems.push("smtp: host is required".to_string());
            }
            let security = parse_security(s.security.as_deref(), "smtp: security", &mut problems);
            let port = match s.port {
                Some(p) if (1..=65535).contains(&p) => p as u16,
                Some(p) => {
                    problems.push(format!("smtp: port must be 1-65535, not {p}"));
                    0
                }
                None => match security {
                    Security::Tls => 465,
                    Security::StartTls => 587,
                    Security::Plain => 25,
                },
            };
            let password = read_secret(
                ctx,
                "password",
                SecretSources {
                    inline: s.password,
                    file: s.password_file,
                    env_name: s.password_env,
                    credential: s.password_credential,
                },
                base,
                env,
                false,
                secrets,
                &mut problems,
            );
            if password.is_some() && s.username.is_none() {
                problems.push("smtp: a password is given but no username".to_string());
            }
            let from = match s.from.as_deref() {
                None => {
                    problems.push(
                        "smtp: from is required, e.g. \"Support <support@example.com>\""
                            .to_string(),
                    );
                    None
                }
                Some(f) => match parse_single_address(f) {
                    Some(a) if valid_email(&a.address) => Some(a),
                    _ => {
                        problems.push(format!("smtp: from: {f:?} is not a valid address"));
                        None
                    }
                },
            };
            let rate = s.rate_per_minute.unwrap_or(120);
            if rate == 0 {
                problems.push("smtp: rate_per_minute must be at least 1".to_string());
            }
            let max_attempts = s.max_attempts.unwrap_or(10);
            if max_attempts == 0 {
                problems.push("smtp: max_attempts must be at least 1".to_string());
            }
            let tls_ca_file = ca_file(base, s.tls_ca_file, ctx, &mut problems);
            from.map(|from| SmtpConfig {
                host,
                port,
                security,
                username: s.username,
                password,
                from,
                rate_per_minute: rate.max(1),
                timeout: Duration::from_secs(s.timeout_secs.unwrap_or(30).max(1)),
                max_attempts: max_attempts.max(1),
                retry_base: Duration::from_secs(s.retry_base_secs.unwrap_or(60)),
                tls_ca_file,
            })
        }
    };

    let autoreply = AutoreplyConfig {
        enabled: raw
            .autoreply
            .as_ref()
            .and_then(|a| a.enabled)
            .unwrap_or(true),
        max_per_sender_per_hour: raw
            .autoreply
            .as_ref()
            .and_then(|a| a.max_per_sender_per_hour)
            .unwrap_or(3),
    };
    if autoreply.max_per_sender_per_hour == 0 {
        problems.push("autoreply: max_per_sender_per_hour must be at least 1 (set enabled = false to turn acknowledgements off)".to_string());
    }

    let mut agents = Vec::new();
    let mut agent_names = std::collections::HashSet::new();
    for (i, a) in raw.agent.into_iter().enumerate() {
        let ctx = format!("agent #{}", i + 1);
        let name = a.name.unwrap_or_default();
        if name.trim().is_empty() {
            problems.push(format!("{ctx}: name is required"));
        } else if !agent_names.insert(name.to_lowercase()) {
            problems.push(format!("agent {name:?}: name is used twice"));
        }
        let email = a.email.unwrap_or_default().trim().to_lowercase();
        if !valid_email(&email) {
            problems.push(format!(
                "agent {name:?}: email {email:?} is not an email address"
            ));
        }
        let display_name = a
            .display_name
            .map(|d| d.trim().to_string())
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| name.clone());
        if display_name.chars().any(char::is_control) || display_name.chars().count() > 100 {
            problems.push(format!(
                "agent {name:?}: display_name must be one line of at most 100 characters"
            ));
        }
        let (timezone, hours) = triage::agent_hours(
            &name,
            a.timezone.as_deref(),
            a.hours.as_deref(),
            &mut problems,
        );
        let skills = a
            .skills
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        agents.push(AgentConfig {
            name,
            email,
            display_name,
            timezone,
            hours,
            skills,
            lead: a.lead.unwrap_or(false),
            admin: a.admin.unwrap_or(false),
        });
    }

    let subject_window_days = raw
        .threading
        .as_ref()
        .and_then(|t| t.subject_window_days)
        .unwrap_or(7);
    if subject_window_days > 365 {
        problems.push("threading: subject_window_days must be 0-365".to_string());
    }
    let link_window_days = raw
        .threading
        .as_ref()
        .and_then(|t| t.link_window_days)
        .unwrap_or(7);
    if link_window_days > 365 {
        problems.push("threading: link_window_days must be 0-365".to_string());
    }
    let similar_window_hours = raw
        .threading
        .as_ref()
        .and_then(|t| t.similar_window_hours)
        .unwrap_or(72);
    if similar_window_hours > 24 * 90 {
        problems.push("threading: similar_window_hours must be 0-2160 (90 days)".to_string());
    }
    let similar_min_score = raw
        .threading
        .as_ref()
        .and_then(|t| t.similar_min_score)
        .unwrap_or(0.3);
    if !(0.0..=1.0).contains(&similar_min_score) {
        problems.push("threading: similar_min_score must be between 0 and 1".to_string());
    }

    let max_message_bytes = raw
        .ingest
        .as_ref()
        .and_then(|i| i.max_message_mb)
        .unwrap_or(40);
    if max_message_bytes == 0 || max_message_bytes > 1024 {
        problems.push("ingest: max_message_mb must be 1-1024".to_string());
    }

    let templates_dir = raw
        .templates
        .as_ref()
        .and_then(|t| t.dir.as_deref())
        .map(|d| resolve(base, d));
    if let Some(d) = &templates_dir
        && !d.is_dir()
    {
        problems.push(format!("templates: dir {} is not a directory", d.display()));
    }

    let message_id_domain = smtp
        .as_ref()
        .and_then(|s| s.from.address.rsplit_once('@').map(|(_, d)| d.to_string()))
        .unwrap_or_else(|| "postdesk.invalid".to_string());

    let sec = raw.security.as_ref();
    let trusted_authserv_id = sec
        .and_then(|s| s.trusted_authserv_id.as_deref())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    if let Some(id) = &trusted_authserv_id
        && id.chars().any(|c| c.is_whitespace() || c == ';')
    {
        problems.push(format!(
            "security: trusted_authserv_id {id:?} must be a host name (no spaces or ';')"
        ));
    }
    let token_ttl_days = sec.and_then(|s| s.token_ttl_days).unwrap_or(90);
    if token_ttl_days == 0 || token_ttl_days > 3650 {
        problems.push("security: token_ttl_days must be 1-3650".to_string());
    }
    let mut dns_servers = Vec::new();
    for s in sec
        .and_then(|s| s.dns_servers.as_deref())
        .unwrap_or_default()
    {
        let t = s.trim();
        match t
            .parse::<std::net::SocketAddr>()
            .or_else(|_| t.parse::<std::net::IpAddr>().map(|ip| (ip, 53).into()))
        {
            Ok(a) => dns_servers.push(a),
            Err(_) => problems.push(format!(
                "security: dns_servers entry {t:?} is not an IP address or ip:port"
            )),
        }
    }
    let security = SecurityConfig {
        require_authenticated_sender: sec
            .and_then(|s| s.require_authenticated_sender)
            .unwrap_or(true),
        trusted_authserv_id,
        token_ttl: Duration::from_secs(token_ttl_days * 86_400),
        verify_dkim_locally: sec.and_then(|s| s.verify_dkim_locally).unwrap_or(true),
        dns_servers,
    };
    let commands_address = optional_email(
        raw.commands.as_ref().and_then(|c| c.address.as_deref()),
        "commands: address",
        &mut problems,
    );
    let notify_enabled = raw.notify.as_ref().and_then(|n| n.enabled).unwrap_or(true);
    let admin_email = optional_email(
        raw.admin.as_ref().and_then(|a| a.email.as_deref()),
        "admin: email",
        &mut problems,
    );

    let (raw_json, raw_telegram, raw_matrix) = raw
        .channel
        .map(|c| (c.json, c.telegram, c.matrix))
        .unwrap_or_default();
    let matrix_channels = telegram::matrix_channels(raw_matrix, base, env, secrets, &mut problems);
    let json_channels = json_channels(raw_json, base, env, secrets, &mut problems);
    let telegram_channels =
        telegram::telegram_channels(raw_telegram, base, env, secrets, &mut problems);
    let http = http(
        raw.http,
        !json_channels.is_empty() || telegram_channels.iter().any(|t| t.webhook_url.is_some()),
        (base, env, secrets),
        &mut problems,
    );

    // issue 13: teams, SLA, calendars, alerts, digest
    let calendars = triage::calendars(raw.calendar, &mut problems);
    let slas = triage::slas(raw.sla, &calendars, &mut problems);
    let agent_names: Vec<String> = agents.iter().map(|a| a.name.clone()).collect();
    let teams = triage::teams(raw.team, &agent_names, &mut problems);
    let alerts = triage::alerts(raw.alerts, &mut problems);
    let digest = triage::digest(raw.digest, base, &mut problems);
    // issue 13: rules, checked against the teams, agents and SLA policies above.
    let team_names: Vec<String> = teams.iter().map(|t| t.name.clone()).collect();
    let sla_names: Vec<String> = slas.0.iter().map(|p| p.name.clone()).collect();
    let rule_set = rules::compile(
        raw.rule,
        raw.triage,
        base,
        &rules::Known {
            teams: &team_names,
            agents: &agent_names,
            slas: &sla_names,
        },
        &mut problems,
    );

    // issue 14: the answer bot
    let bot = triage::bot(raw.bot, base, &mut problems);

    if !problems.is_empty() {
        return Err(ConfigError { problems });
    }
    let Some(smtp) = smtp else {
        return Err(ConfigError {
            problems: vec!["smtp: invalid".to_string()],
        });
    };
    Ok(Config {
        database_path,
        mailboxes,
        smtp,
        autoreply,
        agents,
        threading: ThreadingConfig {
            subject_window: Duration::from_secs(subject_window_days * 86_400),
            link_window: Duration::from_secs(link_window_days * 86_400),
            similar_window: Duration::from_secs(similar_window_hours * 3_600),
            similar_min_score: similar_min_score as f32,
        },
        ingest: IngestConfig {
            max_message_bytes: (max_message_bytes as usize) * 1024 * 1024,
        },
        templates_dir,
        message_id_domain,
        security,
        commands_address,
        admin_email,
        auto_assign: raw
            .commands
            .as_ref()
            .and_then(|c| c.auto_assign)
            .unwrap_or(true),
        notify_enabled,
        http,
        json_channels,
        telegram_channels,
        matrix_channels,
        teams,
        slas,
        calendars,
        alerts,
        digest,
        rules: rule_set,
        bot,
    })
}

/// What reading a secret needs: the configuration's directory, the environment, and
/// whether secrets must be readable here.
type SecretContext<'a> = (&'a Path, &'a dyn Fn(&str) -> Option<String>, Secrets);

/// `[http]`; see [`HttpConfig`] for when the listener is on.
fn http(
    raw: Option<raw::RawHttp>,
    have_json_channels: bool,
    (base, env, secrets): SecretContext<'_>,
    problems: &mut Vec<String>,
) -> Option<HttpConfig> {
    if raw.is_none() && !have_json_channels {
        return None;
    }
    let (listen, public_url, metrics_token) = match raw {
        Some(h) => {
            let token = read_secret(
                "http",
                "metrics_token",
                SecretSources {
                    inline: h.metrics_token,
                    file: h.metrics_token_file,
                    env_name: h.metrics_token_env,
                    credential: h.metrics_token_credential,
                },
                base,
                env,
                false,
                secrets,
                problems,
            );
            if let Some(t) = &token
                && !t.expose().is_empty()
                && t.expose().len() < 16
            {
                problems.push("http: metrics_token must be at least 16 characters".into());
            }
            (
                h.listen,
                h.public_url,
                token.filter(|t| !t.expose().is_empty()),
            )
        }
        None => (None, None, None),
    };
    let listen = listen.unwrap_or_else(|| DEFAULT_HTTP_LISTEN.to_string());
    let public_url = http_url(public_url, "http: public_url", problems)
        .map(|u| u.trim_end_matches('/').to_string());
    match listen.trim().parse() {
        Ok(listen) => Some(HttpConfig {
            listen,
            public_url,
            metrics_token,
        }),
        Err(_) => {
            problems.push(format!(
                "http: listen {listen:?} is not an address and port like \"{DEFAULT_HTTP_LISTEN}\""
            ));
            None
        }
    }
}

/// Checks an http(s) URL without user or password in it (the signature authenticates us;
/// a password in a URL would end up in logs).
fn http_url(v: Option<String>, what: &str, problems: &mut Vec<String>) -> Option<String> {
    let v = v?.trim().to_string();
    match reqwest::Url::parse(&v) {
        Ok(u) if !matches!(u.scheme(), "http" | "https") => {
            problems.push(format!("{what}: {v:?} must be an http:// or https:// URL"));
        }
        Ok(u) if u.host_str().is_none_or(str::is_empty) => {
            problems.push(format!("{what}: {v:?} has no host"));
        }
        Ok(u) if !u.username().is_empty() || u.password().is_some() => {
            problems.push(format!(
                "{what}: the URL must not carry a user or password (requests are signed)"
            ));
        }
        Ok(_) => return Some(v),
        Err(e) => problems.push(format!("{what}: {v:?} is not a URL: {e}")),
    }
    None
}

/// The account name of the `i`-th `[[channel.<kind>]]` and the context its problems are
/// named by (`channel.telegram "shop_bot"`, or `channel.telegram #2` without a name):
/// required, `[a-z0-9_-]{1,32}`, unique among its kind (`seen`).
fn channel_account(
    kind: &str,
    i: usize,
    account: Option<String>,
    seen: &mut std::collections::HashSet<String>,
    problems: &mut Vec<String>,
) -> (String, String) {
    let account = account.unwrap_or_default();
    let ctx = if account.trim().is_empty() {
        format!("channel.{kind} #{}", i + 1)
    } else {
        format!("channel.{kind} {account:?}")
    };
    if account.trim().is_empty() {
        problems.push(format!("{ctx}: account is required"));
    } else if !valid_account(&account) {
        problems.push(format!(
            "{ctx}: account must be 1-32 characters of a-z, 0-9, _ and -"
        ));
    } else if !seen.insert(account.clone()) {
        problems.push(format!("{ctx}: account is used by two [[channel.{kind}]]"));
    }
    (account, ctx)
}

fn valid_account(a: &str) -> bool {
    (1..=32).contains(&a.len())
        && a.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// `[[channel.json]]`, each checked, every problem kept.
fn json_channels(
    raw: Vec<raw::RawJsonChannel>,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: Secrets,
    problems: &mut Vec<String>,
) -> Vec<JsonChannelConfig> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, c) in raw.into_iter().enumerate() {
        let (account, ctx) = channel_account("json", i, c.account.clone(), &mut seen, problems);
        let inline_given = c.secret.is_some();
        let secret = read_secret(
            &ctx,
            "secret",
            SecretSources {
                inline: c.secret,
                file: c.secret_file,
                env_name: c.secret_env,
                credential: c.secret_credential,
            },
            base,
            env,
            true,
            secrets,
            problems,
        );
        // Lenient reading stands in an empty secret for one it could not read.
        if let Some(s) = &secret
            && s.expose().is_empty()
            && (secrets == Secrets::Required || inline_given)
        {
            problems.push(format!("{ctx}: the secret is empty"));
        }
        let deliver_url = http_url(c.deliver_url, &format!("{ctx}: deliver_url"), problems);
        let feed_url = http_url(c.feed_url, &format!("{ctx}: feed_url"), problems);
        let max_body_mb = c.max_body_mb.unwrap_or(10);
        if !(1..=100).contains(&max_body_mb) {
            problems.push(format!(
                "{ctx}: max_body_mb must be 1-100, not {max_body_mb}"
            ));
        }
        let poll = c.poll_interval_secs.unwrap_or(5);
        if !(1..=3600).contains(&poll) {
            problems.push(format!("{ctx}: poll_interval_secs must be 1-3600"));
        }
        out.push(JsonChannelConfig {
            account,
            secret: secret.unwrap_or_default(),
            deliver_url,
            feed_url,
            max_body_bytes: (max_body_mb.clamp(1, 100) as usize) * 1024 * 1024,
            poll_interval: Duration::from_secs(poll.clamp(1, 3600)),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn example_config_parses() {
        let text = include_str!("../../config/postdesk.example.toml");
        let cfg = parse(text, Path::new(""), &no_env).unwrap();
        assert_eq!(cfg.mailboxes.len(), 1);
        assert_eq!(cfg.mailboxes[0].addresses, vec!["support@example.com"]);
        assert_eq!(cfg.smtp.from.address, "support@example.com");
        assert!(cfg.autoreply.enabled);
        assert_eq!(cfg.agents[0].name, "alice");
    }

    #[test]
    fn all_problems_are_reported_at_once_with_their_keys() {
        let text = r#"
[[mailbox]]
name = "sales"
host = ""
port = 70000
security = "ssl"
folders = []
addresses = ["not-an-address"]
after_ingest = "move"
[smtp]
host = "127.0.0.1"
"#;
        let err = parse(text, Path::new(""), &no_env).unwrap_err();
        let all = err.problems.join("\n");
        for needle in [
            "mailbox \"sales\": host is required",
            "mailbox \"sales\": port must be 1-65535",
            "mailbox \"sales\": security: \"ssl\"",
            "mailbox \"sales\": username is required",
            "mailbox \"sales\": a password is required",
            "mailbox \"sales\": folders",
            "\"not-an-address\" is not an email address",
            "move_to",
            "smtp: from is required",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
    }

    #[test]
    fn tls_ca_file_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("empty.pem"), "nothing here").unwrap();
        let text = r#"
[[mailbox]]
name = "s"
host = "h"
username = "u"
password = "p"
addresses = ["s@example.com"]
tls_ca_file = "missing.pem"
[smtp]
host = "h"
from = "s@example.com"
tls_ca_file = "empty.pem"
"#;
        let err = parse(text, dir.path(), &no_env).unwrap_err().to_string();
        assert!(err.contains("mailbox \"s\": tls_ca_file"), "{err}");
        assert!(err.contains("missing.pem"), "{err}");
        assert!(err.contains("smtp: tls_ca_file"), "{err}");
        assert!(err.contains("holds no PEM certificate"), "{err}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = parse("[database]\npth = \"x\"\n", Path::new(""), &no_env).unwrap_err();
        assert!(err.to_string().contains("pth"), "{err}");
    }

    #[test]
    fn password_comes_from_env_and_is_never_printed() {
        let text = r#"
[[mailbox]]
name = "s"
host = "h"
username = "u"
password_env = "PD_PW"
addresses = ["s@example.com"]
[smtp]
host = "h"
from = "S <s@example.com>"
"#;
        let env = |k: &str| (k == "PD_PW").then(|| "hunter2".to_string());
        let cfg = parse(text, Path::new(""), &env).unwrap();
        assert_eq!(cfg.mailboxes[0].password.expose(), "hunter2");
        assert!(!format!("{cfg:?}").contains("hunter2"));
        let err = parse(text, Path::new(""), &no_env).unwrap_err();
        assert!(err.to_string().contains("PD_PW is not set"));
    }

    const BASE: &str = r#"
[[mailbox]]
name = "s"
host = "h"
username = "u"
password = "p"
addresses = ["s@example.com"]
[smtp]
host = "h"
from = "S <s@example.com>"
"#;

    #[test]
    fn example_config_has_no_http_listener_and_no_json_channel() {
        let text = include_str!("../../config/postdesk.example.toml");
        let cfg = parse(text, Path::new(""), &no_env).unwrap();
        assert_eq!(cfg.http, None);
        assert!(cfg.json_channels.is_empty());
    }

    #[test]
    fn example_json_channel_keys_parse_when_uncommented() {
        // The commented [http] and [[channel.json]] blocks, uncommented, are valid as shown
        // (the secret file aside, which the example cannot ship).
        let text = include_str!("../../config/postdesk.example.toml");
        let mut out = String::new();
        let mut inside = false;
        for line in text.lines() {
            if line == "# [http]" || line == "# [[channel.json]]" {
                inside = true;
            } else if !line.starts_with('#') {
                inside = false;
            }
            if inside && !line.starts_with("#   ") && !line.starts_with("#    ") {
                out.push_str(line.trim_start_matches("# "));
            } else {
                out.push_str(line);
            }
            out.push('\n');
        }
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("sms.secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let out = out.replace("/etc/postdesk/sms.secret", secret.to_str().unwrap());
        let cfg = parse(&out, Path::new(""), &no_env).unwrap();
        let ch = &cfg.json_channels[0];
        assert_eq!(ch.account, "sms");
        assert_eq!(ch.secret.expose(), "s3cret");
        assert_eq!(ch.deliver_url.as_deref(), Some("http://127.0.0.1:9000/out"));
        assert_eq!(ch.feed_url.as_deref(), Some("http://127.0.0.1:9000/feed"));
        assert_eq!(ch.max_body_bytes, 10 * 1024 * 1024);
        assert_eq!(ch.poll_interval, Duration::from_secs(5));
        assert_eq!(
            cfg.http.unwrap().listen,
            "127.0.0.1:8025".parse::<std::net::SocketAddr>().unwrap()
        );
    }

    #[test]
    fn a_json_channel_turns_the_listener_on_with_defaults() {
        let text = format!("{BASE}\n[[channel.json]]\naccount = \"sms\"\nsecret = \"k\"\n");
        let cfg = parse(&text, Path::new(""), &no_env).unwrap();
        assert_eq!(cfg.http.unwrap().listen.to_string(), DEFAULT_HTTP_LISTEN);
        let ch = &cfg.json_channels[0];
        assert_eq!(ch.deliver_url, None);
        assert_eq!(ch.feed_url, None);
        assert_eq!(ch.max_body_bytes, 10 * 1024 * 1024);
        // No channel, no [http]: no listener; [http] alone: a listener.
        assert_eq!(parse(BASE, Path::new(""), &no_env).unwrap().http, None);
        let text = format!("{BASE}\n[http]\nlisten = \"0.0.0.0:9999\"\n");
        let cfg = parse(&text, Path::new(""), &no_env).unwrap();
        assert_eq!(cfg.http.unwrap().listen.to_string(), "0.0.0.0:9999");
        let text = format!("{BASE}\n[http]\n");
        let cfg = parse(&text, Path::new(""), &no_env).unwrap();
        assert_eq!(cfg.http.unwrap().listen.to_string(), DEFAULT_HTTP_LISTEN);
    }

    #[test]
    fn json_channel_problems_are_all_reported_at_once() {
        let text = format!(
            r#"{BASE}
[http]
listen = "localhost"

[[channel.json]]
account = "SMS!"
secret = "a"
secret_env = "B"
deliver_url = "ftp://example.com/out"
max_body_mb = 0

[[channel.json]]
account = "chat"
secret = ""
feed_url = "not a url"
max_body_mb = 101
poll_interval_secs = 0

[[channel.json]]
account = "chat"
secret = "k"
deliver_url = "https://user:pw@example.com/out"

[[channel.json]]
feed_url = "https://"

[[channel.json]]
account = "x"
secret = 5
"#
        );
        let err = parse(&text, Path::new(""), &no_env).unwrap_err();
        let all = err.problems.join("\n");
        for needle in [
            "http: listen \"localhost\" is not an address and port",
            "channel.json \"SMS!\": account must be 1-32 characters of a-z, 0-9, _ and -",
            "channel.json \"SMS!\": give only one of secret, secret_file, secret_env, secret_credential",
            "channel.json \"SMS!\": deliver_url: \"ftp://example.com/out\" must be an http:// or https:// URL",
            "channel.json \"SMS!\": max_body_mb must be 1-100, not 0",
            "channel.json \"chat\": the secret is empty",
            "channel.json \"chat\": feed_url: \"not a url\" is not a URL",
            "channel.json \"chat\": max_body_mb must be 1-100, not 101",
            "channel.json \"chat\": poll_interval_secs must be 1-3600",
            "channel.json \"chat\": account is used by two [[channel.json]]",
            "channel.json \"chat\": deliver_url: the URL must not carry a user or password",
            "channel.json #4: account is required",
            "channel.json #4: a secret is required (secret, secret_file, secret_env or secret_credential)",
            "channel.json #4: feed_url: \"https://\" is not a URL",
            "channel.json \"x\": secret must be text in quotes, not the number 5",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
        // The mistyped secret is reported as such, not also as missing.
        assert!(
            !all.contains("channel.json \"x\": a secret is required"),
            "{all}"
        );
    }

    #[test]
    fn a_too_long_account_is_refused() {
        let text = format!(
            "{BASE}\n[[channel.json]]\naccount = \"{}\"\nsecret = \"k\"\n",
            "a".repeat(33)
        );
        let err = parse(&text, Path::new(""), &no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("account must be 1-32 characters"), "{err}");
        let text = format!(
            "{BASE}\n[[channel.json]]\naccount = \"{}\"\nsecret = \"k\"\n",
            "a_-9".repeat(8)
        );
        assert!(parse(&text, Path::new(""), &no_env).is_ok());
    }

    #[test]
    fn json_secret_comes_from_a_file_or_env_and_is_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sms.secret"), "file-secret-42\n").unwrap();
        let text = format!(
            "{BASE}\n[[channel.json]]\naccount = \"sms\"\nsecret_file = \"sms.secret\"\n\
             [[channel.json]]\naccount = \"chat\"\nsecret_env = \"CHAT_SECRET\"\n"
        );
        let env = |k: &str| (k == "CHAT_SECRET").then(|| "env-secret-43".to_string());
        let cfg = parse(&text, dir.path(), &env).unwrap();
        assert_eq!(cfg.json_channels[0].secret.expose(), "file-secret-42");
        assert_eq!(cfg.json_channels[1].secret.expose(), "env-secret-43");
        let debug = format!("{cfg:?}");
        assert!(!debug.contains("file-secret-42") && !debug.contains("env-secret-43"));
        // A missing file or variable is named.
        let err = parse(&text, Path::new("/nonexistent"), &no_env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("channel.json \"sms\".secret_file: cannot read"),
            "{err}"
        );
        assert!(
            err.contains(
                "channel.json \"chat\".secret_env: environment variable CHAT_SECRET is not set"
            ),
            "{err}"
        );
        // An empty secret file is refused; commands that need no secrets do not read it.
        std::fs::write(dir.path().join("sms.secret"), "\n").unwrap();
        let err = parse(&text, dir.path(), &env).unwrap_err().to_string();
        assert!(
            err.contains("channel.json \"sms\": the secret is empty"),
            "{err}"
        );
        assert!(
            parse_with(
                &text,
                Path::new("/nonexistent"),
                &no_env,
                Secrets::NotNeeded
            )
            .is_ok()
        );
    }

    #[test]
    fn an_unknown_key_in_a_json_channel_is_named_with_its_account() {
        let text = format!(
            "{BASE}\n[[channel.json]]\naccount = \"sms\"\nsecret = \"k\"\ndeliver_uri = \"x\"\n"
        );
        let err = parse(&text, Path::new(""), &no_env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "channel.json \"sms\": unknown key \"deliver_uri\"; did you mean \"deliver_url\"?"
            ),
            "{err}"
        );
        let text = format!("{BASE}\n[[channel.jsn]]\naccount = \"sms\"\n");
        let err = parse(&text, Path::new(""), &no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("channel: unknown key \"jsn\""), "{err}");
    }
}
