//! The monthly report to admins (agents with `admin = true`): agents' feedback grouped by
//! theme (most frequent first, with the texts), the month's knowledge-base requests by
//! topic, the bot's corrections by predicted → correct, and forced-human matches by topic.
//!
//! `watch::tick` calls [`monthly_pass`]: from the first tick of a month on, the previous
//! month's report goes to each admin once, claimed in `reports_sent` (kind `monthly`,
//! period `YYYY-MM`) in the transaction that queues the mail. `postdesk report monthly`
//! prints it, or with `--send` queues it now.

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Datelike, Utc};
use serde::Serialize;

use crate::channels::email::compose::{self, InternalMail};
use crate::clock::db_time;
use crate::config::Config;
use crate::domain::{MessageKind, TicketId};
use crate::intake::Services;
use crate::outbound::templates::Templates;
use crate::store::feedback::{self, CorrectionCount, Count, Feedback};
use crate::store::{Conn, Store};

/// The `reports_sent` kind of this report.
pub const KIND: &str = "monthly";
/// Longest feedback text the report shows, in characters.
const MAX_TEXT_CHARS: usize = 300;

/// One month of the desk, as the report shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Monthly {
    /// `YYYY-MM`.
    pub period: String,
    pub feedback: Vec<ThemeGroup>,
    pub kb_requests: Vec<Count>,
    pub corrections: Vec<CorrectionCount>,
    pub forced_human: Vec<Count>,
}

/// The feedback of one theme.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThemeGroup {
    pub theme: String,
    pub count: usize,
    pub items: Vec<FeedbackLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedbackLine {
    pub text: String,
    pub agent: String,
    pub ticket: Option<TicketId>,
    /// `YYYY-MM-DD`.
    pub day: String,
}

/// `YYYY-MM` → its first instant and the next month's, as stored times. `None` for
/// anything else.
pub fn month_bounds(period: &str) -> Option<(String, String)> {
    let (y, m) = period.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let (y, m): (i32, u32) = (y.parse().ok()?, m.parse().ok()?);
    let start = chrono::NaiveDate::from_ymd_opt(y, m, 1)?;
    let next = if m == 12 {
        chrono::NaiveDate::from_ymd_opt(y + 1, 1, 1)?
    } else {
        chrono::NaiveDate::from_ymd_opt(y, m + 1, 1)?
    };
    let at = |d: chrono::NaiveDate| db_time(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    Some((at(start), at(next)))
}

/// The month before the one `now` is in, as `YYYY-MM` (UTC).
pub fn previous_month(now: DateTime<Utc>) -> String {
    let (y, m) = if now.month() == 1 {
        (now.year() - 1, 12)
    } else {
        (now.year(), now.month() - 1)
    };
    format!("{y:04}-{m:02}")
}

/// The month `now` is in, as `YYYY-MM` (UTC).
pub fn this_month(now: DateTime<Utc>) -> String {
    format!("{:04}-{:02}", now.year(), now.month())
}

/// Groups feedback by theme: the most frequent theme first (ties by name), the texts of
/// each in the order they were given.
pub fn group_by_theme(items: Vec<Feedback>) -> Vec<ThemeGroup> {
    let mut groups: Vec<ThemeGroup> = Vec::new();
    for f in items {
        let line = FeedbackLine {
            text: compose::neutralised(&f.text, MAX_TEXT_CHARS),
            agent: compose::plain_line(&f.agent, 64),
            ticket: f.ticket_id,
            day: f.created_at.get(..10).unwrap_or_default().to_string(),
        };
        match groups.iter_mut().find(|g| g.theme == f.theme) {
            Some(g) => {
                g.count += 1;
                g.items.push(line);
            }
            None => groups.push(ThemeGroup {
                theme: f.theme,
                count: 1,
                items: vec![line],
            }),
        }
    }
    groups.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.theme.cmp(&b.theme)));
    groups
}

/// Reads the month `period` (`YYYY-MM`).
pub async fn load(conn: &mut Conn, period: &str) -> Result<Monthly> {
    let Some((since, until)) = month_bounds(period) else {
        bail!("{period:?} is not a month; use YYYY-MM, e.g. 2026-11");
    };
    Ok(Monthly {
        period: period.to_string(),
        feedback: group_by_theme(feedback::list_feedback(conn, &since, &until).await?),
        kb_requests: feedback::kb_requests_by_topic(conn, &since, &until).await?,
        corrections: feedback::corrections_by_pair(conn, &since, &until).await?,
        forced_human: feedback::forced_human_by_topic(conn, &since, &until).await?,
    })
}

/// The template data of the report for `name`.
pub fn data(m: &Monthly, name: &str) -> serde_json::Value {
    let sum = |c: &[Count]| c.iter().map(|c| c.count).sum::<i64>();
    serde_json::json!({
        "name": compose::plain_line(name, 64),
        "period": m.period,
        "feedback": m.feedback,
        "feedback_count": m.feedback.iter().map(|g| g.count).sum::<usize>(),
        "kb_requests": m.kb_requests.iter().map(|c| Count { key: compose::plain_line(&c.key, 120), count: c.count }).collect::<Vec<_>>(),
        "kb_count": sum(&m.kb_requests),
        "corrections": m.corrections,
        "correction_count": m.corrections.iter().map(|c| c.count).sum::<i64>(),
        "forced_human": m.forced_human,
        "forced_count": sum(&m.forced_human),
    })
}

/// The report as text (`postdesk report monthly` without `--send`): subject, blank line,
/// body.
pub fn render(cfg: &Config, templates: &Templates, m: &Monthly) -> Result<String> {
    let mut d = data(m, "admins");
    if let Some(obj) = d.as_object_mut() {
        obj.insert("support".into(), compose::support_json(cfg));
    }
    let subject = templates.render("monthly.subject", &d)?;
    let body = templates.render("monthly.txt", &d)?;
    Ok(format!("{subject}\n\n{body}"))
}

/// Queues the report of `period` to each admin who has not had it; with `anyway`, to
/// every admin whatever was sent before. Returns the admins it was queued for.
///
/// Only a finished month is recorded in `reports_sent`: a report of the month still
/// running (`report monthly --month <this month> --send`) is a preview, and the clock
/// still sends the whole month once it is over.
pub async fn send_monthly(
    store: &Store,
    services: &Services,
    period: &str,
    anyway: bool,
    now: DateTime<Utc>,
) -> Result<Vec<String>> {
    let cfg = services.config();
    let now_s = db_time(now);
    let mut sent = Vec::new();
    let mut report: Option<Monthly> = None;
    for admin in cfg.agents.iter().filter(|a| a.admin) {
        let mut tx = store.begin_write().await?;
        let finished = period < this_month(now).as_str();
        let claimed =
            finished && feedback::claim_report(&mut tx, KIND, &admin.email, period, &now_s).await?;
        if !claimed && !anyway {
            continue;
        }
        let m = match &report {
            Some(m) => m.clone(),
            None => {
                let m = load(&mut tx, period).await?;
                report = Some(m.clone());
                m
            }
        };
        let to = vec![admin.email.clone()];
        let mail = compose::internal_mail(
            cfg,
            services.templates(),
            &InternalMail {
                template: "monthly",
                ticket: None,
                to: &to,
                data: data(&m, &admin.display_name),
                urgent: false,
            },
        )
        .with_context(|| format!("Composing the monthly report for {}", admin.name))?;
        crate::agent::queue_internal(
            services,
            &mut tx,
            None,
            MessageKind::Notification,
            &mail,
            &now_s,
        )
        .await?;
        tx.commit().await?;
        tracing::info!(
            "Monthly report {period}: queued for {} <{}>.",
            admin.name,
            admin.email
        );
        sent.push(admin.email.clone());
    }
    Ok(sent)
}

/// The clock's part: the previous month's report to each admin who has not had it.
/// Returns how many were queued.
pub async fn monthly_pass(store: &Store, services: &Services, now: DateTime<Utc>) -> Result<usize> {
    let cfg = services.config();
    if !cfg.agents.iter().any(|a| a.admin) {
        return Ok(0);
    }
    let period = previous_month(now);
    // Most ticks of a month find every admin served: one read, no write lock.
    let mut conn = store.pool().acquire().await?;
    let done = feedback::reports_sent_to(&mut conn, KIND, &period).await?;
    drop(conn);
    if cfg
        .agents
        .iter()
        .filter(|a| a.admin)
        .all(|a| done.iter().any(|d| d.eq_ignore_ascii_case(&a.email)))
    {
        return Ok(0);
    }
    Ok(send_monthly(store, services, &period, false, now)
        .await?
        .len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap()
    }

    #[test]
    fn months_and_their_bounds() {
        assert_eq!(previous_month(at("2027-01-01T00:00:05Z")), "2026-12");
        assert_eq!(previous_month(at("2026-12-07T10:00:00Z")), "2026-11");
        assert_eq!(this_month(at("2026-12-07T10:00:00Z")), "2026-12");
        assert_eq!(
            month_bounds("2026-12"),
            Some((
                "2026-12-01T00:00:00.000000Z".to_string(),
                "2027-01-01T00:00:00.000000Z".to_string()
            ))
        );
        assert_eq!(month_bounds("2026-13"), None);
        assert_eq!(month_bounds("2026-1"), None);
        assert_eq!(month_bounds("december"), None);
    }

    /// One month's report reads that month only: KB requests by topic (any spelling of
    /// one topic counts once), corrections by pair, forced-human matches by topic.
    #[tokio::test]
    async fn the_report_counts_the_month_and_nothing_outside_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("r.db")).await.unwrap();
        let mut c = store.pool().acquire().await.unwrap();
        let (nov, nov2, dec) = (
            "2026-11-03T10:00:00.000000Z",
            "2026-11-30T23:59:59.000000Z",
            "2026-12-01T00:00:00.000000Z",
        );
        for (topic, at) in [
            ("Refund to PayPal", nov),
            ("refund to  paypal", nov2),
            ("退货地址", nov),
            ("refund to paypal", dec),
        ] {
            crate::store::kb::add_request(&mut c, topic, None, "alice", at)
                .await
                .unwrap();
        }
        for (predicted, correct, at) in [
            ("refund", "return", nov),
            ("refund", "return", nov2),
            ("shipping", "return", nov),
            ("refund", "return", dec),
        ] {
            crate::store::kb::record_correction(
                &mut c,
                1,
                None,
                "alice",
                Some(predicted),
                correct,
                "I want to send it back",
                Some("en"),
                at,
            )
            .await
            .unwrap();
        }
        for (topic, at) in [("legal", nov), ("legal", nov2), ("security", dec)] {
            crate::store::events::append(
                &mut c,
                crate::store::events::NewEvent::new(
                    crate::domain::EventKind::ForcedHuman,
                    1,
                    serde_json::json!({"topic": topic, "term": "x"}),
                ),
                at,
            )
            .await
            .unwrap();
        }
        feedback::add_feedback(&mut c, "bob", None, "late", "other", dec)
            .await
            .unwrap();
        feedback::add_feedback(&mut c, "bob", Some(1), "the digest", "feature:digest", nov)
            .await
            .unwrap();

        let m = load(&mut c, "2026-11").await.unwrap();
        let pairs = |v: &[Count]| -> Vec<(String, i64)> {
            v.iter().map(|c| (c.key.clone(), c.count)).collect()
        };
        assert_eq!(
            pairs(&m.kb_requests),
            [
                ("Refund to PayPal".to_string(), 2),
                ("退货地址".to_string(), 1)
            ]
        );
        let corrections: Vec<(&str, &str, i64)> = m
            .corrections
            .iter()
            .map(|c| (c.predicted.as_str(), c.correct.as_str(), c.count))
            .collect();
        assert_eq!(
            corrections,
            [("refund", "return", 2), ("shipping", "return", 1)]
        );
        assert_eq!(pairs(&m.forced_human), [("legal".to_string(), 2)]);
        assert_eq!(m.feedback.len(), 1);
        assert_eq!(m.feedback[0].theme, "feature:digest");

        // Each admin's report of a month is claimed once.
        assert!(
            feedback::claim_report(&mut c, KIND, "carol@example.com", "2026-11", dec)
                .await
                .unwrap()
        );
        assert!(
            !feedback::claim_report(&mut c, KIND, "carol@example.com", "2026-11", dec)
                .await
                .unwrap()
        );
        assert_eq!(
            feedback::reports_sent_to(&mut c, KIND, "2026-11")
                .await
                .unwrap(),
            ["carol@example.com"]
        );
    }

    #[test]
    fn feedback_is_grouped_by_theme_most_frequent_first() {
        let f = |id: i64, theme: &str, text: &str| Feedback {
            id,
            agent: "alice".into(),
            ticket_id: (id % 2 == 0).then_some(id),
            text: text.into(),
            theme: theme.into(),
            created_at: "2026-11-03T10:00:00.000000Z".into(),
        };
        let groups = group_by_theme(vec![
            f(1, "other", "coffee"),
            f(2, "feature:macro", "too many macros"),
            f(3, "feature:macro", "macro names are odd"),
            f(4, "command:assign", "assign to teams"),
        ]);
        let themes: Vec<(&str, usize)> =
            groups.iter().map(|g| (g.theme.as_str(), g.count)).collect();
        assert_eq!(
            themes,
            [("feature:macro", 2), ("command:assign", 1), ("other", 1)]
        );
        assert_eq!(groups[0].items[1].text, "macro names are odd");
        assert_eq!(groups[0].items[0].ticket, Some(2));
        assert_eq!(groups[0].items[0].day, "2026-11-03");
    }
}
