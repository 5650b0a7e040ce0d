//! Tests of the setParameters grammar: the seed's examples, every rule, the error texts
//! (snapshots), and properties (no panic, canonical round trip).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::*;
use crate::test_support::snapshot_settings;

fn strict(text: &str) -> Result<ParamUpdate, ParamsError> {
    parse(text, Mode::Strict)
}

fn server(text: &str) -> ProxyServer {
    strict(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .proxy_server
        .expect("a proxy server")
}

fn error(text: &str) -> ParamsError {
    strict(text).expect_err(text)
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

// --- The seed's examples, literally -------------------------------------------------------

#[test]
fn seed_enable_proxy_true_selects_the_default_server() {
    let mut config = ProxyConfig::default();
    config.apply(&strict(r#"{"rtc.enable_proxy":true}"#).unwrap());
    assert_eq!(config.active_server(), Some(&ProxyServer::default_cloud()));
    assert_eq!(
        config.canonical(),
        r#"{"rtc.enable_proxy":true,"rtc.proxy_server":[1,"ap-proxy.agora.io",0]}"#
    );
}

#[test]
fn seed_socks5_example() {
    assert_eq!(
        server(r#"{"rtc.proxy_server":[0, "127.0.0.1", 1080]}"#),
        ProxyServer::Socks5(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 1080))
    );
}

#[test]
fn seed_default_server_written_out() {
    assert_eq!(
        server(r#"{"rtc.proxy_server":[1, "ap-proxy.agora.io", 0]}"#),
        ProxyServer::default_cloud()
    );
}

#[test]
fn seed_type_two_example_is_rejected_in_strict_mode_with_the_escaped_form() {
    let seed = r#"{"rtc.proxy_server":[2, "["192.168.0.112","127.0.0.1"]", 0]}"#;
    let escaped = r#"{"rtc.proxy_server":[2,"[\"192.168.0.112\",\"127.0.0.1\"]",0]}"#;
    assert_eq!(
        error(seed),
        ParamsError::UnescapedIpList {
            escaped: escaped.to_owned()
        }
    );
    assert!(error(seed).to_string().contains(escaped));
    // The escaped form the error suggests is itself accepted, with the same meaning as compat.
    assert_eq!(strict(escaped).unwrap(), parse(seed, Mode::Compat).unwrap());
}

#[test]
fn seed_type_two_example_is_recovered_in_compat_mode() {
    let seed = r#"{"rtc.proxy_server":[2, "["192.168.0.112","127.0.0.1"]", 0]}"#;
    let update = parse(seed, Mode::Compat).unwrap();
    assert_eq!(
        update.proxy_server,
        Some(ProxyServer::CloudIpList {
            ips: vec![ip("192.168.0.112"), ip("127.0.0.1")],
            port: 0
        })
    );
}

#[test]
fn seed_enable_proxy_false_keeps_the_chosen_server() {
    let mut config = ProxyConfig::default();
    config.apply(&strict(r#"{"rtc.proxy_server":[0, "127.0.0.1", 1080]}"#).unwrap());
    config.apply(&strict(r#"{"rtc.enable_proxy":true}"#).unwrap());
    config.apply(&strict(r#"{"rtc.enable_proxy":false}"#).unwrap());
    assert_eq!(config.active_server(), None);
    config.apply(&strict(r#"{"rtc.enable_proxy":true}"#).unwrap());
    assert_eq!(
        config.active_server(),
        Some(&ProxyServer::Socks5("127.0.0.1:1080".parse().unwrap()))
    );
}

/// Every setParameters text in the seed document, with its outcome in both modes.
const SEED_EXAMPLES: &[&str] = &[
    r#"{"rtc.enable_proxy":true}"#,
    r#"{"rtc.proxy_server":[1, "ap-proxy.agora.io", 0]}"#,
    r#"{"rtc.proxy_server":[proxy_type, "ip or dns", port]}"#,
    r#"{"rtc.proxy_server":[0, "127.0.0.1", 1080]}"#,
    r#"{"rtc.proxy_server":[2, "["192.168.0.112","127.0.0.1"]", 0]}"#,
    r#"{"rtc.proxy_server":[2, "[\"ip1\",\"ip2\"]", 0]}"#,
    r#"{"rtc.enable_proxy":false}"#,
];

fn outcome(text: &str, mode: Mode) -> String {
    match parse(text, mode) {
        Ok(update) => {
            let mut config = ProxyConfig::default();
            config.apply(&update);
            format!("ok    {}", config.canonical())
        }
        Err(e) => format!("error {e}"),
    }
}

#[test]
fn snapshot_seed_examples() {
    let mut report = String::new();
    for text in SEED_EXAMPLES {
        writeln!(report, "{text}").unwrap();
        writeln!(report, "  strict: {}", outcome(text, Mode::Strict)).unwrap();
        writeln!(report, "  compat: {}", outcome(text, Mode::Compat)).unwrap();
    }
    snapshot_settings().bind(|| insta::assert_snapshot!("params_seed_examples", report));
}

// --- Every kind of invalid input, and its error text ----------------------------------------

const INVALID: &[(&str, &str)] = &[
    ("not JSON", "rtc.enable_proxy=true"),
    ("trailing garbage", r#"{"rtc.enable_proxy":true} x"#),
    ("empty input", ""),
    ("top level array", r#"[{"rtc.enable_proxy":true}]"#),
    ("top level string", r#""rtc.enable_proxy""#),
    (
        "duplicate key",
        r#"{"rtc.enable_proxy":true,"rtc.enable_proxy":false}"#,
    ),
    ("enable_proxy string", r#"{"rtc.enable_proxy":"true"}"#),
    ("enable_proxy number", r#"{"rtc.enable_proxy":1}"#),
    ("enable_proxy null", r#"{"rtc.enable_proxy":null}"#),
    (
        "server not an array",
        r#"{"rtc.proxy_server":"127.0.0.1:1080"}"#,
    ),
    (
        "server too short",
        r#"{"rtc.proxy_server":[0, "127.0.0.1"]}"#,
    ),
    (
        "server too long",
        r#"{"rtc.proxy_server":[0, "127.0.0.1", 1080, 1]}"#,
    ),
    (
        "unknown type",
        r#"{"rtc.proxy_server":[4, "127.0.0.1", 1080]}"#,
    ),
    (
        "five elements for a type other than 3",
        r#"{"rtc.proxy_server":[0, "127.0.0.1", 1080, "alice", "secret"]}"#,
    ),
    (
        "http proxy with a user and no password",
        r#"{"rtc.proxy_server":[3, "proxy.corp", 3128, "alice"]}"#,
    ),
    (
        "http proxy with six elements",
        r#"{"rtc.proxy_server":[3, "proxy.corp", 3128, "alice", "secret", 1]}"#,
    ),
    (
        "http proxy port 0",
        r#"{"rtc.proxy_server":[3, "proxy.corp", 0]}"#,
    ),
    (
        "http proxy port too large",
        r#"{"rtc.proxy_server":[3, "proxy.corp", 70000]}"#,
    ),
    (
        "http proxy host bracketed",
        r#"{"rtc.proxy_server":[3, "[::1]", 3128]}"#,
    ),
    (
        "http proxy host a URL",
        r#"{"rtc.proxy_server":[3, "http://proxy.corp", 3128]}"#,
    ),
    (
        "http proxy host a URL with credentials",
        r#"{"rtc.proxy_server":[3, "http://alice:hunter2@proxy.corp:8080/", 3128]}"#,
    ),
    (
        "http proxy host with a port",
        r#"{"rtc.proxy_server":[3, "proxy.corp:3128", 3128]}"#,
    ),
    (
        "http proxy host empty",
        r#"{"rtc.proxy_server":[3, "", 3128]}"#,
    ),
    (
        "http proxy host not a string",
        r#"{"rtc.proxy_server":[3, 167772161, 3128]}"#,
    ),
    (
        "http proxy user with a colon",
        r#"{"rtc.proxy_server":[3, "proxy.corp", 3128, "al:ice", "secret"]}"#,
    ),
    (
        "http proxy user empty",
        r#"{"rtc.proxy_server":[3, "proxy.corp", 3128, "", "secret"]}"#,
    ),
    (
        "http proxy user not a string",
        r#"{"rtc.proxy_server":[3, "proxy.corp", 3128, 7, "secret"]}"#,
    ),
    (
        "http proxy password not a string",
        r#"{"rtc.proxy_server":[3, "proxy.corp", 3128, "alice", null]}"#,
    ),
    (
        "http proxy password with a control character",
        r#"{"rtc.proxy_server":[3, "proxy.corp", 3128, "alice", "se\ncret"]}"#,
    ),
    (
        "negative type",
        r#"{"rtc.proxy_server":[-1, "127.0.0.1", 1080]}"#,
    ),
    (
        "fractional type",
        r#"{"rtc.proxy_server":[1.0, "ap-proxy.agora.io", 0]}"#,
    ),
    (
        "exponent type",
        r#"{"rtc.proxy_server":[1e0, "ap-proxy.agora.io", 0]}"#,
    ),
    (
        "type as string",
        r#"{"rtc.proxy_server":["1", "ap-proxy.agora.io", 0]}"#,
    ),
    (
        "socks5 host is a name",
        r#"{"rtc.proxy_server":[0, "proxy.corp", 1080]}"#,
    ),
    (
        "socks5 host bracketed",
        r#"{"rtc.proxy_server":[0, "[::1]", 1080]}"#,
    ),
    (
        "socks5 host with zone",
        r#"{"rtc.proxy_server":[0, "fe80::1%eth0", 1080]}"#,
    ),
    (
        "socks5 host not a string",
        r#"{"rtc.proxy_server":[0, 2130706433, 1080]}"#,
    ),
    (
        "socks5 port 0",
        r#"{"rtc.proxy_server":[0, "127.0.0.1", 0]}"#,
    ),
    (
        "port too large",
        r#"{"rtc.proxy_server":[1, "ap-proxy.agora.io", 65536]}"#,
    ),
    (
        "port negative",
        r#"{"rtc.proxy_server":[1, "ap-proxy.agora.io", -1]}"#,
    ),
    (
        "port fractional",
        r#"{"rtc.proxy_server":[1, "ap-proxy.agora.io", 80.5]}"#,
    ),
    (
        "port as string",
        r#"{"rtc.proxy_server":[1, "ap-proxy.agora.io", "0"]}"#,
    ),
    ("domain empty", r#"{"rtc.proxy_server":[1, "", 0]}"#),
    (
        "domain is an IP",
        r#"{"rtc.proxy_server":[1, "47.74.211.17", 0]}"#,
    ),
    (
        "domain empty label",
        r#"{"rtc.proxy_server":[1, "ap..agora.io", 0]}"#,
    ),
    (
        "domain bad character",
        r#"{"rtc.proxy_server":[1, "ap_proxy.agora.io", 0]}"#,
    ),
    (
        "domain hyphen edge",
        r#"{"rtc.proxy_server":[1, "-ap.agora.io", 0]}"#,
    ),
    (
        "domain numeric tld",
        r#"{"rtc.proxy_server":[1, "ap.agora.123", 0]}"#,
    ),
    (
        "domain label too long",
        concat!(
            r#"{"rtc.proxy_server":[1, ""#,
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            r#".io", 0]}"#
        ),
    ),
    ("ip list empty", r#"{"rtc.proxy_server":[2, "[]", 0]}"#),
    (
        "ip list not JSON",
        r#"{"rtc.proxy_server":[2, "1.1.1.1,2.2.2.2", 0]}"#,
    ),
    (
        "ip list not an array",
        r#"{"rtc.proxy_server":[2, "\"1.1.1.1\"", 0]}"#,
    ),
    (
        "ip list entry not a string",
        r#"{"rtc.proxy_server":[2, "[16843009]", 0]}"#,
    ),
    (
        "ip list entry not an IP",
        r#"{"rtc.proxy_server":[2, "[\"1.1.1.1\",\"ap-proxy.agora.io\"]", 0]}"#,
    ),
    ("ip list host a number", r#"{"rtc.proxy_server":[2, 1, 0]}"#),
    (
        "seed type-2 example",
        r#"{"rtc.proxy_server":[2, "["192.168.0.112","127.0.0.1"]", 0]}"#,
    ),
    ("byte-order mark", "\u{feff}{\"rtc.enable_proxy\":true}"),
    (
        "escaped as in Java or C source",
        r#"{\"rtc.enable_proxy\":true}"#,
    ),
    (
        "escaped IP list as in C source",
        r#"{\"rtc.proxy_server\":[2, \"[\\\"1.1.1.1\\\"]\", 0]}"#,
    ),
    (
        "quoted literal from Java source",
        r#""{\"rtc.enable_proxy\":true}""#,
    ),
    (
        "quoted literal without backslashes",
        r#""{"rtc.enable_proxy":true}""#,
    ),
    (
        "the seed document's Java line, quotes and all",
        r#""{\"rtc.proxy_server\":[2, \"[\"192.168.0.112\",\"127.0.0.1\"]\", 0]}""#,
    ),
    (
        "port beyond any integer",
        r#"{"rtc.proxy_server":[1, "ap-proxy.agora.io", 18446744073709551616]}"#,
    ),
    (
        "port far below any integer",
        r#"{"rtc.proxy_server":[1, "ap-proxy.agora.io", -99999999999999999999]}"#,
    ),
    (
        "socks5 port beyond any integer",
        r#"{"rtc.proxy_server":[0, "127.0.0.1", 1e20]}"#,
    ),
    (
        "type beyond any integer",
        r#"{"rtc.proxy_server":[100000000000000000000000, "ap-proxy.agora.io", 0]}"#,
    ),
    (
        "type a large integer",
        r#"{"rtc.proxy_server":[18446744073709551615, "ap-proxy.agora.io", 0]}"#,
    ),
    (
        "port beyond the parser's numbers",
        r#"{"rtc.proxy_server":[1, "ap-proxy.agora.io", 1e400]}"#,
    ),
];

/// Inputs far larger than any excerpt, built in code: a label and the text.
fn huge_invalid() -> Vec<(&'static str, String)> {
    let ips: Vec<String> = (0..3_000)
        .map(|i| format!("\"10.{}.{}.1\"", i / 256, i % 256))
        .collect();
    let filler = "x".repeat(60_000);
    vec![
        (
            "seed type-2 shape with 3000 addresses",
            format!(r#"{{"rtc.proxy_server":[2, "[{}]", 0]}}"#, ips.join(",")),
        ),
        (
            "byte-order mark before 60000 bytes",
            format!("\u{feff}{{\"x\":\"{filler}\"}}"),
        ),
        (
            "Java-escaped call with a 60000-byte value",
            format!(r#"{{\"rtc.enable_proxy\":true,\"x\":\"{filler}\"}}"#),
        ),
        (
            "quoted literal with a 60000-byte value",
            format!(r#""{{\"x\":\"{filler}\"}}""#),
        ),
        (
            "SOCKS5 host of 60000 bytes",
            format!(r#"{{"rtc.proxy_server":[0, "{filler}", 1080]}}"#),
        ),
        (
            "enable_proxy a string of 60000 bytes",
            format!(r#"{{"rtc.enable_proxy":"{filler}"}}"#),
        ),
        (
            "IP list entry of 60000 bytes",
            format!(r#"{{"rtc.proxy_server":[2, ["{filler}"], 0]}}"#),
        ),
        (
            "domain of 60000 non-ASCII characters",
            format!(r#"{{"rtc.proxy_server":[1, "{}", 0]}}"#, "é".repeat(30_000)),
        ),
    ]
}

#[test]
fn snapshot_error_texts() {
    let mut report = String::new();
    for (label, text) in INVALID {
        let e = error(text);
        let shown = text.replace('\u{feff}', "<U+FEFF>");
        writeln!(report, "{label}: {shown}\n  -> {e}").unwrap();
    }
    for (label, text) in huge_invalid() {
        let e = error(&text);
        writeln!(report, "{label} ({} bytes)\n  -> {e}", text.len()).unwrap();
    }
    snapshot_settings().bind(|| insta::assert_snapshot!("params_errors", report));
}

#[test]
fn no_error_message_is_longer_than_the_bound() {
    let huge = huge_invalid();
    let texts = INVALID
        .iter()
        .map(|(label, text)| (*label, (*text).to_owned()))
        .chain(huge);
    for (label, text) in texts {
        let message = error(&text).to_string();
        let chars = message.chars().count();
        assert!(chars <= MAX_MESSAGE_CHARS, "{label}: {chars} characters");
        assert!(
            chars < 600 || text.len() > 10_000,
            "{label}: a long message for a short input: {message}"
        );
    }
}

#[test]
fn fix_texts_are_whole_when_short_and_cut_with_their_length_when_long() {
    let e = error("\u{feff}{}");
    assert_eq!(
        e,
        ParamsError::ByteOrderMark {
            without: "{}".into()
        }
    );
    assert!(e.to_string().ends_with("remove it and pass {}"), "{e}");
    let long = format!("\u{feff}{{\"x\":\"{}\"}}", "é".repeat(1_000));
    let message = error(&long).to_string();
    let shown = format!("{{\"x\":\"{}", "é".repeat(MAX_FIX_CHARS - 6));
    assert!(
        message.ends_with(&format!("{shown}... (the first 256 of 1008 characters)")),
        "{message}"
    );
}

#[test]
fn the_text_a_source_error_shows_is_accepted() {
    for text in [
        r#"{\"rtc.enable_proxy\":true}"#,
        r#""{\"rtc.enable_proxy\":true}""#,
        r#""{\"rtc.proxy_server\":[2, \"[\"192.168.0.112\",\"127.0.0.1\"]\", 0]}""#,
        r#"{\"rtc.proxy_server\":[2, \"[\\\"1.1.1.1\\\"]\", 0]}"#,
        "\u{feff}{\"rtc.enable_proxy\":true}",
    ] {
        let fix = match error(text) {
            ParamsError::EscapedSource { unescaped } => unescaped,
            ParamsError::QuotedSource { unquoted } => unquoted,
            ParamsError::ByteOrderMark { without } => without,
            other => panic!("{text}: {other}"),
        };
        assert!(error(text).to_string().ends_with(&fix), "{text}");
        assert!(strict(&fix).unwrap().touches_proxy(), "{fix}");
    }
    // Compat mode does not read source forms either.
    assert!(parse(r#""{\"rtc.enable_proxy\":true}""#, Mode::Compat).is_err());
}

#[test]
fn numbers_beyond_any_integer_are_out_of_range_and_name_the_range() {
    for (text, range) in [
        (
            r#"{"rtc.proxy_server":[1, "ap-proxy.agora.io", 18446744073709551616]}"#,
            "expected 0 (the default access-point ports) or 1..=65535",
        ),
        (
            r#"{"rtc.proxy_server":[0, "::1", -9223372036854775809]}"#,
            "expected the SOCKS5 server's port, 1..=65535",
        ),
        (
            r#"{"rtc.proxy_server":[1e30, "ap-proxy.agora.io", 0]}"#,
            "expected 0 (SOCKS5), 1 (cloud proxy by domain), 2 (cloud proxy by IP list) or 3 (HTTP proxy)",
        ),
    ] {
        let message = error(text).to_string();
        assert!(message.contains(" is out of range: "), "{message}");
        assert!(
            message.contains(": a number above ") || message.contains(": a number at or below "),
            "{message}"
        );
        assert!(message.ends_with(range), "{message}");
        assert!(!message.contains("not an integer"), "{message}");
    }
    // The largest integers still read as integers, and a fraction is still a fraction.
    assert!(
        error(r#"{"rtc.proxy_server":[1, "a.io", 18446744073709551615]}"#)
            .to_string()
            .contains("18446744073709551615 is out of range")
    );
    assert!(error(r#"{"rtc.proxy_server":[1, "a.io", 1e19]}"#)
        .to_string()
        .contains("not an integer"));
}

// --- Misspelt proxy keys ---------------------------------------------------------------------

/// Calls with a misspelt proxy key: accepted, the key ignored, a suggestion given.
const MISSPELT: &[&str] = &[
    r#"{"rtc.enable_proxi":true}"#,
    r#"{"RTC.ENABLE_PROXY":true}"#,
    r#"{"rtc.proxy_sever":[1, "ap-proxy.agora.io", 0]}"#,
    r#"{"rtc.enableproxy":true,"che.audio.level":1}"#,
    r#"{"rtc.enable_proxy":true,"rtc.proxyserver":[0, "127.0.0.1", 1080]}"#,
];

#[test]
fn misspelt_proxy_keys_are_ignored_with_a_suggestion() {
    let update =
        strict(r#"{"rtc.enable_proxi":true,"rtc.log_filter":1,"rtc.enable_proxi":1}"#).unwrap();
    assert!(!update.touches_proxy());
    assert_eq!(update.ignored, ["rtc.enable_proxi", "rtc.log_filter"]);
    assert_eq!(
        update.suggestions,
        [KeySuggestion {
            key: "rtc.enable_proxi".into(),
            did_you_mean: KEY_ENABLE_PROXY
        }]
    );
    for text in MISSPELT {
        let update = strict(text).unwrap();
        assert_eq!(update.suggestions.len(), 1, "{text}");
        assert!(
            update.ignored.contains(&update.suggestions[0].key),
            "{text}"
        );
    }
    assert!(strict(r#"{"rtc.log_filter":1}"#)
        .unwrap()
        .suggestions
        .is_empty());
}

#[test]
fn snapshot_suggestions() {
    let mut report = String::new();
    for text in MISSPELT {
        writeln!(report, "{text}").unwrap();
        for suggestion in strict(text).unwrap().suggestions {
            writeln!(report, "  -> {suggestion}").unwrap();
        }
    }
    snapshot_settings().bind(|| insta::assert_snapshot!("params_suggestions", report));
}

#[test]
fn every_server_error_names_the_key_and_element() {
    for (label, text) in INVALID {
        if let ParamsError::ProxyServer { element, .. } = error(text) {
            let message = error(text).to_string();
            assert!(
                message.starts_with("\"rtc.proxy_server\""),
                "{label}: {message}"
            );
            assert!(message.contains(&element.to_string()), "{label}: {message}");
        }
    }
}

// --- Rules ---------------------------------------------------------------------------------

#[test]
fn both_keys_in_one_call() {
    let update = strict(r#"{"rtc.enable_proxy":true,"rtc.proxy_server":[0,"::1",1080]}"#).unwrap();
    assert_eq!(update.enable_proxy, Some(true));
    assert_eq!(
        update.proxy_server,
        Some(ProxyServer::Socks5(SocketAddr::new(
            Ipv6Addr::LOCALHOST.into(),
            1080
        )))
    );
}

#[test]
fn other_keys_are_ignored_and_listed_in_order() {
    let update =
        strict(r#"{"che.audio.level":1,"rtc.enable_proxy":true,"rtc.log_filter":65535,"che.audio.level":2}"#)
            .unwrap();
    assert_eq!(update.enable_proxy, Some(true));
    assert_eq!(update.ignored, ["che.audio.level", "rtc.log_filter"]);
}

#[test]
fn empty_object_changes_nothing() {
    let update = strict("{}").unwrap();
    assert!(!update.touches_proxy());
    assert!(update.ignored.is_empty());
}

#[test]
fn ip_list_accepts_a_native_array_and_removes_duplicates_keeping_the_first() {
    assert_eq!(
        server(r#"{"rtc.proxy_server":[2, ["2.2.2.2","1.1.1.1","2.2.2.2","::1"], 9700]}"#),
        ProxyServer::CloudIpList {
            ips: vec![ip("2.2.2.2"), ip("1.1.1.1"), ip("::1")],
            port: 9700
        }
    );
}

#[test]
fn ip_list_bounds() {
    let list = |n: usize| -> String {
        let ips: Vec<String> = (0..n)
            .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
            .collect();
        serde_json::json!({"rtc.proxy_server": [2, serde_json::to_string(&ips).unwrap(), 0]})
            .to_string()
    };
    assert!(strict(&list(MAX_IP_LIST_LEN)).is_ok());
    assert!(error(&list(MAX_IP_LIST_LEN + 1))
        .to_string()
        .contains("more than 64"));
    // Duplicates do not count towards the bound.
    let mut ips: Vec<String> = (0..MAX_IP_LIST_LEN)
        .map(|i| format!("10.0.0.{i}"))
        .collect();
    ips.extend(ips.clone());
    let text = serde_json::json!({"rtc.proxy_server": [2, ips, 0]}).to_string();
    assert!(strict(&text).is_ok());
}

#[test]
fn domain_is_normalised() {
    assert_eq!(
        server(r#"{"rtc.proxy_server":[1, "AP-Proxy.Agora.IO.", 443]}"#),
        ProxyServer::CloudDomain {
            domain: "ap-proxy.agora.io".into(),
            port: 443
        }
    );
}

#[test]
fn domain_length_bound() {
    let label = "a".repeat(63);
    let name_253 = format!("{label}.{label}.{label}.{}", "b".repeat(61));
    assert_eq!(name_253.len(), 253);
    assert!(strict(&format!(r#"{{"rtc.proxy_server":[1,"{name_253}",0]}}"#)).is_ok());
    let name_254 = format!("{name_253}c");
    assert!(
        error(&format!(r#"{{"rtc.proxy_server":[1,"{name_254}",0]}}"#))
            .to_string()
            .contains("254 bytes")
    );
}

#[test]
fn oversized_input_is_rejected_before_parsing() {
    let text = format!(r#"{{"x":"{}"}}"#, "a".repeat(MAX_INPUT_LEN));
    assert!(matches!(error(&text), ParamsError::TooLarge { .. }));
}

#[test]
fn deep_nesting_is_rejected_without_overflowing_the_stack() {
    for open in ["[", "{\"a\":"] {
        let text = open.repeat(MAX_INPUT_LEN / open.len() - 1);
        assert!(matches!(error(&text), ParamsError::NotJson { .. }));
        let inner = format!(r#"{{"rtc.enable_proxy":{}}}"#, open.repeat(10_000));
        assert!(matches!(error(&inner), ParamsError::NotJson { .. }));
    }
}

#[test]
fn canonical_type_two_is_the_escaped_string_form() {
    let mut config = ProxyConfig::default();
    config.apply(
        &strict(r#"{"rtc.enable_proxy":true,"rtc.proxy_server":[2,["1.1.1.1","2.2.2.2"],0]}"#)
            .unwrap(),
    );
    assert_eq!(
        config.canonical(),
        r#"{"rtc.enable_proxy":true,"rtc.proxy_server":[2,"[\"1.1.1.1\",\"2.2.2.2\"]",0]}"#
    );
}

mod http;
mod props;
