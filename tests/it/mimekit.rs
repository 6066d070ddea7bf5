//! Conformance with the MimeKit test data: reports (DSN, MDN, feedback) are recognised and
//! never acknowledged, and mbox files split exactly as their authors expect. Also the
//! `import` command end to end on corpus mail.

use std::path::PathBuf;

use postdesk::channels::email::{loops, mbox, parse};

fn corpus() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if p.is_dir() {
        Some(p)
    } else {
        println!("corpus not found at {}, skipping", p.display());
        None
    }
}

#[test]
fn reports_are_recognised_with_their_original_message_and_failed_recipients() {
    let Some(c) = corpus() else { return };
    let dir = c.join("mimekit-testdata/messages");
    // (file, report type, original Message-ID, failed recipients)
    let expected: &[(&str, &str, Option<&str>, &[&str])] = &[
        (
            "bounce.txt",
            "delivery-status",
            Some("44565655.jitbithelpdesk.13439.691a0afc-a0a0-457c-8208-f20b7c4a4cb1@jitbit.com"),
            &["netec.test@netecgc.com"],
        ),
        (
            "delivery-status.txt",
            "delivery-status",
            Some("31fc7eb4.41c6@netscape.com"),
            &["newsletter-request@imusic.com"],
        ),
        (
            "delivery-status-no-blank-line.txt",
            "delivery-status",
            Some("31fc7eb4.41c6@netscape.com"),
            &["newsletter-request@imusic.com"],
        ),
        (
            "delivery-status-multiple-blank-lines.txt",
            "delivery-status",
            None,
            &["orig_recip@customer.com"],
        ),
        (
            "delivery-status2.txt",
            "delivery-status",
            None,
            &["source@domain.com"],
        ),
        (
            "disposition-notification.txt",
            "disposition-notification",
            Some("199509192301.23456@example.org"),
            &[],
        ),
        (
            "feedback-report.txt",
            "feedback-report",
            Some("8787kjkj3k4j3k4j3k4j3.mail@example.net"),
            &[],
        ),
    ];
    let own = vec!["support@example.com".to_string()];
    for (file, ty, orig, failed) in expected {
        let raw = std::fs::read(dir.join(file)).unwrap();
        let p = parse::parse(&raw);
        let r = p
            .report
            .as_ref()
            .unwrap_or_else(|| panic!("{file}: not recognised as a report"));
        assert_eq!(r.report_type, *ty, "{file}");
        assert_eq!(r.original_message_id.as_deref(), *orig, "{file}");
        let got: Vec<&str> = r.failed.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(got, *failed, "{file}");
        let why = loops::autoreply_suppression(&p, &own, "example.com");
        assert!(
            why.is_some_and(|w| w.contains("report")),
            "{file} must never be acknowledged"
        );
    }
    // Ordinary messages of the same set are not reports.
    for file in [
        "simple-multipart.eml",
        "japanese.txt",
        "epilogue.txt",
        "multipart-digest.txt",
    ] {
        let raw = std::fs::read(dir.join(file)).unwrap();
        assert!(parse::parse(&raw).report.is_none(), "{file}");
    }
}

#[test]
fn mbox_files_split_into_the_messages_their_summaries_list() {
    let Some(c) = corpus() else { return };
    let dir = c.join("mimekit-testdata/mbox");
    for (mbox_file, offsets, summary) in [
        (
            "content-length.mbox.txt",
            "content-length.unix-offsets.json",
            "content-length-summary.txt",
        ),
        (
            "issue1189.mbox.txt",
            "issue1189.unix-offsets.json",
            "issue1189-summary.txt",
        ),
    ] {
        let data = std::fs::read(dir.join(mbox_file)).unwrap();
        let messages = mbox::split(&data);
        let expected: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(offsets)).unwrap()).unwrap();
        let expected = expected.as_array().unwrap();
        assert_eq!(messages.len(), expected.len(), "{mbox_file}");
        // Top-level subjects in order, as the summary lists them.
        let summary = std::fs::read_to_string(dir.join(summary)).unwrap();
        let subjects: Vec<String> = summary
            .split("\nFrom ")
            .filter_map(|block| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix("Subject: "))
                    .map(str::to_string)
            })
            .collect();
        assert_eq!(subjects.len(), messages.len(), "{mbox_file}");
        for (i, (raw, want)) in messages.iter().zip(&subjects).enumerate() {
            let got = parse::parse(raw).subject;
            assert_eq!(
                got.split_whitespace().collect::<Vec<_>>(),
                want.split_whitespace().collect::<Vec<_>>(),
                "{mbox_file} message {i}"
            );
        }
        // Each message's size matches the authors' offsets (body end minus start).
        for (i, (raw, e)) in messages.iter().zip(expected).enumerate() {
            let len = e["endOffset"].as_u64().unwrap() - e["beginOffset"].as_u64().unwrap();
            let diff = (raw.len() as i64 - len as i64).abs();
            assert!(
                diff <= 1,
                "{mbox_file} message {i}: {} bytes, expected {len}",
                raw.len()
            );
        }
    }
}

#[test]
fn import_command_reads_mbox_and_maildir_and_is_idempotent() {
    let Some(c) = corpus() else { return };
    let desk = crate::harness::Desk::with(crate::harness::Opts {
        autoreply: false,
        ..Default::default()
    });
    let mbox_path = c.join("mimekit-testdata/mbox/content-length.mbox.txt");
    let out = desk.cmd(&["import", "mbox", mbox_path.to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["stats"]["messages"], 29);
    assert_eq!(v["stats"]["duplicates"], 0);
    let first_new = v["stats"]["new_tickets"].as_u64().unwrap();
    assert!(first_new > 0);
    // Importing again changes nothing.
    let out = desk.cmd(&["import", "mbox", mbox_path.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["stats"]["duplicates"], 29);
    assert_eq!(desk.tickets().len() as u64, first_new);

    let maildir = c.join("mail-parser-resources/resources/maildir");
    let out = desk.cmd(&["import", "maildir", maildir.to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Two in the root folder, four in the Maildir++ subfolders ".My Folder" and ".My Folder.Nested Folder".
    assert_eq!(v["stats"]["messages"], 6);

    // A path that is not a Maildir is a clear error.
    let out = desk.cmd(&["import", "maildir", mbox_path.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a directory"));
    // No acknowledgements were queued by an import.
    assert_eq!(desk.count("SELECT COUNT(*) FROM outbox"), 0);
}
