//! Profiles on a real database: what history counts, the import's upsert, notes, and a
//! language set by a person surviving triage.

use super::*;
use crate::store::Store;
use crate::store::tickets::{NewTicket, insert_ticket, upsert_customer};
use crate::store::triage::{TriageWrites, write_batch};

const T0: &str = "2026-11-01T00:00:00.000000Z";

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("p.db")).await.unwrap();
    (dir, store)
}

async fn ticket(c: &mut SqliteConnection, customer: i64, n: u32) -> TicketId {
    insert_ticket(
        c,
        &NewTicket {
            subject: "Help",
            subject_key: "help",
            customer_id: customer,
            token: &format!("tok{n:030}"),
            linked_ticket_id: None,
            now: T0,
        },
    )
    .await
    .unwrap()
}

async fn message(
    c: &mut SqliteConnection,
    ticket: TicketId,
    kind: &str,
    channel: &str,
    sentiment: f64,
    at: &str,
) {
    sqlx::query(
        "INSERT INTO messages (ticket_id, message_id, direction, kind, channel, match_reason, \
         sentiment, created_at) VALUES (?, ?, 'inbound', ?, ?, 'new', ?, ?)",
    )
    .bind(ticket)
    .bind(format!("{}@test", rand::random::<u64>()))
    .bind(kind)
    .bind(channel)
    .bind(sentiment)
    .bind(at)
    .execute(c)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_profile_counts_tickets_complaints_contacts_and_channels() {
    let (_d, s) = store().await;
    let mut c = s.pool().acquire().await.unwrap();
    let ann = upsert_customer(&mut c, "ann@customer.org", Some("Ann"), T0)
        .await
        .unwrap();
    let other = upsert_customer(&mut c, "zed@customer.org", None, T0)
        .await
        .unwrap();
    let calm = ticket(&mut c, ann, 1).await;
    let angry = ticket(&mut c, ann, 2).await;
    let alerted = ticket(&mut c, ann, 3).await;
    let merged = ticket(&mut c, ann, 4).await;
    let elsewhere = ticket(&mut c, other, 5).await;
    message(
        &mut c,
        calm,
        "customer",
        "email",
        0.2,
        "2026-11-02T10:00:00.000000Z",
    )
    .await;
    message(
        &mut c,
        calm,
        "agent_reply",
        "sms",
        -0.9,
        "2026-11-30T10:00:00.000000Z",
    )
    .await;
    message(
        &mut c,
        angry,
        "customer",
        "json",
        -0.5,
        "2026-11-05T10:00:00.000000Z",
    )
    .await;
    message(
        &mut c,
        alerted,
        "customer",
        "email",
        0.0,
        "2026-11-09T10:00:00.000000Z",
    )
    .await;
    message(
        &mut c,
        elsewhere,
        "customer",
        "sms",
        -1.0,
        "2026-10-01T10:00:00.000000Z",
    )
    .await;
    sqlx::query(
        "INSERT INTO alerts (ticket_id, reason, raised_at, report_due) VALUES (?, 'urgent', ?, ?)",
    )
    .bind(alerted)
    .bind(T0)
    .bind(T0)
    .execute(&mut *c)
    .await
    .unwrap();
    sqlx::query("UPDATE tickets SET merged_into = ? WHERE id = ?")
        .bind(calm)
        .bind(merged)
        .execute(&mut *c)
        .await
        .unwrap();
    sqlx::query("UPDATE customers SET given_email = 'ann.private@example.net' WHERE id = ?")
        .bind(ann)
        .execute(&mut *c)
        .await
        .unwrap();

    let p = customer_profile(&mut c, "ANN@customer.org").await.unwrap();
    assert_eq!(p.id, ann);
    assert_eq!(p.addresses, ["ann@customer.org", "ann.private@example.net"]);
    assert_eq!(p.tickets, 3, "the merged-away ticket is not one of its own");
    assert_eq!(
        p.complaints, 2,
        "sentiment -0.5 and a red alert; an agent's -0.9 is not the customer's"
    );
    assert_eq!(
        p.first_contact.as_deref(),
        Some("2026-11-02T10:00:00.000000Z")
    );
    assert_eq!(
        p.last_contact.as_deref(),
        Some("2026-11-09T10:00:00.000000Z")
    );
    assert_eq!(p.channels, ["email", "json"]);
    assert_eq!(
        (p.tier.as_str(), p.language_source.as_deref()),
        ("standard", None)
    );
    assert_eq!(p.satisfaction, None);
    // Found by the address they gave too.
    assert_eq!(
        customer_profile(&mut c, "ann.private@example.net")
            .await
            .unwrap()
            .id,
        ann
    );
    assert!(matches!(
        customer_profile(&mut c, "nobody@example.org").await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn import_upserts_by_address_merges_attributes_and_marks_the_language() {
    let (_d, s) = store().await;
    let mut c = s.pool().acquire().await.unwrap();
    upsert_customer(&mut c, "ann@customer.org", Some("Ann"), T0)
        .await
        .unwrap();
    let row = |email: &str, tier: Option<&str>, attrs: &[(&str, &str)]| ImportRow {
        email: email.into(),
        tier: tier.map(str::to_string),
        attributes: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..ImportRow::default()
    };
    let mut first = row(
        "ann@customer.org",
        Some("vip"),
        &[("region", "EU"), ("seats", "10")],
    );
    first.company = Some("ACME".into());
    first.language = Some("de".into());
    let mut tx = s.begin_write().await.unwrap();
    let counts = import_customers(
        &mut tx,
        &[first, row("bob@customer.org", None, &[("seats", "2")])],
        T0,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        counts,
        ImportCounts {
            created: 1,
            updated: 1
        }
    );

    let ann = customer_profile(&mut c, "ann@customer.org").await.unwrap();
    assert_eq!(ann.name.as_deref(), Some("Ann"), "no name column: kept");
    assert_eq!(
        (ann.tier.as_str(), ann.company.as_deref()),
        ("vip", Some("ACME"))
    );
    assert_eq!(
        (ann.language.as_deref(), ann.language_source.as_deref()),
        (Some("de"), Some("import"))
    );
    let bob = customer_profile(&mut c, "bob@customer.org").await.unwrap();
    assert_eq!(
        (bob.tier.as_str(), bob.language_source),
        ("standard".to_string().as_str(), None)
    );

    // A second import changes what it names and merges the custom fields.
    let mut tx = s.begin_write().await.unwrap();
    let counts = import_customers(
        &mut tx,
        &[row("ann@customer.org", None, &[("seats", "12")])],
        T0,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        counts,
        ImportCounts {
            created: 0,
            updated: 1
        }
    );
    let ann = customer_profile(&mut c, "ann@customer.org").await.unwrap();
    assert_eq!(ann.tier, "vip", "an empty tier changes nothing");
    assert_eq!(ann.attributes.get("seats"), Some(&serde_json::json!("12")));
    assert_eq!(ann.attributes.get("region"), Some(&serde_json::json!("EU")));
    let vips = customer_list(&mut c, Some("VIP")).await.unwrap();
    assert_eq!(vips.len(), 1);
    assert_eq!(vips[0].email, "ann@customer.org");
    assert_eq!(customer_list(&mut c, None).await.unwrap().len(), 2);
}

#[tokio::test]
async fn notes_tier_and_language_are_recorded_with_events() {
    let (_d, s) = store().await;
    let mut c = s.pool().acquire().await.unwrap();
    let ann = upsert_customer(&mut c, "ann@customer.org", None, T0)
        .await
        .unwrap();
    let t = ticket(&mut c, ann, 1).await;
    add_note(&mut c, ann, "alice", Some(t), "prefers phone callback", T0)
        .await
        .unwrap();
    add_note(
        &mut c,
        ann,
        "bob",
        None,
        "second",
        "2026-11-02T00:00:00.000000Z",
    )
    .await
    .unwrap();
    assert_eq!(
        set_tier(&mut c, ann, "vip", Some(t), T0).await.unwrap(),
        "standard"
    );
    assert_eq!(
        set_tier(&mut c, ann, "vip", Some(t), T0).await.unwrap(),
        "vip"
    );
    assert_eq!(
        set_language(&mut c, ann, "fr", Some(t), T0).await.unwrap(),
        None
    );

    let p = customer_profile(&mut c, "ann@customer.org").await.unwrap();
    let notes: Vec<(&str, &str, Option<i64>)> = p
        .notes
        .iter()
        .map(|n| (n.text.as_str(), n.agent.as_str(), n.ticket_id))
        .collect();
    assert_eq!(
        notes,
        [
            ("second", "bob", None),
            ("prefers phone callback", "alice", Some(t))
        ]
    );
    assert_eq!(
        (p.language.as_deref(), p.language_source.as_deref()),
        (Some("fr"), Some("agent"))
    );
    let events: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE kind = 'profile_changed'")
            .fetch_one(&mut *c)
            .await
            .unwrap();
    assert_eq!(
        events, 4,
        "two notes, one tier change (not the no-op), one language"
    );

    let extras = notify_profiles(&mut c, &[ann]).await.unwrap();
    let e = &extras[&ann];
    assert!(e.language_set);
    assert_eq!(e.notes[0].0, "second");
    assert_eq!(
        e.notes[1],
        (
            "prefers phone callback".to_string(),
            "alice".to_string(),
            "2026-11-01".to_string()
        )
    );
}

#[tokio::test]
async fn triage_does_not_overwrite_a_language_a_person_set() {
    let (_d, s) = store().await;
    let mut c = s.pool().acquire().await.unwrap();
    let set = upsert_customer(&mut c, "ann@customer.org", None, T0)
        .await
        .unwrap();
    let detected = upsert_customer(&mut c, "bob@customer.org", None, T0)
        .await
        .unwrap();
    set_language(&mut c, set, "de", None, T0).await.unwrap();
    let w = TriageWrites {
        languages: vec![(set, "en".into()), (detected, "en".into())],
        ..TriageWrites::default()
    };
    write_batch(&mut c, &w, T0).await.unwrap();
    let ann = customer_profile(&mut c, "ann@customer.org").await.unwrap();
    assert_eq!(ann.language.as_deref(), Some("de"));
    let bob = customer_profile(&mut c, "bob@customer.org").await.unwrap();
    assert_eq!(
        (bob.language.as_deref(), bob.language_source.as_deref()),
        (Some("en"), Some("detected"))
    );
}
