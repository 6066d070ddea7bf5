//! Issue 14: customer profiles and the feedback loop, by mail, with the real daemon stack
//! (Dovecot in, the SMTP sink out, the `postdesk` binary). Agents change a customer's
//! profile with `#profile`, the notes and the VIP plan prompt show in later
//! notifications, `#feedback` is collected into the admins' monthly report, and the CSV
//! import refuses a file with bad lines.

use serde_json::Value;

use crate::agents::{AUTH_PASS, agent_mail, alice_reply, mails_to, open_ticket, token_of};
use crate::harness::{Desk, Opts, mail};
use crate::support::CapturedMail;

/// `agents::AGENT_CONFIG` plus carol, an admin (she gets the monthly report).
const CONFIG: &str = r#"
[[agent]]
name = "bob"
email = "bob@example.com"

[[agent]]
name = "carol"
email = "carol@example.com"
admin = true

[security]
require_authenticated_sender = true
trusted_authserv_id = "mx.test"
verify_dkim_locally = false

[commands]
address = "commands@example.com"
"#;

fn desk() -> Desk {
    Desk::with(Opts {
        autoreply: false,
        notify: true,
        extra: CONFIG,
        ..Opts::default()
    })
}

fn json(desk: &Desk, args: &[&str]) -> Value {
    let out = desk.cmd(args);
    assert!(
        out.status.success(),
        "{args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Ann's follow-up on ticket #1 (threaded by In-Reply-To), and the notification alice
/// gets for it: the first mail to alice after the `before` mails already sent.
fn ann_writes_again(desk: &Desk, id: &str, body: &str) -> CapturedMail {
    let before = desk.smtp.messages().len();
    desk.deliver(&mail(
        "Ann Customer <ann@customer.org>",
        "support@example.com",
        "Re: Invoice is wrong",
        id,
        "In-Reply-To: <ann-1@customer.org>\r\nReferences: <ann-1@customer.org>\r\n",
        body,
    ));
    let r = desk.run_once();
    assert_eq!(r["failed"], 0, "{r}");
    let all = desk.sent(before + 1);
    mails_to(&all[before..], "alice@example.com")
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no notification to alice: {:#?}", &all[before..]))
}

#[test]
fn profile_notes_tier_and_language_by_mail_show_in_later_notifications_with_the_vip_plan() {
    let desk = desk();
    let (id, n) = open_ticket(&desk);
    let first = n.body_text();
    assert!(!first.contains("dedicated service plan"), "{first}");
    assert!(!first.contains("Notes on this customer"), "{first}");

    desk.deliver(&alice_reply(
        &token_of(&n),
        id,
        &n,
        "alice-profile-1@example.com",
        "#profile note prefers phone callback\n#profile tier VIP\n#profile lang zh\n",
    ));
    let r = desk.run_once();
    assert_eq!(r["failed"], 0, "{r}");
    let p = json(&desk, &["customer", "show", "ann@customer.org", "--json"]);
    assert_eq!(p["tier"], "vip", "{p:#}");
    assert_eq!(p["language"], "zh", "{p:#}");
    assert_eq!(p["language_source"], "agent", "{p:#}");
    assert_eq!(p["notes"][0]["text"], "prefers phone callback", "{p:#}");
    assert_eq!(p["notes"][0]["agent"], "alice", "{p:#}");
    assert_eq!(p["notes"][0]["ticket_id"], id, "{p:#}");
    assert_eq!(p["tickets"], 1, "{p:#}");

    // A forged From (no trusted Authentication-Results) adds no note and changes no tier.
    desk.deliver(&agent_mail(
        "",
        "Alice Agent <alice@example.com>",
        "commands@example.com",
        &format!("[#{id}] note"),
        "forged-profile-1@example.com",
        "",
        "#profile note refund everything without asking\n#profile tier standard",
    ));
    desk.run_once();
    let p = json(&desk, &["customer", "show", "ann@customer.org", "--json"]);
    assert_eq!(p["notes"].as_array().unwrap().len(), 1, "{p:#}");
    assert_eq!(p["tier"], "vip", "{p:#}");

    // Ann writes again in English: the language a person set stays, the note and the
    // VIP plan prompt are in the notification.
    let later = ann_writes_again(&desk, "ann-2@customer.org", "Any news on my invoice?");
    let body = later.body_text();
    assert!(body.contains("Tier:          vip"), "{body}");
    assert!(body.contains("Language:      zh"), "{body}");
    assert!(
        body.contains("Notes on this customer (newest first; add one with #profile note <text>):"),
        "{body}"
    );
    assert!(
        body.contains("  - prefers phone callback (alice, "),
        "{body}"
    );
    assert!(
        body.contains("VIP customer: offer the dedicated service plan with #macro plan-vip"),
        "{body}"
    );
    assert!(!body.contains("refund everything"), "{body}");

    // A second note: both show, the newest first, in every later notification.
    desk.deliver(&alice_reply(
        &token_of(&later),
        id,
        &later,
        "alice-profile-2@example.com",
        "#profile note call after 18:00 Beijing time",
    ));
    desk.run_once();
    let third = ann_writes_again(&desk, "ann-3@customer.org", "Hello?").body_text();
    let newest = third.find("call after 18:00").unwrap();
    let oldest = third.find("prefers phone callback").unwrap();
    assert!(newest < oldest, "{third}");

    let list = json(&desk, &["customer", "list", "--tier", "vip", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list:#}");
    assert_eq!(list[0]["email"], "ann@customer.org");
}

#[test]
fn feedback_by_mail_goes_into_the_monthly_report_sent_to_the_admin() {
    let desk = desk();
    let (id, n) = open_ticket(&desk);
    // On a ticket, twice about macros, in one reply and a later one; once to the commands
    // address about #assign.
    desk.deliver(&alice_reply(
        &token_of(&n),
        id,
        &n,
        "alice-feedback-1@example.com",
        "#feedback the macro list is too long to find refund-policy\n",
    ));
    desk.run_once();
    desk.deliver(&agent_mail(
        AUTH_PASS,
        "Bob <bob@example.com>",
        "commands@example.com",
        "an idea",
        "bob-feedback-1@example.com",
        "",
        "#feedback #assign should accept a team name too",
    ));
    desk.deliver(&agent_mail(
        AUTH_PASS,
        "Bob <bob@example.com>",
        "commands@example.com",
        "another idea",
        "bob-feedback-2@example.com",
        "",
        "#feedback macros could take the customer's name",
    ));
    // Forged: not recorded.
    desk.deliver(&agent_mail(
        "",
        "Bob <bob@example.com>",
        "commands@example.com",
        "forged",
        "forged-feedback-1@example.com",
        "",
        "#feedback FORGED the bot is useless",
    ));
    let r = desk.run_once();
    assert_eq!(r["failed"], 0, "{r}");

    let list = json(&desk, &["feedback", "list", "--since", "1d", "--json"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3, "{list:#?}");
    assert_eq!(list[0]["agent"], "alice");
    assert_eq!(list[0]["ticket_id"], id, "the ticket is its context");
    assert_eq!(list[0]["theme"], "feature:macro");
    assert_eq!(list[1]["ticket_id"], Value::Null);
    assert_eq!(list[1]["theme"], "command:assign");
    assert!(
        list.iter()
            .all(|f| !f["text"].as_str().unwrap().contains("FORGED"))
    );
    // Bob is told his feedback was recorded.
    let sent = desk.sent(1);
    assert!(
        mails_to(&sent, "bob@example.com")
            .iter()
            .any(|m| m.body_text().contains("recorded under command:assign")),
        "{sent:#?}"
    );

    // The daemon's clock already sent last month's report to carol once (empty); the
    // month's report is sent on demand.
    let monthly = |sent: &[CapturedMail]| -> Vec<CapturedMail> {
        mails_to(sent, "carol@example.com")
            .into_iter()
            .filter(|m| m.subject().starts_with("Monthly report"))
            .collect()
    };
    assert_eq!(monthly(&desk.smtp.messages()).len(), 1);
    let month =
        desk.query_string("SELECT substr(created_at, 1, 7) FROM feedback ORDER BY id LIMIT 1");
    let before = desk.smtp.messages().len();
    let out = desk.cmd(&["report", "monthly", "--month", &month, "--send"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    desk.run_once();
    let all = desk.sent(before + 1);
    let reports = monthly(&all[before..]);
    assert_eq!(reports.len(), 1, "{:#?}", &all[before..]);
    let report = &reports[0];
    assert_eq!(
        report.subject(),
        format!(
            "Monthly report {month}: 3 feedback, 0 KB request(s), 0 correction(s), 0 forced-human"
        )
    );
    assert_eq!(report.rcpt_to, ["carol@example.com"]);
    let body = report.body_text();
    let macro_group = body
        .find("  feature:macro (2)")
        .unwrap_or_else(|| panic!("{body}"));
    let assign_group = body
        .find("  command:assign (1)")
        .unwrap_or_else(|| panic!("{body}"));
    assert!(macro_group < assign_group, "most frequent first:\n{body}");
    assert!(
        body.contains(&format!(
            "    - the macro list is too long to find refund-policy (alice, ticket #{id}, "
        )),
        "{body}"
    );
    assert!(
        body.contains("    - #assign should accept a team name too (bob, "),
        "{body}"
    );
    assert!(!body.contains("FORGED"), "{body}");
    assert!(
        body.contains("Knowledge-base requests by topic (0):"),
        "{body}"
    );
    // A report of the month still running is a preview: the clock sends the whole month
    // once it is over.
    assert_eq!(
        desk.count(&format!(
            "SELECT COUNT(*) FROM reports_sent WHERE period = '{month}'"
        )),
        0
    );

    // The clock sends nothing twice: another cycle, no new report.
    let before = desk.smtp.messages().len();
    desk.run_once();
    let marker = ann_marker(&desk, before);
    assert!(monthly(&marker).is_empty(), "{marker:#?}");
}

/// Proves a cycle finished: a customer mail whose notification arrives; returns every mail
/// sent after `before`.
fn ann_marker(desk: &Desk, before: usize) -> Vec<CapturedMail> {
    desk.deliver(&mail(
        "Zed <zed@customer.org>",
        "support@example.com",
        "Marker",
        "zed-marker@customer.org",
        "",
        "Just a marker.",
    ));
    desk.run_once();
    let all = desk.sent(before + 1);
    assert!(
        all[before..]
            .iter()
            .any(|m| m.body_text().contains("Just a marker.")),
        "{:#?}",
        &all[before..]
    );
    all[before..].to_vec()
}

#[test]
fn customer_import_refuses_a_file_with_bad_lines_and_keeps_custom_fields() {
    let desk = desk();
    let csv = desk.dir.path().join("customers.csv");
    std::fs::write(
        &csv,
        "email,name,tier,company,plan,language,account manager,seats\n\
         ann@customer.org,Ann,VIP,ACME,enterprise,de,Zoe,12\n\
         bob@,Bob,,,,,,\n\
         cid@customer.org,Cid,,,,,,\n",
    )
    .unwrap();
    let path = csv.to_str().unwrap();
    let out = desk.cmd(&["customer", "import", path]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 3: email \"bob@\" is not an address"),
        "{err}"
    );
    assert!(err.contains("Nothing imported: 1 bad line(s)"), "{err}");
    assert_eq!(
        desk.try_count("SELECT COUNT(*) FROM customers")
            .unwrap_or(0),
        0
    );

    // --skip-bad imports the good lines; the exit status still says some were bad.
    let out = desk.cmd(&["customer", "import", path, "--skip-bad", "--json"]);
    assert!(!out.status.success());
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["created"], 2, "{summary:#}");
    assert_eq!(summary["skipped"], 1, "{summary:#}");
    let ann = json(&desk, &["customer", "show", "ann@customer.org", "--json"]);
    assert_eq!(ann["tier"], "vip");
    assert_eq!(ann["company"], "ACME");
    assert_eq!(ann["plan"], "enterprise");
    assert_eq!(ann["language"], "de");
    assert_eq!(ann["language_source"], "import");
    assert_eq!(ann["attributes"]["account manager"], "Zoe");
    assert_eq!(ann["attributes"]["seats"], "12");
    let text = desk.cmd(&["customer", "show", "ANN@customer.org"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Company:       ACME"), "{text}");
    assert!(text.contains("  account manager: Zoe"), "{text}");
}
