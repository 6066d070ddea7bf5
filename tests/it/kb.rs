//! Issue 14: the knowledge base and the answer bot with the real daemon, Dovecot and the
//! SMTP server. A Chinese customer's refund question is answered from an approved
//! Chinese article; "人工" hands the ticket to a person whose notification carries the
//! summary; the agent's answer becomes a draft with `#kb propose`, which an admin
//! approves by mail. Then the cases where the bot must hold back: low confidence (a
//! handoff with its summary), a forced-human topic, automated mail.

use serde_json::Value;

use crate::agents::{AUTH_PASS, agent_mail, mails_to, token_of};
use crate::harness::{Desk, Opts, mail, message_id_of};
use crate::support::CapturedMail;

/// carol is the admin; the forced-human rule of issue 13; acknowledgements off, so the
/// only mail a customer gets is the bot's.
const KB_CONFIG: &str = r#"
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

[[rule]]
name = "refund"
when.any_keywords = ["refund", "退款"]
set.category = "refund"

[bot]
enabled = true
min_score = 0.6
min_margin = 0.15
handoff_words = ["真人客服"]
"#;

const ZH_REFUND: &str = "---
title: 如何申请退款
language: zh
category: refund
tags: [退款, 退钱]
status: draft
---
# 申请退款

登录后打开“我的订单”，选择要退款的订单，点击“申请退款”并填写原因。
我们会在 1 到 3 个工作日内审核，审核通过后退款会原路退回，银行卡一般 3 到 7 个工作日到账。
";

const ZH_SHIPPING: &str = "---
title: 发货和配送时间
language: zh
category: shipping
tags: [发货, 快递, 配送]
status: published
---
现货商品在付款后 24 小时内发货，快递一般 2 到 4 天送达。偏远地区可能需要 7 天。
";

const EN_REFUND: &str = "---
title: How to get a refund
language: en
category: refund
tags: [refund, money back]
status: published
---
Open **My orders**, choose the order and click *Request a refund*. Refunds reach your card
within 3-7 business days after we approve them.
";

const EN_RETURN: &str = "---
title: How to return an item
language: en
category: return
tags: [return, refund, send back]
status: published
---
Print the return label from My orders and drop the parcel at any post office within 30 days.
Once the item is back with us we refund you within 3-7 business days.
";

fn kb_desk() -> Desk {
    Desk::with(Opts {
        autoreply: false,
        notify: true,
        extra: KB_CONFIG,
        ..Opts::default()
    })
}

fn import(desk: &Desk, files: &[(&str, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let out = desk.cmd(&["kb", "import", dir.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "kb import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn article(desk: &Desk, id: i64) -> Value {
    let out = desk.cmd(&["kb", "show", &id.to_string(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn article_id(desk: &Desk, title: &str) -> i64 {
    let out = desk.cmd(&["kb", "list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .find(|a| a["title"] == title)
        .unwrap_or_else(|| panic!("no article {title}: {list:#}"))["id"]
        .as_i64()
        .unwrap()
}

/// The admin's mail to the commands address.
fn carol_commands(desk: &Desk, id: &str, body: &str) {
    desk.deliver(&agent_mail(
        AUTH_PASS,
        "Carol Admin <carol@example.com>",
        "commands@example.com",
        "kb",
        id,
        "",
        body,
    ));
}

/// Waits for `n` mails in all and returns those that arrived after the first `before`.
fn new_mails(desk: &Desk, before: usize, n: usize) -> Vec<CapturedMail> {
    let all = desk.sent(before + n);
    assert!(
        all.len() >= before + n,
        "expected {n} new mails, got {}: {all:#?}",
        all.len() - before
    );
    all[before..].to_vec()
}

fn one_to(mails: &[CapturedMail], rcpt: &str) -> CapturedMail {
    let to = mails_to(mails, rcpt);
    assert_eq!(to.len(), 1, "mails to {rcpt}: {mails:#?}");
    to.into_iter().next().unwrap()
}

#[test]
fn a_chinese_refund_question_is_answered_handed_off_on_renggong_and_the_answer_becomes_an_approved_article()
 {
    let desk = kb_desk();
    import(
        &desk,
        &[
            ("zh-refund.md", ZH_REFUND),
            ("zh-shipping.md", ZH_SHIPPING),
            ("en-refund.md", EN_REFUND),
        ],
    );
    let refund = article_id(&desk, "如何申请退款");
    assert_eq!(article(&desk, refund)["status"], "draft");

    // The admin approves the imported draft by mail: the bot may now use it.
    carol_commands(
        &desk,
        "carol-approve-1@example.com",
        &format!("#kb approve {refund}"),
    );
    desk.run_once();
    assert_eq!(article(&desk, refund)["status"], "published");
    assert_eq!(article(&desk, refund)["reviewed_by"], "carol");
    let mut seen = desk.sent(1).len();

    // 1. A Chinese customer asks how to get a refund.
    desk.deliver(&mail(
        "王芳 <wang@customer.cn>",
        "support@example.com",
        "退款",
        "wang-1@customer.cn",
        "",
        "你好，我上周买的外套不合适，想退款，请问怎么申请退款？",
    ));
    let r = desk.run_once();
    assert_eq!(r["new_tickets"], 1, "{r}");
    let id = desk.tickets()[0]["id"].as_i64().unwrap();

    // 2. The bot answers from the approved Chinese article, and says how to reach a
    // person; nobody on the team is disturbed.
    let mails = new_mails(&desk, seen, 1);
    seen += mails.len();
    let answer = one_to(&mails, "wang@customer.cn");
    let text = answer.body_text();
    assert!(text.contains("申请退款"), "{text}");
    assert!(text.contains("原路退回"), "the article's text: {text}");
    assert!(text.contains("人工"), "how to reach a person: {text}");
    assert_eq!(
        answer.header("Auto-Submitted").as_deref(),
        Some("auto-replied")
    );
    assert!(
        mails_to(&mails, "alice@example.com").is_empty(),
        "{mails:#?}"
    );
    let t = desk.show(id);
    assert_eq!(t["bot"]["article"], refund, "{t:#}");
    assert!(t["bot"]["score"].as_f64().unwrap() >= 0.6, "{t:#}");
    assert_eq!(t["status"], "pending", "waits on the customer");
    assert!(t["handoff"].is_null());

    // 3. The customer replies "人工".
    let bot_id = message_id_of(&answer.data);
    desk.deliver(&mail(
        "王芳 <wang@customer.cn>",
        "support@example.com",
        "回复: 退款",
        "wang-2@customer.cn",
        &format!("In-Reply-To: <{bot_id}>\r\nReferences: <{bot_id}>\r\n"),
        "人工",
    ));
    desk.run_once();
    let t = desk.show(id);
    assert_eq!(desk.tickets().len(), 1, "the reply joined the ticket");
    assert_eq!(t["handoff"]["reason"], "asked_for_human", "{t:#}");

    // 4. The agent gets the handoff summary: what was asked, what the bot answered and
    // its score, category, language, sentiment, history.
    let mails = new_mails(&desk, seen, 2);
    seen += mails.len();
    let n = one_to(&mails, "alice@example.com");
    let body = n.body_text();
    assert!(body.contains("HANDED OVER BY THE BOT"), "{body}");
    assert!(body.contains("想退款"), "what the customer asked: {body}");
    assert!(
        body.contains("如何申请退款"),
        "what the bot answered: {body}"
    );
    assert!(body.contains("score 0."), "its score: {body}");
    assert!(body.contains("refund"), "the category: {body}");
    assert!(body.contains("zh"), "the language: {body}");
    assert!(body.to_lowercase().contains("sentiment"), "{body}");
    assert!(body.contains("asked for a person"), "why: {body}");
    assert!(body.contains("History: first contact."), "{body}");

    // 5. The agent answers with #kb propose: the customer gets the answer, the text
    // becomes a draft linked to the ticket, and the admin is asked to review it.
    let token = token_of(&n);
    let parent = message_id_of(&n.data);
    desk.deliver(&agent_mail(
        AUTH_PASS,
        "Alice Agent <alice@example.com>",
        &format!("support+{token}@example.com"),
        &format!("Re: [#{id}] 退款"),
        "alice-propose-1@example.com",
        &format!("In-Reply-To: <{parent}>\r\nReferences: <{parent}>\r\n"),
        "#kb propose\n\n您好，外套未穿着且吊牌完好时，可以在订单页申请退货退款，我们收到退货后 3 个工作日内原路退款。",
    ));
    desk.run_once();
    let mails = new_mails(&desk, seen, 3);
    seen += mails.len();
    let to_customer = one_to(&mails, "wang@customer.cn");
    assert!(to_customer.body_text().contains("吊牌完好"));
    let review = one_to(&mails, "carol@example.com");
    let review_text = review.body_text();
    let draft = article_id(&desk, "退款");
    assert!(
        review_text.contains(&format!("#kb approve {draft}")),
        "{review_text}"
    );
    assert!(review_text.contains("吊牌完好"), "{review_text}");
    let receipt = one_to(&mails, "alice@example.com");
    assert!(
        receipt
            .body_text()
            .contains(&format!("draft article {draft} saved")),
        "{}",
        receipt.body_text()
    );
    let a = article(&desk, draft);
    assert_eq!(a["status"], "draft");
    assert_eq!(a["language"], "zh");
    assert_eq!(a["source_ticket"], id);
    assert_eq!(a["proposed_by"], "alice");

    // An agent who is not an admin cannot approve it.
    desk.deliver(&agent_mail(
        AUTH_PASS,
        "Alice Agent <alice@example.com>",
        "commands@example.com",
        "kb",
        "alice-approve-1@example.com",
        "",
        &format!("#kb approve {draft}"),
    ));
    desk.run_once();
    assert_eq!(article(&desk, draft)["status"], "draft");
    let mails = new_mails(&desk, seen, 1);
    seen += mails.len();
    assert!(
        one_to(&mails, "alice@example.com")
            .body_text()
            .contains("only admins"),
        "{mails:#?}"
    );

    // 6. The admin approves it; the proposer is told.
    carol_commands(
        &desk,
        "carol-approve-2@example.com",
        &format!("#kb approve {draft}"),
    );
    desk.run_once();
    let a = article(&desk, draft);
    assert_eq!(a["status"], "published", "{a:#}");
    assert_eq!(a["reviewed_by"], "carol");
    let mails = new_mails(&desk, seen, 2);
    assert!(
        one_to(&mails, "alice@example.com")
            .body_text()
            .contains(&format!("carol published your draft article {draft}")),
        "{mails:#?}"
    );
    assert!(
        one_to(&mails, "carol@example.com")
            .body_text()
            .contains("is published"),
        "{mails:#?}"
    );
    let mut seen = seen + mails.len();

    // An agent asks for an article that does not exist (twice, by two mails), and finds
    // articles by mail to the commands address.
    for (n, body) in [
        (1, "#kb request 退货运费谁付"),
        (2, "#kb request  退货运费谁付\n#kb search 退款"),
    ] {
        desk.deliver(&agent_mail(
            AUTH_PASS,
            "Alice Agent <alice@example.com>",
            "commands@example.com",
            "kb",
            &format!("alice-request-{n}@example.com"),
            "",
            body,
        ));
        desk.run_once();
        let mails = new_mails(&desk, seen, 1);
        seen += mails.len();
        let text = one_to(&mails, "alice@example.com").body_text();
        assert!(
            text.contains(&format!("this topic has been asked {n} time")),
            "{text}"
        );
        if n == 2 {
            assert!(
                text.contains(&format!("{refund} [published, zh] 如何申请退款")),
                "{text}"
            );
        }
    }
    let out = desk.cmd(&["kb", "requests", "--json"]);
    let requests: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(requests[0]["topic"], "退货运费谁付", "{requests:#}");
    assert_eq!(requests[0]["count"], 2, "{requests:#}");

    // Everything was recorded for analytics.
    for kind in ["bot_answered", "bot_handoff", "kb_article_changed"] {
        assert!(
            desk.count(&format!(
                "SELECT COUNT(*) FROM events WHERE kind = '{kind}'"
            )) >= 1,
            "{kind}"
        );
    }
}

#[test]
fn the_bot_holds_back_for_low_confidence_forced_human_topics_and_automated_mail() {
    let desk = Desk::with(Opts {
        autoreply: false,
        notify: true,
        extra: r#"
[[agent]]
name = "carol"
email = "carol@example.com"
admin = true

[security]
require_authenticated_sender = true
trusted_authserv_id = "mx.test"
verify_dkim_locally = false

[[rule]]
name = "legal"
when.any_keywords = ["lawyer", "lawsuit"]
set.category = "legal"
forced_human = true
"#,
        ..Opts::default()
    });
    import(
        &desk,
        &[
            ("en-refund.md", EN_REFUND),
            ("en-return.md", EN_RETURN),
            ("zh-shipping.md", ZH_SHIPPING),
        ],
    );
    let refund = article_id(&desk, "How to get a refund");

    // Low confidence: refund or return? Both articles fit about as well, so the bot does
    // not guess; the ticket is handed off and the notification says why, with the best
    // guess.
    desk.deliver(&mail(
        "Pat <pat@customer.org>",
        "support@example.com",
        "My parcel",
        "pat-1@customer.org",
        "",
        "I want to return my order and get a refund.",
    ));
    desk.run_once();
    let pat = desk.tickets()[0]["id"].as_i64().unwrap();
    let mails = new_mails(&desk, 0, 2);
    assert!(
        mails_to(&mails, "pat@customer.org").is_empty(),
        "{mails:#?}"
    );
    let pat_notification = one_to(&mails, "alice@example.com");
    let body = pat_notification.body_text();
    assert!(body.contains("HANDED OVER BY THE BOT"), "{body}");
    assert!(
        body.contains(&format!("best guess was article {refund}")),
        "{body}"
    );
    assert!(body.contains("it did not send it"), "{body}");
    assert!(body.contains("History: first contact."), "{body}");
    let t = desk.show(pat);
    assert!(t["bot"].is_null(), "{t:#}");
    let reason = t["handoff"]["reason"].as_str().unwrap_or_default();
    assert!(["low_confidence", "ambiguous"].contains(&reason), "{t:#}");
    let mut seen = desk.sent(2).len();

    // A forced-human topic: a refund question the article would answer, but with a
    // lawyer in it. The bot stays silent; a person gets it.
    desk.deliver(&mail(
        "Lee <lee@customer.org>",
        "support@example.com",
        "Refund or my lawyer",
        "lee-1@customer.org",
        "",
        "How do I get a refund? If I do not get my money back my lawyer will file a lawsuit.",
    ));
    desk.run_once();
    let mails = new_mails(&desk, seen, 2);
    seen += mails.len();
    assert!(
        mails_to(&mails, "lee@customer.org").is_empty(),
        "{mails:#?}"
    );
    let lee = desk.tickets()[1]["id"].as_i64().unwrap();
    let t = desk.show(lee);
    assert!(t["bot"].is_null(), "{t:#}");
    assert_eq!(t["forced_human"], true);

    // Automated mail asking the same question gets no answer from the bot.
    for (n, header) in [
        (1, "Auto-Submitted: auto-replied\r\n"),
        (
            2,
            "Precedence: bulk\r\nList-Unsubscribe: <mailto:u@news.example>\r\n",
        ),
    ] {
        desk.deliver(&mail(
            "Robot <robot@news.example>",
            "support@example.com",
            "How to get a refund",
            &format!("robot-{n}@news.example"),
            header,
            "How do I get a refund for my order? Where do I click to request a refund?",
        ));
    }
    desk.run_once();
    let all = desk.sent(seen);
    assert!(
        mails_to(&all, "robot@news.example").is_empty(),
        "the bot answered automated mail: {all:#?}"
    );
    assert_eq!(
        desk.count(&format!(
            "SELECT COUNT(*) FROM tickets WHERE bot_article = {refund}"
        )),
        0
    );

    // The same question from a person is answered: the article was there all along.
    desk.deliver(&mail(
        "Kim <kim@customer.org>",
        "support@example.com",
        "How to get a refund",
        "kim-1@customer.org",
        "",
        "How do I get a refund for my order? Where do I click to request a refund?",
    ));
    desk.run_once();
    let all = desk.sent(seen + 1);
    let answer = one_to(&all[seen..], "kim@customer.org");
    assert!(
        answer.body_text().contains("Request a refund"),
        "{}",
        answer.body_text()
    );
    assert!(answer.body_text().to_lowercase().contains("human"));
    assert_eq!(
        desk.count(&format!(
            "SELECT COUNT(*) FROM tickets WHERE bot_article = {refund}"
        )),
        1
    );

    // Pat writes again about another order: the handoff summary shows the first ticket.
    let seen = desk.sent(seen + 1).len();
    desk.deliver(&mail(
        "Pat <pat@customer.org>",
        "support@example.com",
        "Second order",
        "pat-2@customer.org",
        "",
        "I want to return my order and get a refund.",
    ));
    desk.run_once();
    let mails = new_mails(&desk, seen, 2);
    let body = one_to(&mails, "alice@example.com").body_text();
    assert!(
        body.contains("History: 1 earlier ticket(s) since"),
        "{body}"
    );
    assert!(body.contains(&format!("#{pat} ")), "{body}");
    assert!(body.contains("open: My parcel"), "{body}");

    // #wrong: alice says Pat's first ticket was a return. The correction is stored with
    // the customer's text and trains the classifier, which then gives the next such
    // ticket its category.
    let seen = desk.sent(seen + 2).len();
    let token = token_of(&pat_notification);
    let parent = message_id_of(&pat_notification.data);
    desk.deliver(&agent_mail(
        AUTH_PASS,
        "Alice Agent <alice@example.com>",
        &format!("support+{token}@example.com"),
        &format!("Re: [#{pat}] My parcel"),
        "alice-wrong-1@example.com",
        &format!("In-Reply-To: <{parent}>\r\nReferences: <{parent}>\r\n"),
        "#wrong return",
    ));
    desk.run_once();
    let mails = new_mails(&desk, seen, 1);
    let seen = seen + mails.len();
    let receipt = one_to(&mails, "alice@example.com").body_text();
    assert!(
        receipt.contains("learnt: this question is return"),
        "{receipt}"
    );
    assert_eq!(desk.show(pat)["category"], "return");
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM corrections WHERE correct = 'return' AND text LIKE '%return my order%'"),
        1
    );
    desk.deliver(&mail(
        "Sam <sam@customer.org>",
        "support@example.com",
        "jacket",
        "sam-1@customer.org",
        "",
        "I want to return my jacket, it is too small.",
    ));
    desk.run_once();
    desk.sent(seen + 1);
    let sam = desk.tickets().last().unwrap()["id"].as_i64().unwrap();
    let t = desk.show(sam);
    assert_eq!(t["predicted_category"], "return", "{t:#}");
    assert_eq!(t["category"], "return", "no rule gave one: {t:#}");
}
