//! The leads' dashboard on the HTTP listener: `/login`, `/logout`, `/dashboard`,
//! `/dashboard/tiles.json`, `/dashboard/events` (server-sent events) and the one script,
//! `/dashboard/app.js`, embedded in the binary: nothing is loaded from elsewhere.
//!
//! The page shows the last seven days: KPI tiles, the volume, first-response, category
//! and peak-hour charts (inline SVG from `analytics::charts`), the agent table and the
//! open red alerts. Leads see every agent's figures; any other agent sees their own
//! beside their team's. When the analytics follower moves its cursor (a ticket changed),
//! the event stream says `changed` and the script reloads the tiles and the panels
//! (charts, agent table, alerts): no page reload.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Deserialize;

use super::auth;
use crate::analytics::GroupBy;
use crate::analytics::figures::{Figures, human_duration};
use crate::analytics::report::{self, Every, Query, Report};
use crate::clock::{Clock, db_time};
use crate::config::Config;
use crate::store::Store;

const APP_JS: &str = include_str!("dashboard.js");
const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
    style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'";

struct DashState {
    store: Store,
    cfg: Arc<Config>,
    clock: Arc<dyn Clock>,
    /// Failed logins per name: five a minute.
    logins: DefaultKeyedRateLimiter<String>,
}

/// The dashboard's routes.
pub fn router(store: Store, cfg: Arc<Config>, clock: Arc<dyn Clock>) -> Router {
    let five = NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN);
    Router::new()
        .route("/login", get(login_form).post(login))
        .route("/login/link/{token}", get(link_page))
        .route("/login/link", post(link_login))
        .route("/logout", post(logout))
        .route("/dashboard", get(page))
        .route("/dashboard/app.js", get(app_js))
        .route("/dashboard/tiles.json", get(tiles_json))
        .route("/dashboard/panels", get(panels))
        .route("/dashboard/events", get(events))
        .layer(DefaultBodyLimit::max(8 * 1024))
        .with_state(Arc::new(DashState {
            store,
            cfg,
            clock,
            logins: RateLimiter::keyed(Quota::per_minute(five)),
        }))
}

fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, axum::response::Html(body)).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn secure(cfg: &Config) -> bool {
    cfg.http
        .as_ref()
        .and_then(|h| h.public_url.as_deref())
        .is_some_and(|u| u.starts_with("https://"))
}

/// The agent of the request's session, if it has a live one.
async fn viewer(st: &DashState, headers: &HeaderMap) -> Option<String> {
    let token = auth::session_token(headers)?;
    let mut conn = st.store.pool().acquire().await.ok()?;
    let now = db_time(st.clock.now());
    let agent = crate::store::web_auth::find_session(&mut conn, &auth::token_digest(&token), &now)
        .await
        .ok()??;
    // An agent removed from the configuration has no dashboard any more.
    st.cfg.agent_by_name(&agent).map(|a| a.name.clone())
}

fn login_page(message: Option<&str>) -> String {
    let note = message
        .map(|m| format!("<p role=\"alert\" style=\"color:#cf222e\">{}</p>", esc(m)))
        .unwrap_or_default();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>postdesk: log in</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head>\
         <body style=\"font-family:system-ui,sans-serif;max-width:24em;margin:4em auto;padding:0 1em\">\
         <h1>postdesk</h1>{note}<form method=\"post\" action=\"/login\">\
         <p><label>Name<br><input name=\"name\" autocomplete=\"username\" required></label></p>\
         <p><label>Password<br><input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label></p>\
         <p><button type=\"submit\">Log in</button></p></form></body></html>"
    )
}

async fn login_form() -> Response {
    html(StatusCode::OK, login_page(None))
}

#[derive(Deserialize)]
struct LoginForm {
    name: String,
    password: String,
}

async fn login(
    State(st): State<Arc<DashState>>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    if !auth::same_origin(&headers) {
        return html(
            StatusCode::FORBIDDEN,
            login_page(Some("This form must be sent from this site.")),
        );
    }
    let name = f.name.trim().to_lowercase();
    if st.logins.check_key(&name).is_err() {
        return html(
            StatusCode::TOO_MANY_REQUESTS,
            login_page(Some("Too many attempts; wait a minute.")),
        );
    }
    let agent = st.cfg.agent_by_name(&name).map(|a| a.name.clone());
    let stored = match &agent {
        Some(a) => match st.store.pool().acquire().await {
            Ok(mut c) => crate::store::web_auth::find_password(&mut c, a)
                .await
                .ok()
                .flatten(),
            Err(_) => None,
        },
        None => None,
    };
    // Unknown names and agents without a password cost the same verification.
    let hash = stored
        .clone()
        .unwrap_or_else(|| auth::decoy_hash().to_string());
    let password = f.password.clone();
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    let (Some(agent), true, true) = (agent, stored.is_some(), ok) else {
        tracing::warn!("Dashboard: a failed login as {name:?}.");
        return html(
            StatusCode::UNAUTHORIZED,
            login_page(Some("Wrong name or password.")),
        );
    };
    start_session(&st, &agent).await
}

/// Records a new session for `agent` and sends to the dashboard with its cookie.
async fn start_session(st: &DashState, agent: &str) -> Response {
    let token = auth::new_token();
    let now = st.clock.now();
    let expires = now + chrono::Duration::seconds(auth::SESSION_SECONDS);
    let saved = async {
        let mut tx = st.store.begin_write().await?;
        crate::store::web_auth::insert_session(
            &mut tx,
            &auth::token_digest(&token),
            agent,
            &db_time(now),
            &db_time(expires),
        )
        .await?;
        tx.commit().await?;
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = saved {
        tracing::error!("Dashboard: recording a session: {e:#}");
        return html(
            StatusCode::SERVICE_UNAVAILABLE,
            login_page(Some("Please try again.")),
        );
    }
    tracing::info!("Dashboard: {agent} logged in.");
    let mut r = Redirect::to("/dashboard").into_response();
    if let Ok(v) = HeaderValue::from_str(&auth::cookie(Some(&token), secure(&st.cfg))) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// A login link's page: one button, because opening the link must use nothing up (mail
/// scanners open links). The token goes on in a same-origin form.
async fn link_page(axum::extract::Path(token): axum::extract::Path<String>) -> Response {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return html(
            StatusCode::NOT_FOUND,
            login_page(Some("This is not a login link.")),
        );
    }
    html(
        StatusCode::OK,
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>postdesk: log in</title>\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head>\
             <body style=\"font-family:system-ui,sans-serif;max-width:24em;margin:4em auto;padding:0 1em\">\
             <h1>postdesk</h1><form method=\"post\" action=\"/login/link\">\
             <input type=\"hidden\" name=\"token\" value=\"{token}\">\
             <p><button type=\"submit\">Log in to the dashboard</button></p></form></body></html>"
        ),
    )
}

#[derive(Deserialize)]
struct LinkForm {
    token: String,
}

async fn link_login(
    State(st): State<Arc<DashState>>,
    headers: HeaderMap,
    Form(f): Form<LinkForm>,
) -> Response {
    if !auth::same_origin(&headers) {
        return html(
            StatusCode::FORBIDDEN,
            login_page(Some("This form must be sent from this site.")),
        );
    }
    let now = db_time(st.clock.now());
    let taken = async {
        let mut tx = st.store.begin_write().await?;
        let agent = crate::store::web_auth::take_login_link(
            &mut tx,
            &auth::token_digest(f.token.trim()),
            &now,
        )
        .await?;
        tx.commit().await?;
        anyhow::Ok(agent)
    }
    .await;
    match taken {
        // An agent removed from the configuration since gets nothing.
        Ok(Some(agent)) if st.cfg.agent_by_name(&agent).is_some() => {
            start_session(&st, &agent).await
        }
        Ok(_) => {
            tracing::warn!("Dashboard: an unknown, used or expired login link.");
            html(
                StatusCode::UNAUTHORIZED,
                login_page(Some(
                    "This link was used already or has expired; ask for a new one.",
                )),
            )
        }
        Err(e) => {
            tracing::error!("Dashboard: reading a login link: {e:#}");
            html(
                StatusCode::SERVICE_UNAVAILABLE,
                login_page(Some("Please try again.")),
            )
        }
    }
}

async fn logout(State(st): State<Arc<DashState>>, headers: HeaderMap) -> Response {
    if !auth::same_origin(&headers) {
        return StatusCode::FORBIDDEN.into_response();
    }
    if let Some(token) = auth::session_token(&headers)
        && let Ok(mut c) = st.store.pool().acquire().await
    {
        let now = db_time(st.clock.now());
        let _ =
            crate::store::web_auth::delete_session(&mut c, &auth::token_digest(&token), &now).await;
    }
    let mut r = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&auth::cookie(None, secure(&st.cfg))) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// What one viewer sees: the last seven days, the team they lead or belong to (leads
/// without a team: the whole desk), every agent for leads, themselves for agents.
async fn report_for(st: &DashState, agent: &str) -> anyhow::Result<(bool, Report)> {
    let cfg = &st.cfg;
    let me = cfg.agent_by_name(agent).context_missing()?;
    let led = cfg.teams.iter().find(|t| t.lead.as_deref() == Some(agent));
    let lead = me.lead || led.is_some();
    let team = led.map(|t| t.name.clone()).or_else(|| {
        (!lead)
            .then(|| {
                cfg.teams
                    .iter()
                    .find(|t| t.members.iter().any(|m| m == agent))
            })
            .flatten()
            .map(|t| t.name.clone())
    });
    let now = st.clock.now().timestamp();
    let q = Query {
        start: now - 7 * 86_400,
        end: now + 1,
        every: Some(Every::Day),
        team,
        agent: (!lead).then(|| agent.to_string()),
        by: Some(GroupBy::Category),
        tz: me.timezone.clone(),
    };
    let mut conn = st.store.pool().acquire().await?;
    Ok((lead, report::build(&mut conn, cfg, &q).await?))
}

trait ContextMissing<T> {
    fn context_missing(self) -> anyhow::Result<T>;
}

impl<T> ContextMissing<T> for Option<T> {
    fn context_missing(self) -> anyhow::Result<T> {
        self.ok_or_else(|| anyhow::anyhow!("the agent is not configured any more"))
    }
}

fn pct(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{:.0}%", r * 100.0))
}

/// The tiles: (id, label, value).
fn tiles(r: &Report) -> Vec<(&'static str, &'static str, String)> {
    let total = r.total.as_ref().or(r.periods.first());
    let f = total.map(|t| t.team.clone());
    let get = |pick: fn(&Figures) -> String| f.as_ref().map_or_else(|| "-".to_string(), pick);
    vec![
        ("new", "New tickets", get(|f| f.tickets_new.to_string())),
        (
            "resolved",
            "Resolved",
            get(|f| f.tickets_resolved.to_string()),
        ),
        (
            "backlog",
            "Open now",
            r.periods.last().map_or(0, |p| p.backlog_end).to_string(),
        ),
        (
            "first-response",
            "First response (median)",
            get(|f| human_duration(f.first_response_median_s)),
        ),
        (
            "resolution",
            "Resolution (median)",
            get(|f| human_duration(f.resolution_median_s)),
        ),
        ("fcr", "First-contact resolution", get(|f| pct(f.fcr_rate))),
        ("sla", "SLA compliance", get(|f| pct(f.sla_compliance))),
        (
            "satisfaction",
            "Satisfaction",
            get(|f| {
                f.satisfaction_avg
                    .map_or_else(|| "-".into(), |a| format!("{a:.1}"))
            }),
        ),
        ("alerts", "Red alerts raised", r.alerts.raised.to_string()),
    ]
}

async fn tiles_json(State(st): State<Arc<DashState>>, headers: HeaderMap) -> Response {
    let Some(agent) = viewer(&st, &headers).await else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    match report_for(&st, &agent).await {
        Ok((_, r)) => {
            let t: serde_json::Map<String, serde_json::Value> = tiles(&r)
                .into_iter()
                .map(|(id, _, v)| (id.to_string(), v.into()))
                .collect();
            let mut resp = axum::Json(serde_json::json!({
                "tiles": t, "updated": db_time(st.clock.now()),
            }))
            .into_response();
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => {
            tracing::error!("Dashboard: {e:#}");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

async fn page(State(st): State<Arc<DashState>>, headers: HeaderMap) -> Response {
    let Some(agent) = viewer(&st, &headers).await else {
        return Redirect::to("/login").into_response();
    };
    match view(&st, &agent).await {
        Ok((lead, r, alerts)) => html(StatusCode::OK, render_page(&agent, lead, &r, &alerts)),
        Err(e) => {
            tracing::error!("Dashboard: {e:#}");
            html(
                StatusCode::SERVICE_UNAVAILABLE,
                "<p>The figures could not be read; try again.</p>".into(),
            )
        }
    }
}

/// The charts, the agent table and the alerts as an HTML fragment: the script swaps it
/// in when the figures change.
async fn panels(State(st): State<Arc<DashState>>, headers: HeaderMap) -> Response {
    let Some(agent) = viewer(&st, &headers).await else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    match view(&st, &agent).await {
        Ok((lead, r, alerts)) => html(StatusCode::OK, render_panels(lead, &r, &alerts)),
        Err(e) => {
            tracing::error!("Dashboard: {e:#}");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

/// What the page shows one viewer: whether they lead, the report, the open red alerts.
async fn view(
    st: &DashState,
    agent: &str,
) -> anyhow::Result<(bool, Report, Vec<crate::store::triage::Alert>)> {
    let (lead, r) = report_for(st, agent).await?;
    let mut c = st.store.pool().acquire().await?;
    let alerts = crate::store::triage::list_open_alerts(&mut c, 50).await?;
    Ok((lead, r, alerts))
}

fn render_page(
    agent: &str,
    lead: bool,
    r: &Report,
    alerts: &[crate::store::triage::Alert],
) -> String {
    let tiles_html: String = tiles(r)
        .iter()
        .map(|(id, label, v)| {
            format!(
                "<div class=\"tile\"><div class=\"label\">{label}</div><div class=\"value\" id=\"tile-{id}\">{}</div></div>",
                esc(v)
            )
        })
        .collect();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>postdesk dashboard</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <style>body{{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1f2328}}\
         header{{background:#24292f;color:#fff;padding:.8em 1.2em;display:flex;justify-content:space-between;align-items:center}}\
         main{{padding:1em 1.2em}}.tiles{{display:grid;grid-template-columns:repeat(auto-fill,minmax(9em,1fr));gap:.8em}}\
         .tile{{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:.8em}}.label{{color:#57606a;font-size:.85em}}\
         .value{{font-size:1.6em;font-weight:600}}.charts{{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(30em,100%),1fr));gap:0 1em}}.wide{{overflow-x:auto}}\
         figure{{background:#fff;border:1px solid #d0d7de;border-radius:6px;margin:1em 0;padding:.5em}}\
         figure svg{{max-width:100%;height:auto}}table{{border-collapse:collapse;background:#fff}}td,th{{padding:.3em .8em;border-bottom:1px solid #eaeef2;text-align:right}}\
         td:first-child,th:first-child{{text-align:left}}</style>\
         <script src=\"/dashboard/app.js\" defer></script></head><body>\
         <header><span>postdesk: {team}, last 7 days ({tz})</span><form method=\"post\" action=\"/logout\">\
         <span>{agent} </span><button type=\"submit\">Log out</button></form></header><main>\
         <div class=\"tiles\">{tiles_html}</div><p style=\"color:#57606a;font-size:.85em\">Updated <span id=\"updated\">{updated}</span></p>\
         <div id=\"panels\">{panels}</div></main></body></html>",
        team = esc(r.team_name.as_deref().unwrap_or("the desk")),
        tz = esc(&r.time_zone),
        agent = esc(agent),
        updated = esc(&r.until),
        panels = render_panels(lead, r, alerts),
    )
}

/// The charts (inline SVG, each `<figure data-chart="id">`), the agent table and the open
/// red alerts.
fn render_panels(lead: bool, r: &Report, alerts: &[crate::store::triage::Alert]) -> String {
    let total = r.total.as_ref().or(r.periods.first());
    let rows: String = total
        .map(|t| {
            t.agents
                .iter()
                .map(|(n, f)| {
                    format!(
                        "<tr data-agent=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(n),
                        esc(n),
                        f.tickets_new,
                        f.tickets_resolved,
                        esc(&human_duration(f.first_response_median_s)),
                        esc(&human_duration(f.resolution_median_s)),
                        pct(f.fcr_rate),
                        pct(f.reopen_rate)
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let charts: String = crate::analytics::digest::chart_sources(r)
        .unwrap_or_default()
        .iter()
        .map(|(id, title, svg)| {
            format!(
                "<figure data-chart=\"{id}\"><figcaption>{}</figcaption>{svg}</figure>",
                esc(title)
            )
        })
        .collect();
    let alert_rows: String = alerts
        .iter()
        .map(|a| {
            format!(
                "<li>#{} {} (raised {}, report due {})</li>",
                a.ticket_id,
                esc(&a.reason),
                esc(&a.raised_at),
                esc(&a.report_due)
            )
        })
        .collect();
    let alert_rows = if alert_rows.is_empty() {
        "<li class=\"none\">None open.</li>".to_string()
    } else {
        alert_rows
    };
    let who = if lead {
        "all agents"
    } else {
        "you beside your team"
    };
    format!(
        "<div class=\"charts\">{charts}</div><h2>Agents ({who})</h2><div class=\"wide\"><table id=\"agents\"><tr><th>Agent</th><th>New</th><th>Resolved</th><th>First response</th>\
         <th>Resolution</th><th>FCR</th><th>Reopen</th></tr>{rows}</table></div>\
         <h2>Open red alerts</h2><ul id=\"alerts\">{alert_rows}</ul>"
    )
}

async fn app_js() -> Response {
    let mut r = (StatusCode::OK, APP_JS).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// `changed` whenever the analytics follower has moved on, checked every second; `ended`
/// (and the end of the stream) once the session is gone: logged out, its password reset,
/// `postdesk agent logout`, expired.
async fn events(State(st): State<Arc<DashState>>, headers: HeaderMap) -> Response {
    if viewer(&st, &headers).await.is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let digest = auth::session_token(&headers)
        .map(|t| auth::token_digest(&t))
        .unwrap_or_default();
    let start = (st, digest, -1i64, false);
    let stream = futures::stream::unfold(start, |(st, digest, last, done)| async move {
        if done {
            return None;
        }
        loop {
            let (alive, now) = match st.store.pool().acquire().await {
                Ok(mut c) => {
                    let at = db_time(st.clock.now());
                    let alive = crate::store::web_auth::find_session(&mut c, &digest, &at)
                        .await
                        .map_or(true, |s| s.is_some());
                    let cursor =
                        crate::store::events::cursor(&mut c, crate::analytics::follower::FOLLOWER)
                            .await
                            .unwrap_or(last);
                    (alive, cursor)
                }
                Err(_) => (true, last),
            };
            if !alive {
                // (An event without data is never dispatched by browsers.)
                let ev = Event::default().event("ended").data("session ended");
                return Some((
                    Ok::<_, std::convert::Infallible>(ev),
                    (st, digest, last, true),
                ));
            }
            if now != last {
                let ev = Event::default().event("changed").data(now.to_string());
                return Some((Ok(ev), (st, digest, now, false)));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
