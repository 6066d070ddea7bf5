//! Does an incoming message prove that it comes from its From domain? (Issue 3,
//! "Authentication", condition 3.) Two kinds of evidence count: an RFC 8601
//! `Authentication-Results` header written by our own receiving server, or a DKIM signature
//! that we verify ourselves with mail-auth. Either must pass *aligned* with the From domain.
//! This module decides; it does not fetch mail, and only [`DkimVerifier`] touches DNS.
//!
//! # Which Authentication-Results headers count
//! Anyone can write an `Authentication-Results: mx.example.com; dkim=pass` header into a
//! message. What the sender cannot do is put it *above* the headers our receiving server
//! prepends. So, walking the header block from the top:
//!
//! 1. The **trace zone** is the run of headers from the top that receiving servers add:
//!    `Return-Path`, `Delivered-To`, `X-Original-To`, `Envelope-To`, `X-Envelope-To`,
//!    `Received`, `Received-SPF`, `Authentication-Results`, `ARC-*`. It ends at the first
//!    other header (`From`, `Subject`, `DKIM-Signature`, `Message-ID`, anything the sender
//!    composed). Headers below that point are never read, whatever they claim.
//! 2. In the trace zone, the first `Authentication-Results` header whose authserv-id equals
//!    `trusted_authserv_id` (case-insensitively) starts the **trusted block**. The block goes
//!    on while the following headers are further trusted `Authentication-Results` headers
//!    or `ARC-*`/`Received-SPF` headers, and ends at anything else (a `Received` header, an
//!    A-R header from another authserv-id, the end of the trace zone). Servers that run
//!    several checkers (OpenDKIM then OpenDMARC) add one header each, next to each other.
//! 3. For each method (`dkim`, `dmarc`) only the **topmost header in the block that reports
//!    that method** is read. A forged header placed directly below the real one cannot
//!    overrule it; it could only speak for a method the real one is silent about.
//!
//! Residual assumption, as RFC 8601 §5 asks of every receiving server: the trusted server
//! removes `Authentication-Results` headers carrying its own authserv-id from incoming
//! mail (or at least always reports dkim/dmarc itself). Without that, a sender could start
//! its message with a forged header that sits directly below ours and speaks for a method
//! ours did not report, or, if ours added none at all, be the only one.
//!
//! # What passes
//! - `dmarc=pass` with `header.from` equal to the From domain; or
//! - `dkim=pass` with `header.d` (else the domain of `header.i`) aligned with it.
//!
//! If the `dmarc` result read for the From domain (or one without `header.from`) is `fail`,
//! the message is rejected even when a DKIM result passes: the receiving server saw
//! something we cannot. Any other DMARC result leaves an aligned DKIM pass standing:
//! `none` is what a domain without a DMARC record gets, and `bestguesspass` is what
//! Exchange Online writes for one. A dkim failure does not veto, since messages routinely
//! carry several signatures.
//!
//! Alignment is "relaxed" in a simplified form ([`aligned`]): the domains are equal or one
//! is a subdomain of the other, and the shorter has at least two labels. Real DMARC relaxed
//! alignment compares organizational domains via the Public Suffix List, which we do not
//! ship; the difference: `a.good.example` and `b.good.example` do not align here (safe
//! side), and a subdomain delegated to a third party (`news.good.example` run by a mailing
//! provider) *can* vouch for `good.example` here, as it can under DMARC relaxed alignment.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mail_auth::common::crypto::Algorithm;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::{DomainKey, VerifySignature};
use mail_auth::hickory_resolver::TokioResolver;
use mail_auth::hickory_resolver::config::{
    NameServerConfig, NameServerConfigGroup, ProtocolConfig, ResolverConfig,
};
use mail_auth::hickory_resolver::name_server::TokioConnectionProvider;
use mail_auth::hickory_resolver::proto::op::ResponseCode;
use mail_auth::{
    AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, ResolverCache, Txt,
};

/// What proved the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// A trusted Authentication-Results header said `method=pass` for `domain`.
    AuthResults {
        authserv_id: String,
        method: &'static str,
        domain: String,
    },
    /// We verified a DKIM signature by `domain` ourselves.
    LocalDkim { domain: String },
}

/// Why a message does not prove its sender. Messages are worded for the held-message note.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("no Authentication-Results header from the trusted server")]
    NoTrustedHeader,
    #[error("the trusted server reports no DKIM or DMARC pass ({results})")]
    NoPass { results: String },
    #[error(
        "{method} passed for {domain}, which is not aligned with the From domain {from_domain}"
    )]
    NotAligned {
        method: &'static str,
        domain: String,
        from_domain: String,
    },
    #[error("the trusted server reports dmarc={result} for {from_domain}")]
    DmarcFailed { result: String, from_domain: String },
    #[error("the message could not be parsed for DKIM verification")]
    Unparseable,
    #[error("the From header does not match the domain {from_domain}")]
    FromMismatch { from_domain: String },
    #[error("the message has no DKIM signature")]
    NoSignature,
    #[error("DKIM verification failed: {reason}")]
    DkimFailed { reason: String },
    #[error("DKIM verification could not complete (DNS): {reason}")]
    TempError { reason: String },
}

/// Reads the trusted Authentication-Results headers of `raw` (the whole message, headers
/// topmost first) and decides whether they show an aligned DKIM or DMARC pass for
/// `from_domain`. See the module doc for the exact rule.
pub fn check_auth_results(
    raw: &[u8],
    trusted_authserv_id: &str,
    from_domain: &str,
) -> Result<Evidence, AuthFailure> {
    let from_domain = normalize_domain(from_domain);
    let block = trusted_block(raw, trusted_authserv_id);
    if block.is_empty() {
        return Err(AuthFailure::NoTrustedHeader);
    }

    // For each method, the topmost header in the block that reports it.
    let reading = |method: &str| -> Vec<&ResInfo> {
        block
            .iter()
            .find(|h| h.results.iter().any(|r| r.method == method))
            .map(|h| h.results.iter().filter(|r| r.method == method).collect())
            .unwrap_or_default()
    };
    let dmarc = reading("dmarc");
    let dkim = reading("dkim");
    let authserv_id = trusted_authserv_id.to_ascii_lowercase();

    let mut not_aligned = None;
    let mut dmarc_pass = None;
    for r in &dmarc {
        // A result without header.from is taken to be about our domain when it is not a
        // pass (veto on the safe side) and proves nothing when it is.
        let domain = r.prop("header.from").map(normalize_domain);
        if domain.as_deref().is_some_and(|d| d != from_domain) {
            if let (Some(domain), "pass") = (domain, r.result.as_str()) {
                not_aligned.get_or_insert(("dmarc", domain));
            }
            continue;
        }
        match r.result.as_str() {
            "pass" => dmarc_pass = domain.or(dmarc_pass),
            "fail" => {
                return Err(AuthFailure::DmarcFailed {
                    result: r.result.clone(),
                    from_domain,
                });
            }
            // none, bestguesspass, temperror, permerror: no DMARC verdict either way.
            _ => {}
        }
    }
    if let Some(domain) = dmarc_pass {
        return Ok(Evidence::AuthResults {
            authserv_id,
            method: "dmarc",
            domain,
        });
    }

    for r in dkim.iter().filter(|r| r.result == "pass") {
        let domain = r.prop("header.d").map(normalize_domain).or_else(|| {
            r.prop("header.i")
                .and_then(|i| i.rsplit_once('@').map(|(_, d)| normalize_domain(d)))
        });
        let Some(domain) = domain else { continue };
        if aligned(&domain, &from_domain) {
            return Ok(Evidence::AuthResults {
                authserv_id,
                method: "dkim",
                domain,
            });
        }
        not_aligned.get_or_insert(("dkim", domain));
    }

    if let Some((method, domain)) = not_aligned {
        return Err(AuthFailure::NotAligned {
            method,
            domain,
            from_domain,
        });
    }
    let results: Vec<String> = dmarc
        .iter()
        .chain(dkim.iter())
        .map(|r| format!("{}={}", r.method, r.result))
        .collect();
    Err(AuthFailure::NoPass {
        results: if results.is_empty() {
            "no dkim or dmarc result".to_string()
        } else {
            results.join(", ")
        },
    })
}

/// Relaxed alignment without the Public Suffix List: equal, or one a subdomain of the
/// other, where the shorter has at least two labels (so `example` never aligns with
/// `good.example`). Compared case-insensitively, trailing dots ignored.
pub fn aligned(a: &str, b: &str) -> bool {
    let (a, b) = (normalize_domain(a), normalize_domain(b));
    if a.is_empty() || b.is_empty() {
        return false;
    }
    if a == b {
        return true;
    }
    let (short, long) = if a.len() < b.len() { (a, b) } else { (b, a) };
    short.contains('.')
        && long
            .strip_suffix(short.as_str())
            .is_some_and(|head| head.ends_with('.') && head.len() > 1)
}

fn normalize_domain(d: &str) -> String {
    d.trim().trim_end_matches('.').to_ascii_lowercase()
}

// ---------------------------------------------------------------------------------------
// Header block and the trusted block

/// The header fields of `raw` in order: (name, unfolded value). Stops at the empty line.
/// A line that is neither a field nor a continuation is returned with an empty name so
/// that it ends the trace zone.
fn header_fields(raw: &[u8]) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in raw.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let text = String::from_utf8_lossy(line);
        // RFC 5322 §2.2.3: unfolding removes the CRLF, keeps the whitespace.
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t')
            && let Some((_, value)) = fields.last_mut()
        {
            value.push_str(&text);
            continue;
        }
        match text.split_once(':') {
            Some((name, value)) if !name.is_empty() && !name.contains([' ', '\t']) => {
                fields.push((name.to_ascii_lowercase(), value.to_string()));
            }
            _ => fields.push((String::new(), text.into_owned())),
        }
    }
    fields
}

fn is_trace_header(name: &str) -> bool {
    matches!(
        name,
        "return-path"
            | "delivered-to"
            | "x-original-to"
            | "envelope-to"
            | "x-envelope-to"
            | "received"
            | "received-spf"
            | "authentication-results"
    ) || name.starts_with("arc-")
}

/// The trusted block (module doc, steps 1 and 2), parsed, topmost first.
fn trusted_block(raw: &[u8], trusted_authserv_id: &str) -> Vec<AuthResults> {
    let trusted = normalize_domain(trusted_authserv_id);
    let mut block = Vec::new();
    let mut started = false;
    for (name, value) in header_fields(raw) {
        if !is_trace_header(&name) {
            break;
        }
        let parsed = (name == "authentication-results")
            .then(|| parse_auth_results(&value))
            .flatten()
            .filter(|ar| normalize_domain(&ar.authserv_id) == trusted);
        match parsed {
            Some(ar) => {
                started = true;
                block.push(ar);
            }
            None if !started => {}
            None if name == "received-spf" || name.starts_with("arc-") => {}
            None => break,
        }
    }
    block
}

// ---------------------------------------------------------------------------------------
// RFC 8601 parsing

#[derive(Debug, Clone, PartialEq, Eq)]
struct AuthResults {
    authserv_id: String,
    results: Vec<ResInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ResInfo {
    /// Lowercased, without a `/version`.
    method: String,
    /// Lowercased.
    result: String,
    /// `ptype.property` lowercased → value as written (quotes removed).
    props: Vec<(String, String)>,
}

impl ResInfo {
    fn prop(&self, name: &str) -> Option<&str> {
        self.props
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Semi,
    Eq,
}

/// Splits an A-R value into words, `;` and `=`, dropping comments (nested, with
/// quoted-pairs) and unquoting quoted strings (RFC 5322 §3.2.2-3.2.4). `None` when a
/// comment or quoted string is not closed.
fn lex(value: &str) -> Option<Vec<Tok>> {
    let mut toks = Vec::new();
    let mut chars = value.chars().peekable();
    let mut word = String::new();
    let flush = |word: &mut String, toks: &mut Vec<Tok>| {
        if !word.is_empty() {
            toks.push(Tok::Word(std::mem::take(word)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '(' => {
                flush(&mut word, &mut toks);
                let mut depth = 1u32;
                while depth > 0 {
                    match chars.next()? {
                        '\\' => {
                            chars.next()?;
                        }
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                }
            }
            '"' => {
                // A quoted string is one word, even when it touches other characters.
                loop {
                    match chars.next()? {
                        '\\' => word.push(chars.next()?),
                        '"' => break,
                        q => word.push(q),
                    }
                }
            }
            ';' => {
                flush(&mut word, &mut toks);
                toks.push(Tok::Semi);
            }
            '=' => {
                flush(&mut word, &mut toks);
                toks.push(Tok::Eq);
            }
            c if c.is_whitespace() => flush(&mut word, &mut toks),
            c => word.push(c),
        }
    }
    flush(&mut word, &mut toks);
    Some(toks)
}

/// Parses one Authentication-Results value. `None` when it has no authserv-id or cannot
/// be lexed; a malformed resinfo is skipped, the others kept.
fn parse_auth_results(value: &str) -> Option<AuthResults> {
    let toks = lex(value)?;
    let mut segments = toks.split(|t| *t == Tok::Semi);
    let head = segments.next()?;
    // authserv-id [version]
    let authserv_id = match head.first()? {
        Tok::Word(w) => w.clone(),
        _ => return None,
    };
    let mut results = Vec::new();
    for seg in segments {
        if let Some(r) = parse_resinfo(seg) {
            results.push(r);
        }
    }
    Some(AuthResults {
        authserv_id,
        results,
    })
}

/// `method[/version]=result [reason=value] [ptype.property=value ...]`
fn parse_resinfo(seg: &[Tok]) -> Option<ResInfo> {
    let mut pairs = Vec::new();
    let mut rest = seg;
    while !rest.is_empty() {
        match rest {
            [Tok::Word(k), Tok::Eq, Tok::Word(v), tail @ ..] => {
                pairs.push((k.to_ascii_lowercase(), v.clone()));
                rest = tail;
            }
            // `header.i=` with an empty value, or other debris: give up on this resinfo
            // rather than guess which word belongs to which property.
            _ => return None,
        }
    }
    let mut pairs = pairs.into_iter();
    let (method, result) = pairs.next()?;
    let method = method
        .split('/')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    Some(ResInfo {
        method,
        result: result.to_ascii_lowercase(),
        props: pairs.filter(|(k, _)| k.contains('.')).collect(),
    })
}

// ---------------------------------------------------------------------------------------
// Local DKIM verification

/// Most entries the TXT cache holds; hostile mail can name any selector, so the cache is
/// cleared rather than allowed to grow without bound.
const TXT_CACHE_MAX: usize = 4096;

/// DKIM key records: a cache in front of DNS, or in offline mode the only source.
struct TxtCache {
    entries: Mutex<HashMap<String, (Txt, Instant)>>,
    /// Records added by hand never expire; in offline mode a miss is "not found".
    offline: bool,
}

impl ResolverCache<String, Txt> for TxtCache {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        String: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        let entries = self.entries.lock().ok()?;
        match entries.get(name) {
            Some((txt, until)) if self.offline || *until > Instant::now() => Some(txt.clone()),
            _ if self.offline => Some(Txt::Error(mail_auth::Error::DnsRecordNotFound(
                ResponseCode::NXDomain,
            ))),
            _ => None,
        }
    }

    fn remove<Q>(&self, name: &Q) -> Option<Txt>
    where
        String: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.entries.lock().ok()?.remove(name).map(|(t, _)| t)
    }

    fn insert(&self, key: String, value: Txt, valid_until: Instant) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= TXT_CACHE_MAX {
                entries.clear();
            }
            entries.insert(key, (value, valid_until));
        }
    }
}

/// Verifies DKIM signatures with mail-auth. Cheap to share (`Arc` inside); one per daemon.
#[derive(Clone)]
pub struct DkimVerifier {
    authenticator: MessageAuthenticator,
    txt: Arc<TxtCache>,
    budget: Arc<Mutex<DnsBudget>>,
}

/// How long one local verification may wait for DNS.
pub const DNS_TIMEOUT: Duration = Duration::from_secs(4);
/// The DNS waiting all local verifications together may spend per [`DNS_WINDOW`]. Local
/// verification runs inside the ingest transaction, and the names it looks up are chosen
/// by whoever sent the mail: a flood of forged, signed mail must not stall ingest for
/// everyone. Past the budget a message is simply not verified locally (and so held, unless
/// a trusted Authentication-Results header proves its sender).
pub const DNS_BUDGET: Duration = Duration::from_secs(8);
pub const DNS_WINDOW: Duration = Duration::from_secs(60);

/// DNS time spent in the current window.
#[derive(Debug)]
struct DnsBudget {
    window_start: Instant,
    spent: Duration,
}

impl DnsBudget {
    /// What is left of the window's budget, starting a new window when the old one ended.
    fn left(&mut self, now: Instant) -> Duration {
        if now.duration_since(self.window_start) >= DNS_WINDOW {
            self.window_start = now;
            self.spent = Duration::ZERO;
        }
        DNS_BUDGET.saturating_sub(self.spent)
    }
}

impl std::fmt::Debug for DkimVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimVerifier")
            .field("offline", &self.txt.offline)
            .finish_non_exhaustive()
    }
}

impl DkimVerifier {
    /// Resolves through the system's DNS configuration (`/etc/resolv.conf`).
    pub fn from_system_conf() -> Result<DkimVerifier, String> {
        let authenticator = MessageAuthenticator::new_system_conf().map_err(|e| format!("{e}"))?;
        Ok(Self::with(authenticator, false))
    }

    /// Resolves through these DNS servers (UDP, then TCP for truncated answers).
    pub fn with_servers(servers: &[std::net::SocketAddr]) -> DkimVerifier {
        let mut group = NameServerConfigGroup::with_capacity(servers.len() * 2);
        for addr in servers {
            group.push(NameServerConfig::new(*addr, ProtocolConfig::Udp));
            group.push(NameServerConfig::new(*addr, ProtocolConfig::Tcp));
        }
        let resolver = TokioResolver::builder_with_config(
            ResolverConfig::from_parts(None, Vec::new(), group),
            TokioConnectionProvider::default(),
        )
        .build();
        Self::with(MessageAuthenticator(resolver), false)
    }

    /// Never touches the network: only records added with [`DkimVerifier::add_txt`]
    /// exist, and every other name answers "not found". For tests and for air-gapped
    /// setups that pin their agents' keys.
    pub fn offline() -> DkimVerifier {
        // A resolver without name servers; building it does no I/O, and offline lookups
        // are all answered by the cache before the resolver is asked.
        let resolver = TokioResolver::builder_with_config(
            ResolverConfig::from_parts(None, Vec::new(), NameServerConfigGroup::with_capacity(0)),
            TokioConnectionProvider::default(),
        )
        .build();
        Self::with(MessageAuthenticator(resolver), true)
    }

    fn with(authenticator: MessageAuthenticator, offline: bool) -> DkimVerifier {
        DkimVerifier {
            authenticator,
            txt: Arc::new(TxtCache {
                entries: Mutex::new(HashMap::new()),
                offline,
            }),
            budget: Arc::new(Mutex::new(DnsBudget {
                window_start: Instant::now(),
                spent: Duration::ZERO,
            })),
        }
    }

    /// Pins the DKIM key record `record` (e.g. `v=DKIM1; k=ed25519; p=...`) at `name`
    /// (e.g. `sel._domainkey.example.com`). Pinned records never expire while the verifier
    /// is offline; online they are kept for a day, like a cached answer.
    pub fn add_txt(&self, name: &str, record: &str) -> Result<(), String> {
        let key = DomainKey::parse(record.as_bytes()).map_err(|e| format!("{e}"))?;
        let mut fqdn = name.trim().to_ascii_lowercase();
        if !fqdn.ends_with('.') {
            fqdn.push('.');
        }
        self.txt.insert(
            fqdn,
            Txt::from(key),
            Instant::now() + Duration::from_secs(86_400),
        );
        Ok(())
    }

    /// See [`verify_dkim_locally`].
    pub async fn verify(&self, raw: &[u8], from_domain: &str) -> Result<Evidence, AuthFailure> {
        verify_dkim_locally(raw, from_domain, self).await
    }

    /// [`DkimVerifier::verify`] within the shared DNS budget: at most [`DNS_TIMEOUT`],
    /// and never more than what is left of [`DNS_BUDGET`] in this minute. Offline
    /// verifiers (pinned keys) never wait and spend nothing.
    pub async fn verify_budgeted(&self, raw: &[u8], from_domain: &str) -> Result<Evidence, String> {
        if self.txt.offline {
            return self
                .verify(raw, from_domain)
                .await
                .map_err(|e| e.to_string());
        }
        let left = {
            let mut b = self
                .budget
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            b.left(Instant::now())
        };
        if left.is_zero() {
            return Err(
                "skipped: the DNS time budget for local DKIM checks is spent for this minute"
                    .to_string(),
            );
        }
        let started = Instant::now();
        let out = tokio::time::timeout(left.min(DNS_TIMEOUT), self.verify(raw, from_domain)).await;
        let spent = started.elapsed();
        {
            let mut b = self
                .budget
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            b.spent = b.spent.saturating_add(spent);
        }
        match out {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err("DNS did not answer in time".to_string()),
        }
    }
}

/// Signatures aligned with the From domain checked per message, at most.
pub const MAX_SIGNATURES: usize = 4;

/// Verifies the DKIM signatures of `raw` and passes when one of them is valid, covers the
/// From header, uses SHA-256, and has a `d=` aligned with `from_domain`. Every From
/// address in the message must be in `from_domain` (the caller has already insisted on
/// exactly one). Signatures with `l=` are refused by mail-auth's strict parsing, so no
/// unsigned text can be appended below a signed body.
pub async fn verify_dkim_locally(
    raw: &[u8],
    from_domain: &str,
    verifier: &DkimVerifier,
) -> Result<Evidence, AuthFailure> {
    let from_domain = normalize_domain(from_domain);
    let mut message = AuthenticatedMessage::parse(raw).ok_or(AuthFailure::Unparseable)?;
    let from_ok = !message.from.is_empty()
        && message.from.iter().all(|a| {
            a.rsplit_once('@')
                .is_some_and(|(_, d)| normalize_domain(d) == from_domain)
        });
    if !from_ok {
        return Err(AuthFailure::FromMismatch { from_domain });
    }
    if message.dkim_headers.is_empty() {
        return Err(AuthFailure::NoSignature);
    }
    // Only signatures that could pass are checked, so DNS is asked only about the From
    // domain's own keys: the sender of a forgery picks every other `d=` and could point
    // it at a server that never answers.
    let mut not_aligned = None;
    message.dkim_headers.retain(|h| match &h.header {
        Ok(sig) => {
            let d = normalize_domain(sig.domain());
            let keep = aligned(&d, &from_domain);
            if !keep {
                not_aligned.get_or_insert(d);
            }
            keep
        }
        Err(_) => false,
    });
    message.dkim_headers.truncate(MAX_SIGNATURES);
    if message.dkim_headers.is_empty() {
        return Err(match not_aligned {
            Some(domain) => AuthFailure::NotAligned {
                method: "dkim",
                domain,
                from_domain,
            },
            None => AuthFailure::DkimFailed {
                reason: "no signature could be parsed".into(),
            },
        });
    }

    let outputs = verifier
        .authenticator
        .verify_dkim(Parameters::new(&message).with_txt_cache(verifier.txt.as_ref()))
        .await;

    let mut temp = None;
    let mut failure = None;
    for out in &outputs {
        let sig = out.signature();
        match (out.result(), sig) {
            (DkimResult::Pass, Some(sig)) => {
                if sig.a == Algorithm::RsaSha1 {
                    // RFC 8301 §3.1: rsa-sha1 signatures must not be considered valid.
                    failure.get_or_insert_with(|| "rsa-sha1 is not accepted".to_string());
                    continue;
                }
                if !sig.h.iter().any(|h| h.eq_ignore_ascii_case("from")) {
                    failure.get_or_insert_with(|| "the signature does not cover From".into());
                    continue;
                }
                let d = normalize_domain(sig.domain());
                if aligned(&d, &from_domain) {
                    return Ok(Evidence::LocalDkim { domain: d });
                }
                not_aligned.get_or_insert(d);
            }
            (DkimResult::TempError(e), _) => {
                temp.get_or_insert_with(|| e.to_string());
            }
            (other, _) => {
                failure.get_or_insert_with(|| other.to_string());
            }
        }
    }
    if let Some(domain) = not_aligned {
        return Err(AuthFailure::NotAligned {
            method: "dkim",
            domain,
            from_domain,
        });
    }
    // A temporary DNS failure first: trying again later may pass.
    if let Some(reason) = temp {
        return Err(AuthFailure::TempError { reason });
    }
    Err(AuthFailure::DkimFailed {
        reason: failure.unwrap_or_else(|| "no result".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use mail_auth::common::crypto::Ed25519Key;
    use mail_auth::common::headers::HeaderWriter;
    use mail_auth::dkim::DkimSigner;

    const MX: &str = "mx.example.com";

    /// A message as our receiving server stores it: its own trace headers on top (given),
    /// then what the sender wrote.
    fn msg(top: &str, sender_part: &str) -> Vec<u8> {
        format!(
            "{top}{sender_part}From: Alice <alice@good.example>\r\nTo: support+x@example.com\r\n\
             Subject: Re: [#1] printer\r\nMessage-ID: <m1@good.example>\r\n\r\n#close\r\n"
        )
        .into_bytes()
    }

    fn check(top: &str) -> Result<Evidence, AuthFailure> {
        check_auth_results(&msg(top, ""), MX, "good.example")
    }

    const RECEIVED: &str = "Return-Path: <alice@good.example>\r\nDelivered-To: support@example.com\r\n\
        Received: from mail.good.example by mx.example.com with ESMTPS id 1; Mon, 1 Jan 2025 00:00:00 +0000\r\n";

    #[test]
    fn trusted_aligned_dkim_pass_is_accepted() {
        let top = format!(
            "{RECEIVED}Authentication-Results: mx.example.com;\r\n\tdkim=pass header.d=good.example header.s=sel header.b=abcd\r\n"
        );
        assert_eq!(
            check(&top),
            Ok(Evidence::AuthResults {
                authserv_id: MX.into(),
                method: "dkim",
                domain: "good.example".into()
            })
        );
    }

    #[test]
    fn trusted_dmarc_pass_is_accepted() {
        let top = "Authentication-Results: mx.example.com; dkim=pass header.d=other.example;\r\n \
                   dmarc=pass (p=reject dis=none) header.from=good.example\r\n";
        assert!(matches!(
            check(top),
            Ok(Evidence::AuthResults {
                method: "dmarc",
                ..
            })
        ));
        // dmarc=pass for some other From domain proves nothing about ours.
        let top = "Authentication-Results: mx.example.com; dmarc=pass header.from=evil.example\r\n";
        assert!(matches!(
            check(top),
            Err(AuthFailure::NotAligned {
                method: "dmarc",
                ..
            })
        ));
    }

    #[test]
    fn untrusted_authserv_id_does_not_count() {
        let top = "Authentication-Results: mx.evil.example; dkim=pass header.d=good.example\r\n";
        assert_eq!(check(top), Err(AuthFailure::NoTrustedHeader));
        // A suffix or prefix of the trusted id is another id.
        let top = "Authentication-Results: evilmx.example.com; dkim=pass header.d=good.example\r\n";
        assert_eq!(check(top), Err(AuthFailure::NoTrustedHeader));
        assert_eq!(check(RECEIVED), Err(AuthFailure::NoTrustedHeader));
    }

    #[test]
    fn trusted_header_below_sender_headers_is_ignored() {
        let forged = "Subject: hi\r\nAuthentication-Results: mx.example.com; dkim=pass header.d=good.example\r\n";
        let raw = msg(RECEIVED, forged);
        assert_eq!(
            check_auth_results(&raw, MX, "good.example"),
            Err(AuthFailure::NoTrustedHeader)
        );
        // Below the From header, after a DKIM-Signature: same.
        let raw = format!(
            "{RECEIVED}DKIM-Signature: v=1; d=good.example\r\nAuthentication-Results: mx.example.com; dkim=pass header.d=good.example\r\n\
             From: alice@good.example\r\n\r\nbody\r\n"
        );
        assert_eq!(
            check_auth_results(raw.as_bytes(), MX, "good.example"),
            Err(AuthFailure::NoTrustedHeader)
        );
        // And one in the body is not a header at all.
        let raw = format!(
            "{RECEIVED}From: alice@good.example\r\n\r\nAuthentication-Results: mx.example.com; dkim=pass header.d=good.example\r\n"
        );
        assert_eq!(
            check_auth_results(raw.as_bytes(), MX, "good.example"),
            Err(AuthFailure::NoTrustedHeader)
        );
    }

    #[test]
    fn pass_for_another_domain_is_not_aligned() {
        let top = "Authentication-Results: mx.example.com; dkim=pass header.d=evil.example\r\n";
        assert_eq!(
            check(top),
            Err(AuthFailure::NotAligned {
                method: "dkim",
                domain: "evil.example".into(),
                from_domain: "good.example".into()
            })
        );
        // A look-alike suffix is not a subdomain.
        let top = "Authentication-Results: mx.example.com; dkim=pass header.d=notgood.example\r\n";
        assert!(matches!(check(top), Err(AuthFailure::NotAligned { .. })));
        // The top-level domain alone never aligns.
        let top = "Authentication-Results: mx.example.com; dkim=pass header.d=example\r\n";
        assert!(matches!(check(top), Err(AuthFailure::NotAligned { .. })));
    }

    #[test]
    fn subdomain_alignment_is_relaxed() {
        let top =
            "Authentication-Results: mx.example.com; dkim=pass header.d=mail.good.example\r\n";
        assert!(matches!(
            check(top),
            Ok(Evidence::AuthResults { method: "dkim", .. })
        ));
        // header.i when header.d is missing.
        let top = "Authentication-Results: mx.example.com; dkim=pass header.i=@Good.Example\r\n";
        assert!(matches!(
            check(top),
            Ok(Evidence::AuthResults { method: "dkim", .. })
        ));
        assert!(aligned("good.example", "mail.good.example"));
        assert!(aligned("GOOD.example.", "good.example"));
        assert!(!aligned("a.good.example", "b.good.example"));
        assert!(!aligned("", "good.example"));
    }

    #[test]
    fn dkim_fail_none_neutral_temperror_are_rejected() {
        for result in [
            "fail",
            "none",
            "neutral",
            "temperror",
            "permerror",
            "policy",
        ] {
            let top = format!(
                "Authentication-Results: mx.example.com; dkim={result} header.d=good.example\r\n"
            );
            assert!(
                matches!(check(&top), Err(AuthFailure::NoPass { .. })),
                "{result}: {:?}",
                check(&top)
            );
        }
        let top = "Authentication-Results: mx.example.com; none\r\n";
        assert!(matches!(check(top), Err(AuthFailure::NoPass { .. })));
        let top = "Authentication-Results: mx.example.com; spf=pass smtp.mailfrom=good.example\r\n";
        assert!(matches!(check(top), Err(AuthFailure::NoPass { .. })));
    }

    #[test]
    fn an_aligned_dkim_pass_stands_unless_dmarc_fails() {
        for dmarc in ["none", "bestguesspass", "temperror", "permerror"] {
            let top = format!(
                "Authentication-Results: mx.example.com; dkim=pass header.d=good.example; dmarc={dmarc} header.from=good.example\r\n"
            );
            assert!(
                matches!(
                    check(&top),
                    Ok(Evidence::AuthResults { method: "dkim", .. })
                ),
                "dmarc={dmarc}"
            );
        }
        // Without an aligned DKIM pass, no DMARC result but pass is enough.
        let top = "Authentication-Results: mx.example.com; dmarc=bestguesspass header.from=good.example\r\n";
        assert!(matches!(check(top), Err(AuthFailure::NoPass { .. })));
    }

    #[test]
    fn dmarc_fail_vetoes_a_dkim_pass() {
        let top = "Authentication-Results: mx.example.com; dkim=pass header.d=good.example;\r\n \
                   dmarc=fail header.from=good.example\r\n";
        assert_eq!(
            check(top),
            Err(AuthFailure::DmarcFailed {
                result: "fail".into(),
                from_domain: "good.example".into()
            })
        );
    }

    #[test]
    fn dmarc_result_without_header_from() {
        let top = "Authentication-Results: mx.example.com; dkim=pass header.d=good.example; dmarc=fail\r\n";
        assert!(matches!(check(top), Err(AuthFailure::DmarcFailed { .. })));
        let top = "Authentication-Results: mx.example.com; dmarc=pass\r\n";
        assert!(matches!(check(top), Err(AuthFailure::NoPass { .. })));
    }

    #[test]
    fn comments_quotes_and_folding_are_understood() {
        let top = "Authentication-Results: (our server) mx.example.com 1 (version);\r\n\
                   \tspf=pass (sender SPF authorized) smtp.mailfrom=good.example;\r\n\
                   \tdkim=pass (2048-bit key; secure) reason=\"signature ok; good\"\r\n\
                   \t header.d=\"good.example\" (the (nested) comment) header.s=sel\r\n";
        assert!(matches!(
            check(top),
            Ok(Evidence::AuthResults { method: "dkim", .. })
        ));
        // A semicolon inside a comment or quoted string is not a separator: here it
        // would otherwise make `dkim=pass header.d=good.example` look like a resinfo.
        let top = "Authentication-Results: mx.example.com; dkim=fail reason=\"x; dkim=pass header.d=good.example\"\r\n";
        assert!(matches!(check(top), Err(AuthFailure::NoPass { .. })));
        let top = "Authentication-Results: mx.example.com; dkim=fail (x; dkim=pass header.d=good.example)\r\n";
        assert!(matches!(check(top), Err(AuthFailure::NoPass { .. })));
        // LF-only line ends work too.
        let raw = "Authentication-Results: mx.example.com;\n dkim=pass header.d=good.example\nFrom: a@good.example\n\nx\n";
        assert!(check_auth_results(raw.as_bytes(), MX, "good.example").is_ok());
        // An unclosed comment makes the header unreadable, hence untrusted.
        let top =
            "Authentication-Results: mx.example.com; dkim=pass header.d=good.example (oops\r\n";
        assert_eq!(check(top), Err(AuthFailure::NoTrustedHeader));
    }

    #[test]
    fn forged_header_below_the_real_one_cannot_overrule_it() {
        let top = format!(
            "{RECEIVED}Authentication-Results: mx.example.com; dkim=fail header.d=good.example\r\n\
             Authentication-Results: mx.example.com; dkim=pass header.d=good.example\r\n"
        );
        assert!(matches!(check(&top), Err(AuthFailure::NoPass { .. })));
        // Separated from the real block by a Received header (the sender's own trace).
        let top = "Authentication-Results: mx.example.com; dkim=fail header.d=good.example\r\n\
                   Received: from attacker by relay.evil.example\r\n\
                   Authentication-Results: mx.example.com; dkim=pass header.d=good.example\r\n";
        assert!(matches!(check(top), Err(AuthFailure::NoPass { .. })));
        // And a forged dmarc=pass cannot overrule a real dmarc=fail.
        let top = "Authentication-Results: mx.example.com; dmarc=fail header.from=good.example\r\n\
                   Authentication-Results: mx.example.com; dmarc=pass header.from=good.example\r\n";
        assert!(matches!(check(top), Err(AuthFailure::DmarcFailed { .. })));
    }

    #[test]
    fn separate_headers_per_checker_are_read_together() {
        // OpenDMARC's header above OpenDKIM's, with an ARC seal between them.
        let top = "Authentication-Results: mx.example.com; dmarc=none header.from=good.example\r\n\
                   ARC-Seal: i=1; a=rsa-sha256; cv=none; d=example.com; s=arc; b=xyz\r\n\
                   Authentication-Results: mx.example.com; dkim=pass header.d=good.example\r\n";
        // dmarc=none (no DMARC record) leaves the aligned DKIM pass standing.
        assert!(matches!(
            check(top),
            Ok(Evidence::AuthResults { method: "dkim", .. })
        ));
        let top = "Authentication-Results: mx.example.com; spf=pass smtp.mailfrom=good.example\r\n\
                   ARC-Seal: i=1; a=rsa-sha256; cv=none; d=example.com; s=arc; b=xyz\r\n\
                   Authentication-Results: mx.example.com; dkim=pass header.d=good.example\r\n";
        assert!(matches!(
            check(top),
            Ok(Evidence::AuthResults { method: "dkim", .. })
        ));
    }

    #[test]
    fn authserv_id_and_methods_are_case_insensitive() {
        let top = "authentication-results: MX.Example.COM; DKIM=Pass Header.D=GOOD.example\r\n";
        assert_eq!(
            check_auth_results(&msg(top, ""), "mx.example.com", "Good.Example"),
            Ok(Evidence::AuthResults {
                authserv_id: MX.into(),
                method: "dkim",
                domain: "good.example".into()
            })
        );
        assert!(check_auth_results(&msg(top, ""), "MX.EXAMPLE.COM", "good.example").is_ok());
        let top =
            "Authentication-Results: mx.example.com; DMARC/1=PASS header.FROM=good.example\r\n";
        assert!(matches!(
            check(top),
            Ok(Evidence::AuthResults {
                method: "dmarc",
                ..
            })
        ));
    }

    #[test]
    fn hostile_header_blocks_do_not_crash() {
        for raw in [
            &b""[..],
            b"\r\n",
            b" continuation first\r\n\r\n",
            b"Authentication-Results:\r\n\r\n",
            b"Authentication-Results: ;;;==;\r\n\r\n",
            b"Authentication-Results: \"unterminated\r\n\r\n",
            b"Authentication-Results: mx.example.com; dkim=\r\n\r\n",
            b"Authentication-Results: mx.example.com; =pass\r\n\r\n",
            b"\xff\xfe: \xff\r\n\r\n",
        ] {
            assert!(check_auth_results(raw, MX, "good.example").is_err());
        }
    }

    // --- local DKIM verification ------------------------------------------------------

    struct Signer {
        key_pkcs8: Vec<u8>,
        txt: String,
    }

    fn signer() -> Signer {
        let key_pkcs8 = Ed25519Key::generate_pkcs8().unwrap();
        let key = Ed25519Key::from_pkcs8_der(&key_pkcs8).unwrap();
        let txt = format!(
            "v=DKIM1; k=ed25519; p={}",
            base64::engine::general_purpose::STANDARD.encode(key.public_key())
        );
        Signer { key_pkcs8, txt }
    }

    const BODY_MSG: &str = "From: Alice <alice@good.example>\r\nTo: support+x@example.com\r\n\
        Subject: Re: [#1] printer\r\nMessage-ID: <m1@good.example>\r\n\r\n#close\r\nThanks!\r\n";

    fn sign(s: &Signer, domain: &str, headers: &[&str], message: &str) -> String {
        let key = Ed25519Key::from_pkcs8_der(&s.key_pkcs8).unwrap();
        let sig = DkimSigner::from_key(key)
            .domain(domain)
            .selector("sel")
            .headers(headers.iter().copied())
            .sign(message.as_bytes())
            .unwrap();
        format!("{}{message}", sig.to_header())
    }

    fn verifier_with(s: &Signer, domain: &str) -> DkimVerifier {
        let v = DkimVerifier::offline();
        v.add_txt(&format!("sel._domainkey.{domain}"), &s.txt)
            .unwrap();
        v
    }

    #[tokio::test]
    async fn locally_verified_signature_passes() {
        let s = signer();
        let raw = sign(&s, "good.example", &["From", "To", "Subject"], BODY_MSG);
        let v = verifier_with(&s, "good.example");
        assert_eq!(
            verify_dkim_locally(raw.as_bytes(), "good.example", &v).await,
            Ok(Evidence::LocalDkim {
                domain: "good.example".into()
            })
        );
        // Trace headers added above the signature by the receiving side do not matter.
        let received = format!("{RECEIVED}{raw}");
        assert!(v.verify(received.as_bytes(), "GOOD.example").await.is_ok());
    }

    #[tokio::test]
    async fn tampered_body_or_header_fails() {
        let s = signer();
        let raw = sign(&s, "good.example", &["From", "To", "Subject"], BODY_MSG);
        let v = verifier_with(&s, "good.example");
        let body = raw.replace("#close", "#assign mallory");
        assert!(matches!(
            verify_dkim_locally(body.as_bytes(), "good.example", &v).await,
            Err(AuthFailure::DkimFailed { .. })
        ));
        let subject = raw.replace("[#1]", "[#2]");
        assert!(matches!(
            verify_dkim_locally(subject.as_bytes(), "good.example", &v).await,
            Err(AuthFailure::DkimFailed { .. })
        ));
    }

    #[tokio::test]
    async fn signature_by_another_domain_is_not_aligned() {
        let s = signer();
        let raw = sign(&s, "evil.example", &["From", "To", "Subject"], BODY_MSG);
        let v = verifier_with(&s, "evil.example");
        assert_eq!(
            verify_dkim_locally(raw.as_bytes(), "good.example", &v).await,
            Err(AuthFailure::NotAligned {
                method: "dkim",
                domain: "evil.example".into(),
                from_domain: "good.example".into()
            })
        );
    }

    #[tokio::test]
    async fn signature_must_cover_from() {
        let s = signer();
        let raw = sign(&s, "good.example", &["To", "Subject"], BODY_MSG);
        let v = verifier_with(&s, "good.example");
        assert!(matches!(
            verify_dkim_locally(raw.as_bytes(), "good.example", &v).await,
            Err(AuthFailure::DkimFailed { .. })
        ));
    }

    #[tokio::test]
    async fn missing_key_unsigned_and_from_mismatch() {
        let s = signer();
        let raw = sign(&s, "good.example", &["From", "To", "Subject"], BODY_MSG);
        // Offline and no pinned key: a permanent "not found", never a network lookup.
        let empty = DkimVerifier::offline();
        assert!(matches!(
            verify_dkim_locally(raw.as_bytes(), "good.example", &empty).await,
            Err(AuthFailure::DkimFailed { .. })
        ));
        // Another key at the selector: signature does not verify.
        let other = verifier_with(&signer(), "good.example");
        assert!(matches!(
            verify_dkim_locally(raw.as_bytes(), "good.example", &other).await,
            Err(AuthFailure::DkimFailed { .. })
        ));
        let v = verifier_with(&s, "good.example");
        assert_eq!(
            verify_dkim_locally(BODY_MSG.as_bytes(), "good.example", &v).await,
            Err(AuthFailure::NoSignature)
        );
        assert_eq!(
            verify_dkim_locally(raw.as_bytes(), "other.example", &v).await,
            Err(AuthFailure::FromMismatch {
                from_domain: "other.example".into()
            })
        );
        assert!(v.add_txt("x._domainkey.good.example", "not a key").is_err());
    }

    #[test]
    fn verifier_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let v = DkimVerifier::offline();
        let fut = verify_dkim_locally(b"", "good.example", &v);
        assert_send(&fut);
        fn assert_sync<T: Send + Sync>() {}
        assert_sync::<DkimVerifier>();
    }
}
