//! The new text of a reply: everything above the quoted history. Used to recognise short
//! courtesy replies ("thanks") that must not reopen a resolved ticket.

/// Lines that start quoted history in common clients (Gmail, Outlook, Apple Mail, Chinese
/// Outlook/Foxmail/QQ).
fn starts_history(line: &str) -> bool {
    let t = line.trim();
    let lower = t.to_lowercase();
    t.starts_with('>')
        || (lower.starts_with("on ") && lower.ends_with("wrote:"))
        || (lower.starts_with("am ") && lower.ends_with("schrieb:"))
        || (lower.starts_with("le ") && lower.ends_with("écrit :"))
        || (t.starts_with('在') && (t.ends_with("写道：") || t.ends_with("写道:")))
        || lower.starts_with("-----original message-----")
        || t.starts_with("-----原始邮件-----")
        || t.starts_with("------------------ 原始邮件 ------------------")
        || t.starts_with("发件人:")
        || t.starts_with("发件人：")
        || t.starts_with("寄件者:")
        || (lower.starts_with("from:") && t.len() > 6)
        || t == "--"
        || line == "-- "
        || lower.starts_with("sent from my ")
}

/// The text above the first line that starts quoted history or a signature.
pub fn new_text(body: &str) -> &str {
    let mut offset = 0;
    for line in body.split_inclusive('\n') {
        if starts_history(line.trim_end_matches(['\r', '\n'])) {
            return body.get(..offset).unwrap_or(body).trim();
        }
        offset += line.len();
    }
    body.trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_common_history_markers() {
        assert_eq!(
            new_text("Thanks!\n\nOn Mon, 1 Jan 2024, Bob wrote:\n> hi"),
            "Thanks!"
        );
        assert_eq!(new_text("谢谢\n\n-----原始邮件-----\n发件人: x"), "谢谢");
        assert_eq!(
            new_text("好的\n在 2024年1月1日，张三 写道：\n> 你好"),
            "好的"
        );
        assert_eq!(new_text("ok\n-- \nBob\n"), "ok");
        assert_eq!(new_text("no quote here"), "no quote here");
    }
}
