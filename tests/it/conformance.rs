//! Conformance against public test corpora (see `../shared/corpus/README.md`): MIME parsing
//! with our pinned mail-parser, CJK/Nordic reply prefixes, RFC 5256 base subjects and
//! THREAD trees as Dovecot's imaptest scripts expect them, and JWZ's threading vectors.
//!
//! The corpus lives outside the project; when it is missing every test prints a notice and
//! passes. Every accepted difference from a corpus expectation is listed below with the
//! reason, and a listed difference that no longer occurs fails too, so the lists stay true.

// Test code over a fixed corpus: a panic is how a helper reports a broken fixture. This is
// what clippy.toml's allow-*-in-tests grant `#[test]` functions, extended to the helpers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use mail_parser::{HeaderValue, MessageParser};
use postdesk::threading::jwz::{
    ThreadForest, ThreadMessage, reference_chain, thread_ordered_subject, thread_references,
};
use postdesk::threading::subject::{normalize_subject, rfc5256_base_subject, strip_reply_prefixes};
use serde_json::Value;

/// mail-parser fixtures whose subject or From differs from what our mail-parser gives:
/// (path relative to `resources/eml`, reason).
const MAIL_PARSER_EXCEPTIONS: &[(&str, &str)] = &[];

/// realworld-cjk-subjects cases where mail-parser's decoding differs from CPython's:
/// (case number, reason). None: even case 8 (Big5 0xCE60, which the corpus warns decodes
/// differently across Big5 tables) comes out as 复 (U+590D) from encoding_rs, as in Python.
const CJK_DECODING_EXCEPTIONS: &[(u64, &str)] = &[];

/// Cases where `strip_reply_prefixes(decoded)` differs from the corpus' proposed base
/// subject, which is a proposal, not an assertion: (case number, reason).
const CJK_STRIP_EXCEPTIONS: &[(u64, &str)] = &[
    (
        5,
        "list tag in front of a reply prefix: we drop '[f2fs-dev] 答复:' together (the list \
         re-adds its tag on every reply), the corpus rule only strips at the very start",
    ),
    (
        18,
        "same list-tag policy: '[LTP] 回复：Re: Re:' is removed as a whole, the corpus rule \
         leaves it",
    ),
];

/// Dovecot imaptest steps we do not replay: (script, reason).
const DOVECOT_SKIPS: &[(&str, &str)] = &[];

/// JWZ vectors: messages whose placement is not normative (see the JSON notes: MailKit
/// drops the Loop1-3 and Loop7-10 cycles entirely, a helpdesk must keep them).
const JWZ_NON_NORMATIVE_SUBJECTS: &[&str] =
    &["Loop1", "Loop2", "Loop3", "Loop7", "Loop8", "Loop10"];

fn corpus(sub: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus")
        .join(sub);
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("corpus not found at {}, skipping", dir.display());
        None
    }
}

/// Every file below `dir`, sorted.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Fails with every problem listed, and with every exception that no longer applies.
fn assert_no_problems<K: Ord + std::fmt::Debug>(
    what: &str,
    problems: &[String],
    exceptions: &[(K, &str)],
    used: &BTreeSet<K>,
) {
    let stale: Vec<&K> = exceptions
        .iter()
        .map(|(k, _)| k)
        .filter(|k| !used.contains(k))
        .collect();
    assert!(
        problems.is_empty() && stale.is_empty(),
        "{what}: {} problem(s):\n{}\nexceptions that no longer apply: {stale:?}",
        problems.len(),
        problems.join("\n")
    );
}

fn decode_subject(raw_header_value: &str) -> String {
    let message = format!("Subject: {raw_header_value}\r\n\r\nbody\r\n");
    MessageParser::default()
        .parse(message.as_bytes())
        .and_then(|m| m.subject().map(str::to_string))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// a. MIME parsing
// ---------------------------------------------------------------------------------------

/// The last "subject" header's text in a mail-parser JSON fixture (mail-parser's
/// `subject()` also takes the last one).
fn expected_subject(json: &Value) -> Option<String> {
    let headers = json["parts"][0]["headers"].as_array()?;
    let value = &headers.iter().rev().find(|h| h["name"] == "subject")?["value"];
    match value {
        Value::Object(map) => match (map.get("Text"), map.get("TextList")) {
            (Some(Value::String(s)), _) => Some(s.clone()),
            (_, Some(Value::Array(list))) => list.last()?.as_str().map(str::to_string),
            _ => None,
        },
        _ => None,
    }
}

/// The From address when the fixture has exactly one plain mailbox: (name, address).
fn expected_from(json: &Value) -> Option<(Option<String>, Option<String>)> {
    let headers = json["parts"][0]["headers"].as_array()?;
    let from = headers.iter().rev().find(|h| h["name"] == "from")?;
    let list = from["value"]["Address"]["List"].as_array()?;
    let [only] = list.as_slice() else {
        return None;
    };
    let text = |v: &Value| v.as_str().map(str::to_string);
    Some((text(&only["name"]), text(&only["address"])))
}

#[test]
fn mime_corpus_parses_without_panic_and_matches_fixtures() {
    let Some(mail_parser) = corpus("mail-parser-resources") else {
        return;
    };
    let Some(mimekit) = corpus("mimekit-testdata") else {
        return;
    };
    let eml_dir = mail_parser.join("resources/eml");
    let mut inputs: Vec<PathBuf> = files_below(&eml_dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    let eml_count = inputs.len();
    inputs.extend(files_below(&mimekit.join("messages")));
    assert!(
        eml_count >= 100,
        "expected the 107 mail-parser messages, found {eml_count}"
    );

    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    let mut compared = 0;
    for path in &inputs {
        let bytes = fs::read(path).unwrap();
        let parsed = catch_unwind(AssertUnwindSafe(|| {
            MessageParser::default().parse(&bytes).map(|m| {
                let from = m.from().and_then(|a| a.first()).map(|a| {
                    (
                        a.name().map(str::to_string),
                        a.address().map(str::to_string),
                    )
                });
                (m.subject().map(str::to_string), from)
            })
        }));
        let Ok(parsed) = parsed else {
            problems.push(format!("{}: mail-parser panicked", path.display()));
            continue;
        };
        let json_path = path.with_extension("json");
        if !json_path.is_file() {
            continue;
        }
        let json: Value = serde_json::from_str(&fs::read_to_string(&json_path).unwrap()).unwrap();
        let relative = path.strip_prefix(&eml_dir).unwrap().display().to_string();
        let (subject, from) = parsed.unwrap_or_default();
        let mut mismatch = Vec::new();
        let want_subject = expected_subject(&json);
        if subject != want_subject {
            mismatch.push(format!("subject {subject:?} != expected {want_subject:?}"));
        }
        if let Some(want_from) = expected_from(&json)
            && from.as_ref() != Some(&want_from)
        {
            mismatch.push(format!("from {from:?} != expected {want_from:?}"));
        }
        compared += 1;
        if mismatch.is_empty() {
            continue;
        }
        if MAIL_PARSER_EXCEPTIONS.iter().any(|(p, _)| *p == relative) {
            used.insert(relative);
        } else {
            problems.push(format!("{relative}: {}", mismatch.join("; ")));
        }
    }
    eprintln!(
        "MIME corpus: {} files parsed, {compared} compared with their JSON",
        inputs.len()
    );
    assert!(compared >= 100, "only {compared} fixtures compared");
    let exceptions: Vec<(String, &str)> = MAIL_PARSER_EXCEPTIONS
        .iter()
        .map(|(p, r)| (p.to_string(), *r))
        .collect();
    assert_no_problems("mail-parser fixtures", &problems, &exceptions, &used);
}

// ---------------------------------------------------------------------------------------
// b. Real-world CJK/Nordic subjects
// ---------------------------------------------------------------------------------------

#[test]
fn cjk_subjects_decode_and_normalise_like_their_base() {
    let Some(dir) = corpus("realworld-cjk-subjects") else {
        return;
    };
    let json: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("subjects.json")).unwrap()).unwrap();
    let cases = json["cases"].as_array().unwrap();
    assert!(
        cases.len() >= 20,
        "expected 24 cases, found {}",
        cases.len()
    );

    let mut decoding_problems = Vec::new();
    let mut decoding_used = BTreeSet::new();
    let mut strip_problems = Vec::new();
    let mut strip_used = BTreeSet::new();
    let mut normalise_problems = Vec::new();
    for case in cases {
        let n = case["n"].as_u64().unwrap();
        let raw = case["raw_subject"].as_str().unwrap();
        let oracle = case["decoded_python_oracle"].as_str().unwrap();
        let proposed = case["proposed_base_subject"].as_str().unwrap();
        let decoded = decode_subject(raw);

        if let Some(asserted) = case["decoded_asserted_by_source_test"].as_str() {
            assert_eq!(
                decoded, asserted,
                "case {n}: decoding asserted by the source's test"
            );
        }
        if decoded != oracle {
            if CJK_DECODING_EXCEPTIONS.iter().any(|(k, _)| *k == n) {
                decoding_used.insert(n);
            } else {
                decoding_problems.push(format!("case {n}: decoded {decoded:?} != {oracle:?}"));
            }
        }

        let (stripped, _) = strip_reply_prefixes(&decoded);
        if stripped != proposed {
            if CJK_STRIP_EXCEPTIONS.iter().any(|(k, _)| *k == n) {
                strip_used.insert(n);
            } else {
                strip_problems.push(format!("case {n}: stripped {stripped:?} != {proposed:?}"));
            }
        }

        // The requirement that matters for ticket matching: a reply's key is its base's.
        let (ours, theirs) = (normalize_subject(&decoded), normalize_subject(proposed));
        if ours != theirs {
            normalise_problems.push(format!("case {n}: {ours:?} != {theirs:?}"));
        }
    }
    assert_no_problems(
        "CJK decoding",
        &decoding_problems,
        CJK_DECODING_EXCEPTIONS,
        &decoding_used,
    );
    assert_no_problems(
        "CJK prefix stripping",
        &strip_problems,
        CJK_STRIP_EXCEPTIONS,
        &strip_used,
    );
    assert_no_problems::<u64>(
        "CJK normalisation",
        &normalise_problems,
        &[],
        &BTreeSet::new(),
    );
}

// ---------------------------------------------------------------------------------------
// Dovecot imaptest: mbox and script reading
// ---------------------------------------------------------------------------------------

/// One message of an imaptest mbox.
struct MboxMessage {
    raw: String,
    /// The From_ line's date, which imaptest uses as INTERNALDATE.
    internal_date: i64,
}

/// Splits an mbox on lines starting with "From ".
fn read_mbox(path: &Path) -> Vec<MboxMessage> {
    let text = fs::read_to_string(path).unwrap();
    let mut messages: Vec<MboxMessage> = Vec::new();
    for line in text.split_inclusive('\n') {
        if let Some(envelope) = line.strip_prefix("From ") {
            messages.push(MboxMessage {
                raw: String::new(),
                internal_date: from_line_date(envelope),
            });
        } else if let Some(last) = messages.last_mut() {
            last.raw.push_str(line);
        }
    }
    messages
}

/// "user@domain  Fri Feb 22 17:06:23 2008 [+0200]" -> unix seconds.
fn from_line_date(envelope: &str) -> i64 {
    let words: Vec<&str> = envelope.split_whitespace().collect();
    let stamp = words[1..6].join(" ");
    let naive = chrono::NaiveDateTime::parse_from_str(&stamp, "%a %b %d %H:%M:%S %Y")
        .unwrap_or_else(|e| panic!("From_ line date {stamp:?}: {e}"));
    let offset = words.get(6).map_or(0, |z| {
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let digits: i64 = z.trim_start_matches(['+', '-']).parse().unwrap();
        sign * ((digits / 100) * 3600 + (digits % 100) * 60)
    });
    naive.and_utc().timestamp() - offset
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    value
        .as_text_list()
        .map(|l| l.iter().map(|s| s.to_string()).collect())
        .unwrap_or_default()
}

fn summarise(message: &MboxMessage, seq: u32) -> ThreadMessage {
    let parsed = MessageParser::default()
        .parse(message.raw.as_bytes())
        .unwrap();
    let references = ids(parsed.references());
    let in_reply_to = ids(parsed.in_reply_to());
    let refs: Vec<&str> = references.iter().map(String::as_str).collect();
    let irt: Vec<&str> = in_reply_to.iter().map(String::as_str).collect();
    ThreadMessage {
        message_id: parsed.message_id().map(str::to_string),
        references: reference_chain(&refs, &irt),
        subject: parsed.subject().unwrap_or_default().to_string(),
        // RFC 5256: the sent date, or INTERNALDATE when Date is missing or unparsable.
        date: parsed
            .date()
            .map_or(message.internal_date, |d| d.to_timestamp()),
        seq,
    }
}

/// RFC822.SIZE as Dovecot stores the message (CRLF line ends).
fn rfc822_size(message: &MboxMessage) -> usize {
    message.raw.len() + message.raw.matches('\n').count()
}

/// "1,3:5" -> {1, 3, 4, 5}.
fn parse_sequence_set(set: &str) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    for part in set.split(',') {
        match part.split_once(':') {
            Some((a, b)) => out.extend(a.parse::<usize>().unwrap()..=b.parse::<usize>().unwrap()),
            None => {
                out.insert(part.parse::<usize>().unwrap());
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// c. sort-subject
// ---------------------------------------------------------------------------------------

#[test]
fn dovecot_sort_subject_agrees_with_rfc5256_base_subject() {
    let Some(dir) = corpus("dovecot-imaptest") else {
        return;
    };
    let messages = read_mbox(&dir.join("sort-subject.mbox"));
    assert_eq!(messages.len(), 15);
    let summaries: Vec<ThreadMessage> = messages
        .iter()
        .zip(1u32..)
        .map(|(m, seq)| summarise(m, seq))
        .collect();
    // i;ascii-casemap compares upper-cased.
    let base: Vec<String> = summaries
        .iter()
        .map(|m| rfc5256_base_subject(&m.subject).to_ascii_uppercase())
        .collect();

    let script = fs::read_to_string(dir.join("sort-subject")).unwrap();
    let lines: Vec<&str> = script.lines().map(str::trim).collect();
    let mut checked = 0;
    for (i, line) in lines.iter().enumerate() {
        let Some(criteria) = line
            .strip_prefix("ok sort (")
            .and_then(|rest| rest.split_once(')'))
            .map(|(c, _)| c)
        else {
            continue;
        };
        let expected: Vec<usize> = lines[i + 1..]
            .iter()
            .find_map(|l| l.strip_prefix("* sort "))
            .unwrap()
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect();
        // (key, reversed) in priority order; the final tie-break is the sequence number.
        let mut keys: Vec<(&str, bool)> = Vec::new();
        let mut reverse = false;
        for word in criteria.split_whitespace() {
            match word {
                "reverse" => reverse = true,
                "subject" | "size" => {
                    keys.push((word, reverse));
                    reverse = false;
                }
                other => panic!("sort key {other:?} not supported by this harness"),
            }
        }
        let mut ours: Vec<usize> = (1..=messages.len()).collect();
        ours.sort_by(|&a, &b| {
            for &(key, reversed) in &keys {
                let ordering = match key {
                    "subject" => base[a - 1].cmp(&base[b - 1]),
                    _ => rfc822_size(&messages[a - 1]).cmp(&rfc822_size(&messages[b - 1])),
                };
                let ordering = if reversed {
                    ordering.reverse()
                } else {
                    ordering
                };
                if ordering.is_ne() {
                    return ordering;
                }
            }
            a.cmp(&b)
        });
        let described: Vec<String> = ours
            .iter()
            .map(|&s| format!("{s}:{:?}", base[s - 1]))
            .collect();
        assert_eq!(
            ours, expected,
            "sort ({criteria}); our base subjects: {described:?}"
        );
        checked += 1;
    }
    assert_eq!(checked, 3, "expected three SORT commands in the script");

    // The base subjects the expected order encodes, spelled out.
    let expected_base = [
        "A",
        "C",
        "B",
        "_",
        "B",
        "B (A)",
        "C",
        "[XYZ]",
        "",
        "",
        "B",
        "C",
        "C",
        "AD: RE: AD: RE: AD: X",
        "BABYLON",
    ];
    assert_eq!(base, expected_base);
}

// ---------------------------------------------------------------------------------------
// d. thread scripts
// ---------------------------------------------------------------------------------------

/// Replays one imaptest thread script against our threader; returns (checked, problems).
fn replay_thread_script(dir: &Path, name: &str) -> (usize, Vec<String>) {
    let script = fs::read_to_string(dir.join(name)).unwrap();
    let mbox = read_mbox(&dir.join(format!("{name}.mbox")));
    let mut next_append = 0;
    // The mailbox: indexes into `mbox`, in sequence order.
    let mut mailbox: Vec<usize> = Vec::new();
    let mut deleted: BTreeSet<usize> = BTreeSet::new();
    let mut checked = 0;
    let mut problems = Vec::new();
    let lines: Vec<&str> = script.lines().map(str::trim).collect();
    for (i, line) in lines.iter().enumerate() {
        let lower = line.to_ascii_lowercase();
        if lower == "messages: all" {
            mailbox = (0..mbox.len()).collect();
            next_append = mbox.len();
        } else if lower == "ok append" {
            mailbox.push(next_append);
            next_append += 1;
        } else if let Some(rest) = lower.strip_prefix("ok store ") {
            let (set, flags) = rest.split_once(' ').unwrap();
            assert_eq!(
                flags, "+flags \\deleted",
                "{name}: unsupported STORE {line:?}"
            );
            for seq in parse_sequence_set(set) {
                deleted.insert(mailbox[seq - 1]);
            }
        } else if lower == "ok expunge" {
            mailbox.retain(|m| !deleted.contains(m));
            deleted.clear();
        } else if let Some(rest) = lower.strip_prefix("ok thread ") {
            let algorithm = rest.split_whitespace().next().unwrap();
            let expected = lines[i + 1..]
                .iter()
                .find_map(|l| {
                    let l = l.trim();
                    l.get(..9)
                        .filter(|p| p.eq_ignore_ascii_case("* thread "))
                        .map(|_| l[9..].to_string())
                })
                .unwrap();
            let summaries: Vec<ThreadMessage> = mailbox
                .iter()
                .zip(1u32..)
                .map(|(&m, seq)| summarise(&mbox[m], seq))
                .collect();
            let forest = match algorithm {
                "references" => thread_references(&summaries),
                "orderedsubject" => thread_ordered_subject(&summaries),
                other => panic!("{name}: unknown THREAD algorithm {other:?}"),
            };
            assert_every_message_once(&forest, summaries.len(), name);
            let ours = forest.render_imap();
            if ours != expected {
                problems.push(format!(
                    "{name} (command at line {}): ours {ours} != expected {expected}",
                    i + 1
                ));
            }
            checked += 1;
        } else if !(lower.is_empty()
            || lower.starts_with("capabilities:")
            || lower.starts_with("state:")
            || lower.starts_with("ok select")
            || lower.starts_with("* thread "))
        {
            problems.push(format!(
                "{name}: step {line:?} not understood by the harness"
            ));
        }
    }
    (checked, problems)
}

fn assert_every_message_once(forest: &ThreadForest, count: usize, what: &str) {
    let mut seen: BTreeMap<u32, usize> = BTreeMap::new();
    for (_, seq) in forest.list_preorder() {
        if let Some(seq) = seq {
            *seen.entry(seq).or_default() += 1;
        }
    }
    let expected: BTreeMap<u32, usize> = (1..=count as u32).map(|s| (s, 1)).collect();
    assert_eq!(seen, expected, "{what}: every message exactly once");
}

#[test]
fn dovecot_thread_scripts_match_expected_trees() {
    let Some(dir) = corpus("dovecot-imaptest") else {
        return;
    };
    let mut scripts: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("thread") && !n.ends_with(".mbox"))
        .collect();
    scripts.sort();
    assert!(
        scripts.len() >= 10,
        "expected 10 thread scripts, found {scripts:?}"
    );
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    let mut checked = 0;
    for name in &scripts {
        if DOVECOT_SKIPS.iter().any(|(s, _)| s == name) {
            used.insert(name.as_str());
            continue;
        }
        let (n, p) = replay_thread_script(&dir, name);
        assert!(n > 0, "{name}: no THREAD command found");
        checked += n;
        problems.extend(p);
    }
    eprintln!("Dovecot thread scripts: {checked} THREAD commands checked");
    assert_no_problems("Dovecot THREAD", &problems, DOVECOT_SKIPS, &used);
}

// ---------------------------------------------------------------------------------------
// e. JWZ TestThreader vectors
// ---------------------------------------------------------------------------------------

fn jwz_messages(case: &Value) -> Vec<ThreadMessage> {
    case["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let date = m["date"].as_str().unwrap();
            ThreadMessage {
                message_id: m["message_id"].as_str().map(str::to_string),
                references: m["references"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap().to_string())
                    .collect(),
                subject: m["subject"].as_str().unwrap().to_string(),
                date: chrono::DateTime::parse_from_rfc2822(date)
                    .unwrap_or_else(|e| panic!("date {date:?}: {e}"))
                    .timestamp(),
                seq: m["seq"].as_u64().unwrap() as u32,
            }
        })
        .collect()
}

/// MailKit's text form: one line per node, its subject (or "dummy"), 3 spaces per level.
/// Roots for which `skip_root` says so are left out.
fn render_text(
    forest: &ThreadForest,
    subjects: &BTreeMap<u32, &str>,
    skip_root: impl Fn(&[u32]) -> bool,
) -> String {
    let preorder = forest.list_preorder();
    let mut out = String::new();
    let mut start = 0;
    while start < preorder.len() {
        let end = preorder[start + 1..]
            .iter()
            .position(|(depth, _)| *depth == 0)
            .map_or(preorder.len(), |p| start + 1 + p);
        let tree = &preorder[start..end];
        let seqs: Vec<u32> = tree.iter().filter_map(|(_, s)| *s).collect();
        if !skip_root(&seqs) {
            for (depth, seq) in tree {
                let label = seq.map_or("dummy", |s| subjects[&s]);
                writeln!(out, "{}{label}", "   ".repeat(*depth)).unwrap();
            }
        }
        start = end;
    }
    out
}

#[test]
fn jwz_vectors() {
    let Some(dir) = corpus("jwz-testthreader") else {
        return;
    };
    let json: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("jwz-testthreader-cases.json")).unwrap())
            .unwrap();

    // REFERENCES.
    let case = &json["references_case"];
    let messages = jwz_messages(case);
    let subjects: BTreeMap<u32, &str> = case["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["seq"].as_u64().unwrap() as u32,
                m["subject"].as_str().unwrap(),
            )
        })
        .collect();
    let non_normative: BTreeSet<u32> = messages
        .iter()
        .filter(|m| JWZ_NON_NORMATIVE_SUBJECTS.contains(&m.subject.as_str()))
        .map(|m| m.seq)
        .collect();
    // Loop7-Loop10 are seqs 15-18 (two of them are titled "Loop8"); Loop1-3 are 9-11.
    assert_eq!(non_normative, BTreeSet::from([9, 10, 11, 15, 16, 17, 18]));
    let forest = thread_references(&messages);
    assert_every_message_once(&forest, messages.len(), "JWZ references_case");
    // The cycles must stay among themselves: a root holding both kinds would be a bug.
    let rendered = render_text(&forest, &subjects, |seqs| {
        let loops = seqs.iter().filter(|s| non_normative.contains(s)).count();
        assert!(
            loops == 0 || loops == seqs.len(),
            "cycle messages mixed into a normative thread: {seqs:?}"
        );
        loops > 0
    });
    assert_eq!(rendered, case["expected_tree"].as_str().unwrap());

    // ORDEREDSUBJECT.
    let case = &json["ordered_subject_case"];
    let messages = jwz_messages(case);
    let subjects: BTreeMap<u32, &str> = messages
        .iter()
        .map(|m| (m.seq, m.subject.as_str()))
        .collect();
    let forest = thread_ordered_subject(&messages);
    assert_every_message_once(&forest, messages.len(), "JWZ ordered_subject_case");
    assert_eq!(
        render_text(&forest, &subjects, |_| false),
        case["expected_tree"].as_str().unwrap()
    );

    // Base subject and reply depth.
    for case in json["threadable_subject_cases"].as_array().unwrap() {
        let input = case["input"].as_str().unwrap();
        let base = case["base"].as_str().unwrap();
        let depth = case["reply_depth"].as_u64().unwrap() as usize;
        assert_eq!(
            strip_reply_prefixes(input),
            (base.to_string(), depth),
            "{input:?}"
        );
        assert_eq!(
            rfc5256_base_subject(input),
            base,
            "RFC 5256 base of {input:?}"
        );
    }
}
