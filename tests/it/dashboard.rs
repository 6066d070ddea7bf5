//! Issue 16: the dashboard with the real daemon, over plain HTTP (passwords set by
//! `postdesk agent password`, the login form, the session cookie, tiles that change after
//! a new mail, refusals, one-time login links, what a non-lead sees) and in a real
//! headless Chromium (log in through the form, the tiles and charts with seeded data,
//! tiles, a chart and the red alerts changing after a new mail without a reload, an
//! admin's logout reaching the open page, refusals without a session, a phone-width
//! layout, screenshots kept as artifacts).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::agents::{AGENT_CONFIG, alice_reply, open_ticket, second_ticket, token_of};
use crate::harness::{Desk, Opts, eventually, mail};
use crate::support::chromium::{Browser, Page};
use crate::support::relay::{self, free_port};

fn set_password(desk: &Desk, name: &str, password: &str) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .arg("--config")
        .arg(desk.dir.path().join("postdesk.toml"))
        .args(["agent", "password", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    c.wait_with_output().unwrap()
}

fn login(port: u16, name: &str, password: &str) -> relay::Reply {
    let body = format!("name={name}&password={password}");
    relay::request(
        port,
        "POST",
        "/login",
        &[
            ("Content-Type", "application/x-www-form-urlencoded".into()),
            ("Origin", format!("http://127.0.0.1:{port}")),
        ],
        body.as_bytes(),
    )
    .unwrap()
}

#[test]
fn a_lead_logs_in_and_the_tiles_follow_new_mail() {
    let port = free_port();
    let extra = format!("{AGENT_CONFIG}\n[http]\nlisten = \"127.0.0.1:{port}\"\n");
    let desk = Desk::with(Opts {
        autoreply: false,
        notify: false,
        extra: Box::leak(extra.into_boxed_str()),
        ..Opts::default()
    });
    let short = set_password(&desk, "alice", "short");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12"));
    let ok = set_password(&desk, "alice", "a-long-dashboard-password");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        !set_password(&desk, "nobody", "a-long-dashboard-password")
            .status
            .success()
    );

    let d = desk.spawn_daemon_http(port, &[]);
    // Without a session: the page sends to the login form, the data is refused.
    let r = relay::request(port, "GET", "/dashboard", &[], b"").unwrap();
    assert_eq!(r.status, 303);
    assert_eq!(
        relay::request(port, "GET", "/dashboard/tiles.json", &[], b"")
            .unwrap()
            .status,
        401
    );
    assert_eq!(
        relay::request(port, "GET", "/dashboard/events", &[], b"")
            .unwrap()
            .status,
        401
    );
    // Wrong password, unknown name, a form from another site.
    assert_eq!(login(port, "alice", "wrong-password-000").status, 401);
    assert_eq!(
        login(port, "bob", "a-long-dashboard-password").status,
        401,
        "bob has no password"
    );
    let forged = relay::request(
        port,
        "POST",
        "/login",
        &[
            ("Content-Type", "application/x-www-form-urlencoded".into()),
            ("Origin", "https://evil.example".into()),
        ],
        b"name=alice&password=a-long-dashboard-password",
    )
    .unwrap();
    assert_eq!(forged.status, 403);

    let r = login(port, "alice", "a-long-dashboard-password");
    assert_eq!(r.status, 303, "{}", r.body);
    let set_cookie = r.header("set-cookie").unwrap_or_default().to_string();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let with = [("Cookie", cookie.clone())];
    let page = relay::request(port, "GET", "/dashboard", &with, b"").unwrap();
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("id=\"tile-new\"") && page.body.contains("<svg"),
        "{}",
        page.body
    );
    let tiles = |d: &str| -> serde_json::Value {
        let r = relay::request(port, "GET", "/dashboard/tiles.json", &with, b"").unwrap();
        assert_eq!(r.status, 200, "{d}");
        serde_json::from_str(&r.body).unwrap()
    };
    assert_eq!(tiles("before")["tiles"]["new"], "0");
    desk.deliver(&mail(
        "Ann <ann@customer.org>",
        "support@example.com",
        "Help",
        "d-1@customer.org",
        "",
        "Broken.",
    ));
    assert!(
        eventually(Duration::from_secs(30), || tiles("after")["tiles"]["new"]
            == "1"),
        "the tile never moved"
    );

    // A one-time login link for bob, who has no password. Opening it uses nothing up;
    // its button (a same-origin POST) logs him in, once.
    assert!(
        !desk
            .cmd(&["agent", "link", "bob", "--minutes", "0"])
            .status
            .success()
    );
    let out = desk.cmd(&["agent", "link", "bob"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let prefix = format!("http://127.0.0.1:{port}/login/link/");
    let token = url
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{url}"))
        .to_string();
    assert_eq!(token.len(), 64);
    for _ in 0..2 {
        let page = relay::request(port, "GET", &format!("/login/link/{token}"), &[], b"").unwrap();
        assert_eq!(page.status, 200);
        assert!(
            page.body.contains(&format!("value=\"{token}\"")),
            "{}",
            page.body
        );
        assert!(page.header("set-cookie").is_none());
    }
    let by_link = |origin: &str| {
        relay::request(
            port,
            "POST",
            "/login/link",
            &[
                ("Content-Type", "application/x-www-form-urlencoded".into()),
                ("Origin", origin.to_string()),
            ],
            format!("token={token}").as_bytes(),
        )
        .unwrap()
    };
    assert_eq!(by_link("https://evil.example").status, 403);
    let r = by_link(&format!("http://127.0.0.1:{port}"));
    assert_eq!(r.status, 303, "{}", r.body);
    let bob = [(
        "Cookie",
        r.header("set-cookie")
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap()
            .to_string(),
    )];
    assert_eq!(
        by_link(&format!("http://127.0.0.1:{port}")).status,
        401,
        "a link works once"
    );
    // bob leads nobody: he sees his own row beside the team's figures, not alice's.
    let page = relay::request(port, "GET", "/dashboard", &bob, b"").unwrap();
    assert_eq!(page.status, 200);
    assert!(page.body.contains("data-agent=\"bob\""), "{}", page.body);
    assert!(!page.body.contains("data-agent=\"alice\""), "{}", page.body);
    assert!(page.body.contains("you beside your team"));
    let bob_tiles = relay::request(port, "GET", "/dashboard/tiles.json", &bob, b"").unwrap();
    assert_eq!(bob_tiles.status, 200);
    drop(d);
}

/// Fills in and sends the login form the page shows, and waits for the dashboard.
fn log_in(page: &mut Page, d: &crate::harness::RunningDaemon) {
    page.eval(
        "document.querySelector('input[name=name]').value = 'alice';\
         document.querySelector('input[name=password]').value = 'a-long-dashboard-password';\
         document.querySelector('form button[type=submit]').click(); true",
    );
    assert!(
        page.wait_for(
            "location.pathname === '/dashboard' && document.readyState === 'complete' \
             && document.getElementById('tile-new') !== null",
            Duration::from_secs(30)
        ),
        "no dashboard after logging in: {} {}",
        page.eval("location.href + ' ' + document.body.innerText"),
        d.log_text()
    );
}

/// The darkest heatmap cell (the busiest hour) and the lightest (no arrivals), as
/// `analytics::charts::heatmap_svg` fills them.
const BUSIEST: &str = "#1E40AF";
const EMPTY: &str = "#EFF6FF";

#[test]
fn a_lead_watches_the_dashboard_in_chromium() {
    let port = free_port();
    // alice leads (the key lands in her [[agent]] table, which the harness opens last).
    let extra = format!("lead = true\n{AGENT_CONFIG}\n[http]\nlisten = \"127.0.0.1:{port}\"\n");
    let desk = Desk::with(Opts {
        autoreply: false,
        notify: true,
        extra: Box::leak(extra.into_boxed_str()),
        ..Opts::default()
    });
    let ok = set_password(&desk, "alice", "a-long-dashboard-password");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    // Seeded history: two tickets; alice answers and resolves the first after a moment.
    let (id, n) = open_ticket(&desk);
    second_ticket(&desk);
    std::thread::sleep(Duration::from_millis(1100));
    desk.deliver(&alice_reply(
        &token_of(&n),
        id,
        &n,
        "alice-1@example.com",
        "#resolve\nWe refunded the second charge.",
    ));
    desk.run_once();
    assert_eq!(desk.show(id)["status"], "resolved");

    let d = desk.spawn_daemon_http(port, &[]);
    let base = format!("http://127.0.0.1:{port}");
    let browser = Browser::start();
    let mut page = browser.page();
    page.call("Log.enable", serde_json::json!({}));

    // 4. Refused without a session: the page sends to the form, the data answers 401.
    page.goto(&format!("{base}/dashboard"));
    assert_eq!(page.path(), "/login", "{}", d.log_text());
    let status = |page: &mut Page, path: &str| {
        page.eval(&format!(
            "fetch('{path}', {{credentials: 'same-origin'}}).then(r => r.status)"
        ))
    };
    assert_eq!(status(&mut page, "/dashboard/tiles.json"), 401);
    assert_eq!(status(&mut page, "/dashboard/panels"), 401);

    // 1. Log in through the form, as a person would: the browser sends its own Origin.
    log_in(&mut page, &d);
    // The session cookie is out of the page's reach, and Strict.
    assert_eq!(
        page.eval("document.cookie.includes('pd_session')"),
        false,
        "the session cookie must be HttpOnly"
    );
    let cookies = page.call("Network.getCookies", serde_json::json!({ "urls": [base] }));
    let session = cookies["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "pd_session")
        .cloned()
        .unwrap_or_else(|| panic!("no session cookie: {cookies}"));
    assert_eq!(session["httpOnly"], true);
    assert_eq!(session["sameSite"], "Strict");

    // 2. The tiles and charts show the seeded history.
    let tile = |page: &mut Page, id: &str| {
        page.eval(&format!("document.getElementById('tile-{id}').textContent"))
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        page.wait_for(
            "document.getElementById('tile-new').textContent === '2' \
             && document.getElementById('tile-resolved').textContent === '1'",
            Duration::from_secs(30)
        ),
        "tile-new shows {:?}",
        tile(&mut page, "new")
    );
    assert_eq!(tile(&mut page, "resolved"), "1");
    assert_eq!(tile(&mut page, "backlog"), "1");
    assert_eq!(tile(&mut page, "fcr"), "100%");
    assert_ne!(tile(&mut page, "first-response"), "-");
    let charts = page.eval(
        "[...document.querySelectorAll('figure[data-chart]')].map(f => f.dataset.chart + ':' + \
         f.querySelectorAll('svg').length)",
    );
    assert_eq!(
        charts,
        serde_json::json!([
            "volume:1",
            "first-response:1",
            "categories:1",
            "peak-hours:1"
        ])
    );
    // The peak-hour heatmap: the hour both tickets came in is the darkest cell, the
    // others are empty.
    let cells = |page: &mut Page, fill: &str| {
        page.eval(&format!(
            "[...document.querySelectorAll('figure[data-chart=peak-hours] rect')]\
             .filter(r => (r.getAttribute('fill') || '').toUpperCase() === '{fill}').length"
        ))
        .as_i64()
        .unwrap_or(-1)
    };
    let busiest = cells(&mut page, BUSIEST);
    assert!((1..=2).contains(&busiest), "{busiest} busiest cells");
    assert_eq!(cells(&mut page, EMPTY) + busiest, 7 * 24);
    // The agent table: alice (a lead sees every agent) resolved one.
    assert_eq!(
        page.eval(
            "document.querySelector('#agents tr[data-agent=alice] td:nth-child(3)').textContent"
        ),
        "1"
    );

    // 3. A new ticket by mail: the tile and the volume chart change in place.
    page.eval("window.stayed = 'the same document'; true");
    let volume_before = page.eval("document.querySelector('figure[data-chart=volume]').innerHTML");
    // A stolen account: a new ticket and a red alert.
    assert_eq!(
        page.eval("document.querySelectorAll('#alerts li.none').length"),
        1
    );
    desk.deliver(&mail(
        "Kim <kim@customer.org>",
        "support@example.com",
        "Cannot log in",
        "kim-1@customer.org",
        "",
        "My account was hacked and someone changed my password. Please help!",
    ));
    assert!(
        page.wait_for(
            "document.getElementById('tile-new').textContent === '3'",
            Duration::from_secs(60)
        ),
        "the tile never moved: {:?}\n{}",
        tile(&mut page, "new"),
        d.log_text()
    );
    assert_eq!(
        page.eval("window.stayed"),
        "the same document",
        "the page must not reload"
    );
    assert!(
        page.eval("Number(document.body.dataset.refreshed)")
            .as_i64()
            >= Some(1)
    );
    assert!(
        page.wait_for(
            &format!(
                "document.querySelector('figure[data-chart=volume]').innerHTML !== {volume_before}"
            ),
            Duration::from_secs(30)
        ),
        "the volume chart did not follow"
    );
    assert_eq!(tile(&mut page, "backlog"), "2");
    assert_eq!(tile(&mut page, "alerts"), "1");
    let listed = page.eval("[...document.querySelectorAll('#alerts li')].map(l => l.textContent)");
    let listed = listed.as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(
        listed[0].as_str().is_some_and(|l| l.starts_with("#3 ")),
        "{listed:?}"
    );

    // 5. A screenshot of what the lead sees, kept for people to look at.
    let shot = crate::support::artifacts_dir().join("dashboard.png");
    let png = page.screenshot(&shot);
    let img = resvg::tiny_skia::Pixmap::decode_png(&png).expect("the screenshot decodes");
    assert_eq!(img.width(), 1280);
    let colours: std::collections::HashSet<_> = img
        .pixels()
        .iter()
        .map(|p| (p.red(), p.green(), p.blue()))
        .collect();
    assert!(
        colours.len() > 50,
        "a blank screenshot ({} colours)",
        colours.len()
    );
    // On a phone the page narrows: nothing scrolls sideways (the agent table may, in
    // its own box).
    page.call(
        "Emulation.setDeviceMetricsOverride",
        serde_json::json!({ "width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true }),
    );
    assert!(
        page.wait_for(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth",
            Duration::from_secs(10)
        ),
        "the dashboard scrolls sideways at 390 pixels by {}",
        page.eval("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    );
    page.screenshot(&crate::support::artifacts_dir().join("dashboard-390.png"));
    page.call(
        "Emulation.clearDeviceMetricsOverride",
        serde_json::json!({}),
    );

    // An admin ends alice's sessions (a lost laptop): the open page leaves by itself.
    let listed = desk.cmd(&["agent", "sessions", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["agent"], "alice");
    assert!(listed[0].get("token").is_none() && listed[0].get("token_sha256").is_none());
    let out = desk.cmd(&["agent", "logout", "alice"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        page.wait_for("location.pathname === '/login'", Duration::from_secs(30)),
        "the page stayed after its session ended"
    );
    assert_eq!(status(&mut page, "/dashboard/tiles.json"), 401);

    // Logging out with the button ends the session too: the page and its data are
    // refused again.
    log_in(&mut page, &d);
    page.eval("document.querySelector('header form button').click(); true");
    assert!(
        page.wait_for("location.pathname === '/login'", Duration::from_secs(30)),
        "logging out did not lead to the form"
    );
    assert_eq!(status(&mut page, "/dashboard/tiles.json"), 401);
    page.goto(&format!("{base}/dashboard"));
    assert_eq!(page.path(), "/login");
    let listed = desk.cmd(&["agent", "sessions", "--json"]);
    assert_eq!(String::from_utf8_lossy(&listed.stdout).trim(), "[]");
    assert!(
        page.errors.is_empty(),
        "the page reported errors: {:?}",
        page.errors
    );
    drop(d);
}
