//! The structure's rules, checked on the source tree (see `src/lib.rs` and
//! `../shared/STYLE.md`): only `store` names the database driver, and `domain` depends on
//! no other room.

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Lines of code (not comments) of `text` that contain `word` as a whole identifier.
fn code_lines_naming(text: &str, word: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .filter(|(_, l)| {
            l.match_indices(word).any(|(i, _)| {
                let before = l[..i].chars().next_back();
                let after = l[i + word.len()..].chars().next();
                !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                    && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
        })
        .map(|(n, l)| (n + 1, l.trim().to_string()))
        .collect()
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn sqlx_is_named_only_in_store() {
    let store = src().join("store");
    let mut offenders = Vec::new();
    for f in rust_files(&src()) {
        if f.starts_with(&store) {
            continue;
        }
        let text = fs::read_to_string(&f).unwrap();
        for (n, line) in code_lines_naming(&text, "sqlx") {
            offenders.push(format!("{}:{n}: {line}", f.display()));
        }
    }
    assert!(
        offenders.is_empty(),
        "sqlx named outside src/store (take a `store::Conn` and call a store function):\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_check_finds_what_it_looks_for() {
    // Guards the guard: a check that cannot fail proves nothing.
    let hits = code_lines_naming(
        "use sqlx::Row;\n// sqlx in a comment\nlet sqlxy = 1;\nx.sqlx_thing()",
        "sqlx",
    );
    assert_eq!(hits, vec![(1, "use sqlx::Row;".to_string())]);
}

#[test]
fn domain_depends_on_no_other_room() {
    let mut offenders = Vec::new();
    for f in rust_files(&src().join("domain")) {
        let text = fs::read_to_string(&f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if let Some(i) = code.find("crate::")
                && !code[i..].starts_with("crate::domain")
            {
                offenders.push(format!("{}:{}: {code}", f.display(), n + 1));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "domain reaches into other rooms:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_pure_rooms_need_no_database() {
    // The matcher, the subject rules and command planning decide from values they are
    // given; their tests build those by hand.
    let mut offenders = Vec::new();
    let mut files = rust_files(&src().join("threading"));
    files.push(src().join("intake").join("matching.rs"));
    files.push(src().join("commands").join("parse.rs"));
    files.push(src().join("commands").join("table.rs"));
    for f in files {
        let text = fs::read_to_string(&f).unwrap();
        for (n, line) in code_lines_naming(&text, "store") {
            if line.contains("crate::store") {
                offenders.push(format!("{}:{n}: {line}", f.display()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "pure rooms reach the store:\n{}",
        offenders.join("\n")
    );
}
