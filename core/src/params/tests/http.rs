//! Type 3, an HTTP proxy (beyond the seed): shapes, the canonical form, redaction.

use super::*;

// --- Type 3: an HTTP proxy (beyond the seed) ------------------------------------------------

#[test]
fn http_proxy_by_name_by_address_and_with_credentials() {
    assert_eq!(
        server(r#"{"rtc.proxy_server":[3, "Proxy.Corp.", 3128]}"#),
        ProxyServer::HttpConnect {
            host: ProxyHost::Domain("proxy.corp".into()),
            port: 3128,
            credentials: None
        }
    );
    assert_eq!(
        server(r#"{"rtc.proxy_server":[3, "2001:db8::8", 8080]}"#),
        ProxyServer::HttpConnect {
            host: ProxyHost::Ip(ip("2001:db8::8")),
            port: 8080,
            credentials: None
        }
    );
    let with = server(r#"{"rtc.proxy_server":[3, "10.0.0.8", 3128, "alice", "s3cr:et"]}"#);
    let ProxyServer::HttpConnect {
        credentials: Some(credentials),
        ..
    } = &with
    else {
        panic!("{with:?}")
    };
    assert_eq!(
        (credentials.user(), credentials.password()),
        ("alice", "s3cr:et")
    );
    assert_eq!(with.proxy_type(), 3);
    assert!(!with.is_cloud());
}

#[test]
fn http_proxy_canonical_form_round_trips_and_printing_redacts_the_password() {
    let mut config = ProxyConfig::default();
    config.apply(
        &strict(r#"{"rtc.enable_proxy":true,"rtc.proxy_server":[3,"proxy.corp",3128,"alice","secret"]}"#)
            .unwrap(),
    );
    assert_eq!(
        config.canonical(),
        r#"{"rtc.enable_proxy":true,"rtc.proxy_server":[3,"proxy.corp",3128,"alice","secret"]}"#
    );
    let mut again = ProxyConfig::default();
    again.apply(&strict(&config.canonical()).unwrap());
    assert_eq!(again, config);
    let printed = config.to_json_redacted().to_string();
    assert!(!printed.contains("secret"), "{printed}");
    assert!(printed.contains("<redacted>"), "{printed}");
    assert!(!config.server.to_string().contains("secret"));
    assert!(!format!("{:?}", config.server).contains("secret"));
    // Without credentials the seed's three-element shape.
    config.apply(&strict(r#"{"rtc.proxy_server":[3,"10.0.0.8",8080]}"#).unwrap());
    assert_eq!(
        config.server.to_json().to_string(),
        r#"[3,"10.0.0.8",8080]"#
    );
}

#[test]
fn http_proxy_errors_never_quote_the_password() {
    for text in [
        r#"{"rtc.proxy_server":[3, "proxy.corp", 3128, "alice", "hunter2\u0007"]}"#,
        r#"{"rtc.proxy_server":[3, "proxy.corp", 3128, "", "hunter2"]}"#,
        r#"{"rtc.proxy_server":[3, "proxy.corp", 3128, "al:ice", "hunter2"]}"#,
        r#"{"rtc.proxy_server":[3, "proxy.corp", 0, "alice", "hunter2"]}"#,
        r#"{"rtc.proxy_server":[3, "http://alice:hunter2@proxy.corp:8080/", 3128]}"#,
    ] {
        let message = error(text).to_string();
        assert!(!message.contains("hunter2"), "{message}");
    }
    assert!(matches!(
        error(r#"{"rtc.proxy_server":[3, "proxy.corp", 3128, "alice", "hunter2\u0007"]}"#),
        ParamsError::ProxyServer {
            element: Element::Password,
            ..
        }
    ));
}

#[test]
fn redact_text_hides_every_password_of_a_call_accepted_or_not() {
    use crate::params::redact_text;
    let cases = [
        // Accepted: type 3 with credentials.
        r#"{"rtc.enable_proxy":true,"rtc.proxy_server":[3,"proxy.corp",3128,"alice","pl4nted"]}"#,
        // Refused: a sixth element, a password on a type that takes none, odd spacing.
        r#"{"rtc.proxy_server":[3,"p",1,"u","pl4nted","pl4nted"]}"#,
        r#"{ "rtc.proxy_server" : [ 0, "10.1.0.2", 1080, "u", "pl4nted" ] }"#,
        // Not JSON at all, type 3 inside.
        r#"{"rtc.proxy_server":[3,"p",1,"u","pl4nted"]"#,
        r#"{"rtc.proxy_server":[2,"[]",0], "rtc.proxy_server":[3,"p",1,"u","pl4nted"]"#,
    ];
    for text in cases {
        let shown = redact_text(text);
        assert!(!shown.contains("pl4nted"), "{text} -> {shown}");
        assert!(shown.contains("<redacted>"), "{text} -> {shown}");
    }
    // Texts without a password are kept as they are, the compat type-2 example included.
    for text in [
        r#"{"rtc.enable_proxy":true}"#,
        r#"{"rtc.proxy_server":[3,"proxy.corp",3128]}"#,
        r#"{"rtc.proxy_server":[2, "["192.168.0.112","127.0.0.1"]", 0]}"#,
        "not json",
    ] {
        assert_eq!(redact_text(text), text);
    }
    // The user name stays, as in the redacted configuration.
    assert!(redact_text(cases[0]).contains(r#""alice","<redacted>""#));
}
