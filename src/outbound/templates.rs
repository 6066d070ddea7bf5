//! Handlebars templates: embedded defaults from `templates/`, each overridable by a file of
//! the same name in the configured directory, and the canned replies (macros) agents insert
//! with `#macro NAME`.
//!
//! Templates are text, not HTML, so HTML escaping is off. Customer data (subject, name,
//! message text) is only ever a *value* in the render context, never template source: a
//! subject like `{{#each}}` is printed as it is, not evaluated (template injection is
//! impossible). Only files from `templates/` and the configured directory are ever compiled.
//!
//! Macros are `macros/NAME.txt.hbs`: the embedded defaults below, plus any such file in the
//! configured directory (which replaces a default of the same name). They are all read once,
//! in [`Templates::load`]; rendering a macro never touches the filesystem, and a name outside
//! [`is_macro_name`] is refused before any lookup, so `#macro ../../etc/passwd` cannot name a
//! path.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result};
use handlebars::Handlebars;

/// Every template name with its embedded default.
pub const DEFAULTS: &[(&str, &str)] = &[
    (
        "ack.subject",
        include_str!("../../templates/ack.subject.hbs"),
    ),
    ("ack.txt", include_str!("../../templates/ack.txt.hbs")),
    (
        "bot-answer.subject",
        include_str!("../../templates/bot-answer.subject.hbs"),
    ),
    (
        "bot-answer.txt",
        include_str!("../../templates/bot-answer.txt.hbs"),
    ),
    (
        "notify.subject",
        include_str!("../../templates/notify.subject.hbs"),
    ),
    ("notify.txt", include_str!("../../templates/notify.txt.hbs")),
    ("reply.txt", include_str!("../../templates/reply.txt.hbs")),
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

pub struct Templates {
    hb: Handlebars<'static>,
    /// Names of every macro registered, sorted.
    macros: BTreeSet<String>,
}

impl Templates {
    /// Loads the defaults, then any `NAME.hbs` override found in `dir`, then the macros:
    /// the embedded ones and every `macros/NAME.txt.hbs` in `dir`.
    pub fn load(dir: Option<&Path>) -> Result<Templates> {
        let mut hb = Handlebars::new();
        hb.register_escape_fn(handlebars::no_escape);
        hb.set_strict_mode(false);
        for (name, text) in DEFAULTS {
            let source = match dir.map(|d| d.join(format!("{name}.hbs"))) {
                Some(p) if p.is_file() => std::fs::read_to_string(&p)
                    .with_context(|| format!("Reading template {}", p.display()))?,
                _ => (*text).to_string(),
            };
            hb.register_template_string(name, source)
                .with_context(|| format!("Template {name} does not compile"))?;
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
        Ok(Templates { hb, macros })
    }

    /// Renders a template; the result is trimmed of trailing whitespace.
    pub fn render(&self, name: &str, data: &serde_json::Value) -> Result<String> {
        let s = self
            .hb
            .render(name, data)
            .with_context(|| format!("Rendering template {name}"))?;
        Ok(s.trim_end().to_string())
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
            "support": {"name": "Example Support"},
        });
        let subject = t.render("ack.subject", &data).unwrap();
        assert_eq!(subject, "[#7] {{#each this}}{{@key}}{{/each}} <b>");
        let body = t.render("ack.txt", &data).unwrap();
        assert!(body.starts_with("Hello {{support.name}},"), "{body}");
        let reply = t.render("reply.txt", &data).unwrap();
        assert!(reply.starts_with("Hello {{support.name}},"), "{reply}");
    }

    #[test]
    fn directory_overrides_a_template() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ack.subject.hbs"), "Ticket {{ticket.id}}").unwrap();
        std::fs::write(dir.path().join("held.txt.hbs"), "Held {{ticket.id}}").unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        let data = serde_json::json!({"ticket": {"id": 3}});
        assert_eq!(t.render("ack.subject", &data).unwrap(), "Ticket 3");
        assert_eq!(t.render("held.txt", &data).unwrap(), "Held 3");
        // The other templates keep their defaults.
        assert!(t.render("ack.txt", &data).unwrap().contains("#3"));
        assert!(
            t.render("notify.subject", &data)
                .unwrap()
                .starts_with("[#3]")
        );
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
}
