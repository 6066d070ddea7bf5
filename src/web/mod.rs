//! The browser side of the HTTP listener: pages people open from links in our mail.
//! The signed rating links (`/rate/`, [`rate`]) and the Prometheus scrape (`/metrics`,
//! [`metrics`]); the JSON channel and the Telegram webhook keep their own routers in
//! their channels.
//!
//! Every page here is server-rendered HTML with a strict Content-Security-Policy, no
//! scripts and nothing loaded from elsewhere.

pub mod auth;
pub mod dashboard;
pub mod metrics;
pub mod rate;

use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};

/// A small page: a title and paragraphs of HTML already escaped by the caller.
pub(crate) fn page(status: axum::http::StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>body{{font-family:system-ui,sans-serif;max-width:34em;\
         margin:3em auto;padding:0 1em;color:#222}}button{{font-size:1.1em;padding:.4em 1.2em}}\
         textarea{{width:100%}}</style></head><body><h1>{title}</h1>{body}</body></html>\n"
    );
    let mut r = (status, Html(html)).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
