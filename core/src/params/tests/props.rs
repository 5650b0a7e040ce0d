//! Properties of the grammar: no panic, bounded messages, compat ⊇ strict, the canonical
//! round trip (every proxy type, type 3 with and without credentials).

use std::net::{IpAddr, SocketAddr};

use proptest::prelude::*;

use super::*;
use crate::http_connect::BasicCredentials;

// --- Properties -----------------------------------------------------------------------------

fn arb_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from),
    ]
}

fn arb_domain() -> impl Strategy<Value = String> {
    proptest::collection::vec("[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", 1..5).prop_flat_map(|labels| {
        "[a-z][a-z0-9]{0,5}".prop_map(move |tld| {
            let mut name = labels.join(".");
            name.push('.');
            name.push_str(&tld);
            name
        })
    })
}

fn arb_server() -> impl Strategy<Value = ProxyServer> {
    prop_oneof![
        (arb_ip(), 1..=u16::MAX)
            .prop_map(|(ip, port)| ProxyServer::Socks5(SocketAddr::new(ip, port))),
        (arb_domain(), any::<u16>())
            .prop_map(|(domain, port)| ProxyServer::CloudDomain { domain, port }),
        (
            proptest::collection::btree_set(arb_ip(), 1..=MAX_IP_LIST_LEN),
            any::<u16>()
        )
            .prop_map(|(ips, port)| ProxyServer::CloudIpList {
                ips: ips.into_iter().collect(),
                port
            }),
        (
            prop_oneof![
                arb_ip().prop_map(ProxyHost::Ip),
                arb_domain().prop_map(ProxyHost::Domain)
            ],
            1..=u16::MAX,
            proptest::option::of(("[ -9;-~]{1,20}", "\\PC{0,20}")),
        )
            .prop_map(|(host, port, credentials)| ProxyServer::HttpConnect {
                host,
                port,
                credentials: credentials.map(|(user, password)| {
                    BasicCredentials::new(&user, &password).expect("valid credentials")
                }),
            }),
    ]
}

/// Text that looks like setParameters calls, so that the parser gets past its first checks.
fn arb_call_text() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just("true".to_owned()),
        Just("null".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        "\"[ -~]{0,12}\"",
        Just(r#""[\"1.1.1.1\",\"::1\"]""#.to_owned()),
        Just(r#""["1.1.1.1"]""#.to_owned()),
        Just(r#""ap-proxy.agora.io""#.to_owned()),
    ];
    let element = prop_oneof![
        atom.clone(),
        proptest::collection::vec(atom, 0..5).prop_map(|v| format!("[{}]", v.join(", "))),
    ];
    let key = prop_oneof![
        Just(r#""rtc.enable_proxy""#.to_owned()),
        Just(r#""rtc.proxy_server""#.to_owned()),
        "\"[a-z.]{1,8}\"",
    ];
    proptest::collection::vec((key, element), 0..4).prop_map(|entries| {
        let body: Vec<String> = entries
            .into_iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect();
        format!("{{{}}}", body.join(","))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        for mode in [Mode::Strict, Mode::Compat] {
            if let Err(e) = parse(&text, mode) {
                prop_assert!(e.to_string().chars().count() <= MAX_MESSAGE_CHARS);
            }
        }
    }

    #[test]
    fn source_forms_of_a_call_are_recognised(text in arb_call_text(), quoted in any::<bool>()) {
        if strict(&text).is_ok() {
            // The call as a Java string literal's inside, and the literal itself.
            let literal = serde_json::to_string(&text).unwrap();
            let pasted = if quoted { literal.as_str() } else { &literal[1..literal.len() - 1] };
            match parse(pasted, Mode::Strict) {
                Err(ParamsError::QuotedSource { unquoted }) => prop_assert_eq!(unquoted, text),
                Err(ParamsError::EscapedSource { unescaped }) => prop_assert_eq!(unescaped, text),
                // Without a quote to escape, the inside of the literal is the call itself.
                other => prop_assert!(!quoted && !text.contains('"') && other.is_ok(), "{:?}", other),
            }
        }
    }

    #[test]
    fn call_shaped_text_never_panics_and_modes_agree(text in arb_call_text()) {
        let strict = parse(&text, Mode::Strict);
        let compat = parse(&text, Mode::Compat);
        if let Ok(update) = &strict {
            // Compat accepts a superset of strict, with the same meaning.
            prop_assert_eq!(Ok(update), compat.as_ref());
        }
    }

    #[test]
    fn canonical_form_round_trips(enabled in any::<bool>(), server in arb_server()) {
        let config = ProxyConfig { enabled, server };
        let mut again = ProxyConfig::default();
        again.apply(&parse(&config.canonical(), Mode::Strict).unwrap());
        prop_assert_eq!(&again, &config);
        // And the canonical text is a fixed point.
        prop_assert_eq!(again.canonical(), config.canonical());
    }

    #[test]
    fn applied_call_round_trips_through_canonical(text in arb_call_text()) {
        if let Ok(update) = parse(&text, Mode::Strict) {
            let mut config = ProxyConfig::default();
            config.apply(&update);
            let mut again = ProxyConfig::default();
            again.apply(&parse(&config.canonical(), Mode::Strict).unwrap());
            prop_assert_eq!(again, config);
        }
    }
}
