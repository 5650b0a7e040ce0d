//! Validation of the host element of `"rtc.proxy_server"`: IP literals, DNS names, IP lists.

use std::net::IpAddr;

use serde_json::Value;

use super::error::describe;

/// The most addresses a type-2 IP list may hold.
pub const MAX_IP_LIST_LEN: usize = 64;
/// The longest DNS name accepted, in bytes (RFC 1035 §2.3.4, without the trailing dot).
pub const MAX_DNS_NAME_LEN: usize = 253;
/// The longest DNS label accepted, in bytes.
pub const MAX_DNS_LABEL_LEN: usize = 63;

/// Parses an IPv4 or IPv6 literal, with a reason naming the text when it is not one.
pub(crate) fn parse_ip_literal(text: &str) -> Result<IpAddr, String> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(ip);
    }
    let shown = quote(text);
    if text.starts_with('[')
        && text.ends_with(']')
        && text[1..text.len() - 1].parse::<IpAddr>().is_ok()
    {
        return Err(format!(
            "{shown} is not an IP literal: write IPv6 addresses without brackets"
        ));
    }
    if text.contains('%') {
        return Err(format!(
            "{shown} is not an IP literal: zone indices (%) are not supported"
        ));
    }
    if text.trim() != text {
        return Err(format!(
            "{shown} is not an IP literal: it has leading or trailing whitespace"
        ));
    }
    Err(format!("{shown} is not an IPv4 or IPv6 literal"))
}

/// Checks a DNS name (RFC 1123 host name syntax) and returns its canonical form: lower case,
/// without a trailing dot.
pub(crate) fn normalize_dns_name(text: &str) -> Result<String, String> {
    let shown = quote(text);
    if text.is_empty() {
        return Err("the domain name is empty".to_owned());
    }
    if text.parse::<IpAddr>().is_ok() {
        return Err(format!(
            "{shown} is an IP address, not a domain name: use type 2 for a list of IP addresses"
        ));
    }
    let name = text.strip_suffix('.').unwrap_or(text);
    if name.len() > MAX_DNS_NAME_LEN {
        return Err(format!(
            "the domain name is {} bytes long, more than {MAX_DNS_NAME_LEN}",
            name.len()
        ));
    }
    let labels: Vec<&str> = name.split('.').collect();
    for (index, label) in labels.iter().enumerate() {
        let n = index + 1;
        if label.is_empty() {
            return Err(format!(
                "{shown} is not a valid domain name: label {n} is empty"
            ));
        }
        if label.len() > MAX_DNS_LABEL_LEN {
            return Err(format!(
                "{shown} is not a valid domain name: label {n} is {} bytes long, more than {MAX_DNS_LABEL_LEN}",
                label.len()
            ));
        }
        if let Some(bad) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!(
                "{shown} is not a valid domain name: label {n} contains {}, only letters, digits and '-' are allowed",
                quote(&bad.to_string())
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "{shown} is not a valid domain name: label {n} starts or ends with '-'"
            ));
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!(
            "{shown} is not a valid domain name: the last label is all digits"
        ));
    }
    Ok(name.to_ascii_lowercase())
}

/// Reads a type-2 IP list: a JSON array of IP literal strings, non-empty, at most
/// [`MAX_IP_LIST_LEN`] distinct entries, duplicates removed keeping the first occurrence.
pub(crate) fn ip_list_from_array(items: &[Value]) -> Result<Vec<IpAddr>, String> {
    if items.is_empty() {
        return Err("the IP list is empty: give at least one IP address".to_owned());
    }
    let mut ips: Vec<IpAddr> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Value::String(text) = item else {
            return Err(format!(
                "IP list entry {index} must be a string holding an IP address, found {}",
                describe(item)
            ));
        };
        let ip = parse_ip_literal(text).map_err(|why| format!("IP list entry {index}: {why}"))?;
        if !ips.contains(&ip) {
            if ips.len() == MAX_IP_LIST_LEN {
                return Err(format!(
                    "the IP list holds more than {MAX_IP_LIST_LEN} distinct addresses"
                ));
            }
            ips.push(ip);
        }
    }
    Ok(ips)
}

/// Reads a type-2 host given as a string holding a JSON array.
pub(crate) fn ip_list_from_string(text: &str) -> Result<Vec<IpAddr>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        format!(
            "{} is not a JSON array of IP addresses: {}",
            quote(text),
            strip_position(&e)
        )
    })?;
    match &value {
        Value::Array(items) => ip_list_from_array(items),
        other => Err(format!(
            "{} must hold a JSON array of IP addresses, found {}",
            quote(text),
            describe(other)
        )),
    }
}

/// A JSON error's message without serde_json's " at line L column C" suffix.
pub(crate) fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    }
}

/// `text` as a JSON string literal, shortened when long, for error messages.
pub(crate) fn quote(text: &str) -> String {
    const MAX_CHARS: usize = 64;
    if text.chars().count() <= MAX_CHARS {
        Value::String(text.to_owned()).to_string()
    } else {
        let head: String = text.chars().take(MAX_CHARS - 3).collect();
        let quoted = Value::String(head).to_string();
        format!("{}...\"", &quoted[..quoted.len() - 1])
    }
}
