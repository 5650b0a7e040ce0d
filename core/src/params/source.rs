//! Recognising a call pasted from Java or C source instead of the string's value.
//!
//! In source, the call is a string literal: `"{\"rtc.enable_proxy\":true}"`. Its *value*, what
//! the SDK receives, is `{"rtc.enable_proxy":true}`. Two pastes of the source form are common
//! and neither is JSON (or not an object): the whole literal with its quotes, and the inside of
//! the literal with its backslashes. When a text that is not a JSON object becomes one once read
//! as a Java/C string literal, the error says which paste it is and shows the value to pass.

use super::{compat, toplevel};

/// How the call was pasted from source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Pasted {
    /// The inside of a literal, backslashes kept: `{\"rtc.enable_proxy\":true}`.
    Escaped(String),
    /// The whole literal, quotes kept: `"{\"rtc.enable_proxy\":true}"`.
    Quoted(String),
}

/// If `text` (which is not a JSON object) is a call in source form, the call's value.
pub(crate) fn recognise(text: &str) -> Option<Pasted> {
    let trimmed = text.trim_matches([' ', '\t', '\n', '\r']);
    let quoted = trimmed.len() >= 2 && trimmed.starts_with('"') && trimmed.ends_with('"');
    let body = if quoted {
        &trimmed[1..trimmed.len() - 1]
    } else {
        trimmed
    };
    if !quoted && !body.contains("\\\"") {
        return None;
    }
    let value = unescape(body)?;
    let call = if toplevel::read_object(&value).is_ok() {
        value
    } else {
        // The seed document's own Java line unescapes to its unescaped type-2 shape: show the
        // escaped form of that too.
        compat::recover_unescaped_ip_list(&value)?
    };
    Some(if quoted {
        Pasted::Quoted(call)
    } else {
        Pasted::Escaped(call)
    })
}

/// The value of the inside of a Java or C string literal: `\"`, `\\`, `\'`, `\n`, `\r`, `\t`
/// and `\uXXXX` are read as the languages do; any other escape means it is not one (`None`).
fn unescape(body: &str) -> Option<String> {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let unescaped = match chars.next()? {
            '"' => '"',
            '\\' => '\\',
            '\'' => '\'',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                if hex.len() != 4 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?
            }
            _ => return None,
        };
        out.push(unescaped);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALL: &str = r#"{"rtc.enable_proxy":true}"#;

    #[test]
    fn the_inside_of_a_literal() {
        assert_eq!(
            recognise(r#"{\"rtc.enable_proxy\":true}"#),
            Some(Pasted::Escaped(CALL.into()))
        );
        // The type-2 host, escaped once more in source.
        assert_eq!(
            recognise(r#"{\"rtc.proxy_server\":[2, \"[\\\"1.1.1.1\\\"]\", 0]}"#),
            Some(Pasted::Escaped(
                r#"{"rtc.proxy_server":[2, "[\"1.1.1.1\"]", 0]}"#.into()
            ))
        );
    }

    #[test]
    fn the_whole_literal() {
        assert_eq!(
            recognise(r#"  "{\"rtc.enable_proxy\":true}" "#),
            Some(Pasted::Quoted(CALL.into()))
        );
        assert_eq!(
            recognise(r#""{"rtc.enable_proxy":true}""#),
            Some(Pasted::Quoted(CALL.into()))
        );
        assert_eq!(
            recognise(r#""{\u0022rtc.enable_proxy\u0022:true}""#),
            Some(Pasted::Quoted(CALL.into()))
        );
    }

    #[test]
    fn the_seed_documents_java_line() {
        assert_eq!(
            recognise(r#""{\"rtc.proxy_server\":[2, \"[\"192.168.0.112\",\"127.0.0.1\"]\", 0]}""#),
            Some(Pasted::Quoted(
                r#"{"rtc.proxy_server":[2,"[\"192.168.0.112\",\"127.0.0.1\"]",0]}"#.into()
            ))
        );
    }

    #[test]
    fn other_texts_are_not_source() {
        for text in [
            "",
            "\"",
            r#""rtc.enable_proxy""#,
            r#"{"rtc.enable_proxy":true"#,
            r#"{\"rtc.enable_proxy\":true"#,
            r#"{\"rtc.enable_proxy\":\q}"#,
            r#""{\"rtc.enable_proxy\":true}\""#,
            r#""\u12""#,
            r#""\u+123""#,
            "rtc.enable_proxy=true",
        ] {
            assert_eq!(recognise(text), None, "{text}");
        }
    }
}
