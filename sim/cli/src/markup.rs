//! Text escaped for the markup the binary writes: the HTML failure reports ([`crate::report`])
//! and the JUnit XML ([`crate::cli::junit`]). One rule set, strict enough for both: the five
//! markup characters become character references that HTML 4, HTML 5 and XML 1.0 all read
//! (`'` is `&#39;`, since `&apos;` is not HTML 4), and characters neither may hold (the C0 and
//! C1 control characters and DEL other than tab, newline and carriage return, and the
//! non-characters U+FFFE and U+FFFF) become U+FFFD.

/// `text` safe inside HTML and XML 1.0 text and attribute values (double- or single-quoted).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_characters_become_references_and_control_characters_the_replacement() {
        assert_eq!(
            escape("a<b & \"c\" 'd'>\u{1}\u{7}\u{7F}\u{85}\u{FFFE}\t\r\n"),
            "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}\t\r\n"
        );
    }

    #[test]
    fn plain_text_and_other_scripts_pass_unchanged() {
        assert_eq!(
            escape("seed 7 · relay-a → ap ünïcode"),
            "seed 7 · relay-a → ap ünïcode"
        );
        assert_eq!(escape(""), "");
    }
}
