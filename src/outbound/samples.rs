//! Sample render data for each template, for `postdesk template check`: every field the
//! code gives that template, with optional ones present as null, so that a template which
//! renders here in strict mode renders in production too. Keep each in step with the code
//! that builds the real data (named beside it); `samples_cover_every_template` and the
//! compose tests render every default against both.

use serde_json::{Value, json};

/// The `now` of every sample (RFC 3339).
pub const SAMPLE_NOW: &str = "2026-12-07T09:30:00Z";

fn support() -> Value {
    json!({"name": "Example Support", "address": "support@example.com"})
}

/// A ticket as `watch::ticket_json` gives it to internal mail.
fn open_ticket() -> Value {
    json!({
        "id": 42, "subject": "Printer on fire", "customer": "li.wei@example.cn",
        "tier": "vip", "priority": "high", "status": "open", "category": null,
        "team": null, "assignee": null,
    })
}

/// The sample data of template `base` (`ack`, `notify`...; `macro` for macros). An unknown
/// base gets the data common to all: `ticket`, `customer`, `support`, `now`.
pub fn data(base: &str) -> Value {
    let ticket = json!({"id": 42, "subject": "Printer on fire", "token": "tok"});
    let customer = json!({
        "name": "Li Wei", "email": "li.wei@example.cn", "language": "zh", "tier": "vip",
        "timezone": null,
    });
    match base {
        // compose::acknowledgement
        "ack" => json!({
            "ticket": ticket, "customer": customer, "support": support(), "now": SAMPLE_NOW,
        }),
        // compose::bot_answer_data
        "bot-answer" => json!({
            "ticket": {"id": 42, "subject": "Printer on fire", "token": "tok"},
            "customer": customer,
            "article": {
                "id": 7, "title": "Resetting the printer", "text": "Hold the button.",
                "links": ["https://example.com/kb/7"], "files": ["reset.pdf"],
            },
            "score": "0.80",
            "handoff_words": ["human", "agent", "人工", "转人工"],
            "now": SAMPLE_NOW,
            "support": support(),
        }),
        // compose::agent_notification (ticket_topic gives notify.subject id and subject)
        "notify" => json!({
            "ticket": {
                "id": 42, "subject": "Printer on fire", "status": "open", "priority": "normal",
                "tags": ["printer"], "tags_text": "printer", "assignee": "nobody",
            },
            "event": {
                "name": "new_ticket", "new_ticket": true, "customer_reply": false,
                "collaborator": false, "held_stranger": false,
            },
            "sender": {
                "name": "Li Wei", "email": "li.wei@example.cn",
                "display": "Li Wei <li.wei@example.cn>", "is_customer": true,
            },
            "held_reason": null,
            "agent": {"name": "Ann", "email": "ann@example.com"},
            "customer": {
                "name": "Li Wei", "email": "li.wei@example.cn",
                "display": "Li Wei <li.wei@example.cn>", "language": "zh", "tier": "vip",
                "open_tickets": 1, "past_tickets": 0,
            },
            "match_reason": "new ticket",
            "sla_due": null, "category": null, "routing_note": null, "team": null,
            "forced_human": null, "suggested_macros": [],
            "message": {"text": "  It is on fire.", "omitted": 0},
            "support": support(),
            "cheat_sheet": "#close",
        }),
        // compose::customer_reply (macro_data plus greeted, signed, body)
        "reply" => json!({
            "ticket": {"id": 42, "subject": "Printer on fire"},
            "customer": {"name": "Li Wei", "email": "li.wei@example.cn"},
            "agent": {"name": "Ann"},
            "support": support(),
            "greeted": false, "signed": false, "body": "Try turning it off.",
            "rating": {"links": [
                {"score": 5, "url": "https://help.example.com/rate/42/5/0123456789abcdef0123456789abcdef"},
                {"score": 1, "url": "https://help.example.com/rate/42/1/fedcba9876543210fedcba9876543210"},
            ]},
        }),
        // compose::macro_data
        "macro" => json!({
            "ticket": {"id": 42, "subject": "Printer on fire"},
            "customer": {"name": "Li Wei", "email": "li.wei@example.cn"},
            "agent": {"name": "Ann"},
            "support": support(),
        }),
        // compose::receipt
        "receipt" => json!({
            "ticket": {"id": 42, "subject": "Printer on fire"},
            "agent": {"name": "Ann", "email": "ann@example.com"},
            "applied": ["#close"], "applied_count": 1,
            "rejected": [{"line": "#frobnicate", "reason": "unknown command"}],
            "rejected_count": 1, "summary": "closed", "ignored": [],
            "outcome": {"sent": true, "note": false, "nothing": false, "already_sent": false},
            "help": false, "cheat_sheet": "#close", "support": support(),
        }),
        // compose::held_notice
        "held" => json!({
            "ticket": {"id": 42, "subject": "Printer on fire"},
            "agent": {"name": "Ann", "email": "ann@example.com"},
            "reasons": ["no valid token"],
            "held": {"row": 9, "from_you": true, "subject": "Re: printer", "customer_had_it": false},
            "earlier": [], "earlier_count": 0, "support": support(),
        }),
        // compose::problems_summary
        "problems" => json!({
            "count": 1, "since": "2026-12-06 09:30",
            "entries": [{
                "row": 9, "at": "2026-12-06 10:00", "kind": "unprocessable", "ticket": null,
                "from": "x@example.net", "subject": "hello", "why": "no body",
            }],
            "more": 0, "support": support(),
        }),
        // intake::unit (red alert)
        "alert" => json!({
            "reason": "legal threat", "term": null, "report_due": "2026-12-07 10:30 UTC",
            "excerpt": "It is on fire.",
            "ticket": {
                "id": 42, "subject": "Printer on fire", "customer": "li.wei@example.cn",
                "priority": "urgent", "category": null, "team": null, "assignee": null,
            },
            "support": support(),
        }),
        // watch::escalate_alerts
        "alert-escalation" => json!({
            "reason": "legal threat", "raised_at": "2026-12-07 09:00",
            "report_due": "2026-12-07 10:00", "first_human_at": null,
            "ticket": open_ticket(), "support": support(),
        }),
        // watch::sla_notices
        "sla" => json!({
            "kind": "warning", "breach": false, "target": "first response",
            "due": "2026-12-07 10:00 UTC", "policy": "standard", "calendar": null,
            "elapsed": "3h00m", "allowed": "4h00m", "ticket": open_ticket(),
            "support": support(),
        }),
        // watch::digests (DigestLine)
        "digest" => {
            let line = json!({
                "id": 42, "subject": "Printer on fire", "priority": "high", "status": "open",
                "category": null, "team": null, "assignee": null, "target": null, "due": null,
                "due_at": null, "breached": false,
            });
            json!({
                "name": "Ann", "count": 1, "breached": 0, "tickets": [line.clone()],
                "lead": true, "unassigned": [line], "breached_all": [], "support": support(),
            })
        }
        // analytics::digest (the weekly digest), with `support` as report_mail adds it
        "weekly" => {
            let row = json!({
                "name": "alice", "new": 12, "resolved": 10, "first_response": "1h 05m",
                "first_response_p90": "3h 20m", "resolution": "1d 2h", "fcr": "60%",
                "reopen": "8%", "sla": "92%", "satisfaction": "4.5",
            });
            json!({
                "name": "Carol", "lead": true, "team_name": "billing",
                "since": "2026-11-30", "until": "2026-12-07", "time_zone": "Europe/Berlin",
                "numbers": [{"label": "New tickets", "value": "12"}],
                "agents": [row.clone()], "me": row.clone(), "team": row, "alerts": 0,
                "charts": [{"cid": "volume@postdesk", "title": "New and resolved tickets per day"}],
                "support_name": "Example Support", "support": support(),
            })
        }
        // channels::link (the one-time code), with `support` as internal_mail adds it
        "link-code" => json!({
            "platform": "Telegram", "chat_name": "Ann", "code": "042317", "minutes": 15,
            "support": support(),
        }),
        // agent::mod (agent-notice)
        "agent-notice" => json!({
            "what": "your commands", "lines": ["#close: done"], "support": support(),
        }),
        // profile::report::data, with `support` as report::render and the sender add it
        "monthly" => json!({
            "name": "carol", "period": "2026-11",
            "feedback": [{"theme": "command:merge", "count": 2, "items": [
                {"text": "#merge should keep the CCs", "agent": "alice", "ticket": 42, "day": "2026-11-03"},
                {"text": "merge lost a CC", "agent": "bob", "ticket": null, "day": "2026-11-09"},
            ]}],
            "feedback_count": 2,
            "kb_requests": [{"key": "退货运费", "count": 3}], "kb_count": 3,
            "corrections": [{"predicted": "refund", "correct": "return", "count": 2}],
            "correction_count": 2,
            "forced_human": [{"key": "legal", "count": 1}], "forced_count": 1,
            "support": support(),
        }),
        _ => json!({
            "ticket": ticket, "customer": customer, "support": support(), "now": SAMPLE_NOW,
        }),
    }
}

#[cfg(test)]
mod tests {
    use crate::outbound::templates::Templates;

    #[test]
    fn every_default_renders_in_strict_mode_with_its_sample() {
        assert_eq!(Templates::check(None, super::data), []);
    }
}
