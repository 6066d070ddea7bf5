//! `/metrics` in the Prometheus text format: what an operator alerts on.
//!
//! Counters of what this process did since it started come from the `metrics` facade
//! (`postdesk_ingested_messages_total{source}` after each committed batch,
//! `postdesk_send_failures_total{channel,kind}` from the outbox worker,
//! `postdesk_sla_breach_notices_total` from the clock); gauges of where the desk stands
//! are read from the database at each scrape, each with one indexed query: outbox depth
//! and failed sends per channel, held messages, pending IMAP actions, open tickets, open
//! red alerts, each event worker's lag, and the bot's and SLA figures of the tickets
//! created in the last seven days.
//!
//! Who may scrape: a request from loopback without proxy headers (`X-Forwarded-For`,
//! `Forwarded`: a reverse proxy on this host connects from loopback for everyone), or any
//! request with `Authorization: Bearer <[http] metrics_token>`.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use subtle::ConstantTimeEq;

use crate::clock::{Clock, SystemClock};
use crate::config::Secret;
use crate::store::Store;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus recorder, installed at first use (the daemon calls this at
/// start, so counters count from then).
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("A metrics recorder was already installed; /metrics shows gauges only");
        }
        handle
    })
}

struct MetricsState {
    store: Store,
    token: Option<Secret>,
}

/// The `/metrics` route.
pub fn router(store: Store, token: Option<Secret>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(Arc::new(MetricsState { store, token }))
}

/// Whether this request may scrape.
pub fn allowed(peer: SocketAddr, headers: &HeaderMap, token: Option<&Secret>) -> bool {
    let proxied =
        headers.contains_key("x-forwarded-for") || headers.contains_key(header::FORWARDED);
    if peer.ip().is_loopback() && !proxied {
        return true;
    }
    let (Some(token), Some(given)) = (
        token,
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ")),
    ) else {
        return false;
    };
    !token.expose().is_empty()
        && bool::from(given.trim().as_bytes().ct_eq(token.expose().as_bytes()))
}

async fn scrape(
    State(st): State<Arc<MetricsState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if !allowed(peer, &headers, st.token.as_ref()) {
        let mut r = (
            StatusCode::UNAUTHORIZED,
            "a bearer token is needed from here\n",
        )
            .into_response();
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    }
    let mut body = handle().render();
    match gauges(&st.store).await {
        Ok(text) => body.push_str(&text),
        Err(e) => {
            tracing::error!("/metrics: reading the database: {e:#}");
            body.push_str("# The database could not be read.\npostdesk_database_up 0\n");
        }
    }
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// Text-format lines for one gauge family.
fn family(out: &mut String, name: &str, help: &str, samples: &[(String, f64)]) {
    out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
    for (labels, v) in samples {
        if labels.is_empty() {
            out.push_str(&format!("{name} {v}\n"));
        } else {
            out.push_str(&format!("{name}{{{labels}}} {v}\n"));
        }
    }
}

/// A label value escaped as the text format wants (backslash, quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

async fn gauges(store: &Store) -> anyhow::Result<String> {
    let mut conn = store.pool().acquire().await?;
    let since = SystemClock.now().timestamp() - 7 * 86_400;
    let g = crate::store::analytics::gauges(&mut conn, since).await?;
    let mut out = String::new();
    family(
        &mut out,
        "postdesk_database_up",
        "Whether the database answered.",
        &[(String::new(), 1.0)],
    );
    let per_channel = |rows: &[(String, i64)]| -> Vec<(String, f64)> {
        rows.iter()
            .map(|(c, n)| (format!("channel=\"{}\"", label(c)), *n as f64))
            .collect()
    };
    family(
        &mut out,
        "postdesk_outbox_pending",
        "Outgoing messages waiting to be sent, per channel.",
        &per_channel(&g.outbox_pending),
    );
    family(
        &mut out,
        "postdesk_outbox_failed",
        "Outgoing messages that failed for good, per channel.",
        &per_channel(&g.outbox_failed),
    );
    family(
        &mut out,
        "postdesk_held_messages",
        "Messages held for a person to release.",
        &[(String::new(), g.held as f64)],
    );
    family(
        &mut out,
        "postdesk_imap_actions_pending",
        "Flags and moves waiting for the IMAP server.",
        &[(String::new(), g.imap_actions as f64)],
    );
    family(
        &mut out,
        "postdesk_tickets_open",
        "Tickets open or pending.",
        &[(String::new(), g.open_tickets as f64)],
    );
    family(
        &mut out,
        "postdesk_red_alerts_open",
        "Red alerts without a handling report.",
        &[(String::new(), g.open_alerts as f64)],
    );
    let lags: Vec<(String, f64)> = g
        .lags
        .iter()
        .map(|(w, n)| (format!("worker=\"{}\"", label(w)), *n as f64))
        .collect();
    family(
        &mut out,
        "postdesk_event_worker_lag",
        "Events an event worker has not handled yet.",
        &lags,
    );
    let t = &g.week;
    let rate = |part: i64, whole: i64| {
        if whole > 0 {
            part as f64 / whole as f64
        } else {
            0.0
        }
    };
    family(
        &mut out,
        "postdesk_tickets_created_7d",
        "Tickets created in the last seven days.",
        &[(String::new(), t.tickets_new as f64)],
    );
    family(
        &mut out,
        "postdesk_sla_breaches_7d",
        "SLA breaches of the tickets created in the last seven days.",
        &[(String::new(), t.sla_breaches as f64)],
    );
    family(
        &mut out,
        "postdesk_bot_answers_7d",
        "The bot's answers to tickets created in the last seven days.",
        &[(String::new(), t.bot_answered as f64)],
    );
    family(
        &mut out,
        "postdesk_bot_deflection_rate_7d",
        "Of those answers, the share that needed no person.",
        &[(String::new(), rate(t.bot_deflected, t.bot_answered))],
    );
    family(
        &mut out,
        "postdesk_bot_handoff_rate_7d",
        "Of those answers, the share handed to a person.",
        &[(String::new(), rate(t.bot_handoff, t.bot_answered))],
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_scrapes_and_others_need_the_token() {
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let v6: SocketAddr = "[::1]:5000".parse().unwrap();
        let far: SocketAddr = "192.0.2.7:5000".parse().unwrap();
        let token = Secret::new("a-long-metrics-token-0123");
        let none = HeaderMap::new();
        assert!(allowed(local, &none, None));
        assert!(allowed(v6, &none, Some(&token)));
        assert!(!allowed(far, &none, Some(&token)));
        let mut bearer = HeaderMap::new();
        bearer.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer a-long-metrics-token-0123"),
        );
        assert!(allowed(far, &bearer, Some(&token)));
        assert!(
            !allowed(far, &bearer, None),
            "no token configured: loopback only"
        );
        let mut wrong = HeaderMap::new();
        wrong.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer a-long-metrics-token-0124"),
        );
        assert!(!allowed(far, &wrong, Some(&token)));
        // A reverse proxy on this host: loopback, but for someone else.
        let mut proxied = HeaderMap::new();
        proxied.insert("x-forwarded-for", HeaderValue::from_static("198.51.100.1"));
        assert!(!allowed(local, &proxied, Some(&token)));
        proxied.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer a-long-metrics-token-0123"),
        );
        assert!(allowed(local, &proxied, Some(&token)));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
