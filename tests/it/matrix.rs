//! Issue 15: the Matrix bridge against a real Synapse homeserver (`support::synapse`,
//! SQLite, loopback), with real Dovecot and SMTP for the agents' side.

use std::time::Duration;

use serde_json::{Value, json};

use crate::agents::{AGENT_CONFIG, alice_reply, mails_to, token_of};
use crate::harness::{Desk, Opts, eventually};
use crate::support::synapse::Synapse;

fn matrix_desk(hs: &Synapse) -> Desk {
    let extra = format!(
        "{AGENT_CONFIG}\n[[channel.matrix]]\naccount = \"support\"\nhomeserver = \"{}\"\nuser = \"@support:localhost\"\npassword = \"bot-password\"\npoll_timeout_secs = 1\n",
        hs.url()
    );
    Desk::with(Opts {
        autoreply: false,
        notify: true,
        extra: Box::leak(extra.into_boxed_str()),
        ..Opts::default()
    })
}

#[test]
fn a_room_message_opens_a_ticket_the_mail_answer_reaches_the_room_and_a_restart_duplicates_nothing()
{
    let hs = Synapse::start();
    hs.register("support", "bot-password");
    hs.register("ann", "ann-password");
    let ann = hs.login("ann", "ann-password");
    // History from before postdesk's first run is not taken: a room the account was
    // already in (joined by hand here), with a message in it.
    let old_room = ann.create_room("@support:localhost");
    let bot_by_hand = hs.login("support", "bot-password");
    bot_by_hand.join(&old_room);
    ann.say(&old_room, "an old message nobody should file");

    let desk = matrix_desk(&hs);
    let mut d = desk.spawn_daemon(&[]);
    let ok = eventually(Duration::from_secs(30), || {
        d.log_text().contains("first sync; starting from now")
    });
    assert!(ok, "no first sync:\n{}\n{}", d.log_text(), hs.log());
    // The invitation is accepted.
    let room = ann.create_room("@support:localhost");
    let ok = eventually(Duration::from_secs(30), || {
        ann.joined_members(&room)
            .iter()
            .any(|m| m == "@support:localhost")
    });
    assert!(ok, "the bot never joined:\n{}", d.log_text());

    // 1. The customer's room message opens a ticket.
    let asked = ann.say(&room, "My parcel 8812 never arrived. Can you help?");
    let ok = eventually(Duration::from_secs(30), || {
        desk.try_count("SELECT COUNT(*) FROM tickets")
            .is_some_and(|n| n >= 1)
    });
    assert!(ok, "no ticket:\n{}", d.log_text());
    let ticket = desk.tickets()[0]["id"].as_i64().unwrap();
    let m = &desk.messages(ticket)[0];
    assert_eq!(m["channel"], "matrix");
    assert_eq!(m["account"], "support");
    assert_eq!(m["external_id"], asked);
    assert_eq!(m["conversation"], room);
    assert!(m["body_text"].as_str().unwrap().contains("parcel 8812"));
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM messages WHERE body_text LIKE '%old message%'"),
        0,
        "history from before the first run was filed"
    );

    // 2. The agent replies by mail; 3. the customer sees it in the room, as a reply.
    let mut n = None;
    let ok = eventually(Duration::from_secs(30), || {
        n = mails_to(&desk.smtp.messages(), "alice@example.com")
            .into_iter()
            .find(|m| m.subject().contains(&format!("[#{ticket}]")));
        n.is_some()
    });
    assert!(ok, "no notification");
    let n = n.unwrap();
    desk.deliver(&alice_reply(
        &token_of(&n),
        ticket,
        &n,
        "alice-mx-1@example.com",
        "Hello Ann, parcel 8812 is with the courier.",
    ));
    let ok = eventually(Duration::from_secs(30), || {
        ann.messages(&room)
            .iter()
            .any(|(s, b, _)| s == "@support:localhost" && b.contains("with the courier"))
    });
    assert!(ok, "the answer never reached the room:\n{}", d.log_text());
    let answers: Vec<_> = ann
        .messages(&room)
        .into_iter()
        .filter(|(s, _, _)| s == "@support:localhost")
        .collect();
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(
        answers[0].2.as_deref(),
        Some(asked.as_str()),
        "not a reply to Ann"
    );
    // 4. A restart re-syncs from the stored token, and a restart with the token lost
    // (a database restored from before) re-reads nothing twice.
    // Ann answers our message as a reply: its event id was recorded when it was sent,
    // so the reply joins the ticket by it.
    let ours = desk.query_string(
        "SELECT external_id FROM chat_sent WHERE channel = 'matrix' AND account = 'support'",
    );
    assert!(ours.starts_with('$'), "{ours:?}");
    ann.reply(&room, &ours, "Thank you!");
    let ok = eventually(Duration::from_secs(30), || {
        desk.count("SELECT COUNT(*) FROM messages WHERE body_text = 'Thank you!'") == 1
    });
    assert!(ok, "{}", d.log_text());
    assert_eq!(
        desk.query_string("SELECT match_reason FROM messages WHERE body_text = 'Thank you!'"),
        "chat_reply"
    );
    // The bot's own answer, synced back before "Thank you!", was not filed as a message.
    assert_eq!(
        desk.count(
            "SELECT COUNT(*) FROM messages WHERE channel = 'matrix' AND direction = 'inbound'"
        ),
        2
    );

    // An image is downloaded through the authenticated media API and kept with the
    // message; media that cannot be had (missing, or an address that tries to climb out
    // of the media path) leave a line saying so, and the message is filed all the same.
    let image: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mxc = ann.upload("image/png", &image);
    ann.send_file(&room, "m.image", &mxc, "receipt.png", "image/png");
    ann.send_file(
        &room,
        "m.file",
        "mxc://localhost/NoSuchMedia",
        "gone.pdf",
        "application/pdf",
    );
    ann.send_file(
        &room,
        "m.file",
        "mxc://localhost/../../admin",
        "evil.pdf",
        "application/pdf",
    );
    let ok = eventually(Duration::from_secs(30), || {
        desk.count(
            "SELECT COUNT(*) FROM messages WHERE channel = 'matrix' AND direction = 'inbound'",
        ) == 5
    });
    assert!(ok, "{}", d.log_text());
    let msgs = desk.messages(ticket);
    let with = |needle: &str| {
        msgs.iter()
            .find(|m| m["body_text"].as_str().unwrap_or("").contains(needle))
            .unwrap_or_else(|| panic!("no message with {needle:?}: {msgs:#?}"))
            .clone()
    };
    let img = with("receipt.png");
    assert_eq!(img["attachments"][0]["filename"], "receipt.png", "{img:#}");
    assert_eq!(img["attachments"][0]["content_type"], "image/png");
    assert_eq!(img["attachments"][0]["size"], json!(image.len()), "{img:#}");
    let raw = desk.cmd(&["message", "raw", &img["id"].as_i64().unwrap().to_string()]);
    let raw: Value = serde_json::from_slice(&raw.stdout).unwrap();
    use base64::Engine as _;
    let kept = base64::engine::general_purpose::STANDARD
        .decode(raw["files"][0]["data_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        kept, image,
        "the stored image differs from the uploaded one"
    );
    assert!(
        with("gone.pdf")["body_text"]
            .as_str()
            .unwrap()
            .contains("the file was not kept: the homeserver answered 404"),
        "{msgs:#?}"
    );
    assert!(
        with("evil.pdf")["body_text"]
            .as_str()
            .unwrap()
            .contains("is no mxc:// address"),
        "{msgs:#?}"
    );
    d.terminate();
    let before = desk.count("SELECT COUNT(*) FROM messages WHERE channel = 'matrix'");
    let stored = desk.query_string("SELECT cursor FROM channel_cursors WHERE channel = 'matrix'");
    assert!(!stored.is_empty());
    // While postdesk is down, more than a sync's timeline holds (100): the timeline
    // comes back limited and the gap is backfilled.
    for i in 0..105 {
        ann.say(
            &room,
            &format!("written while postdesk was down, number {i}"),
        );
    }
    let d2 = desk.spawn_daemon(&[]);
    let ok = eventually(Duration::from_secs(60), || {
        desk.count("SELECT COUNT(*) FROM messages WHERE channel = 'matrix'") == before + 105
    });
    assert!(
        ok,
        "expected {} messages, found {}:\n{}",
        before + 105,
        desk.count("SELECT COUNT(*) FROM messages WHERE channel = 'matrix'"),
        d2.log_text()
    );
    assert!(
        d2.log_text().contains("timeline was limited"),
        "{}",
        d2.log_text()
    );
    assert_eq!(desk.tickets().len(), 1);
    assert_eq!(
        desk.count(
            "SELECT COUNT(*) FROM messages WHERE channel = 'matrix' AND direction = 'outbound'"
        ),
        1,
        "the answer was sent again"
    );
}
