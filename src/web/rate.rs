//! `/rate/<ticket>/<score>/<tag>`: the signed rating links of resolution mails
//! (`analytics::rating`).
//!
//! Opening the link (GET) shows a page with the score and one button; only the button
//! (POST) records the rating. Mail scanners and link previews fetch every URL in a mail:
//! a rating recorded on GET would be the scanner's, not the customer's. A link that is
//! not ours gets one "not valid" page, whatever was wrong with it.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::page;
use crate::analytics::rating;
use crate::clock::{Clock, db_time};
use crate::domain::EventKind;
use crate::store::Store;
use crate::store::events::{self, NewEvent};

/// The longest comment kept with a rating, in characters.
pub const MAX_COMMENT_CHARS: usize = 2_000;

struct RateState {
    store: Store,
    clock: Arc<dyn Clock>,
}

/// The rating routes.
pub fn router(store: Store, clock: Arc<dyn Clock>) -> Router {
    Router::new()
        .route("/rate/{ticket}/{score}/{tag}", get(show).post(record))
        .layer(DefaultBodyLimit::max(16 * 1024))
        .with_state(Arc::new(RateState { store, clock }))
}

fn invalid() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "This rating link is not valid",
        "<p>Please use the link in our mail as it came, or simply reply to the mail with a \
         number from 1 to 5.</p>",
    )
}

fn failed() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Please try again",
        "<p>We could not record your rating just now. Please try again in a minute.</p>",
    )
}

/// Whether the link is ours, and the ticket still exists.
async fn check(st: &RateState, ticket: i64, score: i64, tag: &str) -> anyhow::Result<bool> {
    let mut conn = st.store.pool().acquire().await?;
    let Some(key) = crate::store::find_setting(&mut conn, rating::KEY_SETTING).await? else {
        return Ok(false);
    };
    let key = hex::decode(key).unwrap_or_default();
    if !rating::verify(&key, ticket, score, tag) {
        return Ok(false);
    }
    Ok(crate::store::tickets::find_ticket(&mut conn, ticket)
        .await?
        .is_some())
}

async fn show(
    State(st): State<Arc<RateState>>,
    Path((ticket, score, tag)): Path<(i64, i64, String)>,
) -> Response {
    match check(&st, ticket, score, &tag).await {
        Ok(true) => page(
            StatusCode::OK,
            &format!("Rate your request #{ticket}"),
            &format!(
                "<p>You chose <strong>{score} of 5</strong>.</p>\
                 <form method=\"post\"><p><label>Anything to add? (optional)<br>\
                 <textarea name=\"comment\" rows=\"4\" maxlength=\"{MAX_COMMENT_CHARS}\"></textarea>\
                 </label></p><p><button type=\"submit\">Send my rating</button></p></form>"
            ),
        ),
        Ok(false) => invalid(),
        Err(e) => {
            tracing::error!("Rating link for ticket #{ticket}: {e:#}");
            failed()
        }
    }
}

#[derive(Debug, Deserialize)]
struct RateForm {
    #[serde(default)]
    comment: String,
}

async fn record(
    State(st): State<Arc<RateState>>,
    Path((ticket, score, tag)): Path<(i64, i64, String)>,
    form: Result<Form<RateForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    match check(&st, ticket, score, &tag).await {
        Ok(true) => {}
        Ok(false) => return invalid(),
        Err(e) => {
            tracing::error!("Rating link for ticket #{ticket}: {e:#}");
            return failed();
        }
    }
    // A body that is not a form (a bare POST) is a rating without a comment.
    let comment: String = form
        .map(|f| f.0.comment)
        .unwrap_or_default()
        .trim()
        .chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .take(MAX_COMMENT_CHARS)
        .collect();
    let now = db_time(st.clock.now());
    let saved = async {
        let mut tx = st.store.begin_write().await?;
        crate::store::analytics::put_ratings(&mut tx, &[(ticket, score, comment)], "link", &now)
            .await?;
        events::append(
            &mut tx,
            NewEvent::new(
                EventKind::TicketRated,
                ticket,
                serde_json::json!({"score": score, "source": "link"}),
            ),
            &now,
        )
        .await?;
        tx.commit().await?;
        anyhow::Ok(())
    }
    .await;
    match saved {
        Ok(()) => {
            tracing::info!("Ticket #{ticket}: the customer rated it {score} of 5 by link");
            page(
                StatusCode::OK,
                "Thank you",
                &format!("<p>Your rating of {score} of 5 for request #{ticket} is recorded.</p>"),
            )
        }
        Err(e) => {
            tracing::error!("Ticket #{ticket}: recording a rating: {e:#}");
            failed()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::store::tickets::{NewTicket, insert_ticket, upsert_customer};
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn body(r: Response) -> String {
        let b = http_body_util::BodyExt::collect(r.into_body())
            .await
            .unwrap();
        String::from_utf8(b.to_bytes().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_link_shows_a_button_and_only_the_button_records() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("r.db")).await.unwrap();
        let mut c = store.pool().acquire().await.unwrap();
        let now = "2026-12-01T00:00:00.000000Z";
        let customer = upsert_customer(&mut c, "ann@customer.org", None, now)
            .await
            .unwrap();
        let ticket = insert_ticket(
            &mut c,
            &NewTicket {
                subject: "Help",
                subject_key: "help",
                customer_id: customer,
                token: "0123456789abcdef0123456789abcdef",
                linked_ticket_id: None,
                now,
            },
        )
        .await
        .unwrap();
        let key = crate::store::analytics::rating_key(&mut c).await.unwrap();
        assert_eq!(
            key,
            crate::store::analytics::rating_key(&mut c).await.unwrap(),
            "made once"
        );
        let app = router(store.clone(), Arc::new(SystemClock));
        let url = |score: i64, tag: &str| format!("/rate/{ticket}/{score}/{tag}");
        let good = url(4, &rating::tag(&key, ticket, 4));

        // A scanner's GET records nothing.
        let r = app
            .clone()
            .oneshot(Request::get(&good).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            r.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'none'")
        );
        let text = body(r).await;
        assert!(
            text.contains("4 of 5") && text.contains("<form method=\"post\""),
            "{text}"
        );
        assert!(
            crate::store::analytics::find_rating(&mut c, ticket)
                .await
                .unwrap()
                .is_none()
        );

        let r = app
            .clone()
            .oneshot(
                Request::post(&good)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(Body::from("comment=Quick+and+kind%0Athanks"))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let (score, source, comment, _) = crate::store::analytics::find_rating(&mut c, ticket)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((score, source.as_str()), (4, "link"));
        assert_eq!(comment.as_deref(), Some("Quick and kind\nthanks"));
        let rated = events::list_after(&mut c, 0, 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "ticket_rated" && e.ticket_id == Some(ticket))
            .count();
        assert_eq!(rated, 1);

        // Links that are not ours: another score, ticket, a truncated tag, score 6.
        for bad in [
            url(5, &rating::tag(&key, ticket, 4)),
            format!("/rate/{}/4/{}", ticket + 1, rating::tag(&key, ticket, 4)),
            url(4, &rating::tag(&key, ticket, 4)[..20]),
            url(6, &rating::tag(&key, ticket, 6)),
            format!("/rate/{ticket}/x/y"),
        ] {
            for post in [false, true] {
                let req = if post {
                    Request::post(&bad)
                } else {
                    Request::get(&bad)
                };
                let r = app
                    .clone()
                    .oneshot(req.body(Body::empty()).unwrap())
                    .await
                    .unwrap();
                assert!(
                    r.status() == StatusCode::NOT_FOUND || r.status() == StatusCode::BAD_REQUEST,
                    "{bad}: {}",
                    r.status()
                );
            }
        }
        let (score, ..) = crate::store::analytics::find_rating(&mut c, ticket)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(score, 4, "nothing forged changed it");
    }
}
