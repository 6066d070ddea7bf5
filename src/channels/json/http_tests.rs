//! The endpoints against an in-memory backend: every status, in the documented order.

use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::{Method, Request};
use chrono::TimeZone;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use super::*;
use crate::clock::FixedClock;

const NOW: i64 = 1_700_000_000;
const SECRET: &[u8] = b"sms-secret";

#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<String>>,
    fail: AtomicBool,
    db_down: AtomicBool,
}

impl Fake {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
    fn record(&self, call: String) -> anyhow::Result<()> {
        self.calls.lock().unwrap().push(call);
        if self.fail.load(Ordering::SeqCst) {
            anyhow::bail!("disk on fire at /var/lib/postdesk");
        }
        Ok(())
    }
}

impl JsonBackend for Fake {
    fn push<'a>(
        &'a self,
        account: &'a str,
        messages: Vec<JsonMessage>,
    ) -> BoxFuture<'a, anyhow::Result<Vec<PushResult>>> {
        Box::pin(async move {
            self.record(format!("push {account} {}", messages.len()))?;
            Ok(messages
                .into_iter()
                .enumerate()
                .map(|(i, m)| PushResult {
                    duplicate: m.external_id == "old",
                    external_id: m.external_id,
                    ticket_id: Some(10 + i as i64),
                })
                .collect())
        })
    }
    fn outbox_after<'a>(
        &'a self,
        account: &'a str,
        after: i64,
        limit: usize,
    ) -> BoxFuture<'a, anyhow::Result<Vec<Delivery>>> {
        Box::pin(async move {
            self.record(format!("outbox {account} {after} {limit}"))?;
            Ok(vec![Delivery::new(after + 1, 7, "+1555", "+1555", "Hi")])
        })
    }
    fn ack<'a>(&'a self, account: &'a str, up_to: i64) -> BoxFuture<'a, anyhow::Result<u64>> {
        Box::pin(async move {
            self.record(format!("ack {account} {up_to}"))?;
            Ok(3)
        })
    }
    fn health(&self) -> BoxFuture<'_, Health> {
        Box::pin(async move {
            Health {
                database_ok: !self.db_down.load(Ordering::SeqCst),
                sources: BTreeMap::from([(
                    "support/INBOX".to_string(),
                    Utc.timestamp_opt(NOW, 0).single(),
                )]),
            }
        })
    }
}

fn account(name: &str, secret: &[u8], max_body_mb: usize) -> JsonChannelConfig {
    JsonChannelConfig {
        account: name.to_string(),
        secret: Secret::new(String::from_utf8(secret.to_vec()).unwrap()),
        deliver_url: None,
        feed_url: None,
        max_body_bytes: max_body_mb * 1024 * 1024,
        poll_interval: std::time::Duration::from_secs(5),
    }
}

fn app(fake: &Arc<Fake>) -> Router {
    router_with_clock(
        fake.clone(),
        &[account("sms", SECRET, 10), account("tiny", b"t", 1)],
        Arc::new(FixedClock(Utc.timestamp_opt(NOW, 0).unwrap())),
    )
}

fn signed(method: Method, uri: &str, body: &[u8], ts: i64, secret: &[u8]) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .header(TIMESTAMP_HEADER, ts.to_string())
        .header(SIGNATURE_HEADER, sign::sign(secret, ts, body))
        .body(Body::from(body.to_vec()))
        .unwrap()
}

fn push_body() -> Vec<u8> {
    serde_json::to_vec(&json!({"messages": [
        {"external_id": "m1", "conversation_id": "+1555", "sender": {"id": "+1555", "name": "Ann"},
         "text": "Hello"},
        {"external_id": "old", "conversation_id": "+1555", "sender": {"id": "+1555", "name": "Ann"},
         "text": "Again"},
    ]}))
    .unwrap()
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, Value) {
    let r = app.clone().oneshot(req).await.unwrap();
    let status = r.status();
    let bytes = r.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("not JSON ({status}): {:?}", String::from_utf8_lossy(&bytes)));
    (status, v)
}

#[tokio::test]
async fn a_signed_push_is_stored_and_answered_per_message() {
    let fake = Arc::new(Fake::default());
    let app = app(&fake);
    let req = signed(
        Method::POST,
        "/channels/json/sms/messages",
        &push_body(),
        NOW,
        SECRET,
    );
    let (status, v) = send(&app, req).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!({"results": [
            {"external_id": "m1", "ticket_id": 10, "duplicate": false},
            {"external_id": "old", "ticket_id": 11, "duplicate": true},
        ]})
    );
    assert_eq!(fake.calls(), vec!["push sms 2"]);
}

#[tokio::test]
async fn an_unknown_account_is_404_before_anything_else() {
    let fake = Arc::new(Fake::default());
    let app = app(&fake);
    // Unsigned and oversized too: the account is checked first.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/channels/json/nobody/messages")
        .header("content-length", "999999999")
        .body(Body::empty())
        .unwrap();
    let (status, v) = send(&app, req).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        v,
        json!({"error": "unknown account \"nobody\"", "field": null})
    );
    let (status, _) = send(
        &app,
        signed(
            Method::GET,
            "/channels/json/nobody/outbox",
            b"",
            NOW,
            SECRET,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, v) = send(
        &app,
        Request::get("/no/such/thing").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(v["error"], "no such endpoint");
    let (status, v) = send(
        &app,
        Request::get("/channels/json/sms/messages")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(v["error"].is_string());
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn a_body_over_the_accounts_limit_is_413_without_calling_the_backend() {
    let fake = Arc::new(Fake::default());
    let app = app(&fake);
    let big = vec![b' '; 10 * 1024 * 1024 + 1];
    // Declared: refused from the header. Signed correctly, so only the size can refuse it.
    let req = signed(
        Method::POST,
        "/channels/json/sms/messages",
        &big,
        NOW,
        SECRET,
    );
    let mut req = req;
    req.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(big.len()));
    let (status, v) = send(&app, req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(v["error"].as_str().unwrap().contains("10485760"), "{v}");
    // Undeclared (streamed): cut off at the limit.
    let chunks: Vec<Result<Bytes, std::io::Error>> = big
        .chunks(64 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let req = Request::post("/channels/json/sms/messages")
        .header(TIMESTAMP_HEADER, NOW.to_string())
        .header(SIGNATURE_HEADER, sign::sign(SECRET, NOW, &big))
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap();
    let (status, _) = send(&app, req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(fake.calls().is_empty());
    // The limit is the account's: 1 MiB + 1 is too much for "tiny", fine for "sms".
    let body = vec![b' '; 1024 * 1024 + 1];
    let (status, _) = send(
        &app,
        signed(
            Method::POST,
            "/channels/json/tiny/messages",
            &body,
            NOW,
            b"t",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _) = send(
        &app,
        signed(
            Method::POST,
            "/channels/json/sms/messages",
            &body,
            NOW,
            SECRET,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "past the size check");
}

#[tokio::test]
async fn a_missing_or_wrong_signature_is_401() {
    let fake = Arc::new(Fake::default());
    let app = app(&fake);
    let body = push_body();
    let unsigned = Request::post("/channels/json/sms/messages")
        .body(Body::from(body.clone()))
        .unwrap();
    let (status, v) = send(&app, unsigned).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("X-Postdesk-Timestamp header is missing"),
        "{v}"
    );
    let wrong_key = signed(
        Method::POST,
        "/channels/json/sms/messages",
        &body,
        NOW,
        b"t",
    );
    let (status, v) = send(&app, wrong_key).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        v["error"].as_str().unwrap().contains("does not match"),
        "{v}"
    );
    let stale = signed(
        Method::POST,
        "/channels/json/sms/messages",
        &body,
        NOW - 301,
        SECRET,
    );
    let (status, v) = send(&app, stale).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        v["error"].as_str().unwrap().contains("from our clock"),
        "{v}"
    );
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn a_replayed_request_is_409_and_a_resigned_retry_passes() {
    let fake = Arc::new(Fake::default());
    let app = app(&fake);
    let body = push_body();
    let uri = "/channels/json/sms/messages";
    let (status, _) = send(&app, signed(Method::POST, uri, &body, NOW, SECRET)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, v) = send(&app, signed(Method::POST, uri, &body, NOW, SECRET)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        v["error"].as_str().unwrap().contains("new timestamp"),
        "{v}"
    );
    let (status, _) = send(&app, signed(Method::POST, uri, &body, NOW - 1, SECRET)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fake.calls(), vec!["push sms 2", "push sms 2"]);
}

#[tokio::test]
async fn malformed_bodies_are_400_and_invalid_ones_422_with_the_field() {
    let fake = Arc::new(Fake::default());
    let app = app(&fake);
    let uri = "/channels/json/sms/messages";
    let cases: Vec<(Vec<u8>, StatusCode, Value)> = vec![
        (b"\xff\xfe".to_vec(), StatusCode::BAD_REQUEST, Value::Null),
        (b"{\"messages\": [".to_vec(), StatusCode::BAD_REQUEST, Value::Null),
        (
            br#"{"messages": [{"external_id": "m", "conversation_id": "c", "sender": {"name": "A"}, "text": ""}]}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            json!("messages[0].sender.id"),
        ),
        (
            br#"{"messages": []}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!("messages"),
        ),
        (
            br#"{"messages": [{"external_id": "", "conversation_id": "c", "sender": {"id": "s", "name": "A"}, "text": ""}]}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!("messages[0].external_id"),
        ),
    ];
    for (i, (body, want, field)) in cases.into_iter().enumerate() {
        let (status, v) = send(
            &app,
            signed(Method::POST, uri, &body, NOW - i as i64, SECRET),
        )
        .await;
        assert_eq!(status, want, "{v}");
        assert_eq!(v["field"], field, "{v}");
        assert!(v["error"].is_string(), "{v}");
    }
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn a_backend_failure_is_a_generic_500_and_the_same_request_may_be_retried() {
    let fake = Arc::new(Fake::default());
    let app = app(&fake);
    fake.fail.store(true, Ordering::SeqCst);
    let body = push_body();
    let uri = "/channels/json/sms/messages";
    let (status, v) = send(&app, signed(Method::POST, uri, &body, NOW, SECRET)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!v.to_string().contains("disk on fire"), "{v}");
    fake.fail.store(false, Ordering::SeqCst);
    let (status, _) = send(&app, signed(Method::POST, uri, &body, NOW, SECRET)).await;
    assert_eq!(status, StatusCode::OK, "not taken for a replay");
}

#[tokio::test]
async fn the_outbox_lists_after_a_cursor_and_acks() {
    let fake = Arc::new(Fake::default());
    let app = app(&fake);
    let (status, v) = send(
        &app,
        signed(
            Method::GET,
            "/channels/json/sms/outbox?after=41",
            b"",
            NOW,
            SECRET,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["deliveries"][0]["id"], 42);
    assert_eq!(v["deliveries"][0]["idempotency_key"], "postdesk-outbox-42");
    let (status, _) = send(
        &app,
        signed(
            Method::GET,
            "/channels/json/sms/outbox",
            b"",
            NOW - 1,
            SECRET,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, v) = send(
        &app,
        signed(
            Method::GET,
            "/channels/json/sms/outbox?after=x",
            b"",
            NOW - 2,
            SECRET,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["field"], "after");
    let (status, v) = send(
        &app,
        signed(
            Method::GET,
            "/channels/json/sms/outbox?limit=1000",
            b"",
            NOW - 3,
            SECRET,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["field"], "limit");
    let (status, _) = send(
        &app,
        Request::get("/channels/json/sms/outbox")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let ack_body = br#"{"up_to": 42}"#;
    let (status, v) = send(
        &app,
        signed(
            Method::POST,
            "/channels/json/sms/outbox/ack",
            ack_body,
            NOW,
            SECRET,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"acknowledged": 3}));
    let (status, v) = send(
        &app,
        signed(
            Method::POST,
            "/channels/json/sms/outbox/ack",
            br#"{"upto": 42}"#,
            NOW,
            SECRET,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["field"], "upto");
    assert_eq!(
        fake.calls(),
        vec!["outbox sms 41 100", "outbox sms 0 100", "ack sms 42"]
    );
}

#[tokio::test]
async fn healthz_is_200_or_503_with_json() {
    let fake = Arc::new(Fake::default());
    let app = app(&fake);
    let get = || Request::get("/healthz").body(Body::empty()).unwrap();
    let (status, v) = send(&app, get()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        v,
        json!({"status": "ok", "database_ok": true,
               "sources": {"support/INBOX": "2023-11-14T22:13:20Z"}})
    );
    fake.db_down.store(true, Ordering::SeqCst);
    let (status, v) = send(&app, get()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(v["database_ok"], false);
}

#[test]
fn the_replay_cache_forgets_expired_signatures_and_refuses_when_full() {
    let mut c = ReplayCache::new(2);
    assert_eq!(c.insert("a", "s1", NOW, NOW), Ok(()));
    assert_eq!(c.insert("a", "s1", NOW, NOW + 10), Err(Replay::Seen));
    assert_eq!(c.insert("b", "s1", NOW, NOW), Ok(()), "per account");
    assert_eq!(c.insert("a", "s2", NOW, NOW), Err(Replay::Full));
    // Past the window the old ones go (their timestamps would not verify any more).
    assert_eq!(c.insert("a", "s2", NOW + 1, NOW + 301), Ok(()));
    assert_eq!(c.seen.len(), 1);
    c.forget("a", "s2");
    assert!(c.seen.is_empty());
}
