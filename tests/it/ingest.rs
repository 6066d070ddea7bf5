//! End-to-end ingest: real Dovecot in, real SMTP out, the real binary in between.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{Desk, Opts, mail};

fn reasons(msgs: &[Value]) -> Vec<String> {
    msgs.iter()
        .map(|m| m["match_reason"].as_str().unwrap().to_string())
        .collect()
}

fn kinds(msgs: &[Value]) -> Vec<String> {
    msgs.iter()
        .map(|m| m["kind"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn new_ticket_is_acknowledged_with_loop_and_threading_headers() {
    let desk = Desk::start();
    desk.deliver(&mail(
        "Ann Customer <ann@customer.org>",
        "support@example.com",
        "Printer on fire",
        "first@customer.org",
        "",
        "Help, my printer is on fire.",
    ));
    let report = desk.run_once();
    assert_eq!(report["new_tickets"], 1);
    assert_eq!(report["sent"], 1);

    let tickets = desk.tickets();
    assert_eq!(tickets.len(), 1);
    let t = desk.show(tickets[0]["id"].as_i64().unwrap());
    assert_eq!(t["subject"], "Printer on fire");
    assert_eq!(t["status"], "open");
    assert_eq!(t["priority"], "normal");
    assert_eq!(t["customer"]["email"], "ann@customer.org");
    assert_eq!(t["customer"]["name"], "Ann Customer");
    let msgs = t["messages"].as_array().unwrap();
    assert_eq!(kinds(msgs), ["customer", "auto_reply"]);
    assert_eq!(msgs[0]["direction"], "inbound");
    assert_eq!(msgs[0]["message_id"], "first@customer.org");
    assert_eq!(msgs[0]["match_reason"], "new_ticket");
    assert_eq!(msgs[0]["body_text"], "Help, my printer is on fire.");
    assert_eq!(msgs[0]["channel"], "email");
    assert_eq!(msgs[1]["direction"], "outbound");
    assert_eq!(msgs[1]["delivery"], "sent");

    let sent = desk.sent(1);
    assert_eq!(sent.len(), 1);
    let ack = &sent[0];
    assert_eq!(ack.rcpt_to, vec!["ann@customer.org"]);
    let id = t["id"].as_i64().unwrap();
    assert!(
        ack.subject().contains(&format!("[#{id}]")),
        "{}",
        ack.subject()
    );
    assert_eq!(
        ack.header_raw("Auto-Submitted").unwrap().trim(),
        "auto-replied"
    );
    assert_eq!(
        ack.header_raw("X-Auto-Response-Suppress").unwrap().trim(),
        "All"
    );
    assert!(
        ack.header_raw("In-Reply-To")
            .unwrap()
            .contains("<first@customer.org>")
    );
    assert!(
        ack.header_raw("References")
            .unwrap()
            .contains("<first@customer.org>")
    );
    let reply_to = ack.header_raw("Reply-To").unwrap();
    assert!(reply_to.contains("support+"), "{reply_to}");
    let our_id = ack.header_raw("Message-ID").unwrap();
    assert!(our_id.contains("@example.com>"), "{our_id}");
    assert_eq!(
        msgs[1]["message_id"],
        our_id.trim().trim_matches(['<', '>'])
    );

    // A second cycle finds nothing new and sends nothing more.
    let report = desk.run_once();
    assert_eq!(report["fetched"], 0);
    assert_eq!(report["sent"], 0);
    assert_eq!(desk.smtp.messages().len(), 1);
}

#[test]
fn reply_by_references_joins_the_ticket_without_a_second_ack() {
    let desk = Desk::start();
    desk.deliver(&mail(
        "ann@customer.org",
        "support@example.com",
        "Invoice question",
        "q1@customer.org",
        "",
        "Where is my invoice?",
    ));
    desk.run_once();
    let ack_id = desk.sent(1)[0]
        .header_raw("Message-ID")
        .unwrap()
        .trim()
        .to_string();
    // The customer replies to the acknowledgement, with a changed subject.
    desk.deliver(&mail(
        "ann@customer.org",
        "support@example.com",
        "something else entirely",
        "q2@customer.org",
        &format!("In-Reply-To: {ack_id}\r\nReferences: <q1@customer.org> {ack_id}\r\n"),
        "Also, the amount is wrong.",
    ));
    let report = desk.run_once();
    assert_eq!(report["joined"], 1);
    assert_eq!(report["new_tickets"], 0);
    let tickets = desk.tickets();
    assert_eq!(tickets.len(), 1);
    let msgs = desk.messages(tickets[0]["id"].as_i64().unwrap());
    assert_eq!(reasons(&msgs), ["new_ticket", "outbound", "references"]);
    assert_eq!(
        desk.smtp.messages().len(),
        1,
        "no acknowledgement for a reply"
    );
}

#[test]
fn reply_token_address_routes_to_the_ticket() {
    let desk = Desk::start();
    desk.deliver(&mail(
        "ann@customer.org",
        "support@example.com",
        "Token test",
        "t1@customer.org",
        "",
        "hello",
    ));
    desk.run_once();
    let reply_to = desk.sent(1)[0].header("Reply-To").unwrap();
    let token_addr = crate::harness::addr_of(&reply_to);
    // New subject, no threading headers: only the token address links it.
    desk.deliver(&mail(
        "other@elsewhere.org",
        &token_addr,
        "unrelated",
        "t2@elsewhere.org",
        "",
        "via token",
    ));
    desk.run_once();
    let tickets = desk.tickets();
    assert_eq!(tickets.len(), 1, "{tickets:?}");
    let msgs = desk.messages(tickets[0]["id"].as_i64().unwrap());
    assert_eq!(msgs.last().unwrap()["match_reason"], "reply_token");
}

#[test]
fn subject_tag_counts_only_for_participants() {
    let desk = Desk::start();
    desk.deliver(&mail(
        "ann@customer.org",
        "support@example.com",
        "Broken login",
        "l1@customer.org",
        "",
        "I cannot log in",
    ));
    desk.run_once();
    let id = desk.tickets()[0]["id"].as_i64().unwrap();

    // Broken References (unknown id) but [#N] from the ticket's customer: joins by tag.
    desk.deliver(&mail(
        "ann@customer.org",
        "support@example.com",
        &format!("Re: [#{id}] Broken login"),
        "l2@customer.org",
        "In-Reply-To: <lost@mail.customer.org>\r\nReferences: <lost@mail.customer.org>\r\n",
        "Still broken",
    ));
    // A stranger quoting the same number does not get in.
    desk.deliver(&mail(
        "mallory@evil.example",
        "support@example.com",
        &format!("[#{id}] Broken login"),
        "m1@evil.example",
        "",
        "let me see that ticket",
    ));
    desk.run_once();
    let tickets = desk.tickets();
    assert_eq!(tickets.len(), 2, "the stranger gets a ticket of their own");
    let first = desk.messages(id);
    assert_eq!(reasons(&first), ["new_ticket", "outbound", "subject_tag"]);
    assert!(first.iter().all(|m| m["from"] != "mallory@evil.example"));
    let other = tickets
        .iter()
        .find(|t| t["id"].as_i64() != Some(id))
        .unwrap();
    assert_eq!(other["customer"]["email"], "mallory@evil.example");
    let msgs = desk.messages(other["id"].as_i64().unwrap());
    assert_eq!(msgs[0]["match_reason"], "new_ticket");
}

#[test]
fn chinese_outlook_and_qq_replies_thread_by_subject() {
    let desk = Desk::start();
    desk.deliver(&mail(
        "王伟 <wang@customer.cn>",
        "support@example.com",
        "打印机无法连接",
        "c1@customer.cn",
        "",
        "打印机无法连接网络。",
    ));
    desk.run_once();
    // Outlook zh-CN: GB2312 encoded word "答复: 打印机无法连接", References lost.
    desk.deliver(&mail(
        "wang@customer.cn",
        "support@example.com",
        "=?gb2312?B?tPC4tDog?= =?gb2312?B?tPLTobv6zt63qMGsvdM=?=",
        "c2@customer.cn",
        "Thread-Topic: =?gb2312?B?tPLTobv6zt63qMGsvdM=?=\r\n",
        "还是不行。",
    ));
    // QQ Mail: GB18030, full-width colon, no space: "回复：打印机无法连接".
    desk.deliver(&mail(
        "wang@customer.cn",
        "support@example.com",
        "=?gb18030?B?u9i4tKO6tPLTobv6zt63qMGsvdM=?=",
        "c3@customer.cn",
        "",
        "请尽快处理",
    ));
    desk.run_once();
    let tickets = desk.tickets();
    assert_eq!(tickets.len(), 1, "{tickets:#?}");
    let msgs = desk.messages(tickets[0]["id"].as_i64().unwrap());
    assert_eq!(
        reasons(&msgs),
        ["new_ticket", "outbound", "subject_sender", "subject_sender"]
    );
    assert_eq!(msgs[2]["subject"], "答复: 打印机无法连接");
    assert_eq!(msgs[3]["subject"], "回复：打印机无法连接");
    assert_eq!(desk.smtp.messages().len(), 1);
}

#[test]
fn the_same_mail_in_two_mailboxes_is_one_message() {
    let desk = Desk::with(Opts {
        two_mailboxes: true,
        ..Opts::default()
    });
    let body = mail(
        "ann@customer.org",
        "support@example.com",
        "Copied to both",
        "both@customer.org",
        "Cc: sales@example.com\r\n",
        "Hello both teams",
    );
    // Each copy carries its own trace header, as a real MTA would add.
    let mut a = b"Delivered-To: support@example.com\r\n".to_vec();
    a.extend_from_slice(&body);
    let mut b = b"Delivered-To: sales@example.com\r\nReceived: from mx by mx2; Tue, 24 Nov 2026 10:00:01 +0000\r\n".to_vec();
    b.extend_from_slice(&body);
    desk.dovecot.append("support", "INBOX", &a, &[]);
    desk.dovecot.append("sales", "INBOX", &b, &[]);
    let report = desk.run_once();
    assert_eq!(report["fetched"], 2);
    assert_eq!(report["new_tickets"], 1);
    assert_eq!(report["duplicates"], 1);
    assert_eq!(desk.tickets().len(), 1);
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM messages WHERE direction = 'inbound'"),
        1
    );
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM message_sources"),
        2,
        "both copies are recorded"
    );
    assert_eq!(desk.sent(1).len(), 1);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(desk.smtp.messages().len(), 1, "one acknowledgement only");
}

#[test]
fn auto_replies_and_bounces_get_no_acknowledgement() {
    let desk = Desk::start();
    desk.deliver(&mail(
        "ann@customer.org",
        "support@example.com",
        "Order 55",
        "o1@customer.org",
        "",
        "Where is order 55?",
    ));
    desk.run_once();
    let ack = desk.sent(1).remove(0);
    let ack_id = ack.header_raw("Message-ID").unwrap().trim().to_string();
    let id = desk.tickets()[0]["id"].as_i64().unwrap();

    // The customer's out-of-office answers our acknowledgement.
    desk.deliver(&mail(
        "ann@customer.org",
        "support@example.com",
        "Automatic reply: Order 55",
        "ooo@customer.org",
        &format!(
            "Auto-Submitted: auto-replied\r\nIn-Reply-To: {ack_id}\r\nReferences: {ack_id}\r\n"
        ),
        "I am out of the office until Monday.",
    ));
    // A fresh auto-generated mail from a new sender: stored, but not acknowledged.
    desk.deliver(&mail(
        "alerts@monitoring.example",
        "support@example.com",
        "Disk almost full",
        "alert1@monitoring.example",
        "Auto-Submitted: auto-generated\r\nPrecedence: bulk\r\n",
        "Disk 93% full",
    ));
    // A delivery status notification for our acknowledgement.
    let dsn = format!(
        "Return-Path: <>\r\nFrom: Mail Delivery System <MAILER-DAEMON@mx.customer.org>\r\nTo: support@example.com\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn1@mx.customer.org>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.customer.org\r\n\r\nFinal-Recipient: rfc822; ann@customer.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: support@example.com\r\nTo: ann@customer.org\r\nMessage-ID: {ack_id}\r\nSubject: {subj}\r\n\r\n--B--\r\n",
        subj = ack.subject()
    );
    desk.deliver(dsn.as_bytes());
    let report = desk.run_once();
    assert_eq!(report["sent"], 0);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        desk.smtp.messages().len(),
        1,
        "nothing but the first acknowledgement was sent"
    );

    let tickets = desk.tickets();
    assert_eq!(
        tickets.len(),
        2,
        "the bounce opened no ticket; the alert did"
    );
    let t = desk.show(id);
    let msgs = t["messages"].as_array().unwrap();
    assert_eq!(
        kinds(msgs),
        ["customer", "auto_reply", "auto_submitted", "bounce"]
    );
    assert_eq!(msgs[3]["match_reason"], "bounce");
    assert_eq!(
        t["customer"]["bouncing"], true,
        "the bounced address is marked"
    );
    let alert = tickets
        .iter()
        .find(|t| t["id"].as_i64() != Some(id))
        .unwrap();
    let alert_msgs = desk.messages(alert["id"].as_i64().unwrap());
    assert_eq!(kinds(&alert_msgs), ["auto_submitted"]);
}

#[test]
fn crash_between_commit_and_flag_loses_and_duplicates_nothing() {
    let desk = Desk::with(Opts {
        after_ingest: "after_ingest = \"flag\"\ningest_flag = \"$Postdesk\"",
        ..Opts::default()
    });
    let first = mail(
        "ann@customer.org",
        "support@example.com",
        "Crash test",
        "crash1@customer.org",
        "",
        "body",
    );
    let uid = desk.deliver(&first);
    let out = desk.cmd_env(
        &["run", "--once"],
        &[("POSTDESK_FAULT", "crash-after-commit")],
    );
    assert!(
        !out.status.success(),
        "the fault hook must abort the process"
    );
    // The raw bytes were on disk before the COMMIT that refers to them.
    let raw = desk.cmd(&["message", "raw", "<crash1@customer.org>"]);
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    assert_eq!(raw.stdout, first);
    // Committed, but the server was not touched and nothing was sent yet.
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM messages WHERE direction = 'inbound'"),
        1
    );
    assert_eq!(desk.count("SELECT COUNT(*) FROM pending_actions"), 1);
    assert!(
        !desk
            .dovecot
            .flags("support", "INBOX", uid)
            .iter()
            .any(|f| f == "$Postdesk")
    );
    assert!(desk.smtp.messages().is_empty());

    let report = desk.run_once();
    assert_eq!(
        report["fetched"], 0,
        "the watermark was committed with the message"
    );
    assert_eq!(
        report["sent"], 1,
        "the queued acknowledgement goes out after the restart"
    );
    assert!(
        desk.dovecot
            .flags("support", "INBOX", uid)
            .iter()
            .any(|f| f == "$Postdesk")
    );
    assert_eq!(desk.count("SELECT COUNT(*) FROM pending_actions"), 0);
    assert_eq!(desk.tickets().len(), 1);
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM messages WHERE direction = 'inbound'"),
        1
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(desk.smtp.messages().len(), 1);

    // Mail after the restart is appended behind what the crashed run wrote; both read back.
    let second = mail(
        "ann@customer.org",
        "support@example.com",
        "After the crash",
        "crash2@customer.org",
        "",
        "second body",
    );
    desk.deliver(&second);
    desk.run_once();
    let raw2 = desk.cmd(&["message", "raw", "<crash2@customer.org>"]);
    assert_eq!(raw2.stdout, second);
    let raw1 = desk.cmd(&["message", "raw", "<crash1@customer.org>"]);
    assert_eq!(raw1.stdout, first);
}

#[test]
fn uidvalidity_change_resyncs_without_duplicates() {
    let desk = Desk::start();
    desk.deliver(&mail(
        "a@customer.org",
        "support@example.com",
        "One",
        "u1@customer.org",
        "",
        "1",
    ));
    desk.deliver(&mail(
        "b@customer.org",
        "support@example.com",
        "Two",
        "u2@customer.org",
        "",
        "2",
    ));
    desk.run_once();
    let before = desk.dovecot.uid_validity("support", "INBOX");
    desk.dovecot.reset_uid_validity("support", "INBOX");
    assert_ne!(before, desk.dovecot.uid_validity("support", "INBOX"));
    desk.deliver(&mail(
        "c@customer.org",
        "support@example.com",
        "Three",
        "u3@customer.org",
        "",
        "3",
    ));
    let (report, logs) = desk.run_once_logs();
    assert!(logs.contains("UIDVALIDITY changed"), "{logs}");
    assert_eq!(report["fetched"], 3, "the whole folder is fetched again");
    assert_eq!(report["duplicates"], 2);
    assert_eq!(report["new_tickets"], 1);
    assert_eq!(desk.tickets().len(), 3);
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM messages WHERE direction = 'inbound'"),
        3
    );
}

#[test]
fn mail_a_person_already_read_is_ingested() {
    let desk = Desk::start();
    let uid = desk.dovecot.append(
        "support",
        "INBOX",
        &mail(
            "ann@customer.org",
            "support@example.com",
            "Seen already",
            "seen1@customer.org",
            "",
            "read by a human first",
        ),
        &["\\Seen"],
    );
    let report = desk.run_once();
    assert_eq!(report["new_tickets"], 1);
    assert_eq!(desk.tickets().len(), 1);
    // BODY.PEEK[] leaves flags alone.
    assert_eq!(
        desk.dovecot.flags("support", "INBOX", uid),
        vec!["\\Seen".to_string()]
    );
}

#[test]
fn fetching_does_not_mark_unread_mail_seen_and_move_works() {
    let desk = Desk::with(Opts {
        after_ingest: "after_ingest = \"move\"\nmove_to = \"Processed\"",
        ..Opts::default()
    });
    desk.dovecot.create_folder("support", "Processed");
    desk.deliver(&mail(
        "ann@customer.org",
        "support@example.com",
        "Move me",
        "mv1@customer.org",
        "",
        "x",
    ));
    desk.run_once();
    assert!(
        desk.dovecot.uids("support", "INBOX").is_empty(),
        "moved out of INBOX"
    );
    let moved = desk.dovecot.uids("support", "Processed");
    assert_eq!(moved.len(), 1);
    assert!(
        !desk
            .dovecot
            .flags("support", "Processed", moved[0])
            .iter()
            .any(|f| f == "\\Seen")
    );
    assert_eq!(desk.tickets().len(), 1);
}

#[test]
fn replies_arriving_before_their_original_still_make_one_ticket() {
    let desk = Desk::start();
    // The reply (UID 1) arrives before the message it answers (UID 2).
    desk.deliver(&mail(
        "ann@customer.org",
        "support@example.com",
        "Re: Late original",
        "r2@customer.org",
        "In-Reply-To: <r1@customer.org>\r\nReferences: <r1@customer.org>\r\n",
        "follow-up",
    ));
    desk.deliver(&mail(
        "ann@customer.org",
        "support@example.com",
        "Late original",
        "r1@customer.org",
        "",
        "original",
    ));
    desk.deliver(&mail(
        "bob@customer.org",
        "support@example.com",
        "Re: Late original",
        "r3@customer.org",
        "In-Reply-To: <r1@customer.org>\r\nReferences: <r1@customer.org>\r\n",
        "me too",
    ));
    desk.run_once();
    let tickets = desk.tickets();
    assert_eq!(tickets.len(), 1, "{tickets:#?}");
    let msgs = desk.messages(tickets[0]["id"].as_i64().unwrap());
    let inbound: Vec<_> = msgs
        .iter()
        .filter(|m| m["direction"] == "inbound")
        .collect();
    assert_eq!(inbound.len(), 3);
    assert_eq!(inbound[1]["match_reason"], "referenced_by");
    assert_eq!(inbound[2]["match_reason"], "references");
}

#[test]
fn resolved_ticket_reopens_but_not_for_thanks_and_closed_opens_a_linked_ticket() {
    let desk = Desk::with(Opts {
        autoreply: false,
        ..Opts::default()
    });
    desk.deliver(&mail(
        "ann@customer.org",
        "support@example.com",
        "Reopen me",
        "ro1@customer.org",
        "",
        "problem",
    ));
    desk.run_once();
    let id = desk.tickets()[0]["id"].as_i64().unwrap();
    let set_status = |s: &str| {
        desk.count(&format!(
            "UPDATE tickets SET status = '{s}' WHERE id = {id} RETURNING 1"
        ));
    };
    set_status("resolved");
    desk.deliver(&mail(
        "ann@customer.org",
        "support@example.com",
        "Re: Reopen me",
        "ro2@customer.org",
        "In-Reply-To: <ro1@customer.org>\r\n",
        "Thanks!\r\n\r\nOn Tue, Ann wrote:\r\n> problem",
    ));
    desk.run_once();
    assert_eq!(
        desk.show(id)["status"],
        "resolved",
        "a courtesy reply does not reopen"
    );
    desk.deliver(&mail(
        "ann@customer.org",
        "support@example.com",
        "Re: Reopen me",
        "ro3@customer.org",
        "In-Reply-To: <ro1@customer.org>\r\n",
        "It is broken again, please help.",
    ));
    desk.run_once();
    assert_eq!(desk.show(id)["status"], "open");
    set_status("closed");
    desk.deliver(&mail(
        "ann@customer.org",
        "support@example.com",
        "Re: Reopen me",
        "ro4@customer.org",
        "In-Reply-To: <ro1@customer.org>\r\n",
        "And again.",
    ));
    desk.run_once();
    let tickets = desk.tickets();
    assert_eq!(tickets.len(), 2);
    let new = tickets
        .iter()
        .find(|t| t["id"].as_i64() != Some(id))
        .unwrap();
    assert_eq!(new["linked_ticket_id"], id);
    assert_eq!(desk.show(id)["status"], "closed");
    let msgs = desk.messages(new["id"].as_i64().unwrap());
    assert_eq!(msgs[0]["match_reason"], "new_ticket_after_closed");
}

#[test]
fn smtp_failures_retry_on_4xx_and_stop_on_5xx_with_the_same_message_id() {
    let desk = Desk::start();
    desk.smtp.fail_next(451);
    desk.deliver(&mail(
        "ann@customer.org",
        "support@example.com",
        "Retry me",
        "rt1@customer.org",
        "",
        "x",
    ));
    let report = desk.run_once();
    assert_eq!(report["retrying"], 1);
    assert!(desk.smtp.messages().is_empty());
    // retry_base_secs = 0 in the test config: the retry is due at once.
    let report = desk.run_once();
    assert_eq!(report["sent"], 1);
    let sent = desk.sent(1);
    let t = desk.show(desk.tickets()[0]["id"].as_i64().unwrap());
    let ack = &t["messages"][1];
    assert_eq!(
        sent[0]
            .header_raw("Message-ID")
            .unwrap()
            .trim()
            .trim_matches(['<', '>']),
        ack["message_id"].as_str().unwrap()
    );

    desk.smtp.fail_next(550);
    desk.deliver(&mail(
        "bob@customer.org",
        "support@example.com",
        "Fail me",
        "rt2@customer.org",
        "",
        "x",
    ));
    let report = desk.run_once();
    assert_eq!(report["failed"], 1);
    let report = desk.run_once();
    assert_eq!(report["sent"], 0, "a 5xx is not retried");
    assert_eq!(
        desk.count(
            "SELECT COUNT(*) FROM outbox WHERE status = 'failed' AND last_error LIKE '%550%'"
        ),
        1
    );
}

#[test]
fn acknowledgements_are_capped_per_sender_across_restarts() {
    let desk = Desk::start();
    for i in 0..5 {
        desk.deliver(&mail(
            "flood@customer.org",
            "support@example.com",
            &format!("Flood {i}"),
            &format!("f{i}@customer.org"),
            "",
            "x",
        ));
        // One process per message: the cap must hold across restarts.
        desk.run_once();
    }
    assert_eq!(desk.tickets().len(), 5);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        desk.smtp.messages().len(),
        3,
        "max_per_sender_per_hour defaults to 3"
    );
}

#[test]
fn a_second_instance_on_the_same_database_refuses_to_start() {
    let desk = Desk::start();
    let mut daemon = std::process::Command::new(crate::support::postdesk_bin())
        .arg("--config")
        .arg(&desk.config)
        .arg("run")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first one holds the lock.
    let lock = desk.dir.path().join("postdesk.db.lock");
    for _ in 0..100 {
        if std::fs::read_to_string(&lock).is_ok_and(|s| !s.is_empty()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = desk.cmd(&["run", "--once"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("another postdesk is already working"),
        "{stderr}"
    );

    // The daemon ingests new mail while running, then stops cleanly on SIGTERM.
    desk.deliver(&mail(
        "ann@customer.org",
        "support@example.com",
        "While running",
        "live1@customer.org",
        "",
        "x",
    ));
    let sent = desk.sent(1);
    assert_eq!(
        sent.len(),
        1,
        "the running daemon picked up the mail and acknowledged it"
    );
    let pid = daemon.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = daemon.wait().unwrap();
    assert!(
        status.success(),
        "SIGTERM must end the daemon cleanly: {status}"
    );
    assert_eq!(desk.tickets().len(), 1);
}

#[test]
fn inspection_commands_give_clear_errors() {
    let desk = Desk::start();
    desk.run_once();
    let out = desk.cmd(&["ticket", "show", "999", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ticket 999 does not exist"));
    let out = desk.cmd(&["ticket", "list", "--status", "done"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("done"));
    let out = desk.cmd(&["check-config"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_server_action_that_keeps_failing_never_stops_the_folder() {
    // Regression: a move to a folder that does not exist used to fail every sync before
    // its UID SEARCH, so nothing new was ever ingested from that folder again.
    let desk = Desk::with(Opts {
        after_ingest: "after_ingest = \"move\"\nmove_to = \"DoesNotExist\"",
        ..Opts::default()
    });
    let first = desk.deliver(&mail(
        "ann@customer.org",
        "support@example.com",
        "One",
        "mf1@customer.org",
        "",
        "x",
    ));
    let (_, logs) = desk.run_once_logs();
    assert!(logs.contains("will retry"), "{logs}");
    desk.deliver(&mail(
        "bob@customer.org",
        "support@example.com",
        "Two",
        "mf2@customer.org",
        "",
        "y",
    ));
    let report = desk.run_once();
    assert_eq!(report["fetched"], 1);
    assert_eq!(desk.tickets().len(), 2);
    // Both moves stay owed, and the mail stays where it was.
    assert_eq!(desk.count("SELECT COUNT(*) FROM pending_actions"), 2);
    assert!(desk.dovecot.uids("support", "INBOX").contains(&first));
    // Once the folder exists, the next cycle does the owed moves.
    desk.dovecot.create_folder("support", "DoesNotExist");
    desk.run_once();
    assert_eq!(desk.count("SELECT COUNT(*) FROM pending_actions"), 0);
    assert!(desk.dovecot.uids("support", "INBOX").is_empty());
    assert_eq!(desk.dovecot.uids("support", "DoesNotExist").len(), 2);
}
