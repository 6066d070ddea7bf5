//! An article's fields and states, and the Markdown files `kb import` reads.

use serde::{Deserialize, Serialize};

/// Where an article is in its life: only `Published` ones are ever sent to customers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Draft,
    Published,
    Retired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Published => "published",
            Status::Retired => "retired",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        match s.trim().to_ascii_lowercase().as_str() {
            "draft" => Some(Status::Draft),
            "published" => Some(Status::Published),
            "retired" => Some(Status::Retired),
            _ => None,
        }
    }
}

/// What the search index holds of an article.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexedArticle {
    pub id: i64,
    pub title: String,
    /// The Markdown body.
    pub body: String,
    pub language: String,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub status: Status,
}

/// A Markdown file with its front matter (`kb import`).
#[derive(Debug, Clone, PartialEq)]
pub struct ArticleFile {
    pub title: String,
    pub language: String,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub status: Status,
    pub links: Vec<String>,
    pub files: Vec<String>,
    pub body: String,
}

/// The front matter's fields, as written (`status` defaults to draft: nothing is sent to
/// customers that nobody chose to publish).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    title: String,
    language: String,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    status: Option<String>,
    /// Video or other links the answer names.
    #[serde(default)]
    links: Vec<String>,
    /// Files beside the Markdown file (relative paths) sent with the answer.
    #[serde(default)]
    files: Vec<String>,
}

/// Reads a Markdown file with YAML front matter between `---` lines: `title` and
/// `language` are required; `category`, `tags`, `status` (draft, published or retired;
/// draft when absent), `links` and `files` are optional. Errors say what is wrong in
/// words an author can act on.
pub fn parse_markdown_file(text: &str) -> Result<ArticleFile, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = text.replace("\r\n", "\n");
    let rest = text
        .strip_prefix("---\n")
        .ok_or("no front matter: the file must start with a line \"---\"")?;
    let (yaml, body) = if let Some(yaml) = rest.strip_suffix("\n---") {
        (yaml, "")
    } else {
        rest.split_once("\n---\n")
            .ok_or("front matter not closed: no second line \"---\"")?
    };
    let fm: FrontMatter =
        serde_yaml_ng::from_str(yaml).map_err(|e| format!("front matter: {e}"))?;
    let title = fm.title.trim().to_string();
    if title.is_empty() {
        return Err("front matter: the title is empty".into());
    }
    let status = match fm.status.as_deref() {
        None => Status::Draft,
        Some(s) => Status::parse(s).ok_or_else(|| {
            format!("front matter: status {s:?} is not draft, published or retired")
        })?,
    };
    let body = body.trim().to_string();
    if body.is_empty() {
        return Err("the article has no body".into());
    }
    Ok(ArticleFile {
        title,
        language: fm.language.trim().to_ascii_lowercase(),
        category: fm
            .category
            .map(|c| c.trim().to_lowercase())
            .filter(|c| !c.is_empty()),
        tags: fm
            .tags
            .into_iter()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect(),
        status,
        links: fm.links,
        files: fm.files,
        body,
    })
}

/// The Markdown as plain text for a mail: paragraphs and list items on their own lines,
/// links as "text <url>", images as their alt text and address, code kept, HTML dropped
/// (an article's raw HTML is never sent as markup in a text part).
pub fn plain_text(markdown: &str) -> String {
    use pulldown_cmark::{Event, Parser, Tag, TagEnd};
    let mut out = String::new();
    let mut links: Vec<String> = Vec::new();
    let mut list_depth: usize = 0;
    let newline = |out: &mut String| {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
    };
    let blank = |out: &mut String| {
        if out.is_empty() {
            return;
        }
        if !out.ends_with('\n') {
            out.push('\n');
        }
        if !out.ends_with("\n\n") {
            out.push('\n');
        }
    };
    for event in Parser::new(markdown) {
        match event {
            Event::Start(Tag::Paragraph) if list_depth == 0 => blank(&mut out),
            Event::Start(Tag::Heading { .. }) => blank(&mut out),
            Event::End(TagEnd::Heading(_)) => newline(&mut out),
            Event::Start(Tag::List(_)) => {
                if list_depth == 0 {
                    blank(&mut out)
                }
                list_depth += 1;
            }
            Event::End(TagEnd::List(_)) => list_depth = list_depth.saturating_sub(1),
            Event::Start(Tag::Item) => {
                newline(&mut out);
                out.push_str(&"  ".repeat(list_depth.saturating_sub(1)));
                out.push_str("- ");
            }
            Event::Start(Tag::CodeBlock(_)) => blank(&mut out),
            Event::Start(Tag::Link { dest_url, .. })
            | Event::Start(Tag::Image { dest_url, .. }) => links.push(dest_url.to_string()),
            Event::End(TagEnd::Link) | Event::End(TagEnd::Image) => {
                if let Some(url) = links.pop()
                    && !url.is_empty()
                    && !out.ends_with(url.as_str())
                {
                    out.push_str(" <");
                    out.push_str(&url);
                    out.push('>');
                }
            }
            Event::Text(t) | Event::Code(t) => out.push_str(&t),
            Event::SoftBreak | Event::HardBreak => out.push('\n'),
            Event::Rule => {
                blank(&mut out);
                out.push_str("----");
            }
            Event::Html(_) | Event::InlineHtml(_) => {}
            _ => {}
        }
    }
    let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
    lines.join("\n").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_and_body() {
        let f = parse_markdown_file(
            "---\ntitle: 如何申请退款\nlanguage: ZH\ncategory: Refund\ntags: [退款, refund]\nstatus: published\nlinks: [\"https://video.example/r\"]\n---\n\n# 退款\n\n在订单页点击“申请退款”。\n",
        )
        .unwrap();
        assert_eq!(f.title, "如何申请退款");
        assert_eq!(f.language, "zh");
        assert_eq!(f.category.as_deref(), Some("refund"));
        assert_eq!(f.tags, vec!["退款", "refund"]);
        assert_eq!(f.status, Status::Published);
        assert_eq!(f.links, vec!["https://video.example/r"]);
        assert!(f.body.starts_with("# 退款"));
    }

    #[test]
    fn status_defaults_to_draft_and_crlf_is_read() {
        let f = parse_markdown_file("---\r\ntitle: T\r\nlanguage: en\r\n---\r\nBody\r\n").unwrap();
        assert_eq!(f.status, Status::Draft);
        assert_eq!(f.body, "Body");
    }

    #[test]
    fn clear_errors() {
        let e = |t: &str| parse_markdown_file(t).unwrap_err();
        assert!(e("no front matter").contains("no front matter"));
        assert!(e("---\ntitle: T\nlanguage: en\n").contains("not closed"));
        assert!(e("---\ntitle: T\n---\nbody").contains("language"));
        assert!(e("---\ntitle: T\nlanguage: en\nstatus: live\n---\nb").contains("\"live\""));
        assert!(e("---\ntitle: T\nlanguage: en\ncolour: red\n---\nb").contains("colour"));
        assert!(e("---\ntitle: [\n---\nb").starts_with("front matter"));
        assert!(e("---\ntitle: T\nlanguage: en\n---\n\n").contains("no body"));
    }

    #[test]
    fn plain_text_keeps_words_and_links_drops_html() {
        let t = plain_text(
            "# Refunds\n\nOpen **Orders** and click [Refund](https://shop.example/r).\n\n- one\n- two\n\n<script>alert(1)</script>\n\n![video](https://v.example/x)",
        );
        assert!(
            t.starts_with("Refunds\n\nOpen Orders and click Refund <https://shop.example/r>."),
            "{t}"
        );
        assert!(t.contains("- one\n- two"), "{t}");
        assert!(!t.contains("script"), "{t}");
        assert!(t.contains("video <https://v.example/x>"), "{t}");
    }
}
