//! Handlebars templates: embedded defaults from `templates/`, each overridable by a file of
//! the same name in the configured directory, and the canned replies (macros) agents insert
//! with `#macro NAME`.
//!
//! Templates are text, not HTML, so HTML escaping is off. Customer data (subject, name,
//! message text) is only ever a *value* in the render context, never template source: a
//! subject like `{{#each}}` is printed as it is, not evaluated (template injection is
//! impossible). Only files from `templates/` and the configured directory are ever compiled.
//!
//! Strict mode is on: a template that prints a field the code does not give it is an error
//! when rendered (and `postdesk template check` finds it before a customer would), not a
//! silent blank. `{{#if field}}` still tests an optional field without error.
//!
//! # Dynamic scripts
//!
//! A mail template `NAME.txt` / `NAME.subject` may have *qualified* variants, files named
//! `NAME.Q1.Q2….txt.hbs`, chosen by a [`ScriptKey`] (the customer's language, tier, channel
//! and mood) through a fallback chain, see [`Templates::chain`]: for a Chinese VIP,
//! `ack.zh.vip.txt`, then `ack.zh.txt`, then `ack.vip.txt`, then `ack.txt`. Qualified
//! variants come embedded (see [`DEFAULTS`]) and from the configured directory, which is
//! scanned once in [`Templates::load`]; only files whose NAME is a known template are
//! loaded, others are skipped with a warning. A qualifier is 1-32 of `a-z 0-9 _ -`
//! ([`is_qualifier`]); values from customer data that are not are ignored, so customer
//! data can never name a path or another template.
//!
//! # Helpers
//!
//! Every template may use these; none of them fails or panics on a missing or mistyped
//! argument, each falls back to something sensible instead.
//!
//! - `{{greeting LANGUAGE TIMEZONE NOW}}`: "Good morning" / "Good afternoon" / "Good
//!   evening" (Chinese: 早上好 / 下午好 / 晚上好) for the hour of `NOW` (RFC 3339, in the
//!   data so tests are deterministic) in the IANA `TIMEZONE`, UTC when it is unknown;
//!   "Hello" / "您好" without a usable `NOW`. See [`greeting`].
//! - `{{date_local TIME LANGUAGE [TIMEZONE]}}`: the date of `TIME` (RFC 3339, or
//!   `YYYY-MM-DD`) as "7 December 2026" or "2026年12月7日", in `TIMEZONE` (default UTC);
//!   an unreadable `TIME` is printed as it is. See [`date_local`].
//! - `{{polite NAME LANGUAGE}}`: the opening of a letter, "Dear Li Wei," / "尊敬的李伟您好，",
//!   or "Hello," / "您好，" without a name. See [`polite`].
//!
//! A LANGUAGE starting with `zh` is Chinese; anything else (or nothing) is English.
//!
//! Macros are `macros/NAME.txt.hbs`: the embedded defaults below, plus any such file in the
//! configured directory (which replaces a default of the same name). They are all read once,
//! in [`Templates::load`]; rendering a macro never touches the filesystem, and a name outside
//! [`is_macro_name`] is refused before any lookup, so `#macro ../../etc/passwd` cannot name a
//! path.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use handlebars::{Context as HbContext, Handlebars, Helper, HelperResult, Output, RenderContext};

/// Every template name with its embedded default.
pub const DEFAULTS: &[(&str, &str)] = &[
    (
        "ack.subject",
        include_str!("../../templates/ack.subject.hbs"),
    ),
    ("ack.txt", include_str!("../../templates/ack.txt.hbs")),
    (
        "ack.zh.subject",
        include_str!("../../templates/ack.zh.subject.hbs"),
    ),
    ("ack.zh.txt", include_str!("../../templates/ack.zh.txt.hbs")),
    (
        "ack.vip.txt",
        include_str!("../../templates/ack.vip.txt.hbs"),
    ),
    (
        "ack.zh.vip.txt",
        include_str!("../../templates/ack.zh.vip.txt.hbs"),
    ),
    (
        "bot-answer.subject",
        include_str!("../../templates/bot-answer.subject.hbs"),
    ),
    (
        "bot-answer.txt",
        include_str!("../../templates/bot-answer.txt.hbs"),
    ),
    (
        "bot-answer.zh.subject",
        include_str!("../../templates/bot-answer.zh.subject.hbs"),
    ),
    (
        "bot-answer.zh.txt",
        include_str!("../../templates/bot-answer.zh.txt.hbs"),
    ),
    (
        "notify.subject",
        include_str!("../../templates/notify.subject.hbs"),
    ),
    ("notify.txt", include_str!("../../templates/notify.txt.hbs")),
    ("reply.txt", include_str!("../../templates/reply.txt.hbs")),
    (
        "weekly.subject",
        include_str!("../../templates/weekly.subject.hbs"),
    ),
    ("weekly.txt", include_str!("../../templates/weekly.txt.hbs")),
    (
        "weekly.html",
        include_str!("../../templates/weekly.html.hbs"),
    ),
    (
        "receipt.subject",
        include_str!("../../templates/receipt.subject.hbs"),
    ),
    (
        "receipt.txt",
        include_str!("../../templates/receipt.txt.hbs"),
    ),
    (
        "held.subject",
        include_str!("../../templates/held.subject.hbs"),
    ),
    ("held.txt", include_str!("../../templates/held.txt.hbs")),
    (
        "problems.subject",
        include_str!("../../templates/problems.subject.hbs"),
    ),
    (
        "problems.txt",
        include_str!("../../templates/problems.txt.hbs"),
    ),
    (
        "alert.subject",
        include_str!("../../templates/alert.subject.hbs"),
    ),
    ("alert.txt", include_str!("../../templates/alert.txt.hbs")),
    (
        "alert-escalation.subject",
        include_str!("../../templates/alert-escalation.subject.hbs"),
    ),
    (
        "alert-escalation.txt",
        include_str!("../../templates/alert-escalation.txt.hbs"),
    ),
    (
        "sla.subject",
        include_str!("../../templates/sla.subject.hbs"),
    ),
    ("sla.txt", include_str!("../../templates/sla.txt.hbs")),
    (
        "digest.subject",
        include_str!("../../templates/digest.subject.hbs"),
    ),
    ("digest.txt", include_str!("../../templates/digest.txt.hbs")),
    (
        "link-code.subject",
        include_str!("../../templates/link-code.subject.hbs"),
    ),
    (
        "link-code.txt",
        include_str!("../../templates/link-code.txt.hbs"),
    ),
    (
        "agent-notice.subject",
        include_str!("../../templates/agent-notice.subject.hbs"),
    ),
    (
        "agent-notice.txt",
        include_str!("../../templates/agent-notice.txt.hbs"),
    ),
    (
        "monthly.subject",
        include_str!("../../templates/monthly.subject.hbs"),
    ),
    (
        "monthly.txt",
        include_str!("../../templates/monthly.txt.hbs"),
    ),
];

/// Every embedded macro (`templates/macros/NAME.txt.hbs`) with its text.
pub const MACRO_DEFAULTS: &[(&str, &str)] = &[
    (
        "plan-vip",
        include_str!("../../templates/macros/plan-vip.txt.hbs"),
    ),
    (
        "password-reset",
        include_str!("../../templates/macros/password-reset.txt.hbs"),
    ),
    (
        "refund-policy",
        include_str!("../../templates/macros/refund-policy.txt.hbs"),
    ),
];

/// Longest macro name; the same limit as `#macro` in `commands::parse`.
pub const MAX_MACRO_NAME: usize = crate::commands::parse::MAX_MACRO_CHARS;

/// Subdirectory of the template directory holding macro overrides and additions.
const MACRO_DIR: &str = "macros";
/// File name suffix of a macro.
const MACRO_SUFFIX: &str = ".txt.hbs";
/// Registry names of macros get this prefix, so a macro can never shadow or be confused
/// with a mail template.
const MACRO_PREFIX: &str = "macro:";

/// True for a name `#macro` accepts and a file may carry: 1-64 of `a-z 0-9 _ -`, starting
/// with a letter or digit. `commands::parse` applies this same rule to `#macro` lines, so
/// every parsed name can be found. No `.`, `/` or `\`, so a name is never a path.
pub fn is_macro_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_MACRO_NAME
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Longest qualifier of a template name (a language, tier, channel or mood).
pub const MAX_QUALIFIER: usize = 32;
/// At most this many qualifiers in a template name: one per field of [`ScriptKey`].
const MAX_QUALIFIERS: usize = 4;
/// The kinds of mail template: the last part of a name before `.hbs`.
const KINDS: &[&str] = &["txt", "subject", "html"];
/// File name suffix of every template.
const HBS_SUFFIX: &str = ".hbs";

/// True for a qualifier a template name may carry: 1-[`MAX_QUALIFIER`] of `a-z 0-9 _ -`. No
/// `.`, `/` or `\`, so a qualifier taken from customer data never names a path.
pub fn is_qualifier(q: &str) -> bool {
    (1..=MAX_QUALIFIER).contains(&q.len())
        && q.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// What picks the variant of a template (see [`Templates::chain`]). Values are compared in
/// ASCII lower case; one that is not a valid qualifier ([`is_qualifier`]) is ignored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScriptKey<'a> {
    /// The customer's language code, e.g. `zh`, `en`.
    pub language: Option<&'a str>,
    /// The customer's tier, e.g. `vip`, `standard`.
    pub tier: Option<&'a str>,
    /// The channel the customer wrote on, e.g. `email`, `telegram`.
    pub channel: Option<&'a str>,
    /// `negative` when the message's sentiment is strongly negative (see [`mood_of`]).
    pub mood: Option<&'a str>,
}

impl ScriptKey<'_> {
    /// The valid qualifiers, in the order language, tier, channel, mood.
    fn qualifiers(&self) -> Vec<String> {
        [self.language, self.tier, self.channel, self.mood]
            .into_iter()
            .flatten()
            .filter_map(|v| {
                let v = v.trim().to_ascii_lowercase();
                if is_qualifier(&v) {
                    Some(v)
                } else {
                    tracing::debug!("Template qualifier {v:?} is not a-z, 0-9, _ or -; ignored.");
                    None
                }
            })
            .collect()
    }
}

/// The mood qualifier of a message: `negative` when its sentiment is below `threshold`
/// (`[triage] negative_alert_below`, "strongly negative"), otherwise none.
pub fn mood_of(sentiment: f64, threshold: f64) -> Option<&'static str> {
    (sentiment < threshold).then_some("negative")
}

/// One problem `postdesk template check` found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TemplateProblem {
    /// The file (a path in the template directory, or `templates/NAME.hbs` when embedded).
    pub file: String,
    pub problem: String,
}

pub struct Templates {
    hb: Handlebars<'static>,
    /// Names of every macro registered, sorted.
    macros: BTreeSet<String>,
    /// Every mail template registered, qualified ones too, with the file it came from.
    origins: BTreeMap<String, String>,
}

/// The handlebars registry every template is compiled in: strict, unescaped, our helpers.
fn registry() -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.register_escape_fn(handlebars::no_escape);
    hb.set_strict_mode(true);
    hb.register_helper("greeting", Box::new(greeting_helper));
    hb.register_helper("date_local", Box::new(date_local_helper));
    hb.register_helper("polite", Box::new(polite_helper));
    hb
}

/// The template names known: the first part of every default (`ack`, `bot-answer`...).
fn base_names() -> BTreeSet<&'static str> {
    DEFAULTS
        .iter()
        .filter_map(|(name, _)| name.split('.').next())
        .collect()
}

/// The registry name of template file `file` (`ack.zh.vip.txt.hbs` → `ack.zh.vip.txt`):
/// a known base, at most [`MAX_QUALIFIERS`] valid qualifiers, a kind of [`KINDS`].
fn template_name(file: &str, bases: &BTreeSet<&str>) -> Option<String> {
    let stem = file.strip_suffix(HBS_SUFFIX)?;
    let parts: Vec<&str> = stem.split('.').collect();
    let (kind, rest) = parts.split_last()?;
    let (base, qualifiers) = rest.split_first()?;
    (bases.contains(base)
        && KINDS.contains(kind)
        && qualifiers.len() <= MAX_QUALIFIERS
        && qualifiers.iter().all(|q| is_qualifier(q)))
    .then(|| stem.to_string())
}

/// The template files in `dir` (not the macros), as (registry name, path), sorted; nothing
/// when `dir` does not exist. Other files are skipped with a warning.
fn template_files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let bases = base_names();
    let mut found = Vec::new();
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("Listing templates in {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("Listing templates in {}", dir.display()))?;
        let path = entry.path();
        let file = entry.file_name();
        let file = file.to_str().unwrap_or_default();
        if file == MACRO_DIR && path.is_dir() {
            continue;
        }
        match template_name(file, &bases) {
            Some(name) if path.is_file() => found.push((name, path)),
            _ => tracing::warn!(
                "Template directory: {} is not a template (templates are files named \
                 NAME[.QUALIFIER...].txt.hbs or .subject.hbs, NAME one of {}, each qualifier \
                 1-{MAX_QUALIFIER} of a-z, 0-9, _ and -); skipped.",
                path.display(),
                bases.iter().copied().collect::<Vec<_>>().join(", ")
            ),
        }
    }
    found.sort();
    Ok(found)
}

/// Why `file`, a `.hbs` file in the template directory, is not a template; `None` when it
/// is one. For `template check`, which reports what loading only warns about.
fn misnamed(file: &str, bases: &BTreeSet<&str>) -> Option<String> {
    if template_name(file, bases).is_some() {
        return None;
    }
    let stem = file.strip_suffix(HBS_SUFFIX).unwrap_or(file);
    let parts: Vec<&str> = stem.split('.').collect();
    let base = parts.first().copied().unwrap_or_default();
    let kind = parts.last().copied().unwrap_or_default();
    let known = bases.iter().copied().collect::<Vec<_>>().join(", ");
    Some(if !bases.contains(base) {
        format!("is not a template: {base:?} is not a template name (one of {known})")
    } else if parts.len() < 2 || !KINDS.contains(&kind) {
        format!(
            "is not a template: the name must end in .txt.hbs or .subject.hbs, as {base}.txt.hbs"
        )
    } else if parts.len() > MAX_QUALIFIERS + 2 {
        format!(
            "is not a template: at most {MAX_QUALIFIERS} qualifiers (language, tier, channel, mood)"
        )
    } else {
        format!(
            "is not a template: each qualifier must be 1-{MAX_QUALIFIER} of a-z, 0-9, _ and - \
             (lower case, as {base}.zh.vip.txt.hbs)"
        )
    })
}

/// The `.hbs` files directly in `dir` that are not templates, with why; loading skips them.
fn misnamed_files(dir: &Path) -> Vec<(PathBuf, String)> {
    let bases = base_names();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(PathBuf, String)> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .filter_map(|e| {
            let file = e.file_name().to_str()?.to_string();
            if !file.ends_with(HBS_SUFFIX) {
                return None;
            }
            misnamed(&file, &bases).map(|why| (e.path(), why))
        })
        .collect();
    found.sort();
    found
}

impl Templates {
    /// Loads the defaults (qualified ones too), then every template file in `dir`: an
    /// override of a default of the same name, or a qualified variant of a known template.
    /// Then the macros: the embedded ones and every `macros/NAME.txt.hbs` in `dir`.
    pub fn load(dir: Option<&Path>) -> Result<Templates> {
        let mut hb = registry();
        let mut origins = BTreeMap::new();
        for (name, text) in DEFAULTS {
            hb.register_template_string(name, *text)
                .with_context(|| format!("Template {name} does not compile"))?;
            origins.insert((*name).to_string(), format!("templates/{name}.hbs"));
        }
        if let Some(dir) = dir {
            for (name, path) in template_files(dir)? {
                let source = std::fs::read_to_string(&path)
                    .with_context(|| format!("Reading template {}", path.display()))?;
                hb.register_template_string(&name, source)
                    .with_context(|| {
                        format!("Template {name} ({}) does not compile", path.display())
                    })?;
                origins.insert(name, path.display().to_string());
            }
        }
        let mut macros = BTreeSet::new();
        for (name, text) in MACRO_DEFAULTS {
            hb.register_template_string(&format!("{MACRO_PREFIX}{name}"), *text)
                .with_context(|| format!("Macro {name} does not compile"))?;
            macros.insert((*name).to_string());
        }
        if let Some(dir) = dir {
            for (name, path) in macro_files(&dir.join(MACRO_DIR))? {
                let source = std::fs::read_to_string(&path)
                    .with_context(|| format!("Reading macro {}", path.display()))?;
                hb.register_template_string(&format!("{MACRO_PREFIX}{name}"), source)
                    .with_context(|| format!("Macro {} does not compile", path.display()))?;
                macros.insert(name);
            }
        }
        Ok(Templates {
            hb,
            macros,
            origins,
        })
    }

    /// Renders a template; the result is trimmed of trailing whitespace.
    pub fn render(&self, name: &str, data: &serde_json::Value) -> Result<String> {
        let s = self
            .hb
            .render(name, data)
            .with_context(|| format!("Rendering template {name}"))?;
        Ok(s.trim_end().to_string())
    }

    /// The candidate names for template `name` (`ack.txt`) and `key`, most specific first:
    /// the key's valid qualifiers in the order language, tier, channel, mood; every
    /// combination of them that keeps that order, the longest first, among those of one
    /// length the ones with earlier qualifiers first (so language-bearing ones before those
    /// without); the bare `name` last. For `zh`, `vip`: `ack.zh.vip.txt`, `ack.zh.txt`,
    /// `ack.vip.txt`, `ack.txt`.
    pub fn chain(name: &str, key: &ScriptKey<'_>) -> Vec<String> {
        let Some((base, kind)) = name.rsplit_once('.') else {
            return vec![name.to_string()];
        };
        let qualifiers = key.qualifiers();
        let n = qualifiers.len();
        // Every subset as a list of positions; `n` is at most 4, so at most 16.
        let mut subsets: Vec<Vec<usize>> = (0u32..(1u32 << n))
            .map(|mask| (0..n).filter(|i| mask & (1u32 << i) != 0).collect())
            .collect();
        subsets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        subsets
            .into_iter()
            .map(|positions| {
                let mut parts = vec![base];
                parts.extend(
                    positions
                        .iter()
                        .filter_map(|i| qualifiers.get(*i).map(String::as_str)),
                );
                parts.push(kind);
                parts.join(".")
            })
            .collect()
    }

    /// The most specific registered template of [`Templates::chain`]; `name` itself when
    /// none is registered.
    pub fn resolve(&self, name: &str, key: &ScriptKey<'_>) -> String {
        Self::chain(name, key)
            .into_iter()
            .find(|n| self.origins.contains_key(n))
            .unwrap_or_else(|| name.to_string())
    }

    /// Renders the variant of `name` that [`Templates::resolve`] picks for `key`.
    pub fn render_script(
        &self,
        name: &str,
        key: &ScriptKey<'_>,
        data: &serde_json::Value,
    ) -> Result<String> {
        self.render(&self.resolve(name, key), data)
    }

    /// Every mail template registered (qualified variants too), sorted, with its file: a
    /// path in the template directory or `templates/NAME.hbs` when embedded.
    pub fn template_files(&self) -> Vec<(String, String)> {
        self.origins
            .iter()
            .map(|(n, f)| (n.clone(), f.clone()))
            .collect()
    }

    /// The file template `name` came from, when it is registered.
    pub fn origin(&self, name: &str) -> Option<&str> {
        self.origins.get(name).map(String::as_str)
    }

    /// The names of every macro, sorted.
    pub fn macro_names(&self) -> Vec<String> {
        self.macros.iter().cloned().collect()
    }

    /// Renders macro `name` with `data` (see `compose::macro_data` for the usual context),
    /// trimmed of trailing whitespace; `None` when there is no such macro, including every
    /// name that [`is_macro_name`] refuses.
    pub fn render_macro(&self, name: &str, data: &serde_json::Value) -> Result<Option<String>> {
        if !is_macro_name(name) || !self.macros.contains(name) {
            return Ok(None);
        }
        self.render(&format!("{MACRO_PREFIX}{name}"), data)
            .map(Some)
    }

    /// Everything wrong with the templates of `dir` and the defaults: each file that does
    /// not compile, and each template and macro that fails to render in strict mode with
    /// the sample data of its kind (`sample(base)`, e.g. `crate::outbound::samples::data`),
    /// which holds every field the code gives it; and each `.hbs` file in `dir` that is not
    /// a template by its name, which loading skips with only a warning (`ack.ZH.txt.hbs`,
    /// `akc.txt.hbs`). Empty when all is well.
    pub fn check(
        dir: Option<&Path>,
        sample: impl Fn(&str) -> serde_json::Value,
    ) -> Vec<TemplateProblem> {
        let mut problems = Vec::new();
        // Compile every file on its own first, so that each problem names its file.
        let mut sources: BTreeMap<String, (String, String)> = DEFAULTS
            .iter()
            .map(|(n, t)| {
                (
                    (*n).to_string(),
                    (format!("templates/{n}.hbs"), (*t).to_string()),
                )
            })
            .collect();
        let mut macro_sources: Vec<(String, String, String)> = MACRO_DEFAULTS
            .iter()
            .map(|(n, t)| {
                (
                    (*n).to_string(),
                    format!("templates/{MACRO_DIR}/{n}{MACRO_SUFFIX}"),
                    (*t).to_string(),
                )
            })
            .collect();
        if let Some(dir) = dir {
            let listed =
                template_files(dir).and_then(|t| Ok((t, macro_files(&dir.join(MACRO_DIR))?)));
            for (path, why) in misnamed_files(dir) {
                problems.push(TemplateProblem {
                    file: path.display().to_string(),
                    problem: why,
                });
            }
            match listed {
                Ok((files, macros)) => {
                    for (name, path) in files {
                        match std::fs::read_to_string(&path) {
                            Ok(text) => {
                                sources.insert(name, (path.display().to_string(), text));
                            }
                            Err(e) => problems.push(TemplateProblem {
                                file: path.display().to_string(),
                                problem: format!("cannot be read: {e}"),
                            }),
                        }
                    }
                    for (name, path) in macros {
                        match std::fs::read_to_string(&path) {
                            Ok(text) => {
                                macro_sources.retain(|(n, _, _)| *n != name);
                                macro_sources.push((name, path.display().to_string(), text));
                            }
                            Err(e) => problems.push(TemplateProblem {
                                file: path.display().to_string(),
                                problem: format!("cannot be read: {e}"),
                            }),
                        }
                    }
                }
                Err(e) => problems.push(TemplateProblem {
                    file: dir.display().to_string(),
                    problem: format!("{e:#}"),
                }),
            }
        }
        let mut hb = registry();
        let mut compiled = Vec::new();
        let all = sources
            .into_iter()
            .map(|(name, (file, text))| (name, file, text, false))
            .chain(
                macro_sources
                    .into_iter()
                    .map(|(name, file, text)| (format!("{MACRO_PREFIX}{name}"), file, text, true)),
            );
        for (name, file, text, is_macro) in all {
            match hb.register_template_string(&name, text) {
                Ok(()) => compiled.push((name, file, is_macro)),
                Err(e) => problems.push(TemplateProblem {
                    file,
                    problem: format!("does not compile: {e}"),
                }),
            }
        }
        for (name, file, is_macro) in compiled {
            let base = if is_macro {
                "macro"
            } else {
                name.split('.').next().unwrap_or_default()
            };
            if let Err(e) = hb.render(&name, &sample(base)) {
                problems.push(TemplateProblem {
                    file,
                    problem: format!("does not render with the data the code gives it: {e}"),
                });
            }
        }
        problems
    }
}

/// Chinese for a language code starting with `zh` (`zh`, `zh-cn`, `zh_TW`...).
fn is_chinese(language: Option<&str>) -> bool {
    language.is_some_and(|l| l.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("zh")))
}

/// `name` as a time zone; UTC when it is missing or unknown.
fn time_zone(name: Option<&str>) -> jiff::tz::TimeZone {
    name.and_then(|n| jiff::tz::TimeZone::get(n.trim()).ok())
        .unwrap_or(jiff::tz::TimeZone::UTC)
}

/// The greeting for the time of day of `now` (RFC 3339) in time zone `tz` (IANA, UTC when
/// unknown): morning 05:00-11:59, afternoon 12:00-17:59, evening otherwise. "Hello" / "您好"
/// when `now` is missing or unreadable.
pub fn greeting(language: Option<&str>, tz: Option<&str>, now: Option<&str>) -> &'static str {
    let zh = is_chinese(language);
    let Some(now) = now.and_then(|n| n.trim().parse::<jiff::Timestamp>().ok()) else {
        return if zh { "您好" } else { "Hello" };
    };
    let hour = now.to_zoned(time_zone(tz)).hour();
    match (zh, hour) {
        (false, 5..=11) => "Good morning",
        (false, 12..=17) => "Good afternoon",
        (false, _) => "Good evening",
        (true, 5..=11) => "早上好",
        (true, 12..=17) => "下午好",
        (true, _) => "晚上好",
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// The date of `time` (RFC 3339, or a plain `YYYY-MM-DD`) in time zone `tz` (UTC when
/// unknown), written for `language`: "7 December 2026", "2026年12月7日". Text that is
/// neither comes back as it is.
pub fn date_local(time: &str, language: Option<&str>, tz: Option<&str>) -> String {
    let t = time.trim();
    let date = match t.parse::<jiff::Timestamp>() {
        Ok(ts) => Some(ts.to_zoned(time_zone(tz)).date()),
        Err(_) => t.parse::<jiff::civil::Date>().ok(),
    };
    let Some(d) = date else {
        return time.to_string();
    };
    if is_chinese(language) {
        format!("{}年{}月{}日", d.year(), d.month(), d.day())
    } else {
        let month = usize::try_from(d.month())
            .ok()
            .and_then(|m| m.checked_sub(1))
            .and_then(|m| MONTHS.get(m))
            .copied()
            .unwrap_or_default();
        format!("{} {month} {}", d.day(), d.year())
    }
}

/// The opening of a letter to `name` in `language`: "Dear Li Wei," / "尊敬的李伟您好，";
/// "Hello," / "您好，" without a name.
pub fn polite(name: Option<&str>, language: Option<&str>) -> String {
    let name = name.map(str::trim).filter(|n| !n.is_empty());
    match (is_chinese(language), name) {
        (false, Some(n)) => format!("Dear {n},"),
        (false, None) => "Hello,".to_string(),
        (true, Some(n)) => format!("尊敬的{n}您好，"),
        (true, None) => "您好，".to_string(),
    }
}

/// Parameter `i` of a helper call as text; `None` when missing, null or not a string.
fn param_str<'a>(h: &'a Helper<'_>, i: usize) -> Option<&'a str> {
    h.param(i).and_then(|p| p.value().as_str())
}

fn greeting_helper(
    h: &Helper<'_>,
    _: &Handlebars<'_>,
    _: &HbContext,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    out.write(greeting(param_str(h, 0), param_str(h, 1), param_str(h, 2)))?;
    Ok(())
}

fn date_local_helper(
    h: &Helper<'_>,
    _: &Handlebars<'_>,
    _: &HbContext,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let time = param_str(h, 0).unwrap_or_default();
    out.write(&date_local(time, param_str(h, 1), param_str(h, 2)))?;
    Ok(())
}

fn polite_helper(
    h: &Helper<'_>,
    _: &Handlebars<'_>,
    _: &HbContext,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    out.write(&polite(param_str(h, 0), param_str(h, 1)))?;
    Ok(())
}

/// The `NAME.txt.hbs` files in `dir` whose NAME is a macro name, sorted by name; nothing when
/// `dir` does not exist. Other files are skipped with a warning, so a stray `README` or an
/// editor's backup file does not stop the daemon.
fn macro_files(dir: &Path) -> Result<Vec<(String, std::path::PathBuf)>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("Listing macros in {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("Listing macros in {}", dir.display()))?;
        let path = entry.path();
        let name = entry
            .file_name()
            .to_str()
            .and_then(|f| f.strip_suffix(MACRO_SUFFIX))
            .filter(|n| is_macro_name(n))
            .map(str::to_string);
        match name {
            Some(name) if path.is_file() => found.push((name, path)),
            _ => tracing::warn!(
                "Template directory: {} is not a macro (macros are files named \
                 NAME{MACRO_SUFFIX}, NAME being 1-{MAX_MACRO_NAME} of a-z, 0-9, _ and -); \
                 skipped.",
                path.display()
            ),
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_text_is_never_evaluated_as_template() {
        let t = Templates::load(None).unwrap();
        let data = serde_json::json!({
            "ticket": {"id": 7, "subject": "{{#each this}}{{@key}}{{/each}} <b>"},
            "customer": {"name": "{{support.name}}"},
            "agent": {"name": "Ann"},
            "support": {"name": "Example Support"},
            "greeted": false, "signed": false, "body": "{{> ack.txt}}",
        });
        let subject = t.render("ack.subject", &data).unwrap();
        assert_eq!(subject, "[#7] {{#each this}}{{@key}}{{/each}} <b>");
        let body = t.render("ack.txt", &data).unwrap();
        assert!(body.starts_with("Hello {{support.name}},"), "{body}");
        let reply = t.render("reply.txt", &data).unwrap();
        assert!(reply.starts_with("Hello {{support.name}},"), "{reply}");
        assert!(reply.contains("{{> ack.txt}}"), "{reply}");
    }

    fn reply_has_body(t: &Templates) -> bool {
        let data = crate::outbound::samples::data("reply");
        t.render("reply.txt", &data)
            .unwrap()
            .contains("Try turning it off.")
    }

    #[test]
    fn directory_overrides_a_template() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ack.subject.hbs"), "Ticket {{ticket.id}}").unwrap();
        std::fs::write(dir.path().join("held.txt.hbs"), "Held {{ticket.id}}").unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        let mut data = crate::outbound::samples::data("ack");
        data["ticket"]["id"] = 3.into();
        assert_eq!(t.render("ack.subject", &data).unwrap(), "Ticket 3");
        assert_eq!(t.render("held.txt", &data).unwrap(), "Held 3");
        // The other templates keep their defaults.
        assert!(t.render("ack.txt", &data).unwrap().contains("#3"));
        assert!(
            t.render("notify.subject", &data)
                .unwrap()
                .starts_with("[#3]")
        );
        assert!(reply_has_body(&t));
    }

    #[test]
    fn broken_override_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ack.txt.hbs"), "{{#if}}").unwrap();
        let err = Templates::load(Some(dir.path())).err().unwrap();
        assert!(format!("{err:#}").contains("ack.txt"), "{err:#}");
    }

    #[test]
    fn embedded_macros_are_listed_and_render() {
        let t = Templates::load(None).unwrap();
        assert_eq!(
            t.macro_names(),
            ["password-reset", "plan-vip", "refund-policy"]
        );
        assert!(MACRO_DEFAULTS.iter().all(|(name, _)| is_macro_name(name)));
        let data = serde_json::json!({"customer": {"email": "{{ticket.id}}@example.com"}});
        let text = t.render_macro("password-reset", &data).unwrap().unwrap();
        assert!(text.contains("{{ticket.id}}@example.com"), "{text}");
        assert!(!text.ends_with('\n'));
        assert_eq!(t.render_macro("no-such-macro", &data).unwrap(), None);
    }

    #[test]
    fn macro_names_that_are_paths_or_templates_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        // Files a traversal would reach if names were joined onto the directory.
        std::fs::write(dir.path().join("secret.txt.hbs"), "SECRET").unwrap();
        std::fs::create_dir(dir.path().join("macros")).unwrap();
        std::fs::write(dir.path().join("macros/ok.txt.hbs"), "fine").unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        let data = serde_json::json!({});
        assert_eq!(
            t.render_macro("ok", &data).unwrap().as_deref(),
            Some("fine")
        );
        for bad in [
            "../secret",
            "..",
            "macros/ok",
            "ok.txt",
            "/etc/passwd",
            "..\\secret",
            "ack.txt",
            "ack.subject",
            "macro:ok",
            "OK",
            "-ok",
            "",
            &"a".repeat(MAX_MACRO_NAME + 1),
        ] {
            assert!(!is_macro_name(bad), "{bad:?}");
            assert_eq!(t.render_macro(bad, &data).unwrap(), None, "{bad:?}");
        }
        assert!(is_macro_name(&"a".repeat(MAX_MACRO_NAME)));
        assert!(is_macro_name("refund_policy2"));
    }

    #[test]
    fn directory_adds_and_overrides_macros() {
        let dir = tempfile::tempdir().unwrap();
        let macros = dir.path().join("macros");
        std::fs::create_dir(&macros).unwrap();
        std::fs::write(
            macros.join("shipping-delay.txt.hbs"),
            "Sorry {{customer.name}}!",
        )
        .unwrap();
        std::fs::write(macros.join("refund-policy.txt.hbs"), "Our own policy.").unwrap();
        // Not macros: skipped, not loaded, not an error.
        std::fs::write(macros.join("Bad Name.txt.hbs"), "x").unwrap();
        std::fs::write(macros.join("notes.md"), "x").unwrap();
        std::fs::create_dir(macros.join("sub.txt.hbs")).unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        assert_eq!(
            t.macro_names(),
            [
                "password-reset",
                "plan-vip",
                "refund-policy",
                "shipping-delay"
            ]
        );
        let data = serde_json::json!({"customer": {"name": "李雷"}});
        assert_eq!(
            t.render_macro("shipping-delay", &data).unwrap().as_deref(),
            Some("Sorry 李雷!")
        );
        assert_eq!(
            t.render_macro("refund-policy", &data).unwrap().as_deref(),
            Some("Our own policy.")
        );
    }

    #[test]
    fn broken_macro_override_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("macros")).unwrap();
        std::fs::write(dir.path().join("macros/oops.txt.hbs"), "{{#each}}").unwrap();
        let err = Templates::load(Some(dir.path())).err().unwrap();
        assert!(format!("{err:#}").contains("oops.txt.hbs"), "{err:#}");
    }

    fn key<'a>(language: Option<&'a str>, tier: Option<&'a str>) -> ScriptKey<'a> {
        ScriptKey {
            language,
            tier,
            ..ScriptKey::default()
        }
    }

    #[test]
    fn chain_tries_longest_then_language_bearing_then_bare() {
        let k = ScriptKey {
            language: Some("zh"),
            tier: Some("vip"),
            channel: Some("email"),
            mood: Some("negative"),
        };
        assert_eq!(
            Templates::chain("ack.txt", &k),
            [
                "ack.zh.vip.email.negative.txt",
                "ack.zh.vip.email.txt",
                "ack.zh.vip.negative.txt",
                "ack.zh.email.negative.txt",
                "ack.vip.email.negative.txt",
                "ack.zh.vip.txt",
                "ack.zh.email.txt",
                "ack.zh.negative.txt",
                "ack.vip.email.txt",
                "ack.vip.negative.txt",
                "ack.email.negative.txt",
                "ack.zh.txt",
                "ack.vip.txt",
                "ack.email.txt",
                "ack.negative.txt",
                "ack.txt",
            ]
        );
        assert_eq!(
            Templates::chain("bot-answer.subject", &key(Some("zh"), Some("vip"))),
            [
                "bot-answer.zh.vip.subject",
                "bot-answer.zh.subject",
                "bot-answer.vip.subject",
                "bot-answer.subject",
            ]
        );
        assert_eq!(
            Templates::chain("ack.txt", &ScriptKey::default()),
            ["ack.txt"]
        );
    }

    #[test]
    fn fallback_picks_the_most_specific_default() {
        let t = Templates::load(None).unwrap();
        let pick = |l, tier, name| t.resolve(name, &key(l, tier));
        assert_eq!(pick(Some("zh"), Some("vip"), "ack.txt"), "ack.zh.vip.txt");
        assert_eq!(pick(Some("zh"), Some("standard"), "ack.txt"), "ack.zh.txt");
        assert_eq!(pick(Some("fr"), Some("standard"), "ack.txt"), "ack.txt");
        assert_eq!(pick(Some("fr"), Some("vip"), "ack.txt"), "ack.vip.txt");
        assert_eq!(pick(None, None, "ack.txt"), "ack.txt");
        // No VIP subject: the Chinese one.
        assert_eq!(
            pick(Some("zh"), Some("vip"), "ack.subject"),
            "ack.zh.subject"
        );
        // Language codes are compared in lower case.
        assert_eq!(pick(Some("ZH"), None, "ack.txt"), "ack.zh.txt");
        assert_eq!(
            pick(Some("zh"), None, "bot-answer.txt"),
            "bot-answer.zh.txt"
        );
        let data = crate::outbound::samples::data("ack");
        let body = t
            .render_script("ack.txt", &key(Some("zh"), Some("vip")), &data)
            .unwrap();
        assert!(body.starts_with("尊敬的Li Wei您好，"), "{body}");
        assert!(body.contains("重要客户"), "{body}");
        let body = t
            .render_script("ack.txt", &key(Some("fr"), Some("standard")), &data)
            .unwrap();
        assert!(body.starts_with("Hello Li Wei,"), "{body}");
    }

    #[test]
    fn invalid_qualifiers_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret.txt"), "SECRET").unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        for bad in [
            "../secret",
            "..",
            "zh/../../secret",
            "zh.vip",
            "zh vip",
            "",
            "中文",
            "{{7*7}}",
            &"a".repeat(MAX_QUALIFIER + 1),
        ] {
            assert!(!is_qualifier(bad), "{bad:?}");
            let k = key(Some(bad), None);
            assert_eq!(Templates::chain("ack.txt", &k), ["ack.txt"], "{bad:?}");
            assert_eq!(t.resolve("ack.txt", &k), "ack.txt");
        }
        // A bad value does not stop the good ones from counting.
        assert_eq!(
            t.resolve("ack.txt", &key(Some("../x"), Some("vip"))),
            "ack.vip.txt"
        );
        assert!(is_qualifier(&"a".repeat(MAX_QUALIFIER)));
        assert!(is_qualifier("zh-hant_2"));
    }

    #[test]
    fn directory_adds_and_overrides_qualified_templates() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("ack.zh.vip.txt.hbs"), "VIP {{ticket.id}}").unwrap();
        std::fs::write(d.join("ack.fr.txt.hbs"), "Bonjour {{ticket.id}}").unwrap();
        std::fs::write(d.join("ack.fr.email.negative.txt.hbs"), "Désolé").unwrap();
        // Skipped with a warning: unknown base, bad qualifiers, too many, wrong kind.
        std::fs::write(d.join("nope.fr.txt.hbs"), "x").unwrap();
        std::fs::write(d.join("ack.FR.txt.hbs"), "x").unwrap();
        std::fs::write(d.join("ack.a.b.c.d.e.txt.hbs"), "x").unwrap();
        std::fs::write(d.join("ack.fr.json.hbs"), "x").unwrap();
        std::fs::write(d.join("README"), "x").unwrap();
        let t = Templates::load(Some(d)).unwrap();
        let data = crate::outbound::samples::data("ack");
        let render = |l, tier| t.render_script("ack.txt", &key(l, tier), &data).unwrap();
        assert_eq!(render(Some("zh"), Some("vip")), "VIP 42");
        assert_eq!(render(Some("fr"), Some("vip")), "Bonjour 42");
        assert!(render(Some("zh"), None).contains("感谢您联系"));
        let angry = ScriptKey {
            language: Some("fr"),
            channel: Some("email"),
            mood: Some("negative"),
            ..ScriptKey::default()
        };
        assert_eq!(t.render_script("ack.txt", &angry, &data).unwrap(), "Désolé");
        let names: Vec<String> = t.template_files().into_iter().map(|(n, _)| n).collect();
        assert!(names.contains(&"ack.fr.txt".to_string()));
        assert!(!names.iter().any(|n| n.contains("nope") || n.contains("FR")));
        assert!(
            !names
                .iter()
                .any(|n| n.contains("json") || n.contains(".e."))
        );
        assert_eq!(
            t.origin("ack.zh.vip.txt"),
            Some(d.join("ack.zh.vip.txt.hbs").display().to_string().as_str())
        );
        assert_eq!(t.origin("ack.zh.txt"), Some("templates/ack.zh.txt.hbs"));
    }

    #[test]
    fn greeting_follows_the_customers_local_time() {
        // 00:30 UTC is 08:30 in Shanghai.
        let now = Some("2026-12-07T00:30:00Z");
        assert_eq!(
            greeting(Some("en"), Some("Asia/Shanghai"), now),
            "Good morning"
        );
        assert_eq!(greeting(Some("zh"), Some("Asia/Shanghai"), now), "早上好");
        assert_eq!(greeting(Some("en"), Some("UTC"), now), "Good evening");
        assert_eq!(greeting(Some("zh-CN"), None, now), "晚上好");
        // 13:00 in Shanghai.
        let now = Some("2026-12-07T05:00:00Z");
        assert_eq!(
            greeting(Some("en"), Some("Asia/Shanghai"), now),
            "Good afternoon"
        );
        assert_eq!(greeting(Some("zh"), Some("Asia/Shanghai"), now), "下午好");
        // 20:00 in Berlin.
        let now = Some("2026-12-07T19:00:00Z");
        assert_eq!(greeting(None, Some("Europe/Berlin"), now), "Good evening");
        // Unknown time zone: UTC.
        assert_eq!(greeting(None, Some("Mars/Olympus"), now), "Good evening");
        assert_eq!(
            greeting(None, Some("../../etc/passwd"), Some("2026-12-07T09:00:00Z")),
            "Good morning"
        );
        // No usable time.
        assert_eq!(greeting(Some("en"), None, Some("yesterday")), "Hello");
        assert_eq!(greeting(Some("zh"), None, None), "您好");
    }

    #[test]
    fn dates_are_written_per_locale() {
        let t = "2026-12-07T10:00:00.123456Z";
        assert_eq!(date_local(t, Some("en"), None), "7 December 2026");
        assert_eq!(date_local(t, Some("zh"), None), "2026年12月7日");
        assert_eq!(date_local(t, None, None), "7 December 2026");
        assert_eq!(date_local("2026-01-31", Some("zh"), None), "2026年1月31日");
        // 20:00 UTC is the next day in Shanghai.
        assert_eq!(
            date_local("2026-12-07T20:00:00Z", Some("en"), Some("Asia/Shanghai")),
            "8 December 2026"
        );
        assert_eq!(date_local("soon", Some("en"), None), "soon");
    }

    #[test]
    fn polite_forms_per_language() {
        assert_eq!(polite(Some("Li Wei"), Some("en")), "Dear Li Wei,");
        assert_eq!(polite(Some("李伟"), Some("zh")), "尊敬的李伟您好，");
        assert_eq!(polite(None, Some("zh")), "您好，");
        assert_eq!(polite(Some("  "), None), "Hello,");
    }

    #[test]
    fn helpers_never_fail_on_missing_or_mistyped_arguments() {
        let mut hb = registry();
        hb.register_template_string(
            "t",
            "{{greeting}}|{{greeting 1 2 3}}|{{date_local}}|{{date_local x.y 5}}|\
             {{polite}}|{{polite 7 true}}|{{polite customer.name customer.language}}|\
             {{date_local ticket.created_at customer.language}}|\
             {{greeting customer.language customer.timezone now}}",
        )
        .unwrap();
        let data = serde_json::json!({
            "customer": {"name": "李伟", "language": "zh", "timezone": "Asia/Shanghai"},
            "ticket": {"created_at": "2026-12-07T01:00:00Z"},
            "now": "2026-12-07T01:00:00Z",
        });
        assert_eq!(
            hb.render("t", &data).unwrap(),
            "Hello|Hello|||Hello,|Hello,|尊敬的李伟您好，|2026年12月7日|早上好"
        );
        assert_eq!(
            hb.render("t", &serde_json::json!({})).unwrap(),
            "Hello|Hello|||Hello,|Hello,|Hello,||Hello"
        );
    }

    #[test]
    fn strict_mode_catches_a_missing_field_in_check() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("ack.zh.txt.hbs"), "{{customer.shoe_size}}").unwrap();
        std::fs::write(d.join("ack.vip.subject.hbs"), "{{#if}}").unwrap();
        std::fs::write(d.join("notify.txt.hbs"), "{{#each no_such_list}}x{{/each}}").unwrap();
        std::fs::create_dir(d.join("macros")).unwrap();
        std::fs::write(d.join("macros/hi.txt.hbs"), "Hi {{customer.nickname}}").unwrap();
        let problems = Templates::check(Some(d), crate::outbound::samples::data);
        let files: Vec<&str> = problems.iter().map(|p| p.file.as_str()).collect();
        let path = |f: &str| d.join(f).display().to_string();
        assert_eq!(
            files,
            [
                path("ack.vip.subject.hbs"),
                path("ack.zh.txt.hbs"),
                path("notify.txt.hbs"),
                path("macros/hi.txt.hbs"),
            ],
            "{problems:#?}"
        );
        assert!(
            problems[0].problem.contains("does not compile"),
            "{problems:#?}"
        );
        assert!(problems[1].problem.contains("shoe_size"), "{problems:#?}");
        // Loading refuses what does not compile; rendering the bad field fails too.
        assert!(Templates::load(Some(d)).is_err());
        std::fs::remove_file(d.join("ack.vip.subject.hbs")).unwrap();
        let t = Templates::load(Some(d)).unwrap();
        let data = crate::outbound::samples::data("ack");
        let err = t
            .render_script("ack.txt", &key(Some("zh"), None), &data)
            .unwrap_err();
        assert!(format!("{err:#}").contains("ack.zh.txt"), "{err:#}");
    }

    #[test]
    fn check_names_each_misnamed_template_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("ack.zh.vip.txt.hbs"), "fine {{ticket.id}}").unwrap();
        std::fs::write(d.join("akc.zh.txt.hbs"), "x").unwrap();
        std::fs::write(d.join("ack.ZH.txt.hbs"), "x").unwrap();
        std::fs::write(d.join("ack.zh.hbs"), "x").unwrap();
        std::fs::write(d.join("ack.a.b.c.d.e.txt.hbs"), "x").unwrap();
        // Not `.hbs`: not a template, and not a mistake either.
        std::fs::write(d.join("README.md"), "x").unwrap();
        let problems = Templates::check(Some(d), crate::outbound::samples::data);
        let got: Vec<(String, &str)> = problems
            .iter()
            .map(|p| {
                let f = Path::new(&p.file).file_name().unwrap().to_str().unwrap();
                (f.to_string(), p.problem.as_str())
            })
            .collect();
        assert_eq!(got.len(), 4, "{problems:#?}");
        let why = |f: &str| got.iter().find(|(g, _)| g == f).unwrap().1;
        assert!(why("akc.zh.txt.hbs").contains("\"akc\" is not a template name"));
        assert!(why("ack.ZH.txt.hbs").contains("each qualifier"));
        assert!(why("ack.zh.hbs").contains("must end in .txt.hbs or .subject.hbs"));
        assert!(why("ack.a.b.c.d.e.txt.hbs").contains("at most 4 qualifiers"));
        // Loading still works: it skips them with a warning.
        assert!(Templates::load(Some(d)).is_ok());
    }

    #[test]
    fn bot_answer_says_how_to_reach_a_person() {
        let t = Templates::load(None).unwrap();
        let data = crate::outbound::samples::data("bot-answer");
        for lang in ["en", "zh", "fr"] {
            let body = t
                .render_script("bot-answer.txt", &key(Some(lang), None), &data)
                .unwrap();
            for word in ["human", "agent", "人工"] {
                assert!(body.contains(word), "{lang}: {body}");
            }
            assert!(body.contains("Hold the button."), "{body}");
            assert!(body.contains("https://example.com/kb/7"), "{body}");
            assert!(body.contains("reset.pdf"), "{body}");
        }
        let zh = t
            .render_script("bot-answer.txt", &key(Some("zh"), None), &data)
            .unwrap();
        // 09:30 UTC with no time zone: morning.
        assert!(zh.starts_with("早上好，Li Wei！"), "{zh}");
        assert!(zh.contains("“人工”"), "{zh}");
    }
}
