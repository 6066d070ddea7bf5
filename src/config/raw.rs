//! The configuration file exactly as written: every key optional here, so that
//! validation (in the parent module) can name each missing or wrong key itself.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub database: Option<RawDatabase>,
    #[serde(default)]
    pub mailbox: Vec<RawMailbox>,
    pub smtp: Option<RawSmtp>,
    pub autoreply: Option<RawAutoreply>,
    #[serde(default)]
    pub agent: Vec<RawAgent>,
    pub threading: Option<RawThreading>,
    pub ingest: Option<RawIngest>,
    pub templates: Option<RawTemplates>,
    pub security: Option<RawSecurity>,
    pub commands: Option<RawCommands>,
    pub notify: Option<RawNotify>,
    pub admin: Option<RawAdmin>,
    pub http: Option<RawHttp>,
    pub channel: Option<RawChannels>,
    // issue 13: teams, SLA, calendars, alerts, digest
    #[serde(default)]
    pub team: Vec<RawTeam>,
    #[serde(default)]
    pub sla: Vec<RawSla>,
    pub calendar: Option<BTreeMap<String, RawCalendar>>,
    pub alerts: Option<RawAlerts>,
    pub digest: Option<RawDigest>,
    // issue 13: rules
    #[serde(default)]
    pub rule: Vec<RawRule>,
    pub triage: Option<RawTriage>,
    // issue 14: the answer bot
    pub bot: Option<RawBot>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDatabase {
    pub path: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMailbox {
    pub name: Option<String>,
    pub host: Option<String>,
    pub port: Option<i64>,
    pub security: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<String>,
    pub password_env: Option<String>,
    pub password_credential: Option<String>,
    pub folders: Option<Vec<String>>,
    pub addresses: Option<Vec<String>>,
    pub after_ingest: Option<String>,
    pub ingest_flag: Option<String>,
    pub move_to: Option<String>,
    pub idle_timeout_secs: Option<u64>,
    pub poll_interval_secs: Option<u64>,
    pub batch_size: Option<u64>,
    pub tls_ca_file: Option<String>,
    pub timeout_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSmtp {
    pub host: Option<String>,
    pub port: Option<i64>,
    pub security: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<String>,
    pub password_env: Option<String>,
    pub password_credential: Option<String>,
    pub from: Option<String>,
    pub rate_per_minute: Option<u32>,
    pub timeout_secs: Option<u64>,
    pub max_attempts: Option<u32>,
    pub retry_base_secs: Option<u64>,
    pub tls_ca_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAutoreply {
    pub enabled: Option<bool>,
    pub max_per_sender_per_hour: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgent {
    pub name: Option<String>,
    pub email: Option<String>,
    pub display_name: Option<String>,
    // issue 13: working hours, skills, lead
    pub timezone: Option<String>,
    pub hours: Option<String>,
    pub skills: Option<Vec<String>>,
    pub lead: Option<bool>,
    // issue 14: may approve articles, receives the monthly report
    pub admin: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawThreading {
    pub subject_window_days: Option<u64>,
    pub link_window_days: Option<u64>,
    pub similar_window_hours: Option<u64>,
    pub similar_min_score: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIngest {
    pub max_message_mb: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTemplates {
    pub dir: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecurity {
    pub require_authenticated_sender: Option<bool>,
    pub trusted_authserv_id: Option<String>,
    pub token_ttl_days: Option<u64>,
    pub verify_dkim_locally: Option<bool>,
    pub dns_servers: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCommands {
    pub address: Option<String>,
    pub auto_assign: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    pub enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub email: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    pub listen: Option<String>,
    /// The address customers' and agents' browsers reach the listener at (behind the
    /// TLS proxy), for links in mail: rating links, the dashboard.
    pub public_url: Option<String>,
    /// The bearer token `/metrics` asks of requests that are not from loopback.
    pub metrics_token: Option<String>,
    pub metrics_token_file: Option<String>,
    pub metrics_token_env: Option<String>,
    pub metrics_token_credential: Option<String>,
}

/// `[[channel.json]]` (and, later, the other channels beside it).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChannels {
    #[serde(default)]
    pub json: Vec<RawJsonChannel>,
    #[serde(default)]
    pub telegram: Vec<RawTelegramChannel>,
    #[serde(default)]
    pub matrix: Vec<RawMatrixChannel>,
}

/// `[[channel.matrix]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMatrixChannel {
    pub account: Option<String>,
    pub homeserver: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<String>,
    pub password_env: Option<String>,
    pub access_token_file: Option<String>,
    pub poll_timeout_secs: Option<u64>,
    pub per_room_per_minute: Option<u32>,
    pub rate_per_second: Option<u32>,
    pub max_file_mb: Option<u64>,
}

/// `[[channel.telegram]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTelegramChannel {
    pub account: Option<String>,
    pub token: Option<String>,
    pub token_file: Option<String>,
    pub token_env: Option<String>,
    pub token_credential: Option<String>,
    pub api_base: Option<String>,
    pub poll_timeout_secs: Option<u64>,
    pub rate_per_second: Option<u32>,
    pub per_chat_per_minute: Option<u32>,
    pub max_file_mb: Option<u64>,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<String>,
    pub webhook_secret_file: Option<String>,
    pub webhook_secret_env: Option<String>,
    pub max_body_mb: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJsonChannel {
    pub account: Option<String>,
    pub secret: Option<String>,
    pub secret_file: Option<String>,
    pub secret_env: Option<String>,
    pub secret_credential: Option<String>,
    pub deliver_url: Option<String>,
    pub feed_url: Option<String>,
    pub max_body_mb: Option<u64>,
    pub poll_interval_secs: Option<u64>,
}

// issue 13: teams, SLA, calendars, alerts, digest

/// `[[team]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTeam {
    pub name: Option<String>,
    pub members: Option<Vec<String>>,
    pub lead: Option<String>,
    pub strategy: Option<String>,
}

/// `[[sla]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSla {
    pub name: Option<String>,
    pub priorities: Option<Vec<String>>,
    pub tiers: Option<Vec<String>>,
    pub categories: Option<Vec<String>>,
    pub first_response: Option<String>,
    pub next_response: Option<String>,
    pub resolution: Option<String>,
    pub calendar: Option<String>,
    pub warn_at: Option<f64>,
}

/// `[calendar.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCalendar {
    pub timezone: Option<String>,
    pub hours: Option<String>,
    pub holidays: Option<Vec<String>>,
    pub workdays: Option<Vec<String>>,
}

/// `[alerts]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlerts {
    pub on_call: Option<Vec<String>>,
    pub report_within: Option<String>,
}

/// `[digest]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDigest {
    pub enabled: Option<bool>,
    pub hour: Option<i64>,
    /// The weekly performance digest (issue 16).
    pub weekly: Option<bool>,
    pub weekly_day: Option<String>,
    pub weekly_agents: Option<bool>,
    pub font_file: Option<String>,
}

// issue 13: rules

/// One `[[rule]]` (in the configuration file or in `[triage] rules_file`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub name: Option<String>,
    pub when: Option<RawCond>,
    pub set: Option<RawRuleSet>,
    pub route: Option<RawRoute>,
    pub sla: Option<String>,
    pub forced_human: Option<bool>,
    pub suppress_ack: Option<bool>,
    pub no_bot: Option<bool>,
    pub suggest_macros: Option<Vec<String>>,
    pub stop: Option<bool>,
}

/// A rule's `when` table (and each table in its `all`, `any`, `not`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCond {
    pub any_keywords: Option<Vec<String>>,
    pub all_keywords: Option<Vec<String>>,
    pub header: Option<RawHeaderCond>,
    pub headers: Option<Vec<RawHeaderCond>>,
    pub sender: Option<OneOrMany>,
    pub sender_domain: Option<OneOrMany>,
    pub channel: Option<OneOrMany>,
    pub account: Option<OneOrMany>,
    pub language: Option<OneOrMany>,
    pub tier: Option<OneOrMany>,
    pub sentiment_below: Option<f64>,
    pub sentiment_above: Option<f64>,
    pub first_message: Option<bool>,
    pub all: Option<Vec<RawCond>>,
    pub any: Option<Vec<RawCond>>,
    pub not: Option<Box<RawCond>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaderCond {
    pub name: Option<String>,
    pub regex: Option<String>,
}

/// `"x"` or `["x", "y"]`.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// A rule's `set.*` keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRuleSet {
    pub category: Option<String>,
    pub tags: Option<Vec<String>>,
    pub priority: Option<String>,
}

/// A rule's `route.*` keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub team: Option<String>,
    pub agent: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTriage {
    pub rules_file: Option<String>,
    pub forced_human_terms: Option<Vec<String>>,
    pub forced_human_patterns: Option<Vec<String>>,
    pub sentiment_zh_lexicon: Option<String>,
    pub negative_alert_below: Option<f64>,
}

/// The file named by `[triage] rules_file`: `[[rule]]` entries only.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRulesFile {
    #[serde(default)]
    pub rule: Vec<RawRule>,
}

// issue 14: the answer bot

/// `[bot]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBot {
    pub enabled: Option<bool>,
    pub min_score: Option<f64>,
    pub min_margin: Option<f64>,
    pub handoff_words: Option<Vec<String>>,
    pub index_dir: Option<String>,
}
