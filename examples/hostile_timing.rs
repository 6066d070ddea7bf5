//! `cargo run --release --example hostile_timing`: how long each step on a message's way
//! (parse, quote stripping, subject normalisation, command parsing) takes on hostile
//! input built to make it super-linear: thousands of `Re:` prefixes, folded headers, a
//! 100,000-id References, a million quoted lines, nested MIME and `message/rfc822`, a
//! 50,000-address Cc. A measuring aid for reviews (issue 10), not a test: it asserts
//! nothing and prints one line per input.

use std::time::Instant;
fn t(name: &str, raw: &[u8]) {
    let s = Instant::now();
    let p = postdesk::channels::email::parse::parse(raw);
    let a = s.elapsed();
    let s = Instant::now();
    let q = postdesk::channels::email::quote::strip(&p.body_text);
    let b = s.elapsed();
    let s = Instant::now();
    let k = postdesk::threading::subject::normalize_subject(&p.subject);
    let tags = postdesk::threading::subject::ticket_tags(&p.subject);
    let c = s.elapsed();
    let s = Instant::now();
    let r = postdesk::commands::parse::parse_reply(q.new_text);
    let d = s.elapsed();
    println!(
        "{name:28} {:>8} B  parse {a:>10.2?}  quote {b:>10.2?}  subject {c:>10.2?} cmds {d:>10.2?}  (key {} tags {} refs {} cmds {})",
        raw.len(),
        k.len(),
        tags.len(),
        p.references.len(),
        r.commands.len()
    );
}
fn main() {
    let h = "From: a@x.org\r\nTo: support@example.com\r\nMessage-ID: <m@x>\r\n";
    t(
        "re-prefixes",
        format!("{h}Subject: {}x\r\n\r\nhi\r\n", "Re: ".repeat(250_000)).as_bytes(),
    );
    t(
        "fw-brackets",
        format!(
            "{h}Subject: {}x\r\n\r\nhi\r\n",
            "[ext] Fwd: ".repeat(90_000)
        )
        .as_bytes(),
    );
    t(
        "ticket tags",
        format!("{h}Subject: {}x\r\n\r\nhi\r\n", "[#1".repeat(250_000)).as_bytes(),
    );
    t(
        "folded subject",
        format!(
            "{h}Subject: a\r\n{}\r\n\r\nhi\r\n",
            " b\r\n".repeat(200_000)
        )
        .as_bytes(),
    );
    t(
        "many headers",
        format!(
            "{h}{}Subject: s\r\n\r\nhi\r\n",
            "X-A: b\r\n".repeat(200_000)
        )
        .as_bytes(),
    );
    t(
        "references 100k",
        format!(
            "{h}Subject: s\r\nReferences: {}\r\n\r\nhi\r\n",
            (0..100_000)
                .map(|i| format!("<r{i}@x>"))
                .collect::<Vec<_>>()
                .join(" ")
        )
        .as_bytes(),
    );
    t(
        "body 1M lines",
        format!("{h}Subject: s\r\n\r\n{}", "line\r\n".repeat(1_000_000)).as_bytes(),
    );
    t(
        "body quoted 1M",
        format!("{h}Subject: s\r\n\r\nhi\r\n{}", "> q\r\n".repeat(1_000_000)).as_bytes(),
    );
    t(
        "body From: lines",
        format!(
            "{h}Subject: s\r\n\r\n{}",
            "From: x\r\nTo: y\r\n".repeat(300_000)
        )
        .as_bytes(),
    );
    t(
        "long line 4MB",
        format!("{h}Subject: s\r\n\r\n{}", "a".repeat(4_000_000)).as_bytes(),
    );
    t(
        "attribution-ish",
        format!(
            "{h}Subject: s\r\n\r\n{}",
            "On 2024-01-01 Bob wrote\r\n".repeat(200_000)
        )
        .as_bytes(),
    );
    t(
        "commands 200k",
        format!("{h}Subject: s\r\n\r\n{}", "#tag a b c\r\n".repeat(200_000)).as_bytes(),
    );
    t(
        "dashes",
        format!("{h}Subject: s\r\n\r\n{}", "--\r\n-- x\r\n".repeat(200_000)).as_bytes(),
    );
    t("nested mime 2000", { let mut b = String::from("Content-Type: text/plain\r\n\r\ninner\r\n"); for i in 0..2000 { b = format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n{b}\r\n--b{i}--\r\n"); } format!("{h}Subject: s\r\nMIME-Version: 1.0\r\n{b}") }.as_bytes());
    t(
        "nested rfc822 2000",
        {
            let mut m = String::from("Subject: core\r\nContent-Type: text/plain\r\n\r\ncore\r\n");
            for i in 0..2000 {
                m = format!("Subject: l{i}\r\nContent-Type: message/rfc822\r\n\r\n{m}");
            }
            format!("{h}MIME-Version: 1.0\r\n{m}")
        }
        .as_bytes(),
    );
    t(
        "encoded words",
        format!(
            "{h}Subject: {}\r\n\r\nhi\r\n",
            "=?utf-8?B?5L2g5aW9?= ".repeat(100_000)
        )
        .as_bytes(),
    );
    t(
        "to list 50k",
        format!(
            "{h}Subject: s\r\nCc: {}\r\n\r\nhi\r\n",
            (0..50_000)
                .map(|i| format!("u{i}@x.org"))
                .collect::<Vec<_>>()
                .join(", ")
        )
        .as_bytes(),
    );
}
