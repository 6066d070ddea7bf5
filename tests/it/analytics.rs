//! Issue 16: analytics with the real daemon. Tickets come in over real Dovecot, agents
//! answer by mail, answers go out over real SMTP; `postdesk stats` and `export` report
//! on what happened, and customers rate resolved tickets by reply and by signed link
//! (the daemon's real HTTP listener).

use std::time::Duration;

use mail_parser::MimeHeaders as _;
use serde_json::Value;

use crate::agents::{AGENT_CONFIG, alice_reply, mails_to, open_ticket, second_ticket, token_of};
use crate::harness::{Desk, Opts, eventually, mail, message_id_of};
use crate::support::chromium::Browser;
use crate::support::relay::{self, free_port};

fn stats_desk(port: u16) -> Desk {
    desk_with_http(
        port,
        &format!("public_url = \"http://127.0.0.1:{port}/\"\n"),
    )
}

/// The agents' desk with the HTTP listener on `port` and more `[http]` keys.
fn desk_with_http(port: u16, http: &str) -> Desk {
    let extra = format!("{AGENT_CONFIG}\n[http]\nlisten = \"127.0.0.1:{port}\"\n{http}");
    Desk::with(Opts {
        autoreply: false,
        notify: true,
        extra: Box::leak(extra.into_boxed_str()),
        ..Opts::default()
    })
}

fn stats_json(desk: &Desk, args: &[&str]) -> Value {
    let mut all = vec!["stats", "--json"];
    all.extend_from_slice(args);
    let out = desk.cmd(&all);
    assert!(
        out.status.success(),
        "stats failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Seconds from the ticket's creation to its first agent answer, as the database has
/// them (whole seconds, as the figures count them).
fn first_response_in_db(desk: &Desk, ticket: i64) -> i64 {
    desk.count(&format!(
        "SELECT CAST(strftime('%s', e.created_at) AS INTEGER) - CAST(strftime('%s', t.created_at) AS INTEGER) \
         FROM events e JOIN tickets t ON t.id = e.ticket_id \
         WHERE t.id = {ticket} AND e.kind = 'message_added' \
         AND json_extract(e.data, '$.kind') = 'agent_reply' ORDER BY e.id LIMIT 1"
    ))
}

#[test]
fn stats_report_the_desk_and_customers_rate_by_reply_and_by_link() {
    let port = free_port();
    let desk = stats_desk(port);
    let (id, n) = open_ticket(&desk);
    second_ticket(&desk);
    // Some time passes before alice answers, so the first response is not zero.
    std::thread::sleep(Duration::from_millis(2100));
    let token = token_of(&n);
    desk.deliver(&alice_reply(
        &token,
        id,
        &n,
        "alice-1@example.com",
        "#resolve\nWe refunded the second charge.",
    ));
    desk.run_once();
    let shown = desk.show(id);
    assert_eq!(shown["status"], "resolved", "{shown:#}");
    let answer = mails_to(&desk.sent(5), "ann@customer.org")
        .into_iter()
        .find(|m| m.body_text().contains("refunded"))
        .expect("the answer to ann");
    let body = answer.body_text();
    assert!(
        body.contains("How did we do? Reply with just a number"),
        "{body}"
    );
    let prefix = format!("http://127.0.0.1:{port}/rate/{id}/");
    let links: Vec<String> = body
        .split_whitespace()
        .filter(|w| w.starts_with(&prefix))
        .map(String::from)
        .collect();
    assert_eq!(links.len(), 5, "{body}");

    // Ann rates by reply: "5" and a comment. The ticket stays resolved.
    let parent = message_id_of(&answer.data);
    desk.deliver(&mail(
        "Ann Customer <ann@customer.org>",
        "support@example.com",
        &format!("Re: [#{id}] Invoice is wrong"),
        "ann-2@customer.org",
        &format!("In-Reply-To: <{parent}>\r\nReferences: <{parent}>\r\n"),
        "5\nQuick and kind, thank you",
    ));
    desk.run_once();
    let shown = desk.show(id);
    assert_eq!(shown["status"], "resolved", "a rating does not reopen");
    assert_eq!(shown["rating"]["score"], 5, "{shown:#}");
    assert_eq!(shown["rating"]["source"], "reply");
    assert_eq!(
        desk.query_string(&format!(
            "SELECT rating || ' ' || source || ' ' || comment FROM ratings WHERE ticket_id = {id}"
        )),
        "5 reply Quick and kind, thank you"
    );

    let s = stats_json(&desk, &["--since", "1h"]);
    let p = &s["periods"][0];
    let team = &p["team"];
    assert_eq!(team["tickets_new"], 2, "{s:#}");
    assert_eq!(team["tickets_resolved"], 1);
    assert_eq!(team["resolution_rate"], 0.5);
    assert_eq!(team["reopen_rate"], 0.0);
    assert_eq!(team["satisfaction_count"], 1);
    assert_eq!(team["satisfaction_avg"], 5.0);
    assert_eq!(p["backlog_end"], 1, "zed's ticket is still open: {s:#}");
    let expected = first_response_in_db(&desk, id);
    assert!(expected >= 2, "{expected}");
    let alice = &p["agents"]["alice"];
    assert_eq!(alice["tickets_new"], 1, "{s:#}");
    assert_eq!(alice["tickets_resolved"], 1);
    assert_eq!(alice["first_response_median_s"], expected);
    assert_eq!(alice["first_response_p90_s"], expected);
    assert_eq!(alice["resolution_rate"], 1.0);
    assert_eq!(alice["reopen_rate"], 0.0);
    assert_eq!(
        team["first_response_median_s"], expected,
        "one answered ticket"
    );
    assert_eq!(
        p["agents"]["bob"]["tickets_new"], 0,
        "every agent is listed"
    );
    assert_eq!(
        s["heatmap"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r.as_array().unwrap())
            .map(|v| v.as_i64().unwrap())
            .sum::<i64>(),
        2
    );
    // --agent keeps the team beside the one agent.
    let only = stats_json(&desk, &["--since", "1h", "--agent", "alice"]);
    let agents = only["periods"][0]["agents"].as_object().unwrap();
    assert_eq!(agents.keys().collect::<Vec<_>>(), ["alice"]);
    assert_eq!(only["periods"][0]["team"]["tickets_new"], 2);
    // --by channel: both came by mail.
    let by = stats_json(&desk, &["--since", "1h", "--by", "channel"]);
    assert_eq!(
        by["periods"][0]["groups"]["email"]["tickets_new"], 2,
        "{by:#}"
    );

    // CSV and the table.
    let out = desk.cmd(&["stats", "--since", "1h", "--csv"]);
    let csv = String::from_utf8(out.stdout).unwrap();
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("period_start,period_end,kind,name,tickets_new")
    );
    let rows: Vec<&str> = lines.collect();
    assert!(rows.iter().any(|r| r.contains(",team,all,2,")), "{csv}");
    assert!(rows.iter().any(|r| r.contains(",agent,alice,1,")), "{csv}");
    let table = String::from_utf8(desk.cmd(&["stats", "--since", "1h"]).stdout).unwrap();
    assert!(
        table.contains("first response median") && table.contains("alice"),
        "{table}"
    );

    // The export: alice's one ticket with its figures.
    let out = desk.cmd(&["export", "--agent", "alice", "--since", "1d", "--csv"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(rows[0].starts_with("ticket,created_at,channel"), "{csv}");
    assert!(rows[1].starts_with(&format!("{id},")), "{csv}");
    assert!(rows[1].ends_with(",5"), "rated 5: {csv}");

    // Ann follows the "4" link: the page records nothing until she presses the button.
    let d = desk.spawn_daemon_http(port, &[]);
    let four = links
        .iter()
        .find(|l| l.contains(&format!("/rate/{id}/4/")))
        .unwrap();
    let path = four
        .strip_prefix(&format!("http://127.0.0.1:{port}"))
        .unwrap();
    let page = relay::request(port, "GET", path, &[], b"").unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("4 of 5"), "{}", page.body);
    assert_eq!(
        desk.count(&format!(
            "SELECT rating FROM ratings WHERE ticket_id = {id}"
        )),
        5
    );
    let done = relay::request(
        port,
        "POST",
        path,
        &[("Content-Type", "application/x-www-form-urlencoded".into())],
        b"comment=changed+my+mind",
    )
    .unwrap();
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(
        desk.count(&format!(
            "SELECT rating FROM ratings WHERE ticket_id = {id}"
        )),
        4
    );
    // A forged link for zed's ticket is refused.
    let forged = path.replacen(&format!("/rate/{id}/"), &format!("/rate/{}/", id + 1), 1);
    assert_eq!(
        relay::request(port, "POST", &forged, &[], b"")
            .unwrap()
            .status,
        404
    );
    drop(d);
    let s = stats_json(&desk, &["--since", "1h"]);
    assert_eq!(
        s["periods"][0]["team"]["satisfaction_avg"], 4.0,
        "the latest rating counts"
    );
    assert_eq!(
        s["periods"][0]["team"]["satisfaction"],
        serde_json::json!([0, 0, 0, 1, 0])
    );
}

#[test]
fn stats_refuses_unknown_names_and_ranges_in_words() {
    let desk = stats_desk(free_port());
    desk.run_once();
    for (args, said) in [
        (
            vec!["stats", "--agent", "nobody"],
            "no agent named \"nobody\"",
        ),
        (
            vec!["stats", "--team", "ghosts"],
            "no team named \"ghosts\"",
        ),
        (vec!["stats", "--since", "last week"], "neither a duration"),
        (
            vec!["stats", "--since", "1d", "--until", "2d"],
            "the range is empty",
        ),
        (vec!["export", "--agent", "nobody"], "no agent named"),
    ] {
        let out = desk.cmd(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(said), "{args:?}: {err}");
    }
    // An empty desk has figures of nothing, not errors.
    let s = stats_json(&desk, &["--every", "day", "--since", "3d"]);
    assert!(s["periods"].as_array().unwrap().len() >= 3, "{s:#}");
    assert_eq!(s["total"]["team"]["tickets_new"], 0);
    assert_eq!(s["total"]["team"]["first_response_median_s"], Value::Null);
}

/// The value of the sample `name` whose labels include `labels`.
fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

fn parse_scrape(body: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
        .unwrap_or_else(|e| panic!("not the Prometheus text format ({e}):\n{body}"))
}

#[test]
fn metrics_are_scraped_from_loopback_or_with_the_token() {
    let port = free_port();
    let token = "scrape-token-0123456789abcdef";
    let desk = desk_with_http(port, &format!("metrics_token = \"{token}\"\n"));
    let d = desk.spawn_daemon_http(port, &[]);
    desk.deliver(&mail(
        "Ann <ann@customer.org>",
        "support@example.com",
        "Broken",
        "m-1@customer.org",
        "",
        "It broke.",
    ));
    // The ticket, and its notifications sent (the outbox drained).
    assert!(eventually(Duration::from_secs(30), || desk
        .count("SELECT COUNT(*) FROM tickets")
        == 1));
    desk.sent(2);
    let mut scrape = None;
    let ok = eventually(Duration::from_secs(30), || {
        let r = relay::request(port, "GET", "/metrics", &[], b"").unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        let s = parse_scrape(&r.body);
        let done = sample(&s, "postdesk_event_worker_lag", &[("worker", "analytics")]) == Some(0.0)
            && sample(&s, "postdesk_outbox_pending", &[]).unwrap_or(0.0) == 0.0;
        scrape = Some(s);
        done
    });
    let s = scrape.unwrap();
    assert!(ok, "the analytics worker never caught up: {:?}", s.samples);
    assert_eq!(
        sample(
            &s,
            "postdesk_ingested_messages_total",
            &[("source", "imap:support")]
        ),
        Some(1.0),
        "{:?}",
        s.samples
    );
    assert_eq!(sample(&s, "postdesk_tickets_open", &[]), Some(1.0));
    assert_eq!(sample(&s, "postdesk_tickets_created_7d", &[]), Some(1.0));
    assert_eq!(sample(&s, "postdesk_database_up", &[]), Some(1.0));
    assert_eq!(sample(&s, "postdesk_held_messages", &[]), Some(0.0));
    assert!(sample(&s, "postdesk_bot_deflection_rate_7d", &[]).is_some());

    // Through a proxy (or from elsewhere) the token is needed.
    let fwd = [("X-Forwarded-For", "198.51.100.7".to_string())];
    let r = relay::request(port, "GET", "/metrics", &fwd, b"").unwrap();
    assert_eq!(r.status, 401, "{}", r.body);
    let wrong = [
        ("X-Forwarded-For", "198.51.100.7".to_string()),
        (
            "Authorization",
            "Bearer not-the-token-at-all-000".to_string(),
        ),
    ];
    assert_eq!(
        relay::request(port, "GET", "/metrics", &wrong, b"")
            .unwrap()
            .status,
        401
    );
    let right = [
        ("X-Forwarded-For", "198.51.100.7".to_string()),
        ("Authorization", format!("Bearer {token}")),
    ];
    let r = relay::request(port, "GET", "/metrics", &right, b"").unwrap();
    assert_eq!(r.status, 200);
    parse_scrape(&r.body);
    drop(d);
}

/// The pixels of a PNG.
fn pixmap(png: &[u8]) -> resvg::tiny_skia::Pixmap {
    resvg::tiny_skia::Pixmap::decode_png(png).expect("the chart decodes as PNG")
}

#[test]
fn the_weekly_digest_carries_charts_that_decode_with_chinese_labels() {
    let desk = stats_desk(free_port());
    let (id, n) = open_ticket(&desk);
    let token = token_of(&n);
    desk.deliver(&alice_reply(
        &token,
        id,
        &n,
        "alice-w1@example.com",
        "#category 退款\n#resolve\nWe refunded the second charge.",
    ));
    desk.run_once();
    assert_eq!(desk.show(id)["category"], "退款");
    let before = desk.sent(10).len();

    let out = desk.cmd(&["digest", "weekly", "--agent", "alice"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Queued 1 weekly digest"));
    desk.run_once();
    let all = desk.sent(before + 1);
    let digest = mails_to(&all, "alice@example.com")
        .into_iter()
        .find(|m| m.subject().starts_with("Weekly figures"))
        .unwrap_or_else(|| {
            panic!(
                "no weekly digest: {:?}",
                all.iter().map(|m| m.subject()).collect::<Vec<_>>()
            )
        });
    let parsed = mail_parser::MessageParser::default()
        .parse(&digest.data)
        .unwrap();
    assert_eq!(
        parsed.header_raw("Auto-Submitted").map(str::trim),
        Some("auto-generated")
    );
    let text = parsed.body_text(0).unwrap().to_string();
    assert!(text.contains("You beside the team"), "{text}");
    assert!(text.contains("New tickets: 1"), "{text}");
    let html = parsed.body_html(0).unwrap().to_string();
    for cid in ["volume", "first-response", "categories", "peak-hours"] {
        assert!(
            html.contains(&format!("src=\"cid:{cid}@postdesk\"")),
            "{cid}: {html}"
        );
    }
    // Four PNG parts, each named by its Content-ID, each decoding to a full chart.
    let mut charts = std::collections::HashMap::new();
    for part in parsed.parts.iter() {
        let is_png = part
            .content_type()
            .is_some_and(|ct| ct.ctype() == "image" && ct.subtype() == Some("png"));
        if is_png {
            let cid = part
                .content_id()
                .unwrap_or_default()
                .trim_matches(['<', '>'])
                .to_string();
            charts.insert(cid, part.contents().to_vec());
        }
    }
    assert_eq!(charts.len(), 4, "{:?}", charts.keys().collect::<Vec<_>>());
    for (cid, png) in &charts {
        let p = pixmap(png);
        assert_eq!((p.width(), p.height()), (1280, 600), "{cid}");
        assert!(
            p.pixels().iter().any(|c| c.red() < 128),
            "{cid} is not blank"
        );
    }
    // The category chart as mailed is the chart of 退款 at 100 %, pixel for pixel, and not
    // the chart of 款退: the daemon drew the Chinese glyphs (missing glyphs would look the
    // same whatever the characters).
    let fonts = postdesk::analytics::charts::fonts(None);
    assert!(
        fonts.family.is_some(),
        "no font: scripts/test-deps.sh installs fonts-wqy-microhei"
    );
    let draw = |label: &str| {
        let svg =
            postdesk::analytics::digest::category_chart(&[(label.to_string(), 100.0)]).unwrap();
        pixmap(&postdesk::analytics::charts::to_png(&svg, fonts).unwrap())
    };
    let mailed = pixmap(&charts["categories@postdesk"]);
    assert!(
        mailed.pixels() == draw("退款").pixels(),
        "the mailed chart is the 退款 chart"
    );
    let swapped = draw("款退");
    let differing = mailed
        .pixels()
        .iter()
        .zip(swapped.pixels())
        .filter(|(a, b)| a != b)
        .count();
    assert!(
        differing > 50,
        "the Chinese label's glyphs show: {differing} pixels differ"
    );

    // The HTML part as a mail client shows it, in a real Chromium: the four images load
    // from their parts, and the layout fits a 700-pixel reading pane and a 390-pixel
    // phone without sideways scrolling. The screenshot is kept.
    let dir = tempfile::tempdir().unwrap();
    let mut page_html = html.clone();
    for (cid, png) in &charts {
        std::fs::write(dir.path().join(format!("{cid}.png")), png).unwrap();
        page_html = page_html.replace(&format!("cid:{cid}"), &format!("{cid}.png"));
    }
    let file = dir.path().join("digest.html");
    std::fs::write(&file, &page_html).unwrap();
    let browser = Browser::start();
    let mut page = browser.page();
    for width in [700, 390] {
        page.call(
            "Emulation.setDeviceMetricsOverride",
            serde_json::json!({ "width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 500 }),
        );
        page.goto(&format!("file://{}", file.display()));
        let loaded = page
            .eval("[...document.images].filter(i => i.complete && i.naturalWidth === 1280).length");
        assert_eq!(loaded, 4, "{width}px: the charts load from their parts");
        let overflow = page
            .eval("document.documentElement.scrollWidth - document.documentElement.clientWidth");
        assert_eq!(overflow, 0, "{width}px: the digest scrolls sideways");
        let shot = crate::support::artifacts_dir().join(format!("weekly-digest-{width}.png"));
        let png = page.screenshot(&shot);
        assert!(pixmap(&png).width() == width);
    }
}
