//! The client against real HTTP servers on loopback, started inside each test.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::json;

use super::*;

const NOW: i64 = 1_700_000_000;
const SECRET: &[u8] = b"relay-secret";

/// Serves `app` on 127.0.0.1 at a free port; answers its base URL.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://{addr}")
}

fn verified(headers: &HeaderMap, body: &[u8]) -> bool {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    sign::verify(SECRET, h(TIMESTAMP_HEADER), h(SIGNATURE_HEADER), body, NOW).is_ok()
}

fn delivery() -> Delivery {
    Delivery::new(42, 7, "+15550001", "+15550001", "Your order shipped.")
}

#[tokio::test]
async fn a_signed_delivery_is_delivered() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::<serde_json::Value>::new()));
    let app = Router::new()
        .route(
            "/out",
            post(
                |State(seen): State<Arc<std::sync::Mutex<Vec<serde_json::Value>>>>,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    if !verified(&headers, &body) {
                        return StatusCode::UNAUTHORIZED;
                    }
                    assert_eq!(headers["idempotency-key"], "postdesk-outbox-42");
                    assert_eq!(headers["content-type"], "application/json");
                    seen.lock()
                        .unwrap()
                        .push(serde_json::from_slice(&body).unwrap());
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state(seen.clone());
    let base = serve(app).await;
    let client = http_client().unwrap();
    let out = deliver(&client, &format!("{base}/out"), SECRET, &delivery(), NOW).await;
    assert_eq!(out, DeliveryOutcome::Delivered);
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        &[
            json!({"id": 42, "idempotency_key": "postdesk-outbox-42", "ticket_id": 7,
                 "conversation_id": "+15550001", "recipient": "+15550001",
                 "text": "Your order shipped."})
        ]
    );
    // The receiver really checks: the wrong secret is refused, and that is permanent.
    let out = deliver(&client, &format!("{base}/out"), b"wrong", &delivery(), NOW).await;
    assert!(
        matches!(&out, DeliveryOutcome::Failed(r) if r.contains("401")),
        "{out:?}"
    );
}

#[tokio::test]
async fn a_500_is_retried_with_its_retry_after_then_delivered() {
    let hits = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route(
            "/out",
            post(|State(hits): State<Arc<AtomicUsize>>| async move {
                if hits.fetch_add(1, Ordering::SeqCst) == 0 {
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        [("retry-after", "7")],
                        "database\nlocked",
                    )
                        .into_response()
                } else {
                    StatusCode::OK.into_response()
                }
            }),
        )
        .with_state(hits.clone());
    let base = serve(app).await;
    let client = http_client().unwrap();
    let url = format!("{base}/out");
    let out = deliver(&client, &url, SECRET, &delivery(), NOW).await;
    match out {
        DeliveryOutcome::Retry {
            reason,
            retry_after,
        } => {
            assert!(reason.contains("500"), "{reason}");
            assert!(reason.contains("database locked"), "{reason}");
            assert_eq!(retry_after, Some(Duration::from_secs(7)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        deliver(&client, &url, SECRET, &delivery(), NOW).await,
        DeliveryOutcome::Delivered
    );
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_400_fails_and_429_or_a_closed_port_is_retried() {
    let app = Router::new()
        .route(
            "/bad",
            post(|| async { (StatusCode::BAD_REQUEST, "recipient unknown") }),
        )
        .route(
            "/busy",
            post(|| async { (StatusCode::TOO_MANY_REQUESTS, "slow down") }),
        )
        .route(
            "/moved",
            post(|| async { (StatusCode::FOUND, [("location", "/out")]) }),
        );
    let base = serve(app).await;
    let client = http_client().unwrap();
    let out = deliver(&client, &format!("{base}/bad"), SECRET, &delivery(), NOW).await;
    assert!(
        matches!(&out, DeliveryOutcome::Failed(r) if r.contains("400") && r.contains("recipient unknown")),
        "{out:?}"
    );
    let out = deliver(&client, &format!("{base}/busy"), SECRET, &delivery(), NOW).await;
    assert!(
        matches!(
            &out,
            DeliveryOutcome::Retry {
                retry_after: None,
                ..
            }
        ),
        "{out:?}"
    );
    let out = deliver(&client, &format!("{base}/moved"), SECRET, &delivery(), NOW).await;
    assert!(
        matches!(&out, DeliveryOutcome::Failed(r) if r.contains("302")),
        "redirects are not followed: {out:?}"
    );
    // A port nobody listens on (bound, then released).
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let out = deliver(
        &client,
        &format!("http://{closed}/out"),
        SECRET,
        &delivery(),
        NOW,
    )
    .await;
    assert!(matches!(&out, DeliveryOutcome::Retry { .. }), "{out:?}");
    let out = deliver(&client, "not a url", SECRET, &delivery(), NOW).await;
    assert!(matches!(&out, DeliveryOutcome::Failed(_)), "{out:?}");
}

#[test]
fn retry_after_takes_seconds_or_a_date() {
    assert_eq!(
        parse_retry_after("120", NOW),
        Some(Duration::from_secs(120))
    );
    // 1700000000 is Tue, 14 Nov 2023 22:13:20 GMT.
    assert_eq!(
        parse_retry_after("Tue, 14 Nov 2023 22:14:20 GMT", NOW),
        Some(Duration::from_secs(60))
    );
    assert_eq!(
        parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", NOW),
        Some(Duration::ZERO)
    );
    assert_eq!(parse_retry_after("99999999", NOW), Some(MAX_RETRY_AFTER));
    assert_eq!(parse_retry_after("soon", NOW), None);
}

fn feed_message(id: &str) -> serde_json::Value {
    json!({"external_id": id, "conversation_id": "c1",
           "sender": {"id": "u1", "name": "Ann"}, "text": "Hi", "sent_at": 1_700_000_000})
}

#[tokio::test]
async fn the_feed_is_polled_with_its_cursor_and_checked() {
    let app = Router::new()
        .route(
            "/feed",
            get(|RawQuery(q): RawQuery, headers: HeaderMap| async move {
                if !verified(&headers, b"") {
                    return (StatusCode::UNAUTHORIZED, "bad signature").into_response();
                }
                let body = match q.as_deref() {
                    None => json!({"messages": [feed_message("m1"), feed_message("m2")],
                                   "cursor": "after m2"}),
                    Some("cursor=after+m2") => json!({"messages": [], "cursor": "after m2"}),
                    Some(other) => panic!("unexpected query {other:?}"),
                };
                axum::Json(body).into_response()
            }),
        )
        .route(
            "/broken",
            get(|| async {
                axum::Json(
                    json!({"messages": [{"external_id": "m1", "conversation_id": "c",
                                                "sender": {"name": "A"}, "text": ""}]}),
                )
            }),
        );
    let base = serve(app).await;
    let client = http_client().unwrap();
    let url = format!("{base}/feed");
    let page = poll_feed(&client, &url, SECRET, None, NOW).await.unwrap();
    assert_eq!(page.messages.len(), 2);
    assert_eq!(page.messages[1].external_id, "m2");
    assert_eq!(page.messages[0].sent_at.unwrap().timestamp(), NOW);
    assert_eq!(page.cursor.as_deref(), Some("after m2"));
    let page = poll_feed(&client, &url, SECRET, Some("after m2"), NOW)
        .await
        .unwrap();
    assert!(page.messages.is_empty());

    let err = poll_feed(&client, &url, b"wrong", None, NOW)
        .await
        .unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("401") && err.contains("bad signature"),
        "{err}"
    );
    let err = poll_feed(&client, &format!("{base}/broken"), SECRET, None, NOW)
        .await
        .unwrap_err();
    let err = format!("{err:#}");
    assert!(err.contains("messages[0].sender.id"), "{err}");
}
