//! Issue 16: the dashboard over HTTP with the real daemon (the headless Chromium test is
//! still to come): passwords set by `postdesk agent password`, the login form, the session
//! cookie, tiles that change after a new mail, the event stream, refusals.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::agents::AGENT_CONFIG;
use crate::harness::{Desk, Opts, eventually, mail};
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

    let d = desk.spawn_daemon(&[]);
    assert!(
        eventually(Duration::from_secs(30), || relay::request(
            port,
            "GET",
            "/healthz",
            &[],
            b""
        )
        .is_ok_and(|r| r.status == 200)),
        "{}",
        d.log_text()
    );
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
    drop(d);
}
