use super::*;

fn art(id: i64, lang: &str, status: Status, title: &str, body: &str) -> IndexedArticle {
    IndexedArticle {
        id,
        title: title.to_string(),
        body: body.to_string(),
        language: lang.to_string(),
        category: None,
        tags: Vec::new(),
        status,
    }
}

fn published(id: i64, lang: &str, title: &str, body: &str) -> IndexedArticle {
    art(id, lang, Status::Published, title, body)
}

fn q(text: &str) -> Query<'_> {
    Query {
        text,
        language: None,
        published_only: false,
        limit: 10,
    }
}

fn ids(hits: &[Hit]) -> Vec<i64> {
    hits.iter().map(|h| h.id).collect()
}

/// A small help centre in both languages, the shape the bot searches.
fn help_centre() -> Vec<IndexedArticle> {
    vec![
        published(
            1,
            "en",
            "How do I get a refund?",
            "Refunds are paid to the card you used within 5 days of receiving the return. \
             Open your order, choose Refund and tell us why.",
        ),
        published(
            2,
            "en",
            "Changing your delivery address",
            "You can change the delivery address until the parcel ships. Open the order \
             and edit the address.",
        ),
        published(
            3,
            "en",
            "Resetting your password",
            "Use the Forgot password link on the login page; we mail you a reset link.",
        ),
        published(
            4,
            "en",
            "Shipping times",
            "Parcels ship within two days; delivery takes three to five days. A refund \
             for late delivery is possible.",
        ),
        published(
            5,
            "zh",
            "如何申请退款",
            "收到退回的商品后，我们会在5天内把退款原路退回到您的付款账户。请在订单页面点击退款。",
        ),
        published(
            6,
            "zh",
            "退货流程",
            "商品签收后7天内可以申请退货。请把商品寄回仓库，并在订单页面填写快递单号。",
        ),
        published(
            7,
            "zh",
            "修改收货地址",
            "发货前可以在订单页面修改收货地址，发货后请联系快递公司。",
        ),
    ]
}

fn help_index() -> KbIndex {
    let index = KbIndex::in_memory().unwrap();
    index.rebuild(&help_centre()).unwrap();
    index
}

#[test]
fn analyzer_stems_english_and_keeps_chinese_words() {
    let terms = query_terms("Refunds, REFUNDED! 我想申请退款 ... 😀");
    assert!(terms.contains(&"refund".to_string()), "{terms:?}");
    assert!(terms.contains(&"退款".to_string()), "{terms:?}");
    assert!(terms.contains(&"申请".to_string()), "{terms:?}");
    assert!(
        terms.iter().all(|t| t.chars().any(char::is_alphanumeric)),
        "{terms:?}"
    );
    assert_eq!(
        terms.iter().filter(|t| *t == "refund").count(),
        1,
        "deduplicated: {terms:?}"
    );
}

#[test]
fn stop_words_alone_find_nothing() {
    let index = help_index();
    assert_eq!(
        query_terms("How do I ... what is the"),
        Vec::<String>::new()
    );
    assert!(
        index
            .search(&q("how do I, what is the"))
            .unwrap()
            .is_empty()
    );
    assert!(index.search(&q("请问我的是什么")).unwrap().is_empty());
}

#[test]
fn query_terms_are_capped_and_long_tokens_dropped() {
    let many: String = (0..500).map(|i| format!("word{i} ")).collect();
    assert_eq!(query_terms(&many).len(), MAX_QUERY_TERMS);
    let long = "x".repeat(200);
    assert!(query_terms(&format!("{long} refund")) == ["refund"]);
}

#[test]
fn a_term_in_the_title_beats_the_same_term_only_in_a_body() {
    let index = KbIndex::in_memory().unwrap();
    index
        .rebuild(&[
            published(
                10,
                "en",
                "Warranty claims",
                "How to claim for a broken item.",
            ),
            published(
                11,
                "en",
                "Broken items",
                "What to do when an item arrives damaged, and how warranty works.",
            ),
        ])
        .unwrap();
    let hits = index.search(&q("warranty")).unwrap();
    assert_eq!(ids(&hits), [10, 11]);
    assert!(hits[0].bm25 > hits[1].bm25 && hits[0].score > hits[1].score);
}

#[test]
fn english_question_finds_its_article_first() {
    let index = help_index();
    let hits = index
        .search(&q("how can I change the delivery address of my order"))
        .unwrap();
    assert_eq!(hits.first().map(|h| h.id), Some(2), "{hits:?}");
    let hits = index.search(&q("forgot my password")).unwrap();
    assert_eq!(hits.first().map(|h| h.id), Some(3), "{hits:?}");
}

#[test]
fn refund_in_chinese_is_found_and_ranks_over_returns_and_vice_versa() {
    let index = help_index();
    let zh = |text| Query {
        text,
        language: Some("zh"),
        published_only: true,
        limit: 10,
    };
    let hits = index
        .search(&zh("你好，我想申请退款，钱什么时候退回？"))
        .unwrap();
    assert_eq!(hits.first().map(|h| h.id), Some(5), "{hits:?}");
    let hits = index.search(&zh("退款")).unwrap();
    assert_eq!(hits.first().map(|h| h.id), Some(5), "{hits:?}");
    let hits = index.search(&zh("怎么退货？商品要寄到哪里")).unwrap();
    assert_eq!(hits.first().map(|h| h.id), Some(6), "{hits:?}");
    let pos5 = hits.iter().position(|h| h.id == 5);
    assert!(pos5.is_none_or(|p| p > 0), "{hits:?}");
}

#[test]
fn language_filter_keeps_other_languages_out() {
    let index = help_index();
    // "order" and 订单 both occur; a mixed question still only finds the asked language.
    let mixed = "order 订单 refund 退款";
    let en = index
        .search(&Query {
            language: Some("en"),
            ..q(mixed)
        })
        .unwrap();
    assert!(!en.is_empty() && en.iter().all(|h| h.id <= 4), "{en:?}");
    let zh = index
        .search(&Query {
            language: Some("ZH"),
            ..q(mixed)
        })
        .unwrap();
    assert!(!zh.is_empty() && zh.iter().all(|h| h.id >= 5), "{zh:?}");
    let all = index.search(&q(mixed)).unwrap();
    assert!(all.len() > en.len().max(zh.len()), "{all:?}");
}

#[test]
fn filters_do_not_change_scores() {
    let index = help_index();
    let plain = index.search(&q("refund")).unwrap();
    let filtered = index
        .search(&Query {
            language: Some("en"),
            published_only: true,
            ..q("refund")
        })
        .unwrap();
    assert_eq!(plain.first(), filtered.first());
}

#[test]
fn published_only_hides_drafts_and_retired() {
    let index = KbIndex::in_memory().unwrap();
    index
        .rebuild(&[
            art(
                1,
                "en",
                Status::Draft,
                "Gift cards",
                "Gift cards never expire.",
            ),
            art(
                2,
                "en",
                Status::Retired,
                "Gift cards (old)",
                "Gift cards expire.",
            ),
            art(
                3,
                "en",
                Status::Published,
                "Vouchers",
                "Gift cards and vouchers.",
            ),
        ])
        .unwrap();
    let all = index.search(&q("gift cards")).unwrap();
    assert_eq!(all.len(), 3);
    let public = index
        .search(&Query {
            published_only: true,
            ..q("gift cards")
        })
        .unwrap();
    assert_eq!(ids(&public), [3]);
}

#[test]
fn upsert_replaces_the_old_text() {
    let index = help_index();
    let before = index.len();
    index
        .upsert(&published(
            3,
            "en",
            "Two-factor login",
            "Use your authenticator app.",
        ))
        .unwrap();
    assert_eq!(index.len(), before);
    assert!(index.search(&q("password")).unwrap().is_empty());
    assert_eq!(ids(&index.search(&q("authenticator")).unwrap()), [3]);
    index
        .upsert(&published(
            99,
            "en",
            "Authenticator apps",
            "Which ones work.",
        ))
        .unwrap();
    assert_eq!(index.len(), before + 1);
}

#[test]
fn remove_and_rebuild() {
    let index = help_index();
    index.remove(3).unwrap();
    assert!(index.search(&q("password")).unwrap().is_empty());
    assert_eq!(index.len(), 6);
    index.remove(12345).unwrap();
    assert_eq!(index.len(), 6);
    index
        .rebuild(&[published(50, "en", "Only one", "Password help.")])
        .unwrap();
    assert_eq!(index.len(), 1);
    assert_eq!(ids(&index.search(&q("password")).unwrap()), [50]);
    assert!(index.search(&q("refund")).unwrap().is_empty());
    index.rebuild(&[]).unwrap();
    assert!(index.is_empty());
}

#[test]
fn on_disk_index_persists_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kb");
    {
        let index = KbIndex::open(&path).unwrap();
        assert!(index.was_recreated(), "a new index needs a rebuild");
        index.rebuild(&help_centre()).unwrap();
        index.remove(7).unwrap();
    }
    let index = KbIndex::open(&path).unwrap();
    assert!(!index.was_recreated());
    assert_eq!(index.len(), 6);
    assert_eq!(
        index.search(&q("退款")).unwrap().first().map(|h| h.id),
        Some(5)
    );
    index
        .upsert(&published(8, "en", "Invoices", "Download them."))
        .unwrap();
    assert_eq!(index.len(), 7);
}

#[test]
fn corrupted_index_is_recreated_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kb");
    {
        let index = KbIndex::open(&path).unwrap();
        index.rebuild(&help_centre()).unwrap();
    }
    std::fs::write(path.join("meta.json"), "{ not json").unwrap();
    let index = KbIndex::open(&path).unwrap();
    assert!(index.was_recreated());
    assert!(index.is_empty());
    index.rebuild(&help_centre()).unwrap();
    assert_eq!(index.len(), 7);
}

#[test]
fn index_of_another_schema_is_recreated() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut b = Schema::builder();
        b.add_text_field("something_else", STRING);
        let index = Index::create_in_dir(dir.path(), b.build()).unwrap();
        let mut w: IndexWriter<TantivyDocument> =
            index.writer_with_num_threads(1, WRITER_HEAP_BYTES).unwrap();
        w.commit().unwrap();
    }
    let index = KbIndex::open(dir.path()).unwrap();
    assert!(index.was_recreated());
    index.upsert(&published(1, "en", "Hello", "World")).unwrap();
    assert_eq!(index.len(), 1);
}

#[test]
fn foreign_files_are_wiped_but_subdirectories_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not an index").unwrap();
    std::fs::write(dir.path().join("meta.json"), "[]").unwrap();
    let index = KbIndex::open(dir.path()).unwrap();
    assert!(index.was_recreated());
    assert!(!dir.path().join("notes.txt").exists());
    drop(index);

    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join("Documents")).unwrap();
    std::fs::write(home.path().join("meta.json"), "garbage").unwrap();
    let err = KbIndex::open(home.path()).err().unwrap();
    assert!(format!("{err:#}").contains("not a search index"), "{err:#}");
    assert!(home.path().join("Documents").exists());
}

#[test]
fn hostile_queries_are_not_errors() {
    let index = help_index();
    let huge = "refund ".repeat(100 * 1024 / 7);
    let garbage: String = (0..100_000u32)
        .filter_map(|i| char::from_u32(0x20 + (i * 7919) % 0x2_0000))
        .collect();
    for text in [
        "title:foo AND (",
        "*",
        "\"unclosed",
        "body:refund OR status:draft",
        "",
        "   \n\t",
        "?!.,;:()[]{}<>-_=+*&^%$#@~`'\"/\\|",
        "😀🎉👍",
        "，。？！、",
        huge.as_str(),
        garbage.as_str(),
    ] {
        let hits = index
            .search(&q(text))
            .unwrap_or_else(|e| panic!("{text:.40?}: {e:#}"));
        for h in &hits {
            assert!((0.0..=1.0).contains(&h.score), "{text:.40?}: {h:?}");
        }
    }
    assert!(index.search(&q("*")).unwrap().is_empty());
    assert!(index.search(&q("😀")).unwrap().is_empty());
    // A field name in the text is a word, not a filter: draft articles stay hidden.
    index
        .upsert(&art(40, "en", Status::Draft, "Refund draft", "refund"))
        .unwrap();
    let hits = index
        .search(&Query {
            published_only: true,
            ..q("status:draft refund")
        })
        .unwrap();
    assert!(
        !hits.is_empty() && hits.iter().all(|h| h.id != 40),
        "{hits:?}"
    );
    assert_eq!(
        index
            .search(&Query {
                limit: 0,
                ..q("refund")
            })
            .unwrap(),
        []
    );
    assert!(!index.search(&q(&huge)).unwrap().is_empty());
}

#[test]
fn normalise_is_bounded_and_monotone() {
    let mut last = -1.0;
    for i in 0..200 {
        let bm25 = i as f32 * 0.05;
        let s = normalise(bm25, 4.0);
        assert!((0.0..1.0).contains(&s) || s == 1.0, "{bm25}: {s}");
        assert!(s > last || (i > 0 && s == 1.0), "{bm25}: {s} after {last}");
        last = s;
    }
    assert_eq!(normalise(0.0, 4.0), 0.0);
    assert_eq!(normalise(f32::NAN, 4.0), 0.0);
    assert!(normalise(1.0, 0.0) <= 1.0);
}

#[test]
fn scores_fall_with_rank_within_a_query() {
    let index = help_index();
    for text in [
        "refund delivery order",
        "订单 退款 地址",
        "address password",
    ] {
        let hits = index.search(&q(text)).unwrap();
        assert!(hits.len() >= 2, "{text}: {hits:?}");
        for pair in hits.windows(2) {
            assert!(pair[0].bm25 >= pair[1].bm25, "{text}: {hits:?}");
            assert!(pair[0].score >= pair[1].score, "{text}: {hits:?}");
        }
    }
}

#[test]
fn near_verbatim_questions_score_high_and_unrelated_ones_low() {
    let index = help_index();
    let en = |text| Query {
        text,
        language: Some("en"),
        published_only: true,
        limit: 10,
    };
    let zh = |text| Query {
        language: Some("zh"),
        ..en(text)
    };
    let cases = [
        (en("How do I get a refund?"), 1),
        (
            en(
                "Hi, I returned the shoes last week and they didn't fit. How do I get a \
                refund for my order? Thanks, Anna",
            ),
            1,
        ),
        (en("how to reset my password"), 3),
        (en("change delivery address"), 2),
        (zh("如何申请退款"), 5),
        (zh("您好，我上周买的鞋子不合适，请问怎么申请退款？谢谢"), 5),
        (zh("退货流程是什么"), 6),
    ];
    for (query, want) in &cases {
        let hits = index.search(query).unwrap();
        let best = hits
            .first()
            .unwrap_or_else(|| panic!("{}: no hit", query.text));
        assert_eq!(best.id, *want, "{}: {hits:?}", query.text);
        assert!(best.score >= 0.6, "{}: {hits:?}", query.text);
        let second = hits.get(1).map(|h| h.score).unwrap_or(0.0);
        assert!(best.score - second >= 0.15, "{}: {hits:?}", query.text);
    }
    for query in [
        en("My cat likes the sofa better than the basket"),
        en("What is your opinion on the weather in Paris?"),
        zh("今天天气很好，我们去公园散步"),
    ] {
        let hits = index.search(&query).unwrap();
        let best = hits.first().map(|h| h.score).unwrap_or(0.0);
        assert!(best < 0.35, "{}: {hits:?}", query.text);
    }
}
