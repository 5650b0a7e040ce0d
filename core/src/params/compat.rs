//! Recovery of the seed document's type-2 example, which is not JSON.
//!
//! The documentation shows
//! `setParameters("{\"rtc.proxy_server\":[2, \"[\"192.168.0.112\",\"127.0.0.1\"]\", 0]}")`.
//! Once Java unescapes it, the SDK receives
//! `{"rtc.proxy_server":[2, "["192.168.0.112","127.0.0.1"]", 0]}`, where the inner quotes end
//! the host string early. Users copy it, so we recognise exactly this shape: an object whose
//! only key is `"rtc.proxy_server"`, holding `[2, "[...]", port]` where `[...]` is a JSON array
//! of strings written without escapes. Nothing looser is accepted.

use serde_json::Value;

/// If `text` is exactly the seed's unescaped type-2 shape, returns the same call written as
/// valid JSON (the list as an escaped string). Otherwise `None`.
pub(crate) fn recover_unescaped_ip_list(text: &str) -> Option<String> {
    let mut cursor = Cursor { text, at: 0 };
    cursor.expect("{")?;
    cursor.expect("\"rtc.proxy_server\"")?;
    cursor.expect(":")?;
    cursor.expect("[")?;
    cursor.expect("2")?;
    cursor.expect(",")?;
    cursor.skip_ws();
    // The host: `"[` ... `]"`, where the part between the outer quotes is an unescaped array.
    if !text[cursor.at..].starts_with("\"[") {
        return None;
    }
    let inner_start = cursor.at + 1;
    let close = text.rfind("]\"")?;
    if close < inner_start {
        return None;
    }
    let inner = &text[inner_start..=close];
    let list: Vec<String> = serde_json::from_str(inner).ok()?;
    cursor.at = close + 2;
    cursor.expect(",")?;
    cursor.skip_ws();
    let port_start = cursor.at;
    let port_len = text[port_start..]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    if port_len == 0 {
        return None;
    }
    let port: u64 = text[port_start..port_start + port_len].parse().ok()?;
    cursor.at += port_len;
    cursor.expect("]")?;
    cursor.expect("}")?;
    cursor.skip_ws();
    if cursor.at != text.len() {
        return None;
    }
    let host = Value::String(serde_json::to_string(&list).ok()?);
    Some(format!("{{\"rtc.proxy_server\":[2,{host},{port}]}}"))
}

/// A position in the text, moved over expected tokens and JSON whitespace.
struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl Cursor<'_> {
    fn skip_ws(&mut self) {
        let rest = &self.text[self.at..];
        let trimmed = rest.trim_start_matches([' ', '\t', '\n', '\r']);
        self.at += rest.len() - trimmed.len();
    }

    fn expect(&mut self, token: &str) -> Option<()> {
        self.skip_ws();
        if self.text[self.at..].starts_with(token) {
            self.at += token.len();
            Some(())
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::recover_unescaped_ip_list;

    #[test]
    fn recovers_the_seed_example() {
        let seed = r#"{"rtc.proxy_server":[2, "["192.168.0.112","127.0.0.1"]", 0]}"#;
        assert_eq!(
            recover_unescaped_ip_list(seed).as_deref(),
            Some(r#"{"rtc.proxy_server":[2,"[\"192.168.0.112\",\"127.0.0.1\"]",0]}"#)
        );
    }

    #[test]
    fn rejects_other_shapes() {
        for text in [
            r#"{"rtc.proxy_server":[1, "["192.168.0.112"]", 0]}"#,
            r#"{"rtc.proxy_server":[2, "["192.168.0.112"]", 0]} x"#,
            r#"{"rtc.enable_proxy":true,"rtc.proxy_server":[2, "["1.1.1.1"]", 0]}"#,
            r#"{"rtc.proxy_server":[2, "[192.168.0.112]", 0]}"#,
            r#"{"rtc.proxy_server":[2, "["1.1.1.1"]", -1]}"#,
            r#"{"rtc.proxy_server":[2, "["1.1.1.1"]"]}"#,
            r#"{"rtc.proxy_server":[2, "]"]", 0]}"#,
            "",
            "{",
        ] {
            assert_eq!(recover_unescaped_ip_list(text), None, "{text}");
        }
    }
}
