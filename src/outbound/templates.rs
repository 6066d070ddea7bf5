//! Handlebars templates: embedded defaults from `templates/`, each overridable by a file of
//! the same name in the configured directory.
//!
//! Templates are text, not HTML, so HTML escaping is off. Customer data (subject, name) is
//! only ever a *value* in the render context, never template source: a subject like
//! `{{#each}}` is printed as it is, not evaluated (template injection is impossible).

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
];

pub struct Templates {
    hb: Handlebars<'static>,
}

impl Templates {
    /// Loads the defaults, then any `NAME.hbs` override found in `dir`.
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
        Ok(Templates { hb })
    }

    /// Renders a template; the result is trimmed of trailing whitespace.
    pub fn render(&self, name: &str, data: &serde_json::Value) -> Result<String> {
        let s = self
            .hb
            .render(name, data)
            .with_context(|| format!("Rendering template {name}"))?;
        Ok(s.trim_end().to_string())
    }
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
    }

    #[test]
    fn directory_overrides_a_template() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ack.subject.hbs"), "Ticket {{ticket.id}}").unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        let data = serde_json::json!({"ticket": {"id": 3}});
        assert_eq!(t.render("ack.subject", &data).unwrap(), "Ticket 3");
        // The other template keeps its default.
        assert!(t.render("ack.txt", &data).unwrap().contains("#3"));
    }

    #[test]
    fn broken_override_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ack.txt.hbs"), "{{#if}}").unwrap();
        let err = Templates::load(Some(dir.path())).err().unwrap();
        assert!(format!("{err:#}").contains("ack.txt"), "{err:#}");
    }
}
